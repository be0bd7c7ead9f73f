//! Trusted publishing over HTTP (`spec/trusted-publishing.md`): what a CI's ID token must be,
//! the exchange of a verified token for a short-lived key (a `ci_key` entry sequenced here),
//! and a dist's trusted publishers. Only the node that sequences an origin exchanges tokens
//! for it: the log key signs the entry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use pgext_spec::trusted::{CiKeyRequest, PublisherDoc, Publishers};

use super::api::{ApiResult, json_doc};
use super::{ApiError, Ctx};
use crate::trusted::{MAX_TOKEN_BYTES, Trusted, TrustedError};

impl From<TrustedError> for ApiError {
    fn from(e: TrustedError) -> ApiError {
        match e {
            TrustedError::Token(d) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid-token", d),
            TrustedError::Issuer(d) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "issuer-unreachable", d)
            }
            TrustedError::NotTrusted(d) => ApiError::new(StatusCode::FORBIDDEN, "not-trusted", d),
            TrustedError::Request(d) => ApiError::bad_request(d),
        }
    }
}

fn service(c: &Ctx) -> Result<&Trusted, ApiError> {
    match (&c.app.trusted, c.origin.is_sequencer()) {
        (Some(t), true) => Ok(t),
        _ => Err(ApiError::not_found(
            "trusted publishing is served by the node that sequences this origin",
        )),
    }
}

/// `GET /api/v1/trusted-publishing`: the audience and issuers a token must have.
pub async fn info(State(c): State<Ctx>) -> ApiResult {
    Ok(json_doc(service(&c)?.info()))
}

/// `POST /api/v1/trusted-publishing/keys`: a verified ID token whose run one of the dist's
/// trusted publishers matches gets its key recorded; 401 for a token not taken, 403 for a run
/// no publisher trusts.
pub async fn keys(State(c): State<Ctx>, body: Bytes) -> ApiResult {
    let t = service(&c)?;
    if body.len() > MAX_TOKEN_BYTES + 4096 {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "a key request is a token, a dist and a key: at most 20 KiB",
        ));
    }
    let req: CiKeyRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("not a key request: {e}")))?;
    let verified = t.verify(&req.token).await?;
    let snap = c.origin.snapshot();
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let (entry, mut issued) =
        t.ci_key_entry(&snap.registry, (&req.dist, &req.key), verified, now)?;
    let receipt = c.origin.sequence(entry).await?;
    issued.index = receipt.index;
    tracing::info!(dist = %issued.dist, repository = %issued.claims.repository, index = issued.index, "CI key recorded");
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

/// `GET /api/v1/dists/{dist}/publishers`.
pub async fn publishers(State(c): State<Ctx>, Path(dist): Path<String>) -> ApiResult {
    let snap = c.origin.snapshot();
    let d = snap
        .registry
        .dist(&dist)
        .ok_or_else(|| ApiError::not_found(format!("distribution {dist} not found")))?;
    Ok(json_doc(Publishers {
        dist: d.name.clone(),
        publishers: snap
            .registry
            .publishers(&d.name)
            .iter()
            .map(|p| PublisherDoc {
                publisher: p.publisher.clone(),
                user: p.user.clone(),
                index: p.index,
            })
            .collect(),
    }))
}

/// What a release page shows of a release published from CI: the run the node verified.
pub fn page_view(
    reg: &pgext_spec::authority::Registry,
    r: &pgext_spec::authority::ReleaseState,
) -> Option<serde_json::Value> {
    let ck = reg.ci_key(r.ci.as_deref()?)?;
    let c = &ck.claims;
    Some(serde_json::json!({
        "issuer": c.issuer, "repository": c.repository, "workflow": c.workflow,
        "ref": c.git_ref, "sha": c.sha, "environment": c.environment, "run": c.run,
        "index": ck.index, "key_id": r.ci,
    }))
}
