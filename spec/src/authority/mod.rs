//! The registry's rules, replayed from the log. Authority comes from earlier entries only, so
//! the sequencer, every mirror, every client and every auditor reach the same verdict on every
//! entry. `spec/entries.md` states the rules in prose. The state and how entries change it are
//! here; the rules that judge an entry before it applies are in [`rules`].

mod advisories;
mod apply;
mod imports;
mod packages;
mod replay;
mod rules;
mod trusted;

pub use crate::names::{valid_term, valid_user_name};
pub use advisories::{AdvisoryState, Withdrawal};
pub use imports::{MAX_EVIDENCE_BYTES, parse_pgxn_date, pgxn_version};
pub use packages::PackageMapState;
pub use replay::{LogViolation, replay_log};
pub use trusted::{CiKeyState, PublisherState};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use imbl::{HashMap, OrdMap};

use base64::Engine as _;
use ed25519_dalek::VerifyingKey;
use semver::Version;

use crate::entry::{Action, Build, Entry, Release, decode_public_key, user_key_id};

/// Names no account, distribution or extension may take.
pub const RESERVED_NAMES: [&str; 4] = ["postgresql", "postgres", "pgsql", "psql"];

/// Which rule an entry broke. The names are stable: audit reports print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The actor has no account.
    UnknownActor,
    /// The signing key is not a key of the actor, or was retired or revoked.
    KeyNotActive,
    /// The signature does not verify.
    BadSignature,
    /// A name that is malformed.
    InvalidName,
    /// A reserved name.
    ReservedName,
    /// An account name that is taken.
    AccountExists,
    /// A key that some account already registered.
    KeyReused,
    /// The actor does not own the distribution.
    NotOwner,
    /// The actor does not own an extension the release provides.
    ExtensionOwned,
    /// The version is not SemVer.
    InvalidVersion,
    /// `dist@version` exists.
    DuplicateVersion,
    /// The version is lower than an existing one it must follow.
    VersionOrder,
    /// The named account does not exist.
    UnknownUser,
    /// The named release does not exist.
    UnknownRelease,
    /// Nothing to change (already owner, already yanked, not yanked, …).
    NoChange,
    /// The change would leave a distribution without owners or an account without keys.
    WouldOrphan,
    /// A free-text field (an account's name, email or home page, a yank reason) is too long or
    /// holds control characters.
    InvalidText,
    /// A build names a release by an index or entry hash that is not that release's.
    ReleaseMismatch,
    /// A build of a yanked release.
    ReleaseYanked,
    /// A build's target is malformed, or its package larger than a log attests.
    InvalidTarget,
    /// The builder attested this release for this target already, with a key still active.
    DuplicateBuild,
    /// The release has as many attestations as a release may have.
    TooManyBuilds,
    /// An import or a claim not by the registry's operator, or an operator statement that is
    /// neither.
    NotOperator,
    /// An import dated before a release of its distribution imported earlier.
    ImportOrder,
    /// A PGXN user name claimed already.
    AlreadyClaimed,
    /// A role the registry does not have.
    UnknownRole,
    /// A mapping by an account that does not maintain the mapping.
    NotMaintainer,
    /// A mapping's purl or package names are malformed.
    InvalidPackage,
    /// An advisory that breaks the advisory format or its bounds, or an update of a withdrawn
    /// one.
    InvalidAdvisory,
    /// A trusted publisher or CI key outside its bounds (malformed fields, too many
    /// publishers, a key that lives too long).
    InvalidPublisher,
    /// A CI key for claims no trusted publisher of the dist matches.
    NotTrusted,
}

