//! Trusted publishing (`spec/trusted-publishing.md`) against a real OIDC issuer on loopback
//! (`tests/tools/oidc_issuer.py`: discovery, JWKS, RS256 and ES256 tokens signed by Python's
//! `cryptography`, GitHub Actions' token service): an owner trusts a workflow with `pgext
//! publisher add`; `pgext publish --oidc` publishes from "CI" with no signing key, through
//! GitHub's token service and with a GitLab-shaped token; the release page and `pgext verify`
//! say where it was built; every bad token and every untrusted run is refused with nothing
//! stored; a rotated issuer key is fetched and taken.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};

use pgext_spec::entry::Action;
use pgext_spec::trusted::Publisher;
use pgext_tests::{Cli, TestNode, fixtures, identity};
use serde_json::{Value, json};

const DIST: &str = "pgext_tp_widget";

/// The issuer, killed when dropped.
struct Issuer {
    child: Child,
    url: String,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Issuer {
    fn start() -> Issuer {
        let python = pgext_tests::tools_dir().join("venv/bin/python");
        assert!(
            python.exists(),
            "{}: run scripts/bootstrap",
            python.display()
        );
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/oidc_issuer.py");
        let mut child = Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the issuer");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the issuer's URL");
        Issuer {
            child,
            url: line.trim().to_string(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn mint(&self, spec: Value) -> String {
        self.post("/admin/mint", spec).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Claims as GitHub Actions writes them for a tag push of `repo`'s release workflow.
fn github_claims(repo: &str, aud: &str) -> Value {
    json!({
        "sub": format!("repo:{repo}:ref:refs/tags/v1.1.0"), "aud": aud,
        "repository": repo, "repository_owner": repo.split('/').next().unwrap(),
        "workflow": "Release", "workflow_ref": format!("{repo}/.github/workflows/release.yml@refs/tags/v1.1.0"),
        "job_workflow_ref": format!("{repo}/.github/workflows/release.yml@refs/tags/v1.1.0"),
        "ref": "refs/tags/v1.1.0", "ref_type": "tag", "sha": "5f0c6e1d2a3b4c5d6e7f8091a2b3c4d5e6f70819",
        "run_id": "8812345", "event_name": "push", "actor": "octocat", "runner_environment": "github-hosted"
    })
}

/// Claims as GitLab CI writes them for a tag pipeline of `project`.
fn gitlab_claims(project: &str, aud: &str) -> Value {
    json!({
        "sub": format!("project_path:{project}:ref_type:tag:ref:v1.2.0"), "aud": aud,
        "project_path": project, "namespace_path": project.split('/').next().unwrap(),
        "ref": "v1.2.0", "ref_type": "tag", "ref_protected": "true", "pipeline_id": "574",
        "ci_config_ref_uri": format!("gitlab.example.com/{project}//.gitlab-ci.yml@refs/tags/v1.2.0"),
        "sha": "714a629c0b401fdce83e847fc9589983fc6f46bc", "user_login": "sample-user"
    })
}

/// A project folder of `DIST` at `version`.
fn project(root: &std::path::Path, version: &str) -> String {
    let dir = root.join(format!("{DIST}-{version}"));
    for (name, bytes) in fixtures::dist(DIST, version, DIST, "stable") {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir.display().to_string()
}

async fn exchange(node: &TestNode, token: &str, dist: &str) -> (u16, Value) {
    let key = pgext::author::generate("ci");
    let body = json!({"token": token, "dist": dist,
        "key": pgext_spec::authority::encode_public_key(&key.key.verifying_key())});
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/trusted-publishing/keys", node.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_publishes_with_id_tokens_and_no_long_lived_key() {
    let issuer = Issuer::start();
    let iss = issuer.url.clone();
    let node = TestNode::start_with(|c| c.trusted_publishing.issuers = vec![iss]).await;
    let info = node.json("/api/v1/trusted-publishing").await;
    let aud = info["audience"].as_str().unwrap().to_string();
    assert_eq!(info["issuers"], json!([issuer.url]));

    let (alice, bob) = (identity("alice", 1), identity("bob", 2));
    node.register(&alice, None).await;
    node.register(&bob, None).await;
    node.publish_dist(&alice, DIST, "1.0.0", DIST, "stable")
        .await;
    node.publish_dist(
        &bob,
        "pgext_tp_gadget",
        "1.0.0",
        "pgext_tp_gadget",
        "stable",
    )
    .await;
    let github = |repo: &str, workflow: &str| Publisher {
        issuer: issuer.url.clone(),
        repository: repo.into(),
        workflow: Some(workflow.into()),
        git_ref: None,
        environment: None,
    };
    // Bob trusts his own repository for his dist; he may not name one for alice's.
    node.api_as(&bob)
        .submit(&bob.sign(Action::PublisherAdd {
            dist: "pgext_tp_gadget".into(),
            publisher: github("octo/gadget", ".github/workflows/release.yml"),
        }))
        .await
        .unwrap();
    let err = node
        .api_as(&bob)
        .submit(&bob.sign(Action::PublisherAdd {
            dist: DIST.into(),
            publisher: github("octo/widget", ".github/workflows/release.yml"),
        }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not-owner"), "{err}");

    let home_alice = tempfile::tempdir().unwrap();
    let url = node.url();
    {
        let (url, home, alice, iss) = (
            url.clone(),
            home_alice.path().to_path_buf(),
            alice.clone(),
            issuer.url.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let cli = crate::binary::user(&home, &url, Some(&alice), &[]);
            let key = cli.path("key.txt");
            let err = cli.fails(&["--key", &key, "publisher", "add", DIST, "--issuer", "http://ci.example.com", "--repository", "octo/widget"]);
            assert!(err.contains("not an https URL"), "{err}");
            for (workflow, git_ref) in [(".github/workflows/release.yml", "refs/tags/*"), (".gitlab-ci.yml", "refs/tags/*")] {
                let out = cli.ok(&["--key", &key, "publisher", "add", DIST, "--issuer", &iss, "--repository", "octo/widget", "--workflow", workflow, "--ref", git_ref]);
                assert!(out.contains(&format!("{DIST} now trusts octo/widget")), "{out}");
            }
            let listed = cli.ok(&["publisher", "list", DIST]);
            assert!(listed.contains("octo/widget workflow .github/workflows/release.yml ref refs/tags/* (added by alice"), "{listed}");
        })
        .await
        .unwrap();
    }
    assert_eq!(
        node.json(&format!("/api/v1/dists/{DIST}/publishers")).await["publishers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Every bad token and every untrusted run: refused, naming why, nothing stored.
    let size = node.json("/api/v1/log").await["size"].clone();
    let widget = github_claims("octo/widget", &aud);
    let mut wrong_issuer = widget.clone();
    wrong_issuer["iss"] = json!("https://token.actions.githubusercontent.com");
    let mut other_workflow = widget.clone();
    other_workflow["workflow_ref"] = json!("octo/widget/.github/workflows/ci.yml@refs/tags/v1.1.0");
    let mut branch = widget.clone();
    branch["ref"] = json!("refs/heads/main");
    for (spec, dist, status, why) in [
        (
            json!({"claims": widget, "exp_in": -3600}),
            DIST,
            401,
            "expired",
        ),
        (
            json!({"claims": widget, "nbf_in": 3600}),
            DIST,
            401,
            "not valid yet",
        ),
        (
            json!({"claims": github_claims("octo/widget", "someone-else")}),
            DIST,
            401,
            "not for audience",
        ),
        (
            json!({"claims": wrong_issuer}),
            DIST,
            401,
            "are not taken here",
        ),
        (
            json!({"claims": widget, "kid": "rogue"}),
            DIST,
            401,
            "does not list",
        ),
        (
            json!({"claims": github_claims("octo/gadget", &aud)}),
            DIST,
            403,
            "no trusted publisher",
        ),
        (
            json!({"claims": other_workflow}),
            DIST,
            403,
            "no trusted publisher",
        ),
        (json!({"claims": branch}), DIST, 403, "no trusted publisher"),
        (
            json!({"claims": widget}),
            "pgext_tp_gadget",
            403,
            "no trusted publisher",
        ),
        (
            json!({"claims": widget}),
            "pgext_tp_nosuch",
            400,
            "no distribution",
        ),
    ] {
        let token = issuer.mint(spec.clone()).await;
        let (got, body) = exchange(&node, &token, dist).await;
        assert_eq!(got, status, "{spec}: {body}");
        assert!(
            body["errors"][0]["detail"].as_str().unwrap().contains(why),
            "{spec}: {body}"
        );
    }
    let (got, _) = exchange(&node, "not.a-jwt", DIST).await;
    assert_eq!(got, 401);
    // A token whose signature was tampered with.
    let token = issuer.mint(json!({"claims": widget})).await;
    let tampered = format!(
        "{}{}",
        &token[..token.len() - 4],
        if token.ends_with("AAAA") {
            "BBBB"
        } else {
            "AAAA"
        }
    );
    let (got, body) = exchange(&node, &tampered, DIST).await;
    assert_eq!(got, 401, "{body}");
    assert_eq!(
        node.json("/api/v1/log").await["size"],
        size,
        "nothing was stored"
    );

    // From "GitHub Actions": the CLI asks the runner's token service, with no signing key.
    issuer.post("/admin/github", widget.clone()).await;
    let home_ci = tempfile::tempdir().unwrap();
    let (url2, h_ci, iss) = (
        url.clone(),
        home_ci.path().to_path_buf(),
        issuer.url.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let cli = Cli::new(&h_ci);
        cli.ok(&["registry", "add", "main", &url2, "--yes"]);
        let dir = project(&h_ci, "1.1.0");
        // Without a CI around, told what is missing.
        let err = cli.fails(&["publish", &dir, "--oidc"]);
        assert!(err.contains("no CI ID token"), "{err}");
        let gh = [
            ("ACTIONS_ID_TOKEN_REQUEST_URL".to_string(), format!("{iss}/gh-token?api-version=2.0")),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN".to_string(), "runner-secret".to_string()),
        ];
        let (ok, out, err) = cli.run_with(&["publish", &dir, "--oidc"], &gh);
        assert!(ok, "{out}{err}");
        assert!(out.contains(&format!("published {DIST} 1.1.0")), "{out}");
        assert!(err.contains("trusted publishing: octo/widget .github/workflows/release.yml matched"), "{err}");
        let verified = cli.ok(&["verify", &format!("{DIST}@1.1.0")]);
        assert!(verified.contains("published by  alice"), "{verified}");
        assert!(verified.contains("built in CI   octo/widget, workflow .github/workflows/release.yml, ref refs/tags/v1.1.0, commit 5f0c6e1d2a3b4c5d6e7f8091a2b3c4d5e6f70819, run 8812345"), "{verified}");
    })
    .await
    .unwrap();
    let (_, page) = node.get(&format!("/dist/{DIST}/1.1.0/")).await;
    let page = String::from_utf8_lossy(&page);
    assert!(page.contains("Built in CI"), "{page}");
    assert!(
        page.contains("<code>5f0c6e1d2a3b4c5d6e7f8091a2b3c4d5e6f70819</code>"),
        "{page}"
    );
    let (_, page) = node.get(&format!("/dist/{DIST}/1.0.0/")).await;
    assert!(!String::from_utf8_lossy(&page).contains("Built in CI"));

    // From "GitLab CI": an ES256 token in PGEXT_ID_TOKEN.
    let token = issuer
        .mint(json!({"claims": gitlab_claims("octo/widget", &aud), "kid": "ec-1"}))
        .await;
    let h_ci = home_ci.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let cli = Cli::new(&h_ci);
        let dir = project(&h_ci, "1.2.0");
        let (ok, out, err) = cli.run_with(
            &["publish", &dir, "--oidc"],
            &[("PGEXT_ID_TOKEN".into(), token)],
        );
        assert!(ok, "{out}{err}");
        assert!(err.contains("octo/widget .gitlab-ci.yml matched"), "{err}");
    })
    .await
    .unwrap();
    let dist = node.json(&format!("/api/v1/dists/{DIST}")).await;
    assert!(dist.to_string().contains("1.2.0"), "{dist}");

    // The issuer rotates its keys: a token of the new key is taken once the node fetches the
    // keys again (at most every few seconds).
    issuer.post("/admin/rotate", json!({})).await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let token = issuer.mint(json!({"claims": widget, "kid": "rsa-2"})).await;
    let (got, body) = exchange(&node, &token, DIST).await;
    assert_eq!(got, 201, "{body}");
    assert_eq!(body["user"], "alice");
    // One token, one key: a run cannot fill the log with keys.
    let size = node.json("/api/v1/log").await["size"].clone();
    let (got, again) = exchange(&node, &token, DIST).await;
    assert_eq!(got, 401, "{again}");
    assert!(
        again.to_string().contains("exchanged for a key already"),
        "{again}"
    );
    assert_eq!(node.json("/api/v1/log").await["size"], size);
    assert_eq!(body["claims"]["repository"], "octo/widget");
}
