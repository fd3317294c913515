//! Turning a key and its secret into the exact text another tool reads: Soda Core's
//! `soda_cloud` block, the soda-agent Helm chart's values or `helm install` line, a
//! Kubernetes Secret, shell env lines, JSON.
//!
//! Everything here is a pure function of its inputs, so every format can be tested by
//! parsing it back. Quoting is where pasted configuration usually breaks, so each format
//! has its own escaper: YAML double-quoted scalars that mean the same in YAML 1.1
//! (PyYAML, Soda Core) and 1.2, POSIX shell single quotes, and Helm's `--set` syntax.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::usage;
use crate::key::Kind;
use crate::output::quoted;
use crate::service::SodaEndpoint;

pub(crate) mod openstack;
mod quote;
pub(crate) use quote::{helm_escape, sh_quote, yaml_quote, yaml_quote_into};

pub(crate) const EU_HOST: &str = "cloud.soda.io";
pub(crate) const US_HOST: &str = "cloud.us.soda.io";
pub(crate) const ID_VAR: &str = "SODA_API_KEY_ID";
pub(crate) const SECRET_VAR: &str = "SODA_API_KEY_SECRET";
/// The Secret the soda-agent chart itself creates, and the name its docs use.
pub(crate) const RUNNER_K8S_SECRET: &str = "soda-agent-apikey";
pub(crate) const API_K8S_SECRET: &str = "soda-cloud-apikey";
pub(crate) const HELM_RELEASE: &str = "soda-agent";
pub(crate) const HELM_CHART: &str = "soda-agent/soda-agent";
pub(crate) const HELM_NAMESPACE: &str = "soda-agent";
/// The registry field (`KeyRecord::extra`) that remembers `--region`/`--host` from `create`.
pub(crate) const HOST_FIELD: &str = "soda_host";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum OutputFormat {
    /// api: the soda_cloud block; runner: Helm values for the soda-agent chart
    Yaml,
    /// A `helm install soda-agent ...` line with the key in --set-string flags (runner)
    HelmSet,
    /// A Kubernetes Secret manifest (and, for a runner, the Helm values that use it)
    K8sSecret,
    /// SODA_API_KEY_ID=... and SODA_API_KEY_SECRET=... lines for sh
    Env,
    /// The yaml output's data as JSON
    Json,
}

impl OutputFormat {
    /// The name `--output` takes.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Yaml => "yaml",
            OutputFormat::HelmSet => "helm-set",
            OutputFormat::K8sSecret => "k8s-secret",
            OutputFormat::Env => "env",
            OutputFormat::Json => "json",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Region {
    /// cloud.soda.io
    Eu,
    /// cloud.us.soda.io
    Us,
}

impl Region {
    /// The region's Soda Cloud host name, bare (what Soda Core's `host` key takes).
    pub(crate) fn host(self) -> &'static str {
        match self {
            Region::Eu => EU_HOST,
            Region::Us => US_HOST,
        }
    }

