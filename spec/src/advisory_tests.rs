use super::*;
use crate::osv::{LogRecord, Osv, OsvTimes};

fn adv(ranges: Vec<Range>, versions: &[&str]) -> Advisory {
    Advisory {
        id: "PGEXT-2026-0001".into(),
        aliases: vec!["CVE-2026-1234".into()],
        summary: "SQL injection in widget()".into(),
        details: "Calling `widget()` with\n\tuntrusted input runs it.".into(),
        severity: vec![Severity {
            kind: "CVSS_V3".into(),
            score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
        }],
        affected: vec![Affected {
            dist: "Widget".into(),
            ranges,
            versions: versions.iter().map(|v| v.to_string()).collect(),
        }],
        references: vec![Reference {
            kind: "FIX".into(),
            url: "https://example.org/widget/commit/1".into(),
        }],
    }
}

fn semver_range(events: Vec<Event>) -> Range {
    Range {
        kind: "SEMVER".into(),
        events,
    }
}

fn i(v: &str) -> Event {
    Event::Introduced(v.into())
}
fn f(v: &str) -> Event {
    Event::Fixed(v.into())
}

#[test]
fn ranges_follow_osv_evaluation() {
    // Two affected spans: [1.0.0, 1.2.3) and [2.0.0, 2.0.5); events given out of order, as
    // OSV allows.
    let a = adv(
        vec![semver_range(vec![
            f("2.0.5"),
            i("1.0.0"),
            f("1.2.3"),
            i("2.0.0"),
        ])],
        &[],
    );
    a.check().unwrap();
    let cases = [
        ("0.9.0", false),
        ("1.0.0", true),
        ("1.2.2", true),
        ("1.2.3-beta1", true),
        ("1.2.3", false),
        ("1.9.9", false),
        ("2.0.0", true),
        ("2.0.5", false),
        ("3.0.0", false),
    ];
    for (v, want) in cases {
        assert_eq!(a.affects("widget", v), want, "{v}");
    }
    assert!(!a.affects("other", "1.0.0"));
    assert_eq!(a.fixed_in("WIDGET"), ["1.2.3", "2.0.5"]);

    // From the first version on, up to and including a last affected one.
    let a = adv(
        vec![semver_range(vec![
            i("0"),
            Event::LastAffected("1.4.0".into()),
        ])],
        &[],
    );
    assert!(a.affects("widget", "0.0.1"));
    assert!(a.affects("widget", "1.4.0"));
    assert!(!a.affects("widget", "1.4.1"));

    // A limit bounds an open range.
    let a = adv(
        vec![semver_range(vec![i("1.0.0"), Event::Limit("2.0.0".into())])],
        &[],
    );
    assert!(a.affects("widget", "1.5.0"));
    assert!(!a.affects("widget", "2.1.0"));

    // Named versions, compared as the registry compares versions (case-insensitively).
    let a = adv(vec![], &["1.0.0-RC1"]);
    a.check().unwrap();
    assert!(a.affects("widget", "1.0.0-rc1"));
    assert!(!a.affects("widget", "1.0.0"));
}

#[test]
fn every_bound_and_format_is_checked() {
    let good = adv(vec![semver_range(vec![i("0"), f("1.0.0")])], &[]);
    good.check().unwrap();
    let refused = |change: &dyn Fn(&mut Advisory), why: &str| {
        let mut a = good.clone();
        change(&mut a);
        let e = a.check().expect_err(why);
        assert!(e.0.contains(why), "{e} should say {why}");
    };
    refused(&|a| a.id = "bad id".into(), "advisory id");
    refused(&|a| a.id = "NODASH".into(), "advisory id");
    refused(&|a| a.id = "X-".repeat(40), "advisory id");
    refused(&|a| a.aliases = vec!["CVE-1".into(); 17], "aliases");
    refused(&|a| a.aliases = vec!["../etc".into()], "alias");
    refused(&|a| a.summary = " ".into(), "summary");
    refused(&|a| a.summary = "a\u{1b}[31m".into(), "control");
    refused(&|a| a.summary = "s".repeat(257), "at most 256");
    refused(&|a| a.details = "d".repeat(16 * 1024 + 1), "details");
    refused(&|a| a.details = "bell\u{7}".into(), "control");
    refused(&|a| a.severity[0].kind = "CVSS_V9".into(), "severity type");
    refused(&|a| a.severity[0].score = String::new(), "score");
    refused(&|a| a.affected.clear(), "1 to 32");
    refused(&|a| a.affected[0].dist = "a/b".into(), "distribution name");
    refused(
        &|a| {
            let mut twice = a.affected[0].clone();
            twice.dist = "WIDGET".into();
            a.affected.push(twice);
        },
        "named twice",
    );
    refused(&|a| a.affected[0].ranges.clear(), "ranges or versions");
    refused(
        &|a| a.affected[0].ranges[0].kind = "GIT".into(),
        "range type",
    );
    refused(
        &|a| a.affected[0].ranges[0].events = vec![f("1.0.0")],
        "introduced",
    );
    refused(
        &|a| a.affected[0].ranges[0].events.push(f("1.0")),
        "not a SemVer",
    );
    refused(
        &|a| a.affected[0].ranges[0].events = vec![i("0"); 33],
        "events",
    );
    refused(
        &|a| a.affected[0].versions = vec!["x".into()],
        "not a SemVer",
    );
    refused(&|a| a.references[0].kind = "LINK".into(), "reference type");
    refused(
        &|a| a.references[0].url = "javascript:alert(1)".into(),
        "http(s)",
    );
    refused(&|a| a.references[0].url = "https://a b".into(), "http(s)");
}

