//! System packages a release needs (`spec/requirements.md`, System packages): the purls its
//! META names, mapped to this OS's package names by the registry's `package_map` entries
//! (each proven included in a checkpoint the registry's witness policy accepts), checked
//! against what the package manager says is installed, and installed on request. Package names
//! go to the package manager as arguments, never through a shell.

use std::collections::HashMap;
use std::process::{Command, Stdio};

use pgext_spec::api::PackageMapDoc;
use pgext_spec::entry::Action;
use pgext_spec::packages::{Systems, check_purl};
use pgext_spec::prereqs::{Phase, Version};
use pgext_spec::requirements::Requirements;

use crate::proven::Proven;
use crate::trust::RegistryConfig;
use crate::{Error, VerifyError};

/// The mapping's system for this machine: from os-release's `ID` and `ID_LIKE` on Linux,
/// `homebrew` on macOS; `None` where pgext knows no package manager.
pub fn local_system() -> Option<&'static str> {
    if std::env::consts::OS == "macos" {
        return Some("homebrew");
    }
    let text = crate::target::os_release()?;
    let value = |key: &str| {
        crate::target::os_release_value(&text, key)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let (id, like) = (value("ID"), value("ID_LIKE"));
    let words: Vec<&str> = std::iter::once(id.as_str())
        .chain(like.split_whitespace())
        .collect();
    for (w, system) in [
        ("ubuntu", "ubuntu"),
        ("debian", "debian"),
        ("rhel", "rhel"),
        ("fedora", "rhel"),
        ("centos", "rhel"),
        ("alpine", "alpine"),
    ] {
        if words.contains(&w) {
            return Some(system);
        }
    }
    None
}

/// Whether the package manager of `system` has `name` installed.
pub fn is_installed(system: &str, name: &str) -> bool {
    let (prog, args): (&str, Vec<&str>) = match system {
        "debian" | "ubuntu" => ("dpkg-query", vec!["-W", "-f=${Status}", "--", name]),
        "rhel" => ("rpm", vec!["-q", "--", name]),
        "alpine" => ("apk", vec!["info", "-e", "--", name]),
        "homebrew" => ("brew", vec!["list", "--versions", "--", name]),
        _ => return false,
    };
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    match out {
        Ok(o) if system == "debian" || system == "ubuntu" => {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ok installed")
        }
        Ok(o) => o.status.success(),
        Err(_) => false,
    }
}

/// The commands that install `names` on `system`, in order (with `sudo` when not root, but
/// for Homebrew, which refuses root): Debian's and Ubuntu's refresh the package lists first, as a
/// fresh image has none and a stale one names versions the mirror no longer has.
pub fn install_commands(system: &str, names: &[String]) -> Vec<Vec<String>> {
    let argv = |words: &[&str]| -> Vec<String> {
        let mut cmd: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        if system != "homebrew" && !crate::target::is_root() {
            cmd.insert(0, "sudo".into());
        }
        cmd
    };
    let mut install = match system {
        "debian" | "ubuntu" => argv(&["apt-get", "install", "-y"]),
        "rhel" => argv(&["dnf", "install", "-y"]),
        "alpine" => argv(&["apk", "add"]),
        "homebrew" => argv(&["brew", "install"]),
        _ => return Vec::new(),
    };
    install.push("--".into());
    install.extend(names.iter().cloned());
    match system {
        "debian" | "ubuntu" => vec![argv(&["apt-get", "update"]), install],
        _ => vec![install],
    }
}

/// [`install_commands`] as one line to show (the names are checked package names: nothing in
/// them needs quoting).
pub fn install_line(system: &str, names: &[String]) -> String {
    install_commands(system, names)
        .iter()
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join(" && ")
}

/// Runs [`install_commands`] (never through a shell: every name is one argument, and each
/// was checked against the system's package-name characters when its mapping was logged).
///
/// # Errors
/// When one cannot run or fails.
pub fn install(system: &str, names: &[String], interactive: bool) -> Result<(), Error> {
    let cmds = install_commands(system, names);
    if cmds.is_empty() {
        return Err(Error::Install(format!(
            "pgext installs no packages on {system}"
        )));
    }
    for cmd in cmds {
        let Some((prog, args)) = cmd.split_first() else {
            continue;
        };
        // The terminal stays the command's: sudo may ask for a password there, unless the
        // run is unattended (`sudo -n` fails instead of waiting). sudo resets the environment:
        // apt's frontend setting goes through `env`.
        let mut c = Command::new(prog);
        if prog == "sudo" {
            if !interactive {
                c.arg("-n");
            }
            if system == "debian" || system == "ubuntu" {
                c.args(["env", "DEBIAN_FRONTEND=noninteractive"]);
            }
        }
        c.args(args);
        if system == "debian" || system == "ubuntu" {
            c.env("DEBIAN_FRONTEND", "noninteractive");
        }
        let status = c
            .status()
            .map_err(|e| Error::Install(format!("{prog}: {e}")))?;
        if !status.success() {
            return Err(Error::Install(format!(
                "`{}` failed ({status})",
                cmd.join(" ")
            )));
        }
    }
    Ok(())
}

