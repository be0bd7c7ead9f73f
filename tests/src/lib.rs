//! Harness for pgext's cross-crate tests: nodes on loopback with OS-chosen ports in temporary
//! folders, identities, and fixture distributions packed every way authors pack them.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_node::{Config, Node};

pub mod browser;
pub mod pg;
pub mod pgxn_tree;

/// The `spec/vectors` folder of the workspace.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

/// A node in a temporary data folder. Dropping it without `stop` leaks the folder until exit.
#[derive(Debug)]
pub struct TestNode {
    /// The node.
    pub node: Node,
    /// Its data folder.
    pub dir: tempfile::TempDir,
    config: Config,
    http: reqwest::Client,
}

impl TestNode {
    /// Starts a node on 127.0.0.1 with an OS-chosen port.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start() -> TestNode {
        TestNode::start_with(|_| {}).await
    }

    /// Starts a node whose test configuration `tune` adjusts first.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestNode {
        TestNode::start_in(tempfile::tempdir().expect("temp dir"), tune).await
    }

    /// Starts a node on the data folder `dir` (which may hold keys made beforehand, such as a
    /// peer identity others must know first), with the test configuration `tune` adjusts.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn start_in(dir: tempfile::TempDir, tune: impl FnOnce(&mut Config)) -> TestNode {
        let mut config = Config::for_tests(dir.path());
        tune(&mut config);
        TestNode::spawn(dir, config).await
    }

    /// A data folder with a peer identity made already; returns it and the peer id.
    ///
    /// # Panics
    /// When the identity cannot be written.
    pub fn folder_with_peer_id() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = pgext_node::p2p::load_or_create_identity(dir.path()).expect("peer key");
        (dir, key.public().to_peer_id().to_string())
    }

    /// Starts a node on `dir` with `config` (whose data folder is `dir`).
    async fn spawn(dir: tempfile::TempDir, config: Config) -> TestNode {
        let node = Node::spawn(config.clone()).await.expect("node starts");
        TestNode {
            node,
            dir,
            config,
            http: reqwest::Client::new(),
        }
    }

    /// Starts a federated node: libp2p on a loopback port from the OS, dialing `peers`,
    /// mirroring `mirrors` (name, verifier key), with its own origin `origin`.
    ///
    /// # Panics
    /// When the node cannot start.
    pub async fn federated(origin: &str, peers: &[String], mirrors: &[(&str, String)]) -> TestNode {
        TestNode::start_with(|c| {
            c.origin = Some(origin.to_string());
            c.witness_name = Some(format!("{}/witness", origin.trim_end_matches("/log")));
            c.p2p.enabled = true;
            c.p2p.peers = peers.to_vec();
            c.mirrors = mirrors
                .iter()
                .map(|(name, vkey)| pgext_node::config::MirrorConfig {
                    name: name.to_string(),
                    vkey: vkey.clone(),
                    access: pgext_node::config::Access::Public,
                })
                .collect();
        })
        .await
    }

    /// Stops the node, copies its data folder, and starts the node again beside a second one on
    /// the copy: same log key, same entries so far, its own peer identity. From here on the two
    /// sequence different entries under one origin: a forked sequencer.
    ///
    /// # Panics
    /// When a node cannot restart or the folder cannot be copied.
    pub async fn fork(self) -> (TestNode, TestNode) {
        let TestNode {
            node, dir, config, ..
        } = self;
        node.shutdown().await;
        let copy = tempfile::tempdir().expect("temp dir");
        copy_dir(dir.path(), copy.path());
        let peer_key = copy.path().join(pgext_node::p2p::PEER_KEY_FILE);
        if config.p2p.enabled {
            std::fs::remove_file(peer_key).expect("peer key");
        }
        let mut config2 = config.clone();
        config2.data = copy.path().to_path_buf();
        let first = TestNode::spawn(dir, config).await;
        (first, TestNode::spawn(copy, config2).await)
    }

    /// The node's libp2p address (with `/p2p/<peer id>`).
    ///
    /// # Panics
    /// When the node has no libp2p side.
    pub fn p2p_addr(&self) -> String {
        self.node
            .info()
            .p2p_addrs
            .first()
            .expect("p2p enabled")
            .clone()
    }

    /// The node's log verifier key.
    pub fn vkey(&self) -> String {
        self.node.origin().vkey.to_string()
    }

    /// Waits until the log served below `prefix` (`""` for the node's own) reaches `size`.
    ///
    /// # Panics
    /// When it does not within `secs` seconds.
    pub async fn wait_size(&self, prefix: &str, size: u64, secs: u64) {
        let shared = self
            .node
            .served(prefix)
            .expect("an origin served there")
            .clone();
        let mut rx = shared.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        while *rx.borrow_and_update() < size {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!(
                    "{prefix}: size {} after {secs} s, waiting for {size}",
                    shared.size()
                );
            }
        }
    }

    /// Stops the node and starts a new one on the same data folder.
    ///
    /// # Panics
    /// When the node cannot restart.
    pub async fn restart(self) -> TestNode {
        self.restart_with(|_| {}).await
    }

    /// Stops the node and returns its data folder and configuration, for tools that need the
    /// node stopped (`fsck`).
    pub async fn stop(self) -> (tempfile::TempDir, Config) {
        let TestNode {
            node, dir, config, ..
        } = self;
        node.shutdown().await;
        (dir, config)
    }

    /// Stops the node, lets `meddle` change its data folder, and starts a new one on it.
    ///
    /// # Panics
    /// When the node cannot restart.
    pub async fn restart_with(self, meddle: impl FnOnce(&Path)) -> TestNode {
        let TestNode {
            node, dir, config, ..
        } = self;
        node.shutdown().await;
        meddle(dir.path());
        TestNode::spawn(dir, config).await
    }

    /// An origin sequencing `origin` and a mirror of it (`m.pgext.test/log`, served at
    /// `/origins/main`) whose witness cosigns it. Returns both, the log's verifier key and the
    /// witness's.
    pub async fn witnessed(origin: &str) -> (TestNode, TestNode, String, String) {
        let first = TestNode::federated(origin, &[], &[]).await;
        let vkey = first.vkey();
        let mirror = TestNode::federated(
            "m.pgext.test/log",
            &[first.p2p_addr()],
            &[("main", vkey.clone())],
        )
        .await;
        let witness = mirror
            .node
            .federation()
            .expect("a federated mirror")
            .witness()
            .to_string();
        (first, mirror, vkey, witness)
    }

    /// Waits (up to 60 s) until this node serves a checkpoint of `size` cosigned by the key
    /// named `witness`; returns it.
    ///
    /// # Panics
    /// When it does not.
    pub async fn wait_cosigned(&self, size: u64, witness: &str) -> String {
        eventually(60, || async {
            let (_, note) = self.get("/log/checkpoint").await;
            let note = String::from_utf8(note).expect("a UTF-8 checkpoint");
            if note.lines().nth(1) == Some(size.to_string().as_str())
                && note.contains(&format!("— {witness} "))
            {
                Ok(note)
            } else {
                Err(format!(
                    "no checkpoint of size {size} cosigned by {witness}: {note}"
                ))
            }
        })
        .await
    }

    /// Base URL.
    pub fn url(&self) -> String {
        self.node.url()
    }

    /// The SDK's view of the node.
    pub fn api(&self) -> pgext::api::Node {
        pgext::api::Node::new(&self.url())
    }

    /// The SDK's view of the node, as `who` (a member's token with every scope, for a private
    /// origin).
    pub fn api_as(&self, who: &Identity) -> pgext::api::Node {
        let origin = self.node.origin().name.clone();
        let token = pgext::auth::make_token(
            who,
            &origin,
            &[
                pgext_spec::token::Scope::Publish,
                pgext_spec::token::Scope::Read,
            ],
            600,
        );
        pgext::api::Node::with_client(&self.url(), pgext::http::client_with(Some(&token)))
    }

    /// Registers `who`'s account with an optional full name.
    ///
    /// # Panics
    /// When the node refuses it.
    pub async fn register(&self, who: &Identity, name: Option<&str>) -> pgext::api::Receipt {
        self.api()
            .submit(&who.account_entry(name, None, None))
            .await
            .expect("the node takes the account")
    }

    /// Publishes [`fixtures::dist`] `name` `version`, providing `ext`, with `status`, signed by
    /// `who`.
    ///
    /// # Panics
    /// When the node refuses it.
    pub async fn publish_dist(
        &self,
        who: &Identity,
        name: &str,
        version: &str,
        ext: &str,
        status: &str,
    ) -> pgext::api::Receipt {
        let files = fixtures::dist(name, version, ext, status);
        self.publish_files(who, &files, &format!("{name}-{version}"))
            .await
    }

    /// Publishes `files` as the archive `{prefix}.tar.gz` (members under `prefix/`), signed by
    /// `who`.
    ///
    /// # Panics
    /// When the archive is not a valid release or the node refuses it.
    pub async fn publish_files(
        &self,
        who: &Identity,
        files: &[(String, Vec<u8>)],
        prefix: &str,
    ) -> pgext::api::Receipt {
        let tgz = fixtures::tar_gz(prefix, files);
        let p = pgext::release::prepare_release(&tgz, None).expect("a valid release");
        self.api()
            .publish(
                &who.sign(pgext_spec::entry::Action::Release(p.release)),
                tgz,
                &format!("{prefix}.tar.gz"),
            )
            .await
            .expect("the node takes the release")
    }

    /// Runs `pgext-node role ACTION ROLE ACCOUNT` on the node's folder (through the running
    /// node); whether it succeeded, and what it printed.
    ///
    /// # Panics
    /// When the binary cannot be run.
    pub async fn role(&self, action: &str, role: &str, account: &str) -> (bool, String) {
        let data = self.dir.path().to_path_buf();
        let args = [action, role, account].map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(pgext_node_bin())
                .arg("role")
                .args(&args)
                .arg("--data")
                .arg(&data)
                .output()
                .expect("running pgext-node");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        })
        .await
        .expect("the role command's task")
    }

    /// GET, returning status and body.
    ///
    /// # Panics
    /// On transport errors.
    pub async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .expect("GET");
        let status = resp.status().as_u16();
        (status, resp.bytes().await.expect("body").to_vec())
    }

    /// GET a JSON document that must exist.
    ///
    /// # Panics
    /// When the status is not 200 or the body is not JSON.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path).await;
        assert_eq!(
            status,
            200,
            "GET {path}: {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("JSON body")
    }

    /// Number of blobs stored.
    pub fn blob_count(&self) -> usize {
        walk(&self.dir.path().join("blobs"))
    }
}

