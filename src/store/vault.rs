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
//! - `PREFIX/names/NAME`: `{"id": ID}`, the claim that makes names unique team-wide.
//!
//! Every write is KV v2 check-and-set (`cas: 0` to create, `cas: version` to update), so
//! concurrent writers on many machines cannot overwrite each other, and a write repeated
//! after a timeout or a leader election cannot land twice. That is what makes the
//! bounded retries here safe. The token is sent in a header and never written anywhere.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use reqwest::Method;
use reqwest::blocking::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use super::{SecretStore, StoreKind};
use crate::context::Ctx;
use crate::error::Error;
use crate::registry::KeyRecord;

/// The `vault:` section of config.yaml. Environment variables win over it, the way the
/// `bao`/`vault` CLIs behave.
#[derive(Clone, Debug, Default, Deserialize)]
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
    client: Client,
    /// The token and every secret this process sent: masked in any error text the
    /// server (or a proxy echoing the request) sends back.
    sent: crate::mask::Masker,
}

/// One HTTP answer, already classified.
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn errors(&self) -> String {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn is_cas_mismatch(&self) -> bool {
        self.status == 400 && self.errors().contains("check-and-set")
    }
}

/// A key's metadata as read back, and the KV version for CAS.
pub struct Entry {
    pub record: KeyRecord,
    pub version: u64,
}

/// True when the vault store takes part: selected with `--store vault`, or configured
/// in config.yaml so keys created elsewhere show up here too.
pub fn enabled(ctx: &Ctx) -> bool {
    ctx.store == crate::store::StoreChoice::Vault || ctx.config.vault.is_some()
}

/// `keyctl create`/`import` with `--store vault`: the name must be free on this machine
/// too (a local key of the same name would make KEY ambiguous here), then team-wide.
pub fn create_key(
    ctx: &Ctx,
    mut rec: KeyRecord,
    secret: &SecretString,
) -> anyhow::Result<KeyRecord> {
    let local = crate::registry::Registry::load(&ctx.paths.data)?;
    if local
        .keys()
        .iter()
        .any(|k| k.name == rec.name || k.id == rec.id)
    {
        return Err(Error::conflict(format!(
            "a key named {} already exists on this machine; pick another --name",
            crate::output::quoted(&rec.name)
        ))
        .into());
    }
    let v = VaultStore::open(ctx)?;
    rec.store = StoreKind::Vault;
    v.create_key(&rec, secret)?;
    ctx.out.debug(&format!(
        "key {} written to {} at {}",
        rec.id,
        v.key_path(&rec.id),
        v.addr
    ));
    Ok(rec)
}

/// `keyctl delete` of a team key: gone for every machine (all versions, name claim).
pub fn delete_key(ctx: &Ctx, id: &str, name: &str) -> anyhow::Result<()> {
    let v = VaultStore::open(ctx)?;
    if !v.delete(id)? {
        return Err(Error::not_found(format!(
            "OpenBao/Vault at {} has no key {id} (deleted on another machine?)",
            v.addr
        ))
        .into());
    }
    ctx.out.note(&format!(
        "deleted key '{name}' ({id}) from OpenBao/Vault at {}, for every machine",
        v.addr
    ));
    Ok(())
}

/// What `keyctl doctor` says about the team store.
#[derive(serde::Serialize)]
pub struct Health {
    pub addr: Option<String>,
    pub mount: Option<String>,
    pub prefix: Option<String>,
    pub namespace: Option<String>,
    pub token_source: Option<String>,
    /// Seconds the token has left; 0 means it does not expire.
    pub token_ttl_seconds: Option<u64>,
    pub keys: Option<usize>,
    /// True when the address reaches a standby node of a cluster.
    pub standby: Option<bool>,
    pub available: bool,
    pub detail: String,
}

