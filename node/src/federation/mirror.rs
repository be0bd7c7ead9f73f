//! C2SP tlog-mirror's update process, for the public origins this node mirrors: a mirror
//! client (the log, or anyone holding its entries) sets a *pending checkpoint* with
//! `add-checkpoint` and uploads the entries up to it with `add-entries`, in packages of up to
//! 256 entries aligned to entry bundles, each authenticated by a subtree consistency proof
//! against the pending checkpoint before it is kept. Once every entry up to the checkpoint is
//! held, the entries take the same way as fetched ones (`sync`: the tree recomputed and compared
//! with the signed root, every entry re-checked against the rules, blobs fetched from peers,
//! one synced commit), and the answer is this node's cosignatures.
//!
//! Pending checkpoints and entries live in memory: after a restart the mirror is back at its
//! committed checkpoint, and the client is told so (`409` with the sizes). Every pending
//! checkpoint was proven consistent with the one before, back to the committed one, so losing
//! them loses no safety. Pull sync and `add-entries` may both advance a mirror; whichever
//! commits first wins and the other finds the entries already there.

use std::collections::VecDeque;
use std::io::{BufReader, Read};

use flate2::read::MultiGzDecoder;
use std::sync::Arc;

use pgext_log::{
    Hash, Refusal, TileHashReader, leaf_hash, open_checkpoint, stored_hash_index, subtree_hash,
    verify_subtree_consistency,
};
use tracing::{info, warn};

use super::upload::{package, read_head, read_package};
use super::{Federation, Mirror};
use crate::origin::{self, Origin};

