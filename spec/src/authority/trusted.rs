//! The rules and state of trusted publishing (`spec/trusted-publishing.md`): owners add and
//! remove a dist's trusted publishers; the operator records a CI key for claims one of them
//! matches; that key signs one release of the dist, for the owner who trusted the publisher,
//! before it expires.

use super::*;
use crate::entry::OPERATOR;
use crate::trusted::{Claims, MAX_KEY_SECS, MAX_PUBLISHERS, Publisher};

/// A trusted publisher in force.
#[derive(Debug, Clone)]
pub struct PublisherState {
    /// The workflow.
    pub publisher: Publisher,
    /// The owner who added it.
    pub user: String,
    /// Log index of the `publisher_add`.
    pub index: u64,
}

/// A CI key as the log knows it.
#[derive(Debug, Clone)]
pub struct CiKeyState {
    /// The dist it may publish.
    pub dist: String,
    /// The owner it publishes for.
    pub user: String,
    /// The key.
    pub key: VerifyingKey,
    /// The publisher matched.
    pub publisher: Publisher,
    /// What the ID token said of the run.
    pub claims: Claims,
    /// When the node recorded it.
    pub time: u64,
    /// Until when it may sign.
    pub expires: u64,
    /// Log index of the `ci_key` entry.
    pub index: u64,
    /// Log index of the release it signed, once it has.
    pub used: Option<u64>,
}

impl Registry {
    /// A dist's trusted publishers in force.
    pub fn publishers(&self, dist: &str) -> &[PublisherState] {
        self.publishers
            .get(&dist.to_ascii_lowercase())
            .map_or(&[], |p| p.as_slice())
    }

    /// A CI key by its key id.
    pub fn ci_key(&self, key_id: &str) -> Option<&CiKeyState> {
        self.ci_keys.get(key_id).map(|k| &**k)
    }

    /// A publisher added or removed: by an owner, within bounds, changing something.
    pub(super) fn check_publisher_change(
        &self,
        actor: &str,
        dist: &str,
        publisher: &Publisher,
        add: bool,
    ) -> Result<(), Violation> {
        let d = self.owned_dist(actor, dist)?;
        publisher
            .check()
            .map_err(|e| violation(Rule::InvalidPublisher, e.0))?;
        let now = self.publishers(&d.name);
        let present = now.iter().any(|p| p.publisher == *publisher);
        if present == add {
            let state = if add { "trusts" } else { "does not trust" };
            return Err(violation(
                Rule::NoChange,
                format!("{} {state} that publisher", d.name),
            ));
        }
        if add && now.len() >= MAX_PUBLISHERS {
            return Err(violation(
                Rule::InvalidPublisher,
                format!(
                    "{} has {MAX_PUBLISHERS} trusted publishers, the most a dist may have",
                    d.name
                ),
            ));
        }
        Ok(())
    }

    /// A CI key: for a trusted publisher of the dist in force whose claims match, for the owner
    /// who added it (still an owner), with a key never registered, living at most
    /// [`MAX_KEY_SECS`].
    pub(super) fn check_ci_key(
        &self,
        actor: &str,
        (dist, user, key): (&str, &str, &str),
        publisher: &Publisher,
        claims: &Claims,
        (time, expires): (u64, u64),
    ) -> Result<(), Violation> {
        if actor != OPERATOR {
            return Err(violation(
                Rule::NotOperator,
                "only the registry's operator records CI keys, for ID tokens its node verified",
            ));
        }
        let d = self
            .dists
            .get(&dist.to_ascii_lowercase())
            .ok_or_else(|| violation(Rule::UnknownRelease, format!("no distribution {dist}")))?;
        claims
            .check()
            .map_err(|e| violation(Rule::InvalidPublisher, e.0))?;
        let Some(p) = self
            .publishers(dist)
            .iter()
            .find(|p| p.publisher == *publisher)
        else {
            return Err(violation(
                Rule::NotTrusted,
                format!("{} does not trust that publisher", d.name),
            ));
        };
        if !publisher.matches(claims) {
            return Err(violation(
                Rule::NotTrusted,
                format!(
                    "the run of {} does not match the publisher named",
                    claims.repository
                ),
            ));
        }
        if !p.user.eq_ignore_ascii_case(user) || !d.owners.contains(&p.user) {
            return Err(violation(
                Rule::NotOwner,
                format!(
                    "a CI key publishes for the owner who trusted the publisher ({}), who must still own {}",
                    p.user, d.name
                ),
            ));
        }
        let k = decode_public_key(key).ok_or_else(|| {
            violation(Rule::InvalidName, "the CI key is not an Ed25519 public key")
        })?;
        let id = user_key_id(k.as_bytes());
        if self.key_owner.contains_key(&id) {
            return Err(violation(
                Rule::KeyReused,
                format!("key {id} is registered already"),
            ));
        }
        if expires <= time || expires - time > MAX_KEY_SECS {
            return Err(violation(
                Rule::InvalidPublisher,
                format!("a CI key lives from its entry's time for at most {MAX_KEY_SECS} seconds"),
            ));
        }
        Ok(())
    }

