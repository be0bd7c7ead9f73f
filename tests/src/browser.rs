//! Debian's headless Chromium, driven over WebDriver by Debian's chromedriver, for the site's
//! tests: pages are loaded, read and clicked as a reader's browser does, and each screenshot
//! is kept as a test artifact.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A headless Chromium session and the chromedriver that runs it. `close` ends both; dropping
/// it kills chromedriver, and Chromium with it.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// `$PGEXT_CHROMIUM`, else Debian's `/usr/bin/chromium`.
fn chromium() -> PathBuf {
    tool("PGEXT_CHROMIUM", "/usr/bin/chromium")
}

/// `$PGEXT_CHROMEDRIVER`, else Debian's `/usr/bin/chromedriver`.
fn chromedriver() -> PathBuf {
    tool("PGEXT_CHROMEDRIVER", "/usr/bin/chromedriver")
}

fn tool(var: &str, default: &str) -> PathBuf {
    let p = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        p.is_file(),
        "{} is not installed: run scripts/bootstrap (or set {var})",
        p.display()
    );
    p
}

/// Where tests keep what they make for people to look at: `$PGEXT_TEST_ARTIFACTS`, else
/// `test-artifacts/` in the target folder this test binary was built in.
pub fn artifacts_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGEXT_TEST_ARTIFACTS") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary>
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps")
        .join("test-artifacts")
}

impl Browser {
    /// Starts chromedriver on a loopback port the OS chose and a headless Chromium session in
    /// a fresh profile, with JavaScript on or off. Screenshots go to `artifacts_dir()/{shots}/`.
    ///
    /// # Panics
    /// When chromedriver or Chromium is missing or does not start within 30 s.
    pub async fn start(javascript: bool, shots: &str) -> Browser {
        // Chromium's profile and the scratch files it and chromedriver leave in the temporary
        // folder all go in one folder, removed with the session.
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut driver = tokio::process::Command::new(chromedriver())
            .arg("--port=0")
            .env("TMPDIR", profile.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let mut lines = BufReader::new(driver.stdout.take().expect("its stdout")).lines();
        // "ChromeDriver was started successfully on port 12345."
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("chromedriver's output") {
                if let Some(rest) = line.split("successfully on port ").nth(1) {
                    return rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .expect("chromedriver says which port it listens on");
        // Keep reading, so a chatty chromedriver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        // The flags keep Chromium off the network but for the pages it is sent to.
        let mut options = serde_json::json!({
            "binary": chromium(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().join("profile").display()),
            ],
        });
        if !javascript {
            options["prefs"] =
                serde_json::json!({"profile.managed_default_content_settings.javascript": 2});
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let shots = artifacts_dir().join(shots);
        std::fs::create_dir_all(&shots).expect("the screenshot folder");
        Browser {
            client,
            driver,
            _profile: profile,
            shots,
        }
    }

    /// Loads `url` and waits for it.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("loading {url}: {e}"));
    }

    /// The address of the page shown.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the URL")
            .to_string()
    }

    /// The first element `css` selects.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.url().await),
        }
    }

    /// The rendered text of the first element `css` selects, as a reader sees it.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("its text")
    }

    /// The rendered texts of every element `css` selects.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.client.find_all(Locator::Css(css)).await.expect(css) {
            out.push(e.text().await.expect("its text"));
        }
        out
    }

    /// Clicks the first element `css` selects and waits for the page it leads to.
    pub async fn click(&self, css: &str) {
        let before = self.url().await;
        self.find(css).await.click().await.expect("a click");
        self.wait_url_change(&before).await;
    }

    /// Clicks the link whose text is `text` and waits for the page it leads to.
    pub async fn click_link(&self, text: &str) {
        let before = self.url().await;
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("no link {text:?} on {before}: {e}"))
            .click()
            .await
            .expect("a click");
        self.wait_url_change(&before).await;
    }

    /// Types `text` into the field `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("a cleared field");
        field.send_keys(text).await.expect("typing");
    }

    /// Runs `script` in the page and returns what it returns (JavaScript must be on).
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("the script runs")
    }

    async fn wait_url_change(&self, before: &str) {
        crate::eventually(30, || async {
            let now = self.url().await;
            if now == before {
                Err(format!("still on {before}"))
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Saves a screenshot of the window as `{name}.png` among the artifacts; returns its path.
    ///
    /// # Panics
    /// When Chromium gives no PNG of its window.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24,
            "{name}: not a PNG"
        );
        // IHDR's width and height follow the signature and the chunk header.
        let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(
            width >= 800 && height >= 600,
            "{name}: a {width}×{height} screenshot"
        );
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}
