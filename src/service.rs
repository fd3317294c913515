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
            Service::SodaCloud(e) => format!("Soda Cloud ({})", e.host),
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
        });
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["type"], "soda-cloud");
        assert_eq!(j["port"], "8443");
        assert_eq!(serde_json::from_value::<Service>(j).unwrap(), s);
        let l = serde_json::to_value(Service::Local).unwrap();
        assert_eq!(l, serde_json::json!({"type": "local"}));
    }
}
