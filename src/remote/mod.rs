//! Remote services that check keys: the [`Remote`] trait every remote type implements
//! (one file each: Keystone, Soda Cloud, JSON REST services described in config.yaml),
//! their settings (`config`), and the client they share (`client`, on [`crate::net`]).
//! A new remote type is a file here implementing [`Remote`], a [`RemoteType`] variant and
//! an arm in [`open_config`].

mod client;
mod config;
pub(crate) mod http;
pub(crate) mod keystone;
pub(crate) mod openstack;
pub(crate) mod soda;

pub(crate) use crate::net::{Auth, Reply};
pub(crate) use client::Client;
pub(crate) use config::{credential, credential_slot, edit_config, token_slot, validate_name};

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::output::{Output, quoted};
use crate::registry::RemoteLink;
use crate::service::Service;
use crate::store::{StoreKind, Stores};

/// What a remote needs from the process: built once (the stores, where its credential
/// and token cache live; the output settings; the other remotes, for an `auth_remote`).
#[derive(Clone, Copy)]
pub(crate) struct Deps<'a> {
    pub out: &'a Output,
    pub stores: &'a Stores,
    pub remotes: &'a BTreeMap<String, RemoteConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RemoteType {
    /// OpenStack Keystone (Identity v3)
    Keystone,
    /// A JSON REST service described in config.yaml (or a shipped --profile)
    Http,
    /// Soda Cloud's REST API
    Soda,
}

impl RemoteType {
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteType::Keystone => "keystone",
            RemoteType::Http => "http",
            RemoteType::Soda => "soda",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// Keystone user password.
    Password,
    /// Keystone application credential.
    ApplicationCredential,
    /// Keystone token (clouds.yaml `auth_type: v3token`); it stops working when it expires.
    Token,
    /// HTTP Basic: `user` and the stored secret (Soda Cloud: key ID and secret).
    Basic,
    /// `Authorization: Bearer` with the stored secret.
    Bearer,
    /// `X-Auth-Token` with the stored secret.
    XAuthToken,
    /// No credential of its own (or the token of `auth_remote`).
    None,
}

/// One entry of config.yaml's `remotes:` map. Never holds a secret: the password or
/// application-credential secret is in the store named by `secret_store`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteConfig {
    #[serde(rename = "type")]
    pub kind: RemoteType,
    pub url: String,
    pub auth: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Written by keyctl before 0.x: one domain name for both the user and the project.
    /// Read where the two fields below are absent; never written now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Keystone: the user's domain, by name or ID (clouds.yaml's keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain_id: Option<String>,
    /// Keystone: the user by ID (instead of `user` and its domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Keystone: the project by ID (instead of `project` and its domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_domain_id: Option<String>,
    /// Keystone application credential ID (its secret is in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential_id: Option<String>,
    /// Keystone application credential by name (with `user` and its domain, or `user_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential_name: Option<String>,
    /// Keystone: the region, for what keyctl renders (clouds.yaml `region_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// humantime durations, e.g. `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    pub secret_store: StoreKind,
    /// http: a Keystone remote whose token authenticates requests (SODA Multicloud).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_remote: Option<String>,
    /// http: the shipped profile the endpoints came from, for people reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// http: the endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<http::HttpSpec>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A credential as the remote lists it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct RemoteCred {
    /// The key ID (EC2 access key); empty where the remote does not say it (Soda Cloud's
    /// runners carry no key ID).
    pub access: String,
    pub remote_id: String,
    pub user_id: Option<String>,
    /// The name the remote shows (a Soda runner's `name`, which its Helm chart sets to the
    /// key's name): how a key is matched where no key ID is listed.
    pub name: Option<String>,
}

/// What a push did.
pub(crate) struct Pushed {
    pub remote_id: String,
    pub user_id: Option<String>,
    /// The remote already had exactly this credential.
    pub already: bool,
}

/// A pair the remote minted; `secret` is shown only once by the service.
pub(crate) struct ServerMinted {
    pub access: String,
    pub secret: SecretString,
    pub remote_id: String,
    pub user_id: Option<String>,
}

pub(crate) struct Token {
    pub token: SecretString,
    pub expires_at: Option<OffsetDateTime>,
}

/// Who the remote's own credentials authenticate as.
#[derive(Serialize)]
pub(crate) struct Identity {
    /// The endpoint keyctl settled on (Keystone: the URL as given, with or without `/v3`).
    pub endpoint: String,
    pub user_id: String,
    pub project_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub token_expires_at: Option<OffsetDateTime>,
}

/// A service keyctl registers keys with.
pub(crate) trait Remote: Sync {
    /// Authenticates afresh (no cached token) and says as whom.
    fn test(&self) -> anyhow::Result<Identity>;
    /// Registers `access`/`secret`; a credential that is already there with the same
    /// access key is success (`already`).
    fn push(
        &self,
        access: &str,
        secret: &SecretString,
        for_user: Option<&str>,
    ) -> anyhow::Result<Pushed>;
    /// Ok(false) when the remote no longer had it.
    fn revoke(&self, link: &RemoteLink) -> anyhow::Result<bool>;
    fn list(&self, for_user: Option<&str>) -> anyhow::Result<Vec<RemoteCred>>;
    fn token(&self, access: &str, secret: &SecretString) -> anyhow::Result<Token>;
    fn mint(&self, for_user: Option<&str>) -> anyhow::Result<ServerMinted>;

