//! `keyctl revoke KEY... | --all-expired`: clap's arguments to a [`RevokeRequest`], and
//! what was done printed ([`crate::flow::revoke`] does the work).

use crate::cli::RevokeArgs;
use crate::context::Ctx;
use crate::flow::revoke::{Report, RevokeRequest, revoke};

pub(crate) fn run(ctx: &Ctx, a: RevokeArgs) -> anyhow::Result<()> {
    let req = RevokeRequest {
        keys: a.keys,
        remote: a.remote,
        all_expired: a.all_expired,
        local_only: a.local_only,
        jobs: a.jobs,
        assume_yes: ctx.yes,
    };
    match revoke(ctx, &req)? {
        Some(report) => print_report(ctx, report),
        None => Ok(()),
    }
}

/// `--json`: the keys gone through for; then the revoke's own result.
pub(crate) fn print_report(ctx: &Ctx, report: Report) -> anyhow::Result<()> {
    if ctx.out.json {
        #[derive(serde::Serialize)]
        struct View<'a> {
            id: &'a str,
            name: &'a str,
            revoked: bool,
        }
        let v: Vec<View> = report
            .done
            .iter()
            .map(|d| View {
                id: &d.rec.id,
                name: &d.rec.name,
                revoked: d.revoked,
            })
            .collect();
        crate::output::print_json(&ctx.out, &v)?;
    }
    report.result
}
