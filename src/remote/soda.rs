//! Soda Cloud's REST API as a remote. Soda Cloud mints its API keys itself, so the
//! remote supports server-side keys only: `POST /api/v1/runners` creates a self-hosted
//! runner and returns its key ID and secret once; `DELETE /api/v1/runners/{id}` takes
//! it back; `GET /api/v1/runners` pages through them. Requests use HTTP Basic with an
//! admin's key ID and secret; `GET /api/v1/test-login` checks them.

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use super::{
    Auth, Client, Identity, Pushed, Remote, RemoteConfig, RemoteCred, ServerMinted, Token,
};
use crate::context::Ctx;
use crate::error::{Error, usage};
use crate::registry::RemoteLink;

pub const EU: &str = "https://cloud.soda.io";
pub const US: &str = "https://cloud.us.soda.io";
/// Soda allows 60 requests a minute; large pages keep `list` well under that.
const PAGE: usize = 1000;

pub struct Soda<'a> {
    ctx: &'a Ctx,
    name: String,
    cfg: RemoteConfig,
    client: Client,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    content: Vec<Value>,
    #[serde(default = "yes")]
    last: bool,
}

fn yes() -> bool {
    true
}

impl<'a> Soda<'a> {
    pub fn new(ctx: &'a Ctx, name: &str, cfg: RemoteConfig) -> anyhow::Result<Self> {
        Ok(Soda {
            client: Client::new(ctx, name, &cfg)?,
            ctx,
            name: name.to_string(),
            cfg,
        })
    }

    fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotent: bool,
    ) -> anyhow::Result<super::Reply> {
        let secret = super::credential(self.ctx, &self.name, &self.cfg)?;
        let user = self.cfg.user.as_deref().unwrap_or("");
        self.client.send(
            method,
            self.client.url(path)?,
            Auth::Basic(user, &secret),
            body,
            idempotent,
        )
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Remote for Soda<'_> {
    fn test(&self) -> anyhow::Result<Identity> {
        let reply = self.call(Method::GET, "api/v1/test-login", None, true)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "accept the login"));
        }
        Ok(Identity {
            user_id: self.cfg.user.clone().unwrap_or_default(),
            project_id: None,
            token_expires_at: None,
        })
    }

    fn push(&self, _: &str, _: &SecretString, _: Option<&str>) -> anyhow::Result<Pushed> {
        Err(usage(format!(
            "Soda Cloud mints its own keys and does not take client-made ones: use `keyctl create --kind runner --remote {} --server-side`",
            self.name
        )))
    }

    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool> {
        let path = format!(
            "api/v1/runners/{}",
            super::keystone::urlencode(&link.remote_id)
        );
        let reply = self.call(Method::DELETE, &path, None, true)?;
        match reply.status {
            s if (200..300).contains(&s) => Ok(true),
            404 => Ok(false),
            _ => Err(self.client.failure(&reply, "delete the runner")),
        }
    }

    fn list(&self, _for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>> {
        let mut out = Vec::new();
        for page in 0.. {
            let path = format!("api/v1/runners?page={page}&size={PAGE}");
            let reply = self.call(Method::GET, &path, None, true)?;
            if !reply.ok() {
                return Err(self.client.failure(&reply, "list runners"));
            }
            let p: Page = self.client.json(&reply, "list runners")?;
            for r in &p.content {
                let Some(id) = text(r, "id") else { continue };
                out.push(RemoteCred {
                    access: text(r, "apiKeyId").unwrap_or_else(|| id.clone()),
                    remote_id: id,
                    user_id: None,
                });
            }
            if p.last || p.content.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    fn token(&self, _: &str, _: &SecretString) -> anyhow::Result<Token> {
        Err(usage(
            "Soda Cloud has no token exchange: its API takes the key ID and secret directly (HTTP Basic)",
        ))
    }

    fn mint(&self, for_user: Option<&str>) -> anyhow::Result<ServerMinted> {
        if for_user.is_some() {
            return Err(usage(
                "Soda Cloud runner keys belong to the organization: drop --for-user",
            ));
        }
        let body = serde_json::json!({ "name": format!("keyctl-{}", crate::key::default_name(crate::key::Kind::Runner)) });
        let reply = self.call(Method::POST, "api/v1/runners", Some(&body), false)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "create a runner"));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            api_key_id: String,
            api_key_secret: SecretString,
            #[serde(default)]
            id: Option<Value>,
        }
        let c: Created = self.client.json(&reply, "create a runner")?;
        let remote_id = match c.id {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(Error::RemoteUnreachable(format!(
                    "remote {} created a runner but did not say its ID; delete the runner with key {} in Soda Cloud",
                    self.name, c.api_key_id
                ))
                .into());
            }
        };
        Ok(ServerMinted {
            access: c.api_key_id,
            secret: c.api_key_secret,
            remote_id,
            user_id: None,
        })
    }
}
