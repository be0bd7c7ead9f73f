//! The HTTP interface: PGXN's mirror+API layout, the log as C2SP tlog-tiles under `/log/`, the
//! native JSON API under `/api/v1/`, and `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pgext_log::{Tile, TileKind, TileReader, leaf_hash};
use pgext_spec::authority::{DistState, Registry, ReleaseState};
use pgext_spec::entry::Entry;
use serde_json::{Value, json};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::node::Shared;
use crate::pgxn;

type S = State<Arc<Shared>>;
type ApiResult = Result<Response, ApiError>;

/// The route table, recorded as it is built so tests can hold it against `spec/openapi.json`.
struct Routes {
    router: Router<Arc<Shared>>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: axum::handler::Handler<T, Arc<Shared>>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        self.router = self.router.route(path, get(h));
        self.table.push(("get", path));
        self
    }

    fn post<H: axum::handler::Handler<T, Arc<Shared>>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        self.router = self.router.route(path, post(h));
        self.table.push(("post", path));
        self
    }
}

fn routes() -> Routes {
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .get("/", crate::site::home)
    .get("/search", crate::site::search)
    .get("/dist/{name}/", crate::site::dist)
    .get("/dist/{name}/{version}/", crate::site::release)
    .get("/extension/{name}/", crate::site::extension)
    .get("/user/{name}/", crate::site::user)
    .get("/tag/{name}/", crate::site::tag)
    .get("/log/", crate::site::log)
    .get("/mirrors/", crate::site::mirrors)
    .get("/feeds/recent.xml", crate::site::feed_recent)
    .get("/feeds/dist/{file}", crate::site::feed_dist)
    .get("/feeds/user/{file}", crate::site::feed_user)
    .get("/feeds/tag/{file}", crate::site::feed_tag)
    .get("/robots.txt", crate::site::robots)
    .get("/sitemap.xml", crate::site::sitemap)
    .get("/index.json", || async { Json(pgxn::index_doc()) })
    .get("/dist/{file}", dist_json)
    .get("/dist/{dist}/{version}/{*file}", dist_file)
    .get("/extension/{file}", extension_json)
    .get("/user/{file}", user_json)
    .get("/tag/{file}", tag_json)
    .get("/stats/{file}", stats_json)
    .get("/users/{file}", userlist_json)
    .get("/meta/mirrors.json", mirrors_json)
    .get("/meta/spec.txt", spec_txt)
    .get("/log/checkpoint", checkpoint)
    .get("/log/tile/{*path}", tile)
    .get("/search/{kind}", pgxn_search)
    .get("/search/{kind}/", pgxn_search)
    .get("/api/v1/search", api_search)
    .get("/api/v1/log", log_info)
    .post("/api/v1/entries", post_entry)
    .get("/api/v1/entries/{index}", get_entry)
    .get("/api/v1/proofs/inclusion/{index}/{size}", inclusion)
    .get("/api/v1/proofs/consistency/{from}/{to}", consistency)
    .post("/api/v1/releases", post_release)
    .get("/api/v1/dists/{dist}", api_dist)
    .get("/api/v1/dists/{dist}/{version}/docs", api_docs)
    .get("/api/v1/dists/{dist}/{version}/docs/{*docpath}", api_doc)
    .get("/api/v1/accounts/{user}", api_account)
    .get("/api/v1/origins", api_origins)
    .get("/api/v1/evidence", api_evidence)
    .post("/add-checkpoint", add_checkpoint)
    .get("/metrics", |State(s): S| async move { s.metrics.render() })
}

/// Every (method, path) the node serves, in axum's syntax.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().table
}

/// The node's HTTP service: a span per request, then each origin's request counting and
/// document cache, then routing. The node's own origin is served at `/`, each mirrored origin
/// below its prefix (`/origins/{name}/`) with the same routes.
pub fn router(own: Arc<Shared>, mirrors: &[Arc<Shared>]) -> Router {
    let mut router = Router::new();
    for m in mirrors {
        router = router.nest_service(&m.prefix, origin_service(m.clone()));
    }
    router
        .fallback_service(origin_service(own))
        .layer(TraceLayer::new_for_http())
}

