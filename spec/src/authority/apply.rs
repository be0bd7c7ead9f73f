//! How an entry the rules accepted changes the registry state.

use super::*;

impl Registry {
    pub(super) fn mutate(
        &mut self,
        index: u64,
        actor: &str,
        time: u64,
        key_id: &str,
        action: &Action,
        leaf: [u8; 32],
    ) {
        match action {
            Action::Account {
                user,
                key,
                name,
                email,
                uri,
                ..
            } => {
                if let Some(k) = decode_public_key(key) {
                    let id = user_key_id(k.as_bytes());
                    self.key_owner.insert(id.clone(), user.clone());
                    self.accounts.insert(
                        user.clone(),
                        Arc::new(AccountState {
                            user: user.clone(),
                            name: name.clone(),
                            email: email.clone(),
                            uri: uri.clone(),
                            keys: BTreeMap::from([(
                                id,
                                KeyState {
                                    key: k,
                                    active: true,
                                    added: index,
                                },
                            )]),
                            index,
                            history: vec![index],
                        }),
                    );
                }
            }
            Action::KeyAdd { key: new_key } | Action::KeyRotate { new_key } => {
                if let (Some(k), Some(acct)) =
                    (decode_public_key(new_key), self.accounts.get_mut(actor))
                {
                    let acct = Arc::make_mut(acct);
                    acct.history.push(index);
                    if matches!(action, Action::KeyRotate { .. }) {
                        if let Some(old) = acct.keys.get_mut(key_id) {
                            old.active = false;
                        }
                    }
                    let id = user_key_id(k.as_bytes());
                    acct.keys.insert(
                        id.clone(),
                        KeyState {
                            key: k,
                            active: true,
                            added: index,
                        },
                    );
                    self.key_owner.insert(id, actor.to_string());
                }
            }
            Action::KeyRevoke { revoked } => {
                if let Some(a) = self.accounts.get_mut(actor) {
                    let a = Arc::make_mut(a);
                    a.history.push(index);
                    if let Some(k) = a.keys.get_mut(revoked) {
                        k.active = false;
                    }
                }
            }
            Action::Release(r) => {
                let owners = BTreeSet::from([actor.to_string()]);
                self.add_release(index, r, (actor, time, false), (owners, None), leaf);
                self.use_ci_key(key_id, actor, r, index);
            }
            Action::Import(i) => {
                // An imported distribution belongs to its PGXN user: to the account that
                // claimed the name, or to nobody until someone does.
                let owners: BTreeSet<String> = self
                    .claim(&i.user)
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                let time = parse_pgxn_date(&i.date).unwrap_or(time);
                let pgxn_user = Some(i.user.to_ascii_lowercase());
                self.add_release(
                    index,
                    &i.release,
                    (&i.user, time, true),
                    (owners, pgxn_user),
                    leaf,
                );
            }
            Action::Claim {
                pgxn_user, user, ..
            } => {
                let (pgxn_user, user) = (pgxn_user.to_ascii_lowercase(), user.to_ascii_lowercase());
                self.claims.insert(pgxn_user.clone(), user.clone());
                let theirs: Vec<String> = self
                    .dists
                    .iter()
                    .filter(|(_, d)| d.pgxn_user.as_deref() == Some(pgxn_user.as_str()))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in theirs {
                    if let Some(d) = self.dists.get_mut(&k) {
                        let d = Arc::make_mut(d);
                        d.history.push(index);
                        d.owners.insert(user.clone());
                    }
                }
            }
            Action::OwnerGrant { dist, user } => {
                if let Some(d) = self.dists.get_mut(&dist.to_ascii_lowercase()) {
                    let d = Arc::make_mut(d);
                    d.history.push(index);
                    d.owners.insert(user.to_ascii_lowercase());
                }
            }
            Action::OwnerRevoke { dist, user } => {
                if let Some(d) = self.dists.get_mut(&dist.to_ascii_lowercase()) {
                    let d = Arc::make_mut(d);
                    d.history.push(index);
                    d.owners.remove(&user.to_ascii_lowercase());
                }
            }
            Action::Yank {
                dist,
                version,
                reason,
            } => {
                if let Some(d) = self.dists.get_mut(&dist.to_ascii_lowercase()) {
                    let d = Arc::make_mut(d);
                    d.history.push(index);
                    if let Some(r) = d.releases.get_mut(&version.to_ascii_lowercase()) {
                        r.yanked = Some(reason.clone().unwrap_or_default());
                    }
                }
            }
            Action::Unyank { dist, version } => {
                if let Some(d) = self.dists.get_mut(&dist.to_ascii_lowercase()) {
                    let d = Arc::make_mut(d);
                    d.history.push(index);
                    if let Some(r) = d.releases.get_mut(&version.to_ascii_lowercase()) {
                        r.yanked = None;
                    }
                }
            }
            Action::RoleGrant { role, user } => self.apply_role(role, user, true),
            Action::RoleRevoke { role, user } => self.apply_role(role, user, false),
            Action::PackageMap { purl, systems } => {
                self.apply_package_map(index, (actor, time), purl, systems);
            }
            Action::Advisory(a) => self.apply_advisory(index, (actor, time), a),
            Action::PublisherAdd { dist, publisher } => {
                self.apply_publisher(index, actor, dist, publisher, true);
            }
            Action::PublisherRemove { dist, publisher } => {
                self.apply_publisher(index, actor, dist, publisher, false);
            }
            Action::CiKey {
                dist,
                user,
                key,
                publisher,
                claims,
                expires,
            } => self.apply_ci_key(
                (index, time),
                (dist, user, key),
                publisher,
                claims,
                *expires,
            ),
            Action::AdvisoryWithdraw { id, reason } => {
                self.apply_withdraw(index, (actor, time), id, reason.as_deref());
            }
            // Builds stay out of the distribution's history: that is what a client proves before
            // it believes a release, and any account may attest builds.
            Action::Build(b) => {
                if let Some(d) = self.dists.get_mut(&b.dist.to_ascii_lowercase()) {
                    let d = Arc::make_mut(d);
                    if let Some(r) = d.releases.get_mut(&b.version.to_ascii_lowercase()) {
                        r.builds.push(BuildState {
                            build: b.clone(),
                            user: actor.to_string(),
                            key_id: key_id.to_string(),
                            time,
                            index,
                        });
                    }
                }
            }
        }
    }

    /// Adds a release (published or imported) to its distribution, creating the distribution
    /// with `owners` when it is new.
    fn add_release(
        &mut self,
        index: u64,
        r: &Release,
        (user, time, imported): (&str, u64, bool),
        (owners, pgxn_user): (BTreeSet<String>, Option<String>),
        leaf: [u8; 32],
    ) {
        let dist_key = r.dist.to_ascii_lowercase();
        let d = Arc::make_mut(self.dists.entry(dist_key.clone()).or_insert_with(|| {
            Arc::new(DistState {
                name: r.dist.clone(),
                owners,
                releases: BTreeMap::new(),
                history: Vec::new(),
                pgxn_user,
            })
        }));
        d.history.push(index);
        d.releases.insert(
            r.version.to_ascii_lowercase(),
            ReleaseState {
                release: r.clone(),
                user: user.to_string(),
                time,
                index,
                yanked: None,
                leaf,
                builds: Vec::new(),
                imported,
                ci: None,
            },
        );
        for ext in r.provides.keys() {
            self.extensions
                .insert(ext.to_ascii_lowercase(), dist_key.clone());
        }
    }
}
