//! Cluster manifests, as a team uses them: `pgext.toml` locked into `pgext.lock` (checked
//! against the node's own answers and the archives' digests computed here), synced into
//! PostgreSQL 15 twice (the second changes nothing), changed and synced again (a replace, a
//! removal), refused when the lock was edited (entry hash, digest, index); then packed and
//! synced on a "host" whose configuration reaches no node, checked by `CREATE EXTENSION`, and a
//! pack with a missing or foreign proof file refused with nothing installed.

use std::io::Read as _;
use std::process::Command;

use crate::deps::{dist_with, ours};
use pgext_tests::pg::Cluster;
use pgext_tests::{Cli, TestNode, fixtures, identity, pgext_bin};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The members of a zip, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_locks_syncs_packs_and_installs_offline() {
    let prefixes = ["pgext_lk_"];
    pgext_tests::pg::clear_leftovers(&pgext_tests::pg::pg15_config(), "pgext_lk_");
    let node = TestNode::start().await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    // A dist recommending one whose control file requires contrib's dblink, as pg_partman
    // and pg_jobmon do; and a plain dist in two versions.
    for (name, version, prereqs, requires) in [
        ("pgext_lk_jobmon", "1.4.1", json!({}), Some("dblink")),
        (
            "pgext_lk_partman",
            "5.1.0",
            json!({"runtime": {"requires": {"PostgreSQL": "14.0.0"}, "recommends": {"pgext_lk_jobmon": "1.4.1"}}}),
            None,
        ),
        ("pgext_lk_sql", "1.0.0", json!({}), None),
        ("pgext_lk_sql", "1.1.0", json!({}), None),
    ] {
        node.publish_files(
            &alice,
            &dist_with(name, version, name, prereqs, requires),
            &format!("{name}-{version}"),
        )
        .await;
    }
    // What the node says, to hold the lock against.
    let mut expected = Vec::new();
    for (name, version) in [
        ("pgext_lk_jobmon", "1.4.1"),
        ("pgext_lk_partman", "5.1.0"),
        ("pgext_lk_sql", "1.0.0"),
    ] {
        let doc = node.json(&format!("/api/v1/dists/{name}")).await;
        let rel = doc["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == version)
            .unwrap()
            .clone();
        let (_, zip) = node
            .get(&format!("/dist/{name}/{version}/{name}-{version}.zip"))
            .await;
        let sha: String = sha2::Sha256::digest(&zip)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        expected.push((name, version, rel["index"].as_u64().unwrap(), sha));
    }
    let url = node.url();

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        cluster.psql("postgres", "CREATE DATABASE app");
        let online_home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let dir = project.path();
        let cli = Cli::new(online_home.path())
            .with_env(cluster.env())
            .in_dir(dir);
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        let manifest = |sql: Option<&str>| {
            let sql = sql
                .map(|v| format!("pgext_lk_sql = {{ version = \"{v}\", registry = \"main\", kind = \"source\" }}\n"))
                .unwrap_or_default();
            std::fs::write(
                dir.join("pgext.toml"),
                format!(
                    "with_recommends = true\n\n[postgres]\npg_config = \"{}\"\n\n[dists]\npgext_lk_partman = \">= 5.0.0\"\n{sql}",
                    pgext_tests::pg::pg15_config().display()
                ),
            )
            .unwrap();
        };
        // A manifest naming an unknown dist, or a range that does not read: no lock.
        for (text, says) in [
            ("[dists]\npgext_lk_nowhere = \">= 1.0.0\"\n", "has no distribution pgext_lk_nowhere"),
            ("[dists]\npgext_lk_sql = \">= one\"\n", "dists.pgext_lk_sql"),
        ] {
            std::fs::write(dir.join("pgext.toml"), text).unwrap();
            let err = cli.fails(&["lock"]);
            assert!(err.contains(says), "{text}: {err}");
            assert!(!dir.join("pgext.lock").exists());
        }
        manifest(Some("== 1.0.0"));

        // The lock: exact releases, as the node lists them, in install order.
        let out = cli.ok(&["lock"]);
        assert!(out.contains("wrote pgext.lock (3 dists)"), "{out}");
        let text = std::fs::read_to_string(dir.join("pgext.lock")).unwrap();
        let lock: toml::Value = toml::from_str(&text).unwrap();
        let dists = lock["dist"].as_array().unwrap();
        for (d, (name, version, index, sha)) in dists.iter().zip(&expected) {
            assert_eq!(d["name"].as_str(), Some(*name), "{text}");
            assert_eq!(d["version"].as_str(), Some(*version));
            assert_eq!(d["index"].as_integer(), Some(*index as i64));
            assert_eq!(d["sha256"].as_str(), Some(sha.as_str()));
            assert_eq!(d["kind"].as_str(), Some("source"));
        }
        assert_eq!(lock["registry"][0]["name"].as_str(), Some("main"));
        assert!(
            lock["registry"][0]["checkpoint"]
                .as_str()
                .unwrap()
                .contains("\n— "),
            "the checkpoint is a signed note"
        );

        // A lock edited by hand is refused before anything changes.
        let jobmon = &dists[0];
        let edits = [
            ("entry hash", jobmon["entry_hash"].as_str().unwrap().to_string()),
            ("archive SHA-256", jobmon["sha256"].as_str().unwrap().to_string()),
        ];
        for (what, value) in edits {
            let flipped: String = value
                .chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { if c == '0' { '1' } else { '0' } } else { c })
                .collect();
            std::fs::write(dir.join("pgext.lock"), text.replace(&value, &flipped)).unwrap();
            let err = cli.fails(&["sync", "--yes"]);
            assert!(
                err.contains(&format!("with {what} {flipped}")) && err.contains("the lock was edited"),
                "{what}: {err}"
            );
        }
        let index_line = format!("index = {}\n", expected[0].2);
        assert!(text.contains(&index_line));
        std::fs::write(
            dir.join("pgext.lock"),
            text.replacen(&index_line, &format!("index = {}\n", expected[1].2), 1),
        )
        .unwrap();
        let err = cli.fails(&["sync", "--yes"]);
        assert!(err.contains("the lock was edited"), "{err}");
        assert!(ours(&prefixes).is_empty());
        std::fs::write(dir.join("pgext.lock"), &text).unwrap();

        // Sync installs the lock, in order, and adopts what was installed by hand as locked;
        // a second sync changes nothing.
        cli.ok(&["install", "pgext_lk_sql@1.0.0", "--yes"]);
        let out = cli.ok(&["sync", "--yes"]);
        assert!(
            out.contains("install pgext_lk_jobmon 1.4.1 (source)")
                && out.contains("pgext_lk_partman 5.1.0 installed")
                && out.contains("adopt pgext_lk_sql 1.0.0 (source)"),
            "{out}"
        );
        let records = cli.records();
        let files = ours(&prefixes);
        let out = cli.ok(&["sync", "--yes"]);
        assert!(out.contains("nothing to change"), "{out}");
        assert_eq!(cli.records(), records, "the second sync wrote nothing");
        assert_eq!(ours(&prefixes), files);
        let out = cli.ok(&["load", "pgext_lk_partman", "--cascade", "-d", "app"]);
        assert!(out.contains("CREATE EXTENSION pgext_lk_jobmon"), "{out}");

        // The manifest moves pgext_lk_sql to 1.1.0: replaced; then drops it: removed.
        manifest(Some("1.1.0"));
        let err = cli.fails(&["sync", "--yes"]);
        assert!(err.contains("changed since"), "a stale lock is not applied: {err}");
        cli.ok(&["lock"]);
        let out = cli.ok(&["sync", "--yes", "--json"]);
        let changes: Value = serde_json::from_str(&out).unwrap();
        let sql = changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["dist"] == "pgext_lk_sql")
            .unwrap();
        assert_eq!(sql["action"], "replace", "{changes}");
        assert_eq!(sql["from"], "1.0.0", "{changes}");
        manifest(None);
        cli.ok(&["lock"]);
        let out = cli.ok(&["sync", "--yes"]);
        assert!(out.contains("remove pgext_lk_sql 1.1.0"), "{out}");
        assert!(ours(&["pgext_lk_sql"]).is_empty());

        // The pack, then the online host removes everything (an empty manifest).
        cli.ok(&["pack", "-o", "cluster.pack"]);
        let pack = std::fs::read(dir.join("cluster.pack")).unwrap();
        std::fs::write(dir.join("pgext.toml"), "[dists]\n").unwrap();
        cli.ok(&["lock"]);
        let out = cli.ok(&["sync", "--yes"]);
        assert!(out.contains("remove pgext_lk_partman"), "{out}");
        assert!(ours(&prefixes).is_empty());
        cluster.psql("postgres", "DROP DATABASE app");
        cluster.psql("postgres", "CREATE DATABASE app");

        // The offline host: the same trust, every URL unreachable.
        let offline_home = tempfile::tempdir().unwrap();
        let dead = pgext_tests::unreachable_url();
        let config = std::fs::read_to_string(online_home.path().join("config.toml")).unwrap();
        assert!(config.contains(&url));
        std::fs::write(offline_home.path().join("config.toml"), config.replace(&url, &dead))
            .unwrap();
        let host = tempfile::tempdir().unwrap();
        let h = host.path();
        let offline = Cli::new(offline_home.path())
            .with_env(cluster.env())
            .in_dir(h);
        // A pack missing a proof file, or with another entry's, installs nothing.
        let members = unzip(&pack);
        let proof_of = |index: u64| format!("pgext-pack/proofs/main/{index}.tlog-proof");
        let (jobmon_idx, partman_idx) = (expected[0].2, expected[1].2);
        let missing: Vec<_> = members
            .iter()
            .filter(|(n, _)| *n != proof_of(jobmon_idx))
            .cloned()
            .collect();
        assert_eq!(missing.len() + 1, members.len());
        std::fs::write(h.join("missing.pack"), fixtures::zip_raw(&missing)).unwrap();
        let err = offline.fails(&["sync", "--from", "missing.pack", "--yes"]);
        assert!(
            err.contains(&format!("the pack has no proofs/main/{jobmon_idx}.tlog-proof")),
            "{err}"
        );
        let partman_proof = members
            .iter()
            .find(|(n, _)| *n == proof_of(partman_idx))
            .unwrap()
            .1
            .clone();
        let foreign: Vec<_> = members
            .iter()
            .map(|(n, d)| {
                if *n == proof_of(jobmon_idx) {
                    (n.clone(), partman_proof.clone())
                } else {
                    (n.clone(), d.clone())
                }
            })
            .collect();
        std::fs::write(h.join("foreign.pack"), fixtures::zip_raw(&foreign)).unwrap();
        let err = offline.fails(&["sync", "--from", "foreign.pack", "--yes"]);
        assert!(err.contains("nothing was installed"), "{err}");
        assert!(ours(&prefixes).is_empty());
        assert!(offline.records().is_empty() || !String::from_utf8_lossy(&offline.records()).contains("pgext_lk_"));

        // The whole pack verifies offline and installs; PostgreSQL loads it.
        std::fs::write(h.join("cluster.pack"), &pack).unwrap();
        let out = offline.ok(&["sync", "--from", "cluster.pack", "--yes"]);
        assert!(
            out.contains("pgext_lk_jobmon 1.4.1 installed") && out.contains("pgext_lk_partman 5.1.0 installed"),
            "{out}"
        );
        let out = offline.ok(&["sync", "--from", "cluster.pack", "--yes"]);
        assert!(out.contains("nothing to change"), "{out}");
        offline.ok(&["load", "pgext_lk_partman", "--cascade", "-d", "app"]);
        let exts = cluster.psql(
            "app",
            "SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension",
        );
        assert_eq!(exts.trim(), "dblink,pgext_lk_jobmon,pgext_lk_partman,plpgsql");
        for d in ["pgext_lk_partman", "pgext_lk_jobmon"] {
            offline.ok(&["uninstall", d]);
        }
        assert!(ours(&prefixes).is_empty());
    })
    .await
    .unwrap();
}

