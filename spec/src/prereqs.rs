//! What a release needs: META's `prereqs` (v1) or `dependencies` (v2), PGXN's version ranges,
//! and the `requires` of extension control files (`spec/client.md`, Dependencies).
//!
//! Every reader here takes outside bytes, so each is bounded: a META with more than
//! [`MAX_PREREQS`] prerequisites, or a range longer than [`MAX_RANGE`] bytes, is refused.

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// Prerequisites one META may declare, over every phase and relation.
pub const MAX_PREREQS: usize = 256;
/// The longest version range read.
pub const MAX_RANGE: usize = 256;

/// Why prerequisites cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PrereqError(pub String);

/// A version as PGXN and PostgreSQL write them, read leniently: `14` and `14.0` are
/// `14.0.0`, `17beta1` is `17.0.0-beta1`, a leading `v` is dropped.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub semver::Version);

impl Version {
    /// Reads a version, or `None` when nothing numeric leads it.
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        if let Ok(v) = semver::Version::parse(t) {
            return Some(Version(v));
        }
        // The numeric head (`1.2`), then whatever follows as a pre-release (`beta1`).
        let head_len = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (head, tail) = t.split_at(head_len);
        let head = head.trim_end_matches('.');
        let parts: Vec<&str> = head.split('.').collect();
        if head.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        let mut text = parts.join(".");
        for _ in parts.len()..3 {
            text.push_str(".0");
        }
        let tail: String = tail
            .trim_start_matches(['-', '.', '_'])
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
            .collect();
        if !tail.is_empty() {
            text.push('-');
            text.push_str(tail.trim_matches('.'));
        }
        semver::Version::parse(&text).ok().map(Version)
    }

    /// The version a `pg_config --version` line names: `PostgreSQL 15.8 (Debian …)`.
    pub fn of_postgres(line: &str) -> Option<Version> {
        line.split_whitespace().nth(1).and_then(Version::parse)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A comparison operator of a version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>=` (also a bare version)
    Ge,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `<`
    Lt,
}

impl Op {
    fn holds(self, o: Ordering) -> bool {
        match self {
            Op::Eq => o == Ordering::Equal,
            Op::Ne => o != Ordering::Equal,
            Op::Ge => o != Ordering::Less,
            Op::Le => o != Ordering::Greater,
            Op::Gt => o == Ordering::Greater,
            Op::Lt => o == Ordering::Less,
        }
    }
}

/// A PGXN version range: `0` (any), `1.2.0` (at least), or comparisons joined by commas, all
/// of which must hold: `>= 1.2.0, != 1.5.0, < 2.0.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// The comparisons; none means any version.
    pub terms: Vec<(Op, Version)>,
    /// As written.
    pub text: String,
}

impl Range {
    /// Any version.
    pub fn any() -> Range {
        Range {
            terms: Vec::new(),
            text: "0".into(),
        }
    }

    /// Reads a range as META writes it (a string, or the number 0).
    ///
    /// # Errors
    /// When a term is not an operator and a version.
    pub fn from_json(v: &Value) -> Result<Range, PrereqError> {
        match v {
            Value::Number(n) if n.as_f64() == Some(0.0) => Ok(Range::any()),
            Value::Number(n) => Range::parse(&n.to_string()),
            Value::String(s) => Range::parse(s),
            other => Err(PrereqError(format!(
                "{other} is not a version range (a string such as \">= 1.2.0\", or 0)"
            ))),
        }
    }

