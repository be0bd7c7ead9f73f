//! Prometheus metrics, exposed at `/metrics` in the text format. A handful of counters and
//! gauges kept in atomics: enough to watch a registry without a metrics framework.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Entries in the log.
    pub log_size: AtomicU64,
    /// Entries sequenced since start.
    pub entries_sequenced: AtomicU64,
    /// Submissions refused (rules, policy, bad input) since start.
    pub submissions_refused: AtomicU64,
    /// Sequencing rounds committed since start.
    pub rounds: AtomicU64,
    /// Total time spent in rounds, microseconds.
    pub round_micros: AtomicU64,
    /// HTTP requests served since start.
    pub http_requests: AtomicU64,
    /// Split views detected (evidence kept) since start.
    pub split_views: AtomicU64,
    /// Verified mirror commits since start.
    pub mirror_commits: AtomicU64,
    /// Blobs found missing or damaged when read, since start.
    pub blob_faults: AtomicU64,
    /// Tokens refused by a private origin (`spec/access.md`), since start.
    pub auth_failures: AtomicU64,
    /// Peer requests about a private origin refused to a peer not allowed it, since start.
    pub p2p_private_refused: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, v: f64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        metric(
            "pgext_log_size",
            "gauge",
            "Entries in the sequenced log.",
            get(&self.log_size),
        );
        metric(
            "pgext_entries_sequenced_total",
            "counter",
            "Entries sequenced since start.",
            get(&self.entries_sequenced),
        );
        metric(
            "pgext_submissions_refused_total",
            "counter",
            "Submissions refused since start.",
            get(&self.submissions_refused),
        );
        metric(
            "pgext_sequencer_rounds_total",
            "counter",
            "Sequencing rounds committed.",
            get(&self.rounds),
        );
        metric(
            "pgext_sequencer_round_seconds_sum",
            "counter",
            "Time spent in sequencing rounds.",
            get(&self.round_micros) / 1e6,
        );
        metric(
            "pgext_http_requests_total",
            "counter",
            "HTTP requests served.",
            get(&self.http_requests),
        );
        metric(
            "pgext_split_views_total",
            "counter",
            "Split views detected: an origin signed checkpoints that do not fit one tree.",
            get(&self.split_views),
        );
        metric(
            "pgext_mirror_commits_total",
            "counter",
            "Mirrored checkpoints verified, committed and cosigned.",
            get(&self.mirror_commits),
        );
        metric(
            "pgext_blob_faults_total",
            "counter",
            "Blobs the log names found missing or damaged when read (run pgext-node fsck).",
            get(&self.blob_faults),
        );
        metric(
            "pgext_auth_failures_total",
            "counter",
            "Tokens refused by a private origin (expired, revoked, malformed, not a member).",
            get(&self.auth_failures),
        );
        metric(
            "pgext_p2p_private_refused_total",
            "counter",
            "Peer requests about a private origin from peers not in [p2p] allow, answered as for an origin not served.",
            get(&self.p2p_private_refused),
        );
        s
    }
}
