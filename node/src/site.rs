//! The web site: server-rendered HTML that works without JavaScript, at PGXN's page paths
//! (`/dist/NAME/`, `/dist/NAME/VERSION/`, `/extension/NAME/`, `/user/NAME/`, `/tag/NAME/`),
//! plus home, search, the log and the mirrors, `robots.txt` and `sitemap.xml`. READMEs are
//! rendered from Markdown and sanitized; every page carries a title, a description and its
//! canonical URL (`spec/site.md`).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use pgext_spec::authority::{DistState, Registry, ReleaseState};
use serde_json::{Value, json};

use crate::docs::Markup;
use crate::error::ApiError;
use crate::node::Shared;
use crate::pgxn;

type S = State<Arc<Shared>>;
type Page = Result<Response, ApiError>;

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
            ("base.html", include_str!("../templates/base.html")),
            ("home.html", include_str!("../templates/home.html")),
            ("search.html", include_str!("../templates/search.html")),
            ("dist.html", include_str!("../templates/dist.html")),
            ("list.html", include_str!("../templates/list.html")),
            ("log.html", include_str!("../templates/log.html")),
            ("doc.html", include_str!("../templates/doc.html")),
        ] {
            e.add_template(name, src)
                .unwrap_or_else(|err| panic!("template {name}: {err}"));
        }
        e
    })
}

/// `& < > " '` as HTML entities.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's absolute URL, from the Host the client used.
fn canonical(s: &Shared, headers: &HeaderMap, path: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{}{path}", s.prefix)
}

