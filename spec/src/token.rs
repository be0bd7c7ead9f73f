//! Read tokens (`spec/access.md`): a member of a private origin signs, with one of its account
//! keys, a short statement of who it is, for which origin, what it may do and until when. Any
//! node that holds the origin's log checks it against its own state, so mirrors accept the
//! tokens the sequencer would, and a revoked key's tokens stop at the commit that revokes it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey};
use serde::{Deserialize, Serialize};

use crate::authority::{Registry, valid_user_name};
use crate::entry::user_key_id;

/// What every token starts with (the format's version).
pub const PREFIX: &str = "pgext1.";
/// Longest token text.
pub const MAX_TOKEN: usize = 1024;
/// Longest decoded payload.
pub const MAX_PAYLOAD: usize = 512;
/// How far in the future `iat` may be (clocks disagree).
pub const MAX_SKEW: u64 = 300;
/// Longest lifetime (`exp - iat`).
pub const MAX_LIFETIME: u64 = 400 * 86_400;
/// What a token's signature covers before the payload.
pub const DOMAIN: &[u8] = b"pgext/token/v1\n";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Submitting entries and releases to a private origin (the signed entry still decides).
    Publish,
    /// Reading everything of the origin.
    Read,
}

impl Scope {
    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
            Scope::Read => "read",
        }
    }
}

/// A token's statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The origin (log name) it is for.
    pub origin: String,
    /// The member's account.
    pub user: String,
    /// Key id of the signing key.
    pub key: String,
    /// What it allows, sorted.
    pub scope: Vec<Scope>,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// 16 random bytes, hex.
    pub nonce: String,
}

/// Why a token is refused (`spec/access.md`, in the order the checks run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token, or past a size limit.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// Made for another origin.
    #[error("the token is for another registry")]
    WrongOrigin,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// `iat` too far ahead, or a lifetime past the limit.
    #[error("the token is not valid yet or lives too long")]
    NotYetValid,
    /// No such account or key, or a signature that does not verify: one answer for all three.
    #[error("the token is not signed by a key of a member of this registry")]
    NotAMember,
    /// Signed by a key the log has revoked.
    #[error("the key that signed the token is revoked")]
    Revoked,
    /// The token does not allow this.
    #[error("the token does not allow {}", .0.as_str())]
    Scope(Scope),
}

impl TokenError {
    /// A stable code for the error's detail.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::WrongOrigin => "wrong-origin",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not-yet-valid",
            TokenError::NotAMember => "not-a-member",
            TokenError::Revoked => "revoked",
            TokenError::Scope(_) => "forbidden",
        }
    }
}

/// A token, parsed: its claims, and what its signature covers.
#[derive(Debug, Clone)]
pub struct Token {
    /// The statement.
    pub claims: Claims,
    msg: Vec<u8>,
    signature: Signature,
}

/// Makes a token for `claims`, signed with `key`.
pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    let payload = serde_json::to_vec(claims).unwrap_or_default();
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&payload);
    let sig = key.sign(&msg);
    format!(
        "{PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(sig.to_bytes())
    )
}

