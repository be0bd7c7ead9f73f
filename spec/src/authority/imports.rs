//! The rules of the operator's statements: imports of PGXN's history and claims of PGXN user
//! names (`spec/import.md`).

use super::*;
use crate::entry::{Import, OPERATOR, SOURCE_PGXN};

/// Longest evidence a claim may carry, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 2048;

/// A version as PGXN knew it: SemVer 2, or the SemVer 1 prerelease PGXN accepted without its
/// `-` (`1.0.0beta1`, read as `1.0.0-beta1`).
///
/// # Errors
/// [`Rule::InvalidVersion`].
pub fn pgxn_version(v: &str) -> Result<Version, Violation> {
    let strict = parse_version(v);
    if strict.is_ok() {
        return strict;
    }
    let lower = v.to_ascii_lowercase();
    let at = lower.find(|c: char| c.is_ascii_alphabetic());
    match at {
        Some(i) if i > 0 && lower.as_bytes()[i - 1].is_ascii_digit() => {
            Version::parse(&format!("{}-{}", &lower[..i], &lower[i..]))
                .map_err(|_| strict.expect_err("the strict parse failed"))
        }
        _ => strict,
    }
}

/// Seconds since the Unix epoch of a date as PGXN writes it, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_pgxn_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y < 1970 || !(1..=12).contains(&m) || d < 1 || d > days_in[(m - 1) as usize] {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (yy, mo) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mo + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

impl Registry {
    /// Whether the statement's actor is the operator.
    pub(super) fn is_operator_statement(entry: &Entry) -> bool {
        entry.statement.actor == OPERATOR
    }

    /// The operator's key, which must be the statement's signer.
    pub(super) fn operator_signer(&self, entry: &Entry) -> Result<VerifyingKey, Violation> {
        let st = &entry.statement;
        let key = self.operator.ok_or_else(|| {
            violation(
                Rule::NotOperator,
                "this log names no operator key, so it takes no operator statements",
            )
        })?;
        if user_key_id(key.as_bytes()) != st.key_id {
            return Err(violation(
                Rule::NotOperator,
                format!("key {} is not the operator's key", st.key_id),
            ));
        }
        if !matches!(
            st.action,
            Action::Import(_)
                | Action::Claim { .. }
                | Action::RoleGrant { .. }
                | Action::RoleRevoke { .. }
                | Action::PackageMap { .. }
                | Action::Advisory(_)
                | Action::AdvisoryWithdraw { .. }
                | Action::CiKey { .. }
        ) {
            return Err(violation(
                Rule::NotOperator,
                format!(
                    "the operator makes imports, claims, role grants, package mappings, advisories and CI keys, not {}",
                    st.action.kind()
                ),
            ));
        }
        Ok(key)
    }

    /// An import: a well-formed release of a distribution that is new or imported, in PGXN's
    /// order, by a valid PGXN user name, with PGXN's date.
    pub(super) fn check_import(&self, actor: &str, i: &Import) -> Result<(), Violation> {
        if actor != OPERATOR {
            return Err(violation(
                Rule::NotOperator,
                "only the registry's operator imports releases",
            ));
        }
        if i.source != SOURCE_PGXN {
            return Err(violation(
                Rule::InvalidName,
                format!("unknown import source {:?}", i.source),
            ));
        }
        if !valid_user_name(&i.user) {
            return Err(violation(
                Rule::InvalidName,
                format!(
                    "PGXN user {:?} is not a valid account name (2-32 of a-z 0-9 - _, starting with a letter)",
                    i.user
                ),
            ));
        }
        let Some(date) = parse_pgxn_date(&i.date) else {
            return Err(violation(
                Rule::InvalidText,
                format!("date {:?} is not YYYY-MM-DDTHH:MM:SSZ", i.date),
            ));
        };
        let r = &i.release;
        let version = pgxn_version(&r.version)?;
        let dist_key = r.dist.to_ascii_lowercase();
        let existing = self.dists.get(&dist_key);
        if let Some(d) = existing {
            if d.pgxn_user.is_none() {
                return Err(violation(
                    Rule::NotOwner,
                    format!("{} was published here, not imported", d.name),
                ));
            }
            if let Some(newest) = d
                .releases
                .values()
                .filter(|x| x.imported)
                .map(|x| x.time)
                .max()
            {
                if date < newest {
                    return Err(violation(
                        Rule::ImportOrder,
                        format!(
                            "{}@{} is dated {}, before a release of {} imported already",
                            r.dist, r.version, i.date, d.name
                        ),
                    ));
                }
            }
        }
        // The release rules, judged as if the distribution's owner released it: names,
        // digests, duplicates, PGXN's version order, extensions of other distributions.
        let as_owner = existing.map_or(String::new(), |d| {
            d.owners.iter().next().cloned().unwrap_or_default()
        });
        self.check_release_fields(r)?;
        if let Some(d) = existing {
            self.check_new_version(d, r, &version)?;
        }
        self.check_extensions(&as_owner, &dist_key, r)
    }

