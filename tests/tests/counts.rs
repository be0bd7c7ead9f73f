//! Download counts across mirrors (`spec/counts.md`): two mirrors count the downloads they
//! serve, sign a statement each period and gossip it; a third mirror that knows them adds
//! them up, per mirror and in all, in the API, the site and PGXN's stats. A statement from a
//! node it does not know, one claiming another node's key, one out of order, or one counting
//! a release the log does not have is refused.

use pgext_log::SignerKey;
use pgext_node::config::{Access, MirrorConfig};
use pgext_spec::counts::{Count, Counted};
use pgext_tests::{TestNode, eventually, identity};
use serde_json::Value;

const ORIGIN: &str = "origin.pgext.test/log";

async fn node(
    name: &str,
    peers: Vec<String>,
    mirror_of: Option<String>,
    known: Vec<String>,
) -> TestNode {
    let name = name.to_string();
    TestNode::start_with(move |c| {
        c.origin = Some(name.clone());
        c.witness_name = Some(format!("{}/witness", name.trim_end_matches("/log")));
        c.p2p.enabled = true;
        c.p2p.peers = peers;
        if let Some(vkey) = mirror_of {
            c.mirrors = vec![MirrorConfig {
                name: "main".into(),
                vkey,
                access: Access::Public,
            }];
        }
        c.counts.period_secs = 1;
        c.counts.nodes = known;
    })
    .await
}

fn witness(n: &TestNode) -> String {
    n.node.info().witness.clone().expect("a cosigner key")
}

