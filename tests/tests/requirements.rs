//! What a release needs, read from its META in full (`spec/requirements.md`): served by the
//! API and shown on the release page; a library that must be preloaded told before an
//! install, added with `--configure` and loaded after a restart of a throwaway cluster, with
//! `load` refusing (with what to do) until then; and releases for other platforms, or that
//! conflict with an installed dist, refused before any archive is fetched.

use pgext_tests::pg::{Cluster, clear_leftovers, pg15_config};
use pgext_tests::{Cli, TestNode, identity};
use serde_json::{Value, json};

/// A META v2 distribution of a C extension whose library must be in
/// `shared_preload_libraries`: loaded any other way, its `_PG_init` raises an error (as
/// pg_stat_statements' and other hooks' do).
fn preload_dist(name: &str) -> Vec<(String, Vec<u8>)> {
    let c = format!(
        "#include \"postgres.h\"\n#include \"fmgr.h\"\n#include \"miscadmin.h\"\nPG_MODULE_MAGIC;\nvoid _PG_init(void);\nvoid _PG_init(void) {{\n  if (!process_shared_preload_libraries_in_progress)\n    ereport(ERROR, (errmsg(\"{name} must be loaded via shared_preload_libraries\")));\n}}\nPG_FUNCTION_INFO_V1({name}_preloaded);\nDatum {name}_preloaded(PG_FUNCTION_ARGS) {{ PG_RETURN_BOOL(true); }}\n"
    );
    c_dist_v2(
        name,
        json!({name: {"type": "extension", "lib": name, "preload": "server"}}),
        json!({"postgres": {"version": ">= 14.0"}, "platforms": ["linux", "darwin"]}),
        &format!("MODULES = {name}\n"),
        format!(
            "CREATE FUNCTION {name}_preloaded() RETURNS bool AS 'MODULE_PATHNAME', '{name}_preloaded' LANGUAGE C STRICT;\n"
        ),
        c,
    )
}

/// A META v2 distribution of the C extension `name`: `modules` and `deps` in its META, `build`
/// the Makefile's module lines, `sql` its script and `c` its source.
fn c_dist_v2(
    name: &str,
    modules: Value,
    deps: Value,
    build: &str,
    sql: String,
    c: String,
) -> Vec<(String, Vec<u8>)> {
    let mut contents = json!({"extensions": {name: {"sql": format!("{name}--1.0.0.sql"), "control": format!("{name}.control")}}});
    if !modules.is_null() {
        contents["modules"] = modules;
    }
    let meta = json!({
        "name": name, "version": "1.0.0", "abstract": "A C extension for tests",
        "maintainers": [{"name": "Test Author", "email": "author@example.org"}],
        "license": "PostgreSQL", "contents": contents, "dependencies": deps,
        "meta-spec": {"version": "2.0.0"},
    });
    vec![
        ("META.json".into(), serde_json::to_vec_pretty(&meta).unwrap()),
        ("Makefile".into(), format!("EXTENSION = {name}\n{build}DATA = {name}--1.0.0.sql\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n").into_bytes()),
        (format!("{name}.control"), format!("default_version = '1.0.0'\nmodule_pathname = '$libdir/{name}'\nrelocatable = true\n").into_bytes()),
        (format!("{name}--1.0.0.sql"), sql.into_bytes()),
        (format!("{name}.c"), c.into_bytes()),
    ]
}

/// A META v2 SQL-only distribution with `dependencies` as given.
fn sql_dist_v2(name: &str, deps: Value) -> Vec<(String, Vec<u8>)> {
    let meta = json!({
        "name": name, "version": "1.0.0", "abstract": "A SQL extension for tests",
        "maintainers": [{"name": "Test Author", "email": "author@example.org"}],
        "license": "PostgreSQL",
        "contents": {"extensions": {name: {"sql": format!("{name}--1.0.0.sql"), "control": format!("{name}.control"), "tle": true}}},
        "dependencies": deps,
        "meta-spec": {"version": "2.0.0"},
    });
    vec![
        ("META.json".into(), serde_json::to_vec_pretty(&meta).unwrap()),
        ("Makefile".into(), format!("EXTENSION = {name}\nDATA = {name}--1.0.0.sql\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n").into_bytes()),
        (format!("{name}.control"), b"default_version = '1.0'\nrelocatable = true\n".to_vec()),
        (format!("{name}--1.0.0.sql"), format!("CREATE FUNCTION {name}_answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n").into_bytes()),
    ]
}

