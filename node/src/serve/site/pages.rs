//! The site's pages: home, search, dist and release pages (README, versions, owners, a
//! provenance panel), documents, extension, user and tag pages, the log and the mirrors.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use pgext_spec::authority::{DistState, ReleaseState};
use serde_json::{Value, json};

use super::{Page, canonical, cosigners, page, render, render_doc, render_markdown, with};
use crate::origin::docs::{Doc, ReleaseDocs};
use crate::origin::releases::{abstract_of, date, headline, shown};
use crate::search::Kind;
use crate::serve::pgxn::documents::tag_doc;
use crate::serve::{ApiError, Ctx};

/// `/`.
pub async fn home(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let reg = &snap.registry;
        let mut all: Vec<(&DistState, &ReleaseState)> = reg
            .dists()
            .flat_map(|d| d.releases.values().map(move |r| (d, r)))
            .collect();
        let releases = all.len();
        all.sort_by_key(|(_, r)| std::cmp::Reverse(r.index));
        let mut recent = Vec::new();
        for (d, r) in all.iter().filter(|(_, r)| r.yanked.is_none()).take(20) {
            recent.push(json!({"dist": d.name, "version": r.release.version,
                "abstract": abstract_of(c.origin.content(), r)?, "date": date(r.time), "user": r.user}));
        }
        let counts = json!({"dists": reg.dists().count(), "releases": releases, "users": reg.accounts().count(), "size": snap.size});
        let base = page(
            c,
            &headers,
            "/",
            "PostgreSQL extensions",
            "Find, read about, verify and install PostgreSQL extensions.",
        );
        render(
            "home.html",
            with(base, json!({"recent": recent, "counts": counts})),
        )
    })
    .await
}

/// `/search?q=&in=&o=`: results with highlights, ten at a time.
pub async fn search(
    State(c): State<Ctx>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Page {
    let q: String = p
        .get("q")
        .map(|q| {
            q.trim()
                .chars()
                .take(crate::serve::search::MAX_QUERY)
                .collect()
        })
        .unwrap_or_default();
    let within = p.get("in").map_or("dists", String::as_str).to_string();
    let kind = Kind::parse(&within).unwrap_or(Kind::Dists);
    let within = if Kind::parse(&within).is_some() {
        within
    } else {
        "dists".to_string()
    };
    let o: usize = p
        .get("o")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
        .min(crate::serve::search::MAX_OFFSET);
    let category = crate::serve::search::category_param(&p)?;
    let (count, hits) = if q.is_empty() {
        (0, Vec::new())
    } else {
        let page =
            crate::serve::search::run(&c, kind, q.clone(), category.clone(), (o, 10)).await?;
        (page.count, page.hits)
    };
    let pre = &c.origin.prefix;
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
    let next = (o + 10 < count && o + 10 <= crate::serve::search::MAX_OFFSET).then_some(o + 10);
    let base = page(
        &c,
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
                          "kinds": ["dists", "extensions", "docs", "users", "tags"],
                          "category": category.as_deref().and_then(pgext_spec::meta::category_named),
                          "category_slug": category}),
        ),
    )
}

