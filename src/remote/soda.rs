//! Soda Cloud's REST API as a remote, on its published contract (Soda Cloud API v4,
//! "Runners", OpenAPI 3.1.0 on docs.soda.io; `GET /api/v1/test-login` from Soda's public
//! API v1 definition). Requests use HTTP Basic with an admin's API key ID and secret.
//!
//! Soda Cloud mints every key itself, so this remote never takes a client-made key:
//! - `POST /api/v1/runners` (no body) mints a runner key and answers `apiKeyId` and
//!   `apiKeySecret`, shown this once, and **no runner ID**: the runner appears in
//!   `GET /api/v1/runners` only once a runner deployed with that key registers, under
//!   the name its Helm values give it (keyctl writes the key's name there).
//! - Runners carry no key ID, so a key is matched to its runner by that name, and the
//!   runner ID is learned then (`find_id`). `DELETE /api/v1/runners/{id}` takes a runner
//!   ID, never a key ID; without one the remote side cannot be revoked here.
//! - API keys for Soda Core are minted only in Soda Cloud's UI (`keyctl import`).
//! - A key is verified the way Soda Core uses it (Soda Core 3.5 `soda/cloud/soda_cloud.py`,
//!   4.x `soda_core/common/soda_cloud.py` `_get_token` and `test_connection`): `POST
//!   {scheme}://{host}{:port}/api/command` with `{"type": "login", "apiKeyId",
//!   "apiKeySecret"}` and no Authorization header, which answers a token, then `POST
//!   .../api/query` `{"type": "whoAmI", "token"}` as `soda cloud test` does, at the
//!   address the key's `soda_cloud` block names. `GET /api/v1/test-login` (HTTP Basic),
//!   which Soda's docs list for the same keys, proves only the REST API and can pass where
//!   Soda Core fails (a proxy that routes `/api/v1` only): it is not what decides.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    Auth, Client, Identity, Pushed, Remote, RemoteConfig, RemoteCred, ServerMinted, Token,
};
use crate::error::{Error, usage};
use crate::output::quoted;
use crate::registry::RemoteLink;
use crate::service::{Service, SodaEndpoint};

/// The largest page Soda allows (10..=1000): `list` stays far under 60 requests a minute.
const PAGE: usize = 1000;

pub(crate) struct Soda<'a> {
    deps: super::Deps<'a>,
    name: String,
    cfg: RemoteConfig,
    client: Client,
}

/// `PublicApiListRunnersResponse` (every field required by the definition).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    content: Vec<Runner>,
    last: bool,
}

/// `PublicApiRunnerDTO`, the fields keyctl reads. No key ID: the API has none.
#[derive(Deserialize)]
struct Runner {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// `PublicApiCreateRunnerResponse`: all there is.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    api_key_id: String,
    api_key_secret: SecretString,
}

/// `PublicApiTestLoginResponse`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoggedIn {
    #[serde(default)]
    organisation_name: Option<String>,
}

impl<'a> Soda<'a> {
    pub(crate) fn new(
        deps: super::Deps<'a>,
        name: &str,
        cfg: RemoteConfig,
    ) -> anyhow::Result<Self> {
        Ok(Soda {
            client: Client::new(deps.out, name, &cfg)?,
            deps,
            name: name.to_string(),
            cfg,
        })
    }

    fn call(&self, method: Method, path: &str, idempotent: bool) -> anyhow::Result<super::Reply> {
        let secret = super::credential(self.deps.stores, &self.name, &self.cfg)?;
        let user = self.cfg.user.as_deref().unwrap_or("");
        self.client.send(
            method,
            self.client.url(path)?,
            Auth::Basic(user, &secret),
            None,
            idempotent,
        )
    }

    /// Every runner, a page of 1000 at a time.
    fn runners(&self) -> anyhow::Result<Vec<Runner>> {
        let mut out = Vec::new();
        for page in 0.. {
            let path = format!("api/v1/runners?page={page}&size={PAGE}");
            let reply = self.call(Method::GET, &path, true)?;
            if !reply.ok() {
                return Err(self.client.failure(&reply, "list runners"));
            }
            let p: Page = self.client.json(&reply, "list runners")?;
            let empty = p.content.is_empty();
            out.extend(p.content);
            if p.last || empty {
                break;
            }
        }
        Ok(out)
    }
}

/// `{"token": ...}`: what `/api/command` login answers (Soda Core reads only `token`).
#[derive(Deserialize)]
struct Login {
    token: SecretString,
}