fn walk(p: &std::path::Path) -> usize {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A test identity with a key derived from `seed`.
pub fn identity(user: &str, seed: u8) -> Identity {
    Identity {
        user: user.into(),
        key: SigningKey::from_bytes(&[seed; 32]),
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Fixture distributions.
/// Polls `probe` every 50 ms until it gives `Ok`, for at most `secs` seconds: for what a node
/// does in the background (indexing, replication, deliveries). `Err` says what the probe saw.
///
/// # Panics
/// After `secs`, with the last thing the probe saw.
pub async fn eventually<T, F: std::future::Future<Output = Result<T, String>>>(
    secs: u64,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(seen) => assert!(
                tokio::time::Instant::now() < deadline,
                "not so after {secs} s: {seen}"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// [`eventually`] for a blocking probe (a command run from a blocking thread).
///
/// # Panics
/// After `secs`, with the last thing the probe saw.
pub fn eventually_blocking<T>(secs: u64, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match probe() {
            Ok(v) => return v,
            Err(seen) => assert!(
                std::time::Instant::now() < deadline,
                "not so after {secs} s: {seen}"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Serves `app` on a loopback port the OS chose, in the background; returns its base URL
/// (`http://127.0.0.1:PORT`). For the proxies, receivers and bare tile servers of the tests.
///
/// # Panics
/// When no port can be bound.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serving") });
    url
}

/// The `pgext` binary run as a user would, with its configuration and state in `home`.
#[derive(Debug)]
pub struct Cli {
    /// Where `config.toml`, `state/` and key files live.
    pub home: PathBuf,
    /// Environment every run gets (a PostgreSQL cluster's, say).
    env: Vec<(String, String)>,
    /// The folder runs start in, when not the test's.
    dir: Option<PathBuf>,
}

impl Cli {
    /// A user whose files live in `home`.
    pub fn new(home: &Path) -> Cli {
        Cli {
            home: home.to_path_buf(),
            env: Vec::new(),
            dir: None,
        }
    }

    /// The same user, every run with `env` too (a cluster's `PGHOST`, `PGPORT`, `PGUSER`).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Cli {
        self.env.extend(env);
        self
    }

    /// The same user, every run started in `dir`.
    pub fn in_dir(mut self, dir: &Path) -> Cli {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// `installed.json` of the user's state, as bytes (empty when there is none).
    pub fn records(&self) -> Vec<u8> {
        std::fs::read(self.home.join("state/installed.json")).unwrap_or_default()
    }

    /// Runs `pgext ARGS`; whether it succeeded, its standard output and error.
    ///
    /// # Panics
    /// When the binary cannot be run.
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        self.run_with(args, &[])
    }

    /// Runs `pgext ARGS` with more environment (a PostgreSQL cluster's, say).
    ///
    /// # Panics
    /// When the binary cannot be run.
    pub fn run_with(&self, args: &[&str], envs: &[(String, String)]) -> (bool, String, String) {
        let out = self.output(args, envs);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `pgext ARGS`; its exit status (`None` when a signal ended it), standard output
    /// and error.
    ///
    /// # Panics
    /// When the binary cannot be run.
    pub fn status(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.output(args, &[]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn output(&self, args: &[&str], envs: &[(String, String)]) -> std::process::Output {
        let mut cmd = std::process::Command::new(pgext_bin());
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd.args(args)
            .env("PGEXT_CONFIG", self.home.join("config.toml"))
            .env("PGEXT_STATE_DIR", self.home.join("state"))
            .env_remove("PGEXT_SIGNING_KEY")
            .env_remove("PGEXT_TOKEN")
            .envs(
                self.env
                    .iter()
                    .chain(envs)
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .output()
            .expect("running pgext")
    }

    /// Runs `pgext ARGS`, which must succeed; its standard output.
    ///
    /// # Panics
    /// When it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "pgext {args:?} failed:\n{out}{err}");
        out
    }

    /// Runs `pgext ARGS`, which must fail; its standard error.
    ///
    /// # Panics
    /// When it succeeds.
    pub fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "pgext {args:?} succeeded:\n{out}");
        err
    }

    /// A path in the user's home, as an argument.
    pub fn path(&self, name: &str) -> String {
        self.home.join(name).display().to_string()
    }
}

/// An `http://` URL on loopback where nothing listens (a port the OS just gave back): a node
/// that is down, or a host cut off from the network.
pub fn unreachable_url() -> String {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    format!("http://{addr}")
}

/// The `pgext` binary of this build (`target/<profile>/pgext`, beside the test binary's
/// `deps/` folder), built first: test runners build test targets, not other packages' binaries,
/// and a stale binary would test old code. A no-op when it is up to date.
///
/// # Panics
/// When it cannot be built.
pub fn pgext_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| built("pgext", "pgext")).clone()
}

/// The `pgext-node` binary of this workspace, built once per test run (like [`pgext_bin`]).
///
/// # Panics
/// When it cannot be built.
pub fn pgext_node_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| built("pgext-node", "pgext-node"))
        .clone()
}

/// Builds package `package` into the target folder of the running test binary, with its
/// profile; returns the binary `bin`.
fn built(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf();
    let target = dir.parent().expect("target/").to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "--locked",
        "-p",
        package,
        "--manifest-path",
    ])
    .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
    .env("CARGO_TARGET_DIR", &target);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build -p {package} failed");
    let path = dir.join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Where `scripts/bootstrap` keeps the tools it installs: `$PGEXT_TOOLS`, else
/// `$XDG_CACHE_HOME/pgext-tools` (default `~/.cache/pgext-tools`).
pub fn tools_dir() -> PathBuf {
    std::env::var("PGEXT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache")
                })
                .join("pgext-tools")
        })
}

