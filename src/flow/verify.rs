//! `keyctl verify`'s work: proves that stored keys still work against the services they
//! belong to, before a rollout rather than after it, and records when each last did
//! (`last_verified`, which `gc` wants of a rotation's successor before it revokes the old
//! key). Each remote type knows its own proof (`Remote::verify_key`): for a Soda Cloud key,
//! Soda Core's own login at the address the key's block names; a token exchange; or a
//! listing that shows the key.

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::App;
use crate::error::{Error, usage};
use crate::registry::KeyRecord;

/// Which keys to check, and where.
pub(crate) struct VerifyRequest {
    pub key: Option<String>,
    /// Every usable key.
    pub all: bool,
    /// Check on this remote only.
    pub remote: Option<String>,
}

/// What one check found.
#[derive(Serialize)]
pub(crate) struct Checked {
    pub id: String,
    pub name: String,
    pub remote: String,
    pub works: bool,
    pub detail: String,
}

/// Every check's outcome, and the failures (the first decides the exit code).
pub(crate) struct Verified {
    pub results: Vec<Checked>,
    pub failures: Vec<anyhow::Error>,
}

/// Checks the keys `a` names on their services. A key every check of which worked gets
/// `last_verified` set to now in its record.
pub(crate) fn verify(app: &App, a: &VerifyRequest) -> anyhow::Result<Verified> {
    let now = OffsetDateTime::now_utc();
    let targets: Vec<KeyRecord> = match (&a.key, a.all) {
        (Some(key), false) => {
            let k = crate::flow::catalog::load_for(app, key)?
                .resolve(key)?
                .clone();
            let status = k.status(now, app.warn_window);
            if !status.is_usable() {
                return Err(Error::inactive(format!(
                    "key '{}' ({}) is {}; there is nothing to verify",
                    k.name,
                    k.id,
                    status.as_str()
                ))
                .into());
            }
            vec![k]
        }
        (None, true) => crate::flow::catalog::load(app)?
            .keys()
            .iter()
            .filter(|k| k.status(now, app.warn_window).is_usable())
            .cloned()
            .collect(),
        _ => return Err(usage("verify needs KEY or --all")),
    };
    let mut results: Vec<Checked> = Vec::new();
    let mut failures: Vec<anyhow::Error> = Vec::new();
    let bar = app.out.progress(targets.len(), "verifying");
    for k in &targets {
        if let Some(b) = &bar {
            b.inc();
        }
        let remotes = remotes_of(app, k, a.remote.as_deref());
        // A Soda Cloud key proves itself with Soda Core's own login: no remote needed.
        if remotes.is_empty()
            && let Some(at) = crate::flow::catalog::service_of(app, k).soda()
        {
            let secret = app.stores.get(k.store)?.get(&k.id)?;
            let outcome =
                crate::remote::soda::login_as(&app.out, "Soda Cloud", at, None, &k.id, &secret);
            record(
                app,
                k,
                "-".into(),
                outcome,
                a.all,
                &mut results,
                &mut failures,
            );
            continue;
        }
        if remotes.is_empty() {
            let msg = format!(
                "key '{}' ({}) is registered with no service, so nothing can prove it works; `--remote R` names one",
                k.name, k.id
            );
            if a.all {
                app.out.note(&msg);
                continue;
            }
            return Err(usage(msg));
        }
        let bulk = a.all || remotes.len() > 1;
        check(app, k, remotes, bulk, &mut results, &mut failures)?;
    }
    stamp(app, &targets, &results, now)?;
    Ok(Verified { results, failures })
}

/// Records `last_verified` on every key whose checks all worked.
fn stamp(
    app: &App,
    keys: &[KeyRecord],
    results: &[Checked],
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    for k in keys {
        let mine = || results.iter().filter(|r| r.id == k.id);
        if mine().next().is_some() && mine().all(|r| r.works) {
            super::catalog::update(app, k.store, &k.id, |r| r.last_verified = Some(now))?;
        }
    }
    Ok(())
}

/// Checks one key on `remotes`, collecting what each said.
fn check(
    app: &App,
    k: &KeyRecord,
    remotes: Vec<String>,
    bulk: bool,
    results: &mut Vec<Checked>,
    failures: &mut Vec<anyhow::Error>,
) -> anyhow::Result<()> {
    let secret = app.stores.get(k.store)?.get(&k.id)?;
    let service = crate::flow::catalog::service_of(app, k);
    for name in remotes {
        let user = k.links_to(&name).and_then(|l| l.user_id.clone());
        let outcome = app
            .remote(&name)
            .and_then(|r| r.verify_key(&service, &k.id, &secret, user.as_deref()));
        record(app, k, name, outcome, bulk, results, failures);
    }
    Ok(())
}

/// Says what one check found (`remote` "-": the key's own service, with no remote). A
/// failure is said once: as a warning when other checks follow (`bulk`), the first one
/// again as the error at the end; else only as the error.
fn record(
    app: &App,
    k: &KeyRecord,
    remote: String,
    outcome: anyhow::Result<String>,
    bulk: bool,
    results: &mut Vec<Checked>,
    failures: &mut Vec<anyhow::Error>,
) {
    let on = if remote == "-" {
        "in its service".to_string()
    } else {
        format!("on remote {remote}")
    };
    let (works, detail) = match outcome {
        Ok(how) => {
            app.out
                .note(&format!("key '{}' ({}) works {on}: {how}", k.name, k.id));
            (true, how)
        }
        Err(e) => {
            let detail = format!("{e:#}");
            // Unreachable says nothing about the key: it could not be checked.
            let verdict =
                if crate::error::kind_of(&e) == Some(crate::error::Kind::RemoteUnreachable) {
                    "could not be verified"
                } else {
                    "does not work"
                };
            if bulk {
                app.out.warn(&format!(
                    "key '{}' ({}) {verdict} {on}: {detail}",
                    k.name, k.id
                ));
            }
            failures.push(e.context(format!("key '{}' ({}) {verdict} {on}", k.name, k.id)));
            (false, detail)
        }
    };
    results.push(Checked {
        id: k.id.clone(),
        name: k.name.clone(),
        remote,
        works,
        detail,
    });
}

/// The remotes a key is checked on: `--remote R`; else every remote it was pushed to;
/// else, for a Soda Cloud key, the one Soda remote (none: the key logs in by itself);
/// else `default_remote:` or the only remote configured.
fn remotes_of(app: &App, k: &KeyRecord, only: Option<&str>) -> Vec<String> {
    if let Some(r) = only {
        return vec![r.to_string()];
    }
    if !k.remotes.is_empty() {
        return k.remotes.iter().map(|l| l.remote.clone()).collect();
    }
    // A Soda Cloud key is checked through the one Soda remote (for its CA and timeouts),
    // or by itself; never on a remote of another service.
    if crate::flow::catalog::service_of(app, k).soda().is_some() {
        return crate::flow::push::only_soda_remote(app)
            .into_iter()
            .collect();
    }
    app.pick_remote(None, "verify").ok().into_iter().collect()
}
