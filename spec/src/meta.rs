//! META.json handling: validation with `pgxn_meta` (spec v1 and v2), the fields pgext needs, and
//! the release META that PGXN clients read.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::entry::Status;

/// Why a META.json is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaError {
    /// Not JSON.
    #[error("META.json is not valid JSON: {0}")]
    NotJson(String),
    /// Fails the META spec's schema.
    #[error("META.json does not follow the PGXN META spec v{version}: {detail}")]
    Invalid {
        /// Spec major version.
        version: u8,
        /// What `pgxn_meta` reported.
        detail: String,
    },
    /// A field pgext needs is missing or odd.
    #[error("META.json field {field}: {detail}")]
    Field {
        /// JSON path of the field.
        field: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
}

/// One extension a distribution provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provided {
    /// Extension version.
    pub version: String,
    /// SQL file (v1 `file`, v2 `sql`).
    pub file: Option<String>,
    /// Abstract.
    pub abstract_: Option<String>,
    /// Documentation file.
    pub docfile: Option<String>,
}

/// What pgext reads from a validated META.json.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// META spec major version (1 or 2).
    pub spec: u8,
    /// Distribution name.
    pub name: String,
    /// Distribution version.
    pub version: String,
    /// One-line abstract.
    pub abstract_: String,
    /// Longer description.
    pub description: Option<String>,
    /// `release_status`, if the META states one (v1).
    pub status: Option<Status>,
    /// Extensions by name.
    pub provides: BTreeMap<String, Provided>,
    /// Tags.
    pub tags: Vec<String>,
    /// Categories (v2 `classifications.categories`, names of [`CATEGORIES`]).
    pub categories: Vec<String>,
    /// Maintainers, as display strings.
    pub maintainers: Vec<String>,
    /// The document as uploaded (with `meta-spec` added when a v1 META lacked it).
    pub raw: Value,
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

thread_local! {
    // A validator compiles the META schemas on first use and keeps them; it is not Send, so
    // each thread keeps its own.
    static VALIDATOR: std::cell::RefCell<pgxn_meta::valid::Validator> = std::cell::RefCell::new(pgxn_meta::valid::Validator::new());
}

/// Parses and validates META.json bytes.
///
/// A v1 META without `meta-spec` is read as v1.0.0, as PGXN does.
///
/// # Errors
/// [`MetaError`] with the field and the fix.
pub fn parse_meta(bytes: &[u8]) -> Result<Meta, MetaError> {
    let mut raw: Value =
        serde_json::from_slice(bytes).map_err(|e| MetaError::NotJson(e.to_string()))?;
    let obj = raw
        .as_object_mut()
        .ok_or_else(|| MetaError::NotJson("the top level must be an object".into()))?;
    if !obj.contains_key("meta-spec") {
        obj.insert(
            "meta-spec".into(),
            json!({"version": "1.0.0", "url": "https://pgxn.org/meta/spec.txt"}),
        );
    }
    VALIDATOR
        .with(|v| v.borrow_mut().validate(&raw))
        .map_err(|e| MetaError::Invalid {
            version: raw["meta-spec"]["version"]
                .as_str()
                .and_then(|v| v.chars().next())
                .and_then(|c| c.to_digit(10))
                .unwrap_or(0) as u8,
            detail: e.to_string(),
        })?;
    let meta = read_meta(raw)?;
    check_paths(&meta)?;
    Ok(meta)
}

