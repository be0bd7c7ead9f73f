//! The rules and state of security advisories (`spec/advisories.md`): owners advise on their
//! own distributions, the registry's security team (role `security`) and the operator on any;
//! a later entry with the same id updates an advisory, a withdrawal ends it.

use super::*;
use crate::advisory::Advisory;
use crate::entry::OPERATOR;
use crate::packages::ROLE_SECURITY;

/// A withdrawal.
#[derive(Debug, Clone)]
pub struct Withdrawal {
    /// Who withdrew it.
    pub user: String,
    /// When.
    pub time: u64,
    /// Log index of the withdrawal.
    pub index: u64,
    /// Why.
    pub reason: Option<String>,
}

/// An advisory as the log knows it.
#[derive(Debug, Clone)]
pub struct AdvisoryState {
    /// The advisory in force (the latest `advisory` entry with its id).
    pub advisory: Advisory,
    /// Who stated it last.
    pub user: String,
    /// Time of the first entry.
    pub published: u64,
    /// Time of the latest entry (the withdrawal's, when withdrawn).
    pub modified: u64,
    /// Log index of the advisory in force.
    pub index: u64,
    /// Log indexes of every entry about it, withdrawal included.
    pub history: Vec<u64>,
    /// The withdrawal, when withdrawn.
    pub withdrawn: Option<Withdrawal>,
}

impl AdvisoryState {
    /// Whether it is in force and affects `dist` `version`.
    pub fn affects(&self, dist: &str, version: &str) -> bool {
        self.withdrawn.is_none() && self.advisory.affects(dist, version)
    }
}

impl Registry {
    /// An advisory by id (case-insensitive), withdrawn ones too.
    pub fn advisory(&self, id: &str) -> Option<&AdvisoryState> {
        self.advisories.get(&id.to_ascii_lowercase()).map(|a| &**a)
    }

    /// Every advisory, withdrawn ones too, by id.
    pub fn advisories(&self) -> impl Iterator<Item = &AdvisoryState> {
        self.advisories.values().map(|a| &**a)
    }

    /// The advisories in force that affect `dist` `version`.
    pub fn advisories_affecting(&self, dist: &str, version: &str) -> Vec<&AdvisoryState> {
        self.advisories()
            .filter(|a| a.affects(dist, version))
            .collect()
    }

