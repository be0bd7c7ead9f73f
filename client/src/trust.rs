//! What a user trusts (`config.toml`: registries with their log and witness keys) and what the
//! client remembers between runs (the newest verified checkpoint per origin, in the XDG state
//! folder). `spec/client.md` describes both files.

use std::path::{Path, PathBuf};

use pgext_log::{Policy, VerifierKey};
use serde::{Deserialize, Serialize};

use crate::Error;

/// One registry: where to reach it and which keys make its answers believable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryConfig {
    /// Local name (`--registry NAME`).
    pub name: String,
    /// Node URLs, tried in order (failover).
    pub urls: Vec<String>,
    /// The log's verifier key (C2SP note key; its name is the origin).
    pub vkey: String,
    /// Witness (cosigner) verifier keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<String>,
    /// How many of `witnesses` must have cosigned a checkpoint.
    #[serde(default)]
    pub quorum: usize,
    /// A C2SP tlog-policy file: its witnesses and quorum replace `witnesses` and `quorum`, and
    /// one of its logs must be `vkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PathBuf>,
    /// Name patterns this registry owns (`acme_*`): such names are looked up here and nowhere
    /// else (`spec/access.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A read token for a private registry, when there is no signing key of a member
    /// (`pgext token create` makes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Builder accounts whose attestations of binary packages are believed (`spec/binary.md`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<String>,
    /// How many of `builders` must attest the same package before it is installed (at least 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub builder_quorum: usize,
}

fn one() -> usize {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(n: &usize) -> bool {
    *n == 1
}

impl RegistryConfig {
    /// The parsed log key.
    ///
    /// # Errors
    /// When it is not a verifier key.
    pub fn log_key(&self) -> Result<VerifierKey, Error> {
        self.vkey
            .parse()
            .map_err(|e| Error::Config(format!("registry {}: vkey: {e}", self.name)))
    }

    /// The tlog-policy file, parsed, when one is configured.
    ///
    /// # Errors
    /// When it cannot be read or parsed, or does not list the registry's log key.
    pub fn policy(&self) -> Result<Option<Policy>, Error> {
        let Some(path) = &self.policy else {
            return Ok(None);
        };
        let bad = |e: String| {
            Error::Config(format!(
                "registry {}: policy {}: {e}",
                self.name,
                path.display()
            ))
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let policy = Policy::parse(&text).map_err(|e| bad(e.to_string()))?;
        if !self.vkey.is_empty() {
            let key = self.log_key()?;
            if !policy.logs.iter().any(|(k, _)| *k == key) {
                return Err(bad(format!("it does not list the log key {}", self.vkey)));
            }
        }
        Ok(Some(policy))
    }

    /// The witness keys whose cosignatures count: the policy's, else `witnesses`.
    ///
    /// # Errors
    /// When one is not a verifier key, or the policy is unusable.
    pub fn witness_keys(&self) -> Result<Vec<VerifierKey>, Error> {
        if let Some(p) = self.policy()? {
            return Ok(p.witness_keys());
        }
        self.witnesses
            .iter()
            .map(|w| {
                w.parse()
                    .map_err(|e| Error::Config(format!("registry {}: witness {w}: {e}", self.name)))
            })
            .collect()
    }
}

/// The trust configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Registries, the first being the default.
    #[serde(default, rename = "registry")]
    pub registries: Vec<RegistryConfig>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from)
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map_or_else(|| home().join(fallback), PathBuf::from)
        .join("pgext")
}

impl Config {
    /// `PGEXT_CONFIG`, else `$XDG_CONFIG_HOME/pgext/config.toml` (`~/.config/…`).
    pub fn default_path() -> PathBuf {
        std::env::var_os("PGEXT_CONFIG").map_or_else(
            || xdg("XDG_CONFIG_HOME", ".config").join("config.toml"),
            PathBuf::from,
        )
    }

    /// Reads the file; a missing file is an empty configuration.
    ///
    /// # Errors
    /// When it cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Config, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file (creating its folder).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        write_atomically(path, text.as_bytes())
    }

    /// A registry by name, or the first when `name` is `None` (see [`Config::route`] for
    /// names owned by a registry).
    ///
    /// # Errors
    /// When there is no such registry.
    pub fn registry(&self, name: Option<&str>) -> Result<&RegistryConfig, Error> {
        match name {
            Some(n) => self.registries.iter().find(|r| r.name == n).ok_or_else(|| {
                Error::Config(format!(
                    "no registry named {n}; add one with `pgext registry add {n} URL`"
                ))
            }),
            None => self.registries.first().ok_or_else(|| {
                Error::Config(
                    "no registry configured; add one with `pgext registry add NAME URL`".into(),
                )
            }),
        }
    }
}

/// Whether `name` matches a glob `pattern`: `*` any run of characters, `?` one; both lowercase.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        name.to_lowercase().chars().collect(),
    );
    // Iterative matching with one backtrack point for the last `*`: linear in practice, and
    // never exponential.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