    /// The key of a release signed by a CI key: the key's dist, for its owner, unused, before
    /// it expires. `None` when the key id is no CI key.
    pub(super) fn ci_signer(&self, entry: &Entry) -> Result<Option<VerifyingKey>, Violation> {
        let st = &entry.statement;
        let Some(ck) = self.ci_key(&st.key_id) else {
            return Ok(None);
        };
        let refuse = |why: &str| {
            Err(violation(
                Rule::KeyNotActive,
                format!("CI key {} {why}", st.key_id),
            ))
        };
        match &st.action {
            Action::Release(r) if r.dist.eq_ignore_ascii_case(&ck.dist) => {}
            _ => return refuse(&format!("signs only a release of {}", ck.dist)),
        }
        if !ck.user.eq_ignore_ascii_case(&st.actor) {
            return refuse(&format!("publishes for {}", ck.user));
        }
        if ck.used.is_some() {
            return refuse("has signed its release already");
        }
        if st.time > ck.expires || st.time < ck.time {
            return refuse("signs only while it lives");
        }
        Ok(Some(ck.key))
    }

    pub(super) fn apply_publisher(
        &mut self,
        index: u64,
        actor: &str,
        dist: &str,
        publisher: &Publisher,
        add: bool,
    ) {
        let key = dist.to_ascii_lowercase();
        let list = Arc::make_mut(self.publishers.entry(key.clone()).or_default());
        if add {
            list.push(PublisherState {
                publisher: publisher.clone(),
                user: actor.to_string(),
                index,
            });
        } else {
            list.retain(|p| p.publisher != *publisher);
        }
        if let Some(d) = self.dists.get_mut(&key) {
            Arc::make_mut(d).history.push(index);
        }
    }

    pub(super) fn apply_ci_key(
        &mut self,
        (index, time): (u64, u64),
        (dist, user, key): (&str, &str, &str),
        publisher: &Publisher,
        claims: &Claims,
        expires: u64,
    ) {
        let Some(k) = decode_public_key(key) else {
            return;
        };
        let id = user_key_id(k.as_bytes());
        let user = user.to_ascii_lowercase();
        self.key_owner.insert(id.clone(), user.clone());
        self.ci_keys.insert(
            id,
            Arc::new(CiKeyState {
                dist: dist.to_string(),
                user,
                key: k,
                publisher: publisher.clone(),
                claims: claims.clone(),
                time,
                expires,
                index,
                used: None,
            }),
        );
        // In the dist's history: a client proving a release replays it to know the key.
        if let Some(d) = self.dists.get_mut(&dist.to_ascii_lowercase()) {
            Arc::make_mut(d).history.push(index);
        }
    }

