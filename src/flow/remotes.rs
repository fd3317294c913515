//! The remotes' entries in config.yaml and their credentials in the secret store
//! (`keyctl remote add|remove|test`, `keyctl list --remote`). `add` logs in before it saves
//! (unless told not to), so a typo in a URL or password is found now, not at the first
//! push; a failed check or save takes the stored credential out again.

use secrecy::SecretString;
use serde::Serialize;

use crate::app::App;
use crate::error::Error;
use crate::output::quoted;
use crate::registry::{KeyRecord, Registry};
use crate::remote::{self, RemoteConfig, RemoteCred};
use crate::store::StoreKind;

/// A remote to add: its configuration (never a secret) and its credential.
pub(crate) struct AddRemote {
    pub name: String,
    pub config: RemoteConfig,
    /// The password, application-credential secret, token or key secret it logs in with.
    pub secret: Option<SecretString>,
    /// Log in before saving (no `--no-verify`).
    pub verify: bool,
    /// Replace a remote of the same name (`--force`).
    pub force: bool,
}

/// A name `add` takes: well formed, and free unless `force` (checked again by `add`; the
/// command line asks first, before anyone types a password).
pub(crate) fn check_name(app: &App, name: &str, force: bool) -> anyhow::Result<()> {
    remote::validate_name(name)?;
    if app.remotes.contains_key(name) && !force {
        return Err(Error::conflict(format!(
            "a remote named {} already exists; pass --force to replace it",
            quoted(name)
        ))
        .into());
    }
    Ok(())
}

/// Stores the credential, checks the login, and saves the remote; returns the store the
/// credential went to and what the remote's login cannot do, if anything.
pub(crate) fn add(app: &App, req: AddRemote) -> anyhow::Result<(StoreKind, Option<String>)> {
    let AddRemote {
        name,
        mut config,
        secret,
        verify,
        force,
    } = req;
    check_name(app, &name, force)?;
    let slot = remote::credential_slot(&name);
    let label = format!("keyctl credential of remote {name}");
    if let Some(secret) = &secret {
        config.secret_store = app.stores.put_new(&slot, &label, secret)?;
    }
    let store = config.secret_store;
    // A token cached for a remote this one replaces (--force) belongs to someone else.
    if let Ok(s) = app.stores.get(store) {
        let _ = s.delete(&remote::token_slot(&name));
    }
    let undo = || {
        if let Ok(s) = app.stores.get(store) {
            let _ = s.delete(&slot);
            let _ = s.delete(&remote::token_slot(&name));
        }
    };
    let mut limits = None;
    if verify {
        let checked = app.remote_from(&name, config.clone()).and_then(|r| {
            r.test()?;
            Ok(r.limits().unwrap_or_else(|e| {
                app.out.debug(&format!(
                    "could not check what remote {name}'s login may do: {e:#}"
                ));
                None
            }))
        });
        match checked {
            Err(e) => {
                undo();
                return Err(e.context(format!(
                    "remote {name} was not saved (pass --no-verify to save it anyway)"
                )));
            }
            Ok(l) => limits = l,
        }
    }
    let value = serde_yaml_ng::to_value(&config)?;
    let saved = remote::edit_config(&app.paths.config_file, |m| {
        m.insert(name.clone(), value);
        Ok(())
    });
    if let Err(e) = saved {
        undo();
        return Err(e);
    }
    Ok((store, limits))
}

/// Logs in to remote `name` afresh (no cached token) and says as whom.
pub(crate) fn test(app: &App, name: &str) -> anyhow::Result<remote::Identity> {
    app.remote(name)?.test()
}

/// Forgets remote `name` and its stored credential, after asking (keys on it stay there).
pub(crate) fn remove(app: &App, name: &str, assume_yes: bool) -> anyhow::Result<()> {
    let cfg = app.remotes.get(name).ok_or_else(|| {
        Error::not_found(format!(
            "no remote named {} (see `keyctl remote list`)",
            quoted(name)
        ))
    })?;
    app.confirm(
        assume_yes,
        &format!("forget remote '{name}' and its stored credential (keys on it stay there)"),
    )?;
    remote::edit_config(&app.paths.config_file, |m| {
        m.remove(name);
        Ok(())
    })?;
    let st = app.stores.get(cfg.secret_store)?;
    st.delete(&remote::credential_slot(name))?;
    st.delete(&remote::token_slot(name))?;
    app.out.note(&format!("remote {name} removed"));
    Ok(())
}

/// One line of `keyctl list --remote R`.
#[derive(Serialize)]
pub(crate) struct Compared {
    pub id: String,
    pub name: Option<String>,
    /// `both`, `local` (only here) or `remote` (only there).
    #[serde(rename = "where")]
    pub place: &'static str,
    pub remote_id: Option<String>,
    pub pushed: bool,
}

/// The remote's credentials side by side with the local keys, matched by key ID (=
/// access key): on both, only local, or only on the remote.
pub(crate) fn compare(app: &App, name: &str) -> anyhow::Result<Vec<Compared>> {
    let creds = app.remote(name)?.list(None)?;
    let reg = Registry::load(&app.paths.data)?;
    let mut rows: Vec<Compared> = Vec::new();
    let mut matched: Vec<&RemoteCred> = Vec::new();
    for k in reg.keys().iter().filter(|k| k.revoked_at.is_none()) {
        let link = k.links_to(name);
        // Where the remote lists no key IDs (Soda runners), a key is matched by the name
        // its runner registered under; a rotated key's name belongs to its successor.
        let on = creds.iter().find(|c| {
            if c.access.is_empty() {
                link.is_some() && !k.is_superseded() && c.name.as_deref() == Some(&k.name)
            } else {
                c.access == k.id
            }
        });
        if let (Some(c), Some(l)) = (on, link)
            && l.known_id().is_none()
        {
            learn_remote_id(app, k, name, &c.remote_id);
        }
        matched.extend(on);
        rows.push(Compared {
            id: k.id.clone(),
            name: Some(k.name.clone()),
            place: if on.is_some() { "both" } else { "local" },
            remote_id: on.map(|c| c.remote_id.clone()),
            pushed: link.is_some(),
        });
    }
    for c in &creds {
        if !matched.iter().any(|m| std::ptr::eq(*m, c)) {
            rows.push(Compared {
                id: c.access.clone(),
                name: c.name.clone(),
                place: "remote",
                remote_id: Some(c.remote_id.clone()),
                pushed: false,
            });
        }
    }
    Ok(rows)
}

/// Records a remote ID learned from the remote's listing (a Soda runner that registered
/// under the key's name), so `revoke` can use it. A failure is only a warning.
fn learn_remote_id(app: &App, k: &KeyRecord, remote: &str, id: &str) {
    let saved = crate::flow::catalog::update(app, k.store, &k.id, |rec| {
        for l in rec.remotes.iter_mut().filter(|l| l.remote == remote) {
            if l.known_id().is_none() {
                l.remote_id = id.to_string();
            }
        }
    });
    match saved {
        Ok(_) => app.out.note(&format!(
            "key '{}' ({}) belongs to {remote}'s runner {id} (matched by name); recorded for revoke",
            k.name, k.id
        )),
        Err(e) => app.out.warn(&format!(
            "key {} belongs to runner {id} on {remote}, but that could not be recorded: {e:#}",
            k.id
        )),
    }
}
