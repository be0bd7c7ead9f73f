//! What the registry's operator does to its own log from the command line: import PGXN's
//! history (`import.rs`, reading a mirror tree with `source.rs`) and approve claims of PGXN
//! user names. Operator statements are signed with the log key of the data folder, so only
//! whoever can read that folder makes them (`spec/import.md`).
//!
//! They reach the log through the node's HTTP API either way: when a node runs on the data
//! folder (its store is locked), through that node, whose address it wrote into the folder;
//! otherwise through a node started in this process on loopback for the length of the command,
//! with no federation and no webhooks (the node delivers those when it next runs).

pub mod import;
pub mod source;

use std::path::Path;

use anyhow::{Context, bail};
use pgext_spec::api::{self, Receipt};
use pgext_spec::entry::{Action, ENTRY_VERSION, Entry, OPERATOR, Statement, user_key_id};

use crate::config::Config;
use crate::node::{HTTP_URL_FILE, Node};
use crate::origin::keys::load_log_key;
use crate::origin::store::Store;

/// The operator's hand on its log.
#[derive(Debug)]
pub struct Operator {
    key: ed25519_dalek::SigningKey,
    url: String,
    http: reqwest::Client,
    local: Option<Node>,
}

/// A node's refusal of a statement: its stable code and what it said.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct Refused {
    /// The error shape's `error` code.
    pub code: String,
    /// The message.
    pub detail: String,
}

impl Operator {
    /// Opens the log of the data folder: through the node running on it, or a node of its own
    /// (which, on a folder that holds no registry yet, makes one as `pgext-node run` would).
    ///
    /// # Errors
    /// When the folder's key cannot be read, or no node can be reached or started.
    pub async fn connect(config: &Config) -> anyhow::Result<Operator> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()?;
        let (url, local) = if running(&config.data) {
            let file = config.data.join(HTTP_URL_FILE);
            let url = std::fs::read_to_string(&file)
                .with_context(|| {
                    format!(
                        "a node runs on {} but its address ({}) cannot be read: restart that node (it writes the file at start), or stop it and run this command alone",
                        config.data.display(),
                        file.display()
                    )
                })?
                .trim()
                .to_string();
            (url, None)
        } else {
            let mut own = config.clone();
            // A new registry gets the origin a first `run` with this configuration would give
            // it, not one named after the address this node listens on for the command; an
            // existing one keeps its own (its log key names it).
            if own.origin.is_none() && !crate::origin::is_data_folder(&config.data) {
                own.origin = Some(config.default_origin());
            }
            own.http = "127.0.0.1:0".parse()?;
            own.p2p.enabled = false;
            own.webhooks.clear();
            own.mirrors.clear();
            // Only this command submits: rounds start at once, and it may upload as many
            // releases at a time as it imports distributions at a time.
            own.sequencer.batch_interval_ms = 2;
            own.uploads.concurrent = own.uploads.concurrent.max(import::PARALLEL_DISTS);
            let node = Node::spawn(own).await.context("starting the node")?;
            (node.url(), Some(node))
        };
        let key = crate::origin::keys::ed25519_of(&load_log_key(config)?)?;
        Ok(Operator {
            key,
            url,
            http,
            local,
        })
    }

    /// The node's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Signs an operator statement made now.
    pub fn sign(&self, action: Action) -> Entry {
        let k = &self.key;
        Statement {
            v: ENTRY_VERSION,
            actor: OPERATOR.into(),
            key_id: user_key_id(k.verifying_key().as_bytes()),
            time: chrono::Utc::now().timestamp().max(0) as u64,
            action,
        }
        .sign(k)
    }

    /// A distribution of the log, if it has it.
    ///
    /// # Errors
    /// When the node cannot be asked.
    pub async fn dist(&self, name: &str) -> anyhow::Result<Option<api::Dist>> {
        let r = self
            .http
            .get(format!("{}/api/v1/dists/{}", self.url, path_segment(name)))
            .send()
            .await?;
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = r.error_for_status()?;
        Ok(Some(r.json().await?))
    }

    /// Submits a statement without a file (a claim).
    ///
    /// # Errors
    /// [`Refused`] when the node refuses it, or a transport failure.
    pub async fn submit(&self, entry: &Entry) -> anyhow::Result<Receipt> {
        let r = self
            .http
            .post(format!("{}/api/v1/entries", self.url))
            .header("content-type", "application/json")
            .body(entry.to_bytes())
            .send()
            .await?;
        answer(r).await
    }

    /// Submits an import with PGXN's zip.
    ///
    /// # Errors
    /// [`Refused`] when the node refuses it, or a transport failure.
    pub async fn submit_import(&self, entry: &Entry, zip: Vec<u8>) -> anyhow::Result<Receipt> {
        let form = reqwest::multipart::Form::new()
            .part(
                "entry",
                reqwest::multipart::Part::bytes(entry.to_bytes()).file_name("entry.json"),
            )
            .part(
                "archive",
                reqwest::multipart::Part::bytes(zip).file_name("release.zip"),
            );
        let r = self
            .http
            .post(format!("{}/api/v1/releases", self.url))
            .multipart(form)
            .send()
            .await?;
        answer(r).await
    }

    /// Stops the node this command started, if it did.
    pub async fn close(self) {
        if let Some(node) = self.local {
            node.shutdown().await;
        }
    }
}

