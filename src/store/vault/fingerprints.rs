//! What `scan` needs of a team, and how a machine keeps a copy of it cheaply: the
//! team-wide salt, the fingerprints on the team's records under it, and the team's
//! generation, which says when a copy is stale.
//!
//! Loading 10,000 records costs ~200 ms, paid by every commit through the pre-commit hook
//! if every scan did it. So a scan matches against a local copy (a 0600 file in the
//! home) and checks it with one request: `PREFIX/team` holds the salt, and its KV version
//! is the generation. Every writer (`create`, a record update, `delete`, an index repair
//! that changed something) writes that record again, check-and-set, after its record and
//! index writes; a check-and-set that loses means another writer wrote it after ours,
//! which is as good. So a change that finished before a scan started has moved the
//! generation past any copy made before it, and the scan refreshes the copy:
//! - the generation is read before the records when a copy is made, so a change racing
//!   the refresh moves the generation after the copy's and the next scan refreshes again;
//! - a writer that died between its record and the generation write leaves a key that a
//!   copy made before it may not hold: the next writer, an index repair (the next `list`
//!   with write rights) or the copy's age ([`MAX_AGE`]) refreshes it.
//!
//! The copy is written atomically and needs no lock: a copy is whole or absent, and any
//! whole copy is checked against the generation before it is trusted.

use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::Context as _;
use serde_json::json;

use super::{CAS_ATTEMPTS, VaultStore};
use crate::error::Error;
use crate::registry::{Fingerprint, KeyRecord};

/// How long a copy is trusted on its generation alone: beyond it, a writer that died
/// before bumping the generation could be hiding a key.
pub(super) const MAX_AGE: time::Duration = time::Duration::minutes(10);

const MAGIC: &[u8] = b"keyctl team fingerprints 2\n";

/// The team's generation and salt, as `PREFIX/team` holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The KV version of `PREFIX/team` (0: none yet).
    pub version: u64,
    pub salt: Option<[u8; 32]>,
}

/// The fingerprints of a team's keys under its salt, and their records, as of a
/// generation. In the file: a header line, the sorted fingerprints (32 bytes each), the
/// offsets of the records (4 bytes each, one more than there are keys), then the records
/// (JSON). Opening a copy reads its header only (and checks its size); a scan reads the
/// fingerprints its lookups visit ([`TeamFingerprints::fingerprint`]), or all of them
/// once lookups are many ([`TeamFingerprints::fingerprints`]), and only the records of
/// the keys it found.
pub struct TeamFingerprints {
    /// Which team (address, namespace, mount, prefix).
    pub team: String,
    pub generation: Generation,
    /// When it was read from the team store.
    pub fetched_at: time::OffsetDateTime,
    /// Lengths of the secrets without a keyctl checksum (only runs of those are looked up).
    pub lengths: Vec<usize>,
    count: usize,
    data: Data,
}

enum Data {
    /// Just read from the team store.
    Memory {
        sorted: Vec<[u8; 32]>,
        /// Where record `i` starts and ends in `records`.
        offsets: Vec<u32>,
        records: Vec<u8>,
    },
    /// The copy's file, open (so a newer copy renamed over it changes nothing here), and
    /// where its fingerprints start.
    File {
        file: std::fs::File,
        table: u64,
        records_len: u64,
    },
}

/// Reads `buf.len()` bytes at `pos` of `file` (a positioned read: threads share the file).
fn read_at(file: &std::fs::File, pos: u64, buf: &mut [u8]) -> Option<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt as _;
        file.read_exact_at(buf, pos).ok()
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt as _;
        let mut done = 0;
        while done < buf.len() {
            match file.seek_read(&mut buf[done..], pos + done as u64).ok()? {
                0 => return None,
                n => done += n,
            }
        }
        Some(())
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    team: String,
    version: u64,
    salt: Option<String>,
    fetched_at: i64,
    count: usize,
    lengths: Vec<usize>,
    /// Bytes of the records, so a copy cut short is told from a whole one.
    records_len: u64,
}

impl TeamFingerprints {
    /// Entry `i` of the sorted fingerprints, the key of `record(i)` (None past the end, or
    /// if the copy cannot be read).
    pub fn fingerprint(&self, i: usize) -> Option<[u8; 32]> {
        if i >= self.count {
            return None;
        }
        match &self.data {
            Data::Memory { sorted, .. } => sorted.get(i).copied(),
            Data::File { file, table, .. } => {
                let mut fp = [0u8; 32];
                read_at(file, table + i as u64 * 32, &mut fp)?;
                Some(fp)
            }
        }
    }

