//! Atom feeds of releases (recent, per dist, per user, per tag), `robots.txt` and
//! `sitemap.xml`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pgext_spec::authority::{DistState, Registry, ReleaseState};

use super::{Page, canonical, escape_html};
use crate::origin::releases::{abstract_of, date, dist_tags};
use crate::serve::{ApiError, Ctx};

/// Most entries of a feed.
const FEED_ENTRIES: usize = 50;

/// Every release of the registry, with its dist.
fn all_releases(reg: &Registry) -> impl Iterator<Item = (&DistState, &ReleaseState)> {
    reg.dists()
        .flat_map(|d| d.releases.values().map(move |r| (d, r)))
}

/// An Atom feed of the releases that are not yanked, newest first.
fn feed<'a>(
    c: &Ctx,
    headers: &HeaderMap,
    path: &str,
    title: &str,
    rows: impl Iterator<Item = (&'a DistState, &'a ReleaseState)>,
) -> Page {
    let mut rows: Vec<_> = rows.filter(|(_, r)| r.yanked.is_none()).collect();
    rows.sort_by_key(|(_, r)| std::cmp::Reverse(r.index));
    rows.truncate(FEED_ENTRIES);
    let x = escape_html;
    let updated = rows.first().map_or_else(|| date(0), |(_, r)| date(r.time));
    let mut out = head(c, headers, path, title, &updated);
    for (d, r) in rows {
        let link = canonical(
            c,
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
            date(r.time),
            x(&link),
            x(&r.user),
            x(&abstract_of(c.origin.content(), r)?),
        ));
    }
    Ok(atom(out))
}

/// An Atom feed's head, up to its first entry.
fn head(c: &Ctx, headers: &HeaderMap, path: &str, title: &str, updated: &str) -> String {
    let x = escape_html;
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n<title>{}</title>\n<id>{}</id>\n<updated>{updated}</updated>\n<link rel=\"self\" href=\"{}\"/>\n<link href=\"{}\"/>\n",
        x(title),
        x(&canonical(c, headers, path)),
        x(&canonical(c, headers, path)),
        x(&canonical(c, headers, "/")),
    )
}

/// A feed's response, its entries closed.
fn atom(mut out: String) -> Response {
    out.push_str("</feed>\n");
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        out,
    )
        .into_response()
}

/// `/feeds/advisories.xml`: security advisories, the latest changed first; a withdrawal is a
/// change, and its entry says so.
pub async fn advisories(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    let snap = c.origin.snapshot();
    let mut rows: Vec<_> = snap.registry.advisories().collect();
    rows.sort_by_key(|a| std::cmp::Reverse(a.history.last().copied()));
    rows.truncate(FEED_ENTRIES);
    let x = escape_html;
    let updated = rows.first().map_or_else(|| date(0), |a| date(a.modified));
    let title = format!("Security advisories of {}", c.origin.name);
    let mut out = head(&c, &headers, "/feeds/advisories.xml", &title, &updated);
    for a in rows {
        let adv = &a.advisory;
        let link = canonical(&c, &headers, &format!("/api/v1/advisories/{}", adv.id));
        let affected: Vec<String> = adv
            .affected
            .iter()
            .map(|f| match adv.fixed_in(&f.dist).as_slice() {
                [] => format!("{}: no fixed version", f.dist),
                fixed => format!("{}: fixed in {}", f.dist, fixed.join(", ")),
            })
            .collect();
        let withdrawn = if a.withdrawn.is_some() {
            " (withdrawn)"
        } else {
            ""
        };
        let alternate = adv
            .affected
            .first()
            .map(|f| canonical(&c, &headers, &format!("/dist/{}/", f.dist.to_lowercase())));
        out.push_str(&format!(
            "<entry>\n<title>{}: {}{withdrawn}</title>\n<id>{}</id>\n<published>{}</published>\n<updated>{}</updated>\n<link href=\"{}\" type=\"application/json\"/>\n{}<author><name>{}</name></author>\n<summary>{}</summary>\n</entry>\n",
            x(&adv.id),
            x(&adv.summary),
            x(&link),
            date(a.published),
            date(a.modified),
            x(&link),
            alternate.map_or_else(String::new, |l| format!("<link rel=\"alternate\" href=\"{}\"/>\n", x(&l))),
            x(&a.user),
            x(&affected.join("; ")),
        ));
    }
    Ok(atom(out))
}

fn strip_xml(file: &str) -> Result<String, ApiError> {
    file.strip_suffix(".xml")
        .map(str::to_string)
        .ok_or_else(|| ApiError::not_found(format!("{file}: feeds end in .xml")))
}

/// `/feeds/recent.xml`: every recent release that is not yanked.
pub async fn recent(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        feed(
            c,
            &headers,
            "/feeds/recent.xml",
            &format!("Recent releases of {}", c.origin.name),
            all_releases(&snap.registry),
        )
    })
    .await
}

/// `/feeds/dist/NAME.xml`.
pub async fn dist(State(c): State<Ctx>, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let d = snap
            .registry
            .dist(&name)
            .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
        feed(
            c,
            &headers,
            &format!("/feeds/dist/{file}"),
            &format!("Releases of {}", d.name),
            d.releases.values().map(|r| (d, r)),
        )
    })
    .await
}

/// `/feeds/user/NAME.xml`.
pub async fn user(State(c): State<Ctx>, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let reg = &snap.registry;
        let a = reg
            .account(&name)
            .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
        feed(
            c,
            &headers,
            &format!("/feeds/user/{file}"),
            &format!("Releases by {}", a.user),
            all_releases(reg).filter(|(_, r)| r.user == a.user),
        )
    })
    .await
}

/// `/feeds/tag/NAME.xml`: every release of the dists whose headline carries the tag, as
/// `/tag/NAME/` lists them.
pub async fn tag(State(c): State<Ctx>, headers: HeaderMap, Path(file): Path<String>) -> Page {
    let name = strip_xml(&file)?;
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let key = name.to_lowercase();
        let mut tagged = Vec::new();
        for d in snap.registry.dists() {
            if dist_tags(c.origin.content(), d)?
                .iter()
                .any(|t| t.to_lowercase() == key)
            {
                tagged.push(d);
            }
        }
        feed(
            c,
            &headers,
            &format!("/feeds/tag/{file}"),
            &format!("Releases tagged {name}"),
            tagged
                .into_iter()
                .flat_map(|d| d.releases.values().map(move |r| (d, r))),
        )
    })
    .await
}

/// `/robots.txt`.
pub async fn robots(State(c): State<Ctx>, headers: HeaderMap) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "User-agent: *\nAllow: /\nSitemap: {}\n",
            canonical(&c, &headers, "/sitemap.xml")
        ),
    )
        .into_response()
}

/// `/sitemap.xml`: home, the log, and every distribution.
pub async fn sitemap(State(c): State<Ctx>, headers: HeaderMap) -> Response {
    let snap = c.origin.snapshot();
    let mut urls = vec![
        canonical(&c, &headers, "/"),
        canonical(&c, &headers, "/log/"),
    ];
    urls.extend(
        snap.registry
            .dists()
            .map(|d| canonical(&c, &headers, &format!("/dist/{}/", d.name.to_lowercase()))),
    );
    let body: String = urls
        .iter()
        .map(|u| format!("<url><loc>{}</loc></url>", escape_html(u)))
        .collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">{body}</urlset>\n"),
    )
        .into_response()
}
