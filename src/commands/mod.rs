//! One module per subcommand, each with a `run`. Shared pieces that more than one
//! command needs (the public view of a key, storing a new key) live here.

pub(crate) mod app_credential;
pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod doctor;
pub(crate) mod import;
pub(crate) mod list;
pub(crate) mod push;
pub(crate) mod remote;
pub(crate) mod revoke;
pub(crate) mod rotate;
pub(crate) mod run;
pub(crate) mod scan;
pub(crate) mod secret;
pub(crate) mod show;
pub(crate) mod token;
pub(crate) mod verify;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cli::{Command, KindArg};
use crate::context::Ctx;
use crate::expiry::Status;
use crate::key::{Format, Kind};
use crate::registry::KeyRecord;
use crate::store::StoreKind;

pub(crate) fn dispatch(ctx: &Ctx, cmd: Command) -> anyhow::Result<()> {
    let done = run(ctx, cmd);
    if done.is_ok() {
        ctx.stores.warn_file_fallback();
    }
    done
}

fn run(ctx: &Ctx, cmd: Command) -> anyhow::Result<()> {
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
        Command::Manpage(a) => crate::complete::print_manpage(
            <crate::cli::Cli as clap::CommandFactory>::command(),
            &crate::cli::reference::man_sections(),
            a.dir.as_deref(),
        ),
        Command::Remote(c) => remote::run(ctx, c),
        Command::Push(a) => push::run(ctx, a),
        Command::Revoke(a) => revoke::run(ctx, a),
        Command::Token(a) => token::run(ctx, a),
        Command::Verify(a) => verify::run(ctx, a),
        Command::Rotate(a) => rotate::run(ctx, a),
        Command::Gc(a) => rotate::finish(ctx, a.jobs, a.unverified),
        Command::Scan(a) => scan::run(ctx, a),
    }
}

/// `--kind`, with the deprecation note for the old name.
pub(crate) fn resolve_kind(ctx: &Ctx, k: KindArg) -> Kind {
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
pub(crate) struct KeyView<'a> {
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
    /// Who issued the key and where it works (`{"type": "local"}`, `{"type":
    /// "soda-cloud", "host": ...}`, ...).
    pub service: std::borrow::Cow<'a, crate::service::Service>,
    /// Files the key was written into (`--write`), which `rotate` rewrites.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub targets: &'a [crate::registry::DeliveryTarget],
    /// When `verify` (or `rotate`) last proved the key works; null if never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_verified: Option<OffsetDateTime>,
    /// The rotation policy (`--rotate-every`); null without one.
    pub rotate_every: Option<&'a str>,
}

impl<'a> KeyView<'a> {
    pub(crate) fn of(k: &'a KeyRecord, now: OffsetDateTime, warn_window: time::Duration) -> Self {
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
            service: match &k.service {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(crate::service::Service::default()),
            },
            targets: &k.targets,
            last_verified: k.last_verified,
            rotate_every: k.rotate_every.as_deref(),
        }
    }
}
