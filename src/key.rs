//! What a key is: its kinds and secret formats, how IDs and secrets are minted, and the
//! offline checksum that lets `keyctl check` and secret scanners recognise a secret.
//!
//! Secret layout (standard format): `PREFIX BODY CHECK`, where BODY is 43 base62
//! characters from the OS CSPRNG (256 bits) and CHECK is the CRC32 of `PREFIX BODY`
//! written as 6 base62 characters, the way GitHub tokens carry theirs. The prefix ends in
//! `_`, which is not a base62 character, so a double click selects the whole secret and a
//! scanner can anchor on it. The `aksk` format is the 16/32 character shape SODA
//! Multicloud wants: a 16-character access key (the key ID) and a 32-character secret
//! (26 random base62 characters, 154 bits, plus the same 6-character check).

use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::usage;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// 43 base62 characters carry 256.0 bits.
pub(crate) const BODY_LEN: usize = 43;
pub(crate) const AKSK_BODY_LEN: usize = 26;
pub(crate) const CHECK_LEN: usize = 6;

/// What the key is for: it decides the default prefix and the snippet `config` renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A Soda Cloud API key for Soda Core / Soda Library.
    Api,
    /// The API key of a self-hosted Soda Runner (formerly "Agent").
    Runner,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Api => "api",
            Kind::Runner => "runner",
        }
    }

    pub fn default_prefix(self) -> &'static str {
        match self {
            Kind::Api => "kca_",
            Kind::Runner => "kcr_",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The shape of the ID/secret pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Prefixed, 256-bit, checksummed secret; `kc` + 18 base32 characters as the ID.
    #[default]
    Standard,
    /// 16-character access key as the ID, 32-character secret.
    Aksk,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Standard => "standard",
            Format::Aksk => "aksk",
        }
    }
}