/// Soda Core's own login, then its whoAmI query, at `at`, as the key; `tls` lends a
/// remote's CA and timeouts. Needs no admin credential: the key proves itself.
pub(crate) fn login_as(
    out: &crate::output::Output,
    name: &str,
    at: &SodaEndpoint,
    tls: Option<&RemoteConfig>,
    access: &str,
    secret: &SecretString,
) -> anyhow::Result<String> {
    let base = at.base_url();
    let client = Client::at(out, name, &format!("{base}/api/"), tls)?;
    let login = serde_json::json!({
        "type": "login",
        "apiKeyId": access,
        "apiKeySecret": secret.expose_secret(),
    });
    // Not retried on a lost answer: a login is harmless, but Soda Core does not either.
    let reply = client.send(
        Method::POST,
        client.url("command")?,
        Auth::None,
        Some(&login),
        false,
    );
    drop(login);
    let reply = reply?;
    let what = format!(
        "log key {} in at {base} (POST /api/command, as Soda Core does)",
        quoted(access)
    );
    if !reply.ok() {
        return Err(client.failure_hiding(&reply, &what, Some(secret)));
    }
    let Login { token } = client.json(&reply, &what)?;
    client.hide(token.expose_secret());
    let query = serde_json::json!({"type": "whoAmI", "token": token.expose_secret()});
    let reply = client.send(
        Method::POST,
        client.url("query")?,
        Auth::None,
        Some(&query),
        true,
    );
    drop(query);
    let reply = reply?;
    if !reply.ok() {
        return Err(client.failure_hiding(
            &reply,
            &format!(
                "answer whoAmI for key {} at {base} (POST /api/query, as `soda cloud test` does)",
                quoted(access)
            ),
            Some(secret),
        ));
    }
    Ok(format!(
        "Soda Cloud at {base} logged it in as Soda Core does (POST /api/command login) and answered whoAmI (POST /api/query)"
    ))
}

impl Remote for Soda<'_> {
    fn service(&self) -> Service {
        SodaEndpoint::from_url(&self.cfg.url).map_or(Service::Local, Service::SodaCloud)
    }

    fn mints_own_keys(&self) -> bool {
        true
    }

    fn verify_key(
        &self,
        service: &Service,
        access: &str,
        secret: &SecretString,
        _: Option<&str>,
    ) -> anyhow::Result<String> {
        let own = self.service();
        let at = service.soda().or(own.soda()).ok_or_else(|| {
            usage(format!(
                "remote {} has no Soda Cloud host in its URL",
                self.name
            ))
        })?;
        login_as(
            self.deps.out,
            &self.name,
            at,
            Some(&self.cfg),
            access,
            secret,
        )
    }
    fn test(&self) -> anyhow::Result<Identity> {
        let reply = self.call(Method::GET, "api/v1/test-login", true)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "accept the login"));
        }
        // The organisation's name is a courtesy: a 200 is the proof.
        let who: Option<LoggedIn> = serde_json::from_slice(&reply.body).ok();
        Ok(Identity {
            endpoint: self.client.base.to_string(),
            user_id: self.cfg.user.clone().unwrap_or_default(),
            project_id: who.and_then(|w| w.organisation_name),
            token_expires_at: None,
        })
    }

    fn push(&self, _: &str, _: &SecretString, _: Option<&str>) -> anyhow::Result<Pushed> {
        Err(usage(format!(
            "Soda Cloud mints its own keys and does not take client-made ones: `keyctl create --kind runner --remote {}` asks it for a runner key; API keys are created in Soda Cloud (profile, API keys) and kept with `keyctl import`",
            self.name
        )))
    }

    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool> {
        let Some(id) = link.known_id() else {
            return Err(Error::not_found(format!(
                "Soda Cloud has no runner for this key yet (a runner appears once deployed, under the key's name), so remote {} cannot delete it: delete the runner in Soda Cloud (Runners) if there is one, then `--local-only` revokes the key here",
                self.name
            ))
            .into());
        };
        let path = format!("api/v1/runners/{}", crate::net::urlencode(id));
        let reply = self.call(Method::DELETE, &path, true)?;
        match reply.status {
            s if (200..300).contains(&s) => Ok(true),
            // The ID came from Soda's own listing, so a 404 means it is gone now.
            404 => Ok(false),
            400 => Err(self.client.failure(
                &reply,
                &format!(
                    "delete runner {id}: Soda Cloud refuses while the runner is in use; stop the runner deployment (helm uninstall) first, then revoke again"
                ),
            )),
            _ => Err(self.client.failure(&reply, &format!("delete runner {id}"))),
        }
    }

    fn list(&self, _for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>> {
        Ok(self
            .runners()?
            .into_iter()
            .map(|r| RemoteCred {
                access: String::new(),
                remote_id: r.id,
                user_id: None,
                name: r.name,
            })
            .collect())
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
        // No body: the operation defines none. Never retried on failure (each success
        // mints a key), except a 429, which minted nothing.
        let reply = self.call(Method::POST, "api/v1/runners", false)?;
        if !reply.ok() {
            return Err(self.client.failure(&reply, "create a runner key"));
        }
        let c: Created = self.client.json(&reply, "create a runner key")?;
        Ok(ServerMinted {
            access: c.api_key_id,
            secret: c.api_key_secret,
            remote_id: String::new(),
            user_id: None,
        })
    }

    fn verify(
        &self,
        access: &str,
        secret: &SecretString,
        user_id: Option<&str>,
    ) -> anyhow::Result<String> {
        self.verify_key(&self.service(), access, secret, user_id)
    }

    fn find_id(&self, link: &RemoteLink, key_name: &str) -> anyhow::Result<Option<String>> {
        if let Some(id) = link.known_id() {
            return Ok(Some(id.to_string()));
        }
        let mut named = self
            .runners()?
            .into_iter()
            .filter(|r| r.name.as_deref() == Some(key_name));
        match (named.next(), named.next()) {
            (Some(r), None) => Ok(Some(r.id)),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(Error::conflict(format!(
                "remote {} has more than one runner named {}; delete the right one in Soda Cloud, then `--local-only` revokes the key here",
                self.name,
                quoted(key_name)
            ))
            .into()),
        }
    }
}