/// An OSV document as a database such as GitHub's writes it: another ecosystem's package, a
/// GIT range, credits and ecosystem-specific data beside the registry's distribution.
const GHSA_LIKE: &str = r#"{
  "schema_version": "1.4.0",
  "id": "GHSA-abcd-efgh-ijkl",
  "modified": "2026-11-02T10:00:00Z",
  "published": "2026-11-01T10:00:00Z",
  "aliases": ["CVE-2026-1234"],
  "summary": "SQL injection in widget()",
  "details": "Calling widget() with untrusted input runs it.",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
  "affected": [
    {"package": {"ecosystem": "PGXN", "name": "widget", "purl": "pkg:pgxn/widget"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.3"}]},
                {"type": "GIT", "repo": "https://example.org/widget.git",
                 "events": [{"introduced": "0"}, {"fixed": "abc123"}]}],
     "ecosystem_specific": {"functions": ["widget"]}},
    {"package": {"ecosystem": "PyPI", "name": "widget-client"},
     "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]},
    {"package": {"ecosystem": "Debian", "name": "other", "purl": "pkg:pgxn/gadget@1.0.0"},
     "versions": ["1.0.0"]}
  ],
  "references": [{"type": "ADVISORY", "url": "https://example.org/advisories/1"}],
  "credits": [{"name": "Finder", "type": "FINDER"}],
  "database_specific": {"github_reviewed": true}
}"#;

#[test]
fn osv_documents_convert_both_ways() {
    let doc: Osv = serde_json::from_str(GHSA_LIKE).unwrap();
    let (a, left_out) = Advisory::from_osv(&doc).unwrap();
    assert_eq!(a.id, "GHSA-abcd-efgh-ijkl");
    assert_eq!(a.dists().collect::<Vec<_>>(), ["widget", "gadget"]);
    assert_eq!(a.affected[0].ranges.len(), 1, "the GIT range is left out");
    assert!(a.affects("widget", "1.2.2") && !a.affects("widget", "1.2.3"));
    assert!(a.affects("gadget", "1.0.0"));
    assert_eq!(left_out.len(), 2, "{left_out:?}");
    assert!(left_out.iter().any(|l| l.contains("GIT")));
    assert!(left_out.iter().any(|l| l.contains("PyPI")));

    let times = OsvTimes {
        published: "2026-12-01T08:00:00Z".into(),
        modified: "2026-12-01T09:00:00Z".into(),
        withdrawn: None,
    };
    let log = LogRecord {
        index: 7,
        user: "alice".into(),
        history: vec![5, 7],
        withdrawn_index: None,
        withdrawn_reason: None,
    };
    let served = a.to_osv(times, log.clone());
    let json = serde_json::to_value(&served).unwrap();
    assert_eq!(json["schema_version"], "1.6.0");
    assert_eq!(json["affected"][0]["package"]["ecosystem"], "PGXN");
    assert_eq!(json["affected"][0]["package"]["purl"], "pkg:pgxn/widget");
    assert_eq!(json["database_specific"]["pgext"]["index"], 7);
    // What is served reads back as the same advisory, and as the same document.
    let back: Osv = serde_json::from_value(json).unwrap();
    assert_eq!(back, served);
    let (again, left_out) = Advisory::from_osv(&back).unwrap();
    assert_eq!(again, a);
    assert!(left_out.is_empty());
    assert_eq!(back.database_specific.unwrap().pgext, Some(log));
}

#[test]
fn osv_documents_the_registry_cannot_carry_are_refused() {
    let mut doc: Osv = serde_json::from_str(GHSA_LIKE).unwrap();
    doc.withdrawn = Some("2026-11-03T00:00:00Z".into());
    assert!(Advisory::from_osv(&doc).unwrap_err().0.contains("withdraw"));
    let mut doc: Osv = serde_json::from_str(GHSA_LIKE).unwrap();
    doc.affected.remove(2);
    doc.affected.remove(0);
    assert!(
        Advisory::from_osv(&doc)
            .unwrap_err()
            .0
            .contains("names none")
    );
    let mut doc: Osv = serde_json::from_str(GHSA_LIKE).unwrap();
    doc.references[0].url = "ftp://example.org".into();
    assert!(Advisory::from_osv(&doc).unwrap_err().0.contains("http(s)"));
    // A summary comes from the details' first line when the document has none.
    let mut doc: Osv = serde_json::from_str(GHSA_LIKE).unwrap();
    doc.summary = None;
    doc.details = Some("First line.\nMore.".into());
    assert_eq!(Advisory::from_osv(&doc).unwrap().0.summary, "First line.");
}
