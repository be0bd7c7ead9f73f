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

/// Who may read an origin (`spec/access.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Everyone.
    #[default]
    Public,
    /// Members of the origin (accounts on its log), with a read token; over libp2p, the peers
    /// in `[p2p] allow`.
    Private,
}

impl Access {
    /// Whether this is `Private`.
    pub fn is_private(self) -> bool {
        self == Access::Private
    }
}

/// A cosignature algorithm of C2SP tlog-cosignature (`witness_algorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WitnessAlgorithm {
    /// Ed25519 `cosignature/v1` (type 0x04).
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ML-DSA-44 `subtree/v1` (type 0x06).
    #[serde(rename = "ml-dsa-44")]
    MlDsa44,
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

/// How many uploads (release archives, binary packages) the node reads at once: each may hold
/// tens of MiB while it is checked, so their number bounds the memory uploads take.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Uploads read at once.
    pub concurrent: usize,
    /// How long, in milliseconds, an upload waits for its turn before it is answered 503 busy.
    pub wait_ms: u64,
}

impl Default for UploadConfig {
    fn default() -> UploadConfig {
        UploadConfig {
            concurrent: 4,
            wait_ms: 30_000,
        }
    }
}

/// One origin this node mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// Short name: the URL prefix (`/origins/{name}/`) and the folder below `{data}/mirrors/`.
    /// Lowercase letters, digits and `-`.
    pub name: String,
    /// The origin's C2SP verifier key (`pgext-node vkey` on its sequencer); its name is the
    /// origin.
    pub vkey: String,
    /// Whether the mirrored origin is private (`spec/access.md`).
    #[serde(default)]
    pub access: Access,
}

/// The peer-to-peer side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct P2pConfig {
    /// Whether to join the federation at all.
    pub enabled: bool,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Peers to dial at start (`/ip4/…/tcp/…/p2p/<peer id>`), also Kademlia's bootstrap set.
    pub peers: Vec<String>,
    /// How often, in milliseconds, connected peers are asked for their checkpoints (a backstop
    /// for gossip).
    pub poll_ms: u64,
    /// How long, in milliseconds, a request to a peer may take before it is tried elsewhere.
    pub request_timeout_ms: u64,
    /// Peer ids that may replicate this node's private origins (and that a private mirror asks).
    pub allow: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> P2pConfig {
        P2pConfig {
            enabled: true,
            listen: vec!["/ip4/127.0.0.1/tcp/7071".into()],
            peers: Vec::new(),
            poll_ms: 5000,
            request_timeout_ms: 10_000,
            allow: Vec::new(),
        }
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
    /// Who may read the node's own origin.
    pub access: Access,
    /// Account registration policy.
    pub registration: Registration,
    /// Admin verifier keys (base64 Ed25519) whose invitations count when registration = invite.
    pub admin_keys: Vec<String>,
    /// Sequencer settings.
    pub sequencer: SequencerConfig,
    /// Upload limits.
    pub limits: Limits,
    /// Uploads taken at once.
    pub uploads: UploadConfig,
    /// Name this node cosigns checkpoints under (C2SP tlog-cosignature). Default:
    /// `<http address>/witness`, fixed at first start.
    pub witness_name: Option<String>,
    /// The algorithms this node cosigns the checkpoints it mirrors with, each with its own key
    /// under `witness_name` (C2SP tlog-cosignature): `"ed25519"` (type 0x04) and
    /// `"ml-dsa-44"` (type 0x06, post-quantum). Default: `["ed25519"]`.
    pub witness_algorithms: Vec<WitnessAlgorithm>,
    /// The peer-to-peer side.
    pub p2p: P2pConfig,
    /// Origins to mirror.
    #[serde(rename = "mirror")]
    pub mirrors: Vec<MirrorConfig>,
    /// URLs that receive each new release as signed JSON (`spec/site.md`, Webhooks).
    #[serde(rename = "webhook")]
    pub webhooks: Vec<WebhookConfig>,
    /// The operator's mapping of distributions and tags to categories (`spec/search.md`).
    pub categories: Option<PathBuf>,
    /// Download counts (`spec/counts.md`).
    pub counts: CountsConfig,
    /// Trusted publishing from CI (`spec/trusted-publishing.md`).
    pub trusted_publishing: TrustedPublishingConfig,
}

