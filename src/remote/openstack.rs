//! Where OpenStack users already keep their Keystone settings, read the way the openstack
//! CLI reads them, so `keyctl remote add --from-env` / `--os-cloud NAME` needs nothing
//! typed twice: `OS_*` variables (an openrc file), or `clouds.yaml` merged with
//! `secure.yaml` from `OS_CLIENT_CONFIG_FILE`, the current directory,
//! `~/.config/openstack/` and `/etc/openstack/`. The password comes back as a secret for
//! the secret store; it is never written to config.yaml.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;
use serde_yaml_ng::Value;

use crate::error::usage;
use crate::output::quoted;

/// A Keystone login as OpenStack's own tools describe it.
#[derive(Default)]
pub struct Settings {
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub project_name: Option<String>,
    pub domain: Option<String>,
    pub password: Option<SecretString>,
    pub application_credential_id: Option<String>,
    pub application_credential_secret: Option<SecretString>,
    pub cacert: Option<PathBuf>,
    /// Where they came from, for messages.
    pub source: String,
}

/// From `OS_*` variables; `var` looks one up (the process environment in practice).
pub fn from_env(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    let s = Settings {
        auth_url: get("OS_AUTH_URL"),
        username: get("OS_USERNAME"),
        project_name: get("OS_PROJECT_NAME").or_else(|| get("OS_TENANT_NAME")),
        domain: get("OS_USER_DOMAIN_NAME")
            .or_else(|| get("OS_PROJECT_DOMAIN_NAME"))
            .or_else(|| get("OS_DOMAIN_NAME")),
        password: get("OS_PASSWORD").map(SecretString::from),
        application_credential_id: get("OS_APPLICATION_CREDENTIAL_ID"),
        application_credential_secret: get("OS_APPLICATION_CREDENTIAL_SECRET")
            .map(SecretString::from),
        cacert: get("OS_CACERT").map(PathBuf::from),
        source: "the OS_* environment variables".into(),
    };
    if s.auth_url.is_none() {
        return Err(usage(
            "--from-env: OS_AUTH_URL is not set (source your openrc file first)",
        ));
    }
    Ok(s)
}

/// The places the openstack CLI looks for `file` (clouds.yaml or secure.yaml), in order.
pub fn search_path(file: &str, explicit: Option<PathBuf>, home: Option<PathBuf>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        if file == "clouds.yaml" {
            out.push(p);
        } else if let Some(dir) = p.parent() {
            out.push(dir.join(file));
        }
    }
    out.push(PathBuf::from(file));
    if let Some(h) = home {
        out.push(h.join(".config/openstack").join(file));
    }
    out.push(Path::new("/etc/openstack").join(file));
    out
}

/// Cloud `name` from the first clouds.yaml found, with secure.yaml's values laid over it.
pub fn from_clouds(name: &str, clouds: &[PathBuf], secure: &[PathBuf]) -> anyhow::Result<Settings> {
    let Some(path) = clouds.iter().find(|p| p.is_file()) else {
        return Err(usage(format!(
            "--os-cloud {}: no clouds.yaml in {}",
            quoted(name),
            clouds
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let mut cloud = cloud_in(path, name)?.ok_or_else(|| {
        usage(format!(
            "--os-cloud {}: {} has no cloud of that name",
            quoted(name),
            path.display()
        ))
    })?;
    if let Some(sp) = secure.iter().find(|p| p.is_file())
        && let Some(extra) = cloud_in(sp, name)?
    {
        merge(&mut cloud, extra);
    }
    let auth = cloud.get("auth");
    let text = |v: Option<&Value>, k: &str| -> Option<String> {
        match v?.get(k)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    Ok(Settings {
        auth_url: text(auth, "auth_url"),
        username: text(auth, "username"),
        project_name: text(auth, "project_name"),
        domain: text(auth, "user_domain_name")
            .or_else(|| text(auth, "project_domain_name"))
            .or_else(|| text(auth, "domain_name")),
        password: text(auth, "password").map(SecretString::from),
        application_credential_id: text(auth, "application_credential_id"),
        application_credential_secret: text(auth, "application_credential_secret")
            .map(SecretString::from),
        cacert: text(Some(&cloud), "cacert").map(PathBuf::from),
        source: format!("cloud {} of {}", quoted(name), path.display()),
    })
}

fn cloud_in(path: &Path, name: &str) -> anyhow::Result<Option<Value>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: Value = serde_yaml_ng::from_slice(&bytes)
        .with_context(|| format!("{} is not YAML", path.display()))?;
    Ok(doc.get("clouds").and_then(|c| c.get(name)).cloned())
}

/// secure.yaml's values win, key by key, as in os-client-config.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_yaml_values_win_key_by_key() {
        let mut a: Value =
            serde_yaml_ng::from_str("auth: {auth_url: u, username: n, password: old}").unwrap();
        let b: Value = serde_yaml_ng::from_str("auth: {password: new}").unwrap();
        merge(&mut a, b);
        assert_eq!(a["auth"]["password"], Value::from("new"));
        assert_eq!(a["auth"]["username"], Value::from("n"));
    }
}
