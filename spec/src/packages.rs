//! The name-mapping service's data (`spec/requirements.md`, System packages): which OS
//! packages stand for a purl on each system pgext knows, as `package_map` entries on the log by
//! the accounts the registry names as the mapping's maintainers (`role_grant` with role
//! `packages`). Every name is checked here before anything is stored: package names are
//! passed to package managers as arguments, never to a shell, and they may not hold a shell's
//! metacharacters either.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The systems a mapping names packages for, as entries spell them.
pub const SYSTEMS: [&str; 5] = ["debian", "ubuntu", "rhel", "alpine", "homebrew"];

/// Roles the operator grants (`role_grant`, `role_revoke`): `packages` maintains the name
/// mapping, `security` publishes advisories for any distribution.
pub const ROLES: [&str; 2] = [ROLE_PACKAGES, ROLE_SECURITY];

/// The role whose holders publish advisories for every distribution (the registry's security
/// team).
pub const ROLE_SECURITY: &str = "security";

/// The role whose holders maintain the mapping.
pub const ROLE_PACKAGES: &str = "packages";

/// The purl types of the purl specification's list, which a mapping may name (`pgxn` and
/// `postgres` are extensions pgext resolves itself, never OS packages).
pub const PURL_TYPES: [&str; 33] = [
    "alpm",
    "apk",
    "bitbucket",
    "bitnami",
    "cargo",
    "cocoapods",
    "composer",
    "conan",
    "conda",
    "cpan",
    "cran",
    "deb",
    "docker",
    "gem",
    "generic",
    "github",
    "golang",
    "hackage",
    "hex",
    "huggingface",
    "luarocks",
    "maven",
    "mlflow",
    "npm",
    "nuget",
    "oci",
    "pub",
    "pypi",
    "qpkg",
    "rpm",
    "swid",
    "swift",
    "julia",
];

/// Longest purl a mapping names, in bytes.
pub const MAX_PURL_BYTES: usize = 200;
/// Most package names one system's list holds.
pub const MAX_NAMES: usize = 16;
/// Longest package name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// The OS packages one system needs for a purl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemPackages {
    /// What a build needs (headers, libraries, tools): installed before a source build.
    pub build: Vec<String>,
    /// What a built extension needs to run (installed with a binary); absent: the build's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Vec<String>>,
}

impl SystemPackages {
    /// The packages to run with.
    pub fn run(&self) -> &[String] {
        self.run.as_deref().unwrap_or(&self.build)
    }
}

/// What a purl maps to, by system.
pub type Systems = BTreeMap<String, SystemPackages>;

/// Why a purl or a package name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackageError(pub String);

/// A purl a mapping may name: `pkg:TYPE/[NAMESPACE/]NAME`, of a known type other than `pgxn`
/// and `postgres`, without version, qualifiers or subpath (a mapping is for a package, whatever
/// its version), in the characters purls use. Returns the key the mapping is kept under (the
/// type lowercase, as purls compare it).
///
/// # Errors
/// What is wrong.
pub fn check_purl(purl: &str) -> Result<String, PackageError> {
    let bad = |why: &str| {
        Err(PackageError(format!(
            "{:?} is not a purl a mapping can name: {why}",
            purl.chars().take(80).collect::<String>()
        )))
    };
    if purl.len() > MAX_PURL_BYTES {
        return bad(&format!("longer than {MAX_PURL_BYTES} bytes"));
    }
    let Some(rest) = purl.strip_prefix("pkg:") else {
        return bad("it must start with pkg:");
    };
    let Some((ty, path)) = rest.split_once('/') else {
        return bad("it must be pkg:TYPE/NAME");
    };
    let ty = ty.to_ascii_lowercase();
    if ty == "pgxn" || ty == "postgres" {
        return bad("pgxn and postgres purls name extensions, which pgext installs itself");
    }
    if !PURL_TYPES.contains(&ty.as_str()) {
        return bad(&format!("unknown purl type {ty:?}"));
    }
    if path.contains(['@', '?', '#']) {
        return bad("a mapping names a package without version, qualifiers or subpath");
    }
    // No `%`: the key is a URL path as it is, and a decoded escape would name another purl.
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-+/".contains(c);
    if path.is_empty()
        || !path.chars().all(ok_char)
        || path
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad(
            "the name may hold letters, digits and . _ - + / only, in segments other than . and ..",
        );
    }
    Ok(format!("pkg:{ty}/{path}"))
}

