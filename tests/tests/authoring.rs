//! The author's commands of the `pgext` binary against a real node: keygen, register, whoami,
//! publish from a folder (a retry with the same bytes gets the same answer, other bytes are
//! refused), co-owners (one added publishes, one removed cannot), yank (not chosen, still
//! verifiable) and unyank, a rotated key that publishes while the old one is refused, and a CI
//! key given in `PGEXT_SIGNING_KEY` that publishes until it is revoked.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgext_tests::{TestNode, fixtures, pgext_bin};
use serde_json::Value;

struct Author {
    home: PathBuf,
}

impl Author {
    fn run(&self, args: &[&str], env_key: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new(pgext_bin());
        cmd.args(args)
            .env("PGEXT_CONFIG", self.home.join("config.toml"))
            .env("PGEXT_STATE_DIR", self.home.join("state"))
            .env_remove("PGEXT_SIGNING_KEY");
        if let Some(k) = env_key {
            cmd.env("PGEXT_SIGNING_KEY", k);
        }
        let out = cmd.output().expect("running pgext");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None);
        assert!(ok, "pgext {args:?} failed:\n{out}{err}");
        out
    }

    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None);
        assert!(!ok, "pgext {args:?} succeeded:\n{out}");
        err
    }

    fn key(&self, name: &str) -> String {
        self.home.join(name).display().to_string()
    }

    /// A project folder of `dist` at `version`, with one extra line when `changed`.
    fn project(&self, dist: &str, version: &str, changed: bool) -> String {
        let dir = self.home.join(format!("{dist}-{version}-{changed}"));
        for (path, mut data) in fixtures::dist(dist, version, dist, "stable") {
            if changed && path == "README.md" {
                data.extend_from_slice(b"\nOne more line.\n");
            }
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        dir.display().to_string()
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_publish_share_yank_and_rotate() {
    let node = TestNode::start().await;
    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let a = Author {
            home: home.path().to_path_buf(),
        };
        a.ok(&["registry", "add", "main", &url, "--yes"]);
        let (alice, bob) = (a.key("alice.key"), a.key("bob.key"));

        // Keys and accounts.
        let out = json(&a.ok(&["keygen", "alice", "--key", &alice, "--json"]));
        assert_eq!(out["user"], "alice");
        assert_eq!(mode(Path::new(&alice)), 0o600);
        let err = a.fails(&["keygen", "alice", "--key", &alice]);
        assert!(err.contains("not overwriting a key"), "{err}");
        a.ok(&["keygen", "bob", "--key", &bob]);
        let who = json(&a.ok(&["whoami", "--key", &alice, "--json"]));
        assert!(who["account"].is_null(), "{who}");
        a.ok(&["register", "--key", &alice, "--name", "Alice"]);
        a.ok(&["register", "--key", &bob]);
        let who = json(&a.ok(&["whoami", "--key", &alice, "--json"]));
        assert_eq!(who["account"]["name"], "Alice", "{who}");
        assert_eq!(who["account"]["keys"][0]["key_id"], who["key"]["key_id"]);

        // Publish from a folder; the same bytes again get the same answer.
        let first = json(&a.ok(&[
            "publish",
            &a.project("pgext_auth", "1.0.0", false),
            "--key",
            &alice,
            "--json",
        ]));
        let again = json(&a.ok(&[
            "publish",
            &a.project("pgext_auth", "1.0.0", false),
            "--key",
            &alice,
            "--json",
        ]));
        assert_eq!(first["index"], again["index"]);
        assert_eq!(first["sha256"], again["sha256"]);
        assert!(
            first["url"]
                .as_str()
                .unwrap()
                .ends_with("/dist/pgext_auth/1.0.0/")
        );
        let err = a.fails(&[
            "publish",
            &a.project("pgext_auth", "1.0.0", true),
            "--key",
            &alice,
        ]);
        assert!(err.contains("published already"), "{err}");
        // A project that does not validate is not uploaded.
        let broken = a.project("pgext_auth", "1.0.1", false);
        std::fs::remove_file(Path::new(&broken).join("doc/pgext_auth.md")).unwrap();
        let err = a.fails(&["publish", &broken, "--key", &alice]);
        assert!(
            err.contains("not published: provides.pgext_auth.docfile"),
            "{err}"
        );
        // A SQL file the build generates (here from a `.in` template) is a warning, as PGXN
        // publishes such releases; `--strict` refuses it.
        let generated = a.project("pgext_auth_gen", "1.0.0", false);
        let sql = Path::new(&generated).join("sql/pgext_auth_gen.sql");
        std::fs::rename(&sql, sql.with_extension("sql.in")).unwrap();
        let err = a.fails(&["publish", &generated, "--key", &alice, "--strict"]);
        assert!(
            err.contains("not published: warning: provides.pgext_auth_gen.file"),
            "{err}"
        );
        let (ok, out, err) = a.run(&["publish", &generated, "--key", &alice], None);
        assert!(
            ok && out.contains("published pgext_auth_gen 1.0.0")
                && err.contains(
                    "warning: provides.pgext_auth_gen.file: sql/pgext_auth_gen.sql is not in"
                ),
            "{out}{err}"
        );

        // A co-owner publishes; once removed, no more.
        let err = a.fails(&[
            "publish",
            &a.project("pgext_auth", "1.1.0", false),
            "--key",
            &bob,
        ]);
        assert!(err.contains("not an owner"), "{err}");
        a.ok(&["owner", "add", "pgext_auth", "bob", "--key", &alice]);
        let owners = json(&a.ok(&["owner", "list", "pgext_auth", "--json"]));
        assert_eq!(owners, serde_json::json!(["alice", "bob"]));
        a.ok(&[
            "publish",
            &a.project("pgext_auth", "1.1.0", false),
            "--key",
            &bob,
        ]);
        a.ok(&["owner", "remove", "pgext_auth", "bob", "--key", &alice]);
        let err = a.fails(&[
            "publish",
            &a.project("pgext_auth", "1.2.0", false),
            "--key",
            &bob,
        ]);
        assert!(err.contains("not an owner"), "{err}");

        // A yanked version is not chosen, and stays verifiable by name.
        a.ok(&[
            "yank",
            "pgext_auth",
            "1.1.0",
            "--reason",
            "broken build",
            "--key",
            &alice,
        ]);
        let chosen = json(&a.ok(&["verify", "pgext_auth", "--json"]));
        assert_eq!(chosen["version"], "1.0.0");
        let (ok, out, err) = a.run(&["verify", "pgext_auth@1.1.0", "--json"], None);
        assert!(ok, "{err}");
        assert_eq!(json(&out)["publisher"], "bob");
        assert!(err.contains("yanked (broken build)"), "{err}");
        a.ok(&["unyank", "pgext_auth", "1.1.0", "--key", &alice]);
        assert_eq!(
            json(&a.ok(&["verify", "pgext_auth", "--json"]))["version"],
            "1.1.0"
        );

        // A rotated key publishes; the old one is refused.
        a.ok(&["key", "rotate", "--key", &alice]);
        let old = format!("{alice}.old");
        assert!(Path::new(&old).exists());
        assert_eq!(mode(Path::new(&alice)), 0o600);
        a.ok(&[
            "publish",
            &a.project("pgext_auth", "1.3.0", false),
            "--key",
            &alice,
        ]);
        let err = a.fails(&[
            "publish",
            &a.project("pgext_auth", "1.4.0", false),
            "--key",
            &old,
        ]);
        assert!(err.contains("key-not-active"), "{err}");

        // A CI key, added to the account and given in the environment, until it is revoked.
        let ci = a.key("ci.key");
        a.ok(&["keygen", "alice", "--key", &ci]);
        let ci_info = json(&a.ok(&["whoami", "--key", &ci, "--json"]));
        a.ok(&[
            "key",
            "add",
            ci_info["key"]["public_key"].as_str().unwrap(),
            "--key",
            &alice,
        ]);
        let line = std::fs::read_to_string(&ci).unwrap();
        let project = a.project("pgext_auth", "1.4.0", false);
        let (ok, out, err) = a.run(&["publish", &project], Some(&line));
        assert!(ok, "{out}{err}");
        a.ok(&[
            "key",
            "revoke",
            ci_info["key"]["key_id"].as_str().unwrap(),
            "--key",
            &alice,
        ]);
        let project = a.project("pgext_auth", "1.5.0", false);
        let (ok, _, err) = a.run(&["publish", &project], Some(&line));
        assert!(!ok && err.contains("key-not-active"), "{err}");
        let who = json(&a.ok(&["whoami", "--key", &alice, "--json"]));
        let active: Vec<bool> = who["account"]["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["active"].as_bool().unwrap())
            .collect();
        assert_eq!(active.iter().filter(|x| **x).count(), 1, "{who}");
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}

/// `init` → `validate` → `bundle` → `publish` → `install` → `check` → `load`, for a SQL and a
/// C project, into a real PostgreSQL; and every real-world META validates while the invalid
/// ones are refused naming their field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_init_to_an_installed_extension() {
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "pgext_new_");
    let node = TestNode::start().await;
    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let cluster = pgext_tests::pg::Cluster::start();
        cluster.psql("postgres", "CREATE DATABASE app");
        let home = tempfile::tempdir().unwrap();
        let a = Author {
            home: home.path().to_path_buf(),
        };
        a.ok(&["registry", "add", "main", &url, "--yes"]);
        let key = a.key("alice.key");
        a.ok(&["keygen", "alice", "--key", &key]);
        a.ok(&["register", "--key", &key]);
        let pg = |args: &[&str]| {
            let out = Command::new(pgext_bin())
                .args(args)
                .env("PGEXT_CONFIG", a.home.join("config.toml"))
                .env("PGEXT_STATE_DIR", a.home.join("state"))
                .envs(cluster.env())
                .current_dir(&a.home)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "pgext {args:?}:\n{text}");
            text
        };
        for (name, flag, meta) in [
            ("pgext_new_sql", "--sql", None),
            ("pgext_new_c", "--c", Some("--meta-v1")),
        ] {
            let mut init = vec!["init", name, flag];
            init.extend(meta);
            pg(&init);
            let dir = a.home.join(name);
            assert!(dir.join(".github/workflows/ci.yml").is_file());
            let v1 = std::fs::read_to_string(dir.join("META.json")).unwrap();
            assert_eq!(v1.contains("\"1.0.0\""), meta.is_some(), "{v1}");
            let dir = dir.display().to_string();
            pg(&["validate", &dir]);
            let out = json(&pg(&["bundle", &dir, "-o", &dir, "--json"]));
            let zip = std::fs::read(out["file"].as_str().unwrap()).unwrap();
            assert_eq!(
                pgext_log::hex(&pgext_log::sha256(&zip)),
                out["sha256"].as_str().unwrap()
            );
            // The bundle left in the folder is not part of the next one (no .git here, so
            // every file counts: the zip is removed first).
            std::fs::remove_file(out["file"].as_str().unwrap()).unwrap();
            let published = json(&pg(&["publish", &dir, "--key", &key, "--json"]));
            assert_eq!(
                published["sha256"], out["sha256"],
                "publish signs what bundle built"
            );
            pg(&["install", name]);
            pg(&["check", name]);
            pg(&["load", name, "-d", "app"]);
            assert_eq!(
                cluster.psql("app", &format!("SELECT {name}_hello()")),
                format!("hello from {name}")
            );
            pg(&["unload", name, "-d", "app"]);
            pg(&["uninstall", name]);
        }

        // Every real-world META validates; every invalid one is refused, naming its field.
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/testdata");
        for e in std::fs::read_dir(data.join("real-meta")).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "json") {
                a.ok(&["validate", e.path().to_str().unwrap()]);
            }
        }
        for (file, field) in [
            ("v2-no-version.json", "missing properties 'version'"),
            ("v1-bad-version.json", "/version"),
            ("v1-no-provides.json", "missing properties 'provides'"),
            ("v1-bad-license.json", "/license"),
            ("v1-short-name.json", "/name"),
            ("unknown-spec.json", "meta-spec version"),
        ] {
            let path = data.join("invalid-meta").join(file);
            let err = a.fails(&["validate", path.to_str().unwrap()]);
            assert!(err.contains(field), "{file}: {err}");
        }
    })
    .await
    .unwrap();
    node.node.shutdown().await;
}