fn release_page(c: &Ctx, headers: &HeaderMap, d: &DistState, r: &ReleaseState, path: &str) -> Page {
    let content = c.origin.content();
    let downloads = c.origin.downloads(&d.name, &r.release.version);
    let readme = content
        .readme(&d.name, r)?
        .map(|b| render_markdown(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let meta = content.meta(&r.release.meta_sha256)?;
    let snap = c.origin.snapshot();
    let reg = &snap.registry;
    let mut releases: Vec<&ReleaseState> = d.releases.values().collect();
    releases.sort_by_key(|x| std::cmp::Reverse(x.index));
    let releases: Vec<Value> = releases
        .iter()
        .map(|x| json!({"version": x.release.version, "status": x.release.status.as_str(), "date": date(x.time), "yanked": x.yanked.is_some(),
                        "vulnerable": !reg.advisories_affecting(&d.name, &x.release.version).is_empty()}))
        .collect();
    let pre = format!(
        "{}/dist/{}/{}/",
        c.origin.prefix,
        d.name.to_lowercase(),
        r.release.version.to_lowercase()
    );
    // The README is shown in full below; the other documents are linked.
    let docs: Vec<Value> = content
        .docs(&d.name, r)?
        .docs
        .iter()
        .filter(|x| x.docpath != "README")
        .map(|x| json!({"title": x.title, "href": format!("{pre}{}.html", x.docpath), "extension": x.extension}))
        .collect();
    let needs = needs_view(&*content.requirements(&r.release.meta_sha256)?);
    let advisories = crate::serve::advisories::page_view(reg, &d.name, &r.release.version);
    // The build matrix: per target, each package with the builders that attest it.
    let builds = crate::origin::releases::builds(&d.name, r);
    let matrix: Vec<Value> = builds
        .matrix
        .iter()
        .map(|row| {
            let t = &row.target;
            json!({
                "pg": t.pg, "platform": format!("{} {} {}", t.os, t.os_version, t.arch),
                "libc": t.libc, "disagree": row.packages.len() > 1,
                "packages": row.packages.iter().map(|p| json!({
                    "sha256": p.sha256, "short": &p.sha256[..12.min(p.sha256.len())],
                    "builders": p.builders, "tests_pass": p.tests_pass,
                    "tests": builds.builds.iter().filter(|b| b.sha256 == p.sha256)
                        .map(|b| b.installcheck.as_str()).collect::<std::collections::BTreeSet<_>>(),
                    "href": format!("{}/{}", c.origin.prefix, builds.builds.iter()
                        .find(|b| b.sha256 == p.sha256).map(|b| b.url.as_str()).unwrap_or_default()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let base = page(
        c,
        headers,
        path,
        &format!("{} {}", d.name, r.release.version),
        &meta.abstract_,
    );
    render(
        "dist.html",
        with(
            base,
            json!({
                "dist": d.name, "version": r.release.version, "abstract": meta.abstract_, "yanked": r.yanked,
                "user": r.user, "date": date(r.time), "index": r.index, "checkpoint_size": snap.size,
                "cosigners": cosigners(&c.origin.name, &snap.note), "sha256": r.release.sha256,
                "vkey": c.origin.vkey.to_string(), "url": canonical(c, headers, ""), "releases": releases,
                "owners": d.owners, "tags": meta.tags, "readme": readme, "docs": docs,
                "matrix": matrix, "imported": r.imported, "sha1": r.release.sha1,
                "claimed_by": r.imported.then(|| snap.registry.claim(&r.user)).flatten(),
                "downloads": downloads.total, "needs": needs, "advisories": advisories,
                "ci": crate::serve::trusted::page_view(reg, r),
                "downloads_by": downloads.nodes.iter().map(|(n, k)| json!({"node": n.split('+').next().unwrap_or_default(), "n": k})).collect::<Vec<_>>(),
            }),
        ),
    )
}

/// What a release needs, as its page lists it: packages grouped by purl with their phases,
/// extensions apart from system packages.
fn needs_view(r: &pgext_spec::requirements::Requirements) -> Value {
    use pgext_spec::requirements::Preload;
    let mut groups: Vec<(String, bool, &str, Vec<&str>)> = Vec::new();
    for p in &r.packages {
        let (phase, relation) = (p.phase.as_str(), p.relation.as_str());
        match groups.iter_mut().find(|g| g.0 == p.purl && g.2 == relation) {
            Some(g) => g.3.push(phase),
            None => groups.push((p.purl.clone(), p.is_extension(), relation, vec![phase])),
        }
    }
    let group = |ext: bool| -> Vec<Value> {
        groups
            .iter()
            .filter(|g| g.1 == ext)
            .map(|(purl, _, relation, phases)| {
                let name = purl.rsplit('/').next().unwrap_or(purl);
                json!({"purl": purl, "name": name, "relation": relation, "phases": phases.join(", ")})
            })
            .collect()
    };
    json!({
        "postgres": r.postgres, "with": r.postgres_with, "platforms": r.platforms,
        "pipeline": r.pipeline, "restart": r.restart, "tle": r.tle(),
        "preload": r.modules.iter().filter_map(|m| Some(json!({
            "lib": m.library(), "server": m.preload? == Preload::Server,
        }))).collect::<Vec<_>>(),
        "system": group(false), "extensions": group(true),
    })
}

/// `/dist/NAME/`: the headline release.
pub async fn dist(State(c): State<Ctx>, headers: HeaderMap, Path(name): Path<String>) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let d = snap
            .registry
            .dist(&name)
            .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
        let r = shown(d).ok_or_else(|| ApiError::not_found(format!("{name} has no release")))?;
        release_page(
            c,
            &headers,
            d,
            r,
            &format!("/dist/{}/", name.to_lowercase()),
        )
    })
    .await
}

/// `/dist/NAME/VERSION/`.
pub async fn release(
    State(c): State<Ctx>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let d = snap
            .registry
            .dist(&name)
            .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
        let r = d
            .releases
            .get(&version.to_ascii_lowercase())
            .ok_or_else(|| ApiError::not_found(format!("{name} has no version {version}")))?;
        let path = format!("/dist/{}/{}/", name.to_lowercase(), version.to_lowercase());
        release_page(c, &headers, d, r, &path)
    })
    .await
}

/// A document of a release, by docpath, with its source bytes. Blocks.
///
/// # Errors
/// 404 for a docpath the release does not have; a fault when the zip cannot be read.
pub fn read_doc(
    c: &Ctx,
    d: &DistState,
    r: &ReleaseState,
    docpath: &str,
) -> Result<(Doc, Vec<u8>), ApiError> {
    let docs = c.origin.content().docs(&d.name, r)?;
    let doc = docs.get(docpath).cloned().ok_or_else(|| {
        ApiError::not_found(format!(
            "{} {} has no document {docpath}",
            d.name, r.release.version
        ))
    })?;
    let bytes = c
        .origin
        .content()
        .member(&d.name, r, &doc.file)?
        .ok_or_else(|| ApiError::internal("a document listed in the zip cannot be read from it"))?;
    Ok((doc, bytes))
}

/// `/dist/NAME/VERSION/DOCPATH.html`: one document of a release, rendered and sanitized.
/// Blocks.
///
/// # Errors
/// As [`read_doc`].
pub fn doc_page(
    c: &Ctx,
    headers: &HeaderMap,
    d: &DistState,
    r: &ReleaseState,
    docpath: &str,
) -> Page {
    let docs: std::sync::Arc<ReleaseDocs> = c.origin.content().docs(&d.name, r)?;
    let (doc, bytes) = read_doc(c, d, r, docpath)?;
    let version = r.release.version.to_lowercase();
    let path = format!(
        "/dist/{}/{version}/{}.html",
        d.name.to_lowercase(),
        doc.docpath
    );
    let pre = &c.origin.prefix;
    let others: Vec<Value> = docs
        .docs
        .iter()
        .map(|x| json!({"title": x.title, "href": format!("{pre}/dist/{}/{version}/{}.html", d.name.to_lowercase(), x.docpath),
                        "current": x.docpath == doc.docpath}))
        .collect();
    let base = page(
        c,
        headers,
        &path,
        &format!("{} · {} {}", doc.title, d.name, r.release.version),
        &abstract_of(c.origin.content(), r)?,
    );
    render(
        "doc.html",
        with(
            base,
            json!({"dist": d.name, "version": r.release.version, "doc_title": doc.title,
                   "file": doc.file, "extension": doc.extension, "body": render_doc(&doc.file, &bytes),
                   "docs": others, "yanked": r.yanked,
                   "source": format!("{pre}/api/v1/dists/{}/{version}/docs/{}", d.name.to_lowercase(), doc.docpath)}),
        ),
    )
}

fn list(
    c: &Ctx,
    headers: &HeaderMap,
    path: &str,
    heading: &str,
    intro: &str,
    rows: Vec<Value>,
) -> Page {
    let base = page(c, headers, path, heading, intro);
    render(
        "list.html",
        with(
            base,
            json!({"heading": heading, "intro": intro, "rows": rows}),
        ),
    )
}

fn dist_row(c: &Ctx, d: &DistState) -> Result<Option<Value>, ApiError> {
    let Some(r) = headline(d) else {
        return Ok(None);
    };
    Ok(Some(
        json!({"name": format!("{} {}", d.name, r.release.version), "href": format!("{}/dist/{}/", c.origin.prefix, d.name.to_lowercase()),
                "text": abstract_of(c.origin.content(), r)?}),
    ))
}

fn rows<'a>(c: &Ctx, dists: impl Iterator<Item = &'a DistState>) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    for d in dists {
        out.extend(dist_row(c, d)?);
    }
    Ok(out)
}

/// `/extension/NAME/`: the distributions providing it.
pub async fn extension(State(c): State<Ctx>, headers: HeaderMap, Path(name): Path<String>) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let d = snap
            .registry
            .extension_dist(&name)
            .ok_or_else(|| ApiError::not_found(format!("extension {name} not found")))?;
        let rows = rows(c, std::iter::once(d))?;
        list(
            c,
            &headers,
            &format!("/extension/{name}/"),
            &format!("Extension {name}"),
            &format!("{name} is provided by {}.", d.name),
            rows,
        )
    })
    .await
}

