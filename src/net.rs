//! Every HTTP request keyctl makes goes through here: the remotes (Keystone, Soda Cloud,
//! JSON services) and the team store (OpenBao/Vault) alike. Rules that must hold for every
//! request therefore live in one place, where no caller can forget one:
//! - HTTPS, except on loopback where nothing crosses a network; no user or password in a
//!   URL; a private CA when one is named; the system's roots otherwise;
//! - connect and total timeouts, no redirects (a redirect could carry a token elsewhere),
//!   keyctl's user agent;
//! - a size cap on every reply, read whole before anyone parses it;
//! - one `-v` line per request (method, URL, status or failure, time: never a header or a
//!   body);
//! - every credential and secret a request carries is remembered and masked in any text
//!   that comes back ([`crate::mask`]), so a server echoing its input cannot leak one;
//! - failures without an answer are classified ([`TransportKind`]), and `Retry-After` is
//!   parsed, for the callers' retry policies (which differ: a remote retries a few times,
//!   the team store rides out a leader election).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};

#[cfg(not(target_vendor = "apple"))]
mod tls;

use crate::mask::Masker;
use crate::output::{Output, quoted, sanitize};

/// Replies larger than this are refused rather than buffered.
pub(crate) const MAX_REPLY: u64 = 4 * 1024 * 1024;
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) use reqwest::{Method, Url};

/// How to reach one service.
pub(crate) struct Endpoint<'a> {
    /// What a person calls the service ("remote ks", "OpenBao/Vault"), for the spinner.
    pub label: String,
    /// Already checked by [`parse_url`].
    pub base: Url,
    /// PEM file of a private CA to trust in addition to the system's roots.
    pub ca_cert: Option<&'a Path>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Trusts the private CA in `pem` besides the system's roots; with rustls, also a server
/// whose certificate is that CA itself (self-signed), as curl does ([`tls`]).
#[cfg(not(target_vendor = "apple"))]
fn with_ca(b: reqwest::ClientBuilder, pem: &[u8]) -> Option<reqwest::ClientBuilder> {
    Some(b.tls_backend_preconfigured(tls::config_with_ca(pem)?))
}

/// Trusts the private CA in `pem` besides the system's roots (native TLS: the Security
/// framework's own rules for a self-signed server certificate).
#[cfg(target_vendor = "apple")]
fn with_ca(b: reqwest::ClientBuilder, pem: &[u8]) -> Option<reqwest::ClientBuilder> {
    Some(b.tls_certs_merge([reqwest::Certificate::from_pem(pem).ok()?]))
}

/// Parses a service's base URL (`what` names where it came from, for the error) and
/// applies the HTTPS-except-loopback rule. The path ends in `/`, so relative joins stay
/// under it.
pub(crate) fn parse_url(raw: &str, what: &str) -> anyhow::Result<Url> {
    let mut url =
        Url::parse(raw).map_err(|e| crate::error::usage(format!("{what} {}: {e}", quoted(raw))))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(crate::error::usage(format!(
                "{what} {}: refusing plain http, which would carry tokens and secrets unencrypted; use https (plain http is allowed only on loopback: 127.0.0.1, ::1, localhost)",
                quoted(raw)
            )));
        }
        s => {
            return Err(crate::error::usage(format!(
                "{what} {}: unsupported scheme {s}, expected https",
                quoted(raw)
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(crate::error::usage(format!(
            "{what} must not carry a user or password; they go in the keyring"
        )));
    }
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    /// A header that carries the token as it is (`X-Auth-Token`, `X-Vault-Token`).
    Header(&'static str, &'a SecretString),
    Bearer(&'a SecretString),
    Basic(&'a str, &'a SecretString),
}

/// One request.
pub(crate) struct Request<'a> {
    pub method: Method,
    pub url: Url,
    pub auth: Auth<'a>,
    /// Other headers, never secret (a Vault namespace).
    pub headers: &'a [(&'static str, &'a str)],
    pub body: Option<&'a serde_json::Value>,
}

/// A reply that was read whole (and capped).
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The wait a `Retry-After: SECONDS` header asks for.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")?
            .trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    }
}

/// Why a request got no usable reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// Nothing (or not all of the reply) came back in time.
    Timeout,
    /// Nobody accepted the connection: a wrong address or a stopped server. Waiting
    /// rarely helps, unlike a timeout.
    Refused,
    /// The connection could not be made for another reason (DNS, unreachable network).
    Connect,
    /// The server's TLS certificate is not trusted: retrying will not fix it.
    Certificate,
    /// The reply was larger than [`MAX_REPLY`].
    TooLarge,
    Other,
}

