//! Finding secrets in bytes, fast: one pass over the buffer that splits it into runs of
//! token characters, and only the few runs that can be a secret are looked at closely.
//!
//! - A keyctl secret carries its own checksum (`PREFIX BODY CHECK`, or the 32-character
//!   aksk form), so a run is reported only when the checksum holds: a random string passes
//!   with odds of about 1 in 2^35, which is zero false positives in practice.
//! - A secret keyctl stores without a checksum (an API key minted in Soda Cloud's UI and
//!   imported) is matched by its salted fingerprint ([`super::Known`]): only runs whose
//!   length is the length of such a secret are fingerprinted.

use zeroize::Zeroizing;

use super::Known;
use crate::key::{AKSK_BODY_LEN, BODY_LEN, CHECK_LEN};

/// A secret found in a buffer: where it starts (byte offset) and how it was recognised.
pub struct Hit {
    pub start: usize,
    pub len: usize,
    /// The checksum holds (a keyctl secret, known here or not).
    pub checksum: bool,
    /// The salted fingerprint, for the caller to look up.
    pub fingerprint: [u8; 32],
}

const MAX_PREFIX: usize = 32;

fn is_b62(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Characters a secret (and its prefix) is made of: a run of them is one candidate. A
/// table, since this is asked of every byte looked at.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'_' | b'-' | b'+' | b'/' | b'=' | b'.' | b'~');
        b += 1;
    }
    t
};

fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Every secret in `buf`, in order.
///
/// No candidate is shorter than `shortest`, so only every `shortest`-th byte is looked at
/// first: a run that long must contain one of them. Where a sampled byte is a token
/// character, its run is found by expanding both ways; most text is skipped unread.
pub fn find(buf: &[u8], known: &Known) -> Vec<Hit> {
    let mut hits = Vec::new();
    let shortest = (AKSK_BODY_LEN + CHECK_LEN).min(known.shortest()).max(1);
    let n = buf.len();
    // Everything before `done` has been looked at.
    let mut done = 0;
    let mut j = shortest - 1;
    while j < n {
        if !is_token(buf[j]) {
            j += shortest;
            continue;
        }
        let mut start = j;
        while start > done && is_token(buf[start - 1]) {
            start -= 1;
        }
        let mut end = j + 1;
        while end < n && is_token(buf[end]) {
            end += 1;
        }
        if end - start >= shortest {
            run(buf, start, end, known, &mut hits);
        }
        done = end;
        j = end + shortest;
    }
    hits
}

/// Looks at one run `buf[start..end]`.
fn run(buf: &[u8], start: usize, end: usize, known: &Known, hits: &mut Vec<Hit>) {
    let before = hits.len();
    standard(buf, start, end, known, hits);
    aksk(buf, start, end, known, hits);
    if hits.len() == before && known.has_lengths() {
        fingerprinted(buf, start, end, known, hits);
    }
}

/// `PREFIX BODY CHECK`: a separator (`_` or `-`) followed by 49 base62 characters that end
/// the alphanumeric stretch, and a prefix of up to 32 characters before it.
fn standard(buf: &[u8], start: usize, end: usize, known: &Known, hits: &mut Vec<Hit>) {
    let tail = BODY_LEN + CHECK_LEN;
    if end - start <= tail {
        return;
    }
    let mut sep = start;
    while sep + 1 + tail <= end {
        if !matches!(buf[sep], b'_' | b'-') {
            sep += 1;
            continue;
        }
        let stop = sep + 1 + tail;
        let body_ok =
            buf[sep + 1..stop].iter().all(|&b| is_b62(b)) && (stop == end || !is_b62(buf[stop]));
        if body_ok {
            let first = (sep + 1).saturating_sub(MAX_PREFIX).max(start);
            // The prefix's start is unknown (`MY_kca_...`): the checksum decides.
            let found = (first..=sep).find(|&p| {
                buf[p..=sep]
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
                    && checksum_holds(&buf[p..stop])
            });
            if let Some(p) = found {
                hits.push(Hit {
                    start: p,
                    len: stop - p,
                    checksum: true,
                    fingerprint: known.fingerprint(&buf[p..stop]),
                });
                sep = stop;
                continue;
            }
        }
        sep += 1;
    }
}

