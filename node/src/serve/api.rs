//! The native JSON API under `/api/v1/` (`spec/openapi.json`), the log as C2SP tlog-tiles
//! (`/log/checkpoint`, `/log/tile/…`), C2SP tlog-witness `add-checkpoint`, and `/metrics`.
//! Submissions to an origin this node sequences go to its sequencer; to a mirrored origin,
//! through the federation to the origin's sequencer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pgext_log::leaf_hash;
use pgext_spec::entry::Entry;
use serde_json::{Value, json};

use super::pgxn::release_of;
use super::{ApiError, Ctx};
use crate::origin::{Evidence, publish};

type ApiResult = Result<Response, ApiError>;

fn json_doc(v: Value) -> Response {
    Json(v).into_response()
}

/// `/log/checkpoint`.
pub async fn checkpoint(State(c): State<Ctx>) -> ApiResult {
    let snap = c.origin.snapshot();
    if snap.note.is_empty() {
        return Err(ApiError::not_found(
            "no checkpoint of this origin has been verified here yet",
        ));
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        snap.note.clone(),
    )
        .into_response())
}

/// `/log/tile/…`: only tiles the published checkpoint implies, cut to the requested width.
pub async fn tile(State(c): State<Ctx>, Path(path): Path<String>) -> ApiResult {
    let path = format!("tile/{path}");
    let (tile, bytes) = c.blocking(move |c| Ok(c.origin.tile_bytes(&path)?)).await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    // Full tiles never change; a partial tile of a given width never changes either, but only
    // the newest is linked from the checkpoint, so keep those short-lived in caches.
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(resp)
}

fn role(c: &crate::origin::Origin) -> &'static str {
    if c.is_sequencer() {
        "sequencer"
    } else {
        "mirror"
    }
}

/// `/api/v1/log`.
pub async fn log_info(State(c): State<Ctx>) -> Response {
    let o = &c.origin;
    let snap = o.snapshot();
    json_doc(
        json!({"origin": o.name, "vkey": o.vkey.to_string(), "size": snap.size, "checkpoint": snap.note,
               "tiles": format!("{}/log/", o.prefix), "role": role(o), "halted": snap.halted}),
    )
}

/// Takes a submission: sequenced here when this node is the origin's sequencer, otherwise
/// forwarded over libp2p to the node that is, whose answer is returned as it gave it.
async fn submit(c: Ctx, entry: Entry, archive: Option<Vec<u8>>) -> ApiResult {
    let receipt = match (&c.app.federation, c.origin.is_sequencer()) {
        (Some(fed), false) => {
            fed.forward_submission(&c.origin.name, &entry, archive)
                .await?
        }
        _ => publish::submit(c.origin.clone(), entry, archive).await?,
    };
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// `POST /api/v1/entries`.
pub async fn post_entry(State(c): State<Ctx>, body: Bytes) -> ApiResult {
    let entry = Entry::from_submitted(&body).map_err(crate::origin::Error::from)?;
    submit(c, entry, None).await
}

/// `POST /api/v1/releases`: multipart `entry` (the signed statement) and `archive`.
pub async fn post_release(State(c): State<Ctx>, mut form: Multipart) -> ApiResult {
    let mut entry = None;
    let mut archive = None;
    let limit = c.app.max_archive_bytes;
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "archive-too-large",
                format!("uploads are limited to {limit} bytes"),
            )
        } else {
            ApiError::bad_request(e.body_text())
        }
    };
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("entry") if entry.is_none() => {
                let bytes = field.bytes().await.map_err(form_error)?;
                entry = Some(Entry::from_submitted(&bytes).map_err(crate::origin::Error::from)?);
            }
            Some("archive") if archive.is_none() => {
                archive = Some(field.bytes().await.map_err(form_error)?.to_vec());
            }
            Some(name @ ("entry" | "archive")) => {
                return Err(ApiError::bad_request(format!(
                    "the `{name}` field is given twice"
                )));
            }
            _ => {}
        }
    }
    let entry = entry.ok_or_else(|| {
        ApiError::bad_request("missing the `entry` field (the signed release statement)")
    })?;
    let archive = archive.ok_or_else(|| ApiError::bad_request("missing the `archive` field"))?;
    submit(c, entry, Some(archive)).await
}

/// `/api/v1/entries/{index}`.
pub async fn get_entry(State(c): State<Ctx>, Path(index): Path<u64>) -> ApiResult {
    let size = c.origin.size();
    if index >= size {
        return Err(ApiError::not_found(format!(
            "entry {index} is not in the log (size {size})"
        )));
    }
    let bytes = c
        .blocking(move |c| {
            c.origin
                .entries(index, index + 1)?
                .pop()
                .ok_or_else(|| ApiError::internal(format!("entry {index} is missing")))
        })
        .await?;
    let entry: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    Ok(json_doc(
        json!({"index": index, "leaf_hash": leaf_hash(&bytes).to_base64(), "entry": entry}),
    ))
}

fn proof_json(proof: &[pgext_log::Hash]) -> Vec<String> {
    proof.iter().map(|h| h.to_base64()).collect()
}

/// `/api/v1/proofs/inclusion/{index}/{size}`.
pub async fn inclusion(State(c): State<Ctx>, Path((index, size)): Path<(u64, u64)>) -> ApiResult {
    let proof = c
        .blocking(move |c| Ok(c.origin.inclusion_proof(index, size)?))
        .await?;
    Ok(json_doc(
        json!({"index": index, "size": size, "proof": proof_json(&proof)}),
    ))
}

