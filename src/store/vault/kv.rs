//! The HTTP conversation with a KV v2 engine: one request through [`crate::net`], retried
//! while the cluster elects a leader or a standby catches up (for at most the retry
//! budget), and every answer classified into "use it", "retry" or a final failure. KV
//! primitives (read, check-and-set write, destroy, list) sit on top.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::VaultStore;

/// How long a refused connection is retried (a node restarting), against the whole
/// retry budget for elections.
const REFUSED_GRACE: Duration = Duration::from_secs(1);
use crate::error::Error;
use crate::net::{self, Auth, Method, TransportKind};

/// One HTTP answer, already classified.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
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

    pub(super) fn is_cas_mismatch(&self) -> bool {
        self.status == 400 && self.errors().contains("check-and-set")
    }
}

impl VaultStore {
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
        if let Some(s) = body.and_then(|b| b["data"]["secret"].as_str()) {
            self.client.hide(s);
        }
        let url =
            net::Url::parse(url).map_err(|e| anyhow::anyhow!("bad OpenBao/Vault URL: {e}"))?;
        let ns: Vec<(&'static str, &str)> = self
            .namespace
            .as_deref()
            .map(|n| ("X-Vault-Namespace", n))
            .into_iter()
            .collect();
        let req = net::Request {
            method,
            url,
            auth: Auth::Header("X-Vault-Token", &self.token),
            headers: &ns,
            body,
        };
        let start = Instant::now();
        let deadline = start + self.retry;
        let mut pause = Duration::from_millis(100);
        let spinner = self
            .out
            .wait(format!("waiting for OpenBao/Vault at {}", self.addr));
        loop {
            let why = match self.client.send(&req) {
                // An untrusted certificate will not fix itself: say so at once.
                Err(t) if t.kind == TransportKind::Certificate => {
                    return Err(Error::store_unavailable(format!(
                        "cannot verify the TLS certificate of OpenBao/Vault at {} ({t}): if it uses a private CA, point BAO_CACERT (or vault.ca_cert) at its PEM file",
                        self.addr,
                    ))
                    .into());
                }
                Err(t) if t.kind == TransportKind::TooLarge => {
                    return Err(Error::store_unavailable(format!(
                        "OpenBao/Vault at {} {t}",
                        self.addr
                    ))
                    .into());
                }
                // Nobody listens at the address: a wrong BAO_ADDR or a stopped server,
                // not an election (a restarting node is given a second).
                Err(t) if t.kind == TransportKind::Refused && start.elapsed() >= REFUSED_GRACE => {
                    return Err(self.unavailable(&t.detail, start));
                }
                Err(t) => t.detail,
                Ok(mut reply) => {
                    let status = reply.status;
                    let retry_after = reply.retry_after();
                    let raw = Zeroizing::new(std::mem::take(&mut reply.body));
                    let text = String::from_utf8_lossy(&raw);
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
                    match self.classify(Reply { status, body })? {
                        Ok(r) => return Ok(r),
                        Err(why) => {
                            if let Some(wait) = retry_after {
                                pause = pause.max(wait.min(Duration::from_secs(2)));
                            }
                            why
                        }
                    }
                }
            };
            if Instant::now() + pause > deadline {
                return Err(self.unavailable(&why, start));
            }
            spinner.set_message(format!(
                "OpenBao/Vault at {}: retrying in {} ms ({})",
                self.addr,
                pause.as_millis(),
                why
            ));
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// The final "not available" error: the outcome of a write is unknown (it may have
    /// landed before the answer was lost), so repeating the command is the way forward.
    fn unavailable(&self, why: &str, since: Instant) -> anyhow::Error {
        Error::store_unavailable(format!(
            "OpenBao/Vault at {} is not available ({why}), still after {:.0} s; retry later: keyctl's writes are check-and-set, so repeating the command is safe",
            self.addr,
            since.elapsed().as_secs_f64().max(1.0)
        ))
        .outcome_unknown()
        .into()
    }

    fn mask(&self, text: &str) -> String {
        self.client.mask(text)
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
    pub(super) fn read(&self, rel: &str) -> anyhow::Result<Option<(Value, u64)>> {
        let mut r = self.call(Method::GET, &self.url("data", rel), None)?;
        let version = r.body["data"]["metadata"]["version"].as_u64().unwrap_or(0);
        if r.status == 404 && version == 0 {
            return Ok(None);
        }
        Ok(Some((r.body["data"]["data"].take(), version)))
    }

    /// Ok(true) when written, Ok(false) on a check-and-set mismatch.
    pub(super) fn write(&self, rel: &str, cas: u64, data: &Value) -> anyhow::Result<bool> {
        let body = json!({"options": {"cas": cas}, "data": data});
        let r = self.call(Method::POST, &self.url("data", rel), Some(&body))?;
        Ok(!r.is_cas_mismatch())
    }

    /// Keeps at most `n` versions of `rel` (KV v2 keeps 10 by default).
    pub(super) fn keep_versions(&self, rel: &str, n: u64) -> anyhow::Result<()> {
        let body = json!({ "max_versions": n });
        self.call(Method::POST, &self.url("metadata", rel), Some(&body))?;
        Ok(())
    }

    pub(super) fn destroy(&self, rel: &str) -> anyhow::Result<()> {
        self.call(Method::DELETE, &self.url("metadata", rel), None)?;
        Ok(())
    }

    pub(super) fn list(&self, rel: &str) -> anyhow::Result<Vec<String>> {
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
    pub(super) fn is_standby(&self) -> anyhow::Result<bool> {
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
