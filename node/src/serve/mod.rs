//! The HTTP interface: PGXN's mirror+API layout ([`pgxn`]), the log as C2SP tlog-tiles and the
//! native JSON API under `/api/v1/` ([`api`]), search ([`search`]), the web site and feeds
//! ([`site`]), and `/metrics`. Built once at start-up on an [`AppState`]; each origin the node
//! serves gets the same routes (its own at `/`, each mirror below `/origins/{name}/`), with a
//! [`Ctx`] naming it. Handlers read the origin's current snapshot and never wait on a commit;
//! what reads a disk runs on the blocking pool.

pub mod access;
pub mod advisories;
pub mod api;
pub mod cache;
pub mod error;
pub mod monitor;
pub mod needs;
pub mod pgxn;
pub mod search;
pub mod site;
pub mod trusted;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::federation::Federation;
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::search::SearchIndex;

/// What the node as a whole shows: its peer identity, addresses and cosigner key.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// libp2p peer id.
    pub peer_id: Option<String>,
    /// libp2p listen addresses, each with `/p2p/<peer id>`.
    pub p2p_addrs: Vec<String>,
    /// The node's Ed25519 cosigner key.
    pub witness: Option<String>,
    /// The keys it cosigns mirrored checkpoints with, one per `witness_algorithms`.
    pub cosigners: Vec<String>,
}

/// One origin as the HTTP side serves it.
#[derive(Debug, Clone)]
pub struct Served {
    /// The log.
    pub origin: Arc<Origin>,
    /// Its search index, once open.
    pub search: Option<Arc<SearchIndex>>,
    /// Its tokens, when it is private.
    pub guard: Option<Arc<access::Guard>>,
}

impl Served {
    /// An origin to serve; private ones get a guard.
    pub fn new(origin: Arc<Origin>, search: Option<Arc<SearchIndex>>) -> Served {
        let guard = origin.private.then(Arc::default);
        Served {
            origin,
            search,
            guard,
        }
    }

    /// Whether a request presenting `tokens` may see this origin.
    pub fn visible_to(&self, tokens: &[String]) -> bool {
        self.guard
            .as_ref()
            .is_none_or(|g| g.admit(&self.origin, tokens).is_ok())
    }
}

/// Everything the HTTP side reads, made once at start-up.
#[derive(Debug)]
pub struct AppState {
    /// Every origin the node serves: its own first, then mirrors in configuration order.
    pub origins: Vec<Served>,
    /// The federation, when the node joined one.
    pub federation: Option<Arc<Federation>>,
    /// Node-wide facts.
    pub info: NodeInfo,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The bound HTTP address (PGXN's `mirrors.json`).
    pub http: SocketAddr,
    /// Largest release archive taken.
    pub max_archive_bytes: u64,
    /// Failed tokens per address.
    pub limiter: Arc<access::Limiter>,
    /// Turns for uploads (`[uploads] concurrent`), and how long one waits for its turn.
    pub uploads: (Arc<tokio::sync::Semaphore>, std::time::Duration),
    /// Trusted publishing of the node's own origin.
    pub trusted: Option<Arc<crate::trusted::Trusted>>,
}

/// A request's view: the node, and the origin the path names.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The node.
    pub app: Arc<AppState>,
    /// The origin.
    pub origin: Arc<Origin>,
    /// Its search index.
    pub search: Option<Arc<SearchIndex>>,
    /// Its tokens, when it is private.
    pub guard: Option<Arc<access::Guard>>,
}

impl Ctx {
    /// Runs `f` on the blocking pool with this view.
    ///
    /// # Errors
    /// What `f` returns.
    pub async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Ctx) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let c = self.clone();
        crate::origin::blocking(move || f(&c)).await
    }
}

