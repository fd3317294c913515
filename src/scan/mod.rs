//! `keyctl scan`'s engine: find leaked keys in files and git history, and say which key
//! each is. Secret scanners (gitleaks, trufflehog, detect-secrets) find strings that look
//! like secrets; keyctl can do better because its secrets carry a checksum (zero false
//! positives, [`detect`]) and it knows every key it stores.
//!
//! Keys are known by a salted fingerprint, HMAC-SHA256 under a random per-home salt, kept
//! in the registry next to the key's metadata; the secret itself never is. That is safe to
//! keep because the secrets are high-entropy: a keyctl secret has 256 random bits (aksk:
//! 154), so finding the secret from its fingerprint means searching 2^154 or more
//! candidates, far beyond reach, and a secret a service minted (imported) is of the same
//! kind. The salt makes fingerprints useless outside this home: they cannot be compared
//! across machines or against a precomputed table. It is the same idea as GitHub's
//! secret scanning, which keeps hashes of issued tokens rather than the tokens. (A
//! low-entropy password would not be safe to fingerprint; keyctl stores none.)
//!
//! The engine takes plain values (paths, options, the fingerprints) and returns findings
//! with the secret already masked; `commands::scan` turns them into a report.

pub(crate) mod detect;
pub(crate) mod git;
pub(crate) mod report;
pub(crate) mod walk;

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The fingerprints of the secrets this home knows, and the lengths of those that carry
/// no checksum (only runs of those lengths are fingerprinted).
pub(crate) struct Known {
    salt: [u8; 32],
    keys: HashMap<[u8; 32], usize>,
    /// Fingerprints under other salts (the team store's), as sorted tables.
    tables: Vec<Table>,
    lengths: Vec<usize>,
}

/// Fingerprints under one salt, sorted, the key of entry `i` being `base + i`: a team's
/// tens of thousands, searched where they lie. A scan usually looks up a handful of
/// secrets, each of which visits ~16 entries; reading all of them (and the memory to hold
/// them) would cost more than the rest of a small scan. Past [`PROBED_LOOKUPS`] lookups
/// the table is read whole once, which is then cheaper.
struct Table {
    salt: [u8; 32],
    base: usize,
    source: Box<dyn SortedFingerprints>,
    lookups: AtomicUsize,
    whole: OnceLock<Option<Vec<[u8; 32]>>>,
    /// An entry could not be read, or entries were out of order: keys may have been missed.
    broken: AtomicBool,
}

/// Lookups answered entry by entry before a table is read whole.
const PROBED_LOOKUPS: usize = 16;

/// Where a table's fingerprints lie (the team's copy in a file).
pub(crate) trait SortedFingerprints: Send + Sync {
    fn count(&self) -> usize;
    /// Entry `i`; None when it cannot be read.
    fn get(&self, i: usize) -> Option<[u8; 32]>;
    /// Every entry; None when they cannot be read whole, or are out of order.
    fn all(&self) -> Option<Vec<[u8; 32]>>;
}

impl Table {
    fn find(&self, fp: &[u8; 32]) -> Option<usize> {
        let found = if self.whole.get().is_some()
            || self.lookups.fetch_add(1, Ordering::Relaxed) >= PROBED_LOOKUPS
        {
            match self.whole.get_or_init(|| self.source.all()) {
                Some(sorted) => sorted.binary_search(fp).ok(),
                None => {
                    self.broken.store(true, Ordering::Relaxed);
                    None
                }
            }
        } else {
            self.probe(fp)
        };
        found.map(|i| self.base + i)
    }

