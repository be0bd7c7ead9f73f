//! Full-text search over one origin's registry: dists, extensions, docs, users and tags in a
//! tantivy index derived from the log. The index remembers the log size it covers (its commit
//! payload); after every commit the entries since are read, and the dists and users they touch
//! are indexed again. Deleting the folder rebuilds it from the log at the next start.
//! `spec/search.md` describes ranking and the API shapes.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use pgext_spec::authority::DistState;
use pgext_spec::entry::{Action, Entry};
use serde_json::{Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TEXT, TantivyDocument, Value as _,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, Term, doc};

use crate::origin::docs::{self as docs, Markup};
use crate::origin::releases::{self, date, headline};
use crate::origin::{Content, Origin, Snapshot};

mod kind;
pub use kind::Kind;

/// Why searching or indexing failed.
#[derive(Debug, thiserror::Error)]
#[error("search index: {0}")]
pub struct SearchError(String);

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> SearchError {
        SearchError(e.to_string())
    }
}

impl From<crate::origin::blobs::BlobError> for SearchError {
    fn from(e: crate::origin::blobs::BlobError) -> SearchError {
        SearchError(e.to_string())
    }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    key: Field,
    kind: Field,
    dist: Field,
    name: Field,
    name_exact: Field,
    summary: Field,
    tags: Field,
    body: Field,
    hit: Field,
    /// Category slugs of dists and extensions (`origin::categories`), for the filter.
    category: Field,
}

impl Fields {
    /// Searchable fields and their weights: names, abstracts and tags above README and doc
    /// text.
    fn weighted(&self) -> [(Field, f32); 4] {
        [
            (self.name, 4.0),
            (self.summary, 2.0),
            (self.tags, 2.0),
            (self.body, 1.0),
        ]
    }
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        key: b.add_text_field("key", STRING),
        kind: b.add_text_field("kind", STRING),
        dist: b.add_text_field("dist", STRING),
        name: b.add_text_field("name", TEXT),
        name_exact: b.add_text_field("name_exact", STRING),
        summary: b.add_text_field("summary", TEXT),
        // Stored so that the tags a dist had can be read back when it changes (a tag no dist
        // has any more leaves the index).
        tags: b.add_text_field("tags", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        hit: b.add_text_field("hit", STORED),
        category: b.add_text_field("category", STRING),
    };
    (b.build(), fields)
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page {
    /// Matches in all.
    pub count: usize,
    /// The page's hits, as PGXN shapes them (with `score` and, but for tags, `excerpt`).
    pub hits: Vec<Value>,
}

/// The index of one origin.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").finish_non_exhaustive()
    }
}

/// Most words of a query that are searched.
pub const MAX_QUERY_WORDS: usize = 16;

