//! PGXN documents, derived from the registry state and the stored METAs, in the shapes PGXN's
//! API serves and `pgxnclient` reads.
//!
//! Compatibility view: yanked releases, and versions `pgxnclient` cannot parse (SemVer 2
//! prereleases with dots, build metadata), are left out of every `releases`/`versions` list, so
//! PGXN clients never choose them; their META and zip stay downloadable by exact URL.

use std::collections::BTreeMap;

use pgext_spec::authority::{DistState, Registry, ReleaseState};
use pgext_spec::entry::Status;
use serde_json::{Map, Value, json};

use crate::node::Shared;

/// UTC time as PGXN writes it: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn date(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
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

fn by_version_desc(d: &DistState) -> Vec<&ReleaseState> {
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

/// `{"stable": [{"version","date"}…], "testing": …}`, newest first, empty statuses omitted.
pub fn releases_map(d: &DistState) -> Value {
    let mut out = Map::new();
    for status in [Status::Stable, Status::Testing, Status::Unstable] {
        let list: Vec<Value> = by_version_desc(d)
            .into_iter()
            .filter(|r| r.release.status == status)
            .map(|r| json!({"version": r.release.version, "date": date(r.time)}))
            .collect();
        if !list.is_empty() {
            out.insert(status.as_str().into(), Value::Array(list));
        }
    }
    Value::Object(out)
}

/// The release META document of one release.
pub fn release_meta(shared: &Shared, d: &DistState, r: &ReleaseState) -> Option<Value> {
    let meta = shared.meta(&r.release.meta_sha256)?;
    let mut doc = meta.release_meta(r.release.status, &r.user, &r.release.sha1, &date(r.time));
    shared.release_docs(&d.name, r).annotate(&mut doc);
    if let Some(o) = doc.as_object_mut() {
        o.insert("releases".into(), releases_map(d));
    }
    Some(doc)
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

/// `/dist/{dist}.json` (API form).
pub fn dist_doc(shared: &Shared, d: &DistState) -> Option<Value> {
    release_meta(shared, d, headline(d)?)
}

fn abstract_of(shared: &Shared, d: &DistState) -> String {
    headline(d)
        .and_then(|r| shared.meta(&r.release.meta_sha256))
        .map(|m| m.abstract_.clone())
        .unwrap_or_default()
}

/// `/extension/{extension}.json`.
pub fn extension_doc(shared: &Shared, reg: &Registry, ext: &str) -> Option<Value> {
    let key = ext.to_ascii_lowercase();
    let mut hits: Vec<(&DistState, &ReleaseState, String, String)> = Vec::new();
    for d in reg.dists() {
        for r in d.releases.values().filter(|r| visible(r)) {
            if let Some((name, v)) = r
                .release
                .provides
                .iter()
                .find(|(n, _)| n.to_ascii_lowercase() == key)
            {
                hits.push((d, r, name.clone(), v.clone()));
            }
        }
    }
    if hits.is_empty() {
        return None;
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.1.index));
    let name = hits[0].2.clone();
    let mut doc = Map::new();
    doc.insert("extension".into(), json!(name));
    doc.insert("latest".into(), json!(hits[0].1.release.status.as_str()));
    for status in [Status::Stable, Status::Testing, Status::Unstable] {
        if let Some((d, r, _, _)) = hits.iter().find(|h| h.1.release.status == status) {
            let meta = shared.meta(&r.release.meta_sha256);
            let p = meta.as_ref().and_then(|m| {
                m.provides
                    .iter()
                    .find(|(n, _)| n.to_ascii_lowercase() == key)
                    .map(|(_, p)| p.clone())
            });
            let mut s =
                json!({"dist": d.name, "version": r.release.version, "sha1": r.release.sha1});
            if let Some(a) = p
                .as_ref()
                .and_then(|p| p.abstract_.clone())
                .or_else(|| meta.as_ref().map(|m| m.abstract_.clone()))
            {
                s["abstract"] = json!(a);
            }
            let docs = shared.release_docs(&d.name, r);
            if let Some(dp) = docs
                .docs
                .iter()
                .find(|x| x.extension.as_deref() == Some(name.as_str()))
            {
                s["docpath"] = json!(dp.docpath);
            }
            doc.insert(status.as_str().into(), s);
        }
    }
    let mut versions: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (d, r, _, ext_version) in &hits {
        let mut v = json!({"dist": d.name, "version": r.release.version, "date": date(r.time)});
        if r.release.status != Status::Stable {
            v["status"] = json!(r.release.status.as_str());
        }
        versions.entry(ext_version.clone()).or_default().push(v);
    }
    doc.insert("versions".into(), json!(versions));
    Some(Value::Object(doc))
}

fn dist_release_summary(shared: &Shared, d: &DistState) -> Value {
    let mut v = releases_map(d);
    if let Some(o) = v.as_object_mut() {
        o.insert("abstract".into(), json!(abstract_of(shared, d)));
    }
    v
}

/// `/user/{user}.json`.
pub fn user_doc(shared: &Shared, reg: &Registry, user: &str) -> Option<Value> {
    let a = reg.account(user)?;
    let mut releases = Map::new();
    for d in reg.dists() {
        if d.releases.values().any(|r| r.user == a.user && visible(r)) {
            releases.insert(d.name.clone(), dist_release_summary(shared, d));
        }
    }
    let mut doc = json!({"nickname": a.user, "name": a.name.clone().unwrap_or_default(), "releases": releases});
    if let Some(e) = &a.email {
        doc["email"] = json!(e);
    }
    if let Some(u) = &a.uri {
        doc["uri"] = json!(u);
    }
    Some(doc)
}

/// The tags of the dist's headline release.
pub(crate) fn dist_tags(shared: &Shared, d: &DistState) -> Vec<String> {
    headline(d)
        .and_then(|r| shared.meta(&r.release.meta_sha256))
        .map(|m| m.tags.clone())
        .unwrap_or_default()
}

/// `/tag/{tag}.json`.
pub fn tag_doc(shared: &Shared, reg: &Registry, tag: &str) -> Option<Value> {
    let key = tag.to_lowercase();
    let mut releases = Map::new();
    let mut name = None;
    for d in reg.dists() {
        if let Some(t) = dist_tags(shared, d)
            .into_iter()
            .find(|t| t.to_lowercase() == key)
        {
            name.get_or_insert(t);
            releases.insert(d.name.clone(), dist_release_summary(shared, d));
        }
    }
    Some(json!({"tag": name?, "releases": releases}))
}

/// `/stats/{kind}.json`.
pub fn stats_doc(shared: &Shared, reg: &Registry, kind: &str) -> Option<Value> {
    let dists: Vec<&DistState> = reg.dists().filter(|d| headline(d).is_some()).collect();
    let releases: Vec<(&DistState, &ReleaseState)> = dists
        .iter()
        .flat_map(|d| {
            d.releases
                .values()
                .filter(|r| visible(r))
                .map(move |r| (*d, r))
        })
        .collect();
    let mut recent = releases.clone();
    recent.sort_by_key(|(_, r)| std::cmp::Reverse(r.index));
    recent.truncate(56);
    let user_name = |u: &str| {
        reg.account(u)
            .and_then(|a| a.name.clone())
            .unwrap_or_default()
    };
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for d in &dists {
        for t in dist_tags(shared, d) {
            *tags.entry(t.to_lowercase()).or_default() += 1;
        }
    }
    let mut extensions: BTreeMap<String, (&DistState, &ReleaseState, String)> = BTreeMap::new();
    for (d, r) in &releases {
        for (e, v) in &r.release.provides {
            let slot = extensions
                .entry(e.to_ascii_lowercase())
                .or_insert((d, r, v.clone()));
            if r.index > slot.1.index {
                *slot = (d, r, v.clone());
            }
        }
    }
    Some(match kind {
        "summary" => {
            json!({"dists": dists.len(), "releases": releases.len(), "extensions": extensions.len(), "users": reg.accounts().count(), "tags": tags.len(), "mirrors": 1})
        }
        "dist" => {
            json!({"count": dists.len(), "releases": releases.len(), "recent": recent.iter().map(|(d, r)| json!({
            "dist": d.name, "version": r.release.version, "abstract": abstract_of(shared, d), "date": date(r.time), "user": r.user, "user_name": user_name(&r.user)})).collect::<Vec<_>>()})
        }
        "extension" => {
            let mut list: Vec<_> = extensions.iter().collect();
            list.sort_by_key(|(_, (_, r, _))| std::cmp::Reverse(r.index));
            list.truncate(56);
            json!({"count": extensions.len(), "recent": list.iter().map(|(e, (d, r, v))| json!({
                "extension": e, "abstract": abstract_of(shared, d), "ext_version": v, "dist": d.name, "version": r.release.version,
                "date": date(r.time), "user": r.user, "user_name": user_name(&r.user)})).collect::<Vec<_>>()})
        }
        "user" => {
            let mut users: Vec<(String, usize, usize)> = reg
                .accounts()
                .map(|a| {
                    let mine: Vec<_> = releases.iter().filter(|(_, r)| r.user == a.user).collect();
                    let ndists = mine
                        .iter()
                        .map(|(d, _)| d.name.clone())
                        .collect::<std::collections::BTreeSet<_>>()
                        .len();
                    (a.user.clone(), ndists, mine.len())
                })
                .filter(|u| u.2 > 0)
                .collect();
            users.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
            users.truncate(56);
            json!({"count": reg.accounts().count(), "prolific": users.iter().map(|(u, d, r)| json!({"nickname": u, "name": user_name(u), "dists": d, "releases": r})).collect::<Vec<_>>()})
        }
        "tag" => {
            let mut list: Vec<_> = tags.iter().collect();
            list.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            list.truncate(56);
            json!({"count": tags.len(), "popular": list.iter().map(|(t, n)| json!({"tag": t, "dists": n})).collect::<Vec<_>>()})
        }
        _ => return None,
    })
}

/// `/users/{char}.json`.
pub fn userlist_doc(reg: &Registry, letter: &str) -> Option<Value> {
    let c = letter.chars().next()?.to_ascii_lowercase();
    if letter.chars().count() != 1 {
        return None;
    }
    Some(Value::Array(
        reg.accounts()
            .filter(|a| a.user.starts_with(c))
            .map(|a| json!({"user": a.user, "name": a.name.clone().unwrap_or_default()}))
            .collect(),
    ))
}

/// `/meta/mirrors.json`: this node.
pub fn mirrors_doc(shared: &Shared) -> Value {
    json!([{
        "uri": format!("http://{}/", shared.config.http),
        "frequency": "realtime",
        "location": "",
        "organization": shared.origin,
        "timezone": "UTC",
        "email": "",
        "bandwidth": "",
        "src": "pgext",
    }])
}

/// `/meta/spec.txt`.
pub const SPEC_TXT: &str = "PGXN Meta Spec\n\nThis registry accepts META.json files following the PGXN Meta Spec v1\n(https://pgxn.org/spec/) and v2 (https://rfcs.pgxn.org/0003-meta-spec-v2.html),\nvalidated with the pgxn_meta crate. How pgext reads them is described in its\nspec/entries.md.\n";

/// `index.json`: the 14 URI templates.
pub fn index_doc() -> Value {
    json!({
        "download": "/dist/{dist}/{version}/{dist}-{version}.zip",
        "readme": "/dist/{dist}/{version}/README.txt",
        "meta": "/dist/{dist}/{version}/META.json",
        "dist": "/dist/{dist}.json",
        "extension": "/extension/{extension}.json",
        "user": "/user/{user}.json",
        "tag": "/tag/{tag}.json",
        "stats": "/stats/{stats}.json",
        "mirrors": "/meta/mirrors.json",
        "spec": "/meta/spec.{format}",
        "source": "/src/{dist}/{dist}-{version}/",
        "search": "/search/{in}/",
        "userlist": "/users/{char}.json",
        "htmldoc": "/dist/{dist}/{version}/{+docpath}.html"
    })
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
    }
}
