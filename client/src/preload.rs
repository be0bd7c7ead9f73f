//! Libraries an extension needs in `shared_preload_libraries` (its META's modules with
//! `"preload": "server"`): told before an install, added with `ALTER SYSTEM` by `--configure`
//! (keeping what the setting holds), and checked by `load`, which refuses with what to do
//! instead of PostgreSQL's error (`spec/requirements.md`, Preloading).

use crate::Error;
use crate::pg::{Conn, PgInstall, psql};

/// The libraries a `shared_preload_libraries` value names (comma-separated, each maybe
/// double-quoted).
pub fn listed(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().trim_matches('"').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Which of `libs` the value does not name (`$libdir/x` counts as `x`).
pub fn missing(value: &str, libs: &[String]) -> Vec<String> {
    let have: Vec<String> = listed(value)
        .into_iter()
        .map(|l| l.trim_start_matches("$libdir/").to_string())
        .collect();
    libs.iter()
        .filter(|l| !have.iter().any(|h| h == *l))
        .cloned()
        .collect()
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `ALTER SYSTEM` that adds `libs` to the current value, keeping what it holds; `None`
/// when it names them all.
pub fn statement(current: &str, libs: &[String]) -> Option<String> {
    let add = missing(current, libs);
    if add.is_empty() {
        return None;
    }
    let mut all = listed(current);
    all.extend(add);
    // One literal per library: a list setting takes `'a,b'` as one library named "a,b".
    let values: Vec<String> = all.iter().map(|l| quote(l)).collect();
    Some(format!(
        "ALTER SYSTEM SET shared_preload_libraries = {}",
        values.join(", ")
    ))
}

/// What a user must do for `dist`'s `libs` to load: the statement, and the restart.
pub fn advice(dist: &str, libs: &[String]) -> String {
    format!(
        "{dist} needs {} in shared_preload_libraries, which takes effect when PostgreSQL restarts: run `pgext load {dist} --configure` (or `pgext install {dist} --configure`), or ALTER SYSTEM SET shared_preload_libraries to include {}, then restart PostgreSQL",
        libs.join(", "),
        libs.join(", ")
    )
}

/// What the server `conn` reaches loaded at its start (`SHOW shared_preload_libraries`: the
/// value changes only at a restart).
///
/// # Errors
/// When PostgreSQL cannot be asked.
pub fn loaded(pg: &PgInstall, conn: &Conn) -> Result<String, Error> {
    psql(pg, conn, "SHOW shared_preload_libraries")
}

/// Adds `libs` to `shared_preload_libraries` with `ALTER SYSTEM` in the server `conn`
/// reaches; returns the statement run, `None` when the configuration names them already.
/// The server loads them at its next restart.
///
/// # Errors
/// [`Error::Postgres`] when the server refuses (a superuser is needed).
pub fn configure(pg: &PgInstall, conn: &Conn, libs: &[String]) -> Result<Option<String>, Error> {
    // The configured value (pending a restart, perhaps), not the running one: a second
    // `--configure` before the restart adds nothing twice.
    let current = psql(
        pg,
        conn,
        "SELECT coalesce((SELECT setting FROM pg_file_settings WHERE name = 'shared_preload_libraries' ORDER BY seqno DESC LIMIT 1), current_setting('shared_preload_libraries'))",
    )?;
    let Some(sql) = statement(&current, libs) else {
        return Ok(None);
    };
    psql(pg, conn, &sql)?;
    Ok(Some(sql))
}

/// The libraries the installed dists `done` need preloaded, each once.
pub fn of_installed(done: &[crate::installed::Installed]) -> Vec<String> {
    let mut libs: Vec<String> = Vec::new();
    for l in done.iter().flat_map(|i| &i.preload) {
        if !libs.contains(l) {
            libs.push(l.clone());
        }
    }
    libs
}

/// `install --configure`: adds `libs` (when there are any) and returns what to tell: the
/// statement run (or that the setting names them already), and the restart the server needs
/// while it has not loaded them.
///
/// # Errors
/// When PostgreSQL refuses or cannot be asked.
pub fn configure_installed(
    pg: &PgInstall,
    conn: &Conn,
    libs: &[String],
) -> Result<Vec<String>, Error> {
    if libs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![match configure(pg, conn, libs)? {
        Some(sql) => sql,
        None => format!("shared_preload_libraries names {} already", libs.join(", ")),
    }];
    if !missing(&loaded(pg, conn)?, libs).is_empty() {
        out.push(format!(
            "restart PostgreSQL to load {}: the extensions can be created after it",
            libs.join(", ")
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn what_is_there_is_kept() {
        assert_eq!(
            statement("", &v(&["needs_preload"])).as_deref(),
            Some("ALTER SYSTEM SET shared_preload_libraries = 'needs_preload'")
        );
        assert_eq!(
            statement("pg_stat_statements, \"auto_explain\"", &v(&["x"])).as_deref(),
            Some(
                "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements', 'auto_explain', 'x'"
            )
        );
        assert_eq!(statement("a,$libdir/x", &v(&["x"])), None);
        assert_eq!(missing("a, b", &v(&["b", "c"])), v(&["c"]));
        assert!(statement("", &v(&["it's"])).unwrap().ends_with("'it''s'"));
    }
}
