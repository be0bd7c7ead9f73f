use super::*;
use crate::meta::{parse_meta, read_stored_meta};
use serde_json::json;

fn v2(deps: Value, contents: Value) -> Meta {
    let doc = json!({
        "name": "needs_demo", "version": "1.0.0", "abstract": "demo", "license": "PostgreSQL",
        "maintainers": [{"name": "A", "email": "a@example.org"}],
        "meta-spec": {"version": "2.0.0"},
        "contents": contents,
        "dependencies": deps,
    });
    parse_meta(&serde_json::to_vec(&doc).unwrap()).expect("a valid v2 META")
}

fn linux_gnu() -> Platform {
    Platform {
        os: "linux".into(),
        version: "6.1.0".into(),
        libc: Some(("gnu".into(), "2.36".into())),
        arch: "amd64".into(),
    }
}

#[test]
fn a_v2_meta_is_read_in_full() {
    let meta = v2(
        json!({
            "platforms": ["linux", "darwin-arm64"],
            "postgres": {"version": ">= 14.0, < 19.0", "with": ["xml"]},
            "pipeline": "pgxs",
            "packages": {
                "build": {"requires": {"pkg:generic/libxml2": "2.9", "pkg:pgxn/semver": 0}},
                "run": {"requires": {"pkg:generic/libxml2": 0}, "conflicts": {"pkg:pgxn/other": 0}},
            },
            "variations": [{
                "where": {"platforms": ["darwin"]},
                "dependencies": {"packages": {"build": {"requires": {"pkg:generic/icu": 0}}}},
            }, {
                "where": {"postgres": {"version": ">= 16.0"}},
                "dependencies": {"packages": {"build": {"requires": {"pkg:generic/zstd": 0}}}},
            }],
        }),
        json!({
            "extensions": {
                "needs_demo": {"sql": "sql/needs_demo.sql", "control": "needs_demo.control", "tle": true},
            },
            "modules": {
                "needs_demo": {"type": "extension", "lib": "src/needs_demo", "preload": "server"},
                "needs_hook": {"type": "hook", "lib": "needs_hook", "preload": "session"},
            },
        }),
    );
    let r = Requirements::from_meta(&meta);
    assert_eq!(r.postgres.as_deref(), Some(">= 14.0, < 19.0"));
    assert_eq!(r.postgres_with, ["xml"]);
    assert_eq!(r.platforms, ["linux", "darwin-arm64"]);
    assert_eq!(r.pipeline.as_deref(), Some("pgxs"));
    assert_eq!(r.packages.len(), 4);
    assert!(r.packages.contains(&PackageNeed {
        purl: "pkg:generic/libxml2".into(),
        phase: Phase::Build,
        relation: Relation::Requires,
        range: "2.9".into()
    }));
    assert_eq!(r.tle(), ["needs_demo"]);
    assert_eq!(r.server_preload(), ["needs_demo"]);
    assert!(r.restart);
    assert_eq!(r.modules[1].preload, Some(Preload::Session));
    assert_eq!(r.modules[1].kind, "hook");
    // System packages: build phase, requires only, extensions left to the resolver;
    // the darwin variation does not apply on Linux.
    let build: Vec<&str> = r
        .system_packages(&linux_gnu(), None, &[Phase::Configure, Phase::Build])
        .iter()
        .map(|p| p.purl.as_str())
        .collect();
    assert_eq!(build, ["pkg:generic/libxml2"]);
    // A variation for some PostgreSQL versions holds only for those.
    let on = |major: &str| -> Vec<String> {
        let v = crate::prereqs::Version::parse(major).unwrap();
        r.system_packages(&linux_gnu(), Some(&v), &[Phase::Build])
            .iter()
            .map(|p| p.purl.clone())
            .collect()
    };
    assert_eq!(on("15.4"), ["pkg:generic/libxml2"]);
    assert_eq!(on("17.0"), ["pkg:generic/libxml2", "pkg:generic/zstd"]);
    let mac = Platform {
        os: "darwin".into(),
        version: "23.5.0".into(),
        libc: None,
        arch: "arm64".into(),
    };
    let build: Vec<&str> = r
        .system_packages(&mac, None, &[Phase::Build])
        .iter()
        .map(|p| p.purl.as_str())
        .collect();
    assert_eq!(build, ["pkg:generic/libxml2", "pkg:generic/icu"]);
    // Round trip as the API serves it.
    let back: Requirements = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_meta_without_modules_needs_no_restart() {
    let meta = v2(
        json!({"postgres": {"version": "15"}}),
        json!({"extensions": {"plain": {"sql": "plain.sql", "control": "plain.control"}}}),
    );
    let r = Requirements::from_meta(&meta);
    assert!(!r.restart);
    assert!(r.server_preload().is_empty());
    assert!(r.check_platform(&linux_gnu()).is_ok());
    assert_eq!(r.extensions[0].name, "plain");
    assert!(!r.extensions[0].tle);
}

#[test]
fn v1_metas_are_converted() {
    // The PostgreSQL ranges and prerequisites these real METAs state.
    let cases = [
        ("pg-semver", ">= 9.2.0", vec!["pkg:postgres/plpgsql"]),
        ("pg_partman", ">= 14.0.0", vec!["pkg:pgxn/pg_jobmon"]),
        ("pgtap", ">= 9.1.0", vec!["pkg:postgres/plpgsql"]),
        ("pg_roaringbitmap", "", vec![]),
    ];
    for (name, pg, purls) in cases {
        let bytes = std::fs::read(format!(
            "{}/testdata/real-meta/{name}.META.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let meta = read_stored_meta(&bytes).unwrap();
        let r = Requirements::from_meta(&meta);
        let shown = r
            .postgres
            .as_deref()
            .map(|t| {
                crate::prereqs::Range::parse(t)
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        assert_eq!(shown, pg, "{name}");
        let got: Vec<&str> = r.packages.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(got, purls, "{name}");
        assert!(r.modules.is_empty() && !r.restart, "{name}");
        assert!(!r.extensions.is_empty(), "{name}");
    }
}

#[test]
fn platforms_match_as_the_spec_names_them() {
    let gnu = linux_gnu();
    let musl = Platform {
        libc: Some(("musl".into(), "1.2.4".into())),
        arch: "arm64".into(),
        ..linux_gnu()
    };
    let table = [
        ("any", true, true),
        ("linux", true, true),
        ("LINUX", true, true),
        ("gnulinux", true, false),
        ("musllinux", false, true),
        ("musllinux-1.2", false, true),
        ("musllinux-1.3", false, false),
        ("musllinux-1.2-arm64", false, true),
        ("linux-amd64", true, false),
        ("linux-x86_64", true, false),
        ("linux-aarch64", false, true),
        ("gnulinux-2.36-amd64", true, false),
        ("linux-6.1", true, true),
        ("linux-5.10", false, false),
        ("darwin", false, false),
        ("darwin-arm64", false, false),
        ("linux-amd64-arm64", false, false),
    ];
    for (p, on_gnu, on_musl) in table {
        assert_eq!(gnu.matches(p), on_gnu, "{p} on {gnu}");
        assert_eq!(musl.matches(p), on_musl, "{p} on {musl}");
    }
    let r = Requirements {
        platforms: vec!["darwin".into(), "musllinux".into()],
        ..Requirements::default()
    };
    let why = r.check_platform(&gnu).unwrap_err();
    assert!(why.contains("darwin, musllinux"), "{why}");
    assert!(r.check_platform(&musl).is_ok());
}
