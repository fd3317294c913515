//! `keyctl create`: clap's arguments to a [`CreateRequest`]; the new key printed once
//! (its snippet, or `--json`), or written into a Soda configuration file
//! ([`crate::flow::create`] does the work).

use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use super::{KeyView, resolve_kind};
use crate::cli::{CreateArgs, FormatArg};
use crate::context::Ctx;
use crate::flow::create::{CreateRequest, create};
use crate::flow::push::RemoteChoice;
use crate::key::Format;
use crate::render::{self, KeyParts, openstack};
use crate::service::Service;

pub(crate) fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    if args.app_credential {
        return super::app_credential::create(ctx, args);
    }
    // A key pushed to Keystone is an EC2 credential: rendered as what S3 clients read,
    // never as a Soda snippet; its flags are checked before anything is minted.
    let keystone = match args.remote.as_deref() {
        Some(r) if ctx.remotes.contains_key(r) => {
            let svc = ctx.remote(r)?.service();
            if matches!(svc, crate::service::Service::KeystoneEc2(_)) {
                openstack::resolve(&svc, &args.render.choices(), ctx.out.json)?;
                Some(svc)
            } else {
                None
            }
        }
        _ => None,
    };
    let req = CreateRequest {
        kind: resolve_kind(ctx, args.kind),
        format: match args.format {
            FormatArg::Standard => Format::Standard,
            FormatArg::Aksk => Format::Aksk,
        },
        prefix: args.prefix,
        name: args.name,
        description: args.description,
        expires: args.expires,
        scopes: args.scopes,
        rotate_every: args.rotate_every,
        remote: RemoteChoice {
            remote: args.remote,
            server_side: args.server_side,
            for_user: args.for_user,
        },
        render: args.render.choices(),
        target: args.render.target(),
        assume_yes: ctx.yes,
    };
    let Some(c) = create(ctx, req)? else {
        return Ok(());
    };
    let (rec, delivery, written, pushed) = (c.rec, c.delivery, c.written, c.pushed);
    let now = OffsetDateTime::now_utc();
    let parts = KeyParts {
        kind: rec.kind,
        id: &rec.id,
        name: &rec.name,
        secret: c.secret.expose_secret(),
    };
    if ctx.out.json {
        // With --write the secret went to the file; stdout stays free of it.
        #[derive(Serialize)]
        struct Created<'a> {
            #[serde(flatten)]
            view: KeyView<'a>,
            secret: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            written: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            snippet: Option<&'a str>,
        }
        let snippet = match (
            &written,
            args.render.output,
            keystone_snippet(&keystone, &rec, &pushed),
        ) {
            (None, Some(_), Some(svc)) => {
                let f = openstack::resolve(&svc, &args.render.choices(), false)?;
                Some(openstack::render(&svc, f, &keystone_key(&parts))?)
            }
            (None, Some(_), None) => Some(render::render(&delivery.settings, &parts)?),
            _ => None,
        };
        crate::output::print_json(
            &ctx.out,
            &Created {
                view: KeyView::of(&rec, now, ctx.warn_window),
                secret: written.is_none().then_some(parts.secret),
                written: written.map(|p| p.display().to_string()),
                snippet: snippet.as_deref().map(String::as_str),
            },
        )?;
        return pushed;
    }
    if written.is_some() {
        return pushed;
    }
    match keystone_snippet(&keystone, &rec, &pushed) {
        Some(svc) => {
            let f = openstack::resolve(&svc, &args.render.choices(), false)?;
            super::app_credential::print(&openstack::render(&svc, f, &keystone_key(&parts))?)?;
        }
        None => delivery.deliver(&ctx.out, &parts)?,
    }
    pushed
}

/// The Keystone service a created key renders for: only once Keystone has it (a failed
/// push leaves a local key, rendered as one).
fn keystone_snippet(
    keystone: &Option<Service>,
    rec: &crate::registry::KeyRecord,
    pushed: &anyhow::Result<()>,
) -> Option<Service> {
    let svc = keystone.as_ref().filter(|_| pushed.is_ok())?;
    Some(
        rec.service
            .clone()
            .filter(|s| openstack::is_keystone(Some(s)))
            .unwrap_or_else(|| svc.clone()),
    )
}

fn keystone_key<'a>(p: &KeyParts<'a>) -> openstack::KeystoneKey<'a> {
    openstack::KeystoneKey {
        id: p.id,
        name: p.name,
        secret: p.secret,
    }
}
