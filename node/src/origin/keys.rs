//! The keys in a data folder: the log key (whose name is the origin) and the cosigner key a
//! mirror cosigns with. `run` creates them on first start; read-only commands only read them,
//! and a folder without a log key is an error, never a new log.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, bail};
use pgext_log::{KeyType, SignerKey};
use rand::RngCore;
use tracing::info;

use crate::config::{Config, WitnessAlgorithm};
use crate::durable::write_secret;

/// File name of the log's private key in the data folder.
pub const LOG_KEY_FILE: &str = "log.key";
/// File name of the cosigner key in the data folder.
pub const WITNESS_KEY_FILE: &str = "witness.key";
/// File name of the ML-DSA-44 cosigner key in the data folder.
pub const WITNESS_ML_DSA_KEY_FILE: &str = "witness-ml-dsa-44.key";

fn read_key(path: &PathBuf) -> anyhow::Result<SignerKey> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SignerKey::from_private_text(text.trim()).with_context(|| format!("parsing {}", path.display()))
}

/// The Ed25519 key of a log key or of the node's Ed25519 cosigner key, which also sign the
/// operator's entries and count statements.
///
/// # Errors
/// When the key is of another algorithm.
pub fn ed25519_of(key: &SignerKey) -> anyhow::Result<ed25519_dalek::SigningKey> {
    key.ed25519()
        .cloned()
        .with_context(|| format!("{} is not an Ed25519 key", key.verifier()))
}

fn check_origin(config: &Config, key: &SignerKey) -> anyhow::Result<()> {
    if key.kind() != KeyType::Ed25519 {
        bail!(
            "{}: the log key must be an Ed25519 note key (type 0x01)",
            config.data.join(LOG_KEY_FILE).display()
        );
    }
    if let Some(origin) = &config.origin {
        if origin != key.name() {
            bail!(
                "the data folder {} holds the log of origin {:?}, but the configuration says {origin:?}",
                config.data.display(),
                key.name()
            );
        }
    }
    Ok(())
}

/// Reads the log key of an existing data folder, creating nothing.
///
/// # Errors
/// When the folder holds no log key (not a data folder: check `--data`), or it cannot be read.
pub fn load_log_key(config: &Config) -> anyhow::Result<SignerKey> {
    let path = config.data.join(LOG_KEY_FILE);
    if !path.exists() {
        bail!(
            "{} holds no log key: it is not a pgext data folder (check --data or the config's `data`); nothing was created",
            config.data.display()
        );
    }
    let key = read_key(&path)?;
    check_origin(config, &key)?;
    Ok(key)
}

/// Loads the log key from the data folder, creating it (mode 0600) on first start.
///
/// # Errors
/// When the folder or key cannot be read or written, or the key's origin is not the configured
/// one.
pub fn load_or_create_log_key(config: &Config) -> anyhow::Result<SignerKey> {
    fs::create_dir_all(&config.data)
        .with_context(|| format!("creating data folder {}", config.data.display()))?;
    let path = config.data.join(LOG_KEY_FILE);
    if path.exists() {
        let key = read_key(&path)?;
        check_origin(config, &key)?;
        return Ok(key);
    }
    let key =
        new_key(&config.default_origin(), KeyType::Ed25519).context("creating the log key")?;
    write_secret(&path, format!("{}\n", key.to_private_text()).as_bytes())?;
    info!(origin = key.name(), vkey = %key.verifier(), "created the log key");
    Ok(key)
}

/// Loads the cosigner key from the data folder, creating it (mode 0600) on first start.
///
/// # Errors
/// When the key cannot be read, parsed or written.
pub fn load_or_create_witness(config: &Config) -> anyhow::Result<SignerKey> {
    load_or_create_cosigner(config, KeyType::Cosignature)
}

/// The keys this node cosigns mirrored checkpoints with, one per `witness_algorithms` in that
/// order, each loaded or created (mode 0600) like [`load_or_create_witness`]'s.
///
/// # Errors
/// When a key cannot be read, parsed or written.
pub fn load_or_create_cosigners(config: &Config) -> anyhow::Result<Vec<SignerKey>> {
    config
        .witness_algorithms
        .iter()
        .map(|a| {
            load_or_create_cosigner(
                config,
                match a {
                    WitnessAlgorithm::Ed25519 => KeyType::Cosignature,
                    WitnessAlgorithm::MlDsa44 => KeyType::MlDsa44,
                },
            )
        })
        .collect()
}

fn load_or_create_cosigner(config: &Config, kind: KeyType) -> anyhow::Result<SignerKey> {
    let file = match kind {
        KeyType::MlDsa44 => WITNESS_ML_DSA_KEY_FILE,
        _ => WITNESS_KEY_FILE,
    };
    let path = config.data.join(file);
    if path.exists() {
        let key = read_key(&path)?;
        if key.kind() != kind {
            bail!(
                "{} holds a key of type 0x{:02x}, not 0x{:02x}",
                path.display(),
                key.kind().byte(),
                kind.byte()
            );
        }
        return Ok(key);
    }
    // A second algorithm's key takes the name the first one has, so that both cosign as one
    // cosigner (C2SP tlog-cosignature: one name, a key id per algorithm).
    let name = match kind {
        KeyType::Cosignature => config.default_witness_name(),
        _ => {
            let ed = config.data.join(WITNESS_KEY_FILE);
            if ed.exists() {
                read_key(&ed)?.name().to_string()
            } else {
                config.default_witness_name()
            }
        }
    };
    let key = new_key(&name, kind).context("creating the cosigner key")?;
    write_secret(&path, format!("{}\n", key.to_private_text()).as_bytes())?;
    info!(vkey = %key.verifier(), "created the cosigner key");
    Ok(key)
}

fn new_key(name: &str, kind: KeyType) -> pgext_log::Result<SignerKey> {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SignerKey::from_seed(name, kind, &seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_a_folder_without_a_key_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::for_tests(&dir.path().join("mistyped"));
        let e = load_log_key(&config).unwrap_err().to_string();
        assert!(e.contains("not a pgext data folder"), "{e}");
        assert!(!dir.path().join("mistyped").exists());
        let made = load_or_create_log_key(&config).unwrap();
        assert_eq!(load_log_key(&config).unwrap().verifier(), made.verifier());
    }
}