fn origin_service(shared: Arc<Shared>) -> CacheService<Router> {
    let body_limit = shared.config.limits.max_archive_bytes as usize + (1 << 20);
    let routed = routes()
        .router
        .fallback(|| async { ApiError::not_found("no such resource") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(shared.clone());
    // The cache sits in front of routing, so a hit costs one lookup and no routing or handler.
    CacheService {
        shared,
        inner: routed,
    }
}

/// Answers of successful GETs of derived documents and release files, kept until the log grows:
/// they depend on nothing else. Live views (the checkpoint, the native API, metrics) and tiles
/// (read straight from RocksDB) are not cached. Also counts requests.
#[derive(Clone, Debug)]
pub struct CacheService<S> {
    shared: Arc<Shared>,
    inner: S,
}

type Request = axum::extract::Request;
type BoxResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

fn cacheable(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == axum::http::Method::GET
        && req.uri().query().is_none()
        && !path.starts_with("/api/")
        && !path.starts_with("/log/")
        && path != "/metrics"
}

impl<S> tower::Service<Request> for CacheService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxResponse;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> BoxResponse {
        let s = self.shared.clone();
        Metrics::inc(&s.metrics.http_requests);
        let size = s.size();
        let key = if cacheable(&req) {
            let path = req.uri().path();
            if let Some((ct, body)) = s.doc_cache.get(size, path) {
                let resp = ([(header::CONTENT_TYPE, ct)], body).into_response();
                return Box::pin(std::future::ready(Ok(resp)));
            }
            Some(path.to_string())
        } else {
            None
        };
        // The clone that was made ready is the one to call (tower's readiness contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let resp = inner.call(req).await?;
            let Some(key) = key.filter(|_| resp.status() == StatusCode::OK) else {
                return Ok(resp);
            };
            let (parts, body) = resp.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, crate::node::DocCache::MAX_ITEM).await
            else {
                return Ok(ApiError::internal("response too large to buffer").into_response());
            };
            if let Some(ct) = parts.headers.get(header::CONTENT_TYPE).cloned() {
                s.doc_cache.put(size, key, ct, bytes.clone());
            }
            Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
        })
    }
}

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// Reads `q`, `o` and `l` as PGXN's searcher does: `q` required and not just `*` or `?`; `o`
/// and `l` numbers; `l` 50 by default and when 1024 or more.
fn search_params(
    p: &std::collections::HashMap<String, String>,
) -> Result<(String, usize, usize), ApiError> {
    let q = p.get("q").map(|q| q.trim()).unwrap_or_default();
    if q.is_empty() || q == "*" || q == "?" {
        return Err(ApiError::bad_request("a query (q) is required"));
    }
    let number = |k: &str, default: usize| match p.get(k).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request(format!("{k} must be a number, not {v:?}"))),
    };
    let o = number("o", 0)?;
    let l = match number("l", 50)? {
        0 | 1024.. => 50,
        l => l,
    };
    Ok((q.to_string(), o, l))
}

pub(crate) async fn search_blocking(
    s: Arc<Shared>,
    kind: crate::search::Kind,
    q: String,
    o: usize,
    l: usize,
) -> Result<crate::search::Page, ApiError> {
    tokio::task::spawn_blocking(move || run_search(&s, kind, &q, o, l))
        .await
        .map_err(ApiError::internal)?
}

fn run_search(
    s: &Shared,
    kind: crate::search::Kind,
    q: &str,
    o: usize,
    l: usize,
) -> Result<crate::search::Page, ApiError> {
    let index = s.search.get().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "search is starting",
        )
    })?;
    index.search(kind, q, o, l).map_err(ApiError::internal)
}

/// `/search/{docs|dists|extensions|users|tags}/?q=&o=&l=`, PGXN's shapes, with JSONP.
async fn pgxn_search(
    State(s): S,
    Path(kind): Path<String>,
    axum::extract::Query(p): Params,
) -> ApiResult {
    let kind = crate::search::Kind::parse(&kind)
        .ok_or_else(|| ApiError::not_found(format!("cannot search {kind}")))?;
    let (q, o, l) = search_params(&p)?;
    let page = search_blocking(s, kind, q.clone(), o, l).await?;
    let doc = json!({"query": q, "offset": o, "limit": l, "count": page.count, "hits": page.hits});
    Ok(jsonp(p.get("callback"), doc))
}

