//! Publishing from CI with no long-lived key (`spec/trusted-publishing.md`): the CI's OIDC ID
//! token, asked of GitHub Actions (`ACTIONS_ID_TOKEN_REQUEST_URL`, with `permissions:
//! id-token: write`) or taken from `PGEXT_ID_TOKEN` (GitLab CI's `id_tokens:`, or any CI),
//! for the audience the node names; exchanged for a key the node records for this run; the
//! release signed with it.

use pgext_spec::authority::encode_public_key;
use pgext_spec::entry::{Action, Entry, Release};
use pgext_spec::trusted::{CiKeyIssued, CiKeyRequest};

use crate::Error;
use crate::author::Submitter;
use crate::release::Identity;

/// The variable a CI puts its ID token in (GitLab: `id_tokens: PGEXT_ID_TOKEN: aud: …`).
pub const TOKEN_ENV: &str = "PGEXT_ID_TOKEN";

/// Longest ID token answer read, in bytes.
const MAX_ANSWER: usize = 64 << 10;

/// The CI's ID token for `audience`.
///
/// # Errors
/// When no CI provides one, or GitHub's token service refuses.
pub async fn id_token(audience: &str) -> Result<String, Error> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let (Ok(url), Ok(bearer)) = (
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"),
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Err(Error::Config(format!(
            "no CI ID token: in GitHub Actions give the job `permissions: id-token: write`; elsewhere put the token (audience {audience}) in {TOKEN_ENV}"
        )));
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let resp = crate::http::client()
        .get(format!(
            "{url}{sep}audience={}",
            crate::http::query_value(audience)
        ))
        .bearer_auth(bearer)
        .send()
        .await
        .map_err(|e| Error::Unreachable(format!("the CI's token service: {e}")))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| Error::Unreachable(format!("the CI's token service: {e}")))?;
    if !status.is_success() || body.len() > MAX_ANSWER {
        return Err(Error::Api(format!(
            "the CI's token service answered {status} ({} bytes)",
            body.len()
        )));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        value: String,
    }
    let a: Answer = serde_json::from_slice(&body)
        .map_err(|e| Error::Api(format!("the CI's token service: {e}")))?;
    Ok(a.value)
}

/// Gets a key for this CI run to publish `release` with, and signs it: the run's ID token for
/// the node's audience, a new key, the node's `ci_key` entry for it.
///
/// # Errors
/// No token, or the node's refusal (a token it does not take, a run no trusted publisher of
/// the dist matches).
pub async fn sign_from_ci(
    to: &Submitter,
    release: &Release,
) -> Result<(Entry, CiKeyIssued), Error> {
    let info = to
        .each(|n| async move { n.trusted_publishing().await })
        .await?;
    let token = id_token(&info.audience).await?;
    let fresh = crate::author::generate("ci");
    let req = CiKeyRequest {
        token,
        dist: release.dist.clone(),
        key: encode_public_key(&fresh.key.verifying_key()),
    };
    let issued = to
        .each(|n| {
            let req = req.clone();
            async move { n.ci_key(&req).await }
        })
        .await?;
    let id = Identity {
        user: issued.user.clone(),
        key: fresh.key,
    };
    Ok((id.sign(Action::Release(release.clone())), issued))
}
