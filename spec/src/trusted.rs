//! Trusted publishing (`spec/trusted-publishing.md`): a dist's owners name the CI workflows
//! that may publish it (`publisher_add`); a node that verified a CI's OIDC ID token against one
//! records a short-lived key for that workflow (`ci_key`, by the operator), with the claims
//! that matched; the release that key signs carries them as its provenance.
//!
//! This module is what node, clients and auditors must read alike: a publisher's bounds, the
//! claims of GitHub Actions' and GitLab CI's ID tokens brought to one shape, and whether
//! claims match a publisher.

use serde::{Deserialize, Serialize};

/// Longest issuer URL, in bytes.
pub const MAX_ISSUER_BYTES: usize = 256;
/// Longest repository, workflow, ref or environment, in bytes.
pub const MAX_CLAIM_BYTES: usize = 256;
/// Most trusted publishers of one dist.
pub const MAX_PUBLISHERS: usize = 16;
/// Longest a CI key may be used for, in seconds.
pub const MAX_KEY_SECS: u64 = 30 * 60;

/// A CI workflow a dist's owners trust to publish it. Fields left out match anything.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Publisher {
    /// The OIDC issuer (`https://token.actions.githubusercontent.com`, `https://gitlab.com`).
    pub issuer: String,
    /// The repository (`owner/repo`, GitLab's `group/project`).
    pub repository: String,
    /// The workflow file (`.github/workflows/release.yml`, `.gitlab-ci.yml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The git ref (`refs/tags/v1.2.3`; a trailing `*` matches any rest: `refs/tags/*`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub git_ref: Option<String>,
    /// The CI environment (GitHub's and GitLab's deployment environments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// What a verified ID token says about the run that presented it, in one shape for every CI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer.
    pub issuer: String,
    /// The token's subject.
    pub subject: String,
    /// The repository.
    pub repository: String,
    /// The workflow file, when the token names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// The git ref (`refs/heads/main`, `refs/tags/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "ref")]
    pub git_ref: Option<String>,
    /// The commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// The environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The CI run (GitHub's `run_id`, GitLab's `pipeline_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Why a publisher or claims are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TrustedError(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, TrustedError> {
    Err(TrustedError(why.into()))
}

/// A claim's text: 1 to [`MAX_CLAIM_BYTES`] printable ASCII characters without whitespace.
fn check_value(field: &str, v: &str) -> Result<(), TrustedError> {
    if v.is_empty() || v.len() > MAX_CLAIM_BYTES || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return bad(format!(
            "{field} {:?}: 1 to {MAX_CLAIM_BYTES} printable ASCII characters without spaces",
            v.chars().take(60).collect::<String>()
        ));
    }
    Ok(())
}

/// An issuer: an `https://` URL (or `http://` on loopback, for tests and private CI), without
/// query or fragment, at most [`MAX_ISSUER_BYTES`].
pub fn check_issuer(issuer: &str) -> Result<(), TrustedError> {
    check_value("issuer", issuer)?;
    let loopback = [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
    ];
    let ok_scheme =
        issuer.starts_with("https://") || loopback.iter().any(|p| issuer.starts_with(p));
    if issuer.len() > MAX_ISSUER_BYTES || !ok_scheme || issuer.contains(['?', '#', '@']) {
        return bad(format!(
            "issuer {:?} is not an https URL without query, fragment or user",
            issuer.chars().take(60).collect::<String>()
        ));
    }
    Ok(())
}

impl Publisher {
    /// Checks every field's bounds.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), TrustedError> {
        check_issuer(&self.issuer)?;
        check_value("repository", &self.repository)?;
        if !self.repository.contains('/') {
            return bad("repository: name it as owner/repo (GitLab: group/project)");
        }
        for (field, v) in [
            ("workflow", &self.workflow),
            ("ref", &self.git_ref),
            ("environment", &self.environment),
        ] {
            if let Some(v) = v {
                check_value(field, v)?;
            }
        }
        if self
            .git_ref
            .as_deref()
            .is_some_and(|r| r[..r.len() - 1].contains('*'))
        {
            return bad("ref: a * may only end it (refs/tags/*)");
        }
        Ok(())
    }

    /// Whether `claims` are of a run this publisher trusts: the same issuer and repository
    /// (case-insensitively, as both forges compare them), and each field it names.
    pub fn matches(&self, claims: &Claims) -> bool {
        let same = |want: &Option<String>, got: &Option<String>| match want {
            None => true,
            Some(w) => got.as_deref() == Some(w.as_str()),
        };
        let git_ref = match self.git_ref.as_deref() {
            None => true,
            Some(w) => match (w.strip_suffix('*'), claims.git_ref.as_deref()) {
                (Some(prefix), Some(got)) => got.starts_with(prefix),
                (None, Some(got)) => got == w,
                (_, None) => false,
            },
        };
        self.issuer == claims.issuer
            && self.repository.eq_ignore_ascii_case(&claims.repository)
            && same(&self.workflow, &claims.workflow)
            && same(&self.environment, &claims.environment)
            && git_ref
    }
}