    /// The region's Soda Cloud API base URL.
    pub(crate) fn url(self) -> String {
        format!("https://{}", self.host())
    }
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SecretRef {
    /// The secret itself
    #[default]
    Literal,
    /// A reference to the environment variable SODA_API_KEY_SECRET
    Env,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
pub(crate) enum SodaVersion {
    /// Soda Core 3.x: ${SODA_API_KEY_SECRET}
    #[value(name = "3")]
    #[serde(rename = "3")]
    V3,
    /// Soda Core 4.x: ${env.SODA_API_KEY_SECRET}
    #[value(name = "4")]
    #[serde(rename = "4")]
    V4,
}

/// What the user asked for (`--output`, `--region`, `--host`, ...), unchecked.
#[derive(Clone, Debug, Default)]
pub(crate) struct Choices {
    pub output: Option<OutputFormat>,
    pub region: Option<Region>,
    pub host: Option<String>,
    /// Soda Cloud's port (`--port`), rendered as a quoted string.
    pub port: Option<String>,
    /// `http` or `https` (`--scheme`).
    pub scheme: Option<String>,
    pub export: bool,
    pub secret_ref: SecretRef,
    pub soda_version: Option<SodaVersion>,
}

/// Resolved rendering settings: flags checked against each other and the key's kind.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub format: OutputFormat,
    pub host: String,
    /// The host was given (`--region`/`--host`) or is known for the key, not Soda Core's
    /// default: `--write` sets it over the host an existing block names.
    pub host_known: bool,
    pub port: Option<String>,
    pub scheme: Option<String>,
    pub secret_ref: SecretRef,
    pub soda_version: Option<SodaVersion>,
    pub export: bool,
}

impl Settings {
    /// `default_format` is what `--output` means when absent (yaml, or json under `--json`);
    /// `remembered` is where the key works (its service), used for what `--region`,
    /// `--host`, `--port` and `--scheme` do not say.
    pub(crate) fn resolve(
        kind: Kind,
        args: &Choices,
        default_format: OutputFormat,
        remembered: Option<&SodaEndpoint>,
    ) -> anyhow::Result<Settings> {
        let format = args.output.unwrap_or(default_format);
        if let Some(p) = &args.port {
            validate_port(p)?;
        }
        if let Some(sc) = &args.scheme {
            validate_scheme(sc)?;
        }
        let told = args.region.is_some() || args.host.is_some();
        let (host, host_known, port, scheme) = match remembered {
            Some(r) if !told => (
                target_host(None, Some(&r.host))?,
                !r.assumed,
                args.port.clone().or_else(|| r.port.clone()),
                args.scheme.clone().or_else(|| r.scheme.clone()),
            ),
            _ => {
                let host = target_host(args.region, args.host.as_deref())?;
                // The key's own port and scheme go with its host, not with another one.
                let same = remembered.filter(|r| r.host == host);
                (
                    host,
                    told,
                    args.port
                        .clone()
                        .or_else(|| same.and_then(|r| r.port.clone())),
                    args.scheme
                        .clone()
                        .or_else(|| same.and_then(|r| r.scheme.clone())),
                )
            }
        };
        if args.export && format != OutputFormat::Env {
            return Err(usage("--export applies to --output env only"));
        }
        if format == OutputFormat::HelmSet && kind != Kind::Runner {
            return Err(usage(
                "--output helm-set installs the soda-agent Helm chart, which takes a runner key; this is an api key (use --output yaml, env, k8s-secret or json)",
            ));
        }
        if args.secret_ref == SecretRef::Env {
            if kind != Kind::Api || !matches!(format, OutputFormat::Yaml | OutputFormat::Json) {
                return Err(usage(
                    "--secret-ref env applies to the soda_cloud block (--kind api, --output yaml or json): Helm, Kubernetes and env lines need the secret itself",
                ));
            }
            if args.soda_version.is_none() {
                return Err(usage(
                    "--secret-ref env needs --soda-version 3 or 4: Soda Core 3 reads ${SODA_API_KEY_SECRET}, 4 reads ${env.SODA_API_KEY_SECRET}, and each leaves the other's form unreplaced",
                ));
            }
        }
        Ok(Settings {
            format,
            host,
            host_known,
            port,
            scheme,
            secret_ref: args.secret_ref,
            soda_version: args.soda_version,
            export: args.export,
        })
    }
}

/// The Soda Cloud host for `--region`/`--host` (EU when neither is given).
pub(crate) fn target_host(region: Option<Region>, host: Option<&str>) -> anyhow::Result<String> {
    match (host, region) {
        (Some(h), _) => {
            validate_host(h)?;
            Ok(h.to_ascii_lowercase())
        }
        (None, r) => Ok(r.unwrap_or(Region::Eu).host().into()),
    }
}

/// `--port`: what Soda Core puts after `host:` (it wants a string; any TCP port).
pub(crate) fn validate_port(p: &str) -> anyhow::Result<()> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(usage(format!(
            "--port {}: expected a TCP port, 1 to 65535",
            quoted(p)
        ))),
    }
}

/// `--scheme`: Soda Core puts it before `://` as it is.
pub(crate) fn validate_scheme(sc: &str) -> anyhow::Result<()> {
    match sc {
        "https" | "http" => Ok(()),
        _ => Err(usage(format!(
            "--scheme {}: expected https or http",
            quoted(sc)
        ))),
    }
}

/// Soda Core builds `https://{host}/api` itself, so anything but a bare host name makes a
/// URL like `https://https://...` that fails only at the first scan.
pub(crate) fn validate_host(h: &str) -> anyhow::Result<()> {
    let why = if h.is_empty() {
        Some("is empty".to_string())
    } else if let Some((scheme, _)) = h.split_once("://") {
        Some(format!(
            "has a scheme ({scheme}://): Soda Core adds https:// itself"
        ))
    } else if h.contains('/') {
        Some("has a path: Soda Core adds /api itself".to_string())
    } else if h.contains(':') {
        Some(
            "has a port: Soda Core reads the port from its own `port` key (443 by default)"
                .to_string(),
        )
    } else if h.len() > 253 {
        Some("is longer than 253 characters".to_string())
    } else if !h
        .split('.')
        .all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-'))
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        Some("is not a host name (letters, digits, '-' and '.' only)".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(usage(format!(
            "--host {} {why}; give a bare host name such as {EU_HOST}",
            quoted(h)
        ))),
        None => Ok(()),
    }
}

