//! A mirror's sync: from its verified size to the newest checkpoint it heard of. Bundles are
//! fetched from peers in parallel and checked to make the signed tree on top of the verified
//! copy; every entry is re-checked against the rules on a copy of the registry state; every
//! blob the entries name is fetched and hash-checked; then tiles, state and the cosigned
//! checkpoint are committed in one synced write, and the cosignature is gossiped. Hashing, rule
//! checks and disk writes run on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::PeerId;
use pgext_log::{
    SignedCheckpoint, StoredHashes, Tile, integrate, leaf_hash, open_checkpoint, parse_bundle,
    tree_hash,
};
use pgext_spec::authority::Registry;
use pgext_spec::entry::Action;
use pgext_spec::signed::{SignedEntry, verify_signatures};
use tracing::{debug, error, info, warn};

use super::fetch::{Wanted, bundles_between, group_blobs};
use super::gossip::Gossip;
use super::{Federation, Mirror};
use crate::origin::blobs::Staged;
use crate::origin::evidence::strip_to_log_signature;
use crate::origin::sequencer::now;
use crate::origin::{self, Origin, evidence};
use crate::p2p::wire::Fault;

/// Bundles and blob groups fetched at once.
const PARALLEL_FETCHES: usize = 8;
/// Shortest time between the starts of two syncs of one mirror. While checkpoints come faster
/// (a busy origin commits a round every few milliseconds), one sync covers many of them; an
/// idle mirror still syncs a new checkpoint at once.
const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// A bundle, who served it, and its bytes.
type Fetched = (Tile, PeerId, Vec<u8>);

/// Entries and tiles that made the signed tree.
#[derive(Debug)]
pub(super) struct Verified {
    /// The index of the first entry.
    from: u64,
    entries: Vec<Vec<u8>>,
    tiles: Vec<(Tile, Vec<u8>)>,
}

