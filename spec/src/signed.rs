//! Many entries' signatures checked at once: parsed over the machine's cores, verified in
//! batch equations (`spec/federation.md` explains why a mirror accepts batch verification),
//! each failure named by its exact entry. Used where whole logs are replayed: mirrors' syncs,
//! audits, start-up.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};

use crate::entry::{Entry, EntryError, SIGNATURE_DOMAIN};

/// Signatures checked together in one batch equation.
const BATCH: usize = 256;
/// Fewest items worth a thread of their own.
const PER_THREAD: usize = 256;

/// An entry parsed from log bytes, with what its signature covers made ready: the input of
/// [`verify_signatures`].
#[derive(Debug, Clone)]
pub struct SignedEntry {
    /// The entry.
    pub entry: Entry,
    pub(crate) msg: Vec<u8>,
    sig: Option<Signature>,
}

impl SignedEntry {
    /// [`Entry::parse`], and the signed message taken from the same bytes: the canonical entry
    /// without its top-level `sig` member is the canonical statement.
    ///
    /// # Errors
    /// As [`Entry::parse`].
    pub fn parse(bytes: &[u8]) -> Result<SignedEntry, EntryError> {
        let entry = Entry::parse(bytes)?;
        let statement =
            statement_bytes(bytes, &entry.sig).unwrap_or_else(|| entry.statement.canonical_bytes());
        let mut msg = SIGNATURE_DOMAIN.to_vec();
        msg.extend_from_slice(&statement);
        let sig = STANDARD
            .decode(&entry.sig)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok());
        Ok(SignedEntry { entry, msg, sig })
    }

    /// Parses many entries, spread over the machine's cores; one result per input, in order.
    pub fn parse_many(entries: &[Vec<u8>]) -> Vec<Result<SignedEntry, EntryError>> {
        par_chunks(entries, |_, chunk| {
            chunk
                .iter()
                .map(|b| SignedEntry::parse(b))
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect()
    }

    pub(crate) fn verify_alone(&self, key: &VerifyingKey) -> bool {
        self.sig
            .is_some_and(|sig| key.verify_strict(&self.msg, &sig).is_ok())
    }
}

/// The canonical statement inside canonical entry bytes: the bytes without the `sig` member.
/// Signatures are base64, so the member is exactly `"sig":"…"`; when that text occurs once, it
/// is the top-level member. `None` otherwise (a nested key that looks the same), for the caller
/// to serialize the statement instead.
pub(crate) fn statement_bytes(bytes: &[u8], sig: &str) -> Option<Vec<u8>> {
    let needle = format!("\"sig\":\"{sig}\"");
    let n = needle.as_bytes();
    let mut at = bytes.windows(n.len()).enumerate().filter(|(_, w)| *w == n);
    let (pos, _) = at.next()?;
    if at.next().is_some() {
        return None;
    }
    let end = pos + n.len();
    let mut out = Vec::with_capacity(bytes.len());
    if bytes.get(pos - 1) == Some(&b',') {
        out.extend_from_slice(&bytes[..pos - 1]);
        out.extend_from_slice(&bytes[end..]);
    } else if bytes.get(end) == Some(&b',') {
        out.extend_from_slice(&bytes[..pos]);
        out.extend_from_slice(&bytes[end + 1..]);
    } else {
        return None;
    }
    Some(out)
}

/// Runs `f(offset, chunk)` over chunks of `items` on the machine's cores (one chunk when few).
fn par_chunks<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &[T]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = items.len().div_ceil(threads).max(PER_THREAD);
    if items.len() <= per {
        return vec![f(0, items)];
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(per)
            .enumerate()
            .map(|(c, chunk)| scope.spawn(move || f(c * per, chunk)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Verifies many entries' signatures, each with its key, faster than one by one: batches of
/// [`BATCH`] in one equation each, spread over the machine's cores. Weak (small-order) keys and
/// malformed signatures never enter a batch; they, and every member of a batch that fails, are
/// checked alone as [`Entry::verify_signature`] does, so the answer names the exact entry.
///
/// Batch verification is cofactored: a signature its key holder crafted with a small-order
/// component could pass a batch and fail the strict single check (`spec/federation.md`
/// explains why a mirror accepts this).
///
/// # Errors
/// The position in `items` of the first entry whose signature does not verify.
pub fn verify_signatures(items: &[(&SignedEntry, &VerifyingKey)]) -> Result<(), usize> {
    par_chunks(items, |offset, chunk| {
        verify_chunk(chunk).map_err(|i| offset + i)
    })
    .into_iter()
    .filter_map(Result::err)
    .min()
    .map_or(Ok(()), Err)
}

fn verify_chunk(items: &[(&SignedEntry, &VerifyingKey)]) -> Result<(), usize> {
    let alone = |i: usize| items[i].0.verify_alone(items[i].1);
    for (b, batch) in items.chunks(BATCH).enumerate() {
        let base = b * BATCH;
        let mut bad: Option<usize> = None;
        let mut at = Vec::with_capacity(batch.len());
        let (mut msgs, mut sigs, mut keys) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (signed, key)) in batch.iter().enumerate() {
            match signed.sig {
                Some(sig) if !key.is_weak() => {
                    at.push(base + k);
                    msgs.push(signed.msg.as_slice());
                    sigs.push(sig);
                    keys.push(**key);
                }
                _ => {
                    if bad.is_none() && !alone(base + k) {
                        bad = Some(base + k);
                    }
                }
            }
        }
        if ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_err() {
            if let Some(i) = at.into_iter().find(|&i| !alone(i)) {
                bad = Some(bad.map_or(i, |b| b.min(i)));
            }
        }
        if let Some(i) = bad {
            return Err(i);
        }
    }
    Ok(())
}
