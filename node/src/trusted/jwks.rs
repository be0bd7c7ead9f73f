//! An OIDC issuer's signing keys: its discovery document (`/.well-known/openid-configuration`)
//! names its JWKS, both fetched and kept per issuer. A token naming a key the kept set lacks
//! fetches the set again (the issuer rotated its keys), at most once per [`Jwks::min_refetch`]
//! per issuer, so tokens with made-up key ids cannot make the node hammer an issuer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};

use super::TrustedError;

/// Largest discovery document or key set read, in bytes.
const MAX_DOC_BYTES: usize = 256 << 10;
/// A kept key set is fetched again after this long, whatever tokens name.
const FRESH_FOR: Duration = Duration::from_secs(3600);

struct Kept {
    keys: JwkSet,
    fetched: Instant,
}

/// Key sets by issuer.
pub(super) struct Jwks {
    http: reqwest::Client,
    kept: tokio::sync::Mutex<HashMap<String, Kept>>,
    /// Shortest time between two fetches of one issuer's keys.
    pub(super) min_refetch: Duration,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

async fn get_bounded(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, TrustedError> {
    let fail = |e: String| TrustedError::Issuer(format!("{url}: {e}"));
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
        if body.len() + chunk.len() > MAX_DOC_BYTES {
            return Err(fail(format!("larger than {MAX_DOC_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Jwks {
    /// No keys kept yet.
    pub(super) fn new() -> Jwks {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Jwks {
            http,
            kept: tokio::sync::Mutex::new(HashMap::new()),
            min_refetch: Duration::from_secs(5),
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, TrustedError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc: Discovery = serde_json::from_slice(&get_bounded(&self.http, &url).await?)
            .map_err(|e| TrustedError::Issuer(format!("{url}: {e}")))?;
        if doc.issuer != issuer {
            return Err(TrustedError::Issuer(format!(
                "{url} names issuer {:?}",
                doc.issuer.chars().take(80).collect::<String>()
            )));
        }
        // The keys' location is checked as an issuer is: https (or loopback http).
        pgext_spec::trusted::check_issuer(&doc.jwks_uri)
            .map_err(|e| TrustedError::Issuer(format!("jwks_uri: {e}")))?;
        serde_json::from_slice(&get_bounded(&self.http, &doc.jwks_uri).await?)
            .map_err(|e| TrustedError::Issuer(format!("{}: {e}", doc.jwks_uri)))
    }

    /// The key `kid` of `issuer`.
    ///
    /// # Errors
    /// [`TrustedError::Issuer`] when the issuer cannot be asked; [`TrustedError::Token`] when
    /// it lists no such key.
    pub(super) async fn key(&self, issuer: &str, kid: &str) -> Result<Jwk, TrustedError> {
        let mut kept = self.kept.lock().await;
        let find = |k: &Kept| k.keys.find(kid).cloned();
        if let Some(k) = kept.get(issuer) {
            if k.fetched.elapsed() < FRESH_FOR {
                if let Some(j) = find(k) {
                    return Ok(j);
                }
                if k.fetched.elapsed() < self.min_refetch {
                    return Err(unknown(issuer, kid));
                }
            }
        }
        let keys = self.fetch(issuer).await?;
        let k = Kept {
            keys,
            fetched: Instant::now(),
        };
        let found = find(&k);
        kept.insert(issuer.to_string(), k);
        found.ok_or_else(|| unknown(issuer, kid))
    }
}

fn unknown(issuer: &str, kid: &str) -> TrustedError {
    TrustedError::Token(format!(
        "the token is signed by key {:?}, which {issuer} does not list",
        kid.chars().take(80).collect::<String>()
    ))
}
