//! C2SP tlog-mirror (issue 23, part 4): a mirror client written from the specs alone
//! (`tests/tools/tlog_mirror.py`, whose SUBTREE_PROOF matches the Merkle Tree Certificates
//! draft's published vector) reads a log over its tiles and uploads it to a mirror node that
//! has no peer to fetch it from: `add-checkpoint` sets the pending checkpoint, `add-entries`
//! uploads packages (in two requests, gzip-compressed, then from an unaligned start), and the
//! answer is the mirror's cosignature, which then sits in what the mirror serves. Each refusal
//! the spec names is met with its status and nothing is kept: an unknown log, no pending
//! checkpoint, an unknown `upload_end`, a start past the next entry, a bent entry, a package cut
//! short. A restart loses only what was pending.

use std::process::Command;

use tokio::io::AsyncWriteExt;

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_log::{VerifierKey, open_checkpoint};
use pgext_tests::{TestNode, tools_dir};

const ORIGIN: &str = "up.pgext.test/log";
const MIRROR: &str = "tm.pgext.test/log";

/// Runs the second implementation; the body it wrote.
fn tool(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("body");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/tlog_mirror.py");
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    // The output file goes after the positional arguments of each mode.
    let at = if args[0] == "checkpoint" { 3 } else { 4 };
    full.insert(at, out.display().to_string());
    let run = Command::new(tools_dir().join("venv/bin/python"))
        .arg(&script)
        .args(&full)
        .output()
        .expect("the tools venv's python (scripts/bootstrap)");
    assert!(
        run.status.success(),
        "tlog_mirror.py {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(out).unwrap()
}

/// Posts to the mirror: status, content type, body.
async fn post(url: &str, path: &str, body: Vec<u8>, gzip: bool) -> (u16, String, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("content-type", "application/octet-stream")
        .body(body);
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, resp.text().await.unwrap())
}