/// `pgext load` of the preloaded dist `pre` creates it, and its library answers.
fn loads(cli: &Cli, cluster: &Cluster, pre: &str) {
    assert_eq!(
        cli.ok(&["load", pre]).trim(),
        format!("CREATE EXTENSION {pre}")
    );
    assert_eq!(
        cluster.psql("postgres", &format!("SELECT {pre}_preloaded()")),
        "t"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_release_needs_is_served_told_and_acted_on() {
    let pre = "pgext_req_preload";
    let mac = "pgext_req_maconly";
    let clash = "pgext_req_clash";
    for n in [pre, mac, clash] {
        clear_leftovers(&pg15_config(), n);
    }
    let node = TestNode::start_with(|c| c.counts.period_secs = 1).await;
    let alice = identity("alice", 1);
    node.register(&alice, None).await;
    node.publish_files(&alice, &preload_dist(pre), &format!("{pre}-1.0.0"))
        .await;
    node.publish_files(
        &alice,
        &sql_dist_v2(mac, json!({"platforms": ["darwin"]})),
        &format!("{mac}-1.0.0"),
    )
    .await;
    node.publish_files(
        &alice,
        &sql_dist_v2(
            clash,
            json!({"packages": {"run": {"conflicts": {format!("pkg:pgxn/{pre}"): 0}}}}),
        ),
        &format!("{clash}-1.0.0"),
    )
    .await;

    // The API and the page say what each needs.
    let (status, body) = node
        .get(&format!("/api/v1/dists/{pre}/1.0.0/requirements"))
        .await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["meta_spec"], 2);
    assert_eq!(doc["postgres"], ">= 14.0");
    assert_eq!(doc["platforms"], json!(["linux", "darwin"]));
    assert_eq!(doc["restart"], true);
    assert_eq!(
        doc["modules"],
        json!([{"name": pre, "kind": "extension", "lib": pre, "preload": "server"}])
    );
    let (_, body) = node
        .get(&format!("/api/v1/dists/{clash}/1.0.0/requirements"))
        .await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["extensions"], json!([{"name": clash, "tle": true}]));
    // A v2 META states no extension version: the control file's default_version is it.
    let dist = node.json(&format!("/api/v1/dists/{clash}")).await;
    assert_eq!(dist["releases"][0]["provides"][clash], "1.0", "{dist}");
    let (_, meta) = node.get(&format!("/dist/{clash}/1.0.0/META.json")).await;
    let meta: Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["provides"][clash]["version"], "1.0", "{meta}");
    assert_eq!(doc["restart"], false);
    assert_eq!(
        doc["packages"],
        json!([{"purl": format!("pkg:pgxn/{pre}"), "phase": "runtime", "relation": "conflicts", "range": "0"}])
    );
    let (status, _) = node
        .get(&format!("/api/v1/dists/{pre}/9.9.9/requirements"))
        .await;
    assert_eq!(status, 404);
    let (_, page) = node.get(&format!("/dist/{pre}/1.0.0/")).await;
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("must be in <code>shared_preload_libraries</code>"),
        "{page}"
    );
    assert!(page.contains("a restart is needed"), "{page}");
    assert!(page.contains("linux, darwin"), "{page}");
    let (_, page) = node.get(&format!("/dist/{clash}/1.0.0/")).await;
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("can be used as a trusted language extension"),
        "{page}"
    );

    let url = node.url();
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let a = Cluster::start();
        let cli = Cli::new(home.path()).with_env(a.env());
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        // A setting that is there already is kept.
        a.psql(
            "postgres",
            "ALTER SYSTEM SET shared_preload_libraries = 'auto_explain'",
        );
        a.restart();

        // Told before anything is done.
        let plan = cli.ok(&["install", pre, "--dry-run"]);
        assert!(
            plan.contains(&format!(
                "needs {pre} in shared_preload_libraries: PostgreSQL must restart"
            )),
            "{plan}"
        );

        // Installed and configured in one go; created once the server has restarted.
        let (ok, out, err) = cli.run(&["install", pre, "--yes", "--configure"]);
        assert!(ok, "{out}{err}");
        assert!(
            err.contains(
                "ALTER SYSTEM SET shared_preload_libraries = 'auto_explain', 'pgext_req_preload'"
            ),
            "{err}"
        );
        assert!(
            err.contains("restart PostgreSQL to load pgext_req_preload"),
            "{err}"
        );
        assert_eq!(
            a.psql("postgres", "SHOW shared_preload_libraries"),
            "auto_explain"
        );
        // Before the restart, load refuses with what to do, and creates nothing.
        let err = cli.fails(&["load", pre]);
        assert!(
            err.contains("needs pgext_req_preload in shared_preload_libraries"),
            "{err}"
        );
        assert!(err.contains("nothing was created"), "{err}");
        assert_eq!(
            a.psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_extension WHERE extname = '{pre}'")
            ),
            "0"
        );
        a.restart();
        assert_eq!(
            a.psql("postgres", "SHOW shared_preload_libraries"),
            "auto_explain, pgext_req_preload"
        );
        loads(&cli, &a, pre);

        // Another server of the same installation: load --configure adds it, then after a
        // restart load creates it; without a restart PostgreSQL's own error is never reached.
        let b = Cluster::start();
        let cli_b = Cli::new(home.path()).with_env(b.env());
        let direct = std::process::Command::new(b.bindir.join("psql"))
            .envs(b.env())
            .args([
                "-X",
                "-d",
                "postgres",
                "-c",
                &format!("CREATE EXTENSION {pre}"),
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&direct.stderr)
                .contains("must be loaded via shared_preload_libraries"),
            "the fixture refuses to load without preloading"
        );
        let out = cli_b.ok(&["load", pre, "--configure"]);
        assert!(
            out.contains("ALTER SYSTEM SET shared_preload_libraries = 'pgext_req_preload'"),
            "{out}"
        );
        assert!(out.contains("nothing was created"), "{out}");
        b.restart();
        loads(&cli_b, &b, pre);

        // A release for other platforms: refused naming why, before any archive is fetched
        // (the node counts none, below).
        let err = cli.fails(&["install", mac, "--yes"]);
        assert!(
            err.contains(&format!(
                "{mac} 1.0.0 cannot be installed here: it supports only darwin and this machine is"
            )),
            "{err}"
        );
        assert!(err.contains("nothing was installed"), "{err}");
        // One that conflicts with an installed dist: the same.
        let err = cli.fails(&["install", clash, "--yes"]);
        assert!(err.contains(&format!("conflicts with {pre}")), "{err}");
        let list = cli.ok(&["list"]);
        assert!(!list.contains(mac) && !list.contains(clash), "{list}");
        cli.ok(&["uninstall", pre]);
    })
    .await
    .unwrap();
    // The node counted the preloaded dist's archive, fetched to install it, and not one of
    // the refused releases' (statements are taken each second: two periods pass first).
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let downloads = |d: &str| {
        let node = &node;
        let path = format!("/api/v1/dists/{d}/1.0.0/downloads");
        async move { node.json(&path).await["total"].clone() }
    };
    assert!(downloads(pre).await.as_u64().unwrap() >= 1);
    assert_eq!(downloads(mac).await, 0);
    assert_eq!(downloads(clash).await, 0);
}

