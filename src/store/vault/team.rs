//! What a team key is in the store: its record at `keys/ID` apart from its secret at
//! `secrets/ID` (so a policy can grant "list but not read"), a name claim at `names/NAME`
//! that makes names unique team-wide, and check-and-set on every change so machines never
//! overwrite each other. Entries an older keyctl wrote are migrated on first read.

use anyhow::Context as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::{ABANDONED_CLAIM, CAS_ATTEMPTS, VaultStore};
use crate::error::Error;
use crate::registry::KeyRecord;
use crate::store::{SecretStore, StoreKind, Stores};

/// A key's metadata as read back, and the KV version for CAS.
pub struct Entry {
    pub record: KeyRecord,
    pub version: u64,
}

/// `keyctl create`/`import` with `--store vault`: the name must be free on this machine
/// too (a local key of the same name would make KEY ambiguous here), then team-wide.
pub fn create_key(
    stores: &Stores,
    mut rec: KeyRecord,
    secret: &SecretString,
) -> anyhow::Result<KeyRecord> {
    let local = crate::registry::Registry::load(stores.data_dir())?;
    if local
        .keys()
        .iter()
        .any(|k| k.name == rec.name || k.id == rec.id)
    {
        return Err(Error::conflict(format!(
            "a key named {} already exists on this machine; pick another --name",
            crate::output::quoted(&rec.name)
        ))
        .into());
    }
    let v = stores.vault()?;
    rec.store = StoreKind::Vault;
    // Fingerprinted under the team's salt, so that `scan` on any machine knows the key
    // from its record alone (the caller's fingerprint is under this home's salt).
    // A weak secret gets none: the team record is readable with list rights, and the
    // salt beside it would let a reader test guesses (`registry::strong_enough`).
    if !crate::registry::strong_enough(secret.expose_secret()) {
        rec.fingerprint = None;
    } else if let Some(salt) = v.team_salt(true)? {
        rec.fingerprint = Some(super::fingerprints::team_fingerprint(
            &salt,
            secret.expose_secret(),
        ));
    }
    v.create_key(&rec, secret)?;
    stores.out().debug(&format!(
        "key {} written to {} at {}",
        rec.id,
        v.key_path(&rec.id),
        v.addr
    ));
    Ok(rec)
}

/// `keyctl rotate` of a team key: the successor `rec` is written (secret, then record,
/// fingerprinted under the team's salt as [`create_key`] does) while the name still
/// means `old_id`; once the rotation is done, [`VaultStore::move_claim`] hands the name to
/// it, so that from then on every machine's NAME means the successor. A name that no
/// longer means `old_id` (another machine rotated it first) is a conflict, and the
/// successor is taken out again.
pub fn create_successor(
    stores: &Stores,
    mut rec: KeyRecord,
    secret: &SecretString,
    old_id: &str,
) -> anyhow::Result<KeyRecord> {
    let v = stores.vault()?;
    rec.store = StoreKind::Vault;
    rec.fingerprint = None;
    if crate::registry::strong_enough(secret.expose_secret())
        && let Some(salt) = v.team_salt(true)?
    {
        rec.fingerprint = Some(super::fingerprints::team_fingerprint(
            &salt,
            secret.expose_secret(),
        ));
    }
    if !safe_segment(&rec.id) || !safe_segment(&rec.name) {
        return Err(crate::error::usage(format!(
            "{} cannot be stored in OpenBao/Vault (a path segment)",
            crate::output::quoted(&rec.id)
        )));
    }
    let written = v
        .write(
            &format!("secrets/{}", rec.id),
            0,
            &json!({"secret": secret.expose_secret()}),
        )
        .and_then(|_| v.write(&format!("keys/{}", rec.id), 0, &record_data(&rec)?));
    if let Err(e) = written {
        let _ = v.destroy(&format!("secrets/{}", rec.id));
        return Err(e);
    }
    let e = Entry {
        record: rec.clone(),
        version: 1,
    };
    v.index_upkeep("the rotation", v.index_put(&rec.id, &e, None));
    match v.name_owner(&rec.name) {
        Ok(Some(owner)) if owner == old_id => Ok(rec),
        outcome => {
            let _ = v.delete(&rec.id);
            Err(outcome.err().unwrap_or_else(|| {
                Error::conflict(format!(
                    "key '{}' was rotated or changed on another machine meanwhile (its name no longer means {old_id} in OpenBao/Vault at {}); nothing was changed",
                    rec.name, v.addr
                ))
                .into()
            }))
        }
    }
}

/// `keyctl delete` of a team key: gone for every machine (all versions, name claim).
pub fn delete_key(stores: &Stores, id: &str, name: &str) -> anyhow::Result<()> {
    let v = stores.vault()?;
    if !v.delete(id)? {
        return Err(Error::not_found(format!(
            "OpenBao/Vault at {} has no key {id} (deleted on another machine?)",
            v.addr
        ))
        .into());
    }
    stores.out().note(&format!(
        "deleted key '{name}' ({id}) from OpenBao/Vault at {}, for every machine",
        v.addr
    ));
    Ok(())
}

