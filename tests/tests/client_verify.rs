//! The client proves a release before it writes anything: every check of `spec/client.md`,
//! each defeated once by a proxy between the client and a real node, with its own message, and
//! not one file installed into PostgreSQL.

use std::sync::{Arc, Mutex};

use pgext::VerifyError;
use pgext::ops::{Context, InstallOptions, Quiet};
use pgext::pg::PgInstall;
use pgext::request::Select;
use pgext::trust::{Config, RegistryConfig, State};
use pgext::verify::fetch_verified;
use pgext_spec::entry::{Action, Entry};
use pgext_tests::{TestNode, fixtures, identity};

const ORIGIN: &str = "origin.pgext.test/log";

/// What the proxy changes on the way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tamper {
    Nothing,
    FlipZip,
    OtherProof,
    ForeignCheckpoint,
    StripCosignatures,
    NonOwnerRelease,
}

struct Proxy {
    target: Mutex<String>,
    tamper: Mutex<Tamper>,
    foreign_checkpoint: Mutex<Vec<u8>>,
    forged_entry: Mutex<Option<(u64, Entry)>>,
}

async fn forward(p: Arc<Proxy>, uri: axum::http::Uri) -> (axum::http::StatusCode, Vec<u8>) {
    let target = p.target.lock().unwrap().clone();
    let tamper = *p.tamper.lock().unwrap();
    let mut path = uri.path().to_string();
    if tamper == Tamper::OtherProof {
        // The inclusion proof of the entry before the one asked for.
        if let Some(rest) = path.strip_prefix("/api/v1/proofs/inclusion/") {
            let (i, n) = rest.split_once('/').unwrap();
            let i: u64 = i.parse().unwrap();
            let other = if i > 0 { i - 1 } else { i + 1 };
            path = format!("/api/v1/proofs/inclusion/{other}/{n}");
        }
    }
    let resp = reqwest::get(format!("{target}{path}")).await.unwrap();
    let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut body = resp.bytes().await.unwrap().to_vec();
    match tamper {
        Tamper::FlipZip if path.ends_with(".zip") => {
            let at = body.len() / 2;
            body[at] ^= 1;
        }
        Tamper::ForeignCheckpoint if path == "/log/checkpoint" => {
            body = p.foreign_checkpoint.lock().unwrap().clone();
        }
        Tamper::StripCosignatures if path == "/log/checkpoint" => {
            // Keep the log's own signature (the first line after the blank line), drop the rest.
            let text = String::from_utf8(body).unwrap();
            let (head, sigs) = text.split_once("\n\n").unwrap();
            let first = sigs.lines().next().unwrap();
            body = format!("{head}\n\n{first}\n").into_bytes();
        }
        Tamper::NonOwnerRelease => {
            if let Some((index, entry)) = p.forged_entry.lock().unwrap().clone() {
                if path == format!("/api/v1/entries/{index}") {
                    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let mut doc = doc;
                    doc["entry"] = serde_json::to_value(&entry).unwrap();
                    body = serde_json::to_vec(&doc).unwrap();
                }
            }
        }
        _ => {}
    }
    (status, body)
}

async fn start_proxy(target: String) -> (Arc<Proxy>, String) {
    let p = Arc::new(Proxy {
        target: Mutex::new(target),
        tamper: Mutex::new(Tamper::Nothing),
        foreign_checkpoint: Mutex::new(Vec::new()),
        forged_entry: Mutex::new(None),
    });
    let app = axum::Router::new().fallback({
        let p = p.clone();
        move |uri: axum::http::Uri| forward(p.clone(), uri)
    });
    let url = pgext_tests::serve(app).await;
    (p, url)
}

async fn publish(
    node: &TestNode,
    who: &pgext::release::Identity,
    name: &str,
    version: &str,
) -> u64 {
    let files = fixtures::dist(name, version, name, "stable");
    node.publish_files(who, &files, &format!("{name}-{version}"))
        .await
        .index
}

fn registry(url: &str, vkey: &str, witnesses: Vec<String>, quorum: usize) -> RegistryConfig {
    RegistryConfig {
        name: "test".into(),
        urls: vec![url.to_string()],
        vkey: vkey.to_string(),
        witnesses,
        quorum,
        policy: None,
        ..RegistryConfig::default()
    }
}

