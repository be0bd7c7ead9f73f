//! Documentation found in a release zip: the README, each provided extension's `docfile`, and
//! the markup files under `doc/` or `docs/`, as PGXN's API lists them (`docs`, `special_files`,
//! `provides.*.docpath`). The rules are written down in `spec/pgxn.md`.
//!
//! Only the zip's central directory and the documentation members are read; the result depends
//! on the zip and its META alone, so it is computed once per release and kept.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use pgext_spec::meta::Meta;
use serde_json::{Map, Value, json};

/// Largest documentation file listed and served; larger ones are skipped.
pub const MAX_DOC_BYTES: u64 = 1 << 20;
/// Most documentation files listed per release.
pub const MAX_DOCS: usize = 256;

/// File name extensions taken as documentation markup.
const DOC_EXTENSIONS: &[&str] = &[
    "md",
    "markdown",
    "mkd",
    "mkdn",
    "mdown",
    "txt",
    "text",
    "rst",
    "pod",
    "html",
    "htm",
    "textile",
    "asciidoc",
    "adoc",
    "wiki",
    "mediawiki",
    "creole",
];

/// One documentation file of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// Path without its file name extension (`doc/pair`), as PGXN names documents.
    pub docpath: String,
    /// Path of the member inside the release directory (`doc/pair.md`).
    pub file: String,
    /// First heading, or the file's stem.
    pub title: String,
    /// The provided extension this file documents, if its META names it as `docfile`.
    pub extension: Option<String>,
}

/// The documentation of one release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseDocs {
    /// Top-level files PGXN calls special (README, Changes, LICENSE, META.json, Makefile,
    /// `*.control`…), in zip order.
    pub special_files: Vec<String>,
    /// Documents, README first, then by docpath.
    pub docs: Vec<Doc>,
}

impl ReleaseDocs {
    /// Finds the documentation in a PGXN zip whose members sit under `{base}/`.
    pub fn find(zip: &[u8], base: &str, meta: &Meta) -> ReleaseDocs {
        let Ok(mut z) = zip::ZipArchive::new(Cursor::new(zip)) else {
            return ReleaseDocs::default();
        };
        let prefix = format!("{base}/");
        // (path inside the release, uncompressed size), skipping directories.
        let members: Vec<(String, u64)> = (0..z.len())
            .filter_map(|i| {
                let f = z.by_index_raw(i).ok()?;
                let rest = f.name().strip_prefix(&prefix)?;
                (!rest.is_empty() && !f.is_dir()).then(|| (rest.to_string(), f.size()))
            })
            .collect();
        let ignored = Ignored::of(meta);
        let special_files = members
            .iter()
            .filter(|(p, _)| !p.contains('/') && is_special(p))
            .map(|(p, _)| p.clone())
            .collect();

        let docfiles: BTreeMap<&str, &str> = meta
            .provides
            .iter()
            .filter_map(|(ext, p)| Some((p.docfile.as_deref()?, ext.as_str())))
            .collect();
        let usable: Vec<&str> = members
            .iter()
            .filter(|(p, size)| *size <= MAX_DOC_BYTES && !ignored.covers(p))
            .map(|(p, _)| p.as_str())
            .collect();
        let readme = readme_in(usable.iter().copied()).map(str::to_string);
        let mut picked: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        for path in usable {
            if is_readme(path) {
                continue;
            }
            let extension = docfiles.get(path).map(|e| e.to_string());
            let in_doc_dir = path.starts_with("doc/") || path.starts_with("docs/");
            if extension.is_none() && !(in_doc_dir && has_doc_extension(path)) {
                continue;
            }
            let docpath = strip_extension(path).to_string();
            // Two files with one docpath (`doc/a.md`, `doc/a.txt`): the META's docfile wins,
            // then the first in name order.
            let replace = picked
                .get(&docpath)
                .is_none_or(|(_, e)| e.is_none() && extension.is_some());
            if replace {
                picked.insert(docpath, (path.to_string(), extension));
            }
        }

        let mut docs = Vec::new();
        if let Some(file) = readme {
            docs.push(Doc {
                docpath: "README".into(),
                title: "README".into(),
                file,
                extension: None,
            });
        }
        for (docpath, (file, extension)) in picked.into_iter().take(MAX_DOCS - docs.len()) {
            let title = read_member(zip, base, &file)
                .and_then(|b| title_of(&file, &b))
                .unwrap_or_else(|| stem(&file).to_string());
            docs.push(Doc {
                docpath,
                file,
                title,
                extension,
            });
        }
        ReleaseDocs {
            special_files,
            docs,
        }
    }

