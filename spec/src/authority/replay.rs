//! Replaying a whole log against every rule, as an auditor, `fsck` and `reindex` do.

use super::{Registry, Rule};

/// An entry of a log that breaks a rule, as a replay finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogViolation {
    /// Log index.
    pub index: u64,
    /// The rule's name ([`Rule::as_str`]), or `malformed-entry`.
    pub rule: String,
    /// What happened.
    pub detail: String,
}

/// Replays a whole log from its first entry against every rule, as an auditor does: entries
/// are parsed in canonical form, rules applied in order, signatures verified in batches over
/// all cores. Every violation is reported, not just the first: after one, the entry is applied
/// as logged, so later entries are judged against the state the log actually built. Returns
/// the state and the violations, in index order. `registry` is where the replay starts: an
/// empty [`Registry::for_log`], which knows the operator by the log key.
pub fn replay_log(mut registry: Registry, entries: &[Vec<u8>]) -> (Registry, Vec<LogViolation>) {
    use crate::signed::{SignedEntry, verify_signatures};
    let mut violations = Vec::new();
    let mut checked = Vec::new();
    for (i, verdict) in SignedEntry::parse_many(entries).into_iter().enumerate() {
        let index = i as u64;
        match verdict {
            Err(e) => violations.push(LogViolation {
                index,
                rule: "malformed-entry".into(),
                detail: e.to_string(),
            }),
            Ok(e) => match registry.apply_unsigned(index, &e.entry) {
                Ok(key) => checked.push((index, e, key)),
                Err(v) => {
                    violations.push(LogViolation {
                        index,
                        rule: v.rule.as_str().into(),
                        detail: v.detail,
                    });
                    registry.apply_logged(index, &e.entry);
                }
            },
        }
    }
    let mut rest = &checked[..];
    loop {
        let items: Vec<_> = rest.iter().map(|(_, e, k)| (e, k)).collect();
        let Err(k) = verify_signatures(&items) else {
            break;
        };
        let (index, e, _) = &rest[k];
        violations.push(LogViolation {
            index: *index,
            rule: Rule::BadSignature.as_str().into(),
            detail: format!(
                "the signature does not verify with key {} of {}",
                e.entry.statement.key_id, e.entry.statement.actor
            ),
        });
        rest = &rest[k + 1..];
    }
    violations.sort_by_key(|v| v.index);
    (registry, violations)
}
