//! `pgext search`: asking a registry's search API, and dropping the hits whose names another
//! registry owns.

use crate::Error;
use crate::trust::Config;

/// What `pgext search` asks: one kind of document, words, a page.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// `docs`, `dists`, `extensions`, `users` or `tags`.
    pub kind: String,
    /// The words.
    pub query: String,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
}

/// Searches the registry (`/api/v1/search`): the first node that answers. Search results are
/// a way to find names, not a proof: what is installed from them is verified as always.
///
/// # Errors
/// When no node answers, or the node refuses the request.
pub async fn search(
    reg: &crate::trust::RegistryConfig,
    req: &SearchRequest,
) -> Result<pgext_spec::api::SearchPage, Error> {
    let mut url = reqwest::Url::parse("http://search.invalid/api/v1/search")
        .map_err(|e| Error::Config(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("in", &req.kind)
        .append_pair("q", &req.query)
        .append_pair("o", &req.offset.to_string())
        .append_pair("l", &req.limit.to_string());
    let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    crate::verify::Remote::new(reg).json(&path).await
}

/// Drops the hits of `page` (searched in `reg`) whose name another registry owns by its
/// patterns: a public dist named like a private one is not offered (`spec/access.md`). Each
/// dropped hit is told to `warn`.
pub fn drop_foreign_hits(
    config: &Config,
    reg: &crate::trust::RegistryConfig,
    page: &mut pgext_spec::api::SearchPage,
    warn: &mut dyn FnMut(&str),
) {
    page.hits.retain(|h| {
        let name = ["dist", "extension"]
            .iter()
            .find_map(|k| h[*k].as_str())
            .unwrap_or_default();
        match config.owner(name) {
            Some(owner) if owner.name != reg.name => {
                warn(&format!(
                    "{name} from registry {} is ignored: registry {} owns that name",
                    reg.name, owner.name
                ));
                false
            }
            _ => true,
        }
    });
}
