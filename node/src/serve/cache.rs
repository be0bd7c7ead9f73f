//! Answers of successful GETs of derived documents and release files of up to 8 MiB, kept
//! until the origin's log grows: they depend on nothing else (pages on the Host too, which is
//! part of the key: their canonical URLs name it). Live views (the checkpoint, the native API,
//! metrics) and tiles (read straight from RocksDB) are not kept; larger release zips stream from
//! disk. Also counts requests.

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

#[derive(Debug, Default)]
struct CachedDocs {
    size: u64,
    bytes: usize,
    docs: HashMap<String, CachedDoc>,
}

/// Responses by path, valid for one log size: a new size (a commit) empties it.
#[derive(Debug, Default)]
pub struct DocCache {
    inner: Mutex<CachedDocs>,
}

impl DocCache {
    /// Largest response kept.
    pub const MAX_ITEM: usize = 8 << 20;
    /// Bytes kept in all; past it, the cache starts over.
    pub const MAX_TOTAL: usize = 256 << 20;

    /// A cached response for `path` at log size `size`.
    pub fn get(&self, size: u64, path: &str) -> Option<CachedDoc> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size {
            return None;
        }
        g.docs.get(path).cloned()
    }

    /// Keeps a response for `path` at log size `size`.
    pub fn put(&self, size: u64, path: String, content_type: HeaderValue, body: Bytes) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.size != size || g.bytes + body.len() > Self::MAX_TOTAL {
            *g = CachedDocs {
                size,
                ..CachedDocs::default()
            };
        }
        g.bytes += body.len();
        g.docs.insert(path, (content_type, body));
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
        let size = self.origin.size();
        let cache = self.cache.clone();
        let key = if cacheable(&req) {
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let key = format!("{host}{}", req.uri().path());
            if let Some((ct, body)) = cache.get(size, &key) {
                let resp = ([(header::CONTENT_TYPE, ct)], body).into_response();
                return Box::pin(std::future::ready(Ok(resp)));
            }
            Some(key)
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
                cache.put(size, key, ct, bytes.clone());
            }
            Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
        })
    }
}