/// A token claim as text (numbers, as some CIs write ids, too).
fn text(raw: &serde_json::Value, name: &str) -> Option<String> {
    match raw.get(name)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The workflow file of a GitHub `workflow_ref` (`owner/repo/.github/workflows/x.yml@ref`) or a
/// GitLab `ci_config_ref_uri` (`gitlab.com/group/project//.gitlab-ci.yml@ref`).
fn workflow_file(reference: &str, repository: &str) -> Option<String> {
    let path = reference.split('@').next()?;
    if let Some((_, file)) = path.split_once("//") {
        return Some(file.to_string());
    }
    let rest = path.get(repository.len()..)?;
    path.get(..repository.len())?
        .eq_ignore_ascii_case(repository)
        .then(|| rest.trim_start_matches('/').to_string())
}

impl Claims {
    /// The claims of a verified ID token of GitHub Actions (`repository`, `workflow_ref`,
    /// `ref`, `sha`, `environment`, `run_id`) or GitLab CI (`project_path`,
    /// `ci_config_ref_uri`, `ref` with `ref_type`, `sha`, `environment`, `pipeline_id`).
    ///
    /// # Errors
    /// A token of neither shape, or a claim outside the bounds.
    pub fn from_token(raw: &serde_json::Value) -> Result<Claims, TrustedError> {
        let issuer = text(raw, "iss").ok_or_else(|| TrustedError("no iss claim".into()))?;
        let subject = text(raw, "sub").ok_or_else(|| TrustedError("no sub claim".into()))?;
        let claims = if let Some(repository) = text(raw, "repository") {
            Claims {
                workflow: text(raw, "workflow_ref").and_then(|w| workflow_file(&w, &repository)),
                git_ref: text(raw, "ref"),
                sha: text(raw, "sha"),
                environment: text(raw, "environment"),
                run: text(raw, "run_id"),
                issuer,
                subject,
                repository,
            }
        } else if let Some(repository) = text(raw, "project_path") {
            let git_ref = text(raw, "ref").map(|r| match text(raw, "ref_type").as_deref() {
                Some("tag") => format!("refs/tags/{r}"),
                Some("branch") => format!("refs/heads/{r}"),
                _ => r,
            });
            Claims {
                workflow: text(raw, "ci_config_ref_uri")
                    .and_then(|w| workflow_file(&w, &repository)),
                git_ref,
                sha: text(raw, "sha"),
                environment: text(raw, "environment"),
                run: text(raw, "pipeline_id"),
                issuer,
                subject,
                repository,
            }
        } else {
            return bad(
                "the token is neither GitHub Actions' (repository) nor GitLab CI's (project_path)",
            );
        };
        claims.check()?;
        Ok(claims)
    }

    /// Checks every field's bounds.
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), TrustedError> {
        check_issuer(&self.issuer)?;
        for (field, v) in [
            ("sub", Some(&self.subject)),
            ("repository", Some(&self.repository)),
            ("workflow", self.workflow.as_ref()),
            ("ref", self.git_ref.as_ref()),
            ("sha", self.sha.as_ref()),
            ("environment", self.environment.as_ref()),
            ("run", self.run.as_ref()),
        ] {
            if let Some(v) = v {
                check_value(field, v)?;
            }
        }
        Ok(())
    }
}

// What the exchange and the API send and answer.

/// `GET /api/v1/trusted-publishing`: what a CI's ID token must be to get a key here
/// (`spec/trusted-publishing.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedPublishingInfo {
    /// The origin the keys publish to.
    pub origin: String,
    /// The audience a token must name.
    pub audience: String,
    /// The issuers whose tokens the node verifies.
    pub issuers: Vec<String>,
    /// How long a key signs, in seconds.
    pub key_secs: u64,
}

/// `POST /api/v1/trusted-publishing/keys`: a CI run asks for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiKeyRequest {
    /// The CI's OIDC ID token (a JWT).
    pub token: String,
    /// The dist the run publishes.
    pub dist: String,
    /// The run's new Ed25519 public key, base64.
    pub key: String,
}

/// The answer: the `ci_key` entry the node sequenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiKeyIssued {
    /// Log index of the `ci_key` entry.
    pub index: u64,
    /// The dist.
    pub dist: String,
    /// The owner the release is published for (its entry's actor).
    pub user: String,
    /// The key's id.
    pub key_id: String,
    /// Until when it signs, seconds since the epoch.
    pub expires: u64,
    /// The trusted publisher matched.
    pub publisher: Publisher,
    /// What the token said of the run.
    pub claims: Claims,
}

/// A trusted publisher of a dist, as `GET /api/v1/dists/{dist}/publishers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublisherDoc {
    /// The workflow.
    #[serde(flatten)]
    pub publisher: Publisher,
    /// The owner who added it.
    pub user: String,
    /// Log index of the `publisher_add`.
    pub index: u64,
}

/// `GET /api/v1/dists/{dist}/publishers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publishers {
    /// The dist.
    pub dist: String,
    /// Its trusted publishers in force.
    pub publishers: Vec<PublisherDoc>,
}

#[cfg(test)]
#[path = "trusted_tests.rs"]
mod tests;
