//! Keystone application credentials, the API key OpenStack users hand to the openstack
//! CLI and SDKs: create (`POST /v3/users/{user_id}/application_credentials`, whose reply
//! shows the secret once), list, delete, and the proof that one works, which is what its
//! users do with it: log in (`POST /v3/auth/tokens` with the `application_credential`
//! method). Keystone API reference, "Application Credentials".
//!
//! A key record links to one as `application-credential:ID` (see [`app_credential_link`]),
//! so `revoke` knows to delete an application credential rather than an EC2 credential.

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{Keystone, wire};
use crate::error::Error;
use crate::net::urlencode;
use crate::output::quoted;
use crate::service::KeystoneScope;

const LINK_PREFIX: &str = "application-credential:";

/// The remote ID a key record keeps for application credential `id`.
pub(crate) fn app_credential_link(id: &str) -> String {
    format!("{LINK_PREFIX}{id}")
}

/// The application credential ID of a link made by [`app_credential_link`].
pub(crate) fn app_credential_of(remote_id: &str) -> Option<&str> {
    remote_id.strip_prefix(LINK_PREFIX)
}

/// Keystone's IDs are 32 lower-case hex digits (a UUID without dashes).
pub(crate) fn looks_like_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What to create; roles by name, access rules as Keystone takes them.
pub(crate) struct NewAppCredential {
    pub name: String,
    pub description: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub roles: Vec<String>,
    pub unrestricted: bool,
    pub access_rules: Option<serde_json::Value>,
}

/// A created application credential; `secret` is shown only this once by Keystone.
pub(crate) struct CreatedAppCredential {
    pub id: String,
    pub secret: SecretString,
    pub user_id: String,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct Listed {
    pub id: String,
    pub name: String,
}

#[derive(Deserialize)]
struct Role {
    name: String,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    secret: SecretString,
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    roles: Vec<Role>,
}

impl Keystone<'_> {
    /// Where this remote's keys work, as much as is known without logging in.
    pub(crate) fn scope(&self) -> KeystoneScope {
        let session = self.session.lock().expect("session lock").clone();
        KeystoneScope {
            auth_url: format!("{}v3", self.client.base),
            user_id: self
                .cfg
                .user_id
                .clone()
                .or_else(|| session.as_ref().map(|s| s.user_id.clone())),
            user_domain: wire::user_domain(&self.cfg),
            project_id: self
                .cfg
                .project_id
                .clone()
                .or_else(|| session.as_ref().and_then(|s| s.project_id.clone())),
            project_name: self.cfg.project.clone(),
            project_domain: wire::project_domain(&self.cfg),
            region_name: self.cfg.region_name.clone(),
            s3_endpoint: None,
        }
    }

    /// Says why keyctl cannot manage EC2 credentials through this remote, when Keystone
    /// refuses its tokens that (a remote logged in with an application credential).
    pub(crate) fn credentials_refused(&self) -> anyhow::Result<Option<String>> {
        Ok(self.session()?.delegated.then(|| self.delegated_message()))
    }

    pub(super) fn delegated_message(&self) -> String {
        format!(
            "remote {} logs in with an application credential, and Keystone refuses such (delegated) tokens access to EC2 credentials (\"Delegated tokens cannot access credentials directly\"): add a remote that logs in with a password (--user/--project, or a password entry of clouds.yaml) to push, list, verify or revoke EC2 credentials",
            self.name
        )
    }

