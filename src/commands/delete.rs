//! `keyctl delete KEY`: forget a key locally. The secret goes first: if the store cannot
//! delete it, the registry entry stays, so nothing is left that keyctl cannot find.

use crate::context::Ctx;
use crate::registry::Registry;
use crate::store;

pub(crate) fn run(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let (id, name, kind, pushed) = {
        let reg = crate::flow::catalog::load_for(ctx, key)?;
        let k = reg.resolve(key)?;
        let pushed: Vec<&str> = k.remotes.iter().map(|l| l.remote.as_str()).collect();
        (k.id.clone(), k.name.clone(), k.store, pushed.join(", "))
    };
    let place = if kind == store::StoreKind::Vault {
        "the team store, for every machine"
    } else {
        "this machine"
    };
    if !pushed.is_empty() {
        ctx.out.warn(&format!(
            "key {id} is still registered on remote {pushed}: deleting it here does not revoke it there (`keyctl revoke {id}` does)"
        ));
    }
    ctx.confirm(
        ctx.yes,
        &format!("delete key '{name}' ({id}) and its secret from {place}"),
    )?;
    if kind == store::StoreKind::Vault {
        return store::vault::delete_key(&ctx.stores, &id, &name);
    }
    let mut reg = Registry::lock(&ctx.paths.data)?;
    // Resolve again under the lock: another process may have changed it meanwhile.
    let id = reg.reg.resolve(&id)?.id.clone();
    let existed = ctx.stores.get(kind)?.delete(&id)?;
    let restored: Vec<String> = reg
        .reg
        .keys()
        .iter()
        .filter(|k| k.superseded.as_ref().is_some_and(|s| s.by == id))
        .filter(|k| k.revoked_at.is_none())
        .map(|k| format!("'{}' ({})", k.name, k.id))
        .collect();
    reg.remove(&id);
    reg.save()?;
    for k in restored {
        ctx.out.note(&format!(
            "key {k} was replaced by {id} in a rotation: it is no longer superseded, and stays usable until revoked"
        ));
    }
    if !existed {
        ctx.out.warn(&format!(
            "the {} store had no secret for {id}",
            kind.as_str()
        ));
    }
    ctx.out.note(&format!("deleted key '{name}' ({id})"));
    Ok(())
}
