//! Which keys a command can see: this machine's registry, plus the team store's keys
//! when the vault store is selected or configured, so machine B sees what machine A
//! created. Read commands load keys through here, and `update` changes a record where it
//! lives (the team store with check-and-set, or the local registry under its lock).

use crate::app::App;
use crate::registry::{KeyRecord, Registry};
use crate::service::Service;
use crate::store::StoreChoice;

/// Every key: for `list`.
pub(crate) fn load(app: &App) -> anyhow::Result<Registry> {
    let local = local(app)?;
    if !app.stores.vault_enabled() {
        return Ok(local);
    }
    match app.stores.vault().and_then(|v| v.records()) {
        Ok(shared) => Ok(local.with_shared(with_services(app, shared))),
        // Configured but not selected: local keys are still worth showing.
        Err(e) if app.store != StoreChoice::Vault => {
            app.out.warn(&format!("team store not listed: {e:#}"));
            Ok(local)
        }
        Err(e) => Err(e),
    }
}

/// The keys KEY (an ID or a name) can mean, enough for `Registry::resolve`. A key of this
/// machine is answered locally, without waiting for the team store (which may be slow or
/// down); otherwise a few round trips to the team store instead of listing it.
pub(crate) fn load_for(app: &App, key: &str) -> anyhow::Result<Registry> {
    let local = local(app)?;
    if !app.stores.vault_enabled() || local.resolve(key).is_ok() {
        return Ok(local);
    }
    let shared = app.stores.vault()?.lookup(key)?;
    Ok(local.with_shared(with_services(app, shared)))
}

/// This machine's registry, its records from before keys named their service migrated
/// (written back once, under the lock; a registry that cannot be written is migrated in
/// memory only, for this run).
fn local(app: &App) -> anyhow::Result<Registry> {
    let mut reg = Registry::load(&app.paths.data)?;
    if reg.keys().iter().all(|k| k.service.is_some()) {
        return Ok(reg);
    }
    let infer = |k: &KeyRecord| Service::infer(k, &app.remotes);
    let saved = Registry::lock(&app.paths.data).and_then(|mut locked| {
        if locked.reg.fill_services(infer) {
            locked.save()?;
        }
        Ok(())
    });
    match saved {
        Ok(()) => reg = Registry::load(&app.paths.data)?,
        Err(e) => {
            app.out
                .debug(&format!("registry not migrated on disk: {e:#}"));
            reg.fill_services(infer);
        }
    }
    Ok(reg)
}

/// Team-store records from before keys named their service, migrated in memory.
fn with_services(app: &App, mut shared: Vec<KeyRecord>) -> Vec<KeyRecord> {
    for k in shared.iter_mut().filter(|k| k.service.is_none()) {
        k.service = Some(Service::infer(k, &app.remotes));
    }
    shared
}

/// The service of a record (inferred where an older keyctl wrote none).
pub(crate) fn service_of(app: &App, k: &KeyRecord) -> Service {
    k.service
        .clone()
        .unwrap_or_else(|| Service::infer(k, &app.remotes))
}

/// Changes one key's record where it lives: in the team store with check-and-set, or
/// in the local registry under its lock. Returns the record as saved.
pub(crate) fn update(
    app: &App,
    store: crate::store::StoreKind,
    id: &str,
    mut change: impl FnMut(&mut crate::registry::KeyRecord),
) -> anyhow::Result<crate::registry::KeyRecord> {
    if store == crate::store::StoreKind::Vault {
        return app.stores.vault()?.update_record(id, |k| {
            change(k);
            true
        });
    }
    let mut reg = Registry::lock(&app.paths.data)?;
    let k = reg.get_mut(id).ok_or_else(|| {
        crate::error::Error::not_found(format!("key {id} is no longer in the registry"))
    })?;
    change(k);
    let saved = k.clone();
    reg.save()?;
    Ok(saved)
}
