//! Security advisories (`spec/advisories.md`): an owner publishes an OSV document with
//! `pgext advisory publish`, the registry's security team updates and withdraws; every refusal
//! names its rule and stores nothing; the node serves OSV JSON, a feed and release pages that
//! say so; `pgext install` refuses an affected release unless `--allow-vulnerable`, `pgext
//! list` marks it and `pgext advisories check` exits 1 until the advisory is withdrawn; a node
//! that points a document at another entry is caught.

use pgext_spec::advisory::{Advisory, Affected, Event, Range};
use pgext_spec::entry::Action;
use pgext_tests::pg::{Cluster, clear_leftovers, pg15_config};
use pgext_tests::{Cli, TestNode, identity};
use serde_json::{Value, json};

const DIST: &str = "pgext_adv_widget";
const ID: &str = "PGEXT-2026-0001";

/// An OSV document as a security database writes it: the registry's dist beside another
/// ecosystem's package, a GIT range, credits.
fn osv_file(dist: &str) -> Value {
    json!({
        "schema_version": "1.6.0",
        "id": ID,
        "modified": "2026-11-30T10:00:00Z",
        "aliases": ["CVE-2026-99999"],
        "summary": "widget_answer() trusts its caller",
        "details": "Calling `widget_answer()` lets any role read the answer.\n\nUpgrade.",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [
            {"package": {"ecosystem": "PGXN", "name": dist, "purl": format!("pkg:pgxn/{dist}")},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]},
                        {"type": "GIT", "repo": "https://example.org/widget.git",
                         "events": [{"introduced": "0"}, {"fixed": "0123abc"}]}]},
            {"package": {"ecosystem": "npm", "name": "widget-client"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]}
        ],
        "references": [{"type": "FIX", "url": "https://example.org/widget/commit/0123abc"}],
        "credits": [{"name": "A Finder"}]
    })
}

fn advisory(id: &str, dist: &str, fixed: &str) -> Advisory {
    Advisory {
        id: id.into(),
        aliases: vec![],
        summary: "a test advisory".into(),
        details: String::new(),
        severity: vec![],
        affected: vec![Affected {
            dist: dist.into(),
            ranges: vec![Range {
                kind: "SEMVER".into(),
                events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.into())],
            }],
            versions: vec![],
        }],
        references: vec![],
    }
}

