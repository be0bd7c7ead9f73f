//! The SDK's one HTTP client: built once per process (connection pool, user agent, connect
//! timeout), and the one reading of a node's JSON error shape (`pgext_spec::api::ErrorBody`).

use std::sync::OnceLock;
use std::time::Duration;

use pgext_spec::api::ErrorBody;

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("pgext/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
}

/// The shared client.
pub fn client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| builder().build().unwrap_or_default())
        .clone()
}

/// A client whose requests carry `token` as a bearer token (the shared client when there is
/// none). The header is marked sensitive: it never appears in debug output.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let Some(token) = token else {
        return client();
    };
    let Ok(mut value) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) else {
        return client();
    };
    value.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, value);
    builder()
        .default_headers(headers)
        .build()
        .unwrap_or_else(|_| client())
}

/// The `code` and `detail` of a node's error answer; for an answer not in the shape, a code of
/// `error` and the start of the body.
pub fn error_of(body: &[u8]) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let first = e
                .errors
                .into_iter()
                .next()
                .unwrap_or_else(|| unreachable!());
            (first.code, first.detail)
        }
        _ => (
            "error".into(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    }
}

/// `s` as a URL query value (or path segment): unreserved characters as they are, every other
/// byte percent-encoded.
pub fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_error_shape_and_anything_else() {
        let (code, detail) =
            super::error_of(br#"{"errors":[{"code":"not-found","detail":"gone"}]}"#);
        assert_eq!((code.as_str(), detail.as_str()), ("not-found", "gone"));
        let (code, detail) = super::error_of(b"<html>bad gateway</html>");
        assert_eq!(
            (code.as_str(), detail.as_str()),
            ("error", "<html>bad gateway</html>")
        );
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(super::query_value("pg_partman"), "pg_partman");
        assert_eq!(super::query_value("a&b=c d"), "a%26b%3Dc%20d");
        assert_eq!(super::query_value("1.0.0+build"), "1.0.0%2Bbuild");
    }
}
