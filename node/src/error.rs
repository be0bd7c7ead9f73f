//! The one JSON error shape of the HTTP API: `{"errors":[{"code": "...", "detail": "..."}]}`,
//! with a status code that says whose fault it is.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pgext_spec::authority::{Rule, Violation};
use serde_json::json;

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

    /// 422 for well-formed requests whose content is refused.
    pub fn invalid(code: &str, detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 500.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            detail.to_string(),
        )
    }
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> ApiError {
        let status = match v.rule {
            Rule::UnknownActor | Rule::KeyNotActive | Rule::BadSignature => {
                StatusCode::UNAUTHORIZED
            }
            Rule::NotOwner | Rule::ExtensionOwned => StatusCode::FORBIDDEN,
            Rule::AccountExists | Rule::DuplicateVersion | Rule::KeyReused => StatusCode::CONFLICT,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, v.rule.as_str(), v.to_string())
    }
}

impl ApiError {
    /// The JSON body of the answer.
    pub fn body(&self) -> serde_json::Value {
        json!({"errors": [{"code": self.code, "detail": self.detail}]})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