const ZIP: &str = "/origins/main/dist/counted/1.0.0/counted-1.0.0.zip";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_from_two_mirrors_add_up_on_a_third() {
    let origin = node(ORIGIN, vec![], None, vec![]).await;
    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    origin
        .publish_dist(&alice, "counted", "1.0.0", "counted", "stable")
        .await;
    let vkey = origin.vkey();
    let m1 = node(
        "m1.pgext.test/log",
        vec![origin.p2p_addr()],
        Some(vkey.clone()),
        vec![],
    )
    .await;
    let m2 = node(
        "m2.pgext.test/log",
        vec![origin.p2p_addr()],
        Some(vkey.clone()),
        vec![],
    )
    .await;
    let (w1, w2) = (witness(&m1), witness(&m2));
    let m3 = node(
        "m3.pgext.test/log",
        vec![origin.p2p_addr()],
        Some(vkey.clone()),
        vec![w1.clone(), w2.clone()],
    )
    .await;
    for m in [&m1, &m2, &m3] {
        m.wait_size("/origins/main", 2, 60).await;
    }

    // 3 downloads through m1 (the second from its cache), 2 through m2, 1 from the origin,
    // whose statements m3 does not take.
    for (n, times) in [(&m1, 3), (&m2, 2)] {
        for _ in 0..times {
            assert_eq!(n.get(ZIP).await.0, 200);
        }
    }
    assert_eq!(
        origin.get("/dist/counted/1.0.0/counted-1.0.0.zip").await.0,
        200
    );
    assert_eq!(
        m1.get("/origins/main/dist/counted/1.0.0/META.json").await.0,
        200
    );

    let per_node = eventually(60, || async {
        let doc = m3
            .json("/origins/main/api/v1/dists/counted/1.0.0/downloads")
            .await;
        if doc["total"] == 5 {
            Ok(doc)
        } else {
            Err(doc.to_string())
        }
    })
    .await;
    assert_eq!(per_node["nodes"][w1.as_str()], 3, "{per_node}");
    assert_eq!(per_node["nodes"][w2.as_str()], 2, "{per_node}");
    assert_eq!(
        per_node["nodes"].as_object().unwrap().len(),
        2,
        "{per_node}"
    );
    let dist = m3.json("/origins/main/api/v1/dists/counted").await;
    assert_eq!(dist["releases"][0]["downloads"], 5);
    let all = m3.json("/origins/main/api/v1/downloads").await;
    assert_eq!(all["total"], 5, "{all}");
    let summary = m3.json("/origins/main/stats/summary.json").await;
    assert_eq!(summary["downloads"], 5, "{summary}");
    let recent = m3.json("/origins/main/stats/dist.json").await;
    assert_eq!(recent["recent"][0]["downloads"], 5, "{recent}");
    let page = String::from_utf8(m3.get("/origins/main/dist/counted/1.0.0/").await.1).unwrap();
    assert!(page.contains("3 through m1.pgext.test/witness"), "{page}");
    // m1 takes its own statements only: it knows no other node.
    let own = m1.json("/origins/main/api/v1/downloads").await;
    assert_eq!(
        (
            own["total"].as_u64(),
            own["nodes"].as_array().unwrap().len()
        ),
        (Some(3), 1),
        "{own}"
    );

    // Statements m3 refuses, each with its rule, and nothing counted of them.
    let main = m3.node.mirrors()[0].clone();
    let key1 = SignerKey::from_private_text(
        &std::fs::read_to_string(m1.dir.path().join("witness.key")).unwrap(),
    )
    .unwrap();
    let (seq, to) = main.last_counted(&w1);
    let statement = |node: &str, seq: u64, from: u64, dist: &str, key: &SignerKey| {
        Counted {
            v: 1,
            origin: ORIGIN.into(),
            node: node.into(),
            seq,
            from,
            to: from + 10,
            counts: vec![Count {
                dist: dist.into(),
                version: "1.0.0".into(),
                downloads: 1000,
            }],
        }
        .sign(key.ed25519().unwrap())
        .to_bytes()
    };
    let known: Vec<pgext_log::VerifierKey> =
        [&w1, &w2].iter().map(|k| k.parse().unwrap()).collect();
    let stranger = SignerKey::from_seed(
        "x.pgext.test/witness",
        pgext_log::KeyType::Cosignature,
        &[9; 32],
    )
    .unwrap();
    let refusal = |bytes: Vec<u8>| match main.record_counts(&bytes, &known) {
        Err(pgext_node::origin::Error::Refused { code, .. }) => code.to_string(),
        other => panic!("{other:?}"),
    };
    let stranger_vkey = stranger.verifier().to_string();
    assert_eq!(
        refusal(statement(&stranger_vkey, 1, 0, "counted", &stranger)),
        "unknown-node"
    );
    // Another key cannot speak for m1.
    assert_eq!(
        refusal(statement(&w1, seq + 1, to, "counted", &stranger)),
        "bad-signature"
    );
    assert_eq!(
        refusal(statement(&w1, seq + 2, to, "counted", &key1)),
        "counts-order"
    );
    assert_eq!(
        refusal(statement(&w1, seq + 1, to + 5, "counted", &key1)),
        "counts-order"
    );
    assert_eq!(
        refusal(statement(&w1, seq + 1, to, "nosuch", &key1)),
        "unknown-release"
    );
    let after: Value = m3
        .json("/origins/main/api/v1/dists/counted/1.0.0/downloads")
        .await;
    assert_eq!(after["total"], 5, "{after}");
    // The next statement in m1's order is taken.
    assert!(
        main.record_counts(&statement(&w1, seq + 1, to, "counted", &key1), &known)
            .unwrap()
    );
    assert_eq!(
        m3.json("/origins/main/api/v1/dists/counted/1.0.0/downloads")
            .await["total"],
        1005
    );

    for n in [m1, m2, m3, origin] {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_its_own_counts_what_it_serves() {
    let node = TestNode::start_with(|c| c.counts.period_secs = 1).await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    node.publish_dist(&alice, "counted", "1.0.0", "counted", "stable")
        .await;
    // Kept by the document cache before any statement: it must not show 0 after one.
    assert_eq!(node.json("/stats/summary.json").await["downloads"], 0);
    for _ in 0..2 {
        assert_eq!(
            node.get("/dist/counted/1.0.0/counted-1.0.0.zip").await.0,
            200
        );
    }
    // Neither a HEAD nor a missing release counts.
    let head = reqwest::Client::new()
        .head(format!(
            "{}/dist/counted/1.0.0/counted-1.0.0.zip",
            node.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        node.get("/dist/counted/9.9.9/counted-9.9.9.zip").await.0,
        404
    );
    eventually(30, || async {
        let doc = node.json("/api/v1/dists/counted/1.0.0/downloads").await;
        if doc["total"] == 2 {
            Ok(())
        } else {
            Err(doc.to_string())
        }
    })
    .await;
    assert_eq!(node.json("/stats/summary.json").await["downloads"], 2);
    let nodes = node.json("/api/v1/downloads").await;
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 1, "{nodes}");
    // Counts survive a restart: statements are stored before they count.
    let node = node.restart().await;
    let doc = node.json("/api/v1/dists/counted/1.0.0/downloads").await;
    assert_eq!(doc["total"], 2, "{doc}");
    node.node.shutdown().await;
}
