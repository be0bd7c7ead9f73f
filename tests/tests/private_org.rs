//! An organization's private registry beside the public one, as an operator runs it: the
//! processes of `deploy/private-registry.sh` (a public origin; the organization's node that
//! sequences the private origin and mirrors the public one; its second node, the one allowed
//! peer, mirroring both), an outside node that is not allowed, the `pgext` client of a member
//! with both registries, the real `pgxnclient` with a token, and PostgreSQL 15.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pgext_tests::pg::Cluster;
use pgext_tests::{
    Cli, eventually_blocking, fixtures, identity, pgext_bin, pgext_node_bin, pgxn_bin,
};

/// A process group killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM the script: it stops its nodes.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `deploy/private-registry.sh RUN` and reads what it prints.
fn organization(run: &Path) -> (Proc, HashMap<String, String>) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/private-registry.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .arg(run)
        .env("PGEXT_NODE", pgext_node_bin())
        .env("PGEXT", pgext_bin())
        // Request spans too: no token may reach a log at any level.
        .env("RUST_LOG", "info,tower_http=debug,pgext_node=debug")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting deploy/private-registry.sh");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let proc = Proc(child);
    let mut said = HashMap::new();
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the script stopped before printing everything"
        );
        let (name, value) = line.trim().split_once(' ').expect("NAME VALUE");
        said.insert(name.to_string(), value.to_string());
        if name == "admin-key" {
            return (proc, said);
        }
    }
}

fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut args = vec!["-s", "-o", "-", "-w", "\n%{http_code}", url];
    let header;
    if let Some(t) = token {
        header = format!("Authorization: Bearer {t}");
        args.extend(["-H", header.as_str()]);
    }
    let out = Command::new("curl").args(&args).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn write_archive(dir: &Path, name: &str, version: &str, files: &[(String, Vec<u8>)]) -> String {
    let path = dir.join(format!("{name}-{version}.tar.gz"));
    std::fs::write(&path, fixtures::tar_gz(&format!("{name}-{version}"), files)).unwrap();
    path.display().to_string()
}