    /// Every fingerprint, sorted; None if they cannot be read whole, or are out of order.
    pub fn fingerprints(&self) -> Option<Vec<[u8; 32]>> {
        let all = match &self.data {
            Data::Memory { sorted, .. } => sorted.clone(),
            Data::File { file, table, .. } => {
                let mut all = vec![[0u8; 32]; self.count];
                read_at(file, *table, all.as_flattened_mut())?;
                all
            }
        };
        all.is_sorted().then_some(all)
    }

    /// The record of entry `i` (None past the end, or if the copy cannot be read).
    pub fn record(&self, i: usize) -> Option<KeyRecord> {
        if i >= self.count {
            return None;
        }
        let buf = match &self.data {
            Data::Memory {
                offsets, records, ..
            } => records
                .get(offsets[i] as usize..offsets[i + 1] as usize)?
                .to_vec(),
            Data::File {
                file,
                table,
                records_len,
            } => {
                let offsets = table + self.count as u64 * 32;
                let mut raw = [0u8; 8];
                read_at(file, offsets + i as u64 * 4, &mut raw)?;
                let start = u64::from(u32::from_le_bytes(raw[..4].try_into().ok()?));
                let end = u64::from(u32::from_le_bytes(raw[4..].try_into().ok()?));
                if start > end || end > *records_len {
                    return None;
                }
                let mut buf = vec![0u8; (end - start) as usize];
                let base = offsets + (self.count as u64 + 1) * 4;
                read_at(file, base + start, &mut buf)?;
                buf
            }
        };
        let mut rec: KeyRecord = serde_json::from_slice(&buf).ok()?;
        rec.store = crate::registry::StoreKind::Vault;
        Some(rec)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Older than [`MAX_AGE`] (or from the future: a clock set back).
    pub fn too_old(&self, now: time::OffsetDateTime) -> bool {
        let age = now - self.fetched_at;
        age > MAX_AGE || age < -MAX_AGE
    }

    /// The copy at `path`; None when there is none or it is not whole (then refreshed).
    pub fn load(path: &Path) -> anyhow::Result<Option<TeamFingerprints>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Ok(Self::parse(file))
    }

    fn parse(file: std::fs::File) -> Option<TeamFingerprints> {
        let size = file.metadata().ok()?.len();
        let mut r = BufReader::with_capacity(4096, &file);
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line).ok()?;
        if line != MAGIC {
            return None;
        }
        line.clear();
        r.read_until(b'\n', &mut line).ok()?;
        let h: Header = serde_json::from_slice(&line).ok()?;
        let table = (MAGIC.len() + line.len()) as u64;
        let n = h.count as u64;
        if size != (table + n * 32 + (n + 1) * 4).checked_add(h.records_len)? {
            return None;
        }
        let salt = match h.salt {
            Some(s) => Some(crate::key::from_hex(&s)?),
            None => None,
        };
        drop(r);
        Some(TeamFingerprints {
            team: h.team,
            generation: Generation {
                version: h.version,
                salt,
            },
            fetched_at: time::OffsetDateTime::from_unix_timestamp(h.fetched_at).ok()?,
            lengths: h.lengths,
            count: h.count,
            data: Data::File {
                file,
                table,
                records_len: h.records_len,
            },
        })
    }

    /// Writes the copy to `path` (0600, atomically).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let Data::Memory {
            sorted,
            offsets,
            records,
        } = &self.data
        else {
            return Ok(());
        };
        let h = Header {
            team: self.team.clone(),
            version: self.generation.version,
            salt: self.generation.salt.map(|s| crate::key::to_hex(&s)),
            fetched_at: self.fetched_at.unix_timestamp(),
            count: self.count,
            lengths: self.lengths.clone(),
            records_len: records.len() as u64,
        };
        let mut out = MAGIC.to_vec();
        serde_json::to_writer(&mut out, &h)?;
        out.push(b'\n');
        out.extend_from_slice(sorted.as_flattened());
        for o in offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(records);
        crate::fsutil::write_atomic(path, &out)
    }

    /// The team's fingerprints from its records: entries sorted, records beside them.
    fn build(
        team: String,
        generation: Generation,
        records: Vec<KeyRecord>,
    ) -> anyhow::Result<TeamFingerprints> {
        let mut lengths: Vec<usize> = Vec::new();
        let mut entries: Vec<([u8; 32], KeyRecord)> = records
            .into_iter()
            .filter_map(|mut r| {
                let fp = r.fingerprint.take().filter(|f| !f.refused())?;
                let h = crate::key::from_hex(&fp.hmac)?;
                if !fp.checksum && !lengths.contains(&fp.len) {
                    lengths.push(fp.len);
                }
                Some((h, r))
            })
            .collect();
        entries.sort_unstable_by_key(|e| e.0);
        lengths.sort_unstable();
        let mut records = Vec::new();
        let mut offsets = vec![0u32];
        let mut sorted = Vec::with_capacity(entries.len());
        for (h, r) in entries {
            serde_json::to_writer(&mut records, &r)?;
            offsets.push(u32::try_from(records.len()).context("a team too large to copy")?);
            sorted.push(h);
        }
        Ok(TeamFingerprints {
            team,
            generation,
            fetched_at: time::OffsetDateTime::now_utc(),
            lengths,
            count: sorted.len(),
            data: Data::Memory {
                sorted,
                offsets,
                records,
            },
        })
    }
}