impl VaultStore {
    /// The metadata of key `id`, or None. An entry an older keyctl wrote with the secret
    /// inside is split on the way (secret to `secrets/ID` first, then the record alone).
    pub fn entry(&self, id: &str) -> anyhow::Result<Option<Entry>> {
        if !safe_segment(id) {
            return Ok(None);
        }
        for _ in 0..CAS_ATTEMPTS {
            let Some((mut data, version)) = self.read(&format!("keys/{id}"))? else {
                return Ok(None);
            };
            if data.is_null() {
                return Ok(None);
            }
            let legacy = data.get_mut("secret").map(Value::take);
            let mut record: KeyRecord = serde_json::from_value(data["record"].take())
                .with_context(|| {
                    format!(
                        "the entry {} in OpenBao/Vault at {} has no valid key record",
                        self.key_path(id),
                        self.addr
                    )
                })?;
            record.store = StoreKind::Vault;
            let Some(Value::String(secret)) = legacy else {
                return Ok(Some(Entry { record, version }));
            };
            let secret = SecretString::from(secret);
            // Move the secret out: cas 0, so a secret already there (another machine
            // migrating at the same time) is kept.
            self.write(
                &format!("secrets/{id}"),
                0,
                &json!({"secret": secret.expose_secret()}),
            )?;
            if self.write(&format!("keys/{id}"), version, &record_data(&record)?)? {
                return Ok(Some(Entry {
                    record,
                    version: version + 1,
                }));
            }
        }
        Err(Error::conflict(format!(
            "key {id} kept changing in OpenBao/Vault at {} while keyctl read it; retry",
            self.addr
        ))
        .into())
    }

    /// The secret of key `id`, or None.
    pub fn secret_of(&self, id: &str) -> anyhow::Result<Option<(SecretString, u64)>> {
        if !safe_segment(id) {
            return Ok(None);
        }
        if let Some((data, version)) = self.read(&format!("secrets/{id}"))?
            && let Some(s) = data["secret"].as_str()
        {
            return Ok(Some((SecretString::from(s.to_owned()), version)));
        }
        // Not moved yet (an entry from an older keyctl): reading the entry moves it.
        if self.entry(id)?.is_some()
            && let Some((data, version)) = self.read(&format!("secrets/{id}"))?
            && let Some(s) = data["secret"].as_str()
        {
            return Ok(Some((SecretString::from(s.to_owned()), version)));
        }
        Ok(None)
    }

    /// Hands the claim on `name` from key `from` to key `to` with check-and-set; false
    /// when it does not name `from` (any more).
    pub fn move_claim(&self, name: &str, from: &str, to: &str) -> anyhow::Result<bool> {
        if !safe_segment(name) {
            return Ok(false);
        }
        let rel = format!("names/{name}");
        match self.read(&rel)? {
            Some((d, version)) if d["id"].as_str() == Some(from) => {
                let at = crate::expiry::rfc3339(time::OffsetDateTime::now_utc());
                self.write(&rel, version, &json!({"id": to, "at": at}))
            }
            _ => Ok(false),
        }
    }

    /// The ID claimed by `name`, or None.
    pub(super) fn name_owner(&self, name: &str) -> anyhow::Result<Option<String>> {
        if !safe_segment(name) {
            return Ok(None);
        }
        Ok(self
            .read(&format!("names/{name}"))?
            .and_then(|(d, _)| d["id"].as_str().map(str::to_owned)))
    }

