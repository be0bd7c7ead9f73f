//! An extension project on disk: `pgext init` writes one, `pgext validate` checks its
//! META.json and the files it names, `pgext bundle` selects its files (tracked ones in a git
//! checkout, less META's `no_index` / `ignore`) and builds the release zip
//! (`spec/publishing.md`).

use std::path::{Path, PathBuf};
use std::process::Command;

use pgext_spec::archive::Files;
use pgext_spec::entry::Status;
use pgext_spec::meta::parse_meta;
use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::release::{PreparedRelease, prepare_release, release_from_files};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not valid: not published.
    Error,
    /// Published, as PGXN would (an error with `--strict`).
    Warning,
}

/// One thing wrong with a project, naming the field and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The META.json field (or file) at fault.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// An error, or a warning.
    pub severity: Severity,
}

impl Problem {
    /// Whether it stops a release (`strict`: warnings do too).
    pub fn blocks(&self, strict: bool) -> bool {
        strict || self.severity == Severity::Error
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.severity == Severity::Warning {
            f.write_str("warning: ")?;
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn warning(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        severity: Severity::Warning,
        ..problem(field, message)
    }
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        severity: Severity::Error,
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a project folder (or a lone META.json): the META against the PGXN META spec (v1 or
/// v2, with `pgxn_meta`), then pgext's own rules: a license, every file `provides` (v1) or
/// `contents` (v2) names exists, and each extension's control file `default_version` agrees
/// with the version META gives it (`1.0` and `1.0.0` are one version). An extension's SQL file
/// that is not there is a warning, as PGXN accepts it: builds often generate it (from a `.in`
/// template, or by `make`). Returns every problem found (empty: valid).
///
/// # Errors
/// When the META.json cannot be read at all.
pub fn validate(path: &Path) -> Result<Vec<Problem>, Error> {
    let (meta_path, dir) = if path.is_dir() {
        (path.join("META.json"), Some(path))
    } else {
        (path.to_path_buf(), None)
    };
    let bytes = std::fs::read(&meta_path)
        .map_err(|e| Error::Config(format!("{}: {e}", meta_path.display())))?;
    let meta = match parse_meta(&bytes) {
        Ok(m) => m,
        Err(e) => {
            return Ok(vec![problem(
                "META.json",
                format!(
                    "{e}. The META spec: https://pgxn.org/spec/ (v1) or https://rfcs.pgxn.org/0003-meta-spec-v2.html (v2)"
                ),
            )]);
        }
    };
    let raw = &meta.raw;
    let mut problems = Vec::new();
    let license = match &raw["license"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    if license.is_empty() || license.eq_ignore_ascii_case("unknown") {
        problems.push(problem(
            "license",
            "no license: name one (`PostgreSQL`, `MIT`, an SPDX expression) so users may install it",
        ));
    }
    let Some(dir) = dir else {
        return Ok(problems);
    };
    // (field, file) pairs META names, and (extension, version) pairs to hold against controls.
    let mut named = Vec::new();
    let mut versions = Vec::new();
    if meta.spec == 2 {
        for (ext, e) in raw["contents"]["extensions"]
            .as_object()
            .into_iter()
            .flatten()
        {
            for key in ["sql", "control", "doc"] {
                if let Some(f) = e[key].as_str() {
                    named.push((
                        format!("contents.extensions.{ext}.{key}"),
                        f.to_string(),
                        key == "sql",
                    ));
                }
            }
            let control = e["control"]
                .as_str()
                .map_or_else(|| format!("{ext}.control"), String::from);
            // A v2 META states no extension version: the control file's is the one.
            versions.push((ext.clone(), None, control));
        }
    } else {
        for (ext, p) in &meta.provides {
            if let Some(f) = &p.file {
                named.push((format!("provides.{ext}.file"), f.clone(), true));
            }
            if let Some(f) = &p.docfile {
                named.push((format!("provides.{ext}.docfile"), f.clone(), false));
            }
            versions.push((
                ext.clone(),
                Some(p.version.clone()),
                format!("{ext}.control"),
            ));
        }
    }
    for (field, file, generated) in named {
        if dir.join(&file).is_file() {
            continue;
        }
        if generated {
            let from = if dir.join(format!("{file}.in")).is_file() {
                format!(" (its template {file}.in is)")
            } else {
                String::new()
            };
            problems.push(warning(
                field,
                format!(
                    "{file} is not in {}{from}: published anyway, as PGXN does, for a build that generates it; add it, or fix the path, if none does",
                    dir.display()
                ),
            ));
        } else {
            problems.push(problem(
                field,
                format!(
                    "{file} does not exist in {}: add it, or fix the path",
                    dir.display()
                ),
            ));
        }
    }
    for (ext, version, control) in versions {
        let Ok(text) = std::fs::read_to_string(dir.join(&control)) else {
            continue;
        };
        let same = |a: &str, b: &str| {
            a == b
                || matches!(
                    (pgext_spec::prereqs::Version::parse(a), pgext_spec::prereqs::Version::parse(b)),
                    (Some(x), Some(y)) if x == y
                )
        };
        match pgext_spec::prereqs::control_value(&text, "default_version") {
            Some(v) if version.as_ref().is_some_and(|m| !same(&v, m)) => problems.push(problem(
                control.clone(),
                format!(
                    "default_version is {v} but META.json gives {ext} version {}: make them agree",
                    version.unwrap_or_default()
                ),
            )),
            None => problems.push(problem(
                control.clone(),
                "no default_version: add `default_version = 'VERSION'`",
            )),
            _ => {}
        }
    }
    Ok(problems)
}

/// Whether `path` (relative, `/`-separated) matches a pattern: `*` within a segment, `**`
/// across segments; a pattern without `/` matches a name at any depth; a trailing `/` or a
/// pattern naming a folder matches everything under it.
fn matches(pattern: &str, path: &str) -> bool {
    fn glob(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=s.len()).any(|i| glob(rest, &s[i..]))
            }
            (Some(b'*'), _) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| glob(&p[1..], &s[i..])),
            (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
            _ => false,
        }
    }
    let pattern = pattern.trim_start_matches("./").trim_end_matches('/');
    if pattern.is_empty() {
        return false;
    }
    let anchored = pattern.contains('/');
    let candidates: Vec<&str> = if anchored {
        vec![path]
    } else {
        // Every suffix starting at a segment.
        std::iter::once(path)
            .chain(path.match_indices('/').map(|(i, _)| &path[i + 1..]))
            .collect()
    };
    candidates.iter().any(|c| {
        glob(pattern.as_bytes(), c.as_bytes())
            || c.split('/')
                .scan(String::new(), |acc, seg| {
                    if !acc.is_empty() {
                        acc.push('/');
                    }
                    acc.push_str(seg);
                    Some(acc.clone())
                })
                .any(|prefix| prefix.len() < c.len() && glob(pattern.as_bytes(), prefix.as_bytes()))
    })
}

/// The patterns META.json leaves out of a bundle: v1 `no_index` (`file` and `directory`
/// lists, or a list), v2 `ignore`.
fn ignored(meta: &Value) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut out = strings(&meta["ignore"]);
    let ni = &meta["no_index"];
    out.extend(strings(ni));
    out.extend(strings(&ni["file"]));
    out.extend(strings(&ni["directory"]));
    out
}

/// Files git tracks in `dir`, when `dir` is inside a git checkout.
fn git_files(dir: &Path) -> Option<Vec<String>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "-z", "--cached"])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
}