/// One key as the renderers see it.
pub(crate) struct KeyParts<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub name: &'a str,
    pub secret: &'a str,
}

/// The snippet for `s.format`. Text holding a secret is zeroized when dropped.
pub(crate) fn render(s: &Settings, k: &KeyParts) -> anyhow::Result<Zeroizing<String>> {
    match (s.format, k.kind) {
        (OutputFormat::Yaml, Kind::Api) => Ok(soda_cloud_block(s, k, "\n")),
        (OutputFormat::Yaml, Kind::Runner) => Ok(helm_values(s, k)),
        (OutputFormat::HelmSet, _) => Ok(helm_set(s, k)),
        (OutputFormat::K8sSecret, _) => Ok(k8s_secret(s, k)),
        (OutputFormat::Env, _) => env_lines(s, k),
        (OutputFormat::Json, _) => json(s, k),
    }
}

/// What `api_key_secret` says: the secret, or a reference Soda Core resolves at run time.
pub(crate) fn secret_value<'a>(s: &Settings, k: &KeyParts<'a>) -> Cow<'a, str> {
    match (s.secret_ref, s.soda_version) {
        (SecretRef::Env, Some(SodaVersion::V3)) => Cow::Owned(format!("${{{SECRET_VAR}}}")),
        (SecretRef::Env, Some(SodaVersion::V4)) => Cow::Owned(format!("${{env.{SECRET_VAR}}}")),
        _ => Cow::Borrowed(k.secret),
    }
}

/// The top-level `soda_cloud:` block, every line ended by `eol` (the target file's).
pub(crate) fn soda_cloud_block(s: &Settings, k: &KeyParts, eol: &str) -> Zeroizing<String> {
    soda_cloud_block_over(s, k, eol, &BlockEdit::default())
}

/// What `--write` keeps of the `soda_cloud` block it replaces: every key keyctl does not
/// set (Soda Core reads `port` and `scheme`; other tools may read more), and the host,
/// port and scheme unless this key's are known.
#[derive(Default)]
pub(crate) struct BlockEdit {
    /// `host`/`port`/`scheme` lines as the old block had them (YAML text), when kept.
    pub endpoint: Vec<(String, String)>,
    /// Every other key of the old block, as YAML text, in its order.
    pub others: Vec<(String, String)>,
}

/// The keys of the `soda_cloud` block keyctl writes itself.
pub(crate) const OWNED_KEYS: [&str; 2] = ["api_key_id", "api_key_secret"];
/// Where Soda Core sends the key: set from the key, or kept from the old block.
pub(crate) const ENDPOINT_KEYS: [&str; 3] = ["host", "port", "scheme"];

impl Settings {
    /// The endpoint keys keyctl sets over an old block that has `old_host` (None: no old
    /// block): the host when known or missing; port and scheme when given, or when the
    /// host changes (then Soda Core's defaults are meant unless given).
    pub(crate) fn sets(&self, key: &str, old_host: Option<Option<&str>>) -> bool {
        let Some(old_host) = old_host else {
            return true;
        };
        let sets_host = self.host_known || old_host.is_none();
        let host_changes = sets_host && old_host != Some(self.host.as_str());
        match key {
            "host" => sets_host,
            "port" => self.port.is_some() || host_changes,
            "scheme" => self.scheme.is_some() || host_changes,
            _ => true,
        }
    }
}

