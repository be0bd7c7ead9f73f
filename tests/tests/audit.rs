//! `pgext audit` (the binary) against real nodes: a clean log passes, and a second audit only
//! fetches what is new; each planted violation is found and named: an entry signed by a
//! non-owner (written by a test-only sequencer), a tampered tile served by one node, a forked
//! checkpoint on one node, a cosignature that does not verify, an artifact whose hash differs
//! from its entry.

use std::process::Command;
use std::sync::{Arc, Mutex};

use pgext_log::{KeyType, MemoryTiles, SignerKey, Tile, integrate, sha256, sign};
use pgext_spec::entry::Action;
use pgext_tests::{TestNode, fixtures, identity, pgext_bin};
use serde_json::Value;

const ORIGIN: &str = "origin.pgext.test/log";

/// Runs `pgext audit ARGS --json`; returns the exit code and the report.
fn audit(cache: &std::path::Path, args: &[&str]) -> (i32, Value) {
    let out = Command::new(pgext_bin())
        .arg("audit")
        .args(args)
        .arg("--json")
        .env("XDG_CACHE_HOME", cache)
        .env("PGEXT_CONFIG", cache.join("none.toml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {text}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), report)
}

fn rules(report: &Value) -> Vec<(String, String)> {
    report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_string(),
                v["node"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Tamper {
    Nothing,
    Tile,
    Cosignature,
    Zip,
}

/// A proxy in front of a node that changes one kind of answer.
async fn proxy(target: String, tamper: Arc<Mutex<Tamper>>) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (target, tamper) = (target.clone(), tamper.clone());
        async move {
            let path = uri.path().to_string();
            let resp = reqwest::get(format!("{target}{path}")).await.unwrap();
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut body = resp.bytes().await.unwrap().to_vec();
            match *tamper.lock().unwrap() {
                Tamper::Tile if path.starts_with("/log/tile/entries/") => {
                    let at = body.len() - 3;
                    body[at] ^= 1;
                }
                Tamper::Zip if path.ends_with(".zip") => {
                    let at = body.len() / 2;
                    body[at] ^= 1;
                }
                Tamper::Cosignature if path == "/log/checkpoint" => {
                    // The last signature line is the witness's: change one base64 character.
                    let mut text = String::from_utf8(body).unwrap();
                    let at = text.trim_end().len() - 6;
                    let c = if &text[at..=at] == "A" { "B" } else { "A" };
                    text.replace_range(at..=at, c);
                    body = text.into_bytes();
                }
                _ => {}
            }
            (status, body)
        }
    });
    pgext_tests::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_pass_a_clean_log_and_name_every_planted_violation() {
    let (origin, mirror, vkey, witness) = TestNode::witnessed(ORIGIN).await;
    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    for v in ["1.0.0", "1.1.0"] {
        origin
            .publish_dist(&alice, "audited", v, "audited", "stable")
            .await;
    }
    // Wait for the mirror's cosignature on the origin's newest checkpoint.
    origin.wait_cosigned(3, "m.pgext.test/witness").await;
    mirror.wait_size("/origins/main", 3, 60).await;
    let tamper = Arc::new(Mutex::new(Tamper::Nothing));
    let bad = proxy(origin.url(), tamper.clone()).await;
    let (o, m) = (origin.url(), format!("{}/origins/main", mirror.url()));

    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_path_buf();
    let (w, vk) = (witness.clone(), vkey.clone());
    tokio::task::spawn_blocking(move || {
        let key = ["--vkey", vk.as_str(), "--witness", w.as_str()];
        // Clean: both nodes, every archive; the second audit reads verified bundles back.
        let args = [&[o.as_str(), m.as_str(), "--artifacts"][..], &key[..]].concat();
        let (code, r) = audit(&c, &args);
        assert_eq!(code, 0, "{r}");
        assert_eq!(
            (r["entries"].as_u64(), r["artifacts"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(r["nodes"][0]["cosigners"][0], w.as_str(), "{r}");
        let (code, again) = audit(&c, &args);
        assert_eq!(code, 0, "{again}");
        assert!(again["bundles_fetched"].as_u64() <= r["bundles_fetched"].as_u64());

        // A tampered tile on one node.
        *tamper.lock().unwrap() = Tamper::Tile;
        let (code, r) = audit(
            &c,
            &[&[o.as_str(), bad.as_str(), "--no-cache"][..], &key[..]].concat(),
        );
        assert_eq!(code, 1, "{r}");
        assert!(
            rules(&r).contains(&("tampered-tile".into(), bad.clone())),
            "{r}"
        );
        // A cosignature that does not verify.
        *tamper.lock().unwrap() = Tamper::Cosignature;
        let (code, r) = audit(&c, &[&[bad.as_str()][..], &key[..]].concat());
        assert_eq!(code, 1, "{r}");
        assert!(
            rules(&r).contains(&("bad-cosignature".into(), bad.clone())),
            "{r}"
        );
        // An archive whose hash is not its entry's.
        *tamper.lock().unwrap() = Tamper::Zip;
        let (code, r) = audit(&c, &[&[bad.as_str(), "--artifacts"][..], &key[..]].concat());
        assert_eq!(code, 1, "{r}");
        let found = &r["violations"][0];
        assert_eq!(
            (found["rule"].as_str(), found["index"].as_u64()),
            (Some("artifact-hash"), Some(1)),
            "{r}"
        );
    })
    .await
    .unwrap();

    // A forked checkpoint on one node: a split view, with both signed notes. The fork (same
    // key, same first three entries) takes one other entry; the origin two.
    let (origin, fork) = origin.fork().await;
    fork.api()
        .submit(&identity("mallory", 6).account_entry(None, None, None))
        .await
        .unwrap();
    for (u, seed) in [("bob", 2), ("carol", 3)] {
        origin
            .api()
            .submit(&identity(u, seed).account_entry(None, None, None))
            .await
            .unwrap();
    }
    let (o, f) = (origin.url(), fork.url());
    let c = cache.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let (code, r) = audit(&c, &[o.as_str(), f.as_str(), "--vkey", vkey.as_str()]);
        assert_eq!(code, 2, "{r}");
        assert!(rules(&r).contains(&("split-view".into(), f.clone())), "{r}");
        let ev = &r["evidence"][0];
        assert!(
            ev[0]
                .as_str()
                .unwrap()
                .starts_with(&format!("{ORIGIN}\n5\n")),
            "{r}"
        );
        assert!(
            ev[1]
                .as_str()
                .unwrap()
                .starts_with(&format!("{ORIGIN}\n4\n")),
            "{r}"
        );
    })
    .await
    .unwrap();
    for n in [origin, fork, mirror] {
        n.node.shutdown().await;
    }
}

/// A test-only sequencer: a log whose fourth entry is a release of alice's dist signed by bob,
/// who does not own it, served as tiles by a bare HTTP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_signed_by_a_non_owner_is_named() {
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    let files = fixtures::dist("owned", "1.0.0", "owned", "stable");
    let tgz = fixtures::tar_gz("owned-1.0.0", &files);
    let release = pgext::release::prepare_release(&tgz, None).unwrap().release;
    let mut second = release.clone();
    second.version = "1.0.1".into();
    let entries: Vec<Vec<u8>> = [
        alice.account_entry(None, None, None),
        bob.account_entry(None, None, None),
        alice.sign(Action::Release(release)),
        bob.sign(Action::Release(second)),
    ]
    .iter()
    .map(|e| e.to_bytes())
    .collect();
    let mut store = MemoryTiles::new();
    let out = integrate(0, &entries, &store).unwrap();
    for (t, b) in out.tiles {
        store.put(t, b);
    }
    let key =
        SignerKey::from_seed("rogue.pgext.test/log", KeyType::Ed25519, &sha256(b"rogue")).unwrap();
    let note = sign(
        &pgext_log::Checkpoint::new("rogue.pgext.test/log", out.size, out.root).to_text(),
        &[&key],
        0,
    )
    .unwrap();
    let store = Arc::new(store);
    let app = axum::Router::new()
        .route(
            "/log/checkpoint",
            axum::routing::get(move || async move { note.clone() }),
        )
        .route(
            "/log/tile/{*path}",
            axum::routing::get(
                move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let store = store.clone();
                    async move {
                        let tile = Tile::parse_path(&format!("tile/{path}")).unwrap();
                        store.get(tile.kind, tile.index).unwrap().to_vec()
                    }
                },
            ),
        );
    let url = pgext_tests::serve(app).await;

    let vkey = key.verifier().to_string();
    let cache = tempfile::tempdir().unwrap();
    let (code, r) =
        tokio::task::spawn_blocking(move || audit(cache.path(), &[url.as_str(), "--vkey", &vkey]))
            .await
            .unwrap();
    assert_eq!(code, 1, "{r}");
    let v = &r["violations"];
    assert_eq!(v.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        (v[0]["index"].as_u64(), v[0]["rule"].as_str()),
        (Some(3), Some("not-owner")),
        "{r}"
    );
}

/// `pgext-node fsck` on a stopped node: clean, then a flipped blob and a flipped hash tile are
/// each named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_checks_a_nodes_own_stores() {
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    node.publish_dist(&alice, "checked", "1.0.0", "checked", "stable")
        .await;
    let (dir, config) = node.stop().await;
    let report = pgext_node::tools::fsck::fsck(&config).unwrap();
    assert!(report.violations.is_empty(), "{report:?}");
    assert_eq!((report.entries, report.blobs), (2, 2));

    // One blob's bytes change on disk.
    let mut stack = vec![dir.path().join("blobs")];
    let mut flipped = None;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else if flipped.is_none() {
                let mut b = std::fs::read(e.path()).unwrap();
                b[0] ^= 1;
                std::fs::write(e.path(), b).unwrap();
                flipped = Some(e.path());
            }
        }
    }
    let report = pgext_node::tools::fsck::fsck(&config).unwrap();
    let rules: Vec<&str> = report.violations.iter().map(|v| v.rule.as_str()).collect();
    assert_eq!(rules, ["artifact-hash"], "{report:?}");
    assert_eq!(report.violations[0].index, Some(1));

    // A level-0 hash tile changes in the store.
    {
        let store = pgext_node::origin::store::Store::open(&dir.path().join("db")).unwrap();
        let mut tile = store
            .tile(pgext_log::TileKind::Hashes(0), 0)
            .unwrap()
            .unwrap();
        tile[0] ^= 1;
        let width = (tile.len() / 32) as u16;
        store
            .commit(
                &[(
                    Tile {
                        kind: pgext_log::TileKind::Hashes(0),
                        index: 0,
                        width,
                    },
                    tile,
                )],
                &[],
            )
            .unwrap();
    }
    let report = pgext_node::tools::fsck::fsck(&config).unwrap();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == "tampered-tile" && v.detail.contains("tile/0/")),
        "{report:?}"
    );
}

