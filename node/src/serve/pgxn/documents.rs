//! PGXN documents, derived from a registry snapshot and the stored METAs, in the shapes PGXN's
//! API serves and `pgxnclient` reads. Reading a META blocks on the disk (the first time), so
//! these run on the blocking pool; a META that cannot be read is an error, never a document
//! with holes.

use std::collections::BTreeMap;

use pgext_spec::authority::{DistState, Registry, ReleaseState};
use pgext_spec::entry::Status;
use serde_json::{Map, Value, json};

use crate::origin::Content;
use crate::origin::blobs::BlobError;
use crate::origin::releases::{abstract_of, by_version_desc, date, dist_tags, headline, visible};

type Result<T> = std::result::Result<T, BlobError>;

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
///
/// # Errors
/// When its META or zip cannot be read.
pub fn release_meta(content: &Content, d: &DistState, r: &ReleaseState) -> Result<Value> {
    let meta = content.meta(&r.release.meta_sha256)?;
    let mut doc = meta.release_meta(r.release.status, &r.user, &r.release.sha1, &date(r.time));
    content.docs(&d.name, r)?.annotate(&mut doc);
    // The extension versions are the entry's: a v2 META states none (its control files do).
    for (ext, v) in &r.release.provides {
        if let Some(p) = doc["provides"].get_mut(ext).and_then(Value::as_object_mut) {
            p.insert("version".into(), Value::String(v.clone()));
        }
    }
    if let Some(o) = doc.as_object_mut() {
        o.insert("releases".into(), releases_map(d));
    }
    Ok(doc)
}

/// `/dist/{dist}.json` (API form); `None` when no release is visible.
///
/// # Errors
/// When a META cannot be read.
pub fn dist_doc(content: &Content, d: &DistState) -> Result<Option<Value>> {
    headline(d).map(|r| release_meta(content, d, r)).transpose()
}

fn dist_abstract(content: &Content, d: &DistState) -> Result<String> {
    headline(d).map_or(Ok(String::new()), |r| abstract_of(content, r))
}

/// `/extension/{extension}.json`.
///
/// # Errors
/// When a META cannot be read.
pub fn extension_doc(content: &Content, reg: &Registry, ext: &str) -> Result<Option<Value>> {
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
        return Ok(None);
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.1.index));
    let name = hits[0].2.clone();
    let mut doc = Map::new();
    doc.insert("extension".into(), json!(name));
    doc.insert("latest".into(), json!(hits[0].1.release.status.as_str()));
    for status in [Status::Stable, Status::Testing, Status::Unstable] {
        if let Some((d, r, _, _)) = hits.iter().find(|h| h.1.release.status == status) {
            let meta = content.meta(&r.release.meta_sha256)?;
            let provided = meta
                .provides
                .iter()
                .find(|(n, _)| n.to_ascii_lowercase() == key)
                .map(|(_, p)| p.clone());
            let mut s =
                json!({"dist": d.name, "version": r.release.version, "sha1": r.release.sha1});
            let a = provided
                .as_ref()
                .and_then(|p| p.abstract_.clone())
                .unwrap_or_else(|| meta.abstract_.clone());
            s["abstract"] = json!(a);
            let docs = content.docs(&d.name, r)?;
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
    Ok(Some(Value::Object(doc)))
}

fn dist_release_summary(content: &Content, d: &DistState) -> Result<Value> {
    let mut v = releases_map(d);
    if let Some(o) = v.as_object_mut() {
        o.insert("abstract".into(), json!(dist_abstract(content, d)?));
    }
    Ok(v)
}

/// `/user/{user}.json`.
///
/// # Errors
/// When a META cannot be read.
pub fn user_doc(content: &Content, reg: &Registry, user: &str) -> Result<Option<Value>> {
    let Some(a) = reg.account(user) else {
        return Ok(None);
    };
    let mut releases = Map::new();
    for d in reg.dists() {
        if d.releases.values().any(|r| r.user == a.user && visible(r)) {
            releases.insert(d.name.clone(), dist_release_summary(content, d)?);
        }
    }
    let mut doc = json!({"nickname": a.user, "name": a.name.clone().unwrap_or_default(), "releases": releases});
    if let Some(e) = &a.email {
        doc["email"] = json!(e);
    }
    if let Some(u) = &a.uri {
        doc["uri"] = json!(u);
    }
    Ok(Some(doc))
}

/// `/tag/{tag}.json`: the dists whose headline release carries the tag, by name.
///
/// # Errors
/// When a META cannot be read.
pub fn tag_doc(content: &Content, reg: &Registry, tag: &str) -> Result<Option<Value>> {
    let key = tag.to_lowercase();
    let mut releases = Map::new();
    let mut name = None;
    for d in reg.dists() {
        if let Some(t) = dist_tags(content, d)?
            .into_iter()
            .find(|t| t.to_lowercase() == key)
        {
            name.get_or_insert(t);
            releases.insert(d.name.clone(), dist_release_summary(content, d)?);
        }
    }
    Ok(name.map(|name| json!({"tag": name, "releases": releases})))
}

/// `/stats/{kind}.json`.
///
/// # Errors
/// When a META cannot be read.
pub fn stats_doc(
    content: &Content,
    reg: &Registry,
    downloads: &dyn Fn(&str, &str) -> u64,
    kind: &str,
) -> Result<Option<Value>> {
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
    if matches!(kind, "summary" | "tag") {
        for d in &dists {
            for t in dist_tags(content, d)? {
                *tags.entry(t.to_lowercase()).or_default() += 1;
            }
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
    Ok(Some(match kind {
        "summary" => {
            json!({"dists": dists.len(), "releases": releases.len(), "extensions": extensions.len(), "users": reg.accounts().count(), "tags": tags.len(), "mirrors": 1,
                "downloads": releases.iter().map(|(d, r)| downloads(&d.name, &r.release.version)).sum::<u64>()})
        }
        "dist" => {
            let mut list = Vec::new();
            for (d, r) in &recent {
                list.push(json!({"dist": d.name, "version": r.release.version, "abstract": dist_abstract(content, d)?,
                    "date": date(r.time), "user": r.user, "user_name": user_name(&r.user),
                    "downloads": downloads(&d.name, &r.release.version)}));
            }
            json!({"count": dists.len(), "releases": releases.len(), "recent": list})
        }
        "extension" => {
            let mut by_index: Vec<_> = extensions.iter().collect();
            by_index.sort_by_key(|(_, (_, r, _))| std::cmp::Reverse(r.index));
            by_index.truncate(56);
            let mut list = Vec::new();
            for (e, (d, r, v)) in by_index {
                list.push(json!({"extension": e, "abstract": dist_abstract(content, d)?, "ext_version": v,
                    "dist": d.name, "version": r.release.version, "date": date(r.time), "user": r.user,
                    "user_name": user_name(&r.user)}));
            }
            json!({"count": extensions.len(), "recent": list})
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
        _ => return Ok(None),
    }))
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
pub fn mirrors_doc(http: std::net::SocketAddr, origin: &str) -> Value {
    json!([{
        "uri": format!("http://{http}/"),
        "frequency": "realtime",
        "location": "",
        "organization": origin,
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