/// The mapping of `purl` the registry's log holds, its entry proven included in a checkpoint
/// the registry's keys and witness policy accept; `None` when nobody mapped it. (That the
/// entry's signer maintains the mapping is a rule the witnesses and mirrors replay before
/// they cosign.)
///
/// # Errors
/// A mapping that does not verify, or a registry that cannot be asked.
pub async fn lookup(reg: &RegistryConfig, purl: &str) -> Result<Option<PackageMapDoc>, Error> {
    let key = check_purl(purl).map_err(|e| Error::Request(e.0))?;
    let proven = Proven::open(reg).await?;
    let path = format!("/api/v1/packages/{key}");
    let doc: PackageMapDoc = match proven.remote().json(&path).await {
        Ok(d) => d,
        Err(Error::Verify(VerifyError::NotFound(_))) => return Ok(None),
        Err(e) => return Err(e),
    };
    let bad =
        |why: String| Error::Verify(VerifyError::Malformed(format!("mapping of {purl}: {why}")));
    let entry = proven.entry(doc.index).await?;
    // The names are checked again: they go to a package manager.
    pgext_spec::packages::check_systems(&doc.systems).map_err(|e| bad(e.0))?;
    match &entry.statement.action {
        Action::PackageMap { purl: p, systems }
            if check_purl(p).ok().as_deref() == Some(key.as_str())
                && *systems == doc.systems
                && entry.statement.actor.eq_ignore_ascii_case(&doc.user) =>
        {
            Ok(Some(doc))
        }
        _ => Err(bad(format!(
            "entry {} is not the mapping the node describes",
            doc.index
        ))),
    }
}

/// Mappings looked up, by registry and purl key: a plan asks once per purl.
pub type Lookups = HashMap<(String, String), Option<Systems>>;

/// Each name once, in the order first seen.
fn once<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// What a release's system packages come to on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The system the mapping was read for, when pgext knows one here.
    pub system: Option<String>,
    /// Packages missing, each with the purl it stands for.
    pub missing: Vec<(String, String)>,
    /// Purls the registry does not map for this system.
    pub unmapped: Vec<String>,
}

impl Report {
    /// The missing package names, each once.
    pub fn names(&self) -> Vec<String> {
        once(self.missing.iter().map(|(_, n)| n))
    }
}

/// The packages `names` of `systems` for `system`: the build list for a build, else the run
/// list.
fn names_for<'a>(systems: &'a Systems, system: &str, build: bool) -> Option<&'a [String]> {
    let p = systems.get(system)?;
    Some(if build { &p.build } else { p.run() })
}

/// What `needs` requires of this machine for a build from source (`build`: configure, build
/// and run phases, the mapping's build packages) or an install of a binary (run phase, run
/// packages): the packages missing, and the purls nobody mapped.
///
/// # Errors
/// When a mapping does not verify.
pub async fn check(
    reg: &RegistryConfig,
    needs: &Requirements,
    (platform, pg): (&pgext_spec::requirements::Platform, Option<&Version>),
    build: bool,
    cache: &mut Lookups,
) -> Result<Report, Error> {
    let phases: &[Phase] = if build {
        &[Phase::Configure, Phase::Build, Phase::Runtime]
    } else {
        &[Phase::Runtime]
    };
    let wanted = needs.system_packages(platform, pg, phases);
    let mut report = Report {
        system: local_system().map(str::to_string),
        ..Report::default()
    };
    if wanted.is_empty() {
        return Ok(report);
    }
    let Some(system) = report.system.clone() else {
        report.unmapped = wanted.iter().map(|p| p.purl.clone()).collect();
        return Ok(report);
    };
    for need in wanted {
        // A purl no mapping can name (a version in it, an unknown type) is unmapped.
        let Ok(key) = check_purl(&need.purl) else {
            report.unmapped.push(need.purl.clone());
            continue;
        };
        let cached = (reg.name.clone(), key);
        let systems = match cache.get(&cached) {
            Some(s) => s.clone(),
            None => {
                let s = lookup(reg, &need.purl).await?.map(|d| d.systems);
                cache.insert(cached, s.clone());
                s
            }
        };
        let names = systems
            .as_ref()
            .and_then(|s| names_for(s, &system, build))
            .map(<[String]>::to_vec);
        match names {
            Some(names) => {
                for n in names.into_iter().filter(|n| !is_installed(&system, n)) {
                    report.missing.push((need.purl.clone(), n));
                }
            }
            None => report.unmapped.push(need.purl.clone()),
        }
    }
    Ok(report)
}

