//! Which service issued a key and where it works. Everything a key can do follows from
//! this: what `create`/`rotate` may mint and where, what `revoke` must call, what `verify`
//! checks (what the service's own client does to log in, at the address the key's snippet
//! names), what the snippet looks like, and whether `scan` may call a found key dead.
//!
//! It is recorded with the key (`KeyRecord::service`), so the answer never depends on
//! which remotes happen to be configured today. A key keyctl cannot tie to a service is
//! `Local`, and every output says so.
//!
//! This file is the shared shape; the variants' behaviour lives with their services
//! (`remote/soda.rs`, `remote/keystone/`, `render/`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who issued a key and where it works.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Service {
    /// Minted by keyctl and registered with no service.
    #[default]
    Local,
    /// A Soda Cloud API key (minted in Soda Cloud's UI, imported) or runner key (minted by
    /// `POST /api/v1/runners`). The endpoint is what the key's `soda_cloud` block names.
    SodaCloud(SodaEndpoint),
    /// A Keystone EC2 credential (access/secret), what S3 / Swift-S3 clients use.
    KeystoneEc2(KeystoneScope),
    /// A Keystone application credential (id/secret), what the openstack CLI and SDKs use.
    KeystoneAppCredential(KeystoneScope),
    /// A SODA Multicloud AK/SK (an EC2 credential in the Keystone Multicloud uses).
    Multicloud(HttpEndpoint),
    /// An OVH Data Platform IAM key (minted in the OVH Control Panel, imported).
    Ovh(HttpEndpoint),
    /// Another JSON REST service described in config.yaml.
    Http(HttpEndpoint),
}

/// Where Soda Core sends the key: `{scheme}://{host}{:port}/api`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SodaEndpoint {
    pub host: String,
    /// Kept as a string: Soda Core 4 accepts `port` only as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// `https` when absent (Soda Core's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Nobody said where the key works (`import` with no `--region`/`--host`): `host` is
    /// Soda Core's default, so `--write` keeps the host an existing block names.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assumed: bool,
}

/// A domain named by name or by ID, as openstacksdk takes either.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainRef {
    Name(String),
    Id(String),
}

/// Where a Keystone credential works: the auth URL, and the user and project it belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoneScope {
    pub auth_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_domain: Option<DomainRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_domain: Option<DomainRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    /// Where S3 clients send an EC2 credential: the public `s3` endpoint in Keystone's
    /// catalog, else the root of its `object-store` one (Swift's s3api serves S3 there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
}

/// A service known by its base URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpEndpoint {
    pub url: String,
}

impl Service {
    /// A short name for people: "Soda Cloud (cloud.soda.io)", "local (no service)".
    pub fn describe(&self) -> String {
        match self {
            Service::Local => "local (registered with no service)".into(),
            Service::SodaCloud(e) if e.assumed => format!(
                "Soda Cloud ({}, Soda Core's default host: none was given)",
                e.base_url()
            ),
            Service::SodaCloud(e) => format!("Soda Cloud ({})", e.base_url()),
            Service::KeystoneEc2(s) => format!("Keystone EC2 credential ({})", s.auth_url),
            Service::KeystoneAppCredential(s) => {
                format!("Keystone application credential ({})", s.auth_url)
            }
            Service::Multicloud(e) => format!("SODA Multicloud ({})", e.url),
            Service::Ovh(e) => format!("OVH Data Platform ({})", e.url),
            Service::Http(e) => format!("JSON REST service ({})", e.url),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Service::Local)
    }

    /// The Soda Cloud endpoint, for a Soda Cloud key.
    pub fn soda(&self) -> Option<&SodaEndpoint> {
        match self {
            Service::SodaCloud(e) => Some(e),
            _ => None,
        }
    }

    /// The service mints every key itself and takes none from clients: a key keyctl mints
    /// locally never works there, and a successor must come from the service.
    pub fn mints_own_keys(&self) -> bool {
        matches!(self, Service::SodaCloud(_) | Service::Ovh(_))
    }

    /// What to do in the service's own console to replace a key keyctl cannot mint
    /// there (a Soda Cloud API key made in its UI), or None where keyctl can.
    pub fn rotate_by_hand(&self, id: &str) -> Option<String> {
        match self {
            Service::SodaCloud(e) => Some(format!(
                "Soda Cloud mints API keys only in its UI, so keyctl cannot rotate key {id}: in Soda Cloud ({}) open your profile, API keys, create a new key, then `keyctl import --kind api --name NAME --id NEW_KEY_ID` (secret on stdin) and `keyctl config NAME --write FILE`; delete key {id} there once nothing uses it, then `keyctl revoke {id}`",
                e.base_url()
            )),
            Service::Ovh(e) => Some(format!(
                "OVH mints its keys in its Control Panel, so keyctl cannot rotate key {id}: create a new one there ({}), `keyctl import` it, then delete {id} there and `keyctl revoke {id}`",
                e.url
            )),
            _ => None,
        }
    }