    /// A binary search that reads only the entries it visits, each checked against the
    /// order of those visited before it.
    fn probe(&self, fp: &[u8; 32]) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.source.count());
        let (mut floor, mut ceiling): (Option<[u8; 32]>, Option<[u8; 32]>) = (None, None);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let in_order =
                |e: &[u8; 32]| floor.is_none_or(|f| *e >= f) && ceiling.is_none_or(|c| *e <= c);
            let Some(e) = self.source.get(mid).filter(in_order) else {
                self.broken.store(true, Ordering::Relaxed);
                return None;
            };
            match e.cmp(fp) {
                std::cmp::Ordering::Less => (lo, floor) = (mid + 1, Some(e)),
                std::cmp::Ordering::Greater => (hi, ceiling) = (mid, Some(e)),
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

impl Known {
    pub(crate) fn new(salt: [u8; 32]) -> Known {
        Known {
            salt,
            keys: HashMap::new(),
            tables: Vec::new(),
            lengths: Vec::new(),
        }
    }

    /// The fingerprint of `secret` under this home's salt, or under a table's salt where
    /// that one names a known key.
    pub(crate) fn fingerprint(&self, secret: &[u8]) -> [u8; 32] {
        let fp = fingerprint(&self.salt, secret);
        if self.tables.is_empty() || self.keys.contains_key(&fp) {
            return fp;
        }
        self.tables
            .iter()
            .map(|t| fingerprint(&t.salt, secret))
            .find(|f| self.contains(f))
            .unwrap_or(fp)
    }

    /// Fingerprints under `salt`, sorted ascending as `source` holds them, entry `i` naming
    /// key `base + i`; `lengths` are those of the secrets among them without a checksum.
    pub(crate) fn add_table(
        &mut self,
        salt: [u8; 32],
        base: usize,
        lengths: &[usize],
        source: Box<dyn SortedFingerprints>,
    ) {
        self.tables.push(Table {
            salt,
            base,
            source,
            lookups: AtomicUsize::new(0),
            whole: OnceLock::new(),
            broken: AtomicBool::new(false),
        });
        for &len in lengths {
            self.add_length(len);
        }
    }

    /// False when a lookup met a table it could not read (or out of order): its keys
    /// may have been missed.
    pub(crate) fn intact(&self) -> bool {
        self.tables
            .iter()
            .all(|t| !t.broken.load(Ordering::Relaxed))
    }

    /// Adds a key by its secret (while it is at hand): `key` is the caller's index.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, secret: &[u8], key: usize) {
        let fp = fingerprint(&self.salt, secret);
        let checksummed = std::str::from_utf8(secret).is_ok_and(crate::key::looks_like_secret);
        self.add(fp, secret.len(), !checksummed, key);
    }

    /// Adds a key by a stored fingerprint; `needs_length` for a secret without a checksum.
    pub(crate) fn add(&mut self, fp: [u8; 32], len: usize, needs_length: bool, key: usize) {
        self.keys.insert(fp, key);
        if needs_length {
            self.add_length(len);
        }
    }

    fn add_length(&mut self, len: usize) {
        if !self.lengths.contains(&len) {
            self.lengths.push(len);
            self.lengths.sort_unstable();
        }
    }

    pub(crate) fn lookup(&self, fp: &[u8; 32]) -> Option<usize> {
        self.keys
            .get(fp)
            .copied()
            .or_else(|| self.tables.iter().find_map(|t| t.find(fp)))
    }

    fn contains(&self, fp: &[u8; 32]) -> bool {
        self.lookup(fp).is_some()
    }

    fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.lengths.iter().copied()
    }

    fn has_lengths(&self) -> bool {
        !self.lengths.is_empty()
    }

    fn shortest(&self) -> usize {
        self.lengths.first().copied().unwrap_or(usize::MAX)
    }
}

// The fingerprint belongs to the key (the registry and the team store record it); scan
// only looks it up.
pub(crate) use crate::key::{fingerprint, from_hex};

/// One leaked secret, never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Finding {
    /// The file (relative to where the walk started, or the path in the repository).
    pub path: String,
    /// 1-based line and column (bytes).
    pub line: usize,
    pub col: usize,
    /// The commit that added it, for history scans.
    pub commit: Option<String>,
    /// The keyctl prefix (or nothing), an ellipsis and the last 4 characters.
    pub masked: String,
    /// The caller's index of the key it is, when known.
    pub key: Option<usize>,
    /// Recognised by its checksum (else by its fingerprint).
    pub checksum: bool,
    /// How the secret was written, when not as is: `base64`, `url`, `json`.
    pub encoding: Option<&'static str>,
}

/// Why a file or blob was not scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Over `--max-size`.
    TooLarge,
    /// Left out by `.gitignore`, `.ignore` or git's excludes.
    Ignored,
    /// A NUL in its first 8 KiB, with no UTF-16 byte-order mark.
    Binary,
    /// A text encoding keyctl does not read (UTF-32).
    Encoding,
    /// Not a regular file (a FIFO, a device) at the time it was opened.
    NotRegular,
    /// A partial clone's object that is not here (never fetched by a scan).
    Missing,
    /// Could not be read, with why.
    Unreadable(String),
}

impl Skip {
    /// The summary's word for it.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Skip::TooLarge => "too large",
            Skip::Ignored => "ignored",
            Skip::Binary => "binary",
            Skip::Encoding => "encoding",
            Skip::NotRegular => "not a regular file",
            Skip::Missing => "not in the repository (partial clone)",
            Skip::Unreadable(_) => "unreadable",
        }
    }
}

/// What a scan found, and what it passed over.
#[derive(Default)]
pub(crate) struct Scanned {
    pub findings: Vec<Finding>,
    /// Files (or blobs) scanned, and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// Each file passed over, with why (for the summary and `-v`).
    pub skipped: Vec<(String, Skip)>,
}

impl Scanned {
    pub(crate) fn skip(&mut self, path: String, why: Skip) {
        self.skipped.push((path, why));
    }

