//! The dependency plan (`spec/client.md`, Dependencies): resolve and verify a plan of 20 dists
//! against a node holding 10,000 releases, as `pgext install --dry-run` does; the time and the
//! HTTP requests the node answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgext::ops::{Context, Kind, Quiet};
use pgext::plan::{Follow, Root};
use pgext::request::Want;
use pgext::trust::{Config, RegistryConfig, State};
use pgext_spec::archive::Files;
use pgext_spec::entry::Action;
use pgext_tests::{TestNode, identity};
use serde_json::json;

/// A SQL-only release of `name` 1.0.0 whose META requires `needs` (and PostgreSQL 9.0).
fn files(name: &str, needs: &[String]) -> Files {
    let requires: serde_json::Map<String, serde_json::Value> = needs
        .iter()
        .map(|n| (n.clone(), json!("1.0.0")))
        .chain([("PostgreSQL".to_string(), json!("9.0.0"))])
        .collect();
    let meta = json!({"name": name, "version": "1.0.0", "abstract": "bench",
        "maintainer": "B <b@example.org>", "license": "postgresql",
        "prereqs": {"runtime": {"requires": requires}},
        "provides": {name: {"file": "b.sql", "version": "1.0.0"}}, "meta-spec": {"version": "1.0.0"}});
    let mut f = Files::default();
    f.files.insert(
        "META.json".into(),
        (serde_json::to_vec(&meta).unwrap(), false),
    );
    f.files
        .insert("b.sql".into(), (b"SELECT 1;\n".to_vec(), false));
    f
}

/// Publishes `releases` filler releases (2,000 dists of up to five versions each) and the 20
/// dists of the plan: `pgext_plan_00` requires 01–04, each of those four of the rest.
async fn publish(node: &TestNode, releases: u32) {
    let shared = node.node.origin().clone();
    let who = identity("bench", 9);
    shared
        .sequence(who.account_entry(None, None, None))
        .await
        .unwrap();
    let sem = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    let mut all: Vec<Files> = (0..releases)
        .map(|i| {
            let (dist, v) = (i % 2000, i / 2000);
            let mut f = files(&format!("pgext_fill_{dist}"), &[]);
            let meta = f.files.get_mut("META.json").unwrap();
            let mut m: serde_json::Value = serde_json::from_slice(&meta.0).unwrap();
            m["version"] = json!(format!("1.0.{v}"));
            m["provides"][format!("pgext_fill_{dist}")]["version"] = json!(format!("1.0.{v}"));
            meta.0 = serde_json::to_vec(&m).unwrap();
            f
        })
        .collect();
    for i in 0..20u32 {
        let needs: Vec<String> = match i {
            0 => (1..5).map(|j| format!("pgext_plan_{j:02}")).collect(),
            1..=4 => (5 + (i - 1) * 4..(9 + (i - 1) * 4).min(20))
                .map(|j| format!("pgext_plan_{j:02}"))
                .collect(),
            _ => Vec::new(),
        };
        all.push(files(&format!("pgext_plan_{i:02}"), &needs));
    }
    for f in all {
        let p = pgext::release::release_from_files(&f, None).unwrap();
        let entry = who.sign(Action::Release(p.release));
        let (s, permit) = (shared.clone(), sem.clone().acquire_owned().await.unwrap());
        tasks.push(tokio::spawn(async move {
            pgext_node::origin::publish::submit(s, entry, Some(p.zip))
                .await
                .unwrap();
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The node's `pgext_http_requests_total`.
async fn requests(node: &TestNode) -> u64 {
    let (_, body) = node.get("/metrics").await;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix("pgext_http_requests_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

pub(crate) async fn plan_of_twenty(releases: u32, rounds: usize) {
    let node = TestNode::start_with(|c| {
        c.sequencer.batch_max = 8192;
        c.sequencer.batch_interval_ms = 5;
    })
    .await;
    let t = Instant::now();
    publish(&node, releases).await;
    let filled = t.elapsed();
    let reg = RegistryConfig {
        name: "main".into(),
        urls: vec![node.url()],
        vkey: node.vkey(),
        ..RegistryConfig::default()
    };
    let pg = pgext::pg::PgInstall::find(Some(&pgext_tests::pg::pg15_config())).unwrap();
    let (mut times, mut counts) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context {
            config: Config {
                registries: vec![reg.clone()],
            },
            state: State::at(dir.path()),
            registry: None,
            pg: pg.clone(),
            sudo: false,
            prefix: None,
            progress: Box::new(Quiet),
        };
        let root = Root {
            name: "pgext_plan_00".into(),
            want: Want::Newest,
            registry: Some(reg.clone()),
            kind: None,
        };
        let before = requests(&node).await;
        let t = Instant::now();
        let plan = ctx
            .plan(&[root], Follow::default(), Kind::Source)
            .await
            .unwrap();
        times.push(t.elapsed());
        counts.push(requests(&node).await - before - 1);
        assert_eq!(plan.steps.len(), 20, "the whole plan");
        assert_eq!(plan.steps.last().unwrap().chosen.dist, "pgext_plan_00");
    }
    times.sort();
    let med = |v: &[Duration]| v[v.len() / 2];
    println!(
        "| resolve and verify a plan of 20 dists (node with {} releases; median of {rounds}, loopback) | {:.0} ms (min {:.0}, max {:.0}) | {} requests | releases published in {:.1} s |",
        releases + 20,
        med(&times).as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0,
        counts[0],
        filled.as_secs_f64()
    );
    node.node.shutdown().await;
}
