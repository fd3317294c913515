//! `keyctl delete KEY`: the command line of `flow::delete`.

use crate::context::Ctx;
use crate::flow::delete::{DeleteRequest, delete};

pub(crate) fn run(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    delete(
        ctx,
        &DeleteRequest {
            key: key.to_string(),
            assume_yes: ctx.yes,
        },
    )
}