async fn register_many(node: &TestNode, from: u16, to: u16) {
    let mut set = tokio::task::JoinSet::new();
    for i in from..to {
        let api = node.api();
        let mut seed = [7u8; 32];
        seed[..2].copy_from_slice(&i.to_be_bytes());
        let who = Identity {
            user: format!("user{i}"),
            key: SigningKey::from_bytes(&seed),
        };
        set.spawn(async move { api.submit(&who.account_entry(None, None, None)).await });
        if set.len() >= 32 {
            set.join_next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
}

async fn size_of(node: &TestNode, path: &str) -> u64 {
    let (_, note) = node.get(path).await;
    String::from_utf8(note)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_client_uploads_a_log_and_gets_the_mirrors_cosignature() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let log_key: VerifierKey = vkey.parse().unwrap();
    register_many(&origin, 0, 300).await;
    let n1 = size_of(&origin, "/log/checkpoint").await;
    assert!(n1 >= 300, "{n1}");
    let log = format!("{}/log/", origin.url());

    // A mirror with no peer: what it gets, it gets over tlog-mirror.
    let mirror = TestNode::federated(MIRROR, &[], &[("main", vkey.clone())]).await;
    let url = mirror.url();
    let witness: VerifierKey = mirror.json("/api/v1/origins").await["witness"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let entries = |start: u64, end: u64, extra: &[&str]| {
        let (s, e) = (start.to_string(), end.to_string());
        let mut args = vec!["entries", log.as_str(), s.as_str(), e.as_str()];
        args.extend_from_slice(extra);
        tool(&args)
    };
    let n1s = n1.to_string();

    // Before any checkpoint: 422. Another log: 404.
    let (st, _, why) = post(&url, "/mirror/add-entries", entries(0, n1, &[]), false).await;
    assert_eq!(st, 422, "{why}");
    let (st, _, _) = post(
        &url,
        "/mirror/add-entries",
        entries(0, n1, &["--origin", "other.example/log"]),
        false,
    )
    .await;
    assert_eq!(st, 404);

    // The pending checkpoint: from 0, once; again from 0 is a conflict naming its size.
    let (st, _, why) = post(
        &url,
        "/mirror/add-checkpoint",
        tool(&["checkpoint", &log, "0"]),
        false,
    )
    .await;
    assert_eq!(st, 200, "{why}");
    let (st, ct, body) = post(
        &url,
        "/mirror/add-checkpoint",
        tool(&["checkpoint", &log, "0"]),
        false,
    )
    .await;
    assert_eq!(
        (st, ct.as_str(), body),
        (409, "text/x.tlog.size", format!("{n1}\n"))
    );

    // An upload_end that is no pending checkpoint, and a start past the next entry: 409 with
    // the mirror's sizes.
    let (st, ct, body) = post(&url, "/mirror/add-entries", entries(0, n1 - 1, &[]), false).await;
    assert_eq!(
        (st, ct.as_str(), body),
        (409, "text/x.tlog.mirror-info", format!("{n1}\n0\n\n"))
    );
    let (st, _, body) = post(&url, "/mirror/add-entries", entries(5, n1, &[]), false).await;
    assert_eq!((st, body), (409, format!("{n1}\n0\n\n")));

    // One bent entry in the first package: 422, nothing kept. A first package cut short: 400.
    let (st, _, why) = post(
        &url,
        "/mirror/add-entries",
        entries(0, n1, &["--bend", "7"]),
        false,
    )
    .await;
    assert_eq!(st, 422, "{why}");
    let (st, _, why) = post(
        &url,
        "/mirror/add-entries",
        entries(0, n1, &["--packages", "1", "--truncate", "40"]),
        false,
    )
    .await;
    assert_eq!(st, 400, "{why}");
    let (st, _, body) = post(&url, "/mirror/add-entries", entries(1, n1, &[]), false).await;
    assert_eq!(
        (st, body),
        (409, format!("{n1}\n0\n\n")),
        "the next entry is still 0"
    );

    // The first package alone: 202 with the next entry.
    let (st, ct, body) = post(
        &url,
        "/mirror/add-entries",
        entries(0, n1, &["--packages", "1"]),
        false,
    )
    .await;
    assert_eq!(
        (st, ct.as_str(), body),
        (202, "text/x.tlog.mirror-info", format!("{n1}\n256\n\n"))
    );
    // A second package that is bent leaves the first kept.
    let (st, _, _) = post(
        &url,
        "/mirror/add-entries",
        entries(256, n1, &["--bend", "290"]),
        false,
    )
    .await;
    assert_eq!(st, 422);
    // The rest, gzip-compressed: 200 with the mirror's cosignature on the log's checkpoint.
    let (st, _, lines) = post(
        &url,
        "/mirror/add-entries",
        entries(256, n1, &["--gzip"]),
        true,
    )
    .await;
    assert_eq!(st, 200, "{lines}");
    let (_, log_note) = origin.get("/log/checkpoint").await;
    let log_note = String::from_utf8(log_note).unwrap();
    let cosigned = format!("{log_note}{lines}");
    let opened = open_checkpoint(
        cosigned.as_bytes(),
        &log_key,
        std::slice::from_ref(&witness),
    )
    .unwrap();
    assert_eq!(opened.checkpoint.size, n1);
    assert!(opened.note.verified_by(&witness).is_some(), "{lines}");

    // What the mirror now serves: the log at its monitoring path with its cosignature, and the
    // registry the entries make.
    let (_, served) = mirror
        .get(&format!("/monitor/{}/checkpoint", id(ORIGIN)))
        .await;
    let served = open_checkpoint(&served, &log_key, std::slice::from_ref(&witness)).unwrap();
    assert_eq!(served.checkpoint.size, n1);
    assert!(served.note.verified_by(&witness).is_some());
    let (st, _) = mirror.get("/origins/main/api/v1/accounts/user299").await;
    assert_eq!(st, 200);

    // The log grows; the client moves the pending checkpoint on with a consistency proof and
    // uploads from an unaligned start (the package's first entries come from the mirror's tree).
    register_many(&origin, 300, 340).await;
    let n2 = size_of(&origin, "/log/checkpoint").await;
    assert!(n2 > n1 && n1 % 256 != 0);
    let (st, _, why) = post(
        &url,
        "/mirror/add-checkpoint",
        tool(&["checkpoint", &log, &n1s]),
        false,
    )
    .await;
    assert_eq!(st, 200, "{why}");
    let (st, _, lines) = post(&url, "/mirror/add-entries", entries(n1, n2, &[]), false).await;
    assert_eq!(st, 200, "{lines}");
    // Sent again: the same answer, nothing new kept.
    let (st, _, again) = post(&url, "/mirror/add-entries", entries(n1, n2, &[]), false).await;
    assert_eq!((st, &again), (200, &lines));
    let (st, _) = mirror.get("/origins/main/api/v1/accounts/user339").await;
    assert_eq!(st, 200);

    // After a restart the committed tree stays, and the client is told where the mirror is.
    let mirror = mirror.restart().await;
    let url = mirror.url();
    let (st, ct, body) = post(
        &url,
        "/mirror/add-checkpoint",
        tool(&["checkpoint", &log, &n1s]),
        false,
    )
    .await;
    assert_eq!(
        (st, ct.as_str(), body),
        (409, "text/x.tlog.size", format!("{n2}\n"))
    );
    let (st, _, after) = post(&url, "/mirror/add-entries", entries(n1, n2, &[]), false).await;
    assert_eq!((st, after), (200, lines.clone()));

    // Uploads that stall hold their readers; past eight, the next is told to come back, and
    // once they go, it is taken.
    let body = entries(n1, n2, &[]);
    let addr = url.trim_start_matches("http://").to_string();
    let mut stalled = Vec::new();
    for _ in 0..8 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /mirror/add-entries HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        // Inside the head: the reader waits for the rest.
        conn.write_all(&body[..5]).await.unwrap();
        stalled.push(conn);
    }
    pgext_tests::eventually(30, || async {
        match post(&url, "/mirror/add-entries", body.clone(), false).await {
            (503, _, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    drop(stalled);
    let taken = pgext_tests::eventually(30, || async {
        match post(&url, "/mirror/add-entries", body.clone(), false).await {
            (200, _, l) => Ok(l),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(taken, lines);
}

fn id(origin: &str) -> String {
    pgext_log::hex(&pgext_log::sha256(origin.as_bytes()))
}

/// How the bare peer below answers requests for the log's bundles.
#[derive(Clone, Copy, PartialEq)]
enum Holds {
    Nothing,
    OtherBytes,
    TheTree,
}

/// A cosignature is a mirror's word that it stores and serves the tree. A peer that gossips a
/// valid cosignature on the origin's checkpoint but does not serve the tree (it has no bundle,
/// or serves other bytes) is not believed: nothing is stored, and serving other bytes costs it
/// standing. The same peer serving the tree's bytes is believed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cosignature_from_a_mirror_that_does_not_hold_the_tree_is_not_kept() {
    use std::sync::{Arc, Mutex};

    use pgext_log::{KeyType, Note, SignerKey};
    use pgext_node::federation::gossip::Gossip;
    use pgext_node::p2p::wire::TileResponse;
    use pgext_node::p2p::{Command, Inbound, Request, Response};

    const LOG: &str = "cos.pgext.test/log";
    let origin = TestNode::federated(LOG, &[], &[]).await;
    let log_key: VerifierKey = origin.vkey().parse().unwrap();
    register_many(&origin, 0, 3).await;
    let (_, note) = origin.get("/log/checkpoint").await;
    let note = String::from_utf8(note).unwrap();
    let text = Note::parse(note.as_bytes()).unwrap().text;

    // A bare libp2p peer with a cosigner key and no copy of the log.
    let dir = tempfile::tempdir().unwrap();
    let identity = pgext_node::p2p::load_or_create_identity(dir.path()).unwrap();
    let config = pgext_node::config::P2pConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        peers: vec![origin.p2p_addr()],
        ..Default::default()
    };
    let (p2p, mut inbound, _swarm) = pgext_node::p2p::swarm::spawn(identity, &config, 1 << 20)
        .await
        .unwrap();
    p2p.send(Command::Subscribe(LOG.into())).await;
    let cosigner =
        SignerKey::from_seed("bare.pgext.test/mirror", KeyType::Cosignature, &[9; 32]).unwrap();
    let holds = Arc::new(Mutex::new(Holds::Nothing));
    let asked = Arc::new(Mutex::new(0u32));
    {
        let (p2p, holds, asked, url) = (p2p.clone(), holds.clone(), asked.clone(), origin.url());
        tokio::spawn(async move {
            while let Some(msg) = inbound.recv().await {
                let Inbound::Request(_, Request::Tiles(req, ch)) = msg else {
                    continue;
                };
                *asked.lock().unwrap() += 1;
                let mode = *holds.lock().unwrap();
                let resp = match mode {
                    Holds::Nothing => TileResponse::NotFound("no such log here".into()),
                    Holds::OtherBytes | Holds::TheTree => {
                        let mut b = reqwest::get(format!("{url}/log/{}", req.path))
                            .await
                            .unwrap()
                            .bytes()
                            .await
                            .unwrap()
                            .to_vec();
                        if mode == Holds::OtherBytes {
                            let at = b.len() - 1;
                            b[at] ^= 1;
                        }
                        TileResponse::Found(b.into())
                    }
                };
                p2p.send(Command::Respond(Response::Tiles(ch, resp))).await;
            }
        });
    }
    // Gossips the origin's checkpoint with a cosignature made at `time`; its line.
    let gossip = |time: u64| {
        let line = cosigner.signature_line(&text, time).unwrap();
        let data = serde_json::to_vec(&Gossip::Checkpoint {
            note: format!("{note}{line}"),
            cosigner: Some(cosigner.verifier().to_string()),
        })
        .unwrap();
        (
            line,
            Command::Publish {
                origin: LOG.into(),
                data,
            },
        )
    };
    let kept = || async {
        let (_, served) = origin.get("/log/checkpoint").await;
        let served = String::from_utf8(served).unwrap();
        open_checkpoint(served.as_bytes(), &log_key, &[])
            .expect("the origin's checkpoint verifies");
        served
            .lines()
            .find(|l| l.starts_with(&format!("— {} ", cosigner.name())))
            .map(|l| format!("{l}\n"))
    };
    let score = || async {
        origin.json("/api/v1/origins").await["peer_scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["peer_id"] == p2p.peer_id.to_string())
            .map_or(0, |s| s["score"].as_i64().unwrap())
    };

    // Holding nothing: the origin asks, and keeps nothing.
    let mut time = 1_700_000_000;
    pgext_tests::eventually(60, || {
        time += 1;
        let (_, publish) = gossip(time);
        let p2p = p2p.clone();
        let asked = asked.clone();
        async move {
            p2p.send(publish).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let n = *asked.lock().unwrap();
            if n >= 3 {
                Ok(())
            } else {
                Err(format!("asked {n} times"))
            }
        }
    })
    .await;
    assert_eq!(kept().await, None);

    // Serving other bytes: refused, and the peer loses standing.
    *holds.lock().unwrap() = Holds::OtherBytes;
    pgext_tests::eventually(60, || {
        time += 1;
        let (_, publish) = gossip(time);
        let p2p = p2p.clone();
        async move {
            p2p.send(publish).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            match score().await {
                s if s <= -100 => Ok(()),
                s => Err(format!("score {s}")),
            }
        }
    })
    .await;
    assert_eq!(kept().await, None);

    // Serving the tree: a cosignature of this peer is kept (an earlier gossip still being
    // checked may be the one believed now).
    *holds.lock().unwrap() = Holds::TheTree;
    time += 1000;
    let kept_line = pgext_tests::eventually(60, || {
        let (p2p, publish) = (p2p.clone(), gossip(time).1);
        async move {
            p2p.send(publish).await;
            match kept().await {
                Some(l) => Ok(l),
                None => {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    Err("not kept yet".to_string())
                }
            }
        }
    })
    .await;
    let cosigned = format!("{note}{kept_line}");
    let opened = open_checkpoint(
        cosigned.as_bytes(),
        &log_key,
        std::slice::from_ref(cosigner.verifier()),
    )
    .unwrap();
    assert!(opened.note.verified_by(cosigner.verifier()).is_some());
}
