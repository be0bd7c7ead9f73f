//! `pgext`: find, verify and install PostgreSQL extensions. A thin layer over the `pgext`
//! library: parse the command line, call the library, print the result.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use pgext::trust::{Config, RegistryConfig, State};
use pgext::verify::{Remote, VerifiedRelease, fetch_verified};

#[derive(Parser)]
#[command(
    name = "pgext",
    version,
    about = "Find, verify and install PostgreSQL extensions"
)]
struct Cli {
    /// The trust configuration (default: $PGEXT_CONFIG, else ~/.config/pgext/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Which configured registry to use (default: the first).
    #[arg(long, global = true)]
    registry: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Registries you trust.
    Registry {
        #[command(subcommand)]
        command: RegistryCmd,
    },
    /// A distribution's releases, owners and history.
    Info {
        /// Distribution name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a release, verify it, and write its archive.
    Download {
        /// `name` or `name@version`.
        spec: String,
        /// Folder to write the archive to.
        #[arg(short = 'o', long, default_value = ".")]
        output: PathBuf,
    },
    /// Fetch a release and verify it; print who published it and what proves it.
    Verify {
        /// `name` or `name@version`.
        spec: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RegistryCmd {
    /// Trust a registry: its log key is shown and must be accepted (or given with --vkey).
    Add {
        /// Local name.
        name: String,
        /// A node's URL.
        url: String,
        /// The log's verifier key, when known from elsewhere (it must match the node's).
        #[arg(long)]
        vkey: Option<String>,
        /// A witness verifier key to require (repeat for several).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many of the witnesses must have cosigned.
        #[arg(long, default_value_t = 0)]
        quorum: usize,
        /// Accept the key the node shows without asking.
        #[arg(long)]
        yes: bool,
    },
    /// The registries configured.
    List,
}

/// `name@version` → (name, version).
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

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

async fn registry_add(
    config: &mut Config,
    path: &std::path::Path,
    reg: RegistryConfig,
    yes: bool,
) -> anyhow::Result<()> {
    let remote = Remote::new(&reg);
    let log = remote
        .json("/api/v1/log")
        .await
        .context("asking the node for its log key")?;
    let shown = log["vkey"].as_str().unwrap_or_default().to_string();
    if !reg.vkey.is_empty() && reg.vkey != shown {
        bail!(
            "the node's log key is {shown}, not the {} you gave: refusing to trust it",
            reg.vkey
        );
    }
    if reg.vkey.is_empty() && !yes {
        println!("{} serves the log {}", reg.urls[0], log["origin"]);
        println!("  key:         {shown}");
        println!("  fingerprint: {}", fingerprint(&shown));
        print!("Trust this key for registry {}? [y/N] ", reg.name);
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            bail!("not trusted; nothing changed");
        }
    }
    let reg = RegistryConfig { vkey: shown, ..reg };
    reg.log_key().context("the node's log key")?;
    reg.witness_keys()?;
    config.registries.retain(|r| r.name != reg.name);
    println!("registry {} trusts {}", reg.name, reg.vkey);
    config.registries.push(reg);
    config.save(path)?;
    Ok(())
}

fn print_provenance(v: &VerifiedRelease) {
    let p = &v.provenance;
    println!("{} {} ({}) verified", p.dist, p.version, p.status);
    println!(
        "  published by  {} (key {}) at {}",
        p.publisher, p.key_id, p.time
    );
    println!("  log           {} entry {}", p.origin, p.index);
    println!("  sha256        {}", p.sha256);
    println!("  checkpoint    size {}", p.checkpoint_size);
    if p.cosigners.is_empty() {
        println!("  cosigned by   (no witness required)");
    }
    for c in &p.cosigners {
        println!("  cosigned by   {c}");
    }
    if let Some(r) = &p.yanked {
        println!("  warning: this version is yanked: {r}");
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.clone().unwrap_or_else(Config::default_path);
    let mut config = Config::load(&path)?;
    let state = State::from_env();
    match cli.command {
        Cmd::Registry { command } => match command {
            RegistryCmd::Add {
                name,
                url,
                vkey,
                witnesses,
                quorum,
                yes,
            } => {
                let reg = RegistryConfig {
                    name,
                    urls: vec![url],
                    vkey: vkey.unwrap_or_default(),
                    witnesses,
                    quorum,
                };
                registry_add(&mut config, &path, reg, yes).await?;
            }
            RegistryCmd::List => {
                for r in &config.registries {
                    println!("{} {} {}", r.name, r.urls.join(","), r.vkey);
                }
            }
        },
        Cmd::Info { name, json } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let doc = Remote::new(reg)
                .json(&format!("/api/v1/dists/{name}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!(
                    "{} (owners: {})",
                    doc["name"].as_str().unwrap_or(&name),
                    doc["owners"]
                );
                for r in doc["releases"].as_array().into_iter().flatten() {
                    let yank = if r["yanked"] == true { " yanked" } else { "" };
                    println!(
                        "  {} {} by {} (log entry {}){yank}",
                        r["version"].as_str().unwrap_or_default(),
                        r["status"].as_str().unwrap_or_default(),
                        r["user"].as_str().unwrap_or_default(),
                        r["index"]
                    );
                }
            }
        }
        Cmd::Download { spec, output } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let (name, version) = split_spec(&spec);
            let v = fetch_verified(reg, &state, name, version).await?;
            let file = output.join(format!(
                "{}-{}.zip",
                v.provenance.dist, v.provenance.version
            ));
            std::fs::create_dir_all(&output)?;
            std::fs::write(&file, &v.zip).with_context(|| format!("writing {}", file.display()))?;
            println!("{}", file.display());
        }
        Cmd::Verify { spec, json } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let (name, version) = split_spec(&spec);
            let v = fetch_verified(reg, &state, name, version).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v.provenance)?);
            } else {
                print_provenance(&v);
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
