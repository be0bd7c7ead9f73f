//! Federation in one process: an origin and mirrors talking libp2p on 127.0.0.1 with ports from
//! the OS. Mirrors verify, store, cosign and serve the origin's registry byte for byte; a
//! mirror that joins late catches up from another mirror; a restarted mirror keeps its state.

use pgext::release::prepare_release;
use pgext_log::{VerifierKey, open_checkpoint};
use pgext_spec::entry::Action;
use pgext_tests::{TestNode, fixtures, identity};

const ORIGIN: &str = "origin.pgext.test/log";

/// Registers alice and publishes `n` releases of `pair` and one of `widget`.
async fn publish(node: &TestNode, n: usize) -> u64 {
    let api = node.api();
    let alice = identity("alice", 1);
    api.submit(&alice.account_entry(Some("Alice"), None, None))
        .await
        .unwrap();
    for i in 0..n {
        let version = format!("1.{i}.0");
        let tgz = fixtures::tar_gz(
            &format!("pair-{version}"),
            &fixtures::dist("pair", &version, "pair", "stable"),
        );
        let p = prepare_release(&tgz, None).unwrap();
        api.publish(&alice.sign(Action::Release(p.release)), tgz, "p.tgz")
            .await
            .unwrap();
    }
    let tgz = fixtures::tar_gz(
        "widget-0.2.5",
        &fixtures::dist("widget", "0.2.5", "gizmo", "testing"),
    );
    let p = prepare_release(&tgz, None).unwrap();
    let r = api
        .publish(&alice.sign(Action::Release(p.release)), tgz, "w.tgz")
        .await
        .unwrap();
    r.index + 1
}

/// The same bytes at `path` on the origin and below `/origins/main` on a mirror.
async fn assert_same(origin: &TestNode, mirror: &TestNode, paths: &[String]) {
    for path in paths {
        let (s1, b1) = origin.get(path).await;
        let (s2, b2) = mirror.get(&format!("/origins/main{path}")).await;
        assert_eq!((s1, s2), (200, 200), "{path}");
        assert_eq!(b1, b2, "{path} differs");
    }
}