    /// Proves that a stored key still works on this remote and says how. The default is a
    /// token exchange; where the remote has none, or lets only admins exchange (HTTP 403),
    /// its listing must show the key instead. A remote with a check of its own (Soda
    /// Cloud's test-login) overrides it. A refusal is [`Error::RemoteRefused`].
    fn verify(
        &self,
        access: &str,
        secret: &SecretString,
        user_id: Option<&str>,
    ) -> anyhow::Result<String> {
        verify_by_token_or_list(self, access, secret, user_id)
    }

    /// The service this remote's keys belong to, recorded with every key it mints or
    /// takes (`KeyRecord::service`).
    fn service(&self) -> Service {
        Service::Local
    }

    /// The remote mints every key itself and takes none from clients (Soda Cloud):
    /// `create` and `rotate` ask it to mint, and never push a local key to it.
    fn mints_own_keys(&self) -> bool {
        self.service().mints_own_keys()
    }

    /// Proves that a key of `service` works where that service's own client uses it (a
    /// Soda Cloud key: at the host, port and scheme its block names, which may not be
    /// this remote's URL). The default is [`Remote::verify`].
    fn verify_key(
        &self,
        _service: &Service,
        access: &str,
        secret: &SecretString,
        user_id: Option<&str>,
    ) -> anyhow::Result<String> {
        self.verify(access, secret, user_id)
    }

    /// What this remote's own login cannot do, said when it is added (a Keystone login
    /// with a delegated token may not manage EC2 credentials). Asked after [`Remote::test`],
    /// whose session it may reuse.
    fn limits(&self) -> anyhow::Result<Option<String>> {
        Ok(None)
    }

    /// Ends a token `token` issued (OVH's `DELETE /iam/logout`).
    fn logout(&self, _token: &SecretString) -> anyhow::Result<()> {
        Err(crate::error::usage("this remote has no logout endpoint"))
    }

    /// The remote's ID of a credential that was unknown when it was recorded (a Soda
    /// runner appears only once deployed), looked up by the key's name. None while the
    /// remote does not show it.
    fn find_id(&self, _link: &RemoteLink, _key_name: &str) -> anyhow::Result<Option<String>> {
        Ok(None)
    }
}

/// [`Remote::verify`]'s default, for an override that falls back to it: a token exchange,
/// else the remote's listing must show the key.
pub(crate) fn verify_by_token_or_list<R: Remote + ?Sized>(
    r: &R,
    access: &str,
    secret: &SecretString,
    user_id: Option<&str>,
) -> anyhow::Result<String> {
    let why = match r.token(access, secret) {
        Ok(_) => return Ok("it issued a token for the key".into()),
        Err(e) if is_usage(&e) => "it has no token exchange",
        Err(e) if crate::error::http_status(&e) == Some(403) => {
            "this remote's user may not exchange tokens (HTTP 403)"
        }
        Err(e) => return Err(e),
    };
    match r.list(user_id) {
        Ok(creds) if creds.iter().any(|c| c.access == access) => {
            Ok(format!("{why}; it lists the key"))
        }
        Ok(_) => Err(Error::remote_refused(format!(
            "the remote does not list key {access} ({why})"
        ))
        .into()),
        Err(e) if is_usage(&e) => Ok(format!(
            "{why} and no list: it cannot be checked there (the push was accepted)"
        )),
        Err(e) => Err(e),
    }
}

/// A usage error: the remote type cannot do what was asked.
pub(crate) fn is_usage(e: &anyhow::Error) -> bool {
    crate::error::kind_of(e) == Some(crate::error::Kind::Usage)
}

/// Opens the remote configured as `name`.
pub(crate) fn open<'a>(deps: Deps<'a>, name: &str) -> anyhow::Result<Box<dyn Remote + 'a>> {
    let cfg = deps.remotes.get(name).ok_or_else(|| {
        Error::not_found(format!(
            "no remote named {} (see `keyctl remote list`)",
            quoted(name)
        ))
    })?;
    open_config(deps, name, cfg.clone())
}

/// Opens a remote from a configuration that need not be saved yet (`remote add`).
pub(crate) fn open_config<'a>(
    deps: Deps<'a>,
    name: &str,
    cfg: RemoteConfig,
) -> anyhow::Result<Box<dyn Remote + 'a>> {
    Ok(match cfg.kind {
        RemoteType::Keystone => Box::new(keystone::Keystone::new(deps, name, cfg)?),
        RemoteType::Http => Box::new(http::Http::new(deps, name, cfg)?),
        RemoteType::Soda => Box::new(soda::Soda::new(deps, name, cfg)?),
    })
}
