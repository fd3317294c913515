//! Revoking keys: take them back from the remotes they were pushed to, then revoke
//! them locally (status `revoked`, secret deleted, the entry kept for the record).
//!
//! Remote first: a key whose remote revoke failed keeps its secret and its links, and
//! the error says how to force a local revoke (`--local-only`). Something already gone
//! on the remote counts as revoked (with a note), so running the same command again
//! after an interruption finishes the job. Remote requests run on a few threads at
//! once; the registry is written once at the end, under its lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::app::App;
use crate::error::{Error, usage};
use crate::expiry::Status;
use crate::registry::{KeyRecord, Registry, RemoteLink};
use crate::remote::Remote;
use crate::store::StoreKind;

/// The outcome for one key: the links it was taken off, or the error.
struct Outcome {
    rec: KeyRecord,
    revoked: Vec<RemoteLink>,
    result: anyhow::Result<()>,
}

/// What to revoke and how.
#[derive(Clone, Debug)]
pub(crate) struct RevokeRequest {
    /// Key IDs or names.
    pub keys: Vec<String>,
    /// Only take the keys off this remote.
    pub remote: Option<String>,
    /// Every expired key too.
    pub all_expired: bool,
    /// Revoke here without asking the remotes.
    pub local_only: bool,
    /// Remote requests at once.
    pub jobs: usize,
    /// Confirmations are answered yes (`--yes`).
    pub assume_yes: bool,
}

/// One key the revoke went through for: revoked locally, or only taken off a remote.
pub(crate) struct Done {
    pub rec: KeyRecord,
    pub revoked: bool,
}

/// What a revoke did: the keys it went through for, and the first failure (the others
/// were printed as warnings).
pub(crate) struct Report {
    pub done: Vec<Done>,
    pub result: anyhow::Result<()>,
}

