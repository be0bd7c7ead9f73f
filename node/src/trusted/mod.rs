//! Trusted publishing (`spec/trusted-publishing.md`): a CI run presents its OIDC ID token; the
//! node verifies it against the issuer's published keys (RS256 or ES256; issuer, audience,
//! expiry and not-before checked), reads its claims, and when one of the dist's trusted
//! publishers matches them, signs a `ci_key` entry (as the operator, with the log key) that lets
//! the run's new key sign one release before it expires. Only issuers the configuration names
//! are ever asked for keys.

mod jwks;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pgext_spec::authority::Registry;
use pgext_spec::entry::{Action, ENTRY_VERSION, Entry, OPERATOR, Statement, user_key_id};
use pgext_spec::trusted::Claims;
use pgext_spec::trusted::{CiKeyIssued, TrustedPublishingInfo};

use crate::config::TrustedPublishingConfig;

/// Longest ID token taken, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 << 10;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECS: u64 = 60;

/// Why a CI run gets no key.
#[derive(Debug, thiserror::Error)]
pub enum TrustedError {
    /// The token is not one this node takes: malformed, expired, not yet valid, for another
    /// audience or issuer, or not signed by a key its issuer lists.
    #[error("{0}")]
    Token(String),
    /// The issuer could not be asked for its keys.
    #[error("{0}")]
    Issuer(String),
    /// No trusted publisher of the dist matches the run.
    #[error("{0}")]
    NotTrusted(String),
    /// The request names no dist of this log, or no valid key.
    #[error("{0}")]
    Request(String),
}

/// A verified token: its run's claims, and what names the token (to give it one key).
#[derive(Debug)]
pub struct Verified {
    /// The claims.
    pub claims: Claims,
    id: String,
    exp: u64,
}

/// The node's trusted publishing: its settings, the issuers' keys, the log key.
pub struct Trusted {
    /// Tokens exchanged already (issuer and `jti`, or the token's hash), with their expiry: a
    /// token gets one key, so a run cannot fill the log with keys.
    spent: std::sync::Mutex<std::collections::HashMap<String, u64>>,
    config: TrustedPublishingConfig,
    origin: String,
    audience: String,
    jwks: jwks::Jwks,
    log_key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for Trusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trusted")
            .field("origin", &self.origin)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// The unverified payload of a JWT: read only to learn which issuer to ask for keys.
fn unverified_issuer(token: &str) -> Result<String, TrustedError> {
    let bad = |why: &str| TrustedError::Token(format!("not a JWT: {why}"));
    let payload = token.split('.').nth(1).ok_or_else(|| bad("no payload"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("the payload is not base64url"))?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("the payload is not JSON"))?;
    v.get("iss")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(|| bad("no iss claim"))
}

impl Trusted {
    /// Trusted publishing for `origin`, whose log key signs the CI keys.
    pub fn new(
        config: TrustedPublishingConfig,
        origin: &str,
        log_key: ed25519_dalek::SigningKey,
    ) -> Trusted {
        let audience = config
            .audience
            .clone()
            .unwrap_or_else(|| origin.to_string());
        Trusted {
            spent: std::sync::Mutex::default(),
            config,
            origin: origin.to_string(),
            audience,
            jwks: jwks::Jwks::new(),
            log_key,
        }
    }

    /// What a token must be.
    pub fn info(&self) -> TrustedPublishingInfo {
        TrustedPublishingInfo {
            origin: self.origin.clone(),
            audience: self.audience.clone(),
            issuers: self.config.issuers.clone(),
            key_secs: self.config.key_secs,
        }
    }

