//! `keyctl list`: every key with its status; a table for people, TSV when piped, JSON
//! with `--json`. Reads the registry, not the keyring, so it is fast and works when the
//! keyring is down; with the team store, its keys come from OpenBao/Vault (`catalog`).

use time::OffsetDateTime;

use super::{KeyView, resolve_kind};
use crate::cli::ListArgs;
use crate::context::Ctx;
use crate::error::Error;
use crate::expiry::{self, Status};
use crate::output::{self, Column, Tone};
use crate::registry::KeyRecord;

pub(crate) fn run(ctx: &Ctx, args: ListArgs) -> anyhow::Result<()> {
    if let Some(r) = &args.remote {
        return super::remote::compare(ctx, r);
    }
    let kind = args.kind.map(|k| resolve_kind(ctx, k));
    let window = args
        .expiring
        .as_deref()
        .map(expiry::parse_duration)
        .transpose()?;
    let reg = crate::flow::catalog::load(ctx)?;
    let now = OffsetDateTime::now_utc();
    let keys: Vec<_> = reg
        .keys()
        .iter()
        .filter(|k| {
            let status = k.status(now, ctx.warn_window);
            kind.is_none_or(|want| k.kind == want)
                && (args.all || status != Status::Revoked)
                && window.is_none_or(|w| {
                    status != Status::Revoked && k.expires_at.is_some_and(|t| t <= now + w)
                })
        })
        .collect();
    let expired = keys
        .iter()
        .filter(|k| k.expires_at.is_some_and(|t| t <= now))
        .count();
    let expiring = keys.len() - expired;
    print_keys(ctx, keys, now)?;
    if let Some(w) = &args.expiring {
        let mut parts = Vec::new();
        if expiring > 0 {
            parts.push(match expiring {
                1 => format!("1 key expires within {w}"),
                n => format!("{n} keys expire within {w}"),
            });
        }
        if expired > 0 {
            parts.push(match expired {
                1 => "1 key has expired".to_string(),
                n => format!("{n} keys have expired"),
            });
        }
        if !parts.is_empty() {
            return Err(Error::expiring(parts.join("; ")).into());
        }
    }
    Ok(())
}

fn print_keys(ctx: &Ctx, keys: Vec<&KeyRecord>, now: OffsetDateTime) -> anyhow::Result<()> {
    let keys = keys.into_iter();
    if ctx.out.json {
        let views: Vec<KeyView> = keys.map(|k| KeyView::of(k, now, ctx.warn_window)).collect();
        return output::print_json(&ctx.out, &views);
    }
    let keys: Vec<&KeyRecord> = keys.collect();
    if keys.is_empty() && ctx.out.stdout_tty {
        ctx.out
            .note("no keys yet: `keyctl create --kind api` mints one");
        return Ok(());
    }
    // A ROTATE column (the policy, and when it is next due) only where a key has a policy.
    let policies = keys.iter().any(|k| k.rotate_every.is_some());
    let rotate_cell = |k: &KeyRecord, piped: bool| -> String {
        match (k.rotate_every.as_deref(), crate::flow::rotate::due_at(k)) {
            (Some(every), Some(t)) if k.is_live() => {
                let when = if piped {
                    expiry::day(t)
                } else if t <= now {
                    "now".into()
                } else {
                    expiry::relative(t, now)
                };
                format!("{every}, due {when}")
            }
            (Some(every), _) => every.to_string(),
            _ => "-".into(),
        }
    };
    // Piped: the stable TSV scripts read (dates, not "in 9 days").
    let tsv: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                k.id.clone(),
                k.kind.to_string(),
                expiry::day(k.created_at),
                k.expires_at.map_or_else(|| "never".into(), expiry::day),
                k.status(now, ctx.warn_window).as_str().into(),
                k.store.as_str().into(),
            ]
            .into_iter()
            .chain(policies.then(|| rotate_cell(k, true)))
            .collect()
        })
        .collect();
    let rows: Vec<Vec<(String, Tone)>> = keys
        .iter()
        .map(|k| {
            let status = k.status(now, ctx.warn_window);
            let tone = match status {
                Status::Active => Tone::Good,
                Status::Expiring | Status::Superseded | Status::Pending => Tone::Warn,
                Status::Expired | Status::Revoked => Tone::Bad,
            };
            let expires = k
                .expires_at
                .map_or_else(|| "never".into(), |t| expiry::relative(t, now));
            vec![
                (k.name.clone(), Tone::Plain),
                (k.id.clone(), Tone::Plain),
                (k.kind.to_string(), Tone::Plain),
                (expiry::day(k.created_at), Tone::Plain),
                (expires, Tone::Plain),
                (status.as_str().into(), tone),
                (k.store.as_str().into(), Tone::Plain),
            ]
            .into_iter()
            .chain(policies.then(|| (rotate_cell(k, false), Tone::Plain)))
            .collect()
        })
        .collect();
    let mut columns = vec![
        Column::shrinkable("NAME"),
        Column::keep("ID"),
        Column::droppable("KIND", 2),
        Column::droppable("CREATED", 0),
        Column::droppable("EXPIRES", 3),
        Column::keep("STATUS"),
        Column::droppable("STORE", 1),
    ];
    if policies {
        columns.push(Column::droppable("ROTATE", 4));
    }
    output::print_columns(&ctx.out, &columns, rows, Some(tsv))
}
