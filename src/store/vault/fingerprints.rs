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

use std::path::Path;

use serde_json::json;

use super::{CAS_ATTEMPTS, VaultStore};
use crate::error::Error;
use crate::registry::Fingerprint;

/// How long a copy is trusted on its generation alone: beyond it, a writer that died
/// before bumping the generation could be hiding a key.
pub(super) const MAX_AGE: time::Duration = time::Duration::minutes(10);

const MAGIC: &[u8] = b"keyctl team fingerprints 1\n";

/// The team's generation and salt, as `PREFIX/team` holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The KV version of `PREFIX/team` (0: none yet).
    pub version: u64,
    pub salt: Option<[u8; 32]>,
}

/// The fingerprints of a team's keys under its salt, as of a generation.
pub struct TeamFingerprints {
    /// Which team (address, namespace, mount, prefix).
    pub team: String,
    pub generation: Generation,
    /// When it was read from the team store.
    pub fetched_at: time::OffsetDateTime,
    /// Sorted; entry `i` is the key `ids[i]`.
    pub sorted: Vec<[u8; 32]>,
    /// The IDs, one a line, in the order of `sorted` (split only for the keys a scan finds).
    ids: String,
    /// Lengths of the secrets without a keyctl checksum (only runs of those are looked up).
    pub lengths: Vec<usize>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    team: String,
    version: u64,
    salt: Option<String>,
    fetched_at: i64,
    count: usize,
    /// Bytes of the ID lines, so a copy cut short is told from a whole one.
    ids_len: usize,
    lengths: Vec<usize>,
}