/// `/api/v1/search?q=&in=&o=&l=`: the same search, `in` defaulting to dists.
async fn api_search(State(s): S, axum::extract::Query(p): Params) -> ApiResult {
    let within = p.get("in").map_or("dists", String::as_str);
    let kind = crate::search::Kind::parse(within).ok_or_else(|| {
        ApiError::bad_request(format!(
            "in must be docs, dists, extensions, users or tags, not {within:?}"
        ))
    })?;
    let (q, o, l) = search_params(&p)?;
    let page = search_blocking(s, kind, q.clone(), o, l).await?;
    Ok(json_doc(
        json!({"query": q, "in": within, "offset": o, "limit": l, "count": page.count, "hits": page.hits}),
    ))
}

/// JSON, or `callback(JSON);` as JavaScript when a well-formed `callback` is given.
fn jsonp(callback: Option<&String>, doc: Value) -> Response {
    match callback.filter(|c| {
        !c.is_empty()
            && c.len() <= 64
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.$".contains(ch))
    }) {
        Some(cb) => (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            format!("{cb}({doc});"),
        )
            .into_response(),
        None => json_doc(doc),
    }
}

fn json_doc(v: Value) -> Response {
    Json(v).into_response()
}

fn registry(s: &Shared) -> std::sync::RwLockReadGuard<'_, Registry> {
    s.registry.read().unwrap_or_else(|p| p.into_inner())
}

fn strip_json(file: &str) -> Result<&str, ApiError> {
    file.strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(format!("{file} not found")))
}

async fn dist_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let name = strip_json(&file)?;
    let reg = registry(&s);
    let d = reg
        .dist(name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    pgxn::dist_doc(&s, d)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} has no releases")))
}

/// A dist and one of its releases, copied out of the registry so no lock is held across I/O.
fn release_of(
    s: &Shared,
    dist: &str,
    version: &str,
) -> Result<(DistState, ReleaseState), ApiError> {
    let reg = registry(s);
    let d = reg
        .dist(dist)
        .ok_or_else(|| ApiError::not_found(format!("distribution {dist} not found")))?;
    let r = d
        .releases
        .get(&version.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(format!("{dist} {version} not found")))?;
    Ok((d.clone(), r.clone()))
}

/// A release's files: its zip, META, README and tlog-proof (PGXN's mirror paths), and its
/// documents rendered as pages (`htmldoc`, `DOCPATH.html`). `/dist/NAME/doc/x.html`, PGXN's
/// site path for a document of the headline release, is one too.
async fn dist_file(
    State(s): S,
    headers: HeaderMap,
    Path((dist, version, file)): Path<(String, String, String)>,
) -> ApiResult {
    let (d, r) = match release_of(&s, &dist, &version) {
        Ok(found) => found,
        Err(e) => {
            let Some(docpath) = file.strip_suffix(".html") else {
                return Err(e);
            };
            let reg = registry(&s);
            let d = reg.dist(&dist).ok_or(e)?;
            let r = pgxn::shown(d)
                .ok_or_else(|| ApiError::not_found(format!("{dist} has no release")))?;
            return crate::site::doc_page(&s, &headers, d, r, &format!("{version}/{docpath}"));
        }
    };
    let base = crate::docs::base_name(&d.name, &r.release.version);
    let lower = file.to_ascii_lowercase();
    if let Some(docpath) = file.strip_suffix(".html") {
        return crate::site::doc_page(&s, &headers, &d, &r, docpath);
    }
    if lower == "meta.json" {
        return pgxn::release_meta(&s, &d, &r)
            .map(json_doc)
            .ok_or_else(|| ApiError::internal("META blob missing"));
    }
    if lower == format!("{base}.zip") {
        let zip = s.blobs.get(&r.release.sha256).map_err(ApiError::internal)?;
        return Ok(([(header::CONTENT_TYPE, "application/zip")], zip).into_response());
    }
    if lower == format!("{base}.zip.tlog-proof") {
        // The entry rides along, so the file alone proves the archive offline (spec/log.md).
        let receipt = crate::publish::receipt_of(&s, r.index)?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            receipt.proof,
        )
            .into_response());
    }
    if lower == "readme.txt" {
        let zip = s.blobs.get(&r.release.sha256).map_err(ApiError::internal)?;
        let readme = crate::docs::readme_of(&zip, &base)
            .ok_or_else(|| ApiError::not_found("this release has no README"))?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            readme,
        )
            .into_response());
    }
    Err(ApiError::not_found(format!("{file} not found")))
}

