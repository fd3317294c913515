//! Finding secrets in bytes, fast: one pass over the buffer that splits it into runs of
//! token characters, and only the few runs that can be a secret are looked at closely.
//!
//! - A keyctl secret carries its own checksum (`PREFIX BODY CHECK`, or the 32-character
//!   aksk form), so a run is reported only when the checksum holds: a random string passes
//!   with odds of about 1 in 2^35, which is zero false positives in practice.
//! - A secret keyctl stores without a checksum (an API key minted in Soda Cloud's UI and
//!   imported) is matched by its salted fingerprint ([`super::Known`]): only runs whose
//!   length is the length of such a secret are fingerprinted.
//! - Encoded forms are decoded where they stand and looked at again: a run of base64 (what
//!   `kubectl get secret -o yaml` shows), and a stretch with URL escapes (`%2F`) or JSON
//!   escapes (`\/`, `\u002f`). Only runs long enough to hold a secret are decoded, and
//!   the decoded bytes must still pass the checksum or match a fingerprint.

use zeroize::Zeroizing;

use super::Known;
use crate::key::{AKSK_BODY_LEN, BODY_LEN, CHECK_LEN};

/// A secret found in a buffer: where it starts (byte offset) and how it was recognised.
pub(crate) struct Hit {
    pub start: usize,
    pub len: usize,
    /// The checksum holds (a keyctl secret, known here or not).
    pub checksum: bool,
    /// The salted fingerprint, for the caller to look up.
    pub fingerprint: [u8; 32],
    /// For an encoded secret: the secret decoded (`start..start+len` is its encoded form).
    pub decoded: Option<Zeroizing<Vec<u8>>>,
    /// How it was encoded: `base64`, `url`, `json`.
    pub encoding: Option<&'static str>,
}

impl Hit {
    fn plain(start: usize, len: usize, checksum: bool, fingerprint: [u8; 32]) -> Hit {
        Hit {
            start,
            len,
            checksum,
            fingerprint,
            decoded: None,
            encoding: None,
        }
    }
}

const MAX_PREFIX: usize = 32;

/// Base62 characters, as a table: asked of every byte of every run.
const B62: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    t
};

fn is_b62(b: u8) -> bool {
    B62[b as usize]
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
pub(crate) fn find(buf: &[u8], known: &Known) -> Vec<Hit> {
    find_in(buf, known, 0)
}

/// How many encodings deep a secret is looked for (base64 of a URL-encoded secret: 2).
const MAX_DEPTH: u8 = 2;

fn find_in(buf: &[u8], known: &Known, depth: u8) -> Vec<Hit> {
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
            run(buf, start, end, known, depth, &mut hits);
        }
        done = end;
        j = end + shortest;
    }
    if depth < MAX_DEPTH {
        escaped(buf, known, depth, shortest, &mut hits);
    }
    hits
}

/// Looks at one run `buf[start..end]`.
fn run(buf: &[u8], start: usize, end: usize, known: &Known, depth: u8, hits: &mut Vec<Hit>) {
    let before = hits.len();
    standard(buf, start, end, known, hits);
    aksk(buf, start, end, known, hits);
    if hits.len() == before && known.has_lengths() {
        fingerprinted(buf, start, end, known, hits);
    }
    if hits.len() == before && depth < MAX_DEPTH {
        base64(buf, start, end, known, depth, hits);
    }
}

/// The 6-bit value of a base64 character, standard or URL-safe alphabet.
fn b64_value(b: u8) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    })
}

