//! Signing in to a private origin's site (`spec/access.md`): the member pastes a read token,
//! the node checks it and keeps it in an `HttpOnly` cookie until it expires.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::Ctx;
use super::super::access::{TOKEN_COOKIE, peer_ip, too_many, unauthorized};
use crate::origin::sequencer::now;

/// The form's one field.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

fn home(c: &Ctx) -> String {
    format!("{}/", c.origin.prefix)
}

fn cookie_path(c: &Ctx) -> String {
    if c.origin.prefix.is_empty() {
        "/".into()
    } else {
        format!("{}/", c.origin.prefix)
    }
}

fn see_other(to: &str, cookie: Option<String>) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /login`: the form (a public origin needs none: its home page).
pub async fn form(State(c): State<Ctx>) -> Response {
    if c.guard.is_none() {
        return see_other(&home(&c), None);
    }
    super::login_page(&format!("{}/login", c.origin.prefix), None)
}

/// `POST /login`: checks the token; on success keeps it in the cookie and goes home.
pub async fn submit(
    State(c): State<Ctx>,
    extensions: axum::http::Extensions,
    form: axum::Form<LoginForm>,
) -> Response {
    let Some(guard) = &c.guard else {
        return see_other(&home(&c), None);
    };
    let ip = peer_ip(&extensions);
    if c.app.limiter.blocked(ip) {
        return too_many();
    }
    let token = form.0.token.trim().to_string();
    let action = format!("{}/login", c.origin.prefix);
    match guard.check(&c.origin, &token) {
        Ok(_) => {
            let max_age = pgext_spec::token::Token::parse(&token)
                .map(|t| t.claims.exp.saturating_sub(now()))
                .unwrap_or(0);
            let cookie = format!(
                "{TOKEN_COOKIE}={token}; Path={}; Max-Age={max_age}; HttpOnly; SameSite=Strict",
                cookie_path(&c)
            );
            see_other(&home(&c), Some(cookie))
        }
        Err(e) => {
            c.app.limiter.fail(ip);
            unauthorized(true, Some(&e), &action)
        }
    }
}

/// `GET /logout`: forgets the cookie.
pub async fn logout(State(c): State<Ctx>) -> Response {
    let cookie = format!(
        "{TOKEN_COOKIE}=; Path={}; Max-Age=0; HttpOnly; SameSite=Strict",
        cookie_path(&c)
    );
    see_other(&format!("{}/login", c.origin.prefix), Some(cookie))
}