fn render(template: &str, ctx: minijinja::Value) -> Page {
    let html = env()
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// The fields every page shares.
fn page(s: &Shared, headers: &HeaderMap, path: &str, title: &str, description: &str) -> Value {
    json!({"origin": s.origin, "prefix": s.prefix, "title": title, "description": description,
           "canonical": canonical(s, headers, path)})
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

fn abstract_of(s: &Shared, r: &ReleaseState) -> String {
    s.meta(&r.release.meta_sha256)
        .map(|m| m.abstract_.clone())
        .unwrap_or_default()
}

/// Names of the witnesses that cosigned a checkpoint note (its signature lines but the log's).
fn cosigners(s: &Shared, note: &str) -> Vec<String> {
    note.split_once("\n\n")
        .map(|(_, sigs)| sigs)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("— "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| *name != s.origin)
        .map(str::to_string)
        .collect()
}

/// `/`.
pub async fn home(State(s): S, headers: HeaderMap) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let mut all: Vec<(&DistState, &ReleaseState)> = all_releases(&reg).collect();
    let releases = all.len();
    all.sort_by_key(|(_, r)| std::cmp::Reverse(r.index));
    let recent: Vec<Value> = all
        .iter()
        .filter(|(_, r)| r.yanked.is_none())
        .take(20)
        .map(|(d, r)| {
            json!({"dist": d.name, "version": r.release.version, "abstract": abstract_of(&s, r),
                              "date": pgxn::date(r.time), "user": r.user})
        })
        .collect();
    let counts = json!({"dists": reg.dists().count(), "releases": releases, "users": reg.accounts().count(), "size": s.size()});
    drop(reg);
    let base = page(
        &s,
        &headers,
        "/",
        "PostgreSQL extensions",
        "Find, read about, verify and install PostgreSQL extensions.",
    );
    render(
        "home.html",
        with(base, json!({"recent": recent, "counts": counts})),
    )
}

/// `/search?q=&in=&o=`: results with highlights, ten at a time.
pub async fn search(
    State(s): S,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Page {
    let q = p.get("q").map(|q| q.trim().to_string()).unwrap_or_default();
    let within = p.get("in").map_or("dists", String::as_str).to_string();
    let kind = crate::search::Kind::parse(&within).unwrap_or(crate::search::Kind::Dists);
    let o: usize = p.get("o").and_then(|o| o.parse().ok()).unwrap_or(0);
    let (count, hits) = if q.is_empty() {
        (0, Vec::new())
    } else {
        let page = crate::http::search_blocking(s.clone(), kind, q.clone(), o, 10).await?;
        (page.count, page.hits)
    };
    let pre = &s.prefix;
    let hits: Vec<Value> = hits
        .iter()
        .map(|h| {
            let f = |k: &str| h[k].as_str().unwrap_or_default().to_string();
            let (title, href) = match within.as_str() {
                "extensions" => (f("extension"), format!("{pre}/extension/{}/", f("extension").to_lowercase())),
                "docs" => (f("title"), format!("{pre}/dist/{}/{}/{}.html", f("dist").to_lowercase(), f("version").to_lowercase(), f("docpath"))),
                "users" => (f("user"), format!("{pre}/user/{}/", f("user"))),
                "tags" => (f("tag"), format!("{pre}/tag/{}/", f("tag").to_lowercase())),
                _ => (f("dist"), format!("{pre}/dist/{}/", f("dist").to_lowercase())),
            };
            json!({"title": title, "href": href, "version": f("version"), "abstract": f("abstract"), "excerpt": f("excerpt")})
        })
        .collect();
    let next = (o + 10 < count).then_some(o + 10);
    let base = page(
        &s,
        &headers,
        "/search",
        &format!("Search: {q}"),
        "Search PostgreSQL extensions.",
    );
    render(
        "search.html",
        with(
            base,
            json!({"query": q, "kind": within, "count": count, "hits": hits, "next": next,
                          "kinds": ["dists", "extensions", "docs", "users", "tags"]}),
        ),
    )
}

fn release_page(
    s: &Shared,
    headers: &HeaderMap,
    d: &DistState,
    r: &ReleaseState,
    path: &str,
) -> Page {
    let zip = s.blobs.get(&r.release.sha256).unwrap_or_default();
    let base_name = crate::docs::base_name(&d.name, &r.release.version);
    let readme = crate::docs::readme_of(&zip, &base_name)
        .map(|b| render_markdown(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let tags = s
        .meta(&r.release.meta_sha256)
        .map(|m| m.tags.clone())
        .unwrap_or_default();
    let mut releases: Vec<&ReleaseState> = d.releases.values().collect();
    releases.sort_by_key(|x| std::cmp::Reverse(x.index));
    let releases: Vec<Value> = releases
        .iter()
        .map(|x| json!({"version": x.release.version, "status": x.release.status.as_str(), "date": pgxn::date(x.time), "yanked": x.yanked.is_some()}))
        .collect();
    let pre = format!(
        "{}/dist/{}/{}/",
        s.prefix,
        d.name.to_lowercase(),
        r.release.version.to_lowercase()
    );
    // The README is shown in full below; the other documents are linked.
    let docs: Vec<Value> = s
        .release_docs(&d.name, r)
        .docs
        .iter()
        .filter(|x| x.docpath != "README")
        .map(|x| json!({"title": x.title, "href": format!("{pre}{}.html", x.docpath), "extension": x.extension}))
        .collect();
    let (size, note) = s.checkpoint();
    let abstract_ = abstract_of(s, r);
    let base = page(
        s,
        headers,
        path,
        &format!("{} {}", d.name, r.release.version),
        &abstract_,
    );
    render(
        "dist.html",
        with(
            base,
            json!({
                "dist": d.name, "version": r.release.version, "abstract": abstract_, "yanked": r.yanked,
                "user": r.user, "date": pgxn::date(r.time), "index": r.index, "checkpoint_size": size,
                "cosigners": cosigners(s, &note), "sha256": r.release.sha256, "vkey": s.vkey.to_string(),
                "url": canonical(s, headers, ""), "releases": releases, "owners": d.owners, "tags": tags,
                "readme": readme, "docs": docs,
            }),
        ),
    )
}

/// `/dist/NAME/`: the headline release.
pub async fn dist(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let d = reg
        .dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    let r = pgxn::shown(d).ok_or_else(|| ApiError::not_found(format!("{name} has no release")))?;
    release_page(
        &s,
        &headers,
        d,
        r,
        &format!("/dist/{}/", name.to_lowercase()),
    )
}

/// `/dist/NAME/VERSION/`.
pub async fn release(
    State(s): S,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let d = reg
        .dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    let r = d
        .releases
        .get(&version.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(format!("{name} has no version {version}")))?;
    release_page(
        &s,
        &headers,
        d,
        r,
        &format!("/dist/{}/{}/", name.to_lowercase(), version.to_lowercase()),
    )
}

/// A document of a release, by docpath, and its source bytes.
pub(crate) fn read_doc<'a>(
    s: &Shared,
    docs: &'a crate::docs::ReleaseDocs,
    d: &DistState,
    r: &ReleaseState,
    docpath: &str,
) -> Result<(&'a crate::docs::Doc, Vec<u8>), ApiError> {
    let doc = docs.get(docpath).ok_or_else(|| {
        ApiError::not_found(format!(
            "{} {} has no document {docpath}",
            d.name, r.release.version
        ))
    })?;
    let zip = s.blobs.get(&r.release.sha256).map_err(ApiError::internal)?;
    let base = crate::docs::base_name(&d.name, &r.release.version);
    let bytes = crate::docs::read_member(&zip, &base, &doc.file)
        .ok_or_else(|| ApiError::internal("document listed but unreadable"))?;
    Ok((doc, bytes))
}

/// `/dist/NAME/VERSION/DOCPATH.html`: one document of a release, rendered and sanitized.
pub fn doc_page(
    s: &Shared,
    headers: &HeaderMap,
    d: &DistState,
    r: &ReleaseState,
    docpath: &str,
) -> Page {
    let docs = s.release_docs(&d.name, r);
    let (doc, bytes) = read_doc(s, &docs, d, r, docpath)?;
    let version = r.release.version.to_lowercase();
    let path = format!(
        "/dist/{}/{version}/{}.html",
        d.name.to_lowercase(),
        doc.docpath
    );
    let others: Vec<Value> = docs
        .docs
        .iter()
        .map(|x| json!({"title": x.title, "href": format!("{}/dist/{}/{version}/{}.html", s.prefix, d.name.to_lowercase(), x.docpath),
                        "current": x.docpath == doc.docpath}))
        .collect();
    let base = page(
        s,
        headers,
        &path,
        &format!("{} · {} {}", doc.title, d.name, r.release.version),
        &abstract_of(s, r),
    );
    render(
        "doc.html",
        with(
            base,
            json!({"dist": d.name, "version": r.release.version, "doc_title": doc.title,
                   "file": doc.file, "extension": doc.extension, "body": render_doc(&doc.file, &bytes),
                   "docs": others, "yanked": r.yanked,
                   "source": format!("{}/api/v1/dists/{}/{version}/docs/{}", s.prefix, d.name.to_lowercase(), doc.docpath)}),
        ),
    )
}

fn list(
    s: &Shared,
    headers: &HeaderMap,
    path: &str,
    heading: &str,
    intro: &str,
    rows: Vec<Value>,
) -> Page {
    let base = page(s, headers, path, heading, intro);
    render(
        "list.html",
        with(
            base,
            json!({"heading": heading, "intro": intro, "rows": rows}),
        ),
    )
}

fn dist_row(s: &Shared, d: &DistState) -> Option<Value> {
    let r = pgxn::headline(d)?;
    Some(
        json!({"name": format!("{} {}", d.name, r.release.version), "href": format!("{}/dist/{}/", s.prefix, d.name.to_lowercase()),
                "text": abstract_of(s, r)}),
    )
}

/// `/extension/NAME/`: the distributions providing it.
pub async fn extension(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let d = reg
        .extension_dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("extension {name} not found")))?;
    let rows = dist_row(&s, d).into_iter().collect();
    list(
        &s,
        &headers,
        &format!("/extension/{name}/"),
        &format!("Extension {name}"),
        &format!("{name} is provided by {}.", d.name),
        rows,
    )
}

/// `/user/NAME/`: what an account published.
pub async fn user(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let a = reg
        .account(&name)
        .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
    let rows = reg
        .dists()
        .filter(|d| d.releases.values().any(|r| r.user == a.user) || d.owners.contains(&a.user))
        .filter_map(|d| dist_row(&s, d))
        .collect();
    let intro = format!(
        "{}{} publishes these distributions.",
        a.user,
        a.name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default()
    );
    list(
        &s,
        &headers,
        &format!("/user/{}/", a.user),
        &format!("User {}", a.user),
        &intro,
        rows,
    )
}

/// `/tag/NAME/`: the distributions tagged so.
pub async fn tag(State(s): S, headers: HeaderMap, Path(name): Path<String>) -> Page {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let doc = pgxn::tag_doc(&s, &reg, &name)
        .ok_or_else(|| ApiError::not_found(format!("tag {name} not found")))?;
    let rows = doc["releases"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.keys())
        .filter_map(|d| reg.dist(d))
        .filter_map(|d| dist_row(&s, d))
        .collect();
    list(
        &s,
        &headers,
        &format!("/tag/{}/", name.to_lowercase()),
        &format!("Tag {name}"),
        "",
        rows,
    )
}

/// `/log/`: origin, key, size, latest checkpoint, cosigners, evidence.
pub async fn log(State(s): S, headers: HeaderMap) -> Page {
    let (size, note) = s.checkpoint();
    let evidence: Vec<String> = s
        .evidence()
        .iter()
        .flat_map(|e| e.notes.iter().cloned())
        .collect();
    let base = page(
        &s,
        &headers,
        "/log/",
        "The log",
        &format!("The signed, append-only log of {}.", s.origin),
    );
    render(
        "log.html",
        with(
            base,
            json!({"vkey": s.vkey.to_string(), "size": size, "checkpoint": note, "cosigners": cosigners(&s, &note),
                          "url": canonical(&s, &headers, ""), "evidence": evidence}),
        ),
    )
}

/// `/mirrors/`: every origin this node serves.
pub async fn mirrors(State(s): S, headers: HeaderMap) -> Page {
    let rows = s
        .node
        .origins()
        .iter()
        .map(|o| json!({"name": o.origin, "href": format!("{}/", o.prefix), "text": format!("log size {}{}", o.size(), if o.prefix.is_empty() { ", sequenced here" } else { ", mirrored and verified here" })}))
        .collect();
    list(
        &s,
        &headers,
        "/mirrors/",
        "Mirrors",
        "The logs this node serves.",
        rows,
    )
}

/// `/robots.txt`.
pub async fn robots(State(s): S, headers: HeaderMap) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "User-agent: *\nAllow: /\nSitemap: {}\n",
            canonical(&s, &headers, "/sitemap.xml")
        ),
    )
        .into_response()
}

