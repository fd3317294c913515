//! `keyctl rotate KEY`: replace a key without a gap. A successor with the same name,
//! kind, format, scopes, lifetime and remotes is minted, stored, pushed to every remote
//! the old key is on, verified there (token exchange), and rendered (`--write FILE`
//! rewrites the config). Only then is the old key marked `superseded`; it keeps working
//! for the grace period and is revoked by `keyctl rotate --finish` or `keyctl gc`.
//!
//! Any failing step rolls back: the successor is revoked where it was pushed and
//! deleted locally, the old key is left as it was, and the error names the step.

use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};

use super::config::Delivery;
use crate::cli::{OutputFormat, RevokeArgs, RotateArgs};
use crate::context::Ctx;
use crate::error::{Error, usage};
use crate::key;
use crate::registry::{KeyRecord, Registry, RemoteLink, Supersession};
use crate::render::{self, KeyParts, Settings};
use crate::store::{self, StoreKind};

pub fn run(ctx: &Ctx, a: RotateArgs) -> anyhow::Result<()> {
    if a.finish {
        return finish(ctx, 8);
    }
    let key = a.key.as_deref().ok_or_else(|| usage("KEY is required"))?;
    if a.render.dry_run {
        return Err(usage(
            "rotate has no --dry-run: it changes remotes as it goes",
        ));
    }
    let grace = parse_grace(&a.grace)?;
    let (old, old_secret) = super::usable_secret(ctx, key, false)?;
    if old.superseded.is_some() {
        return Err(Error::Inactive(format!(
            "key '{}' ({}) was already rotated; rotate its successor instead",
            old.name, old.id
        ))
        .into());
    }
    if old.store == StoreKind::Vault {
        return Err(usage(
            "rotating team-store keys is not supported yet: create a new key and revoke the old one",
        ));
    }

    // The successor: same shape, same lifetime, same prefix as the old secret.
    let now = OffsetDateTime::now_utc();
    let prefix = match key::check(old_secret.expose_secret()) {
        Ok(r) if r.format == key::Format::Standard => r.prefix,
        _ => old.kind.default_prefix().to_string(),
    };
    drop(old_secret);
    // A key of a remote that mints its own (Soda Cloud) gets its successor from there.
    let minter = old.remotes.iter().find(|l| mints_own_keys(ctx, &l.remote));
    let (minted, born) = successor(ctx, minter, old.format, &prefix)?;
    let new = KeyRecord {
        id: minted.id.clone(),
        name: old.name.clone(),
        kind: old.kind,
        format: old.format,
        description: old.description.clone(),
        created_at: now,
        expires_at: old.expires_at.map(|e| now + (e - old.created_at)),
        scopes: old.scopes.clone(),
        store: StoreKind::Keyring,
        revoked_at: None,
        superseded: None,
        remotes: born.iter().cloned().collect(),
        extra: old.extra.clone(),
    };
    let remembered = old.extra.get(render::HOST_FIELD).and_then(|v| v.as_str());
    let settings = Settings::resolve(old.kind, &a.render, OutputFormat::Yaml, remembered)?;
    let parts = KeyParts {
        kind: old.kind,
        id: &minted.id,
        name: &old.name,
        secret: minted.secret.expose_secret(),
    };
    // A bad --write FILE fails here, before anything changes.
    let delivery = Delivery::prepare(&a.render, settings, &parts)?;

    // Step 1: the old key steps aside (so the name is free) and the successor is stored.
    mark_superseded(ctx, &old, Some((&new.id, now + grace)))?;
    let new = match super::store_new_key(ctx, new, &minted.secret) {
        Ok(n) => n,
        Err(e) => {
            if let Some(l) = &born {
                super::push::rescue_secret(&l.remote, &minted);
            }
            let _ = mark_superseded(ctx, &old, None);
            return Err(step_failed(&old, "store the new key", e, &[]));
        }
    };

    // Steps 2 and 3: push to every other remote of the old key, then prove the key works
    // on each.
    let mut pushed: Vec<RemoteLink> = born.iter().cloned().collect();
    for l in old
        .remotes
        .iter()
        .filter(|l| born.as_ref().is_none_or(|b| b.remote != l.remote))
    {
        match super::push::push_key(ctx, &new, &l.remote, l.user_id.as_deref()) {
            Ok(link) => pushed.push(link),
            Err(e) => {
                let problems = rollback(ctx, &old, &new, &pushed);
                return Err(step_failed(
                    &old,
                    &format!("push to {}", l.remote),
                    e,
                    &problems,
                ));
            }
        }
    }
    if !a.no_verify {
        for l in &pushed {
            if let Err(e) = verify(ctx, l, &new.id, &minted.secret) {
                let problems = rollback(ctx, &old, &new, &pushed);
                return Err(step_failed(
                    &old,
                    &format!("verify on {} (--no-verify skips it)", l.remote),
                    e,
                    &problems,
                ));
            }
        }
    }

    // Step 4: the configuration the key is pasted into (with --json and no --write, the
    // JSON below carries the secret instead).
    let to_stdout = delivery.write.is_none();
    if (!ctx.out.json || !to_stdout)
        && let Err(e) = delivery.deliver(ctx, &parts)
    {
        let problems = rollback(ctx, &old, &new, &pushed);
        return Err(step_failed(&old, "render the new key", e, &problems));
    }
    let until = crate::expiry::rfc3339(now + grace);
    ctx.out.note(&format!(
        "rotated '{}': new key {}; old key {} is superseded and works until {until}, then `keyctl gc` revokes it",
        new.name, new.id, old.id
    ));
    if ctx.out.json {
        crate::output::print_json(
            &ctx.out,
            &serde_json::json!({
                "id": new.id,
                "name": new.name,
                "replaces": old.id,
                "secret": to_stdout.then_some(parts.secret),
                "old_revoke_after": until,
                "pushed_to": pushed.iter().map(|l| l.remote.as_str()).collect::<Vec<_>>(),
            }),
        )?;
    }
    if grace.is_zero() {
        return revoke(ctx, vec![old.id], 8);
    }
    Ok(())
}

