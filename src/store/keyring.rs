//! The OS keyring: the Secret Service over pure-Rust D-Bus on Linux (the `secret-service`
//! crate, used directly so keyctl sees every item's attributes and times), the Keychain on
//! macOS and the Credential Manager on Windows through keyring-core.
//!
//! Items use service `keyctl` and username = key ID, so `secret-tool lookup service keyctl
//! username ID` and Python's `keyring.get_password("keyctl", ID)` find them too. The
//! keyring is shared by every keyctl home of the user, so on Linux each item keyctl
//! creates also carries `keyctl_home` = the canonical path of its home: `doctor --fix`
//! removes only items of its own home (see README, "Orphaned secrets").
//!
//! Python keyring writes its own item for the same service and user (it adds the
//! attribute `application`), so one key ID can have several items: reads take the newest
//! (the most recently modified; on a tie, the one another tool wrote, since keyctl writes
//! all of them at once) and writes replace all of them together.
//!
//! Errors are translated here into messages that never include data, and never
//! `{:?}`-printed.

use secrecy::SecretString;

use super::{SecretStore, StoreKind};
use crate::error::Error;

pub const SERVICE: &str = "keyctl";
/// The attribute naming the keyctl home an item belongs to (Linux).
pub const HOME_ATTRIBUTE: &str = "keyctl_home";

/// One item under service `keyctl`, for `doctor`.
#[derive(Clone, Debug)]
pub struct ItemInfo {
    /// The username: a key ID, or a remote's `remote:NAME` / `token:NAME`.
    pub user: String,
    /// The `keyctl_home` attribute, when the item has one.
    pub home: Option<String>,
    /// Seconds since the Unix epoch the item was created (0 when the platform does not say).
    pub created: u64,
}

/// No DBUS_SESSION_BUS_ADDRESS: what cron, ssh and systemd services see. The next step
/// depends on whether the user's desktop session (and its bus) is running now.
fn no_session_bus() -> String {
    #[cfg(unix)]
    let bus = {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        let path = format!("/run/user/{uid}/bus");
        std::path::Path::new(&path).exists().then_some(path)
    };
    #[cfg(not(unix))]
    let bus: Option<String> = None;
    let head = "the OS keyring is unavailable: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set, as under cron, ssh or a service)";
    let stores = "keep the keys that jobs use in a store they can reach: `--store file` (this home) or `--store vault` (a team store)";
    match bus {
        Some(path) => format!(
            "{head}; your session's bus is {path}: set DBUS_SESSION_BUS_ADDRESS=unix:path={path} (in the crontab, say), or {stores}"
        ),
        None => format!("{head} and no session of yours runs a bus now; {stores}"),
    }
}

/// A one-line reason that tells a person what to do.
fn unavailable_reason(raw: &str, session_bus: bool) -> String {
    if cfg!(target_os = "linux") && !session_bus && raw.contains("connect") {
        no_session_bus()
    } else if raw.contains("ServiceUnknown")
        || raw.contains("org.freedesktop.secrets")
        || raw.contains("no secret service provider")
    {
        "the OS keyring is unavailable: no Secret Service (e.g. gnome-keyring) runs on the session bus".into()
    } else if raw.to_ascii_lowercase().contains("prompt")
        || raw.contains("locked")
        || raw.contains("SS API")
        || raw.contains("NoSuchObject")
    {
        "the OS keyring is locked or has no default collection, and unlocking it needs a prompt"
            .into()
    } else {
        let first = raw.lines().next().unwrap_or(raw);
        format!("the OS keyring is unavailable: {first}")
    }
}

fn not_found(id: &str) -> anyhow::Error {
    Error::not_found(format!(
        "the OS keyring has no secret for key {id} (was it deleted outside keyctl?)"
    ))
    .into()
}

fn not_text(id: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "the OS keyring item for key {id} is not a text secret (changed outside keyctl?)"
    )
}

#[cfg(target_os = "linux")]
mod platform {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use secrecy::{ExposeSecret, SecretString};
    use secret_service::EncryptionType;
    use secret_service::blocking::{Item, SecretService};
    use zeroize::Zeroizing;

    use super::{HOME_ATTRIBUTE, ItemInfo, SERVICE, not_found, not_text, unavailable_reason};
    use crate::error::Error;

    pub(super) struct Platform {
        ss: Mutex<SecretService<'static>>,
        session_bus: bool,
        home: String,
    }