impl RegistryConfig {
    /// Whether this registry owns `name` (one of its `names` patterns matches it).
    pub fn owns(&self, name: &str) -> bool {
        self.names.iter().any(|p| glob_match(p, name))
    }
}

impl Config {
    /// The registry that owns `name` by its patterns, if any.
    pub fn owner(&self, name: &str) -> Option<&RegistryConfig> {
        self.registries.iter().find(|r| r.owns(name))
    }

    /// The registry asked when no name decides: the first without `names`, else the first.
    ///
    /// # Errors
    /// When no registry is configured.
    pub fn default_registry(&self) -> Result<&RegistryConfig, Error> {
        self.registries
            .iter()
            .find(|r| r.names.is_empty())
            .map_or_else(|| self.registry(None), Ok)
    }

    /// Where to look `name` up (`spec/access.md`): the registry owning it by its patterns
    /// (`asked`, from `--registry`, must then be that one), else `asked`, else the default.
    ///
    /// # Errors
    /// When `asked` is another registry than the owner, or names none configured.
    pub fn route(&self, name: &str, asked: Option<&str>) -> Result<&RegistryConfig, Error> {
        if let Some(owner) = self.owner(name) {
            if let Some(a) = asked.filter(|a| *a != owner.name) {
                return Err(Error::Config(format!(
                    "{name} belongs to registry {} (names = {:?}); it is not asked of {a}",
                    owner.name, owner.names
                )));
            }
            return Ok(owner);
        }
        match asked {
            Some(a) => self.registry(Some(a)),
            None => self.default_registry(),
        }
    }
}

/// Writes a small state file whole or not at all, and durably.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write as _;
    let io = |e: std::io::Error| Error::Config(format!("{}: {e}", path.display()));
    // A bare file name (`pgext.lock`) is in the current folder.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".pgext-tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    // Durable before it replaces the old file, and the rename durable before returning: a
    // remembered checkpoint (rollback protection), a pin or an install record survives a crash
    // whole, old or new.
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// What the client remembers: `PGEXT_STATE_DIR`, else `$XDG_STATE_HOME/pgext`
/// (`~/.local/state/pgext`).
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
}

impl State {
    /// The state folder from the environment.
    pub fn from_env() -> State {
        State::at(
            &std::env::var_os("PGEXT_STATE_DIR")
                .map_or_else(|| xdg("XDG_STATE_HOME", ".local/state"), PathBuf::from),
        )
    }

    /// A state folder at `dir`.
    pub fn at(dir: &Path) -> State {
        State {
            dir: dir.to_path_buf(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn checkpoint_path(&self, origin: &str) -> PathBuf {
        let h = pgext_log::sha256(origin.as_bytes());
        self.dir.join("checkpoints").join(pgext_log::hex(&h[..16]))
    }

    /// The newest checkpoint verified for `origin`, as a signed note.
    pub fn checkpoint(&self, origin: &str) -> Option<String> {
        std::fs::read_to_string(self.checkpoint_path(origin)).ok()
    }

    /// Remembers a verified checkpoint note of `origin`.
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn remember(&self, origin: &str, note: &str) -> Result<(), Error> {
        write_atomically(&self.checkpoint_path(origin), note.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_shells_do() {
        for (p, n, want) in [
            ("acme_*", "acme_widgets", true),
            ("acme_*", "ACME_Widgets", true),
            ("acme_*", "acme", false),
            ("internal-*", "internal-", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*x*y*", "axbyc", true),
            ("*x*y*", "ayxb", false),
            ("semver", "semver", true),
            ("semver", "semver2", false),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} {n}");
        }
        // No exponential blow-up on a hostile pattern.
        let long = "a".repeat(2000);
        assert!(!glob_match("*a*a*a*a*a*a*a*a*b", &long));
    }

    #[test]
    fn the_deploy_example_of_a_member_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/private-client.toml");
        let c: Config = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(c.owner("acme_widget").unwrap().name, "acme");
        assert_eq!(c.default_registry().unwrap().name, "public");
    }

    #[test]
    fn owned_names_go_only_to_their_owner() {
        let reg = |name: &str, names: &[&str]| RegistryConfig {
            name: name.into(),
            names: names.iter().map(|s| (*s).to_string()).collect(),
            ..RegistryConfig::default()
        };
        let c = Config {
            registries: vec![reg("acme", &["acme_*"]), reg("public", &[])],
        };
        assert_eq!(c.route("acme_db", None).unwrap().name, "acme");
        assert_eq!(c.route("acme_db", Some("acme")).unwrap().name, "acme");
        let e = c.route("acme_db", Some("public")).unwrap_err().to_string();
        assert!(e.contains("belongs to registry acme"), "{e}");
        // Other names: the first registry without patterns, or the one asked.
        assert_eq!(c.route("semver", None).unwrap().name, "public");
        assert_eq!(c.route("semver", Some("acme")).unwrap().name, "acme");
        assert!(c.route("semver", Some("nope")).is_err());
    }
}
