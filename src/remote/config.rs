//! The remotes' part of config.yaml (`remotes:`, edited in place keeping every other key)
//! and where a remote's own credential and cached token live in the secret store.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use secrecy::SecretString;

use super::RemoteConfig;
use crate::error::Error;
use crate::fsutil;
use crate::output::quoted;
use crate::store::Stores;

/// Validates a remote name: it becomes part of a keyring username and a YAML key.
pub(crate) fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(crate::error::usage(format!(
            "remote name {} must be 1-64 characters of letters, digits, '-', '_' or '.'",
            quoted(name)
        )))
    }
}

/// Rewrites config.yaml with `change` applied to its `remotes:` map, under a lock and
/// atomically; every other key in the file is kept as it was.
pub(crate) fn edit_config(
    path: &Path,
    change: impl FnOnce(&mut BTreeMap<String, serde_yaml_ng::Value>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fsutil::ensure_private_dir(dir)?;
    let _lock = fsutil::lock_exclusive(&dir.join("config.lock"))?;
    let mut doc: serde_yaml_ng::Mapping = match fsutil::read_optional(path)? {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_yaml_ng::from_slice(&b)
            .with_context(|| format!("cannot read the config file {}", path.display()))?,
        _ => Default::default(),
    };
    let key = serde_yaml_ng::Value::from("remotes");
    let mut remotes: BTreeMap<String, serde_yaml_ng::Value> = match doc.get(&key) {
        Some(v) if !v.is_null() => serde_yaml_ng::from_value(v.clone())
            .with_context(|| format!("`remotes:` in {} is not a map", path.display()))?,
        _ => BTreeMap::new(),
    };
    change(&mut remotes)?;
    if remotes.is_empty() {
        doc.remove(&key);
    } else {
        doc.insert(key, serde_yaml_ng::to_value(&remotes)?);
    }
    let text = if doc.is_empty() {
        String::new()
    } else {
        serde_yaml_ng::to_string(&doc)?
    };
    fsutil::write_atomic(path, text.as_bytes())
}

/// Store username of a remote's own credential.
pub(crate) fn credential_slot(name: &str) -> String {
    format!("remote:{name}")
}

/// Store username of a remote's cached token.
pub(crate) fn token_slot(name: &str) -> String {
    format!("token:{name}")
}

/// Reads a remote's password or application-credential secret.
pub(crate) fn credential(
    stores: &Stores,
    name: &str,
    cfg: &RemoteConfig,
) -> anyhow::Result<SecretString> {
    stores
        .get(cfg.secret_store)?
        .get(&credential_slot(name))
        .map_err(|e| {
            if crate::error::kind_of(&e) == Some(crate::error::Kind::NotFound) {
                Error::not_found(format!(
                    "the credential of remote {} is missing from the {} store; add the remote again",
                    quoted(name),
                    cfg.secret_store.as_str()
                ))
                .into()
            } else {
                e
            }
        })
}
