//! `keyctl rotate KEY` and `keyctl gc`: clap's arguments to a [`RotateRequest`], and the
//! outcome printed ([`crate::flow::rotate`] does the work).

use crate::cli::RotateArgs;
use crate::context::Ctx;
use crate::error::{Error, usage};
use crate::flow::rotate::{
    RotateRequest, finish as finish_due, parse_grace, rotate, rotate_due, set_policy,
};

pub(crate) fn run(ctx: &Ctx, a: RotateArgs) -> anyhow::Result<()> {
    if a.finish {
        return finish(ctx, 8, a.unverified);
    }
    if a.unverified {
        return Err(usage("--unverified applies to --finish (and `keyctl gc`)"));
    }
    if a.due {
        return due(ctx, &a);
    }
    let key = a.key.clone().ok_or_else(|| usage("KEY is required"))?;
    if let Some(every) = &a.every {
        let k = set_policy(ctx, &key, every)?;
        ctx.out.note(&match crate::flow::rotate::due_at(&k) {
            Some(t) => format!(
                "key '{}' ({}) is rotated every {every} by `keyctl rotate --due`: next due {}",
                k.name,
                k.id,
                crate::expiry::human(t)
            ),
            None => format!("key '{}' ({}) has no rotation policy now", k.name, k.id),
        });
        if ctx.out.json {
            let now = time::OffsetDateTime::now_utc();
            crate::output::print_json(&ctx.out, &super::KeyView::of(&k, now, ctx.warn_window))?;
        }
        return Ok(());
    }
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
        print_snippet: true,
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

/// `keyctl gc` / `rotate --finish`: the revocations, then the keys kept because their
/// successors were never verified (exit 13).
pub(crate) fn finish(ctx: &Ctx, jobs: usize, unverified: bool) -> anyhow::Result<()> {
    let (report, mut kept) = finish_due(ctx, jobs, ctx.yes, unverified)?;
    if let Some(report) = report {
        super::revoke::print_report(ctx, report)?;
    }
    match kept.len() {
        0 => Ok(()),
        1 => Err(Error::not_verified(kept.remove(0)).into()),
        n => {
            for k in &kept {
                ctx.out.warn(k);
            }
            Err(Error::not_verified(format!(
                "{n} rotated keys were kept because their successors were never verified (see above)"
            ))
            .into())
        }
    }
}

/// `keyctl rotate --due`: nothing at all when no key is due; else one summary line (and
/// with `--json`, what was rotated and what failed, never a secret). Exit 14 when any
/// due key could not be rotated.
fn due(ctx: &Ctx, a: &RotateArgs) -> anyhow::Result<()> {
    if a.every.is_some() || a.render.write.is_some() {
        return Err(usage(
            "--due rotates each due key into the files it was delivered to; --every and --write need KEY",
        ));
    }
    let report = rotate_due(ctx, parse_grace(&a.grace)?, ctx.yes)?;
    let (done, failed) = (report.rotated.len(), report.failed.len());
    if done + failed == 0 {
        return Ok(());
    }
    if ctx.out.json {
        crate::output::print_json(
            &ctx.out,
            &serde_json::json!({
                "rotated": report.rotated.iter().map(|r| serde_json::json!({
                    "id": r.new.id,
                    "name": r.new.name,
                    "replaces": r.old.id,
                    "old_revoke_after": r.old_revoke_after,
                    "targets": r.targets,
                    "warnings": r.skipped,
                })).collect::<Vec<_>>(),
                "failed": report.failed.iter().map(|(k, e)| serde_json::json!({
                    "id": k.id,
                    "name": k.name,
                    "error": format!("{e:#}"),
                })).collect::<Vec<_>>(),
            }),
        )?;
    }
    for (_, e) in &report.failed {
        ctx.out.warn(&format!("{e:#}"));
    }
    let names = |v: Vec<&str>| v.join(", ");
    let summary = format!(
        "rotate --due: {done} of {} due keys rotated{}",
        done + failed,
        if done > 0 {
            format!(
                " ({})",
                names(report.rotated.iter().map(|r| r.new.name.as_str()).collect())
            )
        } else {
            String::new()
        }
    );
    if failed > 0 {
        return Err(Error::rotation_incomplete(format!(
            "{summary}; failed: {}",
            names(report.failed.iter().map(|(k, _)| k.name.as_str()).collect())
        ))
        .into());
    }
    ctx.out.note(&summary);
    Ok(())
}