/// The route table, recorded as it is built so tests can hold it against `spec/openapi.json`.
struct Routes {
    router: Router<Ctx>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn get<H: axum::handler::Handler<T, Ctx>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        self.router = self.router.route(path, get(h));
        self.table.push(("get", path));
        self
    }

    fn post<H: axum::handler::Handler<T, Ctx>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        self.router = self.router.route(path, post(h));
        self.table.push(("post", path));
        self
    }

    /// A POST whose body may be as large as a binary package, above the release limit the
    /// other routes keep.
    fn post_binary<H: axum::handler::Handler<T, Ctx>, T: 'static>(
        mut self,
        path: &'static str,
        h: H,
    ) -> Routes {
        let limit = pgext_spec::binary::MAX_BINARY_BYTES as usize + (1 << 20);
        self.router = self
            .router
            .route(path, post(h).layer(DefaultBodyLimit::max(limit)));
        self.table.push(("post", path));
        self
    }
}

fn routes() -> Routes {
    Routes {
        router: Router::new(),
        table: Vec::new(),
    }
    .get("/", site::pages::home)
    .get("/login", site::login::form)
    .post("/login", site::login::submit)
    .get("/logout", site::login::logout)
    .get("/search", site::pages::search)
    .get("/dist/{name}/", site::pages::dist)
    .get("/dist/{name}/{version}/", site::pages::release)
    .get("/extension/{name}/", site::pages::extension)
    .get("/user/{name}/", site::pages::user)
    .get("/tag/{name}/", site::pages::tag)
    .get("/categories/", site::pages::categories)
    .get("/category/{name}/", site::pages::category)
    .get("/log/", site::pages::log)
    .get("/log", site::pages::log_slash)
    .get("/mirrors/", site::pages::mirrors)
    .get("/mirrors", site::pages::mirrors_slash)
    .get("/dist/{name}/{version}", site::pages::release_slash)
    .get("/feeds/recent.xml", site::feeds::recent)
    .get("/feeds/dist/{file}", site::feeds::dist)
    .get("/feeds/user/{file}", site::feeds::user)
    .get("/feeds/tag/{file}", site::feeds::tag)
    .get("/feeds/advisories.xml", site::feeds::advisories)
    .get("/robots.txt", site::feeds::robots)
    .get("/sitemap.xml", site::feeds::sitemap)
    .get("/index.json", pgxn::index_json)
    .get("/dist/{file}", pgxn::dist_json)
    .get("/dist/{dist}/{version}/{*file}", pgxn::dist_file)
    .get("/extension/{file}", pgxn::extension_json)
    .get("/user/{file}", pgxn::user_json)
    .get("/tag/{file}", pgxn::tag_json)
    .get("/stats/{file}", pgxn::stats_json)
    .get("/users/{file}", pgxn::userlist_json)
    .get("/meta/mirrors.json", pgxn::mirrors_json)
    .get("/meta/spec.txt", pgxn::spec_txt)
    .get("/log/checkpoint", api::checkpoint)
    .get("/log/tile/{*path}", api::tile)
    .get("/search/{kind}", search::pgxn_search)
    .get("/search/{kind}/", search::pgxn_search)
    .get("/api/v1/search", search::api_search)
    .get("/api/v1/categories", search::categories)
    .get("/api/v1/categories/{category}", search::category)
    .get("/api/v1/log", api::log_info)
    .post("/api/v1/entries", api::post_entry)
    .get("/api/v1/entries/{index}", api::get_entry)
    .get("/api/v1/proofs/inclusion/{index}/{size}", api::inclusion)
    .get("/api/v1/proofs/consistency/{from}/{to}", api::consistency)
    .post("/api/v1/releases", api::post_release)
    .get("/api/v1/dists/{dist}", api::dist)
    .post_binary("/api/v1/builds", api::post_build)
    .get("/api/v1/dists/{dist}/{version}/builds", api::builds)
    .get(
        "/api/v1/dists/{dist}/{version}/builds/{file}",
        pgxn::binary_file,
    )
    .get("/api/v1/dists/{dist}/{version}/meta", api::meta)
    .get(
        "/api/v1/dists/{dist}/{version}/requirements",
        needs::requirements,
    )
    .get("/api/v1/packages", needs::packages)
    .get("/api/v1/packages/{*purl}", needs::package)
    .get("/api/v1/trusted-publishing", trusted::info)
    .post("/api/v1/trusted-publishing/keys", trusted::keys)
    .get("/api/v1/dists/{dist}/publishers", trusted::publishers)
    .get("/api/v1/advisories", advisories::list)
    .get("/api/v1/advisories/{id}", advisories::one)
    .get(
        "/api/v1/dists/{dist}/{version}/downloads",
        api::release_downloads,
    )
    .get("/api/v1/downloads", api::downloads)
    .get("/api/v1/dists/{dist}/{version}/docs", api::docs)
    .get("/api/v1/dists/{dist}/{version}/docs/{*docpath}", api::doc)
    .get("/api/v1/accounts/{user}", api::account)
    .get("/api/v1/origins", api::origins)
    .get("/api/v1/evidence", api::evidence)
    .post("/add-checkpoint", api::add_checkpoint)
    .get("/metrics", api::metrics)
}

