//! Installing into PostgreSQL: `pgext install`, `check`, `load`, `unload`, `uninstall`,
//! `list` and `upgrade`.

use std::path::PathBuf;

use clap::Subcommand;

use super::Env;
pub(crate) use super::pgargs::{PgArgs, confirm, context, context_for};
use crate::installed::Installed;
use crate::ops::{Context, InstallOptions, Kind};
use crate::plan::{Follow, Root};
use crate::request::Stability;
use crate::request::Target;

#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Verify, build and install releases with what they require (or a local directory or
    /// archive).
    #[command(disable_help_flag = true)]
    Install {
        /// `name`, `name@1.2.3`, `name>=1.2` (several may be named), a directory, or an archive.
        #[arg(required = true, num_args = 1..)]
        specs: Vec<String>,
        /// A tlog-proof file: install the archive SPEC verified offline.
        #[arg(long)]
        proof: Option<PathBuf>,
        /// Install from --registry though the name is pinned to another registry.
        #[arg(long)]
        repin: bool,
        /// Install a binary package the trusted builders attest, or fail: never build.
        #[arg(long, conflicts_with = "source")]
        binary: bool,
        /// Build from source even when a binary package is attested.
        #[arg(long)]
        source: bool,
        /// Install what the releases recommend, too.
        #[arg(long)]
        with_recommends: bool,
        /// Install only the dists named (PostgreSQL's version is still checked).
        #[arg(long)]
        no_deps: bool,
        /// Print the plan and stop.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask before installing.
        #[arg(short = 'y', long)]
        yes: bool,
        /// Install below DIR, without root, for PostgreSQL 18's extension_control_path and
        /// dynamic_library_path (printed, or set with --alter-system).
        #[arg(long, value_name = "DIR")]
        prefix: Option<PathBuf>,
        /// With --prefix: set both paths with ALTER SYSTEM (a superuser connection) and reload.
        #[arg(long, requires = "prefix")]
        alter_system: bool,
        /// Add the libraries the installed dists need in shared_preload_libraries with ALTER
        /// SYSTEM (a superuser connection); PostgreSQL loads them when it restarts.
        #[arg(long)]
        configure: bool,
        /// Install the OS packages the plan's dists need (the registry's mapping of their
        /// purls), asking first unless --yes.
        #[arg(long)]
        install_system_deps: bool,
        /// Install releases a known vulnerability affects (after telling which).
        #[arg(long)]
        allow_vulnerable: bool,
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
        /// Add what must be in shared_preload_libraries with ALTER SYSTEM (a superuser
        /// connection); the extensions are created after PostgreSQL restarts.
        #[arg(long)]
        configure: bool,
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
        /// Do not ask the registries which installs known vulnerabilities affect.
        #[arg(long)]
        offline: bool,
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
pub(crate) struct StatusArgs {
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
    pub(crate) fn stability(&self) -> Stability {
        if self.unstable {
            Stability::Unstable
        } else if self.testing {
            Stability::Testing
        } else {
            Stability::Stable
        }
    }
}

pub(crate) fn print_installed(i: &Installed, what: &str) {
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
    if i.kind == "binary" {
        println!("  binary package attested by {}", i.builders.join(", "));
    }
}

/// How `install` reports and confirms.
struct Ask {
    dry_run: bool,
    yes: bool,
    json: bool,
    system_deps: bool,
    allow_vulnerable: bool,
}

/// `pgext install`: a local directory or archive as it is; registry dists through a plan of
/// what they require, printed (and confirmed on a terminal) before anything is installed.
async fn install(
    ctx: &Context,
    specs: &[String],
    opts: &InstallOptions,
    follow: Follow,
    ask: Ask,
) -> anyhow::Result<Vec<Installed>> {
    let mut roots = Vec::new();
    for spec in specs {
        match crate::request::parse(spec).map_err(|e| anyhow::anyhow!(e.0))? {
            Target::Dist { name, want } if opts.proof.is_none() => {
                let registry = Some(ctx.registry_for(&name, opts.repin)?);
                roots.push(Root {
                    name,
                    want,
                    registry,
                    kind: None,
                });
            }
            _ if specs.len() == 1 && !ask.dry_run => {
                // A local directory or archive (or one verified by --proof): built as it is.
                let done = ctx.install(spec, opts).await?;
                if ask.json {
                    println!("{}", serde_json::to_string_pretty(&done)?);
                } else {
                    print_installed(&done, "installed");
                }
                return Ok(vec![done]);
            }
            _ => anyhow::bail!(
                "{spec}: a local directory or archive (or --proof) is installed alone and without a plan; name registry dists to plan them"
            ),
        }
    }
    let plan = ctx.plan(&roots, follow, opts.kind).await?;
    let mut view = plan.view();
    let sys = ctx.plan_packages(&plan).await?;
    view.notes.extend(sys.lines());
    view.advisories = plan.advisories().await?;
    if ask.dry_run {
        if ask.json {
            println!("{}", serde_json::to_string_pretty(&view)?);
        } else {
            print!("{view}");
        }
        return Ok(Vec::new());
    }
    if !ask.json {
        print!("{view}");
    }
    if !ask.allow_vulnerable && !view.advisories.is_empty() {
        let found: Vec<String> = view
            .advisories
            .iter()
            .map(|f| match f.fixed.as_slice() {
                [] => format!("{} {} by {}", f.dist, f.version, f.id),
                v => format!(
                    "{} {} by {} (fixed in {})",
                    f.dist,
                    f.version,
                    f.id,
                    v.join(", ")
                ),
            })
            .collect();
        anyhow::bail!(
            "known vulnerabilities affect {}: install a fixed version or pass --allow-vulnerable; nothing was installed",
            found.join("; ")
        );
    }
    // One question covers the OS packages and the plan: nothing is installed on a no.
    let command = sys.command();
    if let (Some(c), false) = (&command, ask.system_deps) {
        anyhow::bail!(
            "OS packages are missing: install them (`{c}`) or pass --install-system-deps; nothing was installed"
        );
    }
    let question = command.map_or("Install?".into(), |c| format!("Run `{c}`, then install?"));
    if !ask.json && !ask.yes && !confirm(&question)? {
        anyhow::bail!("nothing was installed");
    }
    sys.install()?;
    let done = ctx.apply(&plan)?;
    if opts.repin {
        for r in &roots {
            if let Some(reg) = &r.registry {
                crate::installed::repin(&ctx.state, &r.name, &reg.name)?;
            }
        }
    }
    if ask.json {
        // The first named dist's record, as a single install prints it, with every record the
        // plan wrote and what it kept.
        let first = roots.first().map(|r| r.name.as_str()).unwrap_or_default();
        let main = done
            .iter()
            .find(|i| i.dist.eq_ignore_ascii_case(first))
            .or(done.last());
        let mut doc = serde_json::to_value(main)?;
        if let Some(o) = doc.as_object_mut() {
            o.insert("installed".into(), serde_json::to_value(&done)?);
            o.insert("kept".into(), serde_json::to_value(&view.kept)?);
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for i in &done {
            print_installed(i, "installed");
        }
    }
    Ok(done)
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Install {
            specs,
            proof,
            repin,
            binary,
            source,
            with_recommends,
            no_deps,
            dry_run,
            yes,
            prefix,
            alter_system,
            configure,
            install_system_deps,
            allow_vulnerable,
            status,
            pg,
            json,
        } => {
            let mut ctx = context(env, &pg, json)?;
            if let Some(p) = &prefix {
                crate::prefix::check_supported(&ctx.pg)?;
                // A dry run writes nothing, not even the folder.
                ctx.prefix = Some(if dry_run {
                    std::path::absolute(p)?
                } else {
                    std::fs::create_dir_all(p)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                    std::fs::canonicalize(p)?
                });
            }
            let opts = InstallOptions {
                stability: status.stability(),
                proof,
                repin,
                kind: match (binary, source) {
                    (true, _) => Kind::Binary,
                    (_, true) => Kind::Source,
                    _ => Kind::Auto,
                },
            };
            let follow = Follow {
                stability: opts.stability,
                recommends: with_recommends,
                test: false,
                no_deps,
                complete: false,
            };
            let ask = Ask {
                dry_run,
                yes,
                json,
                system_deps: install_system_deps,
                allow_vulnerable,
            };
            let done = install(&ctx, &specs, &opts, follow, ask).await?;
            let libs = crate::preload::of_installed(&done);
            if configure {
                for line in crate::preload::configure_installed(&ctx.pg, &pg.conn(), &libs)? {
                    eprintln!("{line}");
                }
            } else if !json {
                for i in done.iter().filter(|i| !i.preload.is_empty()) {
                    eprintln!("note: {}", crate::preload::advice(&i.dist, &i.preload));
                }
            }
            if let (Some(p), false) = (&ctx.prefix, dry_run) {
                if alter_system {
                    for s in crate::prefix::apply(&ctx.pg, &pg.conn(), p)? {
                        eprintln!("{s}");
                    }
                } else if !json {
                    eprintln!(
                        "note: PostgreSQL finds what is below {} once a superuser runs (or puts in postgresql.conf):",
                        p.display()
                    );
                    for (name, entry, default) in crate::prefix::settings(p) {
                        eprintln!("  ALTER SYSTEM SET {name} = '{entry}:{default}';");
                    }
                    eprintln!("  SELECT pg_reload_conf();");
                }
            }
        }
        Cmd::Check { name, pg } => {
            let ctx = context(env, &pg, false)?;
            match ctx.check(&name, &pg.conn()).await? {
                crate::check::Checked::InPlace => println!("{name}: all tests passed"),
                crate::check::Checked::Scratch(with) => println!(
                    "{name}: all tests passed (in a throwaway PostgreSQL with {})",
                    with.join(", ")
                ),
            }
        }
        Cmd::Load {
            name,
            schema,
            cascade,
            configure,
            pg,
        } => {
            let ctx = context(env, &pg, false)?;
            let done = ctx.load(&name, &pg.conn(), schema.as_deref(), cascade, configure)?;
            for ext in &done.created {
                println!("CREATE EXTENSION {ext}");
            }
            if !done.pending.is_empty() {
                if let Some(sql) = &done.configured {
                    println!("{sql}");
                }
                println!(
                    "restart PostgreSQL to load {}, then run `pgext load {name}` again: nothing was created",
                    done.pending.join(", ")
                );
            }
        }
        Cmd::Unload { name, cascade, pg } => {
            let ctx = context(env, &pg, false)?;
            for ext in ctx.unload(&name, &pg.conn(), cascade)? {
                println!("DROP EXTENSION {ext}");
            }
        }
        Cmd::Uninstall { name, pg } => {
            let ctx = context(env, &pg, false)?;
            let gone = ctx.uninstall(&name)?;
            print_installed(&gone, "uninstalled");
        }
        Cmd::List { pg, json, offline } => {
            let ctx = context(env, &pg, true)?;
            let all = ctx.list()?;
            let vulnerable = super::advisory::marks(&ctx, &all, offline).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&vulnerable.json(&all)?)?);
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
                let kind = if i.kind == "binary" {
                    format!("; binary built by {}", i.builders.join(", "))
                } else {
                    String::new()
                };
                println!(
                    "{} {} [{}] from {from}{kind}{}",
                    i.dist,
                    i.version,
                    i.extensions.join(", "),
                    vulnerable.mark(i)
                );
            }
        }
        Cmd::Upgrade {
            names,
            status,
            pg,
            json,
        } => {
            let ctx = context(env, &pg, json)?;
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
