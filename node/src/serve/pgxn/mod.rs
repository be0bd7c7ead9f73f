//! PGXN's mirror+API layout: `index.json`, the dist, extension, user, tag, stats and user-list
//! documents ([`documents`]), and each release's files: its zip (streamed from disk, its hash
//! checked as it goes), META, README, tlog-proof, and documents as pages.

pub mod documents;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use pgext_spec::authority::{DistState, ReleaseState};
use serde_json::Value;

use super::{ApiError, Ctx};
use crate::origin::docs;
use crate::origin::releases::shown;

type ApiResult = Result<Response, ApiError>;

fn json_doc(v: Value) -> Response {
    Json(v).into_response()
}

fn strip_json(file: &str) -> Result<&str, ApiError> {
    file.strip_suffix(".json")
        .ok_or_else(|| ApiError::not_found(format!("{file} not found")))
}

/// A permanent redirect to `path` below the origin's prefix.
pub(crate) fn redirect(c: &Ctx, path: &str) -> Response {
    let to = format!("{}{path}", c.origin.prefix);
    (
        axum::http::StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, to)],
    )
        .into_response()
}

/// `{kind}/{file}` without `.json` is not a document but a site page's path without its
/// trailing slash (PGXN's site paths end in one): the reader is sent there.
fn page_of(c: &Ctx, kind: &str, file: &str) -> Response {
    redirect(c, &format!("/{kind}/{file}/"))
}

/// `/index.json`.
pub async fn index_json() -> Response {
    json_doc(documents::index_doc())
}

/// `/dist/{dist}.json`.
pub async fn dist_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let Some(name) = file.strip_suffix(".json").map(str::to_string) else {
        return Ok(page_of(&c, "dist", &file));
    };
    c.blocking(move |c| {
        let snap = c.origin.snapshot();
        let d = snap
            .registry
            .dist(&name)
            .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
        documents::dist_doc(c.origin.content(), d)?
            .map(json_doc)
            .ok_or_else(|| ApiError::not_found(format!("distribution {name} has no releases")))
    })
    .await
}

/// A dist and one of its releases, copied out of the snapshot.
pub(crate) fn release_of(
    c: &Ctx,
    dist: &str,
    version: &str,
) -> Result<(DistState, ReleaseState), ApiError> {
    let snap = c.origin.snapshot();
    let d = snap
        .registry
        .dist(dist)
        .ok_or_else(|| ApiError::not_found(format!("distribution {dist} not found")))?;
    let r = d
        .releases
        .get(&version.to_ascii_lowercase())
        .ok_or_else(|| ApiError::not_found(format!("{dist} {version} not found")))?;
    Ok((d.clone(), r.clone()))
}

/// A release's files: its zip, META, README and tlog-proof (PGXN's mirror paths), and its
/// documents rendered as pages (`htmldoc`, `DOCPATH.html`). `/dist/NAME/doc/x.html`, PGXN's
/// site path for a document of the headline release, is one too.
pub async fn dist_file(
    State(c): State<Ctx>,
    headers: HeaderMap,
    Path((dist, version, file)): Path<(String, String, String)>,
) -> ApiResult {
    let (d, r) = match release_of(&c, &dist, &version) {
        Ok(found) => found,
        Err(e) => {
            let Some(docpath) = file.strip_suffix(".html") else {
                return Err(e);
            };
            let snap = c.origin.snapshot();
            let d = snap.registry.dist(&dist).ok_or(e)?;
            let r =
                shown(d).ok_or_else(|| ApiError::not_found(format!("{dist} has no release")))?;
            let docpath = format!("{version}/{docpath}");
            let (d, r) = (d.clone(), r.clone());
            return c
                .blocking(move |c| super::site::pages::doc_page(c, &headers, &d, &r, &docpath))
                .await;
        }
    };
    let base = docs::base_name(&d.name, &r.release.version);
    let lower = file.to_ascii_lowercase();
    if let Some(docpath) = file.strip_suffix(".html") {
        let docpath = docpath.to_string();
        return c
            .blocking(move |c| super::site::pages::doc_page(c, &headers, &d, &r, &docpath))
            .await;
    }
    if lower == "meta.json" {
        return c
            .blocking(move |c| {
                Ok(json_doc(documents::release_meta(
                    c.origin.content(),
                    &d,
                    &r,
                )?))
            })
            .await;
    }
    if lower == format!("{base}.zip") {
        // A release of up to a few MiB is read whole, its hash checked, and kept by the
        // document cache; a larger one streams from disk, checked as it goes.
        if r.release.size <= super::cache::DocCache::MAX_ITEM as u64 {
            let sha = r.release.sha256.clone();
            let zip = c
                .blocking(move |c| Ok(c.origin.content().get(&sha)?))
                .await?;
            return Ok(([(header::CONTENT_TYPE, "application/zip")], zip).into_response());
        }
        return download(&c, &r.release.sha256, r.release.size).await;
    }
    if lower == format!("{base}.zip.tlog-proof") {
        // The entry rides along, so the file alone proves the archive offline (spec/log.md).
        let index = r.index;
        let receipt = c.blocking(move |c| Ok(c.origin.receipt(index)?)).await?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            receipt.proof,
        )
            .into_response());
    }
    if lower == "readme.txt" {
        let readme = c
            .blocking(move |c| Ok(c.origin.content().readme(&d.name, &r)?))
            .await?
            .ok_or_else(|| ApiError::not_found("this release has no README"))?;
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            readme,
        )
            .into_response());
    }
    Err(ApiError::not_found(format!("{file} not found")))
}

