//! `pgext-node import-pgxn SOURCE`: PGXN's history into the log, oldest first per
//! distribution, each release's zip checked against the SHA-1 PGXN published and imported byte
//! for byte. A release that fails is reported with why and the rest goes on; a release the
//! log has is skipped, so a second run (or `--follow`) adds only what is new.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use pgext_log::{hex, sha256};
use pgext_spec::archive::{Limits, read_archive};
use pgext_spec::authority::{parse_pgxn_date, valid_user_name};
use pgext_spec::entry::{Action, Import, Release, SOURCE_PGXN, Status};
use pgext_spec::meta::{parse_meta, read_stored_meta};
use serde_json::Value;
use sha1::{Digest, Sha1};

use super::source::{Listed, Source, Templates};
use super::{Operator, Refused};

/// Distributions imported at once (each one's releases in order): what keeps a sequencing
/// round full while every distribution waits for its previous release's round.
pub const PARALLEL_DISTS: usize = 32;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Releases sequenced.
    pub imported: u64,
    /// Releases the log had.
    pub skipped: u64,
    /// Releases that failed a check, each reported.
    pub refused: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {} releases ({} skipped, {} refused)",
            self.imported, self.skipped, self.refused
        )
    }
}

#[derive(Default)]
struct Counts {
    imported: AtomicU64,
    skipped: AtomicU64,
    refused: AtomicU64,
}

/// Where reports go: refusals and warnings as lines, progress as a bar on a terminal.
struct Report {
    bar: ProgressBar,
    counts: Counts,
}

impl Report {
    fn line(&self, text: String) {
        self.bar.suspend(|| eprintln!("{text}"));
    }

    fn refused(&self, dist: &str, version: &str, why: impl std::fmt::Display) {
        self.counts.refused.fetch_add(1, Ordering::Relaxed);
        self.line(format!("refused {dist} {version}: {why}"));
        self.bar.inc(1);
    }
}

/// One pass over the tree: every release it lists that the log lacks.
///
/// # Errors
/// When the tree cannot be listed or the node cannot be reached; a release that fails is
/// counted and reported, not an error.
pub async fn import(op: &Operator, source: &Source, limits: &Limits) -> anyhow::Result<Summary> {
    let templates = source.templates().await?;
    let names = source.dists().await?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} releases ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("importing");
    let report = Arc::new(Report {
        bar,
        counts: Counts::default(),
    });
    let listed_total = AtomicU64::new(0);
    let (templates, listed_total) = (&templates, &listed_total);
    futures::stream::iter(names)
        .map(|name| {
            let report = report.clone();
            async move {
                match source.dist(templates, &name).await {
                    Ok((shown, listed)) => {
                        listed_total.fetch_add(listed.len() as u64, Ordering::Relaxed);
                        report.bar.inc_length(listed.len() as u64);
                        import_dist(op, source, templates, limits, &report, &shown, listed).await
                    }
                    Err(e) => {
                        report.refused(&name, "*", format!("{e:#}"));
                        Ok(())
                    }
                }
            }
        })
        .buffer_unordered(PARALLEL_DISTS)
        .collect::<Vec<anyhow::Result<()>>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<()>>()?;
    report.bar.finish_and_clear();
    let c = &report.counts;
    Ok(Summary {
        imported: c.imported.load(Ordering::Relaxed),
        skipped: c.skipped.load(Ordering::Relaxed),
        refused: c.refused.load(Ordering::Relaxed),
    })
}

