//! Which categories a distribution is in: its META's (v2 `classifications.categories`), or,
//! for METAs that name none, the registry's curated mapping: the operator's entry for the
//! distribution, else the categories its tags say (`categories.toml`, which an operator's file
//! extends). Pure: the META comes from [`super::Content`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, bail};
use pgext_spec::meta::{CATEGORIES, Meta, category_named};
use serde::Deserialize;

/// Most categories a distribution is shown in (as META spec v2 allows).
pub const MAX_CATEGORIES: usize = 3;

/// The curated mapping.
#[derive(Debug, Clone, Default)]
pub struct Curated {
    /// By lowercase distribution name.
    dists: BTreeMap<String, Vec<&'static str>>,
    /// By lowercase tag.
    tags: BTreeMap<String, Vec<&'static str>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    dists: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    tags: BTreeMap<String, Vec<String>>,
}

fn names(what: &str, key: &str, list: &[String]) -> anyhow::Result<Vec<&'static str>> {
    list.iter()
        .map(|c| {
            category_named(c).with_context(|| {
                format!(
                    "{what} {key:?}: {c:?} is not a category of the META spec ({})",
                    CATEGORIES.join(", ")
                )
            })
        })
        .collect()
}

impl Curated {
    /// Reads a mapping in the `categories.toml` format.
    ///
    /// # Errors
    /// When it does not parse or names a category outside the META spec's list.
    pub fn parse(text: &str) -> anyhow::Result<Curated> {
        let f: File = toml::from_str(text).context("the categories mapping")?;
        let mut c = Curated::default();
        for (k, v) in &f.dists {
            c.dists
                .insert(k.to_lowercase(), names("distribution", k, v)?);
        }
        for (k, v) in &f.tags {
            c.tags.insert(k.to_lowercase(), names("tag", k, v)?);
        }
        Ok(c)
    }

    /// The registry's own mapping of tags.
    pub fn builtin() -> Curated {
        // The file is part of the build and tested: it parses.
        Curated::parse(include_str!("categories.toml")).unwrap_or_default()
    }

    /// The built-in mapping with the operator's file (if any) over it.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid mapping.
    pub fn load(operator: Option<&Path>) -> anyhow::Result<Curated> {
        let c = Curated::builtin();
        let Some(path) = operator else {
            return Ok(c);
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let theirs = Curated::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if theirs.dists.is_empty() && theirs.tags.is_empty() {
            bail!("{} maps nothing", path.display());
        }
        Ok(c.with(theirs))
    }

    /// This mapping with `theirs` over it.
    pub fn with(mut self, theirs: Curated) -> Curated {
        self.dists.extend(theirs.dists);
        self.tags.extend(theirs.tags);
        self
    }

    /// The categories of distribution `dist` whose headline release has `meta`, in the META
    /// spec's order, at most [`MAX_CATEGORIES`].
    pub fn of(&self, dist: &str, meta: &Meta) -> Vec<&'static str> {
        let mut found: BTreeSet<&'static str> = meta
            .categories
            .iter()
            .filter_map(|c| category_named(c))
            .collect();
        if found.is_empty() {
            if let Some(list) = self.dists.get(&dist.to_lowercase()) {
                found.extend(list);
            } else {
                for t in &meta.tags {
                    found.extend(self.tags.get(&t.to_lowercase()).into_iter().flatten());
                }
            }
        }
        CATEGORIES
            .iter()
            .copied()
            .filter(|c| found.contains(c))
            .take(MAX_CATEGORIES)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Meta {
        pgext_spec::meta::parse_meta(json.as_bytes()).unwrap()
    }

    #[test]
    fn a_meta_a_dist_entry_then_tags() {
        let c = Curated::load(None).unwrap().with(
            Curated::parse("[dists]\npgtap = [\"Debugging\", \"tooling-and-admin\"]\n").unwrap(),
        );
        let v1 = |tags: &str| {
            meta(&format!(
                r#"{{"name":"dd","version":"1.0.0","abstract":"a","maintainer":"m","license":"postgresql","provides":{{"dd":{{"file":"d.sql","version":"1.0.0"}}}},"tags":{tags}}}"#
            ))
        };
        assert_eq!(
            c.of("pgTAP", &v1(r#"["search"]"#)),
            ["Debugging", "Tooling and Admin"]
        );
        assert_eq!(
            c.of(
                "other",
                &v1(r#"["Full Text Search", "json", "cron", "audit"]"#)
            ),
            [
                "Auditing and Logging",
                "Data and Transformations",
                "Orchestration"
            ]
        );
        assert!(c.of("other", &v1(r#"["nothing known"]"#)).is_empty());
        let v2 = meta(
            r#"{"name":"pp","abstract":"a","version":"0.1.8","maintainers":[{"name":"D","email":"d@example.org"}],"license":"PostgreSQL","contents":{"extensions":{"pp":{"sql":"p.sql","control":"p.control"}}},"classifications":{"categories":["Security"],"tags":["search"]},"meta-spec":{"version":"2.0.0"}}"#,
        );
        assert_eq!(c.of("pgtap", &v2), ["Security"]);
    }

    #[test]
    fn an_operator_file_naming_no_category_of_the_spec_is_refused() {
        let e = Curated::parse("[tags]\nx = [\"Gardening\"]\n").unwrap_err();
        assert!(format!("{e:#}").contains("Gardening"), "{e:#}");
        assert!(Curated::parse("[wrong]\n").is_err());
    }
}
