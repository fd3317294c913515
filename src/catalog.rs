//! Which keys a command can see: this machine's registry, plus the team store's keys
//! when the vault store is selected or configured, so machine B sees what machine A
//! created. Read commands load keys through here; writes to the team store go through
//! [`crate::store::vault::VaultStore`] with check-and-set.

use crate::cli::StoreChoice;
use crate::context::Ctx;
use crate::registry::Registry;
use crate::store::vault::{self, VaultStore};

/// Every key: for `list`.
pub fn load(ctx: &Ctx) -> anyhow::Result<Registry> {
    let local = Registry::load(&ctx.paths.data)?;
    if !vault::enabled(ctx) {
        return Ok(local);
    }
    match VaultStore::open(ctx).and_then(|v| v.records()) {
        Ok(shared) => Ok(local.with_shared(shared)),
        // Configured but not selected: local keys are still worth showing.
        Err(e) if ctx.store != StoreChoice::Vault => {
            ctx.out.warn(&format!("team store not listed: {e:#}"));
            Ok(local)
        }
        Err(e) => Err(e),
    }
}

/// The keys KEY (an ID or a name) can mean, enough for `Registry::resolve`: a few round
/// trips to the team store instead of listing it.
pub fn load_for(ctx: &Ctx, key: &str) -> anyhow::Result<Registry> {
    let local = Registry::load(&ctx.paths.data)?;
    if !vault::enabled(ctx) {
        return Ok(local);
    }
    match VaultStore::open(ctx).and_then(|v| v.lookup(key)) {
        Ok(shared) => Ok(local.with_shared(shared)),
        Err(e) if local.resolve(key).is_ok() => {
            ctx.out.warn(&format!("team store not consulted: {e:#}"));
            Ok(local)
        }
        Err(e) => Err(e),
    }
}