/// The words of a query or a text, as the default tokenizer cuts them.
fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it (empty, covering no entry) if needed. An index of
    /// another schema is deleted and rebuilt.
    ///
    /// # Errors
    /// When the folder cannot be used.
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        let (schema, fields) = schema();
        let io = |e: std::io::Error| SearchError(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        let index = match Index::open_in_dir(dir) {
            Ok(i) if i.schema() == schema => i,
            _ => {
                std::fs::remove_dir_all(dir).map_err(io)?;
                std::fs::create_dir_all(dir).map_err(io)?;
                Index::create_in_dir(dir, schema)?
            }
        };
        // One indexing thread: updates are small, and nodes run many origins on few cores.
        let writer = index.writer_with_num_threads(1, 20_000_000)?;
        let reader = index.reader()?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
        })
    }

    /// The log size the index covers.
    pub fn covered(&self) -> u64 {
        self.index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Indexes what the entries from the covered size up to the log's size changed, and
    /// commits with the new size. Returns it. Works on one snapshot of the origin, holding no
    /// lock; blocks on the disk.
    ///
    /// # Errors
    /// When entries or release content cannot be read (a missing blob stops indexing: the
    /// index never covers a release it could not read), or the index cannot be written.
    pub fn update(&self, origin: &Origin) -> Result<u64, SearchError> {
        let from = self.covered();
        let snap = origin.snapshot();
        let size = snap.size;
        if from >= size {
            return Ok(from);
        }
        let entries = origin
            .entries(from, size)
            .map_err(|e| SearchError(e.to_string()))?;
        let (mut dists, mut users) = (BTreeSet::new(), BTreeSet::new());
        for bytes in &entries {
            let Ok(e) = Entry::parse(bytes) else { continue };
            users.insert(e.statement.actor.to_ascii_lowercase());
            match e.statement.action {
                Action::Release(r)
                | Action::Import(pgext_spec::entry::Import { release: r, .. }) => {
                    dists.insert(r.dist);
                }
                Action::Claim { pgxn_user, .. } => {
                    users.insert(pgxn_user);
                }
                Action::Yank { dist, .. }
                | Action::Unyank { dist, .. }
                | Action::OwnerGrant { dist, .. }
                | Action::OwnerRevoke { dist, .. } => {
                    dists.insert(dist);
                }
                _ => {}
            }
        }
        let content = origin.content();
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        {
            let registry = &snap.registry;
            for user in &users {
                self.index_user(&w, registry, user)?;
            }
            let mut dropped = BTreeSet::new();
            for dist in &dists {
                let before = self.indexed_tags(dist)?;
                let after = match registry.dist(dist) {
                    Some(d) => self.index_dist(&w, content, &snap, d)?,
                    None => Vec::new(),
                };
                let after: BTreeSet<String> = after.iter().map(|t| t.to_lowercase()).collect();
                dropped.extend(before.into_iter().filter(|t| !after.contains(t)));
            }
            // A tag that no dist has any more: one pass over the registry, and only when a
            // release dropped a tag.
            if !dropped.is_empty() {
                for d in registry.dists() {
                    for t in releases::dist_tags(content, d)? {
                        dropped.remove(&t.to_lowercase());
                    }
                }
                for t in dropped {
                    w.delete_term(Term::from_field_text(self.fields.key, &format!("tag:{t}")));
                }
            }
        }
        let mut commit = w.prepare_commit()?;
        commit.set_payload(&size.to_string());
        commit.commit()?;
        drop(w);
        self.reader.reload()?;
        Ok(size)
    }

    fn index_user(
        &self,
        w: &IndexWriter,
        registry: &pgext_spec::authority::Registry,
        user: &str,
    ) -> Result<(), SearchError> {
        let f = &self.fields;
        let key = format!("user:{user}");
        w.delete_term(Term::from_field_text(f.key, &key));
        let Some(a) = registry.account(user) else {
            return Ok(());
        };
        let name = a.name.clone().unwrap_or_default();
        let uri = a.uri.clone().unwrap_or_default();
        let hit = json!({"user": a.user, "name": name, "uri": uri});
        w.add_document(doc!(
            f.key => key,
            f.kind => Kind::Users.as_str(),
            f.name => a.user.clone(),
            f.name_exact => a.user.to_lowercase(),
            f.summary => name.clone(),
            f.body => format!("{name} {uri}"),
            f.hit => hit.to_string(),
        ))?;
        Ok(())
    }

    /// The tags (lowercased) of the dist as the index has it now.
    fn indexed_tags(&self, dist: &str) -> Result<Vec<String>, SearchError> {
        let f = &self.fields;
        let key = Term::from_field_text(f.key, &format!("dist:{}", dist.to_lowercase()));
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &TermQuery::new(key, IndexRecordOption::Basic),
            &TopDocs::with_limit(1),
        )?;
        let Some((_, addr)) = top.first() else {
            return Ok(Vec::new());
        };
        let d: TantivyDocument = searcher.doc(*addr)?;
        let tags = d.get_first(f.tags).and_then(|v| v.as_str()).unwrap_or("");
        Ok(tags
            .split(" ; ")
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .collect())
    }

    /// Replaces the dist's documents (dist, extensions, docs) and adds its tags; returns them.
    fn index_dist(
        &self,
        w: &IndexWriter,
        content: &Content,
        snap: &Snapshot,
        d: &DistState,
    ) -> Result<Vec<String>, SearchError> {
        let registry = &snap.registry;
        let f = &self.fields;
        let lower = d.name.to_lowercase();
        w.delete_term(Term::from_field_text(f.dist, &lower));
        let Some(r) = headline(d) else {
            return Ok(Vec::new());
        };
        let meta = content.meta(&r.release.meta_sha256)?;
        let zip = content.get(&r.release.sha256)?;
        let base = docs::base_name(&d.name, &r.release.version);
        let docs = content.docs(&d.name, r)?;
        // Each document's words without markup, read once: excerpts then read as prose, and
        // tags never match. READMEs are read as Markdown whatever their name (`Markup::of`), as
        // the site renders them.
        let texts: Vec<String> = docs
            .docs
            .iter()
            .map(|x| {
                docs::read_member(&zip, &base, &x.file)
                    .map(|b| docs::plain_text(Markup::of(&x.file), &b))
                    .unwrap_or_default()
            })
            .collect();
        let text_where = |found: &dyn Fn(&docs::Doc) -> bool| -> String {
            docs.docs
                .iter()
                .position(found)
                .map(|i| texts[i].clone())
                .unwrap_or_default()
        };
        let readme = text_where(&|x| x.docpath == "README");
        let user_name = registry
            .account(&r.user)
            .and_then(|a| a.name.clone())
            .unwrap_or_default();
        let common = json!({"dist": d.name, "version": r.release.version, "date": date(r.time),
            "user": r.user, "user_name": user_name});
        let with = |extra: Value| {
            let mut h = common.clone();
            if let (Some(h), Some(e)) = (h.as_object_mut(), extra.as_object()) {
                h.extend(e.clone());
            }
            h.to_string()
        };
        let tags = meta.tags.join(" ; ");
        let categories: Vec<String> = content
            .categories(d)?
            .into_iter()
            .map(pgext_spec::meta::category_slug)
            .collect();
        let in_categories = |mut doc: TantivyDocument| {
            for c in &categories {
                doc.add_text(f.category, c);
            }
            doc
        };
        w.add_document(in_categories(doc!(
            f.key => format!("dist:{lower}"),
            f.kind => Kind::Dists.as_str(),
            f.dist => lower.clone(),
            f.name => d.name.clone(),
            f.name_exact => lower.clone(),
            f.summary => meta.abstract_.clone(),
            f.tags => tags.clone(),
            f.body => format!("{}\n{readme}", meta.description.clone().unwrap_or_default()),
            f.hit => with(json!({"abstract": meta.abstract_})),
        )))?;
        for (ext, p) in &meta.provides {
            let documents = |x: &docs::Doc| x.extension.as_deref() == Some(ext);
            let doc = docs.docs.iter().find(|x| documents(x));
            let abstract_ = p
                .abstract_
                .clone()
                .unwrap_or_else(|| meta.abstract_.clone());
            w.add_document(in_categories(doc!(
                f.key => format!("ext:{}", ext.to_lowercase()),
                f.kind => Kind::Extensions.as_str(),
                f.dist => lower.clone(),
                f.name => ext.clone(),
                f.name_exact => ext.to_lowercase(),
                f.summary => abstract_.clone(),
                f.tags => tags.clone(),
                f.body => text_where(&documents),
                f.hit => with(json!({"extension": ext, "abstract": abstract_,
                    "docpath": doc.map(|x| x.docpath.clone()).unwrap_or_default()})),
            )))?;
        }
        for (x, body) in docs.docs.iter().zip(texts.iter()) {
            let abstract_ = x
                .extension
                .as_ref()
                .and_then(|e| meta.provides.get(e))
                .and_then(|p| p.abstract_.clone())
                .unwrap_or_else(|| meta.abstract_.clone());
            w.add_document(doc!(
                f.key => format!("doc:{lower}/{}", x.docpath),
                f.kind => Kind::Docs.as_str(),
                f.dist => lower.clone(),
                f.name => x.title.clone(),
                f.name_exact => x.title.to_lowercase(),
                f.summary => abstract_.clone(),
                f.body => body.clone(),
                f.hit => with(json!({"title": x.title, "abstract": abstract_, "docpath": x.docpath})),
            ))?;
        }
        for t in &meta.tags {
            let key = format!("tag:{}", t.to_lowercase());
            w.delete_term(Term::from_field_text(f.key, &key));
            w.add_document(doc!(
                f.key => key,
                f.kind => Kind::Tags.as_str(),
                f.name => t.clone(),
                f.name_exact => t.to_lowercase(),
                f.hit => json!({"tag": t}).to_string(),
            ))?;
        }
        Ok(meta.tags.clone())
    }

    /// Searches `kind` for `q`: every word may match a name, abstract, tag or text, exactly
    /// (best), with one typo (words of 4 letters or more), or, for the last word, as a
    /// prefix; an exact name ranks first. With `category` (a slug), only dists and extensions
    /// in that category match.
    ///
    /// # Errors
    /// When the index cannot be read.
    pub fn search(
        &self,
        kind: Kind,
        q: &str,
        category: Option<&str>,
        (offset, limit): (usize, usize),
    ) -> Result<Page, SearchError> {
        let f = &self.fields;
        // Each word costs fuzzy and prefix queries on four fields: a query is its first words.
        let ws: Vec<String> = words(q).into_iter().take(MAX_QUERY_WORDS).collect();
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut exact_terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let boosted = |q: Box<dyn Query>, b: f32| -> (Occur, Box<dyn Query>) {
            (Occur::Should, Box::new(BoostQuery::new(q, b)))
        };
        for (i, w) in ws.iter().enumerate() {
            let last = i + 1 == ws.len();
            for (field, weight) in f.weighted() {
                let term = Term::from_field_text(field, w);
                let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                exact_terms.push((Occur::Should, Box::new(exact.clone())));
                should.push(boosted(Box::new(exact), weight * 2.0));
                if w.chars().count() >= 4 {
                    should.push(boosted(
                        Box::new(FuzzyTermQuery::new(term.clone(), 1, true)),
                        weight * 0.5,
                    ));
                }
                if last {
                    should.push(boosted(
                        Box::new(FuzzyTermQuery::new_prefix(term, 0, false)),
                        weight * 0.5,
                    ));
                }
            }
        }
        let whole = q.trim().to_lowercase();
        should.push(boosted(
            Box::new(TermQuery::new(
                Term::from_field_text(f.name_exact, &whole),
                IndexRecordOption::Basic,
            )),
            20.0,
        ));
        let mut must: Vec<(Occur, Box<dyn Query>)> = vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.kind, kind.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
            (Occur::Must, Box::new(BooleanQuery::new(should))),
        ];
        if let Some(c) = category {
            must.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.category, c),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        let (top, count) = searcher.search(
            &query,
            &(TopDocs::with_limit(limit.max(1)).and_offset(offset), Count),
        )?;
        let mut docs = Vec::new();
        for (score, addr) in top.into_iter().take(limit) {
            docs.push((score, searcher.doc::<TantivyDocument>(addr)?));
        }
        // Highlights: the words as typed, and the words of these hits they matched by a typo or
        // as a prefix (the index does not say which terms a fuzzy query matched).
        // Only words the texts do not have as typed are looked for near: a word that is there
        // is what was meant. Then cheap tests on each word of the hits first (its length, its
        // first bytes): bodies are long.
        let absent = |w: &&String| -> Result<bool, SearchError> {
            Ok(searcher.doc_freq(&Term::from_field_text(f.body, w))? == 0)
        };
        let mut typo_words: Vec<(&str, usize)> = Vec::new();
        for w in &ws {
            let n = w.chars().count();
            if n >= 4 && absent(&w)? {
                typo_words.push((w.as_str(), n));
            }
        }
        let last = match ws.last() {
            Some(l) if l.len() >= 2 && absent(&l)? => Some(l),
            _ => None,
        };
        let mut near: BTreeSet<String> = BTreeSet::new();
        for (_, d) in &docs {
            let body = d.get_first(f.body).and_then(|v| v.as_str()).unwrap_or("");
            for raw in body.split(|c: char| !c.is_alphanumeric()) {
                let n = raw.chars().count();
                let maybe_typo = typo_words.iter().any(|(_, m)| n + 1 >= *m && n <= m + 1);
                let prefix = last.is_some_and(|l| {
                    raw.len() > l.len()
                        && raw
                            .get(..l.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(l))
                });
                if raw.is_empty() || !(maybe_typo || prefix) {
                    continue;
                }
                let t = raw.to_lowercase();
                if near.contains(&t) || ws.contains(&t) {
                    continue;
                }
                if prefix
                    || typo_words
                        .iter()
                        .any(|(w, _)| strsim::osa_distance(w, &t) <= 1)
                {
                    near.insert(t);
                }
            }
        }
        exact_terms.extend(near.iter().map(|t| -> (Occur, Box<dyn Query>) {
            let term = Term::from_field_text(f.body, t);
            (
                Occur::Should,
                Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
            )
        }));
        let mut snippets =
            SnippetGenerator::create(&searcher, &BooleanQuery::new(exact_terms), f.body)?;
        snippets.set_max_num_chars(200);
        let mut hits = Vec::new();
        for (score, d) in docs {
            let mut hit: Value = d
                .get_first(f.hit)
                .and_then(|v| v.as_str())
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            hit["score"] = json!(format!("{score:.3}"));
            if kind != Kind::Tags {
                let mut s = snippets.snippet_from_doc(&d);
                s.set_snippet_prefix_postfix("<strong>", "</strong>");
                let excerpt = if s.is_empty() {
                    let body = d.get_first(f.body).and_then(|v| v.as_str()).unwrap_or("");
                    crate::html::escape_html(&body.chars().take(200).collect::<String>())
                } else {
                    s.to_html()
                };
                hit["excerpt"] = json!(excerpt.trim());
            }
            hits.push(hit);
        }
        Ok(Page { count, hits })
    }
}