async fn extension_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let name = strip_json(&file)?;
    pgxn::extension_doc(&s, &registry(&s), name)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("extension {name} not found")))
}

async fn user_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let name = strip_json(&file)?;
    pgxn::user_doc(&s, &registry(&s), name)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))
}

async fn tag_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let name = strip_json(&file)?;
    pgxn::tag_doc(&s, &registry(&s), name)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("tag {name} not found")))
}

async fn stats_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let kind = strip_json(&file)?;
    pgxn::stats_doc(&s, &registry(&s), kind)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("no {kind} statistics")))
}

async fn userlist_json(State(s): S, Path(file): Path<String>) -> ApiResult {
    let letter = strip_json(&file)?;
    pgxn::userlist_doc(&registry(&s), letter)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found("user lists are per letter"))
}

async fn mirrors_json(State(s): S) -> Response {
    json_doc(pgxn::mirrors_doc(&s))
}

async fn spec_txt() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        pgxn::SPEC_TXT,
    )
        .into_response()
}

async fn checkpoint(State(s): S) -> ApiResult {
    let (_, note) = s.checkpoint();
    if note.is_empty() {
        return Err(ApiError::not_found(
            "no checkpoint of this origin has been verified here yet",
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        note,
    )
        .into_response())
}

/// The bytes of a tile or entry bundle at a tlog-tiles path (`tile/…`), exactly as the log
/// serves them over HTTP and libp2p: only tiles the published checkpoint implies, cut to the
/// requested width.
///
/// # Errors
/// 404 for paths that do not parse or tiles not in the log; 500 when the store fails.
pub fn tile_bytes(s: &Shared, path: &str) -> Result<(Tile, Vec<u8>), ApiError> {
    let tile = Tile::parse_path(path).map_err(|e| ApiError::not_found(e.to_string()))?;
    let size = s.size();
    // Only tiles implied by the published checkpoint exist, at widths up to its right edge.
    let available = match tile.kind {
        TileKind::Hashes(level) => {
            pgext_log::hash_tile_at(level, tile.index, size).map(|t| t.width)
        }
        TileKind::Entries => {
            let start = tile.index * pgext_log::TILE_WIDTH;
            (start < size).then(|| (size - start).min(pgext_log::TILE_WIDTH) as u16)
        }
    };
    if available.is_none_or(|w| w < tile.width) {
        return Err(ApiError::not_found(format!(
            "{} is not in the log",
            tile.path()
        )));
    }
    let data = s
        .store
        .read_tiles(&[tile])
        .map_err(ApiError::internal)?
        .pop()
        .unwrap_or_default();
    let bytes = match tile.kind {
        TileKind::Hashes(_) => data
            .get(..usize::from(tile.width) * 32)
            .ok_or_else(|| ApiError::internal("stored tile is short"))?
            .to_vec(),
        TileKind::Entries => {
            let entries = pgext_log::bundle_entries(&tile, &data).map_err(ApiError::internal)?;
            let mut out = Vec::new();
            for e in entries {
                pgext_log::push_entry(&mut out, e).map_err(ApiError::internal)?;
            }
            out
        }
    };
    Ok((tile, bytes))
}

async fn tile(State(s): S, Path(path): Path<String>) -> ApiResult {
    let (tile, bytes) = tile_bytes(&s, &format!("tile/{path}"))?;
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    // Full tiles never change; a partial tile of a given width never changes either, but only
    // the newest is linked from the checkpoint, so keep those short-lived in caches.
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
}

async fn log_info(State(s): S) -> Response {
    let (size, note) = s.checkpoint();
    json_doc(
        json!({"origin": s.origin, "vkey": s.vkey.to_string(), "size": size, "checkpoint": note, "tiles": format!("{}/log/", s.prefix), "role": role(&s), "halted": s.halted()}),
    )
}

/// Takes a submission: sequenced here when this node is the origin's sequencer, otherwise
/// forwarded over libp2p to the node that is, whose answer is returned unchanged.
async fn submit(s: Arc<Shared>, entry: Entry, archive: Option<Vec<u8>>) -> ApiResult {
    if s.submit.is_none() {
        if let Some(fed) = s.node.federation() {
            let (status, body) = fed.forward_submission(&s.origin, &entry, archive).await?;
            let status = StatusCode::from_u16(status).map_err(ApiError::internal)?;
            return Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
    }
    let receipt = crate::publish::submit(s, entry, archive).await?;
    Ok((
        StatusCode::CREATED,
        Json(crate::publish::receipt_json(&receipt)),
    )
        .into_response())
}

/// Parses a submitted entry, whatever its JSON spacing, into canonical form.
pub fn parse_submitted(bytes: &[u8]) -> Result<Entry, ApiError> {
    let entry: Entry = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("not an entry: {e}")))?;
    Entry::parse(&entry.to_bytes()).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn post_entry(State(s): S, body: Bytes) -> ApiResult {
    submit(s, parse_submitted(&body)?, None).await
}

async fn post_release(State(s): S, mut form: Multipart) -> ApiResult {
    let mut entry = None;
    let mut archive = None;
    let limit = s.config.limits.max_archive_bytes;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "archive-too-large",
                format!("uploads are limited to {limit} bytes"),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    };
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("entry") => {
                entry = Some(parse_submitted(&field.bytes().await.map_err(form_error)?)?)
            }
            Some("archive") => archive = Some(field.bytes().await.map_err(form_error)?.to_vec()),
            _ => {}
        }
    }
    let entry = entry.ok_or_else(|| {
        ApiError::bad_request("missing the `entry` field (the signed release statement)")
    })?;
    let archive = archive.ok_or_else(|| ApiError::bad_request("missing the `archive` field"))?;
    submit(s, entry, Some(archive)).await
}

