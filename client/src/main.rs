//! `pgext`: find, verify and install PostgreSQL extensions. A thin layer over the `pgext`
//! library: parse the command line, call the library, print the result.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pgext::author;
use pgext::installed::Installed;
use pgext::ops::{Context, InstallOptions, Progress};
use pgext::pg::{Conn, PgInstall};
use pgext::request::{Select, Stability, Target};
use pgext::trust::{Config, RegistryConfig, State};
use pgext::verify::{Remote, VerifiedRelease, fetch_verified, verify_offline};
use pgext_spec::entry::{Action, Status};

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
    /// The signing key file (default: $PGEXT_SIGNING_KEY, else ~/.config/pgext/signing.key).
    #[arg(long, global = true)]
    key: Option<PathBuf>,
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
    /// Find distributions (or extensions, docs, users, tags) by words.
    Search {
        /// Words; typos and prefixes are forgiven.
        #[arg(required = true)]
        words: Vec<String>,
        /// What to search: dists, extensions, docs, users or tags.
        #[arg(long = "in", default_value = "dists", value_parser = ["dists", "extensions", "docs", "users", "tags"])]
        within: String,
        /// Hits to skip.
        #[arg(short = 'o', long, default_value_t = 0)]
        offset: usize,
        /// Hits to show.
        #[arg(short = 'l', long, default_value_t = 20)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
        /// `name`, `name@1.2.3`, `name>=1.2`.
        spec: String,
        /// Folder to write the archive to.
        #[arg(short = 'o', long, default_value = ".")]
        output: PathBuf,
        #[command(flatten)]
        status: StatusArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a release and print who published it and what proves it; with --proof, an
    /// archive on disk, offline.
    Verify {
        /// `name`, `name@1.2.3`, `name>=1.2`, or an archive with --proof.
        spec: String,
        /// A tlog-proof file: verify the archive SPEC offline.
        #[arg(long)]
        proof: Option<PathBuf>,
        #[command(flatten)]
        status: StatusArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Start a new extension project (a PGXS project that builds, tests and publishes as is).
    Init {
        /// Extension name.
        name: String,
        /// A C extension (a module with one function).
        #[arg(long, conflicts_with = "sql")]
        c: bool,
        /// A SQL-only extension (the default).
        #[arg(long)]
        sql: bool,
        /// Write META.json in PGXN's v1 format (default: v2).
        #[arg(long)]
        meta_v1: bool,
    },
    /// Check a project's META.json and the files it names.
    Validate {
        /// A project folder or a META.json.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a project's release zip (git-tracked files, less META's no_index/ignore).
    Bundle {
        /// A project folder.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Folder to write the zip to.
        #[arg(short = 'o', long, default_value = ".")]
        output: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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
        #[arg(required = true)]
        names: Vec<String>,
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
    /// Make a signing key for USER (never overwrites one).
    Keygen {
        /// Account name.
        user: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Register your account (the key's user) with the registry.
    Register {
        /// Full name.
        #[arg(long)]
        name: Option<String>,
        /// Email.
        #[arg(long)]
        email: Option<String>,
        /// Home page.
        #[arg(long)]
        uri: Option<String>,
    },
    /// Who the signing key is, and the account as the registry shows it.
    Whoami {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keys of your account.
    #[command(name = "key")]
    Keys {
        #[command(subcommand)]
        command: KeyCmd,
    },
    /// Sign and upload a release from a project folder or an archive.
    Publish {
        /// The project folder or archive.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Release status when META.json names none: stable, testing or unstable.
        #[arg(long)]
        status: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Owners of a distribution.
    Owner {
        #[command(subcommand)]
        command: OwnerCmd,
    },
    /// Mark a release as not to be chosen by installers (it stays in the log).
    Yank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reverse a yank.
    Unyank {
        /// Distribution.
        dist: String,
        /// Version.
        version: String,
    },
    /// Verify, build and install a release (or a local directory or archive).
    #[command(disable_help_flag = true)]
    Install {
        /// `name`, `name@1.2.3`, `name>=1.2`, a directory, or an archive.
        spec: String,
        /// A tlog-proof file: install the archive SPEC verified offline.
        #[arg(long)]
        proof: Option<PathBuf>,
        /// Install from --registry though the name is pinned to another registry.
        #[arg(long)]
        repin: bool,
        #[command(flatten)]
        status: StatusArgs,
        #[command(flatten)]
        pg: PgArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an installed dist's regression tests (`make installcheck`).
    #[command(disable_help_flag = true)]
    Check {
        /// Dist or extension name.
        name: String,
        #[command(flatten)]
        pg: PgArgs,
    },
    /// CREATE EXTENSION for each extension an installed dist provides.
    #[command(disable_help_flag = true)]
    Load {
        /// Dist or extension name.
        name: String,
        /// Schema to create the extensions in.
        #[arg(long)]
        schema: Option<String>,
        /// Create the extensions they require too.
        #[arg(long)]
        cascade: bool,
        #[command(flatten)]
        pg: PgArgs,
    },
    /// DROP EXTENSION for each extension an installed dist provides.
    #[command(disable_help_flag = true)]
    Unload {
        /// Dist or extension name.
        name: String,
        /// Drop the objects that depend on them too.
        #[arg(long)]
        cascade: bool,
        #[command(flatten)]
        pg: PgArgs,
    },
    /// Remove exactly the files an install wrote.
    #[command(disable_help_flag = true)]
    Uninstall {
        /// Dist or extension name.
        name: String,
        #[command(flatten)]
        pg: PgArgs,
    },
    /// What pgext installed into this PostgreSQL, with provenance.
    #[command(disable_help_flag = true)]
    List {
        #[command(flatten)]
        pg: PgArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Upgrade installed dists to their newest allowed release (all when none is named).
    #[command(disable_help_flag = true)]
    Upgrade {
        /// Dist or extension names.
        names: Vec<String>,
        #[command(flatten)]
        status: StatusArgs,
        #[command(flatten)]
        pg: PgArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which release statuses may be chosen (default: stable only).
#[derive(clap::Args)]
struct StatusArgs {
    /// Only stable releases (the default).
    #[arg(long, conflicts_with_all = ["testing", "unstable"])]
    stable: bool,
    /// Stable and testing releases.
    #[arg(long, conflicts_with = "unstable")]
    testing: bool,
    /// Any release status.
    #[arg(long)]
    unstable: bool,
}

impl StatusArgs {
    fn stability(&self) -> Stability {
        if self.unstable {
            Stability::Unstable
        } else if self.testing {
            Stability::Testing
        } else {
            Stability::Stable
        }
    }
}

/// Which PostgreSQL, and how to reach it (psql's flags; unset ones come from `PG*`).
#[derive(clap::Args)]
struct PgArgs {
    /// The pg_config of the PostgreSQL to use (default: the first in PATH).
    #[arg(long)]
    pg_config: Option<PathBuf>,
    /// Database name.
    #[arg(short = 'd', long)]
    dbname: Option<String>,
    /// Database server host or socket folder.
    #[arg(short = 'h', long)]
    host: Option<String>,
    /// Database server port.
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// Database user.
    #[arg(short = 'U', long = "username")]
    user: Option<String>,
    /// Install and remove files through sudo.
    #[arg(long)]
    sudo: bool,
    /// Show each step as a line, not a bar.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

impl PgArgs {
    fn conn(&self) -> Conn {
        Conn {
            dbname: self.dbname.clone(),
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
        }
    }
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Add another key to your account (for example a CI key), by its base64 public key.
    Add {
        /// The public key (`pgext whoami --key OTHER.key` shows it).
        public_key: String,
    },
    /// Replace the signing key with a new one; the key file is replaced (the old kept as .old).
    Rotate,
    /// Revoke a key of your account.
    Revoke {
        /// Its key id (`pgext whoami` lists them).
        key_id: String,
    },
}

#[derive(Subcommand)]
enum OwnerCmd {
    /// Make USER a co-owner of DIST.
    Add {
        /// Distribution.
        dist: String,
        /// Account.
        user: String,
    },
    /// Remove USER from the owners of DIST.
    Remove {
        /// Distribution.
        dist: String,
        /// Account.
        user: String,
    },
    /// The owners of DIST.
    List {
        /// Distribution.
        dist: String,
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
        /// Node URLs, tried in this order (failover).
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
    },
    /// The registries configured.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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

/// Prints an event, runs the command, posts the webhook. A failing command or webhook is
/// reported and the watch goes on.
async fn report_event(
    ev: &pgext::watch::Event,
    json: bool,
    exec: Option<&str>,
    webhook: Option<&str>,
    http: &reqwest::Client,
) -> Result<(), String> {
    let doc = serde_json::to_string(ev).map_err(|e| e.to_string())?;
    if json {
        println!("{doc}");
    } else {
        println!(
            "{} {} {}{} by {}",
            ev.index,
            ev.kind,
            ev.dist.as_deref().unwrap_or(""),
            ev.version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default(),
            ev.actor
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

fn print_audit(r: &pgext::audit::Report) {
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

/// The nodes submissions go to.
fn submitter(config: &Config, registry: Option<&str>) -> anyhow::Result<author::Submitter> {
    Ok(author::Submitter::new(config.registry(registry)?))
}

/// A registry dist request: `name`, `name@1.2.3`, `name>=1.2`.
fn dist_spec(spec: &str, stability: Stability) -> anyhow::Result<(String, Select)> {
    match pgext::request::parse(spec)? {
        Target::Dist { name, want } => Ok((name, Select { want, stability })),
        _ => bail!(
            "{spec} is a local path: name a distribution (or give --proof to verify an archive)"
        ),
    }
}

/// One line per hit (name and version), then its excerpt without markup.
fn print_hits(doc: &serde_json::Value, within: &str) {
    let hits = doc["hits"].as_array().cloned().unwrap_or_default();
    for h in &hits {
        let s = |k: &str| h[k].as_str().unwrap_or_default().to_string();
        let title = match within {
            "users" => format!("{} ({})", s("user"), s("name")),
            "tags" => s("tag"),
            "extensions" => format!("{} {} (in {})", s("extension"), s("version"), s("dist")),
            "docs" => format!(
                "{} {} {}: {}",
                s("dist"),
                s("version"),
                s("docpath"),
                s("title")
            ),
            _ => format!("{} {}", s("dist"), s("version")),
        };
        println!("{title}");
        let excerpt = s("excerpt")
            .replace("<strong>", "")
            .replace("</strong>", "")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&");
        let excerpt = excerpt.split_whitespace().collect::<Vec<_>>().join(" ");
        if !excerpt.is_empty() {
            println!("    {excerpt}");
        }
    }
    println!(
        "({} of {} shown)",
        hits.len(),
        doc["count"].as_u64().unwrap_or_default()
    );
}

fn warn_of(v: &VerifiedRelease) {
    if let Some(w) = &v.warning {
        eprintln!("warning: {w}");
    }
}

fn print_installed(i: &Installed, what: &str) {
    println!("{} {} {what} ({} files)", i.dist, i.version, i.files.len());
    if !i.extensions.is_empty() {
        println!("  extensions: {}", i.extensions.join(", "));
    }
    if let Some(p) = &i.provenance {
        println!(
            "  verified: {} entry {}, published by {}",
            p.origin, p.index, p.publisher
        );
    }
}

/// Bars on a terminal, lines with --verbose, nothing for --json.
struct Bars {
    bar: ProgressBar,
    verbose: bool,
    quiet: bool,
}

impl Progress for Bars {
    fn step(&self, what: &str) {
        if self.quiet {
            return;
        }
        if self.verbose {
            eprintln!("{what}");
        }
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(what.to_string());
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(120));
    }
    fn bytes(&self, done: u64, total: Option<u64>) {
        if let Some(total) = total.filter(|_| !self.quiet) {
            if self.bar.length() != Some(total) {
                self.bar.set_length(total);
                self.bar.set_style(
                    ProgressStyle::with_template("{msg} {bar:30} {bytes}/{total_bytes}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
            }
            self.bar.set_position(done);
        }
    }
    fn done(&self) {
        self.bar.finish_and_clear();
    }
    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }
}

fn context(
    config: Config,
    state: State,
    registry: Option<String>,
    pg: &PgArgs,
    quiet: bool,
) -> anyhow::Result<Context> {
    let install = PgInstall::find(pg.pg_config.as_deref())?;
    Ok(Context {
        config,
        state,
        registry,
        pg: install,
        sudo: pg.sudo,
        progress: Box::new(Bars {
            bar: ProgressBar::new_spinner(),
            verbose: pg.verbose,
            quiet,
        }),
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli.config.clone().unwrap_or_else(Config::default_path);
    let mut config = Config::load(&path)?;
    let state = State::from_env();
    match cli.command {
        Cmd::Registry { command } => match command {
            RegistryCmd::Add {
                name,
                urls,
                vkey,
                witnesses,
                quorum,
                policy,
                yes,
            } => {
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
                };
                registry_add(&mut config, &path, reg, yes).await?;
            }
            RegistryCmd::List { json: true } => {
                println!("{}", serde_json::to_string_pretty(&config.registries)?);
            }
            RegistryCmd::List { json: false } => {
                for r in &config.registries {
                    println!("{} {} {}", r.name, r.urls.join(","), r.vkey);
                }
            }
        },
        Cmd::Audit {
            urls,
            vkey,
            witnesses,
            artifacts,
            no_cache,
            json,
        } => {
            let (log_key, witnesses) = match vkey {
                Some(v) => (
                    v.parse().context("--vkey")?,
                    witnesses
                        .iter()
                        .map(|w| w.parse().with_context(|| format!("--witness {w}")))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                ),
                None => {
                    let reg = config.registry(cli.registry.as_deref())?;
                    (reg.log_key()?, reg.witness_keys()?)
                }
            };
            let urls = if urls.is_empty() {
                config.registry(cli.registry.as_deref())?.urls.clone()
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
            let cfg = pgext::audit::AuditConfig {
                urls,
                log_key,
                witnesses,
                artifacts,
                cache,
            };
            let report = match pgext::audit::audit(&cfg).await {
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
            exec,
            webhook,
            from,
            interval,
            once,
            json,
        } => {
            let cfg = pgext::watch::WatchConfig {
                registry: config.registry(cli.registry.as_deref())?.clone(),
                names,
                from,
                interval: std::time::Duration::from_secs(interval.max(1)),
                once,
            };
            let http = reqwest::Client::new();
            pgext::watch::watch(&cfg, |ev| {
                let (exec, webhook, http) = (exec.clone(), webhook.clone(), http.clone());
                async move { report_event(&ev, json, exec.as_deref(), webhook.as_deref(), &http).await }
            })
            .await?;
        }
        Cmd::Init {
            name,
            c,
            sql: _,
            meta_v1,
        } => {
            let template = if c {
                pgext::project::Template::C
            } else {
                pgext::project::Template::Sql
            };
            let root = pgext::project::init(&std::env::current_dir()?, &name, template, meta_v1)?;
            println!("created {}", root.display());
            println!(
                "next: cd {name} && make && make install && make installcheck, then pgext publish"
            );
        }
        Cmd::Validate { path, json } => {
            let problems = pgext::project::validate(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&problems)?);
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
            }
            if !problems.is_empty() {
                bail!("{} problem(s) in {}", problems.len(), path.display());
            }
            if !json {
                println!("{} is valid", path.display());
            }
        }
        Cmd::Bundle { path, output, json } => {
            let p = pgext::project::bundle(&path)?;
            let file = output.join(format!("{}-{}.zip", p.release.dist, p.release.version));
            std::fs::create_dir_all(&output)?;
            std::fs::write(&file, &p.zip).with_context(|| format!("writing {}", file.display()))?;
            if json {
                let doc = serde_json::json!({"file": file, "sha256": p.release.sha256, "size": p.release.size});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{}", file.display());
                println!("sha256 {}", p.release.sha256);
            }
        }
        Cmd::Keygen { user, json } => {
            let path = cli.key.clone().unwrap_or_else(author::default_key_path);
            let id = author::generate(&user);
            author::write_key(&path, &id, false)?;
            let info = author::key_info(&id);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("key for {} written to {} (mode 0600)", user, path.display());
                println!("  key id      {}", info.key_id);
                println!("  public key  {}", info.public_key);
                println!("next: pgext register");
            }
        }
        Cmd::Register { name, email, uri } => {
            let id = author::load_identity(cli.key.as_deref())?;
            let entry = id.account_entry(name.as_deref(), email.as_deref(), uri.as_deref());
            let r = submitter(&config, cli.registry.as_deref())?
                .submit(&entry)
                .await?;
            println!("registered {} (log entry {})", id.user, r.index);
        }
        Cmd::Whoami { json } => {
            let id = author::load_identity(cli.key.as_deref())?;
            let info = author::key_info(&id);
            let reg = config.registry(cli.registry.as_deref())?;
            let account = Remote::new(reg)
                .json(&format!("/api/v1/accounts/{}", id.user))
                .await
                .ok();
            if json {
                let doc = serde_json::json!({"key": info, "account": account});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{} (key {})", info.user, info.key_id);
                println!("  public key  {}", info.public_key);
                match account {
                    None => println!("  not registered with {} (pgext register)", reg.name),
                    Some(a) => {
                        println!("  registered with {} at log entry {}", reg.name, a["index"]);
                        for k in a["keys"].as_array().into_iter().flatten() {
                            let state = if k["active"] == true {
                                "active"
                            } else {
                                "revoked"
                            };
                            println!("  key {} {state}", k["key_id"].as_str().unwrap_or_default());
                        }
                    }
                }
            }
        }
        Cmd::Keys { command } => {
            let path = cli.key.clone().unwrap_or_else(author::default_key_path);
            let id = author::load_identity(cli.key.as_deref())?;
            let to = submitter(&config, cli.registry.as_deref())?;
            match command {
                KeyCmd::Add { public_key } => {
                    let r = to
                        .submit(&id.sign(Action::KeyAdd {
                            key: public_key.clone(),
                        }))
                        .await?;
                    println!(
                        "key {public_key} added to {} (log entry {})",
                        id.user, r.index
                    );
                }
                KeyCmd::Rotate => {
                    let new = author::generate(&id.user);
                    let info = author::key_info(&new);
                    let r = to
                        .submit(&id.sign(Action::KeyRotate {
                            new_key: info.public_key.clone(),
                        }))
                        .await?;
                    // Only once the log took the rotation does the file change.
                    author::write_key(&path, &new, true)?;
                    println!(
                        "{} now signs with key {} (log entry {}); the old key file is {}.old",
                        id.user,
                        info.key_id,
                        r.index,
                        path.display()
                    );
                }
                KeyCmd::Revoke { key_id } => {
                    let r = to
                        .submit(&id.sign(Action::KeyRevoke {
                            revoked: key_id.clone(),
                        }))
                        .await?;
                    println!("key {key_id} revoked (log entry {})", r.index);
                }
            }
        }
        Cmd::Publish { path, status, json } => {
            let status = status
                .map(|s| {
                    Status::parse(&s).with_context(|| {
                        format!("status {s}: expected stable, testing or unstable")
                    })
                })
                .transpose()?;
            let id = author::load_identity(cli.key.as_deref())?;
            let to = submitter(&config, cli.registry.as_deref())?;
            let p = author::publish(&to, &id, &path, status).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("published {} {} (sha256 {})", p.dist, p.version, p.sha256);
                println!("  log entry   {}", p.index);
                println!("  checkpoint  size {}", p.checkpoint_size);
                println!("  {}", p.url);
            }
        }
        Cmd::Owner { command } => {
            let (adding, dist, user) = match command {
                OwnerCmd::List { dist, json } => {
                    let reg = config.registry(cli.registry.as_deref())?;
                    let doc = Remote::new(reg)
                        .json(&format!("/api/v1/dists/{dist}"))
                        .await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&doc["owners"])?);
                    } else {
                        for o in doc["owners"].as_array().into_iter().flatten() {
                            println!("{}", o.as_str().unwrap_or_default());
                        }
                    }
                    return Ok(());
                }
                OwnerCmd::Add { dist, user } => (true, dist, user),
                OwnerCmd::Remove { dist, user } => (false, dist, user),
            };
            let id = author::load_identity(cli.key.as_deref())?;
            let action = if adding {
                Action::OwnerGrant {
                    dist: dist.clone(),
                    user: user.clone(),
                }
            } else {
                Action::OwnerRevoke {
                    dist: dist.clone(),
                    user: user.clone(),
                }
            };
            let r = submitter(&config, cli.registry.as_deref())?
                .submit(&id.sign(action))
                .await?;
            let what = if adding { "now owns" } else { "no longer owns" };
            println!("{user} {what} {dist} (log entry {})", r.index);
        }
        Cmd::Yank {
            dist,
            version,
            reason,
        } => {
            let id = author::load_identity(cli.key.as_deref())?;
            let r = submitter(&config, cli.registry.as_deref())?
                .submit(&id.sign(Action::Yank {
                    dist: dist.clone(),
                    version: version.clone(),
                    reason,
                }))
                .await?;
            println!("{dist} {version} yanked (log entry {})", r.index);
        }
        Cmd::Unyank { dist, version } => {
            let id = author::load_identity(cli.key.as_deref())?;
            let r = submitter(&config, cli.registry.as_deref())?
                .submit(&id.sign(Action::Unyank {
                    dist: dist.clone(),
                    version: version.clone(),
                }))
                .await?;
            println!("{dist} {version} unyanked (log entry {})", r.index);
        }
        Cmd::Search {
            words,
            within,
            offset,
            limit,
            json,
        } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let req = pgext::ops::SearchRequest {
                kind: within.clone(),
                query: words.join(" "),
                offset,
                limit,
            };
            let doc = pgext::ops::search(reg, &req).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print_hits(&doc, &within);
            }
        }
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
        Cmd::Download {
            spec,
            output,
            status,
            json,
        } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let (name, select) = dist_spec(&spec, status.stability())?;
            let v = fetch_verified(reg, &state, &name, &select).await?;
            warn_of(&v);
            let file = output.join(format!(
                "{}-{}.zip",
                v.provenance.dist, v.provenance.version
            ));
            std::fs::create_dir_all(&output)?;
            std::fs::write(&file, &v.zip).with_context(|| format!("writing {}", file.display()))?;
            if json {
                let doc = serde_json::json!({"file": file, "provenance": v.provenance});
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{}", file.display());
            }
        }
        Cmd::Verify {
            spec,
            proof,
            status,
            json,
        } => {
            let reg = config.registry(cli.registry.as_deref())?;
            let v = match proof {
                Some(proof) => {
                    let archive =
                        std::fs::read(&spec).with_context(|| format!("reading {spec}"))?;
                    let proof_bytes = std::fs::read(&proof)
                        .with_context(|| format!("reading {}", proof.display()))?;
                    verify_offline(reg, &state, &archive, &proof_bytes)?
                }
                None => {
                    let (name, select) = dist_spec(&spec, status.stability())?;
                    fetch_verified(reg, &state, &name, &select).await?
                }
            };
            warn_of(&v);
            if json {
                println!("{}", serde_json::to_string_pretty(&v.provenance)?);
            } else {
                print_provenance(&v);
            }
        }
        Cmd::Install {
            spec,
            proof,
            repin,
            status,
            pg,
            json,
        } => {
            let ctx = context(config, state, cli.registry, &pg, json)?;
            let opts = InstallOptions {
                stability: status.stability(),
                proof,
                repin,
            };
            let done = ctx.install(&spec, &opts).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            } else {
                print_installed(&done, "installed");
            }
        }
        Cmd::Check { name, pg } => {
            let ctx = context(config, state, cli.registry, &pg, false)?;
            ctx.check(&name, &pg.conn())?;
            println!("{name}: all tests passed");
        }
        Cmd::Load {
            name,
            schema,
            cascade,
            pg,
        } => {
            let ctx = context(config, state, cli.registry, &pg, false)?;
            for ext in ctx.load(&name, &pg.conn(), schema.as_deref(), cascade)? {
                println!("CREATE EXTENSION {ext}");
            }
        }
        Cmd::Unload { name, cascade, pg } => {
            let ctx = context(config, state, cli.registry, &pg, false)?;
            for ext in ctx.unload(&name, &pg.conn(), cascade)? {
                println!("DROP EXTENSION {ext}");
            }
        }
        Cmd::Uninstall { name, pg } => {
            let ctx = context(config, state, cli.registry, &pg, false)?;
            let gone = ctx.uninstall(&name)?;
            print_installed(&gone, "uninstalled");
        }
        Cmd::List { pg, json } => {
            let ctx = context(config, state, cli.registry, &pg, true)?;
            let all = ctx.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            }
            for i in all.iter().filter(|_| !json) {
                let from = match &i.provenance {
                    Some(p) => format!(
                        "{} entry {} by {}, {} cosigner(s)",
                        p.origin,
                        p.index,
                        p.publisher,
                        p.cosigners.len()
                    ),
                    None => format!("{} (local, unverified)", i.source),
                };
                println!(
                    "{} {} [{}] from {from}",
                    i.dist,
                    i.version,
                    i.extensions.join(", ")
                );
            }
        }
        Cmd::Upgrade {
            names,
            status,
            pg,
            json,
        } => {
            let ctx = context(config, state, cli.registry, &pg, json)?;
            let conn = pg.dbname.is_some().then(|| pg.conn());
            let done = ctx
                .upgrade(&names, status.stability(), conn.as_ref())
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&done)?);
            }
            for u in done.iter().filter(|_| !json) {
                if u.from == u.to {
                    println!("{} {} is the newest allowed", u.dist, u.from);
                } else {
                    println!("{} {} -> {}", u.dist, u.from, u.to);
                    for e in &u.updated {
                        println!("  ALTER EXTENSION {e} UPDATE");
                    }
                }
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
