//! Entries proven included in a registry's current checkpoint: the checkpoint opened with the
//! registry's log key and witness policy once, then each entry asked for checked against it by
//! an inclusion proof. What the registry's documents say about the log (a mapping, an
//! advisory) is believed only as far as the entry they name is proven.

use pgext_spec::entry::Entry;

use crate::trust::RegistryConfig;
use crate::verify::{Remote, check_included, check_quorum, open_with_policy};
use crate::{Error, VerifyError};

/// A registry's checkpoint, opened and meeting its witness policy.
#[derive(Debug)]
pub struct Proven {
    remote: Remote,
    size: u64,
    root: pgext_log::Hash,
}

impl Proven {
    /// Fetches the registry's checkpoint and checks its signatures against the policy.
    ///
    /// # Errors
    /// When no node answers, or the checkpoint does not verify or meet the policy.
    pub async fn open(reg: &RegistryConfig) -> Result<Proven, Error> {
        let remote = Remote::new(reg);
        let note = String::from_utf8(remote.get("/log/checkpoint").await?).map_err(|_| {
            Error::Verify(VerifyError::Malformed("the checkpoint is not UTF-8".into()))
        })?;
        let (signed, cosigners) = open_with_policy(reg, &note)?;
        check_quorum(reg, &cosigners)?;
        Ok(Proven {
            remote,
            size: signed.checkpoint.size,
            root: signed.checkpoint.root,
        })
    }

    /// The registry's nodes.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The checkpoint's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The entry at `index`, proven included in the checkpoint.
    ///
    /// # Errors
    /// When the index is past the checkpoint, no node answers, or the proof fails.
    pub async fn entry(&self, index: u64) -> Result<Entry, Error> {
        if index >= self.size {
            return Err(Error::Verify(VerifyError::Malformed(format!(
                "entry {index} is past the checkpoint (size {})",
                self.size
            ))));
        }
        let entry = self.remote.entry(index).await?;
        let proof = self.remote.inclusion(index, self.size).await?;
        check_included(index, self.size, &entry.to_bytes(), &proof, &self.root)?;
        Ok(entry)
    }
}