    pub(crate) fn merge(&mut self, other: Scanned) {
        self.findings.extend(other.findings);
        self.files += other.files;
        self.bytes += other.bytes;
        self.skipped.extend(other.skipped);
    }
}

/// Findings in one file's or blob's bytes (within the size limit): UTF-8 and other
/// ASCII-compatible text as is, UTF-16 (with its byte-order mark, what Windows PowerShell 5
/// writes for `>`) decoded first; binary and UTF-32 passed over, with why.
pub(crate) fn scan_text(
    buf: &[u8],
    known: &Known,
    path: &str,
    commit: Option<&str>,
) -> Result<Vec<Finding>, Skip> {
    let utf16 = match buf {
        [0xFF, 0xFE, 0, 0, ..] | [0, 0, 0xFE, 0xFF, ..] => return Err(Skip::Encoding),
        [0xFF, 0xFE, ..] => Some(false),
        [0xFE, 0xFF, ..] => Some(true),
        _ => None,
    };
    match utf16 {
        Some(big_endian) => {
            let units = buf[2..].chunks_exact(2).map(|c| {
                if big_endian {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            });
            let text: zeroize::Zeroizing<String> = zeroize::Zeroizing::new(
                char::decode_utf16(units)
                    .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                    .collect(),
            );
            Ok(scan_buffer(text.as_bytes(), known, path, commit))
        }
        None if buf[..buf.len().min(8192)].contains(&0) => Err(Skip::Binary),
        None => Ok(scan_buffer(buf, known, path, commit)),
    }
}

/// Findings in one buffer (a file or a blob).
pub(crate) fn scan_buffer(
    buf: &[u8],
    known: &Known,
    path: &str,
    commit: Option<&str>,
) -> Vec<Finding> {
    let hits = detect::find(buf, known);
    let mut out = Vec::with_capacity(hits.len());
    let (mut line, mut line_start, mut pos) = (1usize, 0usize, 0usize);
    for h in hits {
        for (i, &b) in buf[pos..h.start].iter().enumerate() {
            if b == b'\n' {
                line += 1;
                line_start = pos + i + 1;
            }
        }
        pos = h.start;
        let secret = h
            .decoded
            .as_deref()
            .map_or(&buf[h.start..h.start + h.len], |d| d);
        out.push(Finding {
            path: path.to_string(),
            line,
            col: h.start - line_start + 1,
            commit: commit.map(str::to_owned),
            masked: mask(secret, h.checksum),
            key: known.lookup(&h.fingerprint),
            checksum: h.checksum,
            encoding: h.encoding,
        });
    }
    out
}

/// `kca_…Ab3x`: the prefix of a standard keyctl secret (what kind of key it is) and the
/// last 4 characters (to tell keys apart) of a secret of at least
/// [`crate::registry::MIN_FINGERPRINT_LEN`] characters; nothing else.
pub(crate) fn mask(secret: &[u8], checksum: bool) -> String {
    let text = String::from_utf8_lossy(secret);
    // The last 4 characters only of a secret long enough that they give little away.
    let shown = if text.chars().count() >= crate::registry::MIN_FINGERPRINT_LEN {
        4
    } else {
        0
    };
    let last: String = text
        .chars()
        .rev()
        .take(shown)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let prefix = if checksum {
        crate::key::check(&text)
            .map(|r| r.prefix)
            .unwrap_or_default()
    } else {
        String::new()
    };
    format!("{prefix}…{last}")
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::key::{Format, mint};

    #[test]
    fn findings_say_where_and_whose_and_never_the_secret() {
        let mut k = Known::new([1u8; 32]);
        let a = mint(Format::Standard, "kca_");
        k.insert(a.secret.expose_secret().as_bytes(), 0);
        let stranger = mint(Format::Standard, "kcr_");
        let text = format!(
            "x\n  secret: {}\n\ny = \"{}\"\n",
            a.secret.expose_secret(),
            stranger.secret.expose_secret()
        );
        let f = scan_buffer(text.as_bytes(), &k, "c.yml", None);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].line, f[0].col, f[0].key), (2, 11, Some(0)));
        assert_eq!((f[1].line, f[1].col, f[1].key), (4, 6, None));
        let s = a.secret.expose_secret();
        assert_eq!(f[0].masked, format!("kca_…{}", &s[s.len() - 4..]));
        assert!(f[1].masked.starts_with("kcr_…"));
        for x in &f {
            assert!(x.masked.chars().count() <= 4 + 1 + 4, "{}", x.masked);
        }
    }

    /// A table in memory that counts how it is read; `unreadable` fails every read.
    struct Counted {
        sorted: Vec<[u8; 32]>,
        unreadable: bool,
        gets: AtomicUsize,
        alls: AtomicUsize,
    }

    impl Counted {
        fn new(sorted: Vec<[u8; 32]>, unreadable: bool) -> std::sync::Arc<Counted> {
            std::sync::Arc::new(Counted {
                sorted,
                unreadable,
                gets: AtomicUsize::new(0),
                alls: AtomicUsize::new(0),
            })
        }
    }

    impl SortedFingerprints for std::sync::Arc<Counted> {
        fn count(&self) -> usize {
            self.sorted.len()
        }
        fn get(&self, i: usize) -> Option<[u8; 32]> {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.sorted.get(i).copied().filter(|_| !self.unreadable)
        }
        fn all(&self) -> Option<Vec<[u8; 32]>> {
            self.alls.fetch_add(1, Ordering::Relaxed);
            (!self.unreadable && self.sorted.is_sorted()).then(|| self.sorted.clone())
        }
    }

    #[test]
    fn a_table_under_another_salt_names_its_keys_and_an_unreadable_one_says_so() {
        let team = [2u8; 32];
        let a = mint(Format::Standard, "kca_");
        let b = mint(Format::Standard, "kca_");
        let mut sorted = vec![
            fingerprint(&team, a.secret.expose_secret().as_bytes()),
            fingerprint(&team, b.secret.expose_secret().as_bytes()),
        ];
        sorted.sort_unstable();
        let b_at = sorted
            .iter()
            .position(|f| *f == fingerprint(&team, b.secret.expose_secret().as_bytes()))
            .unwrap();
        let mut k = Known::new([1u8; 32]);
        let table = Counted::new(sorted, false);
        k.add_table(team, 5, &[], Box::new(table.clone()));
        let text = format!("x = {}\n", b.secret.expose_secret());
        let f = scan_buffer(text.as_bytes(), &k, "t", None);
        assert_eq!(f[0].key, Some(5 + b_at));
        assert!(k.intact());
        // Found where it lies: the table was not read whole.
        assert_eq!(table.alls.load(Ordering::Relaxed), 0);

        let mut broken = Known::new([1u8; 32]);
        broken.add_table(team, 0, &[], Box::new(Counted::new(vec![[0; 32]], true)));
        let f = scan_buffer(text.as_bytes(), &broken, "t", None);
        assert_eq!(f[0].key, None);
        assert!(!broken.intact());
    }

    #[test]
    fn a_large_table_is_searched_entry_by_entry_then_read_whole_once_lookups_are_many() {
        let mut sorted: Vec<[u8; 32]> = (0..10_000u32)
            .map(|i| fingerprint(&[3u8; 32], &i.to_le_bytes()))
            .collect();
        sorted.sort_unstable();
        let table = Counted::new(sorted.clone(), false);
        let mut k = Known::new([1u8; 32]);
        k.add_table([3u8; 32], 2, &[], Box::new(table.clone()));
        for (n, i) in (0..sorted.len()).step_by(97).enumerate() {
            assert_eq!(k.lookup(&sorted[i]), Some(2 + i), "entry {i}");
            let missing = fingerprint(&[4u8; 32], &i.to_le_bytes());
            assert_eq!(k.lookup(&missing), None);
            let (gets, alls) = (
                table.gets.load(Ordering::Relaxed),
                table.alls.load(Ordering::Relaxed),
            );
            if 2 * (n + 1) <= PROBED_LOOKUPS {
                // ~log2(10,000) entries a lookup, never the whole table.
                assert!(gets <= 2 * (n + 1) * 15 && alls == 0, "{gets} {alls}");
            } else {
                assert_eq!(alls, 1);
            }
        }
        assert!(k.intact());
    }

    #[test]
    fn a_table_out_of_order_is_not_trusted_whether_searched_or_read_whole() {
        let mut sorted: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
        sorted.swap(31, 32);
        let mut k = Known::new([1u8; 32]);
        k.add_table(
            [3u8; 32],
            0,
            &[],
            Box::new(Counted::new(sorted.clone(), false)),
        );
        // Just below [31; 32]: the search visits entry 32 (holding [31; 32]), goes below
        // it and reaches entry 31, which holds [32; 32]: out of order.
        let mut below = [31u8; 32];
        below[31] = 30;
        assert_eq!(k.lookup(&below), None);
        assert!(!k.intact());

        let mut whole = Known::new([1u8; 32]);
        whole.add_table([3u8; 32], 0, &[], Box::new(Counted::new(sorted, false)));
        for _ in 0..=PROBED_LOOKUPS {
            whole.lookup(&[7u8; 32]);
        }
        assert!(!whole.intact());
    }

    #[test]
    fn hex_round_trips() {
        let fp = fingerprint(&[9u8; 32], b"s");
        assert_eq!(from_hex(&crate::key::to_hex(&fp)), Some(fp));
        assert_eq!(from_hex("zz"), None);
    }
}