/// A META v2 C extension linking Jansson, a system library: its build needs
/// `pkg:generic/jansson` (headers and library), its run the library.
fn jansson_dist(name: &str) -> Vec<(String, Vec<u8>)> {
    let c = format!(
        "#include \"postgres.h\"\n#include \"fmgr.h\"\n#include <jansson.h>\nPG_MODULE_MAGIC;\nPG_FUNCTION_INFO_V1({name}_valid);\nDatum {name}_valid(PG_FUNCTION_ARGS) {{\n  text *t = PG_GETARG_TEXT_PP(0);\n  json_error_t err;\n  json_t *j = json_loadb(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), 0, &err);\n  bool ok = j != NULL;\n  if (j) json_decref(j);\n  PG_RETURN_BOOL(ok);\n}}\n"
    );
    c_dist_v2(
        name,
        Value::Null,
        json!({"packages": {
            "build": {"requires": {"pkg:generic/jansson": "2.13"}},
            "run": {"requires": {"pkg:generic/jansson": "2.13"}},
        }}),
        &format!("MODULE_big = {name}\nOBJS = {name}.o\nSHLIB_LINK = -ljansson\n"),
        format!(
            "CREATE FUNCTION {name}_valid(text) RETURNS bool AS 'MODULE_PATHNAME', '{name}_valid' LANGUAGE C STRICT;\n"
        ),
        c,
    )
}

