//! The shapes of the node's HTTP answers that node and client share (`spec/openapi.json`):
//! the node serializes these types, the client deserializes the same ones, so the contract is
//! checked by the compiler on both sides.

use serde::{Deserialize, Serialize};

/// What a node answers (`201 Created`) once a submitted entry is durable in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Log index of the entry.
    pub index: u64,
    /// The signed checkpoint that includes it.
    pub checkpoint: String,
    /// A C2SP tlog-proof file for the entry, with the entry in its `extra` line
    /// (`spec/log.md`).
    pub proof: String,
}

/// One error of the one JSON error shape: `{"errors":[{"code":…,"detail":…}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// One or more errors; the first is the one that decided the status.
    pub errors: Vec<ErrorItem>,
}

impl ErrorBody {
    /// A body with one error.
    pub fn one(code: impl Into<String>, detail: impl Into<String>) -> ErrorBody {
        ErrorBody {
            errors: vec![ErrorItem {
                code: code.into(),
                detail: detail.into(),
            }],
        }
    }
}

/// Whose fault a refused request is, and so which HTTP status it gets. Carried as it is on the
/// peer wire, so a forwarded submission's refusal reaches its author unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// The request does not parse (400).
    BadRequest,
    /// The signer is unknown or its key is not active (401).
    Unauthorized,
    /// The signer may not do this (403).
    Forbidden,
    /// Nothing of that name here (404).
    NotFound,
    /// It exists already (409).
    Conflict,
    /// Larger than this node takes (413).
    TooLarge,
    /// Well-formed, but its content is refused (422).
    Invalid,
    /// This node does not sequence the origin (421).
    NotSequencer,
    /// Not now: halted, shutting down, or no sequencer reachable (503).
    Unavailable,
}

impl Refusal {
    /// The HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Unauthorized => 401,
            Refusal::Forbidden => 403,
            Refusal::NotFound => 404,
            Refusal::Conflict => 409,
            Refusal::TooLarge => 413,
            Refusal::Invalid => 422,
            Refusal::NotSequencer => 421,
            Refusal::Unavailable => 503,
        }
    }
}

/// Whether a node sequences an origin or mirrors it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node sequences the origin.
    Sequencer,
    /// This node mirrors it.
    Mirror,
}

/// `GET /api/v1/log`: one origin's log as this node serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    /// The origin line of the log's checkpoints.
    pub origin: String,
    /// The log's verifier key.
    pub vkey: String,
    /// Tree size.
    pub size: u64,
    /// The signed checkpoint, with the cosignatures collected (empty before a mirror verified
    /// anything).
    pub checkpoint: String,
    /// URL prefix of the tlog-tiles layout.
    pub tiles: String,
    /// Sequencer or mirror.
    pub role: Role,
    /// Why the origin no longer advances here, if it does not.
    pub halted: Option<String>,
}

/// `GET /api/v1/entries/{index}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDoc {
    /// Log index.
    pub index: u64,
    /// RFC 6962 leaf hash of the entry's bytes, base64.
    pub leaf_hash: String,
    /// The entry.
    pub entry: crate::entry::Entry,
}

/// `GET /api/v1/proofs/inclusion/{index}/{size}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Leaf index.
    pub index: u64,
    /// Tree size.
    pub size: u64,
    /// Hashes, base64, from the leaf's sibling up.
    pub proof: Vec<String>,
}

/// `GET /api/v1/proofs/consistency/{from}/{to}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Older size.
    pub from: u64,
    /// Newer size.
    pub to: u64,
    /// Hashes, base64.
    pub proof: Vec<String>,
}

/// One release of `GET /api/v1/dists/{dist}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistRelease {
    /// Version.
    pub version: String,
    /// Release status.
    pub status: crate::entry::Status,
    /// SHA-256 of the release zip, hex.
    pub sha256: String,
    /// SHA-1 of the release zip, hex.
    pub sha1: String,
    /// Size of the release zip.
    pub size: u64,
    /// SHA-256 of META.json, hex.
    pub meta_sha256: String,
    /// Extensions provided, with their versions.
    pub provides: std::collections::BTreeMap<String, String>,
    /// Publisher.
    pub user: String,
    /// When, as PGXN writes dates.
    pub date: String,
    /// Log index of the release entry.
    pub index: u64,
    /// Whether it is yanked.
    pub yanked: bool,
    /// Why, when yanked.
    pub yank_reason: Option<String>,
    /// Imported from PGXN (`user` is then the PGXN user, `date` PGXN's date, and the zip is
    /// PGXN's, byte for byte).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
    /// Downloads counted by every node whose statements this node takes (`spec/counts.md`).
    #[serde(default)]
    pub downloads: u64,
}

/// `GET /api/v1/dists/{dist}/{version}/requirements`: what the release needs, read from its
/// META in full (`spec/requirements.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequirements {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// SHA-256 of the META it was read from (the release entry's `meta_sha256`).
    pub meta_sha256: String,
    /// The META's spec major version (1 is read as converted to 2).
    pub meta_spec: u8,
    /// What it needs.
    #[serde(flatten)]
    pub requirements: crate::requirements::Requirements,
}

