//! The authority rules, judged without applying: who may sign what, which names and
//! versions are taken, which extensions belong to whom (`spec/entries.md`, Authority rules).

use super::*;

impl Registry {
    /// Checks `entry` against the rules without applying it.
    ///
    /// # Errors
    /// The [`Violation`].
    pub fn check(&self, entry: &Entry) -> Result<(), Violation> {
        let key = self.signer(entry)?;
        entry
            .verify_signature(&key)
            .map_err(|e| violation(Rule::BadSignature, e.to_string()))?;
        let st = &entry.statement;
        self.check_action(
            &st.actor.to_ascii_lowercase(),
            (&st.key_id, st.time),
            &st.action,
        )
    }

    /// Every rule but the signature; returns the key the signature must verify with.
    pub(super) fn check_unsigned(&self, entry: &Entry) -> Result<VerifyingKey, Violation> {
        let key = self.signer(entry)?;
        let st = &entry.statement;
        self.check_action(
            &st.actor.to_ascii_lowercase(),
            (&st.key_id, st.time),
            &st.action,
        )?;
        Ok(key)
    }

    /// Who may sign `entry`: for a new account, the key it registers; otherwise an active key
    /// of the actor.
    pub(super) fn signer(&self, entry: &Entry) -> Result<VerifyingKey, Violation> {
        let st = &entry.statement;
        let actor = st.actor.to_ascii_lowercase();
        if Registry::is_operator_statement(entry) {
            return self.operator_signer(entry);
        }
        if let Action::Account { user, key, .. } = &st.action {
            if !valid_user_name(user) || *user != st.actor {
                return Err(violation(
                    Rule::InvalidName,
                    format!("invalid account name {user:?}"),
                ));
            }
            if is_reserved(user) {
                return Err(violation(Rule::ReservedName, format!("{user} is reserved")));
            }
            if self.accounts.contains_key(user) {
                return Err(violation(
                    Rule::AccountExists,
                    format!("account {user} exists"),
                ));
            }
            let k = decode_public_key(key).ok_or_else(|| {
                violation(
                    Rule::InvalidName,
                    "account key is not an Ed25519 public key",
                )
            })?;
            let id = user_key_id(k.as_bytes());
            if id != st.key_id {
                return Err(violation(
                    Rule::KeyNotActive,
                    "an account entry must be signed by the key it registers",
                ));
            }
            if self.key_owner.contains_key(&id) {
                return Err(violation(
                    Rule::KeyReused,
                    format!("key {id} is registered already"),
                ));
            }
            Ok(k)
        } else {
            let account = self
                .accounts
                .get(&actor)
                .ok_or_else(|| violation(Rule::UnknownActor, format!("no account {}", st.actor)))?;
            if !account.keys.contains_key(&st.key_id) {
                if let Some(k) = self.ci_signer(entry)? {
                    return Ok(k);
                }
            }
            let key = account
                .keys
                .get(&st.key_id)
                .filter(|k| k.active)
                .ok_or_else(|| {
                    violation(
                        Rule::KeyNotActive,
                        format!("key {} is not an active key of {actor}", st.key_id),
                    )
                })?;
            Ok(key.key)
        }
    }

    pub(super) fn owned_dist(&self, actor: &str, dist: &str) -> Result<&DistState, Violation> {
        let d = self
            .dists
            .get(&dist.to_ascii_lowercase())
            .ok_or_else(|| violation(Rule::UnknownRelease, format!("no distribution {dist}")))?;
        if !d.owners.contains(actor) {
            return Err(violation(
                Rule::NotOwner,
                format!("{actor} is not an owner of {}", d.name),
            ));
        }
        Ok(d)
    }

