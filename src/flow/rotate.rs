//! `keyctl rotate KEY`: replace a key without a gap anything using it could notice. A
//! successor with the same name, kind, format, scopes, lifetime, remotes and policy is
//! minted (locally, by a remote that mints its own keys, or by Keystone for an
//! application credential), stored as pending (the name still means the old key), pushed
//! to every remote the old key is on, verified there, and written into every file the old
//! key was delivered to ([`super::targets`]). Only then does the name move to it and the
//! old key become `superseded`: it keeps working for the grace period and is revoked by
//! `keyctl rotate --finish` or `keyctl gc`, which wants the successor verified first.
//! `rotate --due` does this for every key its policy (`rotate_every`) says is due.
//!
//! Any failing step rolls back: the successor is revoked where it was pushed and
//! deleted, files already rewritten get their old bytes back, the old key is left as it
//! was, and the error names the step.

use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};

use super::deliver::{Delivery, Target};
use super::revoke::{Report, RevokeRequest};
use super::targets::Fate;
use crate::app::App;
use crate::error::{Error, usage};
use crate::key;
use crate::registry::{DeliveryTarget, KeyRecord, Registry, RemoteLink, Supersession};
use crate::render::{self, KeyParts, OutputFormat, Settings, openstack};
use crate::service::Service;
use crate::store::StoreKind;

/// What to rotate and how.
pub(crate) struct RotateRequest {
    /// The key's ID or name.
    pub key: String,
    /// How long the old key keeps working (zero: revoked at once).
    pub grace: Duration,
    /// Skip proving on each remote that the new key works.
    pub no_verify: bool,
    pub render: render::Choices,
    pub target: Target,
    /// Confirmations are answered yes (`--yes`).
    pub assume_yes: bool,
    /// With no `--write`, print the new key's snippet (not when rotating in bulk).
    pub print_snippet: bool,
}

/// What a rotation did.
pub(crate) struct Rotated {
    pub new: KeyRecord,
    pub old: KeyRecord,
    /// The new secret, when it was not written to a file (for `--json`).
    pub secret: Option<secrecy::SecretString>,
    /// When `keyctl gc` revokes the old key (RFC 3339).
    pub old_revoke_after: String,
    pub pushed: Vec<RemoteLink>,
    /// With no grace period, the old key's revocation.
    pub old_revoked: Option<Report>,
    /// The files rewritten with the new key (the successor's delivery targets).
    pub targets: Vec<DeliveryTarget>,
    /// Delivery targets not rewritten (gone, or holding another key), each with why.
    pub skipped: Vec<String>,
}