/// A proxy in front of a node that points every advisory it serves at log entry 0 (an
/// account entry), as a node inventing an advisory would have to.
async fn lying_proxy(target: String) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let target = target.clone();
        async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let resp = reqwest::get(format!("{target}{path}")).await.unwrap();
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut body = resp.bytes().await.unwrap().to_vec();
            if uri.path() == "/api/v1/advisories" {
                let mut doc: Value = serde_json::from_slice(&body).unwrap();
                for v in doc["vulns"].as_array_mut().unwrap() {
                    v["database_specific"]["pgext"]["index"] = json!(0);
                }
                body = serde_json::to_vec(&doc).unwrap();
            }
            (status, body)
        }
    });
    pgext_tests::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisories_are_published_served_and_refuse_vulnerable_installs() {
    clear_leftovers(&pg15_config(), DIST);
    let node = TestNode::start().await;
    let (alice, bob, carol) = (
        identity("alice", 1),
        identity("bob", 2),
        identity("carol", 3),
    );
    for who in [&alice, &bob, &carol] {
        node.register(who, None).await;
    }
    for v in ["1.0.0", "1.0.1"] {
        node.publish_dist(&alice, DIST, v, DIST, "stable").await;
    }
    node.publish_dist(
        &bob,
        "pgext_adv_gadget",
        "1.0.0",
        "pgext_adv_gadget",
        "stable",
    )
    .await;

    // Refused, each naming its rule, and nothing stored: bob owns no widget, carol holds no
    // role yet, no such dist, a range that is not SemVer.
    let mut bad_range = advisory(ID, DIST, "1.0.1");
    bad_range.affected[0].ranges[0].events[1] = Event::Fixed("one".into());
    for (who, adv, rule) in [
        (&bob, advisory(ID, DIST, "1.0.1"), "not-owner"),
        (&carol, advisory(ID, DIST, "1.0.1"), "not-owner"),
        (
            &alice,
            advisory(ID, "pgext_adv_nosuch", "1.0.1"),
            "unknown-release",
        ),
        (&alice, bad_range, "invalid-advisory"),
    ] {
        let err = node
            .api_as(who)
            .submit(&who.sign(Action::Advisory(adv)))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(rule), "{err}");
    }
    assert_eq!(node.json("/api/v1/advisories").await, json!({"vulns": []}));

    // The owner publishes the OSV document with the CLI: what the registry cannot carry is
    // told, the rest is on the log.
    let home_alice = tempfile::tempdir().unwrap();
    let url = node.url();
    {
        let (url, home, alice) = (url.clone(), home_alice.path().to_path_buf(), alice.clone());
        tokio::task::spawn_blocking(move || {
            let cli = crate::binary::user(&home, &url, Some(&alice), &[]);
            let file = home.join("osv.json");
            std::fs::write(&file, serde_json::to_vec(&osv_file(DIST)).unwrap()).unwrap();
            let (ok, out, err) = cli.run(&[
                "--key",
                &cli.path("key.txt"),
                "advisory",
                "publish",
                file.to_str().unwrap(),
            ]);
            assert!(ok, "{out}{err}");
            assert!(
                out.contains(&format!("published advisory {ID} for {DIST}")),
                "{out}"
            );
            assert!(err.contains("left out npm package widget-client"), "{err}");
            assert!(err.contains("a GIT range"), "{err}");
        })
        .await
        .unwrap();
    }

    // Served as OSV JSON, filtered by dist and version; one by id; bad queries refused.
    let all = node.json("/api/v1/advisories").await;
    let doc = &all["vulns"][0];
    assert_eq!(doc["id"], ID);
    assert_eq!(doc["schema_version"], "1.6.0");
    assert_eq!(doc["aliases"], json!(["CVE-2026-99999"]));
    assert_eq!(doc["affected"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(
        doc["affected"][0]["package"],
        json!({"ecosystem": "PGXN", "name": DIST, "purl": format!("pkg:pgxn/{DIST}")})
    );
    assert_eq!(
        doc["affected"][0]["ranges"],
        json!([{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}])
    );
    assert_eq!(doc["database_specific"]["pgext"]["user"], "alice");
    assert!(doc.get("withdrawn").is_none());
    let q = |v: &str| format!("/api/v1/advisories?dist={DIST}&version={v}");
    assert_eq!(
        node.json(&q("1.0.0")).await["vulns"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(node.json(&q("1.0.1")).await["vulns"], json!([]));
    assert_eq!(
        node.json(&format!("/api/v1/advisories/{}", ID.to_lowercase()))
            .await["id"],
        ID
    );
    for (path, status) in [
        ("/api/v1/advisories/PGEXT-404".to_string(), 404),
        ("/api/v1/advisories/..%2Fetc".to_string(), 400),
        ("/api/v1/advisories?version=1.0.0".to_string(), 400),
        ("/api/v1/advisories?dist=a%2Fb".to_string(), 400),
        ("/api/v1/advisories?limit=5".to_string(), 400),
    ] {
        let (got, body) = node.get(&path).await;
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert!(err["errors"][0]["code"].is_string(), "{path}: {err}");
    }

    // The release page says so, the fixed release's does not; the feed lists it.
    let (_, page) = node.get(&format!("/dist/{DIST}/1.0.0/")).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("Security advisories"), "{page}");
    assert!(page.contains(ID) && page.contains("widget_answer() trusts its caller"));
    assert!(page.contains("Fixed in"), "{page}");
    assert!(page.contains("vulnerable"), "the versions list marks 1.0.0");
    let (_, page) = node.get(&format!("/dist/{DIST}/1.0.1/")).await;
    assert!(!String::from_utf8_lossy(&page).contains("Security advisories"));
    let (status, feed) = node.get("/feeds/advisories.xml").await;
    let feed = String::from_utf8_lossy(&feed);
    assert_eq!(status, 200);
    assert!(
        feed.contains(&format!(
            "<title>{ID}: widget_answer() trusts its caller</title>"
        )),
        "{feed}"
    );
    assert!(feed.contains(&format!("{DIST}: fixed in 1.0.1")), "{feed}");

    // The operator names carol to the security team.
    let (ok, text) = node.role("grant", "security", "carol").await;
    assert!(ok, "{text}");

    let home_user = tempfile::tempdir().unwrap();
    let home_carol = tempfile::tempdir().unwrap();
    let liar = lying_proxy(url.clone()).await;
    let (h_user, h_carol, carol2) = (
        home_user.path().to_path_buf(),
        home_carol.path().to_path_buf(),
        carol.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        let cli = Cli::new(&h_user).with_env(cluster.env());
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        let pinned = format!("{DIST}@1.0.0");

        // Told in the plan; refused with status 1; installed only when allowed.
        let plan = cli.ok(&["install", &pinned, "--dry-run"]);
        assert!(
            plan.contains(&format!(
                "VULNERABLE: {DIST} 1.0.0 is affected by {ID} (CVE-2026-99999)"
            )),
            "{plan}"
        );
        let (code, _, err) = cli.status(&["install", &pinned, "--yes"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "known vulnerabilities affect {DIST} 1.0.0 by {ID} (fixed in 1.0.1)"
            )),
            "{err}"
        );
        assert!(
            err.contains("--allow-vulnerable; nothing was installed"),
            "{err}"
        );
        assert!(!cli.ok(&["list", "--offline"]).contains(DIST));
        cli.ok(&["install", &pinned, "--yes", "--allow-vulnerable"]);

        // Marked by list, found by check (exit 1, JSON too).
        let list = cli.ok(&["list"]);
        assert!(list.contains(&format!("VULNERABLE: {ID}")), "{list}");
        let listed: Value = serde_json::from_str(&cli.ok(&["list", "--json"])).unwrap();
        assert_eq!(listed[0]["advisories"], json!([ID]));
        let (code, out, _) = cli.status(&["advisories", "check"]);
        assert_eq!(code, Some(1));
        assert!(
            out.contains(&format!("{DIST} 1.0.0 is affected by {ID}")),
            "{out}"
        );
        assert!(out.contains("fixed in 1.0.1"), "{out}");
        let (code, out, _) = cli.status(&["advisories", "check", "--json"]);
        assert_eq!(code, Some(1));
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["checked"], 1);
        assert_eq!(report["affected"][0]["id"], ID);
        assert_eq!(report["affected"][0]["fixed"], json!(["1.0.1"]));

        // A node that points the document at another entry is caught, not believed.
        let config = std::fs::read_to_string(h_user.join("config.toml")).unwrap();
        std::fs::write(h_user.join("config.toml"), config.replace(&url, &liar)).unwrap();
        let (code, _, err) = cli.status(&["advisories", "check"]);
        assert_eq!(code, Some(1));
        assert!(err.contains("entry 0 is not an advisory"), "{err}");
        let list = cli.ok(&["list"]);
        assert!(!list.contains("VULNERABLE"), "{list}");
        let config = std::fs::read_to_string(h_user.join("config.toml")).unwrap();
        std::fs::write(h_user.join("config.toml"), config.replace(&liar, &url)).unwrap();

        // The security team withdraws it: nothing is affected any more.
        let sec = crate::binary::user(&h_carol, &url, Some(&carol2), &[]);
        let out = sec.ok(&[
            "--key",
            &sec.path("key.txt"),
            "advisory",
            "withdraw",
            ID,
            "--reason",
            "not exploitable",
        ]);
        assert!(out.contains(&format!("withdrew advisory {ID}")), "{out}");
        let (code, out, err) = cli.status(&["advisories", "check"]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(
            out.contains("no known vulnerability affects the 1 release(s) checked"),
            "{out}"
        );
        assert!(!cli.ok(&["list"]).contains("VULNERABLE"));
        cli.ok(&["uninstall", DIST]);
    })
    .await
    .unwrap();

    // Withdrawn, it stays served as OSV databases keep withdrawals, marked so.
    let doc = node.json(&format!("/api/v1/advisories/{ID}")).await;
    assert!(doc["withdrawn"].is_string(), "{doc}");
    assert_eq!(
        doc["database_specific"]["pgext"]["withdrawn_reason"],
        "not exploitable"
    );
    assert_eq!(node.json(&q("1.0.0")).await["vulns"], json!([]));
    let (_, feed) = node.get("/feeds/advisories.xml").await;
    assert!(String::from_utf8_lossy(&feed).contains("(withdrawn)"));
    let (_, page) = node.get(&format!("/dist/{DIST}/1.0.0/")).await;
    assert!(!String::from_utf8_lossy(&page).contains("Security advisories"));
}
