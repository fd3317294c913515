//! The team store: OpenBao / HashiCorp Vault KV v2. One laptop's keyring serves one
//! developer; a team or a fleet of hosts needs the same keys everywhere and one place to
//! revoke them, and such teams already run Vault, so keyctl uses it instead of a server
//! of its own.
//!
//! Layout under `MOUNT` (default `secret`) and `PREFIX` (default `keyctl`):
//! - `PREFIX/keys/ID`: `{"record": <the registry's KeyRecord>}`, a key's metadata, which
//!   `list` and `show` read;
//! - `PREFIX/secrets/ID`: `{"secret": "..."}`, read only by what hands the secret out
//!   (`secret`, `config`, `run`, `token`). Kept apart so that a policy can grant "list but
//!   not read" (README), and `list` never downloads a secret. Entries written by an older
//!   keyctl (record and secret together under `keys/ID`) are moved over on first read,
//!   with check-and-set, secret first, so nothing is lost;
//! - `PREFIX/names/NAME`: `{"id": ID}`, the claim that makes names unique team-wide;
//! - `PREFIX/index/NN`: the team index, copies of the records in 128 shards, so that a
//!   list costs a bounded number of round trips; `PREFIX/team`: the team-wide salt of the
//!   fingerprints on team records, so that `scan` never reads a secret, and by its KV
//!   version the team's generation, which every change moves on so that a machine's copy
//!   of the fingerprints is checked with one request (see `index`, `fingerprints`).
//!
//! Every write is KV v2 check-and-set (`cas: 0` to create, `cas: version` to update), so
//! concurrent writers on many machines cannot overwrite each other, and a write repeated
//! after a timeout or a leader election cannot land twice. That is what makes the
//! bounded retries here safe. The token is sent in a header and never written anywhere.
//!
//! The module is split by concern: this file holds the settings and the store itself,
//! `kv` the HTTP conversation with KV v2 (retries through elections, classification of
//! answers), `team` what a team key is (name claims, records apart from secrets), `index`
//! the team index (list), `fingerprints` the salt, generation and local copy of the
//! fingerprints (scan), and `health` what `doctor` reports.

mod fingerprints;
mod health;
mod index;
mod kv;
mod team;

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::{SecretStore, StoreKind};
use crate::error::Error;
use crate::net;
use crate::output::Output;

pub use fingerprints::{Generation, TeamFingerprints};
pub use health::{Health, health};
pub use team::{Entry, create_key, create_successor, delete_key};

/// The `vault:` section of config.yaml. Environment variables win over it, the way the
/// `bao`/`vault` CLIs behave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct VaultConfig {
    /// Server address; `BAO_ADDR` / `VAULT_ADDR` override it.
    pub addr: Option<String>,
    /// Where the KV v2 engine is mounted (default `secret`).
    pub mount: Option<String>,
    /// Path prefix inside the mount (default `keyctl`).
    pub prefix: Option<String>,
    /// How long to keep retrying while the server is unreachable or electing a leader
    /// (default 15 s).
    pub retry_seconds: Option<u64>,
    /// PEM file of the CA that signed the server's certificate, for private CAs;
    /// `BAO_CACERT` / `VAULT_CACERT` override it.
    pub ca_cert: Option<std::path::PathBuf>,
    /// OpenBao / Vault Enterprise namespace; `BAO_NAMESPACE` / `VAULT_NAMESPACE` override it.
    pub namespace: Option<String>,
    /// How long one request may take (`30s`; a bare number is seconds; default 10 s);
    /// `BAO_CLIENT_TIMEOUT` / `VAULT_CLIENT_TIMEOUT` override it, as for the bao and
    /// vault CLIs.
    pub timeout: Option<String>,
}

/// Where the token comes from. The command-line layer finds it in the environment
/// (`BAO_TOKEN`, `VAULT_TOKEN`) or names the token helper's file, which is read only when
/// the store is first used.
#[derive(Clone)]
pub enum TokenSource {
    Given { token: SecretString, source: String },
    File(PathBuf),
    Missing,
}

/// The team store's settings: config.yaml's `vault:` section with the environment's
/// overrides (`BAO_ADDR`, `BAO_NAMESPACE`, `BAO_CACERT` and their `VAULT_` twins) applied.
#[derive(Clone)]
pub struct VaultSettings {
    pub config: VaultConfig,
    pub token: TokenSource,
}