/// The files of a project's release: git-tracked files inside a checkout (else every regular
/// file, `.git` left out), less what META.json ignores.
///
/// # Errors
/// When the folder or its META.json cannot be read.
pub fn select_files(dir: &Path) -> Result<Files, Error> {
    let all = read_dir_files(dir)?;
    let tracked = git_files(dir);
    let meta: Value = all
        .get("META.json")
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let patterns = ignored(&meta);
    let mut files = Files::default();
    for (path, content) in all.files {
        if tracked.as_ref().is_some_and(|t| !t.contains(&path)) {
            continue;
        }
        if path != "META.json" && patterns.iter().any(|p| matches(p, &path)) {
            continue;
        }
        files.files.insert(path, content);
    }
    Ok(files)
}

/// The release of a project folder (see [`select_files`]), or of an archive.
///
/// # Errors
/// When the files or the META.json do not make a valid release.
pub fn bundle(path: &Path) -> Result<PreparedRelease, Error> {
    if path.is_dir() {
        release_from_files(&select_files(path)?, None)
    } else {
        prepare(path, None)
    }
}

/// What `pgext init` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// SQL only.
    Sql,
    /// A C module.
    C,
}

/// Writes a new PGXS project `name` in `dir/name`: it builds, passes `installcheck` and
/// publishes unchanged. Returns its folder.
///
/// # Errors
/// When the name is not a valid extension name, or the folder exists.
pub fn init(dir: &Path, name: &str, template: Template, meta_v1: bool) -> Result<PathBuf, Error> {
    if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.len() > 63
    {
        return Err(Error::Config(format!(
            "{name}: an extension name is lowercase letters, digits and _, starting with a letter"
        )));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(Error::Config(format!("{} exists already", root.display())));
    }
    let version = "0.1.0";
    let c = template == Template::C;
    let sql_fn = if c {
        format!(
            "CREATE FUNCTION {name}_hello() RETURNS text\n    AS 'MODULE_PATHNAME', '{name}_hello' LANGUAGE C IMMUTABLE STRICT;\n"
        )
    } else {
        format!(
            "CREATE FUNCTION {name}_hello() RETURNS text\n    LANGUAGE sql IMMUTABLE AS $$SELECT 'hello from {name}'$$;\n"
        )
    };
    let meta = if meta_v1 {
        serde_json::json!({
            "name": name, "abstract": format!("The {name} extension"), "version": version,
            "maintainer": "Your Name <you@example.org>", "license": "postgresql",
            "release_status": "stable",
            "provides": {name: {"abstract": format!("The {name} extension"), "file": format!("sql/{name}--{version}.sql"),
                "docfile": format!("doc/{name}.md"), "version": version}},
            "tags": [name],
            "meta-spec": {"version": "1.0.0", "url": "https://pgxn.org/meta/spec.txt"}
        })
    } else {
        serde_json::json!({
            "name": name, "abstract": format!("The {name} extension"), "version": version,
            "maintainers": [{"name": "Your Name", "email": "you@example.org"}],
            "license": "PostgreSQL",
            "contents": {"extensions": {name: {"sql": format!("sql/{name}--{version}.sql"),
                "control": format!("{name}.control"), "doc": format!("doc/{name}.md")}}},
            "classifications": {"tags": [name]},
            "meta-spec": {"version": "2.0.0"}
        })
    };
    let mut files: Vec<(String, String)> = vec![
        (
            "META.json".into(),
            serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n",
        ),
        (
            format!("{name}.control"),
            format!(
                "comment = 'The {name} extension'\ndefault_version = '{version}'\n{}relocatable = true\n",
                if c {
                    format!("module_pathname = '$libdir/{name}'\n")
                } else {
                    String::new()
                }
            ),
        ),
        (
            format!("sql/{name}--{version}.sql"),
            format!("\\echo Use \"CREATE EXTENSION {name}\" to load this file. \\quit\n{sql_fn}"),
        ),
        (
            "Makefile".into(),
            format!(
                "EXTENSION = {name}\n{}DATA = $(wildcard sql/*--*.sql)\nDOCS = doc/{name}.md\nREGRESS = {name}\nREGRESS_OPTS = --inputdir=test\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n",
                if c {
                    format!("MODULES = {name}\n")
                } else {
                    String::new()
                }
            ),
        ),
        (
            "README.md".into(),
            format!(
                "# {name}\n\nThe {name} PostgreSQL extension.\n\n## Install\n\n```sh\npgext install {name}\n```\n\nor from a checkout: `make && make install && make installcheck`.\n"
            ),
        ),
        (
            format!("doc/{name}.md"),
            format!(
                "{name} {version}\n=====\n\n## Synopsis\n\n```sql\nCREATE EXTENSION {name};\nSELECT {name}_hello();\n```\n"
            ),
        ),
        (
            format!("test/sql/{name}.sql"),
            format!(
                "CREATE EXTENSION {name};\nSELECT {name}_hello() = 'hello from {name}' AS ok;\n"
            ),
        ),
        (
            format!("test/expected/{name}.out"),
            format!(
                "CREATE EXTENSION {name};\nSELECT {name}_hello() = 'hello from {name}' AS ok;\n ok \n----\n t\n(1 row)\n\n"
            ),
        ),
        (
            ".gitignore".into(),
            "*.o\n*.so\n*.bc\n/results/\n/regression.*\n/log/\n/*.zip\n".into(),
        ),
        (
            ".github/workflows/ci.yml".into(),
            include_str!("../templates/ci.yml").to_string(),
        ),
    ];
    if c {
        files.push((
            format!("{name}.c"),
            format!("#include \"postgres.h\"\n#include \"fmgr.h\"\n#include \"utils/builtins.h\"\n\nPG_MODULE_MAGIC;\n\nPG_FUNCTION_INFO_V1({name}_hello);\n\nDatum\n{name}_hello(PG_FUNCTION_ARGS)\n{{\n\tPG_RETURN_TEXT_P(cstring_to_text(\"hello from {name}\"));\n}}\n"),
        ));
    }
    for (path, text) in files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Config(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&p, text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))?;
    }
    Ok(root)
}

