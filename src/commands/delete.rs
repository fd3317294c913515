//! `keyctl delete KEY`: forget a key locally. The secret goes first: if the store cannot
//! delete it, the registry entry stays, so nothing is left that keyctl cannot find.

use crate::context::Ctx;
use crate::input;
use crate::registry::Registry;
use crate::store;

pub fn run(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let (id, name, kind) = {
        let reg = crate::catalog::load_for(ctx, key)?;
        let k = reg.resolve(key)?;
        (k.id.clone(), k.name.clone(), k.store)
    };
    let place = if kind == store::StoreKind::Vault {
        "the team store, for every machine"
    } else {
        "this machine"
    };
    input::confirm(
        ctx,
        &format!("delete key '{name}' ({id}) and its secret from {place}"),
    )?;
    if kind == store::StoreKind::Vault {
        return store::vault::delete_key(ctx, &id, &name);
    }
    let mut reg = Registry::lock(&ctx.paths.data)?;
    // Resolve again under the lock: another process may have changed it meanwhile.
    let id = reg.reg.resolve(&id)?.id.clone();
    let existed = store::open(ctx, kind)?.delete(&id)?;
    reg.remove(&id);
    reg.save()?;
    if !existed {
        ctx.out.warn(&format!(
            "the {} store had no secret for {id}",
            kind.as_str()
        ));
    }
    ctx.out.note(&format!("deleted key '{name}' ({id})"));
    Ok(())
}
