//! C2SP tlog-checkpoint: origin, tree size and root hash, optional extension lines.

use crate::error::{Error, Result};
use crate::hash::Hash;
use crate::tile::parse_decimal;

/// A checkpoint body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (by convention its URL without scheme).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 6962 root of the tree.
    pub root: Hash,
    /// Extension lines (pgext writes none).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: &str, size: u64, root: Hash) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// Parses a checkpoint body (the note text).
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] unless the text is `origin\nsize\nroot\n[ext\n…]`, with a
    /// non-empty origin, a decimal size without leading zeros, a base64 32-byte root and
    /// non-empty extension lines.
    pub fn parse(text: &str) -> Result<Checkpoint> {
        let bad = |why: &str| Error::MalformedCheckpoint(why.to_string());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("must end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("empty origin"))?;
        let size = lines
            .next()
            .and_then(parse_decimal)
            .ok_or_else(|| bad("size is not a decimal number"))?;
        let root = lines
            .next()
            .and_then(Hash::from_base64)
            .ok_or_else(|| bad("root is not base64 of 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// The body text.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parse() {
        let root = Hash::empty_root().to_base64();
        assert!(Checkpoint::parse(&format!("o\n0\n{root}\n")).is_ok());
        let c = Checkpoint::parse(&format!("o\n12\n{root}\next a\n")).unwrap();
        assert_eq!(c.extensions, ["ext a"]);
        assert_eq!(c.to_text(), format!("o\n12\n{root}\next a\n"));
        for bad in [
            format!("o\n012\n{root}\n"),
            format!("o\n12\n{root}"),
            format!("\n12\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            "o\n1\nAAAA\n".to_string(),
            format!("o\n1\n{root}\n\n"),
            format!("o\n18446744073709551616\n{root}\n"),
        ] {
            assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
        }
    }
}