    /// What still has to be done in the service after keyctl revoked a key only here (a
    /// key keyctl cannot delete there), or None.
    pub fn revoke_by_hand(&self, id: &str) -> Option<String> {
        match self {
            Service::SodaCloud(e) => Some(format!(
                "key {id} still works in Soda Cloud until it is deleted there: in Soda Cloud ({}) open your profile, API keys (a runner key: Runners), and delete {id}",
                e.base_url()
            )),
            Service::Ovh(e) => Some(format!(
                "key {id} still works at OVH until it is deleted in the OVH Control Panel ({})",
                e.url
            )),
            _ => None,
        }
    }

    /// The service of a record an older keyctl wrote, inferred from what it recorded:
    /// the remotes it was pushed to (as configured now), else the Soda host `create`
    /// remembered, else none.
    pub fn infer(
        rec: &crate::registry::KeyRecord,
        remotes: &BTreeMap<String, crate::remote::RemoteConfig>,
    ) -> Service {
        use crate::remote::RemoteType;
        for l in &rec.remotes {
            let Some(cfg) = remotes.get(&l.remote) else {
                continue;
            };
            // Records written before keys knew their service name only these types: a
            // remote type added since never needs inferring.
            if cfg.kind == RemoteType::Soda {
                if let Some(e) = SodaEndpoint::from_url(&cfg.url) {
                    return Service::SodaCloud(e);
                }
            } else if cfg.kind == RemoteType::Keystone {
                return Service::KeystoneEc2(KeystoneScope {
                    auth_url: cfg.url.clone(),
                    user_id: l.user_id.clone(),
                    project_name: cfg.project.clone(),
                    ..KeystoneScope::default()
                });
            } else if cfg.kind == RemoteType::Http {
                let e = HttpEndpoint {
                    url: cfg.url.clone(),
                };
                return match cfg.profile.as_deref() {
                    Some("multicloud") => Service::Multicloud(e),
                    Some("ovh") => Service::Ovh(e),
                    _ => Service::Http(e),
                };
            }
        }
        match rec
            .extra
            .get(crate::render::HOST_FIELD)
            .and_then(|v| v.as_str())
        {
            Some(h) => Service::SodaCloud(SodaEndpoint::host(h)),
            None => Service::Local,
        }
    }
}

impl SodaEndpoint {
    /// A host with Soda Core's defaults (https, its port).
    pub fn host(host: &str) -> SodaEndpoint {
        SodaEndpoint {
            host: host.to_ascii_lowercase(),
            port: None,
            scheme: None,
            assumed: false,
        }
    }

    /// The endpoint of a Soda remote's URL (`https://cloud.us.soda.io:8443`).
    pub fn from_url(url: &str) -> Option<SodaEndpoint> {
        let u = crate::net::parse_url(url, "--url").ok()?;
        let scheme = u.scheme().to_string();
        Some(SodaEndpoint {
            host: u.host_str()?.to_ascii_lowercase(),
            port: u.port().map(|p| p.to_string()),
            scheme: (scheme != "https").then_some(scheme),
            assumed: false,
        })
    }

    /// `https` unless the block says otherwise (Soda Core's default).
    pub fn scheme(&self) -> &str {
        self.scheme.as_deref().unwrap_or("https")
    }

    /// `{scheme}://{host}{:port}`: where Soda Core sends the key, and the runner's
    /// `soda.cloud.endpoint`.
    pub fn base_url(&self) -> String {
        match &self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme(), self.host),
            None => format!("{}://{}", self.scheme(), self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_tagged_json() {
        let s = Service::SodaCloud(SodaEndpoint {
            host: "cloud.us.soda.io".into(),
            port: Some("8443".into()),
            scheme: None,
            assumed: false,
        });
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["type"], "soda-cloud");
        assert_eq!(j["port"], "8443");
        assert_eq!(serde_json::from_value::<Service>(j).unwrap(), s);
        let l = serde_json::to_value(Service::Local).unwrap();
        assert_eq!(l, serde_json::json!({"type": "local"}));
    }

    #[test]
    fn a_soda_endpoint_is_where_soda_core_sends_the_key() {
        let e = SodaEndpoint::from_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(e.port.as_deref(), Some("8080"));
        assert_eq!(e.scheme.as_deref(), Some("http"));
        assert_eq!(e.base_url(), "http://127.0.0.1:8080");
        let eu = SodaEndpoint::from_url("https://Cloud.Soda.io").unwrap();
        assert_eq!(eu, SodaEndpoint::host("cloud.soda.io"));
        assert_eq!(eu.base_url(), "https://cloud.soda.io");
        assert!(Service::SodaCloud(eu.clone()).mints_own_keys());
        assert!(!Service::Local.mints_own_keys());
        assert!(Service::SodaCloud(eu).rotate_by_hand("k").is_some());
        assert!(Service::Local.revoke_by_hand("k").is_none());
    }
}