/// Whether `name` is a package name `system` could have: its package manager's characters,
/// never a shell's metacharacters, not starting with `-` (an option).
pub fn valid_package_name(system: &str, name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return false;
    }
    let first_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    let all = |extra: &str, upper: bool| {
        name.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || (upper && c.is_ascii_uppercase())
                || extra.contains(c)
        })
    };
    first_ok
        && match system {
            // Debian policy: lowercase letters, digits, + - . (two characters at least).
            "debian" | "ubuntu" => name.len() >= 2 && all("+-.", false),
            "rhel" => all("+-._", true),
            "alpine" => all("+-._", false),
            // A formula, or a tap's: `user/tap/formula`.
            "homebrew" => {
                name.split('/').count() <= 3 && all("+-._@/", false) && !name.contains("//")
            }
            _ => false,
        }
}

/// Checks a mapping's systems: known systems, each with at most [`MAX_NAMES`] valid names.
///
/// # Errors
/// The first name or system refused.
pub fn check_systems(systems: &Systems) -> Result<(), PackageError> {
    for (system, p) in systems {
        if !SYSTEMS.contains(&system.as_str()) {
            return Err(PackageError(format!(
                "unknown system {:?}: one of {}",
                system.chars().take(40).collect::<String>(),
                SYSTEMS.join(", ")
            )));
        }
        for list in [Some(&p.build), p.run.as_ref()].into_iter().flatten() {
            if list.len() > MAX_NAMES {
                return Err(PackageError(format!(
                    "{system}: more than {MAX_NAMES} packages"
                )));
            }
            if let Some(bad) = list.iter().find(|n| !valid_package_name(system, n)) {
                return Err(PackageError(format!(
                    "{system}: {:?} is not a package name (letters, digits and the characters {system}'s names use; no spaces or shell metacharacters)",
                    bad.chars().take(80).collect::<String>()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_checked() {
        assert_eq!(
            check_purl("pkg:generic/libxml2").unwrap(),
            "pkg:generic/libxml2"
        );
        assert_eq!(check_purl("pkg:PyPI/pyarrow").unwrap(), "pkg:pypi/pyarrow");
        assert!(check_purl("pkg:github/postgres/postgres").is_ok());
        for bad in [
            "pkg:nosuch/libxml2",
            "pkg:pgxn/semver",
            "pkg:postgres/plpgsql",
            "pkg:generic/libxml2@2.9",
            "pkg:generic/libxml2?arch=x86",
            "pkg:generic/",
            "pkg:generic//x",
            "pkg:generic/a;rm -rf",
            "pkg:generic/lib%20xml",
            "pkg:generic/../x",
            "pkg:generic/a/./b",
            "generic/libxml2",
            "pkg:generic",
        ] {
            assert!(check_purl(bad).is_err(), "{bad}");
        }
        let long = format!("pkg:generic/{}", "a".repeat(MAX_PURL_BYTES));
        assert!(check_purl(&long).is_err());
    }

    #[test]
    fn package_names_hold_no_shell_metacharacters() {
        for (system, good) in [
            ("debian", "libxml2-dev"),
            ("ubuntu", "libicu-dev"),
            ("rhel", "libxml2-devel"),
            ("rhel", "python3.11-devel"),
            ("alpine", "libxml2-dev"),
            ("homebrew", "libxml2"),
            ("homebrew", "icu4c@74"),
            ("homebrew", "user/tap/formula"),
            ("debian", "g++"),
        ] {
            assert!(valid_package_name(system, good), "{system} {good}");
        }
        for (system, bad) in [
            ("debian", "libxml2-dev; rm -rf /"),
            ("debian", "$(reboot)"),
            ("debian", "a|b"),
            ("debian", "-o"),
            ("debian", "LibXML"),
            ("debian", "x"),
            ("rhel", "pkgconfig(libxml-2.0)"),
            ("alpine", "a b"),
            ("homebrew", "a/b/c/d"),
            ("homebrew", "`id`"),
            ("windows", "libxml2"),
            ("debian", ""),
        ] {
            assert!(!valid_package_name(system, bad), "{system} {bad}");
        }
        let mut systems = Systems::new();
        systems.insert(
            "debian".into(),
            SystemPackages {
                build: vec!["libxml2-dev".into()],
                run: Some(vec!["libxml2".into()]),
            },
        );
        assert!(check_systems(&systems).is_ok());
        assert_eq!(systems["debian"].run(), ["libxml2"]);
        systems.insert(
            "debian".into(),
            SystemPackages {
                build: vec!["libxml2-dev && curl evil".into()],
                run: None,
            },
        );
        assert!(check_systems(&systems).is_err());
        let mut other = Systems::new();
        other.insert(
            "solaris".into(),
            SystemPackages {
                build: vec!["x".into()],
                run: None,
            },
        );
        assert!(check_systems(&other).is_err());
    }
}