    /// Marks the CI key that signed release `r` (entry `index`) used, and the release as
    /// published from CI.
    pub(super) fn use_ci_key(&mut self, key_id: &str, actor: &str, r: &Release, index: u64) {
        let Some(ck) = self.ci_keys.get_mut(key_id) else {
            return;
        };
        if !ck.user.eq_ignore_ascii_case(actor) || !ck.dist.eq_ignore_ascii_case(&r.dist) {
            return;
        }
        Arc::make_mut(ck).used = Some(index);
        if let Some(d) = self.dists.get_mut(&r.dist.to_ascii_lowercase()) {
            if let Some(rel) = Arc::make_mut(d)
                .releases
                .get_mut(&r.version.to_ascii_lowercase())
            {
                rel.ci = Some(key_id.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::authority_tests::{Log, account, entry, release};

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn gh(repo: &str) -> Publisher {
        Publisher {
            issuer: "https://token.actions.githubusercontent.com".into(),
            repository: repo.into(),
            workflow: Some(".github/workflows/release.yml".into()),
            git_ref: None,
            environment: None,
        }
    }

    fn claims(repo: &str) -> Claims {
        Claims {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: format!("repo:{repo}:ref:refs/tags/v1.1.0"),
            repository: repo.into(),
            workflow: Some(".github/workflows/release.yml".into()),
            git_ref: Some("refs/tags/v1.1.0".into()),
            sha: Some("abc123".into()),
            environment: None,
            run: Some("42".into()),
        }
    }

    fn ci_key(
        op: &SigningKey,
        dist: &str,
        user: &str,
        k: &SigningKey,
        c: Claims,
        secs: u64,
    ) -> Entry {
        entry(
            OPERATOR,
            op,
            Action::CiKey {
                dist: dist.into(),
                user: user.into(),
                key: encode_public_key(&k.verifying_key()),
                publisher: gh("octo/widget"),
                claims: c,
                expires: 1 + secs,
            },
        )
    }

    /// A release signed by `k` for `actor` at `time`.
    fn ci_release(actor: &str, k: &SigningKey, dist: &str, version: &str, time: u64) -> Entry {
        let mut e = release(actor, k, dist, version, &[dist]);
        e.statement.time = time;
        e.statement.sign(k)
    }

    #[test]
    fn ci_keys_publish_once_for_trusted_runs_only() {
        let op = key(9);
        let mut log = Log::with_operator(&op);
        let (alice, bob) = (key(1), key(2));
        log.ok(account("alice", &alice));
        log.ok(account("bob", &bob));
        log.ok(release("alice", &alice, "widget", "1.0.0", &["widget"]));
        log.ok(release("bob", &bob, "gadget", "1.0.0", &["gadget"]));
        let add = |who: &str, k: &SigningKey, dist: &str, p: Publisher| {
            entry(
                who,
                k,
                Action::PublisherAdd {
                    dist: dist.into(),
                    publisher: p,
                },
            )
        };
        // Owners only; bounded; no twice.
        log.refused(
            add("bob", &bob, "widget", gh("octo/widget")),
            Rule::NotOwner,
        );
        let mut bad = gh("octo/widget");
        bad.issuer = "http://evil.example".into();
        log.refused(add("alice", &alice, "widget", bad), Rule::InvalidPublisher);
        log.ok(add("alice", &alice, "widget", gh("octo/widget")));
        log.refused(
            add("alice", &alice, "widget", gh("octo/widget")),
            Rule::NoChange,
        );
        assert_eq!(log.reg.publishers("WIDGET").len(), 1);

        let ci = key(20);
        // Only the operator records keys; only for claims a publisher of that dist matches.
        log.refused(
            entry(
                "alice",
                &alice,
                Action::CiKey {
                    dist: "widget".into(),
                    user: "alice".into(),
                    key: encode_public_key(&ci.verifying_key()),
                    publisher: gh("octo/widget"),
                    claims: claims("octo/widget"),
                    expires: 60,
                },
            ),
            Rule::NotOperator,
        );
        log.refused(
            ci_key(&op, "widget", "alice", &ci, claims("octo/other"), 600),
            Rule::NotTrusted,
        );
        log.refused(
            ci_key(&op, "gadget", "bob", &ci, claims("octo/widget"), 600),
            Rule::NotTrusted,
        );
        log.refused(
            ci_key(&op, "widget", "bob", &ci, claims("octo/widget"), 600),
            Rule::NotOwner,
        );
        log.refused(
            ci_key(&op, "widget", "alice", &ci, claims("octo/widget"), 3600),
            Rule::InvalidPublisher,
        );
        log.refused(
            ci_key(&op, "widget", "alice", &alice, claims("octo/widget"), 600),
            Rule::KeyReused,
        );
        log.ok(ci_key(
            &op,
            "widget",
            "alice",
            &ci,
            claims("octo/widget"),
            600,
        ));

        // The key signs one release of its dist, for its owner, while it lives.
        log.refused(
            ci_release("alice", &ci, "gadget", "1.1.0", 10),
            Rule::KeyNotActive,
        );
        log.refused(
            ci_release("bob", &ci, "widget", "1.1.0", 10),
            Rule::KeyNotActive,
        );
        log.refused(
            ci_release("alice", &ci, "widget", "1.1.0", 700),
            Rule::KeyNotActive,
        );
        log.ok(ci_release("alice", &ci, "widget", "1.1.0", 10));
        let r = &log.reg.dist("widget").unwrap().releases["1.1.0"];
        let ck = log.reg.ci_key(r.ci.as_deref().unwrap()).unwrap();
        assert_eq!(ck.claims.sha.as_deref(), Some("abc123"));
        assert_eq!(r.user, "alice");
        let ck_index = ck.index;
        log.refused(
            ci_release("alice", &ci, "widget", "1.2.0", 11),
            Rule::KeyNotActive,
        );
        // Clients that replay only the dist's history know the key.
        let d = log.reg.dist("widget").unwrap();
        assert!(d.history.contains(&ck_index));

        // Removed, a publisher gets no more keys.
        log.ok(entry(
            "alice",
            &alice,
            Action::PublisherRemove {
                dist: "widget".into(),
                publisher: gh("octo/widget"),
            },
        ));
        log.refused(
            ci_key(&op, "widget", "alice", &key(21), claims("octo/widget"), 600),
            Rule::NotTrusted,
        );
    }
}