/// The `soda_cloud:` block over an old one (`edit`: what is kept of it).
pub(crate) fn soda_cloud_block_over(
    s: &Settings,
    k: &KeyParts,
    eol: &str,
    edit: &BlockEdit,
) -> Zeroizing<String> {
    let mut o = buffer(k);
    o.push_str("soda_cloud:");
    o.push_str(eol);
    let kept = |key: &str| edit.endpoint.iter().find(|(k, _)| k == key);
    let ours = [
        ("host", Some(s.host.as_str())),
        ("port", s.port.as_deref()),
        ("scheme", s.scheme.as_deref()),
    ];
    for (key, value) in ours {
        if let Some((_, text)) = kept(key) {
            let _ = write!(o, "  {key}: {text}{eol}");
        } else if let Some(v) = value {
            let _ = write!(o, "  {key}: ");
            yaml_quote_into(&mut o, v);
            o.push_str(eol);
        }
    }
    o.push_str("  api_key_id: ");
    yaml_quote_into(&mut o, k.id);
    o.push_str(eol);
    o.push_str("  api_key_secret: ");
    match s.secret_ref {
        // The reference is for Soda Core to expand, so its braces stay as they are.
        SecretRef::Env => {
            let _ = write!(o, "\"{}\"", secret_value(s, k));
        }
        SecretRef::Literal => yaml_quote_into(&mut o, k.secret),
    }
    o.push_str(eol);
    for (key, text) in &edit.others {
        let _ = write!(o, "  {key}: {text}{eol}");
    }
    o
}

/// Why a snippet would not read back as this secret in some Soda Core version, for a
/// warning: Soda Core 4 substitutes `${ns.name}` in values after parsing (no escape
/// exists), and Soda Core 3 pastes an env reference into the quoted text before parsing.
pub(crate) fn soda_caveat(s: &Settings, k: &KeyParts) -> Option<&'static str> {
    if k.kind != Kind::Api || !matches!(s.format, OutputFormat::Yaml | OutputFormat::Json) {
        return None;
    }
    match (s.secret_ref, s.soda_version) {
        (SecretRef::Literal, _) if has_v4_reference(k.secret) => Some(
            "this secret contains `${name.name}`, which Soda Core 4 replaces with a variable's value: it reads correctly in Soda Core 3 only",
        ),
        (SecretRef::Env, Some(SodaVersion::V3))
            if k.secret.contains(['"', '\\']) || k.secret.contains("${") =>
        {
            Some(
                "this secret contains \", \\ or ${, which Soda Core 3 pastes into the quoted value as they are (and expands ${...} in): keep the literal secret (--secret-ref literal) for it",
            )
        }
        _ => None,
    }
}

/// Soda Core 4's variable pattern, `\$\{ *[a-z]+\.[A-Za-z_][A-Za-z0-9_]* *\}`.
fn has_v4_reference(secret: &str) -> bool {
    secret.match_indices("${").any(|(i, _)| {
        let rest = secret[i + 2..].trim_start_matches(' ');
        let ns = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        let Some(after) = rest[ns..].strip_prefix('.').filter(|_| ns > 0) else {
            return false;
        };
        let name = after
            .bytes()
            .enumerate()
            .take_while(|(j, b)| {
                b.is_ascii_alphabetic() || *b == b'_' || (*j > 0 && b.is_ascii_digit())
            })
            .count();
        name > 0 && after[name..].trim_start_matches(' ').starts_with('}')
    })
}

/// The runner's `soda.cloud.endpoint`: scheme, host and port, as Soda Core builds them.
fn endpoint(s: &Settings) -> String {
    SodaEndpoint {
        host: s.host.clone(),
        port: s.port.clone(),
        scheme: s.scheme.clone(),
        assumed: false,
    }
    .base_url()
}

fn helm_values(s: &Settings, k: &KeyParts) -> Zeroizing<String> {
    let mut o = buffer(k);
    o.push_str("soda:\n  apikey:\n    id: ");
    yaml_quote_into(&mut o, k.id);
    o.push_str("\n    secret: ");
    yaml_quote_into(&mut o, k.secret);
    helm_agent_and_cloud(&mut o, s, k);
    o
}

fn helm_agent_and_cloud(o: &mut String, s: &Settings, k: &KeyParts) {
    o.push_str("\n  agent:\n    name: ");
    yaml_quote_into(o, k.name);
    o.push_str("\n  cloud:\n    endpoint: ");
    yaml_quote_into(o, &endpoint(s));
    o.push('\n');
}

fn helm_set(s: &Settings, k: &KeyParts) -> Zeroizing<String> {
    let mut o = buffer(k);
    let _ = write!(
        o,
        "helm install {HELM_RELEASE} {HELM_CHART} \\\n  --namespace {HELM_NAMESPACE} --create-namespace"
    );
    // --set-string, not --set: Helm would turn an ID like 1e3 into a number and delete
    // a value spelled null.
    for (path, value) in [
        ("soda.agent.name", k.name),
        ("soda.cloud.endpoint", &endpoint(s)),
        ("soda.apikey.id", k.id),
        ("soda.apikey.secret", k.secret),
    ] {
        let arg = Zeroizing::new(format!("{path}={}", helm_escape(value)));
        o.push_str(" \\\n  --set-string ");
        o.push_str(&sh_quote(&arg));
    }
    o.push('\n');
    o
}