/// Rotates the key `req` names (see the module docs for the steps).
pub(crate) fn rotate(app: &App, req: &RotateRequest) -> anyhow::Result<Rotated> {
    let key = req.key.as_str();
    let grace = req.grace;
    let (found, old_secret) = super::keys::usable_secret(app, key, false)?;
    // One rotation of a key at a time; the second fails at once, having changed nothing.
    let _lock = crate::fsutil::try_lock_removable(
        &app.paths.data.join(format!("rotate-{}.lock", found.id)),
    )
    .map_err(|_| {
        Error::conflict(format!(
            "another keyctl is rotating key '{}' ({}) right now; nothing was changed",
            found.name, found.id
        ))
    })?;
    // Read again under the lock: a rotation may have finished (or been cut short) since.
    // A team key's records (and its successor's) are in the team store.
    let team = found.store == StoreKind::Vault;
    let reg = if team {
        super::catalog::load(app)?
    } else {
        Registry::load(&app.paths.data)?
    };
    let old = reg
        .keys()
        .iter()
        .find(|k| k.id == found.id)
        .cloned()
        .ok_or_else(|| {
            Error::not_found(format!("key {} is no longer in the registry", found.id))
        })?;
    let resume = match &old.superseded {
        None => None,
        Some(sup) => match reg.keys().iter().find(|k| k.id == sup.by) {
            // A supersession by a key that was never recorded (or was revoked since): clear
            // it and start over.
            Some(n) if n.revoked_at.is_some() => {
                mark_superseded(app, &old, None)?;
                app.out.note(&format!(
                    "key {}'s successor {} was revoked; rotating it afresh",
                    old.id, n.id
                ));
                None
            }
            None => {
                mark_superseded(app, &old, None)?;
                app.out.note(&format!(
                    "an interrupted rotation left key {} marked superseded by {}, which does not exist; cleared",
                    old.id, sup.by
                ));
                None
            }
            // An interrupted rotation (still pending, or whose successor is not on every
            // remote yet): finish it.
            Some(n)
                if sup.pending
                    || (n.is_live()
                        && old.remotes.iter().any(|l| n.links_to(&l.remote).is_none())) =>
            {
                app.out.note(&format!(
                    "finishing the interrupted rotation of '{}': successor {}",
                    old.name, n.id
                ));
                Some(n.clone())
            }
            Some(_) => {
                return Err(Error::inactive(format!(
                    "key '{}' ({}) was already rotated; rotate its successor instead",
                    old.name, old.id
                ))
                .into());
            }
        },
    };
    let old = KeyRecord {
        superseded: None,
        ..old
    };

    let service = crate::flow::catalog::service_of(app, &old);
    // `--write FILE` is one more delivery target; a bad FILE fails here, before anything
    // is minted.
    let explicit = match &req.target.write {
        Some(path) => {
            let format = super::targets::format_for(&service, old.kind, &req.render)?;
            super::targets::precheck(path, &service, old.kind, format, &old.name)?;
            Some(super::targets::target_of(path, format, &req.render))
        }
        None => None,
    };
    // The successor: same shape, same lifetime, same prefix as the old secret.
    let now = OffsetDateTime::now_utc();
    let prefix = match key::check(old_secret.expose_secret()) {
        Ok(r) if r.format == key::Format::Standard => r.prefix,
        _ => old.kind.default_prefix().to_string(),
    };
    drop(old_secret);
    let (minted, born, new) = match resume {
        Some(n) => {
            let secret = app.stores.get(n.store)?.get(&n.id)?;
            let born = n.remotes.first().cloned();
            (
                key::Minted {
                    id: n.id.clone(),
                    secret,
                },
                born,
                Some(n),
            )
        }
        None => {
            // A key of a remote that mints its own (Soda Cloud) gets its successor there.
            let minter = old.remotes.iter().find(|l| mints_own_keys(app, &l.remote));
            // A key its service minted in its own console (a Soda Cloud API key, imported)
            // has no successor keyctl can make: a local one would not work there.
            if minter.is_none()
                && let Some(steps) = service.rotate_by_hand(&old.id)
            {
                return Err(usage(steps));
            }
            let (m, b) = if matches!(service, Service::KeystoneAppCredential(_)) {
                let (m, l) = super::appcred::mint_successor(app, &old, now)?;
                (m, Some(l))
            } else {
                successor(app, minter, old.format, &prefix)?
            };
            (m, b, None)
        }
    };
    let fresh = new.is_none();
    let new = new.unwrap_or_else(|| KeyRecord {
        id: minted.id.clone(),
        name: old.name.clone(),
        kind: old.kind,
        format: old.format,
        description: old.description.clone(),
        created_at: now,
        expires_at: old.expires_at.map(|e| now + (e - old.created_at)),
        scopes: old.scopes.clone(),
        store: if team {
            StoreKind::Vault
        } else {
            StoreKind::Keyring
        },
        revoked_at: None,
        superseded: None,
        remotes: born.iter().cloned().collect(),
        fingerprint: None,
        service: Some(service.clone()),
        targets: Vec::new(),
        app_credential: old.app_credential.clone(),
        last_verified: None,
        rotate_every: old.rotate_every.clone(),
        replacing: Some(old.id.clone()),
        extra: old.extra.clone(),
    });
    let parts = KeyParts {
        kind: old.kind,
        id: &minted.id,
        name: &old.name,
        secret: minted.secret.expose_secret(),
    };

    // Step 1, one registry write: the successor is recorded and the old key steps aside
    // together (the successor's secret is stored just before; a crash in between leaves
    // only a secret nobody owns, which `keyctl doctor --fix` removes).
    let new = if fresh {
        match commit_successor(app, &old, new, &minted.secret, now + grace) {
            Ok(n) => n,
            Err(e) => {
                if let Some(l) = &born {
                    super::push::rescue_secret(&l.remote, &minted);
                }
                return Err(step_failed(&old, "store the new key", e, &[]));
            }
        }
    } else {
        new
    };

    // Steps 2 and 3: push to every other remote of the old key, then prove the key works
    // on each.
    let mut pushed: Vec<RemoteLink> = new.remotes.clone();
    for l in old
        .remotes
        .iter()
        .filter(|l| new.links_to(&l.remote).is_none())
    {
        match super::push::push_key(app, &new, &l.remote, l.user_id.as_deref()) {
            Ok(link) => pushed.push(link),
            Err(e) => {
                let problems = rollback(app, &old, &new, &pushed);
                return Err(step_failed(
                    &old,
                    &format!("push to {}", l.remote),
                    e,
                    &problems,
                ));
            }
        }
    }
    if !req.no_verify {
        for l in &pushed {
            if let Err(e) = verify(app, &service, l, &new.id, &minted.secret) {
                let problems = rollback(app, &old, &new, &pushed);
                return Err(step_failed(
                    &old,
                    &format!("verify on {} (--no-verify skips it)", l.remote),
                    e,
                    &problems,
                ));
            }
        }
    }

    // Step 4: every file the old key was delivered to (and `--write FILE`) gets the new
    // key, before the old key's grace period starts; a file that is gone is reported.
    let new = KeyRecord {
        last_verified: (!req.no_verify).then_some(now),
        ..new
    };
    let fates = match plan_targets(app, &old, &new, &parts, explicit) {
        Ok(f) => f,
        Err(e) => {
            let problems = rollback(app, &old, &new, &pushed);
            return Err(step_failed(&old, "deliver the new key", e, &problems));
        }
    };
    if let Err(e) = super::targets::commit_all(&fates) {
        let problems = rollback(app, &old, &new, &pushed);
        return Err(step_failed(&old, "deliver the new key", e, &problems));
    }
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    for f in &fates {
        match f {
            Fate::Rewrite(t, _) => {
                app.out.note(&format!(
                    "rewrote {} ({}) with the new key",
                    t.path.display(),
                    t.format.as_str()
                ));
                targets.push(t.clone());
            }
            Fate::Skipped(why) => {
                app.out.warn(why);
                skipped.push(why.clone());
            }
            Fate::Kept(t, why) => {
                app.out.warn(why);
                skipped.push(why.clone());
                targets.push(t.clone());
            }
        }
    }
    // The grace period starts now, with every target holding the new key.
    let started = OffsetDateTime::now_utc();
    if let Err(e) = start_grace(app, &old, &new, &targets, started + grace) {
        super::targets::restore(&super::targets::written(&fates));
        let problems = rollback(app, &old, &new, &pushed);
        return Err(step_failed(&old, "record the delivery", e, &problems));
    }
    let new = KeyRecord {
        targets: targets.clone(),
        ..new
    };
    // With no --write, the snippet goes to stdout (with --json, the JSON below carries
    // the secret instead).
    // The files the key was delivered to hold it now: no need to show the secret.
    let to_stdout = req.target.write.is_none() && req.print_snippet;
    if !app.out.json && to_stdout && targets.is_empty() {
        print_snippet(app, &old, &service, &req.render, &parts)?;
    }
    let until = crate::expiry::human(started + grace);
    app.out.note(&format!(
        "rotated '{}': new key {} ({}); old key {} is superseded and works until {until}, then `keyctl gc` revokes it",
        new.name,
        new.id,
        crate::expiry::describe(new.expires_at, now),
        old.id
    ));
    let old_revoked = if grace.is_zero() {
        revoke(app, vec![old.id.clone()], 8, req.assume_yes)?
    } else {
        None
    };
    Ok(Rotated {
        secret: to_stdout.then(|| minted.secret.clone()),
        new,
        old,
        old_revoke_after: until,
        pushed,
        old_revoked,
        targets,
        skipped,
    })
}