/// Revokes the keys `req` names; None when there was nothing to revoke.
pub(crate) fn revoke(app: &App, req: &RevokeRequest) -> anyhow::Result<Option<Report>> {
    if req.jobs == 0 || req.jobs > 64 {
        return Err(usage("--jobs must be between 1 and 64"));
    }
    let targets = targets(app, req)?;
    if targets.is_empty() {
        app.out.note("no keys to revoke");
        return Ok(None);
    }
    if let Some(r) = &req.remote
        && !app.remotes.contains_key(r)
    {
        return Err(Error::not_found(format!(
            "no remote named {} (see `keyctl remote list`)",
            crate::output::quoted(r)
        ))
        .into());
    }

    // What can be known before asking is known before asking: a runner key whose runner
    // Soda Cloud does not show is refused, and a rotated one warned about, first.
    let targets = learn_ids(app, req, targets)?;
    let what = confirmation(req, &targets);
    app.confirm(req.assume_yes, &what)?;
    let outcomes = revoke_remotely(app, req, targets)?;
    let now = OffsetDateTime::now_utc();
    let mut failures: Vec<anyhow::Error> = Vec::new();
    let mut done: Vec<(KeyRecord, bool)> = Vec::new();
    // Keys revoked here that no remote took back: their service may still accept them.
    let mut unreached: Vec<String> = Vec::new();
    {
        let mut reg = Registry::lock(&app.paths.data)?;
        // Each failure is said once: a warning per key when several were asked for (the
        // first is the error at the end), else only the error.
        let bulk = outcomes.len() > 1;
        for o in outcomes {
            if let Err(e) = o.result {
                if bulk {
                    app.out
                        .warn(&format!("key '{}' ({}): {e:#}", o.rec.name, o.rec.id));
                }
                failures.push(e.context(format!(
                    "key '{}' ({}) was not revoked (`keyctl revoke {} --local-only` revokes it here only)",
                    o.rec.name, o.rec.id, o.rec.id
                )));
                continue;
            }
            if o.revoked.is_empty() {
                unreached.push(o.rec.id.clone());
            }
            // Still on another remote (revoke --remote R): stays usable locally.
            let apply = |k: &mut KeyRecord| {
                k.remotes
                    .retain(|l| !o.revoked.iter().any(|r| r.remote == l.remote));
                let local = k.remotes.is_empty() || req.local_only;
                if local && k.revoked_at.is_none() {
                    k.revoked_at = Some(now);
                }
                local
            };
            if o.rec.store == StoreKind::Vault {
                // A team key's record lives in OpenBao/Vault: every machine sees the
                // revocation there (check-and-set against concurrent writers).
                let mut local = false;
                match crate::flow::catalog::update(app, StoreKind::Vault, &o.rec.id, |k| {
                    local = apply(k);
                }) {
                    Ok(k) => done.push((k, local)),
                    Err(e) => failures.push(e.context(format!(
                        "key {} was taken off its remotes but not marked revoked in the team store; run the same revoke again",
                        o.rec.id
                    ))),
                }
                continue;
            }
            let Some(k) = reg.get_mut(&o.rec.id) else {
                continue;
            };
            let local = apply(k);
            done.push((k.clone(), local));
        }
        reg.save()?;
    }
    for (k, local) in &done {
        if *local && k.store == StoreKind::Vault {
            // The team entry holds record and secret together; deleting it would erase
            // the revocation other machines must see. The secret is refused everywhere
            // from now on (status revoked).
            app.out.note(&format!(
                "revoked key '{}' ({}) in the team store, for every machine",
                k.name, k.id
            ));
        } else if *local {
            // The entry says revoked already; a secret that will not go away is a warning.
            match app.stores.get(k.store).and_then(|s| s.delete(&k.id)) {
                Ok(_) => {}
                Err(e) => app.out.warn(&format!(
                    "key {} is revoked but its secret could not be deleted from the {} store: {e:#}",
                    k.id,
                    k.store.as_str()
                )),
            }
            let still = unreached
                .contains(&k.id)
                .then(|| crate::flow::catalog::service_of(app, k).revoke_by_hand(&k.id))
                .flatten();
            match still {
                // Never "revoked" alone: the key works in its service until deleted there.
                Some(steps) => app.out.warn(&format!(
                    "key '{}' ({}) is revoked here only (its secret deleted from this machine); {steps}",
                    k.name, k.id
                )),
                None => app
                    .out
                    .note(&format!("revoked key '{}' ({})", k.name, k.id)),
            }
        } else {
            app.out.note(&format!(
                "key '{}' ({}) was taken off remote {}; it stays active locally (still on {})",
                k.name,
                k.id,
                req.remote.as_deref().unwrap_or("-"),
                k.remotes
                    .iter()
                    .map(|l| l.remote.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let result = match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        n => {
            let first = failures.remove(0);
            Err(first.context(format!("{n} keys were not revoked; the first")))
        }
    };
    let done = done
        .into_iter()
        .map(|(rec, revoked)| Done { rec, revoked })
        .collect();
    Ok(Some(Report { done, result }))
}

fn targets(app: &App, req: &RevokeRequest) -> anyhow::Result<Vec<KeyRecord>> {
    let reg = crate::flow::catalog::load(app)?;
    let now = OffsetDateTime::now_utc();
    let mut out: Vec<KeyRecord> = Vec::new();
    for key in &req.keys {
        let k = reg.resolve(key)?;
        if k.revoked_at.is_some() {
            app.out
                .note(&format!("key '{}' ({}) is already revoked", k.name, k.id));
            continue;
        }
        if !out.iter().any(|o| o.id == k.id) {
            out.push(k.clone());
        }
    }
    if req.all_expired {
        for k in reg.keys() {
            if k.status(now, app.warn_window) == Status::Expired
                && !out.iter().any(|o| o.id == k.id)
            {
                out.push(k.clone());
            }
        }
    }
    if let Some(r) = &req.remote {
        for k in &out {
            if !k.remotes.iter().any(|l| &l.remote == r) && !req.all_expired {
                return Err(Error::not_found(format!(
                    "key '{}' ({}) was not pushed to remote {r}",
                    k.name, k.id
                ))
                .into());
            }
        }
    }
    Ok(out)
}

/// Asks the remotes, `jobs` requests at a time; a progress bar on a terminal.
fn revoke_remotely(
    app: &App,
    req: &RevokeRequest,
    targets: Vec<KeyRecord>,
) -> anyhow::Result<Vec<Outcome>> {
    let total = targets.len();
    let needed: Vec<String> = if req.local_only {
        Vec::new()
    } else {
        let mut v: Vec<String> = targets
            .iter()
            .flat_map(|k| k.remotes.iter().map(|l| l.remote.clone()))
            .filter(|r| req.remote.as_ref().is_none_or(|want| want == r))
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let mut remotes: BTreeMap<String, anyhow::Result<Box<dyn Remote + '_>>> = BTreeMap::new();
    for r in needed {
        let opened = app.remote(&r);
        remotes.insert(r, opened);
    }
    let bar = app.out.progress(total, "revoking");
    let queue = Mutex::new(targets.into_iter());
    let results = Mutex::new(Vec::with_capacity(total));
    let workers = req.jobs.min(total).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let Some(rec) = queue.lock().expect("queue").next() else {
                        break;
                    };
                    let o = revoke_one(app, req, &remotes, rec);
                    if let Some(b) = &bar {
                        b.inc();
                    }
                    results.lock().expect("results").push(o);
                }
            });
        }
    });
    drop(bar);
    Ok(results.into_inner().expect("results"))
}

