//! The HTTP client every remote type uses: [`crate::net`] with the remotes' retry policy
//! (idempotent requests retried on no answer or 502-504, any request on 429 after the
//! wait it asks for) and their reading of failures (no usable answer: exit 6; an answer
//! that says no: exit 7), with the server's own words kept, sanitized, masked and cut.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::RemoteConfig;
use crate::error::Error;
use crate::net::{self, Auth, Method, Reply, TransportKind, Url};
use crate::output::{Output, quoted, sanitize};

/// A request that got no usable answer.
struct Failed {
    err: anyhow::Error,
    timed_out: bool,
    /// The transport's reason, short, for the spinner.
    why: String,
}

/// The HTTP client of one remote ([`crate::net`]) and its name, for messages.
pub(crate) struct Client {
    net: net::Client,
    pub name: String,
    pub base: Url,
    out: Output,
}

fn duration_of(v: Option<&str>, default: Duration, what: &str) -> anyhow::Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| crate::error::usage(format!("{what} {}: {e}", quoted(s)))),
    }
}

impl Client {
    pub(crate) fn new(out: &Output, name: &str, cfg: &RemoteConfig) -> anyhow::Result<Client> {
        Self::at(out, name, &cfg.url, Some(cfg))
    }

    /// A client for `url` with the TLS and timeout settings of `cfg`, if any (a key's own
    /// service address, which may differ from the remote's URL or need no remote).
    pub(crate) fn at(
        out: &Output,
        name: &str,
        url: &str,
        cfg: Option<&RemoteConfig>,
    ) -> anyhow::Result<Client> {
        let base = net::parse_url(url, "--url")?;
        let endpoint = net::Endpoint {
            label: format!("remote {name}"),
            base: base.clone(),
            ca_cert: cfg.and_then(|c| c.ca_cert.as_deref()),
            connect_timeout: duration_of(
                cfg.and_then(|c| c.connect_timeout.as_deref()),
                net::DEFAULT_CONNECT_TIMEOUT,
                "connect_timeout",
            )?,
            timeout: duration_of(
                cfg.and_then(|c| c.timeout.as_deref()),
                net::DEFAULT_TIMEOUT,
                "timeout",
            )?,
        };
        Ok(Client {
            net: net::Client::new(out, &endpoint)?,
            name: name.to_string(),
            base,
            out: out.clone(),
        })
    }

    /// Remembers a value to mask in error text from now on.
    pub(crate) fn hide(&self, value: &str) {
        self.net.hide(value);
    }

    fn mask(&self, text: &str) -> String {
        self.net.mask(text)
    }

    /// `path` relative to the remote's base URL.
    pub(crate) fn url(&self, path: &str) -> anyhow::Result<Url> {
        // Joined to `base`, which a remote type may have adjusted (Keystone's `/v3`).
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| anyhow::anyhow!("bad request path {}: {e}", quoted(path)))
    }

    /// Sends one request. `idempotent` requests are retried (twice, with backoff) when
    /// the remote could not be reached or answered 502/503/504. A 429 is retried for every
    /// request (the server did nothing), after the wait its `Retry-After` asks for (up to
    /// a minute: Soda Cloud counts per minute), with a note on stderr.
    pub(crate) fn send(
        &self,
        method: Method,
        url: Url,
        auth: Auth<'_>,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> anyhow::Result<Reply> {
        const ATTEMPTS: u32 = 3;
        let mut delay = Duration::from_millis(200);
        let shown = self.mask(&sanitize(url.as_str()));
        let spinner = self.out.wait(format!(
            "waiting for remote {} ({method} {shown})",
            self.name
        ));
        let retrying = |attempt: u32, wait: Duration, why: &str| {
            spinner.set_message(format!(
                "remote {}: retrying {}/{ATTEMPTS} in {} s: {why}",
                self.name,
                attempt + 1,
                wait.as_secs_f64().ceil()
            ));
        };
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            match self.send_once(&method, &url, &auth, body) {
                Ok(r) if !last && r.status == 429 => {
                    let wait = r
                        .retry_after()
                        .unwrap_or(delay)
                        .min(Duration::from_secs(60));
                    self.out.note(&format!(
                        "remote {} is rate-limiting (HTTP 429); waiting {} s as it asks, then retrying ({attempt}/{})",
                        self.name,
                        wait.as_secs_f64().ceil(),
                        ATTEMPTS - 1
                    ));
                    retrying(attempt, wait, "HTTP 429");
                    std::thread::sleep(wait);
                }
                Ok(r) if idempotent && !last && matches!(r.status, 502..=504) => {
                    let wait = r
                        .retry_after()
                        .unwrap_or(delay)
                        .min(Duration::from_secs(10));
                    self.out.debug(&format!(
                        "HTTP {} from remote {}; retrying in {} ms",
                        r.status,
                        self.name,
                        wait.as_millis()
                    ));
                    retrying(attempt, wait, &format!("HTTP {}", r.status));
                    std::thread::sleep(wait);
                }
                // A server that did not answer within the timeout is not asked again
                // (that would triple a long wait); one that refused or dropped the
                // connection may be restarting.
                Err(f) if idempotent && !last && !f.timed_out => {
                    self.out.debug(&format!(
                        "{:#}; retrying in {} ms",
                        f.err,
                        delay.as_millis()
                    ));
                    retrying(attempt, delay, &f.why);
                    std::thread::sleep(delay);
                }
                Err(f) => return Err(f.err),
                Ok(r) => return Ok(r),
            }
            delay *= 3;
        }
        unreachable!("the last attempt always returns")
    }

    fn send_once(
        &self,
        method: &Method,
        url: &Url,
        auth: &Auth<'_>,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Failed> {
        let req = net::Request {
            method: method.clone(),
            url: url.clone(),
            auth: *auth,
            headers: &[],
            body,
        };
        self.net.send(&req).map_err(|t| {
            let shown = self.mask(&sanitize(url.as_str()));
            let msg = if t.kind == TransportKind::TooLarge {
                format!("remote {} {t} to {method} {shown}", self.name)
            } else {
                format!("remote {} is unreachable: {method} {shown}: {t}", self.name)
            };
            Failed {
                err: Error::remote_unreachable(msg).into(),
                timed_out: t.kind == TransportKind::Timeout,
                why: t.detail,
            }
        })
    }

    /// Parses a JSON reply; a reply that is not what the API promises means the
    /// remote is not usable (exit 6), not that it refused.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(
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
    pub(crate) fn failure(&self, reply: &Reply, what: &str) -> anyhow::Error {
        self.failure_hiding(reply, what, None)
    }

    /// [`Client::failure`] for a request that carried `secret`: a server that echoes its
    /// input in the error message must not put the secret into ours.
    pub(crate) fn failure_hiding(
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
            .with_http_status(reply.status)
            .into()
        } else {
            Error::remote_unreachable(format!(
                "remote {} failed to {what}: HTTP {}{detail}",
                self.name, reply.status
            ))
            .with_http_status(reply.status)
            .into()
        }
    }
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