fn witness_of(node: &TestNode) -> VerifierKey {
    node.node
        .shared()
        .node
        .witness
        .get()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_verify_cosign_and_serve() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    let a = TestNode::federated(
        "a.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    let size = publish(&origin, 12).await;
    let b = TestNode::federated(
        "b.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    a.wait_size("/origins/main", size, 60).await;
    b.wait_size("/origins/main", size, 60).await;

    // Byte for byte: documents, files, the log's tiles and bundles.
    let mut paths: Vec<String> = [
        "/index.json",
        "/dist/pair.json",
        "/dist/pair/1.3.0/META.json",
        "/dist/pair/1.3.0/pair-1.3.0.zip",
        "/dist/pair/1.3.0/README.txt",
        "/dist/widget.json",
        "/extension/gizmo.json",
        "/user/alice.json",
        "/stats/summary.json",
        "/api/v1/dists/pair",
        "/api/v1/dists/pair/1.0.0/docs/doc/pair",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    for t in pgext_log::tiles_for_size(size) {
        paths.push(format!("/log/{}", t.path()));
    }
    assert_same(&origin, &a, &paths).await;
    assert_same(&origin, &b, &paths).await;

    // Each mirror serves the origin's checkpoint with its own cosignature.
    for m in [&a, &b] {
        let (_, note) = m.get("/origins/main/log/checkpoint").await;
        let w = witness_of(m);
        let signed = open_checkpoint(&note, &log_key, std::slice::from_ref(&w)).unwrap();
        assert_eq!(signed.checkpoint.size, size);
        assert!(signed.note.verified_by(&w).is_some(), "mirror cosignature");
        let info = m.json("/api/v1/origins").await;
        assert_eq!(info["origins"][1]["role"], "mirror");
        assert_eq!(info["origins"][1]["size"], size);
    }
    // The origin collects both cosignatures from gossip.
    let (wa, wb) = (witness_of(&a), witness_of(&b));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, note) = origin.get("/log/checkpoint").await;
        let signed = open_checkpoint(&note, &log_key, &[wa.clone(), wb.clone()]).unwrap();
        if signed.note.verified_by(&wa).is_some() && signed.note.verified_by(&wb).is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "origin did not collect both cosignatures: {}",
            String::from_utf8_lossy(&note)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // A mirror that only knows mirror A, started late, catches up from it.
    let c = TestNode::federated(
        "c.pgext.test/log",
        &[a.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    c.wait_size("/origins/main", size, 60).await;
    assert_same(&origin, &c, &paths).await;

    // More releases reach every mirror; a restarted mirror keeps what it verified.
    let api = origin.api();
    let alice = identity("alice", 1);
    let tgz = fixtures::tar_gz(
        "pair-2.0.0",
        &fixtures::dist("pair", "2.0.0", "pair", "stable"),
    );
    let p = prepare_release(&tgz, None).unwrap();
    let r = api
        .publish(&alice.sign(Action::Release(p.release)), tgz, "p.tgz")
        .await
        .unwrap();
    let size2 = r.index + 1;
    for m in [&a, &b, &c] {
        m.wait_size("/origins/main", size2, 60).await;
    }
    let (_, before) = b.get("/origins/main/log/checkpoint").await;
    let b = b.restart().await;
    let (status, after) = b.get("/origins/main/log/checkpoint").await;
    assert_eq!(status, 200);
    // The same checkpoint with every signature it had (more cosignatures may have arrived).
    let (before, after) = (
        pgext_log::Note::parse(&before).unwrap(),
        pgext_log::Note::parse(&after).unwrap(),
    );
    assert_eq!(before.text, after.text);
    for sig in &before.signatures {
        assert!(
            after.signatures.contains(sig),
            "{} lost on restart",
            sig.name
        );
    }
    assert_same(&origin, &b, &["/dist/pair.json".to_string()]).await;

    for n in [origin, a, b, c] {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_sequencer_is_caught() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    origin
        .api()
        .submit(&identity("alice", 1).account_entry(None, None, None))
        .await
        .unwrap();
    // Same key, same first entry; then each sequences a different second entry.
    let (origin, fork) = origin.fork().await;
    let mirror = TestNode::federated(
        "m.pgext.test/log",
        &[origin.p2p_addr(), fork.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    origin
        .api()
        .submit(&identity("bob", 2).account_entry(None, None, None))
        .await
        .unwrap();
    fork.api()
        .submit(&identity("carol", 3).account_entry(None, None, None))
        .await
        .unwrap();

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let evidence = loop {
        let doc = mirror.json("/api/v1/evidence").await;
        if let Some(ev) = doc["evidence"].as_array().and_then(|a| a.first()).cloned() {
            break ev;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mirror did not catch the fork"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The evidence proves itself: two checkpoints signed by the log key that do not fit one
    // tree (one size, two roots).
    let a = open_checkpoint(
        evidence["notes"][0].as_str().unwrap().as_bytes(),
        &log_key,
        &[],
    )
    .unwrap();
    let b = open_checkpoint(
        evidence["notes"][1].as_str().unwrap().as_bytes(),
        &log_key,
        &[],
    )
    .unwrap();
    assert_eq!(a.checkpoint.size, b.checkpoint.size);
    assert_ne!(a.checkpoint.root, b.checkpoint.root);
    assert_eq!(evidence["origin"], ORIGIN);
    // The origin is halted here, and the alarm is in the metrics.
    let info = mirror.json("/api/v1/origins").await;
    assert!(info["origins"][1]["halted"].is_string(), "{info}");
    let (_, metrics) = mirror.get("/metrics").await;
    assert!(
        String::from_utf8_lossy(&metrics).contains("pgext_split_views_total 1"),
        "{}",
        String::from_utf8_lossy(&metrics)
    );
    // It survives a restart, and the origin still does not advance there.
    let mirror = mirror.restart().await;
    let info = mirror.json("/api/v1/origins").await;
    assert!(info["origins"][1]["halted"].is_string());
    assert_eq!(
        mirror.json("/api/v1/evidence").await["evidence"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    for n in [origin, fork, mirror] {
        n.node.shutdown().await;
    }
}
