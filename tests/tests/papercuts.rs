//! What a new user meets first: site paths without their trailing slash, a registry added by
//! the URL of a mirror, and registration by invitation.

use pgext_tests::{Cli, TestNode, eventually, identity};

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn site_paths_without_a_slash_lead_to_the_page() {
    let (origin, mirror, _, _) = TestNode::witnessed("o.pgext.test/log").await;
    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    origin
        .publish_dist(&alice, "pair", "1.0.0", "pair", "stable")
        .await;
    mirror.wait_size("/origins/main", 2, 60).await;
    let http = no_redirects();
    for (node, prefix) in [(&origin, ""), (&mirror, "/origins/main")] {
        for (path, page) in [
            ("/dist/pair", "/dist/pair/"),
            ("/dist/pair/1.0.0", "/dist/pair/1.0.0/"),
            ("/extension/pair", "/extension/pair/"),
            ("/user/alice", "/user/alice/"),
            ("/tag/testing", "/tag/testing/"),
            ("/log", "/log/"),
            ("/mirrors", "/mirrors/"),
        ] {
            let resp = http
                .get(format!("{}{prefix}{path}", node.url()))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 308, "{prefix}{path}");
            let to = resp.headers()["location"].to_str().unwrap().to_string();
            assert_eq!(to, format!("{prefix}{page}"));
            let page = reqwest::get(format!("{}{to}", node.url())).await.unwrap();
            assert_eq!(page.status(), 200, "{to}");
            assert!(
                page.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html")
            );
        }
        // The documents PGXN clients read are where they were.
        assert_eq!(node.get(&format!("{prefix}/dist/pair.json")).await.0, 200);
    }
    origin.node.shutdown().await;
    mirror.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_added_by_a_mirrors_url_uses_the_origin_below_it() {
    let (origin, mirror, vkey, _) = TestNode::witnessed("o.pgext.test/log").await;
    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    origin
        .publish_dist(&alice, "pair", "1.0.0", "pair", "stable")
        .await;
    mirror.wait_size("/origins/main", 2, 60).await;
    let (url, mirror_key) = (mirror.url(), mirror.vkey());
    tokio::task::spawn_blocking(move || {
        let home = tempfile::tempdir().unwrap();
        let cli = Cli::new(home.path());
        // The mirror's own log is not the one named: the origin it mirrors is found below it.
        let out = cli.ok(&["registry", "add", "main", &url, "--vkey", &vkey]);
        assert!(out.contains("/origins/main/"), "{out}");
        let list: serde_json::Value =
            serde_json::from_str(&cli.ok(&["registry", "list", "--json"])).unwrap();
        assert_eq!(list[0]["urls"][0], format!("{url}/origins/main"));
        assert_eq!(list[0]["vkey"], vkey.as_str());
        let info = cli.ok(&["info", "pair"]);
        assert!(info.contains("1.0.0 stable by alice"), "{info}");
        // A key the node serves no log of is still refused.
        let other = "other.pgext.test/log+01020304+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
        let err = cli.fails(&["registry", "add", "x", &url, "--vkey", other]);
        assert!(err.contains("refusing to trust it"), "{err}");
        // And the mirror's own log is still had by its own key, at its root.
        cli.ok(&["registry", "add", "m", &url, "--vkey", &mirror_key]);
    })
    .await
    .unwrap();
    origin.node.shutdown().await;
    mirror.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_invites_and_the_invited_registers() {
    let home = tempfile::tempdir().unwrap();
    let cli = Cli::new(home.path());
    let keygen = |user: &str, file: &str| {
        let out = cli.ok(&["keygen", user, "--key", &cli.path(file), "--json"]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["public_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let admin = keygen("admin", "admin.key");
    let carol = keygen("carol", "carol.key");
    let dave = keygen("dave", "dave.key");
    let node = TestNode::start_with(|c| {
        c.registration = pgext_node::config::Registration::Invite;
        c.admin_keys = vec![admin.clone()];
    })
    .await;
    let url = node.url();
    let base = node.url();
    tokio::task::spawn_blocking(move || {
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        // Without an invitation: refused.
        let err = cli.fails(&["register", "--key", &cli.path("carol.key")]);
        assert!(err.contains("invite-required"), "{err}");
        // The admin invites carol's key; carol registers with it.
        let invitation = cli
            .ok(&["invite", "carol", &carol, "--key", &cli.path("admin.key")])
            .trim()
            .to_string();
        let out = cli.ok(&[
            "register",
            "--key",
            &cli.path("carol.key"),
            "--invite",
            &invitation,
        ]);
        assert!(out.contains("registered carol"), "{out}");
        // Carol's invitation is for carol's key: dave cannot use it, nor with his own name.
        let err = cli.fails(&[
            "register",
            "--key",
            &cli.path("dave.key"),
            "--invite",
            &invitation,
        ]);
        assert!(err.contains("invite-required"), "{err}");
        // An invitation signed by a key that is not an admin's is refused too.
        let forged = cli
            .ok(&["invite", "dave", &dave, "--key", &cli.path("carol.key")])
            .trim()
            .to_string();
        let err = cli.fails(&[
            "register",
            "--key",
            &cli.path("dave.key"),
            "--invite",
            &forged,
        ]);
        assert!(err.contains("invite-required"), "{err}");
        // Bad arguments are refused before anything is signed.
        let err = cli.fails(&[
            "invite",
            "Not A Name",
            &dave,
            "--key",
            &cli.path("admin.key"),
        ]);
        assert!(err.contains("not an account name"), "{err}");
        let err = cli.fails(&[
            "invite",
            "dave",
            "not-a-key",
            "--key",
            &cli.path("admin.key"),
        ]);
        assert!(err.contains("not a base64 Ed25519 public key"), "{err}");
    })
    .await
    .unwrap();
    let account = eventually(10, || async {
        let (status, body) = reqwest::get(format!("{base}/api/v1/accounts/carol"))
            .await
            .map(|r| (r.status().as_u16(), r))
            .map_err(|e| e.to_string())?;
        if status == 200 {
            body.json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string())
        } else {
            Err(format!("status {status}"))
        }
    })
    .await;
    assert_eq!(account["user"], "carol");
    assert_eq!(node.get("/api/v1/accounts/dave").await.0, 404);
    node.node.shutdown().await;
}