/// The snippet of the new key on stdout, in the form the key's service reads.
fn print_snippet(
    app: &App,
    old: &KeyRecord,
    service: &Service,
    choices: &render::Choices,
    parts: &KeyParts,
) -> anyhow::Result<()> {
    if openstack::is_keystone(Some(service)) {
        let text = openstack::render_chosen(service, choices, parts)?;
        return super::deliver::print_stdout(&text);
    }
    let remembered = super::keys::soda_endpoint_of(app, old);
    let settings = Settings::resolve(old.kind, choices, OutputFormat::Yaml, remembered.as_ref())?;
    Delivery::prepare(&Target::default(), settings, parts)?.deliver(&app.out, parts)
}

/// The rewrite of every recorded target of `old` and of `explicit` (`--write FILE`,
/// written even where it does not hold the old key).
fn plan_targets(
    app: &App,
    old: &KeyRecord,
    new: &KeyRecord,
    parts: &KeyParts,
    explicit: Option<DeliveryTarget>,
) -> anyhow::Result<Vec<Fate>> {
    let mut recorded = old.clone();
    if let Some(t) = &explicit {
        recorded.targets.retain(|o| o.path != t.path);
    }
    let mut fates = super::targets::plan_rotation(app, &recorded, new, parts)?;
    if let Some(t) = explicit {
        let p = super::targets::plan(app, new, &t, parts)?;
        fates.push(Fate::Rewrite(t, p));
    }
    Ok(fates)
}