/// `keyctl gc` / `rotate --finish`: revoke superseded keys past their grace period,
/// remotes first (the same path as `keyctl revoke`).
pub fn finish(ctx: &Ctx, jobs: usize) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let reg = Registry::load(&ctx.paths.data)?;
    let due: Vec<String> = reg
        .keys()
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .filter(|k| k.superseded.as_ref().is_some_and(|s| s.revoke_after <= now))
        .map(|k| k.id.clone())
        .collect();
    if due.is_empty() {
        ctx.out
            .note("no rotated key has reached the end of its grace period");
        return Ok(());
    }
    revoke(ctx, due, jobs)
}

fn revoke(ctx: &Ctx, keys: Vec<String>, jobs: usize) -> anyhow::Result<()> {
    super::revoke::run(
        ctx,
        RevokeArgs {
            keys,
            remote: None,
            all_expired: false,
            local_only: false,
            jobs,
        },
    )
}

fn parse_grace(s: &str) -> anyhow::Result<Duration> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(Duration::ZERO);
    }
    crate::expiry::parse_duration(s)
}

/// Sets (or, with None, clears) the old key's supersession.
fn mark_superseded(
    ctx: &Ctx,
    old: &KeyRecord,
    by: Option<(&str, OffsetDateTime)>,
) -> anyhow::Result<()> {
    crate::catalog::update(ctx, old.store, &old.id, |k| {
        k.superseded = by.map(|(id, t)| Supersession {
            by: id.to_string(),
            revoke_after: t,
        });
    })?;
    Ok(())
}

/// The remote's own proof that it accepts the new secret (`Remote::verify`).
fn verify(
    ctx: &Ctx,
    link: &RemoteLink,
    id: &str,
    secret: &secrecy::SecretString,
) -> anyhow::Result<()> {
    let how =
        crate::remote::open(ctx, &link.remote)?.verify(id, secret, link.user_id.as_deref())?;
    ctx.out
        .note(&format!("remote {}: the new key works: {how}", link.remote));
    Ok(())
}

/// Remotes that mint every key themselves and take none from clients (Soda Cloud).
fn mints_own_keys(ctx: &Ctx, remote: &str) -> bool {
    ctx.config
        .remotes
        .get(remote)
        .is_some_and(|c| c.kind == crate::remote::RemoteType::Soda)
}

/// The successor pair: minted by `minter` when the old key's remote mints its own keys
/// (the link is born pushed), else locally.
fn successor(
    ctx: &Ctx,
    minter: Option<&RemoteLink>,
    format: key::Format,
    prefix: &str,
) -> anyhow::Result<(key::Minted, Option<RemoteLink>)> {
    let Some(l) = minter else {
        return Ok((key::mint(format, prefix), None));
    };
    let m = crate::remote::open(ctx, &l.remote)?
        .mint(None)
        .map_err(|e| {
            e.context(format!(
                "rotation failed at step 'mint on {}'; nothing was changed",
                l.remote
            ))
        })?;
    let minted = key::Minted {
        id: m.access,
        secret: m.secret,
    };
    if let Err(e) = key::validate_id(&minted.id) {
        super::push::rescue_secret(&l.remote, &minted);
        return Err(e);
    }
    let link = RemoteLink {
        remote: l.remote.clone(),
        remote_id: m.remote_id,
        user_id: m.user_id,
        pushed_at: OffsetDateTime::now_utc(),
    };
    Ok((minted, Some(link)))
}

/// Undoes a rotation: the successor off its remotes and out of the store and registry,
/// the old key as it was. Returns what could not be undone.
fn rollback(ctx: &Ctx, old: &KeyRecord, new: &KeyRecord, pushed: &[RemoteLink]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in pushed {
        if l.known_id().is_none() {
            // A Soda runner key that was never deployed has no runner to delete.
            ctx.out.warn(&format!(
                "remote {} minted the new key {}, which no runner uses; Soda Cloud has no API to delete an undeployed runner key",
                l.remote, new.id
            ));
            continue;
        }
        if let Err(e) = crate::remote::open(ctx, &l.remote).and_then(|r| r.revoke(l)) {
            problems.push(format!(
                "the new key is still on remote {} ({e:#}); `keyctl revoke {}` retries",
                l.remote, new.id
            ));
        }
    }
    if problems.is_empty() {
        if let Err(e) = store::open(ctx, new.store).and_then(|s| s.delete(&new.id)) {
            problems.push(format!("the new key's secret could not be deleted ({e:#})"));
        }
        let removed = Registry::lock(&ctx.paths.data).and_then(|mut reg| {
            reg.remove(&new.id);
            reg.save()
        });
        if let Err(e) = removed {
            problems.push(format!(
                "the new key could not be removed from the registry ({e:#})"
            ));
        }
    }
    if let Err(e) = mark_superseded(ctx, old, None) {
        problems.push(format!("the old key is still marked superseded ({e:#})"));
    }
    problems
}

fn step_failed(
    old: &KeyRecord,
    step: &str,
    e: anyhow::Error,
    problems: &[String],
) -> anyhow::Error {
    let outcome = if problems.is_empty() {
        "rolled back: the new key was revoked and deleted, the old key is untouched".to_string()
    } else {
        format!("rollback incomplete: {}", problems.join("; "))
    };
    e.context(format!(
        "rotation of '{}' ({}) failed at step '{step}'; {outcome}",
        old.name, old.id
    ))
}
