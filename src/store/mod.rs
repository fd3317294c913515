//! Where secrets live. Every store implements [`SecretStore`]; the registry records which
//! store holds each key, so reads always go to the right place whatever `--store` says
//! today.
//!
//! `auto` is the honest fallback the peers lack: the OS keyring when it answers, and
//! when it does not (a headless server with no Secret Service), the file store, with
//! one stderr line that names the file.

pub mod file;
pub mod keyring;
pub mod vault;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use secrecy::SecretString;

use crate::output::Output;

pub use crate::registry::StoreKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
/// Where new secrets go (`--store`, `KEYCTL_STORE`, `store:` in config.yaml).
pub enum StoreChoice {
    /// The OS keyring when it answers, otherwise the file store (said on stderr)
    Auto,
    /// The OS keyring, or fail
    Keyring,
    /// A 0600 file under the keyctl home
    File,
    /// OpenBao / HashiCorp Vault KV v2, shared by a team (BAO_ADDR, BAO_TOKEN)
    Vault,
}

/// A place that keeps secrets by key ID.
pub trait SecretStore {
    fn kind(&self) -> StoreKind;
    /// Where the secrets are, for people: "Secret Service (D-Bus)", a file path...
    fn location(&self) -> String;
    fn set(&self, id: &str, label: &str, secret: &SecretString) -> anyhow::Result<()>;
    /// [`Error::NotFound`] when the store has no secret for `id`.
    fn get(&self, id: &str) -> anyhow::Result<SecretString>;
    /// Ok(false) when there was nothing to delete.
    fn delete(&self, id: &str) -> anyhow::Result<bool>;
    /// The IDs this store holds secrets under (never the secrets), for `doctor`; None
    /// where the store is not this home's to search (the team store, whose records are
    /// its own listing).
    fn held(&self) -> anyhow::Result<Option<Vec<Held>>> {
        Ok(None)
    }
    /// Removes `id` if this home stored it at or before `cutoff` (Unix seconds);
    /// Ok(false) when it was kept (younger, or not this home's to remove).
    fn remove_stale(&self, _id: &str, _cutoff: u64) -> anyhow::Result<bool> {
        Ok(false)
    }
}

/// Whose a secret in a store is, as far as the store can tell: the OS keyring is shared
/// by every keyctl home and by other programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Stored by this keyctl home.
    ThisHome,
    /// Stored with no home tag (an older keyctl, or another program).
    Untagged,
    /// Another keyctl home's, or another program's.
    Other,
}

/// One secret a store holds: its ID, never its value.
#[derive(Clone, Debug)]
pub struct Held {
    pub id: String,
    pub owner: Owner,
}

/// The stores of one process, built once and shared: the keyring connection (about 9 ms
/// on Linux) and the team store's client are made on first use and kept, so a command
/// that reads several secrets connects once.
pub struct Stores {
    data: PathBuf,
    choice: StoreChoice,
    vault: Option<vault::VaultSettings>,
    out: Output,
    /// Whether a D-Bus session bus address is set (Linux's keyring is reached over it).
    session_bus: bool,
    keyring: OnceLock<keyring::KeyringStore>,
    /// Why `auto` fell back to the file store in this run, for the warning at its end.
    fell_back: OnceLock<String>,
    file: file::FileStore,
    team: OnceLock<vault::VaultStore>,
}

impl Stores {
    /// `vault` is Some when the team store takes part: selected with `--store vault`, or
    /// configured in config.yaml so keys created elsewhere show up here too.
    pub fn new(
        data: &Path,
        choice: StoreChoice,
        vault: Option<vault::VaultSettings>,
        session_bus: bool,
        out: &Output,
    ) -> Stores {
        Stores {
            data: data.to_path_buf(),
            choice,
            vault,
            out: out.clone(),
            session_bus,
            keyring: OnceLock::new(),
            fell_back: OnceLock::new(),
            file: file::FileStore::new(data),
            team: OnceLock::new(),
        }
    }

    /// The keyctl home, where the registry and the file store live.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Where new secrets go.
    pub fn choice(&self) -> StoreChoice {
        self.choice
    }

    pub fn out(&self) -> &Output {
        &self.out
    }

    /// True when the team store takes part (see [`Stores::new`]).
    pub fn vault_enabled(&self) -> bool {
        self.vault.is_some()
    }

    /// The team store's settings, when one is configured.
    pub fn vault_settings(&self) -> Option<&vault::VaultSettings> {
        self.vault.as_ref()
    }

    pub fn keyring(&self) -> anyhow::Result<&keyring::KeyringStore> {
        if let Some(k) = self.keyring.get() {
            return Ok(k);
        }
        let k = keyring::KeyringStore::open(self.session_bus, keyring::home_tag(&self.data))?;
        Ok(self.keyring.get_or_init(|| k))
    }