    pub(super) fn check_action(
        &self,
        actor: &str,
        (key_id, time): (&str, u64),
        action: &Action,
    ) -> Result<(), Violation> {
        match action {
            Action::Account {
                name, email, uri, ..
            } => {
                check_text("name", name.as_ref())?;
                check_text("email", email.as_ref())?;
                check_text("uri", uri.as_ref())
            }
            Action::KeyAdd { key: new_key } | Action::KeyRotate { new_key } => {
                let k = decode_public_key(new_key).ok_or_else(|| {
                    violation(Rule::InvalidName, "new key is not an Ed25519 public key")
                })?;
                if self.key_owner.contains_key(&user_key_id(k.as_bytes())) {
                    return Err(violation(
                        Rule::KeyReused,
                        "the new key is registered already",
                    ));
                }
                Ok(())
            }
            Action::KeyRevoke { revoked } => {
                let acct = &self.accounts[actor];
                if !acct.keys.get(revoked).is_some_and(|k| k.active) {
                    return Err(violation(
                        Rule::NoChange,
                        format!("{revoked} is not an active key of {actor}"),
                    ));
                }
                if revoked == key_id || acct.keys.values().filter(|k| k.active).count() < 2 {
                    return Err(violation(
                        Rule::WouldOrphan,
                        "revoke a key with another key; rotate to replace the last one",
                    ));
                }
                Ok(())
            }
            Action::Release(r) => self.check_release(actor, r),
            Action::Build(b) => self.check_build(actor, b),
            Action::Import(i) => self.check_import(actor, i),
            Action::Claim {
                pgxn_user,
                user,
                evidence,
            } => self.check_claim(actor, pgxn_user, user, evidence),
            Action::RoleGrant { role, user } => self.check_role(actor, role, user, true),
            Action::RoleRevoke { role, user } => self.check_role(actor, role, user, false),
            Action::PackageMap { purl, systems } => self.check_package_map(actor, purl, systems),
            Action::Advisory(a) => self.check_advisory(actor, a),
            Action::PublisherAdd { dist, publisher } => {
                self.check_publisher_change(actor, dist, publisher, true)
            }
            Action::PublisherRemove { dist, publisher } => {
                self.check_publisher_change(actor, dist, publisher, false)
            }
            Action::CiKey {
                dist,
                user,
                key,
                publisher,
                claims,
                expires,
            } => self.check_ci_key(
                actor,
                (dist, user, key),
                publisher,
                claims,
                (time, *expires),
            ),
            Action::AdvisoryWithdraw { id, reason } => {
                check_text("reason", reason.as_ref())?;
                self.check_withdraw(actor, id)
            }
            Action::OwnerGrant { dist, user } => {
                let d = self.owned_dist(actor, dist)?;
                if !self.accounts.contains_key(&user.to_ascii_lowercase()) {
                    return Err(violation(Rule::UnknownUser, format!("no account {user}")));
                }
                if d.owners.contains(&user.to_ascii_lowercase()) {
                    return Err(violation(
                        Rule::NoChange,
                        format!("{user} already owns {}", d.name),
                    ));
                }
                Ok(())
            }
            Action::OwnerRevoke { dist, user } => {
                let d = self.owned_dist(actor, dist)?;
                if !d.owners.contains(&user.to_ascii_lowercase()) {
                    return Err(violation(
                        Rule::NoChange,
                        format!("{user} does not own {}", d.name),
                    ));
                }
                if d.owners.len() == 1 {
                    return Err(violation(
                        Rule::WouldOrphan,
                        format!("{} would have no owner", d.name),
                    ));
                }
                Ok(())
            }
            Action::Yank { dist, version, .. } | Action::Unyank { dist, version } => {
                if let Action::Yank { reason, .. } = action {
                    check_text("reason", reason.as_ref())?;
                }
                let d = self.owned_dist(actor, dist)?;
                let r = d
                    .releases
                    .get(&version.to_ascii_lowercase())
                    .ok_or_else(|| {
                        violation(Rule::UnknownRelease, format!("no release {dist}@{version}"))
                    })?;
                let yank = matches!(action, Action::Yank { .. });
                if r.yanked.is_some() == yank {
                    return Err(violation(
                        Rule::NoChange,
                        format!(
                            "{dist}@{version} is {}yanked",
                            if yank { "already " } else { "not " }
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    pub(super) fn check_release(&self, actor: &str, r: &Release) -> Result<(), Violation> {
        let version = parse_version(&r.version)?;
        self.check_release_fields(r)?;
        let dist_key = r.dist.to_ascii_lowercase();
        if let Some(d) = self.dists.get(&dist_key) {
            if !d.owners.contains(actor) {
                return Err(violation(
                    Rule::NotOwner,
                    format!("{actor} is not an owner of {}", d.name),
                ));
            }
            self.check_new_version(d, r, &version)?;
        }
        self.check_extensions(actor, &dist_key, r)
    }

    /// Names, reserved names, at least one extension, digests in lowercase hex.
    pub(super) fn check_release_fields(&self, r: &Release) -> Result<(), Violation> {
        for name in std::iter::once(&r.dist).chain(r.provides.keys()) {
            if !valid_term(name) {
                return Err(violation(
                    Rule::InvalidName,
                    format!("invalid name {name:?}"),
                ));
            }
            if is_reserved(name) {
                return Err(violation(Rule::ReservedName, format!("{name} is reserved")));
            }
        }
        if r.provides.is_empty() {
            return Err(violation(
                Rule::InvalidName,
                "a release must provide at least one extension",
            ));
        }
        let hex = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        };
        if !hex(&r.sha256, 64) || !hex(&r.sha1, 40) || !hex(&r.meta_sha256, 64) {
            return Err(violation(
                Rule::InvalidName,
                "digests must be lowercase hex",
            ));
        }
        Ok(())
    }

    /// A version new to the distribution, in PGXN's order.
    pub(super) fn check_new_version(
        &self,
        d: &DistState,
        r: &Release,
        version: &Version,
    ) -> Result<(), Violation> {
        // Imported versions may be PGXN's SemVer 1 prereleases; they count too.
        let existing: Vec<Version> = d
            .releases
            .keys()
            .filter_map(|v| pgxn_version(v).ok())
            .collect();
        if existing.iter().any(|v| v.cmp_precedence(version).is_eq()) {
            return Err(violation(
                Rule::DuplicateVersion,
                format!("{}@{} is published already", d.name, r.version),
            ));
        }
        check_order(version, &existing)
    }

    /// Every extension the release provides is new, or belongs to its distribution or to one
    /// the actor owns.
    pub(super) fn check_extensions(
        &self,
        actor: &str,
        dist_key: &str,
        r: &Release,
    ) -> Result<(), Violation> {
        for ext in r.provides.keys() {
            if let Some(owner_dist) = self.extensions.get(&ext.to_ascii_lowercase()) {
                if *owner_dist != dist_key && !self.dists[owner_dist].owners.contains(actor) {
                    return Err(violation(
                        Rule::ExtensionOwned,
                        format!(
                            "extension {ext} belongs to distribution {}, which {actor} does not own",
                            self.dists[owner_dist].name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A build: of a release that exists and is not yanked, named by its index and entry hash,
    /// for a well-formed target, not attested by this builder for this target before.
    pub(super) fn check_build(&self, actor: &str, b: &Build) -> Result<(), Violation> {
        let r = self
            .dist(&b.dist)
            .and_then(|d| d.releases.get(&b.version.to_ascii_lowercase()))
            .ok_or_else(|| {
                violation(
                    Rule::UnknownRelease,
                    format!("no release {}@{}", b.dist, b.version),
                )
            })?;
        if r.index != b.release_index || pgext_log::hex(&r.leaf) != b.release_hash {
            return Err(violation(
                Rule::ReleaseMismatch,
                format!(
                    "{}@{} is entry {} with hash {}, not entry {} with hash {}",
                    b.dist,
                    b.version,
                    r.index,
                    pgext_log::hex(&r.leaf),
                    b.release_index,
                    b.release_hash
                ),
            ));
        }
        if r.yanked.is_some() {
            return Err(violation(
                Rule::ReleaseYanked,
                format!("{}@{} is yanked", b.dist, b.version),
            ));
        }
        b.target
            .check()
            .map_err(|e| violation(Rule::InvalidTarget, e))?;
        let hex = |s: &str| {
            s.len() == 64
                && s.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        };
        if !hex(&b.sha256) || !hex(&b.log_sha256) {
            return Err(violation(
                Rule::InvalidName,
                "digests must be lowercase hex",
            ));
        }
        if b.size == 0 || b.size > crate::binary::MAX_BINARY_BYTES {
            return Err(violation(
                Rule::InvalidTarget,
                format!(
                    "a binary package is 1 to {} bytes, not {}",
                    crate::binary::MAX_BINARY_BYTES,
                    b.size
                ),
            ));
        }
        // One attestation per builder and target (the toolchain is recorded, not part of the
        // target); an attestation signed with a key since retired or revoked is withdrawn, and
        // the builder may attest again with its current key.
        let active = |x: &BuildState| {
            self.accounts
                .get(&x.user)
                .and_then(|a| a.keys.get(&x.key_id))
                .is_some_and(|k| k.active)
        };
        if r.builds
            .iter()
            .any(|x| x.user == actor && x.build.target.same_as(&b.target) && active(x))
        {
            return Err(violation(
                Rule::DuplicateBuild,
                format!(
                    "{actor} attested {}@{} for {} already",
                    b.dist,
                    b.version,
                    b.target.slug()
                ),
            ));
        }
        if r.builds.len() >= MAX_BUILDS_PER_RELEASE {
            return Err(violation(
                Rule::TooManyBuilds,
                format!(
                    "{}@{} has {MAX_BUILDS_PER_RELEASE} attestations, as many as a release may have",
                    b.dist, b.version
                ),
            ));
        }
        Ok(())
    }
}
