//! Faults fail closed: evidence that cannot be read halts its origin and is never written
//! over; a missing or damaged blob is an error and an alarm, never other content; read-only
//! commands create and delete nothing.

use pgext_node::origin::store::{META_EVIDENCE, Store};
use pgext_tests::{TestNode, identity};

/// The value of a counter in `/metrics`.
async fn metric(node: &TestNode, name: &str) -> f64 {
    let (_, body) = node.get("/metrics").await;
    String::from_utf8(body)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn unreadable_evidence_halts_the_origin_and_is_never_written_over() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    // The store's evidence record is damaged while the node is down.
    let node = node
        .restart_with(|dir| {
            let store = Store::open(&dir.join("db")).unwrap();
            store.commit(&[], &[(META_EVIDENCE, b"{not json")]).unwrap();
        })
        .await;
    let info = node.json("/api/v1/log").await;
    let halted = info["halted"].as_str().expect("halted");
    assert!(halted.contains("evidence"), "{halted}");
    // It takes nothing: a halted origin answers 503, and nothing is logged.
    let bob = identity("bob", 2);
    let err = node
        .api()
        .submit(&bob.account_entry(None, None, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("503") && err.contains("halted"), "{err}");
    assert_eq!(node.json("/api/v1/log").await["size"], 1);
    let ev = node.json("/api/v1/evidence").await;
    assert!(
        ev["unreadable"][0]["error"]
            .as_str()
            .unwrap()
            .contains("does not parse"),
        "{ev}"
    );
    // New evidence is not written over the unreadable record.
    let origin = node.node.origin().clone();
    let fake = pgext_node::origin::Evidence {
        origin: origin.name.clone(),
        reason: "test".into(),
        notes: ["a".into(), "b".into()],
        detected: 0,
    };
    assert!(origin.add_evidence(&fake).is_err());
    drop(origin);
    let (dir, _) = node.stop().await;
    let store = Store::open(&dir.path().join("db")).unwrap();
    assert_eq!(store.meta(META_EVIDENCE).unwrap().unwrap(), b"{not json");
}

#[tokio::test]
async fn a_missing_or_damaged_blob_is_an_error_and_an_alarm() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    let r = node
        .publish_dist(&alice, "pair", "1.0.0", "pair", "stable")
        .await;
    assert_eq!(r.index, 1);
    let d = node.json("/api/v1/dists/pair").await;
    let zip_sha = d["releases"][0]["sha256"].as_str().unwrap().to_string();
    let meta_sha = d["releases"][0]["meta_sha256"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |sha: &str| node.dir.path().join("blobs").join(&sha[..2]).join(sha);
    assert_eq!(metric(&node, "pgext_blob_faults_total").await, 0.0);

    // A damaged zip: the download is cut short, never served as the release.
    let mut zip = std::fs::read(blob(&zip_sha)).unwrap();
    let good = zip.clone();
    let n = zip.len() - 10;
    zip[n] ^= 0xff;
    std::fs::write(blob(&zip_sha), &zip).unwrap();
    // A small release is read whole and checked before it is sent: an error, never the bytes.
    let (status, body) = node.get("/dist/pair/1.0.0/pair-1.0.0.zip").await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("blob-unavailable") && body.contains("damaged"),
        "{body}"
    );
    // Pages and documents that read it fail with the blob's name.
    let (status, body) = node.get("/dist/pair/1.0.0/README.txt").await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("blob-unavailable") && body.contains("damaged"),
        "{body}"
    );
    assert!(metric(&node, "pgext_blob_faults_total").await >= 2.0);

    // A missing META: no document is made with holes.
    std::fs::write(blob(&zip_sha), &good).unwrap();
    std::fs::remove_file(blob(&meta_sha)).unwrap();
    let (status, body) = node.get("/dist/pair.json").await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("missing"), "{body}");
    let (status, _) = node.get("/dist/pair/").await;
    assert_eq!(status, 500);
    node.node.shutdown().await;
}

