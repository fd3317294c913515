//! `keyctl create`: mint a key, store its secret, print its configuration snippet once
//! (or write it into a Soda configuration file).

use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use super::{KeyView, new_key_meta, resolve_kind, store_new_key};
use anyhow::Context as _;

use super::config::Delivery;
use super::push::CreateRemote;
use crate::cli::{CreateArgs, FormatArg};
use crate::context::Ctx;
use crate::error::usage;
use crate::key::{self, Format};
use crate::registry::{KeyRecord, Registry};
use crate::render::OutputFormat;
use crate::render::{self, KeyParts, Settings};

pub fn run(ctx: &Ctx, args: CreateArgs) -> anyhow::Result<()> {
    let kind = resolve_kind(ctx, args.kind);
    let remote = CreateRemote::resolve(ctx, &args, kind)?;
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
        Some(n) => {
            name_free(ctx, &n)?;
            n
        }
        None => unused_name(ctx, kind)?,
    };

    // A key a Soda remote mints is for that remote's region unless told otherwise.
    let settings = Settings::resolve(
        kind,
        &args.render.choices(),
        OutputFormat::Yaml,
        remote.soda_host.as_deref(),
    )?;
    // `config` renders for the same host later unless told otherwise.
    let mut extra = serde_json::Map::new();
    if args.render.region.is_some() || args.render.host.is_some() || remote.soda_host.is_some() {
        extra.insert(render::HOST_FIELD.into(), settings.host.clone().into());
    }
    // --write FILE is checked (and replacing another key's block confirmed) with a sample
    // key before anything is minted, so a bad FILE leaves no key behind.
    let sample = key::mint(format, &prefix);
    let sample_parts = KeyParts {
        kind,
        id: &sample.id,
        name: &name,
        secret: sample.secret.expose_secret(),
    };
    let check = Delivery::prepare(&args.render, settings.clone(), &sample_parts)?;
    if args.render.dry_run {
        check.deliver(ctx, &sample_parts)?;
        ctx.out
            .note("dry run: no key was created (the key shown is a sample)");
        return Ok(());
    }
    check.confirm_replace(ctx, "a new key")?;
    drop(check);

    let (minted, link) = super::push::mint_for_create(ctx, &remote, format, &prefix)?;
    let server_minted = link.is_some();
    let rec = KeyRecord {
        remotes: link.into_iter().collect(),
        extra,
        ..meta.record(minted.id.clone(), name.clone(), kind, format, now)
    };
    // A pair the remote minted exists nowhere else: it is stored before anything else
    // can fail, and printed once on stderr if even that fails.
    let mut rec = match store_new_key(ctx, rec, &minted.secret) {
        Ok(r) => r,
        Err(e) => {
            if server_minted {
                super::push::rescue_secret(remote.remote.as_deref().unwrap_or("-"), &minted);
            }
            return Err(e);
        }
    };
    let parts = KeyParts {
        kind,
        id: &minted.id,
        name: &name,
        secret: minted.secret.expose_secret(),
    };
    let delivery = Delivery::prepare(&args.render, settings, &parts).with_context(|| {
        format!(
            "key '{}' was created, but its snippet could not be prepared (`keyctl config {}` renders it)",
            rec.name, rec.name
        )
    })?;
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
    where_registered(ctx, &rec, &remote);
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
                view: KeyView::of(&rec, now, ctx.warn_window),
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

/// Says which service the key is registered with, so nobody pastes a key that no
/// service will accept: once, on stderr.
fn where_registered(ctx: &Ctx, rec: &KeyRecord, remote: &CreateRemote) {
    match (&remote.remote, remote.server_side, &remote.soda_host) {
        (Some(r), true, Some(host)) => ctx.out.note(&format!(
            "Soda Cloud ({host}) minted this runner key through remote {r}; the runner appears in Soda Cloud once deployed with these values (its name is the key's name)"
        )),
        (Some(r), true, None) => ctx
            .out
            .note(&format!("remote {r} minted this key and holds it")),
        (Some(_), false, _) => {}
        (None, _, _) => ctx.out.note(&format!(
            "key '{}' is registered with no service yet: no service accepts it until `keyctl push {} --remote R` registers it (Soda Cloud mints its own keys: `keyctl create --kind runner --remote R` for a runner, `keyctl import` for an API key made in its UI)",
            rec.name, rec.name
        )),
    }
}

/// An explicit `--name` that a live key already has is refused before anything is minted.
fn name_free(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    let reg = crate::catalog::load_for(ctx, name)?;
    if reg.keys().iter().any(|k| k.name == name && k.is_live()) {
        return Err(crate::error::Error::conflict(format!(
            "a key named {} already exists; pick another --name",
            crate::output::quoted(name)
        ))
        .into());
    }
    Ok(())
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
