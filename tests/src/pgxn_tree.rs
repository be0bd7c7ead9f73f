//! A PGXN mirror tree, as `rsync://master.pgxn.org/pgxn` lays it out, made for tests and
//! benchmarks: `index.json`, `dist/{dist}.json`, and per release
//! `dist/{dist}/{version}/META.json` (PGXN's release META: `user`, `sha1`, `date`,
//! `release_status` added, `meta-spec` removed) and `{dist}-{version}.zip`. The zips are
//! written the way PGXN's manager writes them (members under `{dist}-{version}/`, deflated
//! with the zip library's own settings), not the way pgext builds release zips, so an import
//! that rebuilt them would change their SHA-1.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha1::Digest as _;

/// A release a distribution document lists: version, status, date.
type Listed = (String, String, String);

/// A tree being written.
#[derive(Debug)]
pub struct PgxnTree {
    root: PathBuf,
    /// By lowercase name: the name and the releases listed.
    dists: BTreeMap<String, (String, Vec<Listed>)>,
}

/// What one release put in the tree.
#[derive(Debug, Clone)]
pub struct Added {
    /// Hex SHA-1 of the zip.
    pub sha1: String,
    /// The zip's path below the root.
    pub zip: String,
    /// The release META's path below the root.
    pub meta: String,
}

/// A real META.json of `spec/testdata/real-meta`.
///
/// # Panics
/// When it cannot be read.
pub fn real_meta(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../spec/testdata/real-meta")
        .join(file);
    serde_json::from_slice(&std::fs::read(&path).expect("real META")).expect("JSON")
}

