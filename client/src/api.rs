//! A node's HTTP API.

pub use pgext_spec::api::Receipt;
use pgext_spec::entry::Entry;
use serde_json::Value;

use crate::ClientError;

/// A node, by base URL.
#[derive(Debug, Clone)]
pub struct Node {
    base: String,
    http: reqwest::Client,
}

/// The `code` and `detail` of a node's JSON error answer (`spec/openapi.json`).
pub(crate) fn error_of(body: &Value) -> (&str, &str) {
    let e = &body["errors"][0];
    (
        e["code"].as_str().unwrap_or("error"),
        e["detail"].as_str().unwrap_or("no detail"),
    )
}

async fn answer(resp: reqwest::Response) -> Result<Receipt, ClientError> {
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| ClientError::Api(format!("unreadable answer ({status}): {e}")))?;
    if !status.is_success() {
        let (code, detail) = error_of(&body);
        return Err(ClientError::Api(format!("{status} {code}: {detail}")));
    }
    serde_json::from_value(body).map_err(|e| ClientError::Api(e.to_string()))
}

impl Node {
    /// A node at `base` (`http://host:port`).
    pub fn new(base: &str) -> Node {
        Node {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Submits an account, key, owner or yank entry.
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn submit(&self, entry: &Entry) -> Result<Receipt, ClientError> {
        let resp = self
            .http
            .post(format!("{}/api/v1/entries", self.base))
            .header("content-type", "application/json")
            .body(entry.to_bytes())
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        answer(resp).await
    }

    /// Uploads a release: the archive and its signed statement.
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn publish(
        &self,
        entry: &Entry,
        archive: Vec<u8>,
        file_name: &str,
    ) -> Result<Receipt, ClientError> {
        let form = reqwest::multipart::Form::new()
            .part(
                "entry",
                reqwest::multipart::Part::bytes(entry.to_bytes())
                    .mime_str("application/json")
                    .map_err(|e| ClientError::Api(e.to_string()))?,
            )
            .part(
                "archive",
                reqwest::multipart::Part::bytes(archive).file_name(file_name.to_string()),
            );
        let resp = self
            .http
            .post(format!("{}/api/v1/releases", self.base))
            .multipart(form)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(e.to_string()))?;
        answer(resp).await
    }
}