/// A binary a builder attests, locked with `kind = "binary"`, packed, and installed from the
/// pack on a host with no network and no compiler; a pack without an attestation's proof file,
/// or with another package, installs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_binary_is_packed_and_installed_offline_without_a_compiler() {
    use crate::binary::{path_without_compilers, run_builder, user};
    let pg15 = pgext_tests::pg::pg15_config();
    pgext_tests::pg::clear_leftovers(&pg15, "pgext_lkb_");
    let node = TestNode::start().await;
    let (alice, builder) = (identity("alice", 1), identity("builder", 2));
    for who in [&alice, &builder] {
        node.register(who, None).await;
    }
    node.publish_files(
        &alice,
        &fixtures::c_dist("pgext_lkb_c", "1.0.0"),
        "pgext_lkb_c-1.0.0",
    )
    .await;
    let url = node.url();
    let tmp = tempfile::tempdir().unwrap();
    let b = user(&tmp.path().join("builder"), &url, Some(&builder), &[]);
    let built = run_builder(&b, &[&pg15]);
    assert!(built.contains("attested at entry"), "{built}");
    let listed = crate::binary::builds(&node, "pgext_lkb_c", "1.0.0").await;
    let attested = listed.builds[0].sha256.clone();

    tokio::task::spawn_blocking(move || {
        let cluster = Cluster::start();
        cluster.psql("postgres", "CREATE DATABASE app");
        let dir = tmp.path().join("project");
        std::fs::create_dir_all(&dir).unwrap();
        let online = Cli::new(&tmp.path().join("online"))
            .with_env(cluster.env())
            .in_dir(&dir);
        online.ok(&[
            "registry",
            "add",
            "main",
            &url,
            "--yes",
            "--builder",
            "builder",
        ]);
        std::fs::write(
            dir.join("pgext.toml"),
            format!(
                "[postgres]\npg_config = \"{}\"\n[dists]\npgext_lkb_c = {{ kind = \"binary\" }}\n",
                pg15.display()
            ),
        )
        .unwrap();
        online.ok(&["lock"]);
        let lock: toml::Value =
            toml::from_str(&std::fs::read_to_string(dir.join("pgext.lock")).unwrap()).unwrap();
        let d = &lock["dist"][0];
        assert_eq!(d["kind"].as_str(), Some("binary"), "{lock}");
        assert_eq!(d["binary"]["sha256"].as_str(), Some(attested.as_str()));
        assert_eq!(d["binary"]["builders"][0].as_str(), Some("builder"));
        online.ok(&["pack", "-o", "binary.pack"]);
        let pack = std::fs::read(dir.join("binary.pack")).unwrap();
        let members = unzip(&pack);
        assert!(
            members
                .iter()
                .any(|(n, _)| *n == format!("pgext-pack/binaries/{attested}.zip")),
            "{:?}",
            members.iter().map(|m| &m.0).collect::<Vec<_>>()
        );

        // The offline host: unreachable URLs, no compiler, no make.
        let home = tmp.path().join("offline");
        std::fs::create_dir_all(&home).unwrap();
        let dead = pgext_tests::unreachable_url();
        let config = std::fs::read_to_string(tmp.path().join("online/config.toml")).unwrap();
        std::fs::write(home.join("config.toml"), config.replace(&url, &dead)).unwrap();
        let path = path_without_compilers(&tmp.path().join("bin"));
        let offline = |args: &[&str]| {
            Command::new(pgext_bin())
                .args(args)
                .current_dir(&home)
                .env("PGEXT_CONFIG", home.join("config.toml"))
                .env("PGEXT_STATE_DIR", home.join("state"))
                .envs(cluster.env())
                .env("PATH", &path)
                .output()
                .unwrap()
        };
        let attestation = d["binary"]["attestations"][0].as_integer().unwrap();
        let without: Vec<_> = members
            .iter()
            .filter(|(n, _)| *n != format!("pgext-pack/proofs/main/{attestation}.tlog-proof"))
            .cloned()
            .collect();
        let other: Vec<_> = members
            .iter()
            .map(|(n, data)| {
                let mut data = data.clone();
                if n.starts_with("pgext-pack/binaries/") {
                    let last = data.len() - 1;
                    data[last] ^= 1;
                }
                (n.clone(), data)
            })
            .collect();
        for (file, bad, says) in [
            (
                "without.pack",
                fixtures::zip_raw(&without),
                format!("proofs/main/{attestation}.tlog-proof"),
            ),
            (
                "other.pack",
                fixtures::zip_raw(&other),
                "not the".to_string(),
            ),
        ] {
            std::fs::write(home.join(file), bad).unwrap();
            let out = offline(&["sync", "--from", file, "--yes"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains(&says),
                "{file}: {err}"
            );
            assert!(ours(&["pgext_lkb_"]).is_empty());
        }
        std::fs::write(home.join("binary.pack"), &pack).unwrap();
        let out = offline(&["sync", "--from", "binary.pack", "--yes"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("binary package attested by builder"),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = offline(&["load", "pgext_lkb_c", "-d", "app"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(cluster.psql("app", "SELECT add_one(41)"), "42");
        cluster.psql("app", "DROP EXTENSION pgext_lkb_c");
        assert!(offline(&["uninstall", "pgext_lkb_c"]).status.success());
        assert!(ours(&["pgext_lkb_"]).is_empty());
    })
    .await
    .unwrap();
}
