//! `keyctl create`: mint a key, store its secret, print it once.

use secrecy::ExposeSecret;
use serde::Serialize;
use time::OffsetDateTime;

use super::{KeyView, new_key_meta, resolve_kind, store_new_key};
use crate::cli::{CreateArgs, FormatArg};
use crate::context::Ctx;
use crate::error::usage;
use crate::key::{self, Format};
use crate::registry::{KeyRecord, Registry};
use crate::store::StoreKind;

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

    let (minted, link) = super::push::mint_for_create(ctx, &remote, format, &prefix)?;
    let rec = KeyRecord {
        id: minted.id,
        name,
        kind,
        format,
        description: meta.description,
        created_at: now,
        expires_at: meta.expires_at,
        scopes: meta.scopes,
        store: StoreKind::Keyring,
        revoked_at: None,
        remotes: link.into_iter().collect(),
        extra: Default::default(),
    };
    let links = rec.remotes.clone();
    let mut rec = store_new_key(ctx, rec, &minted.secret)
        .inspect_err(|_| super::push::undo_server_mint(ctx, &remote, &links))?;
    let pushed = super::push::push_after_create(ctx, &mut rec, &remote);

    if ctx.out.json {
        #[derive(Serialize)]
        struct Created<'a> {
            #[serde(flatten)]
            view: KeyView<'a>,
            secret: &'a str,
        }
        crate::output::print_json(
            &ctx.out,
            &Created {
                view: KeyView::of(&rec, now),
                secret: minted.secret.expose_secret(),
            },
        )?;
        return pushed;
    }
    println!("id: {}", rec.id);
    println!("secret: {}", minted.secret.expose_secret());
    ctx.out.note(&format!(
        "created {} key '{}' ({}), secret in the {} store; `keyctl secret {}` prints it again",
        rec.kind,
        rec.name,
        rec.id,
        rec.store.as_str(),
        rec.name
    ));
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