/// One step: the successor records its targets (and when it was verified), and the old
/// key's grace period is set to end at `revoke_after`.
fn start_grace(
    app: &App,
    old: &KeyRecord,
    new: &KeyRecord,
    targets: &[DeliveryTarget],
    revoke_after: OffsetDateTime,
) -> anyhow::Result<()> {
    let supersession = Supersession {
        by: new.id.clone(),
        revoke_after,
        pending: false,
    };
    let finish_new = |n: &mut KeyRecord| {
        n.targets = targets.to_vec();
        n.last_verified = new.last_verified;
        n.replacing = None;
    };
    let finish_old = |o: &mut KeyRecord| {
        o.targets.clear();
        o.superseded = Some(supersession.clone());
    };
    if new.store == StoreKind::Vault {
        // Team records: one check-and-set write each, the successor's first; then the
        // team-wide name goes to the successor (a conflict when another machine's
        // rotation took it first).
        super::catalog::update(app, new.store, &new.id, finish_new)?;
        if !app
            .stores
            .vault()?
            .move_claim(&new.name, &old.id, &new.id)?
        {
            return Err(Error::conflict(format!(
                "key '{}' was rotated or changed on another machine meanwhile (its name no longer means {}); nothing was changed",
                old.name, old.id
            ))
            .into());
        }
        super::catalog::update(app, old.store, &old.id, finish_old)?;
        return Ok(());
    }
    // Local records: both in one registry write.
    let mut reg = Registry::lock(&app.paths.data)?;
    let gone = |id: &str| Error::not_found(format!("key {id} is no longer in the registry"));
    finish_new(reg.get_mut(&new.id).ok_or_else(|| gone(&new.id))?);
    finish_old(reg.get_mut(&old.id).ok_or_else(|| gone(&old.id))?);
    reg.save()
}

