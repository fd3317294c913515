//! OpenStack Keystone (Identity API v3) as a remote: keys become `ec2` credentials whose
//! `access` is the key ID and `secret` the secret, so a pushed key works for EC2-signed
//! requests (`POST /v3/ec2tokens`); application credentials, the key the openstack CLI and
//! SDKs use, are made, listed, checked and deleted here too (`appcred`). The remote logs
//! in as keystoneauth's v3 plugins do (`wire::auth_body`: the user's domain and the
//! project's apart, by name or ID).
//!
//! A token obtained with an application credential (or a trust) is "delegated": Keystone
//! refuses it on `/v3/credentials` and leaves EC2 credentials out of its listings, so such
//! a remote says so instead of calling pushed keys missing.
//!
//! Authenticating costs Keystone a password hash, so the project-scoped token is cached
//! in the secret store (username `token:NAME`, never config.yaml) until five minutes
//! before its `expires_at`: with a warm cache every operation is one HTTP request. A
//! cached token Keystone no longer accepts (401) is dropped and replaced once.

use std::sync::Mutex;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

pub(crate) mod appcred;
mod wire;

pub(crate) use appcred::{app_credential_link, app_credential_of};

use wire::{Blob, Credential, CredentialBody, CredentialList, IdOnly, TokenBody, ec2_signed};
pub(crate) use wire::{credential_id, identity_root};

use super::{
    Auth, Client, Identity, Pushed, Remote, RemoteConfig, RemoteCred, Reply, ServerMinted, Token,
};
use crate::error::Error;
use crate::net::urlencode;
use crate::output::quoted;
use crate::registry::RemoteLink;

const APP_CREDENTIAL_WORKS: &str =
    "Keystone issued a token for the application credential (as the openstack CLI logs in)";

/// A cached token is used until this long before Keystone says it expires.
const TOKEN_MARGIN: time::Duration = time::Duration::minutes(5);

/// A project-scoped token and whom it belongs to.
struct Session {
    token: SecretString,
    expires_at: OffsetDateTime,
    user_id: String,
    project_id: Option<String>,
    /// Obtained with an application credential or a trust (see `TokenInfo::delegated`).
    delegated: bool,
    /// Came from the cache (so a 401 may just mean it was revoked meanwhile).
    cached: bool,
}

pub(crate) struct Keystone<'a> {
    deps: super::Deps<'a>,
    name: String,
    cfg: RemoteConfig,
    client: Client,
    session: Mutex<Option<std::sync::Arc<Session>>>,
    /// The S3 endpoint from the catalog, asked once per process.
    s3_endpoint: std::sync::OnceLock<Option<String>>,
}

impl<'a> Keystone<'a> {
    pub(crate) fn new(
        deps: super::Deps<'a>,
        name: &str,
        cfg: RemoteConfig,
    ) -> anyhow::Result<Self> {
        let mut client = Client::new(deps.out, name, &cfg)?;
        client.base = identity_root(&client.base);
        Ok(Keystone {
            deps,
            name: name.to_string(),
            cfg,
            client,
            session: Mutex::new(None),
            s3_endpoint: std::sync::OnceLock::new(),
        })
    }

    /// The public S3 endpoint of this Keystone's catalog (one `GET /v3/auth/catalog`, once),
    /// for the AWS lines of an EC2 credential; None where the catalog names none or cannot
    /// be read (the lines then go without it, as before).
    fn s3_endpoint(&self) -> Option<String> {
        self.s3_endpoint
            .get_or_init(|| {
                let reply = match self.call(Method::GET, "v3/auth/catalog", None, true) {
                    Ok(r) if r.ok() => r,
                    Ok(r) => {
                        self.deps.out.debug(&format!(
                            "remote {}: no catalog (HTTP {}); EC2 keys render without an S3 endpoint",
                            self.name, r.status
                        ));
                        return None;
                    }
                    Err(e) => {
                        self.deps.out.debug(&format!(
                            "remote {}: no catalog ({e:#}); EC2 keys render without an S3 endpoint",
                            self.name
                        ));
                        return None;
                    }
                };
                let catalog: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
                wire::s3_endpoint(&catalog, self.cfg.region_name.as_deref())
            })
            .clone()
    }

    fn auth_body(&self) -> anyhow::Result<Zeroizing<String>> {
        let secret = super::credential(self.deps.stores, &self.name, &self.cfg)?;
        let body = wire::auth_body(&self.cfg, secret.expose_secret()).ok_or_else(|| {
            crate::error::usage(format!(
                "remote {}: a keystone remote authenticates with a password, an application credential or a token, not {:?}",
                self.name, self.cfg.auth
            ))
        })?;
        Ok(Zeroizing::new(body.to_string()))
    }

