//! The body of C2SP tlog-mirror's `add-entries`: a head (origin, `upload_start`,
//! `upload_end`, ticket) and the canonical sequence of packages, each up to 256 entries with
//! their big-endian `u16` lengths and a subtree consistency proof of at most 63 hashes. Read
//! from a blocking reader as the request streams in; every length is bounded before anything
//! is allocated for it.

use std::io::Read;

use pgext_log::Hash;

/// The longest origin line and ticket taken.
const MAX_ORIGIN_BYTES: usize = 1024;
const MAX_TICKET_BYTES: usize = 4096;

/// The parsed head of an `add-entries` body.
pub(super) struct Head {
    pub origin: String,
    pub start: u64,
    pub end: u64,
}

fn read_u16(r: &mut impl Read) -> std::io::Result<u16> {
    let mut b = [0; 2];
    r.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u64(r: &mut impl Read) -> std::io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

pub(super) fn read_head(r: &mut impl Read) -> Result<Head, String> {
    let io = |e: std::io::Error| format!("the request ends inside its header: {e}");
    let n = usize::from(read_u16(r).map_err(io)?);
    if n > MAX_ORIGIN_BYTES {
        return Err(format!("an origin of {n} bytes is longer than any log's"));
    }
    let mut origin = vec![0; n];
    r.read_exact(&mut origin).map_err(io)?;
    let origin = String::from_utf8(origin).map_err(|_| "the origin is not UTF-8".to_string())?;
    let start = read_u64(r).map_err(io)?;
    let end = read_u64(r).map_err(io)?;
    let t = usize::from(read_u16(r).map_err(io)?);
    if t > MAX_TICKET_BYTES {
        return Err(format!(
            "a ticket of {t} bytes is longer than this mirror gives"
        ));
    }
    let mut ticket = vec![0; t];
    r.read_exact(&mut ticket).map_err(io)?;
    Ok(Head { origin, start, end })
}

/// The canonical package `i` of an upload `[start, end)`: its subtree's first index and the
/// entries it carries.
pub(super) fn package(start: u64, end: u64, i: u64) -> (u64, u64, u64) {
    let rounded = (start / 256 + i).saturating_mul(256);
    (
        rounded,
        start.max(rounded),
        end.min(rounded.saturating_add(256)),
    )
}

/// Reads the package of entries `[lo, hi)`: the entries and the proof's hashes.
pub(super) fn read_package(
    body: &mut impl Read,
    lo: u64,
    hi: u64,
) -> Result<(Vec<Vec<u8>>, Vec<Hash>), String> {
    let short = |e: std::io::Error| format!("it ends early: {e}");
    let mut entries = Vec::with_capacity(usize::try_from(hi - lo).unwrap_or(256).min(256));
    for _ in lo..hi {
        let n = usize::from(read_u16(body).map_err(short)?);
        let mut e = vec![0; n];
        body.read_exact(&mut e).map_err(short)?;
        entries.push(e);
    }
    let mut k = [0u8; 1];
    body.read_exact(&mut k).map_err(short)?;
    if k[0] > 63 {
        return Err(format!("{} proof hashes are more than 63", k[0]));
    }
    let mut proof = Vec::with_capacity(usize::from(k[0]));
    for _ in 0..k[0] {
        let mut h = [0u8; 32];
        body.read_exact(&mut h).map_err(short)?;
        proof.push(Hash(h));
    }
    Ok((entries, proof))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_follow_the_canonical_sequence() {
        // tlog-mirror's example shape: an unaligned start, a partial last package.
        assert_eq!(package(300, 700, 0), (256, 300, 512));
        assert_eq!(package(300, 700, 1), (512, 512, 700));
        assert_eq!(package(0, 256, 0), (0, 0, 256));
        assert_eq!(package(u64::MAX - 10, u64::MAX, 0).2, u64::MAX);
    }

    #[test]
    fn a_package_is_read_whole_or_refused() {
        let mut body = Vec::new();
        for e in [b"ab".as_slice(), b"c"] {
            body.extend((e.len() as u16).to_be_bytes());
            body.extend(e);
        }
        body.push(1);
        body.extend([7u8; 32]);
        let (entries, proof) = read_package(&mut body.as_slice(), 4, 6).unwrap();
        assert_eq!(entries, [b"ab".to_vec(), b"c".to_vec()]);
        assert_eq!(proof, [Hash([7; 32])]);
        assert!(read_package(&mut &body[..body.len() - 1], 4, 6).is_err());
        let mut many = body[..7].to_vec();
        many.push(64);
        assert!(read_package(&mut many.as_slice(), 4, 6).is_err());
    }
}