    /// The document with this docpath (ASCII case-insensitive).
    pub fn get(&self, docpath: &str) -> Option<&Doc> {
        self.docs
            .iter()
            .find(|d| d.docpath.eq_ignore_ascii_case(docpath))
    }

    /// Adds PGXN API's `special_files`, `docs` and `provides.*.docpath` to a release META.
    pub fn annotate(&self, doc: &mut Value) {
        let Some(o) = doc.as_object_mut() else {
            return;
        };
        if !self.special_files.is_empty() {
            o.insert("special_files".into(), json!(self.special_files));
        }
        if !self.docs.is_empty() {
            let docs: Map<String, Value> = self
                .docs
                .iter()
                .map(|d| (d.docpath.clone(), json!({"title": d.title})))
                .collect();
            o.insert("docs".into(), Value::Object(docs));
        }
        if let Some(provides) = o.get_mut("provides").and_then(Value::as_object_mut) {
            for d in &self.docs {
                let entry = d.extension.as_ref().and_then(|e| provides.get_mut(e));
                if let Some(p) = entry.and_then(Value::as_object_mut) {
                    p.insert("docpath".into(), json!(d.docpath));
                }
            }
        }
    }
}

/// The folder a release zip's members sit under: `{dist}-{version}`, lowercased as PGXN
/// writes paths.
pub fn base_name(dist: &str, version: &str) -> String {
    format!("{dist}-{version}").to_lowercase()
}

/// The bytes of `{base}/{file}` in a zip, if present and no larger than [`MAX_DOC_BYTES`].
pub fn read_member(zip: &[u8], base: &str, file: &str) -> Option<Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(zip)).ok()?;
    let f = z.by_name(&format!("{base}/{file}")).ok()?;
    if f.size() > MAX_DOC_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(f.size() as usize);
    f.take(MAX_DOC_BYTES).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Whether a path inside the release is a top-level README (`README`, `README.md`, …).
fn is_readme(path: &str) -> bool {
    !path.contains('/') && path.to_ascii_lowercase().starts_with("readme")
}

/// The README among paths inside the release: the first top-level one in name order.
fn readme_in<'a>(paths: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    paths.filter(|p| is_readme(p)).min()
}

/// `README`, `README.md`, `README.txt`… at the top of the release zip (the first in name order).
pub fn readme_of(zip: &[u8], base: &str) -> Option<Vec<u8>> {
    let z = zip::ZipArchive::new(Cursor::new(zip)).ok()?;
    let prefix = format!("{base}/");
    let name = readme_in(z.file_names().filter_map(|n| n.strip_prefix(&prefix)))?.to_string();
    read_member(zip, base, &name)
}

/// How a document's source is turned into a page (`spec/site.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Markdown (`.md`, `.markdown`…), rendered to HTML.
    Markdown,
    /// HTML, sanitized.
    Html,
    /// Everything else (text, POD, reStructuredText…), shown preformatted.
    Text,
}

impl Markup {
    /// The markup of a file, from its name. A top-level `README` or `README.txt` is taken as
    /// Markdown, as PGXN authors write them.
    pub fn of(file: &str) -> Markup {
        let ext = extension(file).to_ascii_lowercase();
        if is_readme(file) && matches!(ext.as_str(), "" | "txt" | "text") {
            return Markup::Markdown;
        }
        match ext.as_str() {
            "md" | "markdown" | "mkd" | "mkdn" | "mdown" => Markup::Markdown,
            "html" | "htm" => Markup::Html,
            _ => Markup::Text,
        }
    }
}

