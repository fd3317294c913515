//! The team index: what makes `list` of a team cost a bounded number of round trips
//! instead of one per key, and what lets `scan` know team keys without reading a secret.
//!
//! - `PREFIX/index/NN` (NN = one of [`SHARDS`] shards, chosen by a hash of the key ID):
//!   `{"keys": "{ID: {\"v\": VERSION, \"record\": {...}, \"pending\": {NONCE: TIME}}}"}` (the map
//!   as one JSON string, see [`shard_keys`]), a copy of
//!   the records at `keys/ID` (never a secret). Every change is check-and-set on the
//!   shard, so writers on many machines lose no entry; a shard holds 1/[`SHARDS`] of the
//!   team, so concurrent writers seldom meet on one, and 50,000 keys stay far below a
//!   Raft entry's size limit.
//! - `PREFIX/team`: `{"scan_salt": HEX}`, the team-wide salt of the fingerprints kept on
//!   team records (made by the first `create`), readable with list rights; its KV version
//!   is the team's generation (see `fingerprints`).
//!
//! The records at `keys/ID` stay the truth; the index is a copy kept up to date by the
//! writers, checked by every reader:
//! - membership comes from `LIST keys/` (one round trip): a key whose index entry is
//!   missing (its creator died between the record and the index write) is read from its
//!   record, and an entry whose record is gone (a delete cut short) is dropped once a read
//!   of the record confirms it;
//! - a change of an existing record (`revoke`, `rotate`, `push`) first marks the entry
//!   pending (a nonce per writer), then writes the record, then the entry with the new
//!   record and its own nonce removed. While an entry is pending, readers read the record
//!   itself, so a writer that dies midway leaves nothing stale behind.
//!
//! A reader that may write (create rights) puts what it had to read directly back into
//! the index (a torn index is rebuilt by the next `list`); a list-only token just reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::team::{Entry, record_data};
use super::{ABANDONED_CLAIM, CAS_ATTEMPTS, LIST_THREADS, VaultStore};
use crate::error::Error;
use crate::registry::KeyRecord;

/// How many index shards a team has: the round trips of a list, and the contention of
/// writers on one shard.
pub(super) const SHARDS: usize = 128;

/// The shard that holds key `id`.
fn shard_of(id: &str) -> String {
    let h = Sha256::digest(id.as_bytes());
    format!("index/{:02x}", usize::from(h[0]) % SHARDS)
}

fn shard_name(i: usize) -> String {
    format!("index/{i:02x}")
}

