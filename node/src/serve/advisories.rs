//! Security advisories as OSV documents (`spec/advisories.md`): `/api/v1/advisories`, every
//! advisory (withdrawn ones too, marked so, as OSV databases keep them) or those affecting a
//! distribution or one of its versions; `/api/v1/advisories/{id}`, one.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use pgext_spec::advisory::valid_id;
use pgext_spec::authority::{AdvisoryState, valid_term};
use pgext_spec::osv::{LogRecord, Osv, OsvList, OsvTimes};

use super::api::{ApiResult, json_doc};
use super::{ApiError, Ctx};
use crate::origin::releases::date;

/// The OSV document of an advisory as the log states it.
pub fn osv_of(a: &AdvisoryState) -> Osv {
    a.advisory.to_osv(
        OsvTimes {
            published: date(a.published),
            modified: date(a.modified),
            withdrawn: a.withdrawn.as_ref().map(|w| date(w.time)),
        },
        LogRecord {
            index: a.index,
            user: a.user.clone(),
            history: a.history.clone(),
            withdrawn_index: a.withdrawn.as_ref().map(|w| w.index),
            withdrawn_reason: a.withdrawn.as_ref().and_then(|w| w.reason.clone()),
        },
    )
}

/// `/api/v1/advisories[?dist=NAME[&version=V]]`: OSV documents, by id. With `dist`, those
/// naming the distribution; with `version` too, those in force that affect that release.
pub async fn list(State(c): State<Ctx>, Query(p): Query<HashMap<String, String>>) -> ApiResult {
    let dist = p.get("dist");
    let version = p.get("version");
    if let Some(unknown) = p
        .keys()
        .find(|k| !["dist", "version"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {:?}: dist and version filter advisories",
            unknown.chars().take(40).collect::<String>()
        )));
    }
    if dist.is_some_and(|d| !valid_term(d)) {
        return Err(ApiError::bad_request("dist is not a distribution name"));
    }
    if version.is_some_and(|v| v.len() > 64) || (version.is_some() && dist.is_none()) {
        return Err(ApiError::bad_request(
            "version (at most 64 bytes) filters the advisories of a dist: give dist too",
        ));
    }
    let snap = c.origin.snapshot();
    let vulns = snap
        .registry
        .advisories()
        .filter(|a| match (dist, version) {
            (Some(d), Some(v)) => a.affects(d, v),
            (Some(d), None) => a.advisory.dists().any(|x| x.eq_ignore_ascii_case(d)),
            _ => true,
        })
        .map(osv_of)
        .collect();
    Ok(json_doc(OsvList { vulns }))
}

/// `/api/v1/advisories/{id}`: one OSV document; 400 for what is not an advisory id, 404 for
/// one the log does not have.
pub async fn one(State(c): State<Ctx>, Path(id): Path<String>) -> ApiResult {
    if !valid_id(&id) {
        return Err(ApiError::bad_request(format!(
            "{:?} is not an advisory id",
            id.chars().take(80).collect::<String>()
        )));
    }
    let snap = c.origin.snapshot();
    match snap.registry.advisory(&id) {
        Some(a) => Ok(json_doc(osv_of(a))),
        None => Err(ApiError::not_found(format!("no advisory {id}"))),
    }
}

/// What a release page shows of the advisories in force that affect `dist` `version`.
pub fn page_view(
    reg: &pgext_spec::authority::Registry,
    dist: &str,
    version: &str,
) -> Vec<serde_json::Value> {
    reg.advisories_affecting(dist, version)
        .into_iter()
        .map(|a| {
            let adv = &a.advisory;
            serde_json::json!({
                "id": adv.id, "summary": adv.summary, "aliases": adv.aliases,
                "severity": adv.severity.iter().map(|s| format!("{} {}", s.kind, s.score)).collect::<Vec<_>>(),
                "fixed": adv.fixed_in(dist), "user": a.user, "index": a.index,
                "references": adv.references.iter().map(|r| serde_json::json!({"type": r.kind, "url": r.url})).collect::<Vec<_>>(),
            })
        })
        .collect()
}