#[test]
fn an_organization_runs_a_private_registry_beside_the_public_one() {
    for prefix in ["pgext_pubext", "acme_"] {
        pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), prefix);
    }
    let run = tempfile::tempdir().unwrap();
    let (_org, said) = organization(run.path());
    let (public, a, b) = (&said["public"], &said["acme-a"], &said["acme-b"]);
    let (public_vkey, acme_vkey) = (&said["public-vkey"], &said["acme-vkey"]);
    let b_witness = &said["acme-b-witness"];
    let work = tempfile::tempdir().unwrap();

    // Someone publishes on the public registry.
    let pub_home = tempfile::tempdir().unwrap();
    let publisher = Cli::new(pub_home.path());
    publisher.ok(&["registry", "add", "public", public, "--vkey", public_vkey]);
    publisher.ok(&["keygen", "pat"]);
    publisher.ok(&["register"]);
    let sql = fixtures::dist("pgext_pubext", "1.0.0", "pgext_pubext", "stable");
    publisher.ok(&[
        "publish",
        &write_archive(work.path(), "pgext_pubext", "1.0.0", &sql),
    ]);
    // And someone squats a name the organization owns, in public.
    let squat = fixtures::dist("acme_evil", "6.6.6", "acme_evil", "stable");
    publisher.ok(&[
        "publish",
        &write_archive(work.path(), "acme_evil", "6.6.6", &squat),
    ]);

    // A member: invited by the admin, with both registries; internal names are the
    // organization's. pgext signs its own tokens with the member's key.
    let home = tempfile::tempdir().unwrap();
    let alice = Cli::new(home.path());
    let keygen: serde_json::Value =
        serde_json::from_str(&alice.ok(&["keygen", "alice", "--json"])).unwrap();
    let alice_pub = keygen["public_key"].as_str().unwrap().to_string();
    let admin = Cli::new(run.path());
    let invitation = admin
        .ok(&["invite", "alice", &alice_pub, "--key", &said["admin-key"]])
        .trim()
        .to_string();
    // Without a member's key, the private registry shows nothing, not even its log key.
    let err = Cli::new(work.path()).fails(&["registry", "add", "acme", a]);
    assert!(err.contains("private"), "{err}");
    alice.ok(&[
        "registry",
        "add",
        "acme",
        a,
        &format!("{b}/origins/acme"),
        "--vkey",
        acme_vkey,
        "--names",
        "acme_*",
        "--witness",
        b_witness,
        "--quorum",
        "1",
    ]);
    alice.ok(&[
        "registry",
        "add",
        "public",
        &format!("{a}/origins/public"),
        "--vkey",
        public_vkey,
    ]);
    let list = alice.ok(&["registry", "list"]);
    assert!(list.contains("owns acme_*"), "{list}");
    assert!(
        list.contains("default: every name no registry owns"),
        "{list}"
    );
    alice.ok(&["--registry", "acme", "register", "--invite", &invitation]);
    let widget = fixtures::dist("acme_widget", "1.0.0", "acme_widget", "stable");
    let tool = fixtures::dist("acme_tool", "2.0.0", "acme_tool", "stable");
    for (name, version, files) in [
        ("acme_widget", "1.0.0", &widget),
        ("acme_tool", "2.0.0", &tool),
    ] {
        alice.ok(&[
            "--registry",
            "acme",
            "publish",
            &write_archive(work.path(), name, version, files),
        ]);
    }

    // Both organization nodes serve it once B verified and cosigned (the quorum asks for B).
    let token = {
        let out = alice.ok(&[
            "--registry",
            "acme",
            "token",
            "create",
            "--read",
            "--expires",
            "1h",
        ]);
        let mut lines = out.lines();
        let token = lines.next().unwrap().to_string();
        let mirror = lines.next().unwrap();
        assert!(
            mirror.starts_with(&format!("pgxn-mirror {a}/t/{token}/")),
            "{mirror}"
        );
        token
    };
    eventually_blocking(60, || {
        let (status, note) = get(&format!("{a}/log/checkpoint"), Some(&token));
        if status == 200
            && note.lines().nth(1) == Some("3")
            && note.contains(&format!("— {}", b_witness.split('+').next().unwrap()))
        {
            Ok(())
        } else {
            Err(format!(
                "A's checkpoint is not at size 3 cosigned by B: {status} {note}"
            ))
        }
    });
    eventually_blocking(60, || {
        let (status, doc) = get(
            &format!("{b}/origins/acme/dist/acme_tool.json"),
            Some(&token),
        );
        (status == 200)
            .then_some(())
            .ok_or(format!("{status} {doc}"))
    });
    eventually_blocking(60, || {
        let (status, doc) = get(&format!("{a}/origins/public/dist/pgext_pubext.json"), None);
        (status == 200)
            .then_some(())
            .ok_or(format!("{status} {doc}"))
    });

    // Anonymous requests get nothing of the private origin, on either node; searches of the
    // public origins do not know its names.
    for url in [
        format!("{a}/dist/acme_widget.json"),
        format!("{a}/dist/acme_widget/1.0.0/acme_widget-1.0.0.zip"),
        format!("{a}/log/checkpoint"),
        format!("{a}/api/v1/search?q=acme_widget"),
        format!("{a}/"),
        format!("{b}/origins/acme/dist/acme_widget.json"),
        format!("{b}/origins/acme/log/tile/entries/000.p/3"),
        format!("{b}/origins/acme/api/v1/dists/acme_widget"),
        format!("{b}/origins/acme/feeds/recent.xml"),
    ] {
        let (status, body) = get(&url, None);
        assert_eq!(status, 401, "{url}: {body}");
        assert!(!body.contains("acme_widget"), "{url}: {body}");
    }
    let acme_origin = acme_vkey.split('+').next().unwrap();
    for url in [
        format!("{a}/origins/public/api/v1/search?q=acme_widget"),
        format!("{b}/origins/public/api/v1/search?q=acme_widget"),
        format!("{b}/api/v1/search?q=acme_widget"),
        format!("{b}/api/v1/origins"),
        format!("{a}/origins/public/api/v1/origins"),
    ] {
        let (status, body) = get(&url, None);
        assert_eq!(status, 200, "{url}: {body}");
        assert!(!body.contains("\"dist\":\"acme_widget\""), "{url}: {body}");
        assert!(
            !body.contains(&format!("\"{acme_origin}\"")),
            "{url}: {body}"
        );
        assert!(!body.contains("/origins/acme"), "{url}: {body}");
    }

    // The member installs a public and an internal extension through the organization's
    // nodes, each fully verified; then pgxnclient installs another internal one with a token.
    let cluster = Cluster::start();
    let env = cluster.env();
    for name in ["pgext_pubext", "acme_widget"] {
        let (ok, out, err) = alice.run_with(&["install", name], &env);
        assert!(ok, "pgext install {name}: {out}{err}");
    }
    let (ok, out, err) = alice.run_with(&["list", "--json"], &env);
    assert!(ok, "{err}");
    let installed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let origin_of = |dist: &str| {
        installed
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["dist"] == dist)
            .map(|i| i["origin"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        origin_of("acme_widget"),
        acme_vkey.split('+').next().unwrap()
    );
    assert_eq!(
        origin_of("pgext_pubext"),
        public_vkey.split('+').next().unwrap()
    );
    // A member audits the private log with its own key; an auditor without one, with a token.
    let (ok, out, err) = alice.run_with(&["--registry", "acme", "audit", "--artifacts"], &env);
    assert!(ok, "member audit: {out}{err}");
    let auditor = tempfile::tempdir().unwrap();
    let (ok, out, err) = Cli::new(auditor.path()).run_with(
        &[
            "audit",
            "--vkey",
            acme_vkey,
            a,
            &format!("{b}/origins/acme"),
        ],
        &[("PGEXT_TOKEN".to_string(), token.clone())],
    );
    assert!(ok, "auditor with a token: {out}{err}");
    let (ok, _, err) = Cli::new(auditor.path()).run_with(&["audit", "--vkey", acme_vkey, a], &[]);
    assert!(!ok, "an audit without a token passed: {err}");
    // The public dist named like an internal one is not offered, and not installed.
    eventually_blocking(30, || {
        let (ok, out, err) = alice.run_with(&["search", "evil"], &env);
        if ok && err.contains("acme_evil from registry public is ignored") {
            assert!(!out.contains("acme_evil"), "{out}");
            Ok(())
        } else {
            Err(format!("{out}{err}"))
        }
    });
    let (ok, _, err) = alice.run_with(&["install", "acme_evil"], &env);
    assert!(!ok && err.contains("acme"), "{err}");
    // An owned name is never asked elsewhere: not even with --registry.
    let err = alice.fails(&["--registry", "public", "info", "acme_widget"]);
    assert!(err.contains("belongs to registry acme"), "{err}");
    cluster.psql(
        "postgres",
        "CREATE EXTENSION acme_widget; CREATE EXTENSION pgext_pubext",
    );

    let pgxn_work = tempfile::tempdir().unwrap();
    let mirror = format!("{b}/t/{token}/origins/acme/");
    let pgxn = |args: &[&str]| {
        let out = Command::new(pgxn_bin())
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(pgxn_work.path())
            .output()
            .expect("running pgxn");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = pgxn(&["install", "--mirror", &mirror, "acme_tool"]);
    assert!(ok, "pgxn install with a token: {out}");
    cluster.psql("postgres", "CREATE EXTENSION acme_tool");
    let (ok, out) = pgxn(&[
        "info",
        "--mirror",
        &format!("{b}/origins/acme/"),
        "acme_tool",
    ]);
    assert!(!ok, "pgxn without a token read the private registry: {out}");

    // An outside node that knows the key and asks A for the private origin, but is not
    // allowed: it mirrors the public registry and never holds a byte of the private one.
    let outside_dir = tempfile::tempdir().unwrap();
    let a_p2p = std::fs::read_to_string(run.path().join("acme-a.out"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("p2p ").map(str::to_string))
        .unwrap();
    let outside = Command::new(pgext_node_bin())
        .args([
            "--data",
            outside_dir.path().to_str().unwrap(),
            "--http",
            "127.0.0.1:0",
        ])
        .args([
            "--origin",
            "outside.pgext.test/log",
            "--p2p-listen",
            "/ip4/127.0.0.1/tcp/0",
        ])
        .args([
            "--peer",
            &a_p2p,
            "--mirror",
            &format!("public={public_vkey}"),
        ])
        .args(["--private-mirror", &format!("acme={acme_vkey}")])
        // It trusts A with the private origin; A does not trust it back.
        .args(["--allow", a_p2p.rsplit('/').next().unwrap()])
        .arg("run")
        .stdout(std::fs::File::create(work.path().join("outside.out")).unwrap())
        .stderr(std::fs::File::create(work.path().join("outside.log")).unwrap())
        .spawn()
        .unwrap();
    let outside = Proc(outside);
    let outside_url = eventually_blocking(30, || {
        std::fs::read_to_string(work.path().join("outside.out"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("pgext-node serving "))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
            .ok_or_else(|| "the outside node has not started".to_string())
    });
    eventually_blocking(60, || {
        let (status, doc) = get(
            &format!("{outside_url}/origins/public/dist/pgext_pubext.json"),
            None,
        );
        (status == 200)
            .then_some(())
            .ok_or(format!("{status} {doc}"))
    });
    // Long enough for several polls of every peer (the default poll is 5 s).
    std::thread::sleep(Duration::from_secs(6));
    let (status, body) = get(
        &format!("{outside_url}/origins/acme/log/checkpoint"),
        Some(&token),
    );
    assert_eq!(
        status, 401,
        "the outsider holds no state of the private origin: {body}"
    );
    drop(outside);
    let zip_sha = {
        let (_, doc) = get(&format!("{a}/api/v1/dists/acme_widget"), Some(&token));
        let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
        doc["releases"][0]["sha256"].as_str().unwrap().to_string()
    };
    let mut stack = vec![outside_dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            assert!(
                !p.display().to_string().contains(&zip_sha),
                "{}",
                p.display()
            );
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !bytes.windows(11).any(|w| w == b"acme_widget"),
                    "{} holds a private name",
                    p.display()
                );
            }
        }
    }
    // A's counter says the outsider asked and was refused.
    let (_, metrics) = get(&format!("{a}/origins/public/metrics"), None);
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pgext_p2p_private_refused_total "))
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert!(refused >= 1.0, "{metrics}");

    // A CI key's token works until the key is revoked, on both nodes.
    let ci = identity("alice", 77);
    let ci_home = tempfile::tempdir().unwrap();
    std::fs::write(
        ci_home.path().join("ci.key"),
        pgext::author::format_identity(&ci),
    )
    .unwrap();
    let ci_pub = pgext_spec::authority::encode_public_key(&ci.key.verifying_key());
    alice.ok(&["--registry", "acme", "key", "add", &ci_pub]);
    let ci_key = ci_home.path().join("ci.key").display().to_string();
    let ci_token = alice
        .ok(&[
            "--registry",
            "acme",
            "--key",
            &ci_key,
            "token",
            "create",
            "--read",
        ])
        .lines()
        .next()
        .unwrap()
        .to_string();
    for base in [a.to_string(), format!("{b}/origins/acme")] {
        eventually_blocking(60, || {
            let (status, _) = get(&format!("{base}/dist/acme_tool.json"), Some(&ci_token));
            (status == 200)
                .then_some(())
                .ok_or(format!("{base}: {status}"))
        });
    }
    let key_id = pgext_spec::entry::user_key_id(ci.key.verifying_key().as_bytes());
    alice.ok(&["--registry", "acme", "key", "revoke", &key_id]);
    for base in [a.to_string(), format!("{b}/origins/acme")] {
        eventually_blocking(60, || {
            let (status, body) = get(&format!("{base}/dist/acme_tool.json"), Some(&ci_token));
            (status == 401 && body.contains("revoked"))
                .then_some(())
                .ok_or(format!("{base}: {status} {body}"))
        });
    }
    // Nothing of any token reached a node's log.
    for file in [
        "acme-a.out",
        "acme-a.log",
        "acme-b.out",
        "acme-b.log",
        "public.out",
    ] {
        let log = std::fs::read_to_string(run.path().join(file)).unwrap();
        if file.ends_with(".out") {
            assert!(log.contains("DEBUG"), "{file} is not the debug log");
        }
        for t in [&token, &ci_token] {
            assert!(!log.contains(t.as_str()), "{file} holds a token");
        }
        assert!(!log.contains("pgext1."), "{file} holds a token");
    }
}