    /// A name claim whose key never got written (its creator died or lost the server
    /// between the two writes), old enough that no creator can still be finishing it.
    fn is_abandoned(&self, claim: &Value, now: time::OffsetDateTime) -> anyhow::Result<bool> {
        let Some(id) = claim["id"].as_str() else {
            return Ok(false);
        };
        let at = claim["at"]
            .as_str()
            .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok());
        let old = at.is_some_and(|at| now - at > ABANDONED_CLAIM);
        Ok(old && self.entry(id)?.is_none())
    }

    /// Creates a key team-wide: the name claim first (so two machines cannot both take a
    /// name), then the key entry, both with `cas: 0`. A key write that definitely failed
    /// gives the name back; one whose outcome is unknown (server gone) keeps it, since
    /// the key may exist.
    pub fn create_key(&self, rec: &KeyRecord, secret: &SecretString) -> anyhow::Result<()> {
        let taken = || {
            Error::conflict(format!(
                "a key named {} already exists in OpenBao/Vault at {}; pick another --name",
                crate::output::quoted(&rec.name),
                self.addr
            ))
        };
        if !safe_segment(&rec.name) || !safe_segment(&rec.id) {
            return Err(crate::error::usage(format!(
                "{} cannot be stored in OpenBao/Vault (a path segment)",
                crate::output::quoted(&rec.name)
            )));
        }
        let name_rel = format!("names/{}", rec.name);
        let claim = json!({"id": rec.id, "at": crate::expiry::rfc3339(rec.created_at)});
        if !self.write(&name_rel, 0, &claim)? {
            match self.read(&name_rel)? {
                // Ours already: an earlier attempt landed but its answer was lost.
                Some((d, _)) if d["id"] == json!(rec.id) => {}
                Some((d, version)) if self.is_abandoned(&d, rec.created_at)? => {
                    if !self.write(&name_rel, version, &claim)? {
                        return Err(taken().into());
                    }
                }
                // Soft-deleted by hand (`bao kv delete`): free.
                Some((Value::Null, version)) if self.write(&name_rel, version, &claim)? => {}
                // Deleted meanwhile: claim it like a fresh name.
                None if self.write(&name_rel, 0, &claim)? => {}
                _ => return Err(taken().into()),
            }
        }
        let secret_rel = format!("secrets/{}", rec.id);
        let secret_data = json!({"secret": secret.expose_secret()});
        let written = self.write(&secret_rel, 0, &secret_data).and_then(|fresh| {
            if !fresh {
                // An earlier attempt of ours landed; anything else is another key's.
                let ours = self
                    .read(&secret_rel)?
                    .is_some_and(|(d, _)| d["secret"].as_str() == Some(secret.expose_secret()));
                if !ours {
                    return Ok(false);
                }
            }
            self.write(&format!("keys/{}", rec.id), 0, &record_data(rec)?)
        });
        let indexed = || {
            let e = Entry {
                record: rec.clone(),
                version: 1,
            };
            self.index_upkeep("the create", self.index_put(&rec.id, &e, None));
        };
        match written {
            Ok(true) => {
                indexed();
                Ok(())
            }
            Ok(false) => {
                let ours = self
                    .read(&secret_rel)?
                    .is_some_and(|(d, _)| d["secret"].as_str() == Some(secret.expose_secret()))
                    && self
                        .entry(&rec.id)?
                        .is_some_and(|e| e.record.name == rec.name);
                if ours {
                    indexed();
                    return Ok(());
                }
                let _ = self.destroy(&name_rel);
                Err(Error::conflict(format!(
                    "a key with ID {} already exists in OpenBao/Vault at {}",
                    rec.id, self.addr
                ))
                .into())
            }
            Err(e) => {
                if !crate::error::is_outcome_unknown(&e) {
                    let _ = self.destroy(&name_rel);
                }
                Err(e)
            }
        }
    }

    /// The records that KEY (an ID or a name) can mean: two or three round trips instead
    /// of listing the whole store.
    pub fn lookup(&self, key: &str) -> anyhow::Result<Vec<KeyRecord>> {
        let mut out: Vec<KeyRecord> = Vec::new();
        if let Some(e) = self.entry(key)? {
            out.push(e.record);
        }
        if let Some(id) = self.name_owner(key)?
            && !out.iter().any(|r| r.id == id)
            && let Some(e) = self.entry(&id)?
            && e.record.name == key
        {
            out.push(e.record);
        }
        Ok(out)
    }

    /// Changes a key's record team-wide with check-and-set: `change` is applied to the
    /// current record and written with its version, again on a fresh copy whenever
    /// another writer got there first. `change` returns false for "nothing to do".
    /// For `revoke` (sets `revoked_at`) and other record updates.
    pub fn update_record(
        &self,
        id: &str,
        mut change: impl FnMut(&mut KeyRecord) -> bool,
    ) -> anyhow::Result<KeyRecord> {
        // Pending in the index first, so that readers take the record itself until the
        // index holds the change (a writer dying midway leaves nothing stale).
        let mut nonce: Option<String> = None;
        for _ in 0..CAS_ATTEMPTS {
            let mut e = self.entry(id)?.ok_or_else(|| {
                Error::not_found(format!("OpenBao/Vault at {} has no key {id}", self.addr))
            })?;
            if !change(&mut e.record) {
                if let Some(n) = &nonce {
                    self.index_upkeep("the update", self.index_put(id, &e, Some(n)));
                }
                return Ok(e.record);
            }
            if nonce.is_none() {
                nonce = Some(self.index_mark(id)?);
            }
            if self.write_entry(id, &e)? {
                e.version += 1;
                self.index_upkeep("the update", self.index_put(id, &e, nonce.as_deref()));
                return Ok(e.record);
            }
        }
        Err(Error::conflict(format!(
            "key {id} kept changing in OpenBao/Vault at {} while keyctl updated it; retry",
            self.addr
        ))
        .into())
    }

    fn write_entry(&self, id: &str, e: &Entry) -> anyhow::Result<bool> {
        self.write(&format!("keys/{id}"), e.version, &record_data(&e.record)?)
    }
}

/// The KV data of a key's metadata entry: its record, marked as kept in this store.
pub(super) fn record_data(rec: &KeyRecord) -> anyhow::Result<Value> {
    let mut record = serde_json::to_value(rec)?;
    record["store"] = json!("vault");
    Ok(json!({ "record": record }))
}

/// A key ID or name that is one harmless path segment.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_segments_reach_a_path() {
        for ok in ["ci", "kca_x.y-z", "a.."] {
            assert!(safe_segment(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a?b", "%2e"] {
            assert!(!safe_segment(bad), "{bad}");
        }
    }
}
