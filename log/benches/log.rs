//! `cargo bench -p pgext-log`: integration throughput, proof build+verify at 1e3/1e6/1e8 leaves,
//! checkpoint signing and verification. Figures go to docs/benchmarks.md.
//!
//! A plain harness (no criterion) keeps the build light: each figure is the median of 5 rounds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use pgext_log::{
    Checkpoint, Hash, KeyType, MemoryTiles, SignerKey, TILE_WIDTH, Tile, TileHashReader, TileKind,
    TileReader, consistency_proof, inclusion_proof, integrate, integrate_hashes, leaf_hash,
    node_hash, open_checkpoint, sha256, sign, tree_hash, verify_consistency, verify_inclusion,
};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `f` (which does `per_round` operations) for 5 rounds and returns the median time per op.
fn time_per_op(per_round: u64, mut f: impl FnMut()) -> Duration {
    let rounds = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    median(rounds) / per_round as u32
}

fn report(name: &str, per_op: Duration, extra: &str) {
    println!(
        "| {name} | {:.2} µs | {extra} |",
        per_op.as_secs_f64() * 1e6
    );
}

fn build(leaves: &[Hash], batch: usize) -> (MemoryTiles, Hash) {
    let mut store = MemoryTiles::new();
    let mut size = 0;
    let mut root = Hash::empty_root();
    for chunk in leaves.chunks(batch) {
        let out = integrate_hashes(size, chunk, &store).unwrap();
        for (t, d) in out.tiles {
            store.put(t, d);
        }
        size = out.size;
        root = out.root;
    }
    (store, root)
}

/// A 1e8-leaf tree whose tiles are pseudo-random except along the paths of chosen leaves, where
/// every full tile's root is written into its parent tile, so proofs for those leaves are
/// genuinely valid. Tiles are generated on first read and kept.
struct SparseTree {
    size: u64,
    tiles: RefCell<HashMap<(u8, u64), Vec<u8>>>,
}

impl SparseTree {
    fn new(size: u64) -> SparseTree {
        SparseTree {
            size,
            tiles: RefCell::new(HashMap::new()),
        }
    }

    fn tile(&self, level: u8, index: u64) -> Vec<u8> {
        self.tiles
            .borrow_mut()
            .entry((level, index))
            .or_insert_with(|| {
                let row = self.size >> (8 * u32::from(level));
                let width = (row - index * TILE_WIDTH).min(TILE_WIDTH);
                (0..width)
                    .flat_map(|slot| sha256(format!("{level}/{index}/{slot}").as_bytes()))
                    .collect()
            })
            .clone()
    }

    /// Makes the ancestors of leaf `leaf` consistent, bottom-up.
    fn anchor(&self, leaf: u64) {
        let mut pos = leaf;
        let mut level = 0u8;
        loop {
            let index = pos / TILE_WIDTH;
            let data = self.tile(level, index);
            if data.len() != (TILE_WIDTH as usize) * 32 {
                return; // right-edge partial tile: no parent hash
            }
            let mut row: Vec<Hash> = data
                .chunks(32)
                .map(|c| Hash::from_slice(c).unwrap())
                .collect();
            while row.len() > 1 {
                row = row.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
            }
            let parent = index / TILE_WIDTH;
            let mut up = self.tile(level + 1, parent);
            let slot = (index % TILE_WIDTH) as usize;
            up[slot * 32..slot * 32 + 32].copy_from_slice(&row[0].0);
            self.tiles.borrow_mut().insert((level + 1, parent), up);
            pos = index;
            level += 1;
        }
    }

    fn leaf(&self, leaf: u64) -> Hash {
        let t = self.tile(0, leaf / TILE_WIDTH);
        let s = (leaf % TILE_WIDTH) as usize * 32;
        Hash::from_slice(&t[s..s + 32]).unwrap()
    }
}

impl TileReader for SparseTree {
    fn read_tiles(&self, tiles: &[Tile]) -> pgext_log::Result<Vec<Vec<u8>>> {
        Ok(tiles
            .iter()
            .map(|t| match t.kind {
                TileKind::Hashes(l) => self.tile(l, t.index),
                TileKind::Entries => Vec::new(),
            })
            .collect())
    }
}

