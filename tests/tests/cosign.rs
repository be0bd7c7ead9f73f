//! Post-quantum cosignatures (issue 23, part 3): a mirror with `witness_algorithms =
//! ["ed25519", "ml-dsa-44"]` cosigns what it verified with both keys under one name; a second
//! implementation (pyca/cryptography, `tests/tools/mldsa44.py`) verifies its ML-DSA-44 line;
//! a client whose witness policy names either key, or requires both, accepts the release; one
//! flipped byte in the ML-DSA-44 line is refused with nothing remembered or installed.

use std::process::Command;
use std::sync::{Arc, Mutex};

use pgext::VerifyError;
use pgext::request::Select;
use pgext::trust::{RegistryConfig, State};
use pgext::verify::fetch_verified;
use pgext_log::{KeyType, Note, VerifierKey, open_checkpoint};
use pgext_node::config::{Access, MirrorConfig, WitnessAlgorithm};
use pgext_tests::{TestNode, eventually, fixtures, identity, tools_dir};

const ORIGIN: &str = "pq.pgext.test/log";
const WITNESS: &str = "m.pgext.test/witness";

/// A proxy that flips one byte of the ML-DSA-44 cosignature in `/log/checkpoint` when asked.
async fn flipping_proxy(target: String, pq: VerifierKey, flip: Arc<Mutex<bool>>) -> String {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let (target, pq, flip) = (target.clone(), pq.clone(), flip.clone());
        async move {
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let resp = reqwest::get(format!("{target}{path}")).await.unwrap();
            let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
            let mut body = resp.bytes().await.unwrap().to_vec();
            if uri.path() == "/log/checkpoint" && *flip.lock().unwrap() {
                let mut note = Note::parse(&body).unwrap();
                let sig = note
                    .signatures
                    .iter_mut()
                    .find(|s| s.name == pq.name() && s.key_id == pq.key_id())
                    .expect("the ML-DSA-44 line");
                let at = sig.sig.len() / 2;
                sig.sig[at] ^= 0x40;
                body = note.to_bytes();
            }
            (status, body)
        }
    });
    pgext_tests::serve(app).await
}

fn registry(
    url: &str,
    vkey: &str,
    witnesses: Vec<String>,
    policy: Option<String>,
) -> RegistryConfig {
    RegistryConfig {
        name: "pq".into(),
        urls: vec![url.to_string()],
        vkey: vkey.to_string(),
        quorum: witnesses.len().min(1),
        witnesses,
        policy: policy.map(Into::into),
        ..RegistryConfig::default()
    }
}

