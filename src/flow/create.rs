//! Creating a key: mint it (or have the remote mint it), store it, push it where asked,
//! and prepare (or, with `--write`, write) its configuration snippet. A bad `--write`
//! file fails before anything is minted; a pair a remote minted is stored before anything
//! else can fail.

use std::path::PathBuf;

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::deliver::{Delivery, Target};
use super::keys::{new_key_meta, store_new_key};
use super::push::{CreateRemote, RemoteChoice};
use crate::app::App;
use crate::error::usage;
use crate::key::{self, Format, Kind};
use crate::registry::{KeyRecord, Registry};
use crate::render::{self, KeyParts, OutputFormat, Settings};

/// Everything `create` was asked for, checked by [`create`].
pub(crate) struct CreateRequest {
    pub kind: Kind,
    pub format: Format,
    pub prefix: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `90d`, a date, `never`... ([`crate::expiry::parse_expires`]).
    pub expires: String,
    pub scopes: Vec<String>,
    /// `--rotate-every`.
    pub rotate_every: Option<String>,
    pub remote: RemoteChoice,
    pub render: render::Choices,
    pub target: Target,
    /// Confirmations are answered yes (`--yes`).
    pub assume_yes: bool,
}

/// A created key, its secret (shown once), and where its snippet goes.
pub(crate) struct Created {
    pub rec: KeyRecord,
    pub secret: SecretString,
    pub delivery: Delivery,
    /// The file the snippet was written to (`--write`).
    pub written: Option<PathBuf>,
    /// The push after creating: a failure keeps the key (stored, local only), which is
    /// still shown once; this error then decides the exit code.
    pub pushed: anyhow::Result<()>,
}