/// A document's words without its markup, for the search index and its excerpts: Markdown's
/// text and code spans without the raw HTML in it, HTML without its tags (and without script
/// and style), anything else as it is.
pub fn plain_text(markup: Markup, bytes: &[u8]) -> String {
    use pulldown_cmark::{Event, Parser, TagEnd};
    let text = String::from_utf8_lossy(bytes);
    match markup {
        Markup::Text => text.into_owned(),
        Markup::Html => strip_tags(&text),
        Markup::Markdown => {
            let mut out = String::with_capacity(text.len());
            for event in Parser::new(&text) {
                match event {
                    Event::Text(t) | Event::Code(t) => out.push_str(&t),
                    Event::SoftBreak | Event::HardBreak => out.push(' '),
                    Event::End(
                        TagEnd::Paragraph
                        | TagEnd::Heading(_)
                        | TagEnd::Item
                        | TagEnd::CodeBlock
                        | TagEnd::TableCell,
                    ) => out.push('\n'),
                    _ => {}
                }
            }
            out
        }
    }
}

/// Text outside tags, with script and style elements dropped whole.
fn strip_tags(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        let Some(open) = lower[i..].find('<').map(|o| o + i) else {
            out.push_str(&html[i..]);
            break;
        };
        out.push_str(&html[i..open]);
        let skip_to = ["script", "style"].iter().find_map(|tag| {
            lower[open + 1..]
                .starts_with(tag)
                .then(|| lower[open..].find(&format!("</{tag}")).map(|c| c + open))
                .flatten()
        });
        let from = skip_to.unwrap_or(open);
        i = lower[from..].find('>').map_or(html.len(), |c| from + c + 1);
        out.push(' ');
    }
    out
}

/// Content type a document's source is served with. HTML is served as text: this is its
/// source, rendered (sanitized) only by the site's doc pages.
pub fn content_type(file: &str) -> &'static str {
    match Markup::of(file) {
        Markup::Markdown => "text/markdown; charset=utf-8",
        Markup::Html | Markup::Text => "text/plain; charset=utf-8",
    }
}

/// META v1 `no_index` (files and directories left out of indexing).
struct Ignored {
    files: Vec<String>,
    dirs: Vec<String>,
}

