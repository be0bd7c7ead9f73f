//! The web site over HTTP: every page type answers with what it should show, READMEs are
//! rendered and made harmless, names are escaped, links and canonical URLs are right, and
//! robots.txt and sitemap.xml list the site, and Atom feeds parse with Python's feedparser.

use pgext_tests::{TestNode, eventually, fixtures, identity};

fn page(status: u16, body: &[u8]) -> String {
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(body));
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_type_shows_its_content_and_nothing_runs() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, Some("Alice <script>alert('name')</script>"))
        .await;
    let mut files = fixtures::dist("shiny", "1.0.0", "shiny_ext", "stable");
    for (path, data) in &mut files {
        if path == "README.md" {
            *data = b"# Shiny\n\nMakes **tables** shine.\n\n<script>alert('readme')</script>\n\n[click](javascript:alert('link'))\n\n<img src=x onerror=\"alert('img')\">\n".to_vec();
        }
    }
    files.push((
        "doc/shiny.md".into(),
        b"# Shiny manual\n\nCall `shine()`.<script>alert('doc')</script>\n".to_vec(),
    ));
    files.push((
        "doc/notes.txt".into(),
        b"Notes\n\n<b>not bold</b> & <script>alert('txt')</script>\n".to_vec(),
    ));
    files.push((
        "doc/page.html".into(),
        b"<h1>Page</h1><p onclick=\"alert('html')\">kept text</p><script>alert('html')</script>"
            .to_vec(),
    ));
    node.publish_files(&alice, &files, "shiny-1.0.0").await;

    let get = |path: &'static str| {
        let node = &node;
        async move {
            let (status, body) = node.get(path).await;
            page(status, &body)
        }
    };
    let home = get("/").await;
    assert!(
        home.contains("href=\"/dist/shiny/\"") && home.contains("1 distributions"),
        "{home}"
    );
    assert!(
        home.contains("<form class=\"search\" action=\"/search\""),
        "{home}"
    );

    let dist = get("/dist/shiny/").await;
    for want in [
        "<title>shiny 1.0.0 · ",
        "<h1>Shiny</h1>",
        "<strong>tables</strong>",
        "pgext install shiny@1.0.0",
        "Provenance",
        "Log entry</th><td>1 of ",
        "<link rel=\"canonical\" href=\"http://",
        "shiny-1.0.0.zip.tlog-proof",
        "<meta name=\"description\" content=\"The shiny_ext extension for tests\">",
    ] {
        assert!(dist.contains(want), "no {want:?} in\n{dist}");
    }
    for bad in ["<script>alert", "javascript:", "onerror"] {
        assert!(!dist.contains(bad), "{bad:?} survived in\n{dist}");
    }
    assert!(
        get("/dist/shiny/1.0.0/")
            .await
            .contains("pgext install shiny@1.0.0")
    );
    // Documents: linked from the release page, rendered by their markup, all harmless.
    assert!(
        dist.contains("href=\"/dist/shiny/1.0.0/doc/shiny.html\">Shiny manual</a>"),
        "{dist}"
    );
    let manual = get("/dist/shiny/1.0.0/doc/shiny.html").await;
    for want in [
        "<title>Shiny manual · shiny 1.0.0 · ",
        "<h1>Shiny manual</h1>",
        "<code>shine()</code>",
        "href=\"/dist/shiny/1.0.0/\">shiny 1.0.0</a>",
        "href=\"/dist/shiny/1.0.0/doc/notes.html\">Notes</a>",
        "href=\"/api/v1/dists/shiny/1.0.0/docs/doc/shiny\">doc/shiny.md</a>",
    ] {
        assert!(manual.contains(want), "no {want:?} in\n{manual}");
    }
    let notes = get("/dist/shiny/1.0.0/doc/notes.html").await;
    assert!(
        notes.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; &lt;script&gt;"),
        "{notes}"
    );
    let html = get("/dist/shiny/1.0.0/doc/page.html").await;
    assert!(
        html.contains("<h1>Page</h1>") && html.contains("kept text"),
        "{html}"
    );
    for page in [&manual, &notes, &html] {
        for bad in ["<script>alert", "onclick"] {
            assert!(!page.contains(bad), "{bad:?} survived in\n{page}");
        }
    }
    assert_eq!(node.get("/dist/shiny/1.0.0/doc/missing.html").await.0, 404);
    // PGXN's site path for the headline release's document, canonically the versioned page.
    let headline = get("/dist/shiny/doc/shiny.html").await;
    assert!(
        headline.contains("<h1>Shiny manual</h1>")
            && headline.contains("/dist/shiny/1.0.0/doc/shiny.html\">"),
        "{headline}"
    );
    assert_eq!(node.get("/dist/shiny/doc/missing.html").await.0, 404);
    assert_eq!(node.get("/dist/shiny/doc/shiny.zip").await.0, 404);
    assert!(
        get("/extension/shiny_ext/")
            .await
            .contains("href=\"/dist/shiny/\"")
    );
    let user = get("/user/alice/").await;
    assert!(user.contains("href=\"/dist/shiny/\""), "{user}");
    assert!(
        !user.contains("<script>") && user.contains("&lt;script&gt;"),
        "{user}"
    );
    assert!(get("/tag/testing/").await.contains("href=\"/dist/shiny/\""));
    let log = get("/log/").await;
    assert!(
        log.contains(&node.vkey()) && log.contains("pgext audit"),
        "{log}"
    );
    assert!(get("/mirrors/").await.contains("sequenced here"));
    // Search results, once the index has the release.
    let found = eventually(30, || async {
        let found = get("/search?q=shine").await;
        if found.contains("href=\"/dist/shiny/\"") {
            Ok(found)
        } else {
            Err(found)
        }
    })
    .await;
    assert!(found.contains("<strong>shine</strong>"), "{found}");
    let robots = get("/robots.txt").await;
    assert!(
        robots.contains("Sitemap: http://") && robots.contains("/sitemap.xml"),
        "{robots}"
    );
    let sitemap = get("/sitemap.xml").await;
    assert!(sitemap.contains("/dist/shiny/</loc>"), "{sitemap}");
    assert_eq!(node.get("/dist/nothing/").await.0, 404);

    // Atom feeds, read by a real feed parser (Python feedparser, installed by bootstrap).
    let python = pgext_tests::pgxn_bin().with_file_name("python");
    for path in [
        "/feeds/recent.xml",
        "/feeds/dist/shiny.xml",
        "/feeds/user/alice.xml",
        "/feeds/tag/testing.xml",
    ] {
        let (status, body) = node.get(path).await;
        assert_eq!(status, 200, "{path}");
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                "import sys, feedparser\n\
                 d = feedparser.parse(sys.stdin.buffer.read())\n\
                 assert not d.bozo, d.bozo_exception\n\
                 e = d.entries[0]\n\
                 print(len(d.entries), e.title, e.link, e.author, e.summary, sep='|')",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write as _;
                c.stdin.take().unwrap().write_all(&body)?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(fields[0], "1", "{path}: {line}");
        assert_eq!(fields[1], "shiny 1.0.0", "{path}: {line}");
        assert!(fields[2].ends_with("/dist/shiny/1.0.0/"), "{path}: {line}");
        assert_eq!(fields[3], "alice", "{path}: {line}");
        assert_eq!(
            fields[4], "The shiny_ext extension for tests",
            "{path}: {line}"
        );
    }
    assert_eq!(node.get("/feeds/dist/nothing.xml").await.0, 404);
    node.node.shutdown().await;
}