/// A failure without a usable reply, in words that carry no header or body.
#[derive(Debug)]
pub(crate) struct Transport {
    pub kind: TransportKind,
    pub detail: String,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// An HTTP client for one service.
pub(crate) struct Client {
    inner: reqwest::Client,
    /// Runs this client's requests on the calling thread ([`Client::send`]); a client
    /// shared by threads runs theirs side by side.
    rt: tokio::runtime::Runtime,
    label: String,
    out: Output,
    /// Every secret and token this client has sent: masked in any text that comes back.
    sent: Masker,
    /// The whole request's deadline, reply body included (as curl --max-time).
    timeout: Duration,
}

impl Client {
    pub(crate) fn new(out: &Output, ep: &Endpoint<'_>) -> anyhow::Result<Client> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(ep.connect_timeout)
            .timeout(ep.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("keyctl/", env!("CARGO_PKG_VERSION")));
        if ep.base.scheme() == "http" {
            // Plain http is loopback only and redirects are off, so the system's CA
            // bundle (~150 files, ~10 ms to load) is needed only for https.
            b = b.tls_certs_only([]);
        }
        if let Some(ca) = ep.ca_cert {
            let unreadable = || {
                crate::error::usage(format!(
                    "cannot read a PEM CA certificate from {}",
                    ca.display()
                ))
            };
            let pem = std::fs::read(ca).map_err(|_| unreadable())?;
            b = with_ca(b, &pem).ok_or_else(unreadable)?;
        }
        Ok(Client {
            inner: b.build().context("cannot set up the HTTP client")?,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot set up the HTTP client")?,
            label: ep.label.clone(),
            out: out.clone(),
            sent: Masker::default(),
            timeout: ep.timeout,
        })
    }

    /// Remembers a value to mask in text from the other side from now on.
    pub(crate) fn hide(&self, value: &str) {
        self.sent.hide(value);
    }

    /// `text` (from the other side) with every secret this client sent masked.
    pub(crate) fn mask(&self, text: &str) -> String {
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
                            self.hide(s);
                            // Keystone's EC2 blob is JSON in a string: its secret alone
                            // may come back too.
                            if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s) {
                                self.hide_body(&inner);
                            }
                        }
                        other => self.hide_body(other),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| self.hide_body(x)),
            _ => {}
        }
    }

    /// Sends one request, once, and reads the reply whole (capped).
    pub(crate) fn send(&self, req: &Request<'_>) -> Result<Reply, Transport> {
        let mut rb = self
            .inner
            .request(req.method.clone(), req.url.clone())
            .header("Accept", "application/json");
        let header = match &req.auth {
            Auth::None => None,
            Auth::Header(name, t) => Some((*name, t.expose_secret().to_string())),
            Auth::Bearer(t) => Some(("Authorization", format!("Bearer {}", t.expose_secret()))),
            Auth::Basic(u, p) => {
                use base64::Engine as _;
                let raw = zeroize::Zeroizing::new(format!("{u}:{}", p.expose_secret()));
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                Some(("Authorization", format!("Basic {enc}")))
            }
        };
        match &req.auth {
            Auth::Header(_, t) | Auth::Bearer(t) | Auth::Basic(_, t) => {
                self.hide(t.expose_secret())
            }
            Auth::None => {}
        }
        if let Some(b) = req.body {
            self.hide_body(b);
        }
        if let Some((name, value)) = header {
            let value = zeroize::Zeroizing::new(value);
            if let Some((_, v)) = value.split_once(' ') {
                // The encoded Basic pair decodes to the secret: masked as well.
                self.hide(v);
            }
            let mut v = reqwest::header::HeaderValue::from_str(&value).map_err(|_| Transport {
                kind: TransportKind::Other,
                detail: "the credential is not a valid header value".into(),
            })?;
            v.set_sensitive(true);
            rb = rb.header(name, v);
        }
        for (name, value) in req.headers {
            rb = rb.header(*name, *value);
        }
        if let Some(b) = req.body {
            rb = rb.json(b);
        }
        let start = Instant::now();
        let method = &req.method;
        let shown = self.mask(&sanitize(req.url.as_str()));
        let spinner = self
            .out
            .wait(format!("waiting for {} ({method} {shown})", self.label));
        // One deadline for the whole exchange, reply body included, so a server trickling
        // a byte at a time cannot keep a reply going past it. The request is driven on the
        // calling thread: no thread of its own and no hand-offs between threads, which were
        // most of what one request to a nearby server cost (`scan` makes one while it walks).
        let exchange = async {
            let resp = rb.send().await.map_err(|e| {
                let (t, causes) = transport(&e);
                (t, Some(causes))
            })?;
            read_capped(resp).await.map_err(|t| (t, None))
        };
        let result = match self
            .rt
            .block_on(async { tokio::time::timeout(self.timeout, exchange).await })
        {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err((t, chain))) => {
                if let Some(c) = chain {
                    self.out.debug(&self.mask(&sanitize(&c)));
                }
                Err(t)
            }
            Err(_) => Err(Transport {
                kind: TransportKind::Timeout,
                detail: format!(
                    "timed out: no whole reply within {} s",
                    self.timeout.as_secs_f64()
                ),
            }),
        };
        drop(spinner);
        let ms = start.elapsed().as_millis();
        match &result {
            Ok(r) => self
                .out
                .debug(&format!("{method} {shown} -> {} in {ms} ms", r.status)),
            Err(t) => self.out.debug(&format!(
                "{method} {shown} -> {} after {ms} ms",
                self.mask(&t.detail)
            )),
        }
        result.map_err(|t| Transport {
            kind: t.kind,
            detail: self.mask(&t.detail),
        })
    }
}

