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
use crate::render::{self, KeyParts};

pub fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    if args.app_credential {
        return super::app_credential::create(ctx, args);
    }
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
        let snippet = match (&written, args.render.output) {
            (None, Some(_)) => Some(render::render(&delivery.settings, &parts)?),
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
    if written.is_none() {
        delivery.deliver(&ctx.out, &parts)?;
    }
    pushed
}
