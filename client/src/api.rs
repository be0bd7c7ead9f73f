//! A node's HTTP API.

pub use pgext_spec::api::Receipt;
use pgext_spec::entry::Entry;

use crate::Error;

/// A node, by base URL.
#[derive(Debug, Clone)]
pub struct Node {
    base: String,
    http: reqwest::Client,
}

async fn answer(resp: reqwest::Response) -> Result<Receipt, Error> {
    answer_as(resp).await
}

async fn answer_as<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, Error> {
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Api(format!("unreadable answer ({status}): {e}")))?;
    if !status.is_success() {
        let (code, detail) = crate::http::error_of(&body);
        return Err(Error::Refused {
            status: status.as_u16(),
            text: format!("{status} {code}: {detail}"),
            code,
        });
    }
    serde_json::from_slice(&body).map_err(|e| Error::Api(format!("not the answer expected: {e}")))
}

impl Node {
    /// A node at `base` (`http://host:port`).
    pub fn new(base: &str) -> Node {
        Node::with_client(base, crate::http::client())
    }

    /// A node at `base`, asked with `http` (a client carrying a registry's token).
    pub fn with_client(base: &str, http: reqwest::Client) -> Node {
        Node {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// Submits an account, key, owner or yank entry.
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn submit(&self, entry: &Entry) -> Result<Receipt, Error> {
        let resp = self
            .http
            .post(format!("{}/api/v1/entries", self.base))
            .header("content-type", "application/json")
            .body(entry.to_bytes())
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        answer(resp).await
    }

    /// What a CI's ID token must be for this node's origin (trusted publishing).
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn trusted_publishing(
        &self,
    ) -> Result<pgext_spec::trusted::TrustedPublishingInfo, Error> {
        self.ask(
            self.http
                .get(format!("{}/api/v1/trusted-publishing", self.base)),
        )
        .await
    }

    /// Sends a request; its JSON answer, or the node's refusal.
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, Error> {
        let resp = req
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        answer_as(resp).await
    }

    /// Exchanges a CI's ID token for a short-lived key.
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn ci_key(
        &self,
        req: &pgext_spec::trusted::CiKeyRequest,
    ) -> Result<pgext_spec::trusted::CiKeyIssued, Error> {
        let url = format!("{}/api/v1/trusted-publishing/keys", self.base);
        self.ask(self.http.post(url).json(req)).await
    }

    /// Uploads a build attestation with its binary package.
    ///
    /// # Errors
    /// The node's refusal, or a transport error.
    pub async fn attest(
        &self,
        entry: &Entry,
        package: Vec<u8>,
        file_name: &str,
    ) -> Result<Receipt, Error> {
        self.upload("/api/v1/builds", entry, "binary", package, file_name)
            .await
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
    ) -> Result<Receipt, Error> {
        self.upload("/api/v1/releases", entry, "archive", archive, file_name)
            .await
    }

    /// A multipart upload: the signed statement first (the node may judge it before it reads
    /// the file), then the file in `field`.
    async fn upload(
        &self,
        path: &str,
        entry: &Entry,
        field: &'static str,
        bytes: Vec<u8>,
        file_name: &str,
    ) -> Result<Receipt, Error> {
        let form = reqwest::multipart::Form::new()
            .part(
                "entry",
                reqwest::multipart::Part::bytes(entry.to_bytes())
                    .mime_str("application/json")
                    .map_err(|e| Error::Api(e.to_string()))?,
            )
            .part(
                field,
                reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
            );
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .multipart(form)
            .send()
            .await
            .map_err(|e| Error::Unreachable(e.to_string()))?;
        answer(resp).await
    }
}