    /// Reads a range from its text.
    ///
    /// # Errors
    /// When a term is not an operator and a version.
    pub fn parse(text: &str) -> Result<Range, PrereqError> {
        if text.len() > MAX_RANGE {
            return Err(PrereqError(format!(
                "a version range of {} bytes (at most {MAX_RANGE})",
                text.len()
            )));
        }
        let text = text.trim();
        if text.is_empty() || text == "0" {
            return Ok(Range::any());
        }
        let mut terms = Vec::new();
        for term in text.split(',') {
            let term = term.trim();
            let (op, rest) = [
                ("==", Op::Eq),
                ("!=", Op::Ne),
                (">=", Op::Ge),
                ("<=", Op::Le),
                (">", Op::Gt),
                ("<", Op::Lt),
                ("=", Op::Eq),
            ]
            .into_iter()
            .find_map(|(s, op)| term.strip_prefix(s).map(|r| (op, r)))
            .unwrap_or((Op::Ge, term));
            let version = Version::parse(rest).ok_or_else(|| {
                PrereqError(format!(
                    "{text:?} is not a version range: {term:?} is not an operator (==, !=, >=, <=, >, <) and a version"
                ))
            })?;
            terms.push((op, version));
        }
        Ok(Range {
            terms,
            text: text.to_string(),
        })
    }

    /// Whether `v` is in the range.
    pub fn matches(&self, v: &Version) -> bool {
        self.terms.iter().all(|(op, w)| op.holds(cmp(v, w)))
    }

    /// Whether the range allows every version.
    pub fn is_any(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Compares versions, ignoring build metadata; a pre-release of the bound counts as the bound
/// itself only when it is one (`17beta1` does not satisfy `>= 17`, as semver orders them).
fn cmp(a: &Version, b: &Version) -> Ordering {
    a.0.cmp_precedence(&b.0)
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("any version");
        }
        // A bare version means "at least": say so.
        match self.terms.as_slice() {
            [(Op::Ge, v)] if !self.text.starts_with('>') => write!(f, ">= {v}"),
            _ => f.write_str(&self.text),
        }
    }
}

/// When a prerequisite applies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before building (`./configure`).
    Configure,
    /// To build.
    Build,
    /// To run the tests.
    Test,
    /// To use it.
    Runtime,
    /// To work on it.
    Develop,
}

impl Phase {
    /// The spelling in JSON (`runtime` for v2's `run`).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Configure => "configure",
            Phase::Build => "build",
            Phase::Test => "test",
            Phase::Runtime => "runtime",
            Phase::Develop => "develop",
        }
    }
}

/// How strongly.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    /// Must be there.
    Requires,
    /// Should be there (installed with `--with-recommends`).
    Recommends,
    /// Might be useful (reported only).
    Suggests,
    /// Must not be there.
    Conflicts,
}

impl Relation {
    /// The spelling in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Requires => "requires",
            Relation::Recommends => "recommends",
            Relation::Suggests => "suggests",
            Relation::Conflicts => "conflicts",
        }
    }
}

/// What a prerequisite names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Needs {
    /// PostgreSQL itself (`PostgreSQL` in v1, `dependencies.postgres` in v2).
    Postgres,
    /// An extension by name (v1 `prereqs` names extensions; v2 `pkg:pgxn/NAME` and
    /// `pkg:postgres/NAME`).
    Extension(String),
    /// Something pgext does not install (another purl type: a system package, a language).
    Other(String),
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Needs::Postgres => f.write_str("PostgreSQL"),
            Needs::Extension(n) | Needs::Other(n) => f.write_str(n),
        }
    }
}

/// One prerequisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prereq {
    /// When.
    pub phase: Phase,
    /// How strongly.
    pub relation: Relation,
    /// What.
    pub needs: Needs,
    /// Which versions.
    pub range: Range,
}

const PHASES: [(&str, Phase); 5] = [
    ("configure", Phase::Configure),
    ("build", Phase::Build),
    ("test", Phase::Test),
    ("runtime", Phase::Runtime),
    ("develop", Phase::Develop),
];
const RELATIONS: [(&str, Relation); 4] = [
    ("requires", Relation::Requires),
    ("recommends", Relation::Recommends),
    ("suggests", Relation::Suggests),
    ("conflicts", Relation::Conflicts),
];