/// `pgext watch`: the entries touching the names, verified, from the start (`--once`) and as
/// they come (with `--exec` and `--webhook`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_reports_new_verified_entries_about_the_names() {
    let node = TestNode::start().await;
    let api = node.api();
    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    for who in [&alice, &bob] {
        node.register(who, None).await;
    }
    node.publish_dist(&alice, "watched", "1.0.0", "watched", "stable")
        .await;
    node.publish_dist(&bob, "other", "1.0.0", "other", "stable")
        .await;
    // A webhook receiver.
    let hooks = Arc::new(Mutex::new(Vec::<Value>::new()));
    let got = hooks.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                "ok"
            }
        }),
    );
    let hook = format!("{}/hook", pgext_tests::serve(app).await);

    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let pgext = move |args: &[&str]| {
        let mut c = Command::new(pgext_bin());
        c.args(args).env("PGEXT_CONFIG", &config);
        c
    };
    let out = pgext(&["registry", "add", "main", &node.url(), "--yes"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = |args: &[&str]| -> Vec<Value> {
        let out = pgext(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let evs = lines(&["watch", "watched", "--from", "0", "--once", "--json"]);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(
        (evs[0]["kind"].as_str(), evs[0]["dist"].as_str()),
        (Some("release"), Some("watched"))
    );
    let evs = lines(&[
        "watch", "watched", "ALICE", "--from", "0", "--once", "--json",
    ]);
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["account", "release"], "{evs:?}");

    // Following: only what comes after the start, through the command and the webhook.
    let seen = home.path().join("seen");
    let from = node.json("/api/v1/log").await["size"].to_string();
    let mut child = pgext(&[
        "watch",
        "watched",
        "--from",
        &from,
        "--interval",
        "1",
        "--webhook",
        &hook,
        "--exec",
        &format!("echo \"$PGEXT_KIND $PGEXT_VERSION\" >> {}", seen.display()),
    ])
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    node.publish_dist(&alice, "watched", "1.1.0", "watched", "stable")
        .await;
    api.submit(&alice.sign(Action::Yank {
        dist: "watched".into(),
        version: "1.0.0".into(),
        reason: None,
    }))
    .await
    .unwrap();
    let text = pgext_tests::eventually(30, || async {
        let text = std::fs::read_to_string(&seen).unwrap_or_default();
        if text.lines().count() >= 2 && hooks.lock().unwrap().len() >= 2 {
            Ok(text)
        } else {
            Err(format!("{text:?} {:?}", hooks.lock().unwrap()))
        }
    })
    .await;
    assert_eq!(text, "release 1.1.0\nyank 1.0.0\n");
    let _ = child.kill();
    let _ = child.wait();
    let received = hooks.lock().unwrap().clone();
    assert_eq!(received[0]["version"], "1.1.0");
    assert_eq!(received[1]["kind"], "yank");
    node.node.shutdown().await;
}