/// `GET /api/v1/packages/{purl}`: which OS packages stand for a purl, as the log's
/// `package_map` entries say (`spec/requirements.md`, System packages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMapDoc {
    /// The purl, as first mapped.
    pub purl: String,
    /// Packages by system (`debian`, `ubuntu`, `rhel`, `alpine`, `homebrew`).
    pub systems: crate::packages::Systems,
    /// The account (or `@operator`) whose entry is in force.
    pub user: String,
    /// Log index of that entry.
    pub index: u64,
    /// Log indexes of every entry about the purl.
    pub history: Vec<u64>,
}

/// `GET /api/v1/packages`: every mapping in force, and who maintains the mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMaps {
    /// Accounts holding the `packages` role.
    pub maintainers: Vec<String>,
    /// The mappings, by purl.
    pub packages: Vec<PackageMapDoc>,
}

/// `GET /api/v1/dists/{dist}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dist {
    /// Name as first published.
    pub name: String,
    /// Owners.
    pub owners: Vec<String>,
    /// Every release, yanked ones too.
    pub releases: Vec<DistRelease>,
    /// Log indexes of every entry about the distribution.
    pub history: Vec<u64>,
    /// For a distribution imported from PGXN, the PGXN user it belongs to (its owners are
    /// the account that claimed that name, or nobody yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgxn_user: Option<String>,
}

/// One attestation of `GET /api/v1/dists/{dist}/{version}/builds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildDoc {
    /// The builder's account.
    pub builder: String,
    /// The key that signed the attestation.
    pub key_id: String,
    /// Log index of the attestation.
    pub index: u64,
    /// When, as PGXN writes dates.
    pub date: String,
    /// What it was built for.
    pub target: crate::binary::Target,
    /// SHA-256 of the binary package, hex.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// SHA-256 of the build log, hex.
    pub log_sha256: String,
    /// What `make installcheck` said.
    pub installcheck: crate::entry::Installcheck,
    /// The package's file name (`spec/binary.md`).
    pub file: String,
    /// Where this node serves it, relative to the origin's base URL.
    pub url: String,
}

/// The builds of one target that produced the same package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// SHA-256 of the package, hex.
    pub sha256: String,
    /// The builders that attested these bytes.
    pub builders: Vec<String>,
    /// Whether every one of them saw `make installcheck` pass (or find no tests).
    pub tests_pass: bool,
}

/// One row of a release's build matrix: a target (toolchain aside) and the packages built for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The target, as the first attestation for it names it.
    pub target: crate::binary::Target,
    /// Packages by how many builders attested them, most first; more than one means the
    /// builders disagree.
    pub packages: Vec<Agreement>,
}

/// `GET /api/v1/dists/{dist}/{version}/builds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builds {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Log index of the release.
    pub release_index: u64,
    /// Every attestation, in log order.
    pub builds: Vec<BuildDoc>,
    /// The same grouped by target.
    pub matrix: Vec<MatrixRow>,
}

/// Groups attestations by target, toolchain aside, and each target's by the package they
/// attest: what the matrix on a release's page shows.
pub fn matrix(builds: &[BuildDoc]) -> Vec<MatrixRow> {
    let mut rows: Vec<MatrixRow> = Vec::new();
    for b in builds {
        let same = |t: &crate::binary::Target| t.same_as(&b.target);
        let pass = b.installcheck != crate::entry::Installcheck::Failed;
        let row = match rows.iter_mut().position(|r| same(&r.target)) {
            Some(i) => &mut rows[i],
            None => {
                rows.push(MatrixRow {
                    target: b.target.clone(),
                    packages: Vec::new(),
                });
                rows.last_mut().expect("just pushed")
            }
        };
        match row.packages.iter_mut().find(|p| p.sha256 == b.sha256) {
            Some(p) => {
                if !p.builders.contains(&b.builder) {
                    p.builders.push(b.builder.clone());
                }
                p.tests_pass &= pass;
            }
            None => row.packages.push(Agreement {
                sha256: b.sha256.clone(),
                builders: vec![b.builder.clone()],
                tests_pass: pass,
            }),
        }
    }
    for r in &mut rows {
        r.packages
            .sort_by_key(|p| std::cmp::Reverse(p.builders.len()));
    }
    rows.sort_by(|a, b| {
        (
            a.target.pg,
            &a.target.os,
            &a.target.os_version,
            &a.target.arch,
        )
            .cmp(&(
                b.target.pg,
                &b.target.os,
                &b.target.os_version,
                &b.target.arch,
            ))
    });
    rows
}

/// One document of `GET /api/v1/dists/{dist}/{version}/docs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocInfo {
    /// Path without extension, as PGXN names documents.
    pub docpath: String,
    /// The member's path in the release.
    pub file: String,
    /// Title.
    pub title: String,
    /// The extension it documents, if any.
    pub extension: Option<String>,
}

