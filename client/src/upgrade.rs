//! `pgext upgrade`: each installed dist to its newest allowed release, verified and installed
//! as `install` does, its extensions updated in a database when one is given.

use serde::Serialize;

use crate::Error;
use crate::installed::Installed;
use crate::ops::Context;
use crate::pg::{Conn, ident, psql};
use crate::request::{Select, Stability, Want};

/// An upgrade done (or found unnecessary).
#[derive(Debug, Clone, Serialize)]
pub struct Upgrade {
    /// Distribution.
    pub dist: String,
    /// Version before.
    pub from: String,
    /// Version now.
    pub to: String,
    /// Extensions updated with `ALTER EXTENSION … UPDATE` in the database given.
    pub updated: Vec<String>,
}

impl Context {
    /// Upgrades the named dists (every registry-installed one when `names` is empty) to their
    /// newest allowed release, verified like an install; the files the old version wrote and
    /// the new one does not are removed. With a database, each extension of the dist created
    /// there is brought to the new default version (`ALTER EXTENSION … UPDATE`).
    ///
    /// # Errors
    /// The first failure; dists upgraded before it stay upgraded.
    pub async fn upgrade(
        &self,
        names: &[String],
        stability: Stability,
        conn: Option<&Conn>,
    ) -> Result<Vec<Upgrade>, Error> {
        let records: Vec<Installed> = if names.is_empty() {
            self.list()?
                .into_iter()
                .filter(|r| r.provenance.is_some())
                .collect()
        } else {
            names
                .iter()
                .map(|n| self.installed(n))
                .collect::<Result<_, _>>()?
        };
        let mut done = Vec::new();
        for old in records {
            let Some(p) = &old.provenance else {
                return Err(Error::Install(format!(
                    "{} was installed from {}, not from a registry: install the new version from its source",
                    old.dist, old.source
                )));
            };
            let select = Select {
                want: Want::Newest,
                stability,
            };
            let reg = self.config.registry(Some(&p.registry))?;
            let remote = crate::verify::Remote::new(reg);
            let doc: pgext_spec::api::Dist =
                remote.json(&format!("/api/v1/dists/{}", old.dist)).await?;
            let newest = crate::request::choose(&doc, &old.dist, &select)?;
            let to = newest.release.version;
            let newer = match (
                semver::Version::parse(&to),
                semver::Version::parse(&old.version),
            ) {
                (Ok(a), Ok(b)) => a > b,
                _ => false,
            };
            if !newer {
                done.push(Upgrade {
                    dist: old.dist.clone(),
                    from: old.version.clone(),
                    to: old.version.clone(),
                    updated: Vec::new(),
                });
                continue;
            }
            let select = Select {
                want: Want::Exact(to.clone()),
                stability,
            };
            let v = self.fetch(&old.dist, &select, false).await?;
            // A binary when the trusted builders attest one, as `install` does.
            let new = match self
                .binary_for(&old.dist, &v, &crate::ops::InstallOptions::default())
                .await?
            {
                Some(b) => self.install_binary(&v, &b)?,
                None => self.install_verified(&v)?,
            };
            let mut updated = Vec::new();
            if let Some(conn) = conn {
                for ext in &new.extensions {
                    let present = psql(
                        &self.pg,
                        conn,
                        &format!(
                            "SELECT count(*) FROM pg_extension WHERE extname = '{}'",
                            ext.replace('\'', "''")
                        ),
                    )?;
                    if present == "1" {
                        psql(
                            &self.pg,
                            conn,
                            &format!("ALTER EXTENSION {} UPDATE", ident(ext)),
                        )?;
                        updated.push(ext.clone());
                    }
                }
            }
            done.push(Upgrade {
                dist: old.dist.clone(),
                from: old.version.clone(),
                to,
                updated,
            });
        }
        Ok(done)
    }
}