impl VaultStore {
    /// Which team this store is, for a copy of its fingerprints.
    pub fn team_id(&self) -> String {
        format!(
            "{} {} {}/{}",
            self.addr,
            self.namespace.as_deref().unwrap_or("-"),
            self.mount,
            self.prefix
        )
    }

    /// The team's generation: one read of `PREFIX/team` (granted by the list-only policy).
    pub fn generation(&self) -> anyhow::Result<Generation> {
        Ok(match self.read("team")? {
            Some((d, version)) => Generation {
                version,
                salt: d["scan_salt"].as_str().and_then(crate::key::from_hex),
            },
            None => Generation {
                version: 0,
                salt: None,
            },
        })
    }

    /// The fingerprints of every team key, as of `generation`, which the caller read
    /// before (so a change racing this read moves the generation past it): the list's
    /// bounded requests, never a secret.
    pub fn team_fingerprints(&self, generation: Generation) -> anyhow::Result<TeamFingerprints> {
        let records = self.records()?;
        let bare = records.iter().filter(|r| r.fingerprint.is_none()).count();
        if bare > 0 {
            self.out.debug(&format!(
                "{bare} team keys have no fingerprint on their record (an older keyctl made them): scan cannot name them"
            ));
        }
        TeamFingerprints::build(self.team_id(), generation, records)
    }

    /// Moves the team's generation on after a change of the team's keys (see the module
    /// docs); a failure must not fail the change, whose writes have landed: copies then
    /// catch up at the next writer's change or when they are [`MAX_AGE`] old.
    pub(super) fn bump_generation(&self, what: &str) {
        let bumped = (|| -> anyhow::Result<()> {
            let (data, version) = self.read("team")?.unwrap_or((json!({}), 0));
            let data = if data.is_object() { data } else { json!({}) };
            // Lost to another writer: theirs was written after ours landed, as good.
            if self.write("team", version, &data)? && version == 0 {
                self.keep_few_versions();
            }
            Ok(())
        })();
        if let Err(e) = bumped {
            self.out.warn(&format!(
                "the team's generation was not moved on after {what} ({e:#}): scans on other machines see the change within {} minutes",
                MAX_AGE.whole_minutes()
            ));
        }
    }

    /// `PREFIX/team` is rewritten by every change of the team (its generation): two
    /// versions are enough.
    fn keep_few_versions(&self) {
        if let Err(e) = self.keep_versions("team", 2) {
            self.out
                .debug(&format!("team: versions not limited: {e:#}"));
        }
    }

    /// The team-wide salt of the fingerprints on team records; made (random, check-and-set
    /// so every machine agrees) when `make` and the team has none yet.
    pub fn team_salt(&self, make: bool) -> anyhow::Result<Option<[u8; 32]>> {
        for _ in 0..CAS_ATTEMPTS {
            let found = self.read("team")?;
            if let Some(salt) = found
                .as_ref()
                .and_then(|(d, _)| d["scan_salt"].as_str().and_then(crate::key::from_hex))
            {
                return Ok(Some(salt));
            }
            if !make {
                return Ok(None);
            }
            let mut salt = [0u8; 32];
            rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut salt)
                .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
            let version = found.map_or(0, |(_, v)| v);
            let data = json!({"scan_salt": crate::key::to_hex(&salt)});
            if self.write("team", version, &data)? {
                if version == 0 {
                    self.keep_few_versions();
                }
                return Ok(Some(salt));
            }
        }
        Err(Error::conflict(format!(
            "the team record kept changing in OpenBao/Vault at {}; retry",
            self.addr
        ))
        .into())
    }
}

