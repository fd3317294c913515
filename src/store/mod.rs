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

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::context::Ctx;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Keyring,
    File,
    /// OpenBao / HashiCorp Vault KV v2, shared by a team's machines.
    Vault,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Keyring => "keyring",
            StoreKind::File => "file",
            StoreKind::Vault => "vault",
        }
    }
}

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
}

/// Opens the store that holds existing secrets of `kind`.
pub fn open(ctx: &Ctx, kind: StoreKind) -> anyhow::Result<Box<dyn SecretStore>> {
    Ok(match kind {
        StoreKind::Keyring => Box::new(keyring::KeyringStore::open()?),
        StoreKind::File => Box::new(file::FileStore::new(&ctx.paths.data)),
        StoreKind::Vault => Box::new(vault::VaultStore::open(ctx)?),
    })
}

/// Stores a new secret where `--store` says, falling back under `auto`. Returns the
/// store that took it. With the vault store, only this machine's own secrets come here
/// (a remote's credential; keys go to OpenBao/Vault with their record through
/// `commands::store_new_key`), and they stay on this machine as under `auto`.
pub fn put_new(
    ctx: &Ctx,
    id: &str,
    label: &str,
    secret: &SecretString,
) -> anyhow::Result<StoreKind> {
    match ctx.store {
        StoreChoice::File => {
            file::FileStore::new(&ctx.paths.data).set(id, label, secret)?;
            Ok(StoreKind::File)
        }
        StoreChoice::Keyring => {
            keyring::KeyringStore::open()?.set(id, label, secret)?;
            Ok(StoreKind::Keyring)
        }
        StoreChoice::Auto | StoreChoice::Vault => {
            let attempt = keyring::KeyringStore::open().and_then(|s| s.set(id, label, secret));
            match attempt {
                Ok(()) => {
                    ctx.out.debug(&format!(
                        "store auto: the OS keyring took the secret of {id}"
                    ));
                    Ok(StoreKind::Keyring)
                }
                Err(e) if is_unavailable(&e) => {
                    if crate::fsutil::writable_by_others(&ctx.paths.data) {
                        ctx.out.warn(&format!(
                            "the keyctl home {} can be written by group or others; `chmod 700` it",
                            ctx.paths.data.display()
                        ));
                    }
                    let fs = file::FileStore::new(&ctx.paths.data);
                    fs.set(id, label, secret)?;
                    let why = format!("{e:#}");
                    let why = why
                        .strip_prefix("the OS keyring is unavailable: ")
                        .unwrap_or(&why);
                    ctx.out.note(&format!(
                        "the secret went to the file store {} (plain text, mode 0600) because no OS keyring answered: {why}; --store keyring makes that an error",
                        fs.path().display()
                    ));
                    Ok(StoreKind::File)
                }
                Err(e) => Err(e),
            }
        }
    }
}

pub fn is_unavailable(e: &anyhow::Error) -> bool {
    crate::error::kind_of(e) == Some(crate::error::Kind::StoreUnavailable)
}
