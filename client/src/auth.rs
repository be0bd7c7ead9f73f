//! Reading a private registry (`spec/access.md`): the token a registry's requests carry (one
//! from the configuration or `PGEXT_TOKEN`, else one signed here with the signing key once a
//! node answers 401, [`Access`]), tokens made for other clients (`pgext token create`,
//! `pgext login`), and the mirror URL that carries a token for clients that cannot send
//! headers (pgxnclient).

use pgext_spec::token::{self, Scope};

use crate::Error;
use crate::release::Identity;
use crate::trust::RegistryConfig;

/// The environment variable a CI job or an auditor puts a token in.
pub const TOKEN_ENV: &str = "PGEXT_TOKEN";
/// How long the tokens `pgext` signs for its own requests live.
pub const OWN_TOKEN_SECS: u64 = 600;

/// A token for `origin`, signed by `id`, allowing `scope` for `lifetime` seconds from now.
pub fn make_token(id: &Identity, origin: &str, scope: &[Scope], lifetime: u64) -> String {
    use rand::RngCore as _;
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let claims = token::claims(
        origin,
        &id.user,
        &id.key,
        scope,
        crate::release::now(),
        lifetime,
        nonce,
    );
    token::sign(&claims, &id.key)
}

/// A token the user gave for `reg`: its configured `token`, else `PGEXT_TOKEN`.
fn given_token(reg: &RegistryConfig) -> Option<String> {
    if let Some(t) = reg.token.as_ref().filter(|t| !t.is_empty()) {
        return Some(t.clone());
    }
    std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The token `reg`'s requests carry: a token the user gave ([`given_token`]), else one signed
/// now with `id` (or the signing key, when `id` is `None` and there is one) for the registry's
/// origin. `None` for a registry whose key is not known yet and that has no token.
pub fn token_for(reg: &RegistryConfig, id: Option<&Identity>) -> Option<String> {
    if let Some(t) = given_token(reg) {
        return Some(t);
    }
    let origin = reg.log_key().ok()?.name().to_string();
    let own;
    let id = match id {
        Some(id) => id,
        None => {
            own = crate::keys::load_identity(None).ok()?;
            &own
        }
    };
    Some(make_token(
        id,
        &origin,
        &[Scope::Publish, Scope::Read],
        OWN_TOKEN_SECS,
    ))
}

/// The HTTP client for submissions to a registry's nodes: its requests carry the registry's
/// token ([`token_for`]) from the first (an archive is not sent twice to learn it is needed).
pub fn client_for(reg: &RegistryConfig, id: Option<&Identity>) -> reqwest::Client {
    crate::http::client_with(token_for(reg, id).as_deref())
}

/// How a registry's reads are sent: with the token the user gave, if any; else anonymously
/// until a node answers 401 (a private registry), and from then on with a token signed with
/// the signing key. A public registry thus never learns who reads it, and the key file is not
/// read for it.
#[derive(Debug, Clone)]
pub struct Access {
    base: reqwest::Client,
    reg: RegistryConfig,
    id: Option<Identity>,
    member: std::sync::Arc<std::sync::OnceLock<Option<reqwest::Client>>>,
}

impl Access {
    /// For the nodes of `reg`; `id` signs the token a private registry asks for (`None`: the
    /// signing key, read when first needed).
    pub fn new(reg: &RegistryConfig, id: Option<Identity>) -> Access {
        Access {
            base: crate::http::client_with(given_token(reg).as_deref()),
            reg: reg.clone(),
            id,
            member: std::sync::Arc::default(),
        }
    }

    /// The client for the next request.
    pub fn client(&self) -> &reqwest::Client {
        self.member
            .get()
            .and_then(Option::as_ref)
            .unwrap_or(&self.base)
    }

    /// After a 401: the client carrying a member's token, the first time only (`None` when it
    /// was tried already, or there is no token to make).
    pub fn after_unauthorized(&self) -> Option<&reqwest::Client> {
        if self.member.get().is_some() {
            return None;
        }
        self.member
            .get_or_init(|| {
                token_for(&self.reg, self.id.as_ref()).map(|t| crate::http::client_with(Some(&t)))
            })
            .as_ref()
    }

    /// GET `url`: anonymously first, again with a member's token after a 401.
    ///
    /// # Errors
    /// The transport's error.
    pub async fn get(&self, url: &str) -> reqwest::Result<reqwest::Response> {
        let r = self.client().get(url).send().await?;
        if r.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(r);
        }
        match self.after_unauthorized() {
            Some(member) => member.get(url).send().await,
            None => Ok(r),
        }
    }
}

/// A duration as people write it: `30d`, `12h`, `90m`, `45s`, or seconds.
///
/// # Errors
/// When it is none of these, zero, or longer than a token may live.
pub fn parse_duration(text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::Request(format!(
            "{text:?} is not a duration: use a number with d, h, m or s (30d, 12h)"
        ))
    };
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        'd' => n.checked_mul(86_400),
        'h' => n.checked_mul(3_600),
        'm' => n.checked_mul(60),
        's' => Some(n),
        _ => None,
    }
    .ok_or_else(bad)?;
    if secs == 0 || secs > token::MAX_LIFETIME {
        return Err(Error::Request(format!(
            "a token lives between 1 second and {} days",
            token::MAX_LIFETIME / 86_400
        )));
    }
    Ok(secs)
}

/// `url` with the token as its first path segment (`http://host/t/TOKEN/origins/x`): the
/// mirror URL for clients that cannot send headers.
pub fn mirror_url(url: &str, token: &str) -> String {
    let url = url.trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if path.is_empty() {
        format!("{scheme}://{host}/t/{token}/")
    } else {
        format!("{scheme}://{host}/t/{token}/{path}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_duration("90m").unwrap(), 5_400);
        assert_eq!(parse_duration("45").unwrap(), 45);
        for bad in ["", "d", "0d", "3w", "-1h", "401d", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_mirror_url_carries_the_token_first() {
        assert_eq!(
            mirror_url("http://h:1", "pgext1.a.b"),
            "http://h:1/t/pgext1.a.b/"
        );
        assert_eq!(
            mirror_url("https://h/origins/acme/", "T"),
            "https://h/t/T/origins/acme/"
        );
    }
}
