//! Private origins (`spec/access.md`): what anyone without a member's token gets (nothing, in
//! the one error shape, naming nothing), what each kind of bad token gets, and what a member
//! reads through each way a token travels.

use pgext::release::Identity;
use pgext_node::config::{Access, Registration};
use pgext_spec::entry::Action;
use pgext_spec::token::{self, Scope};
use pgext_tests::{TestNode, identity};

pub(crate) const ORIGIN: &str = "acme.pgext.test/log";

/// An account entry for `who` carrying an invitation signed by `admin`.
fn invited(admin: &Identity, who: &Identity) -> pgext_spec::entry::Entry {
    let key = pgext_spec::authority::encode_public_key(&who.key.verifying_key());
    let invite = pgext::author::invite(admin, &who.user, &key).unwrap();
    who.sign(Action::Account {
        user: who.user.clone(),
        key,
        name: None,
        email: None,
        uri: None,
        invite: Some(invite),
    })
}

/// A private registry (invitations from `admin`) with member alice, who published `acme_db`.
pub(crate) async fn private_registry() -> (TestNode, Identity, Identity) {
    let admin = identity("admin", 90);
    let admin_key = pgext_spec::authority::encode_public_key(&admin.key.verifying_key());
    let node = TestNode::start_with(|c| {
        c.origin = Some(ORIGIN.into());
        c.access = Access::Private;
        c.registration = Registration::Invite;
        c.admin_keys = vec![admin_key];
    })
    .await;
    let alice = identity("alice", 1);
    join_and_publish(&node, &admin, &alice).await;
    node.wait_size("", 2, 30).await;
    (node, admin, alice)
}

/// `who` registers on `node`'s private origin with an invitation of `admin` (no token), then
/// publishes `acme_db` 1.0.0 with a member's token; returns the zip's SHA-256.
async fn join_and_publish(node: &TestNode, admin: &Identity, who: &Identity) -> String {
    node.api().submit(&invited(admin, who)).await.unwrap();
    let files = pgext_tests::fixtures::dist("acme_db", "1.0.0", "acme_db", "stable");
    let tgz = pgext_tests::fixtures::tar_gz("acme_db-1.0.0", &files);
    let p = pgext::release::prepare_release(&tgz, None).unwrap();
    let sha = p.release.sha256.clone();
    node.api_as(who)
        .publish(
            &who.sign(Action::Release(p.release)),
            tgz,
            "acme_db-1.0.0.tar.gz",
        )
        .await
        .unwrap();
    sha
}

pub(crate) fn read_token(who: &Identity, origin: &str, secs: u64) -> String {
    pgext::auth::make_token(who, origin, &[Scope::Read], secs)
}