impl VaultSettings {
    /// The same server, team and token: what one finds out holds for the other.
    pub fn same(&self, other: &VaultSettings) -> bool {
        self.config == other.config
            && match (&self.token, &other.token) {
                (
                    TokenSource::Given { token, source },
                    TokenSource::Given {
                        token: t,
                        source: s,
                    },
                ) => source == s && token.expose_secret() == t.expose_secret(),
                (TokenSource::File(a), TokenSource::File(b)) => a == b,
                (TokenSource::Missing, TokenSource::Missing) => true,
                _ => false,
            }
    }
}

const DEFAULT_MOUNT: &str = "secret";
const DEFAULT_PREFIX: &str = "keyctl";
const DEFAULT_RETRY: u64 = 15;
const CAS_ATTEMPTS: usize = 20;
const LIST_THREADS: usize = 8;
/// Longer than any create (retry budget included) takes between its two writes.
const ABANDONED_CLAIM: time::Duration = time::Duration::minutes(5);

pub struct VaultStore {
    addr: String,
    mount: String,
    prefix: String,
    namespace: Option<String>,
    token: SecretString,
    /// Where the token came from, for `doctor` and error messages (never the token).
    pub token_source: String,
    retry: Duration,
    client: net::Client,
    out: Output,
}

impl VaultStore {
    /// The store as resolved settings describe it; reads the token file if that is
    /// where the token is.
    pub fn open(s: &VaultSettings, out: &Output) -> anyhow::Result<VaultStore> {
        let (token, source) = match &s.token {
            TokenSource::Given { token, source } => (token.clone(), source.clone()),
            TokenSource::File(path) => read_token_file(path)?,
            TokenSource::Missing => return Err(no_token()),
        };
        Self::connect_with(&s.config, token, source, out)
    }

    /// The store at `cfg` with an explicit token, printing nothing.
    pub fn connect(
        cfg: &VaultConfig,
        token: SecretString,
        token_source: String,
    ) -> anyhow::Result<VaultStore> {
        Self::connect_with(cfg, token, token_source, &Output::silent())
    }