/// Which CI identity providers the node takes ID tokens of, for whom, and for how long the
/// keys it gives live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustedPublishingConfig {
    /// OIDC issuers whose tokens the node verifies (their discovery documents and keys are
    /// fetched from there; no other issuer is ever asked).
    pub issuers: Vec<String>,
    /// The audience a token must name. Default: the origin.
    pub audience: Option<String>,
    /// How long a CI key may sign, in seconds (at most 1,800).
    pub key_secs: u64,
}

impl Default for TrustedPublishingConfig {
    fn default() -> TrustedPublishingConfig {
        TrustedPublishingConfig {
            issuers: vec![
                "https://token.actions.githubusercontent.com".into(),
                "https://gitlab.com".into(),
            ],
            audience: None,
            key_secs: 900,
        }
    }
}

/// Download count statements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountsConfig {
    /// Seconds between this node's count statements.
    pub period_secs: u64,
    /// Cosigner keys (C2SP vkeys) of the other nodes whose count statements this node takes:
    /// the mirrors it knows. Statements of any other node are refused.
    pub nodes: Vec<String>,
}

impl Default for CountsConfig {
    fn default() -> CountsConfig {
        CountsConfig {
            period_secs: 3600,
            nodes: Vec::new(),
        }
    }
}

/// A URL told of every new release, of this node's log and of every mirrored one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// The shared secret the body's HMAC-SHA256 is keyed with.
    pub secret: String,
    /// Only releases of these distributions (any case); empty: every distribution.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dists: Vec<String>,
    /// Only releases published by these accounts; empty: every account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Only releases whose META carries one of these tags (any case); empty: any tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Key transparency: every key added, rotated or revoked for these accounts, every CI key
    /// recorded for them, and every release they sign (`key` and `release` events). A webhook
    /// naming only accounts hears of nothing else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// `private`: the webhook also hears of private origins' releases (else only public ones).
    #[serde(default)]
    pub access: Access,
}

impl WebhookConfig {
    /// Whether a release passes the webhook's filters: each list that is not empty must name
    /// the release's distribution, its publisher, or one of its tags.
    pub fn wants(&self, dist: &str, user: &str, tags: &[String]) -> bool {
        let any = |list: &[String], v: &str| {
            list.is_empty() || list.iter().any(|x| x.eq_ignore_ascii_case(v))
        };
        let watched = self.watches(user);
        let only_accounts = !self.accounts.is_empty()
            && self.dists.is_empty()
            && self.users.is_empty()
            && self.tags.is_empty();
        if only_accounts {
            return watched;
        }
        watched
            || (any(&self.dists, dist)
                && any(&self.users, user)
                && (self.tags.is_empty() || tags.iter().any(|t| any(&self.tags, t))))
    }

