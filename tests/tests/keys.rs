//! Key transparency (`spec/audit.md`, Watch; `spec/site.md`, Webhooks): an account's owner is
//! told of every key added, rotated or revoked for the account and of every release signed by
//! it, by `pgext watch --account` (verified from the log) and by a node's webhook naming the
//! account; nothing of other accounts.

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::{Action, user_key_id};
use pgext_tests::{Cli, TestNode, identity};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_key_changes_and_releases_are_told() {
    // The node's webhook receiver: event header and body of each delivery.
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = got.clone();
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let kind = headers
                        .get("x-pgext-event")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock()
                        .unwrap()
                        .push((kind, serde_json::from_slice(&body).unwrap()));
                    "ok"
                }
            },
        ),
    );
    let base = pgext_tests::serve(app).await;
    let node = TestNode::start_with(move |c| {
        c.webhooks = vec![pgext_node::config::WebhookConfig {
            url: format!("{base}/keys"),
            secret: "s3cret".into(),
            dists: vec![],
            users: vec![],
            tags: vec![],
            accounts: vec!["Alice".into()],
            access: pgext_node::config::Access::Public,
        }]
    })
    .await;

    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    let as_alice = |n: u8| Identity {
        user: "alice".into(),
        key: SigningKey::from_bytes(&[n; 32]),
    };
    let (second, third) = (as_alice(40), as_alice(41));
    let id = |i: &Identity| user_key_id(i.key.verifying_key().as_bytes());
    node.register(&alice, None).await;
    node.register(&bob, None).await;
    let api = node.api();
    api.submit(&alice.sign(Action::KeyAdd {
        key: encode_public_key(&second.key.verifying_key()),
    }))
    .await
    .unwrap();
    node.publish_dist(&alice, "pgext_kt_a", "1.0.0", "pgext_kt_a", "stable")
        .await;
    // A release signed with the added key: what a thief holding it would do.
    node.publish_dist(&second, "pgext_kt_a", "1.1.0", "pgext_kt_a", "stable")
        .await;
    node.publish_dist(&bob, "pgext_kt_b", "1.0.0", "pgext_kt_b", "stable")
        .await;
    api.submit(&alice.sign(Action::KeyRevoke {
        revoked: id(&second),
    }))
    .await
    .unwrap();
    api.submit(&alice.sign(Action::KeyRotate {
        new_key: encode_public_key(&third.key.verifying_key()),
    }))
    .await
    .unwrap();

    let home = tempfile::tempdir().unwrap();
    let (url, h) = (node.url(), home.path().to_path_buf());
    let (k1, k2, k3) = (id(&alice), id(&second), id(&third));
    let (k1b, k2b, k3b) = (k1.clone(), k2.clone(), k3.clone());
    tokio::task::spawn_blocking(move || {
        let cli = Cli::new(&h);
        cli.ok(&["registry", "add", "main", &url, "--yes"]);
        let out = cli.ok(&[
            "watch",
            "--account",
            "alice",
            "--from",
            "0",
            "--once",
            "--json",
        ]);
        let evs: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(&str, &str)> = evs
            .iter()
            .map(|e| (e["kind"].as_str().unwrap(), e["key_id"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("account", k1b.as_str()),
                ("key_add", k2b.as_str()),
                ("release", k1b.as_str()),
                ("release", k2b.as_str()),
                ("key_revoke", k2b.as_str()),
                ("key_rotate", k3b.as_str()),
            ],
            "{out}"
        );
        assert!(
            evs.iter().all(|e| e["actor"] == "alice"),
            "nothing of bob's: {out}"
        );
        let text = cli.ok(&["watch", "--account", "alice", "--from", "0", "--once"]);
        assert!(
            text.contains(&format!("release pgext_kt_a 1.1.0 by alice key {k2b}")),
            "{text}"
        );
        // Without a name or an account there is nothing to watch.
        let err = cli.fails(&["watch", "--once"]);
        assert!(
            err.contains("required arguments were not provided"),
            "{err}"
        );
    })
    .await
    .unwrap();

    // The node's webhook: key events for alice's keys, her releases, nothing of bob's.
    let list = pgext_tests::eventually(30, || async {
        let list = got.lock().unwrap().clone();
        if list.len() >= 6 {
            Ok(list)
        } else {
            Err(format!("{list:?}"))
        }
    })
    .await;
    let summary: Vec<(String, String)> = list
        .iter()
        .map(|(kind, b)| {
            let what = if kind == "key" {
                format!(
                    "{} {}",
                    b["change"].as_str().unwrap(),
                    b["key_id"].as_str().unwrap()
                )
            } else {
                format!(
                    "{} {}",
                    b["version"].as_str().unwrap(),
                    b["key_id"].as_str().unwrap()
                )
            };
            (kind.clone(), what)
        })
        .collect();
    let pair = |k: &str, w: String| (k.to_string(), w);
    assert_eq!(
        summary,
        [
            pair("key", format!("added {k1}")),
            pair("key", format!("added {k2}")),
            pair("release", format!("1.0.0 {k1}")),
            pair("release", format!("1.1.0 {k2}")),
            pair("key", format!("revoked {k2}")),
            pair("key", format!("rotated {k3}")),
        ],
        "{list:?}"
    );
    assert_eq!(list[5].1["retired"], k1);
}
