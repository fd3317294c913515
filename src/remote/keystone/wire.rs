//! Keystone's wire formats as keyctl uses them: the replies it reads (only the fields it
//! needs), the ID Keystone gives an `ec2` credential (SHA-256 of its access key), the
//! Identity root behind any form of auth URL, and the AWS signature version 2 request
//! body of `POST /v3/ec2tokens`, which proves a secret without sending it.

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::super::{AuthMethod, RemoteConfig};
use crate::net::urlencode;
use crate::service::DomainRef;

/// The user's domain: its own field, else the old shared `domain`.
pub(super) fn user_domain(cfg: &RemoteConfig) -> Option<DomainRef> {
    domain_of(
        &cfg.user_domain_id,
        &cfg.user_domain_name,
        cfg.domain.as_deref(),
    )
}

/// The project's domain: its own field, else the old shared `domain`.
pub(super) fn project_domain(cfg: &RemoteConfig) -> Option<DomainRef> {
    domain_of(
        &cfg.project_domain_id,
        &cfg.project_domain_name,
        cfg.domain.as_deref(),
    )
}

fn domain_of(id: &Option<String>, name: &Option<String>, old: Option<&str>) -> Option<DomainRef> {
    id.clone()
        .map(DomainRef::Id)
        .or_else(|| name.clone().map(DomainRef::Name))
        .or_else(|| old.map(|d| DomainRef::Name(d.to_string())))
}

fn domain_json(d: &DomainRef) -> serde_json::Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(n) => json!({ "name": n }),
    }
}

/// A user as `POST /v3/auth/tokens` names it: by ID, or by name in its domain (the
/// domain ID `default` when none is configured, as the openstack CLI assumes).
fn user_json(cfg: &RemoteConfig) -> serde_json::Value {
    match (&cfg.user_id, &cfg.user) {
        (Some(id), _) => json!({ "id": id }),
        (None, name) => json!({
            "name": name,
            "domain": domain_json(&user_domain(cfg).unwrap_or(DomainRef::Id("default".into()))),
        }),
    }
}

/// The project scope: by ID, or by name in the project's domain.
fn scope_json(cfg: &RemoteConfig) -> serde_json::Value {
    match (&cfg.project_id, &cfg.project) {
        (Some(id), _) => json!({"project": { "id": id }}),
        (None, name) => json!({"project": {
            "name": name,
            "domain": domain_json(&project_domain(cfg).unwrap_or(DomainRef::Id("default".into()))),
        }}),
    }
}

/// The body of `POST /v3/auth/tokens` for a remote's own login, as keystoneauth's v3
/// plugins send it: the user's domain under `identity.password.user.domain`, the
/// project's under `scope.project.domain`. None: the auth method is not Keystone's.
pub(super) fn auth_body(cfg: &RemoteConfig, secret: &str) -> Option<serde_json::Value> {
    Some(match cfg.auth {
        AuthMethod::Password => {
            let mut user = user_json(cfg);
            user["password"] = json!(secret);
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": scope_json(cfg),
            }})
        }
        AuthMethod::Token => json!({"auth": {
            "identity": {"methods": ["token"], "token": {"id": secret}},
            "scope": scope_json(cfg),
        }}),
        AuthMethod::ApplicationCredential => {
            let ac = match &cfg.application_credential_id {
                Some(id) => json!({ "id": id, "secret": secret }),
                None => json!({
                    "name": cfg.application_credential_name,
                    "secret": secret,
                    "user": user_json(cfg),
                }),
            };
            json!({"auth": {
                "identity": {"methods": ["application_credential"], "application_credential": ac}
            }})
        }
        _ => return None,
    })
}

