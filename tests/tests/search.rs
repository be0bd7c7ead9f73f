//! Search over a node's registry: ranking (an exact name above a README mention, names and
//! abstracts above text), typo tolerance and prefixes, paging, every kind of document, PGXN's
//! status codes and JSONP, the native API, and an index rebuilt from the log after its folder
//! is lost.

use pgext::release::Identity;
use pgext_tests::{TestNode, eventually, fixtures, identity};
use serde_json::Value;

async fn publish(node: &TestNode, who: &Identity, name: &str, ext: &str, abs: &str, readme: &str) {
    node.publish_files(
        who,
        &fixtures::dist_about(name, ext, abs, readme),
        &format!("{name}-1.0.0"),
    )
    .await;
}

/// GETs a search; returns (status, body as JSON or text).
async fn get(node: &TestNode, path: &str) -> (u16, String) {
    let (status, body) = node.get(path).await;
    (status, String::from_utf8(body).unwrap())
}

/// Waits until the index has caught up with the log (it is updated after each commit).
async fn search(node: &TestNode, path: &str, at_least: u64) -> Value {
    eventually(30, || async {
        let (status, body) = get(node, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let doc: Value = serde_json::from_str(&body).unwrap();
        if doc["count"].as_u64().unwrap() >= at_least {
            Ok(doc)
        } else {
            Err(format!("{path}: {doc}"))
        }
    })
    .await
}

fn names(doc: &Value, field: &str) -> Vec<String> {
    doc["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_finds_typos_pages_and_rebuilds() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, Some("Alice Liddell")).await;
    publish(
        &node,
        &alice,
        "pair",
        "pair",
        "A key/value pair data type",
        "# pair\n\nOrdered pairs.\n",
    )
    .await;
    publish(
        &node,
        &alice,
        "widget",
        "gizmo",
        "Widgets for tables",
        "# widget\n\nWorks well with pair: store a pair in a widget, or a widget in a pair.\n",
    )
    .await;
    publish(
        &node,
        &alice,
        "semver",
        "semver",
        "A semantic version data type",
        "# semver\n\nVersions.\n",
    )
    .await;
    for i in 0..12 {
        publish(
            &node,
            &alice,
            &format!("paged{i:02}"),
            &format!("paged{i:02}"),
            "Paging through results",
            "Nothing else.\n",
        )
        .await;
    }

    // An exact name beats a README mention, which still matches.
    let doc = search(&node, "/search/dists/?q=pair", 2).await;
    assert_eq!(names(&doc, "dist")[..2], ["pair", "widget"], "{doc}");
    let widget = &doc["hits"][1];
    assert!(
        widget["excerpt"]
            .as_str()
            .unwrap()
            .contains("<strong>pair</strong>"),
        "{widget}"
    );
    for field in [
        "dist",
        "version",
        "abstract",
        "date",
        "user",
        "user_name",
        "score",
        "excerpt",
    ] {
        assert!(doc["hits"][0][field].is_string(), "{field}: {doc}");
    }
    assert_eq!(doc["hits"][0]["user_name"], "Alice Liddell");
    assert_eq!(doc["query"], "pair");
    assert_eq!(
        (doc["offset"].as_u64(), doc["limit"].as_u64()),
        (Some(0), Some(50))
    );

    // One typo, and a prefix, as typed in a search box.
    let doc = search(&node, "/search/dists?q=semvr", 1).await;
    assert_eq!(names(&doc, "dist")[0], "semver", "{doc}");
    // The word the typo matched is highlighted; the README's Markdown is not in the excerpt.
    assert_eq!(
        doc["hits"][0]["excerpt"], "<strong>semver</strong>\nVersions",
        "{doc}"
    );
    let doc = search(&node, "/search/dists?q=sema", 1).await;
    assert_eq!(names(&doc, "dist")[0], "semver", "{doc}");

    // Paging: 12 matches, 5 at a time, no hit twice.
    let mut seen = Vec::new();
    for (o, n) in [(0, 5), (5, 5), (10, 2)] {
        let doc = search(&node, &format!("/search/dists?q=paging&o={o}&l=5"), 12).await;
        assert_eq!(doc["count"], 12, "{doc}");
        assert_eq!(doc["hits"].as_array().unwrap().len(), n, "{doc}");
        seen.extend(names(&doc, "dist"));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12);

    // Every kind of document.
    let doc = search(&node, "/search/extensions/?q=gizmo", 1).await;
    assert_eq!(doc["hits"][0]["extension"], "gizmo", "{doc}");
    assert_eq!(doc["hits"][0]["dist"], "widget", "{doc}");
    let doc = search(&node, "/search/users/?q=liddell", 1).await;
    assert_eq!(doc["hits"][0]["user"], "alice", "{doc}");
    let doc = search(&node, "/search/tags/?q=key", 1).await;
    assert_eq!(doc["hits"][0]["tag"], "key value", "{doc}");
    assert!(doc["hits"][0].get("excerpt").is_none(), "{doc}");
    let doc = search(&node, "/search/docs/?q=howto", 1).await;
    assert!(doc["hits"][0]["docpath"].is_string(), "{doc}");
    let doc = search(&node, "/api/v1/search?in=extensions&q=semver", 1).await;
    assert_eq!(
        (doc["in"].as_str(), doc["hits"][0]["extension"].as_str()),
        (Some("extensions"), Some("semver"))
    );

    // A tag no dist has any more leaves the index.
    for (v, tags) in [("1.0.0", vec!["ephemeral"]), ("1.1.0", vec!["lasting"])] {
        let mut files = fixtures::dist("fleeting", v, "fleeting", "stable");
        let meta: &mut Vec<u8> = &mut files[0].1;
        let mut m: Value = serde_json::from_slice(meta).unwrap();
        m["tags"] = tags.clone().into();
        *meta = serde_json::to_vec(&m).unwrap();
        node.publish_files(&alice, &files, &format!("fleeting-{v}"))
            .await;
        let doc = search(&node, &format!("/search/tags/?q={}", tags[0]), 1).await;
        assert_eq!(doc["hits"][0]["tag"], tags[0], "{doc}");
    }
    let (_, body) = get(&node, "/search/tags/?q=ephemeral").await;
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["count"], 0, "{doc}");
    assert_eq!(
        search(&node, "/search/tags/?q=testing", 1).await["hits"][0]["tag"],
        "testing"
    );

    // PGXN's status codes, and JSONP.
    for (path, status) in [
        ("/search/dists/", 400),
        ("/search/dists/?q=*", 400),
        ("/search/dists/?q=pair&o=x", 400),
        ("/search/dists/?q=pair&l=y", 400),
        ("/search/nothing/?q=pair", 404),
        ("/api/v1/search?in=nothing&q=pair", 400),
    ] {
        let (got, body) = get(&node, path).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    let (status, body) = get(&node, "/search/dists/?q=pair&callback=show").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("show({") && body.ends_with("});"),
        "{body}"
    );
    let doc = search(&node, "/search/dists/?q=pair&l=5000", 1).await;
    assert_eq!(doc["limit"], 50);

    // The index is derived from the log: lost, it is rebuilt at the next start.
    let node = node
        .restart_with(|dir| std::fs::remove_dir_all(dir.join("search")).unwrap())
        .await;
    let doc = search(&node, "/search/dists/?q=pair", 2).await;
    assert_eq!(names(&doc, "dist")[..2], ["pair", "widget"], "{doc}");
    node.node.shutdown().await;
}
