//! The native JSON API under `/api/v1/` (`spec/openapi.json`), the log as C2SP tlog-tiles
//! (`/log/checkpoint`, `/log/tile/…`), C2SP tlog-witness `add-checkpoint`, and `/metrics`.
//! Submissions to an origin this node sequences go to its sequencer; to a mirrored origin,
//! through the federation to the origin's sequencer.

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use pgext_log::leaf_hash;
use pgext_spec::api;
use pgext_spec::entry::{Action, Entry};

use super::access::{Member, Presented};
use super::pgxn::release_of;
use super::{ApiError, Ctx};
use crate::origin::publish;

pub(super) type ApiResult = Result<Response, ApiError>;

pub(super) fn json_doc<T: serde::Serialize>(v: T) -> Response {
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

fn role(c: &crate::origin::Origin) -> api::Role {
    if c.is_sequencer() {
        api::Role::Sequencer
    } else {
        api::Role::Mirror
    }
}

/// `/api/v1/log`.
pub async fn log_info(State(c): State<Ctx>) -> Response {
    let o = &c.origin;
    let snap = o.snapshot();
    json_doc(api::LogInfo {
        origin: o.name.clone(),
        vkey: o.vkey.to_string(),
        size: snap.size,
        checkpoint: snap.note.clone(),
        tiles: format!("{}/log/", o.prefix),
        role: role(o),
        halted: snap.halted.clone(),
    })
}

/// Takes a submission: sequenced here when this node is the origin's sequencer, otherwise
/// forwarded over libp2p to the node that is, whose answer is returned as it gave it. An
/// upload's turn ends once its files are checked and stored (or handed to the forwarder):
/// waiting for the sequencing round needs no turn.
async fn submit(
    c: Ctx,
    entry: Entry,
    archive: Option<Vec<u8>>,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
) -> ApiResult {
    let receipt = match (&c.app.federation, c.origin.is_sequencer()) {
        (Some(fed), false) => {
            drop(turn);
            fed.forward_submission(&c.origin.name, &entry, archive)
                .await?
        }
        _ => match publish::stage(c.origin.clone(), entry, archive).await? {
            publish::Staged::Logged(receipt) => receipt,
            publish::Staged::Ready(entry) => {
                drop(turn);
                c.origin.sequence(*entry).await?
            }
        },
    };
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// `POST /api/v1/entries`.
pub async fn post_entry(
    State(c): State<Ctx>,
    member: Option<Extension<std::sync::Arc<Member>>>,
    body: Bytes,
) -> ApiResult {
    let entry = Entry::from_submitted(&body).map_err(crate::origin::Error::from)?;
    // The gate let an anonymous submission through to a private origin: only a new member
    // registering with an invitation may come in that way (the sequencer checks the invitation).
    let invited = matches!(
        &entry.statement.action,
        Action::Account {
            invite: Some(_),
            ..
        }
    );
    if c.guard.is_some() && member.is_none() && !invited {
        return Err(super::access::unauthorized_error(None));
    }
    submit(c, entry, None, None).await
}

/// A turn to read an upload, waited for at most `[uploads] wait_ms`: uploads beyond
/// `[uploads] concurrent` wait, and are answered 503 busy when their turn does not come.
async fn upload_turn(c: &Ctx) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let (turns, wait) = &c.app.uploads;
    match tokio::time::timeout(*wait, turns.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the node is reading as many uploads as it takes at once; send it again shortly",
        )),
    }
}

/// A judgment of a submitted statement before its upload's file is read.
type EntryCheck<'a> = dyn Fn(&Entry) -> Result<(), ApiError> + Sync + 'a;

/// Reads a multipart upload: the `entry` (a signed statement) and one file field named
/// `file_field`, at most `limit` bytes.
async fn upload(
    mut form: Multipart,
    file_field: &'static str,
    limit: u64,
    first: Option<&EntryCheck<'_>>,
) -> Result<(Entry, Vec<u8>), ApiError> {
    let mut entry = None;
    let mut file = None;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            if file_field == "archive" {
                "archive-too-large"
            } else {
                "binary-too-large"
            },
            format!("uploads are limited to {limit} bytes"),
        )
    };
    let form_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
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
            Some(name) if name == file_field && file.is_none() => {
                // Where the entry is judged first, it comes first: no large body is read for
                // a statement that would be refused.
                if let Some(check) = first {
                    let e = entry.as_ref().ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "the `entry` field must come before `{file_field}`"
                        ))
                    })?;
                    check(e)?;
                }
                let bytes = field.bytes().await.map_err(form_error)?;
                if bytes.len() as u64 > limit {
                    return Err(too_large());
                }
                file = Some(bytes.to_vec());
            }
            Some(name) if name == "entry" || name == file_field => {
                return Err(ApiError::bad_request(format!(
                    "the `{name}` field is given twice"
                )));
            }
            _ => {}
        }
    }
    let entry = entry
        .ok_or_else(|| ApiError::bad_request("missing the `entry` field (the signed statement)"))?;
    let file =
        file.ok_or_else(|| ApiError::bad_request(format!("missing the `{file_field}` field")))?;
    Ok((entry, file))
}

