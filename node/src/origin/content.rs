//! What releases contain, read from the blob store by content address: release zips, parsed
//! METAs and the documentation found in each zip. One per node, shared by every origin (blobs
//! are content-addressed, so a META or a zip is the same whichever log names it).
//!
//! Parsed METAs and documentation lists are kept in bounded caches: they depend on the bytes
//! alone. A blob that is missing or damaged is an error and an alarm (a log line and
//! `pgext_blob_faults_total`), never empty content. Everything here blocks on the disk: callers
//! run it on the blocking pool ([`super::blocking`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pgext_spec::authority::{DistState, ReleaseState};
use pgext_spec::meta::Meta;
use pgext_spec::requirements::Requirements;

use super::blobs::{BlobError, Blobs};
use super::docs::{self, ReleaseDocs};
use crate::metrics::Metrics;

/// Most entries each cache keeps; past it, the cache starts over (the working set of a node is
/// its recent and popular releases, which come back at once).
const CACHE_ENTRIES: usize = 16_384;

/// A small map that forgets everything when full.
#[derive(Debug)]
struct Bounded<V> {
    map: Mutex<HashMap<String, V>>,
}

impl<V: Clone> Bounded<V> {
    fn new() -> Bounded<V> {
        Bounded {
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn put(&self, key: &str, v: V) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() >= CACHE_ENTRIES {
            m.clear();
        }
        m.insert(key.to_string(), v);
    }
}

/// Release content of a node.
#[derive(Debug)]
pub struct Content {
    blobs: Blobs,
    metrics: Arc<Metrics>,
    curated: super::categories::Curated,
    metas: Bounded<Arc<Meta>>,
    requirements: Bounded<Arc<Requirements>>,
    docs: Bounded<Arc<ReleaseDocs>>,
}

impl Content {
    /// Content read from `blobs`, faults counted in `metrics`.
    pub fn new(blobs: Blobs, metrics: Arc<Metrics>) -> Content {
        Content {
            blobs,
            metrics,
            curated: super::categories::Curated::builtin(),
            metas: Bounded::new(),
            requirements: Bounded::new(),
            docs: Bounded::new(),
        }
    }

    /// The same content, its categories curated by `curated`.
    #[must_use]
    pub fn with_curated(mut self, curated: super::categories::Curated) -> Content {
        self.curated = curated;
        self
    }

    /// The categories of a distribution: those of its headline release's META, or the
    /// curated mapping's (`categories.rs`); none when nothing is visible.
    ///
    /// # Errors
    /// When the META cannot be read.
    pub fn categories(&self, d: &DistState) -> Result<Vec<&'static str>, BlobError> {
        let Some(r) = super::releases::headline(d) else {
            return Ok(Vec::new());
        };
        let meta = self.meta(&r.release.meta_sha256)?;
        Ok(self.curated.of(&d.name, &meta))
    }

    /// The blob store.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Raises the alarm for a blob fault and passes it on.
    pub fn alarm(&self, e: BlobError) -> BlobError {
        if e.is_fault() {
            Metrics::inc(&self.metrics.blob_faults);
            tracing::error!("BLOB FAULT: {e}; run `pgext-node fsck` with the node stopped");
        }
        e
    }

    /// A blob's bytes, checked against their hash.
    ///
    /// # Errors
    /// When it is missing, damaged or unreadable (an alarm).
    pub fn get(&self, sha256: &str) -> Result<Vec<u8>, BlobError> {
        self.blobs.get(sha256).map_err(|e| self.alarm(e))
    }

    /// The parsed META with this SHA-256.
    ///
    /// # Errors
    /// When the blob is missing or damaged, or no longer parses as the META it was when it was
    /// published (an alarm either way).
    pub fn meta(&self, sha256: &str) -> Result<Arc<Meta>, BlobError> {
        if let Some(m) = self.metas.get(sha256) {
            return Ok(m);
        }
        let bytes = self.get(sha256)?;
        let meta = match pgext_spec::meta::read_stored_meta(&bytes) {
            Ok(m) => Arc::new(m),
            Err(why) => {
                return Err(self.alarm(BlobError::Damaged(
                    sha256.to_string(),
                    format!("a META that does not parse ({why})"),
                )));
            }
        };
        self.metas.put(sha256, meta.clone());
        Ok(meta)
    }

    /// What the release whose META has this SHA-256 needs, read on first use and kept (a v1
    /// META's conversion validates it twice).
    ///
    /// # Errors
    /// As [`Content::meta`].
    pub fn requirements(&self, meta_sha256: &str) -> Result<Arc<Requirements>, BlobError> {
        if let Some(r) = self.requirements.get(meta_sha256) {
            return Ok(r);
        }
        let r = Arc::new(Requirements::from_meta(&*self.meta(meta_sha256)?));
        self.requirements.put(meta_sha256, r.clone());
        Ok(r)
    }

    /// The documentation of a release, found in its zip on first use and kept.
    ///
    /// # Errors
    /// When the zip or META cannot be read.
    pub fn docs(&self, dist: &str, r: &ReleaseState) -> Result<Arc<ReleaseDocs>, BlobError> {
        let key = &r.release.sha256;
        if let Some(d) = self.docs.get(key) {
            return Ok(d);
        }
        let zip = self.get(key)?;
        let meta = self.meta(&r.release.meta_sha256)?;
        let found = Arc::new(ReleaseDocs::find(
            &zip,
            &docs::base_name(dist, &r.release.version),
            &meta,
        ));
        self.docs.put(key, found.clone());
        Ok(found)
    }

    /// A release's README, if it has one.
    ///
    /// # Errors
    /// When the zip cannot be read.
    pub fn readme(&self, dist: &str, r: &ReleaseState) -> Result<Option<Vec<u8>>, BlobError> {
        let zip = self.get(&r.release.sha256)?;
        Ok(docs::readme_of(
            &zip,
            &docs::base_name(dist, &r.release.version),
        ))
    }

    /// One member of a release zip by its path inside the release folder.
    ///
    /// # Errors
    /// When the zip cannot be read.
    pub fn member(
        &self,
        dist: &str,
        r: &ReleaseState,
        file: &str,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let zip = self.get(&r.release.sha256)?;
        Ok(docs::read_member(
            &zip,
            &docs::base_name(dist, &r.release.version),
            file,
        ))
    }
}
