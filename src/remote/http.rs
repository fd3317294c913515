//! A JSON REST service described in config.yaml: which endpoint creates (push), mints
//! (server-side), lists, revokes and exchanges keys for tokens, with templated paths and
//! bodies and JSON pointers to the reply fields to read. Two profiles ship ready, on the
//! services' real contracts (`notes/real-contracts.md`):
//! - SODA Multicloud (sodafoundation/strato `api/pkg/aksk`): mint = `POST
//!   /v1/{project_id}/aksks` with a flat body, list = `GET /v1/{project_id}/aksks/{user_id}`
//!   (a JSON array). Its `DELETE /v1/{project_id}/aksks/{user_id}` removes every key of the
//!   user (or, in other versions, none) and answers 200 either way, so revoke never sends
//!   it: the AK/SK are Keystone ec2 credentials, and revoke deletes exactly that one
//!   credential through the Keystone remote this one authenticates with.
//! - OVH Data Platform IAM: `POST /iam/login` {auth_mode, apikey, secretkey, app_id} ->
//!   `token` (no expiry in the reply: the lifetime is an IAM setting), and `DELETE
//!   /iam/logout?app_id=..&token=..`. OVH mints its keys in its Control Panel.
//!
//! A remote added with a profile always uses the profile's current endpoints (its `vars`
//! stay the remote's own), so a config.yaml written by an older keyctl never sends a
//! request the service does not mean the way keyctl does.
//!
//! Templates know `{access}`, `{secret}` (bodies only), `{remote_id}`, `{user_id}`,
//! `{project_id}` and the remote's own `vars`. Values put in paths are percent-encoded.

use std::collections::BTreeMap;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    Auth, AuthMethod, Client, Identity, Pushed, Remote, RemoteConfig, RemoteCred, ServerMinted,
    Token,
};
use crate::error::{Error, usage};
use crate::registry::RemoteLink;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HttpSpec {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    /// Register a client-made key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Endpoint>,
    /// Let the service mint a pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Endpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Endpoint>,
    /// A cheap authenticated GET for `remote test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Endpoint>,
    /// End a token (`{token}` in the path or body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout: Option<Endpoint>,
    /// Revoke through the `auth_remote` Keystone: delete the key's ec2 credential there
    /// (`DELETE /v3/credentials/{sha256(access)}`), exactly one key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoke_via_keystone: bool,
}

/// One request and where to find things in its reply (JSON pointers, e.g. `/token`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Endpoint {
    pub method: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_field: Option<String>,
    /// list: the array of credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_field: Option<String>,
}

fn ep(method: &str, path: &str) -> Endpoint {
    Endpoint {
        method: method.into(),
        path: path.into(),
        body: None,
        id_field: None,
        access_field: None,
        secret_field: None,
        items: None,
        token_field: None,
        expires_field: None,
    }
}

pub(crate) const PROFILES: &[&str] = &["multicloud", "ovh"];

/// The endpoints of a shipped profile.
pub(crate) fn profile(name: &str) -> anyhow::Result<HttpSpec> {
    match name {
        // SODA Multicloud: AK/SK pairs minted per user and project, behind a Keystone token.
        "multicloud" => Ok(HttpSpec {
            mint: Some(Endpoint {
                body: Some(
                    serde_json::json!({"project_id": "{project_id}", "user_id": "{user_id}"}),
                ),
                access_field: Some("/access_key".into()),
                secret_field: Some("/secret_key".into()),
                ..ep("POST", "/v1/{project_id}/aksks")
            }),
            list: Some(Endpoint {
                items: Some(String::new()),
                access_field: Some("/blob/access_key".into()),
                ..ep("GET", "/v1/{project_id}/aksks/{user_id}")
            }),
            test: Some(ep("GET", "/v1/{project_id}/aksks/{user_id}")),
            revoke_via_keystone: true,
            ..Default::default()
        }),
        // OVH Data Platform IAM ("API Reference: Identity Access Manager").
        "ovh" => Ok(HttpSpec {
            vars: BTreeMap::from([("app_id".to_string(), "forepaas".to_string())]),
            token: Some(Endpoint {
                body: Some(serde_json::json!({
                    "auth_mode": "apikey", "apikey": "{access}", "secretkey": "{secret}",
                    "app_id": "{app_id}"})),
                token_field: Some("/token".into()),
                ..ep("POST", "/iam/login")
            }),
            logout: Some(ep("DELETE", "/iam/logout?app_id={app_id}&token={token}")),
            ..Default::default()
        }),
        other => Err(usage(format!(
            "unknown --profile {}: known profiles are {}",
            crate::output::quoted(other),
            PROFILES.join(", ")
        ))),
    }
}