fn k8s_secret(s: &Settings, k: &KeyParts) -> Zeroizing<String> {
    let mut o = buffer(k);
    let (name, namespace) = match k.kind {
        Kind::Runner => (RUNNER_K8S_SECRET, Some(HELM_NAMESPACE)),
        Kind::Api => (API_K8S_SECRET, None),
    };
    let _ = write!(
        o,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n"
    );
    if let Some(ns) = namespace {
        let _ = writeln!(o, "  namespace: {ns}");
    }
    let _ = write!(o, "type: Opaque\nstringData:\n  {ID_VAR}: ");
    yaml_quote_into(&mut o, k.id);
    let _ = write!(o, "\n  {SECRET_VAR}: ");
    yaml_quote_into(&mut o, k.secret);
    o.push('\n');
    match k.kind {
        Kind::Runner => {
            // Comments, so that `kubectl apply -f` takes the whole output as it is.
            let mut values = String::new();
            let _ = write!(
                values,
                "soda:\n  apikey:\n    existingSecret: {name}\n    secretKeys:\n      idKey: {ID_VAR}\n      secretKey: {SECRET_VAR}"
            );
            helm_agent_and_cloud(&mut values, s, k);
            o.push_str(
                "# Helm values for the soda-agent chart that read the key from this Secret:\n",
            );
            for line in values.lines() {
                let _ = writeln!(o, "#   {line}");
            }
        }
        Kind::Api => {
            let _ = writeln!(
                o,
                "# Give a pod these variables with `envFrom: [{{secretRef: {{name: {name}}}}}]`;\n# host: {}",
                s.host
            );
        }
    }
    o
}

fn env_lines(s: &Settings, k: &KeyParts) -> anyhow::Result<Zeroizing<String>> {
    if k.secret.contains('\0') || k.id.contains('\0') {
        return Err(usage(
            "the key contains a NUL character, which no environment variable can hold",
        ));
    }
    let mut o = buffer(k);
    let export = if s.export { "export " } else { "" };
    for (var, value) in [(ID_VAR, k.id), (SECRET_VAR, k.secret)] {
        let _ = write!(o, "{export}{var}=");
        o.push_str(&sh_quote(value));
        o.push('\n');
    }
    Ok(o)
}

fn json(s: &Settings, k: &KeyParts) -> anyhow::Result<Zeroizing<String>> {
    #[derive(Serialize)]
    struct SodaCloud<'a> {
        host: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        port: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        scheme: Option<&'a str>,
        api_key_id: &'a str,
        api_key_secret: &'a str,
    }
    #[derive(Serialize)]
    struct Api<'a> {
        soda_cloud: SodaCloud<'a>,
    }
    #[derive(Serialize)]
    struct ApiKey<'a> {
        id: &'a str,
        secret: &'a str,
    }
    #[derive(Serialize)]
    struct Named<'a> {
        name: &'a str,
    }
    #[derive(Serialize)]
    struct Cloud<'a> {
        endpoint: &'a str,
    }
    #[derive(Serialize)]
    struct Soda<'a> {
        apikey: ApiKey<'a>,
        agent: Named<'a>,
        cloud: Cloud<'a>,
    }
    #[derive(Serialize)]
    struct Runner<'a> {
        soda: Soda<'a>,
    }
    let secret = secret_value(s, k);
    let endpoint = endpoint(s);
    let mut bytes = Zeroizing::new(Vec::with_capacity(256 + k.secret.len()));
    match k.kind {
        Kind::Api => serde_json::to_writer_pretty(
            &mut *bytes,
            &Api {
                soda_cloud: SodaCloud {
                    host: &s.host,
                    port: s.port.as_deref(),
                    scheme: s.scheme.as_deref(),
                    api_key_id: k.id,
                    api_key_secret: &secret,
                },
            },
        )?,
        Kind::Runner => serde_json::to_writer_pretty(
            &mut *bytes,
            &Runner {
                soda: Soda {
                    apikey: ApiKey {
                        id: k.id,
                        secret: k.secret,
                    },
                    agent: Named { name: k.name },
                    cloud: Cloud {
                        endpoint: &endpoint,
                    },
                },
            },
        )?,
    }
    bytes.push(b'\n');
    let mut o = buffer(k);
    o.push_str(std::str::from_utf8(&bytes)?);
    Ok(o)
}

