//! Each log the node holds, where C2SP tlog-witness's monitoring and tlog-mirror's retrieval
//! put it: `/monitor/<hex SHA-256 of the origin>/checkpoint` (the newest checkpoint this node
//! verified, with the cosignatures it holds, its own among them once it cosigned) and
//! `/monitor/<hex>/tile/…` (the tiles of that checkpoint). The node's own origin and every
//! mirrored public origin are served; private origins are not (their gate asks for a
//! member's token at their own paths).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

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
