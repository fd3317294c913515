//! `keyctl remote add|list|remove|test`: the command line of `flow::remotes`. `add` turns
//! its flags (and, for Keystone, the OpenStack settings the user already has: clouds.yaml,
//! `OS_*`) into a remote's configuration and reads its credential; the workflow stores,
//! checks and saves it.

use serde::Serialize;

use crate::cli::{HttpAuthArg, RemoteAddArgs, RemoteCmd};
use crate::context::Ctx;
use crate::error::usage;
use crate::flow::remotes;
use crate::input;
use crate::output::{self, quoted};
use crate::remote::openstack::{self, AuthType};
use crate::remote::{self, AuthMethod, RemoteConfig, RemoteType};
use crate::render::Region;
use crate::service::DomainRef;
use crate::store::StoreKind;
use std::path::PathBuf;

pub(crate) fn run(ctx: &Ctx, cmd: RemoteCmd) -> anyhow::Result<()> {
    match cmd {
        RemoteCmd::Add(a) => add(ctx, *a),
        RemoteCmd::List => list(ctx),
        RemoteCmd::Remove(a) => remotes::remove(ctx, &a.name, ctx.yes),
        RemoteCmd::Test(a) => test(ctx, &a.name),
    }
}

/// A keystone remote's login: the OpenStack settings the user already has
/// (`--from-env`, `--os-cloud NAME`), with the flags given here laid over them, checked
/// the way the openstack CLI would log in.
fn keystone_login(ctx: &Ctx, a: &mut RemoteAddArgs) -> anyhow::Result<openstack::Settings> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let files = || {
        openstack::Files::search(
            env("OS_CLIENT_CONFIG_FILE").map(PathBuf::from),
            env("OS_CLIENT_SECURE_FILE").map(PathBuf::from),
            dirs::home_dir(),
        )
    };
    let from_files = a.from_env || a.os_cloud.is_some();
    let mut s = if a.from_env {
        openstack::from_env(env, &files())?
    } else if let Some(cloud) = &a.os_cloud {
        openstack::from_clouds(cloud, &files())?
    } else {
        if a.application_credential.is_none()
            && (a.user.is_none() || (a.project.is_none() && a.project_id.is_none()))
        {
            return Err(usage(
                "a keystone remote needs --user and --project (or --project-id), or --application-credential ID (or --from-env / --os-cloud NAME)",
            ));
        }
        openstack::Settings::new(
            if a.application_credential.is_some() {
                AuthType::ApplicationCredential
            } else {
                AuthType::Password
            },
            "the command line",
        )
    };
    // Flags given on the command line win over what the files say.
    if let Some(id) = a.application_credential.take() {
        s.auth_type = AuthType::ApplicationCredential;
        s.application_credential_id = Some(id);
        s.application_credential_name = None;
        s.secret = None;
    }
    if let Some(u) = a.user.take() {
        s.username = Some(u);
        s.user_id = None;
    }
    if let Some(p) = a.project.take() {
        (s.project_name, s.project_id) = (Some(p), None);
    }
    if let Some(p) = a.project_id.take() {
        (s.project_name, s.project_id) = (None, Some(p));
    }
    if let Some(d) = a.domain.take() {
        s.user_domain = Some(DomainRef::Name(d.clone()));
        s.project_domain = Some(DomainRef::Name(d));
    }
    if let Some(d) = a.user_domain.take() {
        s.user_domain = Some(DomainRef::Name(d));
    }
    if let Some(d) = a.user_domain_id.take() {
        s.user_domain = Some(DomainRef::Id(d));
    }
    if let Some(d) = a.project_domain.take() {
        s.project_domain = Some(DomainRef::Name(d));
    }
    if let Some(d) = a.project_domain_id.take() {
        s.project_domain = Some(DomainRef::Id(d));
    }
    s.check()?;
    a.url = a.url.take().or_else(|| s.auth_url.clone());
    a.ca_cert = a.ca_cert.take().or_else(|| s.cacert.clone());
    if from_files {
        ctx.out
            .note(&format!("remote {}: settings from {}", a.name, s.source));
    }
    Ok(s)
}

