//! PGXN's history into a node (`pgext-node import-pgxn`) against `rsync -a` of the same mirror
//! tree, side by side in one run: a tree of `releases` releases (ten versions per dist), each
//! round into a fresh data folder and a fresh copy. The import hashes every zip (SHA-1 and
//! SHA-256), reads each one under the archive limits, and puts every release on the log.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pgext_tests::pgxn_tree::PgxnTree;
use pgext_tests::{TestNode, pgext_node_bin};

fn tree(root: &Path, releases: u32) {
    let mut t = PgxnTree::new(root);
    let meta = serde_json::json!({"name": "x", "abstract": "An imported extension", "version": "1.0.0",
        "maintainer": "B <b@example.org>", "license": "postgresql", "tags": ["bench"],
        "provides": {"x": {"file": "x.sql", "version": "1.0.0"}}});
    for i in 0..releases {
        let (dist, v) = (i / 10, i % 10);
        let mut m = meta.clone();
        m["name"] = format!("pgext_imp_{dist}").into();
        m["provides"] =
            serde_json::json!({format!("pgext_imp_{dist}"): {"file": "x.sql", "version": "1.0.0"}});
        let date = format!("2020-01-{:02}T00:00:00Z", v + 1);
        t.add(&m, &format!("1.{v}.0"), "stable", "bench", &date);
    }
}

/// Imports a tree of `releases` releases `rounds` times, and copies it with `rsync -a` as often.
pub(crate) async fn import_vs_rsync(releases: u32, rounds: usize) {
    let src = tempfile::tempdir().unwrap();
    tree(src.path(), releases);
    let (mut imports, mut copies) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let copy = tempfile::tempdir().unwrap();
        let took = super::timed(
            Command::new("rsync")
                .arg("-a")
                .arg(format!("{}/", src.path().display()))
                .arg(copy.path()),
        );
        copies.push(took);
        // A fresh data folder, the node stopped: the import runs the node itself.
        let (dir, _) = TestNode::start().await.stop().await;
        let (took, out) = super::timed_output(
            Command::new(pgext_node_bin())
                .arg("import-pgxn")
                .arg(src.path())
                .arg("--data")
                .arg(dir.path())
                .env("RUST_LOG", "warn"),
        );
        assert_eq!(
            out.lines().last(),
            Some(format!("imported {releases} releases (0 skipped, 0 refused)").as_str())
        );
        imports.push(took);
    }
    let stat = |v: &mut Vec<Duration>| {
        v.sort();
        (
            v[v.len() / 2].as_secs_f64(),
            v[0].as_secs_f64(),
            v[v.len() - 1].as_secs_f64(),
        )
    };
    let (im, imin, imax) = stat(&mut imports);
    let (rm, rmin, rmax) = stat(&mut copies);
    println!(
        "import-pgxn: {releases} releases in {im:.2} s median ({imin:.2}-{imax:.2}), {:.0} releases/s; rsync -a of the same tree {rm:.3} s ({rmin:.3}-{rmax:.3}); import/rsync {:.1}x over {rounds} rounds",
        f64::from(releases) / im,
        im / rm
    );
}