    /// A claim: of a PGXN user name some import named, not claimed before, by an account.
    pub(super) fn check_claim(
        &self,
        actor: &str,
        pgxn_user: &str,
        user: &str,
        evidence: &str,
    ) -> Result<(), Violation> {
        if actor != OPERATOR {
            return Err(violation(
                Rule::NotOperator,
                "only the registry's operator approves claims",
            ));
        }
        if evidence.len() > MAX_EVIDENCE_BYTES || evidence.trim().is_empty() {
            return Err(violation(
                Rule::InvalidText,
                format!("evidence is 1 to {MAX_EVIDENCE_BYTES} bytes"),
            ));
        }
        if evidence.chars().any(|c| c.is_control() && c != '\n') {
            return Err(violation(
                Rule::InvalidText,
                "evidence holds control characters",
            ));
        }
        let key = pgxn_user.to_ascii_lowercase();
        if !self
            .dists
            .values()
            .any(|d| d.pgxn_user.as_deref() == Some(&key))
        {
            return Err(violation(
                Rule::UnknownUser,
                format!("no distribution was imported from PGXN user {pgxn_user}"),
            ));
        }
        if let Some(by) = self.claims.get(&key) {
            return Err(violation(
                Rule::AlreadyClaimed,
                format!("PGXN user {pgxn_user} was claimed by {by}"),
            ));
        }
        if !self.accounts.contains_key(&user.to_ascii_lowercase()) {
            return Err(violation(Rule::UnknownUser, format!("no account {user}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgxn_dates_are_read_as_the_calendar_says() {
        // Expected seconds from Python's calendar.timegm, a second implementation.
        for (s, want) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2010-10-19T03:59:54Z", 1_287_460_794),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("2024-12-31T12:00:00Z", 1_735_646_400),
        ] {
            assert_eq!(parse_pgxn_date(s), Some(want), "{s}");
        }
        for bad in [
            "2010-10-19 03:59:54Z",
            "2010-10-19T03:59:54",
            "2010-13-19T03:59:54Z",
            "2001-02-29T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2010-10-19T24:00:00Z",
            "2010-1a-19T03:59:54Z",
            "",
        ] {
            assert_eq!(parse_pgxn_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn pgxn_versions_take_semver_1_prereleases() {
        assert_eq!(pgxn_version("1.0.0").unwrap(), Version::new(1, 0, 0));
        let pre = pgxn_version("1.0.0beta1").unwrap();
        assert_eq!(pre, Version::parse("1.0.0-beta1").unwrap());
        assert!(pre < Version::new(1, 0, 0));
        assert_eq!(
            pgxn_version("1.0.0RC2").unwrap(),
            Version::parse("1.0.0-rc2").unwrap()
        );
        for bad in ["1.0", "beta", "1.0.0.1", "v1.0.0"] {
            assert_eq!(
                pgxn_version(bad).unwrap_err().rule,
                Rule::InvalidVersion,
                "{bad}"
            );
        }
    }
}
