//! C2SP tlog-mirror and monitoring paths. Each log the node holds is served where
//! tlog-witness's monitoring and tlog-mirror's retrieval put it:
//! `/monitor/<hex SHA-256 of the origin>/checkpoint` (the newest checkpoint this node verified,
//! with the cosignatures it holds, its own among them once it cosigned) and
//! `/monitor/<hex>/tile/…` (the tiles of that checkpoint). The node's own origin and every
//! mirrored public origin are served; private origins are not (their gate asks for a
//! member's token at their own paths). tlog-mirror's submission prefix is `/mirror`:
//! `POST /mirror/add-checkpoint` and `POST /mirror/add-entries` (`federation::mirror`).

use std::sync::Arc;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use crate::federation::mirror::MirrorAnswer;

use super::{ApiError, AppState, Ctx};

/// The hex SHA-256 of an origin line: its monitoring path segment.
pub fn origin_id(origin: &str) -> String {
    pgext_log::hex(&pgext_log::sha256(origin.as_bytes()))
}

fn ctx_of(app: &Arc<AppState>, id: &str) -> Result<Ctx, ApiError> {
    let served = app
        .origins
        .iter()
        .filter(|s| s.guard.is_none())
        .find(|s| origin_id(&s.origin.name) == id.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(format!("no public log {id:.64} here")))?;
    Ok(Ctx {
        app: app.clone(),
        origin: served.origin.clone(),
        search: served.search.clone(),
        guard: None,
    })
}

/// `GET /monitor/{id}/checkpoint`.
pub async fn checkpoint(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    super::api::checkpoint(State(ctx_of(&app, &id)?)).await
}

/// `GET /monitor/{id}/tile/{*path}`.
pub async fn tile(
    State(app): State<Arc<AppState>>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    super::api::tile(State(ctx_of(&app, &id)?), Path(path)).await
}

/// How long an `add-entries` upload may pause between two pieces of its body before it is
/// taken as ended there.
const UPLOAD_STALL: Duration = Duration::from_secs(30);
/// The longest one `add-entries` request may take: 32 packages of 256 entries fit in it at
/// any sane rate, and a client trickling bytes does not hold a reader for longer.
const UPLOAD_LIMIT: Duration = Duration::from_secs(600);

fn mirror_answer((status, content_type, body): MirrorAnswer) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::ACCEPT_ENCODING, "gzip"),
        ],
        body,
    )
        .into_response()
}

fn not_mirroring() -> MirrorAnswer {
    (
        404,
        "text/plain; charset=utf-8",
        b"this node is not in a federation and mirrors no log\n".to_vec(),
    )
}

/// `POST /mirror/add-checkpoint`: C2SP tlog-mirror's pending checkpoint.
pub async fn mirror_add_checkpoint(State(app): State<Arc<AppState>>, body: Bytes) -> Response {
    mirror_answer(match &app.federation {
        Some(fed) => fed.mirror_add_checkpoint(&body).await,
        None => not_mirroring(),
    })
}

/// `POST /mirror/add-entries`: C2SP tlog-mirror's upload, read as it streams in (gzip or
/// not), package by package.
pub async fn add_entries(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(fed) = app.federation.clone() else {
        return mirror_answer(not_mirroring());
    };
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().map(str::trim))
    {
        None | Some(Ok("identity")) => false,
        Some(Ok("gzip" | "x-gzip")) => true,
        Some(_) => {
            return mirror_answer((
                415,
                "text/plain; charset=utf-8",
                b"add-entries bodies are sent as they are or gzip-compressed\n".to_vec(),
            ));
        }
    };
    // A client that stops sending ends its upload there: what came is kept.
    let end = tokio::time::Instant::now() + UPLOAD_LIMIT;
    let chunks = futures::stream::unfold(body.into_data_stream(), move |mut s| async move {
        let until = end.min(tokio::time::Instant::now() + UPLOAD_STALL);
        match tokio::time::timeout_at(until, s.next()).await {
            Ok(Some(Ok(b))) => Some((Ok(b), s)),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), s)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the upload stalled or took too long",
                )),
                s,
            )),
        }
    });
    let bridge =
        tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(Box::pin(chunks)));
    mirror_answer(fed.add_entries(Box::new(bridge), gzip).await)
}