/// `/api/v1/dists/{dist}/{version}/builds/{sha256}`: a binary package an attestation of the
/// release names, streamed and checked as release zips are.
pub async fn binary_file(
    State(c): State<Ctx>,
    Path((dist, version, sha)): Path<(String, String, String)>,
) -> ApiResult {
    let size = {
        let snap = c.origin.snapshot();
        snap.registry
            .dist(&dist)
            .and_then(|d| d.releases.get(&version.to_ascii_lowercase()))
            .and_then(|r| r.builds.iter().find(|b| b.build.sha256 == sha))
            .map(|b| b.build.size)
            .ok_or_else(|| {
                ApiError::not_found(format!("no build of {dist}@{version} has package {sha}"))
            })?
    };
    download(&c, &sha, size).await
}

/// Streams a release zip from disk. Its size is checked first and its SHA-256 as it goes:
/// bytes that are not the ones the log names end the stream with an error (the client sees a
/// cut download, never other bytes as the release) and raise the alarm.
async fn download(c: &Ctx, sha256: &str, size: u64) -> ApiResult {
    use futures::StreamExt as _;
    use sha2::Digest as _;
    let sha = sha256.to_string();
    let content = c.origin.content().clone();
    let (file, len) = {
        let content = content.clone();
        let sha = sha.clone();
        crate::origin::blocking(move || {
            let (file, len) = content
                .blobs()
                .open_file(&sha)
                .map_err(|e| ApiError::from(content.alarm(e)))?;
            if len != size {
                let e = crate::origin::blobs::BlobError::Damaged(
                    sha.clone(),
                    format!("a file of {len} bytes where the log names {size}"),
                );
                return Err(ApiError::from(content.alarm(e)));
            }
            Ok((file, len))
        })
        .await?
    };
    let mut hasher = Some(sha2::Sha256::new());
    let mut seen = 0u64;
    let stream =
        tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len() as u64;
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            if seen == len {
                let got = pgext_log::hex(&hasher.take().unwrap_or_default().finalize());
                if got != sha {
                    content.alarm(crate::origin::blobs::BlobError::Damaged(sha.clone(), got));
                    return Err(std::io::Error::other("the stored release is damaged"));
                }
            } else if seen > len {
                return Err(std::io::Error::other("the stored release changed size"));
            }
            Ok(chunk)
        });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// `/extension/{file}`.
pub async fn extension_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let Some(name) = file.strip_suffix(".json").map(str::to_string) else {
        return Ok(page_of(&c, "extension", &file));
    };
    c.blocking(move |c| {
        documents::extension_doc(c.origin.content(), &c.origin.snapshot().registry, &name)?
            .map(json_doc)
            .ok_or_else(|| ApiError::not_found(format!("extension {name} not found")))
    })
    .await
}

/// `/user/{file}`.
pub async fn user_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let Some(name) = file.strip_suffix(".json").map(str::to_string) else {
        return Ok(page_of(&c, "user", &file));
    };
    c.blocking(move |c| {
        documents::user_doc(c.origin.content(), &c.origin.snapshot().registry, &name)?
            .map(json_doc)
            .ok_or_else(|| ApiError::not_found(format!("user {name} not found")))
    })
    .await
}

/// `/tag/{file}`.
pub async fn tag_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let Some(name) = file.strip_suffix(".json").map(str::to_string) else {
        return Ok(page_of(&c, "tag", &file));
    };
    c.blocking(move |c| {
        documents::tag_doc(c.origin.content(), &c.origin.snapshot().registry, &name)?
            .map(json_doc)
            .ok_or_else(|| ApiError::not_found(format!("tag {name} not found")))
    })
    .await
}

/// `/stats/{file}`.
pub async fn stats_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let kind = strip_json(&file)?.to_string();
    c.blocking(move |c| {
        documents::stats_doc(
            c.origin.content(),
            &c.origin.snapshot().registry,
            &|d: &str, v: &str| c.origin.downloads(d, v).total,
            &kind,
        )?
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found(format!("no {kind} statistics")))
    })
    .await
}

/// `/users/{file}`.
pub async fn userlist_json(State(c): State<Ctx>, Path(file): Path<String>) -> ApiResult {
    let letter = strip_json(&file)?;
    documents::userlist_doc(&c.origin.snapshot().registry, letter)
        .map(json_doc)
        .ok_or_else(|| ApiError::not_found("user lists are per letter"))
}

/// `/meta/mirrors.json`.
pub async fn mirrors_json(State(c): State<Ctx>) -> Response {
    json_doc(documents::mirrors_doc(c.app.http, &c.origin.name))
}

/// `/meta/spec.txt`.
pub async fn spec_txt() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        documents::SPEC_TXT,
    )
        .into_response()
}
