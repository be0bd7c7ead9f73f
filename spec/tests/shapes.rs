use std::collections::BTreeMap;

use pgext_spec::api::*;
use pgext_spec::entry::{Action, Entry, Statement, Status};
use pgext_spec::wire::*;
use serde_bytes::ByteBuf;

fn entry() -> Entry {
    Entry {
        statement: Statement {
            v: 1,
            actor: "alice".into(),
            key_id: "0123456789abcdef".into(),
            time: 1_700_000_000,
            action: Action::Yank {
                dist: "pair".into(),
                version: "1.0.0".into(),
                reason: Some("broken".into()),
            },
        },
        sig: "c2ln".into(),
    }
}

#[test]
fn http_answers() {
    insta::assert_json_snapshot!(
        "receipt",
        Receipt {
            index: 3,
            checkpoint: "note".into(),
            proof: "c2sp.org/tlog-proof@v1\n".into()
        }
    );
    insta::assert_json_snapshot!("error", ErrorBody::one("not-found", "no such resource"));
    insta::assert_json_snapshot!(
        "log",
        LogInfo {
            origin: "o/log".into(),
            vkey: "o/log+01020304+AQ".into(),
            size: 5,
            checkpoint: "o/log\n5\nroot\n\n— o/log sig\n".into(),
            tiles: "/log/".into(),
            role: Role::Sequencer,
            halted: None
        }
    );
    insta::assert_json_snapshot!(
        "entry",
        EntryDoc {
            index: 2,
            leaf_hash: "aGFzaA==".into(),
            entry: entry()
        }
    );
    insta::assert_json_snapshot!(
        "inclusion",
        InclusionProof {
            index: 1,
            size: 5,
            proof: vec!["aA==".into()]
        }
    );
    insta::assert_json_snapshot!(
        "consistency",
        ConsistencyProof {
            from: 2,
            to: 5,
            proof: vec!["aA==".into(), "aQ==".into()]
        }
    );
    insta::assert_json_snapshot!(
        "dist",
        Dist {
            name: "pair".into(),
            owners: vec!["alice".into()],
            releases: vec![DistRelease {
                version: "1.0.0".into(),
                status: Status::Stable,
                sha256: "ab".repeat(32),
                sha1: "cd".repeat(20),
                size: 1234,
                meta_sha256: "ef".repeat(32),
                provides: BTreeMap::from([("pair".into(), "1.0.0".into())]),
                user: "alice".into(),
                date: "2026-11-30T12:00:00Z".into(),
                index: 2,
                yanked: true,
                yank_reason: Some("broken".into()),
                imported: false,
                downloads: 7,
            }],
            history: vec![2, 3],
            pgxn_user: None,
        }
    );
    insta::assert_json_snapshot!(
        "docs",
        Docs {
            dist: "pair".into(),
            version: "1.0.0".into(),
            special_files: vec!["META.json".into()],
            docs: vec![DocInfo {
                docpath: "doc/pair".into(),
                file: "doc/pair.md".into(),
                title: "pair".into(),
                extension: Some("pair".into()),
            }]
        }
    );
    insta::assert_json_snapshot!(
        "account",
        Account {
            user: "alice".into(),
            name: Some("Alice".into()),
            email: None,
            uri: None,
            index: 0,
            keys: vec![AccountKey {
                key_id: "0123456789abcdef".into(),
                key: "a2V5".into(),
                active: true,
                index: 0,
            }],
            owns: vec!["pair".into()],
            history: vec![0]
        }
    );
    insta::assert_json_snapshot!(
        "origins",
        Origins {
            origins: vec![OriginInfo {
                origin: "m/log".into(),
                vkey: "m/log+01020304+AQ".into(),
                role: Role::Mirror,
                prefix: "/origins/main/".into(),
                size: 7,
                checkpoint: Some("note".into()),
                halted: Some("split view".into()),
            }],
            peer_id: Some("12D3KooW".into()),
            p2p_addrs: Some(vec!["/ip4/127.0.0.1/tcp/1/p2p/12D3KooW".into()]),
            witness: Some("m/witness+05060708+BA".into()),
            cosigners: vec![
                "m/witness+05060708+BA".into(),
                "m/witness+0a0b0c0d+Bg".into()
            ],
            peer_scores: vec![PeerScore {
                peer_id: "12D3KooX".into(),
                score: -100,
            }]
        }
    );
    insta::assert_json_snapshot!(
        "evidence",
        EvidenceList {
            evidence: vec![Evidence {
                origin: "o/log".into(),
                reason: "two roots".into(),
                notes: ["a".into(), "b".into()],
                detected: 9,
            }],
            unreadable: vec![Unreadable {
                origin: "p/log".into(),
                error: "does not parse".into(),
            }]
        }
    );
    insta::assert_json_snapshot!(
        "search",
        SearchPage {
            query: "pair".into(),
            within: "dists".into(),
            offset: 0,
            limit: 10,
            count: 1,
            hits: vec![serde_json::json!({"dist": "pair", "score": 1.5})]
        }
    );
}

/// The CBOR bytes of a message, as hex, 32 bytes to a line.
fn cbor<T: serde::Serialize>(msg: &T) -> String {
    let out = cbor4ii::serde::to_vec(Vec::new(), msg).expect("encodes");
    out.chunks(32)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn peer_messages() {
    let sha = "ab".repeat(32);
    insta::assert_snapshot!(
        "tiles_request",
        cbor(&TileRequest {
            origin: "o/log".into(),
            path: "tile/entries/000.p/7".into()
        })
    );
    insta::assert_snapshot!(
        "tiles_found",
        cbor(&TileResponse::Found(ByteBuf::from(vec![1, 2, 3])))
    );
    insta::assert_snapshot!("tiles_busy", cbor(&TileResponse::Busy));
    insta::assert_snapshot!(
        "blobs_request",
        cbor(&BlobRequest {
            sha256: sha.clone(),
            offset: 0,
            more: vec![sha.clone()]
        })
    );
    insta::assert_snapshot!(
        "blobs_found",
        cbor(&BlobResponse::Found {
            total: 3,
            chunk: ByteBuf::from(vec![9, 9, 9]),
            more: vec![WholeBlob {
                sha256: sha,
                bytes: ByteBuf::from(vec![1])
            }]
        })
    );
    insta::assert_snapshot!(
        "submit_request",
        cbor(&SubmitRequest {
            origin: "o/log".into(),
            entry: ByteBuf::from(b"{}".to_vec()),
            archive: None
        })
    );
    insta::assert_snapshot!(
        "submit_refused",
        cbor(&SubmitResponse::Refused {
            kind: Refusal::Conflict,
            code: "duplicate-version".into(),
            detail: "published already".into()
        })
    );
    insta::assert_snapshot!(
        "witness_answer",
        cbor(&WitnessResponse::Answer {
            status: 409,
            body: ByteBuf::from(b"12\n".to_vec())
        })
    );
    insta::assert_snapshot!(
        "push_request",
        cbor(&PushRequest {
            origin: "acme.example/log".into(),
            message: ByteBuf::from(b"{}".to_vec())
        })
    );
    insta::assert_snapshot!("push_taken", cbor(&PushResponse::Taken));
}

#[test]
fn read_token_claims() {
    insta::assert_json_snapshot!(
        "token_claims",
        pgext_spec::token::Claims {
            origin: "acme.example/log".into(),
            user: "alice".into(),
            key: "0123456789abcdef".into(),
            scope: vec![pgext_spec::token::Scope::Read],
            iat: 1_764_500_000,
            exp: 1_767_092_000,
            nonce: "00112233445566778899aabbccddeeff".into(),
        }
    );
}