/// Mints (or has the remote mint), stores, pushes and, with `--write`, writes a key.
/// None after a dry run (nothing created).
pub(crate) fn create(app: &App, args: CreateRequest) -> anyhow::Result<Option<Created>> {
    let kind = args.kind;
    let remote = CreateRemote::resolve(app, &args.remote, kind)?;
    let format = args.format;
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
    let mut meta = new_key_meta(args.description, &args.expires, args.scopes, now)?;
    meta.rotate_every = super::rotate::parse_every(args.rotate_every.as_deref())?;
    let name = match args.name {
        Some(n) => {
            name_free(app, &n, args.remote.remote.as_deref())?;
            n
        }
        None => unused_name(app, kind)?,
    };

    // A key a Soda remote mints is for that remote's host unless told otherwise.
    let settings = Settings::resolve(kind, &args.render, OutputFormat::Yaml, remote.soda())?;
    let service = remote.service.clone().unwrap_or_default();
    // A local key remembers where its snippet was meant to go, for `config` later.
    let extra = if service.is_local() {
        super::keys::remembered_endpoint(&args.render, &settings)
    } else {
        serde_json::Map::new()
    };
    // --write FILE is checked (and replacing another key's block confirmed) with a sample
    // key before anything is minted, so a bad FILE leaves no key behind.
    let sample = key::mint(format, &prefix);
    let sample_parts = KeyParts {
        kind,
        id: &sample.id,
        name: &name,
        secret: sample.secret.expose_secret(),
    };
    // The soda_cloud block is planned (and shown by --dry-run) by `Delivery`; every other
    // form is checked here and written once the key is pushed.
    let (soda_target, other_write) = match &args.target.write {
        Some(path) if !super::targets::is_soda_block(&service, kind, settings.format) => {
            if args.target.dry_run {
                return Err(usage(
                    "--dry-run shows the edit of a soda_cloud block; this form is written as a whole entry: write it to a new file to see it",
                ));
            }
            let f = super::targets::format_for(&service, kind, &args.render)?;
            super::targets::precheck(path, &service, kind, f, &name)?;
            (Target::default(), Some((path.clone(), f)))
        }
        _ => (args.target.clone(), None),
    };
    let check = Delivery::prepare(&soda_target, settings.clone(), &sample_parts)?;
    if args.target.dry_run {
        check.deliver(&app.out, &sample_parts)?;
        app.out
            .note("dry run: no key was created (the key shown is a sample)");
        return Ok(None);
    }
    check.confirm_replace(app.prompter.as_ref(), args.assume_yes, "a new key")?;
    drop(check);

    let (minted, link) = super::push::mint_for_create(app, &remote, format, &prefix)?;
    let server_minted = link.is_some();
    let rec = KeyRecord {
        remotes: link.into_iter().collect(),
        service: Some(service),
        extra,
        ..meta.record(minted.id.clone(), name.clone(), kind, format, now)
    };
    // A pair the remote minted exists nowhere else: it is stored before anything else
    // can fail, and printed once on stderr if even that fails.
    let mut rec = match store_new_key(app, rec, &minted.secret) {
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
    let delivery = Delivery::prepare(&soda_target, settings, &parts).with_context(|| {
        format!(
            "key '{}' was created, but its snippet could not be prepared (`keyctl config {}` renders it)",
            rec.name, rec.name
        )
    })?;
    // A failed push keeps the key (stored, local only): it is still shown once below, and
    // the push error decides the exit code.
    let pushed = super::push::push_after_create(app, &mut rec, &remote);

    app.out.note(&format!(
        "created {} key '{}' ({}), secret in the {} store, {}; `keyctl config {}` renders it again",
        rec.kind,
        rec.name,
        rec.id,
        rec.store.as_str(),
        crate::expiry::describe(rec.expires_at, now),
        rec.name
    ));
    where_registered(app, &rec, &remote);
    let key_name = rec.name.clone();
    let not_written = |path: &std::path::Path| {
        format!(
            "key '{key_name}' was created, but {} was not written (`keyctl config {key_name} --write FILE` retries)",
            path.display(),
        )
    };
    let written = delivery.write.as_ref().map(|(p, _)| p.clone());
    if let Some(path) = &written {
        delivery
            .deliver(&app.out, &parts)
            .with_context(|| not_written(path))?;
        let t = super::targets::target_of(path, delivery.settings.format, &args.render);
        super::targets::remember(app, &rec, t).with_context(|| not_written(path))?;
    }
    let written = match other_write {
        Some((path, f)) => {
            // Rendered for the service the push recorded (an EC2 key's S3 endpoint).
            if let Ok(r) = crate::flow::catalog::load_for(app, &rec.id)
                .and_then(|reg| reg.resolve(&rec.id).cloned())
            {
                rec = r;
            }
            super::targets::write_new(app, &rec, &path, f, &args.render, &parts)
                .with_context(|| not_written(&path))?;
            Some(path)
        }
        None => written,
    };
    Ok(Some(Created {
        rec,
        secret: minted.secret,
        delivery,
        written,
        pushed,
    }))
}

/// Says which service the key is registered with, so nobody pastes a key that no
/// service will accept: once, on stderr.
fn where_registered(app: &App, rec: &KeyRecord, remote: &CreateRemote) {
    match (&remote.remote, remote.server_side, remote.soda()) {
        (Some(r), true, Some(at)) => app.out.note(&format!(
            "Soda Cloud ({}) minted this runner key through remote {r}; the runner appears in Soda Cloud once deployed with these values (its name is the key's name)",
            at.base_url()
        )),
        (Some(r), true, None) => app
            .out
            .note(&format!("remote {r} minted this key and holds it")),
        (Some(_), false, _) => {}
        (None, _, _) if rec.kind == key::Kind::Runner => app.out.warn(&format!(
            "Soda Cloud will not accept runner key '{}': keyctl minted it here, and Soda Cloud takes only runner keys it minted itself. For one it accepts: `keyctl remote add NAME --type soda --url https://cloud.soda.io --user ADMIN_KEY_ID` (secret on stdin), then `keyctl create --kind runner --remote NAME`",
            rec.name
        )),
        (None, _, _) => app.out.note(&format!(
            "key '{}' is registered with no service yet: no service accepts it until `keyctl push {} --remote R` registers it (Soda Cloud mints its own keys: `keyctl create --kind runner --remote R` for a runner, `keyctl import` for an API key made in its UI)",
            rec.name, rec.name
        )),
    }
}

/// An explicit `--name` that a live key already has is refused before anything is minted.
/// Where that key is the one an interrupted `create --remote R` left unpushed, the error
/// says how to finish the job instead.
pub(crate) fn name_free(app: &App, name: &str, remote: Option<&str>) -> anyhow::Result<()> {
    let reg = crate::flow::catalog::load_for(app, name)?;
    let Some(k) = reg.keys().iter().find(|k| k.name == name && k.is_live()) else {
        return Ok(());
    };
    let quoted = crate::output::quoted(name);
    let msg = match remote {
        Some(r) if !k.remotes.iter().any(|l| l.remote == r) => format!(
            "a key named {quoted} already exists ({}, created {}) and is not on remote {r}: `keyctl push {name} --remote {r}` finishes an interrupted create; or pick another --name",
            k.id,
            crate::expiry::human(k.created_at)
        ),
        Some(r) => format!(
            "a key named {quoted} already exists and is on remote {r}: `keyctl config {name}` shows its snippet again; or pick another --name"
        ),
        None => format!("a key named {quoted} already exists; pick another --name"),
    };
    Err(crate::error::Error::conflict(msg).into())
}

/// A default name not yet in the registry (a clash of 30 random bits is rare; retry).
pub(crate) fn unused_name(app: &App, kind: key::Kind) -> anyhow::Result<String> {
    let reg = Registry::load(&app.paths.data)?;
    let mut name = key::default_name(kind);
    while reg.keys().iter().any(|k| k.name == name) {
        name = key::default_name(kind);
    }
    Ok(name)
}
