//! Who may read a private origin (`spec/access.md`): requests present read tokens (a `/t/TOKEN/`
//! path prefix, a bearer header, the site's cookie), a [`Gate`] in front of each private
//! origin's routes checks them against the origin's current state, and everyone else gets a 401
//! that names nothing of the origin. Failed tokens are counted and limited per address.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pgext_spec::token::{Scope, Token, TokenError};

use super::ApiError;
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::origin::sequencer::now;

type Request = axum::extract::Request;

/// The site's cookie.
pub const TOKEN_COOKIE: &str = "pgext_token";
/// Most tokens one request may present.
const MAX_PRESENTED: usize = 4;
/// Verified tokens remembered per origin.
const MAX_VERIFIED: usize = 4096;
/// Failed tokens one address may present per [`WINDOW`] before it is refused.
pub const MAX_FAILURES: u32 = 30;
/// The failure-counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are counted at once.
const MAX_ADDRESSES: usize = 10_000;

/// The tokens a request presents, taken off its path and headers by [`TakeTokens`].
#[derive(Debug, Clone, Default)]
pub struct Presented(pub Vec<String>);

/// Whom a request to a private origin was let in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The account.
    pub user: String,
    /// What the token allows.
    pub scope: Vec<Scope>,
}

impl Member {
    /// Whether the member's token allows `scope`.
    ///
    /// # Errors
    /// [`TokenError::Scope`] when it does not.
    pub fn allows(&self, scope: Scope) -> Result<(), TokenError> {
        if self.scope.contains(&scope) {
            Ok(())
        } else {
            Err(TokenError::Scope(scope))
        }
    }
}

/// The address a request came from (`0.0.0.0` when the server did not record it).
pub fn peer_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Takes the tokens off a request before anything logs or routes it: a leading `/t/TOKEN`
/// path segment (the path goes on without it), `Authorization: Bearer`, and the site's
/// cookies. They travel on in a [`Presented`] extension, present only when there are some: a
/// request without any costs a prefix test and two header lookups.
#[derive(Debug, Clone)]
pub struct TakeTokens<S> {
    inner: S,
}

impl<S> TakeTokens<S> {
    /// In front of `inner` (the node's router).
    pub fn new(inner: S) -> TakeTokens<S> {
        TakeTokens { inner }
    }
}

/// Moves the `/t/TOKEN` prefix of the path into `tokens`; `Err` when what is left is no path.
fn take_path_token(req: &mut Request, tokens: &mut Vec<String>) -> Result<(), ()> {
    let Some(rest) = req.uri().path().strip_prefix("/t/") else {
        return Ok(());
    };
    let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
    tokens.push(token.to_string());
    let path = format!("/{tail}");
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(pq.parse().map_err(|_| ())?);
    *req.uri_mut() = axum::http::Uri::from_parts(parts).map_err(|_| ())?;
    Ok(())
}

fn take_header_tokens(req: &Request, tokens: &mut Vec<String>) {
    let headers = req.headers();
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        tokens.push(bearer.trim().to_string());
    }
    for cookies in headers.get_all(header::COOKIE) {
        let Ok(cookies) = cookies.to_str() else {
            continue;
        };
        for c in cookies.split(';') {
            if let Some(v) = c
                .trim()
                .strip_prefix(TOKEN_COOKIE)
                .and_then(|v| v.strip_prefix('='))
            {
                tokens.push(v.to_string());
            }
        }
    }
}

impl<S> tower::Service<Request> for TakeTokens<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        futures::future::Either<std::future::Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let mut tokens = Vec::new();
        if take_path_token(&mut req, &mut tokens).is_err() {
            let resp = ApiError::bad_request("the path does not parse").into_response();
            return futures::future::Either::Left(std::future::ready(Ok(resp)));
        }
        take_header_tokens(&req, &mut tokens);
        if !tokens.is_empty() {
            tokens.truncate(MAX_PRESENTED);
            req.extensions_mut().insert(Presented(tokens));
        }
        futures::future::Either::Right(self.inner.call(req))
    }
}

/// Failed tokens per address, node-wide, and their count in the metrics.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Whether any failure was ever counted: until then a check takes no lock.
    any: std::sync::atomic::AtomicBool,
    metrics: Arc<Metrics>,
}

impl Limiter {
    /// A limiter counting failures in `metrics` (`pgext_auth_failures_total`).
    pub fn new(metrics: Arc<Metrics>) -> Limiter {
        Limiter {
            metrics,
            ..Limiter::default()
        }
    }

    /// Whether `ip` spent its failures for the current window.
    pub fn blocked(&self, ip: IpAddr) -> bool {
        if !self.any.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        let g = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        g.get(&ip)
            .is_some_and(|(since, n)| since.elapsed() < WINDOW && *n >= MAX_FAILURES)
    }

    /// Counts a failure of `ip`.
    pub fn fail(&self, ip: IpAddr) {
        Metrics::inc(&self.metrics.auth_failures);
        self.any.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut g = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= MAX_ADDRESSES && !g.contains_key(&ip) {
            g.retain(|_, (since, _)| since.elapsed() < WINDOW);
            if g.len() >= MAX_ADDRESSES {
                g.clear();
            }
        }
        let e = g.entry(ip).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= WINDOW {
            *e = (Instant::now(), 0);
        }
        e.1 = e.1.saturating_add(1);
    }
}

/// A token that verified once: what later requests need to check again.
#[derive(Debug)]
struct Verified {
    member: Arc<Member>,
    key: String,
    exp: u64,
}