/// The prerequisites a META declares: v1 `prereqs`, or v2 `dependencies` (`postgres.version`
/// and `packages`, whose `run` phase is v1's `runtime`).
///
/// # Errors
/// When a range cannot be read, or there are more than [`MAX_PREREQS`].
pub fn prereqs(meta: &Value) -> Result<Vec<Prereq>, PrereqError> {
    let mut out = Vec::new();
    let mut push = |phase, relation, needs, range: &Value| {
        if out.len() == MAX_PREREQS {
            return Err(PrereqError(format!(
                "more than {MAX_PREREQS} prerequisites"
            )));
        }
        let range = Range::from_json(range).map_err(|e| PrereqError(format!("{needs}: {e}")))?;
        out.push(Prereq {
            phase,
            relation,
            needs,
            range,
        });
        Ok(())
    };
    if let Some(p) = meta.get("prereqs").and_then(Value::as_object) {
        for (phase_name, phase) in PHASES {
            for (rel_name, relation) in RELATIONS {
                let Some(names) = p
                    .get(phase_name)
                    .and_then(|p| p.get(rel_name))
                    .and_then(Value::as_object)
                else {
                    continue;
                };
                for (name, range) in names {
                    let needs = if name.eq_ignore_ascii_case("postgresql") {
                        Needs::Postgres
                    } else {
                        Needs::Extension(name.clone())
                    };
                    push(phase, relation, needs, range)?;
                }
            }
        }
    }
    let deps = &meta["dependencies"];
    if let Some(v) = deps["postgres"].get("version") {
        push(Phase::Runtime, Relation::Requires, Needs::Postgres, v)?;
    }
    if let Some(p) = deps["packages"].as_object() {
        for (phase_name, phase) in PHASES {
            let key = if phase_name == "runtime" {
                "run"
            } else {
                phase_name
            };
            for (rel_name, relation) in RELATIONS {
                let Some(purls) = p
                    .get(key)
                    .and_then(|p| p.get(rel_name))
                    .and_then(Value::as_object)
                else {
                    continue;
                };
                for (purl, range) in purls {
                    push(phase, relation, needs_of_purl(purl), range)?;
                }
            }
        }
    }
    Ok(out)
}

/// `pkg:pgxn/NAME` and `pkg:postgres/NAME` name extensions pgext can resolve; any other purl
/// is something else (a system library, a language runtime).
fn needs_of_purl(purl: &str) -> Needs {
    let name = |p: &str| {
        purl.strip_prefix(p)
            .map(|n| n.split(['@', '?', '#']).next().unwrap_or(n).to_string())
            .filter(|n| !n.is_empty() && !n.contains('/'))
    };
    match name("pkg:pgxn/").or_else(|| name("pkg:postgres/")) {
        Some(n) => Needs::Extension(n),
        None => Needs::Other(purl.to_string()),
    }
}

/// A value of an extension control file (`key = 'value'`, `key = value`), unquoted.
pub fn control_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let (k, v) = l.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .unwrap_or(v);
        (k.trim() == key).then(|| v.replace("''", "'"))
    })
}