/// The reply's body, read whole unless it passes [`MAX_REPLY`].
async fn read_capped(mut resp: reqwest::Response) -> Result<Reply, Transport> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        if e.is_timeout() {
            Transport {
                kind: TransportKind::Timeout,
                detail: "timed out while reading the reply".into(),
            }
        } else {
            Transport {
                kind: TransportKind::Other,
                detail: format!("reply cut short: {e}"),
            }
        }
    })? {
        if (body.len() + chunk.len()) as u64 > MAX_REPLY {
            return Err(Transport {
                kind: TransportKind::TooLarge,
                detail: format!("sent a reply larger than {} MiB", MAX_REPLY / 1024 / 1024),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Why a request got no reply, in a few words: the innermost cause reqwest chains (the
/// specific one: "Name or service not known", not "client error (Connect)"), never headers;
/// and the whole chain of causes, for `-v`.
fn transport(e: &reqwest::Error) -> (Transport, String) {
    let mut chain = String::new();
    let mut inner = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        chain = format!("{chain}: {c}");
        inner = c.to_string();
        src = c.source();
    }
    // "Connection refused (os error 111)": the number says nothing more to a person.
    if let Some(at) = inner.find(" (os error ") {
        inner.truncate(at);
    }
    let inner = inner.to_ascii_lowercase();
    let lower = chain.to_ascii_lowercase();
    let (kind, detail) = if e.is_timeout() {
        (TransportKind::Timeout, "timed out".to_string())
    } else if lower.contains("certificate") {
        (TransportKind::Certificate, format!("TLS failed: {inner}"))
    } else if e.is_connect() && lower.contains("refused") {
        (TransportKind::Refused, "connection refused".to_string())
    } else if e.is_connect() {
        (TransportKind::Connect, format!("cannot connect: {inner}"))
    } else {
        (TransportKind::Other, format!("failed: {inner}"))
    };
    let t = Transport {
        kind,
        detail: sanitize(&detail),
    };
    (t, format!("{e}{chain}"))
}

/// Percent-encodes all but RFC 3986 unreserved characters (AWS's and Python's quote),
/// for a value that becomes part of a URL path or query.
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_unreserved_only() {
        assert_eq!(urlencode("a b/c~d:e"), "a%20b%2Fc~d%3Ae");
    }

    #[test]
    fn https_required_except_on_loopback() {
        for ok in [
            "https://vault.example.com:8200",
            "http://127.0.0.1:8200",
            "http://[::1]:8200/",
            "http://localhost:5000/v3",
        ] {
            assert!(parse_url(ok, "--url").is_ok(), "{ok}");
        }
        for bad in [
            "http://vault.example.com:8200",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
            "https://user:pw@example.com",
            "not a url",
        ] {
            assert!(parse_url(bad, "--url").is_err(), "{bad}");
        }
        let e = parse_url("http://example.com", "--url").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("refusing plain http") && msg.contains("only on loopback"),
            "{msg}"
        );
    }

    #[test]
    fn base_path_ends_in_a_slash() {
        let u = parse_url("https://h.example/v3", "--url").unwrap();
        assert_eq!(u.as_str(), "https://h.example/v3/");
    }

    #[test]
    fn retry_after_in_seconds() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", " 7 ".parse().unwrap());
        let r = Reply {
            status: 429,
            headers,
            body: Vec::new(),
        };
        assert_eq!(r.retry_after(), Some(Duration::from_secs(7)));
    }
}
