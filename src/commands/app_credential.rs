//! `keyctl create --remote R --app-credential`: clap's arguments to an
//! [`AppCredRequest`]; the new application credential printed once as a clouds.yaml entry
//! (or openrc lines, or `--json`). The render flags are checked before Keystone is asked,
//! so a bad one creates nothing.

use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use super::KeyView;
use crate::cli::{CreateArgs, FormatArg, KindArg};
use crate::context::Ctx;
use crate::error::usage;
use crate::flow::appcred::{AppCredRequest, create as create_app_credential};
use crate::render::OutputFormat;
use crate::render::openstack::{self, KeystoneKey};
use crate::service::{KeystoneScope, Service};

pub(crate) fn create(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let not_here = [
        (args.kind != KindArg::Api, "--kind"),
        (args.format != FormatArg::Standard, "--format"),
        (args.prefix.is_some(), "--prefix"),
        (!args.scopes.is_empty(), "--scope (use --role)"),
        (args.server_side, "--server-side"),
        (args.for_user.is_some(), "--for-user"),
    ];
    if let Some((_, flag)) = not_here.iter().find(|(given, _)| *given) {
        return Err(usage(format!(
            "{flag} does not apply to --app-credential: Keystone makes the ID and secret of an application credential for the remote's own user"
        )));
    }
    let remote = args.remote.clone().unwrap_or_default();
    // The flags are checked against an application credential before anything is made.
    let placeholder = Service::KeystoneAppCredential(KeystoneScope::default());
    let choices = args.render.choices();
    let json = ctx.out.json;
    let write = args.render.write.clone();
    let format = openstack::resolve(&placeholder, &choices, json && write.is_none())?;
    if let Some(path) = &write {
        if args.render.dry_run {
            return Err(usage(
                "--dry-run shows the edit of a soda_cloud block; a clouds.yaml or openrc entry is written whole: write it to a new file to see it",
            ));
        }
        let name = args.name.as_deref().unwrap_or("key");
        crate::flow::targets::precheck(path, &placeholder, crate::key::Kind::Api, format, name)?;
    }
    let c = create_app_credential(
        ctx,
        AppCredRequest {
            remote: remote.clone(),
            name: args.name,
            description: args.description,
            expires: args.expires,
            roles: args.roles,
            unrestricted: args.unrestricted,
            access_rules: args.access_rules,
            rotate_every: args.rotate_every,
        },
    )?;
    let rec = &c.rec;
    let now = OffsetDateTime::now_utc();
    ctx.out.note(&format!(
        "created application credential '{}' ({}) on remote {remote}, secret in the {} store, {}; `keyctl config {}` renders it again, `keyctl revoke {}` deletes it on Keystone",
        rec.name,
        rec.id,
        rec.store.as_str(),
        crate::expiry::describe(rec.expires_at, now),
        rec.name,
        rec.name
    ));
    let service = rec.service.clone().unwrap_or(placeholder);
    let key = KeystoneKey {
        id: &rec.id,
        name: &rec.name,
        secret: c.secret.expose_secret(),
    };
    if let Some(path) = &write {
        let parts = crate::render::KeyParts {
            kind: rec.kind,
            id: &rec.id,
            name: &rec.name,
            secret: key.secret,
        };
        crate::flow::targets::write_new(ctx, rec, path, format, &choices, &parts).map_err(|e| {
            e.context(format!(
                "application credential '{}' was created, but {} was not written (`keyctl config {} --write FILE` retries)",
                rec.name,
                path.display(),
                rec.name
            ))
        })?;
    }
    if json {
        #[derive(Serialize)]
        struct Created<'a> {
            #[serde(flatten)]
            view: KeyView<'a>,
            /// None when it went to the `--write` file.
            secret: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            written: Option<String>,
            service: &'a Service,
            #[serde(skip_serializing_if = "Option::is_none")]
            snippet: Option<&'a str>,
        }
        let snippet = match (choices.output, format) {
            (Some(_), f) if f != OutputFormat::Json => Some(openstack::render(&service, f, &key)?),
            _ => None,
        };
        return crate::output::print_json(
            &ctx.out,
            &Created {
                view: KeyView::of(rec, now, ctx.warn_window),
                secret: write.is_none().then_some(key.secret),
                written: write.as_ref().map(|p| p.display().to_string()),
                service: &service,
                snippet: snippet.as_deref().map(String::as_str),
            },
        );
    }
    if write.is_some() {
        return Ok(());
    }
    let text = openstack::render(&service, format, &key)?;
    print(&text)
}

/// A Keystone key's snippet on stdout.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
