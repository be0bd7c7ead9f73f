//! Search over HTTP: PGXN's `/search/{kind}/` (its shapes, codes and JSONP) and
//! `/api/v1/search` (with a category filter), and browsing by category (`/api/v1/categories`).
//! Queries run on the blocking pool; offsets and limits are bounded so no request sizes a
//! search beyond what one page needs.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, Ctx};
use crate::search::{Kind, Page};

type ApiResult = Result<Response, ApiError>;
type Params = Query<HashMap<String, String>>;

/// The largest offset a search takes: deeper pages are not served (a client wanting
/// everything reads the PGXN documents instead).
pub const MAX_OFFSET: usize = 10_000;
/// The largest page size, as PGXN's searcher: larger limits fall back to the default.
pub const MAX_LIMIT: usize = 1023;
/// The longest query taken, in bytes.
pub const MAX_QUERY: usize = 1024;

/// Reads `q`, `o` and `l` as PGXN's searcher does: `q` required and not just `*` or `?`; `o`
/// and `l` numbers; `l` 50 by default and when 1024 or more. An offset past [`MAX_OFFSET`] or
/// a query longer than [`MAX_QUERY`] is refused.
///
/// # Errors
/// 400 naming the bad parameter.
pub fn search_params(p: &HashMap<String, String>) -> Result<(String, usize, usize), ApiError> {
    let q = p.get("q").map(|q| q.trim()).unwrap_or_default();
    if q.is_empty() || q == "*" || q == "?" {
        return Err(ApiError::bad_request("a query (q) is required"));
    }
    if q.len() > MAX_QUERY {
        return Err(ApiError::bad_request(format!(
            "the query is {} bytes; at most {MAX_QUERY} are searched",
            q.len()
        )));
    }
    let number = |k: &str, default: usize| match p.get(k).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v.parse::<usize>().map_err(|_| {
            ApiError::bad_request(format!(
                "{k} must be a number, not {:?}",
                v.chars().take(40).collect::<String>()
            ))
        }),
    };
    let o = number("o", 0)?;
    if o > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "o (the offset) is at most {MAX_OFFSET}"
        )));
    }
    let l = match number("l", 50)? {
        0 | 1024.. => 50,
        l => l,
    };
    Ok((q.to_string(), o, l))
}

/// The category a `category` parameter names (by name or slug), as its slug.
///
/// # Errors
/// 400 when it names none of the META spec's categories.
pub fn category_param(p: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    let Some(v) = p.get("category").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let c = pgext_spec::meta::category_named(v).ok_or_else(|| {
        ApiError::bad_request(format!(
            "category must be one of the META spec's ({}), not {:?}",
            pgext_spec::meta::CATEGORIES.join(", "),
            v.chars().take(40).collect::<String>()
        ))
    })?;
    Ok(Some(pgext_spec::meta::category_slug(c)))
}

/// Runs a search on the blocking pool, within a category (a slug) when one is given.
///
/// # Errors
/// 503 while the index is opening; 500 when it cannot be read.
pub async fn run(
    c: &Ctx,
    kind: Kind,
    q: String,
    category: Option<String>,
    (o, l): (usize, usize),
) -> Result<Page, ApiError> {
    let o = o.min(MAX_OFFSET);
    let l = l.min(MAX_LIMIT);
    c.blocking(move |c| {
        let index = c.search.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "search is starting",
            )
        })?;
        Ok(index.search(kind, &q, category.as_deref(), (o, l))?)
    })
    .await
}

/// `/search/{docs|dists|extensions|users|tags}/?q=&o=&l=`, PGXN's shapes, with JSONP.
pub async fn pgxn_search(
    State(c): State<Ctx>,
    Path(kind): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let kind =
        Kind::parse(&kind).ok_or_else(|| ApiError::not_found(format!("cannot search {kind}")))?;
    let (q, o, l) = search_params(&p)?;
    let page = run(&c, kind, q.clone(), None, (o, l)).await?;
    let doc = json!({"query": q, "offset": o, "limit": l, "count": page.count, "hits": page.hits});
    Ok(jsonp(p.get("callback"), doc))
}

