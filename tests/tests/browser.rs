//! The web site in a real browser (Debian's headless Chromium through chromedriver): a reader
//! with JavaScript off finds an extension from a vague, misspelled query in the search box,
//! reads its page and its docs, sees who published it and which witness cosigned it; every
//! page type loads and shows what it should, on the sequencer and on a mirror; with
//! JavaScript on, script planted in a README and a doc does not run. Each page's screenshot is
//! kept under `test-artifacts/site/` in the target folder.

use pgext_tests::browser::{Browser, artifacts_dir};
use pgext_tests::{TestNode, eventually, fixtures, identity};

const ORIGIN: &str = "origin.pgext.test/log";
const WITNESS: &str = "m.pgext.test/witness";

/// Script planted in READMEs and docs: were any of it to run, `window.pwned` would be set.
const PLANTED: &str = "<script>window.pwned = 'script'</script>\n\n\
    <img src=\"x\" onerror=\"window.pwned = 'onerror'\">\n\n\
    [a link](javascript:window.pwned='link')\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_finds_reads_and_verifies_extensions_in_chromium() {
    let (origin, mirror, _vkey, _witness) = TestNode::witnessed(ORIGIN).await;
    let alice = identity("alice", 1);
    origin.register(&alice, Some("Alice Liddell")).await;
    let mut semver = fixtures::dist_about(
        "semver",
        "semver",
        "A semantic version data type",
        &format!(
            "# semver\n\nCompare **semantic release numbers** the way humans mean them.\n\n{PLANTED}"
        ),
    );
    semver.push((
        "doc/reference.md".into(),
        format!(
            "# semver reference\n\nThe `semver` type sorts `1.10.0` after `1.9.0`.\n\n{PLANTED}"
        )
        .into_bytes(),
    ));
    origin.publish_files(&alice, &semver, "semver-1.0.0").await;
    origin
        .publish_files(
            &alice,
            &fixtures::dist_about(
                "pair",
                "pair",
                "A key/value pair data type",
                "# pair\n\nOrdered pairs, also of version numbers.\n",
            ),
            "pair-1.0.0",
        )
        .await;
    let size = 3;
    origin.wait_cosigned(size, WITNESS).await;
    mirror.wait_size("/origins/main", size, 60).await;
    wait_indexed(&origin, "semver", None).await;

    let site = origin.url();
    let b = Browser::start(false, "site").await;

    // Home: a stranger arrives and types a vague query, misspelled, into the search box.
    b.goto(&format!("{site}/")).await;
    assert_eq!(b.text("h1").await, "PostgreSQL extensions");
    let counts = b.text("main p.muted").await;
    assert!(
        counts.starts_with("2 distributions · 2 releases"),
        "{counts}"
    );
    b.screenshot("home").await;
    b.type_into("input[name=q]", "semantc version").await;
    b.click("form.search button[type=submit]").await;

    // Search results, with the match highlighted; the first is semver.
    assert!(
        b.url().await.contains("/search?q=semantc+version"),
        "{}",
        b.url().await
    );
    let titles = b.texts("main .card h2 a").await;
    assert_eq!(
        titles.first().map(String::as_str),
        Some("semver"),
        "{titles:?}"
    );
    let highlighted = b.texts("main .card strong").await;
    assert!(
        highlighted.iter().any(|h| h == "semantic"),
        "{highlighted:?}"
    );
    b.screenshot("search").await;
    b.click_link("semver").await;

    // The dist page: README rendered, install command, provenance with the cosigning witness.
    assert!(
        b.url().await.ends_with("/dist/semver/"),
        "{}",
        b.url().await
    );
    assert_eq!(b.text("main h1").await, "semver 1.0.0");
    assert!(
        b.text("article.readme")
            .await
            .contains("Compare semantic release numbers"),
        "{}",
        b.text("article.readme").await
    );
    assert_eq!(
        b.text("main pre").await,
        "pgext install semver@1.0.0",
        "install command"
    );
    let provenance = b.text("section[aria-label=Provenance]").await;
    for want in [
        "Published by alice",
        "Log entry 1 of origin.pgext.test/log",
        WITNESS,
        "pgext verify semver@1.0.0",
    ] {
        assert!(provenance.contains(want), "no {want:?} in\n{provenance}");
    }
    b.screenshot("dist").await;

    // Its docs, linked from the page.
    b.click_link("semver reference").await;
    assert!(
        b.url()
            .await
            .ends_with("/dist/semver/1.0.0/doc/reference.html"),
        "{}",
        b.url().await
    );
    assert_eq!(b.text("article.doc h1").await, "semver reference");
    assert!(
        b.text("article.doc")
            .await
            .contains("sorts 1.10.0 after 1.9.0")
    );
    b.screenshot("doc").await;

    // Every other page type.
    let pages = [
        (
            "release",
            format!("{site}/dist/pair/1.0.0/"),
            "main h1",
            "pair 1.0.0",
        ),
        (
            "extension",
            format!("{site}/extension/pair/"),
            "main td a",
            "pair 1.0.0",
        ),
        (
            "user",
            format!("{site}/user/alice/"),
            "main td a",
            "pair 1.0.0",
        ),
        (
            "tag",
            format!("{site}/tag/testing/"),
            "main td a",
            "pair 1.0.0",
        ),
        ("log", format!("{site}/log/"), "main h1", "The log"),
        (
            "mirrors",
            format!("{}/mirrors/", mirror.url()),
            "main td a",
            "m.pgext.test/log",
        ),
        (
            "mirrored-dist",
            format!("{}/origins/main/dist/semver/", mirror.url()),
            "main h1",
            "semver 1.0.0",
        ),
    ];
    for (name, url, css, want) in &pages {
        b.goto(url).await;
        let texts = b.texts(css).await;
        assert!(
            texts.iter().any(|t| t == want),
            "{name}: no {want:?} in {css} of {url}: {texts:?}"
        );
        b.screenshot(name).await;
    }
    b.goto(&format!("{site}/log/")).await;
    let log = b.text("main section.card").await;
    assert!(
        log.contains(WITNESS) && log.contains("pgext audit"),
        "{log}"
    );
    b.close().await;

    // With JavaScript on, nothing planted runs, in the README or in a doc.
    let b = Browser::start(true, "site").await;
    for path in ["/dist/semver/", "/dist/semver/1.0.0/doc/reference.html"] {
        b.goto(&format!("{site}{path}")).await;
        assert!(b.text("main").await.contains("semver"));
        // The load event, which `goto` waits for, comes after every image has loaded or failed.
        assert_eq!(
            b.eval("return typeof window.pwned").await,
            "undefined",
            "{path}: planted script ran"
        );
    }
    b.screenshot("doc-with-javascript").await;
    b.close().await;
    assert!(artifacts_dir().join("site/doc.png").is_file());
    origin.node.shutdown().await;
    mirror.node.shutdown().await;
}