    pub fn file(&self) -> &file::FileStore {
        &self.file
    }

    /// The team store; an error when it is neither selected nor configured.
    pub fn vault(&self) -> anyhow::Result<&vault::VaultStore> {
        if let Some(v) = self.team.get() {
            return Ok(v);
        }
        let settings = self.vault.as_ref().ok_or_else(|| {
            crate::error::Error::store_unavailable(
                "the vault store is not configured: set BAO_ADDR and use --store vault, or add a vault: section to config.yaml",
            )
        })?;
        let v = vault::VaultStore::open(settings, &self.out)?;
        Ok(self.team.get_or_init(|| v))
    }

    /// Once per home, at the end of a run that succeeded: says that `auto` put a secret in
    /// the plain-text file store because no keyring answered. `keyctl doctor` keeps
    /// saying it; repeating it on every create would teach people to ignore it.
    pub fn warn_file_fallback(&self) {
        let Some(why) = self.fell_back.get() else {
            return;
        };
        let marker = self.data.join("file-store-warned");
        if marker.exists() {
            return;
        }
        self.out.warn(&format!(
            "secrets are kept in plain text in the file store {} (mode 0600) because no OS keyring answered: {why}; said once, `keyctl doctor` repeats it; --store keyring makes it an error",
            self.file.path().display()
        ));
        let _ = crate::fsutil::write_atomic(&marker, b"");
    }

    /// The store that holds existing secrets of `kind`.
    pub fn get(&self, kind: StoreKind) -> anyhow::Result<&dyn SecretStore> {
        Ok(match kind {
            StoreKind::Keyring => self.keyring()?,
            StoreKind::File => self.file(),
            StoreKind::Vault => self.vault()?,
        })
    }

    /// Stores a new secret where `--store` says, falling back under `auto`. Returns the
    /// store that took it. With the vault store, only this machine's own secrets come
    /// here (a remote's credential; keys go to OpenBao/Vault with their record through
    /// [`vault::create_key`]), and they stay on this machine as under `auto`.
    pub fn put_new(
        &self,
        id: &str,
        label: &str,
        secret: &SecretString,
    ) -> anyhow::Result<StoreKind> {
        match self.choice {
            StoreChoice::File => {
                self.warn_open_home();
                self.file.set(id, label, secret)?;
                Ok(StoreKind::File)
            }
            StoreChoice::Keyring => {
                self.keyring()?.set(id, label, secret)?;
                Ok(StoreKind::Keyring)
            }
            StoreChoice::Auto | StoreChoice::Vault => {
                let attempt = self.keyring().and_then(|s| s.set(id, label, secret));
                match attempt {
                    Ok(()) => {
                        self.out.debug(&format!(
                            "store auto: the OS keyring took the secret of {id}"
                        ));
                        Ok(StoreKind::Keyring)
                    }
                    Err(e) if is_unavailable(&e) => {
                        self.warn_open_home();
                        self.file.set(id, label, secret)?;
                        let why = format!("{e:#}");
                        let why = why
                            .strip_prefix("the OS keyring is unavailable: ")
                            .unwrap_or(&why);
                        let _ = self.fell_back.set(why.to_string());
                        self.out.debug(&format!(
                            "store auto: no OS keyring ({why}); the secret of {id} went to the file store"
                        ));
                        Ok(StoreKind::File)
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

impl Stores {
    /// Before a secret goes into the file store: a home others can write (0777, 1777) lets
    /// them replace or swap the file.
    /// Where the secret of key `id` lives in store `kind`, for people (`keyctl show`),
    /// without reaching the store.
    pub fn whereabouts(&self, kind: StoreKind, id: &str) -> String {
        match kind {
            StoreKind::Keyring => {
                format!("OS keyring (service {}, username {id})", keyring::SERVICE)
            }
            StoreKind::File => format!("file {} (plain text)", self.file().path().display()),
            StoreKind::Vault => self.vault().map_or_else(
                |_| "OpenBao/Vault (not configured here)".into(),
                |v| format!("OpenBao/Vault at {}, {}", v.addr(), v.key_path(id)),
            ),
        }
    }

    fn warn_open_home(&self) {
        if crate::fsutil::writable_by_others(&self.data) {
            self.out.warn(&format!(
                "the keyctl home {} can be written by group or others; `chmod 700` it",
                self.data.display()
            ));
        }
    }
}

pub fn is_unavailable(e: &anyhow::Error) -> bool {
    crate::error::kind_of(e) == Some(crate::error::Kind::StoreUnavailable)
}