/// The system packages a plan's dists need here: for each dist, what its step needs (a build
/// from source, or a binary's run).
#[derive(Debug, Clone, Default)]
pub struct PlanPackages {
    /// This machine's system in the mapping.
    pub system: Option<String>,
    /// `(dist, purl, package)` missing.
    pub missing: Vec<(String, String, String)>,
    /// `(dist, purl)` nobody mapped for this system.
    pub unmapped: Vec<(String, String)>,
}

impl PlanPackages {
    /// The missing package names, each once.
    pub fn names(&self) -> Vec<String> {
        once(self.missing.iter().map(|(_, _, n)| n))
    }

    /// The line that installs what is missing, when something is and pgext knows how here.
    pub fn command(&self) -> Option<String> {
        let system = self.system.as_deref()?;
        (!self.missing.is_empty()).then(|| install_line(system, &self.names()))
    }

    /// Installs what is missing (asking nothing: the caller asked), on the user's terminal.
    ///
    /// # Errors
    /// When a command fails.
    pub fn install(&self) -> Result<(), Error> {
        match (&self.system, self.missing.is_empty()) {
            (Some(system), false) => install(system, &self.names(), true),
            _ => Ok(()),
        }
    }

    /// What to tell: each missing package and unmapped purl, and the command that installs
    /// what is missing.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (dist, purl, name) in &self.missing {
            out.push(format!(
                "{dist} needs the OS package {name} ({purl}), which is not installed"
            ));
        }
        for (dist, purl) in &self.unmapped {
            let on = self.system.as_deref().unwrap_or("this system");
            out.push(format!(
                "{dist} needs {purl}, which the registry maps to no package of {on}: install it yourself"
            ));
        }
        if let (Some(system), false) = (&self.system, self.missing.is_empty()) {
            out.push(format!(
                "install them with: {}",
                install_line(system, &self.names())
            ));
        }
        out
    }
}

impl crate::ops::Context {
    /// What each dist of `plan` needs of this machine's OS packages.
    ///
    /// # Errors
    /// When a mapping does not verify.
    pub async fn plan_packages(&self, plan: &crate::plan::Plan) -> Result<PlanPackages, Error> {
        let platform = crate::target::platform();
        let pg = Version::of_postgres(&self.pg.version);
        let mut out = PlanPackages {
            system: local_system().map(str::to_string),
            ..PlanPackages::default()
        };
        let mut cache = Lookups::new();
        for s in &plan.steps {
            let r = check(
                &s.chosen.registry,
                &s.needs,
                (&platform, pg.as_ref()),
                s.binary.is_none(),
                &mut cache,
            )
            .await?;
            let dist = &s.chosen.dist;
            out.missing
                .extend(r.missing.into_iter().map(|(p, n)| (dist.clone(), p, n)));
            out.unmapped
                .extend(r.unmapped.into_iter().map(|p| (dist.clone(), p)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_argument_lists() {
        let names = vec!["libxml2-dev".to_string(), "pkgconf".to_string()];
        let cmds = install_commands("debian", &names);
        let tail = |c: &Vec<String>| -> Vec<String> {
            c.iter().skip_while(|a| *a == "sudo").cloned().collect()
        };
        assert_eq!(tail(&cmds[0]), ["apt-get", "update"]);
        assert_eq!(
            tail(&cmds[1]),
            ["apt-get", "install", "-y", "--", "libxml2-dev", "pkgconf"]
        );
        assert_eq!(
            install_commands("homebrew", &names)[0][..2],
            ["brew", "install"]
        );
        assert!(install_commands("windows", &names).is_empty());
    }
}
