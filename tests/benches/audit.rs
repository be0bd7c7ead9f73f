//! `cargo bench -p pgext-tests --bench audit`: `pgext audit` of a log of 1,000,000 synthetic
//! entries (account entries, each signed by its own key, and one release) served by a local
//! node: the first audit (every bundle fetched over loopback HTTP, the tree recomputed, every
//! rule replayed with batch-verified signatures), the same again with the verified bundles
//! cached, and the re-audit after 1,000 more entries. Without `--bench` the log has 2,000
//! entries. `PGEXT_BENCH_ENTRIES` sets the size.

use std::time::Instant;

use common::{account, fill};
use pgext::audit::{AuditConfig, audit};
use pgext_tests::TestNode;

mod common;

fn main() {
    let n = common::entries(1_000_000, 2_000);
    let rt = common::runtime();
    rt.block_on(async {
        let node = TestNode::start_with(|c| {
            c.sequencer.batch_max = 8192;
            c.sequencer.batch_interval_ms = 5;
        })
        .await;
        let size = fill(&node, n).await;
        let cache = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            urls: vec![node.url()],
            log_key: node.vkey().parse().unwrap(),
            witnesses: Vec::new(),
            artifacts: false,
            cache: Some(cache.path().to_path_buf()),
            access: pgext::auth::Access::new(&Default::default(), None),
        };
        let mut rows = Vec::new();
        for what in ["first audit", "again, bundles cached"] {
            let t = Instant::now();
            let r = audit(&cfg).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert_eq!((r.entries, r.exit_code()), (size, 0), "{:?}", r.violations);
            rows.push((what.to_string(), secs, r.entries, r.bundles_fetched));
        }
        // 1,000 more entries, then the re-audit.
        let shared = node.node.origin().clone();
        for i in 0..1000u32 {
            shared
                .sequence(account(n + 10 + i).account_entry(None, None, None))
                .await
                .unwrap();
        }
        let t = Instant::now();
        let r = audit(&cfg).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!((r.entries, r.exit_code()), (size + 1000, 0));
        rows.push((
            "after 1,000 more entries".into(),
            secs,
            r.entries,
            r.bundles_fetched,
        ));
        println!(
            "| audit of a local node | time | entries/s | bundles fetched |\n|---|---|---|---|"
        );
        for (what, secs, entries, fetched) in rows {
            println!(
                "| {what} ({entries} entries) | {secs:.2} s | {:.0} | {fetched} |",
                entries as f64 / secs
            );
        }
        node.node.shutdown().await;
    });
}
