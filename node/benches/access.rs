//! `cargo bench -p pgext-node --bench access`: what private origins cost (`spec/access.md`).
//! A read token's verification (the first time a node sees it, and once remembered), and
//! authenticated reads of a private origin against the same reads of a public origin holding
//! the same releases, in one run with wrk (`scripts/bench-node` installs it).

use std::process::Command;
use std::time::Instant;

use common::{account, release, wrk};
use pgext_node::config::{Access, Registration};
use pgext_node::{Config, Node};
use pgext_spec::entry::Action;
use pgext_spec::token::{Scope, Token, claims, sign};

mod common;

/// The run of median requests/s, of at least one.
fn median(mut runs: Vec<(f64, f64)>) -> Option<(f64, f64)> {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs.get(runs.len() / 2).copied()
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| benchmark | result | notes |\n|---|---|---|");

    // 1. Verifying a token: a first sight costs a parse and an Ed25519 verification.
    let (id, entry) = account(1);
    let mut state = pgext_spec::authority::Registry::new();
    state.apply(0, &entry).unwrap();
    let origin = "bench.pgext.test/log";
    let n: u32 = if quick { 1_000 } else { 50_000 };
    let now = pgext::release::now();
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let mut nonce = [0u8; 16];
            nonce[..4].copy_from_slice(&i.to_be_bytes());
            sign(
                &claims(origin, &id.user, &id.key, &[Scope::Read], now, 600, nonce),
                &id.key,
            )
        })
        .collect();
    let t = Instant::now();
    for tok in &tokens {
        Token::parse(tok)
            .unwrap()
            .verify(&state, origin, now)
            .unwrap();
    }
    let first = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);

    // 2. Two nodes with the same releases: one public, one private.
    let admin = account(99).0;
    let admin_key = pgext_spec::authority::encode_public_key(&admin.key.verifying_key());
    let (pub_dir, priv_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut pc = Config::for_tests(pub_dir.path());
    pc.sequencer.batch_interval_ms = 10;
    let mut vc = Config::for_tests(priv_dir.path());
    vc.sequencer.batch_interval_ms = 10;
    vc.origin = Some(origin.into());
    vc.access = Access::Private;
    vc.registration = Registration::Invite;
    vc.admin_keys = vec![admin_key];
    let public = rt.block_on(Node::spawn(pc)).unwrap();
    let private = rt.block_on(Node::spawn(vc)).unwrap();
    let token = tokens[0].clone();
    rt.block_on(async {
        let key = pgext_spec::authority::encode_public_key(&id.key.verifying_key());
        let invite = pgext::author::invite(&admin, &id.user, &key).unwrap();
        let invited = id.sign(Action::Account {
            user: id.user.clone(),
            key,
            name: None,
            email: None,
            uri: None,
            invite: Some(invite),
        });
        pgext::api::Node::new(&public.url())
            .submit(&entry)
            .await
            .unwrap();
        pgext::api::Node::new(&private.url())
            .submit(&invited)
            .await
            .unwrap();
        let member = pgext::auth::make_token(&id, origin, &[Scope::Publish, Scope::Read], 600);
        let as_member =
            pgext::api::Node::with_client(&private.url(), pgext::http::client_with(Some(&member)));
        for i in 0..10 {
            let (r, zip) = release(&format!("bench{i}"), 2);
            let e = id.sign(Action::Release(r));
            pgext::api::Node::new(&public.url())
                .publish(&e, zip.clone(), "b.zip")
                .await
                .unwrap();
            as_member.publish(&e, zip, "b.zip").await.unwrap();
        }
    });
    // A remembered token: what every request after the first costs.
    let guard = pgext_node::serve::access::Guard::default();
    let o = private.origin().clone();
    guard.check(&o, &token).unwrap();
    let m: u32 = if quick { 10_000 } else { 1_000_000 };
    let t = Instant::now();
    for _ in 0..m {
        guard.check(&o, &token).unwrap();
    }
    let cached = t.elapsed().as_secs_f64() * 1e6 / f64::from(m);
    println!(
        "| read-token check, first sight (parse, origin and times, account key, Ed25519) | {first:.1} µs | {n} distinct tokens, one core |"
    );
    println!(
        "| read-token check, remembered (lookup by the token's text, expiry, key still active) | {cached:.2} µs | {m} checks of one token, one core |"
    );

    let has = |p: &str| Command::new(p).arg("-v").output().is_ok();
    if !has("wrk") {
        println!("| reads | not measured | wrk missing: run scripts/bench-node |");
    } else {
        let secs = if quick { 1 } else { 10 };
        let bearer = format!("Authorization: Bearer {token}");
        for (what, path) in [
            ("dist/{dist}.json", "/dist/bench7.json"),
            ("release zip", "/dist/bench7/1.0.0/bench7-1.0.0.zip"),
        ] {
            // Three rounds, interleaved, and the median of each: on two shared cores one run
            // swings by a tenth.
            let (mut member, mut open, mut carried) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                member.extend(wrk(
                    &format!("{}{path}", private.url()),
                    secs,
                    Some(&bearer),
                ));
                open.extend(wrk(&format!("{}{path}", public.url()), secs, None));
                // The same header sent to the public origin, which ignores it: what carrying
                // a 400-byte header costs client and server, apart from checking it.
                carried.extend(wrk(&format!("{}{path}", public.url()), secs, Some(&bearer)));
            }
            if let (Some((r1, p1)), Some((r2, p2)), Some((r3, p3))) =
                (median(member), median(open), median(carried))
            {
                println!(
                    "| GET {what}: private origin with a bearer token vs public origin, median of 3 | {r1:.0} vs {r2:.0} req/s ({:.2}x) | p99 {p1:.2} ms vs {p2:.2} ms; the public origin sent the same header: {r3:.0} req/s ({:.2}x), p99 {p3:.2} ms |",
                    r1 / r2,
                    r3 / r2
                );
            }
        }
    }
    rt.block_on(public.shutdown());
    rt.block_on(private.shutdown());
}