/// The files of the PostgreSQL installation's extension and library folders named after
/// `dist` (other tests install other names there at the same time).
fn installed_files(pg: &PgInstall, dist: &str) -> Vec<std::path::PathBuf> {
    [pg.extension_dir(), pg.pkglibdir.clone()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().flatten().map(|e| e.path()))
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(dist))
        .collect()
}

/// Installs through the client, which must refuse before writing anything: no file in
/// PostgreSQL's folders, no install record. Returns why it refused.
async fn refused(
    reg: &RegistryConfig,
    state: &State,
    dist: &str,
    version: Option<&str>,
) -> VerifyError {
    let pg = PgInstall::find(None).unwrap();
    let ctx = Context {
        config: Config {
            registries: vec![reg.clone()],
        },
        state: state.clone(),
        registry: None,
        pg: pg.clone(),
        sudo: false,
        prefix: None,
        progress: Box::new(Quiet),
    };
    let spec = version.map_or_else(|| dist.to_string(), |v| format!("{dist}@{v}"));
    let before = installed_files(&pg, dist);
    let err = ctx
        .install(&spec, &InstallOptions::default())
        .await
        .unwrap_err();
    eprintln!("refused as expected: {err}");
    assert_eq!(
        installed_files(&pg, dist),
        before,
        "{spec}: files were written"
    );
    assert!(
        ctx.list().unwrap().is_empty(),
        "{spec}: recorded as installed"
    );
    match err {
        pgext::Error::Verify(e) => e,
        other => panic!("{spec}: refused for another reason: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tampering_is_refused_with_its_own_message() {
    let (origin, mirror, vkey, witness) = TestNode::witnessed(ORIGIN).await;
    let api = origin.api();
    let alice = identity("alice", 1);
    let mallory = identity("mallory", 2);
    api.submit(&alice.account_entry(None, None, None))
        .await
        .unwrap();
    api.submit(&mallory.account_entry(None, None, None))
        .await
        .unwrap();
    publish(&origin, &alice, "pair", "1.0.0").await;
    let index = publish(&origin, &alice, "pair", "1.1.0").await;

    // The origin serves the mirror's cosignature once the mirror verified its newest tree.
    origin
        .wait_cosigned(index + 1, "m.pgext.test/witness")
        .await;

    let (proxy, url) = start_proxy(origin.url()).await;
    let reg = registry(&url, &vkey, vec![witness.clone()], 1);
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::at(state_dir.path());

    // Untouched: everything verifies, the newest version is chosen, the checkpoint remembered.
    let ok = fetch_verified(&reg, &state, "pair", &Select::version(None))
        .await
        .unwrap();
    assert_eq!(ok.provenance.version, "1.1.0");
    assert_eq!(ok.provenance.index, index);
    assert_eq!(ok.provenance.publisher, "alice");
    assert_eq!(ok.provenance.cosigners, vec![witness.clone()]);
    assert!(state.checkpoint(ORIGIN).is_some());

    // (a) One byte of the zip flipped.
    *proxy.tamper.lock().unwrap() = Tamper::FlipZip;
    let e = refused(&reg, &state, "pair", Some("1.1.0")).await;
    assert!(matches!(e, VerifyError::Digest { .. }), "{e}");
    assert!(e.to_string().contains("SHA-256"), "{e}");

    // (b) The inclusion proof of another entry.
    *proxy.tamper.lock().unwrap() = Tamper::OtherProof;
    let e = refused(&reg, &state, "pair", Some("1.1.0")).await;
    assert!(matches!(e, VerifyError::Inclusion { .. }), "{e}");
    assert!(e.to_string().contains("inclusion proof fails"), "{e}");

    // (d) A checkpoint signed by another log key.
    let stranger = TestNode::start_with(|c| c.origin = Some(ORIGIN.to_string())).await;
    let (_, foreign) = stranger.get("/log/checkpoint").await;
    *proxy.foreign_checkpoint.lock().unwrap() = foreign;
    *proxy.tamper.lock().unwrap() = Tamper::ForeignCheckpoint;
    let e = refused(&reg, &state, "pair", Some("1.1.0")).await;
    assert!(matches!(e, VerifyError::LogSignature { .. }), "{e}");
    assert!(
        e.to_string().contains("not signed by the trusted log key"),
        "{e}"
    );

    // (e) Cosignatures stripped below the quorum.
    *proxy.tamper.lock().unwrap() = Tamper::StripCosignatures;
    let e = refused(&reg, &state, "pair", Some("1.1.0")).await;
    assert!(matches!(e, VerifyError::Quorum { have: 0, need: 1 }), "{e}");
    // The same witness required through a C2SP tlog-policy file: refused too, then accepted
    // with the cosignature back.
    let policy = state_dir.path().join("policy.txt");
    std::fs::write(
        &policy,
        format!("log {vkey} {url}\nwitness mirror {witness}\ngroup witnesses any mirror\nquorum witnesses\n"),
    )
    .unwrap();
    let with_policy = RegistryConfig {
        policy: Some(policy),
        ..registry(&url, &vkey, vec![], 0)
    };
    let e = refused(&with_policy, &state, "pair", Some("1.1.0")).await;
    assert!(
        matches!(&e, VerifyError::PolicyQuorum { have: 0, quorum } if quorum == "witnesses"),
        "{e}"
    );
    *proxy.tamper.lock().unwrap() = Tamper::Nothing;
    let ok = fetch_verified(
        &with_policy,
        &state,
        "pair",
        &Select::version(Some("1.1.0")),
    )
    .await
    .unwrap();
    assert_eq!(ok.provenance.cosigners, vec![witness.clone()]);

    // (f) The release statement re-signed by a registered key that does not own the dist.
    let Action::Release(r) = ok.entry.statement.action.clone() else {
        unreachable!()
    };
    let mut forged = mallory.sign(Action::Release(r));
    forged.statement.time = ok.entry.statement.time;
    let forged = forged.statement.sign(&mallory.key);
    *proxy.forged_entry.lock().unwrap() = Some((index, forged));
    *proxy.tamper.lock().unwrap() = Tamper::NonOwnerRelease;
    let e = refused(&reg, &state, "pair", Some("1.1.0")).await;
    assert!(matches!(e, VerifyError::Authority { .. }), "{e}");
    assert!(e.to_string().contains("mallory is not an owner"), "{e}");

    // Nothing refused moved the remembered checkpoint; an honest answer still verifies.
    *proxy.tamper.lock().unwrap() = Tamper::Nothing;
    fetch_verified(&reg, &state, "pair", &Select::version(Some("1.0.0")))
        .await
        .unwrap();

    for n in [origin, mirror, stranger] {
        n.node.shutdown().await;
    }
}

/// (c) A server showing an older checkpoint of another branch (same log key, other entries)
/// than the one the client remembers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_checkpoint_of_another_branch_is_refused() {
    let origin = TestNode::start().await;
    let vkey = origin.vkey();
    let api = origin.api();
    let alice = identity("alice", 1);
    api.submit(&alice.account_entry(None, None, None))
        .await
        .unwrap();
    publish(&origin, &alice, "pair", "1.0.0").await;
    let (origin, fork) = origin.fork().await;
    // The fork takes one other entry; the origin two.
    fork.api()
        .submit(&identity("carol", 3).account_entry(None, None, None))
        .await
        .unwrap();
    for (u, s) in [("bob", 2), ("dave", 4)] {
        origin
            .api()
            .submit(&identity(u, s).account_entry(None, None, None))
            .await
            .unwrap();
    }
    let state_dir = tempfile::tempdir().unwrap();
    let state = State::at(state_dir.path());
    let origin_name = vkey.split('+').next().unwrap().to_string();
    fetch_verified(
        &registry(&origin.url(), &vkey, vec![], 0),
        &state,
        "pair",
        &Select::version(None),
    )
    .await
    .unwrap();
    let remembered = state.checkpoint(&origin_name).unwrap();

    let e = refused(
        &registry(&fork.url(), &vkey, vec![], 0),
        &state,
        "pair",
        None,
    )
    .await;
    assert!(
        matches!(
            e,
            VerifyError::Inconsistent {
                size: 3,
                remembered: 4,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("not consistent"), "{e}");
    assert_eq!(state.checkpoint(&origin_name).unwrap(), remembered);
    for n in [origin, fork] {
        n.node.shutdown().await;
    }
}