impl TeamFingerprints {
    /// The ID of entry `i`.
    pub fn id(&self, i: usize) -> Option<&str> {
        self.ids.split('\n').nth(i)
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Older than [`MAX_AGE`] (or from the future: a clock set back).
    pub fn too_old(&self, now: time::OffsetDateTime) -> bool {
        let age = now - self.fetched_at;
        age > MAX_AGE || age < -MAX_AGE
    }

    /// The copy at `path`; None when there is none or it is not whole (then refreshed).
    pub fn load(path: &Path) -> anyhow::Result<Option<TeamFingerprints>> {
        let Some(bytes) = crate::fsutil::read_optional(path)? else {
            return Ok(None);
        };
        Ok(Self::parse(&bytes))
    }

    fn parse(bytes: &[u8]) -> Option<TeamFingerprints> {
        let rest = bytes.strip_prefix(MAGIC)?;
        let nl = memchr::memchr(b'\n', rest)?;
        let h: Header = serde_json::from_slice(&rest[..nl]).ok()?;
        let rest = &rest[nl + 1..];
        let table = rest.get(..h.count.checked_mul(32)?)?;
        let ids = std::str::from_utf8(&rest[table.len()..]).ok()?;
        let lines = if ids.is_empty() {
            0
        } else {
            ids.split('\n').count()
        };
        if ids.len() != h.ids_len || lines != h.count {
            return None;
        }
        let sorted: Vec<[u8; 32]> = table
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunks"))
            .collect();
        if !sorted.is_sorted() {
            return None;
        }
        let salt = match h.salt {
            Some(s) => Some(crate::key::from_hex(&s)?),
            None => None,
        };
        Some(TeamFingerprints {
            team: h.team,
            generation: Generation {
                version: h.version,
                salt,
            },
            fetched_at: time::OffsetDateTime::from_unix_timestamp(h.fetched_at).ok()?,
            sorted,
            ids: ids.to_owned(),
            lengths: h.lengths,
        })
    }

    /// Writes the copy to `path` (0600, atomically).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let h = Header {
            team: self.team.clone(),
            version: self.generation.version,
            salt: self.generation.salt.map(|s| crate::key::to_hex(&s)),
            fetched_at: self.fetched_at.unix_timestamp(),
            count: self.sorted.len(),
            ids_len: self.ids.len(),
            lengths: self.lengths.clone(),
        };
        let mut out = MAGIC.to_vec();
        serde_json::to_writer(&mut out, &h)?;
        out.push(b'\n');
        for fp in &self.sorted {
            out.extend_from_slice(fp);
        }
        out.extend_from_slice(self.ids.as_bytes());
        crate::fsutil::write_atomic(path, &out)
    }

    /// The team's fingerprints from records: entries sorted, IDs beside them.
    fn build(
        team: String,
        generation: Generation,
        records: impl IntoIterator<Item = (String, Fingerprint)>,
    ) -> TeamFingerprints {
        let mut lengths: Vec<usize> = Vec::new();
        let mut entries: Vec<([u8; 32], String)> = records
            .into_iter()
            .filter_map(|(id, fp)| {
                // An ID is one path segment: never a line break.
                let h = crate::key::from_hex(&fp.hmac).filter(|_| !id.contains('\n'))?;
                if !fp.checksum && !lengths.contains(&fp.len) {
                    lengths.push(fp.len);
                }
                Some((h, id))
            })
            .collect();
        entries.sort_unstable();
        lengths.sort_unstable();
        let (sorted, ids): (Vec<[u8; 32]>, Vec<String>) = entries.into_iter().unzip();
        TeamFingerprints {
            team,
            generation,
            fetched_at: time::OffsetDateTime::now_utc(),
            sorted,
            ids: ids.join("\n"),
            lengths,
        }
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

    /// The fingerprints of every team key: the generation first, then the records (the
    /// list's bounded requests; never a secret).
    pub fn team_fingerprints(&self) -> anyhow::Result<TeamFingerprints> {
        let generation = self.generation()?;
        let records = self.records()?;
        let fps = records.into_iter().filter_map(|r| {
            let fp = r.fingerprint.filter(|f| !f.refused())?;
            Some((r.id, fp))
        });
        Ok(TeamFingerprints::build(self.team_id(), generation, fps))
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

    fn fp(hmac: [u8; 32], len: usize, checksum: bool) -> Fingerprint {
        Fingerprint {
            hmac: crate::key::to_hex(&hmac),
            len,
            checksum,
        }
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
            [
                ("kcb".to_owned(), fp([9u8; 32], 40, false)),
                ("kca".to_owned(), fp([1u8; 32], 50, true)),
                (
                    "bad".to_owned(),
                    Fingerprint {
                        hmac: "zz".into(),
                        len: 1,
                        checksum: false,
                    },
                ),
            ],
        );
        assert_eq!(t.sorted, vec![[1u8; 32], [9u8; 32]]);
        assert_eq!(
            (t.id(0), t.id(1), t.id(2)),
            (Some("kca"), Some("kcb"), None)
        );
        assert_eq!(t.lengths, vec![40]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy");
        t.save(&path).unwrap();
        let back = TeamFingerprints::load(&path).unwrap().unwrap();
        assert_eq!((back.team.as_str(), back.generation), ("team", g));
        assert_eq!(back.sorted, t.sorted);
        assert_eq!((back.id(1), back.lengths.clone()), (Some("kcb"), vec![40]));
        assert_eq!(
            back.fetched_at.unix_timestamp(),
            t.fetched_at.unix_timestamp()
        );
        assert!(!back.too_old(time::OffsetDateTime::now_utc()));
        assert!(back.too_old(time::OffsetDateTime::now_utc() + time::Duration::minutes(11)));

        // Cut short or tampered with: no copy (refreshed), never a wrong one.
        let bytes = std::fs::read(&path).unwrap();
        for cut in [10, MAGIC.len() + 5, bytes.len() - 40, bytes.len() - 1] {
            assert!(TeamFingerprints::parse(&bytes[..cut]).is_none(), "{cut}");
        }
        let empty = TeamFingerprints::build("t".into(), g, []);
        empty.save(&path).unwrap();
        assert!(TeamFingerprints::load(&path).unwrap().unwrap().is_empty());
    }
}