/// A freshly minted pair. The secret only ever lives in a [`SecretString`].
pub(crate) struct Minted {
    pub id: String,
    pub secret: SecretString,
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    // Rejection sampling keeps every character uniform: bytes at or above the largest
    // multiple of the alphabet size are thrown away.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(n);
    let mut buf = zeroize::Zeroizing::new([0u8; 64]);
    while out.len() < n {
        SysRng
            .try_fill_bytes(&mut buf[..])
            .expect("the OS random number generator failed");
        for &b in buf.iter() {
            if (b as usize) < limit && out.len() < n {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

fn check_chars(data: &str) -> String {
    let mut v = crc32fast::hash(data.as_bytes()) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

/// True when the last 6 bytes of `candidate` are the base62 CRC-32 of the rest: the
/// check of [`check`] without its other rules and without allocating, for scanners
/// that try millions of candidates.
pub(crate) fn checksum_valid(candidate: &[u8]) -> bool {
    if candidate.len() <= CHECK_LEN {
        return false;
    }
    let (data, check) = candidate.split_at(candidate.len() - CHECK_LEN);
    let mut v = crc32fast::hash(data) as u64;
    for &c in check.iter().rev() {
        if BASE62[(v % 62) as usize] != c {
            return false;
        }
        v /= 62;
    }
    true
}

/// Mints an ID and a secret of the given format. `prefix` is used for the standard
/// format only (the aksk secret has no room for one).
pub(crate) fn mint(format: Format, prefix: &str) -> Minted {
    match format {
        Format::Standard => {
            let id = format!("kc{}", random_from(BASE32_LOWER, 18));
            let mut s = String::with_capacity(prefix.len() + BODY_LEN + CHECK_LEN);
            s.push_str(prefix);
            s.push_str(&random_from(BASE62, BODY_LEN));
            let check = check_chars(&s);
            s.push_str(&check);
            Minted {
                id,
                secret: SecretString::from(s),
            }
        }
        Format::Aksk => {
            let id = format!("KC{}", random_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 14));
            let mut s = random_from(BASE62, AKSK_BODY_LEN);
            let check = check_chars(&s);
            s.push_str(&check);
            Minted {
                id,
                secret: SecretString::from(s),
            }
        }
    }
}

/// What `keyctl check` learned about a well-formed secret.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CheckReport {
    pub format: Format,
    /// The prefix, e.g. `kca_` (empty for aksk).
    pub prefix: String,
    /// The kind the prefix stands for, when it is one of keyctl's own.
    pub kind: Option<Kind>,
}

/// Validates a secret offline. The error text describes the problem without repeating
/// any part of the secret.
pub(crate) fn check(secret: &str) -> Result<CheckReport, String> {
    if secret.is_empty() {
        return Err("empty input".into());
    }
    if !secret.is_ascii() || secret.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err("contains characters that no keyctl secret has".into());
    }
    let n = secret.len();
    if n < AKSK_BODY_LEN + CHECK_LEN {
        return Err(format!("too short ({n} characters)"));
    }
    let (data, check) = secret.split_at(n - CHECK_LEN);
    if !check.bytes().all(|b| BASE62.contains(&b)) {
        return Err("the last 6 characters are not a base62 checksum".into());
    }
    if check_chars(data) != check {
        return Err("checksum mismatch: the secret is mistyped, truncated or not keyctl's".into());
    }
    if n == AKSK_BODY_LEN + CHECK_LEN && data.bytes().all(|b| BASE62.contains(&b)) {
        return Ok(CheckReport {
            format: Format::Aksk,
            prefix: String::new(),
            kind: None,
        });
    }
    if data.len() < BODY_LEN
        || !data[data.len() - BODY_LEN..]
            .bytes()
            .all(|b| BASE62.contains(&b))
    {
        return Err("the random part is shorter than 256 bits".into());
    }
    let prefix = data[..data.len() - BODY_LEN].to_string();
    let kind = [Kind::Api, Kind::Runner]
        .into_iter()
        .find(|k| k.default_prefix() == prefix);
    Ok(CheckReport {
        format: Format::Standard,
        prefix,
        kind,
    })
}

/// True when `s` is a well-formed keyctl secret: used to refuse secrets in argv.
pub(crate) fn looks_like_secret(s: &str) -> bool {
    check(s).is_ok()
}

/// True when a keyctl secret stands anywhere inside `s` (`--description "see kca_..."`,
/// `--scope kca_.../x`). Linear in the length of `s`: a standard secret is a prefix
/// ending in `_` or `-` (at most 32 characters) and 49 base62 characters, so only the
/// places after such a separator are tried; an aksk secret is 32 base62 characters
/// standing alone.
pub(crate) fn contains_secret(s: &str) -> bool {
    const MAX_PREFIX: usize = 32;
    let b = s.as_bytes();
    let b62 = |c: &u8| BASE62.contains(c);
    let tail = BODY_LEN + CHECK_LEN;
    for (i, &c) in b.iter().enumerate() {
        if !matches!(c, b'_' | b'-') || i + 1 + tail > b.len() {
            continue;
        }
        let end = i + 1 + tail;
        if !b[i + 1..end].iter().all(b62) {
            continue;
        }
        let first = (i + 1).saturating_sub(MAX_PREFIX);
        for start in first..=i {
            let prefix_ok = b[start..=i]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
            if prefix_ok && check(&s[start..end]).is_ok() {
                return true;
            }
        }
    }
    let short = AKSK_BODY_LEN + CHECK_LEN;
    let alnum = |i: usize| b.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let mut i = 0;
    while i + short <= b.len() {
        if !b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        if j - i == short && (i == 0 || !alnum(i - 1)) && check(&s[i..j]).is_ok() {
            return true;
        }
        i = j;
    }
    false
}

/// Key names: what people type and scripts pass around, so they are kept to characters
/// that need no quoting anywhere and cannot carry terminal escapes.
pub(crate) fn validate_name(name: &str) -> anyhow::Result<()> {
    const MAX: usize = 64;
    if name.is_empty() {
        return Err(usage("invalid name: it is empty"));
    }
    if name.len() > MAX {
        return Err(usage(format!(
            "invalid name: {} characters, at most {MAX} are allowed",
            name.chars().count()
        )));
    }
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(usage(format!(
            "invalid name {}: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            crate::output::quoted(name)
        )));
    }
    Ok(())
}

/// Key IDs given by a service (`keyctl import --id`): opaque, but kept to characters that
/// are safe unquoted in URLs, YAML and shells.
pub(crate) fn validate_id(id: &str) -> anyhow::Result<()> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(usage(format!(
            "invalid key ID {}: 1 to 128 letters, digits, '.', '_' or '-'",
            crate::output::quoted(id)
        )));
    }
    Ok(())
}