/// Claims for `user`'s key `key`, for `origin`, from `now` for `lifetime` seconds.
pub fn claims(
    origin: &str,
    user: &str,
    key: &SigningKey,
    scope: &[Scope],
    now: u64,
    lifetime: u64,
    nonce: [u8; 16],
) -> Claims {
    let mut scope = scope.to_vec();
    scope.sort();
    scope.dedup();
    Claims {
        origin: origin.to_string(),
        user: user.to_string(),
        key: user_key_id(key.verifying_key().as_bytes()),
        scope,
        iat: now,
        exp: now.saturating_add(lifetime),
        nonce: pgext_log::hex(&nonce),
    }
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Token {
    /// Parses a token's text, checking every size before decoding.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] when it is not a token.
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        if text.len() > MAX_TOKEN {
            return Err(TokenError::Malformed("longer than 1024 bytes"));
        }
        let rest = text
            .strip_prefix(PREFIX)
            .ok_or(TokenError::Malformed("it does not start with pgext1."))?;
        let (payload, sig) = rest
            .split_once('.')
            .ok_or(TokenError::Malformed("no signature"))?;
        if !is_b64url(payload) || !is_b64url(sig) {
            return Err(TokenError::Malformed("not base64url"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
        if payload.len() > MAX_PAYLOAD {
            return Err(TokenError::Malformed("payload longer than 512 bytes"));
        }
        let sig: [u8; 64] = URL_SAFE_NO_PAD
            .decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(TokenError::Malformed("signature is not 64 bytes"))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| TokenError::Malformed("payload is not a token statement"))?;
        let key_ok = claims.key.len() == 16
            && claims
                .key
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let nonce_ok =
            claims.nonce.len() == 32 && claims.nonce.bytes().all(|b| b.is_ascii_hexdigit());
        let scope_ok = !claims.scope.is_empty() && claims.scope.windows(2).all(|w| w[0] < w[1]);
        if !valid_user_name(&claims.user) || !key_ok || !nonce_ok || !scope_ok {
            return Err(TokenError::Malformed("payload fields out of form"));
        }
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&payload);
        Ok(Token {
            claims,
            msg,
            signature: Signature::from_bytes(&sig),
        })
    }

    /// Checks what needs no log: the origin and the times.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn check_claims(&self, origin: &str, now: u64) -> Result<(), TokenError> {
        let c = &self.claims;
        if c.origin != origin {
            return Err(TokenError::WrongOrigin);
        }
        if c.exp <= now {
            return Err(TokenError::Expired);
        }
        if c.iat > now.saturating_add(MAX_SKEW) || c.exp.saturating_sub(c.iat) > MAX_LIFETIME {
            return Err(TokenError::NotYetValid);
        }
        Ok(())
    }

    /// Checks the token against the log's state: the claims, then the account's key and the
    /// signature, then that the key is still active.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn verify(&self, state: &Registry, origin: &str, now: u64) -> Result<(), TokenError> {
        self.check_claims(origin, now)?;
        let key = state
            .account(&self.claims.user)
            .and_then(|a| a.keys.get(&self.claims.key))
            .ok_or(TokenError::NotAMember)?;
        key.key
            .verify_strict(&self.msg, &self.signature)
            .map_err(|_| TokenError::NotAMember)?;
        if !key.active {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }

    /// Whether the token allows `scope`.
    ///
    /// # Errors
    /// [`TokenError::Scope`] when it does not.
    pub fn allows(&self, scope: Scope) -> Result<(), TokenError> {
        if self.claims.scope.contains(&scope) {
            Ok(())
        } else {
            Err(TokenError::Scope(scope))
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use serde_json::Value;

    use super::*;
    use crate::authority::encode_public_key;
    use crate::authority_tests::{account, entry as signed};
    use crate::entry::Action;

    const VECTORS: &str = include_str!("../vectors/token/tokens.json");

    fn member(user: &str, k: &SigningKey) -> Registry {
        let mut reg = Registry::new();
        reg.apply(0, &account(user, k)).unwrap();
        reg
    }

    fn vectors() -> (Value, SigningKey) {
        let v: Value = serde_json::from_str(VECTORS).unwrap();
        let hex = v["seed"].as_str().unwrap();
        let seed: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let key = SigningKey::from_bytes(&seed.try_into().unwrap());
        (v, key)
    }

    #[test]
    fn tokens_made_by_a_second_implementation_are_judged_as_the_vectors_say() {
        let (v, key) = vectors();
        assert_eq!(
            encode_public_key(&key.verifying_key()),
            v["public_key"].as_str().unwrap()
        );
        let reg = member("alice", &key);
        let now = v["now"].as_u64().unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert!(cases.len() >= 15);
        for c in cases {
            let (name, text) = (c["name"].as_str().unwrap(), c["token"].as_str().unwrap());
            let got = Token::parse(text).and_then(|t| t.verify(&reg, "acme.example/log", now));
            let want = c["result"].as_str().unwrap();
            match got {
                Ok(()) => assert_eq!(want, "ok", "{name}"),
                Err(e) => assert_eq!(e.code(), want, "{name}: {e}"),
            }
        }
    }

    #[test]
    fn signing_the_vectors_claims_gives_the_same_text() {
        let (v, key) = vectors();
        for c in v["cases"].as_array().unwrap() {
            let Some(claims) = c.get("claims") else {
                continue;
            };
            let claims: Claims = serde_json::from_value(claims.clone()).unwrap();
            assert_eq!(sign(&claims, &key), c["token"].as_str().unwrap());
        }
    }

    #[test]
    fn a_rotated_key_stops_its_tokens_and_a_read_token_cannot_publish() {
        let old = SigningKey::from_bytes(&[1; 32]);
        let new = SigningKey::from_bytes(&[2; 32]);
        let mut reg = member("bob", &old);
        let now = 1_800_000_000;
        let make = |k: &SigningKey, scope: &[Scope]| {
            let c = claims("o/log", "bob", k, scope, now, 3600, [9; 16]);
            Token::parse(&sign(&c, k)).unwrap()
        };
        let before = make(&old, &[Scope::Read]);
        before.verify(&reg, "o/log", now).unwrap();
        assert_eq!(before.allows(Scope::Read), Ok(()));
        assert_eq!(
            before.allows(Scope::Publish),
            Err(TokenError::Scope(Scope::Publish))
        );
        let rotate = signed(
            "bob",
            &old,
            Action::KeyRotate {
                new_key: encode_public_key(&new.verifying_key()),
            },
        );
        reg.apply(1, &rotate).unwrap();
        assert_eq!(before.verify(&reg, "o/log", now), Err(TokenError::Revoked));
        let after = make(&new, &[Scope::Read, Scope::Publish]);
        after.verify(&reg, "o/log", now).unwrap();
        assert_eq!(after.claims.scope, vec![Scope::Publish, Scope::Read]);
    }
}