/// The real `pgxn` (pgxnclient from PyPI) that `scripts/bootstrap` installs: `$PGEXT_PGXN`,
/// else `venv/bin/pgxn` under `$PGEXT_TOOLS` (default `~/.cache/pgext-tools`).
///
/// # Panics
/// When it is not installed.
pub fn pgxn_bin() -> PathBuf {
    if let Ok(p) = std::env::var("PGEXT_PGXN") {
        return PathBuf::from(p);
    }
    let tools = tools_dir();
    let p = tools.join("venv/bin/pgxn");
    assert!(
        p.exists(),
        "pgxnclient is not installed at {}: run scripts/bootstrap",
        p.display()
    );
    p
}

pub mod fixtures {
    use super::*;

    /// The files of a small SQL-only PGXS distribution providing `ext`.
    pub fn dist(name: &str, version: &str, ext: &str, status: &str) -> Vec<(String, Vec<u8>)> {
        let meta = serde_json::json!({
            "name": name,
            "abstract": format!("The {ext} extension for tests"),
            "version": version,
            "maintainer": "Test Author <author@example.org>",
            "license": "postgresql",
            "release_status": status,
            "provides": { ext: { "file": format!("sql/{ext}.sql"), "docfile": format!("doc/{ext}.md"), "version": version, "abstract": format!("{ext} does things") } },
            "tags": ["testing", "key value"],
            "meta-spec": { "version": "1.0.0", "url": "https://pgxn.org/meta/spec.txt" }
        });
        vec![
            ("META.json".into(), serde_json::to_vec_pretty(&meta).unwrap()),
            ("Makefile".into(), format!("EXTENSION = {ext}\nDATA = sql/{ext}--{version}.sql\nREGRESS = basic\nREGRESS_OPTS = --inputdir=test\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n").into_bytes()),
            (format!("{ext}.control"), format!("default_version = '{version}'\nrelocatable = true\n").into_bytes()),
            (format!("sql/{ext}--{version}.sql"), format!("CREATE FUNCTION {ext}_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n").into_bytes()),
            (format!("sql/{ext}.sql"), format!("CREATE FUNCTION {ext}_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n").into_bytes()),
            ("README.md".into(), format!("# {name}\n\nA test distribution.\n").into_bytes()),
            (format!("doc/{ext}.md"), format!("{ext} {version}\n=====\n\nHow to use {ext}.\n").into_bytes()),
            ("doc/howto.txt".into(), b"\n  Howto for testers\n".to_vec()),
            ("test/sql/basic.sql".into(), format!("CREATE EXTENSION {ext};\nSELECT {ext}_answer();\n").into_bytes()),
            ("test/expected/basic.out".into(), expected_answer(ext).into_bytes()),
        ]
    }

