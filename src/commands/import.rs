//! `keyctl import`: keep a key that a service minted and showed only once. The secret
//! comes from stdin or a no-echo prompt, never from a flag.

use time::OffsetDateTime;

use super::{KeyView, resolve_kind};
use crate::cli::ImportArgs;
use crate::context::Ctx;
use crate::flow::keys::{new_key_meta, store_new_key};
use crate::input;
use crate::key::{self, Format};
use crate::render;
use crate::service::{Service, SodaEndpoint};

pub(crate) fn run(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<()> {
    let kind = resolve_kind(ctx, args.kind);
    if let Some(p) = &args.port {
        render::validate_port(p)?;
    }
    if let Some(sc) = &args.scheme {
        render::validate_scheme(sc)?;
    }
    key::validate_name(&args.name)?;
    key::validate_id(&args.id)?;
    let service = service_of_import(ctx, &args)?;
    // --write FILE is checked before the key is kept, so a bad FILE keeps nothing.
    let choices = render::Choices {
        output: args.output,
        region: args.region,
        host: args.host.clone(),
        port: args.port.clone(),
        scheme: args.scheme.clone(),
        ..Default::default()
    };
    if let Some(path) = &args.write {
        let format = crate::flow::targets::format_for(&service, kind, &choices)?;
        crate::flow::targets::precheck(path, &service, kind, format, &args.name)?;
    }
    let now = OffsetDateTime::now_utc();
    let mut meta = new_key_meta(args.description, &args.expires, args.scopes, now)?;
    meta.rotate_every = crate::flow::rotate::parse_every(args.rotate_every.as_deref())?;
    let secret = input::read_secret(&format!("Secret of key {} (input hidden): ", args.id))?;
    let format = match key::check(secrecy::ExposeSecret::expose_secret(&secret)) {
        Ok(r) => r.format,
        Err(_) => Format::Standard,
    };
    let mut rec = meta.record(args.id, args.name, kind, format, now);
    rec.service = Some(service.clone());
    // --verify R: the service must accept the key before it is kept.
    if let Some(r) = &args.verify {
        let how = ctx
            .remote(r)?
            .verify_key(&service, &rec.id, &secret, None)
            .map_err(|e| e.context(format!("key {} was not imported", rec.id)))?;
        ctx.out
            .note(&format!("key {} works on remote {r}: {how}", rec.id));
        rec.last_verified = Some(now);
    }
    let rec = store_new_key(ctx, rec, &secret)?;
    if let Some(path) = &args.write {
        let secret = secrecy::ExposeSecret::expose_secret(&secret);
        crate::flow::targets::write_key(ctx, &rec, secret, path, &choices, ctx.yes).map_err(
            |e| {
                e.context(format!(
                    "key '{}' was imported, but {} was not written (`keyctl config {} --write FILE` retries)",
                    rec.name,
                    path.display(),
                    rec.name
                ))
            },
        )?;
    }
    drop(secret);
    // As recorded (with the file it was written to).
    let rec = match &args.write {
        Some(_) => crate::flow::catalog::load_for(ctx, &rec.id)?
            .resolve(&rec.id)?
            .clone(),
        None => rec,
    };
    if ctx.out.json {
        return crate::output::print_json(&ctx.out, &KeyView::of(&rec, now, ctx.warn_window));
    }
    ctx.out.note(&format!(
        "imported {} key '{}' ({}), secret in the {} store, {}; `keyctl config {}` renders its snippet",
        rec.kind,
        rec.name,
        rec.id,
        rec.store.as_str(),
        crate::expiry::describe(rec.expires_at, now),
        rec.name
    ));
    // The next step: prove the service accepts it, where one is configured.
    let only = || {
        let mut names = ctx.remotes.keys();
        match (names.next(), names.next()) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
    };
    if args.verify.is_none()
        && let Some(r) = crate::flow::push::only_soda_remote(ctx).or_else(only)
    {
        ctx.out.note(&format!(
            "check that the service accepts it: `keyctl verify {} --remote {r}`",
            rec.name
        ));
    }
    Ok(())
}

/// Where an imported key works: Soda Cloud at `--region`/`--host`/`--port`/`--scheme`;
/// else the service of the remote `--verify` names, or of the only Soda remote; else
/// Soda Cloud at its default host, marked assumed (so `--write` keeps the host of a
/// block it replaces).
fn service_of_import(ctx: &Ctx, a: &ImportArgs) -> anyhow::Result<Service> {
    let told = a.region.is_some() || a.host.is_some();
    if told || a.port.is_some() || a.scheme.is_some() {
        return Ok(Service::SodaCloud(SodaEndpoint {
            host: render::target_host(a.region, a.host.as_deref())?,
            port: a.port.clone(),
            scheme: a.scheme.clone(),
            assumed: !told,
        }));
    }
    let remote = a
        .verify
        .clone()
        .or_else(|| crate::flow::push::only_soda_remote(ctx));
    if let Some(r) = remote {
        let s = ctx.remote(&r)?.service();
        if !s.is_local() {
            return Ok(s);
        }
    }
    Ok(Service::SodaCloud(SodaEndpoint {
        assumed: true,
        ..SodaEndpoint::host(render::EU_HOST)
    }))
}