pub(crate) fn validate_description(text: &str) -> anyhow::Result<()> {
    const MAX: usize = 1024;
    if text.len() > MAX {
        return Err(usage(format!(
            "description too long: {} bytes, at most {MAX}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(usage(
            "invalid description: control characters (newlines, escapes) are not allowed",
        ));
    }
    Ok(())
}

pub(crate) fn validate_scope(scope: &str) -> anyhow::Result<()> {
    if scope.is_empty()
        || scope.len() > 128
        || !scope
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '*'))
    {
        return Err(usage(format!(
            "invalid scope {}: 1 to 128 letters, digits or . _ - : / *",
            crate::output::quoted(scope)
        )));
    }
    Ok(())
}

/// `--prefix`: letters, digits and `_`/`-`, ending in `_` or `-` so that it is a
/// visible separator and cannot run into the base62 body.
pub(crate) fn validate_prefix(prefix: &str) -> anyhow::Result<()> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && (prefix.ends_with('_') || prefix.ends_with('-'));
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid prefix {}: up to 32 letters, digits, '_' or '-', ending in '_' or '-'",
            crate::output::quoted(prefix)
        )))
    }
}

/// A readable unique-enough default name: `api-` / `runner-` and 6 random characters.
pub(crate) fn default_name(kind: Kind) -> String {
    format!("{}-{}", kind.as_str(), random_from(BASE32_LOWER, 6))
}

/// A secret's fingerprint: HMAC-SHA256 of `secret` under `salt` (a per-home salt in
/// keys.json, or the team's in the team store). What `keyctl scan` finds a secret by
/// where it carries no checksum; never reversible for a secret strong enough to be given
/// one (`registry::strong_enough`).
pub(crate) fn fingerprint(salt: &[u8; 32], secret: &[u8]) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac as _};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(secret);
    mac.finalize().into_bytes().into()
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_found_inside_other_text_and_look_alikes_are_not() {
        let m = mint(Format::Standard, "kca_");
        let s = m.secret.expose_secret();
        for text in [
            format!("see {s} for details"),
            format!("{s}/x"),
            format!("scope={s}"),
            format!("x{s}y"),
        ] {
            assert!(contains_secret(&text), "{text}");
        }
        let mut broken = s.to_string();
        broken.pop();
        broken.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(!contains_secret(&format!("see {broken}")));
        assert!(!contains_secret(
            "plain words, 0123456789abcdef0123456789abcdef"
        ));
        let a = mint(Format::Aksk, "");
        assert!(contains_secret(&format!("k={}", a.secret.expose_secret())));
    }
    use secrecy::ExposeSecret;

    #[test]
    fn minted_standard_secret_checks_and_carries_256_bits() {
        for kind in [Kind::Api, Kind::Runner] {
            let m = mint(Format::Standard, kind.default_prefix());
            let s = m.secret.expose_secret();
            assert_eq!(s.len(), 4 + BODY_LEN + CHECK_LEN);
            let r = check(s).unwrap();
            assert_eq!(r.kind, Some(kind));
            assert_eq!(r.format, Format::Standard);
            assert_eq!(m.id.len(), 20);
        }
    }

    #[test]
    fn aksk_shape() {
        let m = mint(Format::Aksk, "ignored_");
        assert_eq!(m.id.len(), 16);
        assert!(
            m.id.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        let s = m.secret.expose_secret();
        assert_eq!(s.len(), 32);
        assert_eq!(check(s).unwrap().format, Format::Aksk);
    }

    #[test]
    fn any_single_character_change_is_caught() {
        let m = mint(Format::Standard, "sk_soika_");
        let s = m.secret.expose_secret().to_string();
        assert_eq!(check(&s).unwrap().prefix, "sk_soika_");
        for i in 0..s.len() {
            let mut b = s.clone().into_bytes();
            b[i] = if b[i] == b'x' { b'y' } else { b'x' };
            let t = String::from_utf8(b).unwrap();
            assert!(check(&t).is_err(), "change at {i} not caught");
        }
        assert!(check(&s[..s.len() - 1]).is_err());
        assert!(check(&s[1..]).is_err() || check(&s[1..]).unwrap().prefix != "sk_soika_");
    }

    #[test]
    fn ids_and_bodies_are_uniform_enough() {
        // 2,000 bodies x 43 chars: every base62 character must show up.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            seen.extend(random_from(BASE62, BODY_LEN).bytes());
        }
        assert_eq!(seen.len(), 62);
    }

    #[test]
    fn names() {
        assert!(validate_name("ci-runner.prod_1").is_ok());
        for bad in [
            "",
            "-x",
            "a b",
            "a\nb",
            "a\u{1b}[31mb",
            &"x".repeat(65),
            "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