/// Every regular file of a project folder, `.git` left out ([`crate::project::select_files`]
/// picks the release's).
///
/// # Errors
/// When the folder cannot be read.
pub fn read_dir_files(dir: &Path) -> Result<Files, Error> {
    let mut files = Files::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd =
            std::fs::read_dir(&d).map_err(|e| Error::Config(format!("{}: {e}", d.display())))?;
        for e in rd.flatten() {
            let path = e.path();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() && e.file_name() != ".git" {
                stack.push(path);
            } else if kind.is_file() {
                use std::os::unix::fs::PermissionsExt as _;
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|e| Error::Config(e.to_string()))?
                    .to_string_lossy()
                    .into_owned();
                let data = std::fs::read(&path)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
                let exec = e
                    .metadata()
                    .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
                files.files.insert(rel, (data, exec));
            }
        }
    }
    Ok(files)
}

/// Builds the release of a project folder (its files as `pgext bundle` selects them) or an
/// archive.
///
/// # Errors
/// When the archive or its META.json is not a valid release.
pub fn prepare(path: &Path, status: Option<Status>) -> Result<PreparedRelease, Error> {
    if path.is_dir() {
        release_from_files(&select_files(path)?, status)
    } else {
        let bytes =
            std::fs::read(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        prepare_release(&bytes, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_patterns() {
        for (p, path, want) in [
            ("*.o", "src/a.o", true),
            ("*.o", "a.c", false),
            ("test/", "test/sql/a.sql", true),
            ("test", "test/sql/a.sql", true),
            ("docs/*.md", "docs/a.md", true),
            ("docs/*.md", "docs/x/a.md", false),
            ("docs/**/*.md", "docs/x/a.md", true),
            ("build", "src/build/x", true),
            ("sql/a.sql", "sql/a.sql", true),
            ("sql/a.sql", "sql/b.sql", false),
        ] {
            assert_eq!(matches(p, path), want, "{p} vs {path}");
        }
    }

    #[test]
    fn a_bundle_takes_tracked_files_less_ignored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = init(dir.path(), "tracked", Template::Sql, false).unwrap();
        let mut meta: Value =
            serde_json::from_slice(&std::fs::read(root.join("META.json")).unwrap()).unwrap();
        meta["ignore"] = serde_json::json!([".github/", "*.orig"]);
        std::fs::write(root.join("META.json"), meta.to_string()).unwrap();
        std::fs::write(root.join("notes.orig"), "old").unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(&root)
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        std::fs::write(root.join("scratch.sql"), "untracked").unwrap();
        let files = select_files(&root).unwrap();
        let names: Vec<&str> = files.files.keys().map(String::as_str).collect();
        assert!(
            names.contains(&"META.json") && names.contains(&"tracked.control"),
            "{names:?}"
        );
        for gone in ["scratch.sql", "notes.orig", ".github/workflows/ci.yml"] {
            assert!(!names.contains(&gone), "{gone} in {names:?}");
        }
    }

    #[test]
    fn a_new_project_validates_in_both_meta_versions() {
        let dir = tempfile::tempdir().unwrap();
        for (name, v1) in [("fresh_two", false), ("fresh_one", true)] {
            let root = init(dir.path(), name, Template::Sql, v1).unwrap();
            assert_eq!(validate(&root).unwrap(), Vec::<Problem>::new(), "{name}");
            let p = bundle(&root).unwrap();
            assert_eq!(p.release.dist, name);
            // A control file that disagrees with a v1 META, and a missing doc, are named with
            // their fix; a v2 META states no extension version (the control file's is it).
            std::fs::write(
                root.join(format!("{name}.control")),
                "default_version = '9.9.9'\n",
            )
            .unwrap();
            std::fs::remove_file(root.join(format!("doc/{name}.md"))).unwrap();
            let problems = validate(&root).unwrap();
            assert_eq!(problems.len(), if v1 { 2 } else { 1 }, "{problems:?}");
            assert!(
                problems[0].message.contains("does not exist"),
                "{problems:?}"
            );
            if v1 {
                assert!(
                    problems[1].message.contains("default_version is 9.9.9"),
                    "{problems:?}"
                );
            } else {
                let b = bundle(&root).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(b.release.provides[name], "9.9.9");
            }
            assert!(problems.iter().all(|p| p.blocks(false)));
            // `0.1` is `0.1.0`; a SQL file the build generates is a warning, an error only
            // when strict.
            let short = p.release.version.trim_end_matches(".0");
            assert_ne!(short, p.release.version);
            std::fs::write(
                root.join(format!("{name}.control")),
                format!("default_version = '{short}'\n"),
            )
            .unwrap();
            std::fs::write(root.join(format!("doc/{name}.md")), "doc\n").unwrap();
            let meta: Value =
                serde_json::from_slice(&std::fs::read(root.join("META.json")).unwrap()).unwrap();
            let sql = meta["provides"][name]["file"]
                .as_str()
                .or(meta["contents"]["extensions"][name]["sql"].as_str())
                .unwrap()
                .to_string();
            std::fs::rename(root.join(&sql), root.join(format!("{sql}.in"))).unwrap();
            let problems = validate(&root).unwrap();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].severity, Severity::Warning);
            assert!(problems[0].message.contains("template"), "{problems:?}");
            assert!(!problems[0].blocks(false) && problems[0].blocks(true));
        }
        assert!(init(dir.path(), "fresh_two", Template::C, false).is_err());
        assert!(init(dir.path(), "Bad-Name", Template::C, false).is_err());
    }
}