/// `/user/NAME/`: what an account published.
pub async fn user(State(c): State<Ctx>, headers: HeaderMap, Path(name): Path<String>) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let reg = &snap.registry;
        let a = reg
            .account(&name)
            .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))?;
        let rows = rows(
            c,
            reg.dists().filter(|d| {
                d.releases.values().any(|r| r.user == a.user) || d.owners.contains(&a.user)
            }),
        )?;
        let intro = format!(
            "{}{} publishes these distributions.",
            a.user,
            a.name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        list(
            c,
            &headers,
            &format!("/user/{}/", a.user),
            &format!("User {}", a.user),
            &intro,
            rows,
        )
    })
    .await
}

/// `/tag/NAME/`: the distributions tagged so.
pub async fn tag(State(c): State<Ctx>, headers: HeaderMap, Path(name): Path<String>) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let reg = &snap.registry;
        let doc = tag_doc(c.origin.content(), reg, &name)?
            .ok_or_else(|| ApiError::not_found(format!("tag {name} not found")))?;
        let rows = rows(
            c,
            doc["releases"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.keys())
                .filter_map(|d| reg.dist(d)),
        )?;
        list(
            c,
            &headers,
            &format!("/tag/{}/", name.to_lowercase()),
            &format!("Tag {name}"),
            "",
            rows,
        )
    })
    .await
}

