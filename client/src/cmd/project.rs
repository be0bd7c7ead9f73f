//! An extension project: `pgext init`, `validate` and `bundle`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
        /// Warnings (a SQL file the build may generate) are errors too.
        #[arg(long)]
        strict: bool,
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
}

pub(crate) fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Init {
            name,
            c,
            sql: _,
            meta_v1,
        } => {
            let template = if c {
                crate::project::Template::C
            } else {
                crate::project::Template::Sql
            };
            let root = crate::project::init(&std::env::current_dir()?, &name, template, meta_v1)?;
            println!("created {}", root.display());
            println!(
                "next: cd {name} && make && make install && make installcheck, then pgext publish"
            );
        }
        Cmd::Validate { path, json, strict } => {
            let problems = crate::project::validate(&path)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&problems)?);
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
            }
            let blocking = problems.iter().filter(|p| p.blocks(strict)).count();
            if blocking > 0 {
                bail!("{blocking} problem(s) in {}", path.display());
            }
            if !json {
                let warned = match problems.len() {
                    0 => String::new(),
                    n => format!(" ({n} warning(s))"),
                };
                println!("{} is valid{warned}", path.display());
            }
        }
        Cmd::Bundle { path, output, json } => {
            let p = crate::project::bundle(&path)?;
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
    }
    Ok(())
}
