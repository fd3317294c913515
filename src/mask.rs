//! The one masking step between what keyctl sent and what it shows: every token, password
//! and secret a client puts into a request is remembered here, and any text that came
//! back from the other side (a server's error message, a URL in the `-v` line) passes
//! through [`Masker::mask`] before it reaches a terminal or a log. A server or a proxy
//! that echoes the request therefore never puts a secret into keyctl's output. Both HTTP
//! users, the remotes and the team store, hold one.
//!
//! A server echoes what it got in its own notation, so every value is remembered in each
//! form it can come back in: as sent, JSON-escaped (`"` and `\` in a password), as
//! Python's repr (Keystone's validation errors), percent-encoded (upper and lower case hex,
//! `+` or `%20` for a space, `/` kept or not) and base64 (standard and URL-safe, with and
//! without padding, and at each of the three alignments it can have inside a longer
//! encoded blob such as a Basic credential or an encoded body).

use std::sync::Mutex;

use zeroize::Zeroizing;

/// What replaces a masked value.
pub(crate) const MASK: &str = "[secret]";

#[derive(Default)]
pub(crate) struct Masker {
    sent: Mutex<Vec<Zeroizing<String>>>,
}

impl Masker {
    /// Remembers a value to mask from now on (values under 4 bytes mask nothing useful
    /// and would garble text).
    pub(crate) fn hide(&self, value: &str) {
        if value.len() < 4 {
            return;
        }
        let mut sent = self.sent.lock().expect("mask lock");
        for form in forms(value) {
            if form.len() >= 4 && !sent.iter().any(|v| v.as_str() == form.as_str()) {
                sent.push(form);
            }
        }
    }

    /// `text` with every remembered value replaced, longest first (so a value that
    /// contains another is masked whole).
    pub(crate) fn mask(&self, text: &str) -> String {
        let sent = self.sent.lock().expect("mask lock");
        let mut values: Vec<&str> = sent.iter().map(|v| v.as_str()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for v in values {
            if out.contains(v) {
                out = out.replace(v, MASK);
            }
        }
        out
    }
}

/// Every form `value` can come back in (see the module doc), the value itself first.
fn forms(value: &str) -> Vec<Zeroizing<String>> {
    let mut out = vec![Zeroizing::new(value.to_string())];
    let json = Zeroizing::new(serde_json::to_string(value).unwrap_or_default());
    if let Some(inner) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
        out.push(Zeroizing::new(inner.to_string()));
        out.push(Zeroizing::new(inner.replace('/', "\\/")));
        // An encoded JSON body carries the escaped form.
        if inner != value {
            out.extend(base64_forms(inner.as_bytes()));
        }
    }
    out.extend(python_repr(value));
    for keep_slash in [false, true] {
        for plus in [false, true] {
            for lower in [false, true] {
                out.push(percent(value, keep_slash, plus, lower));
            }
        }
    }
    out.extend(base64_forms(value.as_bytes()));
    out
}

/// The body of Python's `repr()` of a str, in both quotings.
fn python_repr(value: &str) -> Vec<Zeroizing<String>> {
    let mut forms = Vec::new();
    for quote in ['\'', '"'] {
        let mut s = Zeroizing::new(String::with_capacity(value.len()));
        for c in value.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                c if c == quote => {
                    s.push('\\');
                    s.push(c);
                }
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    s.push_str(&format!("\\x{:02x}", c as u32));
                }
                c => s.push(c),
            }
        }
        forms.push(s);
    }
    forms
}

/// Percent-encoding as URL encoders write it: all but RFC 3986's unreserved characters
/// (and `/` when `keep_slash`, Python's `quote`), a space as `+` when `plus` (form
/// encoding), hex digits in lower case when `lower`.
fn percent(value: &str, keep_slash: bool, plus: bool, lower: bool) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(value.len() * 3));
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            s.push(b as char);
        } else if plus && b == b' ' {
            s.push('+');
        } else if lower {
            s.push_str(&format!("%{b:02x}"));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Base64 of `bytes` in both alphabets: whole (with and without padding), and the part
/// that depends on `bytes` alone when they start 1 or 2 bytes into a 3-byte group of a
/// longer encoded text.
fn base64_forms(bytes: &[u8]) -> Vec<Zeroizing<String>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = Vec::new();
    for engine in [&STANDARD, &URL_SAFE] {
        out.push(Zeroizing::new(engine.encode(bytes)));
    }
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for shift in 0..3usize {
            let mut buf = Zeroizing::new(vec![0u8; shift]);
            buf.extend_from_slice(bytes);
            // Only whole 3-byte groups: the last group's characters depend on what follows.
            let whole = buf.len() / 3 * 3;
            let enc = Zeroizing::new(engine.encode(&buf[..whole]));
            // Characters that carry bits of the leading filler bytes are not the secret's.
            let skip = [0, 2, 3][shift];
            if enc.len() > skip {
                out.push(Zeroizing::new(enc[skip..].to_string()));
            }
            if shift == 0 {
                out.push(Zeroizing::new(engine.encode(bytes)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_and_short_values_ignored() {
        let m = Masker::default();
        m.hide("abc");
        m.hide("secret-1");
        m.hide("secret-1-longer");
        assert_eq!(
            m.mask("x secret-1-longer y secret-1 abc"),
            "x [secret] y [secret] abc"
        );
    }

    #[test]
    fn every_encoding_of_a_secret_is_masked() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "p\"a\\ss w/rd'?>~Summer";
        let m = Masker::default();
        m.hide(secret);
        let json = serde_json::to_string(secret).unwrap();
        let echoes = [
            json.clone(),
            "{'password': 'p\"a\\\\ss w/rd\\'?>~Summer'}".to_string(),
            "p%22a%5Css%20w%2Frd%27%3F%3E~Summer".to_string(),
            "p%22a%5Css+w/rd%27%3F%3E~Summer".to_string(),
            STANDARD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            STANDARD.encode(format!("user:{secret}")),
            STANDARD.encode(format!("{{\"password\": {json}}}")),
        ];
        for echo in echoes {
            let shown = m.mask(&echo);
            assert!(shown.contains(MASK), "{echo} -> {shown}");
            assert!(!shown.contains("Summer"), "{echo} -> {shown}");
        }
    }
}