    /// A fresh token from Keystone, saved in the cache.
    fn authenticate(&self) -> anyhow::Result<Session> {
        let body = self.auth_body()?;
        let body: serde_json::Value = serde_json::from_str(&body)?;
        let reply = self.client.send(
            Method::POST,
            self.client.url("v3/auth/tokens")?,
            Auth::None,
            Some(&body),
            true,
        )?;
        drop(body);
        if !reply.ok() {
            return Err(self.client.failure(&reply, "authenticate"));
        }
        let token = reply
            .header("x-subject-token")
            .ok_or_else(|| {
                Error::remote_unreachable(format!(
                    "remote {} answered the login without an X-Subject-Token header",
                    self.name
                ))
            })?
            .to_string();
        let info: TokenBody = self.client.json(&reply, "authenticate")?;
        let s = Session {
            token: SecretString::from(token),
            expires_at: info.token.expires_at,
            delegated: info.token.delegated(),
            user_id: info.token.user.id,
            project_id: info.token.project.map(|p| p.id),
            cached: false,
        };
        self.save_cache(&s);
        Ok(s)
    }

    fn save_cache(&self, s: &Session) {
        let text = Zeroizing::new(
            json!({
                "token": s.token.expose_secret(),
                "expires_at": crate::expiry::rfc3339(s.expires_at),
                "user_id": s.user_id,
                "project_id": s.project_id,
                "delegated": s.delegated,
            })
            .to_string(),
        );
        let label = format!("keyctl token of remote {}", self.name);
        let r = self.deps.stores.get(self.cfg.secret_store).and_then(|st| {
            st.set(
                &super::token_slot(&self.name),
                &label,
                &SecretString::from(text.as_str().to_owned()),
            )
        });
        if let Err(e) = r {
            // Not fatal: the next command just logs in again.
            self.deps
                .out
                .debug(&format!("cannot cache the token of {}: {e:#}", self.name));
        }
    }

