//! Where OpenStack users already keep their Keystone settings, read the way openstacksdk
//! (and so the openstack CLI) reads them, so `keyctl remote add --from-env` /
//! `--os-cloud NAME` needs nothing typed twice and logs in exactly where `openstack` does:
//!
//! - `OS_*` variables (an openrc file, Horizon's included); with `OS_CLOUD` set, that
//!   cloud of clouds.yaml with the `OS_*` variables laid over it, as the CLI's flags are.
//! - The first of `OS_CLIENT_CONFIG_FILE`, `./clouds.{yaml,yml,json}`,
//!   `~/.config/openstack/`, `/etc/xdg/openstack/`, `/etc/openstack/`, merged with the first
//!   `secure.*` of `OS_CLIENT_SECURE_FILE` and the same directories
//!   (openstacksdk `config/loader.py`, `CONFIG_FILES` / `SECURE_FILES`).
//!
//! The user's domain and the project's domain are separate (name or ID each), as
//! keystoneauth sends them; `domain_name`/`domain_id` fills both where unset
//! (`_handle_domain_id`), and neither given means the domain ID `default`, as the
//! openstack CLI's `--os-default-domain` does. Forms keyctl cannot log in with (other
//! auth types, Identity v2, an unscoped or domain-scoped password login, `verify: false`
//! over https) are refused here with what to use instead, never guessed at.
//! Secrets (password, application-credential secret, token) come back as secrets for the
//! secret store; they are never written to config.yaml.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::SecretString;
use serde_yaml_ng::Value;
use zeroize::Zeroizing;

use crate::error::usage;
use crate::output::quoted;
use crate::service::DomainRef;

/// How the login proves who it is (clouds.yaml `auth_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthType {
    /// `password` / `v3password`.
    Password,
    /// `v3applicationcredential`.
    ApplicationCredential,
    /// `v3token` / `token`.
    Token,
}

/// A Keystone login as OpenStack's own tools describe it, checked: what keyctl cannot log
/// in with has been refused already.
pub(crate) struct Settings {
    pub auth_type: AuthType,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub user_domain: Option<DomainRef>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain: Option<DomainRef>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    /// The password, application-credential secret or token, whichever `auth_type` uses.
    pub secret: Option<SecretString>,
    pub cacert: Option<PathBuf>,
    pub region_name: Option<String>,
    /// Where they came from, for messages.
    pub source: String,
}

/// Settings as flat `key: value` pairs (clouds.yaml's `auth:` keys and its top-level keys,
/// or `OS_*` variables without the prefix, lower-cased), before they are checked.
#[derive(Default)]
struct Raw(BTreeMap<String, Zeroizing<String>>);