/// Room for the whole snippet up front, so the secret is not left behind in buffers that
/// a growing String frees.
fn buffer(k: &KeyParts) -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(
        1024 + 8 * (k.secret.len() + k.id.len() + k.name.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soda_4_references_are_recognised() {
        for (s, yes) in [
            ("${env.X}", true),
            ("a${ env.X_1 }b", true),
            ("${X}", false),
            ("${Env.X}", false),
            ("${env.}", false),
            ("${env.1}", false),
            ("$env.X}", false),
        ] {
            assert_eq!(has_v4_reference(s), yes, "{s}");
        }
    }

    #[test]
    fn hosts_must_be_bare() {
        assert!(validate_host("cloud.soda.io").is_ok());
        for (h, why) in [
            ("https://cloud.soda.io", "scheme"),
            ("cloud.soda.io/api", "path"),
            ("cloud.soda.io:443", "port"),
            ("", "empty"),
            ("a..b", "not a host name"),
            ("a b", "not a host name"),
        ] {
            let e = validate_host(h).unwrap_err().to_string();
            assert!(e.contains(why), "{h}: {e}");
        }
    }

    fn choices(output: Option<OutputFormat>) -> Choices {
        Choices {
            output,
            ..Choices::default()
        }
    }

    #[test]
    fn settings_default_to_yaml_for_the_eu_host() {
        let s =
            Settings::resolve(Kind::Api, &Choices::default(), OutputFormat::Yaml, None).unwrap();
        assert_eq!(s.format, OutputFormat::Yaml);
        assert_eq!(s.host, EU_HOST);
        let us = Choices {
            region: Some(Region::Us),
            ..Choices::default()
        };
        let x = SodaEndpoint::host("x.example");
        let s = Settings::resolve(Kind::Api, &us, OutputFormat::Yaml, Some(&x)).unwrap();
        assert_eq!(s.host, US_HOST, "--region wins over the remembered host");
        let s = Settings::resolve(
            Kind::Api,
            &Choices::default(),
            OutputFormat::Yaml,
            Some(&SodaEndpoint::host("Soda.Example.COM")),
        )
        .unwrap();
        assert_eq!(
            s.host, "soda.example.com",
            "the remembered host, lowercased"
        );
    }

    #[test]
    fn settings_refuse_combinations_that_cannot_work() {
        let refused = |kind, c: Choices, why: &str| {
            let e = Settings::resolve(kind, &c, OutputFormat::Yaml, None).unwrap_err();
            assert_eq!(crate::error::kind_of(&e), Some(crate::error::Kind::Usage));
            assert!(format!("{e:#}").contains(why), "{e:#}");
        };
        refused(
            Kind::Api,
            Choices {
                export: true,
                ..choices(Some(OutputFormat::Yaml))
            },
            "--export applies to --output env only",
        );
        refused(
            Kind::Api,
            choices(Some(OutputFormat::HelmSet)),
            "takes a runner key",
        );
        refused(
            Kind::Runner,
            Choices {
                secret_ref: SecretRef::Env,
                soda_version: Some(SodaVersion::V4),
                ..Choices::default()
            },
            "--secret-ref env applies to the soda_cloud block",
        );
        refused(
            Kind::Api,
            Choices {
                secret_ref: SecretRef::Env,
                ..Choices::default()
            },
            "needs --soda-version",
        );
        refused(
            Kind::Api,
            Choices {
                host: Some("https://x.example".into()),
                ..Choices::default()
            },
            "has a scheme",
        );
    }

    #[test]
    fn the_secret_value_follows_the_reference_choice() {
        let parts = KeyParts {
            kind: Kind::Api,
            id: "kcabc",
            name: "n",
            secret: "kca_s3cret",
        };
        let with = |secret_ref, soda_version| {
            let c = Choices {
                secret_ref,
                soda_version,
                ..Choices::default()
            };
            let s = Settings::resolve(Kind::Api, &c, OutputFormat::Yaml, None).unwrap();
            secret_value(&s, &parts).into_owned()
        };
        assert_eq!(with(SecretRef::Literal, None), "kca_s3cret");
        assert_eq!(
            with(SecretRef::Env, Some(SodaVersion::V3)),
            "${SODA_API_KEY_SECRET}"
        );
        assert_eq!(
            with(SecretRef::Env, Some(SodaVersion::V4)),
            "${env.SODA_API_KEY_SECRET}"
        );
    }
}