/// `/categories/`: the META spec's categories, each with its number of distributions.
pub async fn categories(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let all = crate::origin::releases::by_category(c.origin.content(), &snap.registry)?;
        let rows: Vec<Value> = all
            .iter()
            .map(|(name, dists)| {
                json!({"name": name, "href": format!("{}/category/{}/", c.origin.prefix, pgext_spec::meta::category_slug(name)),
                    "text": format!("{} distribution{}", dists.len(), if dists.len() == 1 { "" } else { "s" })})
            })
            .collect();
        list(
            c,
            &headers,
            "/categories/",
            "Categories",
            "Extensions by what they do, as their META names it (or the registry's mapping of their tags).",
            rows,
        )
    })
    .await
}

/// `/category/SLUG/`: the distributions of a category.
pub async fn category(State(c): State<Ctx>, headers: HeaderMap, Path(name): Path<String>) -> Page {
    c.blocking(move |c| {
        let page = crate::serve::search::category_page(c, &name)?;
        let rows: Vec<Value> = page
            .dists
            .iter()
            .map(|d| {
                json!({"name": format!("{} {}", d.dist, d.version), "href": format!("{}/dist/{}/", c.origin.prefix, d.dist.to_lowercase()),
                    "text": d.r#abstract})
            })
            .collect();
        list(
            c,
            &headers,
            &format!("/category/{}/", page.slug),
            &format!("Category: {}", page.category),
            "",
            rows,
        )
    })
    .await
}

/// `/log/`: origin, key, size, latest checkpoint, cosigners, evidence.
pub async fn log(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    let snap = c.origin.snapshot();
    let evidence: Vec<String> = match &snap.evidence {
        Ok(list) => list.iter().flat_map(|e| e.notes.iter().cloned()).collect(),
        Err(why) => vec![format!("(the stored evidence cannot be read: {why})")],
    };
    let base = page(
        &c,
        &headers,
        "/log/",
        "The log",
        &format!("The signed, append-only log of {}.", c.origin.name),
    );
    render(
        "log.html",
        with(
            base,
            json!({"vkey": c.origin.vkey.to_string(), "size": snap.size, "checkpoint": snap.note,
                   "cosigners": cosigners(&c.origin.name, &snap.note),
                   "url": canonical(&c, &headers, ""), "evidence": evidence}),
        ),
    )
}

/// `/mirrors/`: every origin this node serves.
pub async fn mirrors(State(c): State<Ctx>, headers: HeaderMap) -> Page {
    let rows = c
        .app
        .origins
        .iter()
        // The page is cached for everyone who reaches this origin: it names no private origin
        // but this one (whose readers are its members).
        .filter(|s| !s.origin.private || Arc::ptr_eq(&s.origin, &c.origin))
        .map(|s| {
            let o = &s.origin;
            let how = if o.prefix.is_empty() {
                ", sequenced here"
            } else {
                ", mirrored and verified here"
            };
            json!({"name": o.name, "href": format!("{}/", o.prefix), "text": format!("log size {}{how}", o.size())})
        })
        .collect();
    list(
        &c,
        &headers,
        "/mirrors/",
        "Mirrors",
        "The logs this node serves.",
        rows,
    )
}

/// `/dist/NAME/VERSION`, `/log`, `/mirrors`: the page's path with its trailing slash.
pub async fn release_slash(
    State(c): State<Ctx>,
    Path((name, version)): Path<(String, String)>,
) -> axum::response::Response {
    crate::serve::pgxn::redirect(&c, &format!("/dist/{name}/{version}/"))
}

/// `/log` to `/log/`.
pub async fn log_slash(State(c): State<Ctx>) -> axum::response::Response {
    crate::serve::pgxn::redirect(&c, "/log/")
}

/// `/mirrors` to `/mirrors/`.
pub async fn mirrors_slash(State(c): State<Ctx>) -> axum::response::Response {
    crate::serve::pgxn::redirect(&c, "/mirrors/")
}
