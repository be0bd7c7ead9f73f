//! Commands on a data folder other than `run`: `vkey`, `reindex`, `fsck` and `export-pgxn`. All
//! of them are read-only: stores open read-only, no key is created, nothing is deleted, and a
//! folder that is not a data folder (a mistyped `--data`) is an error.

pub mod export;
pub mod fsck;

use crate::config::Config;
use crate::origin::keys::load_log_key;
use crate::origin::replay;
use crate::origin::store::Store;

/// The verifier key of the log in a data folder (`pgext-node vkey`).
///
/// # Errors
/// When the folder holds no log key.
pub fn vkey(config: &Config) -> anyhow::Result<String> {
    Ok(load_log_key(config)?.verifier().to_string())
}

/// Replays the log of a data folder and reports what it holds (`pgext-node reindex`): its
/// size, accounts and distributions.
///
/// # Errors
/// When the folder is not a data folder or the log does not replay cleanly.
pub fn reindex(config: &Config) -> anyhow::Result<(u64, usize, usize)> {
    let key = load_log_key(config)?;
    let store = Store::open_read_only(&config.data.join("db"))?;
    let (registry, size, _) = replay(&store, key.verifier())?;
    Ok((size, registry.accounts().count(), registry.dists().count()))
}