    fn load_cache(&self) -> Option<Session> {
        let st = self.deps.stores.get(self.cfg.secret_store).ok()?;
        let raw = st.get(&super::token_slot(&self.name)).ok()?;
        let v: serde_json::Value = serde_json::from_str(raw.expose_secret()).ok()?;
        let expires_at = OffsetDateTime::parse(
            v.get("expires_at")?.as_str()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        if expires_at - TOKEN_MARGIN <= OffsetDateTime::now_utc() {
            self.deps
                .out
                .debug(&format!("cached token of {} is about to expire", self.name));
            return None;
        }
        Some(Session {
            token: SecretString::from(v.get("token")?.as_str()?.to_owned()),
            expires_at,
            user_id: v.get("user_id")?.as_str()?.to_owned(),
            project_id: v
                .get("project_id")
                .and_then(|p| p.as_str())
                .map(str::to_owned),
            delegated: v
                .get("delegated")
                .and_then(|d| d.as_bool())
                .unwrap_or(false),
            cached: true,
        })
    }

    fn forget_cache(&self) {
        if let Ok(st) = self.deps.stores.get(self.cfg.secret_store) {
            let _ = st.delete(&super::token_slot(&self.name));
        }
    }

    fn session(&self) -> anyhow::Result<std::sync::Arc<Session>> {
        let mut slot = self.session.lock().expect("session lock");
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = match self.load_cache() {
            Some(s) => s,
            None => self.authenticate()?,
        };
        let s = std::sync::Arc::new(s);
        *slot = Some(s.clone());
        Ok(s)
    }

    /// One authenticated request; a cached token that gets a 401 is replaced once.
    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> anyhow::Result<Reply> {
        let s = self.session()?;
        let url = self.client.url(path)?;
        let reply = self.client.send(
            method.clone(),
            url.clone(),
            Auth::Header("X-Auth-Token", &s.token),
            body,
            idempotent,
        )?;
        if reply.status != 401 || !s.cached {
            return Ok(reply);
        }
        self.deps.out.debug(&format!(
            "remote {} rejected the cached token; logging in again",
            self.name
        ));
        self.forget_cache();
        let fresh = std::sync::Arc::new(self.authenticate()?);
        *self.session.lock().expect("session lock") = Some(fresh.clone());
        self.client.send(
            method,
            url,
            Auth::Header("X-Auth-Token", &fresh.token),
            body,
            idempotent,
        )
    }

    /// The scoped token with its user and project, for an http remote that sits behind
    /// this Keystone (SODA Multicloud).
    pub(crate) fn scoped_token(&self) -> anyhow::Result<(SecretString, String, Option<String>)> {
        let s = self.session()?;
        Ok((s.token.clone(), s.user_id.clone(), s.project_id.clone()))
    }

    fn project_id(&self, s: &Session) -> anyhow::Result<String> {
        s.project_id.clone().ok_or_else(|| {
            Error::remote_refused(format!(
                "the token of remote {} is not scoped to a project; ec2 credentials need one",
                self.name
            ))
            .into()
        })
    }

    /// A user ID for `--for-user`: a name looked up with the admin API, or an ID.
    fn user_id(&self, who: Option<&str>) -> anyhow::Result<String> {
        let s = self.session()?;
        let Some(who) = who else {
            return Ok(s.user_id.clone());
        };
        let path = format!("v3/users?name={}", urlencode(who));
        let reply = self.call(Method::GET, &path, None, true)?;
        if reply.ok() {
            #[derive(Deserialize)]
            struct Users {
                users: Vec<IdOnly>,
            }
            let u: Users = self.client.json(&reply, "look up a user")?;
            match u.users.as_slice() {
                [one] => return Ok(one.id.clone()),
                [] => {}
                _ => {
                    return Err(Error::conflict(format!(
                        "remote {} has more than one user named {}; pass the user ID",
                        self.name,
                        quoted(who)
                    ))
                    .into());
                }
            }
        } else if reply.status != 403 {
            return Err(self.client.failure(&reply, "look up a user"));
        }
        let reply = self.call(
            Method::GET,
            &format!("v3/users/{}", urlencode(who)),
            None,
            true,
        )?;
        match reply.status {
            200 => Ok(self
                .client
                .json::<serde_json::Value>(&reply, "look up a user")?["user"]["id"]
                .as_str()
                .unwrap_or(who)
                .to_string()),
            404 => {
                Err(
                    Error::not_found(format!("remote {} has no user {}", self.name, quoted(who)))
                        .into(),
                )
            }
            _ => Err(self.client.failure(&reply, "look up a user")),
        }
    }

    /// Whether Keystone still has credential `id` (after a revoke, to check it).
    /// A non-admin gets 403 for an ID that does not exist: its own list decides then.
    pub(crate) fn has_credential(&self, id: &str) -> anyhow::Result<bool> {
        match self.get_credential(id) {
            Ok(c) => Ok(c.is_some()),
            Err(e) if crate::error::http_status(&e) == Some(403) => {
                let s = self.session()?;
                Ok(self.list_raw(&s.user_id)?.iter().any(|c| c.id == id))
            }
            Err(e) => Err(e),
        }
    }

    fn get_credential(&self, id: &str) -> anyhow::Result<Option<Credential>> {
        let reply = self.call(Method::GET, &format!("v3/credentials/{id}"), None, true)?;
        match reply.status {
            200 => Ok(Some(
                self.client
                    .json::<CredentialBody>(&reply, "read a credential")?
                    .credential,
            )),
            404 => Ok(None),
            _ if is_delegated(&reply) => {
                Err(Error::remote_refused(self.delegated_message()).into())
            }
            _ => Err(self.client.failure(&reply, "read a credential")),
        }
    }

    fn list_raw(&self, user_id: &str) -> anyhow::Result<Vec<Credential>> {
        let path = format!("v3/credentials?user_id={}&type=ec2", urlencode(user_id));
        let reply = self.call(Method::GET, &path, None, true)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "list credentials"));
        }
        Ok(self
            .client
            .json::<CredentialList>(&reply, "list credentials")?
            .credentials)
    }
}

/// Keystone's 403 for a token obtained with an application credential on
/// `/v3/credentials` ("Delegated tokens cannot access credentials directly").
fn is_delegated(reply: &Reply) -> bool {
    reply.status == 403
        && String::from_utf8_lossy(&reply.body)
            .contains("Delegated tokens cannot access credentials")
}

