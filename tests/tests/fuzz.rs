//! Every decoder of bytes a node takes from outside, fed arbitrary bytes and mutations of valid
//! messages (bytes flipped, inserted, deleted, cut, repeated): tile paths, entry bundles, signed
//! notes, checkpoints and cosignatures, tlog-proof files, witness requests, log entries,
//! release archives, each protocol's peer messages, gossip (count statements too), read tokens, and the client's
//! manifests, locks and META prerequisites. None may panic, and none may allocate more than a
//! bound proportional to its input (the test binary counts the heap's
//! peak around each case).
//!
//! `PGEXT_FUZZ_CASES` sets the cases per decoder: 100,000 by default (CI); the long run in
//! `docs/benchmarks.md` uses 10,000,000. Each test runs in its own process (nextest), so the
//! peak counter sees one decoder at a time.

use std::sync::OnceLock;

use pgext_log::{
    AddCheckpoint, Checkpoint, Hash, KeyType, Note, ProofFile, SignerKey, Tile, VerifierKey,
    leaf_hash, open, open_checkpoint, parse_bundle, push_entry, sign,
};
use pgext_node::federation::gossip::Gossip;
use pgext_node::p2p::wire;
use pgext_spec::archive::{Limits, read_archive};
use pgext_spec::entry::{Action, Entry};
use pgext_tests::{fixtures, identity};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::PEAK;

/// Cases per decoder.
fn cases() -> u32 {
    std::env::var("PGEXT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Bytes of arbitrary length and content, or one of `samples` mutated.
fn inputs(samples: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let mutated = (
        0..samples.len(),
        prop::collection::vec((0u8..5, any::<usize>(), any::<u8>()), 1..8),
    )
        .prop_map(move |(i, edits)| {
            let mut b = samples[i].clone();
            for (kind, pos, byte) in edits {
                let at = pos % (b.len() + 1);
                match kind {
                    0 if at < b.len() => b[at] ^= byte.max(1),
                    1 => b.insert(at, byte),
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    3 => b.truncate(at),
                    _ => {
                        let end = (at + usize::from(byte)).min(b.len());
                        let copy = b[at..end].to_vec();
                        b.splice(at..at, copy);
                    }
                }
            }
            b
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..512),
        3 => mutated,
    ]
}

/// Runs `decode` on every input, failing on a panic or on a heap peak above
/// `factor` × the input's size plus 4 MiB.
fn fuzz(samples: Vec<Vec<u8>>, factor: usize, decode: impl Fn(&[u8])) {
    for s in &samples {
        decode(s);
    }
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    runner
        .run(&inputs(samples), |input| {
            let before = PEAK.current_usage();
            PEAK.reset_peak_usage();
            decode(&input);
            let peak = PEAK.peak_usage().saturating_sub(before);
            let bound = factor * input.len() + (4 << 20);
            if peak > bound {
                return Err(TestCaseError::fail(format!(
                    "{peak} bytes of heap for {} bytes of input (bound {bound})",
                    input.len()
                )));
            }
            Ok(())
        })
        .unwrap();
}

fn log_key() -> &'static SignerKey {
    static K: OnceLock<SignerKey> = OnceLock::new();
    K.get_or_init(|| {
        SignerKey::from_seed("fuzz.pgext.test/log", KeyType::Ed25519, &[3; 32]).unwrap()
    })
}

fn cosigner() -> &'static SignerKey {
    static K: OnceLock<SignerKey> = OnceLock::new();
    K.get_or_init(|| {
        SignerKey::from_seed("fuzz.pgext.test/witness", KeyType::Cosignature, &[4; 32]).unwrap()
    })
}

fn notes() -> Vec<Vec<u8>> {
    let text = Checkpoint::new("fuzz.pgext.test/log", 1234, leaf_hash(b"x")).to_text();
    vec![
        sign(&text, &[log_key()], 0).unwrap().into_bytes(),
        sign(&text, &[log_key(), cosigner()], 1_700_000_000)
            .unwrap()
            .into_bytes(),
    ]
}

#[test]
fn tile_paths() {
    let samples = [
        "tile/0/000",
        "tile/1/x001/234.p/5",
        "tile/entries/x123/456.p/255",
        "tile/3/000.p/1",
    ]
    .map(|s| s.as_bytes().to_vec())
    .to_vec();
    fuzz(samples, 16, |b| {
        let _ = Tile::parse_path(&String::from_utf8_lossy(b));
    });
}