impl Rule {
    /// Stable name of the rule.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::UnknownActor => "unknown-actor",
            Rule::KeyNotActive => "key-not-active",
            Rule::BadSignature => "bad-signature",
            Rule::InvalidName => "invalid-name",
            Rule::ReservedName => "reserved-name",
            Rule::AccountExists => "account-exists",
            Rule::KeyReused => "key-reused",
            Rule::NotOwner => "not-owner",
            Rule::ExtensionOwned => "extension-owned",
            Rule::InvalidVersion => "invalid-version",
            Rule::DuplicateVersion => "duplicate-version",
            Rule::VersionOrder => "version-order",
            Rule::UnknownUser => "unknown-user",
            Rule::UnknownRelease => "unknown-release",
            Rule::NoChange => "no-change",
            Rule::WouldOrphan => "would-orphan",
            Rule::InvalidText => "invalid-text",
            Rule::ReleaseMismatch => "release-mismatch",
            Rule::ReleaseYanked => "release-yanked",
            Rule::InvalidTarget => "invalid-target",
            Rule::DuplicateBuild => "duplicate-build",
            Rule::TooManyBuilds => "too-many-builds",
            Rule::NotOperator => "not-operator",
            Rule::ImportOrder => "import-order",
            Rule::AlreadyClaimed => "already-claimed",
            Rule::UnknownRole => "unknown-role",
            Rule::NotMaintainer => "not-maintainer",
            Rule::InvalidPackage => "invalid-package",
            Rule::InvalidAdvisory => "invalid-advisory",
            Rule::InvalidPublisher => "invalid-publisher",
            Rule::NotTrusted => "not-trusted",
        }
    }
}

/// An entry that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} ({})", rule.as_str())]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// What happened, for people.
    pub detail: String,
}

fn violation(rule: Rule, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

/// A key of an account.
#[derive(Debug, Clone)]
pub struct KeyState {
    /// The public key.
    pub key: VerifyingKey,
    /// Still usable.
    pub active: bool,
    /// Log index of the entry that added it.
    pub added: u64,
}

/// An account.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// Account name.
    pub user: String,
    /// Full name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Home page.
    pub uri: Option<String>,
    /// Keys by key id.
    pub keys: BTreeMap<String, KeyState>,
    /// Log index of the account entry.
    pub index: u64,
    /// Log indexes of every entry that changed the account's keys, the account entry first.
    pub history: Vec<u64>,
}

/// A release as the log knows it.
#[derive(Debug, Clone)]
pub struct ReleaseState {
    /// The release fields.
    pub release: Release,
    /// Publisher.
    pub user: String,
    /// Statement time.
    pub time: u64,
    /// Log index.
    pub index: u64,
    /// Yank reason, when yanked.
    pub yanked: Option<String>,
    /// RFC 6962 leaf hash of the release entry, which builds name.
    pub leaf: [u8; 32],
    /// Builds attested, in log order.
    pub builds: Vec<BuildState>,
    /// Imported from PGXN: `user` is then the PGXN user who released it and `time` PGXN's
    /// release date.
    pub imported: bool,
    /// Published from CI by trusted publishing: the id of the CI key that signed it
    /// ([`Registry::ci_key`] gives its claims and its `ci_key` entry).
    pub ci: Option<String>,
}

impl ReleaseState {
    /// Every blob the release names, with what it is: the release zip, its META.json, and each
    /// build's binary package.
    pub fn blobs(&self) -> impl Iterator<Item = (&str, &'static str)> {
        [
            (self.release.sha256.as_str(), "archive"),
            (self.release.meta_sha256.as_str(), "META"),
        ]
        .into_iter()
        .chain(
            self.builds
                .iter()
                .map(|b| (b.build.sha256.as_str(), "binary")),
        )
    }
}

/// A build attestation as the log knows it.
#[derive(Debug, Clone)]
pub struct BuildState {
    /// The attestation.
    pub build: Build,
    /// The builder's account.
    pub user: String,
    /// The key that signed it.
    pub key_id: String,
    /// Statement time.
    pub time: u64,
    /// Log index.
    pub index: u64,
}

/// A distribution.
#[derive(Debug, Clone)]
pub struct DistState {
    /// Name as first published.
    pub name: String,
    /// Owners (account names).
    pub owners: BTreeSet<String>,
    /// Releases by lowercase version.
    pub releases: BTreeMap<String, ReleaseState>,
    /// Log indexes of every entry about the distribution: releases, owner changes, yanks.
    pub history: Vec<u64>,
    /// For a distribution imported from PGXN: the PGXN user it belongs to (owners are empty
    /// until a claim binds that user to an account).
    pub pgxn_user: Option<String>,
}

