//! Hostile input, tried from outside as an attacker would: requests whose parameters size work,
//! malformed paths, queries, methods and bodies, entries over the log's limits or breaking its
//! rules, and uploads of every kind of bad archive, META and statement. Each case asserts the
//! status, the error's code and words in the one JSON error shape, and that nothing was stored:
//! the log does not grow and no blob appears.

mod entries;
mod requests;
mod uploads;

use pgext::release::Identity;
use pgext_spec::entry::Release;
use pgext_tests::{TestNode, fixtures, identity};

/// How a case reaches the node.
pub(crate) enum Req {
    /// `GET path`.
    Get(String),
    /// Any method, path, content type and body.
    Raw {
        method: &'static str,
        path: String,
        content_type: Option<&'static str>,
        body: Vec<u8>,
    },
    /// A multipart form with these fields (name, bytes), as a release upload is.
    Form(Vec<(&'static str, Vec<u8>)>),
}

/// One hostile request and what the node must answer.
pub(crate) struct Case {
    pub name: String,
    pub req: Req,
    pub status: u16,
    /// The error's code; empty for the answers C2SP specifies as plain text.
    pub code: &'static str,
    /// Words the error's detail holds (any case).
    pub words: &'static str,
}

pub(crate) fn case(
    name: impl Into<String>,
    req: Req,
    status: u16,
    code: &'static str,
    words: &'static str,
) -> Case {
    Case {
        name: name.into(),
        req,
        status,
        code,
        words,
    }
}

pub(crate) fn get(path: impl Into<String>) -> Req {
    Req::Get(path.into())
}

pub(crate) fn post_json(path: &str, body: impl Into<Vec<u8>>) -> Req {
    Req::Raw {
        method: "POST",
        path: path.into(),
        content_type: Some("application/json"),
        body: body.into(),
    }
}

/// A release upload: the statement and the archive.
pub(crate) fn upload(entry: Vec<u8>, archive: Vec<u8>) -> Req {
    Req::Form(vec![("entry", entry), ("archive", archive)])
}

/// The state every case meets: alice and bob registered, alice published pair 1.0.0.
pub(crate) struct Fixture {
    pub alice: Identity,
    pub bob: Identity,
    /// The files of pair 1.0.0.
    pub files: Vec<(String, Vec<u8>)>,
    /// The statement of pair 1.0.1 made from [`Fixture::files`] bumped to 1.0.1.
    pub next: Release,
    /// pair 1.0.1's archive.
    pub next_tgz: Vec<u8>,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let files = fixtures::dist("pair", "1.0.1", "pair", "stable");
        let next_tgz = fixtures::tar_gz("pair-1.0.1", &files);
        let next = pgext::release::prepare_release(&next_tgz, None)
            .expect("a valid release")
            .release;
        Fixture {
            alice: identity("alice", 1),
            bob: identity("bob", 2),
            files,
            next,
            next_tgz,
        }
    }
}

async fn setup() -> (TestNode, Fixture) {
    let node = TestNode::start().await;
    let fx = Fixture::new();
    node.register(&fx.alice, Some("Alice")).await;
    node.register(&fx.bob, None).await;
    node.publish_dist(&fx.alice, "pair", "1.0.0", "pair", "stable")
        .await;
    (node, fx)
}

async fn send(node: &TestNode, req: &Req) -> (u16, String) {
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", node.url());
    let resp = match req {
        Req::Get(p) => http.get(url(p)).send().await,
        Req::Raw {
            method,
            path,
            content_type,
            body,
        } => {
            let mut r = http.request(method.parse().expect("a method"), url(path));
            if let Some(ct) = content_type {
                r = r.header("content-type", *ct);
            }
            r.body(body.clone()).send().await
        }
        Req::Form(fields) => {
            let mut form = reqwest::multipart::Form::new();
            for (name, bytes) in fields {
                form = form.part(
                    *name,
                    reqwest::multipart::Part::bytes(bytes.clone()).file_name(format!("{name}.bin")),
                );
            }
            http.post(url("/api/v1/releases"))
                .multipart(form)
                .send()
                .await
        }
    }
    .expect("the node answers");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// Sends every case; fails with every case that was not answered as it must be.
async fn run(node: &TestNode, cases: Vec<Case>) {
    let size = node.json("/api/v1/log").await["size"].as_u64().unwrap();
    let blobs = node.blob_count();
    let mut wrong = Vec::new();
    for c in &cases {
        let (status, body) = send(node, &c.req).await;
        let mut why = Vec::new();
        if status != c.status {
            why.push(format!("status {status}, not {}", c.status));
        }
        if c.code.is_empty() {
            if !body.to_lowercase().contains(&c.words.to_lowercase()) {
                why.push(format!("no {:?} in the answer", c.words));
            }
        } else {
            match serde_json::from_str::<pgext_spec::api::ErrorBody>(&body) {
                Ok(e) => {
                    let first = &e.errors[0];
                    if first.code != c.code {
                        why.push(format!("code {}, not {}", first.code, c.code));
                    }
                    if !first
                        .detail
                        .to_lowercase()
                        .contains(&c.words.to_lowercase())
                    {
                        why.push(format!("no {:?} in the detail", c.words));
                    }
                }
                Err(_) => why.push("not the JSON error shape".into()),
            }
        }
        let now = node.json("/api/v1/log").await["size"].as_u64().unwrap();
        if now != size {
            why.push(format!("the log grew to {now}"));
        }
        if node.blob_count() != blobs {
            why.push("a blob was stored".into());
        }
        if !why.is_empty() {
            let shown: String = body.chars().take(300).collect();
            wrong.push(format!("{}: {} — answered {shown}", c.name, why.join("; ")));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases answered wrongly:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn requests_that_size_work_or_do_not_parse() {
    let (node, _) = setup().await;
    run(&node, requests::cases()).await;
    node.node.shutdown().await;
}

#[tokio::test]
async fn entries_over_the_limits_or_breaking_rules() {
    let (node, fx) = setup().await;
    run(&node, entries::cases(&fx)).await;
    node.node.shutdown().await;
}

#[tokio::test]
async fn uploads_of_bad_archives_metas_and_statements() {
    let (node, fx) = setup().await;
    run(&node, uploads::cases(&fx)).await;
    node.node.shutdown().await;
}

#[test]
fn the_suite_holds_at_least_150_distinct_cases() {
    let fx = Fixture::new();
    let mut names: Vec<String> = requests::cases()
        .into_iter()
        .chain(entries::cases(&fx))
        .chain(uploads::cases(&fx))
        .map(|c| c.name)
        .collect();
    let all = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), all, "two cases share a name");
    assert!(all >= 150, "{all} cases");
}
