//! Where a name is looked up, and whether a dist found for a dependency may be taken from
//! where it was found: name routing (a registry's `names` patterns) and pins
//! (`spec/client.md`, Dependencies 6).

use super::graph::{Chosen, Demand, plan_error};
use super::resolve::Resolver;
use crate::Error;
use crate::trust::RegistryConfig;

impl Resolver<'_> {
    /// A dependency's chosen dist must be one its registry may give: no other registry owns its
    /// name or a name it provides by its patterns (a public dist cannot stand in for a private
    /// registry's), and it is not pinned to another registry.
    pub(super) fn check_routing(&self, c: &Chosen, d: &Demand) -> Result<(), Error> {
        let names =
            std::iter::once(c.dist.as_str()).chain(c.release.provides.keys().map(String::as_str));
        for n in names {
            if let Some(owner) = self.config.owner(n).filter(|o| o.name != c.registry.name) {
                return Err(plan_error(format!(
                    "{} ({}) was found in registry {} as {}, but registry {} owns the name {n} (names {:?}): it is never taken from another registry. Chain: {}",
                    d.name,
                    d.why(),
                    c.registry.name,
                    c.label(),
                    owner.name,
                    owner.names,
                    d.path()
                )));
            }
        }
        if let Some(pin) = crate::installed::pin(self.state, &c.dist)? {
            if pin != c.registry.name {
                return Err(plan_error(format!(
                    "{} ({}) was found in registry {} as {}, but {} is pinned to registry {pin}, where it was first installed from; install it from there, or move the pin with `pgext install {} --registry {} --repin`",
                    d.name,
                    d.why(),
                    c.registry.name,
                    c.label(),
                    c.dist,
                    c.dist,
                    c.registry.name
                )));
            }
        }
        Ok(())
    }

    /// The registries that may answer for `name`: the one owning it by its patterns (and no
    /// other), else the one it is pinned to, else `--registry`, else the requirer's registry
    /// (when it owns no patterns), the default and the other registries without patterns.
    pub(super) fn registries_for(
        &self,
        name: &str,
        requirer: Option<&RegistryConfig>,
    ) -> Result<Vec<RegistryConfig>, Error> {
        if self.config.owner(name).is_some() {
            return Ok(vec![self.config.route(name, self.asked)?.clone()]);
        }
        if let Some(pin) = crate::installed::pin(self.state, name)? {
            if let Ok(r) = self.config.registry(Some(&pin)) {
                return Ok(vec![r.clone()]);
            }
        }
        if let Some(a) = self.asked {
            return Ok(vec![self.config.registry(Some(a))?.clone()]);
        }
        let mut out: Vec<RegistryConfig> = Vec::new();
        let general = requirer.filter(|r| r.names.is_empty()).cloned();
        let default = self.config.default_registry().ok().cloned();
        for r in general.into_iter().chain(default).chain(
            self.config
                .registries
                .iter()
                .filter(|r| r.names.is_empty())
                .cloned(),
        ) {
            if !out.iter().any(|o| o.name == r.name) {
                out.push(r);
            }
        }
        Ok(out)
    }
}
