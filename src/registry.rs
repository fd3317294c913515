//! The key registry: metadata of every key this home knows (never a secret), in one
//! JSON file under the keyctl home.
//!
//! Readers load it without a lock (writes are atomic renames, so a reader sees a whole
//! old or a whole new file). Writers take the exclusive lock, load, change and save
//! before releasing it, so concurrent `keyctl create` processes all land. A file that does
//! not parse is reported with its path and never overwritten. Fields this version does
//! not know are kept as they are, so an older keyctl does not erase a newer one's data.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Error;
use crate::expiry::{self, Status};
use crate::fsutil;
use crate::key::{Format, Kind};

const VERSION: u32 = 1;

/// Which store holds a key's secret: recorded with the key, so reads go to the right
/// place whatever `--store` says today.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Keyring,
    File,
    /// OpenBao / HashiCorp Vault KV v2, shared by a team's machines.
    Vault,
}

impl StoreKind {
    /// Every kind, for what searches them all (`doctor`).
    pub const ALL: [StoreKind; 3] = [StoreKind::File, StoreKind::Keyring, StoreKind::Vault];

    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::File => "file",
            StoreKind::Vault => "vault",
        }
    }
}

/// One key's metadata.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub format: Format,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Which store holds the secret: reads go there whatever `--store` says now.
    pub store: StoreKind,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
    /// Remotes that confirmed they hold this key (see `keyctl push`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<RemoteLink>,
    /// Set by `keyctl rotate` on the key it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Supersession>,
    /// The secret's salted fingerprint, for `keyctl scan` (see `scan`): never the secret.
    /// None for a secret too weak to fingerprint (see [`strong_enough`]).
    #[serde(
        default,
        skip_serializing_if = "no_fingerprint",
        deserialize_with = "strong_fingerprint"
    )]
    pub fingerprint: Option<Fingerprint>,
    /// Who issued the key and where it works (see `service`). `None` only in a record an
    /// older keyctl wrote, until it is migrated on first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<crate::service::Service>,
    /// Files keyctl wrote this key into (`--write`), which `rotate` rewrites with the
    /// successor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<DeliveryTarget>,
    /// What Keystone was asked for when it created this application credential, so its
    /// successor is asked for the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_credential: Option<AppCredPolicy>,
    /// When `keyctl verify` (or a rotation) last proved the key works on its service.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub last_verified: Option<OffsetDateTime>,
    /// How often the key is to be rotated (`90d`, ...): `keyctl rotate --due` rotates it
    /// once that long has passed since it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_every: Option<String>,
    /// Set on a rotation's successor until the rotation is done (pushed, verified,
    /// delivered): the ID of the key it replaces, which the name still means till then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacing: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A file keyctl wrote a key into: where, in which form, and the render choices that
/// make the same form again. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryTarget {
    /// Absolute.
    pub path: PathBuf,
    pub(crate) format: crate::render::OutputFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub export: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_ref: Option<crate::render::SecretRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) soda_version: Option<crate::render::SodaVersion>,
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
}

/// The request an application credential was created with, minus its name and expiry
/// (the successor gets a new name and the same lifetime).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppCredPolicy {
    /// Role names Keystone granted (the successor asks for the same).
    pub roles: Vec<String>,
    #[serde(default)]
    pub unrestricted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_rules: Option<serde_json::Value>,
}

/// HMAC-SHA256 of a secret under the registry's salt, and what `keyctl scan` needs to
/// look for it: its length, when it carries no checksum of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub hmac: String,
    pub len: usize,
    /// A keyctl checksum is in the secret (found by it; no length search needed).
    pub checksum: bool,
}

impl Fingerprint {
    /// True for the fingerprint [`Registry::fingerprint_of`] gives a secret too weak to
    /// fingerprint: it is never written.
    pub fn refused(&self) -> bool {
        self.hmac.is_empty()
    }
}

/// The shortest secret without a keyctl checksum that keyctl fingerprints.
pub(crate) const MIN_FINGERPRINT_LEN: usize = 20;