/// A run that is base64 (from its start, or from after a `key=`), decoded and looked at
/// again: a secret inside is reported where the base64 stands.
fn base64(buf: &[u8], start: usize, end: usize, known: &Known, depth: u8, hits: &mut Vec<Hit>) {
    // 4 characters per 3 bytes: nothing shorter can hold the shortest secret.
    let shortest = (AKSK_BODY_LEN + CHECK_LEN).min(known.shortest());
    let min = (shortest * 4).div_ceil(3);
    if end - start < min {
        return;
    }
    // Runs are made of token characters, of which only `.`, `~` and `=` are not base64:
    // both searches are memchr's (many bytes at a time), not a loop per byte.
    let starts = std::iter::once(start).chain(
        memchr::memchr_iter(b'=', &buf[start..end])
            .map(|p| start + p)
            .filter(|&p| p + 1 < end && buf[p + 1] != b'=')
            .map(|p| p + 1),
    );
    for s in starts {
        let stop = memchr::memchr3(b'.', b'~', b'=', &buf[s..end]).map_or(end, |p| s + p);
        debug_assert!(buf[s..stop].iter().all(|&b| b64_value(b).is_some()));
        let mut enc = stop;
        while enc < end && buf[enc] == b'=' {
            enc += 1;
        }
        if stop - s < min || !decodes_to_token_run(&buf[s..stop], shortest) {
            continue;
        }
        let mut out = Zeroizing::new(Vec::with_capacity((stop - s) / 4 * 3 + 3));
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in &buf[s..stop] {
            acc = (acc << 6) | u32::from(b64_value(b).unwrap_or(0));
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        let inner = find_in(&out, known, depth + 1);
        if let Some(h) = inner.into_iter().next() {
            hits.push(encoded(h, &out, s, enc - s, "base64"));
            return;
        }
    }
}

/// Whether base64 `text` decodes to a run of at least `shortest` token characters (what
/// any secret is): checked while decoding, with nothing kept, so the base64 that fills
/// lock files and manifests (random bytes once decoded) costs one pass and no allocation.
fn decodes_to_token_run(text: &[u8], shortest: usize) -> bool {
    // A run of `shortest` decoded token bytes holds at least `(shortest - 2) / 3` whole
    // groups (4 characters, 3 bytes) in a row, so one group of every that many decodes to 3
    // token bytes: most random base64 is turned away having decoded only those groups.
    let step = (shortest.saturating_sub(2) / 3).max(1);
    let tok = |i: usize| {
        let v: u32 = text[4 * i..4 * i + 4]
            .iter()
            .fold(0, |a, &b| (a << 6) | u32::from(b64_value(b).unwrap_or(0)));
        is_token((v >> 16) as u8) && is_token((v >> 8) as u8) && is_token(v as u8)
    };
    // Those `step` groups in a row hold one of the groups sampled here (every `step`th);
    // where a sampled one decodes to token bytes, its neighbours tell at once whether
    // `step` of them stand in a row. Random base64 (a token group once in 64) stops at
    // the sample, so a lock file's hashes cost a group in every `step`.
    let groups = text.len() / 4;
    let mut i = step - 1;
    let mut candidate = false;
    while i < groups {
        if !tok(i) {
            i += step;
            continue;
        }
        let mut lo = i;
        while lo > 0 && tok(lo - 1) {
            lo -= 1;
        }
        let mut hi = i + 1;
        while hi < groups && tok(hi) {
            hi += 1;
        }
        if hi - lo >= step {
            candidate = true;
            break;
        }
        // Group `hi` is not a token group: the next row of `step` starts after it.
        i = hi + step;
    }
    if !candidate {
        return false;
    }
    let (mut acc, mut bits, mut streak) = (0u32, 0u32, 0usize);
    for &b in text {
        acc = (acc << 6) | u32::from(b64_value(b).unwrap_or(0));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            if is_token((acc >> bits) as u8) {
                streak += 1;
                if streak >= shortest {
                    return true;
                }
            } else {
                streak = 0;
            }
            acc &= (1 << bits) - 1;
        }
    }
    false
}