/// Probes the server: the token (lookup-self, for its TTL) and the mount (listing keys).
pub fn health(ctx: &Ctx) -> Health {
    let mut h = Health {
        addr: None,
        mount: None,
        prefix: None,
        namespace: None,
        token_source: None,
        token_ttl_seconds: None,
        keys: None,
        standby: None,
        available: false,
        detail: String::new(),
    };
    let v = match VaultStore::open(ctx) {
        Ok(v) => v,
        Err(e) => {
            h.detail = format!("{e:#}");
            return h;
        }
    };
    h.addr = Some(v.addr.clone());
    h.mount = Some(v.mount.clone());
    h.prefix = Some(v.prefix.clone());
    h.namespace = v.namespace.clone();
    h.token_source = Some(v.token_source.clone());
    let probe = v.token_ttl().and_then(|ttl| Ok((ttl, v.count()?)));
    match probe {
        Ok((ttl, n)) => {
            h.token_ttl_seconds = Some(ttl);
            h.keys = Some(n);
            h.available = true;
            h.standby = v.is_standby().ok();
            h.detail = format!(
                "answers: {}, {n} keys; token from {} {}",
                v.location(),
                v.token_source,
                if ttl == 0 {
                    "never expires".to_owned()
                } else {
                    format!("expires in {}", human_seconds(ttl))
                }
            );
        }
        Err(e) => h.detail = format!("{e:#}"),
    }
    h
}