/// The content type of a `409` or `202` answer to `add-entries`.
pub const MIRROR_INFO: &str = "text/x.tlog.mirror-info";
/// Pending checkpoints kept per origin: any of them is a valid `upload_end`.
const PENDING_CHECKPOINTS: usize = 8;
/// Entries held beyond the committed tree, per origin, in bytes and in entries. A pending
/// checkpoint further ahead than this is fetched from peers instead (`spec/federation.md`).
pub const MAX_PENDING_BYTES: usize = 256 << 20;
/// See [`MAX_PENDING_BYTES`].
pub const MAX_PENDING_ENTRIES: usize = 1 << 20;
/// Packages read from one request; the rest is asked for again (`202`).
pub const MAX_PACKAGES_PER_REQUEST: u64 = 32;
/// `add-entries` requests read at once, node-wide; more are `503`.
pub const MAX_UPLOADS: usize = 8;
/// Entries a request may resend that the mirror already holds.
pub const MAX_EXCESS_ENTRIES: u64 = 8192;
/// One answer of the tlog-mirror endpoints: status, content type, body.
pub type MirrorAnswer = (u16, &'static str, Vec<u8>);

const TEXT: &str = "text/plain; charset=utf-8";

/// What a mirror holds beyond its committed tree.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Pending checkpoints, oldest first: size, root, the note as the log signed it.
    checkpoints: VecDeque<(u64, Hash, String)>,
    /// The index of `entries[0]`.
    base: u64,
    /// Authenticated entries not yet committed.
    entries: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pending {
    /// Forgets what the committed tree (of `mirrored` entries) now holds.
    fn trim(&mut self, mirrored: u64) {
        if mirrored > self.base {
            let gone = usize::try_from(mirrored - self.base)
                .unwrap_or(usize::MAX)
                .min(self.entries.len());
            self.bytes -= self.entries.drain(..gone).map(|e| e.len()).sum::<usize>();
            self.base = mirrored;
        }
        self.checkpoints.retain(|(size, _, _)| *size >= mirrored);
    }

    /// The first entry neither committed nor pending.
    fn next(&self, mirrored: u64) -> u64 {
        (self.base + self.entries.len() as u64).max(mirrored)
    }

    fn latest(&self) -> Option<&(u64, Hash, String)> {
        self.checkpoints.back()
    }
}

/// How an `add-entries` body went.
#[derive(Debug, Default)]
struct Uploaded {
    /// Packages authenticated and kept.
    saved: u64,
    /// Why reading stopped early, as an answer to give when nothing else applies.
    stop: Option<(u16, String)>,
}

fn text(status: u16, why: impl Into<String>) -> MirrorAnswer {
    let mut body = why.into().into_bytes();
    body.push(b'\n');
    (status, TEXT, body)
}

fn info(status: u16, pending: u64, next: u64) -> MirrorAnswer {
    // No ticket: the pending checkpoints are kept here.
    (
        status,
        MIRROR_INFO,
        format!("{pending}\n{next}\n\n").into_bytes(),
    )
}

impl Federation {
    /// The public mirror of `origin`.
    fn tlog_mirror(&self, origin: &str) -> Option<Arc<Mirror>> {
        self.mirrors
            .get(origin)
            .filter(|m| !m.origin.private)
            .cloned()
    }

    /// The committed tree's size and root.
    async fn mirrored(o: &Arc<Origin>) -> Result<(u64, Hash, String), String> {
        let snap = o.snapshot();
        if snap.note.is_empty() {
            return Ok((0, Hash::empty_root(), String::new()));
        }
        let (o2, size) = (o.clone(), snap.size);
        let root = origin::blocking(move || o2.root_at(size))
            .await
            .map_err(|e| e.to_string())?;
        Ok((size, root, snap.note.clone()))
    }

    /// tlog-mirror `add-checkpoint`: checked as a witness checks it against the newest pending
    /// checkpoint, and kept as the new pending checkpoint. Nothing is signed here.
    pub async fn mirror_add_checkpoint(self: &Arc<Self>, body: &[u8]) -> MirrorAnswer {
        let refuse = |r: Refusal| {
            let ct = if r.status() == 409 {
                pgext_log::SIZE_CONTENT_TYPE
            } else {
                TEXT
            };
            (r.status(), ct, r.body().into_bytes())
        };
        let req = match pgext_log::AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(e) => return refuse(Refusal::BadRequest(e.to_string())),
        };
        let name = req.origin().unwrap_or_default();
        let Some(m) = self.tlog_mirror(&name) else {
            return refuse(Refusal::UnknownLog(format!(
                "this node does not mirror {name:?}"
            )));
        };
        let o = &m.origin;
        if let Some(why) = o.halted() {
            return refuse(Refusal::Inconsistent(format!(
                "this node no longer mirrors {name}: {why}"
            )));
        }
        // One update at a time per origin: each is checked against the one before.
        let _one = m.updating.lock().await;
        let (mirrored, root, _) = match Self::mirrored(o).await {
            Ok(t) => t,
            Err(e) => return text(500, e),
        };
        let latest = {
            let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.trim(mirrored);
            p.latest().map_or((mirrored, root), |(s, r, _)| (*s, *r))
        };
        let signed = match pgext_log::check_add_checkpoint(&req, &o.vkey, latest) {
            Ok(c) => c,
            Err(r) => {
                // As for a witness: one the log signed that is no larger than the tree here
                // and of another root is evidence.
                let note = String::from_utf8_lossy(&req.checkpoint).into_owned();
                if matches!(r, Refusal::Inconsistent(_))
                    && open_checkpoint(note.as_bytes(), &o.vkey, &[])
                        .is_ok_and(|c| c.checkpoint.size <= mirrored)
                {
                    self.consider(&m, &note, None).await;
                }
                return refuse(r);
            }
        };
        let size = signed.checkpoint.size;
        if size > latest.0 {
            let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
            let note = String::from_utf8_lossy(&req.checkpoint).into_owned();
            p.checkpoints.retain(|(s, _, _)| *s != size);
            p.checkpoints
                .push_back((size, signed.checkpoint.root, note));
            while p.checkpoints.len() > PENDING_CHECKPOINTS {
                p.checkpoints.pop_front();
            }
        }
        (200, TEXT, Vec::new())
    }

    /// tlog-mirror `add-entries`, reading `body` (gzip-compressed or not) on the blocking pool:
    /// it blocks on the request as it streams in.
    pub async fn add_entries(
        self: &Arc<Self>,
        body: Box<dyn Read + Send>,
        gzip: bool,
    ) -> MirrorAnswer {
        // Held until the answer: each upload holds a blocking thread while it streams.
        let Ok(_reading) = self.uploads.clone().try_acquire_owned() else {
            return text(
                503,
                format!("{MAX_UPLOADS} uploads are being read here; send this one again shortly"),
            );
        };
        let head = match origin::blocking(move || {
            // A gzip decoder reads its header as it is made: here, off the async threads.
            let mut body: Box<dyn Read + Send> = if gzip {
                Box::new(BufReader::new(MultiGzDecoder::new(body)))
            } else {
                Box::new(BufReader::new(body))
            };
            Ok::<_, origin::Error>(read_head(&mut body).map(|h| (h, body)))
        })
        .await
        {
            Ok(Ok(h)) => h,
            Ok(Err(why)) => return text(400, why),
            Err(e) => return text(500, e.to_string()),
        };
        let (head, body) = head;
        let Some(m) = self.tlog_mirror(&head.origin) else {
            return text(404, format!("this node does not mirror {:?}", head.origin));
        };
        let o = m.origin.clone();
        if let Some(why) = o.halted() {
            return text(
                422,
                format!("this node no longer mirrors {}: {why}", o.name),
            );
        }
        let (mirrored, _, mirror_note) = match Self::mirrored(&o).await {
            Ok(t) => t,
            Err(e) => return text(500, e),
        };
        let (target, latest, next) = {
            let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.trim(mirrored);
            let target = p
                .checkpoints
                .iter()
                .find(|(s, _, _)| *s == head.end)
                .map(|(s, r, n)| (*s, *r, n.clone()));
            (target, p.latest().map(|c| c.0), p.next(mirrored))
        };
        if latest.is_none() && mirror_note.is_empty() {
            return text(
                422,
                format!("no checkpoint of {} was added here yet", o.name),
            );
        }
        let pending_size = latest.unwrap_or(mirrored);
        let target = match target {
            Some(t) => Some(t),
            None if head.end == mirrored => None,
            None => {
                return info(409, pending_size, next);
            }
        };
        if head.end < mirrored || head.start > next {
            return info(409, head.end, next);
        }
        if head.start > head.end {
            return text(400, "upload_start is past upload_end");
        }
        if next.min(head.end).saturating_sub(head.start) > MAX_EXCESS_ENTRIES {
            return info(409, head.end, next);
        }
        let uploaded = match target {
            Some((size, root, _)) => {
                let (m2, o2) = (m.clone(), o.clone());
                let (start, end) = (head.start, head.end);
                origin::blocking(move || {
                    Ok::<_, origin::Error>(read_packages(
                        &m2,
                        &o2,
                        body,
                        (start, end),
                        (size, root),
                    ))
                })
                .await
                .unwrap_or_else(|e| Uploaded {
                    saved: 0,
                    stop: Some((500, e.to_string())),
                })
            }
            None => Uploaded::default(),
        };
        if let Some((422, why)) = &uploaded.stop {
            return text(422, why.clone());
        }
        let next = {
            let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.trim(o.size());
            p.next(o.size())
        };
        if next >= head.end {
            return self.complete(&m, head.end, target.map(|t| t.2)).await;
        }
        if uploaded.saved > 0 {
            return info(202, head.end, next);
        }
        match uploaded.stop {
            Some((409, _)) => info(409, head.end, next),
            Some((status, why)) if status != 400 => text(status, why),
            Some((_, why)) => text(400, why),
            None => text(400, "no package of the upload came"),
        }
    }

    /// Every entry up to `end` is held: commits them (as a sync does) and answers with this
    /// node's cosignatures on the checkpoint of size `end`.
    async fn complete(&self, m: &Arc<Mirror>, end: u64, note: Option<String>) -> MirrorAnswer {
        let o = &m.origin;
        // One commit at a time per origin: each copies what is pending and checks it.
        let _one = m.completing.lock().await;
        let from = o.size();
        if from < end {
            let Some(note) = note else {
                return info(409, end, from);
            };
            let signed = match open_checkpoint(note.as_bytes(), &o.vkey, &[]) {
                Ok(s) => s,
                Err(e) => return text(500, e.to_string()),
            };
            let entries: Vec<Vec<u8>> = {
                let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
                p.trim(from);
                let n = usize::try_from(end - from).unwrap_or(usize::MAX);
                p.entries.iter().take(n).cloned().collect()
            };
            if entries.len() as u64 != end - from {
                return info(409, end, from + entries.len() as u64);
            }
            let verified = match super::sync::verify_extension(o, from, entries, &signed).await {
                Ok(v) => v,
                Err(why) => {
                    // Authenticated packages cannot make another tree unless the log signed
                    // two: what is pending is dropped, and the pull sync looks for evidence.
                    warn!(origin = %o.name, "pending entries do not make the checkpoint: {why}");
                    {
                        let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
                        p.bytes = 0;
                        p.entries.clear();
                        p.base = from;
                    }
                    self.consider(m, &note, None).await;
                    return text(
                        422,
                        format!("the entries do not make the checkpoint: {why}"),
                    );
                }
            };
            if let Err(why) = self.finish(o, &signed, &note, verified).await {
                if let Some(halted) = o.halted() {
                    return text(
                        422,
                        format!("this node no longer mirrors {}: {halted}", o.name),
                    );
                }
                return text(
                    503,
                    format!(
                        "the entries are held, but could not be committed yet ({why}); send add-entries again"
                    ),
                );
            }
            info!(origin = %o.name, size = end, "committed entries uploaded by a tlog-mirror client");
        }
        let snap = o.snapshot();
        if snap.size != end {
            return info(409, snap.size.max(end), snap.size);
        }
        let lines = self.own_lines(&snap.note);
        if lines.is_empty() {
            // Nothing committed yet (the empty tree), so nothing cosigned.
            return info(409, end, snap.size);
        }
        (200, TEXT, lines.into_bytes())
    }
}