pub(crate) struct Http<'a> {
    deps: super::Deps<'a>,
    name: String,
    cfg: RemoteConfig,
    spec: HttpSpec,
    client: Client,
    /// The Keystone remote whose token this one uses (`auth_remote`).
    keystone: Option<super::keystone::Keystone<'a>>,
}

/// Template values for one request.
type Vars = BTreeMap<String, String>;

impl<'a> Http<'a> {
    pub(crate) fn new(
        deps: super::Deps<'a>,
        name: &str,
        cfg: RemoteConfig,
    ) -> anyhow::Result<Self> {
        let mut spec = cfg.http.clone().unwrap_or_default();
        if let Some(p) = cfg.profile.as_deref().filter(|p| PROFILES.contains(p)) {
            let mut current = profile(p)?;
            current.vars.extend(std::mem::take(&mut spec.vars));
            spec = current;
        }
        let keystone = match &cfg.auth_remote {
            None => None,
            Some(k) => {
                let kc = deps.remotes.get(k).ok_or_else(|| {
                    Error::not_found(format!(
                        "remote {name} uses the token of remote {k}, which is not configured"
                    ))
                })?;
                Some(super::keystone::Keystone::new(deps, k, kc.clone())?)
            }
        };
        Ok(Http {
            client: Client::new(deps.out, name, &cfg)?,
            deps,
            name: name.to_string(),
            cfg,
            spec,
            keystone,
        })
    }

    fn endpoint<'s>(&'s self, e: &'s Option<Endpoint>, what: &str) -> anyhow::Result<&'s Endpoint> {
        e.as_ref().ok_or_else(|| {
            usage(format!(
                "remote {} has no `{what}` endpoint in config.yaml (http.{what})",
                self.name
            ))
        })
    }

    /// The request's credential and the base template values.
    fn auth(&self) -> anyhow::Result<(Option<SecretString>, Vars)> {
        let mut vars = self.spec.vars.clone();
        if let Some(p) = &self.cfg.project {
            vars.entry("project_id".into()).or_insert(p.clone());
        }
        if let Some(ks) = &self.keystone {
            let (token, user_id, project_id) = ks.scoped_token()?;
            vars.insert("user_id".into(), user_id);
            if let Some(p) = project_id {
                vars.insert("project_id".into(), p);
            }
            return Ok((Some(token), vars));
        }
        if let Some(u) = &self.cfg.user {
            vars.entry("user_id".into()).or_insert(u.clone());
        }
        let secret = match self.cfg.auth {
            AuthMethod::None => None,
            _ => Some(super::credential(self.deps.stores, &self.name, &self.cfg)?),
        };
        Ok((secret, vars))
    }

    fn request(
        &self,
        e: &Endpoint,
        vars: &Vars,
        secret_in_body: Option<&SecretString>,
        cred: Option<&SecretString>,
        idempotent: bool,
    ) -> anyhow::Result<super::Reply> {
        let path = fill_path(&e.path, vars);
        let url = self.client.url(&path)?;
        let method = Method::from_bytes(e.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| usage(format!("remote {}: bad method {}", self.name, e.method)))?;
        let body = e.body.as_ref().map(|b| fill_body(b, vars, secret_in_body));
        let auth = match (self.cfg.auth, cred) {
            (_, None) => Auth::None,
            (_, Some(t)) if self.keystone.is_some() => Auth::Header("X-Auth-Token", t),
            (AuthMethod::Basic, Some(t)) => Auth::Basic(self.cfg.user.as_deref().unwrap_or(""), t),
            (AuthMethod::Bearer, Some(t)) => Auth::Bearer(t),
            (_, Some(t)) => Auth::Header("X-Auth-Token", t),
        };
        self.client
            .send(method, url, auth, body.as_ref(), idempotent)
    }

