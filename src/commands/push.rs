//! `keyctl push KEY --remote R`, and the remote half of `create --remote` (push after
//! minting, or `--server-side`: let the remote mint). The registry records a push only
//! after the remote confirmed it, so a failed push never leaves a key marked pushed.

use time::OffsetDateTime;

use crate::cli::{CreateArgs, PushArgs};
use crate::context::Ctx;
use crate::error::Error;
use crate::key::{self, Format};
use crate::registry::{KeyRecord, RemoteLink};
use crate::remote;
use crate::store;

pub fn run(ctx: &Ctx, a: PushArgs) -> anyhow::Result<()> {
    let rec = crate::catalog::load_for(ctx, &a.key)?
        .resolve(&a.key)?
        .clone();
    if rec.revoked_at.is_some() {
        return Err(Error::Inactive(format!(
            "key '{}' ({}) is revoked; it cannot be pushed",
            rec.name, rec.id
        ))
        .into());
    }
    let link = push_key(ctx, &rec, &a.remote, a.for_user.as_deref())?;
    if ctx.out.json {
        return crate::output::print_json(&ctx.out, &link);
    }
    Ok(())
}

/// Pushes one stored key and records the link.
pub fn push_key(
    ctx: &Ctx,
    rec: &KeyRecord,
    remote_name: &str,
    for_user: Option<&str>,
) -> anyhow::Result<RemoteLink> {
    let r = remote::open(ctx, remote_name)?;
    let secret = store::open(ctx, rec.store)?.get(&rec.id)?;
    let p = r.push(&rec.id, &secret, for_user)?;
    drop(secret);
    let link = RemoteLink {
        remote: remote_name.to_string(),
        remote_id: p.remote_id,
        user_id: p.user_id,
        pushed_at: OffsetDateTime::now_utc(),
    };
    record_link(ctx, rec, link.clone()).map_err(|e| {
        e.context(format!(
            "key {} is on remote {remote_name} but the registry could not say so; `keyctl push {} --remote {remote_name}` again is safe",
            rec.id, rec.id
        ))
    })?;
    ctx.out.note(&if p.already {
        format!(
            "key '{}' ({}) was already on remote {remote_name}",
            rec.name, rec.id
        )
    } else {
        format!(
            "pushed key '{}' ({}) to remote {remote_name}",
            rec.name, rec.id
        )
    });
    Ok(link)
}

/// Adds (or refreshes) a key's link to a remote where its record lives.
fn record_link(ctx: &Ctx, rec: &KeyRecord, link: RemoteLink) -> anyhow::Result<()> {
    crate::catalog::update(ctx, rec.store, &rec.id, |k| {
        k.remotes.retain(|l| l.remote != link.remote);
        k.remotes.push(link.clone());
    })?;
    Ok(())
}

/// The remote half of `create`'s flags, taken before the rest of the args are consumed.
pub struct CreateRemote {
    remote: Option<String>,
    server_side: bool,
    for_user: Option<String>,
}

impl CreateRemote {
    pub fn of(a: &CreateArgs) -> Self {
        CreateRemote {
            remote: a.remote.clone(),
            server_side: a.server_side,
            for_user: a.for_user.clone(),
        }
    }
}

/// `create --remote R --server-side`: the remote mints the pair. Otherwise mints
/// locally. The link is returned so the registry entry is born pushed.
pub fn mint_for_create(
    ctx: &Ctx,
    a: &CreateRemote,
    format: Format,
    prefix: &str,
) -> anyhow::Result<(key::Minted, Option<RemoteLink>)> {
    let (Some(name), true) = (&a.remote, a.server_side) else {
        return Ok((key::mint(format, prefix), None));
    };
    let m = remote::open(ctx, name)?.mint(a.for_user.as_deref())?;
    key::validate_id(&m.access).map_err(|e| {
        Error::RemoteRefused(format!(
            "remote {name} minted a key ID keyctl cannot store ({e:#}); revoke it there by hand"
        ))
    })?;
    let link = RemoteLink {
        remote: name.clone(),
        remote_id: m.remote_id,
        user_id: m.user_id,
        pushed_at: OffsetDateTime::now_utc(),
    };
    Ok((
        key::Minted {
            id: m.access,
            secret: m.secret,
        },
        Some(link),
    ))
}

/// After a server-side mint whose local storing failed: take the credential back, so
/// no key exists that nobody holds the secret of.
pub fn undo_server_mint(ctx: &Ctx, a: &CreateRemote, rec_links: &[RemoteLink]) {
    if !a.server_side {
        return;
    }
    for l in rec_links {
        let r = remote::open(ctx, &l.remote).and_then(|r| r.revoke(l));
        if let Err(e) = r {
            ctx.out.warn(&format!(
                "the key minted on remote {} could not be taken back ({e:#}); delete credential {} there by hand",
                l.remote, l.remote_id
            ));
        }
    }
}

/// `create --remote R` without `--server-side`: push the stored key. A failure leaves
/// the key local only, and the error says how to retry.
pub fn push_after_create(ctx: &Ctx, rec: &mut KeyRecord, a: &CreateRemote) -> anyhow::Result<()> {
    let Some(name) = a.remote.as_deref().filter(|_| !a.server_side) else {
        return Ok(());
    };
    match push_key(ctx, rec, name, a.for_user.as_deref()) {
        Ok(link) => {
            rec.remotes.push(link);
            Ok(())
        }
        Err(e) => Err(e.context(format!(
            "key '{}' ({}) was created and stored locally but not pushed; retry with `keyctl push {} --remote {name}`",
            rec.name, rec.id, rec.id
        ))),
    }
}
