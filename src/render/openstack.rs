//! What OpenStack users paste, for keys Keystone issued: an application credential as a
//! `clouds.yaml` entry (`auth_type: v3applicationcredential`) or openrc lines
//! (`OS_AUTH_TYPE`, `OS_AUTH_URL`, `OS_APPLICATION_CREDENTIAL_ID`/`_SECRET`), the form
//! openstacksdk and the openstack CLI read; an EC2 credential as the
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` lines S3 clients read.
//!
//! A Keystone key has nothing to do with Soda Cloud: the Soda forms (`soda_cloud` block,
//! Helm values, `SODA_API_KEY_*`) and their flags are refused here, with what to use.
//! Every value is quoted for its syntax: a secret may begin with `-` or hold any byte.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::{Choices, OutputFormat, SecretRef, sh_quote, yaml_quote};
use crate::error::usage;
use crate::service::{KeystoneScope, Service};

/// The cloud's name in a rendered clouds.yaml entry: the key's name.
pub(crate) struct KeystoneKey<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub secret: &'a str,
}

/// Is this a key Keystone issued (rendered here, never as a Soda snippet)?
pub(crate) fn is_keystone(service: Option<&Service>) -> bool {
    matches!(
        service,
        Some(Service::KeystoneAppCredential(_) | Service::KeystoneEc2(_))
    )
}

/// Checks the render flags against a Keystone key and picks the format: an application
/// credential is `yaml` (clouds.yaml, the default), `env` (openrc) or `json`; an EC2
/// credential is `env` (the default) or `json`.
pub(crate) fn resolve(
    service: &Service,
    c: &Choices,
    json_default: bool,
) -> anyhow::Result<OutputFormat> {
    let (what, forms) = match service {
        Service::KeystoneAppCredential(_) => (
            "a Keystone application credential",
            "--output yaml (a clouds.yaml entry), env (openrc lines) or json",
        ),
        _ => (
            "a Keystone EC2 credential",
            "--output env (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY lines) or json",
        ),
    };
    let soda_flag = if c.region.is_some() {
        Some("--region")
    } else if c.host.is_some() {
        Some("--host")
    } else if c.secret_ref != SecretRef::Literal {
        Some("--secret-ref")
    } else if c.soda_version.is_some() {
        Some("--soda-version")
    } else {
        None
    };
    if let Some(flag) = soda_flag {
        return Err(usage(format!(
            "{flag} is for Soda Cloud snippets; this key is {what}: use {forms}"
        )));
    }
    let ec2 = matches!(service, Service::KeystoneEc2(_));
    let default = match (json_default, ec2) {
        (true, _) => OutputFormat::Json,
        (false, true) => OutputFormat::Env,
        (false, false) => OutputFormat::Yaml,
    };
    match c.output.unwrap_or(default) {
        f @ (OutputFormat::Env | OutputFormat::Json) => Ok(f),
        OutputFormat::Yaml if !ec2 => Ok(OutputFormat::Yaml),
        other => Err(usage(format!(
            "--output {}: that is a Soda Cloud form; this key is {what}: use {forms}",
            other.as_str()
        ))),
    }
}

/// A stored key (`parts`) in the Keystone form `choices` ask for (not `--json`'s default).
pub(crate) fn render_chosen(
    service: &Service,
    choices: &Choices,
    parts: &super::KeyParts,
) -> anyhow::Result<Zeroizing<String>> {
    let format = resolve(service, choices, false)?;
    let key = KeystoneKey {
        id: parts.id,
        name: parts.name,
        secret: parts.secret,
    };
    render(service, format, &key)
}

/// The snippet for a Keystone key in a format [`resolve`] allowed.
pub(crate) fn render(
    service: &Service,
    format: OutputFormat,
    k: &KeystoneKey,
) -> anyhow::Result<Zeroizing<String>> {
    match (service, format) {
        (Service::KeystoneAppCredential(s), OutputFormat::Yaml) => Ok(clouds_yaml(s, k)),
        (Service::KeystoneAppCredential(s), OutputFormat::Env) => Ok(openrc(s, k)),
        (Service::KeystoneAppCredential(s), OutputFormat::Json) => {
            let mut auth = serde_json::json!({
                "auth_url": s.auth_url,
                "application_credential_id": k.id,
                "application_credential_secret": k.secret,
            });
            let mut cloud = serde_json::json!({"auth_type": "v3applicationcredential"});
            if let Some(r) = &s.region_name {
                cloud["region_name"] = r.clone().into();
            }
            cloud["auth"] = std::mem::take(&mut auth);
            let doc = serde_json::json!({"clouds": { k.name: cloud }});
            Ok(Zeroizing::new(format!(
                "{}\n",
                serde_json::to_string_pretty(&doc)?
            )))
        }
        (Service::KeystoneEc2(s), OutputFormat::Env) => Ok(ec2_env(s, k)),
        (Service::KeystoneEc2(s), OutputFormat::Json) => Ok(Zeroizing::new(format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "AWS_ACCESS_KEY_ID": k.id,
                "AWS_SECRET_ACCESS_KEY": k.secret,
                "AWS_ENDPOINT_URL": s.s3_endpoint,
                "keystone_auth_url": s.auth_url,
            }))?
        ))),
        _ => Err(usage("this format does not apply to a Keystone key")),
    }
}

/// A whole clouds.yaml with one cloud, named after the key; paste the cloud under an
/// existing file's `clouds:` or save it as `~/.config/openstack/clouds.yaml`.
fn clouds_yaml(s: &KeystoneScope, k: &KeystoneKey) -> Zeroizing<String> {
    let mut o = Zeroizing::new(String::new());
    let _ = writeln!(o, "clouds:");
    let _ = writeln!(o, "  {}:", yaml_quote(k.name));
    let _ = writeln!(o, "    auth_type: v3applicationcredential");
    if let Some(r) = &s.region_name {
        let _ = writeln!(o, "    region_name: {}", yaml_quote(r));
    }
    let _ = writeln!(o, "    auth:");
    let _ = writeln!(o, "      auth_url: {}", yaml_quote(&s.auth_url));
    let _ = writeln!(o, "      application_credential_id: {}", yaml_quote(k.id));
    o.push_str("      application_credential_secret: ");
    super::yaml_quote_into(&mut o, k.secret);
    o.push('\n');
    o
}

/// openrc lines for sh (`. ./app-openrc.sh`); the password variables of a user's openrc
/// would make the CLI try a password login, so they are unset.
fn openrc(s: &KeystoneScope, k: &KeystoneKey) -> Zeroizing<String> {
    let mut o = Zeroizing::new(String::new());
    let _ = writeln!(
        o,
        "unset OS_USERNAME OS_USER_ID OS_PASSWORD OS_PROJECT_NAME OS_PROJECT_ID OS_TENANT_NAME OS_TENANT_ID OS_USER_DOMAIN_NAME OS_USER_DOMAIN_ID OS_PROJECT_DOMAIN_NAME OS_PROJECT_DOMAIN_ID OS_DOMAIN_NAME OS_DOMAIN_ID OS_CLOUD OS_TOKEN"
    );
    let _ = writeln!(o, "export OS_AUTH_TYPE=v3applicationcredential");
    let _ = writeln!(o, "export OS_AUTH_URL={}", sh_quote(&s.auth_url));
    let _ = writeln!(o, "export OS_IDENTITY_API_VERSION=3");
    if let Some(r) = &s.region_name {
        let _ = writeln!(o, "export OS_REGION_NAME={}", sh_quote(r));
    }
    let _ = writeln!(o, "export OS_APPLICATION_CREDENTIAL_ID={}", sh_quote(k.id));
    o.push_str("export OS_APPLICATION_CREDENTIAL_SECRET=");
    always_quoted(&mut o, k.secret);
    o.push('\n');
    o
}

/// A secret in single quotes whatever it holds, so a leading `-` or any other byte is
/// never read as anything but the value.
fn always_quoted(o: &mut String, secret: &str) {
    o.push('\'');
    o.push_str(&secret.replace('\'', "'\\''"));
    o.push('\'');
}

/// What S3 clients read (the AWS CLI 2 and boto3 take `AWS_ENDPOINT_URL`), with the
/// endpoint the Keystone catalog named when the key was pushed, or a line saying where to
/// find it.
fn ec2_env(s: &KeystoneScope, k: &KeystoneKey) -> Zeroizing<String> {
    let mut o = Zeroizing::new(String::new());
    let _ = writeln!(o, "export AWS_ACCESS_KEY_ID={}", sh_quote(k.id));
    o.push_str("export AWS_SECRET_ACCESS_KEY=");
    always_quoted(&mut o, k.secret);
    o.push('\n');
    match &s.s3_endpoint {
        Some(e) => {
            let _ = writeln!(o, "export AWS_ENDPOINT_URL={}", sh_quote(e));
        }
        None => {
            let _ = writeln!(
                o,
                "# AWS_ENDPOINT_URL: your object store's S3 endpoint (Keystone's catalog named none: `openstack catalog show object-store`)"
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> KeystoneScope {
        KeystoneScope {
            auth_url: "https://ks.example/v3".into(),
            region_name: Some("RegionOne".into()),
            ..Default::default()
        }
    }

    const KEY: KeystoneKey = KeystoneKey {
        id: "0123456789abcdef0123456789abcdef",
        name: "ci",
        secret: "-starts-with-a-dash'and\"quotes",
    };

    #[test]
    fn clouds_yaml_parses_back_to_the_secret() {
        let svc = Service::KeystoneAppCredential(scope());
        let y = render(&svc, OutputFormat::Yaml, &KEY).unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&y).unwrap();
        let c = &v["clouds"]["ci"];
        assert_eq!(c["auth_type"], "v3applicationcredential");
        assert_eq!(c["auth"]["application_credential_secret"], KEY.secret);
        assert_eq!(c["auth"]["auth_url"], "https://ks.example/v3");
        assert!(!y.contains("soda"));
    }

    #[test]
    fn openrc_quotes_a_secret_that_starts_with_a_dash() {
        let svc = Service::KeystoneAppCredential(scope());
        let e = render(&svc, OutputFormat::Env, &KEY).unwrap();
        assert!(
            e.contains(
                "export OS_APPLICATION_CREDENTIAL_SECRET='-starts-with-a-dash'\\''and\"quotes'\n"
            ),
            "{}",
            e.as_str()
        );
        assert!(!e.contains("SODA_"));
    }

    #[test]
    fn soda_forms_and_flags_are_refused_for_keystone_keys() {
        let ac = Service::KeystoneAppCredential(scope());
        let ec2 = Service::KeystoneEc2(scope());
        let with = |output| Choices {
            output: Some(output),
            ..Default::default()
        };
        assert!(resolve(&ac, &with(OutputFormat::HelmSet), false).is_err());
        assert!(resolve(&ec2, &with(OutputFormat::Yaml), false).is_err());
        assert_eq!(
            resolve(&ec2, &Choices::default(), false).unwrap(),
            OutputFormat::Env
        );
        let e = render(&ec2, OutputFormat::Env, &KEY).unwrap();
        assert!(e.starts_with("export AWS_ACCESS_KEY_ID="), "{}", e.as_str());
    }
}