fn revoke_one(
    app: &App,
    req: &RevokeRequest,
    remotes: &BTreeMap<String, anyhow::Result<Box<dyn Remote + '_>>>,
    rec: KeyRecord,
) -> Outcome {
    let mut revoked = Vec::new();
    if !req.local_only {
        for l in rec
            .remotes
            .iter()
            .filter(|l| req.remote.as_ref().is_none_or(|r| r == &l.remote))
        {
            let r = match remotes.get(&l.remote) {
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    return Outcome {
                        result: Err(anyhow::anyhow!("remote {}: {e:#}", l.remote)),
                        rec,
                        revoked,
                    };
                }
                None => continue,
            };
            let l = match learn_id(app, r.as_ref(), l, &rec) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    revoked.push(l.clone());
                    continue;
                }
                Err(e) => {
                    return Outcome {
                        result: Err(e),
                        rec,
                        revoked,
                    };
                }
            };
            let l = &l;
            match r.revoke(l) {
                Ok(true) => revoked.push(l.clone()),
                Ok(false) => {
                    app.out.note(&format!(
                        "key {} was already gone from remote {}",
                        rec.id, l.remote
                    ));
                    revoked.push(l.clone());
                }
                Err(e) => {
                    return Outcome {
                        result: Err(e),
                        rec,
                        revoked,
                    };
                }
            }
        }
    } else {
        revoked = rec.remotes.clone();
    }
    Outcome {
        rec,
        revoked,
        result: Ok(()),
    }
}

/// Looks up, before the confirmation, the remote IDs that were unknown when recorded (a
/// Soda runner key's runner): found ones are filled in; a key whose runner is not there is
/// refused now (the remote's own message says what to do); a rotated key's is warned about
/// (see [`learn_id`]).
fn learn_ids(
    app: &App,
    req: &RevokeRequest,
    mut targets: Vec<KeyRecord>,
) -> anyhow::Result<Vec<KeyRecord>> {
    if req.local_only {
        return Ok(targets);
    }
    for rec in &mut targets {
        let name = rec.name.clone();
        let superseded = rec.is_superseded();
        for l in rec
            .remotes
            .iter_mut()
            .filter(|l| l.known_id().is_none())
            .filter(|l| req.remote.as_ref().is_none_or(|r| r == &l.remote))
        {
            if superseded {
                app.out.warn(&format!(
                    "key {} was rotated and its runner was never matched on remote {}: if a runner still uses it, delete that runner in Soda Cloud (Runners)",
                    rec.id, l.remote
                ));
                continue;
            }
            let r = app.remote(&l.remote)?;
            match r.find_id(l, &name)? {
                Some(id) => l.remote_id = id,
                None => {
                    return Err(Error::not_found(format!(
                        "key '{name}' ({}) was not revoked: remote {} shows nothing for it yet (a Soda runner appears once deployed with the key, under its name), so it cannot be deleted there; delete the runner in Soda Cloud (Runners) if there is one, then `keyctl revoke {} --local-only` revokes the key here",
                        rec.id, l.remote, rec.id
                    ))
                    .into());
                }
            }
        }
    }
    Ok(targets)
}

/// A link whose remote ID was unknown when it was recorded (a Soda runner key: the runner
/// appears only once deployed) gets it from the remote, by the key's name. A rotated
/// key's name belongs to its successor now, so its runner is never looked up by name:
/// it is left to Soda Cloud's UI and the key is revoked here (Ok(None), with a warning).
fn learn_id(
    app: &App,
    r: &dyn Remote,
    l: &RemoteLink,
    rec: &KeyRecord,
) -> anyhow::Result<Option<RemoteLink>> {
    if l.known_id().is_some() {
        return Ok(Some(l.clone()));
    }
    if rec.is_superseded() {
        // Warned about before the confirmation (`learn_ids`).
        return Ok(None);
    }
    let mut known = l.clone();
    if let Some(id) = r.find_id(l, &rec.name)? {
        app.out.debug(&format!(
            "remote {}: key {} belongs to runner {id}",
            l.remote, rec.id
        ));
        known.remote_id = id;
    }
    Ok(Some(known))
}

/// What the confirmation says will happen: which keys, which remotes are called, and
/// that the secrets go.
fn confirmation(req: &RevokeRequest, targets: &[KeyRecord]) -> String {
    let mut remotes: Vec<&str> = if req.local_only {
        Vec::new()
    } else {
        targets
            .iter()
            .flat_map(|k| k.remotes.iter().map(|l| l.remote.as_str()))
            .filter(|r| req.remote.as_deref().is_none_or(|want| want == *r))
            .collect()
    };
    remotes.sort_unstable();
    remotes.dedup();
    let on = match remotes.as_slice() {
        [] => "here (no remote is called)".to_string(),
        [one] => format!("on remote {one}, then here"),
        many => format!("on remotes {}, then here", many.join(", ")),
    };
    let team = targets.iter().any(|k| k.store == StoreKind::Vault);
    let whose = if team { ", for every machine" } else { "" };
    match targets {
        [one] => format!(
            "revoke key '{}' ({}) {on}, and delete its secret{whose}",
            one.name, one.id
        ),
        many => {
            const SHOWN: usize = 10;
            let mut names: Vec<String> = many
                .iter()
                .take(SHOWN)
                .map(|k| format!("'{}' ({})", k.name, k.id))
                .collect();
            if many.len() > SHOWN {
                names.push(format!("and {} more", many.len() - SHOWN));
            }
            format!(
                "revoke {} keys {on}, and delete their secrets{whose}: {}",
                many.len(),
                names.join(", ")
            )
        }
    }
}