#[test]
fn bundles() {
    let mut big = Vec::new();
    for i in 0..256u32 {
        push_entry(&mut big, format!("entry {i}").as_bytes()).unwrap();
    }
    let mut small = Vec::new();
    push_entry(&mut small, &[7; 300]).unwrap();
    fuzz(vec![big, small], 16, |b| {
        let _ = parse_bundle(b);
    });
}

#[test]
fn notes_and_checkpoints() {
    let vkey = log_key().verifier().clone();
    fuzz(notes(), 16, |b| {
        if let Ok(n) = Note::parse(b) {
            let _ = Checkpoint::parse(&n.text);
        }
        let _ = open_checkpoint(b, &vkey, &[]);
        let _ = Checkpoint::parse(&String::from_utf8_lossy(b));
    });
}

#[test]
fn cosignatures_and_keys() {
    let keys: Vec<VerifierKey> = vec![log_key().verifier().clone(), cosigner().verifier().clone()];
    let mut samples = notes();
    samples.extend(keys.iter().map(|k| k.to_string().into_bytes()));
    fuzz(samples, 16, |b| {
        let _ = open(b, &keys);
        let _ = String::from_utf8_lossy(b).parse::<VerifierKey>();
    });
}

#[test]
fn proof_files_and_witness_requests() {
    let proof = vec![leaf_hash(b"a"), leaf_hash(b"b"), Hash::empty_root()];
    let note = notes().remove(0);
    let samples = vec![
        ProofFile {
            extra: Some(b"{\"entry\":1}".to_vec()),
            index: 17,
            proof: proof.clone(),
            checkpoint: note.clone(),
        }
        .to_bytes(),
        AddCheckpoint {
            old: 12,
            proof,
            checkpoint: note,
        }
        .to_bytes(),
    ];
    fuzz(samples, 16, |b| {
        let _ = ProofFile::parse(b);
        if let Ok(req) = AddCheckpoint::parse(b) {
            let _ = req.origin();
        }
    });
}

#[test]
fn entries() {
    let alice = identity("alice", 1);
    let files = fixtures::dist("pair", "1.0.0", "pair", "stable");
    let tgz = fixtures::tar_gz("pair-1.0.0", &files);
    let release = pgext::release::prepare_release(&tgz, None).unwrap().release;
    let samples = vec![
        alice.account_entry(Some("Alice"), None, None).to_bytes(),
        alice.sign(Action::Release(release.clone())).to_bytes(),
        alice
            .sign(Action::Import(pgext_spec::entry::Import {
                release,
                user: "theory".into(),
                date: "2010-10-19T03:59:54Z".into(),
                source: "pgxn".into(),
            }))
            .to_bytes(),
        alice
            .sign(Action::Claim {
                pgxn_user: "theory".into(),
                user: "alice".into(),
                evidence: "mail".into(),
            })
            .to_bytes(),
        alice
            .sign(Action::Yank {
                dist: "pair".into(),
                version: "1.0.0".into(),
                reason: Some("broken".into()),
            })
            .to_bytes(),
        alice
            .sign(Action::RoleGrant {
                role: "packages".into(),
                user: "alice".into(),
            })
            .to_bytes(),
        alice
            .sign(Action::PackageMap {
                purl: "pkg:generic/libxml2".into(),
                systems: [(
                    "debian".to_string(),
                    pgext_spec::packages::SystemPackages {
                        build: vec!["libxml2-dev".into()],
                        run: Some(vec!["libxml2".into()]),
                    },
                )]
                .into_iter()
                .collect(),
            })
            .to_bytes(),
        alice
            .sign(Action::Advisory(pgext_spec::advisory::Advisory {
                id: "PGEXT-2026-0001".into(),
                aliases: vec!["CVE-2026-1".into()],
                summary: "pair() trusts its caller".into(),
                details: "Upgrade.\n".into(),
                severity: vec![pgext_spec::advisory::Severity {
                    kind: "CVSS_V3".into(),
                    score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
                }],
                affected: vec![pgext_spec::advisory::Affected {
                    dist: "pair".into(),
                    ranges: vec![pgext_spec::advisory::Range {
                        kind: "SEMVER".into(),
                        events: vec![
                            pgext_spec::advisory::Event::Introduced("0".into()),
                            pgext_spec::advisory::Event::Fixed("1.0.1".into()),
                        ],
                    }],
                    versions: vec!["0.9.0".into()],
                }],
                references: vec![pgext_spec::advisory::Reference {
                    kind: "FIX".into(),
                    url: "https://example.org/fix".into(),
                }],
            }))
            .to_bytes(),
        alice
            .sign(Action::AdvisoryWithdraw {
                id: "PGEXT-2026-0001".into(),
                reason: Some("mistake".into()),
            })
            .to_bytes(),
        alice
            .sign(Action::CiKey {
                dist: "pair".into(),
                user: "alice".into(),
                key: "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl".into(),
                publisher: pgext_spec::trusted::Publisher {
                    issuer: "https://token.actions.githubusercontent.com".into(),
                    repository: "octo/pair".into(),
                    workflow: Some(".github/workflows/release.yml".into()),
                    git_ref: Some("refs/tags/*".into()),
                    environment: None,
                },
                claims: pgext_spec::trusted::Claims {
                    issuer: "https://token.actions.githubusercontent.com".into(),
                    subject: "repo:octo/pair:ref:refs/tags/v1".into(),
                    repository: "octo/pair".into(),
                    workflow: Some(".github/workflows/release.yml".into()),
                    git_ref: Some("refs/tags/v1".into()),
                    sha: Some("abc".into()),
                    environment: None,
                    run: Some("1".into()),
                },
                expires: 900,
            })
            .to_bytes(),
    ];
    fuzz(samples, 32, |b| {
        let _ = Entry::parse(b);
        let _ = Entry::from_submitted(b);
    });
}

