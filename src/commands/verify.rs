//! `keyctl verify KEY|--all [--remote R]`: clap's arguments to a [`VerifyRequest`] and
//! the outcome printed ([`crate::flow::verify`] does the work). Exit 0 when every key
//! works; a refusal exits 7 and an unreachable service 6, as everywhere else.

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::flow::verify::{VerifyRequest, verify};

pub(crate) fn run(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let mut v = verify(
        ctx,
        &VerifyRequest {
            key: a.key,
            all: a.all,
            remote: a.remote,
        },
    )?;
    if ctx.out.json {
        crate::output::print_json(&ctx.out, &v.results)?;
    }
    match v.failures.len() {
        0 => Ok(()),
        1 => Err(v.failures.remove(0)),
        n => Err(v
            .failures
            .remove(0)
            .context(format!("{n} verifications failed; the first"))),
    }
}
