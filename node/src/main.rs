//! `pgext-node`: runs a pgext registry node.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pgext_node::{Config, Node};

/// A pgext registry node: sequences a registry's log and serves it, PGXN-compatible.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (see deploy/node.example.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder (RocksDB, blobs, keys). Default: ./pgext-data.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// HTTP listen address. Default: 127.0.0.1:7070.
    #[arg(long, global = true)]
    http: Option<SocketAddr>,
    /// Origin of the log this node sequences, fixed at first start. Default: <http>/log.
    #[arg(long, global = true)]
    origin: Option<String>,
    /// libp2p listen address (repeatable), e.g. /ip4/127.0.0.1/tcp/7071.
    #[arg(long = "p2p-listen", global = true)]
    p2p_listen: Vec<String>,
    /// Peer to dial at start (repeatable), replacing the configured ones:
    /// /ip4/ADDR/tcp/PORT/p2p/PEER_ID.
    #[arg(long = "peer", global = true)]
    peers: Vec<String>,
    /// Origin to mirror (repeatable): NAME=VKEY, replacing a configured mirror of that name.
    #[arg(long = "mirror", global = true, value_parser = parse_mirror)]
    mirrors: Vec<pgext_node::config::MirrorConfig>,
    /// Private origin to mirror (repeatable): NAME=VKEY, served to its members only
    /// (spec/access.md).
    #[arg(long = "private-mirror", global = true, value_parser = parse_mirror)]
    private_mirrors: Vec<pgext_node::config::MirrorConfig>,
    /// Peer id that may replicate this node's private origins (repeatable), replacing
    /// `[p2p] allow`.
    #[arg(long = "allow", global = true)]
    allow: Vec<String>,
    /// Admin public key whose invitations count (repeatable), replacing `admin_keys`.
    #[arg(long = "admin-key", global = true)]
    admin_keys: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the node (creates the data folder and log key on first start).
    Run,
    /// Print the log's C2SP verifier key, which clients and mirrors pin (read-only: a folder
    /// without a log key is an error).
    Vkey,
    /// Replay the whole log, re-checking every entry, and report what it holds.
    Reindex,
    /// Check the node's stores (the node stopped): checkpoints, every tile against the
    /// entries, every rule, every blob. Exit status 1 when something is wrong.
    Fsck {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the node's libp2p peer id, what other nodes list in `[p2p] allow`. The identity is
    /// made (as `run` would make it) when the data folder has none yet.
    PeerId,
    /// Write the registry as a static PGXN mirror tree (rsync-able, servable by any web server).
    ExportPgxn {
        /// Folder to write into.
        dir: PathBuf,
    },
    /// Import PGXN's history from a mirror tree (a folder, or an http(s) base URL with the
    /// same layout): every release the log lacks, oldest first, each zip checked against the
    /// SHA-1 PGXN published and kept byte for byte. Works whether or not the node runs on the
    /// data folder. Ends with `imported N releases (M skipped, K refused)`; exit status 1 when
    /// a release was refused.
    ImportPgxn {
        /// The mirror tree.
        source: String,
        /// Keep importing: a pass every --interval seconds, until stopped.
        #[arg(long)]
        follow: bool,
        /// Seconds between passes with --follow.
        #[arg(long, default_value_t = 300)]
        interval: u64,
    },
    /// Approve a claim: the account takes the distributions imported from a PGXN user name
    /// and publishes their next releases. The evidence (what proved the account holder is the
    /// PGXN user) is logged with the claim.
    Claim {
        /// PGXN user name.
        pgxn_user: String,
        /// pgext account.
        account: String,
        /// What the operator saw, e.g. "mail from the PGXN address, 2026-12-01".
        #[arg(long)]
        evidence: String,
    },
    /// Grant or revoke a registry role (`packages`: maintains the OS package name mapping) as
    /// the registry's operator.
    Role {
        /// `grant` or `revoke`.
        #[arg(value_parser = ["grant", "revoke"])]
        action: String,
        /// The role.
        role: String,
        /// pgext account.
        account: String,
    },
}

fn config(cli: &Cli) -> anyhow::Result<Config> {
    let mut c = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data {
        c.data = d.clone();
    }
    if let Some(h) = cli.http {
        c.http = h;
    }
    if let Some(o) = &cli.origin {
        c.origin = Some(o.clone());
    }
    if !cli.p2p_listen.is_empty() {
        c.p2p.listen = cli.p2p_listen.clone();
    }
    if !cli.peers.is_empty() {
        c.p2p.peers = cli.peers.clone();
    }
    let private = cli
        .private_mirrors
        .iter()
        .map(|m| pgext_node::config::MirrorConfig {
            access: pgext_node::config::Access::Private,
            ..m.clone()
        });
    for m in cli.mirrors.iter().cloned().chain(private) {
        c.mirrors.retain(|have| have.name != m.name);
        c.mirrors.push(m);
    }
    if !cli.allow.is_empty() {
        c.p2p.allow = cli.allow.clone();
    }
    if !cli.admin_keys.is_empty() {
        c.admin_keys = cli.admin_keys.clone();
    }
    Ok(c)
}