impl Ignored {
    fn of(meta: &Meta) -> Ignored {
        let list = |key: &str| -> Vec<String> {
            meta.raw
                .get("no_index")
                .and_then(|n| n.get(key))
                .map(|v| match v {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default()
        };
        Ignored {
            files: list("file"),
            dirs: list("directory")
                .into_iter()
                .map(|d| format!("{}/", d.trim_end_matches('/')))
                .collect(),
        }
    }

    fn covers(&self, path: &str) -> bool {
        self.files.iter().any(|f| f == path) || self.dirs.iter().any(|d| path.starts_with(d))
    }
}

fn is_special(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let stem = lower.split('.').next().unwrap_or("");
    matches!(
        stem,
        "readme" | "changes" | "changelog" | "license" | "licence" | "copying" | "install"
    ) || matches!(
        lower.as_str(),
        "meta.json" | "makefile" | "build.pl" | "makefile.pl" | "configure"
    ) || lower.ends_with(".control")
}

fn extension(file: &str) -> &str {
    let name = file.rsplit('/').next().unwrap_or(file);
    match name.rfind('.') {
        Some(i) if i > 0 => &name[i + 1..],
        _ => "",
    }
}

fn has_doc_extension(file: &str) -> bool {
    let ext = extension(file).to_ascii_lowercase();
    DOC_EXTENSIONS.contains(&ext.as_str())
}

fn strip_extension(file: &str) -> &str {
    let ext = extension(file);
    if ext.is_empty() {
        file
    } else {
        &file[..file.len() - ext.len() - 1]
    }
}

fn stem(file: &str) -> &str {
    let name = strip_extension(file);
    name.rsplit('/').next().unwrap_or(name)
}

/// The first heading of a document: a Markdown ATX (`# T`) or Setext heading, a reStructuredText
/// title, a POD `=head1`, an HTML `<h1>` or `<title>`; else the first line of plain text.
fn title_of(file: &str, bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let ext = extension(file).to_ascii_lowercase();
    let clean = |s: &str| -> Option<String> {
        let t: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
        let t: String = t.chars().take(200).collect();
        (!t.is_empty()).then_some(t)
    };
    if ext == "html" || ext == "htm" {
        let lower = text.to_ascii_lowercase();
        for tag in ["h1", "title"] {
            if let Some(start) = lower.find(&format!("<{tag}")) {
                let open_end = lower[start..].find('>')? + start + 1;
                let close = lower[open_end..].find(&format!("</{tag}"))? + open_end;
                return clean(&strip_tags(&text[open_end..close]));
            }
        }
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    if ext == "pod" {
        return lines.iter().enumerate().find_map(|(i, l)| {
            let h = l.strip_prefix("=head1")?.trim();
            // `=head1 NAME` introduces the name paragraph that follows.
            if h.eq_ignore_ascii_case("name") {
                lines[i + 1..].iter().find_map(|n| clean(n))
            } else {
                clean(h)
            }
        });
    }
    let underline = |l: &str| {
        let t = l.trim_end();
        t.len() >= 2
            && t.chars()
                .all(|c| matches!(c, '=' | '-' | '~' | '*' | '#' | '^'))
    };
    for line in &lines {
        let t = line.trim();
        if t.is_empty() || underline(t) {
            continue;
        }
        if let Some(h) = t.strip_prefix('#') {
            return clean(h.trim_start_matches('#').trim_end_matches('#'));
        }
        // The first text line: a Setext/RST title when underlined, and the best guess otherwise.
        return clean(t);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        assert_eq!(
            title_of("doc/a.md", b"\n# first-last-agg 0.1.4 #\n\ntext").as_deref(),
            Some("first-last-agg 0.1.4")
        );
        assert_eq!(
            title_of("doc/a.md", b"pair\n====\n\ntext").as_deref(),
            Some("pair")
        );
        assert_eq!(
            title_of("doc/a.rst", b"=====\n Semver \n=====\n").as_deref(),
            Some("Semver")
        );
        assert_eq!(
            title_of("doc/a.pod", b"=pod\n\n=head1 NAME\n\nsemver - a type\n").as_deref(),
            Some("semver - a type")
        );
        assert_eq!(
            title_of("doc/a.html", b"<html><h1 class=x>Big <b>One</b></h1>").as_deref(),
            Some("Big One")
        );
        assert_eq!(title_of("doc/a.txt", b"\n\n  \n"), None);
    }

    #[test]
    fn plain_text_drops_markup() {
        let md = plain_text(
            Markup::Markdown,
            b"# Title\n\nSome **bold** `code`.\n\n<script>alert(1)</script>\n\n[link](javascript:x)\n",
        );
        assert_eq!(md, "Title\nSome bold code.\nlink\n");
        let html = plain_text(
            Markup::Html,
            b"<h1>Big <b>One</b></h1><script>var x = '<b>';</script><style>p{}</style><p>text</p>",
        );
        assert_eq!(
            html.split_whitespace().collect::<Vec<_>>(),
            ["Big", "One", "text"]
        );
        assert_eq!(plain_text(Markup::Text, b"a <b> c"), "a <b> c");
    }

    #[test]
    fn names() {
        assert_eq!(strip_extension("doc/pair.md"), "doc/pair");
        assert_eq!(strip_extension("doc/.hidden"), "doc/.hidden");
        assert_eq!(strip_extension("doc/v1.2/x"), "doc/v1.2/x");
        assert_eq!(stem("doc/pair.md"), "pair");
        assert!(is_special("pair.control") && is_special("Changes") && is_special("LICENSE.md"));
        assert!(!is_special("pair.sql"));
        assert!(has_doc_extension("docs/x.Markdown") && !has_doc_extension("doc/x.sql"));
    }
}
