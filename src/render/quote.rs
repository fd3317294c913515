//! The escapers: one per syntax a snippet is pasted into, since quoting is where pasted
//! configuration usually breaks. YAML double-quoted scalars that mean the same in YAML
//! 1.1 (PyYAML, Soda Core) and 1.2, POSIX shell words, and Helm's `--set` values.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A YAML double-quoted scalar that parses to exactly `s` under YAML 1.1 and 1.2: only
/// printable ASCII stays as it is, everything else becomes an escape both versions know
/// (`\/` is 1.2-only and is never written).
pub(crate) fn yaml_quote_into(o: &mut String, s: &str) {
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            // Soda Core 3 runs the whole file through Jinja (`${ }`, `{% %}`, `{# #}`)
            // before parsing it; an escaped brace is no delimiter to Jinja and still a
            // brace to YAML.
            '{' => o.push_str("\\x7B"),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            '\0' => o.push_str("\\0"),
            ' '..='~' => o.push(c),
            c if (c as u32) <= 0xFF => {
                let _ = write!(o, "\\x{:02X}", c as u32);
            }
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(o, "\\U{:08X}", c as u32);
            }
        }
    }
    o.push('"');
}

pub(crate) fn yaml_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    yaml_quote_into(&mut o, s);
    o
}

/// A word for POSIX sh. Plain when nothing in it is special (so the line also works as
/// a docker `--env-file` entry), single-quoted otherwise. `~` stays quoted: sh
/// expands `~` after `=` and `:` in assignments.
pub(crate) fn sh_quote(s: &str) -> Cow<'_, str> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+,=".contains(&b));
    if plain {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() + 8);
    o.push('\'');
    for c in s.chars() {
        if c == '\'' {
            o.push_str("'\\''");
        } else {
            o.push(c);
        }
    }
    o.push('\'');
    Cow::Owned(o)
}

/// A value for Helm's `--set`/`--set-string`: Helm splits on `,`, reads a leading `{`
/// as a list and takes `\` as an escape, and a backslash before any character means
/// that character.
pub(crate) fn helm_escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['\\', ',', '{', '}', '[', ']']) {
        return Cow::Borrowed(s);
    }
    let mut o = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '{' | '}' | '[' | ']') {
            o.push('\\');
        }
        o.push(c);
    }
    Cow::Owned(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quote_escapes_what_parsers_treat_specially() {
        assert_eq!(yaml_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(yaml_quote("${X}{%"), r#""$\x7BX}\x7B%""#);
        assert_eq!(
            yaml_quote("\u{7f}\u{85}é\u{2028}😀"),
            r#""\x7F\x85\xE9\u2028\U0001F600""#
        );
        for s in [
            "", "null", "~", "yes", "0x1F", "1e3", "#x", "a: b", "- x", "&a *b !t",
        ] {
            let v: String = serde_yaml_ng::from_str(&yaml_quote(s)).unwrap();
            assert_eq!(v, s);
        }
    }

    #[test]
    fn sh_quote_plain_only_when_safe() {
        assert_eq!(sh_quote("kca_AZ09-x"), "kca_AZ09-x");
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        assert_eq!(sh_quote("~x"), "'~x'");
        assert_eq!(sh_quote(""), "''");
    }
}