    /// Turns a Secret Service error into ours. Every failure of the service (locked, no
    /// default collection, gone from the bus) makes the keyring unavailable, which `auto`
    /// answers with the file store.
    fn translate(e: secret_service::Error, session_bus: bool) -> anyhow::Error {
        use secret_service::Error as S;
        let raw = match e {
            S::Locked | S::Prompt | S::PromptDisconnected | S::NoResult => "locked".to_string(),
            S::Unavailable => "no secret service provider".to_string(),
            other => other.to_string(),
        };
        Error::store_unavailable(unavailable_reason(&raw, session_bus)).into()
    }

    impl Platform {
        pub(super) fn open(session_bus: bool, home: String) -> anyhow::Result<Platform> {
            let ss = SecretService::connect(EncryptionType::Dh)
                .map_err(|e| translate(e, session_bus))?;
            Ok(Platform {
                ss: Mutex::new(ss),
                session_bus,
                home,
            })
        }

        fn t(&self, _id: &str) -> impl Fn(secret_service::Error) -> anyhow::Error + '_ {
            move |e| translate(e, self.session_bus)
        }

        /// Runs `f` on every item matching `attrs`, unlocked first.
        fn with_items<T>(
            &self,
            id: &str,
            attrs: HashMap<&str, &str>,
            f: impl FnOnce(&SecretService<'static>, Vec<Item<'_>>) -> anyhow::Result<T>,
        ) -> anyhow::Result<T> {
            let ss = self
                .ss
                .lock()
                .map_err(|_| anyhow::anyhow!("the OS keyring connection failed earlier"))?;
            let found = ss.search_items(attrs).map_err(self.t(id))?;
            if !found.locked.is_empty() {
                let refs: Vec<&Item> = found.locked.iter().collect();
                ss.unlock_all(&refs).map_err(self.t(id))?;
            }
            let items: Vec<Item> = found.unlocked.into_iter().chain(found.locked).collect();
            f(&ss, items)
        }

        /// The home an item belongs to, if it says.
        fn home_of(&self, item: &Item, id: &str) -> anyhow::Result<Option<String>> {
            let mut attrs = item.get_attributes().map_err(self.t(id))?;
            Ok(attrs.remove(HOME_ATTRIBUTE))
        }

