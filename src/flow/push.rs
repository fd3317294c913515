//! The remote half of keys: pushing a stored key to a remote (the registry records a push
//! only after the remote confirmed it, so a failed push never leaves a key marked
//! pushed), letting a remote mint the pair (`--server-side`, and always Soda Cloud), and
//! the last resort for a server-minted secret that could not be stored.

use time::OffsetDateTime;

use crate::app::App;
use crate::error::Error;
use crate::key::{self, Format};
use crate::registry::{KeyRecord, RemoteLink};
use crate::service::{Service, SodaEndpoint};

/// Pushes one stored key and records the link.
pub(crate) fn push_key(
    app: &App,
    rec: &KeyRecord,
    remote_name: &str,
    for_user: Option<&str>,
) -> anyhow::Result<RemoteLink> {
    let r = app.remote(remote_name)?;
    let secret = app.stores.get(rec.store)?.get(&rec.id)?;
    let p = r.push(&rec.id, &secret, for_user)?;
    drop(secret);
    let service = r.service();
    let link = RemoteLink {
        remote: remote_name.to_string(),
        remote_id: p.remote_id,
        user_id: p.user_id,
        pushed_at: OffsetDateTime::now_utc(),
    };
    record_link(app, rec, link.clone(), service).map_err(|e| {
        e.context(format!(
            "key {} is on remote {remote_name} but the registry could not say so; `keyctl push {} --remote {remote_name}` again is safe",
            rec.id, rec.id
        ))
    })?;
    app.out.note(&if p.already {
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

/// Adds (or refreshes) a key's link to a remote where its record lives; a key that
/// belonged to no service now belongs to the remote's.
fn record_link(
    app: &App,
    rec: &KeyRecord,
    link: RemoteLink,
    service: Service,
) -> anyhow::Result<()> {
    crate::flow::catalog::update(app, rec.store, &rec.id, |k| {
        k.remotes.retain(|l| l.remote != link.remote);
        k.remotes.push(link.clone());
        if k.service.as_ref().is_none_or(Service::is_local) {
            k.service = Some(service.clone());
        }
    })?;
    Ok(())
}

/// What `create` was told about remotes (`--remote`, `--server-side`, `--for-user`).
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteChoice {
    pub remote: Option<String>,
    pub server_side: bool,
    pub for_user: Option<String>,
}

/// The remote half of `create`: which remote, and who mints the pair.
pub(crate) struct CreateRemote {
    pub remote: Option<String>,
    /// The remote mints the pair (`--server-side`, and always for Soda Cloud).
    pub server_side: bool,
    for_user: Option<String>,
    /// The service of the remote's keys (Soda Cloud at the remote's host, port, scheme).
    pub service: Option<Service>,
}

impl CreateRemote {
    /// `--remote R` as given; for a runner key with no `--remote`, the one Soda remote
    /// when exactly one is configured (several: refused, naming them). A remote that
    /// mints its own keys implies `--server-side`, and an API key Soda Cloud mints only in
    /// its UI is refused with the way forward.
    pub(crate) fn resolve(app: &App, a: &RemoteChoice, kind: key::Kind) -> anyhow::Result<Self> {
        let remote = match &a.remote {
            Some(r) => Some(r.clone()),
            None if kind == key::Kind::Runner => {
                let soda = soda_remotes(app);
                if soda.len() > 1 {
                    return Err(crate::error::usage(format!(
                        "{} Soda remotes are configured ({}): say which one mints the runner key with --remote NAME",
                        soda.len(),
                        soda.join(", ")
                    )));
                }
                soda.into_iter().next()
            }
            None => None,
        };
        let (service, mints_own) = match &remote {
            Some(r) => {
                if !app.remotes.contains_key(r) {
                    return Err(Error::not_found(format!(
                        "no remote named {} (see `keyctl remote list`)",
                        crate::output::quoted(r)
                    ))
                    .into());
                }
                let opened = app.remote(r)?;
                (Some(opened.service()), opened.mints_own_keys())
            }
            None => (None, false),
        };
        if mints_own
            && kind == key::Kind::Api
            && let Some(Service::SodaCloud(_)) = &service
        {
            return Err(crate::error::usage(format!(
                "Soda Cloud mints API keys only in its UI: create one there (your profile, API keys), then `keyctl import --kind api --name NAME --id KEY_ID` (secret on stdin) and `keyctl config NAME`; remote {} mints runner keys (`--kind runner`)",
                remote.as_deref().unwrap_or("")
            )));
        }
        Ok(CreateRemote {
            server_side: a.server_side || mints_own,
            service,
            remote,
            for_user: a.for_user.clone(),
        })
    }

    /// The Soda Cloud endpoint of the remote's keys, for the snippet.
    pub(crate) fn soda(&self) -> Option<&SodaEndpoint> {
        self.service.as_ref().and_then(Service::soda)
    }
}

/// The remotes that mint their own keys for Soda Cloud (as each remote says).
pub(crate) fn soda_remotes(app: &App) -> Vec<String> {
    app.remotes
        .keys()
        .filter(|name| {
            app.remote(name)
                .is_ok_and(|r| r.mints_own_keys() && r.service().soda().is_some())
        })
        .cloned()
        .collect()
}

/// The name of the only Soda remote, if exactly one is configured.
pub(crate) fn only_soda_remote(app: &App) -> Option<String> {
    let mut soda = soda_remotes(app).into_iter();
    match (soda.next(), soda.next()) {
        (Some(name), None) => Some(name),
        _ => None,
    }
}

/// `create --remote R --server-side` (and every Soda remote): the remote mints the pair.
/// Otherwise mints locally. The link is returned so the registry entry is born pushed;
/// its remote ID is empty where the remote names none (Soda Cloud).
pub(crate) fn mint_for_create(
    app: &App,
    a: &CreateRemote,
    format: Format,
    prefix: &str,
) -> anyhow::Result<(key::Minted, Option<RemoteLink>)> {
    let (Some(name), true) = (&a.remote, a.server_side) else {
        return Ok((key::mint(format, prefix), None));
    };
    let (minted, link) = server_mint(app, name, a.for_user.as_deref())?;
    Ok((minted, Some(link)))
}

/// Asks remote `name` to mint a pair (for `create` and for `rotate`'s successor). A
/// key ID keyctl cannot store is refused, with the secret shown once rather than lost.
pub(crate) fn server_mint(
    app: &App,
    name: &str,
    for_user: Option<&str>,
) -> anyhow::Result<(key::Minted, RemoteLink)> {
    let m = app.remote(name)?.mint(for_user)?;
    let link = RemoteLink {
        remote: name.to_string(),
        remote_id: m.remote_id,
        user_id: m.user_id,
        pushed_at: OffsetDateTime::now_utc(),
    };
    let minted = key::Minted {
        id: m.access,
        secret: m.secret,
    };
    if let Err(e) = key::validate_id(&minted.id) {
        rescue_secret(name, &minted);
        return Err(Error::remote_refused(format!(
            "remote {name} minted a key ID keyctl cannot store ({e:#})"
        ))
        .into());
    }
    Ok((minted, link))
}

/// The last resort for a server-minted pair that could not be stored: the service shows
/// the secret only once, so it is printed once on stderr (never lost), with a warning.
pub(crate) fn rescue_secret(remote_name: &str, m: &key::Minted) {
    use secrecy::ExposeSecret as _;
    // Printed even under -q: this is the only copy.
    eprintln!(
        "keyctl: warning: remote {remote_name} minted a key that could not be stored; it is shown this once, keep it now (then `keyctl import`):"
    );
    eprintln!(
        "  key ID: {}\n  secret: {}",
        crate::output::sanitize(&m.id),
        m.secret.expose_secret()
    );
}

/// `create --remote R` without `--server-side`: push the stored key. A failure leaves
/// the key local only, and the error says how to retry.
pub(crate) fn push_after_create(
    app: &App,
    rec: &mut KeyRecord,
    a: &CreateRemote,
) -> anyhow::Result<()> {
    let Some(name) = a.remote.as_deref().filter(|_| !a.server_side) else {
        return Ok(());
    };
    match push_key(app, rec, name, a.for_user.as_deref()) {
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
