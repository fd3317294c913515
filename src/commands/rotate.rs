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
    let minted = key::mint(old.format, &prefix);
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
        remotes: Vec::new(),
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
            let _ = mark_superseded(ctx, &old, None);
            return Err(step_failed(&old, "store the new key", e, &[]));
        }
    };

    // Steps 2 and 3: push to every remote of the old key, then prove the key works there.
    let mut pushed: Vec<RemoteLink> = Vec::new();
    for l in &old.remotes {
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

/// A token exchange proves the remote accepts the new secret. Where the remote has none
/// (Soda Cloud) or will not exchange for this user (Keystone lets only admins check EC2
/// signatures: HTTP 403), the remote's own list must show the new key instead.
fn verify(
    ctx: &Ctx,
    link: &RemoteLink,
    id: &str,
    secret: &secrecy::SecretString,
) -> anyhow::Result<()> {
    let name = &link.remote;
    let r = crate::remote::open(ctx, name)?;
    let why = match r.token(id, secret) {
        Ok(_) => {
            ctx.out.debug(&format!(
                "remote {name} issued a token for the new key {id}"
            ));
            return Ok(());
        }
        Err(e) if is_usage(&e) => "it has no token exchange".to_string(),
        Err(e) if format!("{e:#}").contains("HTTP 403") => {
            "this remote's user may not exchange tokens (HTTP 403)".to_string()
        }
        Err(e) => return Err(e),
    };
    match r.list(link.user_id.as_deref()) {
        Ok(creds) if creds.iter().any(|c| c.access == id) => {
            ctx.out.note(&format!(
                "remote {name}: {why}; it lists the new key, which is the check made instead"
            ));
            Ok(())
        }
        Ok(_) => Err(Error::RemoteRefused(format!(
            "remote {name} does not list the new key {id} after accepting its push"
        ))
        .into()),
        Err(e) if is_usage(&e) => {
            ctx.out.note(&format!(
                "remote {name}: {why} and no list; the new key is verified by its push only"
            ));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

fn is_usage(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<Error>(), Some(Error::Usage(_)))
}

/// Undoes a rotation: the successor off its remotes and out of the store and registry,
/// the old key as it was. Returns what could not be undone.
fn rollback(ctx: &Ctx, old: &KeyRecord, new: &KeyRecord, pushed: &[RemoteLink]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in pushed {
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
