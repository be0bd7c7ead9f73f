//! Helpers shared by the benchmarks of the cross-crate tests.
#![allow(dead_code)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use pgext::release::Identity;
use pgext_tests::{TestNode, fixtures};

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
    let shared = node.node.shared().clone();
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
