//! Categories: META spec v2's `classifications.categories`, the registry's mapping of tags for
//! METAs that name none, and the operator's file for distributions whose tags say nothing;
//! browsed through `/api/v1/categories` and the site, and as a search filter.

use pgext_tests::{TestNode, eventually, fixtures, identity};
use serde_json::{Value, json};

/// [`fixtures::dist`] with `tags` in its v1 META.
fn v1(name: &str, tags: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = fixtures::dist(name, "1.0.0", name, "stable");
    for (path, data) in &mut files {
        if path == "META.json" {
            let mut m: Value = serde_json::from_slice(data).unwrap();
            m["tags"] = json!(tags);
            *data = serde_json::to_vec(&m).unwrap();
        }
    }
    files
}

/// A SQL-only dist with a META spec v2 META naming `categories`.
fn v2(name: &str, categories: &[&str]) -> Vec<(String, Vec<u8>)> {
    let meta = json!({"name": name, "abstract": "A v2 distribution", "version": "1.0.0",
        "maintainers": [{"name": "T", "email": "t@example.org"}], "license": "PostgreSQL",
        "contents": {"extensions": {name: {"sql": format!("sql/{name}.sql"), "control": format!("{name}.control")}}},
        "classifications": {"categories": categories, "tags": ["json"]},
        "meta-spec": {"version": "2.0.0"}});
    vec![
        ("META.json".into(), serde_json::to_vec(&meta).unwrap()),
        (
            format!("{name}.control"),
            b"default_version = '1.0.0'\n".to_vec(),
        ),
        (format!("sql/{name}.sql"), b"SELECT 1;\n".to_vec()),
    ]
}

fn names(doc: &Value) -> Vec<String> {
    doc["dists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dist"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categories_from_metas_tags_and_the_operator_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("categories.toml");
    std::fs::write(
        &file,
        "[dists]\npgext_cat_plain = [\"security\"]\n[tags]\nquantiles = [\"Analytics\"]\n",
    )
    .unwrap();
    let f = file.clone();
    let node = TestNode::start_with(move |c| c.categories = Some(f)).await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    for (name, files) in [
        (
            "pgext_cat_v2",
            v2("pgext_cat_v2", &["Search", "Connectors"]),
        ),
        (
            "pgext_cat_tagged",
            v1("pgext_cat_tagged", &["JSON", "quantiles"]),
        ),
        ("pgext_cat_plain", v1("pgext_cat_plain", &["zzz"])),
        ("pgext_cat_none", v1("pgext_cat_none", &["zzz"])),
    ] {
        node.publish_files(&alice, &files, &format!("{name}-1.0.0"))
            .await;
    }

    let all = node.json("/api/v1/categories").await;
    let count = |c: &str| {
        all["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["category"] == c)
            .map(|x| {
                (
                    x["slug"].as_str().unwrap().to_string(),
                    x["dists"].as_u64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(all["categories"].as_array().unwrap().len(), 15);
    assert_eq!(count("Search"), ("search".into(), 1));
    assert_eq!(count("Analytics"), ("analytics".into(), 1));
    assert_eq!(
        count("Data and Transformations"),
        ("data-and-transformations".into(), 1)
    );
    assert_eq!(count("Security"), ("security".into(), 1));
    assert_eq!(count("Debugging"), ("debugging".into(), 0));

    // The META's own categories win over its tags (v2 tags "json" would say Data…).
    assert_eq!(
        names(&node.json("/api/v1/categories/search").await),
        ["pgext_cat_v2"]
    );
    let connectors = node.json("/api/v1/categories/Connectors").await;
    assert_eq!(
        connectors["dists"][0]["categories"],
        json!(["Connectors", "Search"])
    );
    assert_eq!(
        names(
            &node
                .json("/api/v1/categories/data-and-transformations")
                .await
        ),
        ["pgext_cat_tagged"]
    );
    assert_eq!(
        names(&node.json("/api/v1/categories/security").await),
        ["pgext_cat_plain"]
    );
    let (status, body) = node.get("/api/v1/categories/gardening").await;
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, err["errors"][0]["code"].as_str()),
        (404, Some("not-found"))
    );

    // The search filter.
    eventually(30, || async {
        let hits = node
            .json("/api/v1/search?q=pgext_cat&category=security")
            .await;
        let found: Vec<String> = hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["dist"].as_str().unwrap().to_string())
            .collect();
        if found == ["pgext_cat_plain"] {
            Ok(())
        } else {
            Err(format!("{hits}"))
        }
    })
    .await;
    eventually(30, || async {
        let all_hits = node.json("/api/v1/search?q=pgext_cat").await;
        if all_hits["count"] == 4 {
            Ok(())
        } else {
            Err(format!("{all_hits}"))
        }
    })
    .await;
    let (status, _) = node
        .get("/api/v1/search?q=pgext_cat&category=gardening")
        .await;
    assert_eq!(status, 400);

    // The site.
    let page = String::from_utf8(node.get("/categories/").await.1).unwrap();
    assert!(
        page.contains("/category/auditing-and-logging/") && page.contains("Security"),
        "{page}"
    );
    let page = String::from_utf8(node.get("/category/security/").await.1).unwrap();
    assert!(
        page.contains("pgext_cat_plain") && !page.contains("pgext_cat_none"),
        "{page}"
    );
    let page =
        String::from_utf8(node.get("/search?q=pgext_cat&category=analytics").await.1).unwrap();
    assert!(
        page.contains("pgext_cat_tagged") && !page.contains("pgext_cat_plain 1.0.0"),
        "{page}"
    );
    node.node.shutdown().await;

    // A file naming a category outside the META spec's list stops the node at start-up.
    std::fs::write(&file, "[tags]\nroses = [\"Gardening\"]\n").unwrap();
    let mut config = pgext_node::Config::for_tests(&dir.path().join("other"));
    config.categories = Some(file);
    let e = pgext_node::Node::spawn(config).await.unwrap_err();
    assert!(format!("{e:#}").contains("Gardening"), "{e:#}");
}
