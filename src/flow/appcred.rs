//! Keystone application credentials as keyctl keys: Keystone makes the ID and the secret
//! (shown once), keyctl stores the secret and records the key with its service
//! ([`Service::KeystoneAppCredential`]: auth URL, user, project, domains) and a link to
//! the remote as `application-credential:ID`, so `revoke`, `verify` and `list --remote`
//! treat it as what it is. [`create`] records what Keystone was asked for, so that
//! [`mint_successor`] asks for the same when the key is rotated; the old one is revoked
//! through its link.

use std::path::PathBuf;

use secrecy::SecretString;
use time::OffsetDateTime;

use super::keys::{new_key_meta, store_new_key};
use crate::app::App;
use crate::error::usage;
use crate::key::{Format, Kind};
use crate::output::quoted;
use crate::registry::{AppCredPolicy, KeyRecord, RemoteLink};
use crate::remote::RemoteType;
use crate::remote::keystone::appcred::NewAppCredential;
use crate::remote::keystone::{Keystone, app_credential_link, app_credential_of};
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
    /// `--rotate-every`.
    pub rotate_every: Option<String>,
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
    let mut meta = new_key_meta(req.description, &req.expires, req.roles.clone(), now)?;
    meta.rotate_every = super::rotate::parse_every(req.rotate_every.as_deref())?;
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
        access_rules: rules.clone(),
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
        app_credential: Some(AppCredPolicy {
            roles: made.roles.clone(),
            unrestricted: req.unrestricted,
            access_rules: rules,
        }),
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

/// The successor of application credential `old` for `rotate`: Keystone creates it for
/// the same user and project with the same roles, restriction, access rules and lifetime
/// (what [`create`] recorded in [`AppCredPolicy`]), under a new name of its own (Keystone
/// names are unique per user). Its link is born pushed. A record an older keyctl made has
/// no policy, and guessing one could widen or narrow what the credential may do: refused,
/// with the steps by hand.
pub(crate) fn mint_successor(
    app: &App,
    old: &KeyRecord,
    now: OffsetDateTime,
) -> anyhow::Result<(crate::key::Minted, RemoteLink)> {
    let link = old
        .remotes
        .iter()
        .find(|l| app_credential_of(&l.remote_id).is_some());
    let remote = link.map_or("R", |l| l.remote.as_str());
    let (Some(policy), Some(link)) = (&old.app_credential, link) else {
        return Err(usage(format!(
            "key '{}' is a Keystone application credential recorded by an older keyctl, without the roles and access rules it was created with, so rotate cannot make an equal successor: `keyctl create --remote {remote} --app-credential --name NEW [--role R]... [--unrestricted] [--access-rules FILE]` makes one, and `keyctl revoke {}` deletes the old one once nothing uses it",
            old.name, old.id
        )));
    };
    let ks = keystone(app, &link.remote)?;
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let made = ks
        .create_app_credential(&NewAppCredential {
            name: format!("{}-{stamp}", old.name),
            description: old.description.clone(),
            expires_at: old.expires_at.map(|e| now + (e - old.created_at)),
            roles: policy.roles.clone(),
            unrestricted: policy.unrestricted,
            access_rules: policy.access_rules.clone(),
        })
        .map_err(|e| {
            e.context(format!(
                "rotation failed at step 'create the successor on {}'; nothing was changed",
                link.remote
            ))
        })?;
    Ok((
        crate::key::Minted {
            id: made.id.clone(),
            secret: made.secret,
        },
        RemoteLink {
            remote: link.remote.clone(),
            remote_id: app_credential_link(&made.id),
            user_id: Some(made.user_id),
            pushed_at: now,
        },
    ))
}