    fn field(&self, v: &Value, ptr: &Option<String>, what: &str) -> anyhow::Result<String> {
        let p = ptr.as_deref().unwrap_or("");
        v.pointer(p)
            .and_then(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .ok_or_else(|| {
                Error::remote_unreachable(format!(
                    "remote {}'s reply has no {what} at {}",
                    self.name,
                    crate::output::quoted(p)
                ))
                .into()
            })
    }
}

impl Remote for Http<'_> {
    fn test(&self) -> anyhow::Result<Identity> {
        let (cred, vars) = self.auth()?;
        if let Some(e) = &self.spec.test {
            let reply = self.request(e, &vars, None, cred.as_ref(), true)?;
            if !reply.ok() {
                return Err(self.client.failure(&reply, "answer the test request"));
            }
        }
        Ok(Identity {
            endpoint: self.client.base.to_string(),
            user_id: vars.get("user_id").cloned().unwrap_or_else(|| "-".into()),
            project_id: vars.get("project_id").cloned(),
            token_expires_at: None,
        })
    }

    fn push(
        &self,
        access: &str,
        secret: &SecretString,
        for_user: Option<&str>,
    ) -> anyhow::Result<Pushed> {
        let e = self.endpoint(&self.spec.push, "push")?;
        let (cred, mut vars) = self.auth()?;
        vars.insert("access".into(), access.into());
        if let Some(u) = for_user {
            vars.insert("user_id".into(), u.into());
        }
        let reply = self.request(e, &vars, Some(secret), cred.as_ref(), false)?;
        if !reply.ok() {
            return Err(self
                .client
                .failure_hiding(&reply, "register the key", Some(secret)));
        }
        let remote_id = if e.id_field.is_some() {
            let v: Value = self.client.json(&reply, "register the key")?;
            self.field(&v, &e.id_field, "credential ID")?
        } else {
            access.to_string()
        };
        Ok(Pushed {
            remote_id,
            user_id: vars.get("user_id").cloned(),
            already: false,
        })
    }

    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool> {
        if self.spec.revoke_via_keystone {
            let ks = self.keystone.as_ref().ok_or_else(|| {
                usage(format!(
                    "remote {} revokes through its Keystone remote (--auth-remote), and has none",
                    self.name
                ))
            })?;
            // The link's remote ID is the access key (the service names no other).
            let one = RemoteLink {
                remote_id: super::keystone::credential_id(&link.remote_id),
                ..link.clone()
            };
            let gone_now = ks.revoke(&one)?;
            if ks.has_credential(&one.remote_id)? {
                return Err(Error::remote_unreachable(format!(
                    "remote {}: Keystone accepted the delete of credential {} but still has it",
                    self.name, one.remote_id
                ))
                .into());
            }
            return Ok(gone_now);
        }
        let e = self.endpoint(&self.spec.revoke, "revoke")?;
        let (cred, mut vars) = self.auth()?;
        vars.insert("remote_id".into(), link.remote_id.clone());
        if let Some(u) = &link.user_id {
            vars.insert("user_id".into(), u.clone());
        }
        let reply = self.request(e, &vars, None, cred.as_ref(), true)?;
        match reply.status {
            s if (200..300).contains(&s) => Ok(true),
            404 | 410 => Ok(false),
            _ => Err(self.client.failure(&reply, "revoke the key")),
        }
    }

