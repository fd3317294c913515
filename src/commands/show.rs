//! `keyctl show KEY`: one key's metadata and where its secret lives, never the secret.

use time::OffsetDateTime;

use super::KeyView;
use crate::context::Ctx;
use crate::expiry;
use crate::store::StoreKind;

pub(crate) fn run(ctx: &Ctx, key: &str) -> anyhow::Result<()> {
    let reg = crate::flow::catalog::load_for(ctx, key)?;
    let k = reg.resolve(key)?;
    let now = OffsetDateTime::now_utc();
    if ctx.out.json {
        return crate::output::print_json(&ctx.out, &KeyView::of(k, now, ctx.warn_window));
    }
    let location = if let Some(at) = k.revoked_at.filter(|_| k.store != StoreKind::Vault) {
        // Deleted by the revoke (a team key's stays, for the record).
        format!(
            "none: revoked on {}; its secret was deleted",
            expiry::day(at)
        )
    } else {
        ctx.stores.whereabouts(k.store, &k.id)
    };
    let rows = [
        ("name", k.name.clone()),
        ("id", k.id.clone()),
        ("kind", k.kind.to_string()),
        ("format", k.format.as_str().into()),
        ("status", k.status(now, ctx.warn_window).as_str().into()),
        (
            "superseded",
            k.superseded.as_ref().map_or_else(
                || "-".into(),
                |s| {
                    format!(
                        "by {}; this key is revoked after {} ({}) by `keyctl gc`",
                        s.by,
                        expiry::human(s.revoke_after),
                        expiry::relative(s.revoke_after, now)
                    )
                },
            ),
        ),
        ("created", expiry::human(k.created_at)),
        (
            "expires",
            k.expires_at.map_or_else(
                || "never".into(),
                |t| format!("{} ({})", expiry::human(t), expiry::relative(t, now)),
            ),
        ),
        (
            "scopes",
            if k.scopes.is_empty() {
                "-".into()
            } else {
                k.scopes.join(", ")
            },
        ),
        (
            "description",
            k.description.clone().unwrap_or_else(|| "-".into()),
        ),
        ("secret", location),
        (
            "service",
            crate::flow::catalog::service_of(ctx, k).describe(),
        ),
        (
            "remotes",
            if k.remotes.is_empty() {
                "-".into()
            } else {
                k.remotes
                    .iter()
                    .map(|l| match l.known_id() {
                        Some(id) => format!("{} (remote ID {id})", l.remote),
                        None => format!(
                            "{} (remote ID not known yet: a runner appears once deployed with this key)",
                            l.remote
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "delivered to",
            if k.targets.is_empty() {
                "-".into()
            } else {
                k.targets
                    .iter()
                    .map(|t| format!("{} ({})", t.path.display(), t.format.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        (
            "rotate",
            match (&k.rotate_every, crate::flow::rotate::due_at(k)) {
                (Some(every), Some(t)) => format!(
                    "every {every}: due {} ({}) for `keyctl rotate --due`",
                    expiry::human(t),
                    expiry::relative(t, now)
                ),
                _ => "-".into(),
            },
        ),
        (
            "verified",
            k.last_verified.map_or_else(
                || "never".into(),
                |t| format!("{} ({})", expiry::human(t), expiry::relative(t, now)),
            ),
        ),
    ];
    crate::output::print_fields(&rows)
}
