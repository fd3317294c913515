//! `keyctl create`: mint a key, store its secret, print its configuration snippet once
//! (or write it into a Soda configuration file).

use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use super::{KeyView, new_key_meta, resolve_kind, store_new_key};
use anyhow::Context as _;

use super::config::Delivery;
use crate::cli::{CreateArgs, FormatArg, OutputFormat};
use crate::context::Ctx;
use crate::error::usage;
use crate::key::{self, Format};
use crate::registry::{KeyRecord, Registry};
use crate::render::{self, KeyParts, Settings};

pub fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let kind = resolve_kind(ctx, args.kind);
    let remote = super::push::CreateRemote::of(&args);
    let format = match args.format {
        FormatArg::Standard => Format::Standard,
        FormatArg::Aksk => Format::Aksk,
    };
    if let Some(n) = &args.name {
        key::validate_name(n)?;
    }
    let prefix = match (&args.prefix, format) {
        (Some(_), Format::Aksk) => {
            return Err(usage(
                "--prefix does not apply to --format aksk (its secret has no room for one)",
            ));
        }
        (Some(p), _) => {
            key::validate_prefix(p)?;
            p.clone()
        }
        (None, _) => kind.default_prefix().to_string(),
    };
    let now = OffsetDateTime::now_utc();
    let meta = new_key_meta(args.description, &args.expires, args.scopes, now)?;
    let name = match args.name {
        Some(n) => n,
        None => unused_name(ctx, kind)?,
    };

    let settings = Settings::resolve(kind, &args.render, OutputFormat::Yaml, None)?;
    // `config` renders for the same host later unless told otherwise.
    let mut extra = serde_json::Map::new();
    if args.render.region.is_some() || args.render.host.is_some() {
        extra.insert(render::HOST_FIELD.into(), settings.host.clone().into());
    }
    if args.render.dry_run {
        let sample = key::mint(format, &prefix);
        let parts = KeyParts {
            kind,
            id: &sample.id,
            name: &name,
            secret: sample.secret.expose_secret(),
        };
        Delivery::prepare(&args.render, settings, &parts)?.deliver(ctx, &parts)?;
        ctx.out
            .note("dry run: no key was created (the key shown is a sample)");
        return Ok(());
    }

    let (minted, link) = super::push::mint_for_create(ctx, &remote, format, &prefix)?;
    let links: Vec<_> = link.into_iter().collect();
    let parts = KeyParts {
        kind,
        id: &minted.id,
        name: &name,
        secret: minted.secret.expose_secret(),
    };
    // A bad --write FILE fails here, before anything is stored.
    let delivery = Delivery::prepare(&args.render, settings, &parts)
        .inspect_err(|_| super::push::undo_server_mint(ctx, &remote, &links))?;
    let rec = KeyRecord {
        remotes: links.clone(),
        extra,
        ..meta.record(minted.id.clone(), name.clone(), kind, format, now)
    };
    let mut rec = store_new_key(ctx, rec, &minted.secret)
        .inspect_err(|_| super::push::undo_server_mint(ctx, &remote, &links))?;
    // A failed push keeps the key (stored, local only): it is still shown once below, and
    // the push error decides the exit code.
    let pushed = super::push::push_after_create(ctx, &mut rec, &remote);

    ctx.out.note(&format!(
        "created {} key '{}' ({}), secret in the {} store; `keyctl config {}` renders it again",
        rec.kind,
        rec.name,
        rec.id,
        rec.store.as_str(),
        rec.name
    ));
    let written = delivery.write.as_ref().map(|(p, _)| p.clone());
    if let Some(path) = &written {
        delivery.deliver(ctx, &parts).with_context(|| {
            format!(
                "key '{}' was created, but {} was not written (`keyctl config {} --write FILE` retries)",
                rec.name,
                path.display(),
                rec.name
            )
        })?;
    }
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
                view: KeyView::of(&rec, now),
                secret: written.is_none().then_some(parts.secret),
                written: written.map(|p| p.display().to_string()),
                snippet: snippet.as_deref().map(String::as_str),
            },
        )?;
        return pushed;
    }
    if written.is_none() {
        delivery.deliver(ctx, &parts)?;
    }
    pushed
}

/// A default name not yet in the registry (a clash of 30 random bits is rare; retry).
fn unused_name(ctx: &Ctx, kind: key::Kind) -> anyhow::Result<String> {
    let reg = Registry::load(&ctx.paths.data)?;
    let mut name = key::default_name(kind);
    while reg.keys().iter().any(|k| k.name == name) {
        name = key::default_name(kind);
    }
    Ok(name)
}