/// Whether pyca/cryptography finds a valid cosignature by `vkey` in `note`.
fn python_verifies(vkey: &str, note: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoint");
    std::fs::write(&file, note).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/mldsa44.py");
    let out = Command::new(tools_dir().join("venv/bin/python"))
        .arg(script)
        .args(["verify", vkey])
        .arg(&file)
        .output()
        .expect("the tools venv's python (scripts/bootstrap)");
    assert!(
        out.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_cosign_post_quantum_and_clients_check_it() {
    let origin = TestNode::federated(ORIGIN, &[], &[]).await;
    let vkey = origin.vkey();
    let mirror = TestNode::start_with(|c| {
        c.origin = Some("m.pgext.test/log".into());
        c.witness_name = Some(WITNESS.into());
        c.witness_algorithms = vec![WitnessAlgorithm::Ed25519, WitnessAlgorithm::MlDsa44];
        c.p2p.enabled = true;
        c.p2p.peers = vec![origin.p2p_addr()];
        c.mirrors = vec![MirrorConfig {
            name: "main".into(),
            vkey: vkey.clone(),
            access: Access::Public,
        }];
    })
    .await;
    // The node names both keys: one name, a key id per algorithm.
    let (_, origins) = mirror.get("/api/v1/origins").await;
    let origins: serde_json::Value = serde_json::from_slice(&origins).unwrap();
    let cosigners: Vec<VerifierKey> = origins["cosigners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        cosigners.iter().map(VerifierKey::kind).collect::<Vec<_>>(),
        [KeyType::Cosignature, KeyType::MlDsa44]
    );
    assert!(cosigners.iter().all(|k| k.name() == WITNESS));
    let (ed, pq) = (cosigners[0].clone(), cosigners[1].clone());

    let alice = identity("alice", 1);
    origin.register(&alice, None).await;
    let files = fixtures::dist("pqdist", "1.0.0", "pqdist", "stable");
    let index = origin
        .publish_files(&alice, &files, "pqdist-1.0.0")
        .await
        .index;
    let size = index + 1;
    // The origin collects both of the mirror's cosignatures from gossip.
    let log_key: VerifierKey = vkey.parse().unwrap();
    let note = eventually(60, || async {
        let (_, note) = origin.get("/log/checkpoint").await;
        match open_checkpoint(&note, &log_key, &[ed.clone(), pq.clone()]) {
            Ok(c)
                if c.checkpoint.size == size
                    && c.note.verified_by(&ed).is_some()
                    && c.note.verified_by(&pq).is_some() =>
            {
                Ok(note)
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let parsed = Note::parse(&note).unwrap();
    let line = parsed
        .signatures
        .iter()
        .find(|s| s.key_id == pq.key_id())
        .unwrap();
    assert_eq!(line.sig.len(), 8 + pgext_log::ML_DSA_44_SIGNATURE_SIZE);

    // A second implementation verifies the mirror's ML-DSA-44 cosignature, and not a bent one.
    assert!(python_verifies(&pq.to_string(), &note));
    let mut bent = parsed.clone();
    let sig = bent
        .signatures
        .iter_mut()
        .find(|s| s.key_id == pq.key_id())
        .unwrap();
    sig.sig[100] ^= 1;
    assert!(!python_verifies(&pq.to_string(), &bent.to_bytes()));

    // Clients: the ML-DSA-44 key alone, the Ed25519 key alone, and a policy that requires both.
    let flip = Arc::new(Mutex::new(false));
    let url = flipping_proxy(origin.url(), pq.clone(), flip.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy");
    std::fs::write(
        &policy,
        format!(
            "log {vkey} {url}\nwitness m-ed {ed}\nwitness m-pq {pq}\ngroup both all m-ed m-pq\nquorum both\n"
        ),
    )
    .unwrap();
    let state = State::at(dir.path());
    for (reg, want) in [
        (
            registry(&url, &vkey, vec![pq.to_string()], None),
            vec![pq.to_string()],
        ),
        (
            registry(&url, &vkey, vec![ed.to_string()], None),
            vec![ed.to_string()],
        ),
        (
            registry(&url, &vkey, vec![], Some(policy.display().to_string())),
            vec![ed.to_string(), pq.to_string()],
        ),
    ] {
        let ok = fetch_verified(&reg, &state, "pqdist", &Select::version(None))
            .await
            .unwrap();
        let mut got = ok.provenance.cosigners.clone();
        got.sort();
        let mut want = want;
        want.sort();
        assert_eq!(got, want);
    }

    // One flipped byte in the ML-DSA-44 line: refused by a client that trusts that key, with the
    // checkpoint it remembered unchanged.
    let remembered = state.checkpoint(ORIGIN);
    *flip.lock().unwrap() = true;
    let fresh = tempfile::tempdir().unwrap();
    for st in [state.clone(), State::at(fresh.path())] {
        let reg = registry(&url, &vkey, vec![pq.to_string()], None);
        let e = fetch_verified(&reg, &st, "pqdist", &Select::version(None))
            .await
            .expect_err("a flipped ML-DSA-44 byte is refused");
        assert!(matches!(e, pgext::Error::Verify(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains(WITNESS), "{text}");
        if let pgext::Error::Verify(v) = &e {
            assert!(!matches!(v, VerifyError::Digest { .. }), "{v}");
        }
    }
    assert_eq!(state.checkpoint(ORIGIN), remembered);
    assert_eq!(State::at(fresh.path()).checkpoint(ORIGIN), None);
    for n in [origin, mirror] {
        n.node.shutdown().await;
    }
}