/// `/sitemap.xml`: home, the log, and every distribution.
pub async fn sitemap(State(s): S, headers: HeaderMap) -> Response {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let mut urls = vec![
        canonical(&s, &headers, "/"),
        canonical(&s, &headers, "/log/"),
    ];
    urls.extend(
        reg.dists()
            .map(|d| canonical(&s, &headers, &format!("/dist/{}/", d.name.to_lowercase()))),
    );
    let body: String = urls
        .iter()
        .map(|u| format!("<url><loc>{}</loc></url>", u.replace('&', "&amp;")))
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{body}</urlset>\n"),
    )
        .into_response()
}

/// Every release of the registry, with its dist.
fn all_releases(reg: &Registry) -> impl Iterator<Item = (&DistState, &ReleaseState)> {
    reg.dists()
        .flat_map(|d| d.releases.values().map(move |r| (d, r)))
}

/// An Atom feed of the releases that are not yanked, newest first (at most 50).
fn feed<'a>(
    s: &Shared,
    headers: &HeaderMap,
    path: &str,
    title: &str,
    rows: impl Iterator<Item = (&'a DistState, &'a ReleaseState)>,
) -> Response {
    let mut rows: Vec<_> = rows.filter(|(_, r)| r.yanked.is_none()).collect();
    rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.index));
    rows.truncate(50);
    let x = escape_html;
    let updated = rows
        .first()
        .map_or_else(|| pgxn::date(0), |(_, r)| pgxn::date(r.time));
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>{}</title>\n<id>{}</id>\n<updated>{updated}</updated>\n<link rel=\"self\" href=\"{}\"/>\n<link href=\"{}\"/>\n",
        x(title),
        x(&canonical(s, headers, path)),
        x(&canonical(s, headers, path)),
        x(&canonical(s, headers, "/")),
    );
    for (d, r) in rows {
        let link = canonical(
            s,
            headers,
            &format!(
                "/dist/{}/{}/",
                d.name.to_lowercase(),
                r.release.version.to_lowercase()
            ),
        );
        out.push_str(&format!(
            "<entry>\n<title>{} {}</title>\n<id>{}</id>\n<updated>{}</updated>\n<link href=\"{}\"/>\n<author><name>{}</name></author>\n<summary>{}</summary>\n</entry>\n",
            x(&d.name),
            x(&r.release.version),
            x(&link),
            pgxn::date(r.time),
            x(&link),
            x(&r.user),
            x(&abstract_of(s, r)),
        ));
    }
    out.push_str("</feed>\n");
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        out,
    )
        .into_response()
}

