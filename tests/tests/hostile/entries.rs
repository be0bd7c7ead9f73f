//! Entries posted to `/api/v1/entries`: bodies that are not entries, entries over the log's
//! limits, and entries breaking the log's rules or the node's policy.

use pgext::release::Identity;
use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::{Action, ENTRY_VERSION, Entry, Statement, user_key_id};

use super::{Case, Fixture, case, post_json};

const PATH: &str = "/api/v1/entries";

/// `who` signs `action` as at `time`.
fn at(who: &Identity, time: u64, action: Action) -> Entry {
    Statement {
        v: ENTRY_VERSION,
        actor: who.user.clone(),
        key_id: user_key_id(who.key.verifying_key().as_bytes()),
        time,
        action,
    }
    .sign(&who.key)
}

fn account(user: &str, seed: u8, name: Option<String>) -> Entry {
    let who = pgext_tests::identity(user, seed);
    who.sign(Action::Account {
        user: user.into(),
        key: encode_public_key(&who.key.verifying_key()),
        name,
        email: None,
        uri: None,
        invite: None,
    })
}

fn entry(e: &Entry) -> super::Req {
    post_json(PATH, e.to_bytes())
}

pub(crate) fn cases(fx: &Fixture) -> Vec<Case> {
    let br = "bad-request";
    let now = pgext::release::now();
    let (alice, bob) = (&fx.alice, &fx.bob);
    let yank = |dist: &str, version: &str, reason: Option<String>| Action::Yank {
        dist: dist.into(),
        version: version.into(),
        reason,
    };
    // An entry JSON with one field changed, re-signed or not.
    let edited = |e: &Entry, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_slice(&e.to_bytes()).unwrap();
        f(&mut v);
        post_json(PATH, serde_json::to_vec(&v).unwrap())
    };
    let good = account("carol", 3, None);
    let mut forged = alice.sign(yank("pair", "1.0.0", None));
    forged.sig = bob.sign(yank("pair", "1.0.0", None)).sig;
    let huge_name = Some("n".repeat(70_000));
    let mut v = vec![
        // Not entries.
        case(
            "an empty body",
            post_json(PATH, ""),
            400,
            br,
            "malformed entry",
        ),
        case(
            "plain text",
            post_json(PATH, "hello"),
            400,
            br,
            "malformed entry",
        ),
        case(
            "a JSON array",
            post_json(PATH, "[]"),
            400,
            br,
            "malformed entry",
        ),
        case(
            "JSON null",
            post_json(PATH, "null"),
            400,
            br,
            "malformed entry",
        ),
        case(
            "an empty object",
            post_json(PATH, "{}"),
            400,
            br,
            "malformed entry",
        ),
        case(
            "a number",
            post_json(PATH, "1e400"),
            400,
            br,
            "malformed entry",
        ),
        case(
            "nested 100,000 deep",
            post_json(PATH, "[".repeat(100_000)),
            400,
            br,
            "malformed entry",
        ),
        case(
            "invalid UTF-8",
            post_json(PATH, vec![b'{', 0xff, 0xfe, b'}']),
            400,
            br,
            "malformed entry",
        ),
        case(
            "a body over the upload limit",
            post_json(PATH, vec![b' '; 22 << 20]),
            413,
            "too-large",
            "length limit",
        ),
        case(
            "a field the format lacks",
            edited(&good, &|v| v["extra"] = 1.into()),
            400,
            br,
            "fields the entry format does not have",
        ),
        case(
            "a null field",
            edited(&good, &|v| v["name"] = serde_json::Value::Null),
            400,
            br,
            "null",
        ),
        case(
            "entry version 2",
            edited(&good, &|v| v["v"] = 2.into()),
            400,
            br,
            "unsupported entry version",
        ),
        case(
            "a time that is not a number",
            edited(&good, &|v| v["time"] = "now".into()),
            400,
            br,
            "malformed entry",
        ),
        case(
            "an unknown type",
            edited(&good, &|v| v["type"] = "delete_everything".into()),
            400,
            br,
            "malformed entry",
        ),
        case(
            "no signature",
            edited(&good, &|v| {
                v.as_object_mut().unwrap().remove("sig");
            }),
            400,
            br,
            "malformed entry",
        ),
        // Over the log's limits.
        case(
            "an account of 70,000 bytes",
            entry(&account("dave", 4, huge_name)),
            413,
            "entry-too-large",
            "65,535",
        ),
        case(
            "a body four times the entry limit",
            post_json(PATH, format!("{{\"x\":\"{}\"}}", "x".repeat(300_000))),
            413,
            "entry-too-large",
            "65,535",
        ),
        case(
            "a yank reason of 70,000 bytes",
            entry(&alice.sign(yank("pair", "1.0.0", Some("r".repeat(70_000))))),
            413,
            "entry-too-large",
            "65,535",
        ),
        // Signatures and keys.
        case(
            "a forged signature",
            entry(&forged),
            401,
            "bad-signature",
            "signature",
        ),
        case(
            "a signature that is not base64",
            edited(&alice.sign(yank("pair", "1.0.0", None)), &|v| {
                v["sig"] = "!!!".into()
            }),
            401,
            "bad-signature",
            "signature",
        ),
        case(
            "an actor with no account",
            entry(&pgext_tests::identity("zed", 9).sign(yank("pair", "1.0.0", None))),
            401,
            "unknown-actor",
            "no account",
        ),
        case(
            "a key id of another key",
            edited(&alice.sign(yank("pair", "1.0.0", None)), &|v| {
                v["key_id"] = "0000000000000000".into()
            }),
            401,
            "key-not-active",
            "not an active key",
        ),
        // Rules.
        case(
            "an account name with capitals",
            entry(&account("Eve", 5, None)),
            422,
            "invalid-name",
            "invalid account name",
        ),
        case(
            "a one-letter account name",
            entry(&account("e", 5, None)),
            422,
            "invalid-name",
            "invalid account name",
        ),
        case(
            "a 33-letter account name",
            entry(&account(&"e".repeat(33), 5, None)),
            422,
            "invalid-name",
            "invalid account name",
        ),
        case(
            "an account name with a slash",
            entry(&account("e/x", 5, None)),
            422,
            "invalid-name",
            "invalid account name",
        ),
        case(
            "a reserved account name",
            entry(&account("postgres", 5, None)),
            422,
            "reserved-name",
            "reserved",
        ),
        case(
            "an account that exists",
            entry(&account("alice", 6, None)),
            409,
            "account-exists",
            "exists",
        ),
        case(
            "a key someone registered",
            entry(&pgext_tests::identity("frank", 1).account_entry(None, None, None)),
            409,
            "key-reused",
            "registered already",
        ),
        case(
            "an account name with a control character",
            entry(&account("gina", 7, Some("Gina\u{1b}[2J".into()))),
            422,
            "invalid-text",
            "control",
        ),
        case(
            "an account name of 300 bytes",
            entry(&account("hank", 8, Some("h".repeat(300)))),
            422,
            "invalid-text",
            "at most 256",
        ),
        case(
            "a yank reason with a newline",
            entry(&alice.sign(yank("pair", "1.0.0", Some("a\nb".into())))),
            422,
            "invalid-text",
            "control",
        ),
        case(
            "a yank of a release not there",
            entry(&alice.sign(yank("pair", "9.9.9", None))),
            422,
            "unknown-release",
            "no release",
        ),
        case(
            "a yank of a dist not there",
            entry(&alice.sign(yank("nope", "1.0.0", None))),
            422,
            "unknown-release",
            "no distribution",
        ),
        case(
            "a yank by a non-owner",
            entry(&bob.sign(yank("pair", "1.0.0", None))),
            403,
            "not-owner",
            "not an owner",
        ),
        case(
            "an unyank of what is not yanked",
            entry(&alice.sign(Action::Unyank {
                dist: "pair".into(),
                version: "1.0.0".into(),
            })),
            422,
            "no-change",
            "not yanked",
        ),
        case(
            "an owner grant by a non-owner",
            entry(&bob.sign(Action::OwnerGrant {
                dist: "pair".into(),
                user: "bob".into(),
            })),
            403,
            "not-owner",
            "not an owner",
        ),
        case(
            "an owner grant to no account",
            entry(&alice.sign(Action::OwnerGrant {
                dist: "pair".into(),
                user: "nobody".into(),
            })),
            422,
            "unknown-user",
            "no account",
        ),
        case(
            "an owner grant to an owner",
            entry(&alice.sign(Action::OwnerGrant {
                dist: "pair".into(),
                user: "alice".into(),
            })),
            422,
            "no-change",
            "already owns",
        ),
        case(
            "removing the last owner",
            entry(&alice.sign(Action::OwnerRevoke {
                dist: "pair".into(),
                user: "alice".into(),
            })),
            422,
            "would-orphan",
            "no owner",
        ),
        case(
            "revoking a key not there",
            entry(&alice.sign(Action::KeyRevoke {
                revoked: "0123456789abcdef".into(),
            })),
            422,
            "no-change",
            "not an active key",
        ),
        case(
            "revoking the signing key",
            entry(&alice.sign(Action::KeyRevoke {
                revoked: user_key_id(alice.key.verifying_key().as_bytes()),
            })),
            422,
            "would-orphan",
            "rotate",
        ),
        case(
            "adding a key that is not a key",
            entry(&alice.sign(Action::KeyAdd {
                key: "bm90IGEga2V5".into(),
            })),
            422,
            "invalid-name",
            "not an ed25519",
        ),
        case(
            "adding a registered key",
            entry(&alice.sign(Action::KeyAdd {
                key: encode_public_key(&bob.key.verifying_key()),
            })),
            409,
            "key-reused",
            "registered already",
        ),
        case(
            "a release without its archive",
            entry(&alice.sign(Action::Release(fx.next.clone()))),
            400,
            br,
            "releases go to /api/v1/releases",
        ),
        // The node's policy.
        case(
            "a statement from 1970",
            entry(&at(alice, 0, yank("pair", "1.0.0", None))),
            422,
            "stale-statement",
            "within a day",
        ),
        case(
            "a statement from tomorrow",
            entry(&at(alice, now + 86_400, yank("pair", "1.0.0", None))),
            422,
            "stale-statement",
            "within a day",
        ),
        case(
            "a statement at the end of time",
            entry(&at(alice, u64::MAX, yank("pair", "1.0.0", None))),
            422,
            "stale-statement",
            "within a day",
        ),
    ];
    // Dist and version names that break the rules, in yanks (no archive needed).
    for (what, dist, version, code, words) in [
        (
            "a version that is not SemVer",
            "pair",
            "1.0",
            "unknown-release",
            "no release",
        ),
        (
            "a dist name with a slash",
            "pa/ir",
            "1.0.0",
            "unknown-release",
            "no distribution",
        ),
        (
            "a dist name of 500 bytes",
            &*"p".repeat(500),
            "1.0.0",
            "unknown-release",
            "no distribution",
        ),
    ] {
        v.push(case(
            what,
            entry(&alice.sign(yank(dist, version, None))),
            422,
            code,
            words,
        ));
    }
    v
}