/// Every (method, path) the node serves, in axum's syntax.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().table
}

/// The node's HTTP service: tokens taken off the request (`access::TakeTokens`, before
/// anything logs the path), a span per request, the JSON error shape for every refusal, then
/// for each origin the gate of a private one, request counting and the document cache, then
/// routing. The node's own origin is served at `/`, each mirrored origin below its prefix with
/// the same routes.
pub fn router(app: Arc<AppState>) -> access::TakeTokens<Router> {
    let mut router = Router::new();
    let mut own = None;
    for served in &app.origins {
        let ctx = Ctx {
            app: app.clone(),
            origin: served.origin.clone(),
            search: served.search.clone(),
            guard: served.guard.clone(),
        };
        if served.origin.prefix.is_empty() {
            own = Some(ctx);
        } else {
            let prefix = served.origin.prefix.clone();
            router = router.nest_service(&prefix, origin_service(ctx));
        }
    }
    // Every public log at its C2SP monitoring and mirror path, before the origins' routes.
    router = router.merge(
        Router::new()
            .route("/monitor/{id}/checkpoint", get(monitor::checkpoint))
            .route("/monitor/{id}/tile/{*path}", get(monitor::tile))
            .route(
                "/mirror/add-checkpoint",
                axum::routing::post(monitor::mirror_add_checkpoint),
            )
            .route(
                "/mirror/add-entries",
                axum::routing::post(monitor::add_entries),
            )
            .with_state(app.clone()),
    );
    if let Some(ctx) = own {
        router = router.fallback_service(origin_service(ctx));
    }
    let routed = router
        .layer(axum::middleware::from_fn(error::json_rejections))
        .layer(TraceLayer::new_for_http());
    // In front of routing (and of the request's span): the token prefix is off the path first.
    access::TakeTokens::new(routed)
}

/// One origin's routes behind its document cache, and behind its gate when it is private.
type OriginService =
    tower::util::Either<access::Gate<cache::CacheService<Router>>, cache::CacheService<Router>>;

fn origin_service(ctx: Ctx) -> OriginService {
    let body_limit = ctx.app.max_archive_bytes as usize + (1 << 20);
    let origin = ctx.origin.clone();
    let metrics = ctx.app.metrics.clone();
    let gate = ctx.guard.clone().map(|g| (g, ctx.app.limiter.clone()));
    let routed = routes()
        .router
        .fallback(|| async { ApiError::not_found("no such resource") })
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(ctx);
    let cached = cache::CacheService::new(origin.clone(), metrics, routed);
    match gate {
        Some((guard, limiter)) => {
            tower::util::Either::Left(access::Gate::new(origin, guard, limiter, cached))
        }
        None => tower::util::Either::Right(cached),
    }
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