/// The extensions a control file's `requires` names.
pub fn control_requires(text: &str) -> Vec<String> {
    control_value(text, "requires")
        .map(|v| {
            v.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|| panic!("{s} did not parse"))
    }

    #[test]
    fn versions_are_read_leniently() {
        assert_eq!(v("14").to_string(), "14.0.0");
        assert_eq!(v("9.1").to_string(), "9.1.0");
        assert_eq!(v("v1.2.3").to_string(), "1.2.3");
        assert_eq!(v("17beta1").to_string(), "17.0.0-beta1");
        assert_eq!(
            Version::of_postgres("PostgreSQL 15.8 (Debian 15.8-0+deb12u1)").unwrap(),
            v("15.8.0")
        );
        for bad in ["", "beta", "1..2", "1.2.3.4"] {
            assert!(Version::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn ranges_follow_the_meta_spec() {
        let r = |s: &str| Range::parse(s).unwrap();
        assert!(r("0").matches(&v("0.0.1")));
        // A bare version is a minimum.
        assert!(r("14.0.0").matches(&v("15.8")));
        assert!(!r("14.0.0").matches(&v("13.16")));
        let r2 = r(">= 1.2.0, != 1.5.0, < 2.0.0");
        assert!(r2.matches(&v("1.2.0")) && r2.matches(&v("1.9")));
        assert!(!r2.matches(&v("1.5.0")) && !r2.matches(&v("2.0.0")) && !r2.matches(&v("1.1")));
        assert!(r("==1.0").matches(&v("1.0.0")) && !r("==1.0").matches(&v("1.0.1")));
        assert!(r("> 1").matches(&v("1.0.1")) && !r("<= 1").matches(&v("1.0.1")));
        assert_eq!(Range::from_json(&json!(0)).unwrap(), Range::any());
        assert_eq!(r("14.0.0").to_string(), ">= 14.0.0");
        for bad in [">= x", "1.0, >", "~> 1.0"] {
            assert!(Range::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Range::parse(&"1".repeat(MAX_RANGE + 1)).is_err());
        assert!(Range::from_json(&json!({"a": 1})).is_err());
    }

    #[test]
    fn v1_prereqs_and_v2_dependencies() {
        // pg_partman 5.1.0's declaration.
        let partman = json!({"prereqs": {"runtime": {
            "requires": {"PostgreSQL": "14.0.0"},
            "recommends": {"pg_jobmon": "1.4.1"}}}});
        let p = prereqs(&partman).unwrap();
        assert_eq!(p.len(), 2);
        assert!(
            p.iter()
                .any(|p| p.needs == Needs::Postgres && p.relation == Relation::Requires)
        );
        assert!(
            p.iter()
                .any(|p| p.needs == Needs::Extension("pg_jobmon".into())
                    && p.relation == Relation::Recommends
                    && p.phase == Phase::Runtime)
        );
        let v2 = json!({"dependencies": {"postgres": {"version": ">= 16"},
            "packages": {"run": {"requires": {"pkg:pgxn/semver": "0.40.0",
                "pkg:postgres/hstore": 0, "pkg:generic/openssl": "3.0"}},
                "test": {"requires": {"pkg:pgxn/pgtap": 0}}}}});
        let p = prereqs(&v2).unwrap();
        assert_eq!(p.len(), 5);
        assert!(p.contains(&Prereq {
            phase: Phase::Runtime,
            relation: Relation::Requires,
            needs: Needs::Extension("hstore".into()),
            range: Range::any()
        }));
        assert!(
            p.iter()
                .any(|p| p.needs == Needs::Other("pkg:generic/openssl".into()))
        );
        assert!(
            p.iter()
                .any(|p| p.phase == Phase::Test && p.needs == Needs::Extension("pgtap".into()))
        );
        let many: serde_json::Map<String, Value> = (0..=MAX_PREREQS)
            .map(|i| (format!("e{i}"), json!(0)))
            .collect();
        assert!(prereqs(&json!({"prereqs": {"runtime": {"requires": many}}})).is_err());
        assert!(prereqs(&json!({"prereqs": {"runtime": {"requires": {"x": "bogus!"}}}})).is_err());
    }

    #[test]
    fn control_files() {
        let text = "# pg_jobmon\ncomment = 'Job logging'\ndefault_version = '1.4.1'\nrequires = 'dblink, plpgsql'\nrelocatable=false\n";
        assert_eq!(control_value(text, "default_version").unwrap(), "1.4.1");
        assert_eq!(control_value(text, "relocatable").unwrap(), "false");
        assert_eq!(control_requires(text), vec!["dblink", "plpgsql"]);
        assert!(control_requires("comment = 'x'").is_empty());
    }
}
