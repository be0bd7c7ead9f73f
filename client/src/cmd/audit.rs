//! Watching a registry: `pgext audit` replays a log from its nodes, `pgext watch` follows it.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::Env;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Replay a log from its nodes: checkpoints, cosignatures, every tile, every rule.
    /// Exit status: 0 clean, 1 violations, 2 a split view, 3 the audit could not run.
    Audit {
        /// Node URLs (a mirror's origin under /origins/NAME; default: --registry's nodes).
        urls: Vec<String>,
        /// The log's verifier key (default: --registry's).
        #[arg(long)]
        vkey: Option<String>,
        /// A witness key whose cosignatures must verify where present (repeatable; default:
        /// --registry's witnesses when --vkey is not given).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Download and hash every release archive too.
        #[arg(long)]
        artifacts: bool,
        /// Fetch everything again (no cache of verified bundles).
        #[arg(long)]
        no_cache: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Follow the log and report every new verified entry touching these dists or users.
    Watch {
        /// Distribution and user names.
        #[arg(required_unless_present = "account")]
        names: Vec<String>,
        /// Tell of every key added, rotated or revoked for this account, every CI key recorded
        /// for it and every release it signs, so a stolen key is noticed (repeatable).
        #[arg(long)]
        account: Vec<String>,
        /// Run this shell command for each entry (PGEXT_EVENT holds its JSON; PGEXT_INDEX,
        /// PGEXT_KIND, PGEXT_DIST, PGEXT_VERSION and PGEXT_ACTOR its fields).
        #[arg(long)]
        exec: Option<String>,
        /// POST each entry's JSON to this URL (three attempts).
        #[arg(long)]
        webhook: Option<String>,
        /// Report entries from this log index (default: only new ones).
        #[arg(long)]
        from: Option<u64>,
        /// Seconds between looks at the checkpoint.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Stop after the current checkpoint.
        #[arg(long)]
        once: bool,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Audit {
            urls,
            vkey,
            witnesses,
            artifacts,
            no_cache,
            json,
        } => {
            // A private log is read with a token: the registry's, or one signed for this log
            // once a node asks for it.
            let token_reg = match &vkey {
                Some(v) => crate::trust::RegistryConfig {
                    vkey: v.clone(),
                    ..Default::default()
                },
                None => env.registry()?.clone(),
            };
            let id = env
                .key
                .as_deref()
                .map(|k| crate::author::load_identity(Some(k)))
                .transpose()?;
            let access = crate::auth::Access::new(&token_reg, id);
            let (log_key, witnesses) = match vkey {
                Some(v) => (
                    v.parse().context("--vkey")?,
                    witnesses
                        .iter()
                        .map(|w| w.parse().with_context(|| format!("--witness {w}")))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                ),
                None => {
                    let reg = env.registry()?;
                    (reg.log_key()?, reg.witness_keys()?)
                }
            };
            let urls = if urls.is_empty() {
                env.registry()?.urls.clone()
            } else {
                urls
            };
            let cache = (!no_cache).then(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .filter(|v| !v.is_empty())
                    .map_or_else(
                        || {
                            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                                .join(".cache")
                        },
                        PathBuf::from,
                    )
                    .join("pgext/audit")
            });
            let cfg = crate::audit::AuditConfig {
                urls,
                log_key,
                witnesses,
                artifacts,
                cache,
                access,
            };
            let report = match crate::audit::audit(&cfg).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(3);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_audit(&report);
            }
            std::io::stdout().flush()?;
            let code = report.exit_code();
            if code != 0 {
                std::process::exit(code.into());
            }
        }
        Cmd::Watch {
            names,
            account,
            exec,
            webhook,
            from,
            interval,
            once,
            json,
        } => {
            let cfg = crate::watch::WatchConfig {
                registry: env.registry()?.clone(),
                names,
                from,
                interval: std::time::Duration::from_secs(interval.max(1)),
                once,
                accounts: account,
            };
            crate::watch::watch(&cfg, |ev| {
                let (exec, webhook) = (exec.clone(), webhook.clone());
                async move {
                    report_event(&ev, json, exec.as_deref(), webhook.as_deref())
                        .await
                        .map_err(crate::Error::Config)
                }
            })
            .await?;
        }
    }
    Ok(())
}

/// Prints an event, runs the command, posts the webhook. A failing command or webhook is
/// reported and the watch goes on.
async fn report_event(
    ev: &crate::watch::Event,
    json: bool,
    exec: Option<&str>,
    webhook: Option<&str>,
) -> Result<(), String> {
    let doc = serde_json::to_string(ev).map_err(|e| e.to_string())?;
    if json {
        println!("{doc}");
    } else {
        println!(
            "{} {} {}{} by {}{}",
            ev.index,
            ev.kind,
            ev.dist.as_deref().unwrap_or(""),
            ev.version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            ev.actor,
            ev.key_id
                .as_deref()
                .map(|k| format!(" key {k}"))
                .unwrap_or_default()
        );
    }
    let _ = std::io::stdout().flush();
    if let Some(cmd) = exec {
        let status = std::process::Command::new("sh")
            .args(["-c", cmd])
            .env("PGEXT_EVENT", &doc)
            .env("PGEXT_INDEX", ev.index.to_string())
            .env("PGEXT_KIND", &ev.kind)
            .env("PGEXT_DIST", ev.dist.as_deref().unwrap_or(""))
            .env("PGEXT_VERSION", ev.version.as_deref().unwrap_or(""))
            .env("PGEXT_ACTOR", &ev.actor)
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("warning: --exec failed for entry {}", ev.index);
        }
    }
    if let Some(url) = webhook {
        let http = crate::http::client();
        let mut delivered = false;
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
            }
            let sent = http
                .post(url)
                .header("content-type", "application/json")
                .body(doc.clone())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                delivered = true;
                break;
            }
        }
        if !delivered {
            eprintln!(
                "warning: the webhook did not take entry {} after 3 attempts",
                ev.index
            );
        }
    }
    Ok(())
}

fn print_audit(r: &crate::audit::Report) {
    println!(
        "audit of {}: {} entries replayed, tree of size {}, {} archives hashed ({} bundles fetched, {} from the cache)",
        r.origin, r.entries, r.size, r.artifacts, r.bundles_fetched, r.bundles_cached
    );
    for n in &r.nodes {
        match n.size {
            Some(size) => println!(
                "  {} size {size}, {} trusted cosignature(s)",
                n.url,
                n.cosigners.len()
            ),
            None => println!("  {} no checkpoint signed by the log key", n.url),
        }
    }
    for v in &r.violations {
        let at = v.index.map(|i| format!("entry {i} ")).unwrap_or_default();
        let node = v
            .node
            .as_ref()
            .map(|n| format!(" at {n}"))
            .unwrap_or_default();
        println!("violation: {at}{}{node}: {}", v.rule, v.detail);
    }
    for [a, b] in &r.evidence {
        println!("split view: two checkpoints of one log that no single tree explains:\n{a}\n{b}");
    }
    println!(
        "{}",
        match r.exit_code() {
            0 => "clean".to_string(),
            1 => format!("{} violation(s)", r.violations.len()),
            _ => "SPLIT VIEW".to_string(),
        }
    );
}