/// `POST /api/v1/releases`: multipart `entry` (the signed statement) and `archive`.
pub async fn post_release(State(c): State<Ctx>, form: Multipart) -> ApiResult {
    let turn = upload_turn(&c).await?;
    let (entry, archive) = upload(form, "archive", c.app.max_archive_bytes, None).await?;
    if !matches!(
        entry.statement.action,
        Action::Release(_) | Action::Import(_)
    ) {
        return Err(ApiError::bad_request(
            "the statement is not a release or an import",
        ));
    }
    submit(c, entry, Some(archive), Some(turn)).await
}

/// `POST /api/v1/builds`: multipart `entry` (the signed attestation) and `binary` (the
/// package).
pub async fn post_build(State(c): State<Ctx>, form: Multipart) -> ApiResult {
    let turn = upload_turn(&c).await?;
    // The statement is judged before the package is read (`publish::precheck_build`).
    let origin = c.origin.clone();
    let check =
        move |e: &Entry| -> Result<(), ApiError> { Ok(publish::precheck_build(&origin, e)?) };
    let (entry, package) = upload(
        form,
        "binary",
        pgext_spec::binary::MAX_BINARY_BYTES,
        Some(&check),
    )
    .await?;
    submit(c, entry, Some(package), Some(turn)).await
}

/// `/api/v1/dists/{dist}/{version}/builds`: the release's attestations and its build matrix.
pub async fn builds(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let snap = c.origin.snapshot();
    let (d, r) = snap
        .registry
        .dist(&dist)
        .and_then(|d| Some((d, d.releases.get(&version.to_ascii_lowercase())?)))
        .ok_or_else(|| ApiError::not_found(format!("release {dist}@{version} not found")))?;
    Ok(json_doc(crate::origin::releases::builds(&d.name, r)))
}

/// `/api/v1/dists/{dist}/{version}/meta`: the release's META.json exactly as published (its
/// SHA-256 is the release entry's `meta_sha256`), so that a client can read a release's
/// prerequisites and check them against the log before it downloads any archive.
pub async fn meta(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let (_, r) = release_of(&c, &dist, &version)?;
    let sha = r.release.meta_sha256.clone();
    let bytes = c
        .blocking(move |c| Ok(c.origin.content().get(&sha)?))
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
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
    let entry = Entry::parse(&bytes).map_err(ApiError::internal)?;
    Ok(json_doc(api::EntryDoc {
        index,
        leaf_hash: leaf_hash(&bytes).to_base64(),
        entry,
    }))
}

fn proof_json(proof: &[pgext_log::Hash]) -> Vec<String> {
    proof.iter().map(|h| h.to_base64()).collect()
}

/// `/api/v1/proofs/inclusion/{index}/{size}`.
pub async fn inclusion(State(c): State<Ctx>, Path((index, size)): Path<(u64, u64)>) -> ApiResult {
    let proof = c
        .blocking(move |c| Ok(c.origin.inclusion_proof(index, size)?))
        .await?;
    Ok(json_doc(api::InclusionProof {
        index,
        size,
        proof: proof_json(&proof),
    }))
}

/// `/api/v1/proofs/consistency/{from}/{to}`.
pub async fn consistency(State(c): State<Ctx>, Path((from, to)): Path<(u64, u64)>) -> ApiResult {
    let proof = c
        .blocking(move |c| Ok(c.origin.consistency_proof(from, to)?))
        .await?;
    Ok(json_doc(api::ConsistencyProof {
        from,
        to,
        proof: proof_json(&proof),
    }))
}

/// `/api/v1/dists/{dist}`.
pub async fn dist(State(c): State<Ctx>, Path(name): Path<String>) -> ApiResult {
    let snap = c.origin.snapshot();
    let d = snap
        .registry
        .dist(&name)
        .ok_or_else(|| ApiError::not_found(format!("distribution {name} not found")))?;
    let releases = d
        .releases
        .values()
        .map(|r| api::DistRelease {
            version: r.release.version.clone(),
            status: r.release.status,
            sha256: r.release.sha256.clone(),
            sha1: r.release.sha1.clone(),
            size: r.release.size,
            meta_sha256: r.release.meta_sha256.clone(),
            provides: r.release.provides.clone(),
            user: r.user.clone(),
            date: crate::origin::releases::date(r.time),
            index: r.index,
            yanked: r.yanked.is_some(),
            yank_reason: r.yanked.clone(),
            imported: r.imported,
            downloads: c.origin.downloads(&d.name, &r.release.version).total,
        })
        .collect();
    Ok(json_doc(api::Dist {
        name: d.name.clone(),
        owners: d.owners.iter().cloned().collect(),
        releases,
        history: d.history.clone(),
        pgxn_user: d.pgxn_user.clone(),
    }))
}

