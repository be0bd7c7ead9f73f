//! Entry bundles (`tile/entries/…`): each entry as a big-endian u16 length and its bytes.

use crate::error::{Error, Result};
use crate::tile::Tile;

/// The largest entry a bundle can carry.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// Appends one entry to bundle bytes.
///
/// # Errors
/// [`Error::EntryTooLarge`] above [`MAX_ENTRY_SIZE`] bytes.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<()> {
    let len = u16::try_from(entry.len()).map_err(|_| Error::EntryTooLarge(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Splits bundle bytes into entries. Exact: a truncated length or entry, or trailing bytes, is
/// an error.
///
/// # Errors
/// [`Error::MalformedTile`] as above.
pub fn parse_bundle(data: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let malformed = |reason: String| Error::MalformedTile {
            path: "entry bundle".into(),
            reason,
        };
        if rest.len() < 2 {
            return Err(malformed(format!(
                "{} trailing byte(s) after entry {}",
                rest.len(),
                out.len()
            )));
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            return Err(malformed(format!(
                "entry {} claims {len} bytes, {} remain",
                out.len(),
                rest.len() - 2
            )));
        }
        out.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    Ok(out)
}

/// The first `tile.width` entries of a bundle, for a reader that returned a wider bundle.
///
/// # Errors
/// [`Error::MalformedTile`] if the bundle is malformed or has fewer entries.
pub fn bundle_entries<'a>(tile: &Tile, data: &'a [u8]) -> Result<Vec<&'a [u8]>> {
    let mut entries = parse_bundle(data).map_err(|e| match e {
        Error::MalformedTile { reason, .. } => Error::MalformedTile {
            path: tile.path(),
            reason,
        },
        other => other,
    })?;
    if entries.len() < usize::from(tile.width) {
        return Err(Error::MalformedTile {
            path: tile.path(),
            reason: format!("{} entries, expected {}", entries.len(), tile.width),
        });
    }
    entries.truncate(usize::from(tile.width));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let mut b = Vec::new();
        push_entry(&mut b, b"one").unwrap();
        push_entry(&mut b, b"").unwrap();
        push_entry(&mut b, &vec![7u8; MAX_ENTRY_SIZE]).unwrap();
        let entries = parse_bundle(&b).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0], b"one");
        assert_eq!(entries[2].len(), MAX_ENTRY_SIZE);
        assert!(matches!(
            push_entry(&mut b, &vec![0u8; MAX_ENTRY_SIZE + 1]),
            Err(Error::EntryTooLarge(_))
        ));
        assert!(parse_bundle(&b[..b.len() - 1]).is_err());
        assert!(parse_bundle(&[0, 3, b'a', b'b', b'c', 0]).is_err());
    }
}