impl Federation {
    pub(super) async fn sync_loop(self: Arc<Self>, m: Arc<Mirror>) {
        let mut backoff = Duration::from_millis(100);
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            let target = m.target.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let Some((size, _)) = target else {
                m.wake.notified().await;
                continue;
            };
            if m.origin.halted().is_some() {
                m.wake.notified().await;
                continue;
            }
            if size <= m.origin.size() {
                let mut t = m.target.lock().unwrap_or_else(|e| e.into_inner());
                if t.as_ref().is_some_and(|(n, _)| *n <= m.origin.size()) {
                    *t = None;
                }
                continue;
            }
            if let Some(wait) = last.map(|t| SYNC_INTERVAL.saturating_sub(t.elapsed())) {
                tokio::time::sleep(wait).await;
            }
            // The newest checkpoint heard, waiting included.
            let Some((size, note)) = m.target.lock().unwrap_or_else(|e| e.into_inner()).clone()
            else {
                continue;
            };
            last = Some(tokio::time::Instant::now());
            match self.sync_to(&m, &note).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    warn!("sync to size {size} failed, will retry: {e}");
                    let _ = tokio::time::timeout(backoff, m.wake.notified()).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Peers that said they hold at least `size` entries, best first.
    fn holders(&self, m: &Mirror, size: u64) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = m
            .views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, n)| **n >= size)
            .map(|(p, _)| *p)
            .collect();
        self.peers.rank(&mut peers);
        peers
    }

    /// Brings a mirror from its verified size to the checkpoint `note`.
    async fn sync_to(&self, m: &Mirror, note: &str) -> Result<(), String> {
        let o = &m.origin;
        let signed = open_checkpoint(note.as_bytes(), &o.vkey, &[]).map_err(|e| e.to_string())?;
        let target = signed.checkpoint.size;
        let from = o.size();
        let peers = self.holders(m, target);
        if peers.is_empty() {
            return Err(format!("no connected peer holds size {target} yet"));
        }
        let bundles = bundles_between(from, target);
        // First attempt: every bundle from some holder, in parallel.
        let fetched: Vec<Result<Fetched, String>> =
            futures::stream::iter(bundles.iter().copied().enumerate())
                .map(|(i, t)| {
                    let peers = peers.clone();
                    async move {
                        self.fetch_any(&o.name, &t.path(), &peers, i)
                            .await
                            .map(|(p, b)| (t, p, b))
                    }
                })
                .buffered(PARALLEL_FETCHES)
                .collect()
                .await;
        let mut got: Vec<Fetched> = Vec::with_capacity(fetched.len());
        for f in fetched {
            got.push(f?);
        }
        let got = Arc::new(got);
        let verified = match check_bundles(o, from, got.clone(), &signed).await {
            Ok(v) => {
                // Every bundle made the signed tree: its peers answered well.
                for (_, peer, _) in got.iter() {
                    self.peers.reward(*peer);
                }
                v
            }
            Err(why) => {
                warn!(
                    "bundles from several peers do not make the signed tree ({why}); asking each peer alone"
                );
                match self
                    .sync_from_one(o, from, &bundles, &peers, &signed, &got)
                    .await
                {
                    Ok(v) => v,
                    Err(e) if self.prove_fork(o, &signed, note, &peers).await => {
                        return Err(format!("{e}: the checkpoint is of another tree"));
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        self.finish(o, &signed, note, verified).await
    }

    /// When no peer serves entries that extend the tree verified here to a signed checkpoint,
    /// the checkpoint may be of another tree: a larger size of a fork. Each holder's whole log
    /// is fetched; if it makes the signed root but another root at the size verified here, the
    /// two checkpoints are evidence (found here, recorded and gossiped). Whether they were.
    async fn prove_fork(
        &self,
        o: &Arc<Origin>,
        signed: &SignedCheckpoint,
        note: &str,
        peers: &[PeerId],
    ) -> bool {
        let snap = o.snapshot();
        let ours = snap.size;
        let Ok(our) = open_checkpoint(snap.note.as_bytes(), &o.vkey, &[]) else {
            return false;
        };
        let target = signed.checkpoint.size;
        'peers: for &peer in peers {
            // Leaf hashes only, bundle by bundle: a whole log never sits in memory.
            let mut leaves: Vec<pgext_log::Hash> = Vec::new();
            for t in bundles_between(0, target) {
                let Ok(bytes) = self.fetch_path(peer, &o.name, &t.path()).await else {
                    continue 'peers;
                };
                let hashed = origin::blocking(move || match parse_bundle(&bytes) {
                    Ok(list) if list.len() == usize::from(t.width) => {
                        Ok(list.into_iter().map(leaf_hash).collect::<Vec<_>>())
                    }
                    _ => Err(origin::Error::internal("a bundle does not parse")),
                })
                .await;
                match hashed {
                    Ok(h) => leaves.extend(h),
                    Err(_) => continue 'peers,
                }
            }
            let roots = origin::blocking(move || {
                let mut tree = StoredHashes::new();
                leaves.into_iter().for_each(|h| tree.append(h));
                Ok::<_, origin::Error>((tree_hash(target, &tree)?, tree_hash(ours, &tree)?))
            })
            .await;
            if let Ok((full, at_ours)) = roots {
                if full == signed.checkpoint.root && at_ours != our.checkpoint.root {
                    let ev = evidence::new(
                        &o.vkey,
                        format!(
                            "checkpoint of size {target} is of a tree that does not contain the one verified here at size {ours}"
                        ),
                        &snap.note,
                        note,
                        now(),
                    );
                    self.record_evidence(o, ev, true).await;
                    return true;
                }
            }
        }
        false
    }

    /// When a mixed set of bundles fails, each holder in turn is asked for all of them; the
    /// first whole set that makes the signed tree wins, and every peer that served a bundle
    /// other than that set's is demoted.
    async fn sync_from_one(
        &self,
        o: &Arc<Origin>,
        from: u64,
        bundles: &[Tile],
        peers: &[PeerId],
        signed: &SignedCheckpoint,
        mixed: &[Fetched],
    ) -> Result<Verified, String> {
        for &peer in peers {
            let mut set = Vec::with_capacity(bundles.len());
            let mut fault = None;
            for t in bundles {
                match self.fetch_path(peer, &o.name, &t.path()).await {
                    Ok(b) => set.push((*t, peer, b)),
                    Err(f) => {
                        fault = Some(f);
                        break;
                    }
                }
            }
            if let Some(f) = fault {
                self.peers.fault(peer, &f, "could not serve every bundle");
                continue;
            }
            let set = Arc::new(set);
            match check_bundles(o, from, set.clone(), signed).await {
                Ok(v) => {
                    for ((_, p, b), (_, _, good)) in mixed.iter().zip(set.iter()) {
                        if b != good {
                            self.peers.fault(
                                *p,
                                &Fault::Wrong(
                                    "an entry bundle that is not in the signed tree".into(),
                                ),
                                "bundle",
                            );
                        }
                    }
                    return Ok(v);
                }
                Err(why) => self.peers.fault(
                    peer,
                    &Fault::Wrong(format!("bundles that do not make the signed tree: {why}")),
                    "bundles",
                ),
            }
        }
        Err("no peer serves entries that make the signed tree".into())
    }

    /// Re-checks every entry, fetches the blobs, commits, cosigns and gossips.
    pub(super) async fn finish(
        &self,
        o: &Arc<Origin>,
        signed: &SignedCheckpoint,
        note: &str,
        v: Verified,
    ) -> Result<(), String> {
        let snap = o.snapshot();
        let from = snap.size;
        if from != v.from {
            // Another path (pull sync or tlog-mirror add-entries) committed meanwhile.
            return Err(format!(
                "the mirror is at size {from} now, not {}: verifying again",
                v.from
            ));
        }
        let t0 = std::time::Instant::now();
        // Every entry must parse canonically and pass the rules against the state before it,
        // checked on a copy: readers keep the published state.
        let registry = snap.registry.clone();
        drop(snap);
        let entries = v.entries.len();
        let batch = v.entries;
        let checked =
            origin::blocking(move || Ok::<_, origin::Error>(check_entries(registry, from, &batch)))
                .await
                .map_err(|e| e.to_string())?;
        let (registry, mut blobs) = match checked {
            Ok(c) => c,
            Err((index, why)) => {
                let reason = format!("entry {index} breaks the log's rules: {why}");
                error!(origin = %o.name, "{reason}; the origin no longer advances here");
                let (halting, why) = (o.clone(), reason.clone());
                origin::blocking(move || {
                    halting.halt(&why);
                    Ok::<_, origin::Error>(())
                })
                .await
                .map_err(|e| e.to_string())?;
                return Err(reason);
            }
        };
        let verify_ms = t0.elapsed().as_millis();
        // Missing blobs, in groups that fit one answer, fetched in parallel; each group starts
        // at another peer, to spread the load. They become visible only once all are durable.
        let mut seen = std::collections::HashSet::new();
        let store = o.content().blobs().clone();
        blobs.retain(|(sha, _)| seen.insert(sha.clone()));
        let missing = origin::blocking(move || {
            Ok::<_, origin::Error>(
                blobs
                    .into_iter()
                    .filter(|(sha, _)| !store.has(sha))
                    .collect::<Vec<Wanted>>(),
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut peers = self.p2p.peers().await;
        self.peers.rank(&mut peers);
        let groups = group_blobs(missing, peers.len());
        let fetches: Vec<_> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| self.fetch_group(o, g, &peers, i))
            .collect();
        let fetched: Vec<Result<Vec<Staged>, String>> = futures::stream::iter(fetches)
            .buffer_unordered(PARALLEL_FETCHES)
            .collect()
            .await;
        let mut staged = Vec::new();
        for f in fetched {
            staged.extend(f?);
        }
        let blobs = o.content().blobs().clone();
        origin::blocking(move || blobs.publish(staged).map_err(origin::Error::from))
            .await
            .map_err(|e| format!("making blobs durable: {e}"))?;
        let blobs_ms = t0.elapsed().as_millis() - verify_ms;
        // Cosign: "as of now, this is the largest tree of this origin I verified and store".
        let text = signed.checkpoint.to_text();
        let mut served = strip_to_log_signature(note, &o.vkey);
        let time = now();
        for key in &self.cosigners {
            served.push_str(&key.signature_line(&text, time).map_err(|e| e.to_string())?);
        }
        let size = signed.checkpoint.size;
        let (committer, note_out) = (o.clone(), served.clone());
        origin::blocking(move || {
            committer.commit_mirrored(&v.tiles, (from, size), &note_out, registry)
        })
        .await
        .map_err(|e| e.to_string())?;
        info!(
            size,
            entries,
            verify_ms,
            blobs_ms,
            total_ms = t0.elapsed().as_millis(),
            "verified, committed and cosigned"
        );
        // One message per key: a message names one cosigner, whose line the others collect.
        for key in &self.cosigners {
            self.publish(
                &o.name,
                &Gossip::Checkpoint {
                    note: served.clone(),
                    cosigner: Some(key.verifier().to_string()),
                },
            )
            .await;
        }
        Ok(())
    }
}

/// Parses bundles, recomputes the tree on top of the mirror's verified copy and compares the
/// root with the signed checkpoint (on the blocking pool: hashing and reading tiles).
async fn check_bundles(
    o: &Arc<Origin>,
    from: u64,
    got: Arc<Vec<Fetched>>,
    signed: &SignedCheckpoint,
) -> Result<Verified, String> {
    let (o, signed) = (o.clone(), signed.clone());
    origin::blocking(move || {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for (t, peer, bytes) in got.iter() {
            let list = parse_bundle(bytes)
                .map_err(|e| origin::Error::internal(format!("{}: {e}", t.path())))?;
            if list.len() != usize::from(t.width) {
                return Err(origin::Error::internal(format!(
                    "{} from {peer} holds {} entries",
                    t.path(),
                    list.len()
                )));
            }
            let first = t.index * 256;
            for (k, e) in list.into_iter().enumerate() {
                if first + k as u64 >= from {
                    entries.push(e.to_vec());
                }
            }
        }
        extend(&o, from, entries, &signed)
    })
    .await
    .map_err(|e| e.to_string())
}

/// Recomputes the tree with `entries` on top of the mirror's verified copy of size `from` and
/// compares the root with the signed checkpoint (blocking).
fn extend(
    o: &Origin,
    from: u64,
    entries: Vec<Vec<u8>>,
    signed: &SignedCheckpoint,
) -> Result<Verified, origin::Error> {
    let out = integrate(from, &entries, &**o.store())?;
    if out.size != signed.checkpoint.size || out.root != signed.checkpoint.root {
        return Err(origin::Error::internal(format!(
            "recomputed root at size {} differs from the checkpoint's",
            out.size
        )));
    }
    Ok(Verified {
        from,
        entries,
        tiles: out.tiles,
    })
}

/// [`extend`] on the blocking pool, for entries that came some other way than bundles
/// (tlog-mirror `add-entries`).
pub(super) async fn verify_extension(
    o: &Arc<Origin>,
    from: u64,
    entries: Vec<Vec<u8>>,
    signed: &SignedCheckpoint,
) -> Result<Verified, String> {
    let (o, signed) = (o.clone(), signed.clone());
    origin::blocking(move || extend(&o, from, entries, &signed))
        .await
        .map_err(|e| e.to_string())
}

/// The verdict of a batch of entries: the state after them and the blobs they name, or the
/// first failing index and why.
type Checked = Result<(Registry, Vec<Wanted>), (u64, String)>;

/// Checks entries `from..` against the rules, in order, on top of `registry`; signatures are
/// verified in batches afterwards, and the first failure by index is the verdict either way.
fn check_entries(mut registry: Registry, from: u64, entries: &[Vec<u8>]) -> Checked {
    let t = std::time::Instant::now();
    let mut parsed = Vec::with_capacity(entries.len());
    let mut keys = Vec::with_capacity(entries.len());
    let mut failure = None;
    for (k, verdict) in SignedEntry::parse_many(entries).into_iter().enumerate() {
        let index = from + k as u64;
        let verdict = verdict.map_err(|e| e.to_string()).and_then(|e| {
            let key = registry
                .apply_unsigned(index, &e.entry)
                .map_err(|v| v.to_string())?;
            Ok((e, key))
        });
        match verdict {
            Ok((e, key)) => {
                parsed.push(e);
                keys.push(key);
            }
            Err(why) => {
                failure = Some((index, why));
                break;
            }
        }
    }
    let rules = t.elapsed();
    let items: Vec<_> = parsed.iter().zip(&keys).collect();
    if let Err(k) = verify_signatures(&items) {
        let e = &parsed[k].entry.statement;
        return Err((
            from + k as u64,
            format!(
                "the signature does not verify with key {} of {}",
                e.key_id, e.actor
            ),
        ));
    }
    if let Some(f) = failure {
        return Err(f);
    }
    debug!(?rules, signatures = ?(t.elapsed() - rules), entries = entries.len(), "entries checked");
    let mut blobs = Vec::new();
    for e in &parsed {
        match &e.entry.statement.action {
            Action::Release(r) | Action::Import(pgext_spec::entry::Import { release: r, .. }) => {
                blobs.push((r.sha256.clone(), Some(r.size)));
                blobs.push((r.meta_sha256.clone(), None));
            }
            Action::Build(b) => blobs.push((b.sha256.clone(), Some(b.size))),
            _ => {}
        }
    }
    Ok((registry, blobs))
}
