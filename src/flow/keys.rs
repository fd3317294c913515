//! Keys as the workflows handle them: storing a new one (registry and secret, both or
//! neither), reading a usable secret, and the checked metadata `create` and `import`
//! share.

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::app::App;
use crate::key::{Format, Kind};
use crate::registry::{KeyRecord, Registry};
use crate::store::{self, StoreChoice, StoreKind};

/// Stores a new key: registry lock, name check, secret into the store, registry entry.
/// If the registry cannot be written the secret is taken back out, so a failure leaves
/// neither half behind. Returns the record as saved.
pub(crate) fn store_new_key(
    app: &App,
    mut rec: KeyRecord,
    secret: &SecretString,
) -> anyhow::Result<KeyRecord> {
    if app.store == StoreChoice::Vault {
        return store::vault::create_key(&app.stores, rec, secret);
    }
    let mut reg = Registry::lock(&app.paths.data)?;
    reg.check_free(&rec.name, &rec.id)?;
    let label = format!("keyctl {} key {} ({})", rec.kind, rec.name, rec.id);
    rec.store = app.stores.put_new(&rec.id, &label, secret)?;
    rec.fingerprint = reg.reg.recorded_fingerprint(secret.expose_secret());
    if rec.fingerprint.is_none() {
        app.out.note(&format!(
            "the secret of {} is too weak to fingerprint (fewer than {} characters, or too few kinds or different characters): `keyctl scan` will not find it if it leaks",
            rec.name,
            crate::registry::MIN_FINGERPRINT_LEN
        ));
    }
    let saved = reg.insert(rec.clone()).and_then(|()| reg.save());
    if let Err(e) = saved {
        if let Ok(s) = app.stores.get(rec.store) {
            let _ = s.delete(&rec.id);
        }
        return Err(e);
    }
    app.out.debug(&format!(
        "registry {} updated; secret of {} in the {} store",
        reg.reg.path().display(),
        rec.id,
        rec.store.as_str()
    ));
    Ok(rec)
}

/// The record and secret of KEY for commands that hand the secret out (`secret`,
/// `config`, `run`): an expired or revoked key is refused unless `allow_expired`.
pub(crate) fn usable_secret(
    app: &App,
    key: &str,
    allow_expired: bool,
) -> anyhow::Result<(KeyRecord, SecretString)> {
    let reg = crate::flow::catalog::load_for(app, key)?;
    let k = reg.resolve(key)?.clone();
    let status = k.status(OffsetDateTime::now_utc(), app.warn_window);
    // A key revoked here had its secret deleted: no flag brings it back, so none is
    // suggested. (A team key keeps its secret, for the record every machine sees.)
    if let Some(at) = k
        .revoked_at
        .filter(|_| k.store != StoreKind::Vault && !allow_expired)
    {
        return Err(crate::error::Error::inactive(format!(
            "key '{}' ({}) was revoked on {}; its secret was deleted (`keyctl create` mints a new key)",
            k.name,
            k.id,
            crate::expiry::day(at)
        ))
        .into());
    }
    if !status.is_usable() && !allow_expired {
        return Err(crate::error::Error::inactive(format!(
            "key '{}' ({}) is {}; pass --allow-expired to use it anyway",
            k.name,
            k.id,
            status.as_str()
        ))
        .into());
    }
    let store = app.stores.get(k.store)?;
    app.out.debug(&format!(
        "reading the secret of {} from {}",
        k.id,
        store.location()
    ));
    let secret = store.get(&k.id)?;
    Ok((k, secret))
}

/// Validated metadata shared by `create` and `import`.
pub(crate) struct NewKeyMeta {
    pub description: Option<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub scopes: Vec<String>,
    /// `--rotate-every`, checked ([`crate::flow::rotate::parse_every`]).
    pub rotate_every: Option<String>,
}

impl NewKeyMeta {
    /// A fresh record for a key that is about to be stored (`store` is decided then).
    pub(crate) fn record(
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
            fingerprint: None,
            service: None,
            targets: Vec::new(),
            app_credential: None,
            last_verified: None,
            rotate_every: self.rotate_every,
            replacing: None,
            extra: Default::default(),
        }
    }
}

pub(crate) fn new_key_meta(
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
        rotate_every: None,
    })
}

/// Registry fields (`KeyRecord::extra`) where a local key remembers the Soda Cloud
/// address its snippet was rendered for (`--region`, `--host`, `--port`, `--scheme`).
const PORT_FIELD: &str = "soda_port";
const SCHEME_FIELD: &str = "soda_scheme";

/// What a local key remembers of the address it was rendered for, when one was given.
pub(crate) fn remembered_endpoint(
    asked: &crate::render::Choices,
    s: &crate::render::Settings,
) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    if asked.region.is_some() || asked.host.is_some() {
        extra.insert(crate::render::HOST_FIELD.into(), s.host.clone().into());
    }
    for (field, v) in [(PORT_FIELD, &s.port), (SCHEME_FIELD, &s.scheme)] {
        if let Some(v) = v {
            extra.insert(field.into(), v.clone().into());
        }
    }
    extra
}

/// Where a key's `soda_cloud` block points: its Soda Cloud service, or what a local key
/// remembers from `create`.
pub(crate) fn soda_endpoint_of(app: &App, k: &KeyRecord) -> Option<crate::service::SodaEndpoint> {
    if let Some(e) = crate::flow::catalog::service_of(app, k).soda() {
        return Some(e.clone());
    }
    let field = |f: &str| k.extra.get(f).and_then(|v| v.as_str()).map(str::to_string);
    let (host, port, scheme) = (
        field(crate::render::HOST_FIELD),
        field(PORT_FIELD),
        field(SCHEME_FIELD),
    );
    if host.is_none() && port.is_none() && scheme.is_none() {
        return None;
    }
    Some(crate::service::SodaEndpoint {
        assumed: host.is_none(),
        host: host.unwrap_or_else(|| crate::render::EU_HOST.into()),
        port,
        scheme,
    })
}
