//! `keyctl list`: every key with its status; a table for people, TSV when piped, JSON
//! with `--json`. Reads the registry only: no store is touched, so it is fast and works
//! when the keyring is down.

use time::OffsetDateTime;

use super::{KeyView, resolve_kind};
use crate::cli::ListArgs;
use crate::context::Ctx;
use crate::expiry::{self, Status};
use crate::output;
use crate::registry::Registry;

pub fn run(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    if let Some(r) = &args.remote {
        return super::remote::compare(ctx, r);
    }
    let kind = args.kind.map(|k| resolve_kind(ctx, k));
    let reg = Registry::load(&ctx.paths.data)?;
    let now = OffsetDateTime::now_utc();
    let keys = reg.keys().iter().filter(|k| {
        kind.is_none_or(|want| k.kind == want) && (args.all || k.status(now) != Status::Revoked)
    });
    if ctx.out.json {
        let views: Vec<KeyView> = keys.map(|k| KeyView::of(k, now)).collect();
        return output::print_json(&ctx.out, &views);
    }
    let rows: Vec<Vec<String>> = keys
        .map(|k| {
            vec![
                k.name.clone(),
                k.id.clone(),
                k.kind.to_string(),
                expiry::day(k.created_at),
                k.expires_at.map_or_else(|| "never".into(), expiry::day),
                k.status(now).as_str().into(),
                k.store.as_str().into(),
            ]
        })
        .collect();
    if rows.is_empty() && ctx.out.stdout_tty {
        ctx.out
            .note("no keys yet: `keyctl create --kind api` mints one");
        return Ok(());
    }
    output::print_table(
        &ctx.out,
        &[
            "NAME", "ID", "KIND", "CREATED", "EXPIRES", "STATUS", "STORE",
        ],
        rows,
    )
}