async fn get_entry(State(s): S, Path(index): Path<u64>) -> ApiResult {
    let size = s.size();
    if index >= size {
        return Err(ApiError::not_found(format!(
            "entry {index} is not in the log (size {size})"
        )));
    }
    let bytes = s
        .store
        .entries(index, index + 1)
        .map_err(ApiError::internal)?
        .pop()
        .unwrap_or_default();
    let entry: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    Ok(json_doc(
        json!({"index": index, "leaf_hash": leaf_hash(&bytes).to_base64(), "entry": entry}),
    ))
}

fn proof_json(proof: &[pgext_log::Hash]) -> Vec<String> {
    proof.iter().map(|h| h.to_base64()).collect()
}

async fn inclusion(State(s): S, Path((index, size)): Path<(u64, u64)>) -> ApiResult {
    let (ours, _) = s.checkpoint();
    if index >= size || size > ours {
        return Err(ApiError::not_found(format!(
            "no inclusion proof of entry {index} in a tree of size {size} here (size {ours})"
        )));
    }
    let reader = pgext_log::TileHashReader::new(ours, &s.store);
    let proof = pgext_log::inclusion_proof(index, size, &reader).map_err(ApiError::internal)?;
    Ok(json_doc(
        json!({"index": index, "size": size, "proof": proof_json(&proof)}),
    ))
}

async fn consistency(State(s): S, Path((from, to)): Path<(u64, u64)>) -> ApiResult {
    let (ours, _) = s.checkpoint();
    if from > to || to > ours {
        return Err(ApiError::not_found(format!(
            "no consistency proof from size {from} to size {to} here (size {ours})"
        )));
    }
    let reader = pgext_log::TileHashReader::new(ours, &s.store);
    let proof = pgext_log::consistency_proof(from, to, &reader).map_err(ApiError::internal)?;
    Ok(json_doc(
        json!({"from": from, "to": to, "proof": proof_json(&proof)}),
    ))
}

async fn api_dist(State(s): S, Path(name): Path<String>) -> ApiResult {
    let reg = registry(&s);
    let d = reg
        .dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    let releases: Vec<Value> = d
        .releases
        .values()
        .map(|r| {
            json!({"version": r.release.version, "status": r.release.status.as_str(), "sha256": r.release.sha256, "sha1": r.release.sha1,
                   "size": r.release.size, "meta_sha256": r.release.meta_sha256, "provides": r.release.provides, "user": r.user,
                   "date": pgxn::date(r.time), "index": r.index, "yanked": r.yanked.is_some(), "yank_reason": r.yanked})
        })
        .collect();
    Ok(json_doc(
        json!({"name": d.name, "owners": d.owners, "releases": releases, "history": d.history}),
    ))
}

