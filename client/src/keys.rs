//! The signing key of the user: its file (`pgext-key USER BASE64-SEED`), where it is looked
//! for, and `PGEXT_SIGNING_KEY`. Both the author's commands and the tokens a registry's
//! requests carry (`auth.rs`) read it from here.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;

use crate::Error;
use crate::release::Identity;

/// The environment variable CI jobs put a key in (the key file's one line).
pub const KEY_ENV: &str = "PGEXT_SIGNING_KEY";

/// `$XDG_CONFIG_HOME/pgext/signing.key` (`~/.config/pgext/signing.key`).
pub fn default_key_path() -> PathBuf {
    crate::trust::Config::default_path().with_file_name("signing.key")
}

/// A key file's one line: `pgext-key USER BASE64-SEED`.
pub fn format_identity(id: &Identity) -> String {
    format!(
        "pgext-key {} {}\n",
        id.user,
        STANDARD.encode(id.key.to_bytes())
    )
}

/// Reads a key file's line (or `PGEXT_SIGNING_KEY`'s value).
///
/// # Errors
/// When it is not `pgext-key USER BASE64-SEED`.
pub fn parse_identity(text: &str) -> Result<Identity, Error> {
    let bad = || {
        Error::Config(
            "a signing key is one line `pgext-key USER BASE64-SEED` (as `pgext keygen` writes it)"
                .into(),
        )
    };
    let mut parts = text.split_whitespace();
    let (Some("pgext-key"), Some(user), Some(seed), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let seed: [u8; 32] = STANDARD
        .decode(seed)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    Ok(Identity {
        user: user.to_string(),
        key: SigningKey::from_bytes(&seed),
    })
}

/// The author's identity: `PGEXT_SIGNING_KEY` if set, else the key file (`path`, else the
/// default).
///
/// # Errors
/// When neither holds a key.
pub fn load_identity(path: Option<&Path>) -> Result<Identity, Error> {
    if let Ok(v) = std::env::var(KEY_ENV) {
        if path.is_none() && !v.trim().is_empty() {
            return parse_identity(&v);
        }
    }
    let path = path.map_or_else(default_key_path, Path::to_path_buf);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "no signing key: {}: {e}. Create one with `pgext keygen USER`, or set {KEY_ENV}",
            path.display()
        ))
    })?;
    parse_identity(&text)
}
