//! One module per subcommand, each with a `run`. Shared pieces that more than one
//! command needs (the public view of a key, storing a new key) live here.

pub mod check;
pub mod config;
pub mod create;
pub mod delete;
pub mod doctor;
pub mod import;
pub mod list;
pub mod push;
pub mod remote;
pub mod revoke;
pub mod rotate;
pub mod run;
pub mod secret;
pub mod show;
pub mod token;
pub mod verify;

use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::{Command, KindArg};
use crate::context::Ctx;
use crate::expiry::Status;
use crate::key::{Format, Kind};
use crate::registry::{KeyRecord, Registry};
use crate::store::{self, StoreKind};

pub fn dispatch(ctx: &Ctx, cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(a) => create::run(ctx, a),
        Command::Import(a) => import::run(ctx, a),
        Command::List(a) => list::run(ctx, a),
        Command::Show(a) => show::run(ctx, &a.key),
        Command::Secret(a) => secret::run(ctx, &a.key.key, a.allow_expired),
        Command::Config(a) => config::run(ctx, a),
        Command::Delete(a) => delete::run(ctx, &a.key),
        Command::Check => check::run(ctx),
        Command::Doctor(a) => doctor::run(ctx, a.fix),
        Command::Run(a) => run::run(ctx, a),
        Command::Completions(a) => crate::complete::print_script(a.shell),
        Command::Manpage => crate::complete::print_manpage(),
        Command::Remote(c) => remote::run(ctx, c),
        Command::Push(a) => push::run(ctx, a),
        Command::Revoke(a) => revoke::run(ctx, a),
        Command::Token(a) => token::run(ctx, a),
        Command::Verify(a) => verify::run(ctx, a),
        Command::Rotate(a) => rotate::run(ctx, a),
        Command::Gc(a) => rotate::finish(ctx, a.jobs),
    }
}

/// `--kind`, with the deprecation note for the old name.
pub fn resolve_kind(ctx: &Ctx, k: KindArg) -> Kind {
    match k {
        KindArg::Api => Kind::Api,
        KindArg::Runner => Kind::Runner,
        KindArg::Agent => {
            ctx.out.warn(
                "--kind agent is deprecated: Soda renamed agents to runners; use --kind runner",
            );
            Kind::Runner
        }
    }
}

/// What `list`, `show` and `create --json` say about a key: all metadata, no secret.
#[derive(Serialize)]
pub struct KeyView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: Kind,
    pub format: Format,
    pub description: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub status: Status,
    pub scopes: &'a [String],
    pub store: StoreKind,
    /// Remotes the key was pushed to.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub remotes: &'a [crate::registry::RemoteLink],
    /// Set once `keyctl rotate` replaced the key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded: Option<&'a crate::registry::Supersession>,
}

impl<'a> KeyView<'a> {
    pub fn of(k: &'a KeyRecord, now: OffsetDateTime, warn_window: time::Duration) -> Self {
        KeyView {
            id: &k.id,
            name: &k.name,
            kind: k.kind,
            format: k.format,
            description: k.description.as_deref(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            status: k.status(now, warn_window),
            scopes: &k.scopes,
            store: k.store,
            remotes: &k.remotes,
            superseded: k.superseded.as_ref(),
        }
    }
}

/// Stores a new key: registry lock, name check, secret into the store, registry entry.
/// If the registry cannot be written the secret is taken back out, so a failure leaves
/// neither half behind. Returns the record as saved.
pub fn store_new_key(
    ctx: &Ctx,
    mut rec: KeyRecord,
    secret: &SecretString,
) -> anyhow::Result<KeyRecord> {
    if ctx.store == crate::store::StoreChoice::Vault {
        return store::vault::create_key(&ctx.stores, rec, secret);
    }
    let mut reg = Registry::lock(&ctx.paths.data)?;
    reg.check_free(&rec.name, &rec.id)?;
    let label = format!("keyctl {} key {} ({})", rec.kind, rec.name, rec.id);
    rec.store = ctx.stores.put_new(&rec.id, &label, secret)?;
    let saved = reg.insert(rec.clone()).and_then(|()| reg.save());
    if let Err(e) = saved {
        if let Ok(s) = ctx.stores.get(rec.store) {
            let _ = s.delete(&rec.id);
        }
        return Err(e);
    }
    ctx.out.debug(&format!(
        "registry {} updated; secret of {} in the {} store",
        reg.reg.path().display(),
        rec.id,
        rec.store.as_str()
    ));
    Ok(rec)
}

/// The record and secret of KEY for commands that hand the secret out (`secret`,
/// `config`, `run`): an expired or revoked key is refused unless `allow_expired`.
pub fn usable_secret(
    ctx: &Ctx,
    key: &str,
    allow_expired: bool,
) -> anyhow::Result<(KeyRecord, SecretString)> {
    let reg = crate::catalog::load_for(ctx, key)?;
    let k = reg.resolve(key)?.clone();
    let status = k.status(OffsetDateTime::now_utc(), ctx.warn_window);
    if !status.is_usable() && !allow_expired {
        return Err(crate::error::Error::inactive(format!(
            "key '{}' ({}) is {}; pass --allow-expired to use it anyway",
            k.name,
            k.id,
            status.as_str()
        ))
        .into());
    }
    let store = ctx.stores.get(k.store)?;
    ctx.out.debug(&format!(
        "reading the secret of {} from {}",
        k.id,
        store.location()
    ));
    let secret = store.get(&k.id)?;
    Ok((k, secret))
}

/// Validated metadata shared by `create` and `import`.
pub struct NewKeyMeta {
    pub description: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub scopes: Vec<String>,
}

impl NewKeyMeta {
    /// A fresh record for a key that is about to be stored (`store` is decided then).
    pub fn record(
        self,
        id: String,
        name: String,
        kind: Kind,
        format: Format,
        now: OffsetDateTime,
    ) -> KeyRecord {
        KeyRecord {
            id,
            name,
            kind,
            format,
            description: self.description,
            created_at: now,
            expires_at: self.expires_at,
            scopes: self.scopes,
            store: StoreKind::Keyring,
            revoked_at: None,
            superseded: None,
            remotes: Vec::new(),
            extra: Default::default(),
        }
    }
}

pub fn new_key_meta(
    description: Option<String>,
    expires: &str,
    scopes: Vec<String>,
    now: OffsetDateTime,
) -> anyhow::Result<NewKeyMeta> {
    if let Some(d) = &description {
        crate::key::validate_description(d)?;
    }
    let expires_at = crate::expiry::parse_expires(expires, now)?;
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        crate::key::validate_scope(&s)?;
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(NewKeyMeta {
        description: description.filter(|d| !d.is_empty()),
        expires_at,
        scopes: out,
    })
}