/// The tokens of one private origin: checked against its current state, remembered once
/// verified (by their text), so a request costs a lookup, not a signature check.
#[derive(Debug, Default)]
pub struct Guard {
    verified: Mutex<HashMap<Box<str>, Arc<Verified>>>,
}

impl Guard {
    /// Checks `text` as a token for `origin` now.
    ///
    /// # Errors
    /// Why the token does not let its bearer in.
    pub fn check(&self, origin: &Origin, text: &str) -> Result<Arc<Member>, TokenError> {
        let now = now();
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(text)
            .cloned();
        if let Some(v) = known {
            if v.exp <= now {
                return Err(TokenError::Expired);
            }
            if !origin.key_active(&v.member.user, &v.key) {
                return Err(TokenError::Revoked);
            }
            return Ok(v.member.clone());
        }
        let token = Token::parse(text)?;
        token.verify(&origin.snapshot().registry, &origin.name, now)?;
        let v = Arc::new(Verified {
            member: Arc::new(Member {
                user: token.claims.user,
                scope: token.claims.scope,
            }),
            key: token.claims.key,
            exp: token.claims.exp,
        });
        let mut g = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() >= MAX_VERIFIED {
            g.retain(|_, v| v.exp > now);
            if g.len() >= MAX_VERIFIED {
                g.clear();
            }
        }
        g.insert(text.into(), v.clone());
        Ok(v.member.clone())
    }

    /// The first of `tokens` that lets its bearer in, else the first one's refusal (or
    /// `None` when there were none).
    pub fn admit(
        &self,
        origin: &Origin,
        tokens: &[String],
    ) -> Result<Arc<Member>, Option<TokenError>> {
        let mut first = None;
        for t in tokens {
            match self.check(origin, t) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first)
    }
}

/// 429 for an address that spent its failures.
pub fn too_many() -> Response {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-requests",
        "too many failed tokens from this address; wait a minute",
    )
    .into_response()
}

/// The 401 of a private origin in the JSON shape: why the token did not do, or (without one)
/// what to present.
pub fn unauthorized_error(why: Option<&TokenError>) -> ApiError {
    let detail = match why {
        Some(e) => format!("this registry is private: {e} ({})", e.code()),
        None => "this registry is private: present a member's read token (`pgext token create --read`; spec/access.md)".into(),
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// 401 for a private origin: the login page for a browser, else the JSON error. Nothing in it
/// names the origin.
pub fn unauthorized(html: bool, why: Option<&TokenError>, action: &str) -> Response {
    let mut resp = if html {
        let page = super::site::login_page(action, why.map(|e| e.to_string()).as_deref());
        (StatusCode::UNAUTHORIZED, page).into_response()
    } else {
        unauthorized_error(why).into_response()
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"pgext\""),
    );
    resp
}

fn wants_html(req: &Request) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// What a request to an origin needs its token to allow.
fn needs(req: &Request) -> Scope {
    let path = req.uri().path();
    if req.method() == Method::POST
        && matches!(
            path,
            "/api/v1/entries" | "/api/v1/releases" | "/api/v1/builds"
        )
    {
        Scope::Publish
    } else {
        Scope::Read
    }
}

/// Paths of a private origin open to anyone: signing in and out. (Registering with an
/// invitation is let through to `serve::api::post_entry`, which takes nothing else.)
fn open_path(req: &Request) -> bool {
    let path = req.uri().path();
    matches!(path, "/login" | "/logout")
}

/// The gate in front of a private origin's routes (and its document cache).
#[derive(Clone, Debug)]
pub struct Gate<S> {
    origin: Arc<Origin>,
    guard: Arc<Guard>,
    limiter: Arc<Limiter>,
    inner: S,
}

impl<S> Gate<S> {
    /// A gate for `origin` in front of `inner`.
    pub fn new(origin: Arc<Origin>, guard: Arc<Guard>, limiter: Arc<Limiter>, inner: S) -> Gate<S> {
        Gate {
            origin,
            guard,
            limiter,
            inner,
        }
    }
}

/// A gate's answer: its own refusal, or the routes'.
type GateFuture<F> = futures::future::Either<std::future::Ready<Result<Response, Infallible>>, F>;

impl<S> tower::Service<Request> for Gate<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GateFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        use futures::future::Either;
        let refuse = |resp: Response| Either::Left(std::future::ready(Ok(resp)));
        if open_path(&req) {
            return Either::Right(self.inner.call(req));
        }
        let ip = peer_ip(req.extensions());
        if self.limiter.blocked(ip) {
            return refuse(too_many());
        }
        let admitted = match req.extensions().get::<Presented>() {
            Some(p) => self.guard.admit(&self.origin, &p.0),
            None => Err(None),
        };
        match admitted {
            Ok(member) => {
                if let Err(e) = member.allows(needs(&req)) {
                    return refuse(
                        ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
                            .into_response(),
                    );
                }
                req.extensions_mut().insert(member);
                Either::Right(self.inner.call(req))
            }
            // Registering with an invitation needs no member's token (the newcomer's own
            // token cannot verify yet): the handler lets only that in.
            Err(_) if req.method() == Method::POST && req.uri().path() == "/api/v1/entries" => {
                Either::Right(self.inner.call(req))
            }
            Err(why) => {
                if why.is_some() {
                    self.limiter.fail(ip);
                }
                let action = format!("{}/login", self.origin.prefix);
                refuse(unauthorized(wants_html(&req), why.as_ref(), &action))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_for_the_window() {
        let l = Limiter::default();
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..MAX_FAILURES - 1 {
            l.fail(ip);
        }
        assert!(!l.blocked(ip));
        l.fail(ip);
        assert!(l.blocked(ip));
        assert!(!l.blocked(IpAddr::from([10, 0, 0, 2])));
    }
}