/// Whether `secret` is strong enough to keep its fingerprint in keys.json, where the salt
/// sits beside it: anyone who can read the file can test guesses against it offline. A
/// keyctl secret (checksummed, 49 random base62 characters) always is; any other needs
/// at least 20 characters from at least two of lower case, upper case, digits and
/// symbols, with at least 10 different characters (a random one of those has 100 bits
/// or more; `Summer2024!` and other guessable passwords are refused by length). A
/// refused secret is never fingerprinted, and `keyctl scan` cannot find it.
pub(crate) fn strong_enough(secret: &str) -> bool {
    if crate::key::looks_like_secret(secret) {
        return true;
    }
    let classes = [
        secret.chars().any(|c| c.is_ascii_lowercase()),
        secret.chars().any(|c| c.is_ascii_uppercase()),
        secret.chars().any(|c| c.is_ascii_digit()),
        secret.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    let mut distinct: Vec<char> = secret.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    secret.chars().count() >= MIN_FINGERPRINT_LEN && classes >= 2 && distinct.len() >= 10
}

fn no_fingerprint(f: &Option<Fingerprint>) -> bool {
    f.as_ref().is_none_or(Fingerprint::refused)
}

/// Reads a stored fingerprint, dropping one an older keyctl made of a short secret
/// without a checksum (it is not written back).
fn strong_fingerprint<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Fingerprint>, D::Error> {
    Ok(Option::<Fingerprint>::deserialize(d)?
        .filter(|f| f.checksum || f.len >= MIN_FINGERPRINT_LEN))
}

/// Where a key was pushed: written only after the remote confirmed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteLink {
    pub remote: String,
    /// The remote's own ID of the credential (Keystone: sha256 of the access key; Soda
    /// Cloud: the runner ID). Empty while unknown: Soda Cloud names no runner when it
    /// mints a runner key, and the runner appears only once deployed. Written as `null`.
    #[serde(
        default,
        serialize_with = "empty_as_null",
        deserialize_with = "null_as_empty"
    )]
    pub remote_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub pushed_at: OffsetDateTime,
}

impl RemoteLink {
    /// The remote's ID of the credential, when known.
    pub fn known_id(&self) -> Option<&str> {
        Some(self.remote_id.as_str()).filter(|s| !s.is_empty())
    }
}

