//! The one masking step between what keyctl sent and what it shows: every token, password
//! and secret a client puts into a request is remembered here, and any text that came
//! back from the other side (a server's error message, a URL in the `-v` line) passes
//! through [`Masker::mask`] before it reaches a terminal or a log. A server or a proxy
//! that echoes the request therefore never puts a secret into keyctl's output. Both HTTP
//! users, the remotes and the team store, hold one.

use std::sync::Mutex;

use zeroize::Zeroizing;

/// What replaces a masked value.
pub const MASK: &str = "[secret]";

#[derive(Default)]
pub struct Masker {
    sent: Mutex<Vec<Zeroizing<String>>>,
}

impl Masker {
    /// Remembers a value to mask from now on (values under 4 bytes mask nothing useful
    /// and would garble text).
    pub fn hide(&self, value: &str) {
        if value.len() >= 4 {
            let mut sent = self.sent.lock().expect("mask lock");
            if !sent.iter().any(|v| v.as_str() == value) {
                sent.push(Zeroizing::new(value.to_string()));
            }
        }
    }

    /// `text` with every remembered value replaced, longest first (so a value that
    /// contains another is masked whole).
    pub fn mask(&self, text: &str) -> String {
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
}
