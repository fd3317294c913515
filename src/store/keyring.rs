//! The OS keyring through keyring-core: the Secret Service over pure-Rust D-Bus on Linux,
//! the Keychain on macOS, the Credential Manager on Windows.
//!
//! Items use service `keyctl` and username = key ID, so `secret-tool lookup service keyctl
//! username ID` and Python's `keyring.get_password("keyctl", ID)` find them too. keyring's
//! own errors can carry secret bytes in their Debug form (BadEncoding), so they are
//! translated here into messages that never include data, and never `{:?}`-printed.

use std::collections::HashMap;
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};
use secrecy::{ExposeSecret, SecretString};

use super::{SecretStore, StoreKind};
use crate::error::Error;

pub const SERVICE: &str = "keyctl";

pub struct KeyringStore {
    inner: Arc<CredentialStore>,
    session_bus: bool,
}

fn platform_store() -> keyring_core::Result<Arc<CredentialStore>> {
    #[cfg(target_os = "linux")]
    {
        Ok(zbus_secret_service_keyring_store::Store::new()?)
    }
    #[cfg(target_os = "macos")]
    {
        Ok(apple_native_keyring_store::keychain::Store::new()?)
    }
    #[cfg(target_os = "windows")]
    {
        Ok(windows_native_keyring_store::Store::new()?)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
    {
        Err(keyring_core::Error::NoDefaultStore)
    }
}

/// Turns a keyring error into ours, without the data some variants carry.
/// `session_bus`: whether a D-Bus session bus address is known (Linux), for the reason.
fn translate(e: keyring_core::Error, id: &str, session_bus: bool) -> anyhow::Error {
    use keyring_core::Error as K;
    match e {
        K::NoEntry => Error::not_found(format!(
            "the OS keyring has no secret for key {id} (was it deleted outside keyctl?)"
        ))
        .into(),
        K::PlatformFailure(inner) | K::NoStorageAccess(inner) => {
            Error::store_unavailable(unavailable_reason(&inner.to_string(), session_bus)).into()
        }
        K::NoDefaultStore => {
            Error::store_unavailable("this platform has no supported OS keyring").into()
        }
        K::BadEncoding(_) | K::BadDataFormat(..) => anyhow::anyhow!(
            "the OS keyring item for key {id} is not a text secret (changed outside keyctl?)"
        ),
        K::Ambiguous(items) => anyhow::anyhow!(
            "the OS keyring holds {} items for key {id}; remove the extra ones with your keyring tool",
            items.len()
        ),
        other => anyhow::anyhow!("OS keyring error for key {id}: {other}"),
    }
}

/// A one-line reason that tells a person what to do.
fn unavailable_reason(raw: &str, session_bus: bool) -> String {
    if cfg!(target_os = "linux") && !session_bus && raw.contains("connect") {
        "the OS keyring is unavailable: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)"
            .into()
    } else if raw.contains("ServiceUnknown") || raw.contains("org.freedesktop.secrets") {
        "the OS keyring is unavailable: no Secret Service (e.g. gnome-keyring) runs on the session bus".into()
    } else if raw.to_ascii_lowercase().contains("prompt")
        || raw.contains("locked")
        || raw.contains("SS API")
    {
        "the OS keyring is locked or has no default collection, and unlocking it needs a prompt"
            .into()
    } else {
        let first = raw.lines().next().unwrap_or(raw);
        format!("the OS keyring is unavailable: {first}")
    }
}

impl KeyringStore {
    /// Connects to the platform keyring (on Linux: the session bus, about 9 ms).
    /// `session_bus`: whether `DBUS_SESSION_BUS_ADDRESS` is set (it shapes the error a
    /// person sees when no keyring answers).
    pub fn open(session_bus: bool) -> anyhow::Result<Self> {
        let inner = platform_store().map_err(|e| translate(e, "-", session_bus))?;
        Ok(KeyringStore { inner, session_bus })
    }

    /// Every username of an item with service `keyctl` (key IDs, and the `remote:` and
    /// `token:` items of remotes), for `doctor`'s orphan check.
    pub fn ids(&self) -> anyhow::Result<Vec<String>> {
        let spec = HashMap::from([("service", SERVICE)]);
        let found = self
            .inner
            .search(&spec)
            .map_err(|e| translate(e, "-", self.session_bus))?;
        Ok(found
            .iter()
            .filter_map(|e| e.get_specifiers())
            .filter(|(service, _)| service == SERVICE)
            .map(|(_, user)| user)
            .collect())
    }

    fn entry(&self, id: &str, label: Option<&str>) -> anyhow::Result<Entry> {
        // Only the Secret Service store knows a `label` modifier; the Windows and macOS
        // stores refuse an entry that carries one.
        #[cfg(target_os = "linux")]
        let mods: HashMap<&str, &str> = label.map(|l| ("label", l)).into_iter().collect();
        #[cfg(not(target_os = "linux"))]
        let (mods, label): (HashMap<&str, &str>, Option<&str>) = {
            let _ = label;
            (HashMap::new(), None)
        };
        self.inner
            .build(SERVICE, id, label.map(|_| &mods))
            .map_err(|e| translate(e, id, self.session_bus))
    }
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
            format!("the OS keyring ({})", self.inner.vendor())
        }
    }

    fn set(&self, id: &str, label: &str, secret: &SecretString) -> anyhow::Result<()> {
        self.entry(id, Some(label))?
            .set_password(secret.expose_secret())
            .map_err(|e| translate(e, id, self.session_bus))
    }

    fn get(&self, id: &str) -> anyhow::Result<SecretString> {
        let pw = self
            .entry(id, None)?
            .get_password()
            .map_err(|e| translate(e, id, self.session_bus))?;
        Ok(SecretString::from(pw))
    }

    fn delete(&self, id: &str) -> anyhow::Result<bool> {
        match self.entry(id, None)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(translate(e, id, self.session_bus)),
        }
    }
}
