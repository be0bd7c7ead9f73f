//! `pgext registry add|list`: the registries you trust.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use pgext_spec::api;

use super::Env;
use crate::trust::RegistryConfig;
use crate::verify::Remote;

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub(crate) enum RegistryCmd {
    /// Trust a registry: its log key is shown and must be accepted (or given with --vkey).
    Add {
        /// Local name.
        name: String,
        /// Node URLs, tried in this order (failover). A node that serves the log of --vkey
        /// below a prefix (a mirror's `/origins/NAME/`) is used at that prefix.
        #[arg(required = true, num_args = 1..)]
        urls: Vec<String>,
        /// The log's verifier key, when known from elsewhere (it must match the node's).
        #[arg(long)]
        vkey: Option<String>,
        /// A witness verifier key to require (repeat for several).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the witnesses must have cosigned.
        #[arg(long, default_value_t = 0)]
        quorum: usize,
        /// A C2SP tlog-policy file (witnesses, groups, quorum); it must list the log key.
        #[arg(long, conflicts_with_all = ["witnesses", "quorum"])]
        policy: Option<PathBuf>,
        /// Accept the key the node shows without asking.
        #[arg(long)]
        yes: bool,
        /// A name pattern this registry owns (`acme_*`; repeat for several): such names are
        /// looked up here and never sent to another registry.
        #[arg(long = "names")]
        names: Vec<String>,
        /// A read token for a private registry (when you have no member's signing key).
        #[arg(long)]
        token: Option<String>,
        /// A builder account whose attestations of binary packages to believe (repeat for
        /// several).
        #[arg(long = "builder")]
        builders: Vec<String>,
        /// How many of the builders must attest the same package before it is installed.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        builder_quorum: u64,
    },
    /// The registries configured.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(cmd: RegistryCmd, mut env: Env) -> anyhow::Result<()> {
    match cmd {
        RegistryCmd::Add {
            name,
            urls,
            vkey,
            witnesses,
            quorum,
            policy,
            yes,
            names,
            token,
            builders,
            builder_quorum,
        } => {
            if builder_quorum as usize > builders.len().max(1) {
                anyhow::bail!(
                    "--builder-quorum {builder_quorum} needs at least that many --builder accounts"
                );
            }
            let policy = policy
                .map(|p| std::path::absolute(&p))
                .transpose()
                .context("the policy file's path")?;
            let reg = RegistryConfig {
                name,
                urls,
                vkey: vkey.unwrap_or_default(),
                witnesses,
                quorum,
                policy,
                names,
                token,
                builders,
                builder_quorum: builder_quorum as usize,
            };
            add(&mut env, reg, yes).await
        }
        RegistryCmd::List { json: true } => {
            println!("{}", serde_json::to_string_pretty(&env.config.registries)?);
            Ok(())
        }
        RegistryCmd::List { json: false } => {
            let default = env.config.default_registry().ok().map(|r| r.name.clone());
            for r in &env.config.registries {
                let routing = if r.names.is_empty() {
                    if default.as_deref() == Some(r.name.as_str()) {
                        "default: every name no registry owns".to_string()
                    } else {
                        "only with --registry".to_string()
                    }
                } else {
                    format!("owns {}", r.names.join(" "))
                };
                println!("{} {} {} ({routing})", r.name, r.urls.join(","), r.vkey);
                if !r.builders.is_empty() {
                    println!(
                        "  builders: {} (quorum {})",
                        r.builders.join(" "),
                        r.builder_quorum.max(1)
                    );
                }
            }
            Ok(())
        }
    }
}

/// The key's fingerprint as people compare it: eight bytes of its SHA-256 in groups.
fn fingerprint(vkey: &str) -> String {
    let h = pgext_log::sha256(vkey.as_bytes());
    h[..8]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| c.concat())
        .collect::<Vec<_>>()
        .join(":")
}

