//! Node configuration: a TOML file (`--config`), overridden by flags. `Default` is the setup a
//! newcomer gets from `pgext-node run`: `./pgext-data`, HTTP on 127.0.0.1:7070.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pgext_spec::archive::Limits;
use serde::{Deserialize, Serialize};

/// Who may register accounts on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone.
    #[default]
    Open,
    /// Account entries carry an invitation signed by an admin key.
    Invite,
    /// Nobody.
    Closed,
}

/// Sequencer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequencerConfig {
    /// Most entries per sequencing round.
    pub batch_max: usize,
    /// Longest wait, in milliseconds, before a round starts once one submission is pending.
    pub batch_interval_ms: u64,
}

impl Default for SequencerConfig {
    fn default() -> SequencerConfig {
        SequencerConfig {
            batch_max: 256,
            batch_interval_ms: 1000,
        }
    }
}

impl SequencerConfig {
    /// The interval as a duration.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.batch_interval_ms)
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data folder: RocksDB, blobs, keys.
    pub data: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Origin of the log this node sequences. Default: `<http address>/log`, fixed at first start.
    pub origin: Option<String>,
    /// Account registration policy.
    pub registration: Registration,
    /// Admin verifier keys (base64 Ed25519) whose invitations count when registration = invite.
    pub admin_keys: Vec<String>,
    /// Sequencer settings.
    pub sequencer: SequencerConfig,
    /// Upload limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data: PathBuf::from("pgext-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 7070)),
            origin: None,
            registration: Registration::Open,
            admin_keys: Vec::new(),
            sequencer: SequencerConfig::default(),
            limits: Limits::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))
    }

    /// A configuration for tests: data in `dir`, HTTP on an OS-chosen loopback port, a fixed
    /// origin, and short sequencing rounds.
    pub fn for_tests(dir: &Path) -> Config {
        Config {
            data: dir.to_path_buf(),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            origin: Some("test.pgext.local/log".into()),
            sequencer: SequencerConfig {
                batch_max: 256,
                batch_interval_ms: 20,
            },
            ..Config::default()
        }
    }

    /// The origin to use when the data folder has none yet.
    pub fn default_origin(&self) -> String {
        self.origin
            .clone()
            .unwrap_or_else(|| format!("{}/log", self.http))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/node.example.toml");
        let c = Config::load(&path).unwrap();
        let d = Config::default();
        assert_eq!(
            (c.data, c.http, c.origin, c.registration),
            (d.data, d.http, d.origin, d.registration)
        );
        assert_eq!(
            (c.sequencer.batch_max, c.sequencer.batch_interval_ms),
            (d.sequencer.batch_max, d.sequencer.batch_interval_ms)
        );
        assert_eq!(c.limits, d.limits);
        assert!(toml::from_str::<Config>("unknown_key = 1").is_err());
    }
}