#[test]
fn archives() {
    let files = fixtures::dist("pair", "1.0.0", "pair", "stable");
    let tgz = fixtures::tar_gz("pair-1.0.0", &files);
    let parsed = read_archive(&tgz, &Limits::default()).unwrap();
    let zip = pgext_spec::archive::pgxn_zip("pair", "1.0.0", &parsed).unwrap();
    let raw_zip = fixtures::zip_raw(&files);
    let bz2 = {
        use std::io::Write as _;
        let tar = flate2::read::GzDecoder::new(tgz.as_slice());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut { tar }, &mut plain).unwrap();
        let mut w = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        w.write_all(&plain).unwrap();
        w.finish().unwrap()
    };
    let limits = Limits::default();
    // Unpacking may grow an input up to the ratio limit (200×) past its first MiB.
    fuzz(vec![tgz, zip, raw_zip, bz2], 256 * 3, |b| {
        let _ = read_archive(b, &limits);
    });
}

#[test]
fn binary_packages() {
    use pgext_spec::binary::{FORMAT_VERSION, Manifest, Package, Postgres, pack, read_binary};
    let manifest = Manifest {
        trunk: FORMAT_VERSION.into(),
        package: Package {
            name: "pair".into(),
            version: "1.0.0".into(),
        },
        postgres: Postgres {
            major: 15,
            version: "PostgreSQL 15".into(),
        },
        target: crate::binary::target(15),
    };
    let files = std::collections::BTreeMap::from([
        (
            ("share".to_string(), "extension/pair.control".to_string()),
            (b"default_version = '1.0.0'\n".to_vec(), false),
        ),
        (
            ("pkglib".to_string(), "pair.so".to_string()),
            (vec![0x7f; 300], true),
        ),
    ]);
    let package = pack(&manifest, &files).unwrap();
    let limits = Limits::default();
    assert!(read_binary(&package, &limits).is_ok());
    fuzz(vec![package], 256 * 3, |b| {
        let _ = read_binary(b, &limits);
    });
}

/// Encodes `msg` as a request of its protocol, as a peer would send it.
fn encoded_request<Req, Resp>(mut codec: wire::Codec<Req, Resp>, msg: Req) -> Vec<u8>
where
    Req: wire::Message,
    Resp: wire::Message,
{
    wire::encode_request(&mut codec, msg).unwrap()
}

fn encoded_response<Req, Resp>(mut codec: wire::Codec<Req, Resp>, msg: Resp) -> Vec<u8>
where
    Req: wire::Message,
    Resp: wire::Message,
{
    wire::encode_response(&mut codec, msg).unwrap()
}

/// Decodes `b` as a request and as a response with `codec`, as the swarm does.
fn decode_both<Req, Resp>(mut codec: wire::Codec<Req, Resp>, b: &[u8])
where
    Req: wire::Message,
    Resp: wire::Message,
{
    let _ = wire::decode_request(&mut codec, b);
    let _ = wire::decode_response(&mut codec, b);
}

