//! The file store: the headless fallback. Secrets sit in plain text in one 0600 JSON file
//! inside the 0700 keyctl home, the way `gh` and `~/.vault-token` keep theirs on such
//! machines; keyctl says so on stderr whenever it puts a secret there, and `doctor`
//! lists it. Writes are atomic under their own lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{SecretStore, StoreKind};
use crate::error::Error;
use crate::fsutil;

pub struct FileStore {
    path: PathBuf,
    lock: PathBuf,
}

type Secrets = BTreeMap<String, SecretString>;

impl FileStore {
    pub fn new(data_dir: &Path) -> Self {
        FileStore {
            path: data_dir.join("secrets.json"),
            lock: data_dir.join("secrets.lock"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every ID the file holds a secret for.
    pub fn ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.load()?.into_keys().collect())
    }

    fn load(&self) -> anyhow::Result<Secrets> {
        fsutil::check_private(&self.path, true)?;
        let Some(bytes) = fsutil::read_optional(&self.path)? else {
            return Ok(Secrets::new());
        };
        let bytes = Zeroizing::new(bytes);
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "the file store {} is corrupted ({}); it was left untouched",
                self.path.display(),
                fsutil::json_error(&e)
            )
        })
    }

    fn save(&self, secrets: &Secrets) -> anyhow::Result<()> {
        let mut buf = Zeroizing::new(String::from("{\n"));
        for (i, (id, s)) in secrets.iter().enumerate() {
            if i > 0 {
                buf.push_str(",\n");
            }
            buf.push_str("  ");
            buf.push_str(&serde_json::to_string(id)?);
            buf.push_str(": ");
            let v = Zeroizing::new(serde_json::to_string(s.expose_secret())?);
            buf.push_str(&v);
        }
        buf.push_str("\n}\n");
        fsutil::write_atomic(&self.path, buf.as_bytes())
    }

    fn update(&self, f: impl FnOnce(&mut Secrets) -> bool) -> anyhow::Result<bool> {
        if let Some(dir) = self.path.parent() {
            fsutil::ensure_private_dir(dir)?;
        }
        let _lock = fsutil::lock_exclusive(&self.lock)?;
        let mut secrets = self.load()?;
        let changed = f(&mut secrets);
        if changed {
            self.save(&secrets)?;
        }
        Ok(changed)
    }
}

impl SecretStore for FileStore {
    fn kind(&self) -> StoreKind {
        StoreKind::File
    }

    fn location(&self) -> String {
        format!("the file {} (plain text, mode 0600)", self.path.display())
    }

    fn set(&self, id: &str, _label: &str, secret: &SecretString) -> anyhow::Result<()> {
        let copy = SecretString::from(secret.expose_secret().to_owned());
        self.update(|m| {
            m.insert(id.to_owned(), copy);
            true
        })?;
        Ok(())
    }

    fn get(&self, id: &str) -> anyhow::Result<SecretString> {
        let mut secrets = self.load()?;
        secrets.remove(id).ok_or_else(|| {
            Error::not_found(format!(
                "the file store {} has no secret for key {id}",
                self.path.display()
            ))
            .into()
        })
    }

    fn delete(&self, id: &str) -> anyhow::Result<bool> {
        self.update(|m| m.remove(id).is_some())
    }

    fn held(&self) -> anyhow::Result<Option<Vec<super::Held>>> {
        Ok(Some(
            self.ids()?
                .into_iter()
                .map(|id| super::Held {
                    id,
                    owner: super::Owner::ThisHome,
                })
                .collect(),
        ))
    }

    /// The file keeps no time per secret: its last change bounds them all.
    fn remove_stale(&self, id: &str, cutoff: u64) -> anyhow::Result<bool> {
        let old = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|t| t.as_secs() <= cutoff);
        if !old {
            return Ok(false);
        }
        self.delete(id)
    }
}