/// The state the log's entries build, entry by entry.
///
/// Its maps are persistent (`imbl`): a clone costs a few reference counts, and changing a
/// clone copies only the paths it touches. A node publishes the state as an immutable snapshot
/// and applies the next round of entries to a clone, so readers never wait on a round.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    // Values behind `Arc`: copying a path of a shared map copies pointers, and a change clones
    // only the one account or distribution it touches.
    accounts: OrdMap<String, Arc<AccountState>>,
    key_owner: HashMap<String, String>,
    dists: OrdMap<String, Arc<DistState>>,
    extensions: OrdMap<String, String>,
    /// PGXN user names claimed, to the account that claimed each.
    claims: OrdMap<String, String>,
    /// Registry roles, to the accounts holding each.
    roles: OrdMap<String, BTreeSet<String>>,
    /// The name mapping, by purl key.
    packages: OrdMap<String, Arc<packages::PackageMapState>>,
    /// Advisories, by lowercase id.
    advisories: OrdMap<String, Arc<advisories::AdvisoryState>>,
    /// Trusted publishers, by lowercase dist.
    publishers: OrdMap<String, Arc<Vec<trusted::PublisherState>>>,
    /// CI keys, by key id.
    ci_keys: HashMap<String, Arc<trusted::CiKeyState>>,
    /// The registry operator's key (the log's key), which alone signs imports and claims.
    operator: Option<VerifyingKey>,
    size: u64,
}

/// Most build attestations one release may have: every builder and target a registry serves,
/// with room to spare, and a bound on what one account can make every mirror store.
pub const MAX_BUILDS_PER_RELEASE: usize = 256;

