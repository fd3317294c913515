//! `keyctl verify KEY|--all [--remote R]`: proves that stored keys still work against the
//! services they belong to, before a rollout rather than after it. Each remote type knows
//! its own proof (`Remote::verify_key`): for a Soda Cloud key, Soda Core's own login at the
//! address the key's block names; a token exchange; or a listing that shows the key. Exit 0 when every key
//! works; a refusal exits 7 and an unreachable service 6, as everywhere else.

use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::VerifyArgs;
use crate::context::Ctx;
use crate::error::{Error, usage};
use crate::registry::KeyRecord;

#[derive(Serialize)]
struct Checked {
    id: String,
    name: String,
    remote: String,
    works: bool,
    detail: String,
}

pub(crate) fn run(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let targets: Vec<KeyRecord> = match (&a.key, a.all) {
        (Some(key), false) => {
            let k = crate::flow::catalog::load_for(ctx, key)?
                .resolve(key)?
                .clone();
            let status = k.status(now, ctx.warn_window);
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
        (None, true) => crate::flow::catalog::load(ctx)?
            .keys()
            .iter()
            .filter(|k| k.status(now, ctx.warn_window).is_usable())
            .cloned()
            .collect(),
        _ => return Err(usage("verify needs KEY or --all")),
    };
    let mut results: Vec<Checked> = Vec::new();
    let mut failures: Vec<anyhow::Error> = Vec::new();
    let bar = ctx.out.progress(targets.len(), "verifying");
    for k in &targets {
        if let Some(b) = &bar {
            b.inc();
        }
        let remotes = remotes_of(ctx, k, a.remote.as_deref());
        // A Soda Cloud key proves itself with Soda Core's own login: no remote needed.
        if remotes.is_empty()
            && let Some(at) = crate::flow::catalog::service_of(ctx, k).soda()
        {
            let secret = ctx.stores.get(k.store)?.get(&k.id)?;
            let outcome =
                crate::remote::soda::login_as(&ctx.out, "Soda Cloud", at, None, &k.id, &secret);
            record(
                ctx,
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
                ctx.out.note(&msg);
                continue;
            }
            return Err(usage(msg));
        }
        let bulk = a.all || remotes.len() > 1;
        check(ctx, k, remotes, bulk, &mut results, &mut failures)?;
    }
    if ctx.out.json {
        crate::output::print_json(&ctx.out, &results)?;
    }
    match failures.len() {
        0 => Ok(()),
        1 => Err(failures.remove(0)),
        n => Err(failures
            .remove(0)
            .context(format!("{n} verifications failed; the first"))),
    }
}

/// Checks one key on `remotes`, collecting what each said.
fn check(
    ctx: &Ctx,
    k: &KeyRecord,
    remotes: Vec<String>,
    bulk: bool,
    results: &mut Vec<Checked>,
    failures: &mut Vec<anyhow::Error>,
) -> anyhow::Result<()> {
    let secret = ctx.stores.get(k.store)?.get(&k.id)?;
    let service = crate::flow::catalog::service_of(ctx, k);
    for name in remotes {
        let user = k.links_to(&name).and_then(|l| l.user_id.clone());
        let outcome = ctx
            .remote(&name)
            .and_then(|r| r.verify_key(&service, &k.id, &secret, user.as_deref()));
        record(ctx, k, name, outcome, bulk, results, failures);
    }
    Ok(())
}

/// Says what one check found (`remote` "-": the key's own service, with no remote). A
/// failure is said once: as a warning when other checks follow (`bulk`), the first one
/// again as the error at the end; else only as the error.
fn record(
    ctx: &Ctx,
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
            ctx.out
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
                ctx.out.warn(&format!(
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
fn remotes_of(ctx: &Ctx, k: &KeyRecord, only: Option<&str>) -> Vec<String> {
    if let Some(r) = only {
        return vec![r.to_string()];
    }
    if !k.remotes.is_empty() {
        return k.remotes.iter().map(|l| l.remote.clone()).collect();
    }
    // A Soda Cloud key is checked through the one Soda remote (for its CA and timeouts),
    // or by itself; never on a remote of another service.
    if crate::flow::catalog::service_of(ctx, k).soda().is_some() {
        return crate::flow::push::only_soda_remote(ctx)
            .into_iter()
            .collect();
    }
    ctx.pick_remote(None, "verify").ok().into_iter().collect()
}