        /// The items of key `id` this home may read and write: its own and those no home
        /// claims (an older keyctl's, Python keyring's); never another home's.
        fn key_items<'a>(&self, id: &str, items: Vec<Item<'a>>) -> anyhow::Result<Vec<Item<'a>>> {
            let mut mine = Vec::new();
            for item in items {
                match self.home_of(&item, id)? {
                    Some(h) if h != self.home => {}
                    _ => mine.push(item),
                }
            }
            Ok(mine)
        }

        fn spec(id: &str) -> HashMap<&str, &str> {
            HashMap::from([("service", SERVICE), ("username", id)])
        }

        pub(super) fn set(
            &self,
            id: &str,
            label: &str,
            secret: &SecretString,
        ) -> anyhow::Result<()> {
            self.with_items(id, Self::spec(id), |ss, items| {
                let items = self.key_items(id, items)?;
                let bytes = secret.expose_secret().as_bytes();
                if items.is_empty() {
                    let collection = ss.get_default_collection().map_err(self.t(id))?;
                    collection.ensure_unlocked().map_err(self.t(id))?;
                    let attrs = HashMap::from([
                        ("service", SERVICE),
                        ("username", id),
                        (HOME_ATTRIBUTE, self.home.as_str()),
                    ]);
                    collection
                        .create_item(label, attrs, bytes, false, "text/plain")
                        .map_err(self.t(id))?;
                    return Ok(());
                }
                // Every item of the key gets the new secret, so no reader (keyctl, Python
                // keyring, secret-tool) sees the old one afterwards.
                for item in &items {
                    item.set_secret(bytes, "text/plain").map_err(self.t(id))?;
                }
                Ok(())
            })
        }

        pub(super) fn get(&self, id: &str) -> anyhow::Result<SecretString> {
            self.with_items(id, Self::spec(id), |_, items| {
                let mut best: Option<((u64, bool), Item)> = None;
                for item in self.key_items(id, items)? {
                    let modified = item.get_modified().map_err(self.t(id))?;
                    let foreign = self.home_of(&item, id)?.is_none();
                    let rank = (modified, foreign);
                    if best.as_ref().is_none_or(|(r, _)| rank > *r) {
                        best = Some((rank, item));
                    }
                }
                let (_, item) = best.ok_or_else(|| not_found(id))?;
                let raw = Zeroizing::new(item.get_secret().map_err(self.t(id))?);
                let text = std::str::from_utf8(&raw).map_err(|_| not_text(id))?;
                Ok(SecretString::from(text.to_owned()))
            })
        }

        pub(super) fn delete(&self, id: &str) -> anyhow::Result<bool> {
            self.with_items(id, Self::spec(id), |_, items| {
                let items = self.key_items(id, items)?;
                for item in &items {
                    item.delete().map_err(self.t(id))?;
                }
                Ok(!items.is_empty())
            })
        }

        pub(super) fn items(&self) -> anyhow::Result<Vec<ItemInfo>> {
            self.with_items("-", HashMap::from([("service", SERVICE)]), |_, items| {
                let mut out = Vec::new();
                for item in items {
                    let mut attrs = item.get_attributes().map_err(self.t("-"))?;
                    let Some(user) = attrs.remove("username") else {
                        continue;
                    };
                    out.push(ItemInfo {
                        user,
                        home: attrs.remove(HOME_ATTRIBUTE),
                        created: item.get_created().map_err(self.t("-"))?,
                    });
                }
                Ok(out)
            })
        }

        pub(super) fn remove_own(&self, id: &str, created_before: u64) -> anyhow::Result<bool> {
            self.with_items(id, Self::spec(id), |_, items| {
                let mut removed = false;
                for item in items {
                    let own = self.home_of(&item, id)?.as_deref() == Some(self.home.as_str());
                    if own && item.get_created().map_err(self.t(id))? <= created_before {
                        item.delete().map_err(self.t(id))?;
                        removed = true;
                    }
                }
                Ok(removed)
            })
        }

        pub(super) fn home(&self) -> &str {
            &self.home
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use std::collections::HashMap;
    use std::sync::Arc;

    use keyring_core::{CredentialStore, Entry};
    use secrecy::{ExposeSecret, SecretString};

    use super::{ItemInfo, SERVICE, not_found, not_text, unavailable_reason};
    use crate::error::Error;

    pub struct Platform {
        inner: Arc<CredentialStore>,
        session_bus: bool,
        home: String,
    }

    fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
        #[cfg(target_os = "macos")]
        {
            Ok(apple_native_keyring_store::keychain::Store::new()?)
        }
        #[cfg(target_os = "windows")]
        {
            Ok(windows_native_keyring_store::Store::new()?)
        }
        #[cfg(not(any(target_os = "macos", target_os = "windows")))]
        {
            Err(keyring_core::Error::NoDefaultStore)
        }
    }

    /// Turns a keyring error into ours, without the data some variants carry.
    fn translate(e: keyring_core::Error, id: &str, session_bus: bool) -> anyhow::Error {
        use keyring_core::Error as K;
        match e {
            K::NoEntry => not_found(id),
            K::PlatformFailure(inner) | K::NoStorageAccess(inner) => {
                Error::store_unavailable(unavailable_reason(&inner.to_string(), session_bus)).into()
            }
            K::NoDefaultStore => {
                Error::store_unavailable("this platform has no supported OS keyring").into()
            }
            K::BadEncoding(_) | K::BadDataFormat(..) => not_text(id),
            K::Ambiguous(items) => anyhow::anyhow!(
                "the OS keyring holds {} items for key {id}; remove the extra ones with your keyring tool",
                items.len()
            ),
            other => anyhow::anyhow!("OS keyring error for key {id}: {other}"),
        }
    }

    impl Platform {
        pub fn open(session_bus: bool, home: String) -> anyhow::Result<Platform> {
            let inner = platform_store().map_err(|e| translate(e, "-", session_bus))?;
            Ok(Platform {
                inner,
                session_bus,
                home,
            })
        }

        fn entry(&self, id: &str) -> anyhow::Result<Entry> {
            // The Windows and macOS stores refuse an entry with a `label` modifier.
            self.inner
                .build(SERVICE, id, None)
                .map_err(|e| translate(e, id, self.session_bus))
        }

        pub fn set(&self, id: &str, _label: &str, secret: &SecretString) -> anyhow::Result<()> {
            self.entry(id)?
                .set_password(secret.expose_secret())
                .map_err(|e| translate(e, id, self.session_bus))
        }

        pub fn get(&self, id: &str) -> anyhow::Result<SecretString> {
            let pw = self
                .entry(id)?
                .get_password()
                .map_err(|e| translate(e, id, self.session_bus))?;
            Ok(SecretString::from(pw))
        }

        pub fn delete(&self, id: &str) -> anyhow::Result<bool> {
            match self.entry(id)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring_core::Error::NoEntry) => Ok(false),
                Err(e) => Err(translate(e, id, self.session_bus)),
            }
        }

        /// These keyrings carry no home attribute: every item is listed without one, so
        /// `doctor --fix` never removes a keyring item here.
        pub fn items(&self) -> anyhow::Result<Vec<ItemInfo>> {
            let spec = HashMap::from([("service", SERVICE)]);
            let found = self
                .inner
                .search(&spec)
                .map_err(|e| translate(e, "-", self.session_bus))?;
            Ok(found
                .iter()
                .filter_map(|e| e.get_specifiers())
                .filter(|(service, _)| service == SERVICE)
                .map(|(_, user)| ItemInfo {
                    user,
                    home: None,
                    created: 0,
                })
                .collect())
        }

        pub fn remove_own(&self, _id: &str, _created_before: u64) -> anyhow::Result<bool> {
            Ok(false)
        }

        pub fn home(&self) -> &str {
            &self.home
        }
    }
}

