//! Federation in one process: an origin and mirrors talking libp2p on 127.0.0.1 with ports from
//! the OS. Mirrors verify, store, cosign and serve the origin's registry byte for byte, take
//! publishes for the sequencer, witness checkpoints, catch up when late or restarted, keep
//! serving when the sequencer is gone, and catch peers that serve bad bytes and forked logs.

use ed25519_dalek::SigningKey;
use pgext::api::Node as Api;
use pgext::release::{Identity, prepare_release};
use pgext_log::{
    AddCheckpoint, Checkpoint, TileHashReader, VerifierKey, consistency_proof, open_checkpoint,
};
use pgext_spec::entry::Action;
use pgext_tests::{TestNode, eventually, fixtures, identity};

const ORIGIN: &str = "origin.pgext.test/log";

/// A signed release of `dist` `version` (providing an extension of the same name) and its archive.
fn release(who: &Identity, dist: &str, version: &str) -> (pgext_spec::entry::Entry, Vec<u8>) {
    let tgz = fixtures::tar_gz(
        &format!("{dist}-{version}"),
        &fixtures::dist(dist, version, dist, "stable"),
    );
    let p = prepare_release(&tgz, None).unwrap();
    (who.sign(Action::Release(p.release)), tgz)
}

/// Registers alice on `api` and publishes `n` releases: dists `d0`…`d9`, versions `1.k.0`. Every
/// `via_every`-th goes through `via` (a mirror), the rest to the origin; ten at a time, one per
/// dist, since a dist's versions must arrive in order.
/// Returns the log size after the last.
async fn publish_many(api: &Api, via: &Api, n: usize, via_every: usize) -> u64 {
    let alice = identity("alice", 1);
    api.submit(&alice.account_entry(Some("Alice"), None, None))
        .await
        .unwrap();
    let mut last = 0;
    for group in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut set = tokio::task::JoinSet::new();
        for &i in group {
            let target = if i % via_every == 0 {
                via.clone()
            } else {
                api.clone()
            };
            let (entry, tgz) = release(&alice, &format!("d{}", i % 10), &format!("1.{}.0", i / 10));
            set.spawn(async move { target.publish(&entry, tgz, "r.tgz").await.unwrap().index });
        }
        while let Some(index) = set.join_next().await {
            last = last.max(index.unwrap());
        }
    }
    last + 1
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

/// What a mirror serves of the origin, path by path, to compare across restarts.
async fn snapshot(node: &TestNode, prefix: &str, paths: &[String]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for p in paths {
        out.push(node.get(&format!("{prefix}{p}")).await);
    }
    out
}

fn witness_of(node: &TestNode) -> VerifierKey {
    node.node.info().witness.as_ref().unwrap().parse().unwrap()
}

/// `note` with `line` as the signature of its signer, in place of any it had.
fn with_line(note: &[u8], line: &str) -> Vec<u8> {
    let signer = line.split(' ').nth(1).unwrap();
    let note = String::from_utf8_lossy(note);
    let mut out: String = note
        .split_inclusive('\n')
        .filter(|l| !l.starts_with(&format!("— {signer} ")))
        .collect();
    out.push_str(line);
    out.into_bytes()
}

/// The log text of a checkpoint note (without signatures).
fn text(note: &[u8]) -> String {
    pgext_log::Note::parse(note).unwrap().text
}

