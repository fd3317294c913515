//! `keyctl push KEY --remote R`: register a stored key with a remote
//! ([`crate::flow::push`]).

use crate::cli::PushArgs;
use crate::context::Ctx;
use crate::error::Error;
use crate::flow::push::push_key;

pub(crate) fn run(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    let rec = crate::flow::catalog::load_for(ctx, &a.key)?
        .resolve(&a.key)?
        .clone();
    if rec.revoked_at.is_some() {
        return Err(Error::inactive(format!(
            "key '{}' ({}) is revoked; it cannot be pushed",
            rec.name, rec.id
        ))
        .into());
    }
    let remote = ctx.pick_remote(a.remote.as_deref(), "push")?;
    let link = push_key(ctx, &rec, &remote, a.for_user.as_deref())?;
    if ctx.out.json {
        return crate::output::print_json(&ctx.out, &link);
    }
    Ok(())
}