pub struct KeyringStore {
    platform: platform::Platform,
}

impl KeyringStore {
    /// Connects to the platform keyring (on Linux: the session bus, about 9 ms).
    /// `session_bus`: whether `DBUS_SESSION_BUS_ADDRESS` is set (it shapes the error a
    /// person sees when no keyring answers). `home`: the keyctl home whose items this
    /// store writes and may remove (see [`home_tag`]).
    pub fn open(session_bus: bool, home: String) -> anyhow::Result<Self> {
        Ok(KeyringStore {
            platform: platform::Platform::open(session_bus, home)?,
        })
    }

    /// Every item with service `keyctl` (key IDs, the `remote:` and `token:` items of
    /// remotes, and whatever other tools stored there), for `doctor`.
    pub fn items(&self) -> anyhow::Result<Vec<ItemInfo>> {
        self.platform.items()
    }

    /// Removes the items of `id` that belong to this home and were created at or before
    /// `created_before` (Unix seconds); items of other homes or of no home stay.
    pub fn remove_own(&self, id: &str, created_before: u64) -> anyhow::Result<bool> {
        self.platform.remove_own(id, created_before)
    }

    /// The value of this home's `keyctl_home` attribute.
    pub fn home(&self) -> &str {
        self.platform.home()
    }
}

/// The `keyctl_home` value of a home: its canonical path (the path as given when it
/// cannot be resolved).
pub fn home_tag(data_dir: &std::path::Path) -> String {
    data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf())
        .display()
        .to_string()
}

impl SecretStore for KeyringStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Keyring
    }

    fn location(&self) -> String {
        #[cfg(target_os = "linux")]
        {
            "the OS keyring (Secret Service on the D-Bus session bus)".into()
        }
        #[cfg(not(target_os = "linux"))]
        {
            "the OS keyring".into()
        }
    }

    fn set(&self, id: &str, label: &str, secret: &SecretString) -> anyhow::Result<()> {
        self.platform.set(id, label, secret)
    }

    fn get(&self, id: &str) -> anyhow::Result<SecretString> {
        self.platform.get(id)
    }

    fn delete(&self, id: &str) -> anyhow::Result<bool> {
        self.platform.delete(id)
    }

    fn held(&self) -> anyhow::Result<Option<Vec<super::Held>>> {
        let home = self.home();
        Ok(Some(
            self.items()?
                .into_iter()
                .map(|item| super::Held {
                    owner: match item.home.as_deref() {
                        Some(h) if h == home => super::Owner::ThisHome,
                        Some(_) => super::Owner::Other,
                        None => super::Owner::Untagged,
                    },
                    id: item.user,
                })
                .collect(),
        ))
    }

    fn remove_stale(&self, id: &str, cutoff: u64) -> anyhow::Result<bool> {
        self.remove_own(id, cutoff)
    }
}