fn empty_as_null<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        s.serialize_str(v)
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// A rotated key: still usable until its grace period ends, then revoked by
/// `keyctl rotate --finish` or `keyctl gc`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Supersession {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub revoke_after: OffsetDateTime,
    /// The rotation is still under way: the key is not superseded yet (its name, its
    /// status and `gc` treat it as live) and its grace period has not started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl KeyRecord {
    /// The key's status at `now`; within `warn_window` of its expiry it is `expiring`.
    pub fn status(&self, now: OffsetDateTime, warn_window: time::Duration) -> Status {
        match expiry::status(self.expires_at, self.revoked_at.is_some(), now, warn_window) {
            Status::Active | Status::Expiring if self.is_superseded() => Status::Superseded,
            Status::Active | Status::Expiring if self.replacing.is_some() => Status::Pending,
            s => s,
        }
    }

    /// The key's link to `remote`, if it was pushed there.
    pub fn links_to(&self, remote: &str) -> Option<&RemoteLink> {
        self.remotes.iter().find(|l| l.remote == remote)
    }

    /// Neither revoked nor replaced: the key a name stands for.
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none() && !self.is_superseded() && self.replacing.is_none()
    }

    /// Replaced by a successor whose rotation is done (not one still under way).
    pub fn is_superseded(&self) -> bool {
        self.superseded.as_ref().is_some_and(|s| !s.pending)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    version: u32,
    keys: Vec<KeyRecord>,
    /// The salt of the keys' fingerprints (hex, 32 random bytes), made with the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scan_salt: Option<String>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug)]
pub(crate) struct Registry {
    path: PathBuf,
    file: RegistryFile,
}

/// A registry loaded under the exclusive lock; `save` writes it back.
#[derive(Debug)]
pub(crate) struct LockedRegistry {
    pub reg: Registry,
    _lock: fsutil::LockGuard,
}

impl Registry {
    pub(crate) fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("keys.json")
    }

    /// Loads without locking; a missing file is an empty registry.
    pub(crate) fn load(data_dir: &Path) -> anyhow::Result<Registry> {
        let path = Self::path_in(data_dir);
        fsutil::check_private(&path, false)?;
        let file = match fsutil::read_optional(&path)? {
            None => RegistryFile {
                version: VERSION,
                ..Default::default()
            },
            Some(bytes) => serde_json::from_slice::<RegistryFile>(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "the key registry {} is corrupted ({}); it was left untouched: restore it from a backup or move it aside",
                    path.display(),
                    fsutil::json_error(&e)
                )
            })?,
        };
        if file.version > VERSION {
            anyhow::bail!(
                "the key registry {} was written by a newer keyctl (format {}); upgrade keyctl",
                path.display(),
                file.version
            );
        }
        Ok(Registry { path, file })
    }

    /// Takes the registry's exclusive lock and loads it.
    pub(crate) fn lock(data_dir: &Path) -> anyhow::Result<LockedRegistry> {
        fsutil::ensure_private_dir(data_dir)?;
        let lock = fsutil::lock_exclusive(&data_dir.join("keys.lock"))?;
        let reg = Self::load(data_dir)?;
        Ok(LockedRegistry { reg, _lock: lock })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Adds records kept elsewhere (the team store) to this in-memory view, for reads;
    /// IDs already known locally win. Never saved: `save` is on [`LockedRegistry`].
    pub(crate) fn with_shared(mut self, shared: Vec<KeyRecord>) -> Registry {
        // A set, not a scan of the list per key: a team has tens of thousands of keys.
        let mut seen: std::collections::HashSet<String> =
            self.file.keys.iter().map(|k| k.id.clone()).collect();
        self.file
            .keys
            .extend(shared.into_iter().filter(|k| seen.insert(k.id.clone())));
        self
    }

    pub(crate) fn keys(&self) -> &[KeyRecord] {
        &self.file.keys
    }

    /// Records an older keyctl wrote carry no service: fills it in with `infer`. True
    /// when any record changed (and so the file should be saved).
    pub(crate) fn fill_services(
        &mut self,
        infer: impl Fn(&KeyRecord) -> crate::service::Service,
    ) -> bool {
        let mut changed = false;
        for k in self.file.keys.iter_mut().filter(|k| k.service.is_none()) {
            k.service = Some(infer(k));
            changed = true;
        }
        changed
    }

    /// The salt of this home's fingerprints, if one was made.
    pub(crate) fn scan_salt(&self) -> Option<[u8; 32]> {
        self.file
            .scan_salt
            .as_deref()
            .and_then(crate::key::from_hex)
    }

    /// The salt, made (random) when this home has none yet; saved with the registry.
    pub(crate) fn ensure_scan_salt(&mut self) -> [u8; 32] {
        if let Some(s) = self.scan_salt() {
            return s;
        }
        let mut salt = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut salt)
            .expect("the OS random number generator failed");
        self.file.scan_salt = Some(crate::key::to_hex(&salt));
        salt
    }

    /// The fingerprint of `secret` under this home's salt (made if needed); a refused
    /// one (see [`Fingerprint::refused`]) for a secret not [`strong_enough`].
    pub(crate) fn fingerprint_of(&mut self, secret: &str) -> Fingerprint {
        if !strong_enough(secret) {
            return Fingerprint {
                hmac: String::new(),
                len: 0,
                checksum: false,
            };
        }
        let salt = self.ensure_scan_salt();
        Fingerprint {
            hmac: crate::key::to_hex(&crate::key::fingerprint(&salt, secret.as_bytes())),
            len: secret.len(),
            checksum: crate::key::looks_like_secret(secret),
        }
    }

    /// [`Registry::fingerprint_of`] for a record: None when refused.
    pub(crate) fn recorded_fingerprint(&mut self, secret: &str) -> Option<Fingerprint> {
        Some(self.fingerprint_of(secret)).filter(|f| !f.refused())
    }

    /// Finds a key by exact ID, else by name. A name can be reused once its key is
    /// revoked, so among keys of one name the one not revoked wins. A KEY that is one
    /// key's ID and another's name is ambiguous and refused rather than guessed.
    pub(crate) fn resolve(&self, key: &str) -> anyhow::Result<&KeyRecord> {
        let by_id = self.file.keys.iter().find(|k| k.id == key);
        let mut by_name: Vec<&KeyRecord> =
            self.file.keys.iter().filter(|k| k.name == key).collect();
        if by_name.len() > 1 {
            let live: Vec<&KeyRecord> = by_name.iter().copied().filter(|k| k.is_live()).collect();
            if live.len() == 1 {
                by_name = live;
            }
        }
        match (by_id, by_name.as_slice()) {
            (Some(k), []) => Ok(k),
            (Some(k), [n]) if n.id == k.id => Ok(k),
            (None, [n]) => Ok(n),
            (None, []) => Err(Error::not_found(format!(
                "no key with ID or name {} (see `keyctl list --all`)",
                crate::output::quoted(key)
            ))
            .into()),
            _ => {
                let ids: Vec<&str> = by_id
                    .into_iter()
                    .chain(by_name.iter().copied())
                    .map(|k| k.id.as_str())
                    .collect();
                Err(Error::conflict(format!(
                    "{} matches more than one key ({}); use the key ID",
                    crate::output::quoted(key),
                    ids.join(", ")
                ))
                .into())
            }
        }
    }
}