/// `s` as one URL path segment: every byte but unreserved ones percent-encoded (dist names may
/// hold `?`, `#` or `%`).
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Whether a node holds the store of `data`: RocksDB locks it while open.
fn running(data: &Path) -> bool {
    let db = data.join("db");
    if !db.join("CURRENT").is_file() {
        return false;
    }
    match Store::open(&db) {
        Ok(store) => {
            drop(store);
            false
        }
        Err(e) => e.to_string().to_ascii_lowercase().contains("lock"),
    }
}

async fn answer(r: reqwest::Response) -> anyhow::Result<Receipt> {
    let status = r.status();
    let body = r.bytes().await?;
    if status.is_success() {
        return serde_json::from_slice(&body).context("reading the node's receipt");
    }
    let first = serde_json::from_slice::<api::ErrorBody>(&body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let (code, detail) = first.map_or_else(
        || ("http-error".to_string(), format!("HTTP {status}")),
        |e| (e.code, e.detail),
    );
    if status.is_server_error() && code != "http-error" {
        bail!("the node failed: {code}: {detail}");
    }
    Err(Refused { code, detail }.into())
}

/// Approves a claim: `pgxn_user`'s imported distributions go to `account`.
///
/// # Errors
/// The node's refusal, or a transport failure.
pub async fn claim(
    op: &Operator,
    pgxn_user: &str,
    account: &str,
    evidence: &str,
) -> anyhow::Result<Receipt> {
    let entry = op.sign(Action::Claim {
        pgxn_user: pgxn_user.to_ascii_lowercase(),
        user: account.to_ascii_lowercase(),
        evidence: evidence.to_string(),
    });
    op.submit(&entry).await
}

/// Grants (or with `grant` false, revokes) a registry role to an account
/// (`spec/requirements.md`, System packages: the role `packages` maintains the name mapping).
///
/// # Errors
/// When the node refuses the entry (an unknown role or account, nothing to change).
pub async fn role(
    op: &Operator,
    role: &str,
    account: &str,
    grant: bool,
) -> anyhow::Result<Receipt> {
    let (role, user) = (role.to_ascii_lowercase(), account.to_ascii_lowercase());
    let entry = op.sign(if grant {
        Action::RoleGrant { role, user }
    } else {
        Action::RoleRevoke { role, user }
    });
    op.submit(&entry).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn dist_names_become_one_path_segment() {
        assert_eq!(super::path_segment("t-digest_1.x~"), "t-digest_1.x~");
        assert_eq!(super::path_segment("pg?x#%/y"), "pg%3Fx%23%25%2Fy");
    }
}
