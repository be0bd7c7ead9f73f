//! Webhooks: every configured URL receives each new release of every origin the node serves
//! (or those its filters name), as JSON signed with HMAC-SHA256 under the webhook's secret, with bounded retries. Where each
//! webhook got to is kept in the data folder, so a restart neither repeats nor skips releases
//! (`spec/site.md`, Webhooks).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use pgext_spec::entry::{Action, Entry};
use serde_json::json;
use sha2::Sha256;
use tracing::{info, warn};

use crate::config::WebhookConfig;
use crate::node::Shared;

/// Attempts per delivery, and the wait before each retry.
const BACKOFF_MS: [u64; 3] = [0, 500, 2000];

/// `sha256=HEX` of the body under the secret: the `X-Pgext-Signature-256` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", pgext_log::hex(&mac.finalize().into_bytes()))
}

fn state_path(shared: &Shared, hook: &WebhookConfig) -> PathBuf {
    let id = pgext_log::sha256(format!("{}\n{}", shared.origin, hook.url).as_bytes());
    shared
        .config
        .data
        .join("webhooks")
        .join(pgext_log::hex(&id[..16]))
}

/// Writes where a webhook got to, whole or not at all (a new file renamed over the old), so a
/// crash mid-write never leaves a number that would repeat or skip releases.
fn save(path: &std::path::Path, done: u64) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, done.to_string())?;
    std::fs::rename(&tmp, path)
}

/// Sends one body, up to three times; whether it was taken (a 2xx answer).
async fn deliver(http: &reqwest::Client, hook: &WebhookConfig, body: &[u8]) -> bool {
    for wait in BACKOFF_MS {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let sent = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-pgext-event", "release")
            .header("x-pgext-signature-256", signature(&hook.secret, body))
            .body(body.to_vec())
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if sent.is_ok_and(|r| r.status().is_success()) {
            return true;
        }
    }
    false
}

/// Follows an origin's commits and delivers its new releases to one webhook.
pub fn spawn(shared: Arc<Shared>, hook: WebhookConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let path = state_path(&shared, &hook);
        // First start: only what comes after it.
        let mut done: u64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| shared.size());
        let mut changes = shared.changes.subscribe();
        loop {
            let size = shared.size();
            if size > done {
                let entries = match shared.store.entries(done, size) {
                    Ok(e) => e,
                    Err(e) => {
                        // Not skipped: the next commit tries these entries again.
                        warn!(url = %hook.url, "webhook: reading entries {done}..{size}: {e}");
                        if changes.changed().await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                for (k, bytes) in entries.iter().enumerate() {
                    let index = done + k as u64;
                    let Ok(e) = Entry::parse(bytes) else { continue };
                    let Action::Release(r) = &e.statement.action else {
                        continue;
                    };
                    // The META is read only for a webhook that filters on tags.
                    let tags = if hook.tags.is_empty() {
                        Vec::new()
                    } else {
                        shared
                            .meta(&r.meta_sha256)
                            .map(|m| m.tags.clone())
                            .unwrap_or_default()
                    };
                    if !hook.wants(&r.dist, &e.statement.actor, &tags) {
                        continue;
                    }
                    let body = json!({"event": "release", "origin": shared.origin, "index": index,
                        "dist": r.dist, "version": r.version, "status": r.status.as_str(),
                        "sha256": r.sha256, "user": e.statement.actor, "time": e.statement.time,
                        "path": format!("{}/dist/{}/{}/", shared.prefix, r.dist.to_lowercase(), r.version.to_lowercase())})
                    .to_string();
                    if deliver(&http, &hook, body.as_bytes()).await {
                        info!(url = %hook.url, index, "webhook delivered");
                    } else {
                        warn!(url = %hook.url, index, "webhook not taken after {} attempts", BACKOFF_MS.len());
                    }
                }
                done = size;
                if let Err(e) = save(&path, done) {
                    warn!(url = %hook.url, "webhook: keeping its progress: {e}");
                }
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    })
}
