//! What can be searched.

/// What can be searched, named as PGXN's `/search/{in}/` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Documentation files.
    Docs,
    /// Distributions.
    Dists,
    /// Extensions.
    Extensions,
    /// Accounts.
    Users,
    /// Tags.
    Tags,
}

impl Kind {
    /// From the URL segment.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "docs" => Kind::Docs,
            "dists" => Kind::Dists,
            "extensions" => Kind::Extensions,
            "users" => Kind::Users,
            "tags" => Kind::Tags,
            _ => return None,
        })
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Docs => "docs",
            Kind::Dists => "dists",
            Kind::Extensions => "extensions",
            Kind::Users => "users",
            Kind::Tags => "tags",
        }
    }
}