/// `keyctl gc` / `rotate --finish`: revoke superseded keys past their grace period,
/// remotes first (the same path as `keyctl revoke`). A key whose successor is on a
/// service but was never verified there (`rotate --no-verify`, never `keyctl verify`d)
/// is kept unless `unverified`: revoking it could leave nothing that works. Returns the
/// revocations and what was kept for that reason.
pub(crate) fn finish(
    app: &App,
    jobs: usize,
    assume_yes: bool,
    unverified: bool,
) -> anyhow::Result<(Option<Report>, Vec<String>)> {
    let now = OffsetDateTime::now_utc();
    // With the team store configured, its rotated keys are collected too.
    let reg = super::catalog::load(app)?;
    let mut kept = Vec::new();
    let due: Vec<String> = reg
        .keys()
        .iter()
        .filter(|k| k.revoked_at.is_none())
        .filter(|k| {
            k.superseded
                .as_ref()
                .is_some_and(|s| !s.pending && s.revoke_after <= now)
        })
        .filter(|k| {
            // Never the only working key: the successor must exist, be live and be on
            // every remote the old key is on.
            let sup = k.superseded.as_ref().expect("filtered");
            let successor = reg.keys().iter().find(|n| {
                n.id == sup.by
                    && n.is_live()
                    && k.remotes.iter().all(|l| n.links_to(&l.remote).is_some())
            });
            let Some(n) = successor else {
                app.out.warn(&format!(
                    "key '{}' ({}) is not revoked: its successor {} is missing, revoked or not on all its remotes; `keyctl rotate {}` finishes or undoes that rotation",
                    k.name, k.id, sup.by, k.id
                ));
                return false;
            };
            if !unverified && needs_verifying(app, n) && n.last_verified.is_none() {
                kept.push(format!(
                    "key '{}' ({}) is not revoked: its successor {} was never verified; `keyctl verify {}` proves it works (then `keyctl gc` revokes the old key), or `keyctl gc --unverified` revokes it anyway",
                    k.name, k.id, n.id, n.id
                ));
                return false;
            }
            true
        })
        .map(|k| k.id.clone())
        .collect();
    if due.is_empty() {
        if kept.is_empty() {
            app.out
                .note("no rotated key has reached the end of its grace period");
        }
        return Ok((None, kept));
    }
    Ok((revoke(app, due, jobs, assume_yes)?, kept))
}

/// A key `verify` can check: one on a remote or of a Soda Cloud service.
fn needs_verifying(app: &App, k: &KeyRecord) -> bool {
    !k.remotes.is_empty() || super::catalog::service_of(app, k).soda().is_some()
}

fn revoke(
    app: &App,
    keys: Vec<String>,
    jobs: usize,
    assume_yes: bool,
) -> anyhow::Result<Option<Report>> {
    super::revoke::revoke(
        app,
        &RevokeRequest {
            keys,
            remote: None,
            all_expired: false,
            local_only: false,
            jobs,
            assume_yes,
        },
    )
}

/// `--rotate-every` / `rotate --every`: a duration (kept as written), or `never` (None).
pub(crate) fn parse_every(s: Option<&str>) -> anyhow::Result<Option<String>> {
    match s.map(str::trim) {
        None | Some("never") => Ok(None),
        Some(d) => {
            let every = crate::expiry::parse_duration(d)
                .map_err(|e| e.context("--rotate-every / --every"))?;
            if every < Duration::hours(1) {
                return Err(usage(format!(
                    "rotation every {d} is too often: a rotation needs its grace period to pass; use 1h or more"
                )));
            }
            Ok(Some(d.to_string()))
        }
    }
}

/// When `k` is next due for rotation under its policy (None without one).
pub(crate) fn due_at(k: &KeyRecord) -> Option<OffsetDateTime> {
    let every = crate::expiry::parse_duration(k.rotate_every.as_deref()?).ok()?;
    Some(k.created_at + every)
}

/// `rotate KEY --every D`: sets (or, with `never`, clears) the key's rotation policy.
pub(crate) fn set_policy(app: &App, key: &str, every: &str) -> anyhow::Result<KeyRecord> {
    let every = parse_every(Some(every))?;
    let reg = super::catalog::load_for(app, key)?;
    let k = reg.resolve(key)?;
    if !k.is_live() {
        return Err(Error::inactive(format!(
            "key '{}' ({}) is revoked or superseded; set the policy on the key that replaced it",
            k.name, k.id
        ))
        .into());
    }
    super::catalog::update(app, k.store, &k.id, |r| r.rotate_every = every.clone())
}

/// What `rotate --due` did.
pub(crate) struct DueReport {
    pub rotated: Vec<Rotated>,
    /// Each key that was due but could not be rotated: its record and why.
    pub failed: Vec<(KeyRecord, anyhow::Error)>,
}