impl LockedRegistry {
    pub(crate) fn insert(&mut self, rec: KeyRecord) -> anyhow::Result<()> {
        self.check_free(&rec.name, &rec.id)?;
        self.reg.file.keys.push(rec);
        Ok(())
    }

    /// Inserts a rotation's successor (`replacing` set): it shares the live key's name.
    pub(crate) fn insert_successor(&mut self, rec: KeyRecord) -> anyhow::Result<()> {
        if self.reg.file.keys.iter().any(|k| k.id == rec.id) {
            return Err(Error::conflict(format!(
                "a key with ID {} already exists",
                crate::output::quoted(&rec.id)
            ))
            .into());
        }
        self.reg.file.keys.push(rec);
        Ok(())
    }

    /// Fails early (before a secret is stored) when the name or ID is taken.
    pub(crate) fn check_free(&self, name: &str, id: &str) -> anyhow::Result<()> {
        if self
            .reg
            .file
            .keys
            .iter()
            .any(|k| k.name == name && k.is_live())
        {
            return Err(Error::conflict(format!(
                "a key named {} already exists; pick another --name",
                crate::output::quoted(name)
            ))
            .into());
        }
        if self.reg.file.keys.iter().any(|k| k.id == id) {
            return Err(Error::conflict(format!(
                "a key with ID {} already exists",
                crate::output::quoted(id)
            ))
            .into());
        }
        Ok(())
    }

    /// Removes a key. A key it replaced in a rotation is no longer superseded (it would
    /// name a successor that is gone): deleting a rotation's new key undoes the rotation,
    /// as `rotate` itself does when it cannot finish. Returns the removed record.
    pub(crate) fn remove(&mut self, id: &str) -> Option<KeyRecord> {
        let i = self.reg.file.keys.iter().position(|k| k.id == id)?;
        for k in &mut self.reg.file.keys {
            if k.superseded.as_ref().is_some_and(|s| s.by == id) {
                k.superseded = None;
            }
        }
        Some(self.reg.file.keys.remove(i))
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut KeyRecord> {
        self.reg.file.keys.iter_mut().find(|k| k.id == id)
    }

    pub(crate) fn save(&mut self) -> anyhow::Result<()> {
        self.reg.file.version = VERSION;
        let mut bytes = serde_json::to_vec_pretty(&self.reg.file)?;
        bytes.push(b'\n');
        fsutil::write_atomic(&self.reg.path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_secrets_are_not_fingerprinted_and_never_shown_whole() {
        for weak in [
            "Summer2024!",
            "abcd",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "12345678901234567890",
        ] {
            assert!(!strong_enough(weak), "{weak}");
        }
        for strong in [
            "q7Rk2pXz9LmN4vBt8Wc1Hd6Jf3Gs5Ya0",
            "9f86d081884c7d659a2feaa0c55ad015",
        ] {
            assert!(strong_enough(strong), "{strong}");
        }
        assert_eq!(crate::scan::mask(b"abcd", false), "\u{2026}");
        assert_eq!(crate::scan::mask(b"Summer2024!", false), "\u{2026}");
    }
}
