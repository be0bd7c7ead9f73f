//! C2SP tlog-policy files: which logs a client trusts, which witnesses, and the quorum of
//! witness cosignatures a checkpoint needs. One directive per line, `#` starts a comment:
//!
//! ```text
//! log <vkey> [url]
//! witness <name> <vkey> [url]
//! group <name> <k|any|all> <member>...
//! quorum <name|none>
//! ```
//!
//! Members name witnesses or groups defined on earlier lines (so groups cannot form cycles);
//! witness and group names share one namespace; `k` is at most the number of members.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Error, Result};
use crate::keys::VerifierKey;

/// Most logs, witnesses and groups a policy may define, each.
pub const MAX_POLICY_ITEMS: usize = 1024;

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Trusted logs, with their URLs when given.
    pub logs: Vec<(VerifierKey, Option<String>)>,
    witnesses: BTreeMap<String, (VerifierKey, Option<String>)>,
    groups: BTreeMap<String, (usize, Vec<String>)>,
    /// The group or witness whose rule a checkpoint must satisfy; `None` for `quorum none`.
    pub quorum: Option<String>,
}

fn bad(line: usize, why: impl std::fmt::Display) -> Error {
    Error::MalformedPolicy(format!("line {line}: {why}"))
}

impl Policy {
    /// Parses a policy file.
    ///
    /// # Errors
    /// [`Error::MalformedPolicy`] naming the line at fault.
    pub fn parse(text: &str) -> Result<Policy> {
        let mut p = Policy {
            logs: Vec::new(),
            witnesses: BTreeMap::new(),
            groups: BTreeMap::new(),
            quorum: None,
        };
        let mut quorum_seen = false;
        for (n, raw) in text.lines().enumerate() {
            let n = n + 1;
            let line = raw.split('#').next().unwrap_or_default().trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            let Some((&directive, args)) = words.split_first() else {
                continue;
            };
            let key = |s: &str| {
                s.parse::<VerifierKey>()
                    .map_err(|e| bad(n, format!("{s}: {e}")))
            };
            let url = |a: Option<&&str>| a.map(|u| u.to_string());
            if p.logs.len().max(p.witnesses.len()).max(p.groups.len()) >= MAX_POLICY_ITEMS {
                return Err(bad(n, format!("more than {MAX_POLICY_ITEMS} items")));
            }
            match directive {
                "log" if (1..=2).contains(&args.len()) => {
                    p.logs.push((key(args[0])?, url(args.get(1))));
                }
                "witness" if (2..=3).contains(&args.len()) => {
                    let name = args[0].to_string();
                    if p.defined(&name) {
                        return Err(bad(n, format!("{name} is defined twice")));
                    }
                    p.witnesses.insert(name, (key(args[1])?, url(args.get(2))));
                }
                "group" if args.len() >= 3 => {
                    let name = args[0].to_string();
                    if p.defined(&name) || name == "none" {
                        return Err(bad(n, format!("{name} is defined twice or reserved")));
                    }
                    let members: Vec<String> = args[2..].iter().map(|m| m.to_string()).collect();
                    let unique: BTreeSet<&String> = members.iter().collect();
                    if unique.len() != members.len() {
                        return Err(bad(n, "a member is listed twice"));
                    }
                    if let Some(m) = members.iter().find(|m| !p.defined(m)) {
                        return Err(bad(n, format!("{m} is not defined on an earlier line")));
                    }
                    let k = match args[1] {
                        "any" => 1,
                        "all" => members.len(),
                        k => k
                            .parse::<usize>()
                            .ok()
                            .filter(|k| (1..=members.len()).contains(k))
                            .ok_or_else(|| {
                                bad(
                                    n,
                                    format!(
                                        "threshold {k} is not any, all, or 1..={}",
                                        members.len()
                                    ),
                                )
                            })?,
                    };
                    p.groups.insert(name, (k, members));
                }
                "quorum" if args.len() == 1 => {
                    if quorum_seen {
                        return Err(bad(n, "a second quorum line"));
                    }
                    quorum_seen = true;
                    if args[0] != "none" {
                        if !p.defined(args[0]) {
                            return Err(bad(
                                n,
                                format!("{} is not defined on an earlier line", args[0]),
                            ));
                        }
                        p.quorum = Some(args[0].to_string());
                    }
                }
                "log" | "witness" | "group" | "quorum" => {
                    return Err(bad(n, format!("wrong number of arguments to {directive}")));
                }
                other => return Err(bad(n, format!("unknown directive {other}"))),
            }
        }
        if !quorum_seen {
            return Err(Error::MalformedPolicy("no quorum line".into()));
        }
        Ok(p)
    }

