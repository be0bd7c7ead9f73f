use serde_json::json;

use super::*;

/// Claims as GitHub Actions documents its ID tokens.
fn github() -> serde_json::Value {
    json!({
        "jti": "example-id", "sub": "repo:octo-org/octo-ext:environment:release",
        "environment": "release", "aud": "pgext.example.org/log",
        "ref": "refs/tags/v1.2.3", "sha": "a1b2c3d4e5f6", "repository": "octo-org/octo-ext",
        "repository_owner": "octo-org", "actor_id": "12", "repository_visibility": "public",
        "repository_id": "74", "repository_owner_id": "65", "run_id": 1234567890,
        "run_number": "10", "run_attempt": "1", "runner_environment": "github-hosted",
        "actor": "octocat", "workflow": "Release", "head_ref": "", "base_ref": "",
        "event_name": "push", "ref_type": "tag",
        "workflow_ref": "octo-org/octo-ext/.github/workflows/release.yml@refs/tags/v1.2.3",
        "job_workflow_ref": "octo-org/octo-ext/.github/workflows/release.yml@refs/tags/v1.2.3",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": 1632492967, "exp": 1632493867, "iat": 1632493567
    })
}

/// Claims as GitLab CI documents its ID tokens.
fn gitlab() -> serde_json::Value {
    json!({
        "namespace_id": "72", "namespace_path": "my-group", "project_id": "20",
        "project_path": "my-group/my-ext", "user_id": "1", "user_login": "sample-user",
        "pipeline_id": "574", "pipeline_source": "push", "job_id": "302",
        "ref": "v1.2.3", "ref_type": "tag", "ref_path": "refs/tags/v1.2.3", "ref_protected": "true",
        "environment": "production", "environment_protected": "true",
        "ci_config_ref_uri": "gitlab.example.com/my-group/my-ext//.gitlab-ci.yml@refs/tags/v1.2.3",
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc",
        "jti": "235b3a54", "iss": "https://gitlab.example.com", "iat": 1681395193,
        "nbf": 1681395188, "exp": 1681398793,
        "sub": "project_path:my-group/my-ext:ref_type:tag:ref:v1.2.3", "aud": "pgext"
    })
}

fn publisher(issuer: &str, repository: &str) -> Publisher {
    Publisher {
        issuer: issuer.into(),
        repository: repository.into(),
        workflow: None,
        git_ref: None,
        environment: None,
    }
}

#[test]
fn both_forges_tokens_read_into_one_shape() {
    let c = Claims::from_token(&github()).unwrap();
    assert_eq!(c.repository, "octo-org/octo-ext");
    assert_eq!(c.workflow.as_deref(), Some(".github/workflows/release.yml"));
    assert_eq!(c.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
    assert_eq!(c.environment.as_deref(), Some("release"));
    assert_eq!(c.run.as_deref(), Some("1234567890"));
    assert_eq!(c.sha.as_deref(), Some("a1b2c3d4e5f6"));

    let c = Claims::from_token(&gitlab()).unwrap();
    assert_eq!(c.repository, "my-group/my-ext");
    assert_eq!(c.workflow.as_deref(), Some(".gitlab-ci.yml"));
    assert_eq!(c.git_ref.as_deref(), Some("refs/tags/v1.2.3"));
    assert_eq!(c.run.as_deref(), Some("574"));
    let mut branch = gitlab();
    branch["ref"] = json!("main");
    branch["ref_type"] = json!("branch");
    assert_eq!(
        Claims::from_token(&branch).unwrap().git_ref.as_deref(),
        Some("refs/heads/main")
    );

    let mut neither = github();
    neither.as_object_mut().unwrap().remove("repository");
    assert!(
        Claims::from_token(&neither)
            .unwrap_err()
            .0
            .contains("neither")
    );
    let mut spaced = github();
    spaced["ref"] = json!("refs/tags/a b");
    assert!(Claims::from_token(&spaced).is_err());
}

#[test]
fn publishers_match_only_the_runs_they_name() {
    let gh = Claims::from_token(&github()).unwrap();
    let gl = Claims::from_token(&gitlab()).unwrap();
    let p = publisher(
        "https://token.actions.githubusercontent.com",
        "Octo-Org/octo-ext",
    );
    p.check().unwrap();
    assert!(p.matches(&gh), "repositories compare case-insensitively");
    assert!(!p.matches(&gl));
    let narrowed = |f: &dyn Fn(&mut Publisher)| {
        let mut q = p.clone();
        f(&mut q);
        q.check().unwrap();
        q.matches(&gh)
    };
    assert!(narrowed(
        &|q| q.workflow = Some(".github/workflows/release.yml".into())
    ));
    assert!(!narrowed(
        &|q| q.workflow = Some(".github/workflows/ci.yml".into())
    ));
    assert!(narrowed(&|q| q.git_ref = Some("refs/tags/*".into())));
    assert!(narrowed(&|q| q.git_ref = Some("refs/tags/v1.2.3".into())));
    assert!(!narrowed(&|q| q.git_ref = Some("refs/heads/*".into())));
    assert!(narrowed(&|q| q.environment = Some("release".into())));
    assert!(!narrowed(&|q| q.environment = Some("staging".into())));
    assert!(!narrowed(&|q| q.repository = "octo-org/other".into()));
    assert!(!narrowed(
        &|q| q.issuer = "https://gitlab.example.com".into()
    ));
    let mut lab = publisher("https://gitlab.example.com", "my-group/my-ext");
    lab.environment = Some("production".into());
    assert!(lab.matches(&gl));
}

#[test]
fn publishers_are_bounded() {
    let ok = publisher("https://gitlab.example.com", "group/project");
    ok.check().unwrap();
    let refused = |f: &dyn Fn(&mut Publisher)| {
        let mut p = ok.clone();
        f(&mut p);
        p.check().is_err()
    };
    assert!(refused(&|p| p.issuer = "ftp://x.example".into()));
    assert!(refused(&|p| p.issuer = "http://ci.example.com".into()));
    assert!(refused(&|p| p.issuer = "https://x.example/?a=1".into()));
    assert!(refused(
        &|p| p.issuer = format!("https://{}", "x".repeat(300))
    ));
    assert!(refused(&|p| p.repository = "noslash".into()));
    assert!(refused(&|p| p.repository = "a/b c".into()));
    assert!(refused(&|p| p.workflow = Some(String::new())));
    assert!(refused(&|p| p.git_ref = Some("refs/*/x".into())));
    assert!(refused(&|p| p.environment = Some("e\u{1b}".into())));
    assert!(!refused(&|p| p.issuer = "http://127.0.0.1:8080".into()));
}
