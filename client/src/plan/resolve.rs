//! Resolution: from the names asked for to every dist a plan installs, reading each chosen
//! release's prerequisites from its META.json (fetched by the API and held to the release's
//! `meta_sha256`), with what the PostgreSQL installation already has satisfying what it can
//! (`spec/client.md`, Dependencies).
//!
//! A pass walks the requirements breadth first and chooses each name once, the newest release
//! every requirement known so far allows. A requirement that arrives after its name was chosen
//! and that the choice does not meet is carried into the next pass, which chooses with it from
//! the start; a name no release satisfies is an error naming every requirement and its chain.

use std::collections::{BTreeMap, HashMap, VecDeque};

use pgext_spec::api;
use pgext_spec::meta::read_stored_meta;
use pgext_spec::prereqs::{Needs, Phase, Prereq, Range, Relation, Version, prereqs};
use pgext_spec::requirements::Requirements;
use serde_json::Value;

use super::graph::{
    Chosen, Demand, Follow, Kept, MAX_PLAN, Pass, Resolution, Root, check_name, control_key,
    finish, link, plan_error, provided, unmet, wanted,
};
use super::local::Local;
use crate::Error;
use crate::request::{Select, choose, version_of};
use crate::trust::{Config, RegistryConfig, State};
use crate::verify::Remote;

/// Passes before a resolution that keeps changing its mind gives up.
const MAX_PASSES: usize = 8;
/// The longest chain of requirements followed.
const MAX_DEPTH: usize = 64;
/// The largest META.json read.
const MAX_META: u64 = 1 << 20;

/// The resolver: the trust configuration, the installation, and what it fetched (kept across
/// passes).
#[derive(Debug)]
pub struct Resolver<'a> {
    pub(super) config: &'a Config,
    pub(super) state: &'a State,
    pub(super) local: &'a Local,
    /// `--registry`.
    pub(super) asked: Option<&'a str>,
    /// Dist documents by registry and name (`None`: the registry has no such dist).
    docs: HashMap<(String, String), Option<api::Dist>>,
    /// Extension name → the dist names a registry's extension document names.
    ext_dists: HashMap<(String, String), Vec<String>>,
    /// META prerequisites by META SHA-256.
    metas: HashMap<String, Vec<Prereq>>,
    /// What each META says its release needs, by META SHA-256.
    pub(super) needs: HashMap<String, Requirements>,
    /// Control-file `requires` learned from verified archives, by `dist version` key.
    pub(super) control: HashMap<String, Vec<String>>,
    /// Requests made (for the benchmark's count).
    pub requests: usize,
}