#[test]
fn wire_tiles() {
    let samples = vec![
        encoded_request(
            wire::tiles_codec(),
            wire::TileRequest {
                origin: "fuzz.pgext.test/log".into(),
                path: "tile/entries/000.p/7".into(),
            },
        ),
        encoded_response(
            wire::tiles_codec(),
            wire::TileResponse::Found(vec![1; 200].into()),
        ),
        encoded_response(
            wire::tiles_codec(),
            wire::TileResponse::NotFound("no".into()),
        ),
        encoded_response(wire::tiles_codec(), wire::TileResponse::Busy),
    ];
    fuzz(samples, 16, |b| decode_both(wire::tiles_codec(), b));
}

#[test]
fn wire_blobs() {
    let sha = "ab".repeat(32);
    let samples = vec![
        encoded_request(
            wire::blobs_codec(),
            wire::BlobRequest {
                sha256: sha.clone(),
                offset: 1 << 20,
                more: vec![sha.clone(), sha.clone()],
            },
        ),
        encoded_response(
            wire::blobs_codec(),
            wire::BlobResponse::Found {
                total: 300,
                chunk: vec![5; 100].into(),
                more: vec![wire::WholeBlob {
                    sha256: sha,
                    bytes: vec![6; 50].into(),
                }],
            },
        ),
    ];
    fuzz(samples, 16, |b| decode_both(wire::blobs_codec(), b));
}

#[test]
fn wire_submissions() {
    let alice = identity("alice", 1);
    let entry = alice.account_entry(None, None, None).to_bytes();
    let samples = vec![
        encoded_request(
            wire::submit_codec(1 << 20),
            wire::SubmitRequest {
                origin: "fuzz.pgext.test/log".into(),
                entry: entry.into(),
                archive: Some(vec![1; 64].into()),
            },
        ),
        encoded_response(
            wire::submit_codec(1 << 20),
            wire::SubmitResponse::Receipt(pgext_spec::api::Receipt {
                index: 3,
                checkpoint: "c".into(),
                proof: "p".into(),
            }),
        ),
        encoded_response(
            wire::submit_codec(1 << 20),
            wire::SubmitResponse::Refused {
                kind: wire::Refusal::Conflict,
                code: "duplicate-version".into(),
                detail: "d".into(),
            },
        ),
    ];
    fuzz(samples, 16, |b| {
        decode_both(wire::submit_codec(1 << 20), b);
        let _ = Entry::from_submitted(b);
    });
}

#[test]
fn wire_witness_and_gossip() {
    let note = String::from_utf8(notes().remove(1)).unwrap();
    let samples = vec![
        encoded_request(
            wire::witness_codec(),
            wire::WitnessRequest {
                body: note.clone().into_bytes().into(),
            },
        ),
        encoded_response(
            wire::witness_codec(),
            wire::WitnessResponse::Answer {
                status: 409,
                body: b"12\n".to_vec().into(),
            },
        ),
        serde_json::to_vec(&Gossip::Checkpoint {
            note: note.clone(),
            cosigner: Some(cosigner().verifier().to_string()),
        })
        .unwrap(),
        serde_json::to_vec(&Gossip::Evidence(pgext_node::origin::Evidence {
            origin: "fuzz.pgext.test/log".into(),
            reason: "r".into(),
            notes: [note.clone(), note],
            detected: 1,
        }))
        .unwrap(),
    ];
    let statement = pgext_spec::counts::Counted {
        v: 1,
        origin: "fuzz.pgext.test/log".into(),
        node: cosigner().verifier().to_string(),
        seq: 3,
        from: 1_700_000_000,
        to: 1_700_003_600,
        counts: vec![pgext_spec::counts::Count {
            dist: "pair".into(),
            version: "1.0.0".into(),
            downloads: 12,
        }],
    }
    .sign(cosigner().ed25519().unwrap())
    .to_bytes();
    let samples = [
        samples,
        vec![
            serde_json::to_vec(&Gossip::Counts(
                String::from_utf8(statement.clone()).unwrap(),
            ))
            .unwrap(),
            statement,
        ],
    ]
    .concat();
    let pushes = vec![
        encoded_request(
            wire::push_codec(),
            wire::PushRequest {
                origin: "fuzz.pgext.test/log".into(),
                message: samples[2].clone().into(),
            },
        ),
        encoded_response(wire::push_codec(), wire::PushResponse::Taken),
    ];
    let samples = [samples, pushes].concat();
    fuzz(samples, 16, |b| {
        decode_both(wire::witness_codec(), b);
        decode_both(wire::push_codec(), b);
        let _ = Gossip::decode(b);
        let _ = pgext_spec::counts::Statement::parse(b);
    });
}