    /// Creates an application credential for the remote's own user.
    pub(crate) fn create_app_credential(
        &self,
        req: &NewAppCredential,
    ) -> anyhow::Result<CreatedAppCredential> {
        let s = self.session()?;
        let mut ac = json!({
            "name": req.name,
            "unrestricted": req.unrestricted,
        });
        if let Some(d) = &req.description {
            ac["description"] = json!(d);
        }
        if let Some(t) = req.expires_at {
            ac["expires_at"] = json!(crate::expiry::rfc3339(t));
        }
        if !req.roles.is_empty() {
            ac["roles"] = req.roles.iter().map(|r| json!({ "name": r })).collect();
        }
        if let Some(rules) = &req.access_rules {
            ac["access_rules"] = rules.clone();
        }
        let body = json!({ "application_credential": ac });
        let reply = self.call(
            Method::POST,
            &format!("v3/users/{}/application_credentials", urlencode(&s.user_id)),
            Some(&body),
            false,
        )?;
        match reply.status {
            200 | 201 => {}
            409 => {
                return Err(Error::conflict(format!(
                    "remote {} already has an application credential named {} for this user",
                    self.name,
                    quoted(&req.name)
                ))
                .into());
            }
            403 if self.cfg.auth == super::super::AuthMethod::ApplicationCredential => {
                return Err(Error::remote_refused(format!(
                    "remote {} logs in with an application credential, and Keystone lets only an unrestricted one create more: add a remote that logs in with a password (HTTP 403)",
                    self.name
                ))
                .into());
            }
            _ => {
                return Err(self
                    .client
                    .failure(&reply, "create an application credential"));
            }
        }
        #[derive(Deserialize)]
        struct Body {
            application_credential: Created,
        }
        let c: Body = self
            .client
            .json(&reply, "create an application credential")?;
        let c = c.application_credential;
        Ok(CreatedAppCredential {
            id: c.id,
            secret: c.secret,
            user_id: s.user_id.clone(),
            project_id: c.project_id.or_else(|| s.project_id.clone()),
            roles: c.roles.into_iter().map(|r| r.name).collect(),
        })
    }

    /// Ok(false) when Keystone no longer had it.
    pub(crate) fn delete_app_credential(&self, user_id: &str, id: &str) -> anyhow::Result<bool> {
        let reply = self.call(
            Method::DELETE,
            &format!(
                "v3/users/{}/application_credentials/{}",
                urlencode(user_id),
                urlencode(id)
            ),
            None,
            true,
        )?;
        match reply.status {
            200 | 204 => Ok(true),
            404 => Ok(false),
            _ => Err(self
                .client
                .failure(&reply, "delete an application credential")),
        }
    }

    /// The user's application credentials; none where Keystone will not show them to
    /// this remote's token (403).
    pub(crate) fn list_app_credentials(&self, user_id: &str) -> anyhow::Result<Vec<Listed>> {
        let reply = self.call(
            Method::GET,
            &format!("v3/users/{}/application_credentials", urlencode(user_id)),
            None,
            true,
        )?;
        if reply.status == 403 {
            return Ok(Vec::new());
        }
        if !reply.ok() {
            return Err(self.client.failure(&reply, "list application credentials"));
        }
        #[derive(Deserialize)]
        struct Body {
            application_credentials: Vec<Listed>,
        }
        Ok(self
            .client
            .json::<Body>(&reply, "list application credentials")?
            .application_credentials)
    }

    /// Whether the user lists application credential `id` (so a failed login means a
    /// wrong secret or an expired credential, not an EC2 key).
    pub(super) fn app_credential_known(&self, id: &str, user_id: Option<&str>) -> bool {
        let Ok(s) = self.session() else {
            return false;
        };
        let user = user_id.unwrap_or(&s.user_id);
        self.list_app_credentials(user)
            .is_ok_and(|l| l.iter().any(|a| a.id == id))
    }

    /// Logs in with an application credential as the openstack CLI does: Ok(false) when
    /// Keystone refuses it (401/404).
    pub(crate) fn login_app_credential(
        &self,
        id: &str,
        secret: &SecretString,
    ) -> anyhow::Result<bool> {
        let body = Zeroizing::new(
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret.expose_secret()}}}})
            .to_string(),
        );
        let body: serde_json::Value = serde_json::from_str(&body)?;
        let reply = self.client.send(
            Method::POST,
            self.client.url("v3/auth/tokens")?,
            crate::net::Auth::None,
            Some(&body),
            true,
        )?;
        match reply.status {
            200 | 201 => Ok(true),
            401 | 404 => Ok(false),
            _ => Err(self.client.failure_hiding(
                &reply,
                "log in with the application credential",
                Some(secret),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_and_ec2_ids_are_not_links() {
        let id = "0123456789abcdef0123456789abcdef";
        assert!(looks_like_id(id));
        assert_eq!(app_credential_of(&app_credential_link(id)), Some(id));
        assert_eq!(app_credential_of(&wire::credential_id("AKIA")), None);
        assert!(!looks_like_id("kc_abc"));
    }
}