fn add(ctx: &Ctx, mut a: RemoteAddArgs) -> anyhow::Result<()> {
    remotes::check_name(ctx, &a.name, a.force)?;
    let keystone_only = a.from_env
        || a.os_cloud.is_some()
        || a.project_id.is_some()
        || a.domain.is_some()
        || a.user_domain.is_some()
        || a.user_domain_id.is_some()
        || a.project_domain.is_some()
        || a.project_domain_id.is_some();
    if a.kind != RemoteType::Keystone && keystone_only {
        return Err(usage(
            "--from-env, --os-cloud, --project-id and the --*domain* flags apply to --type keystone only",
        ));
    }
    let mut os = if a.kind == RemoteType::Keystone {
        Some(keystone_login(ctx, &mut a)?)
    } else {
        None
    };
    if a.url.is_none() && a.region.is_none() {
        return Err(usage("--url is needed (the settings named no auth_url)"));
    }
    let url = match (&a.url, a.region) {
        (Some(u), _) => u.clone(),
        (None, r) => r.unwrap_or(Region::Eu).url(),
    };
    if a.region.is_some() && a.kind != RemoteType::Soda {
        return Err(usage("--region applies to --type soda only"));
    }
    crate::net::parse_url(&url, "--url")?;
    let (auth, http) = match a.kind {
        RemoteType::Keystone => {
            let auth = match os.as_ref().map(|o| o.auth_type) {
                Some(AuthType::ApplicationCredential) => AuthMethod::ApplicationCredential,
                Some(AuthType::Token) => AuthMethod::Token,
                _ => AuthMethod::Password,
            };
            (auth, None)
        }
        RemoteType::Soda => {
            if a.user.is_none() {
                return Err(usage(
                    "a soda remote needs --user API_KEY_ID (an admin's key; its secret is read from stdin)",
                ));
            }
            (AuthMethod::Basic, None)
        }
        RemoteType::Http => {
            let mut spec = match &a.profile {
                Some(p) => remote::http::profile(p)?,
                None => remote::http::HttpSpec::default(),
            };
            for v in &a.vars {
                let (k, val) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| usage(format!("--var {}: write NAME=VALUE", quoted(v))))?;
                spec.vars.insert(k.to_string(), val.to_string());
            }
            if let Some(k) = &a.auth_remote {
                match ctx.remotes.get(k) {
                    Some(c) if c.kind == RemoteType::Keystone => {}
                    _ => {
                        return Err(usage(format!(
                            "--auth-remote {}: no keystone remote of that name",
                            quoted(k)
                        )));
                    }
                }
            }
            let auth = match (a.auth, &a.auth_remote) {
                (Some(_), Some(_)) => {
                    return Err(usage("--auth and --auth-remote exclude each other"));
                }
                (None, _) | (Some(HttpAuthArg::None), _) => AuthMethod::None,
                (Some(HttpAuthArg::Basic), _) => AuthMethod::Basic,
                (Some(HttpAuthArg::Bearer), _) => AuthMethod::Bearer,
                (Some(HttpAuthArg::XAuthToken), _) => AuthMethod::XAuthToken,
            };
            (auth, Some(spec))
        }
    };
    if a.kind != RemoteType::Http
        && (a.profile.is_some()
            || a.auth.is_some()
            || a.auth_remote.is_some()
            || !a.vars.is_empty())
    {
        return Err(usage(
            "--profile, --auth, --auth-remote and --var apply to --type http only",
        ));
    }
    if let Some(ca) = &a.ca_cert
        && !ca.is_file()
    {
        return Err(usage(format!(
            "--ca-cert {}: no such file",
            quoted(&ca.display().to_string())
        )));
    }
    let from_files = os.as_mut().and_then(|o| o.secret.take());
    let secret = match auth {
        _ if from_files.is_some() => from_files,
        AuthMethod::None => None,
        AuthMethod::Password => Some(input::read_secret(&format!(
            "Password of {} on {url} (input hidden): ",
            os.as_ref()
                .and_then(|o| o.username.as_deref().or(o.user_id.as_deref()))
                .or(a.user.as_deref())
                .unwrap_or("")
        ))?),
        AuthMethod::ApplicationCredential => Some(input::read_secret(
            "Application credential secret (input hidden): ",
        )?),
        AuthMethod::Token => Some(input::read_secret("Keystone token (input hidden): ")?),
        _ => Some(input::read_secret(
            "Secret of the remote's credential (input hidden): ",
        )?),
    };
    let os = os.unwrap_or_default();
    let domain_parts = |d: &Option<DomainRef>| match d {
        Some(DomainRef::Name(n)) => (Some(n.clone()), None),
        Some(DomainRef::Id(i)) => (None, Some(i.clone())),
        None => (None, None),
    };
    let (user_domain_name, user_domain_id) = domain_parts(&os.user_domain);
    let (project_domain_name, project_domain_id) = domain_parts(&os.project_domain);
    let cfg = RemoteConfig {
        kind: a.kind,
        url,
        auth,
        user: os.username.or(a.user),
        project: os.project_name,
        domain: None,
        user_domain_name,
        user_domain_id,
        user_id: os.user_id,
        project_id: os.project_id,
        project_domain_name,
        project_domain_id,
        application_credential_id: os.application_credential_id,
        application_credential_name: os.application_credential_name,
        region_name: os.region_name,
        ca_cert: a.ca_cert.map(|p| std::path::absolute(&p).unwrap_or(p)),
        connect_timeout: a.connect_timeout,
        timeout: a.timeout,
        secret_store: StoreKind::Keyring,
        auth_remote: a.auth_remote,
        profile: a.profile,
        http,
        extra: Default::default(),
    };
    let name = a.name.clone();
    let (store, limits) = remotes::add(
        ctx,
        remotes::AddRemote {
            name: a.name,
            config: cfg,
            secret,
            verify: !a.no_verify,
            force: a.force,
        },
    )?;
    if let Some(why) = limits {
        ctx.out.warn(&why);
    }
    ctx.out.note(&format!(
        "remote {name} added; its credential is in the {} store",
        store.as_str()
    ));
    Ok(())
}