#[test]
fn read_tokens() {
    use pgext_spec::token::{Scope, Token, claims, sign};
    let alice = identity("alice", 1);
    let mut state = pgext_spec::authority::Registry::new();
    state
        .apply(0, &alice.account_entry(None, None, None))
        .unwrap();
    let samples: Vec<Vec<u8>> = [vec![Scope::Read], vec![Scope::Publish, Scope::Read]]
        .iter()
        .map(|scope| {
            let c = claims(
                "fuzz.pgext.test/log",
                "alice",
                &alice.key,
                scope,
                1,
                60,
                [7; 16],
            );
            sign(&c, &alice.key).into_bytes()
        })
        .collect();
    fuzz(samples, 16, |b| {
        let text = String::from_utf8_lossy(b);
        if let Ok(t) = Token::parse(&text) {
            let _ = t.verify(&state, "fuzz.pgext.test/log", 30);
        }
    });
}

#[test]
fn metas_read_for_what_releases_need() {
    use pgext_spec::requirements::Requirements;
    let v2 = serde_json::json!({
        "name": "needs", "version": "1.0.0", "abstract": "x", "license": "PostgreSQL",
        "maintainers": [{"name": "A", "email": "a@example.org"}],
        "meta-spec": {"version": "2.0.0"},
        "contents": {
            "extensions": {"needs": {"sql": "needs.sql", "control": "needs.control", "tle": true}},
            "modules": {"needs": {"type": "extension", "lib": "needs", "preload": "server"}},
        },
        "dependencies": {
            "platforms": ["linux-amd64", "darwin"],
            "postgres": {"version": ">= 14.0", "with": ["xml"]},
            "packages": {"build": {"requires": {"pkg:generic/libxml2": "2.9"}}},
            "variations": [{"where": {"platforms": ["darwin"]}, "dependencies": {"packages": {"run": {"requires": {"pkg:generic/icu": 0}}}}}],
        },
    });
    let v1 =
        std::fs::read(pgext_tests::vectors_dir().join("../testdata/real-meta/pgtap.META.json"))
            .unwrap_or_default();
    let platform = pgext::target::platform();
    let samples = vec![
        serde_json::to_vec(&v2).unwrap(),
        v1,
        b"pkg:generic/libxml2".to_vec(),
    ];
    fuzz(samples, 8, |b| {
        if let Ok(m) = pgext_spec::meta::read_stored_meta(b) {
            let r = Requirements::from_meta(&m);
            let _ = r.check_platform(&platform);
            let _ = r.system_packages(&platform, None, &[pgext_spec::prereqs::Phase::Build]);
            let _ = r.server_preload();
        }
        let text = String::from_utf8_lossy(b);
        let _ = pgext_spec::packages::check_purl(&text);
        let _ = platform.matches(&text);
        let _ = pgext_spec::packages::valid_package_name("debian", &text);
    });
}

#[test]
fn id_token_claims_read_for_trusted_publishing() {
    use pgext_spec::trusted::{Claims, Publisher};
    let github = serde_json::json!({
        "iss": "https://token.actions.githubusercontent.com", "sub": "repo:o/r:ref:refs/tags/v1",
        "repository": "o/r", "workflow_ref": "o/r/.github/workflows/release.yml@refs/tags/v1",
        "ref": "refs/tags/v1", "sha": "abc", "run_id": 12, "environment": "release"
    });
    let gitlab = serde_json::json!({
        "iss": "https://gitlab.com", "sub": "project_path:g/p:ref_type:tag:ref:v1",
        "project_path": "g/p", "ci_config_ref_uri": "gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1",
        "ref": "v1", "ref_type": "tag", "pipeline_id": "5"
    });
    let publisher = Publisher {
        issuer: "https://gitlab.com".into(),
        repository: "g/p".into(),
        workflow: Some(".gitlab-ci.yml".into()),
        git_ref: Some("refs/tags/*".into()),
        environment: None,
    };
    let samples = vec![
        serde_json::to_vec(&github).unwrap(),
        serde_json::to_vec(&gitlab).unwrap(),
    ];
    fuzz(samples, 8, |b| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            if let Ok(c) = Claims::from_token(&v) {
                let _ = publisher.matches(&c);
            }
        }
        if let Ok(p) = serde_json::from_slice::<Publisher>(b) {
            let _ = p.check();
        }
    });
}