/// Whether Debian's package manager has `name` installed.
fn dpkg_has(name: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("ok installed"))
}

/// Removes `name` (as the test's starting point: the package is not installed).
fn apt_remove(name: &str) {
    if dpkg_has(name) {
        let out = std::process::Command::new("apt-get")
            .args(["remove", "-y", name])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!dpkg_has(name));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_packages_are_mapped_on_the_log_installed_and_built_with() {
    assert!(
        pgext_tests::pg::is_root(),
        "installing OS packages needs root (CI runs the tests as root)"
    );
    let name = "pgext_req_json";
    clear_leftovers(&pg15_config(), name);
    let origin = TestNode::start_with(|c| {
        c.origin = Some("req.pgext.test/log".into());
        c.p2p.enabled = true;
    })
    .await;
    let mirror = {
        let (peer, vkey) = (origin.p2p_addr(), origin.vkey());
        TestNode::start_with(move |c| {
            c.origin = Some("m.req.pgext.test/log".into());
            c.p2p.enabled = true;
            c.p2p.peers = vec![peer];
            c.mirrors = vec![pgext_node::config::MirrorConfig {
                name: "main".into(),
                vkey,
                access: pgext_node::config::Access::Public,
            }];
        })
        .await
    };
    let (alice, bob, carol) = (
        identity("alice", 1),
        identity("bob", 2),
        identity("carol", 3),
    );
    for who in [&alice, &bob, &carol] {
        origin.register(who, None).await;
    }
    // The operator names alice a maintainer of the mapping; bob is not one.
    let (ok, text) = origin.role("grant", "packages", "alice").await;
    assert!(
        ok && text.contains("granted role packages for alice"),
        "{text}"
    );
    let (ok, text) = origin.role("grant", "packages", "nobody").await;
    assert!(!ok && text.contains("unknown-user"), "{text}");
    let jansson = |build: &str| {
        let mut s = pgext_spec::packages::Systems::new();
        s.insert(
            "debian".into(),
            pgext_spec::packages::SystemPackages {
                build: vec![build.into()],
                run: Some(vec!["libjansson4".into()]),
            },
        );
        s
    };
    let map = |who: &pgext::release::Identity, purl: &str, build: &str| {
        who.sign(pgext_spec::entry::Action::PackageMap {
            purl: purl.into(),
            systems: jansson(build),
        })
    };
    // Refused, each naming its rule, and nothing stored.
    for (who, purl, build, rule) in [
        (
            &bob,
            "pkg:generic/jansson",
            "libjansson-dev",
            "not-maintainer",
        ),
        (
            &alice,
            "pkg:nosuch/jansson",
            "libjansson-dev",
            "invalid-package",
        ),
        (
            &alice,
            "pkg:generic/jansson",
            "libjansson-dev; touch /tmp/pwned",
            "invalid-package",
        ),
        (
            &alice,
            "pkg:generic/jansson",
            "$(reboot)",
            "invalid-package",
        ),
    ] {
        let err = origin
            .api_as(who)
            .submit(&map(who, purl, build))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(rule), "{purl} {build}: {err}");
    }
    let (status, body) = origin.get("/api/v1/packages/pkg:generic/jansson").await;
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let (status, body) = origin.get("/api/v1/packages/pkg:nosuch/jansson").await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("invalid-purl"));

    let url = origin.url();
    let home_alice = tempfile::tempdir().unwrap();
    {
        let (url, home) = (url.clone(), home_alice.path().to_path_buf());
        let alice = alice.clone();
        tokio::task::spawn_blocking(move || {
            let cli = crate::binary::user(&home, &url, Some(&alice), &[]);
            let key = cli.path("key.txt");
            // A name with a shell's metacharacters is told before anything is signed.
            let err = cli.fails(&[
                "--key",
                &key,
                "packages",
                "map",
                "pkg:generic/jansson",
                "--debian",
                "libjansson-dev;id",
            ]);
            assert!(err.contains("not a package name"), "{err}");
            let out = cli.ok(&[
                "--key",
                &key,
                "packages",
                "map",
                "pkg:generic/jansson",
                "--debian",
                "libjansson-dev",
                "--ubuntu",
                "libjansson-dev",
                "--rhel",
                "jansson-devel",
                "--alpine",
                "jansson-dev",
                "--homebrew",
                "jansson",
                "--run",
                "debian=libjansson4",
                "--run",
                "ubuntu=libjansson4",
            ]);
            assert!(out.contains("mapped pkg:generic/jansson"), "{out}");
            let shown = cli.ok(&["packages", "show", "pkg:generic/jansson"]);
            assert!(
                shown.contains("debian: libjansson-dev; to run: libjansson4"),
                "{shown}"
            );
            assert!(shown.contains("rhel: jansson-devel"), "{shown}");
        })
        .await
        .unwrap();
    }
    let all = origin.json("/api/v1/packages").await;
    assert_eq!(all["maintainers"], json!(["alice"]));
    assert_eq!(
        all["packages"][0]["systems"]["alpine"]["build"],
        json!(["jansson-dev"])
    );
    // The mapping is on the log: the mirror replays it and serves the same.
    let mirrored = pgext_tests::eventually(60, || async {
        let doc = mirror
            .json("/origins/main/api/v1/packages/pkg:generic/jansson")
            .await;
        if doc["systems"]["debian"]["build"] == json!(["libjansson-dev"]) {
            Ok(doc)
        } else {
            Err(doc.to_string())
        }
    })
    .await;
    assert_eq!(mirrored["user"], "alice");

    origin
        .publish_files(&bob, &jansson_dist(name), &format!("{name}-1.0.0"))
        .await;

    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (url2, carol2) = (url.clone(), carol.clone());
    let (h_builder, h_user) = (homes.0.path().to_path_buf(), homes.1.path().to_path_buf());
    tokio::task::spawn_blocking(move || {
        // The builder installs the mapped Debian package, then builds and attests.
        apt_remove("libjansson-dev");
        let builder = crate::binary::user(&h_builder, &url2, Some(&carol2), &[]);
        let out = crate::binary::run_builder(&builder, &[std::path::Path::new("pg_config")]);
        assert!(out.contains("attested"), "{out}");
        assert!(dpkg_has("libjansson-dev"), "the builder installed the mapped package");

        // A user's source build: told what is missing and the command, refused without
        // --install-system-deps; with it, installed, built and loaded.
        apt_remove("libjansson-dev");
        let cluster = Cluster::start();
        let cli = Cli::new(&h_user).with_env(cluster.env());
        cli.ok(&["registry", "add", "main", &url2, "--yes"]);
        let plan = cli.ok(&["install", name, "--dry-run"]);
        assert!(
            plan.contains(&format!("{name} needs the OS package libjansson-dev (pkg:generic/jansson), which is not installed")),
            "{plan}"
        );
        assert!(plan.contains("install them with: apt-get update && apt-get install -y -- libjansson-dev"), "{plan}");
        let err = cli.fails(&["install", name, "--yes"]);
        assert!(err.contains("--install-system-deps; nothing was installed"), "{err}");
        assert!(!cli.ok(&["list"]).contains(name));
        cli.ok(&["install", name, "--yes", "--install-system-deps"]);
        assert!(dpkg_has("libjansson-dev"));
        cli.ok(&["load", name]);
        assert_eq!(cluster.psql("postgres", &format!("SELECT {name}_valid('{{\"a\": 1}}'), {name}_valid('{{nope')")), "t|f");
        cli.ok(&["uninstall", name]);
    })
    .await
    .unwrap();
}