fn strip_xml(file: &str) -> Result<&str, ApiError> {
    file.strip_suffix(".xml")
        .ok_or_else(|| ApiError::not_found(format!("{file}: feeds end in .xml")))
}

/// `/feeds/recent.xml`: every recent release that is not yanked.
pub async fn feed_recent(State(s): S, headers: HeaderMap) -> Response {
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    feed(
        &s,
        &headers,
        "/feeds/recent.xml",
        &format!("Recent releases of {}", s.origin),
        all_releases(&reg),
    )
}

/// `/feeds/dist/NAME.xml`.
pub async fn feed_dist(State(s): S, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let d = reg
        .dist(name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    Ok(feed(
        &s,
        &headers,
        &format!("/feeds/dist/{file}"),
        &format!("Releases of {}", d.name),
        d.releases.values().map(|r| (d, r)),
    ))
}

/// `/feeds/user/NAME.xml`.
pub async fn feed_user(State(s): S, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let a = reg
        .account(name)
        .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
    Ok(feed(
        &s,
        &headers,
        &format!("/feeds/user/{file}"),
        &format!("Releases by {}", a.user),
        all_releases(&reg).filter(|(_, r)| r.user == a.user),
    ))
}

/// `/feeds/tag/NAME.xml`.
pub async fn feed_tag(State(s): S, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    let reg = s.registry.read().unwrap_or_else(|p| p.into_inner());
    let key = name.to_lowercase();
    // Every release of the dists whose headline carries the tag, as `/tag/NAME/` lists them.
    let rows = reg
        .dists()
        .filter(|d| {
            pgxn::dist_tags(&s, d)
                .iter()
                .any(|t| t.to_lowercase() == key)
        })
        .flat_map(|d| d.releases.values().map(move |r| (d, r)));
    Ok(feed(
        &s,
        &headers,
        &format!("/feeds/tag/{file}"),
        &format!("Releases tagged {name}"),
        rows,
    ))
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
