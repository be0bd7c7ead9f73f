//! The web site: server-rendered HTML that works without JavaScript, at PGXN's page paths
//! ([`pages`]), Atom feeds, `robots.txt` and `sitemap.xml` ([`feeds`]). READMEs are rendered
//! from Markdown and sanitized; every page carries a title, a description and its canonical
//! URL (`spec/site.md`). Pages are rendered on the blocking pool (they read release content).

pub mod feeds;
pub mod login;
pub mod pages;

use std::sync::OnceLock;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

use super::{ApiError, Ctx};
pub use crate::html::escape_html;
use crate::origin::docs::Markup;

/// A page answer.
pub type Page = Result<Response, ApiError>;

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut e = Environment::new();
        // HTML escaping of the five characters that matter; minijinja's default also escapes
        // `/`, which makes every URL unreadable in the page source.
        e.set_formatter(|out, state, value| {
            if value.is_safe()
                || value.is_undefined()
                || value.is_none()
                || !matches!(state.auto_escape(), minijinja::AutoEscape::Html)
            {
                return minijinja::escape_formatter(out, state, value);
            }
            out.write_str(&escape_html(&value.to_string()))
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
        });
        for (name, src) in [
            ("base.html", include_str!("../../../templates/base.html")),
            ("home.html", include_str!("../../../templates/home.html")),
            (
                "search.html",
                include_str!("../../../templates/search.html"),
            ),
            ("dist.html", include_str!("../../../templates/dist.html")),
            ("list.html", include_str!("../../../templates/list.html")),
            ("log.html", include_str!("../../../templates/log.html")),
            ("doc.html", include_str!("../../../templates/doc.html")),
            ("login.html", include_str!("../../../templates/login.html")),
        ] {
            e.add_template(name, src)
                .unwrap_or_else(|err| panic!("template {name}: {err}"));
        }
        e
    })
}

/// The page's absolute URL, from the Host the client used.
pub fn canonical(c: &Ctx, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}{}{path}", c.origin.prefix)
}

fn render(template: &str, ctx: minijinja::Value) -> Page {
    let html = env()
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The sign-in page of a private origin: it names nothing of the origin.
pub fn login_page(action: &str, error: Option<&str>) -> Response {
    let ctx = minijinja::Value::from_serialize(json!({"action": action, "error": error}));
    render("login.html", ctx).unwrap_or_else(axum::response::IntoResponse::into_response)
}

/// The fields every page shares.
fn page(c: &Ctx, headers: &HeaderMap, path: &str, title: &str, description: &str) -> Value {
    json!({"origin": c.origin.name, "prefix": c.origin.prefix, "title": title, "description": description,
           "canonical": canonical(c, headers, path)})
}

fn with(mut base: Value, extra: Value) -> minijinja::Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    minijinja::Value::from_serialize(&base)
}

/// Markdown rendered to HTML, then sanitized: a README cannot run script in the page.
pub fn render_markdown(text: &str) -> String {
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(text));
    ammonia::clean(&html)
}

/// A document's source as safe HTML: Markdown rendered, HTML sanitized, anything else shown
/// preformatted and escaped.
pub fn render_doc(file: &str, bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match Markup::of(file) {
        Markup::Markdown => render_markdown(&text),
        Markup::Html => ammonia::clean(&text),
        Markup::Text => format!("<pre>{}</pre>", escape_html(&text)),
    }
}

/// Names of the witnesses that cosigned a checkpoint note (its signature lines but the log's).
fn cosigners(origin: &str, note: &str) -> Vec<String> {
    note.split_once("\n\n")
        .map(|(_, sigs)| sigs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("— "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| *name != origin)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        for name in [
            "home.html",
            "search.html",
            "dist.html",
            "list.html",
            "log.html",
            "doc.html",
            "login.html",
        ] {
            assert!(super::env().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn markdown_is_rendered_and_made_harmless() {
        let html = super::render_markdown(
            "# T\n\n<script>x()</script>\n\n[a](javascript:x())\n\n<img src=y onerror=x()>\n",
        );
        assert!(html.contains("<h1>T</h1>"), "{html}");
        for bad in ["<script", "javascript:", "onerror"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