/// `rotate --due`: rotates, one after another, every live key whose policy says it is
/// due, each as `keyctl rotate KEY --grace GRACE` would (its delivery targets rewritten,
/// no snippet printed). One failure does not stop the others.
pub(crate) fn rotate_due(
    app: &App,
    grace: Duration,
    assume_yes: bool,
) -> anyhow::Result<DueReport> {
    let now = OffsetDateTime::now_utc();
    let reg = super::catalog::load(app)?;
    let due: Vec<KeyRecord> = reg
        .keys()
        .iter()
        .filter(|k| k.is_live() && due_at(k).is_some_and(|t| t <= now))
        .cloned()
        .collect();
    let mut report = DueReport {
        rotated: Vec::new(),
        failed: Vec::new(),
    };
    for k in due {
        let req = RotateRequest {
            key: k.id.clone(),
            grace,
            no_verify: false,
            render: render::Choices::default(),
            target: Target::default(),
            assume_yes,
            print_snippet: false,
        };
        match rotate(app, &req) {
            Ok(r) => report.rotated.push(r),
            Err(e) => report.failed.push((k, e)),
        }
    }
    Ok(report)
}

pub(crate) fn parse_grace(s: &str) -> anyhow::Result<Duration> {
    if s.trim() == "0" || s.trim() == "0s" {
        return Ok(Duration::ZERO);
    }
    crate::expiry::parse_duration(s)
}

/// Stores the successor's secret, then records it and the old key's supersession in one
/// registry write. If the write fails, the secret is taken out again.
fn commit_successor(
    app: &App,
    old: &KeyRecord,
    mut new: KeyRecord,
    secret: &secrecy::SecretString,
    revoke_after: OffsetDateTime,
) -> anyhow::Result<KeyRecord> {
    if old.store == StoreKind::Vault {
        return commit_team_successor(app, old, new, secret, revoke_after);
    }
    let label = format!("keyctl {} key {} ({})", new.kind, new.name, new.id);
    new.store = app.stores.put_new(&new.id, &label, secret)?;
    let written = Registry::lock(&app.paths.data).and_then(|mut reg| {
        let o = reg.get_mut(&old.id).ok_or_else(|| {
            Error::not_found(format!("key {} is no longer in the registry", old.id))
        })?;
        o.superseded = Some(Supersession {
            by: new.id.clone(),
            revoke_after,
            pending: true,
        });
        new.fingerprint = reg.reg.recorded_fingerprint(secret.expose_secret());
        reg.insert_successor(new.clone())?;
        reg.save()
    });
    if let Err(e) = written {
        if let Ok(s) = app.stores.get(new.store) {
            let _ = s.delete(&new.id);
        }
        return Err(e);
    }
    Ok(new)
}

/// [`commit_successor`] for a team key: the successor written to the team store (the
/// name still means the old key; [`start_grace`] hands it over), then the old record
/// marked as being superseded; if that fails, the successor is taken out again.
fn commit_team_successor(
    app: &App,
    old: &KeyRecord,
    new: KeyRecord,
    secret: &secrecy::SecretString,
    revoke_after: OffsetDateTime,
) -> anyhow::Result<KeyRecord> {
    let new = crate::store::vault::create_successor(&app.stores, new, secret, &old.id)?;
    if let Err(e) = mark_superseded(app, old, Some((&new.id, revoke_after))) {
        undo_team_successor(app, old, &new);
        return Err(e);
    }
    Ok(new)
}

/// Gives the team-wide name back to `old` and deletes the successor `new` from the team
/// store. Returns what could not be undone.
fn undo_team_successor(app: &App, old: &KeyRecord, new: &KeyRecord) -> Vec<String> {
    let mut problems = Vec::new();
    let undone = app.stores.vault().and_then(|v| {
        v.move_claim(&new.name, &new.id, &old.id)?;
        app.stores.get(StoreKind::Vault)?.delete(&new.id)
    });
    if let Err(e) = undone {
        problems.push(format!(
            "the new key {} is still in the team store ({e:#}); `keyctl delete {}` removes it",
            new.id, new.id
        ));
    }
    problems
}

/// Marks the old key as being superseded by a rotation under way (pending), or, with
/// None, clears that.
fn mark_superseded(
    app: &App,
    old: &KeyRecord,
    by: Option<(&str, OffsetDateTime)>,
) -> anyhow::Result<()> {
    crate::flow::catalog::update(app, old.store, &old.id, |k| {
        k.superseded = by.map(|(id, t)| Supersession {
            by: id.to_string(),
            revoke_after: t,
            pending: true,
        });
    })?;
    Ok(())
}

