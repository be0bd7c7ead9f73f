//! Answers of successful GETs of derived documents and release files of up to 8 MiB, kept
//! until the origin's log grows or it takes a download count statement (documents show
//! counts): they depend on nothing else (HTML pages on the Host too, and are kept per Host:
//! their canonical URLs name it). Live views (the checkpoint, the native API,
//! metrics) and tiles (read straight from RocksDB) are not kept; larger release zips stream from
//! disk. Also counts requests, and the release zips it serves (`spec/counts.md`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::metrics::Metrics;
use crate::origin::Origin;

/// A cached answer: content type and body.
type CachedDoc = (HeaderValue, Bytes);

/// What is kept for one path: a document (the same for every Host), or pages by Host (their
/// canonical URLs name it).
#[derive(Debug, Default)]
struct ForPath {
    any_host: Option<CachedDoc>,
    by_host: Vec<(String, CachedDoc)>,
}

/// Most Hosts a page is kept for.
const MAX_HOSTS: usize = 8;

/// What the cached answers were made from: the log size, and how many count statements the
/// origin had taken (documents show downloads).
pub type Version = (u64, u64);

#[derive(Debug, Default)]
struct CachedDocs {
    size: Version,
    bytes: usize,
    paths: HashMap<String, ForPath>,
}

/// Responses by path, valid for one [`Version`]: a commit or a count statement taken empties
/// it. A lookup allocates nothing.
#[derive(Debug, Default)]
pub struct DocCache {
    inner: Mutex<CachedDocs>,
}

impl DocCache {
    /// Largest response kept.
    pub const MAX_ITEM: usize = 8 << 20;
    /// Bytes kept in all; past it, the cache starts over.
    pub const MAX_TOTAL: usize = 256 << 20;

    /// A cached response for `path` asked of `host` at `size`.
    pub fn get(&self, size: Version, host: &str, path: &str) -> Option<CachedDoc> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size {
            return None;
        }
        let p = g.paths.get(path)?;
        p.any_host.clone().or_else(|| {
            p.by_host
                .iter()
                .find(|(h, _)| h == host)
                .map(|(_, d)| d.clone())
        })
    }

    /// Keeps a response for `path` at `size`: an HTML page for `host` only, any other
    /// document for every Host.
    pub fn put(
        &self,
        size: Version,
        host: &str,
        path: &str,
        content_type: HeaderValue,
        body: Bytes,
    ) {
        let page = content_type.as_bytes().starts_with(b"text/html");
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size || g.bytes + body.len() > Self::MAX_TOTAL {
            *g = CachedDocs {
                size,
                ..CachedDocs::default()
            };
        }
        g.bytes += body.len();
        let entry = g.paths.entry(path.to_string()).or_default();
        if !page {
            entry.any_host = Some((content_type, body));
        } else if entry.by_host.len() < MAX_HOSTS {
            entry.by_host.push((host.to_string(), (content_type, body)));
        }
    }
}

/// The cache in front of one origin's routes: a hit costs one lookup and no routing.
#[derive(Clone, Debug)]
pub struct CacheService<S> {
    origin: Arc<Origin>,
    metrics: Arc<Metrics>,
    cache: Arc<DocCache>,
    inner: S,
}

impl<S> CacheService<S> {
    /// A cache for `origin` in front of `inner`.
    pub fn new(origin: Arc<Origin>, metrics: Arc<Metrics>, inner: S) -> CacheService<S> {
        CacheService {
            origin,
            metrics,
            cache: Arc::default(),
            inner,
        }
    }
}

type Request = axum::extract::Request;
type BoxResponse =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

/// The release a GET of `/dist/{dist}/{version}/{dist}-{version}.zip` downloads: what the
/// node counts (`spec/counts.md`), whether the cache or the handler answers.
fn download_of(req: &Request) -> Option<(String, String)> {
    if req.method() != axum::http::Method::GET {
        return None;
    }
    let mut parts = req.uri().path().strip_prefix("/dist/")?.split('/');
    let (dist, version, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let want = format!("{dist}-{version}.zip");
    file.eq_ignore_ascii_case(&want)
        .then(|| (dist.to_string(), version.to_string()))
}

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
        Metrics::inc(&self.metrics.http_requests);
        let size = (self.origin.size(), self.origin.counts_taken());
        let download = download_of(&req);
        let cache = self.cache.clone();
        let key = if cacheable(&req) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let path = req.uri().path();
            if let Some((ct, body)) = cache.get(size, host, path) {
                if let Some((d, v)) = &download {
                    self.origin.count_download(d, v);
                }
                let resp = ([(header::CONTENT_TYPE, ct)], body).into_response();
                return Box::pin(std::future::ready(Ok(resp)));
            }
            Some((host.to_string(), path.to_string()))
        } else {
            None
        };
        // The clone that was made ready is the one to call (tower's readiness contract).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let origin = self.origin.clone();
        Box::pin(async move {
            let resp = inner.call(req).await?;
            if let Some((d, v)) = download.filter(|_| resp.status() == StatusCode::OK) {
                origin.count_download(&d, &v);
            }
            let Some(key) = key.filter(|_| resp.status() == StatusCode::OK) else {
                return Ok(resp);
            };
            use axum::body::HttpBody as _;
            // Documents are made in memory: their size is known. Larger ones pass uncached.
            let small = resp
                .body()
                .size_hint()
                .exact()
                .is_some_and(|n| n <= DocCache::MAX_ITEM as u64);
            if !small {
                return Ok(resp);
            }
            let (parts, body) = resp.into_parts();
            let bytes = match axum::body::to_bytes(body, DocCache::MAX_ITEM).await {
                Ok(b) => b,
                Err(e) => return Ok(ApiError::internal(e).into_response()),
            };
            if let Some(ct) = parts.headers.get(header::CONTENT_TYPE).cloned() {
                cache.put(size, &key.0, &key.1, ct, bytes.clone());
            }
            Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
        })
    }
}