    /// Whether `actor` may advise on every distribution `adv` names: the operator and the
    /// security team may on any; an owner on its own.
    fn may_advise(&self, actor: &str, adv: &Advisory) -> Result<(), Violation> {
        if actor == OPERATOR || self.has_role(ROLE_SECURITY, actor) {
            return Ok(());
        }
        for dist in adv.dists() {
            let d = self.dists.get(&dist.to_ascii_lowercase()).ok_or_else(|| {
                violation(Rule::UnknownRelease, format!("no distribution {dist}"))
            })?;
            if !d.owners.contains(actor) {
                return Err(violation(
                    Rule::NotOwner,
                    format!(
                        "{actor} may not publish advisories for {}: its owners and the \
                         registry's security team (role {ROLE_SECURITY}) may",
                        d.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// An advisory: in the format, about distributions that exist, by someone who may advise
    /// on them (and on those of the advisory it updates), changing something, not reviving a
    /// withdrawn one.
    pub(super) fn check_advisory(&self, actor: &str, adv: &Advisory) -> Result<(), Violation> {
        adv.check()
            .map_err(|e| violation(Rule::InvalidAdvisory, e.0))?;
        if let Some(d) = adv
            .dists()
            .find(|d| !self.dists.contains_key(&d.to_ascii_lowercase()))
        {
            return Err(violation(
                Rule::UnknownRelease,
                format!("no distribution {d}"),
            ));
        }
        self.may_advise(actor, adv)?;
        if let Some(now) = self.advisory(&adv.id) {
            if now.withdrawn.is_some() {
                return Err(violation(
                    Rule::InvalidAdvisory,
                    format!("{} was withdrawn; publish a new advisory", now.advisory.id),
                ));
            }
            self.may_advise(actor, &now.advisory)?;
            if now.advisory == *adv {
                return Err(violation(
                    Rule::NoChange,
                    format!("{} says that already", adv.id),
                ));
            }
        }
        Ok(())
    }

    /// A withdrawal: of an advisory in force, by someone who may update it.
    pub(super) fn check_withdraw(&self, actor: &str, id: &str) -> Result<(), Violation> {
        let Some(now) = self.advisory(id) else {
            return Err(violation(
                Rule::UnknownRelease,
                format!("no advisory {}", id.chars().take(80).collect::<String>()),
            ));
        };
        if now.withdrawn.is_some() {
            return Err(violation(
                Rule::NoChange,
                format!("{} is withdrawn already", now.advisory.id),
            ));
        }
        self.may_advise(actor, &now.advisory)
    }

    pub(super) fn apply_advisory(
        &mut self,
        index: u64,
        (actor, time): (&str, u64),
        adv: &Advisory,
    ) {
        let key = adv.id.to_ascii_lowercase();
        match self.advisories.get_mut(&key) {
            Some(a) => {
                let a = Arc::make_mut(a);
                a.advisory = adv.clone();
                a.user = actor.to_string();
                a.modified = time;
                a.index = index;
                a.history.push(index);
            }
            None => {
                self.advisories.insert(
                    key,
                    Arc::new(AdvisoryState {
                        advisory: adv.clone(),
                        user: actor.to_string(),
                        published: time,
                        modified: time,
                        index,
                        history: vec![index],
                        withdrawn: None,
                    }),
                );
            }
        }
    }

    pub(super) fn apply_withdraw(
        &mut self,
        index: u64,
        (actor, time): (&str, u64),
        id: &str,
        reason: Option<&str>,
    ) {
        if let Some(a) = self.advisories.get_mut(&id.to_ascii_lowercase()) {
            let a = Arc::make_mut(a);
            a.modified = time;
            a.history.push(index);
            a.withdrawn = Some(Withdrawal {
                user: actor.to_string(),
                time,
                index,
                reason: reason.map(str::to_string),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::advisory::{Affected, Event, Range};
    use crate::authority_tests::{Log, account, entry, release};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn adv(id: &str, dists: &[&str], fixed: &str) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: vec![],
            summary: "widget() runs untrusted input".into(),
            details: String::new(),
            severity: vec![],
            affected: dists
                .iter()
                .map(|d| Affected {
                    dist: d.to_string(),
                    ranges: vec![Range {
                        kind: "SEMVER".into(),
                        events: vec![Event::Introduced("0".into()), Event::Fixed(fixed.into())],
                    }],
                    versions: vec![],
                })
                .collect(),
            references: vec![],
        }
    }

    #[test]
    fn owners_and_the_security_team_advise_and_withdraw() {
        let op = key(9);
        let mut log = Log::with_operator(&op);
        let (alice, bob, carol) = (key(1), key(2), key(3));
        log.ok(account("alice", &alice));
        log.ok(account("bob", &bob));
        log.ok(account("carol", &carol));
        log.ok(release("alice", &alice, "widget", "1.0.0", &["widget"]));
        log.ok(release("bob", &bob, "gadget", "1.0.0", &["gadget"]));
        let advise = |who: &str, k: &SigningKey, a: Advisory| entry(who, k, Action::Advisory(a));
        let withdraw = |who: &str, k: &SigningKey, id: &str| {
            entry(
                who,
                k,
                Action::AdvisoryWithdraw {
                    id: id.into(),
                    reason: Some("not a vulnerability".into()),
                },
            )
        };

        // Not an owner, nor of every dist named; no such dist; malformed.
        log.refused(
            advise("bob", &bob, adv("PGEXT-1", &["widget"], "1.0.1")),
            Rule::NotOwner,
        );
        log.refused(
            advise(
                "alice",
                &alice,
                adv("PGEXT-1", &["widget", "gadget"], "1.0.1"),
            ),
            Rule::NotOwner,
        );
        log.refused(
            advise("alice", &alice, adv("PGEXT-1", &["nosuch"], "1.0.1")),
            Rule::UnknownRelease,
        );
        log.refused(
            advise("alice", &alice, adv("PGEXT-1", &["widget"], "one")),
            Rule::InvalidAdvisory,
        );

        log.ok(advise(
            "alice",
            &alice,
            adv("PGEXT-1", &["widget"], "1.0.1"),
        ));
        assert_eq!(log.reg.advisories_affecting("Widget", "1.0.0").len(), 1);
        assert!(log.reg.advisories_affecting("widget", "1.0.1").is_empty());
        log.refused(
            advise("alice", &alice, adv("PGEXT-1", &["widget"], "1.0.1")),
            Rule::NoChange,
        );
        // Bob may not take over alice's id, even for his own dist.
        log.refused(
            advise("bob", &bob, adv("PGEXT-1", &["gadget"], "1.0.1")),
            Rule::NotOwner,
        );
        log.refused(withdraw("bob", &bob, "PGEXT-1"), Rule::NotOwner);

        // The security team advises on any dist and updates anyone's advisory.
        log.refused(
            advise(
                "carol",
                &carol,
                adv("PGEXT-1", &["widget", "gadget"], "1.0.2"),
            ),
            Rule::NotOwner,
        );
        log.ok(entry(
            OPERATOR,
            &op,
            Action::RoleGrant {
                role: ROLE_SECURITY.into(),
                user: "carol".into(),
            },
        ));
        log.ok(advise(
            "carol",
            &carol,
            adv("PGEXT-1", &["widget", "gadget"], "1.0.2"),
        ));
        let a = log.reg.advisory("pgext-1").unwrap();
        assert_eq!(a.user, "carol");
        assert_eq!(a.history, [5, 7]);
        assert_eq!(log.reg.advisories_affecting("gadget", "1.0.1").len(), 1);
        // Now alice no longer owns every dist it names.
        log.refused(withdraw("alice", &alice, "PGEXT-1"), Rule::NotOwner);
        log.refused(withdraw("carol", &carol, "PGEXT-404"), Rule::UnknownRelease);
        log.ok(withdraw("carol", &carol, "PGEXT-1"));
        let a = log.reg.advisory("PGEXT-1").unwrap();
        assert_eq!(a.withdrawn.as_ref().unwrap().index, 8);
        assert!(log.reg.advisories_affecting("widget", "1.0.0").is_empty());
        log.refused(withdraw("carol", &carol, "PGEXT-1"), Rule::NoChange);
        log.refused(
            advise("carol", &carol, adv("PGEXT-1", &["widget"], "1.0.3")),
            Rule::InvalidAdvisory,
        );
        // The operator advises without an account.
        log.ok(advise(OPERATOR, &op, adv("PGEXT-2", &["gadget"], "2.0.0")));
        assert_eq!(log.reg.advisories().count(), 2);
    }
}
