//! `cargo bench -p pgext-tests --bench search`: query latency (p50, p99) over a synthetic
//! corpus of 10,000 dists built from the real METAs in `spec/testdata/real-meta/`, and the time
//! to rebuild the index from the log; side by side in the same run with PostgreSQL 15 full-text
//! search (a weighted `tsvector` with a GIN index) over the same corpus. Without `--bench` (as
//! `cargo test --bench search` runs it) the corpus has 300 dists.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pgext_node::search::{Kind, SearchIndex};
use pgext_spec::archive::Files;
use pgext_spec::entry::Action;
use pgext_tests::pg::Cluster;
use pgext_tests::{TestNode, identity};
use serde_json::Value;

mod common;

/// A deterministic generator (xorshift), so every run indexes the same corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
    fn pick<'a>(&mut self, v: &'a [String]) -> &'a str {
        &v[self.next() % v.len()]
    }
}

struct Dist {
    name: String,
    abstract_: String,
    tags: Vec<String>,
    readme: String,
}

fn real_metas() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/testdata/real-meta");
    let mut metas: Vec<Value> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    metas.sort_by_key(|m| m["name"].as_str().unwrap_or_default().to_string());
    metas
}

fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect()
}

/// `n` dists: each takes one real META's abstract, tags and description, mixed with words of
/// the whole corpus, and a README several sentences long.
fn corpus(n: usize) -> (Vec<Dist>, Vec<String>) {
    let metas = real_metas();
    let mut vocab: Vec<String> = metas
        .iter()
        .flat_map(|m| {
            words_of(&format!(
                "{} {} {}",
                m["abstract"].as_str().unwrap_or_default(),
                m["description"].as_str().unwrap_or_default(),
                m["tags"]
            ))
        })
        .collect();
    vocab.sort();
    vocab.dedup();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let dists = (0..n)
        .map(|i| {
            let m = &metas[i % metas.len()];
            let name = format!("{}_{}{i}", rng.pick(&vocab), rng.pick(&vocab));
            let abstract_ = format!(
                "{} {} {}",
                m["abstract"].as_str().unwrap_or_default(),
                rng.pick(&vocab),
                rng.pick(&vocab)
            );
            let tags = m["tags"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let sentences: Vec<String> = (0..8)
                .map(|_| {
                    (0..12)
                        .map(|_| rng.pick(&vocab).to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect();
            let readme = format!(
                "# {name}\n\n{}\n\n{}.\n",
                m["description"].as_str().unwrap_or_default(),
                sentences.join(". ")
            );
            Dist {
                name,
                abstract_,
                tags,
                readme,
            }
        })
        .collect();
    (dists, vocab)
}

/// Exact names, single words, two words, a typo, a prefix: 50 of each.
fn queries(dists: &[Dist], vocab: &[String]) -> Vec<String> {
    let mut rng = Rng(42);
    let long: Vec<String> = vocab.iter().filter(|w| w.len() >= 6).cloned().collect();
    let mut q = Vec::new();
    for _ in 0..50 {
        q.push(dists[rng.next() % dists.len()].name.clone());
        q.push(rng.pick(vocab).to_string());
        q.push(format!("{} {}", rng.pick(vocab), rng.pick(vocab)));
        let w = rng.pick(&long);
        q.push(format!("{}{}", &w[..2], &w[3..]));
        q.push(w[..4].to_string());
    }
    q
}

async fn publish_all(node: &TestNode, dists: &[Dist]) -> u64 {
    let shared = node.node.origin().clone();
    let who = identity("bench", 9);
    shared
        .sequence(who.account_entry(None, None, None))
        .await
        .unwrap();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for d in dists {
        let meta = serde_json::json!({"name": d.name, "version": "1.0.0", "abstract": d.abstract_,
            "maintainer": "B <b@example.org>", "license": "postgresql", "tags": d.tags,
            "provides": {d.name.clone(): {"file": "b.sql", "version": "1.0.0"}}, "meta-spec": {"version": "1.0.0"}});
        let mut files = Files::default();
        files.files.insert(
            "META.json".into(),
            (serde_json::to_vec(&meta).unwrap(), false),
        );
        files
            .files
            .insert("b.sql".into(), (b"SELECT 1;\n".to_vec(), false));
        files
            .files
            .insert("README.md".into(), (d.readme.clone().into_bytes(), false));
        let p = pgext::release::release_from_files(&files, None).unwrap();
        let entry = who.sign(Action::Release(p.release));
        let (s, permit) = (shared.clone(), sem.clone().acquire_owned().await.unwrap());
        tasks.push(tokio::spawn(async move {
            let r = pgext_node::origin::publish::submit(s, entry, Some(p.zip))
                .await
                .unwrap();
            drop(permit);
            r.index
        }));
    }
    let mut size = 0;
    for t in tasks {
        size = size.max(t.await.unwrap() + 1);
    }
    size
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

/// PostgreSQL full-text search over the same corpus: returns (build seconds, query times).
fn postgres(dists: &[Dist], queries: &[String]) -> (f64, Vec<Duration>) {
    let cluster = Cluster::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("dists.csv");
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let rows: String = dists
        .iter()
        .map(|d| {
            format!(
                "{},{},{},{}\n",
                quote(&d.name),
                quote(&d.abstract_),
                quote(&d.tags.join(" ")),
                quote(&d.readme)
            )
        })
        .collect();
    std::fs::write(&csv, rows).unwrap();
    let mut script = format!(
        "CREATE TABLE dists (name text, abstract text, tags text, body text);\n\\copy dists FROM '{}' WITH (FORMAT csv)\n\\timing on\n",
        csv.display()
    );
    script.push_str(
        "ALTER TABLE dists ADD COLUMN doc tsvector GENERATED ALWAYS AS (\
         setweight(to_tsvector('simple', name), 'A') || setweight(to_tsvector('english', abstract), 'B') || \
         setweight(to_tsvector('english', tags), 'B') || setweight(to_tsvector('english', body), 'D')) STORED;\n\
         CREATE INDEX ON dists USING gin (doc);\n\\timing off\nANALYZE dists;\n\\timing on\n",
    );
    for q in queries {
        script.push_str(&format!(
            "SELECT name, ts_rank(doc, q) AS rank, count(*) OVER () FROM dists, websearch_to_tsquery('english', '{}') q WHERE doc @@ q ORDER BY rank DESC LIMIT 50;\n",
            q.replace('\'', "''")
        ));
    }
    let file = dir.path().join("bench.sql");
    std::fs::write(&file, script).unwrap();
    let out = Command::new(cluster.bindir.join("psql"))
        .envs(cluster.env())
        .args([
            "-X",
            "-q",
            "-o",
            "/dev/null",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "postgres",
            "-f",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `\timing` reports on stdout, which `-o` does not redirect.
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Time: "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(times.len(), 2 + queries.len(), "psql timings: {times:?}");
    let build = (times[0] + times[1]) / 1000.0;
    let q = times[2..]
        .iter()
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .collect();
    (build, q)
}

fn main() {
    let n = if common::full() { 10_000 } else { 300 };
    let (dists, vocab) = corpus(n);
    let queries = queries(&dists, &vocab);
    let rt = common::runtime();
    let (rebuild, mut ours) = rt.block_on(async {
        let node = TestNode::start().await;
        let size = publish_all(&node, &dists).await;
        let shared = node.node.origin().clone();
        // The rebuild from the log, into a fresh folder, as a node with a lost index does.
        let dir = tempfile::tempdir().unwrap();
        let start = Instant::now();
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.update(&shared).unwrap(), size);
        let rebuild = start.elapsed().as_secs_f64();
        let mut times = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let page = index.search(Kind::Dists, q, None, (0, 50)).unwrap();
            times.push(t.elapsed());
            assert!(page.hits.len() <= 50);
        }
        let exact = index
            .search(Kind::Dists, &dists[7].name, None, (0, 1))
            .unwrap();
        assert_eq!(exact.hits[0]["dist"], dists[7].name.as_str());
        node.node.shutdown().await;
        (rebuild, times)
    });
    let (pg_build, mut theirs) = postgres(&dists, &queries);
    ours.sort();
    theirs.sort();
    println!("| benchmark | pgext (tantivy) | PostgreSQL 15 FTS | ratio |\n|---|---|---|---|");
    println!(
        "| query p50 over {n} dists, {} queries | {:.2} ms | {:.2} ms | {:.2}× |",
        queries.len(),
        pct(&ours, 0.5),
        pct(&theirs, 0.5),
        pct(&ours, 0.5) / pct(&theirs, 0.5)
    );
    println!(
        "| query p99 | {:.2} ms | {:.2} ms | {:.2}× |",
        pct(&ours, 0.99),
        pct(&theirs, 0.99),
        pct(&ours, 0.99) / pct(&theirs, 0.99)
    );
    println!(
        "| index build (pgext: rebuilt from the log; PostgreSQL: tsvector column + GIN index) | {rebuild:.2} s | {pg_build:.2} s | {:.2}× |",
        rebuild / pg_build
    );
}
