//! `pgext-node import-pgxn` and claims, as an operator and PGXN's users meet them: a PGXN
//! mirror tree made from the real METAs in `spec/testdata` (several versions per dist, a
//! testing release, dists whose names differ from their extensions) imported into a running
//! node through the command line; pgxnclient installs an imported extension and checks PGXN's
//! SHA-1; a mirror replicates and verifies the imported log; `pgext audit` passes; a second
//! import adds nothing; `--follow` picks up a release appended to the tree; a claim lets the
//! author publish the next version and refuses everyone else. Then every bad input of the
//! issue, each reported with why and nothing stored for it.

use std::path::Path;
use std::process::{Command, Stdio};

use pgext_spec::entry::{Action, ENTRY_VERSION, OPERATOR, Statement, user_key_id};
use pgext_tests::pg::{Cluster, clear_leftovers, pg_config, pg15_config};
use pgext_tests::pgxn_tree::{PgxnTree, real_meta};
use pgext_tests::{TestNode, eventually, identity, pgext_bin, pgext_node_bin, pgxn_bin};
use serde_json::Value;

const ORIGIN: &str = "origin.pgext.test/log";

/// Runs `cmd` off the runtime that serves the nodes.
async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("running pgext-node"))
        .await
        .unwrap()
}

/// Runs `pgext-node import-pgxn TREE --data DATA [more]`: (exit code, stdout, stderr).
async fn import(
    data: &Path,
    tree: impl AsRef<std::ffi::OsStr>,
    more: &[&str],
) -> (i32, String, String) {
    let mut cmd = Command::new(pgext_node_bin());
    cmd.arg("import-pgxn")
        .arg(tree)
        .arg("--data")
        .arg(data)
        .args(more);
    let out = output(cmd).await;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn last_line(s: &str) -> &str {
    s.lines().last().unwrap_or_default()
}

async fn claim(data: &Path, pgxn_user: &str, account: &str) -> (bool, String) {
    let mut cmd = Command::new(pgext_node_bin());
    cmd.args(["claim", pgxn_user, account, "--evidence"])
        .arg(format!(
            "mail from {pgxn_user}'s PGXN address naming {account}"
        ))
        .arg("--data")
        .arg(data);
    let out = output(cmd).await;
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn versions(doc: &Value) -> Vec<String> {
    let mut v: Vec<String> = doc["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The tree of the end-to-end test: 7 releases of 4 dists by 2 PGXN users.
fn tree(root: &Path) -> (PgxnTree, String) {
    let mut t = PgxnTree::new(root);
    let tdigest = real_meta("tdigest.META.json");
    let first = t.add(
        &tdigest,
        "1.0.0",
        "stable",
        "tvondra",
        "2019-01-01T10:00:00Z",
    );
    t.add(
        &tdigest,
        "1.0.1",
        "stable",
        "tvondra",
        "2019-06-01T10:00:00Z",
    );
    t.add(
        &tdigest,
        "1.1.0",
        "testing",
        "tvondra",
        "2020-01-01T10:00:00Z",
    );
    let semver = real_meta("pg-semver.META.json");
    t.add(
        &semver,
        "0.40.0",
        "stable",
        "theory",
        "2021-01-01T10:00:00Z",
    );
    t.add(
        &semver,
        "0.41.0",
        "stable",
        "theory",
        "2022-01-01T10:00:00Z",
    );
    t.add(
        &real_meta("pgtap.META.json"),
        "1.3.5",
        "stable",
        "theory",
        "2023-01-01T10:00:00Z",
    );
    t.add(
        &real_meta("kv-pair.META.json"),
        "0.1.8",
        "stable",
        "theory",
        "2020-05-05T10:00:00Z",
    );
    (t, first.sha1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgxn_history_imported_served_replicated_audited_followed_and_claimed() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let data = origin.dir.path().to_path_buf();
    let root = tempfile::tempdir().unwrap();
    let (mut t, tdigest_sha1) = tree(root.path());

    // The node runs: the import goes through it.
    let (code, out, err) = import(&data, root.path(), &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        last_line(&out),
        "imported 7 releases (0 skipped, 0 refused)",
        "{err}"
    );
    assert_eq!(origin.node.origin().size(), 7);

    // PGXN's user, date, status and SHA-1; the zip byte for byte.
    let doc = origin.json("/api/v1/dists/t-digest").await;
    assert_eq!(versions(&doc), ["1.0.0", "1.0.1", "1.1.0"]);
    assert_eq!(doc["pgxn_user"], "tvondra");
    assert_eq!(doc["owners"], serde_json::json!([]));
    let r0 = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == "1.0.0")
        .unwrap();
    assert_eq!(
        (r0["user"].as_str(), r0["date"].as_str()),
        (Some("tvondra"), Some("2019-01-01T10:00:00Z"))
    );
    assert_eq!(
        (r0["sha1"].as_str(), r0["imported"].as_bool()),
        (Some(tdigest_sha1.as_str()), Some(true))
    );
    let (status, zip) = origin.get("/dist/t-digest/1.0.0/t-digest-1.0.0.zip").await;
    assert_eq!(status, 200);
    assert_eq!(
        zip,
        std::fs::read(root.path().join("dist/t-digest/1.0.0/t-digest-1.0.0.zip")).unwrap()
    );
    let meta = origin.json("/dist/t-digest/1.1.0/META.json").await;
    assert_eq!(
        (meta["release_status"].as_str(), meta["user"].as_str()),
        (Some("testing"), Some("tvondra"))
    );
    let page = String::from_utf8(origin.get("/dist/t-digest/1.0.0/").await.1).unwrap();
    assert!(
        page.contains("Imported from PGXN"),
        "the site marks imported releases"
    );

    // A mirror replicates the imported log, blobs and all, and verifies it.
    let mirror = TestNode::federated(
        "m.pgext.test/log",
        &[origin.p2p_addr()],
        &[("main", origin.vkey())],
    )
    .await;
    mirror.wait_size("/origins/main", 7, 60).await;
    let (_, mirrored) = mirror
        .get("/origins/main/dist/t-digest/1.0.0/t-digest-1.0.0.zip")
        .await;
    assert_eq!(mirrored, zip);

    // pgext audit replays it: every import signed by the operator, every zip hashed.
    let (url, vkey) = (origin.url(), origin.vkey());
    let cache = tempfile::tempdir().unwrap();
    let c = cache.path().to_path_buf();
    let audit = tokio::task::spawn_blocking(move || {
        Command::new(pgext_bin())
            .args(["audit", &url, "--vkey", &vkey, "--artifacts", "--json"])
            .env("XDG_CACHE_HOME", &c)
            .env("PGEXT_CONFIG", c.join("none.toml"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert!(audit.status.success(), "{report}");
    assert_eq!(
        (report["entries"].as_u64(), report["artifacts"].as_u64()),
        (Some(7), Some(7)),
        "{report}"
    );

    // pgxnclient downloads with PGXN's SHA-1 and installs the extension of a dist named
    // otherwise; pgext installs the same release, verified against the log.
    let mirror_url = format!("{}/", origin.url());
    let pg_home = tempfile::tempdir().unwrap();
    let (node_url, vk, home) = (origin.url(), origin.vkey(), pg_home.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        clear_leftovers(&pg15_config(), "tdigest");
        clear_leftovers(&pg15_config(), "pair");
        let cluster = Cluster::start();
        let work = tempfile::tempdir().unwrap();
        let pgxn = |args: &[&str]| {
            let out = Command::new(pgxn_bin())
                .args(&args[..1])
                .args(["--mirror", &mirror_url])
                .args(&args[1..])
                .envs(cluster.env())
                .current_dir(work.path())
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "pgxn {args:?}: {text}");
            text
        };
        let info = pgxn(&["info", "t-digest"]);
        assert!(
            info.contains("version: 1.0.1") && info.contains("date: 2019-06-01T10:00:00Z"),
            "{info}"
        );
        pgxn(&["download", "t-digest=1.0.0"]);
        let got = std::fs::read(work.path().join("t-digest-1.0.0.zip")).unwrap();
        assert_eq!(
            pgext_log::hex(&<sha1::Sha1 as sha1::Digest>::digest(&got)),
            tdigest_sha1
        );
        pgxn(&["install", "t-digest"]);
        pgxn(&["load", "-d", "postgres", "t-digest"]);
        assert_eq!(
            cluster.psql("postgres", "SELECT tdigest_version()"),
            "1.0.1"
        );
        pgxn(&["unload", "-d", "postgres", "t-digest"]);
        pgxn(&["uninstall", "t-digest"]);
        let control =
            std::path::PathBuf::from(pg_config("--sharedir")).join("extension/tdigest.control");
        assert!(!control.exists());

        // pgext verifies the operator's import entry against the log key before it installs.
        let cli = pgext_tests::Cli::new(&home);
        cli.ok(&["registry", "add", "main", &node_url, "--vkey", &vk]);
        let env = cluster.env();
        let out = cli.with_env(env).ok(&["install", "pair", "--yes"]);
        assert!(out.contains("pair 0.1.8 installed"), "{out}");
        let sql =
            std::path::PathBuf::from(pg_config("--sharedir")).join("extension/pair--0.1.8.sql");
        assert!(sql.exists(), "{out}");
        pgext_tests::Cli::new(&home).ok(&["uninstall", "pair"]);
    })
    .await
    .unwrap();

    // A second import adds nothing.
    let (code, out, err) = import(&data, root.path(), &[]).await;
    assert_eq!(
        (code, last_line(&out)),
        (0, "imported 0 releases (7 skipped, 0 refused)"),
        "{err}"
    );
    assert_eq!(origin.node.origin().size(), 7);

    // --follow picks up a release appended to the tree.
    let mut follow = Command::new(pgext_node_bin())
        .arg("import-pgxn")
        .arg(root.path())
        .arg("--data")
        .arg(&data)
        .args(["--follow", "--interval", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    t.add(
        &real_meta("tdigest.META.json"),
        "1.1.1",
        "stable",
        "tvondra",
        "2024-01-01T10:00:00Z",
    );
    eventually(60, || async {
        let doc = origin.json("/api/v1/dists/t-digest").await;
        let v = versions(&doc);
        if v.contains(&"1.1.1".to_string()) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;
    follow.kill().unwrap();
    let _ = follow.wait();

    // Before a claim nobody may publish an imported name.
    let (author, stranger) = (identity("tomas", 31), identity("mallory", 32));
    origin.register(&author, Some("Tomas")).await;
    origin.register(&stranger, None).await;
    let files = pgext_tests::fixtures::dist("t-digest", "1.2.0", "tdigest", "stable");
    let early = origin
        .api_as(&author)
        .publish(
            &author.sign(Action::Release(
                pgext::release::prepare_release(
                    &pgext_tests::fixtures::tar_gz("t-digest-1.2.0", &files),
                    None,
                )
                .unwrap()
                .release,
            )),
            pgext_tests::fixtures::tar_gz("t-digest-1.2.0", &files),
            "t.tgz",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(early.contains("not-owner"), "{early}");

    // The operator approves tomas's claim of tvondra; tomas publishes, mallory cannot.
    let (ok, text) = claim(&data, "tvondra", "tomas").await;
    assert!(ok, "{text}");
    let doc = origin.json("/api/v1/dists/t-digest").await;
    assert_eq!(doc["owners"], serde_json::json!(["tomas"]));
    origin
        .publish_dist(&author, "t-digest", "1.2.0", "tdigest", "stable")
        .await;
    let files = pgext_tests::fixtures::dist("t-digest", "1.3.0", "tdigest", "stable");
    let tgz = pgext_tests::fixtures::tar_gz("t-digest-1.3.0", &files);
    let entry = stranger.sign(Action::Release(
        pgext::release::prepare_release(&tgz, None).unwrap().release,
    ));
    let refused = origin
        .api_as(&stranger)
        .publish(&entry, tgz, "t.tgz")
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("not-owner"), "{refused}");
    // A second claim of the same PGXN user is refused.
    let (ok, text) = claim(&data, "tvondra", "mallory").await;
    assert!(!ok && text.contains("already-claimed"), "{text}");
    // A claim signed by anyone but the operator is refused.
    let forged = Statement {
        v: ENTRY_VERSION,
        actor: OPERATOR.into(),
        key_id: user_key_id(stranger.key.verifying_key().as_bytes()),
        time: pgext::release::now(),
        action: Action::Claim {
            pgxn_user: "theory".into(),
            user: "mallory".into(),
            evidence: "trust me".into(),
        },
    }
    .sign(&stranger.key);
    let e = origin.api().submit(&forged).await.unwrap_err().to_string();
    assert!(e.contains("not-operator"), "{e}");
    let as_user = stranger.sign(Action::Claim {
        pgxn_user: "theory".into(),
        user: "mallory".into(),
        evidence: "trust me".into(),
    });
    let e = origin.api().submit(&as_user).await.unwrap_err().to_string();
    assert!(e.contains("not-operator"), "{e}");
    assert!(origin.json("/api/v1/dists/semver").await["owners"] == serde_json::json!([]));

    mirror.node.shutdown().await;
    origin.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pgxn_input_is_reported_and_nothing_is_stored_for_it() {
    let root = tempfile::tempdir().unwrap();
    let mut t = PgxnTree::new(root.path());
    let semver = real_meta("pg-semver.META.json");
    t.add(
        &semver,
        "0.40.0",
        "stable",
        "theory",
        "2021-01-01T10:00:00Z",
    );
    // A zip whose SHA-1 differs from its META.
    let bad_sha = t.add(
        &real_meta("kv-pair.META.json"),
        "0.1.8",
        "stable",
        "theory",
        "2020-05-05T10:00:00Z",
    );
    let mut zip = std::fs::read(root.path().join(&bad_sha.zip)).unwrap();
    zip.extend_from_slice(b"appended");
    t.overwrite(&bad_sha.zip, &zip);
    // A META that is not JSON.
    let not_json = t.add(
        &real_meta("tdigest.META.json"),
        "1.0.0",
        "stable",
        "tvondra",
        "2019-01-01T10:00:00Z",
    );
    t.overwrite(&not_json.meta, b"{not json");
    // A dist document listing a version with no files.
    t.list_only("semver", "0.41.0", "stable", "2022-01-01T10:00:00Z");
    // A user name that is invalid in pgext.
    t.add(
        &real_meta("pgtap.META.json"),
        "1.3.5",
        "stable",
        "David Wheeler",
        "2023-01-01T10:00:00Z",
    );

    // The node is stopped: the import starts one of its own on the data folder.
    let node = TestNode::start().await;
    let (dir, _) = node.stop().await;
    let (code, out, err) = import(dir.path(), root.path(), &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        last_line(&out),
        "imported 1 releases (0 skipped, 4 refused)",
        "{err}"
    );
    for why in [
        "refused pair 0.1.8: the zip's SHA-1 is",
        "refused t-digest 1.0.0:",
        "not JSON",
        "refused semver 0.41.0: the tree lists semver 0.41.0 but has no",
        "refused pgTAP 1.3.5: PGXN user \"David Wheeler\" is not a valid pgext account name",
    ] {
        assert!(err.contains(why), "{why:?} not in:\n{err}");
    }

    // A release older than one already imported for its dist is refused: order is kept.
    t.add(
        &semver,
        "0.39.0",
        "stable",
        "theory",
        "2020-01-01T10:00:00Z",
    );
    let (code, out, err) = import(dir.path(), root.path(), &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        last_line(&out),
        "imported 0 releases (1 skipped, 5 refused)",
        "{err}"
    );
    assert!(err.contains("refused semver 0.39.0: import-order"), "{err}");

    // Nothing of the refused releases was stored: one entry, one zip and one META.
    let node = TestNode::start_in(dir, |_| {}).await;
    assert_eq!(node.node.origin().size(), 1);
    assert_eq!(node.blob_count(), 2);
    for gone in [
        "/api/v1/dists/pair",
        "/api/v1/dists/t-digest",
        "/api/v1/dists/pgTAP",
    ] {
        assert_eq!(node.get(gone).await.0, 404, "{gone}");
    }
    assert_eq!(
        versions(&node.json("/api/v1/dists/semver").await),
        ["0.40.0"]
    );
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_served_over_http_imports_as_a_folder_does() {
    let root = tempfile::tempdir().unwrap();
    let mut t = PgxnTree::new(root.path());
    let tdigest = real_meta("tdigest.META.json");
    t.add(
        &tdigest,
        "1.0.0",
        "stable",
        "tvondra",
        "2019-01-01T10:00:00Z",
    );
    t.add(
        &tdigest,
        "1.1.0",
        "testing",
        "tvondra",
        "2020-01-01T10:00:00Z",
    );
    t.add(
        &real_meta("kv-pair.META.json"),
        "0.1.8",
        "stable",
        "theory",
        "2020-05-05T10:00:00Z",
    );
    // Python's own static server, which lists folders as a web server's autoindex does.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    eventually(30, || async {
        match reqwest::get(format!("{url}index.json")).await {
            Ok(r) if r.status().is_success() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // A fresh folder: the import makes the registry as a first `pgext-node run` would.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, out, err) = import(&data, url.as_str(), &[]).await;
    assert_eq!(
        (code, last_line(&out)),
        (0, "imported 3 releases (0 skipped, 0 refused)"),
        "{err}"
    );
    let (code, out, err) = import(&data, url.as_str(), &[]).await;
    assert_eq!(
        (code, last_line(&out)),
        (0, "imported 0 releases (3 skipped, 0 refused)"),
        "{err}"
    );
    server.kill().unwrap();
    let _ = server.wait();
    let node = TestNode::start_in(dir, move |c| {
        c.data = data;
        c.origin = None;
    })
    .await;
    assert_eq!(node.node.origin().name, "127.0.0.1:7070/log");
    assert_eq!(
        versions(&node.json("/api/v1/dists/t-digest").await),
        ["1.0.0", "1.1.0"]
    );
    node.node.shutdown().await;
}