/// `/api/v1/search?q=&in=&o=&l=&category=`: the same search, `in` defaulting to dists,
/// within a category when one is named.
pub async fn api_search(State(c): State<Ctx>, Query(p): Params) -> ApiResult {
    let within = p.get("in").map_or("dists", String::as_str);
    let kind = Kind::parse(within).ok_or_else(|| {
        ApiError::bad_request(format!(
            "in must be docs, dists, extensions, users or tags, not {:?}",
            within.chars().take(40).collect::<String>()
        ))
    })?;
    let (q, o, l) = search_params(&p)?;
    let category = category_param(&p)?;
    let page = run(&c, kind, q.clone(), category, (o, l)).await?;
    Ok(Json(pgext_spec::api::SearchPage {
        query: q,
        within: within.to_string(),
        offset: o,
        limit: l,
        count: page.count,
        hits: page.hits,
    })
    .into_response())
}

/// `/api/v1/categories`: every category of the META spec with its number of distributions.
pub async fn categories(State(c): State<Ctx>) -> ApiResult {
    c.blocking(|c| {
        let snap = c.origin.snapshot();
        let all = crate::origin::releases::by_category(c.origin.content(), &snap.registry)?;
        let list: Vec<pgext_spec::api::Category> = all
            .into_iter()
            .map(|(name, dists)| pgext_spec::api::Category {
                category: name.to_string(),
                slug: pgext_spec::meta::category_slug(name),
                dists: dists.len(),
            })
            .collect();
        Ok(Json(json!({ "categories": list })).into_response())
    })
    .await
}

/// The distributions of a category, by name.
///
/// # Errors
/// 404 for a name that is no category; when a META cannot be read.
pub fn category_page(c: &Ctx, category: &str) -> Result<pgext_spec::api::CategoryPage, ApiError> {
    let name = pgext_spec::meta::category_named(category)
        .ok_or_else(|| ApiError::not_found(format!("no category {category:?}")))?;
    let snap = c.origin.snapshot();
    let content = c.origin.content();
    let all = crate::origin::releases::by_category(content, &snap.registry)?;
    let mut dists = Vec::new();
    for (d, cats) in all
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|x| x.1)
        .unwrap_or_default()
    {
        let Some(r) = crate::origin::releases::headline(d) else {
            continue;
        };
        dists.push(pgext_spec::api::CategoryDist {
            dist: d.name.clone(),
            version: r.release.version.clone(),
            r#abstract: crate::origin::releases::abstract_of(content, r)?,
            categories: cats.iter().map(|c| (*c).to_string()).collect(),
        });
    }
    Ok(pgext_spec::api::CategoryPage {
        category: name.to_string(),
        slug: pgext_spec::meta::category_slug(name),
        dists,
    })
}

/// `/api/v1/categories/{category}`: its distributions (`category` is a name or a slug).
pub async fn category(State(c): State<Ctx>, Path(category): Path<String>) -> ApiResult {
    c.blocking(move |c| Ok(Json(category_page(c, &category)?).into_response()))
        .await
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
        None => Json(doc).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn offsets_and_limits_are_bounded() {
        assert_eq!(
            search_params(&params(&[("q", "x")])).unwrap(),
            ("x".into(), 0, 50)
        );
        assert_eq!(
            search_params(&params(&[("q", "x"), ("l", "5000")]))
                .unwrap()
                .2,
            50
        );
        let huge = usize::MAX.to_string();
        assert!(search_params(&params(&[("q", "x"), ("o", &huge)])).is_err());
        assert!(search_params(&params(&[("q", "x"), ("o", "10001")])).is_err());
        assert!(search_params(&params(&[("q", &"x".repeat(2000))])).is_err());
        assert!(search_params(&params(&[("q", "*")])).is_err());
    }
}