fn parse_mirror(arg: &str) -> Result<pgext_node::config::MirrorConfig, String> {
    let (name, vkey) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VKEY, got {arg:?}"))?;
    Ok(pgext_node::config::MirrorConfig {
        name: name.to_string(),
        vkey: vkey.to_string(),
        access: pgext_node::config::Access::Public,
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // A running node logs to stdout, as services do; every other command keeps stdout for
    // its answer (scripts read it) and logs to stderr.
    let serving = matches!(cli.command, Command::Run);
    let writer = move || -> Box<dyn std::io::Write> {
        if serving {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::io::stderr())
        }
    };
    if std::env::var("RUST_LOG_FORMAT").is_ok_and(|f| f == "json") {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .with_writer(writer)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .init();
    }
    let config = config(&cli)?;
    match cli.command {
        Command::Vkey => println!("{}", pgext_node::tools::vkey(&config)?),
        Command::Reindex => {
            let (size, accounts, dists) = pgext_node::tools::reindex(&config)?;
            println!(
                "log size {size}: {accounts} accounts, {dists} distributions; every entry re-checked"
            );
        }
        Command::Fsck { json } => {
            let report = pgext_node::tools::fsck::fsck(&config)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for (origin, size) in &report.logs {
                    println!("{origin}: size {size}");
                }
                for v in &report.violations {
                    let at = v.index.map(|i| format!("entry {i} ")).unwrap_or_default();
                    println!("violation: {} {at}{}: {}", v.origin, v.rule, v.detail);
                }
                println!(
                    "{} entries replayed, {} blobs hashed: {}",
                    report.entries,
                    report.blobs,
                    if report.violations.is_empty() {
                        "clean".to_string()
                    } else {
                        format!("{} violation(s)", report.violations.len())
                    }
                );
            }
            if !report.violations.is_empty() {
                std::io::Write::flush(&mut std::io::stdout())?;
                std::process::exit(1);
            }
        }
        Command::PeerId => {
            std::fs::create_dir_all(&config.data)
                .with_context(|| format!("creating {}", config.data.display()))?;
            let key = pgext_node::p2p::load_or_create_identity(&config.data)?;
            println!("{}", key.public().to_peer_id());
        }
        Command::ExportPgxn { dir } => {
            let e = pgext_node::tools::export::export_pgxn(&config, &dir)?;
            println!(
                "exported {} files to {}: {} written, {} unchanged, {} removed",
                e.files,
                dir.display(),
                e.written,
                e.files - e.written,
                e.removed
            );
        }
        Command::ImportPgxn {
            source,
            follow,
            interval,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let refused = rt.block_on(import_pgxn(config, &source, follow, interval))?;
            if refused {
                std::process::exit(1);
            }
        }
        Command::Claim {
            pgxn_user,
            account,
            evidence,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(async {
                let op = pgext_node::operator::Operator::connect(&config).await?;
                let done = pgext_node::operator::claim(&op, &pgxn_user, &account, &evidence).await;
                op.close().await;
                let receipt = done?;
                println!(
                    "claimed PGXN user {pgxn_user} for {account}: log entry {}",
                    receipt.index
                );
                anyhow::Ok(())
            })?;
        }
        Command::Role {
            action,
            role,
            account,
        } => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(async {
                let op = pgext_node::operator::Operator::connect(&config).await?;
                let grant = action == "grant";
                let done = pgext_node::operator::role(&op, &role, &account, grant).await;
                op.close().await;
                let receipt = done?;
                let did = if grant { "granted" } else { "revoked" };
                println!(
                    "{did} role {role} for {account}: log entry {}",
                    receipt.index
                );
                anyhow::Ok(())
            })?;
        }
        Command::Run => {
            let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
            rt.block_on(async {
                // Listen for signals before anything else, so a SIGTERM during start-up stops
                // the node cleanly too.
                let stop = shutdown_signal()?;
                let node = Node::spawn(config).await?;
                print_started(&node);
                stop.await;
                tracing::info!("shutting down");
                node.shutdown().await;
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}

/// `import-pgxn`: one pass, or with `follow` a pass every `interval` seconds until SIGINT or
/// SIGTERM. Returns whether the last pass refused a release.
async fn import_pgxn(
    config: Config,
    source: &str,
    follow: bool,
    interval: u64,
) -> anyhow::Result<bool> {
    use pgext_node::operator::{Operator, import, source::Source};
    let stop = shutdown_signal()?;
    tokio::pin!(stop);
    let src = Source::parse(source)?;
    let op = Operator::connect(&config).await?;
    let mut refused;
    loop {
        let pass = import::import(&op, &src, &config.limits).await;
        match pass {
            Ok(summary) => {
                println!("{summary}");
                refused = summary.refused > 0;
            }
            // Following, a pass that could not read the tree or reach the node is said and
            // tried again at the next.
            Err(e) if follow => {
                eprintln!("import pass failed, trying again in {interval} s: {e:#}");
                refused = true;
            }
            Err(e) => {
                op.close().await;
                return Err(e);
            }
        }
        if !follow {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(interval)) => {}
        }
    }
    op.close().await;
    Ok(refused)
}

/// What `run` prints once serving: the URL first (scripts read that line), then the log's
/// verifier key, mirrors, libp2p addresses and the cosigner key. Whoever reads stdout may stop reading after the first line;
/// the node must not die of that, so write errors are ignored.
fn print_started(node: &Node) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "pgext-node serving {} on {}",
        node.origin().name,
        node.url()
    );
    let _ = writeln!(out, "vkey {}", node.origin().vkey);
    for m in node.mirrors() {
        let _ = writeln!(out, "mirroring {} at {}{}/", m.name, node.url(), m.prefix);
    }
    let info = node.info();
    for a in &info.p2p_addrs {
        let _ = writeln!(out, "p2p {a}");
    }
    if let Some(w) = &info.witness {
        let _ = writeln!(out, "witness {w}");
    }
    for c in &info.cosigners {
        let _ = writeln!(out, "cosigner {c}");
    }
    let _ = out.flush();
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    })
}