/// `/api/v1/proofs/consistency/{from}/{to}`.
pub async fn consistency(State(c): State<Ctx>, Path((from, to)): Path<(u64, u64)>) -> ApiResult {
    let proof = c
        .blocking(move |c| Ok(c.origin.consistency_proof(from, to)?))
        .await?;
    Ok(json_doc(
        json!({"from": from, "to": to, "proof": proof_json(&proof)}),
    ))
}

/// `/api/v1/dists/{dist}`.
pub async fn dist(State(c): State<Ctx>, Path(name): Path<String>) -> ApiResult {
    let snap = c.origin.snapshot();
    let d = snap
        .registry
        .dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    let releases: Vec<Value> = d
        .releases
        .values()
        .map(|r| {
            json!({"version": r.release.version, "status": r.release.status.as_str(), "sha256": r.release.sha256, "sha1": r.release.sha1,
                   "size": r.release.size, "meta_sha256": r.release.meta_sha256, "provides": r.release.provides, "user": r.user,
                   "date": crate::origin::releases::date(r.time), "index": r.index, "yanked": r.yanked.is_some(), "yank_reason": r.yanked})
        })
        .collect();
    Ok(json_doc(
        json!({"name": d.name, "owners": d.owners, "releases": releases, "history": d.history}),
    ))
}

/// `/api/v1/dists/{dist}/{version}/docs`.
pub async fn docs(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&c, &dist, &version)?;
    c.blocking(move |c| {
        let docs = c.origin.content().docs(&d.name, &r)?;
        let list: Vec<Value> = docs
            .docs
            .iter()
            .map(|doc| json!({"docpath": doc.docpath, "file": doc.file, "title": doc.title, "extension": doc.extension}))
            .collect();
        Ok(json_doc(
            json!({"dist": d.name, "version": r.release.version, "special_files": docs.special_files, "docs": list}),
        ))
    })
    .await
}

/// `/api/v1/dists/{dist}/{version}/docs/{docpath}`: a document's source.
pub async fn doc(
    State(c): State<Ctx>,
    Path((dist, version, docpath)): Path<(String, String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&c, &dist, &version)?;
    c.blocking(move |c| {
        let (doc, bytes) = super::site::pages::read_doc(c, &d, &r, &docpath)?;
        Ok((
            [(
                header::CONTENT_TYPE,
                crate::origin::docs::content_type(&doc.file),
            )],
            bytes,
        )
            .into_response())
    })
    .await
}

/// `/api/v1/origins`: every origin this node serves, its peer identity and peer scores.
pub async fn origins(State(c): State<Ctx>) -> Response {
    let origins: Vec<Value> = c
        .app
        .origins
        .iter()
        .map(|s| {
            let o = &s.origin;
            let snap = o.snapshot();
            json!({"origin": o.name, "vkey": o.vkey.to_string(), "role": role(o), "prefix": format!("{}/", o.prefix),
                   "size": snap.size, "checkpoint": (!snap.note.is_empty()).then_some(&snap.note), "halted": snap.halted})
        })
        .collect();
    let scores: Vec<Value> = c
        .app
        .federation
        .as_ref()
        .map(|f| f.scores())
        .unwrap_or_default()
        .into_iter()
        .map(|(peer, score)| json!({"peer_id": peer, "score": score}))
        .collect();
    let info = &c.app.info;
    json_doc(json!({
        "origins": origins,
        "peer_id": info.peer_id,
        "p2p_addrs": (!info.p2p_addrs.is_empty()).then_some(&info.p2p_addrs),
        "witness": info.witness,
        "peer_scores": scores,
    }))
}

/// `/api/v1/evidence`: evidence of split views of every origin; an origin whose stored
/// evidence cannot be read is named with why.
pub async fn evidence(State(c): State<Ctx>) -> Response {
    let mut all: Vec<Evidence> = Vec::new();
    let mut unreadable = Vec::new();
    for s in &c.app.origins {
        match &s.origin.snapshot().evidence {
            Ok(list) => all.extend(list.iter().cloned()),
            Err(why) => unreadable.push(json!({"origin": s.origin.name, "error": why})),
        }
    }
    let mut doc = json!({ "evidence": all });
    if !unreadable.is_empty() {
        doc["unreadable"] = json!(unreadable);
    }
    json_doc(doc)
}

/// C2SP tlog-witness `add-checkpoint`, for the origins this node mirrors.
pub async fn add_checkpoint(State(c): State<Ctx>, body: Bytes) -> Response {
    let (status, body) = match &c.app.federation {
        Some(fed) => fed.add_checkpoint(&body).await,
        None => (
            404,
            b"this node is not in a federation and witnesses no log\n".to_vec(),
        ),
    };
    let ct = if status == 409 {
        pgext_log::SIZE_CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, ct)], body).into_response()
}

/// `/api/v1/accounts/{user}`.
pub async fn account(State(c): State<Ctx>, Path(user): Path<String>) -> ApiResult {
    let snap = c.origin.snapshot();
    let reg = &snap.registry;
    let a = reg
        .account(&user)
        .ok_or_else(|| ApiError::not_found(format!("account {user} not found")))?;
    let keys: Vec<Value> = a
        .keys
        .iter()
        .map(|(id, k)| json!({"key_id": id, "key": pgext_spec::authority::encode_public_key(&k.key), "active": k.active, "index": k.added}))
        .collect();
    let dists: Vec<&str> = reg
        .dists()
        .filter(|d| d.owners.contains(&a.user))
        .map(|d| d.name.as_str())
        .collect();
    Ok(json_doc(
        json!({"user": a.user, "name": a.name, "email": a.email, "uri": a.uri, "index": a.index, "keys": keys, "owns": dists, "history": a.history}),
    ))
}

/// `/metrics`.
pub async fn metrics(State(c): State<Ctx>) -> Response {
    c.app.metrics.render().into_response()
}