/// Reads, authenticates and keeps packages of the upload `[start, end)` against the pending
/// checkpoint `(size, root)` (`end == size`), on the blocking pool.
fn read_packages(
    m: &Mirror,
    o: &Origin,
    mut body: Box<dyn Read + Send>,
    (start, end): (u64, u64),
    (size, root): (u64, Hash),
) -> Uploaded {
    let mut up = Uploaded::default();
    if start == end {
        return up;
    }
    // In u128: an `upload_end` near 2^64 must not overflow the rounding.
    let count = (u128::from(end).div_ceil(256) - u128::from(start) / 256) as u64;
    for i in 0..count.min(MAX_PACKAGES_PER_REQUEST) {
        let (first, lo, hi) = package(start, end, i);
        let (entries, proof) = match read_package(&mut body, lo, hi) {
            Ok(p) => p,
            Err(why) => {
                up.stop = Some((400, format!("package {i}: {why}")));
                return up;
            }
        };
        let bytes: usize = entries.iter().map(Vec::len).sum();
        // The subtree's leaves: those before the upload from the tree or the pending list,
        // then the package's own.
        let mut leaves = Vec::with_capacity((hi - first) as usize);
        if first < lo {
            match leaves_before(m, o, first, lo) {
                Ok(l) => leaves.extend(l),
                Err(why) => {
                    up.stop = Some((409, why));
                    return up;
                }
            }
        }
        leaves.extend(entries.iter().map(|e| leaf_hash(e)));
        let node = subtree_hash(&leaves);
        if let Err(e) = verify_subtree_consistency(first, hi, size, &proof, &node, &root) {
            up.stop = Some((
                422,
                format!(
                    "package {i} ([{lo}, {hi})) does not verify against the checkpoint of size {size}: {e}"
                ),
            ));
            return up;
        }
        let mut p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mirrored = o.size();
        p.trim(mirrored);
        let next = p.next(mirrored);
        if next < lo {
            up.stop = Some((409, format!("entries before {lo} are missing here")));
            return up;
        }
        if p.bytes + bytes > MAX_PENDING_BYTES
            || p.entries.len() + entries.len() > MAX_PENDING_ENTRIES
        {
            up.stop = Some((
                503,
                format!(
                    "more entries are pending for {} than this mirror holds in memory; it fetches them from its peers",
                    o.name
                ),
            ));
            return up;
        }
        if p.entries.is_empty() {
            p.base = next;
        }
        let skip = usize::try_from(next.saturating_sub(lo)).unwrap_or(usize::MAX);
        for e in entries.into_iter().skip(skip) {
            p.bytes += e.len();
            p.entries.push(e);
        }
        up.saved += 1;
    }
    up
}

