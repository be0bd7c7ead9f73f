//! Names the registry gives out: accounts, distributions and extensions. Kept apart from the
//! rules so that every part of the format (advisories, tokens) checks names the same way.

/// Account names: 2 to 32 of lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
pub fn valid_user_name(name: &str) -> bool {
    (2..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Distribution and extension names (PGXN "terms"): 2 to 64 printable ASCII characters without
/// whitespace, `/`, `\` or `:`.
pub fn valid_term(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/\\:".contains(&b))
}