/// A hit found in decoded bytes, reported where the encoded form stands.
fn encoded(h: Hit, decoded: &[u8], start: usize, len: usize, how: &'static str) -> Hit {
    let secret = match &h.decoded {
        Some(d) => d.clone(),
        None => Zeroizing::new(decoded[h.start..h.start + h.len].to_vec()),
    };
    Hit {
        start,
        len,
        checksum: h.checksum,
        fingerprint: h.fingerprint,
        decoded: Some(secret),
        encoding: Some(h.encoding.unwrap_or(how)),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Stretches with URL escapes (`%2F`) or JSON escapes (`\/`, `\u002F`) in them: each is
/// decoded and looked at again. Found by a fast search for `%` and `\\`, so text without
/// them costs nothing more.
fn escaped(buf: &[u8], known: &Known, depth: u8, shortest: usize, hits: &mut Vec<Hit>) {
    let part = |b: u8| is_token(b) || b == b'%' || b == b'\\';
    let mut covered = 0;
    let plain = hits.len();
    for p in memchr::memchr2_iter(b'%', b'\\', buf) {
        if p < covered {
            continue;
        }
        let mut start = p;
        while start > covered && part(buf[start - 1]) {
            start -= 1;
        }
        let mut end = p + 1;
        while end < buf.len() && part(buf[end]) {
            end += 1;
        }
        covered = end;
        if end - start < shortest {
            continue;
        }
        let window = &buf[start..end];
        let mut out = Zeroizing::new(Vec::with_capacity(window.len()));
        let (mut i, mut how) = (0, None);
        while i < window.len() {
            let b = window[i];
            let h2 = |k: usize| Some(hex(*window.get(k)?)? * 16 + hex(*window.get(k + 1)?)?);
            if b == b'%'
                && let Some(v) = h2(i + 1)
            {
                out.push(v);
                how = Some("url");
                i += 3;
            } else if b == b'\\' && window.get(i + 1) == Some(&b'/') {
                out.push(b'/');
                how = Some("json");
                i += 2;
            } else if b == b'\\'
                && window.get(i + 1) == Some(&b'u')
                && window.get(i + 2..i + 4) == Some(b"00")
                && let Some(v) = h2(i + 4)
            {
                out.push(v);
                how = Some("json");
                i += 6;
            } else {
                out.push(b);
                i += 1;
            }
        }
        let Some(how) = how else { continue };
        for h in find_in(&out, known, depth + 1) {
            // Already found as is (an escape elsewhere in the stretch)?
            let dup = hits[..plain]
                .iter()
                .any(|x| x.start >= start && x.start < end && x.fingerprint == h.fingerprint);
            if !dup {
                hits.push(encoded(h, &out, start, end - start, how));
            }
        }
    }
    if hits.len() > plain {
        hits.sort_by_key(|h| h.start);
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
        // The next separator, found many bytes at a time.
        match memchr::memchr2(b'_', b'-', &buf[sep..end - tail]) {
            Some(p) => sep += p,
            None => break,
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
                hits.push(Hit::plain(
                    p,
                    stop - p,
                    true,
                    known.fingerprint(&buf[p..stop]),
                ));
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
        i += 1;
        while i < end && is_b62(buf[i]) {
            i += 1;
        }
        if i - s == want && checksum_holds(&buf[s..i]) {
            hits.push(Hit::plain(s, want, true, known.fingerprint(&buf[s..i])));
        }
    }
}

/// A secret with no checksum: the rest of the run from its start or from after an `=`
/// (`SODA_API_KEY_SECRET=...`), when that is exactly a known secret's length. At most a
/// few fingerprints per run, and none for a run of another length.
fn fingerprinted(buf: &[u8], start: usize, end: usize, known: &Known, hits: &mut Vec<Hit>) {
    let starts = std::iter::once(start)
        .chain(memchr::memchr_iter(b'=', &buf[start..end]).map(|p| start + p + 1));
    for s in starts {
        let len = end - s;
        if !known.lengths().any(|l| l == len) {
            continue;
        }
        let fp = known.fingerprint(&buf[s..end]);
        if known.contains(&fp) {
            hits.push(Hit::plain(s, len, false, fp));
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