/// The files a META names (each extension's SQL file and documentation) must be paths inside
/// the distribution: relative, without `..`, as archive members are (`archive::safe_path`).
/// Clients and the site open them below the release folder.
fn check_paths(meta: &Meta) -> Result<(), MetaError> {
    let (file_key, doc_key, base) = if meta.spec == 1 {
        ("file", "docfile", "provides")
    } else {
        ("sql", "doc", "contents.extensions")
    };
    for (ext, p) in &meta.provides {
        for (key, path) in [(file_key, &p.file), (doc_key, &p.docfile)] {
            let Some(path) = path else { continue };
            let ok = matches!(crate::archive::safe_path(path), Ok(Some(_)));
            if !ok {
                return Err(MetaError::Field {
                    field: format!("{base}.{ext}.{key}"),
                    detail: format!(
                        "{:?} must be a path inside the distribution: relative, without `..`",
                        path.chars().take(100).collect::<String>()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Reads META.json bytes without the schema: JSON, read as v1.0.0 when it has no `meta-spec`
/// (as PGXN does), and the fields pgext needs ([`read_meta`]). For METAs validated before (a
/// stored blob) and for PGXN's history, which older validators took.
///
/// # Errors
/// [`MetaError::NotJson`], or [`read_meta`]'s.
pub fn read_stored_meta(bytes: &[u8]) -> Result<Meta, MetaError> {
    let mut raw: Value =
        serde_json::from_slice(bytes).map_err(|e| MetaError::NotJson(e.to_string()))?;
    if let Some(o) = raw.as_object_mut() {
        o.entry("meta-spec")
            .or_insert_with(|| json!({"version": "1.0.0"}));
    }
    read_meta(raw)
}

/// Reads the fields of a META.json that was validated before (a stored blob).
///
/// # Errors
/// [`MetaError::Field`] when it provides no extension.
pub fn read_meta(raw: Value) -> Result<Meta, MetaError> {
    let spec = if raw["meta-spec"]["version"]
        .as_str()
        .is_some_and(|v| v.starts_with("2."))
    {
        2
    } else {
        1
    };
    let name = str_field(&raw, "name").unwrap_or_default();
    let version = str_field(&raw, "version").unwrap_or_default();
    let abstract_ = str_field(&raw, "abstract").unwrap_or_default();
    let description = str_field(&raw, "description");
    let mut provides = BTreeMap::new();
    let (status, tags, maintainers);
    let mut categories = Vec::new();
    if spec == 1 {
        status = match raw.get("release_status").and_then(Value::as_str) {
            None => None,
            Some(s) => Some(Status::parse(s).ok_or_else(|| MetaError::Field {
                field: "release_status".into(),
                detail: format!("{s:?} is not stable, testing or unstable"),
            })?),
        };
        for (ext, p) in raw["provides"].as_object().into_iter().flatten() {
            provides.insert(
                ext.clone(),
                Provided {
                    version: str_field(p, "version").unwrap_or_else(|| version.clone()),
                    file: str_field(p, "file"),
                    abstract_: str_field(p, "abstract"),
                    docfile: str_field(p, "docfile"),
                },
            );
        }
        tags = raw["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        maintainers = match &raw["maintainer"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
    } else {
        status = None;
        for (ext, p) in raw["contents"]["extensions"]
            .as_object()
            .into_iter()
            .flatten()
        {
            provides.insert(
                ext.clone(),
                Provided {
                    version: version.clone(),
                    file: str_field(p, "sql"),
                    abstract_: str_field(p, "abstract"),
                    docfile: str_field(p, "doc"),
                },
            );
        }
        categories = raw["classifications"]["categories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str().and_then(category_named))
            .map(str::to_string)
            .collect();
        tags = raw["classifications"]["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        maintainers = raw["maintainers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let name = str_field(m, "name").unwrap_or_default();
                match str_field(m, "email").or_else(|| str_field(m, "url")) {
                    Some(c) => format!("{name} <{c}>"),
                    None => name,
                }
            })
            .collect();
    }
    if provides.is_empty() {
        let field = if spec == 1 {
            "provides"
        } else {
            "contents.extensions"
        };
        return Err(MetaError::Field {
            field: field.into(),
            detail: "name at least one extension the distribution provides".into(),
        });
    }
    Ok(Meta {
        spec,
        name,
        version,
        abstract_,
        description,
        status,
        provides,
        tags,
        categories,
        maintainers,
        raw,
    })
}

/// The categories of META spec v2 (`classifications.categories`), in its order: the fixed list
/// registries browse by.
pub const CATEGORIES: [&str; 15] = [
    "Analytics",
    "Auditing and Logging",
    "Change Data Capture",
    "Connectors",
    "Data and Transformations",
    "Debugging",
    "Index and Table Optimizations",
    "Machine Learning",
    "Metrics",
    "Orchestration",
    "Procedural Languages",
    "Query Optimizations",
    "Search",
    "Security",
    "Tooling and Admin",
];

/// A category's name in URLs: lowercase, words joined by `-` (`auditing-and-logging`).
pub fn category_slug(name: &str) -> String {
    name.to_ascii_lowercase().replace(' ', "-")
}

/// The category a name or a slug stands for (case-insensitively).
pub fn category_named(s: &str) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .copied()
        .find(|c| c.eq_ignore_ascii_case(s) || category_slug(c) == s.to_ascii_lowercase())
}

impl Meta {
    /// A v2 META states no extension versions: each extension's is its control file's
    /// `default_version` in the distribution's `files`, where the control file has one; else
    /// the distribution's. A v1 META states them and is left as it is.
    pub fn take_control_versions(&mut self, files: &crate::archive::Files) {
        if self.spec != 2 {
            return;
        }
        for (ext, p) in &mut self.provides {
            let path = self.raw["contents"]["extensions"][ext.as_str()]["control"]
                .as_str()
                .map_or_else(|| format!("{ext}.control"), str::to_string);
            let version = files.get(&path).and_then(|b| {
                crate::prereqs::control_value(&String::from_utf8_lossy(b), "default_version")
            });
            if let Some(v) = version.filter(|v| !v.is_empty() && v.len() <= 64) {
                p.version = v;
            }
        }
    }

    /// The release META PGXN clients read (`/dist/{dist}/{version}/META.json`): PGXN's v1 shape
    /// with `meta-spec`, `generated_by` and `x_*` keys removed and `release_status`, `user`,
    /// `sha1` and `date` added. A v2 META is presented in the v1 fields clients need.
    pub fn release_meta(&self, status: Status, user: &str, sha1: &str, date: &str) -> Value {
        let mut out = Map::new();
        if self.spec == 1 {
            for (k, v) in self.raw.as_object().into_iter().flatten() {
                if k == "meta-spec"
                    || k == "generated_by"
                    || k.starts_with("x_")
                    || k.starts_with("X_")
                {
                    continue;
                }
                out.insert(k.clone(), v.clone());
            }
        } else {
            out.insert("name".into(), json!(self.name));
            out.insert("abstract".into(), json!(self.abstract_));
            if let Some(d) = &self.description {
                out.insert("description".into(), json!(d));
            }
            out.insert("version".into(), json!(self.version));
            out.insert("maintainer".into(), json!(self.maintainers));
            out.insert("license".into(), self.raw["license"].clone());
            if !self.tags.is_empty() {
                out.insert("tags".into(), json!(self.tags));
            }
            if let Some(r) = self.raw.get("resources") {
                out.insert("resources".into(), r.clone());
            }
        }
        // Every provided extension carries `file` and `version` (pgxnclient needs both).
        let mut provides = Map::new();
        for (ext, p) in &self.provides {
            let mut e = out
                .get("provides")
                .and_then(|pv| pv.get(ext))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            e.insert("version".into(), json!(p.version));
            if let Some(f) = &p.file {
                e.insert("file".into(), json!(f));
            }
            if let Some(a) = &p.abstract_ {
                e.insert("abstract".into(), json!(a));
            }
            if let Some(d) = &p.docfile {
                e.insert("docfile".into(), json!(d));
            }
            provides.insert(ext.clone(), Value::Object(e));
        }
        out.insert("provides".into(), Value::Object(provides));
        out.insert("release_status".into(), json!(status.as_str()));
        out.insert("user".into(), json!(user));
        out.insert("sha1".into(), json!(sha1));
        out.insert("date".into(), json!(date));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_metas_validate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real-meta");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let m = parse_meta(&std::fs::read(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert!(!m.provides.is_empty(), "{}", p.display());
                let rel = m.release_meta(
                    Status::Stable,
                    "someone",
                    &"0".repeat(40),
                    "2026-01-01T00:00:00Z",
                );
                assert!(rel.get("meta-spec").is_none());
                for (_, p) in rel["provides"].as_object().unwrap() {
                    assert!(p["version"].is_string());
                }
                n += 1;
            }
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn v2_categories_are_read_by_name_and_slug() {
        let v2 = br#"{"name":"pair","abstract":"A key/value pair data type","version":"0.1.8",
            "maintainers":[{"name":"D","email":"d@example.org"}],"license":"PostgreSQL",
            "contents":{"extensions":{"pair":{"sql":"sql/pair.sql","control":"pair.control"}}},
            "classifications":{"categories":["Data and Transformations","Search"],"tags":["kv"]},
            "meta-spec":{"version":"2.0.0"}}"#;
        let m = parse_meta(v2).unwrap();
        assert_eq!(m.categories, ["Data and Transformations", "Search"]);
        assert_eq!(m.tags, ["kv"]);
        assert_eq!(
            category_slug("Index and Table Optimizations"),
            "index-and-table-optimizations"
        );
        assert_eq!(
            category_named("auditing-and-logging"),
            Some("Auditing and Logging")
        );
        assert_eq!(category_named("SEARCH"), Some("Search"));
        assert_eq!(category_named("search engines"), None);
        // A category outside the list fails the META spec's schema.
        let bad = String::from_utf8_lossy(v2).replace("\"Search\"]", "\"Searching\"]");
        assert!(matches!(
            parse_meta(bad.as_bytes()),
            Err(MetaError::Invalid { .. })
        ));
    }

    #[test]
    fn v1_without_meta_spec_and_refusals() {
        let v1 = br#"{"name":"pair","version":"0.1.0","abstract":"A key/value pair","maintainer":"Someone <s@example.org>","license":"postgresql","provides":{"pair":{"file":"sql/pair.sql","version":"0.1.0"}}}"#;
        let m = parse_meta(v1).unwrap();
        assert_eq!((m.spec, m.name.as_str(), m.status), (1, "pair", None));
        assert!(matches!(parse_meta(b"{nope"), Err(MetaError::NotJson(_))));
        let no_version = br#"{"name":"pair","abstract":"x","maintainer":"s","license":"postgresql","provides":{"pair":{"file":"a.sql","version":"0.1.0"}}}"#;
        assert!(matches!(
            parse_meta(no_version),
            Err(MetaError::Invalid { version: 1, .. })
        ));
    }

    #[test]
    fn files_named_outside_the_distribution_are_refused() {
        for (key, path) in [
            ("file", "/etc/passwd"),
            ("file", "../../x.sql"),
            ("docfile", "/usr/share/doc/x"),
            ("docfile", "doc/\\u001b[2J.md"),
        ] {
            let file = if key == "file" { path } else { "sql/pair.sql" };
            let doc = if key == "docfile" {
                format!(r#","docfile":"{path}""#)
            } else {
                String::new()
            };
            let meta = format!(
                r#"{{"name":"pair","version":"0.1.0","abstract":"A key/value pair","maintainer":"s","license":"postgresql","provides":{{"pair":{{"version":"0.1.0","file":"{file}"{doc}}}}}}}"#
            );
            let e = parse_meta(meta.as_bytes()).unwrap_err().to_string();
            // The META schema refuses some of these itself; either way the field is named.
            assert!(
                e.contains(&format!("provides.pair.{key}"))
                    || e.contains(&format!("/provides/pair/{key}")),
                "{path}: {e}"
            );
        }
    }
}
