//! Which releases PGXN clients see and which one a distribution shows: rules shared by the
//! PGXN documents, the site, search, feeds and webhooks.
//!
//! Yanked releases, and versions `pgxnclient` cannot parse (SemVer 2 prereleases with dots,
//! build metadata), are left out of every list PGXN clients read, so they never choose them;
//! their META and zip stay downloadable by exact URL.

use pgext_spec::authority::{DistState, ReleaseState};
use pgext_spec::entry::Status;

use super::Content;
use super::blobs::BlobError;

/// UTC time as PGXN writes it: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs.min(i64::MAX as u64) as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A distribution with every category it is in.
pub type Categorized<'a> = (&'a DistState, Vec<&'static str>);

/// Every visible distribution's categories (`Content::categories`), by category in the META
/// spec's order; each list by name.
///
/// # Errors
/// When a META cannot be read.
pub fn by_category<'a>(
    content: &Content,
    registry: &'a pgext_spec::authority::Registry,
) -> Result<Vec<(&'static str, Vec<Categorized<'a>>)>, BlobError> {
    let mut out: Vec<(&'static str, Vec<Categorized<'a>>)> = pgext_spec::meta::CATEGORIES
        .iter()
        .map(|c| (*c, Vec::new()))
        .collect();
    for d in registry.dists() {
        let cats = content.categories(d)?;
        for c in &cats {
            if let Some((_, list)) = out.iter_mut().find(|(name, _)| name == c) {
                list.push((d, cats.clone()));
            }
        }
    }
    Ok(out)
}

/// Whether pgxnclient can parse the version: `MAJ.MIN.PATCH` plus an optional `-` and a
/// prerelease of `[a-z][a-z0-9-]*`.
pub fn pgxn_compatible(version: &str) -> bool {
    let v = version.to_ascii_lowercase();
    let (core, pre) = match v.find(|c: char| c.is_ascii_alphabetic() || c == '-') {
        Some(i) => (&v[..i], Some(v[i..].strip_prefix('-').unwrap_or(&v[i..]))),
        None => (v.as_str(), None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    let nums_ok = nums.len() == 3
        && nums
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let pre_ok = pre.is_none_or(|p| {
        p.starts_with(|c: char| c.is_ascii_lowercase())
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    nums_ok && pre_ok
}

/// Releases PGXN clients may see.
pub fn visible(r: &ReleaseState) -> bool {
    r.yanked.is_none() && pgxn_compatible(&r.release.version)
}

/// The visible releases of a dist, newest version first.
pub fn by_version_desc(d: &DistState) -> Vec<&ReleaseState> {
    let mut v: Vec<&ReleaseState> = d.releases.values().filter(|r| visible(r)).collect();
    v.sort_by(|a, b| {
        let pa = semver::Version::parse(&a.release.version.to_ascii_lowercase()).ok();
        let pb = semver::Version::parse(&b.release.version.to_ascii_lowercase()).ok();
        match (pa, pb) {
            (Some(x), Some(y)) => y.cmp_precedence(&x),
            _ => b.index.cmp(&a.index),
        }
    });
    v
}

/// The release a dist's document shows: newest stable, else newest testing, else newest.
pub fn headline(d: &DistState) -> Option<&ReleaseState> {
    let all = by_version_desc(d);
    all.iter()
        .find(|r| r.release.status == Status::Stable)
        .or_else(|| all.iter().find(|r| r.release.status == Status::Testing))
        .or_else(|| all.first())
        .copied()
}

/// The release a dist's pages show: the headline, else (every release yanked) the newest.
pub fn shown(d: &DistState) -> Option<&ReleaseState> {
    headline(d).or_else(|| d.releases.values().max_by_key(|r| r.index))
}

/// The tags of the dist's headline release.
///
/// # Errors
/// When its META cannot be read.
pub fn dist_tags(content: &Content, d: &DistState) -> Result<Vec<String>, BlobError> {
    match headline(d) {
        Some(r) => Ok(content.meta(&r.release.meta_sha256)?.tags.clone()),
        None => Ok(Vec::new()),
    }
}

/// The abstract of a release, from its META.
///
/// # Errors
/// When its META cannot be read.
pub fn abstract_of(content: &Content, r: &ReleaseState) -> Result<String, BlobError> {
    Ok(content.meta(&r.release.meta_sha256)?.abstract_.clone())
}

/// A release's builds as the API and the site show them.
pub fn builds(dist: &str, r: &ReleaseState) -> pgext_spec::api::Builds {
    let builds: Vec<pgext_spec::api::BuildDoc> = r
        .builds
        .iter()
        .map(|b| {
            let file = pgext_spec::binary::file_name(dist, &r.release.version, &b.build.target);
            pgext_spec::api::BuildDoc {
                builder: b.user.clone(),
                key_id: b.key_id.clone(),
                index: b.index,
                date: date(b.time),
                target: b.build.target.clone(),
                sha256: b.build.sha256.clone(),
                size: b.build.size,
                log_sha256: b.build.log_sha256.clone(),
                installcheck: b.build.installcheck,
                url: format!(
                    "api/v1/dists/{}/{}/builds/{}",
                    dist.to_ascii_lowercase(),
                    r.release.version.to_ascii_lowercase(),
                    b.build.sha256
                ),
                file,
            }
        })
        .collect();
    pgext_spec::api::Builds {
        dist: dist.to_string(),
        version: r.release.version.clone(),
        release_index: r.index,
        matrix: pgext_spec::api::matrix(&builds),
        builds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgxnclient_versions() {
        for ok in ["1.0.0", "0.1.2", "1.0.0-beta1", "1.0.0beta1", "2.3.4-rc-1"] {
            assert!(pgxn_compatible(ok), "{ok}");
        }
        for bad in ["1.0.0-rc.1", "1.0.0+build5", "1.0", "1.0.0-1", "v1.0.0"] {
            assert!(!pgxn_compatible(bad), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(1_288_392_282), "2010-10-29T22:44:42Z");
        assert_eq!(date(u64::MAX), "");
    }
}