    /// Verifies an ID token and reads its claims.
    ///
    /// # Errors
    /// [`TrustedError::Token`] for a token this node does not take, [`TrustedError::Issuer`]
    /// when its issuer cannot be asked.
    pub async fn verify(&self, token: &str) -> Result<Verified, TrustedError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TrustedError::Token(format!(
                "the token is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TrustedError::Token(format!("not a JWT: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TrustedError::Token(format!(
                "tokens signed with {:?} are not taken: RS256 or ES256",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| TrustedError::Token("the token names no key (kid)".into()))?;
        let issuer = unverified_issuer(token)?;
        if !self.config.issuers.contains(&issuer) {
            return Err(TrustedError::Token(format!(
                "tokens of issuer {:?} are not taken here: {}",
                issuer.chars().take(80).collect::<String>(),
                self.config.issuers.join(", ")
            )));
        }
        let jwk = self.jwks.key(&issuer, &kid).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|e| TrustedError::Token(format!("key {kid} of {issuer}: {e}")))?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&issuer]);
        v.set_audience(&[&self.audience]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            TrustedError::Token(match e.kind() {
                K::ExpiredSignature => "the token has expired".into(),
                K::ImmatureSignature => "the token is not valid yet (nbf)".into(),
                K::InvalidAudience => format!("the token is not for audience {}", self.audience),
                K::InvalidIssuer => "the token's issuer does not match".into(),
                K::InvalidSignature => {
                    format!("the token's signature does not verify with {issuer}'s key {kid}")
                }
                K::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
                _ => format!("the token does not verify: {e}"),
            })
        })?;
        let raw = &data.claims;
        let claims = Claims::from_token(raw).map_err(|e| TrustedError::Token(e.0))?;
        let id = match raw.get("jti").and_then(|j| j.as_str()) {
            Some(jti) => format!("{issuer} {jti}"),
            None => pgext_log::hex(&pgext_log::sha256(token.as_bytes())),
        };
        let exp = raw
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Ok(Verified { claims, id, exp })
    }

    /// Marks a token exchanged, refusing one that was: forgetting those whose expiry (plus the
    /// clock skew allowed) has passed.
    fn spend(&self, v: &Verified, now: u64) -> Result<(), TrustedError> {
        let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        spent.retain(|_, e| *e + LEEWAY_SECS >= now);
        if spent.insert(v.id.clone(), v.exp).is_some() {
            return Err(TrustedError::Token(
                "the token was exchanged for a key already: one token, one key; ask the CI for a new token (run the job again)".into(),
            ));
        }
        Ok(())
    }

    /// The `ci_key` entry for `claims` to publish `dist` with `key`, signed with the log key
    /// at `now`.
    ///
    /// # Errors
    /// [`TrustedError::Request`] for no such dist or a malformed key;
    /// [`TrustedError::NotTrusted`] when no trusted publisher of the dist matches.
    pub fn ci_key_entry(
        &self,
        registry: &Registry,
        (dist, key): (&str, &str),
        verified: Verified,
        now: u64,
    ) -> Result<(Entry, CiKeyIssued), TrustedError> {
        let claims = verified.claims.clone();
        let d = registry
            .dist(dist)
            .ok_or_else(|| TrustedError::Request(format!("no distribution {dist}")))?;
        let public = pgext_spec::entry::decode_public_key(key).ok_or_else(|| {
            TrustedError::Request("key is not a base64 Ed25519 public key".into())
        })?;
        let Some(p) = registry
            .publishers(&d.name)
            .iter()
            .find(|p| p.publisher.matches(&claims))
        else {
            return Err(TrustedError::NotTrusted(format!(
                "no trusted publisher of {} matches the run of {} (workflow {}, ref {}, environment {})",
                d.name,
                claims.repository,
                claims.workflow.as_deref().unwrap_or("-"),
                claims.git_ref.as_deref().unwrap_or("-"),
                claims.environment.as_deref().unwrap_or("-"),
            )));
        };
        // One token, one key: spent only once a key is to be given.
        self.spend(&verified, now)?;
        let expires = now + self.config.key_secs;
        let signer = &self.log_key;
        let entry = Statement {
            v: ENTRY_VERSION,
            actor: OPERATOR.into(),
            key_id: user_key_id(signer.verifying_key().as_bytes()),
            time: now,
            action: Action::CiKey {
                dist: d.name.clone(),
                user: p.user.clone(),
                key: key.to_string(),
                publisher: p.publisher.clone(),
                claims: claims.clone(),
                expires,
            },
        }
        .sign(signer);
        let issued = CiKeyIssued {
            index: 0,
            dist: d.name.clone(),
            user: p.user.clone(),
            key_id: user_key_id(public.as_bytes()),
            expires,
            publisher: p.publisher.clone(),
            claims,
        };
        Ok((entry, issued))
    }
}