/// The fingerprint of a team key's secret under the team's salt, for its record.
pub(super) fn team_fingerprint(salt: &[u8; 32], secret: &str) -> Fingerprint {
    Fingerprint {
        hmac: crate::key::to_hex(&crate::key::fingerprint(salt, secret.as_bytes())),
        len: secret.len(),
        checksum: crate::key::looks_like_secret(secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, hmac: Option<[u8; 32]>, len: usize, checksum: bool) -> KeyRecord {
        let fp =
            hmac.map(|h| json!({"hmac": crate::key::to_hex(&h), "len": len, "checksum": checksum}));
        serde_json::from_value(json!({"id": id, "name": format!("n-{id}"), "kind": "api",
            "format": "standard", "created_at": "2026-01-01T00:00:00Z", "scopes": [],
            "store": "vault", "fingerprint": fp}))
        .unwrap()
    }

    #[test]
    fn a_copy_round_trips_sorted_and_names_its_keys() {
        let g = Generation {
            version: 7,
            salt: Some([5u8; 32]),
        };
        let t = TeamFingerprints::build(
            "team".into(),
            g,
            vec![
                rec("kcb", Some([9u8; 32]), 40, false),
                rec("kca", Some([1u8; 32]), 50, true),
                rec("old", None, 0, false),
            ],
        )
        .unwrap();
        assert_eq!(t.fingerprints(), Some(vec![[1u8; 32], [9u8; 32]]));
        assert_eq!(
            (t.fingerprint(1), t.fingerprint(2)),
            (Some([9u8; 32]), None)
        );
        let id = |t: &TeamFingerprints, i| t.record(i).map(|r| r.id);
        assert_eq!(
            (id(&t, 0), id(&t, 1), id(&t, 2)),
            (Some("kca".into()), Some("kcb".into()), None)
        );
        assert_eq!(t.lengths, vec![40]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy");
        t.save(&path).unwrap();
        let back = TeamFingerprints::load(&path).unwrap().unwrap();
        assert_eq!((back.team.as_str(), back.generation), ("team", g));
        assert_eq!(back.fingerprints(), t.fingerprints());
        assert_eq!(
            (
                back.fingerprint(0),
                back.fingerprint(1),
                back.fingerprint(2)
            ),
            (Some([1u8; 32]), Some([9u8; 32]), None)
        );
        assert_eq!((back.len(), back.lengths.clone()), (2, vec![40]));
        let b = back.record(1).unwrap();
        assert_eq!((b.id.as_str(), b.name.as_str()), ("kcb", "n-kcb"));
        assert_eq!(back.record(2).map(|r| r.id), None);
        assert_eq!(
            back.fetched_at.unix_timestamp(),
            t.fetched_at.unix_timestamp()
        );
        assert!(!back.too_old(time::OffsetDateTime::now_utc()));
        assert!(back.too_old(time::OffsetDateTime::now_utc() + time::Duration::minutes(11)));

        // Cut short or grown: no copy (refreshed), never a wrong one.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut");
        for n in [10, MAGIC.len() + 5, bytes.len() - 40, bytes.len() - 1] {
            std::fs::write(&cut, &bytes[..n]).unwrap();
            assert!(TeamFingerprints::load(&cut).unwrap().is_none(), "{n}");
        }
        std::fs::write(&cut, [&bytes[..], b"x"].concat()).unwrap();
        assert!(TeamFingerprints::load(&cut).unwrap().is_none());
        // Whole but out of order: opened, but its fingerprints are not used whole (a
        // lookup that meets the disorder says so: `scan::Known::intact`).
        let at = bytes.iter().position(|&b| b == b'\n').unwrap();
        let table = at + 1 + bytes[at + 1..].iter().position(|&b| b == b'\n').unwrap() + 1;
        let mut swapped = bytes.clone();
        swapped[table..table + 64].rotate_left(32);
        std::fs::write(&cut, swapped).unwrap();
        let swapped = TeamFingerprints::load(&cut).unwrap().unwrap();
        assert_eq!(swapped.fingerprints(), None);
        assert_eq!(swapped.fingerprint(0), Some([9u8; 32]));
        let empty = TeamFingerprints::build("t".into(), g, Vec::new()).unwrap();
        empty.save(&path).unwrap();
        assert!(TeamFingerprints::load(&path).unwrap().unwrap().is_empty());
    }
}
