//! `pgext check`: an installed dist's regression tests (`make installcheck`), from the verified
//! archive kept at install time. When its META names test requirements the installation lacks
//! (pgTAP, say), they are resolved and verified like any dependency, staged into a throwaway
//! PostgreSQL (`scratch.rs`: a shadow of the installation) and the tests run there: nothing is
//! installed into the user's installation for a test.

use std::path::Path;

use pgext_spec::prereqs::{Needs, Phase, Relation, prereqs};

use crate::Error;
use crate::build::{Builder, unpack};
use crate::installed::{self, Installed};
use crate::ops::{Context, Kind};
use crate::pg::Conn;
use crate::plan::{Follow, Local, Root, Step};
use crate::request::Want;
use crate::scratch::Scratch;

/// How a check ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Against the user's server (`-d`, `-h`, `-p`, `-U`).
    InPlace,
    /// In a throwaway PostgreSQL with these test requirements (`dist version`) staged.
    Scratch(Vec<String>),
}

/// The test requirements META.json names (extension names) that `local` does not have.
fn missing_test_requirements(dir: &Path, local: &Local) -> Result<Vec<String>, Error> {
    let Ok(bytes) = std::fs::read(dir.join("META.json")) else {
        return Ok(Vec::new());
    };
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::Release(format!("META.json: {e}")))?;
    let all = prereqs(&meta).map_err(|e| Error::Release(format!("META.json: {e}")))?;
    Ok(all
        .into_iter()
        .filter(|p| p.phase == Phase::Test && p.relation == Relation::Requires)
        .filter_map(|p| match p.needs {
            Needs::Extension(n) if local.present(&n.to_ascii_lowercase()).is_none() => Some(n),
            _ => None,
        })
        .collect())
}

impl Context {
    /// Runs the dist's regression tests against its installed files: in place, or, when it
    /// needs test requirements this installation lacks, in a throwaway PostgreSQL with them
    /// staged.
    ///
    /// # Errors
    /// When it is not installed, its archive is gone, a test requirement does not resolve or
    /// verify, or the tests fail (log kept).
    pub async fn check(&self, name: &str, conn: &Conn) -> Result<Checked, Error> {
        let record = self.installed(name)?;
        let zip = installed::kept_archive(&self.state, &record.sha256).ok_or_else(|| {
            Error::Install(format!(
                "the archive of {} {} is no longer kept: install it again to check it",
                record.dist, record.version
            ))
        })?;
        let build = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        unpack(&zip, build.path())?;
        let log = self.log_path(&format!("{}-{}-check", record.dist, record.version));
        let local = Local::read(&self.pg, &self.state, true, self.prefix.as_deref())?;
        let missing = missing_test_requirements(build.path(), &local)?;
        if missing.is_empty() || record.provenance.is_none() {
            let mut b = Builder::new(&self.pg, build.path(), &log, self.sudo)?;
            self.progress.step(&format!("testing {}", record.dist));
            let result = b.installcheck(conn);
            self.progress.done();
            result?;
            let _ = std::fs::remove_file(&log);
            return Ok(Checked::InPlace);
        }
        let staged = self.check_in_scratch(&record, build.path(), &log).await?;
        let _ = std::fs::remove_file(&log);
        Ok(Checked::Scratch(staged))
    }

    async fn check_in_scratch(
        &self,
        record: &Installed,
        dir: &Path,
        log: &Path,
    ) -> Result<Vec<String>, Error> {
        let root = Root {
            name: record.dist.clone(),
            want: Want::Exact(record.version.clone()),
            registry: Some(self.registry_for(&record.dist, false)?),
            kind: None,
        };
        let follow = Follow {
            test: true,
            ..Follow::default()
        };
        let plan = self.plan(&[root], follow, Kind::Auto).await?;
        let stage = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        let mut staged = Vec::new();
        for step in plan
            .steps
            .iter()
            .filter(|s| !s.chosen.dist.eq_ignore_ascii_case(&record.dist))
        {
            self.stage_step(step, stage.path(), log)?;
            staged.push(step.chosen.label());
        }
        self.progress.step(&format!(
            "testing {} in a throwaway PostgreSQL with {}",
            record.dist,
            staged.join(", ")
        ));
        let result = (|| {
            let scratch = Scratch::start(&self.pg, stage.path(), log)?;
            let shadow = scratch.pg()?;
            Builder::new(&shadow, dir, log, false)?
                .with_env(scratch.env())
                .installcheck(&scratch.conn())
        })();
        self.progress.done();
        result?;
        Ok(staged)
    }

    /// Writes a verified step's files below `stage` where this installation keeps them (a
    /// `DESTDIR`): a binary's files, or a build's staged install.
    fn stage_step(&self, step: &Step, stage: &Path, log: &Path) -> Result<(), Error> {
        let under = |f: &Path| stage.join(f.strip_prefix("/").unwrap_or(f));
        if let Some(b) = &step.binary {
            let dests = crate::binary::destinations(&self.pg, &b.binary)?;
            let dests: Vec<_> = dests.iter().map(|d| under(d)).collect();
            crate::binary::install_files(&b.binary.files, dests, false)?;
            return Ok(());
        }
        let src = tempfile::tempdir().map_err(|e| Error::Config(e.to_string()))?;
        unpack(&step.verified.zip, src.path())?;
        self.progress
            .step(&format!("building {} for the tests", step.chosen.label()));
        let mut b = Builder::new(&self.pg, src.path(), log, false)?
            .with(crate::target::cc_args(&self.pg), Vec::new());
        b.build()?;
        b.stage_to(stage)?;
        Ok(())
    }
}