#[tokio::test]
async fn read_only_commands_create_and_delete_nothing() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    // A mistyped data folder: every read-only command fails and creates nothing.
    let nowhere = node.dir.path().join("mistyped");
    let mut config = pgext_node::Config::for_tests(&nowhere);
    let out = node.dir.path().join("export");
    let failures = [
        pgext_node::tools::vkey(&config).map(|_| ()),
        pgext_node::tools::reindex(&config).map(|_| ()),
        pgext_node::tools::fsck::fsck(&config).map(|_| ()),
        pgext_node::tools::export::export_pgxn(&config, &out).map(|_| ()),
    ];
    for f in failures {
        let e = format!("{:#}", f.unwrap_err());
        assert!(e.contains("not a pgext data folder"), "{e}");
    }
    assert!(!nowhere.exists() && !out.exists());

    // Beside a running node: fsck and reindex read its stores and leave a write in progress
    // (a staged blob) where it is.
    config.data = node.dir.path().to_path_buf();
    let staged = node.dir.path().join("blobs/.staging/in-progress.1");
    std::fs::write(&staged, b"half a blob").unwrap();
    let report = pgext_node::tools::fsck::fsck(&config).unwrap();
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(report.entries, 1);
    assert_eq!(pgext_node::tools::reindex(&config).unwrap(), (1, 1, 0));
    assert_eq!(
        pgext_node::tools::vkey(&config).unwrap(),
        node.vkey(),
        "the running node's key, not a new one"
    );
    assert!(staged.exists());
    node.node.shutdown().await;
}

/// A release too large to be read whole streams from disk with its hash checked as it goes: a
/// damaged one never arrives whole, and raises the alarm.
#[tokio::test]
async fn a_damaged_large_release_is_cut_short_as_it_streams() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    let mut files = pgext_tests::fixtures::dist("big", "1.0.0", "big", "stable");
    // Incompressible: SHA-256 in counter mode.
    let noise: Vec<u8> = (0..(9u32 << 20) / 32)
        .flat_map(|i| pgext_log::sha256(&i.to_be_bytes()))
        .collect();
    files.push(("data/noise.bin".into(), noise));
    node.publish_files(&alice, &files, "big-1.0.0").await;
    let d = node.json("/api/v1/dists/big").await;
    let sha = d["releases"][0]["sha256"].as_str().unwrap().to_string();
    let size = d["releases"][0]["size"].as_u64().unwrap();
    assert!(size > 8 << 20, "{size} bytes: not streamed");
    let url = format!("{}/dist/big/1.0.0/big-1.0.0.zip", node.url());
    let whole = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(pgext_log::hex(&pgext_log::sha256(&whole)), sha);
    // One byte near the end changes on disk.
    let path = node.dir.path().join("blobs").join(&sha[..2]).join(&sha);
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len() - 100;
    bytes[n] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    // The stream starts (the headers are out before the end is read), and is cut.
    let got = match reqwest::get(&url).await {
        Ok(resp) => resp.bytes().await.map(|b| b.len()),
        Err(e) => Err(e),
    };
    assert!(got.is_err(), "a damaged release arrived whole: {got:?}");
    assert!(metric(&node, "pgext_blob_faults_total").await >= 1.0);
    // A file of another size is refused before a byte is sent.
    bytes.truncate(bytes.len() - 1);
    std::fs::write(&path, &bytes).unwrap();
    let (status, body) = node.get("/dist/big/1.0.0/big-1.0.0.zip").await;
    assert_eq!(status, 500, "{}", String::from_utf8_lossy(&body));
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_beyond_the_nodes_turns_wait_then_are_answered_busy() {
    use tokio::io::AsyncWriteExt as _;
    let node = TestNode::start_with(|c| {
        c.uploads.concurrent = 1;
        c.uploads.wait_ms = 300;
    })
    .await;
    let addr = node.url().trim_start_matches("http://").to_string();
    // An upload that takes its turn and keeps it: headers, a little of a large body, then
    // nothing more for now.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/releases HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary=XYZ\r\nContent-Length: 10000000\r\n\r\n--XYZ\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Let the node take it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let form = || {
        reqwest::multipart::Form::new()
            .part("entry", reqwest::multipart::Part::bytes(b"{}".to_vec()))
    };
    let http = reqwest::Client::new();
    for path in ["/api/v1/releases", "/api/v1/builds"] {
        let started = std::time::Instant::now();
        let resp = http
            .post(format!("{}{path}", node.url()))
            .multipart(form())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "busy", "{body}");
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(300),
            "it waited its turn first"
        );
    }
    // The turn comes back when the slow upload ends: the next one is read (and judged).
    drop(slow);
    let resp = pgext_tests::eventually(10, || {
        let (http, url) = (&http, node.url());
        async move {
            let resp = http
                .post(format!("{url}/api/v1/releases"))
                .multipart(form())
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status() == 503 {
                return Err("still busy".into());
            }
            Ok(resp)
        }
    })
    .await;
    assert_eq!(resp.status(), 400);
}