#[test]
fn osv_documents_read_as_advisories() {
    use pgext_spec::advisory::Advisory;
    use pgext_spec::osv::{Osv, OsvList};
    let doc = serde_json::json!({
        "schema_version": "1.6.0", "id": "GHSA-aaaa-bbbb-cccc", "modified": "2026-11-30T10:00:00Z",
        "aliases": ["CVE-2026-1"], "summary": "s", "details": "d",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N"}],
        "affected": [
            {"package": {"ecosystem": "PGXN", "name": "pair"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}, {"last_affected": "0.9.0"}, {"limit": "2.0.0"}]},
                        {"type": "GIT", "repo": "https://example.org/r.git", "events": [{"introduced": "0"}]}],
             "versions": ["1.0.0-rc1"]},
            {"package": {"ecosystem": "npm", "name": "x", "purl": "pkg:pgxn/other@1"}, "versions": ["1.0.0"]}
        ],
        "references": [{"type": "WEB", "url": "https://example.org"}],
        "database_specific": {"pgext": {"index": 3, "user": "alice", "history": [3]}}
    });
    let samples = vec![
        serde_json::to_vec(&doc).unwrap(),
        serde_json::to_vec(&serde_json::json!({"vulns": [doc]})).unwrap(),
    ];
    fuzz(samples, 8, |b| {
        if let Ok(d) = serde_json::from_slice::<Osv>(b) {
            if let Ok((a, _)) = Advisory::from_osv(&d) {
                for v in ["0.0.1", "1.0.0", "1.0.0-RC1", "1.0.1", "3.0.0", "x"] {
                    let _ = a.affects("pair", v);
                }
                let _ = a.fixed_in("pair");
            }
        }
        let _ = serde_json::from_slice::<OsvList>(b);
    });
}

#[test]
fn manifests_locks_and_prerequisites() {
    use pgext::lock::lockfile::{FORMAT, Lock, LockedDist, LockedRegistry};
    use pgext::lock::manifest::Manifest;
    use pgext_spec::prereqs::{Range, control_requires, prereqs};
    use std::path::Path;
    let manifest = b"with_recommends = true\n[postgres]\npg_config = \"/usr/bin/pg_config\"\n[dists]\nsemver = \">= 0.40.0, != 0.41.0\"\npair = { version = \"0.1.8\", registry = \"main\", kind = \"source\" }\n".to_vec();
    let lock = Lock {
        format: FORMAT,
        manifest_sha256: "ab".repeat(32),
        pg_config: None,
        postgres: "PostgreSQL 15.8".into(),
        registries: vec![LockedRegistry {
            name: "main".into(),
            origin: "example.org/log".into(),
            checkpoint: "example.org/log\n3\nAAAA\n\n— example.org/log AAAA\n".into(),
        }],
        dists: vec![LockedDist {
            name: "pair".into(),
            version: "0.1.8".into(),
            registry: "main".into(),
            index: 2,
            entry_hash: "cd".repeat(32),
            sha256: "ef".repeat(32),
            size: 1234,
            meta_sha256: "01".repeat(32),
            kind: "source".into(),
            binary: None,
            requires: vec!["semver".into()],
            why: vec!["requested".into()],
        }],
    }
    .to_bytes()
    .unwrap();
    let meta = br#"{"prereqs": {"runtime": {"requires": {"PostgreSQL": "14.0.0", "dblink": 0}, "recommends": {"pg_jobmon": ">= 1.4.1, < 2"}}, "test": {"requires": {"pgtap": "1.0"}}}, "dependencies": {"postgres": {"version": ">= 16"}, "packages": {"run": {"requires": {"pkg:pgxn/semver": "0.40.0", "pkg:generic/openssl": "3"}}}}}"#.to_vec();
    let control = b"default_version = '1.4.1'\nrequires = 'dblink, plpgsql'\n".to_vec();
    fuzz(vec![manifest, lock, meta, control], 64, |b| {
        let _ = Manifest::parse(Path::new("pgext.toml"), b);
        let _ = Lock::parse(Path::new("pgext.lock"), b);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            let _ = prereqs(&v);
        }
        let text = String::from_utf8_lossy(b);
        let _ = Range::parse(&text);
        let _ = control_requires(&text);
    });
}
