//! Webhooks: every configured URL receives each new release of every origin the node serves
//! (or those its filters name), and every key change of the accounts it watches (key
//! transparency), as JSON signed with HMAC-SHA256 under the webhook's secret, with bounded retries. Where each
//! webhook got to is kept in the data folder, so a restart neither repeats nor skips releases
//! (`spec/site.md`, Webhooks).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use pgext_spec::entry::{Action, Entry};
use serde_json::json;
use sha2::Sha256;
use tracing::{info, warn};

use crate::config::WebhookConfig;
use crate::origin::{self, Origin};

/// Attempts per delivery, and the wait before each retry.
const BACKOFF_MS: [u64; 3] = [0, 500, 2000];

/// `sha256=HEX` of the body under the secret: the `X-Pgext-Signature-256` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", pgext_log::hex(&mac.finalize().into_bytes()))
}

fn state_path(data: &Path, origin: &Origin, hook: &WebhookConfig) -> PathBuf {
    let id = pgext_log::sha256(format!("{}\n{}", origin.name, hook.url).as_bytes());
    data.join("webhooks").join(pgext_log::hex(&id[..16]))
}

/// One release or key change to tell of, read from the log.
struct Event {
    index: u64,
    kind: &'static str,
    body: String,
}

/// The key event of an entry that changes `hook`'s watched accounts' keys (or records a CI
/// key for one): which account, which key, what happened.
fn key_event(origin: &Origin, hook: &WebhookConfig, index: u64, e: &Entry) -> Option<Event> {
    let st = &e.statement;
    let (user, key) = st.key_change()?;
    let (change, extra) = match &st.action {
        Action::KeyRotate { .. } => ("rotated", json!({"retired": st.key_id})),
        Action::KeyRevoke { .. } => ("revoked", json!({})),
        Action::CiKey {
            dist,
            claims,
            expires,
            ..
        } => (
            "ci",
            json!({"dist": dist, "repository": claims.repository, "workflow": claims.workflow,
                   "ref": claims.git_ref, "sha": claims.sha, "expires": expires}),
        ),
        _ => ("added", json!({})),
    };
    if !hook.watches(user) {
        return None;
    }
    let mut body = json!({"event": "key", "origin": origin.name, "index": index,
        "user": user.to_ascii_lowercase(), "change": change, "key_id": key,
        "signed_with": st.key_id, "time": st.time});
    if let (Some(b), Some(x)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(x.clone());
    }
    Some(Event {
        index,
        kind: "key",
        body: body.to_string(),
    })
}

/// The release events of entries `from..to` that `hook` wants. Blocks.
fn events(origin: &Origin, hook: &WebhookConfig, from: u64, to: u64) -> origin::Result<Vec<Event>> {
    let mut out = Vec::new();
    for (k, bytes) in origin.entries(from, to)?.iter().enumerate() {
        let index = from + k as u64;
        let Ok(e) = Entry::parse(bytes) else { continue };
        if let Some(ev) = key_event(origin, hook, index, &e) {
            out.push(ev);
            continue;
        }
        let Some(r) = e.statement.action.release() else {
            continue;
        };
        // The META is read only for a webhook that filters on tags.
        let tags = if hook.tags.is_empty() {
            Vec::new()
        } else {
            origin.content().meta(&r.meta_sha256)?.tags.clone()
        };
        if !hook.wants(&r.dist, &e.statement.actor, &tags) {
            continue;
        }
        let body = json!({"event": "release", "origin": origin.name, "index": index,
            "dist": r.dist, "version": r.version, "status": r.status.as_str(),
            "sha256": r.sha256, "user": e.statement.actor, "key_id": e.statement.key_id,
            "time": e.statement.time,
            "path": format!("{}/dist/{}/{}/", origin.prefix, r.dist.to_lowercase(), r.version.to_lowercase())})
        .to_string();
        out.push(Event {
            index,
            kind: "release",
            body,
        });
    }
    Ok(out)
}

/// Sends one body, up to three times; whether it was taken (a 2xx answer).
async fn deliver(http: &reqwest::Client, hook: &WebhookConfig, kind: &str, body: &[u8]) -> bool {
    for wait in BACKOFF_MS {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let sent = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-pgext-event", kind)
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

/// Follows an origin's commits and delivers its new releases to one webhook. Where it got to
/// is kept in `{data}/webhooks/`.
pub fn spawn(
    data: PathBuf,
    origin: Arc<Origin>,
    hook: WebhookConfig,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let path = state_path(&data, &origin, &hook);
        // First start: only what comes after it.
        let saved = {
            let path = path.clone();
            origin::blocking(move || Ok::<_, origin::Error>(std::fs::read_to_string(path).ok()))
                .await
                .ok()
                .flatten()
        };
        let mut done: u64 = saved
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| origin.size());
        let mut changes = origin.subscribe();
        loop {
            let size = origin.size();
            if size > done {
                let (o, h) = (origin.clone(), hook.clone());
                let events = match origin::blocking(move || events(&o, &h, done, size)).await {
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
                for ev in events {
                    if deliver(&http, &hook, ev.kind, ev.body.as_bytes()).await {
                        info!(url = %hook.url, index = ev.index, "webhook delivered");
                    } else {
                        warn!(url = %hook.url, index = ev.index, "webhook not taken after {} attempts", BACKOFF_MS.len());
                    }
                }
                done = size;
                // Whole or not at all, and durable: a crash never leaves a number that would
                // repeat or skip releases.
                let p = path.clone();
                let saved = origin::blocking(move || {
                    crate::durable::write_durably(&p, done.to_string().as_bytes(), 0o644)
                        .map_err(|e| origin::Error::internal(format!("{e:#}")))
                })
                .await;
                if let Err(e) = saved {
                    warn!(url = %hook.url, "webhook: keeping its progress: {e}");
                }
            }
            if changes.changed().await.is_err() {
                break;
            }
        }
    })
}
