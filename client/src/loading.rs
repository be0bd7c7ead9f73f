//! Commands on an installed dist in a database: `load` (`CREATE EXTENSION`, with `--cascade`
//! the dists it required first) and `unload`.

use crate::Error;
use crate::installed::Installed;
use crate::ops::Context;
use crate::pg::{Conn, ident, psql};

/// What `load` did.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Extensions created, in order.
    pub created: Vec<String>,
    /// With `--configure`, the `ALTER SYSTEM` that added what had to be preloaded: nothing
    /// was created, the server must restart first.
    pub configured: Option<String>,
    /// The libraries that wait for that restart.
    pub pending: Vec<String>,
}

impl Context {
    /// `CREATE EXTENSION` for each control file the install of `name` wrote (its extension
    /// names, which may differ from the dist's), in `conn`'s database. When an installed dist
    /// needs a library in `shared_preload_libraries` that the server did not load, nothing is
    /// created: the error says what to do, or with `configure` the library is added with
    /// `ALTER SYSTEM` and the restart is left to the caller.
    ///
    /// # Errors
    /// When it is not installed, a library is not preloaded, or PostgreSQL refuses.
    pub fn load(
        &self,
        name: &str,
        conn: &Conn,
        schema: Option<&str>,
        cascade: bool,
        configure: bool,
    ) -> Result<Loaded, Error> {
        let mut order = Vec::new();
        self.collect(name, cascade, &mut Vec::new(), &mut order)?;
        // Preloading is judged before anything is created.
        let needed: Vec<(String, Vec<String>)> = order
            .iter()
            .filter(|r| !r.preload.is_empty())
            .map(|r| (r.dist.clone(), r.preload.clone()))
            .collect();
        if !needed.is_empty() {
            let value = crate::preload::loaded(&self.pg, conn)?;
            let mut libs = Vec::new();
            let mut first = None;
            for (dist, want) in &needed {
                let miss = crate::preload::missing(&value, want);
                if !miss.is_empty() && first.is_none() {
                    first = Some((dist.clone(), miss.clone()));
                }
                for l in miss {
                    if !libs.contains(&l) {
                        libs.push(l);
                    }
                }
            }
            if let Some((dist, miss)) = first {
                if !configure {
                    return Err(Error::Install(format!(
                        "{}; nothing was created",
                        crate::preload::advice(&dist, &miss)
                    )));
                }
                return Ok(Loaded {
                    created: Vec::new(),
                    configured: crate::preload::configure(&self.pg, conn, &libs)?,
                    pending: libs,
                });
            }
        }
        let mut created = Vec::new();
        for record in &order {
            for ext in &record.extensions {
                let mut sql = format!("CREATE EXTENSION IF NOT EXISTS {}", ident(ext));
                if let Some(s) = schema {
                    sql.push_str(&format!(" SCHEMA {}", ident(s)));
                }
                if cascade {
                    sql.push_str(" CASCADE");
                }
                psql(&self.pg, conn, &sql)?;
                created.push(ext.clone());
            }
        }
        Ok(Loaded {
            created,
            ..Loaded::default()
        })
    }

    /// The installed record of `name` after (with `cascade`) those its plan required, each
    /// once, appended to `order`.
    fn collect(
        &self,
        name: &str,
        cascade: bool,
        seen: &mut Vec<String>,
        order: &mut Vec<Installed>,
    ) -> Result<(), Error> {
        let record = self.installed(name)?;
        let key = record.dist.to_ascii_lowercase();
        if seen.contains(&key) {
            return Ok(());
        }
        seen.push(key);
        if cascade {
            for dep in &record.requires {
                self.collect(dep, cascade, seen, order)?;
            }
        }
        order.push(record);
        Ok(())
    }

    /// `DROP EXTENSION` for the extensions `load` created, in reverse order.
    ///
    /// # Errors
    /// When it is not installed, or PostgreSQL refuses (objects depend on it: `cascade`).
    pub fn unload(&self, name: &str, conn: &Conn, cascade: bool) -> Result<Vec<String>, Error> {
        let record = self.installed(name)?;
        for ext in record.extensions.iter().rev() {
            let cascade = if cascade { " CASCADE" } else { "" };
            psql(
                &self.pg,
                conn,
                &format!("DROP EXTENSION IF EXISTS {}{cascade}", ident(ext)),
            )?;
        }
        Ok(record.extensions)
    }
}
