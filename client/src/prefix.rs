//! Rootless installs (`spec/client.md`, Rootless installs): PostgreSQL 18 looks for control
//! files along `extension_control_path` and for libraries along `dynamic_library_path`, so an
//! install below a folder the user owns works once both name it.

use std::path::Path;

use pgext_spec::prereqs::Version;

use crate::Error;
use crate::pg::{Conn, PgInstall, psql};

/// The first PostgreSQL major with `extension_control_path`.
const FIRST_MAJOR: u64 = 18;

/// The settings a prefix needs: each parameter, the entry to put first, and its default.
pub fn settings(prefix: &Path) -> [(&'static str, String, &'static str); 2] {
    [
        // Each entry but `$system` gets `/extension` appended by the server.
        (
            "extension_control_path",
            prefix.join("share").display().to_string(),
            "$system",
        ),
        (
            "dynamic_library_path",
            prefix.join("lib").display().to_string(),
            "$libdir",
        ),
    ]
}

/// Checks that `pg` can load extensions from a prefix.
///
/// # Errors
/// [`Error::Install`] for a PostgreSQL before 18.
pub fn check_supported(pg: &PgInstall) -> Result<(), Error> {
    match Version::of_postgres(&pg.version) {
        Some(v) if v.0.major >= FIRST_MAJOR => Ok(()),
        _ => Err(Error::Install(format!(
            "--prefix needs PostgreSQL {FIRST_MAJOR} or later (extension_control_path); {} is {}",
            pg.pg_config.display(),
            pg.version
        ))),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The SQL that puts the prefix first in both paths, given their current values (`SHOW`);
/// nothing for a path that already has it.
pub fn statements(prefix: &Path, current: &[String; 2]) -> Vec<String> {
    settings(prefix)
        .iter()
        .zip(current)
        .filter(|((_, entry, _), now)| !now.split(':').any(|e| e == entry))
        .map(|((name, entry, default), now)| {
            let rest = if now.trim().is_empty() {
                default
            } else {
                now.trim()
            };
            format!(
                "ALTER SYSTEM SET {name} = {}",
                quote(&format!("{entry}:{rest}"))
            )
        })
        .collect()
}

/// Sets both paths with `ALTER SYSTEM` in the server `conn` reaches, and reloads its
/// configuration; returns the statements run.
///
/// # Errors
/// [`Error::Postgres`] when the server refuses (a superuser is needed).
pub fn apply(pg: &PgInstall, conn: &Conn, prefix: &Path) -> Result<Vec<String>, Error> {
    let [(a, _, _), (b, _, _)] = settings(prefix);
    let current = [
        psql(pg, conn, &format!("SHOW {a}"))?,
        psql(pg, conn, &format!("SHOW {b}"))?,
    ];
    let sql = statements(prefix, &current);
    for s in &sql {
        psql(pg, conn, s)?;
    }
    if !sql.is_empty() {
        psql(pg, conn, "SELECT pg_reload_conf()")?;
    }
    Ok(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_goes_first_once() {
        let p = Path::new("/home/u/pg ext");
        let now = ["$system".to_string(), "$libdir".to_string()];
        assert_eq!(
            statements(p, &now),
            vec![
                "ALTER SYSTEM SET extension_control_path = '/home/u/pg ext/share:$system'",
                "ALTER SYSTEM SET dynamic_library_path = '/home/u/pg ext/lib:$libdir'",
            ]
        );
        let set = [
            "/home/u/pg ext/share:$system".to_string(),
            "/opt/x/lib:/home/u/pg ext/lib:$libdir".to_string(),
        ];
        assert!(statements(p, &set).is_empty());
        let q = Path::new("/it's");
        assert!(statements(q, &now)[0].contains("'/it''s/share:$system'"));
    }
}