/// The leaf hashes of entries `[from, to)`, from the committed tree or the pending list.
fn leaves_before(m: &Mirror, o: &Origin, from: u64, to: u64) -> Result<Vec<Hash>, String> {
    let mirrored = o.size();
    let mut out = Vec::with_capacity((to - from) as usize);
    let committed: Vec<u64> = (from..to.min(mirrored))
        .map(|i| stored_hash_index(0, i))
        .collect();
    if !committed.is_empty() {
        let reader = TileHashReader::new(mirrored, &**o.store());
        out.extend(
            pgext_log::HashReader::read_hashes(&reader, &committed)
                .map_err(|e| format!("reading the tree: {e}"))?,
        );
    }
    if to > mirrored {
        let p = m.pending.lock().unwrap_or_else(|e| e.into_inner());
        for i in from.max(mirrored)..to {
            let e = i
                .checked_sub(p.base)
                .and_then(|k| p.entries.get(usize::try_from(k).ok()?))
                .ok_or_else(|| format!("entry {i} is not held here"))?;
            out.push(leaf_hash(e));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_entries_give_way_to_the_committed_tree() {
        let mut p = Pending {
            base: 10,
            entries: vec![vec![1; 4]; 5],
            bytes: 20,
            ..Pending::default()
        };
        p.checkpoints
            .push_back((12, Hash::empty_root(), String::new()));
        p.checkpoints
            .push_back((15, Hash::empty_root(), String::new()));
        assert_eq!(p.next(10), 15);
        p.trim(13);
        assert_eq!(
            (p.base, p.entries.len(), p.bytes, p.next(13)),
            (13, 2, 8, 15)
        );
        assert_eq!(p.checkpoints.len(), 1);
        p.trim(40);
        assert_eq!((p.entries.len(), p.bytes, p.next(40)), (0, 0, 40));
        assert!(p.latest().is_none());
    }
}
