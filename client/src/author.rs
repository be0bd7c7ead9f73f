//! What an author does: keys (`keygen`, `key add|rotate|revoke`), the account (`register`,
//! `whoami`), releases (`publish` from a directory or an archive), owners and yanks. Entries
//! are signed here and submitted to the registry's nodes in failover order
//! (`spec/publishing.md`).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::SigningKey;
use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::{Action, Entry, Release, Status, user_key_id};
use serde::Serialize;

use crate::Error;
use crate::api::{Node, Receipt};
use crate::project::prepare;
use crate::release::{Identity, PreparedRelease};
use crate::trust::RegistryConfig;

pub use crate::keys::{KEY_ENV, default_key_path, format_identity, load_identity, parse_identity};

/// An invitation for `user` to register with `public_key` (base64 Ed25519), signed by an admin
/// key of a registry whose nodes take accounts by invitation (`registration = "invite"`, the
/// admin's public key in `admin_keys`): the base64 signature over
/// `pgext_spec::entry::invite_message`, for `pgext register --invite`.
///
/// # Errors
/// When the user name or the public key is not one an account can have.
pub fn invite(admin: &Identity, user: &str, public_key: &str) -> Result<String, Error> {
    use ed25519_dalek::Signer as _;
    if !pgext_spec::authority::valid_user_name(user) {
        return Err(Error::Request(format!(
            "{user:?} is not an account name: 2 to 32 of a-z 0-9 - _, starting with a letter"
        )));
    }
    if pgext_spec::entry::decode_public_key(public_key).is_none() {
        return Err(Error::Request(format!(
            "{public_key:?} is not a base64 Ed25519 public key (`pgext whoami` shows one)"
        )));
    }
    let msg = pgext_spec::entry::invite_message(user, public_key);
    Ok(STANDARD.encode(admin.key.sign(&msg).to_bytes()))
}

/// A new random key for `user`.
pub fn generate(user: &str) -> Identity {
    use rand::RngCore as _;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    Identity {
        user: user.to_string(),
        key: SigningKey::from_bytes(&seed),
    }
}