impl Raw {
    fn set(&mut self, key: &str, value: String) {
        let key = key.replace('-', "_");
        self.0.insert(key, Zeroizing::new(value));
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.as_str().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(SecretString::from)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

/// From `OS_*` variables; `var` looks one up (the process environment in practice), and
/// `clouds` finds cloud `OS_CLOUD` when it is set.
pub(crate) fn from_env(
    var: impl Fn(&str) -> Option<String>,
    files: &Files,
) -> anyhow::Result<Settings> {
    let get = |k: &str| var(k).filter(|v| !v.is_empty());
    let (mut raw, mut source) = match get("OS_CLOUD") {
        Some(cloud) => {
            let (raw, source) = load_cloud(&cloud, files)?;
            (
                raw,
                format!("{source} (OS_CLOUD) and the OS_* environment variables"),
            )
        }
        None => (Raw::default(), "the OS_* environment variables".to_string()),
    };
    for key in ENV_KEYS {
        if let Some(v) = get(&format!("OS_{}", key.to_ascii_uppercase())) {
            raw.set(key, v);
        }
    }
    for (old, new) in [("tenant_name", "project_name"), ("tenant_id", "project_id")] {
        if let Some(v) = get(&format!("OS_{}", old.to_ascii_uppercase()))
            && !raw.has(new)
        {
            raw.set(new, v);
        }
    }
    if !raw.has("auth_url") {
        source = "the OS_* environment variables".into();
        return Err(usage(format!(
            "--from-env: OS_AUTH_URL is not set and no OS_CLOUD names a cloud (source your openrc file first; read {source})"
        )));
    }
    build(raw, source)
}

/// The `OS_*` variables keyctl reads (without `OS_`, lower-cased); the rest are the
/// CLI's own options (interface, API versions of other services...) and change nothing
/// about the login.
const ENV_KEYS: &[&str] = &[
    "auth_type",
    "auth_url",
    "username",
    "user_id",
    "user_domain_name",
    "user_domain_id",
    "project_name",
    "project_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "password",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "token",
    "cacert",
    "insecure",
    "region_name",
    "identity_api_version",
    "system_scope",
    "passcode",
];

/// Where clouds.yaml and secure.yaml are looked for, in order.
pub(crate) struct Files {
    pub clouds: Vec<PathBuf>,
    pub secure: Vec<PathBuf>,
}

impl Files {
    /// openstacksdk's search: the file an environment variable names first, then the
    /// current directory, the user's and the site's config directories, each with the
    /// suffixes `.yaml`, `.yml`, `.json`.
    pub(crate) fn search(
        config_file: Option<PathBuf>,
        secure_file: Option<PathBuf>,
        home: Option<PathBuf>,
    ) -> Files {
        let mut dirs = vec![PathBuf::from(".")];
        if let Some(h) = home {
            dirs.push(h.join(".config/openstack"));
        }
        dirs.push(PathBuf::from("/etc/xdg/openstack"));
        dirs.push(PathBuf::from("/etc/openstack"));
        let list = |stem: &str, first: Option<PathBuf>| {
            let mut out: Vec<PathBuf> = first.into_iter().collect();
            for d in &dirs {
                for suffix in ["yaml", "yml", "json"] {
                    out.push(d.join(format!("{stem}.{suffix}")));
                }
            }
            out
        };
        Files {
            clouds: list("clouds", config_file),
            secure: list("secure", secure_file),
        }
    }
}

/// Cloud `name` from the first clouds file found, with the first secure file's values
/// laid over it.
pub(crate) fn from_clouds(name: &str, files: &Files) -> anyhow::Result<Settings> {
    let (raw, source) = load_cloud(name, files)?;
    build(raw, source)
}

fn load_cloud(name: &str, files: &Files) -> anyhow::Result<(Raw, String)> {
    let Some(path) = files.clouds.iter().find(|p| p.is_file()) else {
        return Err(usage(format!(
            "cloud {}: no clouds.yaml, clouds.yml or clouds.json in {}",
            quoted(name),
            dirs_of(&files.clouds)
        )));
    };
    let mut cloud = cloud_in(path, name)?.ok_or_else(|| {
        usage(format!(
            "cloud {}: {} has no cloud of that name",
            quoted(name),
            path.display()
        ))
    })?;
    if let Some(sp) = files.secure.iter().find(|p| p.is_file())
        && let Some(extra) = cloud_in(sp, name)?
    {
        merge(&mut cloud, extra);
    }
    if cloud.get("profile").is_some() {
        return Err(usage(format!(
            "cloud {} of {}: `profile:` (a vendor's clouds-public.yaml) is not read by keyctl; write auth_url and the other values into the cloud itself",
            quoted(name),
            path.display()
        )));
    }
    let mut raw = Raw::default();
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    if let Value::Mapping(top) = &cloud {
        for (k, v) in top {
            if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                raw.set(k, v);
            }
        }
    }
    if let Some(Value::Mapping(auth)) = cloud.get("auth") {
        for (k, v) in auth {
            if let (Some(k), Some(v)) = (k.as_str(), scalar(v)) {
                raw.set(k, v);
            }
        }
    }
    // `auth_token` and `auth-token` are old spellings of `token` (`_fix_backwards_auth`).
    if let Some(t) = raw.get("auth_token")
        && !raw.has("token")
    {
        raw.set("token", t);
    }
    Ok((raw, format!("cloud {} of {}", quoted(name), path.display())))
}

fn dirs_of(paths: &[PathBuf]) -> String {
    let mut dirs: Vec<String> = Vec::new();
    for p in paths {
        let d = p
            .parent()
            .map_or_else(|| ".".into(), |d| d.display().to_string());
        let d = if d.is_empty() { ".".into() } else { d };
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.join(", ")
}

/// Checks the settings and says what keyctl will log in with.
fn build(raw: Raw, source: String) -> anyhow::Result<Settings> {
    let refuse = |what: String| usage(format!("{source}: {what}"));
    if let Some(v) = raw.get("identity_api_version")
        && !v.starts_with('3')
    {
        return Err(refuse(format!(
            "identity_api_version {v}: keyctl speaks Identity v3 only (Keystone has had it since 2013; use the v3 auth URL)"
        )));
    }
    if raw.has("system_scope") {
        return Err(refuse(
            "system_scope: keyctl needs a project-scoped login (EC2 and application credentials belong to a project); set project_name or project_id instead".into(),
        ));
    }
    if raw.has("passcode") {
        return Err(refuse(
            "passcode (TOTP, multi-factor login): keyctl cannot prompt for one-time codes; log in with an application credential instead".into(),
        ));
    }
    let auth_type = match raw.get("auth_type").as_deref() {
        Some("password" | "v3password") => AuthType::Password,
        Some("v3applicationcredential" | "applicationcredential" | "application_credential") => {
            AuthType::ApplicationCredential
        }
        Some("v3token" | "token") => AuthType::Token,
        Some(other) => {
            return Err(refuse(format!(
                "auth_type {}: keyctl logs in with password, v3applicationcredential or v3token only (for single sign-on, create an application credential in Horizon and use it)",
                quoted(other)
            )));
        }
        None if raw.has("application_credential_secret")
            || raw.has("application_credential_id") =>
        {
            AuthType::ApplicationCredential
        }
        None if raw.has("token") && !raw.has("password") => AuthType::Token,
        None => AuthType::Password,
    };
    let insecure = match (raw.get("verify").as_deref(), raw.get("insecure").as_deref()) {
        (Some(v), _) if is_false(v) => true,
        (_, Some(v)) => !is_false(v),
        _ => false,
    };
    // `verify` may also be a CA file's path (requests' convention, which openstacksdk keeps).
    let cacert = raw
        .get("cacert")
        .or_else(|| raw.get("verify").filter(|v| !is_false(v) && !is_true(v)));
    let auth_url = raw.get("auth_url");
    if insecure && auth_url.as_deref().is_some_and(|u| u.starts_with("https:")) {
        return Err(refuse(
            "verify: false / insecure: keyctl does not turn TLS verification off; give the server's CA certificate as cacert (or --ca-cert FILE)".into(),
        ));
    }
    let domain = |name: &str, id: &str| -> Option<DomainRef> {
        raw.get(id)
            .map(DomainRef::Id)
            .or_else(|| raw.get(name).map(DomainRef::Name))
    };
    let any_domain = domain("domain_name", "domain_id");
    let mut s = Settings {
        auth_type,
        auth_url,
        username: raw.get("username"),
        user_id: raw.get("user_id"),
        user_domain: domain("user_domain_name", "user_domain_id").or(any_domain.clone()),
        project_name: raw.get("project_name"),
        project_id: raw.get("project_id"),
        project_domain: domain("project_domain_name", "project_domain_id").or(any_domain),
        application_credential_id: raw.get("application_credential_id"),
        application_credential_name: raw.get("application_credential_name"),
        secret: None,
        cacert: cacert.map(PathBuf::from),
        region_name: raw.get("region_name"),
        source,
    };
    match auth_type {
        AuthType::Password => s.secret = raw.secret("password"),
        AuthType::ApplicationCredential => s.secret = raw.secret("application_credential_secret"),
        AuthType::Token => s.secret = raw.secret("token"),
    }
    s.check()?;
    Ok(s)
}

fn is_false(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "false" | "no" | "0" | "off"
    )
}

fn is_true(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1" | "on")
}

impl Default for Settings {
    fn default() -> Settings {
        Settings::new(AuthType::Password, "")
    }
}

impl Settings {
    /// Nothing but how to log in and where the settings come from (the command line).
    pub(crate) fn new(auth_type: AuthType, source: &str) -> Settings {
        Settings {
            auth_type,
            auth_url: None,
            username: None,
            user_id: None,
            user_domain: None,
            project_name: None,
            project_id: None,
            project_domain: None,
            application_credential_id: None,
            application_credential_name: None,
            secret: None,
            cacert: None,
            region_name: None,
            source: source.to_string(),
        }
    }