/// Where `url` serves the log of `vkey`: `url` itself when its own log is that one, else the
/// prefix its `/api/v1/origins` names for it (a mirror). The node's own log otherwise. `None`
/// when the node does not answer at all.
async fn locate(url: &str, reg: &RegistryConfig) -> anyhow::Result<Option<(String, Shown)>> {
    let vkey = reg.vkey.as_str();
    let base = url.trim_end_matches('/').to_string();
    // With the key (and a member's signing key, or a token), a private registry answers too.
    let remote = |u: &str| {
        Remote::new(&RegistryConfig {
            name: "new".into(),
            urls: vec![u.to_string()],
            vkey: vkey.to_string(),
            token: reg.token.clone(),
            ..RegistryConfig::default()
        })
    };
    let log: api::LogInfo = match remote(&base).json("/api/v1/log").await {
        Ok(log) => log,
        // A private registry shows its key to members only. A newcomer (who registers next,
        // with an invitation) gave the key it was told: taken as given, as for a node that
        // does not answer; every answer is verified against it from then on.
        Err(e) if !vkey.is_empty() && e.to_string().contains("401") => {
            eprintln!(
                "warning: {base} is private and shows its key to members only; the key you gave is taken as given"
            );
            let origin = reg.log_key()?.name().to_string();
            return Ok(Some((
                base,
                Shown {
                    origin,
                    vkey: vkey.to_string(),
                },
            )));
        }
        Err(e) if vkey.is_empty() && e.to_string().contains("401") => {
            return Err(e).with_context(|| {
                format!("{base} is private: give its log key with --vkey (and be a member, or pass --token)")
            });
        }
        Err(crate::Error::Verify(crate::VerifyError::Unreachable { why, .. })) => {
            eprintln!("warning: {base} does not answer ({why}); kept as given, for failover");
            return Ok(None);
        }
        Err(e) => return Err(e).with_context(|| format!("asking {base} for its log key")),
    };
    if vkey.is_empty() || log.vkey == vkey {
        return Ok(Some((base, Shown::of(log))));
    }
    let origins: api::Origins = remote(&base)
        .json("/api/v1/origins")
        .await
        .with_context(|| format!("asking {base} which logs it serves"))?;
    let Some(o) = origins.origins.iter().find(|o| o.vkey == vkey) else {
        bail!(
            "{base} serves the log {} with key {}, and no log with the key {vkey} you gave: refusing to trust it",
            log.origin,
            log.vkey
        );
    };
    let at = format!("{base}{}", o.prefix.trim_end_matches('/'));
    println!("{base} serves {} below {}; using {at}", o.origin, o.prefix);
    let log: api::LogInfo = remote(&at)
        .json("/api/v1/log")
        .await
        .with_context(|| format!("asking {at} for its log key"))?;
    Ok(Some((at, Shown::of(log))))
}

/// The log a node showed: its origin and key.
struct Shown {
    origin: String,
    vkey: String,
}

impl Shown {
    fn of(log: api::LogInfo) -> Shown {
        Shown {
            origin: log.origin,
            vkey: log.vkey,
        }
    }
}

async fn add(env: &mut Env, reg: RegistryConfig, yes: bool) -> anyhow::Result<()> {
    let mut urls = Vec::with_capacity(reg.urls.len());
    let mut shown = None;
    for url in &reg.urls {
        let Some((at, log)) = locate(url, &reg).await? else {
            urls.push(url.trim_end_matches('/').to_string());
            continue;
        };
        if let Some(first) = &shown {
            if *first != log.vkey {
                bail!(
                    "{at} serves another log ({}) than the nodes before it",
                    log.vkey
                );
            }
        }
        if shown.is_none() && reg.vkey.is_empty() && !yes {
            println!("{at} serves the log {}", log.origin);
            println!("  key:         {}", log.vkey);
            println!("  fingerprint: {}", fingerprint(&log.vkey));
            print!("Trust this key for registry {}? [y/N] ", reg.name);
            std::io::stdout().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !answer.trim().eq_ignore_ascii_case("y") {
                bail!("not trusted; nothing changed");
            }
        }
        shown.get_or_insert(log.vkey);
        urls.push(at);
    }
    let Some(vkey) = shown else {
        bail!(
            "no node of {} answered; nothing changed",
            reg.urls.join(", ")
        );
    };
    let reg = RegistryConfig { vkey, urls, ..reg };
    reg.log_key().context("the node's log key")?;
    reg.witness_keys()?;
    env.config.registries.retain(|r| r.name != reg.name);
    println!("registry {} trusts {}", reg.name, reg.vkey);
    env.config.registries.push(reg);
    env.config.save(&env.config_path)?;
    Ok(())
}