    fn defined(&self, name: &str) -> bool {
        self.witnesses.contains_key(name) || self.groups.contains_key(name)
    }

    /// The witnesses' keys.
    pub fn witness_keys(&self) -> Vec<VerifierKey> {
        self.witnesses.values().map(|(k, _)| k.clone()).collect()
    }

    /// Whether the cosigners (witnesses whose cosignatures verified) satisfy the quorum.
    pub fn satisfied_by(&self, cosigners: &[VerifierKey]) -> bool {
        self.quorum
            .as_deref()
            .is_none_or(|q| self.holds(q, cosigners))
    }

    fn holds(&self, name: &str, cosigners: &[VerifierKey]) -> bool {
        if let Some((key, _)) = self.witnesses.get(name) {
            return cosigners.contains(key);
        }
        self.groups.get(name).is_some_and(|(k, members)| {
            members.iter().filter(|m| self.holds(m, cosigners)).count() >= *k
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, SignerKey};

    fn key(name: &str) -> VerifierKey {
        SignerKey::from_seed(name, KeyType::Ed25519, &[name.len() as u8; 32])
            .unwrap()
            .verifier()
            .clone()
    }

    fn policy(quorum: &str) -> (Policy, [VerifierKey; 3]) {
        let [a, b, c] = ["wa.example", "wbb.example", "wccc.example"].map(key);
        let text = format!(
            "# a comment\nlog {} https://log.example\nwitness a {a}\nwitness b {b} https://b.example\nwitness c {c}\ngroup two 2 a b c\ngroup top any two\n{quorum}\n",
            key("log.example")
        );
        (Policy::parse(&text).unwrap(), [a, b, c])
    }

    #[test]
    fn quorums_nest() {
        let (p, [a, b, c]) = policy("quorum top");
        assert_eq!(p.logs.len(), 1);
        assert_eq!(p.witness_keys().len(), 3);
        assert!(!p.satisfied_by(&[]));
        assert!(!p.satisfied_by(std::slice::from_ref(&a)));
        assert!(p.satisfied_by(&[a.clone(), c.clone()]));
        assert!(p.satisfied_by(&[b.clone(), c.clone()]));
        let (p, _) = policy("quorum a");
        assert!(p.satisfied_by(std::slice::from_ref(&a)) && !p.satisfied_by(&[b, c]));
        let (p, _) = policy("quorum none");
        assert!(p.satisfied_by(&[]));
    }

    #[test]
    fn bad_policies_name_the_line() {
        let w = key("w.example");
        for (text, why) in [
            (
                format!("witness a {w}\nquorum b\n"),
                "line 2: b is not defined",
            ),
            (
                format!("witness a {w}\nwitness a {w}\nquorum a\n"),
                "defined twice",
            ),
            (
                format!("witness a {w}\ngroup g 2 a\nquorum g\n"),
                "threshold 2",
            ),
            (
                format!("group g any a\nwitness a {w}\nquorum g\n"),
                "line 1: a is not defined",
            ),
            (
                format!("witness a {w}\ngroup g any a a\nquorum g\n"),
                "listed twice",
            ),
            (
                format!("witness a {w}\nquorum a\nquorum a\n"),
                "second quorum",
            ),
            (format!("witness a {w}\n"), "no quorum"),
            ("witness a notakey\nquorum none\n".into(), "line 1"),
            ("frobnicate\nquorum none\n".into(), "unknown directive"),
            ("log\nquorum none\n".into(), "wrong number"),
        ] {
            let e = Policy::parse(&text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }
}