fn proofs_at(
    label: &str,
    size: u64,
    reader: &impl TileReader,
    leaf_of: impl Fn(u64) -> Hash,
    picks: &[u64],
) {
    let hr = TileHashReader::new(size, reader);
    let root = tree_hash(size, &hr).unwrap();
    let n = picks.len() as u64;
    let build = time_per_op(n, || {
        for &i in picks {
            black_box(inclusion_proof(i, size, &hr).unwrap());
        }
    });
    let proofs: Vec<_> = picks
        .iter()
        .map(|&i| inclusion_proof(i, size, &hr).unwrap())
        .collect();
    let verify = time_per_op(n, || {
        for (p, &i) in proofs.iter().zip(picks) {
            verify_inclusion(i, size, leaf_of(i).as_ref(), p, root.as_ref()).unwrap();
        }
    });
    report(
        &format!("inclusion proof build, {label}"),
        build,
        &format!("{} hashes", proofs[0].len()),
    );
    report(&format!("inclusion proof verify, {label}"), verify, "");

    // Old sizes just past the picked leaves, so sparse trees have their old edge anchored.
    let olds: Vec<u64> = picks.iter().map(|&i| i + 1).filter(|&m| m < size).collect();
    let n = olds.len() as u64;
    let old_roots: Vec<Hash> = olds
        .iter()
        .map(|&m| tree_hash(m, &TileHashReader::new(m, reader)).unwrap())
        .collect();
    let build = time_per_op(n, || {
        for &m in &olds {
            black_box(consistency_proof(m, size, &hr).unwrap());
        }
    });
    let proofs: Vec<_> = olds
        .iter()
        .map(|&m| consistency_proof(m, size, &hr).unwrap())
        .collect();
    let verify = time_per_op(n, || {
        for ((p, &m), r1) in proofs.iter().zip(&olds).zip(&old_roots) {
            verify_consistency(m, size, p, r1.as_ref(), root.as_ref()).unwrap();
        }
    });
    report(
        &format!("consistency proof build, {label}"),
        build,
        &format!("{} hashes", proofs[0].len()),
    );
    report(&format!("consistency proof verify, {label}"), verify, "");
}

fn picks(size: u64, n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| (i * 2_654_435_761 + 12_345) % size)
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run briefly then.
    let full = std::env::args().any(|a| a == "--bench");
    let million: u64 = if full { 1_000_000 } else { 10_000 };
    println!("| benchmark | time per op | notes |\n|---|---|---|");

    let t = Instant::now();
    let mut x = Hash::default();
    for _ in 0..million {
        x = node_hash(&x, &x);
    }
    black_box(x);
    let per = t.elapsed() / million as u32;
    report(
        "SHA-256 node hash (the floor)",
        per,
        &format!("{:.2} M hashes/s", 1e-6 / per.as_secs_f64()),
    );

    let leaves: Vec<Hash> = (0..million).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    for batch in [256usize, 4096] {
        let per = time_per_op(million, || {
            black_box(build(&leaves, batch));
        });
        report(
            &format!("integrate {million} leaf hashes, batches of {batch}"),
            per,
            &format!("{:.2} M leaves/s", 1e-6 / per.as_secs_f64()),
        );
    }
    let entries: Vec<Vec<u8>> = (0..million)
        .map(|i| format!("{i:0>100}").into_bytes())
        .collect();
    let per = time_per_op(million, || {
        let mut store = MemoryTiles::new();
        let mut size = 0;
        for chunk in entries.chunks(1024) {
            let out = integrate(size, chunk, &store).unwrap();
            for (t, d) in out.tiles {
                store.put(t, d);
            }
            size = out.size;
        }
        black_box(store);
    });
    report(
        &format!("integrate {million} 100-byte entries (leaf hashing + bundles), batches of 1024"),
        per,
        &format!("{:.2} M entries/s", 1e-6 / per.as_secs_f64()),
    );

    let (small, _) = build(&leaves[..1000], 1000);
    proofs_at(
        "1e3 leaves",
        1000,
        &small,
        |i| leaves[i as usize],
        &picks(1000, 200),
    );
    let (big, _) = build(&leaves, 4096);
    let label = if full {
        "1e6 leaves"
    } else {
        "1e4 leaves (quick run)"
    };
    proofs_at(
        label,
        million,
        &big,
        |i| leaves[i as usize],
        &picks(million, 200),
    );

    let sparse = SparseTree::new(100_000_000);
    let ps = picks(100_000_000, 200);
    // Leaf p is both an inclusion target and the old right edge of the consistency proof from
    // size p+1.
    for &p in &ps {
        sparse.anchor(p);
    }
    proofs_at(
        "1e8 leaves (sparse tiles)",
        100_000_000,
        &sparse,
        |i| sparse.leaf(i),
        &ps,
    );

    let key = SignerKey::from_seed("bench.pgext.dev/log", KeyType::Ed25519, &[7; 32]).unwrap();
    let text = Checkpoint::new("bench.pgext.dev/log", 1_000_000, leaves[0]).to_text();
    let n = 2000;
    let per = time_per_op(n, || {
        for _ in 0..n {
            black_box(sign(&text, &[&key], 0).unwrap());
        }
    });
    report("checkpoint sign (Ed25519)", per, "");
    let note = sign(&text, &[&key], 0).unwrap();
    let per = time_per_op(n, || {
        for _ in 0..n {
            black_box(open_checkpoint(note.as_bytes(), key.verifier(), &[]).unwrap());
        }
    });
    report("checkpoint parse + verify", per, "");
}
