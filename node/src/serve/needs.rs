//! What releases need (`spec/requirements.md`): a release's requirements read from its META,
//! and the name mapping from purls to OS packages that the log's `package_map` entries make.

use axum::extract::{Path, State};
use pgext_spec::api;
use pgext_spec::authority::PackageMapState;
use pgext_spec::packages::{ROLE_PACKAGES, check_purl};

use super::api::{ApiResult, json_doc};
use super::pgxn::release_of;
use super::{ApiError, Ctx};

/// `/api/v1/dists/{dist}/{version}/requirements`: what the release needs (PostgreSQL versions
/// and features, platforms, packages by purl, preloading, restart, TLE), read from its META.
pub async fn requirements(
    State(c): State<Ctx>,
    Path((dist, version)): Path<(String, String)>,
) -> ApiResult {
    let (d, r) = release_of(&c, &dist, &version)?;
    let doc = c
        .blocking(move |c| {
            let content = c.origin.content();
            let meta = content.meta(&r.release.meta_sha256)?;
            Ok(api::ReleaseRequirements {
                dist: d.name.clone(),
                version: r.release.version.clone(),
                meta_sha256: r.release.meta_sha256.clone(),
                meta_spec: meta.spec,
                requirements: (*content.requirements(&r.release.meta_sha256)?).clone(),
            })
        })
        .await?;
    Ok(json_doc(doc))
}

fn doc(p: &PackageMapState) -> api::PackageMapDoc {
    api::PackageMapDoc {
        purl: p.purl.clone(),
        systems: p.systems.clone(),
        user: p.user.clone(),
        index: p.index,
        history: p.history.clone(),
    }
}

/// `/api/v1/packages`: every mapping in force, and the accounts that maintain the mapping.
pub async fn packages(State(c): State<Ctx>) -> ApiResult {
    let snap = c.origin.snapshot();
    Ok(json_doc(api::PackageMaps {
        maintainers: snap.registry.role_holders(ROLE_PACKAGES),
        packages: snap.registry.package_maps().map(doc).collect(),
    }))
}

/// `/api/v1/packages/{purl}`: the OS packages that stand for one purl; 400 for what is not a
/// purl a mapping can name, 404 for one nobody mapped (or whose mapping was withdrawn).
pub async fn package(State(c): State<Ctx>, Path(purl): Path<String>) -> ApiResult {
    check_purl(&purl)
        .map_err(|e| ApiError::new(axum::http::StatusCode::BAD_REQUEST, "invalid-purl", e.0))?;
    let snap = c.origin.snapshot();
    match snap.registry.package_map(&purl) {
        Some(p) if !p.systems.is_empty() => Ok(json_doc(doc(p))),
        _ => Err(ApiError::not_found(format!("{purl} is not mapped"))),
    }
}