/// Longest free-text field of an entry, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// A free-text field: at most [`MAX_TEXT_BYTES`], no control characters (text is shown on
/// terminals and pages, where control characters could pass for something else).
fn check_text(field: &str, value: Option<&String>) -> Result<(), Violation> {
    let Some(v) = value else { return Ok(()) };
    if v.len() > MAX_TEXT_BYTES {
        return Err(violation(
            Rule::InvalidText,
            format!("{field} is {} bytes; at most {MAX_TEXT_BYTES}", v.len()),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(violation(
            Rule::InvalidText,
            format!("{field} holds control characters"),
        ));
    }
    Ok(())
}

fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.contains(&name.to_ascii_lowercase().as_str())
}

/// Parses a release version: SemVer 2, compared case-insensitively as PGXN does.
///
/// # Errors
/// [`Rule::InvalidVersion`].
pub fn parse_version(v: &str) -> Result<Version, Violation> {
    Version::parse(&v.to_ascii_lowercase()).map_err(|e| {
        violation(
            Rule::InvalidVersion,
            format!("version {v:?} is not SemVer: {e}"),
        )
    })
}

/// PGXN's ordering rule: a new version must exceed every existing version with the same
/// major.minor; with none, every version with the same major; with none, every version.
fn check_order(new: &Version, existing: &[Version]) -> Result<(), Violation> {
    let same_minor: Vec<&Version> = existing
        .iter()
        .filter(|v| v.major == new.major && v.minor == new.minor)
        .collect();
    let same_major: Vec<&Version> = existing.iter().filter(|v| v.major == new.major).collect();
    let scope: Vec<&Version> = if !same_minor.is_empty() {
        same_minor
    } else if !same_major.is_empty() {
        same_major
    } else {
        existing.iter().collect()
    };
    if let Some(max) = scope.into_iter().max_by(|a, b| a.cmp_precedence(b)) {
        if new.cmp_precedence(max) != std::cmp::Ordering::Greater {
            return Err(violation(
                Rule::VersionOrder,
                format!("version {new} must be greater than {max}"),
            ));
        }
    }
    Ok(())
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// An empty registry of the log whose key is `operator`: that key (the log key) alone
    /// signs imports and claims. A registry without one refuses every operator statement.
    pub fn with_operator(operator: VerifyingKey) -> Registry {
        Registry {
            operator: Some(operator),
            ..Registry::default()
        }
    }

    /// An empty registry of the log whose checkpoints `log_key` signs: its operator is the
    /// holder of that key ([`Registry::with_operator`]).
    pub fn for_log(log_key: &pgext_log::VerifierKey) -> Registry {
        match (log_key.kind(), log_key.ed25519()) {
            (pgext_log::KeyType::Ed25519, Some(k)) => Registry::with_operator(*k),
            _ => Registry::default(),
        }
    }

    /// The operator's key, when known.
    pub fn operator(&self) -> Option<&VerifyingKey> {
        self.operator.as_ref()
    }

    /// The account that claimed a PGXN user name.
    pub fn claim(&self, pgxn_user: &str) -> Option<&str> {
        self.claims
            .get(&pgxn_user.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Number of entries applied.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// An account by name (case-insensitive).
    pub fn account(&self, user: &str) -> Option<&AccountState> {
        self.accounts.get(&user.to_ascii_lowercase()).map(|a| &**a)
    }

    /// All accounts, by name.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.accounts.values().map(|a| &**a)
    }

    /// A distribution by name (case-insensitive).
    pub fn dist(&self, name: &str) -> Option<&DistState> {
        self.dists.get(&name.to_ascii_lowercase()).map(|d| &**d)
    }

    /// All distributions, by lowercase name.
    pub fn dists(&self) -> impl Iterator<Item = &DistState> {
        self.dists.values().map(|d| &**d)
    }

    /// The distribution that owns an extension name.
    pub fn extension_dist(&self, ext: &str) -> Option<&DistState> {
        self.extensions
            .get(&ext.to_ascii_lowercase())
            .and_then(|d| self.dists.get(d))
            .map(|d| &**d)
    }

    /// Checks `entry` against the rules and, if it passes, applies it as log index `index`.
    /// A refused entry changes nothing.
    ///
    /// # Errors
    /// The [`Violation`].
    pub fn apply(&mut self, index: u64, entry: &Entry) -> Result<(), Violation> {
        self.check(entry)?;
        self.mutate_with(index, entry);
        Ok(())
    }

    /// [`Registry::apply`] but for the signature: returns the key it must verify with, for the
    /// caller to check many at once ([`crate::signed::verify_signatures`]). Until it has, the
    /// state is not trustworthy; a caller whose signatures fail drops it.
    ///
    /// # Errors
    /// The [`Violation`] of any rule other than the signature.
    pub fn apply_unsigned(&mut self, index: u64, entry: &Entry) -> Result<VerifyingKey, Violation> {
        let key = self.check_unsigned(entry)?;
        self.mutate_with(index, entry);
        Ok(key)
    }

    /// Applies an entry known to be in a verified log without checking it: for a client that
    /// rebuilds just the part of the state it needs (an account's keys, a distribution's
    /// owners) from those entries, each proven included, and then asks
    /// [`Registry::check_publisher`].
    pub fn apply_logged(&mut self, index: u64, entry: &Entry) {
        self.mutate_with(index, entry);
    }

    /// Whether `entry`'s signer may make it, judged by keys and ownership only: an active key of
    /// its actor signed it, and for a release of a distribution that exists, the actor owns it.
    /// (The other rules need the whole log; mirrors check them before they cosign.)
    ///
    /// # Errors
    /// The [`Violation`].
    pub fn check_publisher(&self, entry: &Entry) -> Result<(), Violation> {
        let key = self.signer(entry)?;
        entry
            .verify_signature(&key)
            .map_err(|e| violation(Rule::BadSignature, e.to_string()))?;
        if let Action::Release(r) = &entry.statement.action {
            if self.dist(&r.dist).is_some() {
                self.owned_dist(&entry.statement.actor.to_ascii_lowercase(), &r.dist)?;
            }
        }
        Ok(())
    }

    fn mutate_with(&mut self, index: u64, entry: &Entry) {
        let st = &entry.statement;
        // Builds name a release by its entry's leaf hash; only releases pay for computing it.
        let leaf = match &st.action {
            Action::Release(_) | Action::Import(_) => pgext_log::leaf_hash(&entry.to_bytes()).0,
            _ => [0; 32],
        };
        self.mutate(
            index,
            &st.actor.to_ascii_lowercase(),
            st.time,
            &st.key_id,
            &st.action,
            leaf,
        );
        self.size = self.size.max(index + 1);
    }
}

/// Base64 of a public key, as account entries carry it.
pub fn encode_public_key(key: &VerifyingKey) -> String {
    base64::engine::general_purpose::STANDARD.encode(key.as_bytes())
}
