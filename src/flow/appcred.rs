//! Keystone application credentials as keyctl keys: Keystone makes the ID and the secret
//! (shown once), keyctl stores the secret and records the key with its service
//! ([`Service::KeystoneAppCredential`]: auth URL, user, project, domains) and a link to
//! the remote as `application-credential:ID`, so `revoke`, `verify` and `list --remote`
//! treat it as what it is. [`create`] and the link are what a later rotation reuses:
//! create the successor, then revoke the old one through its link.

use std::path::PathBuf;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::keys::{new_key_meta, store_new_key};
use crate::app::App;
use crate::error::usage;
use crate::key::{Format, Kind};
use crate::output::quoted;
use crate::registry::{KeyRecord, RemoteLink};
use crate::remote::RemoteType;
use crate::remote::keystone::{Keystone, app_credential_link, appcred::NewAppCredential};
use crate::service::Service;

/// What `create --app-credential` was asked for.
pub(crate) struct AppCredRequest {
    pub remote: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `90d`, a date, `never`... ([`crate::expiry::parse_expires`]).
    pub expires: String,
    pub roles: Vec<String>,
    pub unrestricted: bool,
    pub access_rules: Option<PathBuf>,
}

/// A created application credential: its record (stored) and its secret (shown once).
pub(crate) struct AppCredCreated {
    pub rec: KeyRecord,
    pub secret: SecretString,
}

/// The Keystone remote `name`, or a usage error saying why it is not one.
pub(crate) fn keystone<'a>(app: &'a App, name: &str) -> anyhow::Result<Keystone<'a>> {
    let cfg = app.remotes.get(name).ok_or_else(|| {
        crate::error::Error::not_found(format!(
            "no remote named {} (see `keyctl remote list`)",
            quoted(name)
        ))
    })?;
    if cfg.kind != RemoteType::Keystone {
        return Err(usage(format!(
            "--app-credential: remote {} is a {} remote; application credentials are Keystone's",
            quoted(name),
            cfg.kind.as_str()
        )));
    }
    Keystone::new(app.deps(), name, cfg.clone())
}

/// Reads `--access-rules FILE`: a JSON or YAML list of `{service, method, path}`.
fn access_rules(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let shown = quoted(&path.display().to_string());
    let bytes = std::fs::read(path).map_err(|e| usage(format!("--access-rules {shown}: {e}")))?;
    let v: serde_json::Value = serde_yaml_ng::from_slice(&bytes)
        .map_err(|e| usage(format!("--access-rules {shown} is not JSON or YAML: {e}")))?;
    let ok = v.as_array().is_some_and(|rules| {
        !rules.is_empty()
            && rules.iter().all(|r| {
                r.get("service").is_some_and(|s| s.is_string())
                    && r.get("method").is_some_and(|s| s.is_string())
                    && r.get("path").is_some_and(|s| s.is_string())
            })
    });
    if !ok {
        return Err(usage(format!(
            "--access-rules {shown}: write a non-empty list of rules, each with service, method and path (e.g. [{{service: compute, method: GET, path: /v2.1/servers}}])"
        )));
    }
    Ok(v)
}

/// Has Keystone create an application credential and stores it as a key. If storing
/// fails, the credential is deleted again on Keystone, so nothing is left half made.
pub(crate) fn create(app: &App, req: AppCredRequest) -> anyhow::Result<AppCredCreated> {
    let ks = keystone(app, &req.remote)?;
    if let Some(n) = &req.name {
        crate::key::validate_name(n)?;
        super::create::name_free(app, n, None)?;
    }
    let now = OffsetDateTime::now_utc();
    let meta = new_key_meta(req.description, &req.expires, req.roles.clone(), now)?;
    let rules = req.access_rules.as_deref().map(access_rules).transpose()?;
    let name = match req.name {
        Some(n) => n,
        None => super::create::unused_name(app, Kind::Api)?,
    };
    let made = ks.create_app_credential(&NewAppCredential {
        name: name.clone(),
        description: meta.description.clone(),
        expires_at: meta.expires_at,
        roles: req.roles,
        unrestricted: req.unrestricted,
        access_rules: rules,
    })?;
    let mut scope = ks.scope();
    scope.user_id = Some(made.user_id.clone());
    scope.project_id = made.project_id.clone().or(scope.project_id);
    let rec = KeyRecord {
        remotes: vec![RemoteLink {
            remote: req.remote.clone(),
            remote_id: app_credential_link(&made.id),
            user_id: Some(made.user_id.clone()),
            pushed_at: now,
        }],
        scopes: made.roles.clone(),
        service: Some(Service::KeystoneAppCredential(scope)),
        ..meta.record(made.id.clone(), name, Kind::Api, Format::Standard, now)
    };
    match store_new_key(app, rec, &made.secret) {
        Ok(rec) => Ok(AppCredCreated {
            rec,
            secret: made.secret,
        }),
        Err(e) => {
            let undone = ks.delete_app_credential(&made.user_id, &made.id);
            let e = e.context(match undone {
                Ok(_) => format!(
                    "application credential {} was created on remote {} but could not be stored, so it was deleted again",
                    made.id, req.remote
                ),
                Err(d) => format!(
                    "application credential {} was created on remote {} but could not be stored, nor deleted again ({d:#}): delete it in Horizon or with `openstack application credential delete {}`",
                    made.id, req.remote, made.id
                ),
            });
            Err(e)
        }
    }
}

/// `rotate` mints a local successor and pushes it as an EC2 credential, which is not what
/// an application credential needs (Keystone makes the successor, under a new name): it
/// is refused until rotation learns that, with the steps that do it by hand.
pub(crate) fn refuse_rotate(app: &App, key: &str) -> anyhow::Result<()> {
    let reg = super::catalog::load_for(app, key)?;
    let Ok(k) = reg.resolve(key) else {
        return Ok(());
    };
    if let Some(Service::KeystoneAppCredential(_)) = &k.service {
        let remote = k.remotes.first().map_or("R", |l| l.remote.as_str());
        return Err(usage(format!(
            "key '{}' is a Keystone application credential; rotate does not replace those yet: `keyctl create --remote {remote} --app-credential --name NEW` makes its successor, and `keyctl revoke {}` deletes it once nothing uses it",
            k.name, k.name
        )));
    }
    Ok(())
}