/// Paths a registry of `d0`…`d9` at `size`, with `d3` and `d0` at `version`, serves:
/// documents, files, every tile and bundle.
fn registry_paths(size: u64, version: &str) -> Vec<String> {
    let mut paths: Vec<String> = [
        "/index.json",
        "/dist/d3.json",
        "/dist/d3/VERSION/META.json",
        "/dist/d3/VERSION/d3-VERSION.zip",
        "/dist/d3/VERSION/README.txt",
        "/dist/d0/VERSION/d0-VERSION.zip",
        "/dist/d0.json",
        "/extension/d2.json",
        "/user/alice.json",
        "/stats/summary.json",
        "/api/v1/dists/d1",
        "/api/v1/dists/d1/1.0.0/docs/doc/d1",
    ]
    .iter()
    .map(|p| p.replace("VERSION", version))
    .collect();
    for t in pgext_log::tiles_for_size(size) {
        paths.push(format!("/log/{}", t.path()));
    }
    paths
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    secs: u64,
    mut check: impl FnMut() -> F,
) {
    eventually(secs, || {
        let seen = check();
        async move {
            if seen.await {
                Ok(())
            } else {
                Err(what.to_string())
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_mirrors_converge_on_two_hundred_releases() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    let mirror = |name: &'static str, peer: String| {
        let vkey = vkey.clone();
        async move { TestNode::federated(name, &[peer], &[("main", vkey)]).await }
    };
    let a = mirror("a.pgext.test/log", origin.p2p_addr()).await;
    let b = mirror("b.pgext.test/log", origin.p2p_addr()).await;
    let via_a = Api::new(&format!("{}/origins/main", a.url()));

    // Half the releases, then B restarts while it syncs, then the rest; every 5th is published
    // through mirror A, which forwards it to the sequencer.
    let api = origin.api();
    let half = publish_many(&api, &via_a, 100, 5).await;
    let b = b.restart().await;
    let alice = identity("alice", 1);
    let mut size = half;
    for i in 100..200 {
        let target = if i % 5 == 0 { &via_a } else { &api };
        let (entry, tgz) = release(&alice, &format!("d{}", i % 10), &format!("1.{}.0", i / 10));
        size = target.publish(&entry, tgz, "r.tgz").await.unwrap().index + 1;
    }
    assert_eq!(size, 201, "one account and 200 releases");

    // A publish refused by the sequencer gets the same answer through a mirror: other bytes
    // for a published version.
    let mut files = fixtures::dist("d3", "1.4.0", "d3", "stable");
    files.push(("CHANGES".into(), b"changed after the fact\n".to_vec()));
    let tgz = fixtures::tar_gz("d3-1.4.0", &files);
    let dup = alice.sign(Action::Release(
        prepare_release(&tgz, None).unwrap().release,
    ));
    let direct = post_release(&origin.url(), &dup, tgz.clone()).await;
    let forwarded = post_release(&format!("{}/origins/main", a.url()), &dup, tgz).await;
    assert_eq!(direct.0, 409, "{}", String::from_utf8_lossy(&direct.1));
    assert_eq!(direct, forwarded);

    // A mirror that joins late, knowing only mirror A, catches up from it.
    let c = mirror("c.pgext.test/log", a.p2p_addr()).await;
    for m in [&a, &b, &c] {
        m.wait_size("/origins/main", size, 120).await;
    }

    // All converge on one checkpoint and serve the same bytes.
    let paths = registry_paths(size, "1.4.0");
    let (_, origin_note) = origin.get("/log/checkpoint").await;
    for m in [&a, &b, &c] {
        assert_same(&origin, m, &paths).await;
        let (_, note) = m.get("/origins/main/log/checkpoint").await;
        assert_eq!(text(&note), text(&origin_note));
        // Each mirror's cosignature verifies.
        let w = witness_of(m);
        let signed = open_checkpoint(&note, &log_key, std::slice::from_ref(&w)).unwrap();
        assert!(signed.note.verified_by(&w).is_some(), "mirror cosignature");
        let info = m.json("/api/v1/origins").await;
        assert_eq!(info["origins"][1]["role"], "mirror");
        assert_eq!(info["origins"][1]["size"], size);
    }
    // The origin collects every mirror's cosignature from gossip.
    let witnesses = [witness_of(&a), witness_of(&b), witness_of(&c)];
    wait_until("the origin collects three cosignatures", 30, || async {
        let (_, note) = origin.get("/log/checkpoint").await;
        let signed = open_checkpoint(&note, &log_key, &witnesses).unwrap();
        witnesses
            .iter()
            .all(|w| signed.note.verified_by(w).is_some())
    })
    .await;

    // With the sequencer stopped, mirrors keep serving verified downloads; publishing through
    // them says the sequencer cannot be reached.
    let mut snapshots = Vec::new();
    for m in [&a, &b, &c] {
        snapshots.push(snapshot(m, "/origins/main", &paths).await);
    }
    origin.node.shutdown().await;
    for m in [&a, &b, &c] {
        let zip = m.get("/origins/main/dist/d3/1.4.0/d3-1.4.0.zip").await;
        assert_eq!(zip.0, 200);
        let dist = m.json("/origins/main/api/v1/dists/d3").await;
        let want = dist["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == "1.4.0")
            .unwrap()["sha256"]
            .clone();
        assert_eq!(
            pgext_log::hex(&pgext_log::sha256(&zip.1)),
            want.as_str().unwrap()
        );
    }
    let (entry, tgz) = release(&alice, "d1", "9.0.0");
    let refused = post_release(&format!("{}/origins/main", b.url()), &entry, tgz).await;
    assert_eq!(refused.0, 503, "{}", String::from_utf8_lossy(&refused.1));
    assert!(String::from_utf8_lossy(&refused.1).contains("sequencer-unreachable"));

    // Everything restarted: the same state, byte for byte.
    let mut restarted = Vec::new();
    for m in [a, b, c] {
        restarted.push(m.restart().await);
    }
    for (m, before) in restarted.iter().zip(&snapshots) {
        let after = snapshot(m, "/origins/main", &paths).await;
        for ((p, x), y) in paths.iter().zip(before).zip(&after) {
            assert_eq!(x, y, "{p} changed across the restart");
        }
    }
    for m in restarted {
        m.node.shutdown().await;
    }
}

/// POSTs a release form, returning status and body.
async fn post_release(
    base: &str,
    entry: &pgext_spec::entry::Entry,
    archive: Vec<u8>,
) -> (u16, Vec<u8>) {
    let form = reqwest::multipart::Form::new()
        .part("entry", reqwest::multipart::Part::bytes(entry.to_bytes()))
        .part(
            "archive",
            reqwest::multipart::Part::bytes(archive).file_name("r.tgz"),
        );
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/releases"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// POSTs an add-checkpoint request; returns status, content type and body.
async fn add_checkpoint(node: &TestNode, body: Vec<u8>) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/add-checkpoint", node.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status().as_u16(), ct, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_is_a_tlog_witness() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    let m = TestNode::federated(
        "m.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    let api = origin.api();
    let size = publish_many(&api, &api, 3, 1000).await;
    m.wait_size("/origins/main", size, 60).await;
    let (_, note) = origin.get("/log/checkpoint").await;
    let req = |old: u64, proof: Vec<pgext_log::Hash>, checkpoint: Vec<u8>| {
        AddCheckpoint {
            old,
            proof,
            checkpoint,
        }
        .to_bytes()
    };

    // 409 tells a log what the witness last cosigned, in text/x.tlog.size.
    let (status, ct, body) = add_checkpoint(&m, req(0, vec![], note.clone())).await;
    assert_eq!(
        (status, ct.as_str(), body.as_str()),
        (
            409,
            "text/x.tlog.size",
            &*format!(
                "{size}
"
            )
        )
    );
    // The same checkpoint at the right size: the witness's cosignature, which verifies.
    let (status, _, line) = add_checkpoint(&m, req(size, vec![], note.clone())).await;
    assert_eq!(status, 200, "{line}");
    let cosigned = with_line(&note, &line);
    let w = witness_of(&m);
    let signed = open_checkpoint(&cosigned, &log_key, std::slice::from_ref(&w)).unwrap();
    assert!(signed.note.verified_by(&w).is_some());
    // 404 for a log it does not mirror, 403 for a checkpoint the log's key did not sign, 400
    // for a body that is not a request.
    let stranger = TestNode::federated("x.pgext.test/log", &[], &[]).await;
    stranger
        .api()
        .submit(&identity("zed", 9).account_entry(None, None, None))
        .await
        .unwrap();
    let (_, other) = stranger.get("/log/checkpoint").await;
    assert_eq!(add_checkpoint(&m, req(0, vec![], other)).await.0, 404);
    let forger =
        pgext_log::SignerKey::from_seed(ORIGIN, pgext_log::KeyType::Ed25519, &[5; 32]).unwrap();
    let forged = pgext_log::sign(&text(&note), &[&forger], 0).unwrap();
    assert_eq!(
        add_checkpoint(&m, req(size, vec![], forged.into_bytes()))
            .await
            .0,
        403
    );
    assert_eq!(add_checkpoint(&m, b"hello".to_vec()).await.0, 400);

    // A larger checkpoint with its consistency proof is cosigned once verified; a bent proof is
    // refused. The mirror also follows gossip, so a 409 means it got there first: ask again
    // from the size it reports.
    let alice = identity("alice", 1);
    let mut cosigned_with_proof = false;
    for round in 0..5u64 {
        let (entry, tgz) = release(&alice, "late", &format!("2.{round}.0"));
        let new_size = api.publish(&entry, tgz, "r.tgz").await.unwrap().index + 1;
        let (_, new_note) = origin.get("/log/checkpoint").await;
        let old = m.node.mirrors()[0].size();
        if old == new_size {
            continue;
        }
        let store = origin.node.origin().store().clone();
        let mut proof = consistency_proof(
            old,
            new_size,
            &TileHashReader::new(new_size, store.as_ref()),
        )
        .unwrap();
        let good = proof.clone();
        proof[0] = pgext_log::Hash::empty_root();
        let (bent, _, why) = add_checkpoint(&m, req(old, proof, new_note.clone())).await;
        let (status, _, line) = add_checkpoint(&m, req(old, good, new_note.clone())).await;
        if bent == 409 || status == 409 {
            continue;
        }
        assert_eq!(bent, 422, "{why}");
        assert_eq!(status, 200, "{line}");
        let cosigned = with_line(&new_note, &line);
        assert!(
            open_checkpoint(&cosigned, &log_key, std::slice::from_ref(&w))
                .unwrap()
                .note
                .verified_by(&w)
                .is_some()
        );
        cosigned_with_proof = true;
        break;
    }

    assert!(cosigned_with_proof, "the mirror always got there first");

    // Over libp2p the same request gets the same answer.
    let fed = origin.node.federation().unwrap();
    let peer: pgext_node::p2p::PeerId = m.node.info().peer_id.as_ref().unwrap().parse().unwrap();
    let resp = fed
        .p2p()
        .witness(
            peer,
            pgext_node::p2p::wire::WitnessRequest {
                body: req(0, vec![], note).into(),
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(
            resp,
            pgext_node::p2p::wire::WitnessResponse::Answer { status: 409, .. }
        ),
        "{resp:?}"
    );
    for n in [origin, m, stranger] {
        n.node.shutdown().await;
    }
}

/// `n` accounts, each with its own key, submitted at once.
async fn register_many(api: &Api, n: u32) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let who = Identity {
            user: format!("user{i}"),
            key: SigningKey::from_bytes(&seed),
        };
        let api = api.clone();
        set.spawn(async move {
            api.submit(&who.account_entry(None, None, None))
                .await
                .unwrap()
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

fn score_of(info: &serde_json::Value, peer: &str) -> i64 {
    info["peer_scores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == peer)
        .and_then(|p| p["score"].as_i64())
        .unwrap_or(0)
}

fn peer_id(node: &TestNode) -> String {
    node.node.info().peer_id.as_ref().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_serving_tampered_bytes_are_caught_and_demoted() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let api = origin.api();
    // Three bundles of entries (at least one per holder a new mirror can know of when it first
    // fetches), and a few releases with blobs.
    register_many(&api, 520).await;
    let size = publish_many(&api, &api, 4, 1000).await;
    let a = TestNode::federated(
        "a.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    let b = TestNode::federated(
        "b.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    a.wait_size("/origins/main", size, 60).await;
    b.wait_size("/origins/main", size, 60).await;

    // A's disk goes bad under it: one byte of every entry bundle and of a level-0 hash tile.
    let store = a.node.mirrors()[0].store().clone();
    let mut bad = Vec::new();
    for index in 0..size.div_ceil(256) {
        let mut data = store
            .tile(pgext_log::TileKind::Entries, index)
            .unwrap()
            .unwrap();
        data[20] ^= 1;
        bad.push((pgext_log::Tile::entries(index, 256), data));
    }
    let mut hashes = store
        .tile(pgext_log::TileKind::Hashes(0), 0)
        .unwrap()
        .unwrap();
    hashes[0] ^= 1;
    bad.push((
        pgext_log::Tile {
            kind: pgext_log::TileKind::Hashes(0),
            index: 0,
            width: 256,
        },
        hashes,
    ));
    store.commit(&bad, &[]).unwrap();
    // Every blob of B (zips and METAs) is flipped on disk.
    let mut flipped = 0;
    let mut dirs = vec![b.dir.path().join("blobs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                let mut bytes = std::fs::read(e.path()).unwrap();
                let at = bytes.len() / 2;
                bytes[at] ^= 1;
                std::fs::write(e.path(), bytes).unwrap();
                flipped += 1;
            }
        }
    }
    assert!(flipped >= 8, "{flipped} blobs");

    // A new mirror that knows only B: B's blobs do not hash to their entries, so B is demoted
    // and the blobs come from elsewhere (each blob is asked of another peer first, so B is
    // asked for some).
    let f = TestNode::federated(
        "f.pgext.test/log",
        &[b.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    f.wait_size("/origins/main", size, 60).await;
    assert_same(&origin, &f, &registry_paths(size, "1.0.0")).await;
    let info = f.json("/api/v1/origins").await;
    assert!(score_of(&info, &peer_id(&b)) <= -100, "{info}");
    assert!(score_of(&info, &peer_id(&origin)) > -100, "{info}");
    b.node.shutdown().await;

    // B stops, so a new mirror that knows only A has two holders to share the three bundles
    // among and asks A for at least one. A's bundles do not make the signed tree, so A is
    // demoted and the entries come from the origin, found through A. Hash tiles are never
    // fetched: a mirror computes its own from the entries, so A's bad tile cannot reach it.
    let e = TestNode::federated(
        "e.pgext.test/log",
        &[a.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    e.wait_size("/origins/main", size, 60).await;
    assert_same(&origin, &e, &registry_paths(size, "1.0.0")).await;
    let info = e.json("/api/v1/origins").await;
    assert!(score_of(&info, &peer_id(&a)) <= -100, "{info}");
    assert!(score_of(&info, &peer_id(&origin)) > -100, "{info}");

    for n in [origin, a, e, f] {
        n.node.shutdown().await;
    }
}

/// An origin holding alice's account, forked: two sequencers of one log key and one first
/// entry. Returns both, the log's verifier key and its parsed form.
async fn forked_origin() -> (TestNode, TestNode, String, VerifierKey) {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    origin
        .api()
        .submit(&identity("alice", 1).account_entry(None, None, None))
        .await
        .unwrap();
    let (origin, fork) = origin.fork().await;
    (origin, fork, vkey, log_key)
}

/// The first evidence `node` serves, waiting up to 60 s for it.
async fn first_evidence(node: &TestNode) -> serde_json::Value {
    eventually(60, || async {
        let doc = node.json("/api/v1/evidence").await;
        match doc["evidence"].as_array().and_then(|a| a.first()) {
            Some(ev) => Ok(ev.clone()),
            None => Err(format!("the node did not catch the fork: {doc}")),
        }
    })
    .await
}

/// The two checkpoints of a piece of evidence, each opened with the log key.
fn evidence_notes(evidence: &serde_json::Value, log_key: &VerifierKey) -> [Checkpoint; 2] {
    [0, 1].map(|i| {
        open_checkpoint(
            evidence["notes"][i].as_str().unwrap().as_bytes(),
            log_key,
            &[],
        )
        .unwrap()
        .checkpoint
    })
}

/// A mirror at size 2 of one branch hears of size 3 of the other: no peer's entries extend its
/// tree to that checkpoint, and the fork's own entries show it is another tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_first_seen_at_a_larger_size_is_caught() {
    let (origin, fork, vkey, log_key) = forked_origin().await;
    origin
        .api()
        .submit(&identity("bob", 2).account_entry(None, None, None))
        .await
        .unwrap();
    for (user, seed) in [("carol", 3), ("dave", 4)] {
        fork.api()
            .submit(&identity(user, seed).account_entry(None, None, None))
            .await
            .unwrap();
    }
    let mirror = TestNode::federated(
        "m.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    mirror.wait_size("/origins/main", 2, 60).await;
    let fed = mirror.node.federation().unwrap();
    fed.p2p()
        .send(pgext_node::p2p::Command::Dial(
            fork.p2p_addr().parse().unwrap(),
        ))
        .await;

    let evidence = first_evidence(&mirror).await;
    let [a, b] = evidence_notes(&evidence, &log_key);
    assert_eq!([a.size, b.size], [2, 3], "{evidence}");
    // It stays at the size it verified, and it is halted.
    let info = mirror.json("/api/v1/origins").await;
    assert_eq!(info["origins"][1]["size"], 2, "{info}");
    assert!(info["origins"][1]["halted"].is_string(), "{info}");
    for n in [origin, fork, mirror] {
        n.node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_sequencer_is_caught() {
    // Same key, same first entry; then each sequences a different second entry.
    let (origin, fork, vkey, log_key) = forked_origin().await;
    let mirror = TestNode::federated(
        "m.pgext.test/log",
        &[origin.p2p_addr(), fork.p2p_addr()],
        &[("main", vkey.clone())],
    )
    .await;
    // A second mirror that knows only the fork.
    let second = TestNode::federated(
        "n.pgext.test/log",
        &[fork.p2p_addr()],
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

    let evidence = first_evidence(&mirror).await;
    // The evidence proves itself: two checkpoints signed by the log key that do not fit one
    // tree (one size, two roots).
    let [a, b] = evidence_notes(&evidence, &log_key);
    assert_eq!(a.size, b.size);
    assert_ne!(a.root, b.root);
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
    // Every node learns of it, both sequencers included, and the sequencers take no more.
    for n in [&second, &origin, &fork] {
        wait_until("every node holds the evidence", 60, || async {
            !n.json("/api/v1/evidence").await["evidence"]
                .as_array()
                .unwrap()
                .is_empty()
        })
        .await;
    }
    for n in [&origin, &fork] {
        let err = n
            .api()
            .submit(&identity("dave", 4).account_entry(None, None, None))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("halted"), "{err}");
    }
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
    for n in [origin, fork, mirror, second] {
        n.node.shutdown().await;
    }
}

/// Every public log a node holds is at C2SP's monitoring and mirror path,
/// `/monitor/<hex SHA-256 of the origin>/`: the origin's own log on its node, the mirrored log
/// on the mirror, each checkpoint with the mirror's cosignature once it has cosigned, and tiles
/// byte for byte as at the log's own paths; unknown ids and private logs are 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_served_at_the_monitoring_path() {
    let origin_name = "mon.pgext.test/log";
    let (origin, mirror, _vkey, _) = TestNode::witnessed(origin_name).await;
    let witness = "m.pgext.test/witness";
    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    origin
        .publish_dist(&alice, "monitored", "1.0.0", "monitored", "stable")
        .await;
    let cosigned = origin.wait_cosigned(2, witness).await;
    mirror.wait_size("/origins/main", 2, 60).await;
    let id = pgext_node::serve::monitor::origin_id(origin_name);
    let (status, body) = origin.get(&format!("/monitor/{id}/checkpoint")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with(&format!("{origin_name}\n2\n")), "{text}");
    assert!(text.contains(&format!("— {witness} ")), "{text}");
    assert_eq!(text, cosigned);
    let on_mirror = pgext_tests::eventually(30, || async {
        let (status, body) = mirror.get(&format!("/monitor/{id}/checkpoint")).await;
        let text = String::from_utf8_lossy(&body).to_string();
        if status == 200 && text.starts_with(&format!("{origin_name}\n2\n")) {
            Ok(text)
        } else {
            Err(format!("{status} {text}"))
        }
    })
    .await;
    assert!(
        on_mirror.contains(&format!("— {witness} ")),
        "the mirror's own cosignature: {on_mirror}"
    );
    let (_, tile) = mirror.get(&format!("/monitor/{id}/tile/0/000.p/2")).await;
    let (_, own) = origin.get("/log/tile/0/000.p/2").await;
    assert_eq!(tile.len(), 64);
    assert_eq!(tile, own);
    let (_, bundle) = mirror
        .get(&format!("/monitor/{id}/tile/entries/000.p/2"))
        .await;
    let (_, own_bundle) = origin.get("/log/tile/entries/000.p/2").await;
    assert_eq!(bundle, own_bundle);
    let (status, body) = mirror
        .get(&format!("/monitor/{}/checkpoint", "ab".repeat(32)))
        .await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("\"errors\""));
}
