//! Remote services that check keys: the [`Remote`] trait every remote type implements,
//! the remotes' part of config.yaml, their credentials in the secret store, and the one
//! HTTP client they all share.
//!
//! The client is where the rules that hold for every remote live, so no remote type can
//! forget one: HTTPS except on loopback, a private CA with `ca_cert`, connect and total
//! timeouts, a size cap on replies, retries only for requests that are safe to repeat,
//! one `-v` line per request (method, URL, status, time: never a header or a body), and
//! the mapping of failures to exit codes (no usable answer: 6; an answer that says no: 7).

pub mod http;
pub mod keystone;
pub mod openstack;
pub mod soda;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::context::Ctx;
use crate::error::Error;
use crate::fsutil;
use crate::output::{Output, quoted, sanitize};
use crate::registry::RemoteLink;
use crate::store::{self, StoreKind};

/// Replies larger than this are refused rather than buffered.
const MAX_REPLY: u64 = 4 * 1024 * 1024;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Keystone application credential ID (its secret is in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credential_id: Option<String>,
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
pub struct RemoteCred {
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
pub struct Pushed {
    pub remote_id: String,
    pub user_id: Option<String>,
    /// The remote already had exactly this credential.
    pub already: bool,
}

/// A pair the remote minted; `secret` is shown only once by the service.
pub struct ServerMinted {
    pub access: String,
    pub secret: SecretString,
    pub remote_id: String,
    pub user_id: Option<String>,
}

pub struct Token {
    pub token: SecretString,
    pub expires_at: Option<OffsetDateTime>,
}

/// Who the remote's own credentials authenticate as.
#[derive(Serialize)]
pub struct Identity {
    /// The endpoint keyctl settled on (Keystone: the URL as given, with or without `/v3`).
    pub endpoint: String,
    pub user_id: String,
    pub project_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub token_expires_at: Option<OffsetDateTime>,
}

/// A service keyctl registers keys with.
pub trait Remote: Sync {
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
        let why = match self.token(access, secret) {
            Ok(_) => return Ok("it issued a token for the key".into()),
            Err(e) if is_usage(&e) => "it has no token exchange",
            Err(e) if format!("{e:#}").contains("HTTP 403") => {
                "this remote's user may not exchange tokens (HTTP 403)"
            }
            Err(e) => return Err(e),
        };
        match self.list(user_id) {
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

/// A usage error: the remote type cannot do what was asked.
pub fn is_usage(e: &anyhow::Error) -> bool {
    crate::error::kind_of(e) == Some(crate::error::Kind::Usage)
}

/// Opens the remote configured as `name`.
pub fn open<'a>(ctx: &'a Ctx, name: &str) -> anyhow::Result<Box<dyn Remote + 'a>> {
    let cfg = ctx.config.remotes.get(name).ok_or_else(|| {
        Error::not_found(format!(
            "no remote named {} (see `keyctl remote list`)",
            quoted(name)
        ))
    })?;
    open_config(ctx, name, cfg.clone())
}

/// Opens a remote from a configuration that need not be saved yet (`remote add`).
pub fn open_config<'a>(
    ctx: &'a Ctx,
    name: &str,
    cfg: RemoteConfig,
) -> anyhow::Result<Box<dyn Remote + 'a>> {
    Ok(match cfg.kind {
        RemoteType::Keystone => Box::new(keystone::Keystone::new(ctx, name, cfg)?),
        RemoteType::Http => Box::new(http::Http::new(ctx, name, cfg)?),
        RemoteType::Soda => Box::new(soda::Soda::new(ctx, name, cfg)?),
    })
}

// ---- config.yaml ----------------------------------------------------------------------

/// Validates a remote name: it becomes part of a keyring username and a YAML key.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::error::usage(format!(
            "remote name {} must be 1-64 characters of letters, digits, '-', '_' or '.'",
            quoted(name)
        )))
    }
}