impl Remote for Keystone<'_> {
    fn limits(&self) -> anyhow::Result<Option<String>> {
        Ok(self.credentials_refused()?.map(|w| {
            format!("{w}. It can still log in, serve as --auth-remote, and verify application credentials")
        }))
    }

    fn test(&self) -> anyhow::Result<Identity> {
        self.forget_cache();
        let s = std::sync::Arc::new(self.authenticate()?);
        *self.session.lock().expect("session lock") = Some(s.clone());
        Ok(Identity {
            endpoint: format!("{}v3", self.client.base),
            user_id: s.user_id.clone(),
            project_id: s.project_id.clone(),
            token_expires_at: Some(s.expires_at),
        })
    }

    fn push(
        &self,
        access: &str,
        secret: &SecretString,
        for_user: Option<&str>,
    ) -> anyhow::Result<Pushed> {
        let s = self.session()?;
        let project_id = self.project_id(&s)?;
        let user_id = self.user_id(for_user)?;
        let blob =
            Zeroizing::new(json!({"access": access, "secret": secret.expose_secret()}).to_string());
        let body = json!({"credential": {
            "type": "ec2", "user_id": user_id, "project_id": project_id, "blob": blob.as_str()
        }});
        // Safe to repeat: a second POST of the same access key is a 409, handled below.
        let reply = self.call(Method::POST, "v3/credentials", Some(&body), true)?;
        drop(body);
        let id = credential_id(access);
        match reply.status {
            200 | 201 => {
                let c: CredentialBody = self.client.json(&reply, "create a credential")?;
                Ok(Pushed {
                    remote_id: c.credential.id,
                    user_id: Some(user_id),
                    already: false,
                })
            }
            409 => {
                let existing = self.get_credential(&id)?.ok_or_else(|| {
                    Error::remote_refused(format!(
                        "remote {} says access key {access} is taken but cannot show it",
                        self.name
                    ))
                })?;
                let blob: Option<Blob> = existing
                    .blob
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok());
                let same = blob.as_ref().is_some_and(|b| {
                    b.access == access
                        && b.secret
                            .as_ref()
                            .is_some_and(|s| s.expose_secret() == secret.expose_secret())
                });
                if !same {
                    return Err(Error::remote_refused(format!(
                        "remote {} already has a credential with access key {access} and a different secret",
                        self.name
                    ))
                    .into());
                }
                Ok(Pushed {
                    remote_id: existing.id,
                    user_id: existing.user_id.or(Some(user_id)),
                    already: true,
                })
            }
            _ if is_delegated(&reply) => {
                Err(Error::remote_refused(self.delegated_message()).into())
            }
            _ => Err(self
                .client
                .failure_hiding(&reply, "create a credential", Some(secret))),
        }
    }

    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool> {
        if let Some(id) = app_credential_of(&link.remote_id) {
            let s = self.session()?;
            let user = link.user_id.as_deref().unwrap_or(&s.user_id);
            return self.delete_app_credential(user, id);
        }
        let reply = self.call(
            Method::DELETE,
            &format!("v3/credentials/{}", link.remote_id),
            None,
            true,
        )?;
        match reply.status {
            200 | 204 => Ok(true),
            404 => Ok(false),
            _ if is_delegated(&reply) => {
                Err(Error::remote_refused(self.delegated_message()).into())
            }
            // For a non-admin Keystone answers 403 for an ID that does not exist; if the
            // credential is missing from the user's own list, it is gone.
            403 => {
                let s = self.session()?;
                let mine = link.user_id.as_deref().is_none_or(|u| u == s.user_id);
                if mine
                    && !self
                        .list_raw(&s.user_id)?
                        .iter()
                        .any(|c| c.id == link.remote_id)
                {
                    return Ok(false);
                }
                Err(self.client.failure(&reply, "delete a credential"))
            }
            _ => Err(self.client.failure(&reply, "delete a credential")),
        }
    }

    fn list(&self, for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>> {
        // Keystone answers a delegated token's listing with its EC2 credentials left out:
        // an empty list would call every pushed key missing.
        if self.session()?.delegated {
            return Err(crate::error::usage(self.delegated_message()));
        }
        let user_id = self.user_id(for_user)?;
        let mut out: Vec<RemoteCred> = self
            .list_raw(&user_id)?
            .into_iter()
            .filter(|c| c.kind.as_deref().is_none_or(|k| k == "ec2"))
            .filter_map(|c| {
                let blob: Blob = serde_json::from_str(c.blob.as_deref()?).ok()?;
                Some(RemoteCred {
                    access: blob.access,
                    remote_id: c.id,
                    user_id: c.user_id,
                    name: None,
                })
            })
            .collect();
        out.extend(
            self.list_app_credentials(&user_id)?
                .into_iter()
                .map(|a| RemoteCred {
                    remote_id: app_credential_link(&a.id),
                    access: a.id,
                    user_id: Some(user_id.clone()),
                    name: Some(a.name),
                }),
        );
        Ok(out)
    }

    /// An application credential proves itself by logging in (what the openstack CLI
    /// does with it); anything else is an EC2 credential, checked the default way.
    fn verify(
        &self,
        access: &str,
        secret: &SecretString,
        user_id: Option<&str>,
    ) -> anyhow::Result<String> {
        if appcred::looks_like_id(access) {
            match self.login_app_credential(access, secret)? {
                true => return Ok(APP_CREDENTIAL_WORKS.into()),
                false if self.app_credential_known(access, user_id) => {
                    return Err(Error::remote_refused(format!(
                        "remote {} refused application credential {access} (HTTP 401): its secret is not the one Keystone has, or it expired",
                        self.name
                    ))
                    .into());
                }
                false => {}
            }
        }
        super::verify_by_token_or_list(self, access, secret, user_id).map_err(|e| {
            if appcred::looks_like_id(access) && crate::error::http_status(&e).is_none() {
                e.context(format!(
                    "Keystone accepted {access} neither as an application credential nor as an EC2 credential"
                ))
            } else {
                e
            }
        })
    }

    /// A key recorded as an application credential is checked by logging in with it and
    /// nothing else; an EC2 credential the way [`Remote::verify`] does.
    fn verify_key(
        &self,
        service: &crate::service::Service,
        access: &str,
        secret: &SecretString,
        user_id: Option<&str>,
    ) -> anyhow::Result<String> {
        match service {
            crate::service::Service::KeystoneAppCredential(_) => {
                if self.login_app_credential(access, secret)? {
                    Ok(APP_CREDENTIAL_WORKS.into())
                } else {
                    Err(Error::remote_refused(format!(
                        "remote {} refused application credential {access} (HTTP 401): it was deleted or expired, or its secret is not the one Keystone has",
                        self.name
                    ))
                    .into())
                }
            }
            _ => self.verify(access, secret, user_id),
        }
    }

    fn service(&self) -> crate::service::Service {
        let mut scope = self.scope();
        scope.s3_endpoint = self.s3_endpoint();
        crate::service::Service::KeystoneEc2(scope)
    }

    /// Keystone takes client-made EC2 pairs (answered without asking it for its catalog).
    fn mints_own_keys(&self) -> bool {
        false
    }

    fn token(&self, access: &str, secret: &SecretString) -> anyhow::Result<Token> {
        let credentials = ec2_signed(access, secret, OffsetDateTime::now_utc());
        let body = json!({ "credentials": credentials });
        // Each call mints a new token, but none is worth retrying blind either way.
        let reply = self.call(Method::POST, "v3/ec2tokens", Some(&body), false)?;
        if !reply.ok() {
            return Err(match reply.status {
                401 | 404 => Error::remote_refused(format!(
                    "remote {} did not accept key {access} (HTTP {}): is it pushed, and is its secret the one Keystone has?",
                    self.name, reply.status
                ))
                .into(),
                _ => self.client.failure(&reply, "exchange the key for a token"),
            });
        }
        let token = reply
            .header("x-subject-token")
            .ok_or_else(|| {
                Error::remote_unreachable(format!(
                    "remote {} answered without an X-Subject-Token header",
                    self.name
                ))
            })?
            .to_string();
        let info: TokenBody = self.client.json(&reply, "exchange the key for a token")?;
        Ok(Token {
            token: SecretString::from(token),
            expires_at: Some(info.token.expires_at),
        })
    }

    fn mint(&self, for_user: Option<&str>) -> anyhow::Result<ServerMinted> {
        let s = self.session()?;
        let project_id = self.project_id(&s)?;
        let user_id = self.user_id(for_user)?;
        let body = json!({ "tenant_id": project_id });
        let reply = self.call(
            Method::POST,
            &format!("v3/users/{}/credentials/OS-EC2", urlencode(&user_id)),
            Some(&body),
            false,
        )?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "mint an EC2 credential"));
        }
        #[derive(Deserialize)]
        struct Ec2 {
            access: String,
            secret: SecretString,
        }
        #[derive(Deserialize)]
        struct Ec2Body {
            credential: Ec2,
        }
        let c: Ec2Body = self.client.json(&reply, "mint an EC2 credential")?;
        Ok(ServerMinted {
            remote_id: credential_id(&c.credential.access),
            access: c.credential.access,
            secret: c.credential.secret,
            user_id: Some(user_id),
        })
    }
}