/// Waits until the origin's index has `q` (it is updated after each commit of the log).
/// Waits until a search for `q` finds something (asked with `token`, of a private origin).
async fn wait_indexed(node: &TestNode, q: &str, token: Option<&str>) {
    eventually(30, || async {
        let mut req = reqwest::Client::new().get(format!("{}/api/v1/search?q={q}", node.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let doc: serde_json::Value = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if doc["count"].as_u64() > Some(0) {
            Ok(())
        } else {
            Err(format!("{q} not indexed: {doc}"))
        }
    })
    .await
}

/// A member signs in to a private registry's site in Chromium with a read token, then reads,
/// searches and sees provenance; a browser without the cookie sees only the sign-in page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_in_to_a_private_site_in_chromium() {
    use crate::private::{ORIGIN as PRIVATE, private_registry, read_token};
    let (node, _, alice) = private_registry().await;
    let site = node.url();
    wait_indexed(&node, "acme_db", Some(&read_token(&alice, PRIVATE, 600))).await;
    let b = Browser::start(false, "private").await;
    b.goto(&format!("{site}/dist/acme_db/")).await;
    assert_eq!(b.text("h1").await, "Sign in");
    let page = b.text("main").await;
    assert!(!page.contains("acme"), "{page}");
    b.screenshot("sign-in").await;
    b.type_into("textarea[name=token]", &read_token(&alice, PRIVATE, 3600))
        .await;
    b.click("button[type=submit]").await;
    assert_eq!(b.url().await, format!("{site}/"));
    b.goto(&format!("{site}/dist/acme_db/")).await;
    assert!(b.text("h1").await.contains("acme_db"));
    let provenance = b.text("section[aria-label=Provenance]").await;
    assert!(provenance.contains("alice"), "{provenance}");
    b.screenshot("member-dist").await;
    b.goto(&format!("{site}/search?q=acme")).await;
    let titles = b.texts("main .card h2 a").await;
    assert!(titles.iter().any(|t| t.contains("acme_db")), "{titles:?}");
    b.goto(&format!("{site}/logout")).await;
    b.goto(&format!("{site}/dist/acme_db/")).await;
    assert_eq!(b.text("h1").await, "Sign in");
    b.close().await;
    // Another browser, never signed in.
    let anon = Browser::start(false, "private-anonymous").await;
    anon.goto(&format!("{site}/")).await;
    assert_eq!(anon.text("h1").await, "Sign in");
    anon.close().await;
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_matrix_shows_who_built_what_in_chromium() {
    use crate::binary::{attest, target};
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    let builders: Vec<_> = ["builder-one", "builder-two", "builder-three"]
        .iter()
        .zip(2u8..)
        .map(|(n, seed)| identity(n, seed))
        .collect();
    node.register(&alice, None).await;
    for b in &builders {
        node.register(b, None).await;
    }
    let rel = node
        .publish_files(
            &alice,
            &fixtures::dist("pair", "1.0.0", "pair", "stable"),
            "pair-1.0.0",
        )
        .await;
    let at = ("pair", "1.0.0", rel.index);
    // PostgreSQL 15: two builders agree. PostgreSQL 18: two builders disagree.
    let agreed = attest(&node, &builders[0], at, target(15), "a").await;
    assert_eq!(
        attest(&node, &builders[1], at, target(15), "a").await,
        agreed
    );
    attest(&node, &builders[0], at, target(18), "b").await;
    attest(&node, &builders[2], at, target(18), "c").await;

    let b = Browser::start(false, "builds").await;
    for page in ["/dist/pair/1.0.0/", "/dist/pair/"] {
        b.goto(&format!("{}{page}", node.url())).await;
        let matrix = b.text("section[aria-label='Binary builds']").await;
        assert!(
            matrix.contains("builder-one, builder-two agree"),
            "{page}: {matrix}"
        );
        assert!(matrix.contains(&agreed[..12]), "{matrix}");
        assert!(
            matrix.contains("The builders disagree on PostgreSQL 18"),
            "{matrix}"
        );
        let rows = b.texts("table.matrix tr.disagree").await;
        assert_eq!(rows.len(), 3, "two packages and the note: {rows:?}");
    }
    b.screenshot("matrix").await;
    // The package link downloads the attested bytes.
    let href = b
        .eval("return document.querySelector('table.matrix a[href*=\"/builds/\"]').getAttribute('href')")
        .await;
    let (status, bytes) = node.get(href.as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(pgext_log::hex(&pgext_log::sha256(&bytes)), agreed);
    b.close().await;
}