/// Rewrites config.yaml with `change` applied to its `remotes:` map, under a lock and
/// atomically; every other key in the file is kept as it was.
pub fn edit_config(
    path: &Path,
    change: impl FnOnce(&mut BTreeMap<String, serde_yaml_ng::Value>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fsutil::ensure_private_dir(dir)?;
    let _lock = fsutil::lock_exclusive(&dir.join("config.lock"))?;
    let mut doc: serde_yaml_ng::Mapping = match fsutil::read_optional(path)? {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_yaml_ng::from_slice(&b)
            .with_context(|| format!("cannot read the config file {}", path.display()))?,
        _ => Default::default(),
    };
    let key = serde_yaml_ng::Value::from("remotes");
    let mut remotes: BTreeMap<String, serde_yaml_ng::Value> = match doc.get(&key) {
        Some(v) if !v.is_null() => serde_yaml_ng::from_value(v.clone())
            .with_context(|| format!("`remotes:` in {} is not a map", path.display()))?,
        _ => BTreeMap::new(),
    };
    change(&mut remotes)?;
    if remotes.is_empty() {
        doc.remove(&key);
    } else {
        doc.insert(key, serde_yaml_ng::to_value(&remotes)?);
    }
    let text = if doc.is_empty() {
        String::new()
    } else {
        serde_yaml_ng::to_string(&doc)?
    };
    fsutil::write_atomic(path, text.as_bytes())
}

// ---- secrets of remotes ---------------------------------------------------------------

/// Store username of a remote's own credential.
pub fn credential_slot(name: &str) -> String {
    format!("remote:{name}")
}

/// Store username of a remote's cached token.
pub fn token_slot(name: &str) -> String {
    format!("token:{name}")
}

/// Reads a remote's password or application-credential secret.
pub fn credential(ctx: &Ctx, name: &str, cfg: &RemoteConfig) -> anyhow::Result<SecretString> {
    store::open(ctx, cfg.secret_store)?
        .get(&credential_slot(name))
        .map_err(|e| {
            if crate::error::kind_of(&e) == Some(crate::error::Kind::NotFound) {
                Error::not_found(format!(
                    "the credential of remote {} is missing from the {} store; add the remote again",
                    quoted(name),
                    cfg.secret_store.as_str()
                ))
                .into()
            } else {
                e
            }
        })
}

// ---- the HTTP client ------------------------------------------------------------------

/// How a request authenticates.
pub enum Auth<'a> {
    None,
    /// Keystone's `X-Auth-Token`.
    XAuthToken(&'a SecretString),
    Bearer(&'a SecretString),
    Basic(&'a str, &'a SecretString),
}

/// A reply that was read whole (and capped).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The reqwest client and the remote's name, for messages.
pub struct Client {
    inner: reqwest::blocking::Client,
    pub name: String,
    pub base: reqwest::Url,
    out: Output,
    /// Every secret and token this client has sent (credentials in headers, secret-like
    /// fields of bodies): masked in any error text a server sends back, so a server or
    /// proxy that echoes the request never puts one into keyctl's output.
    sent: crate::mask::Masker,
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a remote's base URL and applies the HTTPS-except-loopback rule.
pub fn parse_url(raw: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(raw)
        .map_err(|e| crate::error::usage(format!("--url {}: {e}", quoted(raw))))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(crate::error::usage(format!(
                "--url {}: plain http is allowed only on loopback (127.0.0.1, ::1, localhost); use https",
                quoted(raw)
            )));
        }
        s => {
            return Err(crate::error::usage(format!(
                "--url {}: unsupported scheme {s}",
                quoted(raw)
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(crate::error::usage(
            "--url must not carry a user or password; they go in the keyring",
        ));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

fn duration_of(v: Option<&str>, default: Duration, what: &str) -> anyhow::Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| crate::error::usage(format!("{what} {}: {e}", quoted(s)))),
    }
}

impl Client {
    pub fn new(ctx: &Ctx, name: &str, cfg: &RemoteConfig) -> anyhow::Result<Client> {
        let base = parse_url(&cfg.url)?;
        let mut b = reqwest::blocking::Client::builder()
            .connect_timeout(duration_of(
                cfg.connect_timeout.as_deref(),
                DEFAULT_CONNECT_TIMEOUT,
                "connect_timeout",
            )?)
            .timeout(duration_of(
                cfg.timeout.as_deref(),
                DEFAULT_TIMEOUT,
                "timeout",
            )?)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyctl/", env!("CARGO_PKG_VERSION")));
        if base.scheme() == "http" {
            // Plain http is loopback only and redirects are off, so the system's CA
            // bundle (~150 files, ~10 ms to load) is needed only for https.
            b = b.tls_certs_only([]);
        }
        if let Some(ca) = &cfg.ca_cert {
            let pem = std::fs::read(ca)
                .with_context(|| format!("cannot read the CA certificate {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            b = b.tls_certs_merge([cert]);
        }
        Ok(Client {
            inner: b.build().context("cannot set up the HTTP client")?,
            name: name.to_string(),
            base,
            out: ctx.out.clone(),
            sent: Default::default(),
        })
    }

    /// Remembers a value to mask in error text from now on.
    pub fn hide(&self, value: &str) {
        self.sent.hide(value);
    }

    fn mask(&self, text: &str) -> String {
        self.sent.mask(text)
    }

    /// Remembers the secret-like string fields of a request body (passwords, secrets,
    /// tokens, keys), however deep.
    fn hide_body(&self, v: &serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                for (k, x) in o {
                    let k = k.to_ascii_lowercase();
                    match x {
                        serde_json::Value::String(s)
                            if ["secret", "password", "token", "blob"]
                                .iter()
                                .any(|w| k.contains(w)) =>
                        {
                            self.hide(s)
                        }
                        other => self.hide_body(other),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.hide_body(x)),
            _ => {}
        }
    }

    /// `path` relative to the remote's base URL.
    pub fn url(&self, path: &str) -> anyhow::Result<reqwest::Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("bad request path {}", quoted(path)))
    }

    /// Sends one request. `idempotent` requests are retried (twice, with backoff) when
    /// the remote could not be reached or answered 502/503/504. A 429 is retried for every
    /// request (the server did nothing), after the wait its `Retry-After` asks for (up to
    /// a minute: Soda Cloud counts per minute), with a note on stderr.
    pub fn send(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> anyhow::Result<Reply> {
        const ATTEMPTS: u32 = 3;
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            match self.send_once(&method, &url, &auth, body) {
                Ok(r) if !last && r.status == 429 => {
                    let wait = retry_after(&r)
                        .unwrap_or(delay)
                        .min(Duration::from_secs(60));
                    self.out.note(&format!(
                        "remote {} is rate-limiting (HTTP 429); waiting {} s as it asks, then retrying ({attempt}/{})",
                        self.name,
                        wait.as_secs_f64().ceil(),
                        ATTEMPTS - 1
                    ));
                    std::thread::sleep(wait);
                }
                Ok(r) if idempotent && !last && matches!(r.status, 502..=504) => {
                    let wait = retry_after(&r)
                        .unwrap_or(delay)
                        .min(Duration::from_secs(10));
                    self.out.debug(&format!(
                        "HTTP {} from remote {}; retrying in {} ms",
                        r.status,
                        self.name,
                        wait.as_millis()
                    ));
                    std::thread::sleep(wait);
                }
                Err(e) if idempotent && !last && is_unreachable(&e) => {
                    self.out
                        .debug(&format!("{e:#}; retrying in {} ms", delay.as_millis()));
                    std::thread::sleep(delay);
                }
                other => return other,
            }
            delay *= 3;
        }
        unreachable!("the last attempt always returns")
    }

    fn send_once(
        &self,
        method: &reqwest::Method,
        url: &reqwest::Url,
        auth: &Auth<'_>,
        body: Option<&serde_json::Value>,
    ) -> anyhow::Result<Reply> {
        let mut rb = self
            .inner
            .request(method.clone(), url.clone())
            .header("Accept", "application/json");
        let header = match auth {
            Auth::None => None,
            Auth::XAuthToken(t) => Some(("X-Auth-Token", t.expose_secret().to_string())),
            Auth::Bearer(t) => Some(("Authorization", format!("Bearer {}", t.expose_secret()))),
            Auth::Basic(u, p) => {
                use base64::Engine as _;
                let raw = zeroize::Zeroizing::new(format!("{u}:{}", p.expose_secret()));
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                Some(("Authorization", format!("Basic {enc}")))
            }
        };
        match auth {
            Auth::XAuthToken(t) | Auth::Bearer(t) | Auth::Basic(_, t) => {
                self.hide(t.expose_secret())
            }
            Auth::None => {}
        }
        if let Some(b) = body {
            self.hide_body(b);
        }
        if let Some((name, value)) = header {
            let value = zeroize::Zeroizing::new(value);
            if let Some((_, v)) = value.split_once(' ') {
                // The encoded Basic pair decodes to the secret: masked as well.
                self.hide(v);
            }
            let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                anyhow::anyhow!(
                    "the credential of remote {} is not a valid header value",
                    self.name
                )
            })?;
            v.set_sensitive(true);
            rb = rb.header(name, v);
        }
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let start = Instant::now();
        let shown = self.mask(&sanitize(url.as_str()));
        let result = rb
            .send()
            .map_err(|e| transport_reason(&e))
            .and_then(|resp| {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let mut body = Vec::new();
                resp.take(MAX_REPLY + 1)
                    .read_to_end(&mut body)
                    .map_err(|e| {
                        if e.kind() == std::io::ErrorKind::TimedOut
                            || e.to_string().contains("timed out")
                        {
                            "timed out while reading the reply".to_string()
                        } else {
                            format!("reply cut short: {e}")
                        }
                    })
                    .map(|_| (status, headers, body))
            });
        let ms = start.elapsed().as_millis();
        match result {
            Ok((status, headers, body)) => {
                self.out
                    .debug(&format!("{method} {shown} -> {status} in {ms} ms"));
                if body.len() as u64 > MAX_REPLY {
                    return Err(Error::remote_unreachable(format!(
                        "remote {} sent a reply larger than {} MiB to {method} {shown}",
                        self.name,
                        MAX_REPLY / 1024 / 1024
                    ))
                    .into());
                }
                Ok(Reply {
                    status,
                    headers,
                    body,
                })
            }
            Err(why) => {
                self.out
                    .debug(&format!("{method} {shown} -> {why} after {ms} ms"));
                Err(Error::remote_unreachable(format!(
                    "remote {} at {} is unreachable: {method} {shown} {why}",
                    self.name,
                    sanitize(self.base.as_str()),
                ))
                .into())
            }
        }
    }

    /// Parses a JSON reply; a reply that is not what the API promises means the
    /// remote is not usable (exit 6), not that it refused.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        reply: &Reply,
        what: &str,
    ) -> anyhow::Result<T> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            Error::remote_unreachable(format!(
                "remote {} sent a malformed reply to {what} (HTTP {}: {e})",
                self.name, reply.status
            ))
            .into()
        })
    }

    /// The error for a reply that is not a success: 4xx is a refusal (exit 7), anything
    /// else means the remote is not working (exit 6). The server's own message is kept,
    /// sanitized and cut short.
    pub fn failure(&self, reply: &Reply, what: &str) -> anyhow::Error {
        self.failure_hiding(reply, what, None)
    }

    /// [`Client::failure`] for a request that carried `secret`: a server that echoes its
    /// input in the error message must not put the secret into ours.
    pub fn failure_hiding(
        &self,
        reply: &Reply,
        what: &str,
        secret: Option<&SecretString>,
    ) -> anyhow::Error {
        if let Some(s) = secret {
            self.hide(s.expose_secret());
        }
        let msg = server_message(&reply.body).map(|m| self.mask(&m)).map(|m| {
            // Cut after masking, so a cut never leaves part of a secret behind.
            if m.chars().count() > 200 {
                format!("{}...", m.chars().take(200).collect::<String>())
            } else {
                m
            }
        });
        let detail = msg.map(|m| format!(" ({m})")).unwrap_or_default();
        let hint = match reply.status {
            401 => "; check the remote's credentials with `keyctl remote test`",
            403 => "; the remote's user lacks the permission (an admin role may be needed)",
            429 => "; the remote is rate-limiting: try again later",
            _ => "",
        };
        if (400..500).contains(&reply.status) {
            Error::remote_refused(format!(
                "remote {} refused to {what}: HTTP {}{detail}{hint}",
                self.name, reply.status
            ))
            .into()
        } else {
            Error::remote_unreachable(format!(
                "remote {} failed to {what}: HTTP {}{detail}",
                self.name, reply.status
            ))
            .into()
        }
    }
}

/// Why a request got no reply, in words (reqwest's Display names the URL and the
/// cause, never headers).
fn transport_reason(e: &reqwest::Error) -> String {
    let mut chain = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        chain = format!("{chain}: {c}");
        src = c.source();
    }
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect{chain}")
    } else {
        format!("failed{chain}")
    }
}

fn retry_after(r: &Reply) -> Option<Duration> {
    r.header("retry-after")?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

pub fn is_unreachable(e: &anyhow::Error) -> bool {
    crate::error::kind_of(e) == Some(crate::error::Kind::RemoteUnreachable)
}

/// The server's own words for an error: `error.message` (Keystone, OpenStack),
/// `message` or `error` from a JSON body, or else a text body (SODA Multicloud answers
/// `text/plain`) squeezed to one line. Control characters are removed; the caller masks
/// and cuts it.
fn server_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let m = v
            .pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .and_then(|m| m.as_str());
        if let Some(m) = m {
            return Some(sanitize(m));
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() || line.starts_with('<') || line.starts_with('{') {
        // Empty, an HTML error page (a proxy's), or JSON without a message.
        return None;
    }
    Some(sanitize(&line))
}