/// The remote's own proof that it accepts the new secret (`Remote::verify`).
fn verify(
    app: &App,
    service: &crate::service::Service,
    link: &RemoteLink,
    id: &str,
    secret: &secrecy::SecretString,
) -> anyhow::Result<()> {
    let how = app
        .remote(&link.remote)?
        .verify_key(service, id, secret, link.user_id.as_deref())?;
    app.out
        .note(&format!("remote {}: the new key works: {how}", link.remote));
    Ok(())
}

/// Remotes that mint every key themselves and take none from clients (Soda Cloud, as
/// the remote says; an http remote with a mint endpoint and no push endpoint).
fn mints_own_keys(app: &App, remote: &str) -> bool {
    // An http remote that can mint but takes no client-made pair (SODA Multicloud's
    // profile: `POST .../aksks` makes its own) gets the successor minted there too.
    let mint_only = app
        .remotes
        .get(remote)
        .and_then(|c| c.http.as_ref())
        .is_some_and(|h| h.mint.is_some() && h.push.is_none());
    mint_only || app.remote(remote).is_ok_and(|r| r.mints_own_keys())
}

/// The successor pair: minted by `minter` when the old key's remote mints its own keys
/// (the link is born pushed), else locally.
fn successor(
    app: &App,
    minter: Option<&RemoteLink>,
    format: key::Format,
    prefix: &str,
) -> anyhow::Result<(key::Minted, Option<RemoteLink>)> {
    let Some(l) = minter else {
        return Ok((key::mint(format, prefix), None));
    };
    let (minted, link) = super::push::server_mint(app, &l.remote, None).map_err(|e| {
        e.context(format!(
            "rotation failed at step 'mint on {}'; nothing was changed",
            l.remote
        ))
    })?;
    Ok((minted, Some(link)))
}

/// Undoes a rotation: the successor off its remotes and out of the store and registry,
/// the old key as it was. Returns what could not be undone.
fn rollback(app: &App, old: &KeyRecord, new: &KeyRecord, pushed: &[RemoteLink]) -> Vec<String> {
    let mut problems = Vec::new();
    for l in pushed {
        if l.known_id().is_none() {
            // A Soda runner key that was never deployed has no runner to delete.
            app.out.warn(&format!(
                "remote {} minted the new key {}, which no runner uses; Soda Cloud has no API to delete an undeployed runner key",
                l.remote, new.id
            ));
            continue;
        }
        if let Err(e) = app.remote(&l.remote).and_then(|r| r.revoke(l)) {
            problems.push(format!(
                "the new key is still on remote {} ({e:#}); `keyctl revoke {}` retries",
                l.remote, new.id
            ));
        }
    }
    if problems.is_empty() && new.store == StoreKind::Vault {
        problems.extend(undo_team_successor(app, old, new));
        if let Err(e) = mark_superseded(app, old, None) {
            problems.push(format!(
                "key {} is still marked superseded in the team store ({e:#}); `keyctl rotate {}` again undoes it",
                old.id, old.id
            ));
        }
        return problems;
    }
    if problems.is_empty() {
        // One registry write undoes both halves; the secret goes after it, so a crash in
        // between leaves an orphaned secret (doctor --fix), never a key without one.
        let undone = Registry::lock(&app.paths.data).and_then(|mut reg| {
            reg.remove(&new.id);
            if let Some(o) = reg.get_mut(&old.id) {
                o.superseded = None;
            }
            reg.save()
        });
        match undone {
            Ok(()) => {
                if let Err(e) = app.stores.get(new.store).and_then(|s| s.delete(&new.id)) {
                    problems.push(format!("the new key's secret could not be deleted ({e:#})"));
                }
            }
            Err(e) => problems.push(format!(
                "the registry could not be restored ({e:#}); `keyctl rotate {}` again finishes or undoes it",
                old.id
            )),
        }
    }
    // Otherwise the old key stays superseded by the new one (never two live keys of one
    // name): once `keyctl revoke NEW` succeeds, `keyctl rotate OLD` starts afresh.
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