    /// [`dist`] 1.0.0 with its own abstract and README, for search and site tests.
    pub fn dist_about(
        name: &str,
        ext: &str,
        abstract_: &str,
        readme: &str,
    ) -> Vec<(String, Vec<u8>)> {
        let mut files = dist(name, "1.0.0", ext, "stable");
        for (path, data) in &mut files {
            if path == "META.json" {
                let mut meta: serde_json::Value = serde_json::from_slice(data).unwrap();
                meta["abstract"] = abstract_.into();
                *data = serde_json::to_vec(&meta).unwrap();
            } else if path == "README.md" {
                *data = readme.as_bytes().to_vec();
            }
        }
        files
    }

    /// What pg_regress prints for `test/sql/basic.sql`.
    fn expected_answer(ext: &str) -> String {
        let col = format!("{ext}_answer");
        let w = col.len();
        format!(
            "CREATE EXTENSION {ext};\nSELECT {ext}_answer();\n {col} \n{}\n {:>w$}\n(1 row)\n\n",
            "-".repeat(w + 2),
            42
        )
    }

    /// A C extension: `MODULES`, a shared library and `add_one(int)`.
    pub fn c_dist(name: &str, version: &str) -> Vec<(String, Vec<u8>)> {
        let meta = serde_json::json!({
            "name": name, "abstract": "A C extension for tests", "version": version,
            "maintainer": ["Test Author <author@example.org>"], "license": "postgresql",
            "provides": { name: { "file": format!("{name}--{version}.sql"), "version": version } },
            "meta-spec": { "version": "1.0.0" }
        });
        vec![
            ("META.json".into(), serde_json::to_vec_pretty(&meta).unwrap()),
            ("Makefile".into(), format!("EXTENSION = {name}\nMODULES = {name}\nDATA = {name}--{version}.sql\nREGRESS = basic\nREGRESS_OPTS = --inputdir=test\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n").into_bytes()),
            (format!("{name}.control"), format!("default_version = '{version}'\nmodule_pathname = '$libdir/{name}'\nrelocatable = true\n").into_bytes()),
            (format!("{name}--{version}.sql"), b"CREATE FUNCTION add_one(int) RETURNS int AS 'MODULE_PATHNAME', 'add_one' LANGUAGE C STRICT;\n".to_vec()),
            (format!("{name}.c"), b"#include \"postgres.h\"\n#include \"fmgr.h\"\nPG_MODULE_MAGIC;\nPG_FUNCTION_INFO_V1(add_one);\nDatum add_one(PG_FUNCTION_ARGS) { PG_RETURN_INT32(PG_GETARG_INT32(0) + 1); }\n".to_vec()),
            ("test/sql/basic.sql".into(), format!("CREATE EXTENSION {name};\nSELECT add_one(41);\n").into_bytes()),
            ("test/expected/basic.out".into(), format!("CREATE EXTENSION {name};\nSELECT add_one(41);\n add_one \n---------\n      42\n(1 row)\n\n").into_bytes()),
        ]
    }

    /// A `.tar.gz` of `files` under `prefix/`.
    pub fn tar_gz(prefix: &str, files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(enc);
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, format!("{prefix}/{path}"), data.as_slice())
                .unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    /// A zip of `files` with exactly these member names.
    pub fn zip_raw(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, data) in files {
            w.start_file(path.as_str(), zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
}