/// A shard's entries. They are kept as one JSON string: OpenBao refuses a request with
/// more than 1,000 JSON strings in it ("high complexity"), which a shard of nested
/// records would pass at about 60 keys.
fn shard_keys(d: &Value) -> Map<String, Value> {
    match &d["keys"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

/// An index entry parsed straight into a record (a list of 10,000 keys spends most of
/// its time here, so no intermediate `Value`).
#[derive(serde::Deserialize)]
struct Stored {
    #[serde(default)]
    v: u64,
    #[serde(default)]
    record: Option<KeyRecord>,
    #[serde(default)]
    pending: Option<Map<String, Value>>,
}

/// The entries of a shard as read; a shard that does not parse as records is all read
/// from the records instead (entries without a record).
fn stored_entries(d: &Value) -> Vec<(String, Stored)> {
    if let Value::String(text) = &d["keys"]
        && let Ok(m) = serde_json::from_str::<BTreeMap<String, Stored>>(text)
    {
        return m.into_iter().collect();
    }
    shard_keys(d)
        .into_iter()
        .map(|(id, v)| {
            let pending = v["pending"].as_object().cloned();
            let stored = Stored {
                v: 0,
                record: None,
                pending,
            };
            (id, stored)
        })
        .collect()
}

/// (pending, abandoned) of an entry's pending marks.
fn pending_state(marks: Option<&Map<String, Value>>, now: time::OffsetDateTime) -> (bool, bool) {
    let marks: Vec<Option<time::OffsetDateTime>> = marks
        .map(|m| {
            m.values()
                .map(|t| {
                    t.as_str().and_then(|t| {
                        time::OffsetDateTime::parse(
                            t,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let abandoned = !marks.is_empty()
        && marks
            .iter()
            .all(|t| t.is_some_and(|t| now - t > ABANDONED_CLAIM));
    (!marks.is_empty(), abandoned)
}

impl VaultStore {
    /// Changes shard `rel` with check-and-set: `change` is applied to a fresh copy of its
    /// key map until a write lands; it returns false for "nothing to do". True when a
    /// change was written.
    fn edit_shard(
        &self,
        rel: &str,
        mut change: impl FnMut(&mut Map<String, Value>) -> bool,
    ) -> anyhow::Result<bool> {
        for attempt in 0..CAS_ATTEMPTS {
            let (mut keys, version) = match self.read(rel)? {
                Some((d, v)) => (shard_keys(&d), v),
                None => (Map::new(), 0),
            };
            if !change(&mut keys) {
                return Ok(false);
            }
            let text = serde_json::to_string(&keys)?;
            if self.write(rel, version, &json!({ "keys": text }))? {
                if version == 0 {
                    // A shard is rewritten on every change: old versions would only
                    // multiply its size in storage (CAS needs the current one).
                    let kept = self.keep_versions(rel, 2);
                    if let Err(e) = kept {
                        self.out
                            .debug(&format!("{rel}: versions not limited: {e:#}"));
                    }
                }
                return Ok(true);
            }
            // Another writer got there first: step aside a little, then again.
            std::thread::sleep(std::time::Duration::from_millis(
                (rand::random::<u64>() % 20) * (attempt as u64 + 1).min(5),
            ));
        }
        Err(Error::conflict(format!(
            "the team index {rel} kept changing in OpenBao/Vault at {}; retry",
            self.addr
        ))
        .into())
    }

    /// Puts `e` into the index (unless a newer version is there) and takes `nonce`'s
    /// pending mark off.
    pub(super) fn index_put(&self, id: &str, e: &Entry, nonce: Option<&str>) -> anyhow::Result<()> {
        let record = record_data(&e.record)?["record"].take();
        self.edit_shard(&shard_of(id), |keys| {
            let slot = keys.entry(id.to_owned()).or_insert_with(|| json!({}));
            let mut changed = false;
            if slot["v"].as_u64().unwrap_or(0) <= e.version
                && (slot["v"].as_u64() != Some(e.version) || slot["record"] != record)
            {
                slot["v"] = json!(e.version);
                slot["record"] = record.clone();
                changed = true;
            }
            if let Some(n) = nonce
                && let Some(p) = slot["pending"].as_object_mut()
                && p.remove(n).is_some()
            {
                if p.is_empty() {
                    slot.as_object_mut().map(|o| o.remove("pending"));
                }
                changed = true;
            }
            changed
        })?;
        Ok(())
    }

    /// Marks key `id` pending in the index before its record changes; returns the nonce
    /// to clear with [`VaultStore::index_put`].
    pub(super) fn index_mark(&self, id: &str) -> anyhow::Result<String> {
        let nonce = format!("{:016x}", rand::random::<u64>());
        let at = crate::expiry::rfc3339(time::OffsetDateTime::now_utc());
        self.edit_shard(&shard_of(id), |keys| {
            let slot = keys.entry(id.to_owned()).or_insert_with(|| json!({}));
            if !slot["pending"].is_object() {
                slot["pending"] = json!({});
            }
            if slot["pending"][&nonce] == json!(at) {
                return false;
            }
            slot["pending"][&nonce] = json!(at);
            true
        })?;
        Ok(nonce)
    }

    /// Takes key `id` out of the index (after its record is gone).
    pub(super) fn index_remove(&self, id: &str) -> anyhow::Result<()> {
        self.edit_shard(&shard_of(id), |keys| keys.remove(id).is_some())?;
        Ok(())
    }

    /// Runs an index upkeep step whose failure must not fail the command: the record
    /// is written, and the next `list` repairs the index. Every change of a team key ends
    /// here, so this is also where the team's generation moves on (after the index step),
    /// telling copies of the team's fingerprints elsewhere that they are stale.
    pub(super) fn index_upkeep(&self, what: &str, step: anyhow::Result<()>) {
        if let Err(e) = step {
            self.out.warn(&format!(
                "the team index was not updated after {what} ({e:#}); the next `keyctl list` repairs it"
            ));
        }
        self.bump_generation(what);
    }

    /// Every key record in the team: one LIST of `keys/`, the index shards read on a few
    /// kept-alive connections, and a record read only for a key the index does not hold
    /// up to date. Never reads a secret.
    pub fn records(&self) -> anyhow::Result<Vec<KeyRecord>> {
        let now = time::OffsetDateTime::now_utc();
        let next = AtomicUsize::new(0);
        let shards: Mutex<Vec<Vec<(String, Stored)>>> = Mutex::new(Vec::new());
        let (ids, read) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..LIST_THREADS)
                .map(|_| {
                    s.spawn(|| -> anyhow::Result<()> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= SHARDS {
                                return Ok(());
                            }
                            if let Some((d, _)) = self.read(&shard_name(i))? {
                                let entries = stored_entries(&d);
                                shards.lock().expect("index shards").push(entries);
                            }
                        }
                    })
                })
                .collect();
            let ids = self.list("keys");
            let read: anyhow::Result<()> = workers
                .into_iter()
                .try_for_each(|w| w.join().expect("vault index reader"));
            (ids, read)
        });
        let ids: BTreeSet<String> = ids?.into_iter().collect();
        read?;
        let shards = shards.into_inner().expect("index shards");

        let mut records: BTreeMap<String, KeyRecord> = BTreeMap::new();
        let mut direct: BTreeSet<String> = BTreeSet::new();
        let mut gone: Vec<String> = Vec::new();
        // Pending and still fresh: its writer is at work; the entry is left to it.
        let mut busy: BTreeSet<String> = BTreeSet::new();
        for (id, e) in shards.into_iter().flatten() {
            if !ids.contains(&id) {
                gone.push(id);
                continue;
            }
            let (pending, abandoned) = pending_state(e.pending.as_ref(), now);
            if pending && !abandoned {
                busy.insert(id.clone());
            }
            match e.record.filter(|_| !pending && e.v > 0) {
                Some(r) => {
                    records.insert(id, r);
                }
                None => {
                    direct.insert(id);
                }
            }
        }
        direct.extend(ids.iter().filter(|id| !records.contains_key(*id)).cloned());
        let direct: Vec<String> = direct.into_iter().collect();
        if !direct.is_empty() || !gone.is_empty() {
            self.out.debug(&format!(
                "team index: {} of {} keys read from their records, {} entries of deleted keys",
                direct.len(),
                ids.len(),
                gone.len()
            ));
        }
        let fetched = self.entries(&direct)?;
        let mut repairs: HashMap<String, Vec<(String, Option<Entry>)>> = HashMap::new();
        for (id, e) in fetched {
            if let Some(e) = &e {
                records.insert(id.clone(), e.record.clone());
            }
            if !busy.contains(&id) {
                repairs.entry(shard_of(&id)).or_default().push((id, e));
            }
        }
        for (id, e) in self.entries(&gone)? {
            // Gone from LIST: drop the entry only once its record is confirmed gone.
            if e.is_none() {
                repairs.entry(shard_of(&id)).or_default().push((id, None));
            }
        }
        self.repair(repairs);
        let mut all: Vec<KeyRecord> = records.into_values().collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// The entries of `ids`, read on a few threads.
    fn entries(&self, ids: &[String]) -> anyhow::Result<Vec<(String, Option<Entry>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let chunk = ids.len().div_ceil(LIST_THREADS).max(1);
        std::thread::scope(|s| {
            let handles: Vec<_> = ids
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|id| Ok((id.clone(), self.entry(id)?)))
                            .collect::<anyhow::Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut out = Vec::with_capacity(ids.len());
            for h in handles {
                out.extend(h.join().expect("vault reader thread")?);
            }
            Ok(out)
        })
    }

    /// Writes back what a list had to read from the records, when the token may write;
    /// a list-only token (403) or a busy shard leaves it for the next list. A repair that
    /// changed the index moves the team's generation on (a key its creator left out of
    /// the index may be missing from copies of the team's fingerprints too).
    fn repair(&self, repairs: HashMap<String, Vec<(String, Option<Entry>)>>) {
        let mut repaired = false;
        for (rel, fixes) in repairs {
            let result = self.edit_shard(&rel, |keys| {
                let mut changed = false;
                for (id, e) in &fixes {
                    match e {
                        None => changed |= keys.remove(id).is_some(),
                        Some(e) => {
                            let Ok(mut rec) = record_data(&e.record) else {
                                continue;
                            };
                            let fresh = json!({"v": e.version, "record": rec["record"].take()});
                            let slot = keys.get(id);
                            let newer = slot.is_some_and(|s| {
                                s["v"].as_u64().unwrap_or(0) > e.version
                                    || s["pending"].is_object()
                                        && !pending_state(
                                            s["pending"].as_object(),
                                            time::OffsetDateTime::now_utc(),
                                        )
                                        .1
                            });
                            if !newer && slot != Some(&fresh) {
                                keys.insert(id.clone(), fresh);
                                changed = true;
                            }
                        }
                    }
                }
                changed
            });
            match result {
                Ok(changed) => repaired |= changed,
                Err(e) => self
                    .out
                    .debug(&format!("team index {rel} not repaired: {e:#}")),
            }
        }
        if repaired {
            self.bump_generation("the index repair");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_every_shard() {
        let mut seen = BTreeSet::new();
        for i in 0..5000 {
            seen.insert(shard_of(&format!("kc{i:018}")));
        }
        assert_eq!(seen.len(), SHARDS);
        assert!(seen.iter().all(|s| s.len() == "index/00".len()));
    }

    #[test]
    fn pending_marks_are_abandoned_only_when_all_are_old() {
        let now = time::OffsetDateTime::now_utc();
        let old = crate::expiry::rfc3339(now - time::Duration::minutes(10));
        let new = crate::expiry::rfc3339(now);
        let both = json!({"a": old, "b": new});
        assert_eq!(pending_state(both.as_object(), now), (true, false));
        let one = json!({"a": old});
        assert_eq!(pending_state(one.as_object(), now), (true, true));
        assert_eq!(pending_state(None, now), (false, false));
    }

    #[test]
    fn a_shard_that_is_not_records_is_read_from_the_records() {
        let good = json!({"keys": json!({"x": {"v": 2, "pending": {"n": "t"}}}).to_string()});
        let e = stored_entries(&good);
        assert_eq!((e[0].0.as_str(), e[0].1.v), ("x", 2));
        assert!(e[0].1.pending.is_some() && e[0].1.record.is_none());
        let odd = json!({"keys": {"y": {"v": 3, "record": {"not": "a record"}}}});
        let e = stored_entries(&odd);
        assert_eq!((e[0].0.as_str(), e[0].1.v), ("y", 0));
        assert!(e[0].1.record.is_none());
    }
}