    /// Refuses what keyctl cannot log in with, and fills the domains the openstack CLI
    /// fills (`--os-default-domain`, the domain ID `default`).
    pub(crate) fn check(&mut self) -> anyhow::Result<()> {
        let refuse = |what: &str| usage(format!("{}: {what}", self.source));
        match self.auth_type {
            AuthType::Password | AuthType::Token => {
                if self.auth_type == AuthType::Password
                    && self.username.is_none()
                    && self.user_id.is_none()
                {
                    return Err(refuse("a password login needs username or user_id"));
                }
                if self.project_name.is_none() && self.project_id.is_none() {
                    return Err(refuse(
                        "keyctl needs a project-scoped login (EC2 and application credentials belong to a project): set project_name or project_id",
                    ));
                }
                if self.username.is_some() && self.user_id.is_none() && self.user_domain.is_none() {
                    self.user_domain = Some(DomainRef::Id("default".into()));
                }
                if self.project_id.is_none() && self.project_domain.is_none() {
                    self.project_domain = Some(DomainRef::Id("default".into()));
                }
            }
            AuthType::ApplicationCredential => {
                if self.application_credential_id.is_none() {
                    if self.application_credential_name.is_none() {
                        return Err(refuse(
                            "an application credential login needs application_credential_id, or application_credential_name with username and user_domain_name (or user_id)",
                        ));
                    }
                    if self.user_id.is_none() && self.username.is_none() {
                        return Err(refuse(
                            "application_credential_name names a credential of a user: set username and user_domain_name (or user_id) too",
                        ));
                    }
                    if self.user_id.is_none() && self.user_domain.is_none() {
                        return Err(refuse(
                            "application_credential_name with username needs the user's domain too (user_domain_name or user_domain_id)",
                        ));
                    }
                }
                // The credential carries its own project; keystoneauth's plugin takes none.
                self.project_name = None;
                self.project_id = None;
                self.project_domain = None;
            }
        }
        Ok(())
    }
}

fn cloud_in(path: &Path, name: &str) -> anyhow::Result<Option<Value>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let doc: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?
    } else {
        serde_yaml_ng::from_slice(&bytes)
            .with_context(|| format!("{} is not YAML", path.display()))?
    };
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
    use secrecy::ExposeSecret;

    #[test]
    fn secure_yaml_values_win_key_by_key() {
        let mut a: Value =
            serde_yaml_ng::from_str("auth: {auth_url: u, username: n, password: old}").unwrap();
        let b: Value = serde_yaml_ng::from_str("auth: {password: new}").unwrap();
        merge(&mut a, b);
        assert_eq!(a["auth"]["password"], Value::from("new"));
        assert_eq!(a["auth"]["username"], Value::from("n"));
    }

    fn env(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(
            |k| m.get(k).cloned(),
            &Files {
                clouds: vec![],
                secure: vec![],
            },
        )
    }

    #[test]
    fn horizon_openrc_keeps_the_user_and_project_domains_apart() {
        let s = env(&[
            ("OS_AUTH_URL", "https://ks/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "p"),
            ("OS_USER_DOMAIN_NAME", "Users"),
            ("OS_PROJECT_DOMAIN_ID", "abc123"),
        ])
        .unwrap();
        assert_eq!(s.user_domain, Some(DomainRef::Name("Users".into())));
        assert_eq!(s.project_domain, Some(DomainRef::Id("abc123".into())));
        assert_eq!(s.secret.unwrap().expose_secret(), "pw");
    }

    #[test]
    fn no_domain_means_the_default_domain_id_as_the_cli_does() {
        let s = env(&[
            ("OS_AUTH_URL", "https://ks/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PROJECT_NAME", "p"),
        ])
        .unwrap();
        assert_eq!(s.user_domain, Some(DomainRef::Id("default".into())));
        assert_eq!(s.project_domain, Some(DomainRef::Id("default".into())));
        let s = env(&[
            ("OS_AUTH_URL", "https://ks/v3"),
            ("OS_USERNAME", "u"),
            ("OS_PROJECT_NAME", "p"),
            ("OS_DOMAIN_NAME", "D"),
        ])
        .unwrap();
        assert_eq!(s.user_domain, Some(DomainRef::Name("D".into())));
        assert_eq!(s.project_domain, Some(DomainRef::Name("D".into())));
    }

    #[test]
    fn forms_keyctl_cannot_log_in_with_are_refused_by_name() {
        let base = [("OS_AUTH_URL", "https://ks/v3"), ("OS_USERNAME", "u")];
        for (extra, says) in [
            (vec![("OS_AUTH_TYPE", "v3oidcpassword")], "auth_type"),
            (
                vec![("OS_PROJECT_NAME", "p"), ("OS_INSECURE", "true")],
                "TLS",
            ),
            (vec![], "project-scoped"),
            (
                vec![("OS_PROJECT_NAME", "p"), ("OS_IDENTITY_API_VERSION", "2")],
                "v3 only",
            ),
            (
                vec![
                    ("OS_AUTH_TYPE", "v3applicationcredential"),
                    ("OS_APPLICATION_CREDENTIAL_NAME", "ac"),
                ],
                "domain",
            ),
        ] {
            let mut all = base.to_vec();
            all.extend(extra);
            let e = env(&all).err().expect("refused");
            assert!(super::super::is_usage(&e), "{e:#}");
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
    }

    #[test]
    fn clouds_json_and_a_verify_path_as_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("clouds.json");
        std::fs::write(
            &p,
            r#"{"clouds": {"j": {"verify": "/etc/ca.pem", "auth": {"auth_url": "https://ks/v3",
               "username": "u", "project_id": "p1", "user_domain_id": "d1"}}}}"#,
        )
        .unwrap();
        let s = from_clouds(
            "j",
            &Files {
                clouds: vec![p],
                secure: vec![],
            },
        )
        .unwrap();
        assert_eq!(s.cacert, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(s.user_domain, Some(DomainRef::Id("d1".into())));
        assert_eq!(s.project_id.as_deref(), Some("p1"));
        assert_eq!(s.project_domain, None, "a project ID needs no domain");
    }

    #[test]
    fn search_path_is_openstacksdks() {
        let f = Files::search(
            Some("/x/c.yaml".into()),
            None,
            Some(PathBuf::from("/home/u")),
        );
        assert_eq!(f.clouds[0], PathBuf::from("/x/c.yaml"));
        assert_eq!(f.clouds[1], PathBuf::from("./clouds.yaml"));
        assert!(
            f.clouds
                .contains(&PathBuf::from("/home/u/.config/openstack/clouds.yml"))
        );
        assert!(
            f.clouds
                .contains(&PathBuf::from("/etc/openstack/clouds.json"))
        );
        assert_eq!(f.secure[0], PathBuf::from("./secure.yaml"));
    }
}