/// Writes a key file readable by its owner only (mode 0600). An existing file is kept unless
/// `replace`, and then it is first moved to `FILE.old`.
///
/// # Errors
/// When the file exists (and not `replace`) or cannot be written.
pub fn write_key(path: &Path, id: &Identity, replace: bool) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |e: std::io::Error| Error::Config(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if !replace {
            return Err(Error::Config(format!(
                "{} exists: not overwriting a key (move it away first)",
                path.display()
            )));
        }
        let mut old = path.as_os_str().to_owned();
        old.push(".old");
        std::fs::rename(path, &old).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(format_identity(id).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A key's public half and id, as entries name them.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Account name.
    pub user: String,
    /// Key id (`spec/entries.md`).
    pub key_id: String,
    /// Base64 Ed25519 public key.
    pub public_key: String,
}

/// The public half of an identity.
pub fn key_info(id: &Identity) -> KeyInfo {
    let public = id.key.verifying_key();
    KeyInfo {
        user: id.user.clone(),
        key_id: user_key_id(public.as_bytes()),
        public_key: encode_public_key(&public),
    }
}

/// Where submissions go: the registry's nodes in order; a node that cannot be reached passes
/// the submission on, a refusal is the answer.
#[derive(Debug, Clone)]
pub struct Submitter {
    urls: Vec<String>,
    http: reqwest::Client,
}

impl Submitter {
    /// The nodes of a registry; `id` signs the token a private registry asks for.
    pub fn new(reg: &RegistryConfig, id: Option<&Identity>) -> Submitter {
        Submitter {
            urls: reg.urls.clone(),
            http: crate::auth::client_for(reg, id),
        }
    }

    /// Asks each node in turn until one answers: an unreachable node passes it on.
    pub(crate) async fn each<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: Fn(Node) -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let mut last = Error::Api("no node URL configured".into());
        for url in &self.urls {
            match f(Node::with_client(url, self.http.clone())).await {
                Ok(r) => return Ok(r),
                Err(Error::Unreachable(e)) => last = Error::Unreachable(e),
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Submits an entry that carries no archive.
    ///
    /// # Errors
    /// The node's refusal, or no node reachable.
    pub async fn submit(&self, entry: &Entry) -> Result<Receipt, Error> {
        self.each(|n| async move { n.submit(entry).await }).await
    }

    /// Uploads a release.
    ///
    /// # Errors
    /// The node's refusal, or no node reachable.
    pub async fn publish(&self, entry: &Entry, p: &PreparedRelease) -> Result<Receipt, Error> {
        let file = format!("{}-{}.zip", p.release.dist, p.release.version);
        self.each(|n| {
            let zip = p.zip.clone();
            let file = file.clone();
            async move { n.publish(entry, zip, &file).await }
        })
        .await
    }

    /// Uploads a build attestation with its binary package.
    ///
    /// # Errors
    /// The node's refusal, or no node reachable.
    pub async fn attest(
        &self,
        entry: &Entry,
        package: &[u8],
        file: &str,
    ) -> Result<Receipt, Error> {
        self.each(|n| {
            let package = package.to_vec();
            async move { n.attest(entry, package, file).await }
        })
        .await
    }

    /// The first URL, for the links printed.
    pub fn base(&self) -> &str {
        self.urls.first().map_or("", |u| u.trim_end_matches('/'))
    }
}

/// What `publish` did.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// Distribution.
    pub dist: String,
    /// Version.
    pub version: String,
    /// The zip's SHA-256.
    pub sha256: String,
    /// Log index.
    pub index: u64,
    /// Size of the checkpoint the receipt proves inclusion in.
    pub checkpoint_size: u64,
    /// The release's page on the node.
    pub url: String,
    /// The receipt's tlog-proof file.
    pub proof: String,
    /// What `validate` warned about (published anyway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Validates a project folder (`pgext validate`), then signs and uploads the release of
/// `path` to the nodes `route` names for its distribution (the registry that owns the name,
/// `spec/access.md`). A retry with the same bytes gets the same index; other bytes for a
/// published version are refused.
///
/// # Errors
/// An invalid release, no registry for it, or the node's refusal.
pub async fn publish(
    route: impl FnOnce(&str) -> Result<Submitter, Error>,
    id: &Identity,
    path: &Path,
    status: Option<Status>,
    strict: bool,
) -> Result<Published, Error> {
    let sign = |_: &Submitter, r: &Release| {
        let entry = id.sign(Action::Release(r.clone()));
        async move { Ok(entry) }
    };
    publish_signed(route, sign, path, (status, strict)).await
}

/// [`publish`], the release signed by `sign` (given the nodes it goes to): a key of the
/// publisher's, or a CI key obtained for the release's dist (trusted publishing).
///
/// # Errors
/// As [`publish`], or what `sign` returns.
pub async fn publish_signed<F, Fut>(
    route: impl FnOnce(&str) -> Result<Submitter, Error>,
    sign: F,
    path: &Path,
    (status, strict): (Option<Status>, bool),
) -> Result<Published, Error>
where
    F: FnOnce(&Submitter, &Release) -> Fut,
    Fut: std::future::Future<Output = Result<Entry, Error>>,
{
    let mut warnings = Vec::new();
    if path.is_dir() {
        let problems = crate::project::validate(path)?;
        let blocking: Vec<String> = problems
            .iter()
            .filter(|p| p.blocks(strict))
            .map(ToString::to_string)
            .collect();
        if !blocking.is_empty() {
            return Err(Error::Release(format!(
                "not published: {} (`pgext validate` explains)",
                blocking.join("; ")
            )));
        }
        warnings = problems.iter().map(ToString::to_string).collect();
    }
    let p = prepare(path, status)?;
    let to = route(&p.release.dist)?;
    let entry = sign(&to, &p.release).await?;
    let r = to.publish(&entry, &p).await?;
    let checkpoint_size = r
        .checkpoint
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_default();
    Ok(Published {
        url: format!(
            "{}/dist/{}/{}/",
            to.base(),
            p.release.dist.to_lowercase(),
            p.release.version.to_lowercase()
        ),
        dist: p.release.dist,
        version: p.release.version,
        sha256: p.release.sha256,
        index: r.index,
        checkpoint_size,
        proof: r.proof,
        warnings,
    })
}