async fn api_docs(State(s): S, Path((dist, version)): Path<(String, String)>) -> ApiResult {
    let (d, r) = release_of(&s, &dist, &version)?;
    let docs = s.release_docs(&d.name, &r);
    let list: Vec<Value> = docs
        .docs
        .iter()
        .map(|doc| json!({"docpath": doc.docpath, "file": doc.file, "title": doc.title, "extension": doc.extension}))
        .collect();
    Ok(json_doc(
        json!({"dist": d.name, "version": r.release.version, "special_files": docs.special_files, "docs": list}),
    ))
}

async fn api_doc(
    State(s): S,
    Path((dist, version, docpath)): Path<(String, String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&s, &dist, &version)?;
    let docs = s.release_docs(&d.name, &r);
    let (doc, bytes) = crate::site::read_doc(&s, &docs, &d, &r, &docpath)?;
    Ok((
        [(header::CONTENT_TYPE, crate::docs::content_type(&doc.file))],
        bytes,
    )
        .into_response())
}

fn role(s: &Shared) -> &'static str {
    if s.submit.is_some() {
        "sequencer"
    } else {
        "mirror"
    }
}

async fn api_origins(State(s): S) -> Response {
    let origins: Vec<Value> = s
        .node
        .origins()
        .iter()
        .map(|o| {
            let (size, note) = o.checkpoint();
            json!({"origin": o.origin, "vkey": o.vkey.to_string(), "role": role(o), "prefix": format!("{}/", o.prefix),
                   "size": size, "checkpoint": (!note.is_empty()).then_some(note), "halted": o.halted()})
        })
        .collect();
    let v = &s.node;
    let scores: Vec<Value> = v
        .federation()
        .map(|f| f.scores())
        .unwrap_or_default()
        .into_iter()
        .map(|(peer, score)| json!({"peer_id": peer, "score": score}))
        .collect();
    json_doc(json!({
        "origins": origins,
        "peer_id": v.peer_id.get(),
        "p2p_addrs": v.p2p_addrs.get(),
        "witness": v.witness.get(),
        "peer_scores": scores,
    }))
}

async fn api_evidence(State(s): S) -> Response {
    let all: Vec<crate::federation::Evidence> =
        s.node.origins().iter().flat_map(|o| o.evidence()).collect();
    json_doc(json!({ "evidence": all }))
}

/// C2SP tlog-witness `add-checkpoint`, for the origins this node mirrors.
async fn add_checkpoint(State(s): S, body: Bytes) -> Response {
    let (status, body) = match s.node.federation() {
        Some(fed) => fed.add_checkpoint(&body).await,
        None => (
            404,
            b"this node is not in a federation and witnesses no log\n".to_vec(),
        ),
    };
    let ct = if status == 409 {
        pgext_log::SIZE_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

async fn api_account(State(s): S, Path(user): Path<String>) -> ApiResult {
    let reg = registry(&s);
    let a = reg
        .account(&user)
        .ok_or_else(|| ApiError::not_found(format!("account {user} not found")))?;
    let keys: Vec<Value> = a
        .keys
        .iter()
        .map(|(id, k)| json!({"key_id": id, "key": pgext_spec::authority::encode_public_key(&k.key), "active": k.active, "index": k.added}))
        .collect();
    let dists: Vec<&str> = reg
        .dists()
        .filter(|d| d.owners.contains(&a.user))
        .map(|d| d.name.as_str())
        .collect();
    Ok(json_doc(
        json!({"user": a.user, "name": a.name, "email": a.email, "uri": a.uri, "index": a.index, "keys": keys, "owns": dists, "history": a.history}),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn openapi_document_lists_exactly_the_routes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/openapi.json");
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = super::route_table()
            .into_iter()
            .map(|(m, p)| (m.to_string(), p.replace("{*", "{")))
            .collect();
        assert_eq!(documented, served);
    }
}