    fn connect_with(
        cfg: &VaultConfig,
        token: SecretString,
        token_source: String,
        out: &Output,
    ) -> anyhow::Result<VaultStore> {
        let addr = cfg.addr.as_deref().ok_or_else(|| {
            Error::store_unavailable(
                "the vault store needs a server address: set BAO_ADDR or VAULT_ADDR, or vault.addr in config.yaml",
            )
        })?;
        let base = net::parse_url(addr, "OpenBao/Vault address")?;
        let mount = cfg.mount.clone().unwrap_or_else(|| DEFAULT_MOUNT.into());
        let prefix = cfg.prefix.clone().unwrap_or_else(|| DEFAULT_PREFIX.into());
        let namespace = cfg.namespace.clone().filter(|n| !n.is_empty());
        let mut parts = vec![("mount", &mount), ("prefix", &prefix)];
        if let Some(ns) = &namespace {
            parts.push(("namespace", ns));
        }
        for (what, v) in parts {
            let ok = !v.is_empty()
                && v.split('/').all(|s| !s.is_empty() && s != "." && s != "..")
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
            if !ok {
                return Err(crate::error::usage(format!(
                    "invalid vault {what} {}: use letters, digits, '.', '_', '-' and '/'",
                    crate::output::quoted(v)
                )));
            }
        }
        let endpoint = net::Endpoint {
            label: "OpenBao/Vault".into(),
            base,
            ca_cert: cfg.ca_cert.as_deref(),
            connect_timeout: Duration::from_secs(3),
            timeout: request_timeout(cfg.timeout.as_deref())?,
        };
        let client = net::Client::new(out, &endpoint).map_err(|e| {
            e.context(
                "the OpenBao/Vault CA certificate (BAO_CACERT, VAULT_CACERT or vault.ca_cert)",
            )
        })?;
        Ok(VaultStore {
            addr: endpoint.base.as_str().trim_end_matches('/').to_owned(),
            mount,
            prefix,
            namespace,
            token,
            token_source,
            retry: Duration::from_secs(cfg.retry_seconds.unwrap_or(DEFAULT_RETRY)),
            client,
            out: out.clone(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn mount(&self) -> &str {
        &self.mount
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `MOUNT/PREFIX/keys/ID`, for people.
    pub fn key_path(&self, id: &str) -> String {
        format!("{}/{}/keys/{id}", self.mount, self.prefix)
    }
}

impl SecretStore for VaultStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Vault
    }

    fn location(&self) -> String {
        let ns = self
            .namespace
            .as_ref()
            .map_or_else(String::new, |n| format!("namespace {n}, "));
        format!(
            "OpenBao/Vault at {} ({ns}KV v2 {}/{})",
            self.addr, self.mount, self.prefix
        )
    }

    /// Replaces the secret of a key that is already in the store (check-and-set); new
    /// keys go through [`VaultStore::create_key`], which writes the record with them.
    fn set(&self, id: &str, _label: &str, secret: &SecretString) -> anyhow::Result<()> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((_, version)) = self.secret_of(id)? else {
                return Err(Error::not_found(format!(
                    "OpenBao/Vault at {} has no key {id}",
                    self.addr
                ))
                .into());
            };
            let data = json!({"secret": secret.expose_secret()});
            if self.write(&format!("secrets/{id}"), version, &data)? {
                return Ok(());
            }
        }
        Err(Error::conflict(format!("key {id} kept changing in OpenBao/Vault; retry")).into())
    }

    fn get(&self, id: &str) -> anyhow::Result<SecretString> {
        self.secret_of(id)?.map(|(s, _)| s).ok_or_else(|| {
            Error::not_found(format!(
                "OpenBao/Vault at {} has no key {id} (deleted on another machine?)",
                self.addr
            ))
            .into()
        })
    }

    /// Deletes the key entry with all its versions, then its name claim if it still
    /// points at this key.
    fn delete(&self, id: &str) -> anyhow::Result<bool> {
        let Some(e) = self.entry(id)? else {
            return Ok(false);
        };
        self.destroy(&format!("keys/{id}"))?;
        self.index_upkeep("the delete", self.index_remove(id));
        self.destroy(&format!("secrets/{id}"))?;
        if self.name_owner(&e.record.name)?.as_deref() == Some(id) {
            self.destroy(&format!("names/{}", e.record.name))?;
        }
        Ok(true)
    }
}

/// The token helper's file (`bao login` writes `~/.vault-token`).
fn read_token_file(path: &std::path::Path) -> anyhow::Result<(SecretString, String)> {
    if let Some(b) = crate::fsutil::read_optional(path)? {
        let b = Zeroizing::new(b);
        let t = String::from_utf8_lossy(&b).trim().to_owned();
        if !t.is_empty() {
            return Ok((SecretString::from(t), path.display().to_string()));
        }
    }
    Err(no_token())
}

fn no_token() -> anyhow::Error {
    Error::store_unavailable(
        "no OpenBao/Vault token: set BAO_TOKEN or VAULT_TOKEN, or log in with `bao login` (it writes ~/.vault-token)",
    )
    .into()
}

/// The team store's request timeout: `vault.timeout` or the CLIs' variables, seconds or a
/// duration (`30s`, `1m`); 10 s when unset.
fn request_timeout(v: Option<&str>) -> anyhow::Result<Duration> {
    let Some(v) = v.map(str::trim) else {
        return Ok(Duration::from_secs(10));
    };
    let parsed = match v.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(v).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(crate::error::usage(format!(
            "the team store's timeout {} is zero; give seconds or a duration such as 30s",
            crate::output::quoted(v)
        ))),
        Err(e) => Err(crate::error::usage(format!(
            "the team store's timeout {} (vault.timeout, BAO_CLIENT_TIMEOUT or VAULT_CLIENT_TIMEOUT): {e}",
            crate::output::quoted(v)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_the_same_only_with_the_same_server_team_and_token() {
        let given = |addr: &str, token: &str| VaultSettings {
            config: VaultConfig {
                addr: Some(addr.into()),
                ..VaultConfig::default()
            },
            token: TokenSource::Given {
                token: SecretString::from(token.to_owned()),
                source: "BAO_TOKEN".into(),
            },
        };
        let a = given("http://127.0.0.1:8200", "t1");
        assert!(a.same(&given("http://127.0.0.1:8200", "t1")));
        assert!(!a.same(&given("http://127.0.0.1:8201", "t1")));
        assert!(!a.same(&given("http://127.0.0.1:8200", "t2")));
        let mut other_prefix = a.clone();
        other_prefix.config.prefix = Some("team-b".into());
        assert!(!a.same(&other_prefix));
        let token = |t: TokenSource| VaultSettings {
            config: VaultConfig::default(),
            token: t,
        };
        let file = |p: &str| token(TokenSource::File(p.into()));
        assert!(file("/h/.vault-token").same(&file("/h/.vault-token")));
        assert!(!file("/h/.vault-token").same(&file("/g/.vault-token")));
        assert!(!file("/h/.vault-token").same(&token(TokenSource::Missing)));
        assert!(token(TokenSource::Missing).same(&token(TokenSource::Missing)));
    }
}
