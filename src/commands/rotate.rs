//! `keyctl rotate KEY` and `keyctl gc`: clap's arguments to a [`RotateRequest`], and the
//! outcome printed ([`crate::flow::rotate`] does the work).

use crate::cli::RotateArgs;
use crate::context::Ctx;
use crate::error::usage;
use crate::flow::rotate::{RotateRequest, finish as finish_due, parse_grace, rotate};

pub(crate) fn run(ctx: &Ctx, a: RotateArgs) -> anyhow::Result<()> {
    if a.finish {
        return finish(ctx, 8);
    }
    let key = a.key.clone().ok_or_else(|| usage("KEY is required"))?;
    if a.render.dry_run {
        return Err(usage(
            "rotate has no --dry-run: it changes remotes as it goes",
        ));
    }
    let req = RotateRequest {
        key,
        grace: parse_grace(&a.grace)?,
        no_verify: a.no_verify,
        render: a.render.choices(),
        target: a.render.target(),
        assume_yes: ctx.yes,
    };
    let r = rotate(ctx, &req)?;
    if ctx.out.json {
        use secrecy::ExposeSecret as _;
        crate::output::print_json(
            &ctx.out,
            &serde_json::json!({
                "id": r.new.id,
                "name": r.new.name,
                "replaces": r.old.id,
                "secret": r.secret.as_ref().map(|s| s.expose_secret()),
                "old_revoke_after": r.old_revoke_after,
                "pushed_to": r.pushed.iter().map(|l| l.remote.as_str()).collect::<Vec<_>>(),
                "targets": r.targets,
                "warnings": r.skipped,
            }),
        )?;
    }
    match r.old_revoked {
        Some(report) => super::revoke::print_report(ctx, report),
        None => Ok(()),
    }
}

/// `keyctl gc` / `rotate --finish`.
pub(crate) fn finish(ctx: &Ctx, jobs: usize) -> anyhow::Result<()> {
    match finish_due(ctx, jobs, ctx.yes)? {
        Some(report) => super::revoke::print_report(ctx, report),
        None => Ok(()),
    }
}