async fn get(url: &str, token: Option<&str>, html: bool) -> (u16, String, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if html {
        req = req.header("accept", "text/html");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// Every way of reading the origin.
const PATHS: &[&str] = &[
    "/",
    "/index.json",
    "/dist/acme_db.json",
    "/dist/acme_db/1.0.0/META.json",
    "/dist/acme_db/1.0.0/acme_db-1.0.0.zip",
    "/dist/acme_db/1.0.0/README.txt",
    "/dist/acme_db/",
    "/dist/acme_db/1.0.0/",
    "/extension/acme_db.json",
    "/extension/acme_db/",
    "/user/alice.json",
    "/user/alice/",
    "/tag/testing.json",
    "/stats/summary.json",
    "/meta/mirrors.json",
    "/log/checkpoint",
    "/log/tile/0/000.p/2",
    "/log/tile/entries/000.p/2",
    "/log/",
    "/mirrors/",
    "/search?q=acme",
    "/search/dists?q=acme",
    "/api/v1/search?q=acme",
    "/api/v1/log",
    "/api/v1/entries/0",
    "/api/v1/proofs/inclusion/0/2",
    "/api/v1/proofs/consistency/1/2",
    "/api/v1/dists/acme_db",
    "/api/v1/dists/acme_db/1.0.0/docs",
    "/api/v1/accounts/alice",
    "/api/v1/origins",
    "/api/v1/evidence",
    "/feeds/recent.xml",
    "/feeds/dist/acme_db.xml",
    "/robots.txt",
    "/sitemap.xml",
    "/metrics",
    "/no/such/path",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_without_a_members_token_gets_nothing_of_a_private_origin() {
    let (node, _, alice) = private_registry().await;
    let url = node.url();
    for path in PATHS {
        let (status, ct, body) = get(&format!("{url}{path}"), None, false).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let e: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["errors"][0]["code"], "unauthorized", "{path}");
        for secret in ["acme", "alice", "1.0.0"] {
            assert!(!body.contains(secret), "{path} tells {secret}: {body}");
        }
        // A browser gets the sign-in page, which names nothing either.
        let (status, ct, page) = get(&format!("{url}{path}"), None, true).await;
        assert_eq!(status, 401, "{path}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(page.contains("Sign in"), "{path}");
        assert!(!page.contains("acme") && !page.contains("alice"), "{path}");
    }
    // A member reads all of it, with the token in a header, a path prefix or a cookie.
    let t = read_token(&alice, ORIGIN, 600);
    for path in PATHS.iter().filter(|p| !p.starts_with("/no/")) {
        let (status, _, body) = get(&format!("{url}{path}"), Some(&t), false).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _, body) = get(&format!("{url}/t/{t}/dist/acme_db.json"), None, false).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("acme_db"));
    let resp = reqwest::Client::new()
        .get(format!("{url}/dist/acme_db/"))
        .header("cookie", format!("theme=dark; pgext_token={t}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Anonymous submissions other than an invited registration are refused, and nothing is
    // stored.
    let bob = identity("bob", 2);
    let err = node
        .api()
        .submit(&bob.account_entry(None, None, None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && err.contains("private"), "{err}");
    assert_eq!(node.node.origin().size(), 2);
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_token_is_refused_with_its_reason() {
    let (node, admin, alice) = private_registry().await;
    let url = node.url();
    let now = pgext::release::now();
    let signed = |who: &Identity, claims: token::Claims| token::sign(&claims, &who.key);
    let at = |who: &Identity, origin: &str, iat: u64, secs: u64, scope: &[Scope]| {
        token::claims(origin, &who.user, &who.key, scope, iat, secs, [3; 16])
    };
    let mallory = identity("mallory", 66);
    let good = read_token(&alice, ORIGIN, 600);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            signed(&alice, at(&alice, ORIGIN, now - 7200, 3600, &[Scope::Read])),
            "expired",
        ),
        (
            "issued ahead",
            signed(&alice, at(&alice, ORIGIN, now + 3600, 3600, &[Scope::Read])),
            "not valid yet",
        ),
        (
            "another origin",
            read_token(&alice, "public.pgext.test/log", 600),
            "another registry",
        ),
        (
            "not a member",
            read_token(&mallory, ORIGIN, 600),
            "not signed by a key of a member",
        ),
        (
            "the admin key, not an account",
            read_token(&admin, ORIGIN, 600),
            "not signed by a key of a member",
        ),
        ("malformed", "pgext1.notbase64!.x".into(), "malformed"),
        ("truncated", good[..good.len() - 5].to_string(), "malformed"),
        ("not a token", "hello".into(), "malformed"),
        (
            "too long",
            format!("pgext1.{}", "A".repeat(5000)),
            "malformed",
        ),
    ];
    for (what, t, words) in &cases {
        let (status, _, body) = get(&format!("{url}/dist/acme_db.json"), Some(t), false).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains(words), "{what}: {body}");
        // The token is never repeated back.
        assert!(t.len() < 12 || !body.contains(t.as_str()), "{what}");
    }
    // A read token cannot publish.
    let files = pgext_tests::fixtures::dist("acme_db", "1.0.1", "acme_db", "stable");
    let tgz = pgext_tests::fixtures::tar_gz("acme_db-1.0.1", &files);
    let p = pgext::release::prepare_release(&tgz, None).unwrap();
    let reader = pgext::api::Node::with_client(&url, pgext::http::client_with(Some(&good)));
    let err = reader
        .publish(
            &alice.sign(Action::Release(p.release)),
            tgz,
            "acme_db-1.0.1.tar.gz",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("403") && err.contains("does not allow publish"),
        "{err}"
    );
    assert_eq!(node.node.origin().size(), 2);
    // Rotating the key stops the old key's tokens at the commit, cached or not.
    assert_eq!(
        get(&format!("{url}/dist/acme_db.json"), Some(&good), false)
            .await
            .0,
        200
    );
    let new = pgext::author::generate("alice");
    let rotate = alice.sign(Action::KeyRotate {
        new_key: pgext_spec::authority::encode_public_key(&new.key.verifying_key()),
    });
    node.api_as(&alice).submit(&rotate).await.unwrap();
    node.wait_size("", 3, 30).await;
    let (status, _, body) = get(&format!("{url}/dist/acme_db.json"), Some(&good), false).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let fresh = read_token(&alice, ORIGIN, 600);
    let (status, _, _) = get(&format!("{url}/dist/acme_db.json"), Some(&fresh), false).await;
    assert_eq!(status, 401, "a token of the rotated-away key");
    let renewed = read_token(&new, ORIGIN, 600);
    assert_eq!(
        get(&format!("{url}/dist/acme_db.json"), Some(&renewed), false)
            .await
            .0,
        200
    );
    // Guessing is limited per address and counted.
    let mut limited = false;
    for i in 0..40 {
        let (status, _, _) = get(
            &format!("{url}/"),
            Some(&format!("pgext1.guess{i}.x")),
            false,
        )
        .await;
        if status == 429 {
            limited = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(
        limited,
        "40 wrong tokens from one address were never limited"
    );
    // Valid tokens from that address wait too, for the rest of the minute.
    assert_eq!(
        get(&format!("{url}/dist/acme_db.json"), Some(&renewed), false)
            .await
            .0,
        429
    );
    let metrics = node.node.origin().metrics().render();
    let failures = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pgext_auth_failures_total "))
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(failures >= 30.0, "{failures}");
    node.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_signs_in_to_the_site_with_a_token() {
    let (node, _, alice) = private_registry().await;
    let url = node.url();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"token\""));
    // A wrong token: the page again, with why.
    let bad = http
        .post(format!("{url}/login"))
        .form(&[("token", "pgext1.x.y")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.text().await.unwrap().contains("malformed"));
    let t = read_token(&alice, ORIGIN, 3600);
    let ok = http
        .post(format!("{url}/login"))
        .form(&[("token", t.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with(&format!("pgext_token={t};")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let page = http
        .get(format!("{url}/dist/acme_db/"))
        .header("cookie", cookie.split(';').next().unwrap())
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("acme_db"));
    let out = http.get(format!("{url}/logout")).send().await.unwrap();
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    node.node.shutdown().await;
}

#[tokio::test]
async fn a_private_registry_cannot_be_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = pgext_node::config::Config::for_tests(dir.path());
    c.access = Access::Private;
    let err = pgext_node::node::Node::spawn(c)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot let anyone register"), "{err}");
}

/// An organization's two nodes replicate and cosign its private origin; an outside node that
/// asks for it gets nothing, over HTTP or libp2p, and stores nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allowed_peers_replicate_a_private_origin() {
    use pgext_node::config::MirrorConfig;
    use pgext_node::p2p::wire::{BlobRequest, BlobResponse, TileRequest, TileResponse};

    let admin = identity("admin", 90);
    let admin_key = pgext_spec::authority::encode_public_key(&admin.key.verifying_key());
    let (dir_a, peer_a) = TestNode::folder_with_peer_id();
    let (dir_b, peer_b) = TestNode::folder_with_peer_id();
    let a = TestNode::start_in(dir_a, |c| {
        c.origin = Some(ORIGIN.into());
        c.witness_name = Some("a.acme.pgext.test/witness".into());
        c.access = Access::Private;
        c.registration = Registration::Invite;
        c.admin_keys = vec![admin_key];
        c.p2p.enabled = true;
        c.p2p.allow = vec![peer_b.clone()];
    })
    .await;
    let acme_vkey = a.vkey();
    let private_mirror = |vkey: &str| MirrorConfig {
        name: "acme".into(),
        vkey: vkey.to_string(),
        access: Access::Private,
    };
    let b = TestNode::start_in(dir_b, |c| {
        c.origin = Some("b.org.pgext.test/log".into());
        c.witness_name = Some("b.org.pgext.test/witness".into());
        c.p2p.enabled = true;
        c.p2p.peers = vec![a.p2p_addr()];
        c.p2p.allow = vec![peer_a.clone()];
        c.mirrors = vec![private_mirror(&acme_vkey)];
    })
    .await;
    // The outsider knows the key and asks for the origin: it is not on A's list.
    let c = TestNode::start_with(|c| {
        c.origin = Some("outside.pgext.test/log".into());
        c.p2p.enabled = true;
        c.p2p.peers = vec![a.p2p_addr(), b.p2p_addr()];
        c.p2p.allow = vec![peer_a.clone(), peer_b.clone()];
        c.mirrors = vec![private_mirror(&acme_vkey)];
    })
    .await;
    let alice = identity("alice", 1);
    let zip_sha = join_and_publish(&a, &admin, &alice).await;
    // B verifies and commits it, and its cosignature reaches A without any gossip topic.
    b.wait_size("/origins/acme", 2, 60).await;
    let b_witness = b.node.federation().unwrap().witness().name().to_string();
    let t = read_token(&alice, ORIGIN, 600);
    pgext_tests::eventually(60, || async {
        let (status, _, note) = get(&format!("{}/log/checkpoint", a.url()), Some(&t), false).await;
        if status == 200 && note.contains(&format!("— {b_witness} ")) {
            Ok(())
        } else {
            Err(format!("A's checkpoint is not cosigned by B yet: {note}"))
        }
    })
    .await;
    // B serves the mirror to members only.
    let mirror = format!("{}/origins/acme", b.url());
    assert_eq!(
        get(&format!("{mirror}/dist/acme_db.json"), None, false)
            .await
            .0,
        401
    );
    assert_eq!(
        get(&format!("{mirror}/dist/acme_db.json"), Some(&t), false)
            .await
            .0,
        200
    );
    let (_, _, origins) = get(&format!("{}/api/v1/origins", b.url()), None, false).await;
    assert!(
        !origins.contains(ORIGIN) && !origins.contains("/origins/acme"),
        "{origins}"
    );
    let (_, _, origins) = get(&format!("{}/api/v1/origins", b.url()), Some(&t), false).await;
    assert!(origins.contains(ORIGIN), "{origins}");
    // The outsider asks A straight away, as a hostile peer would: nothing.
    let fed = c.node.federation().unwrap();
    let a_id: pgext_node::p2p::PeerId = peer_a.parse().unwrap();
    for path in ["checkpoint", "tile/0/000.p/2", "tile/entries/000.p/2"] {
        let answer = fed
            .p2p()
            .tiles(
                a_id,
                TileRequest {
                    origin: ORIGIN.into(),
                    path: path.into(),
                },
            )
            .await
            .unwrap();
        assert!(
            matches!(answer, TileResponse::NotFound(_)),
            "{path}: {answer:?}"
        );
    }
    let blob = fed
        .p2p()
        .blobs(
            a_id,
            BlobRequest {
                sha256: zip_sha.clone(),
                offset: 0,
                more: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(blob, BlobResponse::NotFound);
    // Given time to poll, it still holds nothing of the origin.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let outside = c.node.served("/origins/acme").unwrap();
    assert_eq!(outside.size(), 0);
    assert!(outside.snapshot().note.is_empty());
    let files = walk_names(c.dir.path());
    assert!(
        !files.iter().any(|f| f.contains(&zip_sha)),
        "the outsider stored the private zip"
    );
    assert_eq!(c.blob_count(), 0);
    for n in [a, b, c] {
        n.node.shutdown().await;
    }
}

fn walk_names(p: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk_names(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
