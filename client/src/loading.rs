//! Commands on an installed dist in a database: `load` (`CREATE EXTENSION`, with `--cascade`
//! the dists it required first) and `unload`.

use crate::Error;
use crate::ops::Context;
use crate::pg::{Conn, ident, psql};

impl Context {
    /// `CREATE EXTENSION` for each control file the install of `name` wrote (its extension
    /// names, which may differ from the dist's), in `conn`'s database.
    ///
    /// # Errors
    /// When it is not installed, or PostgreSQL refuses.
    pub fn load(
        &self,
        name: &str,
        conn: &Conn,
        schema: Option<&str>,
        cascade: bool,
    ) -> Result<Vec<String>, Error> {
        let mut created = Vec::new();
        let mut seen = Vec::new();
        self.load_into(name, conn, schema, cascade, &mut seen, &mut created)?;
        Ok(created)
    }

    /// `load` of `name`, after (with `cascade`) the installed dists its plan required, each
    /// once; the extensions created are appended to `created`.
    fn load_into(
        &self,
        name: &str,
        conn: &Conn,
        schema: Option<&str>,
        cascade: bool,
        seen: &mut Vec<String>,
        created: &mut Vec<String>,
    ) -> Result<(), Error> {
        let record = self.installed(name)?;
        let key = record.dist.to_ascii_lowercase();
        if seen.contains(&key) {
            return Ok(());
        }
        seen.push(key);
        if cascade {
            for dep in &record.requires {
                self.load_into(dep, conn, schema, cascade, seen, created)?;
            }
        }
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