/// `/api/v1/dists/{dist}/{version}/downloads`: what each node counted of the release.
pub async fn release_downloads(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&c, &dist, &version)?;
    let n = c.origin.downloads(&d.name, &r.release.version);
    Ok(json_doc(api::ReleaseDownloads {
        dist: d.name.clone(),
        version: r.release.version.clone(),
        total: n.total,
        nodes: n.nodes,
    }))
}

/// `/api/v1/downloads`: every node's statements of this origin, summed.
pub async fn downloads(State(c): State<Ctx>) -> ApiResult {
    let nodes: Vec<api::NodeDownloads> = c
        .origin
        .download_nodes()
        .into_iter()
        .map(|n| api::NodeDownloads {
            node: n.node,
            seq: n.seq,
            to: n.to,
            downloads: n.downloads,
        })
        .collect();
    Ok(json_doc(api::Downloads {
        origin: c.origin.name.clone(),
        total: nodes.iter().map(|n| n.downloads).sum(),
        nodes,
    }))
}

/// `/api/v1/dists/{dist}/{version}/docs`.
pub async fn docs(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&c, &dist, &version)?;
    c.blocking(move |c| {
        let docs = c.origin.content().docs(&d.name, &r)?;
        Ok(json_doc(api::Docs {
            dist: d.name.clone(),
            version: r.release.version.clone(),
            special_files: docs.special_files.clone(),
            docs: docs
                .docs
                .iter()
                .map(|doc| api::DocInfo {
                    docpath: doc.docpath.clone(),
                    file: doc.file.clone(),
                    title: doc.title.clone(),
                    extension: doc.extension.clone(),
                })
                .collect(),
        }))
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
pub async fn origins(State(c): State<Ctx>, tokens: Option<Extension<Presented>>) -> Response {
    let tokens = tokens.map(|t| t.0.0).unwrap_or_default();
    let origins = c
        .app
        .origins
        .iter()
        .filter(|s| s.visible_to(&tokens))
        .map(|s| {
            let o = &s.origin;
            let snap = o.snapshot();
            api::OriginInfo {
                origin: o.name.clone(),
                vkey: o.vkey.to_string(),
                role: role(o),
                prefix: format!("{}/", o.prefix),
                size: snap.size,
                checkpoint: (!snap.note.is_empty()).then(|| snap.note.clone()),
                halted: snap.halted.clone(),
            }
        })
        .collect();
    let peer_scores = c
        .app
        .federation
        .as_ref()
        .map(|f| f.scores())
        .unwrap_or_default()
        .into_iter()
        .map(|(peer_id, score)| api::PeerScore { peer_id, score })
        .collect();
    let info = &c.app.info;
    json_doc(api::Origins {
        origins,
        peer_id: info.peer_id.clone(),
        p2p_addrs: (!info.p2p_addrs.is_empty()).then(|| info.p2p_addrs.clone()),
        witness: info.witness.clone(),
        cosigners: info.cosigners.clone(),
        peer_scores,
    })
}

/// `/api/v1/evidence`: evidence of split views of every origin; an origin whose stored
/// evidence cannot be read is named with why.
pub async fn evidence(State(c): State<Ctx>, tokens: Option<Extension<Presented>>) -> Response {
    let tokens = tokens.map(|t| t.0.0).unwrap_or_default();
    let mut doc = api::EvidenceList {
        evidence: Vec::new(),
        unreadable: Vec::new(),
    };
    for s in c.app.origins.iter().filter(|s| s.visible_to(&tokens)) {
        match &s.origin.snapshot().evidence {
            Ok(list) => doc.evidence.extend(list.iter().cloned()),
            Err(why) => doc.unreadable.push(api::Unreadable {
                origin: s.origin.name.clone(),
                error: why.clone(),
            }),
        }
    }
    json_doc(doc)
}

/// C2SP tlog-witness `add-checkpoint`, for the origins this node mirrors.
pub async fn add_checkpoint(State(c): State<Ctx>, body: Bytes) -> Response {
    let (status, body) = match &c.app.federation {
        // Private origins are witnessed by their allowed peers only, over libp2p.
        Some(fed) => fed.add_checkpoint(&body, false).await,
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
    let keys = a
        .keys
        .iter()
        .map(|(id, k)| api::AccountKey {
            key_id: id.clone(),
            key: pgext_spec::authority::encode_public_key(&k.key),
            active: k.active,
            index: k.added,
        })
        .collect();
    let owns = reg
        .dists()
        .filter(|d| d.owners.contains(&a.user))
        .map(|d| d.name.clone())
        .collect();
    Ok(json_doc(api::Account {
        user: a.user.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        uri: a.uri.clone(),
        index: a.index,
        keys,
        owns,
        history: a.history.clone(),
    }))
}

/// `/metrics`.
pub async fn metrics(State(c): State<Ctx>) -> Response {
    c.app.metrics.render().into_response()
}