    fn list(&self, for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>> {
        let e = self.endpoint(&self.spec.list, "list")?;
        let (cred, mut vars) = self.auth()?;
        if let Some(u) = for_user {
            vars.insert("user_id".into(), u.into());
        }
        let reply = self.request(e, &vars, None, cred.as_ref(), true)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "list keys"));
        }
        let v: Value = self.client.json(&reply, "list keys")?;
        let items = v
            .pointer(e.items.as_deref().unwrap_or(""))
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::remote_unreachable(format!(
                    "remote {}'s list reply has no array at {}",
                    self.name,
                    e.items.as_deref().unwrap_or("(root)")
                ))
            })?;
        items
            .iter()
            .map(|it| {
                let access = self.field(it, &e.access_field, "access key")?;
                let remote_id = match &e.id_field {
                    Some(_) => self.field(it, &e.id_field, "ID")?,
                    None => access.clone(),
                };
                Ok(RemoteCred {
                    access,
                    remote_id,
                    user_id: None,
                    name: None,
                })
            })
            .collect()
    }

    fn token(&self, access: &str, secret: &SecretString) -> anyhow::Result<Token> {
        let e = self.endpoint(&self.spec.token, "token")?;
        let mut vars = self.spec.vars.clone();
        vars.insert("access".into(), access.into());
        // The key itself is the credential here: the remote's own is not sent.
        let reply = self.request(e, &vars, Some(secret), None, false)?;
        if !reply.ok() {
            return Err(self.client.failure_hiding(
                &reply,
                "exchange the key for a token",
                Some(secret),
            ));
        }
        let v: Value = self.client.json(&reply, "exchange the key for a token")?;
        let token = self.field(&v, &e.token_field, "token")?;
        let expires_at = e
            .expires_field
            .as_deref()
            .and_then(|p| v.pointer(p))
            .and_then(Value::as_str)
            .and_then(|s| {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            });
        Ok(Token {
            token: SecretString::from(token),
            expires_at,
        })
    }

    fn logout(&self, token: &SecretString) -> anyhow::Result<()> {
        let e = self.endpoint(&self.spec.logout, "logout")?;
        let mut vars = self.spec.vars.clone();
        vars.insert("token".into(), token.expose_secret().to_string());
        self.client.hide(token.expose_secret());
        self.client
            .hide(&crate::net::urlencode(token.expose_secret()));
        let reply = self.request(e, &vars, None, None, true)?;
        if !reply.ok() {
            return Err(self
                .client
                .failure_hiding(&reply, "end the token", Some(token)));
        }
        Ok(())
    }

    fn mint(&self, for_user: Option<&str>) -> anyhow::Result<ServerMinted> {
        let e = self.endpoint(&self.spec.mint, "mint")?;
        let (cred, mut vars) = self.auth()?;
        if let Some(u) = for_user {
            vars.insert("user_id".into(), u.into());
        }
        let reply = self.request(e, &vars, None, cred.as_ref(), false)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "mint a key"));
        }
        let v: Value = self.client.json(&reply, "mint a key")?;
        let access = self.field(&v, &e.access_field, "access key")?;
        let secret = SecretString::from(self.field(&v, &e.secret_field, "secret")?);
        let remote_id = match &e.id_field {
            Some(_) => self.field(&v, &e.id_field, "ID")?,
            None => access.clone(),
        };
        Ok(ServerMinted {
            access,
            secret,
            remote_id,
            user_id: vars.get("user_id").cloned(),
        })
    }

    /// A key of this remote works where the remote is: its shipped profile says which
    /// service that is (SODA Multicloud, OVH), otherwise a JSON REST service.
    fn service(&self) -> crate::service::Service {
        use crate::service::{HttpEndpoint, Service};
        let e = HttpEndpoint {
            url: self.cfg.url.clone(),
        };
        match self.cfg.profile.as_deref() {
            Some("multicloud") => Service::Multicloud(e),
            Some("ovh") => Service::Ovh(e),
            _ => Service::Http(e),
        }
    }
}

/// `{name}` in a path, each value percent-encoded; unknown names stay as they are.
fn fill_path(t: &str, vars: &Vars) -> String {
    let mut s = t.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("{{{k}}}"), &crate::net::urlencode(v));
    }
    s
}

/// The body template with string values filled in; `{secret}` only from the key.
fn fill_body(t: &Value, vars: &Vars, secret: Option<&SecretString>) -> Value {
    match t {
        Value::String(s) => {
            if s == "{secret}" {
                return Value::String(
                    secret
                        .map(|x| x.expose_secret().to_string())
                        .unwrap_or_default(),
                );
            }
            let mut out = s.clone();
            for (k, v) in vars {
                out = out.replace(&format!("{{{k}}}"), v);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_body(x, vars, secret)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_body(x, vars, secret)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_paths_encoded_and_bodies_verbatim() {
        let mut v = Vars::new();
        v.insert("project_id".into(), "p 1".into());
        v.insert("access".into(), "AK".into());
        assert_eq!(fill_path("/v1/{project_id}/aksks", &v), "/v1/p%201/aksks");
        let b = fill_body(
            &serde_json::json!({"a": "{access}", "s": "{secret}", "n": 3}),
            &v,
            Some(&SecretString::from("SK".to_string())),
        );
        assert_eq!(b, serde_json::json!({"a": "AK", "s": "SK", "n": 3}));
    }
}