fn human_seconds(s: u64) -> String {
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

impl VaultStore {
    /// The store as this invocation's environment and config.yaml describe it.
    pub fn open(ctx: &Ctx) -> anyhow::Result<VaultStore> {
        let mut cfg = ctx.config.vault.clone().unwrap_or_default();
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        cfg.addr = env("BAO_ADDR").or_else(|| env("VAULT_ADDR")).or(cfg.addr);
        cfg.namespace = env("BAO_NAMESPACE")
            .or_else(|| env("VAULT_NAMESPACE"))
            .or(cfg.namespace);
        cfg.ca_cert = env("BAO_CACERT")
            .or_else(|| env("VAULT_CACERT"))
            .map(Into::into)
            .or(cfg.ca_cert);
        let (token, token_source) = find_token()?;
        Self::connect(&cfg, token, token_source)
    }

    /// The store at `cfg` with an explicit token (`open` finds the token itself).
    pub fn connect(
        cfg: &VaultConfig,
        token: SecretString,
        token_source: String,
    ) -> anyhow::Result<VaultStore> {
        let addr = cfg.addr.as_deref().ok_or_else(|| {
            Error::store_unavailable(
                "the vault store needs a server address: set BAO_ADDR or VAULT_ADDR, or vault.addr in config.yaml",
            )
        })?;
        let addr = check_addr(addr)?;
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
        let mut client = Client::builder();
        if let Some(path) = &cfg.ca_cert {
            let pem = std::fs::read(path)
                .ok()
                .and_then(|b| reqwest::Certificate::from_pem(&b).ok())
                .ok_or_else(|| {
                    crate::error::usage(format!(
                        "cannot read a PEM CA certificate from {} (BAO_CACERT, VAULT_CACERT or vault.ca_cert)",
                        path.display()
                    ))
                })?;
            client = client.add_root_certificate(pem);
        }
        let client = client
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            // A standby's 307 points at the leader, which during an election may be the
            // node that just died: retry the address we were given instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(VaultStore {
            addr,
            mount,
            prefix,
            namespace,
            token,
            token_source,
            retry: Duration::from_secs(cfg.retry_seconds.unwrap_or(DEFAULT_RETRY)),
            client,
            sent: Default::default(),
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

    fn url(&self, api: &str, rel: &str) -> String {
        format!(
            "{}/v1/{}/{api}/{}/{rel}",
            self.addr.trim_end_matches('/'),
            self.mount,
            self.prefix
        )
    }

    /// Sends one request, retrying while the server is unreachable, electing a leader or
    /// catching up, for at most the retry budget. Only answers the caller can act on come
    /// back: 2xx, 404 "no such secret", and check-and-set mismatches.
    fn call(&self, method: Method, url: &str, body: Option<&Value>) -> anyhow::Result<Reply> {
        self.hide(self.token.expose_secret());
        if let Some(s) = body.and_then(|b| b["data"]["secret"].as_str()) {
            self.hide(s);
        }
        let deadline = Instant::now() + self.retry;
        let mut pause = Duration::from_millis(100);
        loop {
            let mut req = self
                .client
                .request(method.clone(), url)
                .header("X-Vault-Token", self.token.expose_secret());
            if let Some(ns) = &self.namespace {
                req = req.header("X-Vault-Namespace", ns);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let why = match req.send() {
                // An untrusted certificate will not fix itself: say so at once.
                Err(e) if without_url(&e).contains("certificate") => {
                    return Err(Error::store_unavailable(format!(
                        "cannot verify the TLS certificate of OpenBao/Vault at {} ({}): if it uses a private CA, point BAO_CACERT (or vault.ca_cert) at its PEM file",
                        self.addr,
                        without_url(&e)
                    ))
                    .into());
                }
                Err(e) => without_url(&e),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let text = Zeroizing::new(resp.text().unwrap_or_default());
                    // A proxy in front of a restarting server answers 502-504 in HTML.
                    let body: Value = if text.trim().is_empty()
                        || matches!(status, 502..=504) && !text.trim_start().starts_with('{')
                    {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).map_err(|_| {
                            Error::store_unavailable(format!(
                                "OpenBao/Vault at {} answered HTTP {status} with something that is not JSON: is it a Vault server?",
                                self.addr
                            ))
                        })?
                    };
                    let reply = Reply { status, body };
                    match self.classify(reply)? {
                        Ok(r) => return Ok(r),
                        Err(why) => {
                            if let Some(s) = retry_after {
                                pause = pause.max(Duration::from_secs(s.min(2)));
                            }
                            why
                        }
                    }
                }
            };
            if Instant::now() + pause > deadline {
                return Err(Error::store_unavailable(format!(
                    "OpenBao/Vault at {} is not available ({why}), still after {} s; retry later: keyctl's writes are check-and-set, so repeating the command is safe",
                    self.addr,
                    self.retry.as_secs()
                ))
                .outcome_unknown()
                .into());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn hide(&self, v: &str) {
        self.sent.hide(v);
    }

    fn mask(&self, text: &str) -> String {
        self.sent.mask(text)
    }

    /// Ok(Ok(reply)) for the caller, Ok(Err(why)) to retry, Err for a final failure.
    fn classify(&self, r: Reply) -> anyhow::Result<Result<Reply, String>> {
        let errs = self.mask(&r.errors());
        let addr = &self.addr;
        match r.status {
            200..=299 => Ok(Ok(r)),
            404 if errs.contains("no handler for route") => Err(Error::store_unavailable(format!(
                "OpenBao/Vault at {addr} has no KV v2 engine mounted at {}/{}: enable one (bao secrets enable -path={} kv-v2) or set vault.mount in config.yaml",
                self.mount,
                self.namespace.as_ref().map_or_else(String::new, |n| format!(" in namespace {n}")),
                self.mount
            ))
            .into()),
            404 => Ok(Ok(r)),
            400 if r.is_cas_mismatch() => Ok(Ok(r)),
            // A follower right after the KV engine was enabled.
            400 if errs.contains("Waiting for the primary") => Ok(Err(errs)),
            403 => Err(Error::store_unavailable(format!(
                "OpenBao/Vault at {addr} rejected the token from {} (permission denied): log in again (bao login) or check its policy on {}/{}",
                self.token_source, self.mount, self.prefix
            ))
            .into()),
            503 if errs.to_lowercase().contains("sealed") => Err(Error::store_unavailable(format!(
                "OpenBao/Vault at {addr} is sealed: unseal it (bao operator unseal) and retry"
            ))
            .into()),
            // Elections: standbys answer 307 to a dead leader or 500 "active node not
            // found"; 429 is a standby catching up; 502/503/504 a proxy or restart.
            307 | 429 | 500 | 502 | 503 | 504 => Ok(Err(format!(
                "HTTP {}{}",
                r.status,
                if errs.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::output::sanitize(&errs))
                }
            ))),
            s => Err(Error::store_unavailable(format!(
                "OpenBao/Vault at {addr} refused the request (HTTP {s}: {})",
                crate::output::sanitize(&errs)
            ))
            .into()),
        }
    }

    /// The data and version of `rel`. A soft-deleted latest version (`bao kv delete`)
    /// comes back as null data with its version, which a check-and-set write needs.
    fn read(&self, rel: &str) -> anyhow::Result<Option<(Value, u64)>> {
        let mut r = self.call(Method::GET, &self.url("data", rel), None)?;
        let version = r.body["data"]["metadata"]["version"].as_u64().unwrap_or(0);
        if r.status == 404 && version == 0 {
            return Ok(None);
        }
        Ok(Some((r.body["data"]["data"].take(), version)))
    }

    /// Ok(true) when written, Ok(false) on a check-and-set mismatch.
    fn write(&self, rel: &str, cas: u64, data: &Value) -> anyhow::Result<bool> {
        let body = json!({"options": {"cas": cas}, "data": data});
        let r = self.call(Method::POST, &self.url("data", rel), Some(&body))?;
        Ok(!r.is_cas_mismatch())
    }

    fn destroy(&self, rel: &str) -> anyhow::Result<()> {
        self.call(Method::DELETE, &self.url("metadata", rel), None)?;
        Ok(())
    }

    fn list(&self, rel: &str) -> anyhow::Result<Vec<String>> {
        let list = Method::from_bytes(b"LIST").expect("LIST is a valid method");
        let r = self.call(list, &self.url("metadata", rel), None)?;
        Ok(r.body["data"]["keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|k| !k.ends_with('/'))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The metadata of key `id`, or None. An entry an older keyctl wrote with the secret
    /// inside is split on the way (secret to `secrets/ID` first, then the record alone).
    pub fn entry(&self, id: &str) -> anyhow::Result<Option<Entry>> {
        if !safe_segment(id) {
            return Ok(None);
        }
        for _ in 0..CAS_ATTEMPTS {
            let Some((mut data, version)) = self.read(&format!("keys/{id}"))? else {
                return Ok(None);
            };
            if data.is_null() {
                return Ok(None);
            }
            let legacy = data.get_mut("secret").map(Value::take);
            let mut record: KeyRecord = serde_json::from_value(data["record"].take())
                .with_context(|| {
                    format!(
                        "the entry {} in OpenBao/Vault at {} has no valid key record",
                        self.key_path(id),
                        self.addr
                    )
                })?;
            record.store = StoreKind::Vault;
            let Some(Value::String(secret)) = legacy else {
                return Ok(Some(Entry { record, version }));
            };
            let secret = SecretString::from(secret);
            // Move the secret out: cas 0, so a secret already there (another machine
            // migrating at the same time) is kept.
            self.write(
                &format!("secrets/{id}"),
                0,
                &json!({"secret": secret.expose_secret()}),
            )?;
            if self.write(&format!("keys/{id}"), version, &record_data(&record)?)? {
                return Ok(Some(Entry {
                    record,
                    version: version + 1,
                }));
            }
        }
        Err(Error::conflict(format!(
            "key {id} kept changing in OpenBao/Vault at {} while keyctl read it; retry",
            self.addr
        ))
        .into())
    }

    /// The secret of key `id`, or None.
    pub fn secret_of(&self, id: &str) -> anyhow::Result<Option<(SecretString, u64)>> {
        if !safe_segment(id) {
            return Ok(None);
        }
        if let Some((data, version)) = self.read(&format!("secrets/{id}"))?
            && let Some(s) = data["secret"].as_str()
        {
            return Ok(Some((SecretString::from(s.to_owned()), version)));
        }
        // Not moved yet (an entry from an older keyctl): reading the entry moves it.
        if self.entry(id)?.is_some()
            && let Some((data, version)) = self.read(&format!("secrets/{id}"))?
            && let Some(s) = data["secret"].as_str()
        {
            return Ok(Some((SecretString::from(s.to_owned()), version)));
        }
        Ok(None)
    }

    /// The ID claimed by `name`, or None.
    fn name_owner(&self, name: &str) -> anyhow::Result<Option<String>> {
        if !safe_segment(name) {
            return Ok(None);
        }
        Ok(self
            .read(&format!("names/{name}"))?
            .and_then(|(d, _)| d["id"].as_str().map(str::to_owned)))
    }

    /// A name claim whose key never got written (its creator died or lost the server
    /// between the two writes), old enough that no creator can still be finishing it.
    fn is_abandoned(&self, claim: &Value, now: time::OffsetDateTime) -> anyhow::Result<bool> {
        let Some(id) = claim["id"].as_str() else {
            return Ok(false);
        };
        let at = claim["at"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok());
        let old = at.is_some_and(|at| now - at > ABANDONED_CLAIM);
        Ok(old && self.entry(id)?.is_none())
    }

    /// Creates a key team-wide: the name claim first (so two machines cannot both take a
    /// name), then the key entry, both with `cas: 0`. A key write that definitely failed
    /// gives the name back; one whose outcome is unknown (server gone) keeps it, since
    /// the key may exist.
    pub fn create_key(&self, rec: &KeyRecord, secret: &SecretString) -> anyhow::Result<()> {
        let taken = || {
            Error::conflict(format!(
                "a key named {} already exists in OpenBao/Vault at {}; pick another --name",
                crate::output::quoted(&rec.name),
                self.addr
            ))
        };
        if !safe_segment(&rec.name) || !safe_segment(&rec.id) {
            return Err(crate::error::usage(format!(
                "{} cannot be stored in OpenBao/Vault (a path segment)",
                crate::output::quoted(&rec.name)
            )));
        }
        let name_rel = format!("names/{}", rec.name);
        let claim = json!({"id": rec.id, "at": crate::expiry::rfc3339(rec.created_at)});
        if !self.write(&name_rel, 0, &claim)? {
            match self.read(&name_rel)? {
                // Ours already: an earlier attempt landed but its answer was lost.
                Some((d, _)) if d["id"] == json!(rec.id) => {}
                Some((d, version)) if self.is_abandoned(&d, rec.created_at)? => {
                    if !self.write(&name_rel, version, &claim)? {
                        return Err(taken().into());
                    }
                }
                // Soft-deleted by hand (`bao kv delete`): free.
                Some((Value::Null, version)) if self.write(&name_rel, version, &claim)? => {}
                // Deleted meanwhile: claim it like a fresh name.
                None if self.write(&name_rel, 0, &claim)? => {}
                _ => return Err(taken().into()),
            }
        }
        let secret_rel = format!("secrets/{}", rec.id);
        let secret_data = json!({"secret": secret.expose_secret()});
        let written = self.write(&secret_rel, 0, &secret_data).and_then(|fresh| {
            if !fresh {
                // An earlier attempt of ours landed; anything else is another key's.
                let ours = self
                    .read(&secret_rel)?
                    .is_some_and(|(d, _)| d["secret"].as_str() == Some(secret.expose_secret()));
                if !ours {
                    return Ok(false);
                }
            }
            self.write(&format!("keys/{}", rec.id), 0, &record_data(rec)?)
        });
        match written {
            Ok(true) => Ok(()),
            Ok(false) => {
                let ours = self
                    .read(&secret_rel)?
                    .is_some_and(|(d, _)| d["secret"].as_str() == Some(secret.expose_secret()))
                    && self
                        .entry(&rec.id)?
                        .is_some_and(|e| e.record.name == rec.name);
                if ours {
                    return Ok(());
                }
                let _ = self.destroy(&name_rel);
                Err(Error::conflict(format!(
                    "a key with ID {} already exists in OpenBao/Vault at {}",
                    rec.id, self.addr
                ))
                .into())
            }
            Err(e) => {
                if !crate::error::is_outcome_unknown(&e) {
                    let _ = self.destroy(&name_rel);
                }
                Err(e)
            }
        }
    }

    /// Every key record in the store. Entries are fetched on a few threads, since each
    /// is one round trip.
    pub fn records(&self) -> anyhow::Result<Vec<KeyRecord>> {
        let ids = self.list("keys")?;
        let chunk = ids.len().div_ceil(LIST_THREADS).max(1);
        let results: Vec<anyhow::Result<Vec<KeyRecord>>> = std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || -> anyhow::Result<Vec<KeyRecord>> {
                        let mut out = Vec::new();
                        for id in part {
                            // Deleted between LIST and GET: skip it.
                            if let Some(e) = self.entry(id)? {
                                out.push(e.record);
                            }
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("vault reader thread"))
                .collect()
        });
        let mut all = Vec::with_capacity(ids.len());
        for r in results {
            all.extend(r?);
        }
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// The records that KEY (an ID or a name) can mean: two or three round trips instead
    /// of listing the whole store.
    pub fn lookup(&self, key: &str) -> anyhow::Result<Vec<KeyRecord>> {
        let mut out: Vec<KeyRecord> = Vec::new();
        if let Some(e) = self.entry(key)? {
            out.push(e.record);
        }
        if let Some(id) = self.name_owner(key)?
            && !out.iter().any(|r| r.id == id)
            && let Some(e) = self.entry(&id)?
            && e.record.name == key
        {
            out.push(e.record);
        }
        Ok(out)
    }

    /// Changes a key's record team-wide with check-and-set: `change` is applied to the
    /// current record and written with its version, again on a fresh copy whenever
    /// another writer got there first. `change` returns false for "nothing to do".
    /// For `revoke` (sets `revoked_at`) and other record updates.
    pub fn update_record(
        &self,
        id: &str,
        mut change: impl FnMut(&mut KeyRecord) -> bool,
    ) -> anyhow::Result<KeyRecord> {
        for _ in 0..CAS_ATTEMPTS {
            let mut e = self.entry(id)?.ok_or_else(|| {
                Error::not_found(format!("OpenBao/Vault at {} has no key {id}", self.addr))
            })?;
            if !change(&mut e.record) {
                return Ok(e.record);
            }
            if self.write_entry(id, &e)? {
                return Ok(e.record);
            }
        }
        Err(Error::conflict(format!(
            "key {id} kept changing in OpenBao/Vault at {} while keyctl updated it; retry",
            self.addr
        ))
        .into())
    }

    fn write_entry(&self, id: &str, e: &Entry) -> anyhow::Result<bool> {
        self.write(&format!("keys/{id}"), e.version, &record_data(&e.record)?)
    }

    /// `GET auth/token/lookup-self`: the token's remaining TTL in seconds (0 = never
    /// expires) and its display name.
    pub fn token_ttl(&self) -> anyhow::Result<u64> {
        let url = format!(
            "{}/v1/auth/token/lookup-self",
            self.addr.trim_end_matches('/')
        );
        let r = self.call(Method::GET, &url, None)?;
        Ok(r.body["data"]["ttl"].as_u64().unwrap_or(0))
    }

    /// Whether the address reaches a standby, whose own reads can lag the leader.
    fn is_standby(&self) -> anyhow::Result<bool> {
        let url = format!(
            "{}/v1/sys/health?standbyok=true&perfstandbyok=true",
            self.addr
        );
        let r = self.call(Method::GET, &url, None)?;
        Ok(r.body["standby"].as_bool().unwrap_or(false))
    }

    /// How many keys the store holds; also proves the mount answers.
    pub fn count(&self) -> anyhow::Result<usize> {
        Ok(self.list("keys")?.len())
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
        self.destroy(&format!("secrets/{id}"))?;
        if self.name_owner(&e.record.name)?.as_deref() == Some(id) {
            self.destroy(&format!("names/{}", e.record.name))?;
        }
        Ok(true)
    }
}

/// The KV data of a key's metadata entry: its record, marked as kept in this store.
fn record_data(rec: &KeyRecord) -> anyhow::Result<Value> {
    let mut record = serde_json::to_value(rec)?;
    record["store"] = json!("vault");
    Ok(json!({ "record": record }))
}

/// A key ID or name that is one harmless path segment.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// HTTPS, except on loopback where nothing crosses a network.
fn check_addr(addr: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(addr).map_err(|e| {
        crate::error::usage(format!(
            "invalid OpenBao/Vault address {} ({e})",
            crate::output::quoted(addr)
        ))
    })?;
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(crate::error::usage(format!(
                "refusing plain http to {addr}: the token and secrets would cross the network unencrypted; use https (http only for 127.0.0.1/localhost)"
            )));
        }
        s => {
            return Err(crate::error::usage(format!(
                "invalid OpenBao/Vault address {addr}: scheme {s}, expected https"
            )));
        }
    }
    Ok(addr.trim_end_matches('/').to_owned())
}

/// `BAO_TOKEN`, `VAULT_TOKEN`, else the token helper's file `~/.vault-token`.
fn find_token() -> anyhow::Result<(SecretString, String)> {
    for var in ["BAO_TOKEN", "VAULT_TOKEN"] {
        if let Ok(t) = std::env::var(var)
            && !t.trim().is_empty()
        {
            return Ok((SecretString::from(t.trim().to_owned()), var.to_owned()));
        }
    }
    if let Some(home) = dirs::home_dir() {
        let path = home.join(".vault-token");
        if let Some(b) = crate::fsutil::read_optional(&path)? {
            let b = Zeroizing::new(b);
            let t = String::from_utf8_lossy(&b).trim().to_owned();
            if !t.is_empty() {
                return Ok((SecretString::from(t), path.display().to_string()));
            }
        }
    }
    Err(Error::store_unavailable(
        "no OpenBao/Vault token: set BAO_TOKEN or VAULT_TOKEN, or log in with `bao login` (it writes ~/.vault-token)",
    )
    .into())
}

/// A reqwest error's text without its URL (which carries no token, but is noise).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = String::new();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    if last.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_required_except_on_loopback() {
        for ok in [
            "https://vault.example.com:8200",
            "http://127.0.0.1:8200/",
            "http://localhost:8200",
            "http://[::1]:8200",
        ] {
            assert!(check_addr(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_addr("http://127.0.0.1:8200/").unwrap(),
            "http://127.0.0.1:8200"
        );
        for bad in [
            "http://vault.example.com:8200",
            "http://10.0.0.1:8200",
            "ftp://127.0.0.1",
            "vault.example.com",
        ] {
            assert!(check_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_plain_segments_reach_a_path() {
        for ok in ["ci", "kca_x.y-z", "a.."] {
            assert!(safe_segment(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a?b", "%2e"] {
            assert!(!safe_segment(bad), "{bad}");
        }
    }
}