impl PgxnTree {
    /// A tree in `root`, with its `index.json`.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn new(root: &Path) -> PgxnTree {
        // The templates PGXN's manager writes, as a node serves them.
        let index = pgext_node::serve::pgxn::documents::index_doc();
        std::fs::create_dir_all(root.join("dist")).expect("mkdir");
        std::fs::write(root.join("index.json"), index.to_string()).expect("index.json");
        PgxnTree {
            root: root.to_path_buf(),
            dists: BTreeMap::new(),
        }
    }

    /// The tree's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The source files of release `version` made from the real META `meta` (its name,
    /// abstract, tags and extensions kept; every version set to `version`): a PGXS Makefile, a
    /// control file and an install script per extension, and the META.
    pub fn sources(meta: &Value, version: &str, status: &str) -> Vec<(String, Vec<u8>)> {
        let mut meta = meta.clone();
        meta["version"] = json!(version);
        meta["release_status"] = json!(status);
        let exts: Vec<String> = meta["provides"]
            .as_object()
            .expect("provides")
            .keys()
            .cloned()
            .collect();
        let mut files = Vec::new();
        let mut data = Vec::new();
        for ext in &exts {
            meta["provides"][ext]["version"] = json!(version);
            meta["provides"][ext]["file"] = json!(format!("sql/{ext}--{version}.sql"));
            let ident = ext.replace('-', "_");
            files.push((
                format!("{ext}.control"),
                format!("default_version = '{version}'\nrelocatable = true\n").into_bytes(),
            ));
            files.push((
                format!("sql/{ext}--{version}.sql"),
                format!("CREATE FUNCTION {ident}_version() RETURNS text LANGUAGE sql AS $$ SELECT '{version}'::text $$;\n").into_bytes(),
            ));
            data.push(format!("sql/{ext}--{version}.sql"));
        }
        let main = &exts[0];
        files.push((
            "Makefile".into(),
            format!(
                "EXTENSION = {}\nDATA = {}\nPG_CONFIG ?= pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n",
                exts.join(" "),
                data.join(" ")
            )
            .into_bytes(),
        ));
        files.push((
            "README.md".into(),
            format!("# {main}\n\nImported from PGXN.\n").into_bytes(),
        ));
        files.push((
            "META.json".into(),
            serde_json::to_vec_pretty(&meta).expect("META"),
        ));
        files
    }

    /// Adds release `version` of the real META `meta` by PGXN user `user` on `date`
    /// (`YYYY-MM-DDTHH:MM:SSZ`), listed under `status`.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn add(
        &mut self,
        meta: &Value,
        version: &str,
        status: &str,
        user: &str,
        date: &str,
    ) -> Added {
        let files = PgxnTree::sources(meta, version, status);
        self.add_files(
            meta["name"].as_str().expect("name"),
            version,
            status,
            user,
            date,
            &files,
        )
    }

    /// Adds a release with exactly these source files (their META.json included).
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn add_files(
        &mut self,
        name: &str,
        version: &str,
        status: &str,
        user: &str,
        date: &str,
        files: &[(String, Vec<u8>)],
    ) -> Added {
        let lc = name.to_lowercase();
        let prefix = format!("{lc}-{}", version.to_lowercase());
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.add_directory(
            format!("{prefix}/"),
            zip::write::SimpleFileOptions::default(),
        )
        .expect("zip dir");
        for (path, data) in files {
            w.start_file(
                format!("{prefix}/{path}"),
                zip::write::SimpleFileOptions::default(),
            )
            .expect("zip member");
            w.write_all(data).expect("zip write");
        }
        let zip = w.finish().expect("zip").into_inner();
        let sha1 = pgext_log::hex(&sha1::Sha1::digest(&zip));
        let dir = format!("dist/{lc}/{}", version.to_lowercase());
        std::fs::create_dir_all(self.root.join(&dir)).expect("mkdir");
        let zip_path = format!("{dir}/{prefix}.zip");
        std::fs::write(self.root.join(&zip_path), &zip).expect("zip");
        let inner = files
            .iter()
            .find(|(p, _)| p == "META.json")
            .map(|(_, d)| serde_json::from_slice::<Value>(d).unwrap_or(Value::Null))
            .unwrap_or(Value::Null);
        let mut release_meta = inner.clone();
        if let Some(o) = release_meta.as_object_mut() {
            o.remove("meta-spec");
            o.remove("generated_by");
            o.insert("release_status".into(), json!(status));
            o.insert("user".into(), json!(user));
            o.insert("sha1".into(), json!(sha1));
            o.insert("date".into(), json!(date));
        }
        let meta_path = format!("{dir}/META.json");
        std::fs::write(self.root.join(&meta_path), release_meta.to_string()).expect("META");
        let entry = self
            .dists
            .entry(lc.clone())
            .or_insert_with(|| (name.to_string(), Vec::new()));
        entry
            .1
            .push((version.to_string(), status.to_string(), date.to_string()));
        self.write_dist(&lc);
        Added {
            sha1,
            zip: zip_path,
            meta: meta_path,
        }
    }

    /// Lists a release in a distribution's document without adding its files.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn list_only(&mut self, name: &str, version: &str, status: &str, date: &str) {
        let lc = name.to_lowercase();
        self.dists
            .entry(lc.clone())
            .or_insert_with(|| (name.to_string(), Vec::new()))
            .1
            .push((version.to_string(), status.to_string(), date.to_string()));
        self.write_dist(&lc);
    }

    /// Replaces a file of the tree.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn overwrite(&self, rel: &str, bytes: &[u8]) {
        std::fs::write(self.root.join(rel), bytes).expect("overwrite");
    }

    /// `dist/{dist}.json`, PGXN's mirror form: each status's releases, newest first.
    fn write_dist(&self, lc: &str) {
        let (name, releases) = &self.dists[lc];
        let mut by_status: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut sorted = releases.clone();
        sorted.sort_by(|a, b| b.2.cmp(&a.2));
        for (v, s, d) in &sorted {
            by_status
                .entry(s.as_str())
                .or_default()
                .push(json!({"version": v, "date": d}));
        }
        let doc = json!({"name": name, "releases": by_status});
        std::fs::write(self.root.join(format!("dist/{lc}.json")), doc.to_string()).expect("dist");
    }
}
