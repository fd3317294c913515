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

use crate::net::urlencode;

/// Keystone's credential ID for an ec2 access key: it ignores client-chosen IDs.
pub fn credential_id(access: &str) -> String {
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
pub fn identity_root(url: &reqwest::Url) -> reqwest::Url {
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