/// `GET /api/v1/dists/{dist}/{version}/docs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Docs {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// Top-level files PGXN calls special.
    pub special_files: Vec<String>,
    /// Documents, README first.
    pub docs: Vec<DocInfo>,
}

/// One key of `GET /api/v1/accounts/{user}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountKey {
    /// Key id.
    pub key_id: String,
    /// Base64 Ed25519 public key.
    pub key: String,
    /// Still usable.
    pub active: bool,
    /// Log index of the entry that added it.
    pub index: u64,
}

/// `GET /api/v1/accounts/{user}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Account name.
    pub user: String,
    /// Full name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Home page.
    pub uri: Option<String>,
    /// Log index of the account entry.
    pub index: u64,
    /// Keys.
    pub keys: Vec<AccountKey>,
    /// Distributions owned.
    pub owns: Vec<String>,
    /// Log indexes of every entry that changed the account's keys.
    pub history: Vec<u64>,
}

/// One origin of `GET /api/v1/origins`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginInfo {
    /// The origin line.
    pub origin: String,
    /// Its verifier key.
    pub vkey: String,
    /// Sequencer or mirror.
    pub role: Role,
    /// Where this node serves it (`/` or `/origins/NAME/`).
    pub prefix: String,
    /// Tree size verified here.
    pub size: u64,
    /// The checkpoint served, once one is verified.
    pub checkpoint: Option<String>,
    /// Why it no longer advances here, if it does not.
    pub halted: Option<String>,
}

/// A peer's standing, as this node scores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerScore {
    /// libp2p peer id.
    pub peer_id: String,
    /// Below zero after faults; -100 or lower once it served bytes that did not verify.
    pub score: i64,
}

/// `GET /api/v1/origins`: every origin the node serves, and the node's own facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origins {
    /// Its own origin first, then mirrors.
    pub origins: Vec<OriginInfo>,
    /// libp2p peer id, when in a federation.
    pub peer_id: Option<String>,
    /// libp2p addresses.
    pub p2p_addrs: Option<Vec<String>>,
    /// The cosigner key it cosigns mirrored checkpoints with (Ed25519).
    pub witness: Option<String>,
    /// Every key it cosigns mirrored checkpoints with, one per algorithm it is configured
    /// for (`witness_algorithms`): Ed25519 (type 0x04) and ML-DSA-44 (type 0x06) vkeys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cosigners: Vec<String>,
    /// Peer scores.
    pub peer_scores: Vec<PeerScore>,
}

/// Two signed checkpoints of one origin that do not fit one tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Origin.
    pub origin: String,
    /// What is inconsistent.
    pub reason: String,
    /// Both signed notes, verbatim.
    pub notes: [String; 2],
    /// When the node found it (seconds since the epoch).
    pub detected: u64,
}

/// An origin whose stored evidence cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreadable {
    /// Origin.
    pub origin: String,
    /// Why.
    pub error: String,
}

/// `GET /api/v1/evidence`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceList {
    /// Evidence of every origin served.
    pub evidence: Vec<Evidence>,
    /// Origins whose stored evidence cannot be read (they are halted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<Unreadable>,
}

/// `GET /api/v1/search`: one page of hits. Hits keep PGXN's shapes (`spec/search.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The query.
    pub query: String,
    /// What was searched.
    #[serde(rename = "in")]
    pub within: String,
    /// Hits skipped.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
    /// Matches in all.
    pub count: usize,
    /// This page's hits.
    pub hits: Vec<serde_json::Value>,
}

/// One category of `GET /api/v1/categories`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Its name in the META spec.
    pub category: String,
    /// Its name in URLs.
    pub slug: String,
    /// Distributions in it.
    pub dists: usize,
}

/// A distribution of `GET /api/v1/categories/{category}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryDist {
    /// Name.
    pub dist: String,
    /// Its headline version.
    pub version: String,
    /// Its abstract.
    pub r#abstract: String,
    /// Every category it is in.
    pub categories: Vec<String>,
}

/// `GET /api/v1/categories/{category}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryPage {
    /// The category's name.
    pub category: String,
    /// Its slug.
    pub slug: String,
    /// Its distributions, by name.
    pub dists: Vec<CategoryDist>,
}

/// `GET /api/v1/dists/{dist}/{version}/downloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseDownloads {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// All nodes together.
    pub total: u64,
    /// Per node, by its cosigner key.
    pub nodes: std::collections::BTreeMap<String, u64>,
}

/// One node of `GET /api/v1/downloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDownloads {
    /// Its cosigner key.
    pub node: String,
    /// Its last statement's number.
    pub seq: u64,
    /// The end of its last period (seconds since the Unix epoch).
    pub to: u64,
    /// Downloads it counted in all.
    pub downloads: u64,
}

/// `GET /api/v1/downloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloads {
    /// The origin.
    pub origin: String,
    /// All nodes together.
    pub total: u64,
    /// Each node whose statements this node took.
    pub nodes: Vec<NodeDownloads>,
}