impl<'a> Resolver<'a> {
    /// A resolver over `config` and the installation `local`.
    pub fn new(
        config: &'a Config,
        state: &'a State,
        local: &'a Local,
        asked: Option<&'a str>,
    ) -> Resolver<'a> {
        Resolver {
            config,
            state,
            local,
            asked,
            docs: HashMap::new(),
            ext_dists: HashMap::new(),
            metas: HashMap::new(),
            needs: HashMap::new(),
            control: HashMap::new(),
            requests: 0,
        }
    }

    /// Resolves `roots` and what they need.
    ///
    /// # Errors
    /// [`Error::Plan`] for what cannot be resolved; network and verification errors as they
    /// are.
    pub async fn resolve(&mut self, roots: &[Root], follow: Follow) -> Result<Resolution, Error> {
        let mut extra: BTreeMap<String, Vec<Demand>> = BTreeMap::new();
        for _ in 0..MAX_PASSES {
            let pass = self.pass(roots, follow, &extra).await?;
            let unmet = unmet(&pass);
            if unmet.is_empty() {
                return finish(pass, self.local);
            }
            for d in unmet {
                let known = extra.entry(d.name.to_ascii_lowercase()).or_default();
                // A requirement already chosen with, and still unmet: nothing can meet it.
                if known
                    .iter()
                    .any(|k| k.path() == d.path() && k.range == d.range)
                {
                    return Err(plan_error(format!(
                        "{} {} cannot be met together with the other requirements of {}",
                        d.name,
                        d.why(),
                        d.name
                    )));
                }
                known.push(d);
            }
        }
        Err(plan_error(format!(
            "the requirements did not settle after {MAX_PASSES} passes"
        )))
    }

    async fn pass(
        &mut self,
        roots: &[Root],
        follow: Follow,
        extra: &BTreeMap<String, Vec<Demand>>,
    ) -> Result<Pass, Error> {
        let mut p = Pass {
            chosen: BTreeMap::new(),
            names: BTreeMap::new(),
            kept: BTreeMap::new(),
            notes: Vec::new(),
        };
        let mut queue: VecDeque<(Demand, Option<&Root>)> = roots
            .iter()
            .map(|r| {
                let d = Demand {
                    name: r.name.clone(),
                    range: Range::any(),
                    relation: Relation::Requires,
                    chain: Vec::new(),
                };
                (d, Some(r))
            })
            .collect();
        while let Some((d, root)) = queue.pop_front() {
            check_name(&d)?;
            let key = d.name.to_ascii_lowercase();
            let requirer = d.chain.last().cloned();
            if let Some(k) = p.names.get(&key).cloned() {
                link(&mut p, requirer.as_deref(), &k);
                if let Some(c) = p.chosen.get_mut(&k) {
                    c.demands.push(d);
                }
                continue;
            }
            if let Some((_, kept, demands)) = p.kept.get_mut(&key) {
                kept.by.push(d.why());
                demands.push(d);
                continue;
            }
            if root.is_none() {
                if let Some(present) = self.local.present(&key) {
                    let fits = |dm: &Demand| {
                        dm.range.is_any()
                            || Version::parse(&present.version)
                                .is_some_and(|v| dm.range.matches(&v))
                    };
                    // What pgext installed may be upgraded through its registry; what came
                    // with PostgreSQL is what it is (a range it misses is reported as unmet).
                    let fit = fits(&d) && extra.get(&key).into_iter().flatten().all(fits);
                    if present.by_pgext.is_none() || fit {
                        let kept = Kept {
                            name: d.name.clone(),
                            version: present.version.clone(),
                            how: present.how(),
                            by: vec![d.why()],
                        };
                        p.kept.insert(key, (present.clone(), kept, vec![d]));
                        continue;
                    }
                }
            }
            if p.chosen.len() >= MAX_PLAN {
                return Err(plan_error(format!(
                    "the plan would hold more than {MAX_PLAN} dists"
                )));
            }
            let demands: Vec<&Demand> = extra.get(&key).into_iter().flatten().chain([&d]).collect();
            let requirer_reg = requirer
                .as_deref()
                .and_then(|l| p.chosen.values().find(|c| c.label() == l))
                .map(|c| c.registry.clone());
            let mut c = self
                .choose(&d, root, requirer_reg.as_ref(), &demands, follow)
                .await?;
            let label = c.label();
            let dist_key = c.dist.to_ascii_lowercase();
            if root.is_none() {
                self.check_routing(&c, &d)?;
            }
            // A dist already chosen, reached through another name: one choice, with one more
            // requirement (the next pass chooses again if this one misses it).
            if let Some(k) = p.chosen.get(&dist_key).map(|c| c.dist.to_ascii_lowercase()) {
                p.names.insert(key, k.clone());
                link(&mut p, requirer.as_deref(), &k);
                if let Some(c) = p.chosen.get_mut(&k) {
                    c.demands.push(d);
                }
                continue;
            }
            // The chain of what this dist needs: the demand's chain and this dist.
            let mut chain = d.chain.clone();
            chain.push(label.clone());
            if chain.len() > MAX_DEPTH {
                return Err(plan_error(format!(
                    "a chain of more than {MAX_DEPTH} dists: {}",
                    d.path()
                )));
            }
            for pr in &c.prereqs {
                match (&pr.needs, pr.relation) {
                    (Needs::Postgres, Relation::Requires)
                        if matches!(pr.phase, Phase::Runtime | Phase::Build | Phase::Configure) =>
                    {
                        self.local.check_postgres(&pr.range, &label, &chain)?;
                    }
                    (Needs::Postgres, _) => {}
                    // What it requires of the system is told once the plan is made, with the
                    // registry's mapping to this OS's packages (`sysdeps`).
                    (Needs::Other(what), Relation::Recommends)
                        if wanted(pr, follow, root.is_some()) =>
                    {
                        let note = format!(
                            "{label} recommends {what} ({}), which pgext does not install",
                            pr.range
                        );
                        if !p.notes.contains(&note) {
                            p.notes.push(note);
                        }
                    }
                    (Needs::Other(_), _) => {}
                    (Needs::Extension(n), Relation::Suggests) if pr.phase == Phase::Runtime => {
                        p.notes.push(format!("{label} suggests {n} ({})", pr.range));
                    }
                    (Needs::Extension(n), Relation::Recommends)
                        if pr.phase == Phase::Runtime && !follow.recommends =>
                    {
                        p.notes.push(format!(
                            "{label} recommends {n} ({}): add --with-recommends to install it",
                            pr.range
                        ));
                    }
                    (Needs::Extension(n), rel) if wanted(pr, follow, root.is_some()) => {
                        if follow.no_deps {
                            continue;
                        }
                        queue.push_back((
                            Demand {
                                name: n.clone(),
                                range: pr.range.clone(),
                                relation: rel,
                                chain: chain.clone(),
                            },
                            None,
                        ));
                    }
                    _ => {}
                }
            }
            // The control files' `requires`, once a verified archive showed them.
            if !follow.no_deps {
                for n in self.control.get(&control_key(&c)).into_iter().flatten() {
                    // Already required by the META: one requirement, not two.
                    let in_meta = c.prereqs.iter().any(|pr| {
                        pr.relation == Relation::Requires
                            && matches!(pr.phase, Phase::Runtime | Phase::Build | Phase::Configure)
                            && matches!(&pr.needs, Needs::Extension(m) if m.eq_ignore_ascii_case(n))
                    });
                    if in_meta {
                        continue;
                    }
                    queue.push_back((
                        Demand {
                            name: n.clone(),
                            range: Range::any(),
                            relation: Relation::Requires,
                            chain: chain.clone(),
                        },
                        None,
                    ));
                }
            }
            for n in c.release.provides.keys() {
                let n = n.to_ascii_lowercase();
                if let Some(other) = p.names.get(&n).filter(|o| **o != dist_key) {
                    return Err(plan_error(format!(
                        "{label} and {} both provide extension {n}: the plan cannot install both",
                        p.chosen
                            .get(other)
                            .map_or_else(|| other.clone(), Chosen::label)
                    )));
                }
                p.names.insert(n, dist_key.clone());
            }
            p.names.insert(dist_key.clone(), dist_key.clone());
            c.demands.push(d);
            link(&mut p, requirer.as_deref(), &dist_key);
            p.chosen.insert(dist_key, c);
        }
        Ok(p)
    }

    async fn doc(&mut self, reg: &RegistryConfig, dist: &str) -> Result<Option<api::Dist>, Error> {
        let key = (reg.name.clone(), dist.to_ascii_lowercase());
        if let Some(d) = self.docs.get(&key) {
            return Ok(d.clone());
        }
        self.requests += 1;
        let doc = match Remote::new(reg)
            .json::<api::Dist>(&format!("/api/v1/dists/{dist}"))
            .await
        {
            Ok(d) => Some(d),
            Err(Error::Verify(crate::VerifyError::NotFound(_))) => None,
            Err(e) => return Err(e),
        };
        self.docs.insert(key, doc.clone());
        Ok(doc)
    }

    /// The dists whose releases provide extension `name` in `reg`: the dist of that name, or
    /// those its extension document names.
    async fn dists_providing(
        &mut self,
        reg: &RegistryConfig,
        name: &str,
    ) -> Result<Vec<api::Dist>, Error> {
        let provides = |d: &api::Dist| {
            d.releases
                .iter()
                .any(|r| provided(&d.name, r, name).is_some())
        };
        // A document is of the dist asked for, or it is not believed to be.
        let named = |d: &api::Dist, n: &str| d.name.eq_ignore_ascii_case(n);
        if let Some(d) = self
            .doc(reg, name)
            .await?
            .filter(|d| named(d, name) && provides(d))
        {
            return Ok(vec![d]);
        }
        let key = (reg.name.clone(), name.to_ascii_lowercase());
        let names = match self.ext_dists.get(&key) {
            Some(n) => n.clone(),
            None => {
                self.requests += 1;
                let names = match Remote::new(reg)
                    .json::<Value>(&format!("/extension/{name}.json"))
                    .await
                {
                    Ok(doc) => ["stable", "testing", "unstable"]
                        .iter()
                        .filter_map(|s| doc[s]["dist"].as_str().map(str::to_string))
                        .take(3)
                        .collect(),
                    Err(Error::Verify(crate::VerifyError::NotFound(_))) => Vec::new(),
                    Err(e) => return Err(e),
                };
                self.ext_dists.insert(key, names.clone());
                names
            }
        };
        let mut out = Vec::new();
        for n in names {
            if let Some(d) = self
                .doc(reg, &n)
                .await?
                .filter(|d| named(d, &n) && provides(d))
            {
                if !out.iter().any(|o: &api::Dist| o.name == d.name) {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    async fn prereqs_of(
        &mut self,
        reg: &RegistryConfig,
        dist: &str,
        r: &api::DistRelease,
    ) -> Result<Vec<Prereq>, Error> {
        if let Some(p) = self.metas.get(&r.meta_sha256) {
            return Ok(p.clone());
        }
        self.requests += 1;
        let path = format!("/api/v1/dists/{dist}/{}/meta", r.version);
        let bytes = Remote::new(reg)
            .get_limited(&path, &crate::progress::Quiet, Some(MAX_META))
            .await?;
        // The META is believed only as the release's own: the verification that follows
        // proves that the log's entry names this digest.
        if pgext_log::hex(&pgext_log::sha256(&bytes)) != r.meta_sha256 {
            return Err(Error::Verify(crate::VerifyError::Malformed(format!(
                "{path}: the META.json served is not the one the release names (meta_sha256 {})",
                r.meta_sha256
            ))));
        }
        let meta = read_stored_meta(&bytes)
            .map_err(|e| Error::Verify(crate::VerifyError::Malformed(format!("{path}: {e}"))))?;
        // Platforms and modules are v2's: a v1 META states neither, and its conversion
        // (which compiles the schemas each time) would tell nothing more here.
        let needs = if meta.spec == 2 {
            Requirements::from_meta(&meta)
        } else {
            Requirements::default()
        };
        // A release for other platforms is refused before anything else is fetched.
        if let Some(local) = &self.local.platform {
            needs.check_platform(local).map_err(|why| {
                plan_error(format!(
                    "{dist} {} cannot be installed here: {why}",
                    r.version
                ))
            })?;
        }
        self.needs.insert(r.meta_sha256.clone(), needs);
        let p = prereqs(&meta.raw).map_err(|e| {
            plan_error(format!(
                "{dist} {}: its META.json prerequisites cannot be read: {e}",
                r.version
            ))
        })?;
        self.metas.insert(r.meta_sha256.clone(), p.clone());
        Ok(p)
    }

    /// Chooses the release for demand `d` (a root, or an extension a chosen dist requires)
    /// meeting every demand in `all`.
    async fn choose(
        &mut self,
        d: &Demand,
        root: Option<&Root>,
        requirer: Option<&RegistryConfig>,
        all: &[&Demand],
        follow: Follow,
    ) -> Result<Chosen, Error> {
        let (registry, doc, release, warning) = match root {
            Some(r) => {
                let reg = match &r.registry {
                    Some(reg) => reg.clone(),
                    None => self.registries_for(&r.name, None)?.into_iter().next().ok_or_else(|| {
                        Error::Config("no registry configured; add one with `pgext registry add NAME URL`".into())
                    })?,
                };
                let doc = self.doc(&reg, &r.name).await?.ok_or_else(|| {
                    Error::Verify(crate::VerifyError::NotFound(format!(
                        "registry {} has no distribution {}",
                        reg.name, r.name
                    )))
                })?;
                let select = Select {
                    want: r.want.clone(),
                    stability: follow.stability,
                };
                let c = choose(&doc, &r.name, &select)?;
                // A root is chosen by its request; requirements met later are checked after.
                (reg, doc.clone(), c.release, c.warning)
            }
            None => {
                let regs = self.registries_for(&d.name, requirer)?;
                let mut found = None;
                let mut asked = Vec::new();
                for reg in regs {
                    asked.push(reg.name.clone());
                    let dists = self.dists_providing(&reg, &d.name).await?;
                    if !dists.is_empty() {
                        found = Some((reg, dists));
                        break;
                    }
                }
                let Some((reg, dists)) = found else {
                    let routed = self
                        .config
                        .owner(&d.name)
                        .map(|o| {
                            format!(
                                " (the name is routed to registry {} alone by its names {:?})",
                                o.name, o.names
                            )
                        })
                        .unwrap_or_default();
                    return Err(plan_error(format!(
                        "{} ({}) is not in PostgreSQL's installation nor in any trusted registry (asked: {}){routed}. Chain: {}",
                        d.name,
                        d.why(),
                        asked.join(", "),
                        d.path()
                    )));
                };
                let mut best: Option<(api::Dist, api::DistRelease)> = None;
                for doc in &dists {
                    for r in doc
                        .releases
                        .iter()
                        .filter(|r| !r.yanked && follow.stability.allows(r.status.as_str()))
                    {
                        let Some(v) = provided(&doc.name, r, &d.name) else {
                            continue;
                        };
                        if !all.iter().all(|dm| dm.range.matches(&v)) {
                            continue;
                        }
                        let better = best
                            .as_ref()
                            .is_none_or(|(_, b)| version_of(r) > version_of(b));
                        if better {
                            best = Some((doc.clone(), r.clone()));
                        }
                    }
                }
                let Some((doc, release)) = best else {
                    let versions: Vec<String> = dists
                        .iter()
                        .flat_map(|doc| {
                            doc.releases.iter().filter(|r| !r.yanked).filter_map(|r| {
                                provided(&doc.name, r, &d.name)
                                    .map(|v| format!("{v} ({})", r.status.as_str()))
                            })
                        })
                        .collect();
                    let wants: Vec<String> = all
                        .iter()
                        .map(|dm| format!("{} (chain: {})", dm.why(), dm.path()))
                        .collect();
                    return Err(plan_error(format!(
                        "no release of {} in registry {} meets every requirement: {}; it has {}",
                        d.name,
                        reg.name,
                        wants.join("; "),
                        if versions.is_empty() {
                            "none allowed".to_string()
                        } else {
                            versions.join(", ")
                        }
                    )));
                };
                (reg, doc, release, None)
            }
        };
        let prereqs = self.prereqs_of(&registry, &doc.name, &release).await?;
        Ok(Chosen {
            registry,
            dist: doc.name.clone(),
            release,
            prereqs,
            demands: Vec::new(),
            requires: Vec::new(),
            warning,
        })
    }
}
