use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;

use crate::authority::{Registry, Rule, encode_public_key};
use crate::entry::{Action, ENTRY_VERSION, Entry, Release, Statement, Status, user_key_id};

/// A log replayed entry by entry (also for other modules' tests).
pub(crate) struct Log {
    pub(crate) reg: Registry,
    next: u64,
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// A statement by `actor`, signed with `k` (also for other modules' tests).
pub(crate) fn entry(actor: &str, k: &SigningKey, action: Action) -> Entry {
    Statement {
        v: ENTRY_VERSION,
        actor: actor.into(),
        key_id: user_key_id(k.verifying_key().as_bytes()),
        time: 1,
        action,
    }
    .sign(k)
}

/// `user`'s account entry with key `k`.
pub(crate) fn account(user: &str, k: &SigningKey) -> Entry {
    entry(
        user,
        k,
        Action::Account {
            user: user.into(),
            key: encode_public_key(&k.verifying_key()),
            name: None,
            email: None,
            uri: None,
            invite: None,
        },
    )
}

/// A release of `dist` `version` providing `exts` (also for other modules' tests).
pub(crate) fn release(
    actor: &str,
    k: &SigningKey,
    dist: &str,
    version: &str,
    exts: &[&str],
) -> Entry {
    entry(
        actor,
        k,
        Action::Release(Release {
            dist: dist.into(),
            version: version.into(),
            status: Status::Stable,
            sha256: "a".repeat(64),
            sha1: "b".repeat(40),
            size: 1,
            meta_sha256: "c".repeat(64),
            provides: exts
                .iter()
                .map(|e| (e.to_string(), version.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }),
    )
}

impl Log {
    fn new() -> Log {
        Log {
            reg: Registry::new(),
            next: 0,
        }
    }

    /// A log whose operator key is `op`.
    pub(crate) fn with_operator(op: &SigningKey) -> Log {
        Log {
            reg: Registry::with_operator(op.verifying_key()),
            next: 0,
        }
    }

    /// Applies `e`, which must pass.
    pub(crate) fn ok(&mut self, e: Entry) {
        self.reg.apply(self.next, &e).unwrap();
        self.next += 1;
    }

    /// Applies `e`, which must break `rule` and change nothing.
    pub(crate) fn refused(&mut self, e: Entry, rule: Rule) {
        let before = format!("{:?}", self.reg);
        let err = self.reg.apply(self.next, &e).unwrap_err();
        assert_eq!(err.rule, rule, "{err}");
        assert_eq!(
            format!("{:?}", self.reg),
            before,
            "a refused entry changed the state"
        );
    }
}

#[test]
fn accounts() {
    let mut log = Log::new();
    log.ok(account("alice", &key(1)));
    log.refused(account("alice", &key(2)), Rule::AccountExists);
    log.refused(account("bob", &key(1)), Rule::KeyReused);
    log.refused(account("postgres", &key(3)), Rule::ReservedName);
    log.refused(account("Bad Name", &key(3)), Rule::InvalidName);
    // An account entry signed by another key than the one it registers.
    let mut forged = account("carol", &key(4));
    forged.sig = account("carol", &key(5)).sig;
    log.refused(forged, Rule::BadSignature);
}

#[test]
fn releases_owners_and_extensions() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut log = Log::new();
    log.ok(account("alice", &a));
    log.ok(account("bob", &b));
    log.ok(account("carol", &c));
    log.ok(release("alice", &a, "pair", "1.0.0", &["pair"]));
    log.refused(
        release("bob", &b, "pair", "1.1.0", &["pair"]),
        Rule::NotOwner,
    );
    log.refused(
        release("bob", &b, "other", "1.0.0", &["pair"]),
        Rule::ExtensionOwned,
    );
    log.refused(
        release("alice", &a, "PAIR", "1.0.0", &["pair"]),
        Rule::DuplicateVersion,
    );
    log.refused(
        release("alice", &a, "pair", "0.9.0", &["pair"]),
        Rule::VersionOrder,
    );
    log.refused(
        release("alice", &a, "pair", "1.0", &["pair"]),
        Rule::InvalidVersion,
    );
    log.refused(
        release("alice", &a, "psql", "1.0.0", &["x1"]),
        Rule::ReservedName,
    );
    log.refused(
        release("alice", &a, "fine", "1.0.0", &["pgsql"]),
        Rule::ReservedName,
    );
    log.refused(
        release("mallory", &b, "pair", "2.0.0", &["pair"]),
        Rule::UnknownActor,
    );
    log.refused(
        release("alice", &b, "pair", "2.0.0", &["pair"]),
        Rule::KeyNotActive,
    );

    // Co-owner publishes; removed owner cannot.
    log.refused(
        entry(
            "bob",
            &b,
            Action::OwnerGrant {
                dist: "pair".into(),
                user: "bob".into(),
            },
        ),
        Rule::NotOwner,
    );
    log.ok(entry(
        "alice",
        &a,
        Action::OwnerGrant {
            dist: "pair".into(),
            user: "bob".into(),
        },
    ));
    log.ok(release("bob", &b, "pair", "1.1.0", &["pair"]));
    // Patch of an older line is fine; a lower patch within a line is not.
    log.ok(release("alice", &a, "pair", "2.0.0", &["pair"]));
    log.ok(release("alice", &a, "pair", "1.1.1", &["pair"]));
    log.refused(
        release("alice", &a, "pair", "1.1.0-beta.1", &["pair"]),
        Rule::VersionOrder,
    );
    log.ok(entry(
        "alice",
        &a,
        Action::OwnerRevoke {
            dist: "pair".into(),
            user: "bob".into(),
        },
    ));
    log.refused(
        release("bob", &b, "pair", "2.1.0", &["pair"]),
        Rule::NotOwner,
    );
    log.refused(
        entry(
            "alice",
            &a,
            Action::OwnerRevoke {
                dist: "pair".into(),
                user: "alice".into(),
            },
        ),
        Rule::WouldOrphan,
    );
    // An owner of both dists may move an extension.
    log.ok(release("alice", &a, "pair_ng", "0.1.0", &["pair"]));
    assert_eq!(log.reg.extension_dist("PAIR").unwrap().name, "pair_ng");
    assert_eq!(log.reg.dist("pair").unwrap().releases.len(), 4);
}

#[test]
fn yanks_and_keys() {
    let (a, a2, a3) = (key(1), key(2), key(3));
    let mut log = Log::new();
    log.ok(account("alice", &a));
    log.ok(release("alice", &a, "pair", "1.0.0", &["pair"]));
    log.refused(
        entry(
            "alice",
            &a,
            Action::Unyank {
                dist: "pair".into(),
                version: "1.0.0".into(),
            },
        ),
        Rule::NoChange,
    );
    log.ok(entry(
        "alice",
        &a,
        Action::Yank {
            dist: "pair".into(),
            version: "1.0.0".into(),
            reason: Some("broken".into()),
        },
    ));
    log.refused(
        entry(
            "alice",
            &a,
            Action::Yank {
                dist: "pair".into(),
                version: "1.0.0".into(),
                reason: None,
            },
        ),
        Rule::NoChange,
    );
    log.refused(
        entry(
            "alice",
            &a,
            Action::Yank {
                dist: "pair".into(),
                version: "9.0.0".into(),
                reason: None,
            },
        ),
        Rule::UnknownRelease,
    );
    assert_eq!(
        log.reg.dist("pair").unwrap().releases["1.0.0"]
            .yanked
            .as_deref(),
        Some("broken")
    );
    log.ok(entry(
        "alice",
        &a,
        Action::Unyank {
            dist: "pair".into(),
            version: "1.0.0".into(),
        },
    ));

    // Rotation retires the signing key.
    log.ok(entry(
        "alice",
        &a,
        Action::KeyRotate {
            new_key: encode_public_key(&a2.verifying_key()),
        },
    ));
    log.refused(
        release("alice", &a, "pair", "1.1.0", &["pair"]),
        Rule::KeyNotActive,
    );
    log.ok(release("alice", &a2, "pair", "1.1.0", &["pair"]));
    // Revocation needs another active key.
    log.refused(
        entry(
            "alice",
            &a2,
            Action::KeyRevoke {
                revoked: user_key_id(a2.verifying_key().as_bytes()),
            },
        ),
        Rule::WouldOrphan,
    );
    log.ok(entry(
        "alice",
        &a2,
        Action::KeyRotate {
            new_key: encode_public_key(&a3.verifying_key()),
        },
    ));
    log.refused(
        entry(
            "alice",
            &a3,
            Action::KeyRotate {
                new_key: encode_public_key(&a.verifying_key()),
            },
        ),
        Rule::KeyReused,
    );
    // A second key (say, for CI) can be added, used, and revoked by the other one.
    let ci = key(9);
    log.ok(entry(
        "alice",
        &a3,
        Action::KeyAdd {
            key: encode_public_key(&ci.verifying_key()),
        },
    ));
    log.ok(release("alice", &ci, "pair", "1.2.0", &["pair"]));
    log.ok(entry(
        "alice",
        &a3,
        Action::KeyRevoke {
            revoked: user_key_id(ci.verifying_key().as_bytes()),
        },
    ));
    log.refused(
        release("alice", &ci, "pair", "1.3.0", &["pair"]),
        Rule::KeyNotActive,
    );
}

fn build_of(rel: &Entry, index: u64, target: crate::binary::Target) -> crate::entry::Build {
    let Action::Release(r) = &rel.statement.action else {
        unreachable!()
    };
    crate::entry::Build {
        dist: r.dist.clone(),
        version: r.version.clone(),
        release_index: index,
        release_hash: pgext_log::leaf_hash(&rel.to_bytes()).to_hex(),
        target,
        sha256: "d".repeat(64),
        size: 100,
        log_sha256: "e".repeat(64),
        installcheck: crate::entry::Installcheck::Passed,
    }
}

#[test]
fn builds() {
    let (alice, bob) = (key(1), key(2));
    let mut log = Log::new();
    log.ok(account("alice", &alice));
    log.ok(account("bob", &bob));
    let rel = release("alice", &alice, "pair", "1.0.0", &["pair"]);
    log.ok(rel.clone());
    let other = release("alice", &alice, "other", "1.0.0", &["other"]);
    log.ok(other.clone());
    let t15 = crate::binary::tests::target();
    let build = |b: crate::entry::Build| Action::Build(b);

    // Any account may attest a build of a release named by its index and entry hash.
    log.ok(entry("bob", &bob, build(build_of(&rel, 2, t15.clone()))));
    let state = log.reg.dist("pair").unwrap().releases["1.0.0"].clone();
    assert_eq!(state.builds.len(), 1);
    assert_eq!(state.builds[0].user, "bob");
    assert_eq!(
        state.blobs().map(|(_, w)| w).collect::<Vec<_>>(),
        ["archive", "META", "binary"]
    );
    // The same attestation replayed, or the same builder and target again: refused.
    log.refused(
        entry("bob", &bob, build(build_of(&rel, 2, t15.clone()))),
        Rule::DuplicateBuild,
    );
    // Another builder, or another target: fine.
    log.ok(entry(
        "alice",
        &alice,
        build(build_of(&rel, 2, t15.clone())),
    ));
    let mut t18 = t15.clone();
    t18.pg = 18;
    log.ok(entry("bob", &bob, build(build_of(&rel, 2, t18.clone()))));

    // Another dist's index, a wrong hash, a release that does not exist.
    log.refused(
        entry("bob", &bob, build(build_of(&rel, 3, t15.clone()))),
        Rule::ReleaseMismatch,
    );
    let mut b = build_of(&other, 3, t15.clone());
    b.dist = "pair".into();
    log.refused(entry("bob", &bob, build(b)), Rule::ReleaseMismatch);
    let mut b = build_of(&rel, 2, t15.clone());
    b.version = "9.9.9".into();
    log.refused(entry("bob", &bob, build(b)), Rule::UnknownRelease);
    // A malformed target, bad digests, a package too large.
    let mut bad = t15.clone();
    bad.arch = "x86-64/../".into();
    log.refused(
        entry("bob", &bob, build(build_of(&other, 3, bad))),
        Rule::InvalidTarget,
    );
    let mut b = build_of(&other, 3, t15.clone());
    b.sha256 = "D".repeat(64);
    log.refused(entry("bob", &bob, build(b)), Rule::InvalidName);
    let mut b = build_of(&other, 3, t15.clone());
    b.size = crate::binary::MAX_BINARY_BYTES + 1;
    log.refused(entry("bob", &bob, build(b)), Rule::InvalidTarget);
    // A yanked release is not built.
    log.ok(entry(
        "alice",
        &alice,
        Action::Yank {
            dist: "other".into(),
            version: "1.0.0".into(),
            reason: None,
        },
    ));
    log.refused(
        entry("bob", &bob, build(build_of(&other, 3, t15.clone()))),
        Rule::ReleaseYanked,
    );
    // A revoked or unknown key attests nothing.
    log.refused(
        entry("carol", &key(9), build(build_of(&rel, 2, t15.clone()))),
        Rule::UnknownActor,
    );
    // Another toolchain is the same target: one attestation per builder and target.
    let mut clang = t15.clone();
    clang.toolchain = "clang-14.0.6".into();
    log.refused(
        entry("bob", &bob, build(build_of(&rel, 2, clang.clone()))),
        Rule::DuplicateBuild,
    );
    // Builds are not part of the distribution's history (what clients prove of a release).
    let d = log.reg.dist("pair").unwrap();
    assert_eq!(d.history, vec![2], "{:?}", d.history);
    // A builder that rotated its key withdrew what the old key signed, and may attest again.
    let bob2 = key(20);
    log.ok(entry(
        "bob",
        &bob,
        Action::KeyRotate {
            new_key: encode_public_key(&bob2.verifying_key()),
        },
    ));
    log.ok(entry("bob", &bob2, build(build_of(&rel, 2, clang))));
    log.refused(
        entry("bob", &bob2, build(build_of(&rel, 2, t15.clone()))),
        Rule::DuplicateBuild,
    );
    // At most MAX_BUILDS_PER_RELEASE attestations a release.
    let have = log.reg.dist("pair").unwrap().releases["1.0.0"].builds.len();
    for i in have..crate::authority::MAX_BUILDS_PER_RELEASE {
        let mut t = t15.clone();
        t.os_version = format!("v{i}");
        log.ok(entry("bob", &bob2, build(build_of(&rel, 2, t))));
    }
    let mut t = t15;
    t.os_version = "one_more".into();
    log.refused(
        entry("bob", &bob2, build(build_of(&rel, 2, t))),
        Rule::TooManyBuilds,
    );
}
