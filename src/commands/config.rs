//! `keyctl config KEY`: render a key's snippet again from its stored secret, delivered
//! the way `create` delivers it (printed, `--write`, `--dry-run`).

use secrecy::ExposeSecret;

use crate::cli::ConfigArgs;
use crate::context::Ctx;
use crate::flow::deliver::Delivery;
use crate::flow::targets;
use crate::render::OutputFormat;
use crate::render::{KeyParts, Settings, openstack};

pub(crate) fn run(ctx: &Ctx, args: ConfigArgs) -> anyhow::Result<()> {
    let (k, secret) = crate::flow::keys::usable_secret(ctx, &args.key.key, args.allow_expired)?;
    if let (Some(path), false) = (&args.render.write, args.render.dry_run) {
        let choices = args.render.choices();
        return targets::write_key(ctx, &k, secret.expose_secret(), path, &choices, ctx.yes);
    }
    if let Some(svc) = k
        .service
        .as_ref()
        .filter(|s| openstack::is_keystone(Some(s)))
    {
        // What OpenStack users paste; never a Soda snippet.
        let format = openstack::resolve(svc, &args.render.choices(), ctx.out.json)?;
        no_dry_run(&args)?;
        let key = openstack::KeystoneKey {
            id: &k.id,
            name: &k.name,
            secret: secret.expose_secret(),
        };
        return super::app_credential::print(&openstack::render(svc, format, &key)?);
    }
    let default = if ctx.out.json && args.render.write.is_none() {
        OutputFormat::Json
    } else {
        OutputFormat::Yaml
    };
    let remembered = crate::flow::keys::soda_endpoint_of(ctx, &k);
    let settings = Settings::resolve(k.kind, &args.render.choices(), default, remembered.as_ref())?;
    let parts = KeyParts {
        kind: k.kind,
        id: &k.id,
        name: &k.name,
        secret: secret.expose_secret(),
    };
    // --dry-run: the edit of a soda_cloud block, shown and not written.
    let service = crate::flow::catalog::service_of(ctx, &k);
    if args.render.write.is_some() && !targets::is_soda_block(&service, k.kind, settings.format) {
        no_dry_run(&args)?;
    }
    let delivery = Delivery::prepare(&args.render.target(), settings, &parts)?;
    delivery.deliver(&ctx.out, &parts)
}

/// `--dry-run` shows the edit of a `soda_cloud` block; other forms are written whole.
fn no_dry_run(args: &ConfigArgs) -> anyhow::Result<()> {
    if args.render.dry_run && args.render.write.is_some() {
        return Err(crate::error::usage(
            "--dry-run shows the edit of a soda_cloud block; this form is written as a whole entry: write it to a new file to see it",
        ));
    }
    Ok(())
}