/// One distribution's releases, oldest first.
async fn import_dist(
    op: &Operator,
    source: &Source,
    templates: &Templates,
    limits: &Limits,
    report: &Report,
    dist: &str,
    listed: Vec<Listed>,
) -> anyhow::Result<()> {
    let have: BTreeSet<String> = op
        .dist(dist)
        .await?
        .map(|d| {
            d.releases
                .iter()
                .map(|r| r.version.to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    for l in listed {
        if have.contains(&l.version.to_ascii_lowercase()) {
            report.counts.skipped.fetch_add(1, Ordering::Relaxed);
            report.bar.inc(1);
            continue;
        }
        if !Source::safe_version(&l.version) {
            report.refused(
                dist,
                &l.version,
                format!("{:?} is not a version (SemVer) PGXN publishes", l.version),
            );
            continue;
        }
        let prepared = match prepare(source, templates, limits, dist, &l).await {
            Ok(p) => p,
            Err(e) => {
                report.refused(dist, &l.version, format!("{e:#}"));
                continue;
            }
        };
        if let Some(w) = &prepared.warning {
            report.line(format!("warning: {dist} {}: {w}", l.version));
        }
        let entry = op.sign(Action::Import(prepared.import));
        match op.submit_import(&entry, prepared.zip).await {
            Ok(_) => {
                report.counts.imported.fetch_add(1, Ordering::Relaxed);
                report.bar.inc(1);
            }
            Err(e) => match e.downcast::<Refused>() {
                Ok(r) => report.refused(dist, &l.version, r),
                Err(e) => return Err(e.context(format!("importing {dist} {}", l.version))),
            },
        }
    }
    Ok(())
}

/// The first lines of a validator's report: what failed, not its whole schema walk.
fn short(report: &str) -> String {
    let lines: Vec<&str> = report.lines().take(3).collect();
    let mut s = lines.join(" ");
    if s.len() > 400 {
        let cut = (0..=400)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(cut);
        s.push('…');
    }
    s
}

struct Prepared {
    import: Import,
    zip: Vec<u8>,
    warning: Option<String>,
}

/// Reads one release from the tree and checks what can be checked before the node does:
/// PGXN's release META, the zip against its SHA-1, the META inside the zip.
async fn prepare(
    source: &Source,
    templates: &Templates,
    limits: &Limits,
    dist: &str,
    l: &Listed,
) -> anyhow::Result<Prepared> {
    let meta = source.release_meta(templates, dist, &l.version).await?;
    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_string);
    let sha1 = text("sha1").ok_or_else(|| anyhow::anyhow!("PGXN's META names no sha1"))?;
    let user = text("user").ok_or_else(|| anyhow::anyhow!("PGXN's META names no user"))?;
    if !valid_user_name(&user) {
        anyhow::bail!("PGXN user {user:?} is not a valid pgext account name");
    }
    let date = text("date").unwrap_or_else(|| l.date.clone());
    if parse_pgxn_date(&date).is_none() {
        anyhow::bail!("date {date:?} is not YYYY-MM-DDTHH:MM:SSZ");
    }
    let status_text = text("release_status").unwrap_or_else(|| l.status.clone());
    let status = Status::parse(&status_text)
        .ok_or_else(|| anyhow::anyhow!("release status {status_text:?} is not PGXN's"))?;
    let zip = source
        .zip(templates, dist, &l.version, limits.max_archive_bytes)
        .await?;
    let got = hex(&Sha1::digest(&zip));
    if got != sha1.to_ascii_lowercase() {
        anyhow::bail!("the zip's SHA-1 is {got}, PGXN's META says {sha1}");
    }
    // The META inside the zip is the release's META; PGXN's release META was made from it.
    let files = read_archive(&zip, limits).map_err(|e| anyhow::anyhow!("the zip: {e}"))?;
    let inner = files
        .get("META.json")
        .ok_or_else(|| anyhow::anyhow!("the zip has no META.json at its top"))?;
    let mut parsed = read_stored_meta(inner).map_err(|e| anyhow::anyhow!("the zip's {e}"))?;
    parsed.take_control_versions(&files);
    // Today's validator may be stricter than PGXN was when it took the release: said, not
    // refused.
    let warning = parse_meta(inner).err().map(|e| short(&e.to_string()));
    let provides: BTreeMap<String, String> = parsed
        .provides
        .iter()
        .map(|(k, p)| (k.clone(), p.version.clone()))
        .collect();
    let release = Release {
        dist: parsed.name.clone(),
        version: l.version.clone(),
        status,
        sha256: hex(&sha256(&zip)),
        sha1: got,
        size: zip.len() as u64,
        meta_sha256: hex(&sha256(inner)),
        provides,
    };
    if !release.dist.eq_ignore_ascii_case(dist) || !parsed.version.eq_ignore_ascii_case(&l.version)
    {
        anyhow::bail!(
            "the zip's META.json describes {} {}, the tree {dist} {}",
            parsed.name,
            parsed.version,
            l.version
        );
    }
    Ok(Prepared {
        import: Import {
            release,
            user,
            date,
            source: SOURCE_PGXN.into(),
        },
        zip,
        warning,
    })
}