/// A stretch of exactly 32 alphanumerics whose last 6 are the checksum of the first 26.
fn aksk(buf: &[u8], start: usize, end: usize, known: &Known, hits: &mut Vec<Hit>) {
    let want = AKSK_BODY_LEN + CHECK_LEN;
    let mut i = start;
    while i < end {
        if !is_b62(buf[i]) {
            i += 1;
            continue;
        }
        let s = i;
        while i < end && is_b62(buf[i]) {
            i += 1;
        }
        if i - s == want && checksum_holds(&buf[s..i]) {
            hits.push(Hit {
                start: s,
                len: want,
                checksum: true,
                fingerprint: known.fingerprint(&buf[s..i]),
            });
        }
    }
}

/// A secret with no checksum: the rest of the run from its start or from after an `=`
/// (`SODA_API_KEY_SECRET=...`), when that is exactly a known secret's length. At most a
/// few fingerprints per run, and none for a run of another length.
fn fingerprinted(buf: &[u8], start: usize, end: usize, known: &Known, hits: &mut Vec<Hit>) {
    let starts =
        std::iter::once(start).chain((start..end).filter(|&p| buf[p] == b'=').map(|p| p + 1));
    for s in starts {
        let len = end - s;
        if !known.lengths().any(|l| l == len) {
            continue;
        }
        let fp = known.fingerprint(&buf[s..end]);
        if known.contains(&fp) {
            hits.push(Hit {
                start: s,
                len,
                checksum: false,
                fingerprint: fp,
            });
            return;
        }
    }
}

/// The cheap CRC test first (millions of candidates), the full rules only on a match.
fn checksum_holds(candidate: &[u8]) -> bool {
    if !crate::key::checksum_valid(candidate) {
        return false;
    }
    // ASCII by construction (token characters only).
    let text = Zeroizing::new(String::from_utf8_lossy(candidate).into_owned());
    crate::key::check(&text).is_ok()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::key::{Format, mint};

    fn known() -> Known {
        Known::new([7u8; 32])
    }

    #[test]
    fn minted_secrets_are_found_where_they_stand() {
        let k = known();
        let a = mint(Format::Standard, "kca_");
        let b = mint(Format::Aksk, "");
        let c = mint(Format::Standard, "acme-prod_");
        let text = format!(
            "soda_cloud:\n  api_key_secret: \"{}\"\nAK={} x\n{}\n",
            a.secret.expose_secret(),
            b.secret.expose_secret(),
            c.secret.expose_secret()
        );
        let hits = find(text.as_bytes(), &k);
        let got: Vec<&str> = hits
            .iter()
            .map(|h| &text[h.start..h.start + h.len])
            .collect();
        assert_eq!(
            got,
            [
                a.secret.expose_secret(),
                b.secret.expose_secret(),
                c.secret.expose_secret()
            ]
        );
        assert!(hits.iter().all(|h| h.checksum));
    }

    #[test]
    fn a_broken_checksum_or_random_text_is_never_reported() {
        let k = known();
        let a = mint(Format::Standard, "kca_");
        let mut broken = a.secret.expose_secret().to_string();
        let last = broken.pop().unwrap();
        broken.push(if last == 'a' { 'b' } else { 'a' });
        assert!(find(broken.as_bytes(), &k).is_empty());
        // Megabytes of random base62, base64 and prefixed look-alikes.
        let mut text = String::new();
        for i in 0..20_000 {
            let m = mint(Format::Standard, "kca_");
            let s = m.secret.expose_secret();
            // Drop the last check character: same shape, wrong checksum.
            text.push_str(&format!("kca_{} {}\n", &s[4..s.len() - 1], i));
            text.push_str(&s[4..36]);
            text.push('\n');
        }
        assert!(find(text.as_bytes(), &k).is_empty());
    }

    #[test]
    fn an_imported_secret_is_found_by_its_fingerprint_only() {
        let mut k = known();
        let secret = "Zx9-pQ7/aB3=cD4+eF5.gH6~iJ7kL8mN";
        k.insert(secret.as_bytes(), 1);
        for text in [
            format!("api_key_secret: {secret}\n"),
            format!("SODA_API_KEY_SECRET={secret}\n"),
            format!("\"secret\":\"{secret}\""),
        ] {
            let hits = find(text.as_bytes(), &k);
            assert_eq!(hits.len(), 1, "{text}");
            assert_eq!(&text[hits[0].start..hits[0].start + hits[0].len], secret);
            assert!(!hits[0].checksum);
        }
        // A different string of the same length is not.
        assert!(find(b"api_key_secret: Zx9-pQ7/aB3=cD4+eF5.gH6~iJ7kL8mX\n", &k).is_empty());
    }
}