/// A configured webhook gets each new release as JSON signed with HMAC-SHA256 under its
/// secret; a failed delivery is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_receive_signed_releases_with_retries() {
    use std::sync::{Arc, Mutex};
    /// What the receiver got: the path, the signature header and the body of each request.
    type Received = Arc<Mutex<Vec<(String, Option<String>, Vec<u8>)>>>;
    let got: Received = Arc::default();
    let seen = got.clone();
    // `/all` refuses its first request, then takes everything; `/filtered` takes everything.
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let mut list = seen.lock().unwrap();
                    let sig = headers
                        .get("x-pgext-signature-256")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    list.push((name.clone(), sig, body.to_vec()));
                    if name == "all" && list.iter().filter(|(n, ..)| n == "all").count() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let base = pgext_tests::serve(app).await;

    let hook = |path: &str, dists: &[&str], tags: &[&str]| pgext_node::config::WebhookConfig {
        url: format!("{base}/{path}"),
        secret: "s3cret".into(),
        dists: dists.iter().map(|d| d.to_string()).collect(),
        users: if dists.is_empty() {
            vec![]
        } else {
            vec!["ALICE".into()]
        },
        tags: tags.iter().map(|t| t.to_string()).collect(),
        accounts: vec![],
        access: pgext_node::config::Access::Public,
    };
    let hooks = vec![
        hook("all", &[], &[]),
        hook("filtered", &["Other"], &["testing"]),
    ];
    let node = TestNode::start_with(move |c| c.webhooks = hooks).await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    for name in ["hooked", "other"] {
        node.publish_dist(&alice, name, "1.0.0", name, "stable")
            .await;
    }
    let count = |name: &str| {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(n, ..)| n == name)
            .count()
    };
    eventually(30, || async {
        if count("all") >= 3 && count("filtered") >= 1 {
            Ok(())
        } else {
            Err(format!("{:?}", got.lock().unwrap()))
        }
    })
    .await;
    let list = got.lock().unwrap().clone();
    let all: Vec<_> = list.iter().filter(|(n, ..)| n == "all").collect();
    // The first delivery twice (refused, then taken), the second once, and nothing for the
    // account entry.
    assert_eq!(all.len(), 3, "{list:?}");
    assert_eq!(all[0].2, all[1].2);
    let doc = |body: &[u8]| -> serde_json::Value { serde_json::from_slice(body).unwrap() };
    let first = doc(&all[1].2);
    assert_eq!(
        (
            first["event"].as_str(),
            first["dist"].as_str(),
            first["version"].as_str(),
            first["index"].as_u64()
        ),
        (Some("release"), Some("hooked"), Some("1.0.0"), Some(1))
    );
    assert_eq!(doc(&all[2].2)["dist"], "other");
    // The filtered webhook delivers in log order, so by the time it has `other` it has passed
    // over `hooked`.
    let filtered: Vec<_> = list.iter().filter(|(n, ..)| n == "filtered").collect();
    assert_eq!(filtered.len(), 1, "{list:?}");
    assert_eq!(doc(&filtered[0].2)["dist"], "other");
    // The signature, recomputed here from the secret.
    use hmac::Mac as _;
    let (_, sig, body) = all[1];
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(body);
    let want = format!("sha256={}", pgext_log::hex(&mac.finalize().into_bytes()));
    assert_eq!(sig.as_deref(), Some(want.as_str()));
    node.node.shutdown().await;
}