fn list(ctx: &Ctx) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct View<'a> {
        name: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        url: &'a str,
        auth: AuthMethod,
        user: Option<&'a str>,
        project: Option<&'a str>,
        secret_store: StoreKind,
    }
    let views: Vec<View> = ctx
        .remotes
        .iter()
        .map(|(n, c)| View {
            name: n,
            kind: c.kind.as_str(),
            url: &c.url,
            auth: c.auth,
            user: c.user.as_deref(),
            project: c.project.as_deref().or(c.project_id.as_deref()),
            secret_store: c.secret_store,
        })
        .collect();
    if ctx.out.json {
        return output::print_json(&ctx.out, &views);
    }
    if views.is_empty() && ctx.out.stdout_tty {
        ctx.out
            .note("no remotes yet: `keyctl remote add NAME --url URL ...` adds one");
        return Ok(());
    }
    let rows = views
        .iter()
        .map(|v| {
            vec![
                v.name.to_string(),
                v.kind.to_string(),
                v.url.to_string(),
                v.user
                    .map_or_else(|| "(application credential)".into(), str::to_string),
                v.project.unwrap_or("-").to_string(),
            ]
        })
        .collect();
    output::print_table(&ctx.out, &["NAME", "TYPE", "URL", "USER", "PROJECT"], rows)
}

fn test(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let who = remotes::test(ctx, name)?;
    if ctx.out.json {
        return output::print_json(&ctx.out, &who);
    }
    use std::io::Write as _;
    let mut line = format!(
        "ok: logged in to {name} at {} as user {}",
        who.endpoint, who.user_id
    );
    if let Some(p) = &who.project_id {
        line.push_str(&format!(" (project {p})"));
    }
    if let Some(t) = who.token_expires_at {
        line.push_str(&format!(", token valid until {}", crate::expiry::human(t)));
    }
    writeln!(std::io::stdout(), "{}", crate::output::sanitize(&line))?;
    Ok(())
}

/// `keyctl list --remote R`: the remote's credentials side by side with the local keys
/// (`flow::remotes::compare`).
pub(crate) fn compare(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let rows = remotes::compare(ctx, name)?;
    if ctx.out.json {
        return output::print_json(&ctx.out, &rows);
    }
    let table = rows
        .into_iter()
        .map(|r| {
            let remote_id = match (r.remote_id, r.pushed) {
                (Some(id), _) => id,
                (None, true) => "(not listed)".into(),
                (None, false) => "-".into(),
            };
            vec![
                r.name.unwrap_or_else(|| "-".into()),
                if r.id.is_empty() { "-".into() } else { r.id },
                r.place.to_string(),
                remote_id,
            ]
        })
        .collect();
    output::print_table(&ctx.out, &["NAME", "ID", "WHERE", "REMOTE ID"], table)
}
