//! What `keyctl doctor` says about the team store: where it is, whose token, how long the
//! token lasts, how many keys, and whether the address reaches a standby.

use super::VaultStore;
use crate::store::{SecretStore, Stores};

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
pub fn health(stores: &Stores) -> Health {
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
    let v: &VaultStore = match stores.vault() {
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
