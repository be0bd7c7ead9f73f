//! Helpers shared by the benchmarks of the cross-crate tests.
#![allow(dead_code)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_tests::{TestNode, fixtures};

/// Whether cargo runs the benchmark for its figures (`cargo bench`) rather than once in quick
/// mode (`cargo test --bench`).
pub(crate) fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// `PGEXT_BENCH_ENTRIES` if set, else `full` for a full run and `quick` for a quick one.
pub(crate) fn entries(full_default: u32, quick: u32) -> u32 {
    std::env::var("PGEXT_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if full() { full_default } else { quick })
}

/// The two-worker runtime every benchmark runs its nodes on, as the machine has two cores.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Account `i`, with a key of its own.
pub(crate) fn account(i: u32) -> Identity {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    Identity {
        user: format!("user{i}"),
        key: SigningKey::from_bytes(&seed),
    }
}

/// Fills the node's log with `n` account entries (signed on every core, sequenced in rounds),
/// then publishes one release; returns the log size.
pub(crate) async fn fill(node: &TestNode, n: u32) -> u64 {
    let shared = node.node.origin().clone();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let per = n.div_ceil(threads);
    let signers: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                (t * per..((t + 1) * per).min(n))
                    .map(|i| account(i).account_entry(None, None, None))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let entries: Vec<_> = signers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let sem = Arc::new(tokio::sync::Semaphore::new(8192));
    let mut tasks = Vec::with_capacity(entries.len());
    for e in entries {
        let (s, permit) = (shared.clone(), sem.clone().acquire_owned().await.unwrap());
        tasks.push(tokio::spawn(async move {
            let r = s.sequence(e).await.unwrap();
            drop(permit);
            r.index
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let owner = account(0);
    node.publish_files(
        &owner,
        &fixtures::dist("pgext_big", "1.0.0", "pgext_big", "stable"),
        "pgext_big-1.0.0",
    )
    .await
    .index
        + 1
}
