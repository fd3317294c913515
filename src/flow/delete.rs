//! Forgetting a key (`keyctl delete`): the secret goes first, so a store that cannot
//! delete it leaves the registry entry, and nothing is left that keyctl cannot find. A
//! team key goes from the team store for every machine. Deleting a rotation's successor
//! makes the key it replaced usable again (no longer superseded).

use crate::app::App;
use crate::registry::Registry;
use crate::store::{self, StoreKind};

/// What to delete.
pub(crate) struct DeleteRequest {
    /// The key's ID or name.
    pub key: String,
    /// Confirmations are answered yes (`--yes`).
    pub assume_yes: bool,
}

/// Deletes the key `req` names, after asking.
pub(crate) fn delete(app: &App, req: &DeleteRequest) -> anyhow::Result<()> {
    let key = req.key.as_str();
    let (id, name, kind, pushed) = {
        let reg = crate::flow::catalog::load_for(app, key)?;
        let k = reg.resolve(key)?;
        let pushed: Vec<&str> = k.remotes.iter().map(|l| l.remote.as_str()).collect();
        (k.id.clone(), k.name.clone(), k.store, pushed.join(", "))
    };
    let place = if kind == StoreKind::Vault {
        "the team store, for every machine"
    } else {
        "this machine"
    };
    if !pushed.is_empty() {
        app.out.warn(&format!(
            "key {id} is still registered on remote {pushed}: deleting it here does not revoke it there (`keyctl revoke {id}` does)"
        ));
    }
    app.confirm(
        req.assume_yes,
        &format!("delete key '{name}' ({id}) and its secret from {place}"),
    )?;
    if kind == StoreKind::Vault {
        return store::vault::delete_key(&app.stores, &id, &name);
    }
    let mut reg = Registry::lock(&app.paths.data)?;
    // Resolve again under the lock: another process may have changed it meanwhile.
    let id = reg.reg.resolve(&id)?.id.clone();
    let existed = app.stores.get(kind)?.delete(&id)?;
    let restored: Vec<String> = reg
        .reg
        .keys()
        .iter()
        .filter(|k| k.superseded.as_ref().is_some_and(|s| s.by == id))
        .filter(|k| k.revoked_at.is_none())
        .map(|k| format!("'{}' ({})", k.name, k.id))
        .collect();
    // Also clears the supersession of the key `id` replaced.
    reg.remove(&id);
    reg.save()?;
    for k in restored {
        app.out.note(&format!(
            "key {k} was replaced by {id} in a rotation: it is no longer superseded, and stays usable until revoked"
        ));
    }
    if !existed {
        app.out.warn(&format!(
            "the {} store had no secret for {id}",
            kind.as_str()
        ));
    }
    app.out.note(&format!("deleted key '{name}' ({id})"));
    Ok(())
}
