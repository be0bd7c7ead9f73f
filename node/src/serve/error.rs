//! The one JSON error shape of the HTTP API, `{"errors":[{"code": "...", "detail": "..."}]}`
//! (`pgext_spec::api::ErrorBody`), with a status code that says whose fault it is. Errors of
//! the layers below become an [`ApiError`] here, at the edge, and nowhere else. The HTTP
//! framework's own refusals (body limits, multipart, path and query parsing, unknown routes
//! and methods) are turned into the same shape by [`json_rejections`].

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pgext_spec::api::ErrorBody;

use crate::origin::blobs::BlobError;
use crate::origin::{self, Refusal};
use crate::search::SearchError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub detail: String,
}

impl ApiError {
    /// An error with a status and code.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            detail: detail.into(),
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", what)
    }

    /// 400 for malformed requests.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 500: this node's fault.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail.to_string(),
        )
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::one(&self.code, &self.detail)
    }
}

impl From<origin::Error> for ApiError {
    fn from(e: origin::Error) -> ApiError {
        match e {
            origin::Error::Refused { kind, code, detail } => ApiError {
                status: status_of(kind),
                code: code.into_owned(),
                detail,
            },
            origin::Error::Blob(b) => b.into(),
            e => {
                tracing::error!("{e}");
                ApiError::internal(e)
            }
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> ApiError {
        match e {
            BlobError::BadName(_) => ApiError::not_found(e.to_string()),
            // The content the log names is not here as it should be: an alarm was raised;
            // tell the reader the truth rather than serve something else.
            e => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "blob-unavailable",
                format!("{e}; the node's operator has been alerted"),
            ),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> ApiError {
        ApiError::internal(e)
    }
}

/// The status of a refusal.
pub fn status_of(kind: Refusal) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::BAD_REQUEST)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The code of an error answer of the HTTP framework itself, by status.
fn framework_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    }
}

/// Rewrites every error answer that is not already in the JSON error shape (the framework's
/// own refusals: a body over the limit, a path or query that does not parse, a method not
/// allowed) into it, keeping the status and the framework's words as the detail.
pub async fn json_rejections(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // C2SP tlog-witness and tlog-mirror answers are plain text by those specs.
    let witness = req.method() == axum::http::Method::POST
        && (req.uri().path().ends_with("/add-checkpoint")
            || req.uri().path() == "/mirror/add-entries");
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    // Answers already in the shape, HTML pages and witness answers are left alone.
    if is_json || witness {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let detail = if detail.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("refused")
            .to_string()
    } else {
        detail
    };
    let mut out = ApiError::new(parts.status, framework_code(parts.status), detail).into_response();
    for (k, v) in &parts.headers {
        if k != axum::http::header::CONTENT_TYPE && k != axum::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