/// Keystone's credential ID for an ec2 access key: it ignores client-chosen IDs.
pub(crate) fn credential_id(access: &str) -> String {
    hex(&Sha256::digest(access.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
pub(super) struct TokenBody {
    pub(super) token: TokenInfo,
}

#[derive(Deserialize)]
pub(super) struct TokenInfo {
    #[serde(with = "time::serde::rfc3339")]
    pub(super) expires_at: OffsetDateTime,
    pub(super) user: IdOnly,
    #[serde(default)]
    pub(super) project: Option<IdOnly>,
    /// How the token was obtained (`password`, `application_credential`, `token`...).
    #[serde(default)]
    pub(super) methods: Vec<String>,
    #[serde(default, rename = "OS-TRUST:trust")]
    pub(super) trust: Option<serde_json::Value>,
}

impl TokenInfo {
    /// A token of an application credential or a trust: Keystone hides EC2 credentials
    /// from its listings and refuses it everything else on `/v3/credentials`.
    pub(super) fn delegated(&self) -> bool {
        self.trust.is_some() || self.methods.iter().any(|m| m == "application_credential")
    }
}

#[derive(Deserialize)]
pub(super) struct IdOnly {
    pub(super) id: String,
}

#[derive(Deserialize)]
pub(super) struct Credential {
    pub(super) id: String,
    #[serde(default)]
    pub(super) user_id: Option<String>,
    #[serde(default, rename = "type")]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) blob: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CredentialBody {
    pub(super) credential: Credential,
}

#[derive(Deserialize)]
pub(super) struct CredentialList {
    pub(super) credentials: Vec<Credential>,
}

/// The ec2 blob. Its secret is read only to compare it; it is never printed.
#[derive(Deserialize)]
pub(super) struct Blob {
    pub(super) access: String,
    #[serde(default)]
    pub(super) secret: Option<SecretString>,
}

/// The Identity service's root, whatever form of URL people have: `OS_AUTH_URL` usually
/// ends in `/v3` (`http://host:5000/v3`, devstack's `http://host/identity/v3`), some
/// have none (`http://host/identity`). Requests add `v3/...` to the root.
pub(crate) fn identity_root(url: &reqwest::Url) -> reqwest::Url {
    let mut u = url.clone();
    let path = u.path().trim_end_matches('/').to_string();
    if let Some(root) = path.strip_suffix("/v3") {
        u.set_path(&format!("{root}/"));
    } else {
        u.set_path(&format!("{path}/"));
    }
    u
}

/// The `credentials` object of `POST /v3/ec2tokens`: a request signed with AWS
/// signature version 2, which proves the secret without sending it.
pub(super) fn ec2_signed(
    access: &str,
    secret: &SecretString,
    now: OffsetDateTime,
) -> serde_json::Value {
    let (host, verb, path) = ("keyctl", "POST", "/");
    let ts = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut params = std::collections::BTreeMap::new();
    params.insert("AWSAccessKeyId", access.to_string());
    params.insert("Action", "GetToken".to_string());
    params.insert("SignatureMethod", "HmacSHA256".to_string());
    params.insert("SignatureVersion", "2".to_string());
    params.insert("Timestamp", ts);
    let qs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    let to_sign = format!("{verb}\n{host}\n{path}\n{}", qs.join("&"));
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    json!({
        "access": access, "host": host, "verb": verb, "path": path,
        "params": params, "signature": signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> RemoteConfig {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_user_domain_and_the_project_domain_go_where_keystoneauth_puts_them() {
        let c = cfg(
            "{type: keystone, url: u, auth: password, secret_store: file, user: alice, \
             user_domain_name: Users, project: p, project_domain_id: d42}",
        );
        let b = auth_body(&c, "pw").unwrap();
        let user = &b["auth"]["identity"]["password"]["user"];
        assert_eq!(user["domain"], json!({"name": "Users"}));
        assert_eq!(user["password"], "pw");
        assert_eq!(
            b["auth"]["scope"]["project"]["domain"],
            json!({"id": "d42"})
        );
        // An old config's single `domain` still means both.
        let c = cfg(
            "{type: keystone, url: u, auth: password, secret_store: file, user: a, \
             project: p, domain: Old}",
        );
        let b = auth_body(&c, "pw").unwrap();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"]["domain"]["name"],
            "Old"
        );
        assert_eq!(b["auth"]["scope"]["project"]["domain"]["name"], "Old");
        // IDs need no domain.
        let c = cfg(
            "{type: keystone, url: u, auth: password, secret_store: file, user_id: u1, \
             project_id: p1}",
        );
        let b = auth_body(&c, "pw").unwrap();
        assert_eq!(
            b["auth"]["identity"]["password"]["user"],
            json!({"id": "u1", "password": "pw"})
        );
        assert_eq!(b["auth"]["scope"], json!({"project": {"id": "p1"}}));
    }

    #[test]
    fn an_application_credential_by_name_names_its_user() {
        let c = cfg(
            "{type: keystone, url: u, auth: application-credential, secret_store: file, \
             application_credential_name: ci, user: alice, user_domain_name: Users}",
        );
        let b = auth_body(&c, "s").unwrap();
        assert_eq!(
            b["auth"]["identity"]["application_credential"],
            json!({"name": "ci", "secret": "s", "user": {"name": "alice", "domain": {"name": "Users"}}})
        );
        assert!(b["auth"].get("scope").is_none());
    }

    #[test]
    fn credential_id_is_sha256_of_access() {
        assert_eq!(
            credential_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn identity_root_accepts_every_auth_url_form() {
        for (given, root) in [
            ("http://h:5000", "http://h:5000/"),
            ("http://h:5000/", "http://h:5000/"),
            ("http://h:5000/v3", "http://h:5000/"),
            ("http://h:5000/v3/", "http://h:5000/"),
            ("https://h/identity", "https://h/identity/"),
            ("https://h/identity/", "https://h/identity/"),
            ("https://h/identity/v3", "https://h/identity/"),
            ("https://h/identity/v3/", "https://h/identity/"),
        ] {
            let u = reqwest::Url::parse(given).unwrap();
            assert_eq!(identity_root(&u).as_str(), root, "{given}");
        }
    }
}

/// The S3 endpoint of a `GET /v3/auth/catalog` reply (`{"catalog": [{"type", "endpoints":
/// [{"interface", "url", "region_id"}]}]}`, Keystone's API reference): the public `s3`
/// endpoint, else the scheme, host and port of the public `object-store` one (Swift's
/// s3api answers at the proxy's root). In `region` when given and listed. Only an http(s)
/// URL with a host is taken: it ends up in a shell line.
pub(crate) fn s3_endpoint(catalog: &serde_json::Value, region: Option<&str>) -> Option<String> {
    let entries = catalog.get("catalog")?.as_array()?;
    let public = |kind: &str| -> Option<url::Url> {
        let eps: Vec<&serde_json::Value> = entries
            .iter()
            .filter(|e| e.get("type").and_then(|t| t.as_str()) == Some(kind))
            .flat_map(|e| {
                e.get("endpoints")
                    .and_then(|v| v.as_array())
                    .into_iter()
                    .flatten()
            })
            .filter(|ep| ep.get("interface").and_then(|i| i.as_str()) == Some("public"))
            .collect();
        let in_region = eps.iter().find(|ep| {
            region.is_some_and(|r| {
                ep.get("region_id").and_then(|v| v.as_str()) == Some(r)
                    || ep.get("region").and_then(|v| v.as_str()) == Some(r)
            })
        });
        let ep = in_region.or(eps.first())?;
        let u = url::Url::parse(ep.get("url")?.as_str()?).ok()?;
        (matches!(u.scheme(), "http" | "https") && u.host_str().is_some()).then_some(u)
    };
    if let Some(u) = public("s3") {
        return Some(u.as_str().trim_end_matches('/').to_string());
    }
    let mut u = public("object-store")?;
    u.set_path("");
    u.set_query(None);
    u.set_fragment(None);
    Some(u.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod s3_tests {
    use serde_json::json;

    use super::s3_endpoint;

    #[test]
    fn s3_first_then_the_object_store_root_in_the_region_asked() {
        let c = json!({"catalog": [
            {"type": "object-store", "endpoints": [
                {"interface": "public", "region_id": "One", "url": "https://swift.one:8080/v1/AUTH_p"},
                {"interface": "public", "region_id": "Two", "url": "https://swift.two:8080/v1/AUTH_p"},
                {"interface": "internal", "region_id": "One", "url": "http://10.0.0.1:8080/v1/AUTH_p"}
            ]},
            {"type": "identity", "endpoints": [{"interface": "public", "url": "https://ks/v3"}]}
        ]});
        assert_eq!(
            s3_endpoint(&c, None).as_deref(),
            Some("https://swift.one:8080")
        );
        assert_eq!(
            s3_endpoint(&c, Some("Two")).as_deref(),
            Some("https://swift.two:8080")
        );
        let mut with_s3 = c.clone();
        with_s3["catalog"].as_array_mut().unwrap().push(json!(
            {"type": "s3", "endpoints": [{"interface": "public", "url": "https://s3.example/"}]}
        ));
        assert_eq!(
            s3_endpoint(&with_s3, None).as_deref(),
            Some("https://s3.example")
        );
        let bad = json!({"catalog": [{"type": "s3", "endpoints": [
            {"interface": "public", "url": "javascript:alert(1)"}]}]});
        assert_eq!(s3_endpoint(&bad, None), None);
        assert_eq!(s3_endpoint(&json!({}), None), None);
    }
}
