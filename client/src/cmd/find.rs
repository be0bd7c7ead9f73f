//! Finding and proving releases: `pgext search`, `info`, `download` and `verify`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use pgext_spec::api;

use super::Env;
use super::install::StatusArgs;
use crate::request::{Select, Stability, Target};
use crate::verify::{Remote, VerifiedRelease, fetch_verified, verify_offline};

#[derive(Subcommand)]
pub(crate) enum Cmd {
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
}

pub(crate) async fn run(cmd: Cmd, env: Env) -> anyhow::Result<()> {
    match cmd {
        Cmd::Search {
            words,
            within,
            offset,
            limit,
            json,
        } => {
            let req = crate::ops::SearchRequest {
                kind: within.clone(),
                query: words.join(" "),
                offset,
                limit,
            };
            // Words naming an owned name go to the owner alone (`spec/access.md`).
            let reg = match words.iter().find(|w| env.config.owner(w).is_some()) {
                Some(w) => env.route(w)?,
                None => env.registry()?,
            };
            let mut page = crate::ops::search(reg, &req).await?;
            crate::ops::drop_foreign_hits(&env.config, reg, &mut page, &mut |w| {
                eprintln!("warning: {w}");
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                print_hits(&page, &within);
            }
        }
        Cmd::Info { name, json } => {
            let doc: api::Dist = Remote::new(env.route(&name)?)
                .json(&format!("/api/v1/dists/{name}"))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                println!("{} (owners: {})", doc.name, doc.owners.join(", "));
                for r in &doc.releases {
                    let yank = if r.yanked { " yanked" } else { "" };
                    println!(
                        "  {} {} by {} (log entry {}){yank}",
                        r.version,
                        r.status.as_str(),
                        r.user,
                        r.index
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
            let (name, select) = dist_spec(&spec, status.stability())?;
            let v = fetch_verified(env.route(&name)?, &env.state, &name, &select).await?;
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
            let v = match proof {
                Some(proof) => {
                    let archive =
                        std::fs::read(&spec).with_context(|| format!("reading {spec}"))?;
                    let proof_bytes = std::fs::read(&proof)
                        .with_context(|| format!("reading {}", proof.display()))?;
                    verify_offline(env.registry()?, &env.state, &archive, &proof_bytes)?
                }
                None => {
                    let (name, select) = dist_spec(&spec, status.stability())?;
                    fetch_verified(env.route(&name)?, &env.state, &name, &select).await?
                }
            };
            warn_of(&v);
            if json {
                println!("{}", serde_json::to_string_pretty(&v.provenance)?);
            } else {
                print_provenance(&v);
            }
        }
    }
    Ok(())
}

/// A registry dist request: `name`, `name@1.2.3`, `name>=1.2`.
fn dist_spec(spec: &str, stability: Stability) -> anyhow::Result<(String, Select)> {
    match crate::request::parse(spec)? {
        Target::Dist { name, want } => Ok((name, Select { want, stability })),
        _ => bail!(
            "{spec} is a local path: name a distribution (or give --proof to verify an archive)"
        ),
    }
}

pub(crate) fn warn_of(v: &VerifiedRelease) {
    if let Some(w) = &v.warning {
        eprintln!("warning: {w}");
    }
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
    if let Some(c) = &p.ci {
        let opt = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map_or(String::new(), |v| format!(", {name} {v}"))
        };
        println!(
            "  built in CI   {}{}{}{}{} (issuer {}; no long-lived key signed it)",
            c.repository,
            opt("workflow", &c.workflow),
            opt("ref", &c.git_ref),
            opt("commit", &c.sha),
            opt("run", &c.run),
            c.issuer
        );
    }
    if let Some(r) = &p.yanked {
        println!("  warning: this version is yanked: {r}");
    }
}

/// One line per hit (name and version), then its excerpt without markup.
fn print_hits(page: &api::SearchPage, within: &str) {
    for h in &page.hits {
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
    println!("({} of {} shown)", page.hits.len(), page.count);
}