    /// Whether the webhook watches `user`'s keys.
    pub fn watches(&self, user: &str) -> bool {
        self.accounts.iter().any(|a| a.eq_ignore_ascii_case(user))
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data: PathBuf::from("pgext-data"),
            http: SocketAddr::from(([127, 0, 0, 1], 7070)),
            origin: None,
            access: Access::Public,
            registration: Registration::Open,
            admin_keys: Vec::new(),
            sequencer: SequencerConfig::default(),
            limits: Limits::default(),
            uploads: UploadConfig::default(),
            witness_name: None,
            witness_algorithms: vec![WitnessAlgorithm::Ed25519],
            p2p: P2pConfig::default(),
            mirrors: Vec::new(),
            webhooks: Vec::new(),
            categories: None,
            counts: CountsConfig::default(),
            trusted_publishing: TrustedPublishingConfig::default(),
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
            p2p: P2pConfig {
                enabled: false,
                listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
                poll_ms: 200,
                request_timeout_ms: 5000,
                ..P2pConfig::default()
            },
            ..Config::default()
        }
    }

    /// Checks what serde cannot: mirror names, that no origin is mirrored twice, that a private
    /// registry does not let anyone register, and the allowed peer ids.
    ///
    /// # Errors
    /// A message naming the bad setting.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.access.is_private() && self.registration == Registration::Open {
            anyhow::bail!(
                "access = \"private\" with registration = \"open\": a private registry cannot let anyone register; use registration = \"invite\" or \"closed\""
            );
        }
        for p in &self.p2p.allow {
            if p.parse::<libp2p::PeerId>().is_err() {
                anyhow::bail!("[p2p] allow: {p:?} is not a libp2p peer id");
            }
        }
        for i in &self.trusted_publishing.issuers {
            pgext_spec::trusted::check_issuer(i)
                .map_err(|e| anyhow::anyhow!("[trusted_publishing] issuers: {e}"))?;
        }
        let secs = self.trusted_publishing.key_secs;
        if secs == 0 || secs > pgext_spec::trusted::MAX_KEY_SECS {
            anyhow::bail!(
                "[trusted_publishing] key_secs = {secs}: 1 to {}",
                pgext_spec::trusted::MAX_KEY_SECS
            );
        }
        if self.witness_algorithms.is_empty() {
            anyhow::bail!("witness_algorithms is empty: name \"ed25519\", \"ml-dsa-44\" or both");
        }
        let algorithms: std::collections::BTreeSet<_> = self.witness_algorithms.iter().collect();
        if algorithms.len() != self.witness_algorithms.len() {
            anyhow::bail!("witness_algorithms names an algorithm twice");
        }
        for k in &self.counts.nodes {
            let ok = k
                .parse::<pgext_log::VerifierKey>()
                .is_ok_and(|v| v.kind() == pgext_log::KeyType::Cosignature);
            if !ok {
                anyhow::bail!("[counts] nodes: {k:?} is not a cosigner key (C2SP vkey)");
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &self.mirrors {
            let ok = !m.name.is_empty()
                && m.name.len() <= 64
                && m.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                anyhow::bail!(
                    "mirror name {:?}: use 1-64 lowercase letters, digits and '-'",
                    m.name
                );
            }
            if !names.insert(m.name.clone()) {
                anyhow::bail!("mirror name {:?} is used twice", m.name);
            }
        }
        Ok(())
    }

    /// The cosigner name to use when the data folder has none yet.
    pub fn default_witness_name(&self) -> String {
        self.witness_name
            .clone()
            .unwrap_or_else(|| format!("{}/witness", self.http))
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
            (c.data, c.http, c.origin, c.registration, c.access),
            (d.data, d.http, d.origin, d.registration, d.access)
        );
        assert_eq!(
            (c.sequencer.batch_max, c.sequencer.batch_interval_ms),
            (d.sequencer.batch_max, d.sequencer.batch_interval_ms)
        );
        assert_eq!(c.limits, d.limits);
        assert_eq!((c.categories, c.counts), (d.categories, d.counts));
        assert_eq!(
            (c.p2p, c.witness_name, c.mirrors, c.webhooks),
            (d.p2p, d.witness_name, d.mirrors, d.webhooks)
        );
        // The commented [[webhook]] example parses as written.
        let hook = toml::from_str::<Config>(
            "[[webhook]]\nurl = \"https://hooks.example.org/pgext\"\nsecret = \"x\"\n",
        )
        .unwrap();
        assert_eq!(hook.webhooks[0].url, "https://hooks.example.org/pgext");
        assert!(toml::from_str::<Config>("unknown_key = 1").is_err());
    }

    #[test]
    fn the_private_registry_examples_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let a = Config::load(&dir.join("private-origin.toml")).unwrap();
        assert!(a.access.is_private() && a.registration == Registration::Invite);
        let b = Config::load(&dir.join("private-node-b.toml")).unwrap();
        assert!(
            b.mirrors
                .iter()
                .any(|m| m.name == "acme" && m.access.is_private())
        );
    }

    #[test]
    fn a_private_registry_cannot_be_open_and_allows_only_peer_ids() {
        let private = |extra: &str| {
            toml::from_str::<Config>(&format!("access = \"private\"\n{extra}")).unwrap()
        };
        let e = private("").validate().unwrap_err().to_string();
        assert!(e.contains("cannot let anyone register"), "{e}");
        private("registration = \"invite\"").validate().unwrap();
        private("registration = \"closed\"").validate().unwrap();
        let e = private("registration = \"closed\"\n[p2p]\nallow = [\"not-a-peer\"]")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a libp2p peer id"), "{e}");
        let m = toml::from_str::<Config>(
            "[[mirror]]\nname = \"acme\"\nvkey = \"k\"\naccess = \"private\"\n",
        )
        .unwrap();
        assert!(m.mirrors[0].access.is_private());
        assert!(toml::from_str::<Config>("access = \"secret\"").is_err());
    }
}
