//! Editing one top-level block of a YAML file a person wrote, byte for byte.
//!
//! A YAML library would reformat the whole file on the way back out (comments, anchors,
//! quoting, key order, line endings all lost), so this edits the text itself: it finds
//! the lines of the top-level `KEY:` block and swaps them, or appends the block, leaving
//! every other byte alone. Text edits can be wrong where YAML is subtle, so the file is
//! parsed before (it must be a mapping whose KEY, if present, is a mapping) and the result
//! is parsed after: it must be the same data with only KEY changed, or nothing is written.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_yaml_ng::Value;
use zeroize::Zeroizing;

use crate::error::usage;

/// A planned edit of one file, not yet written.
pub(crate) struct Plan {
    /// The file to replace (symlinks resolved, so the link stays a link).
    pub target: PathBuf,
    /// The bytes the plan was made from; `None` when the file does not exist yet.
    pub old: Option<Zeroizing<String>>,
    pub new: Zeroizing<String>,
}

impl Plan {
    pub(crate) fn changes(&self) -> bool {
        self.old.as_deref().map(String::as_str) != Some(self.new.as_str())
    }
}

/// The largest configuration file `--write` reads.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Deeper nesting than this is no configuration file (and costs YAML parsers dearly).
const MAX_DEPTH: usize = 64;

/// The directory must take a new file (the edit is written beside the file and renamed),
/// checked before anything is minted: an unnamed temporary file, gone when dropped.
fn writable(dir: &Path, shown: &impl std::fmt::Display) -> anyhow::Result<()> {
    tempfile::tempfile_in(dir).map(drop).map_err(|e| {
        usage(format!(
            "cannot write {shown}: {} is not writable ({e})",
            dir.display()
        ))
    })
}

/// How deep `[`/`{` flow collections and indentation nest, roughly (quotes are not
/// tracked, so this over-counts, never under-counts, brackets inside strings).
fn depth(text: &str) -> usize {
    let (mut flow, mut most) = (0usize, 0usize);
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        for c in line.chars() {
            match c {
                '[' | '{' => flow += 1,
                ']' | '}' => flow = flow.saturating_sub(1),
                _ => {}
            }
            most = most.max(flow + indent / 2);
        }
    }
    most
}

/// Where the file's text is, with the reasons a file cannot be edited as errors that say
/// which file and what is wrong with it.
pub(crate) fn read(path: &Path) -> anyhow::Result<(PathBuf, Option<Zeroizing<String>>)> {
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                let why = if dir.exists() {
                    "is not a directory"
                } else {
                    "does not exist"
                };
                return Err(usage(format!(
                    "cannot create {shown}: {} {why}",
                    dir.display()
                )));
            }
            writable(dir, &shown)?;
            return Ok((path.to_path_buf(), None));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
        Ok(_) => {}
    }
    let target = std::fs::canonicalize(path).with_context(|| format!("cannot read {shown}"))?;
    if target.is_dir() {
        return Err(usage(format!(
            "{shown} is a directory; --write needs the path of a configuration file"
        )));
    }
    // A device, FIFO or socket is no configuration file: /dev/zero would be read forever,
    // and replacing /dev/null (as root) would break the system.
    let meta = std::fs::metadata(&target).with_context(|| format!("cannot read {shown}"))?;
    if !meta.is_file() {
        return Err(usage(format!(
            "{shown} is not a regular file (a device, FIFO or socket); --write needs a configuration file"
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(usage(format!(
            "{shown} is larger than {} MiB; that is no Soda configuration file",
            MAX_FILE / 1024 / 1024
        )));
    }
    if let Some(dir) = target.parent() {
        writable(dir, &shown)?;
    }
    let mut raw = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(&target).with_context(|| format!("cannot read {shown}"))?,
            MAX_FILE + 1,
        ),
        &mut raw,
    )
    .with_context(|| format!("cannot read {shown}"))?;
    let bytes = Zeroizing::new(raw);
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        usage(format!(
            "{shown} is not UTF-8 text (byte {})",
            e.valid_up_to()
        ))
    })?;
    // Checked before any parser sees the text: 100,000 nested brackets held the YAML
    // parser for over a minute.
    if depth(text) > MAX_DEPTH {
        return Err(usage(format!(
            "{shown} nests deeper than {MAX_DEPTH} levels; that is no configuration file keyctl edits"
        )));
    }
    Ok((target, Some(Zeroizing::new(text.to_string()))))
}

/// Plans replacing (or appending) the top-level `key` block of `old` with `block(eol)`,
/// where `expected` is what `key` must parse to afterwards.
pub(crate) fn plan(
    shown: &Path,
    target: PathBuf,
    old: Option<Zeroizing<String>>,
    key: &str,
    block: impl Fn(&str) -> Zeroizing<String>,
    expected: &Value,
) -> anyhow::Result<Plan> {
    let shown = shown.display();
    let Some(old_original) = old else {
        let new = block("\n");
        verify(&shown, &Value::Null, &new, key, expected)?;
        return Ok(Plan {
            target,
            old: None,
            new,
        });
    };
    // A UTF-8 byte order mark stays where it was; the rest is edited without it.
    let bom = if old_original.starts_with('\u{feff}') {
        "\u{feff}"
    } else {
        ""
    };
    let old_text = Zeroizing::new(old_original[bom.len()..].to_string());
    if depth(&old_text) > MAX_DEPTH {
        return Err(usage(format!(
            "{shown} nests deeper than {MAX_DEPTH} levels; that is no configuration file keyctl edits"
        )));
    }
    let before = parse(&old_text).map_err(|e| {
        let e = e.to_string();
        if e.contains("more than one document") {
            usage(format!(
                "{shown} holds more than one YAML document; a Soda configuration file is one mapping"
            ))
        } else {
            usage(format!("{shown} is not valid YAML: {e}"))
        }
    })?;
    match &before {
        Value::Null | Value::Mapping(_) => {}
        other => {
            return Err(usage(format!(
                "{shown} is not a YAML mapping at the top level (it is {}); nothing written",
                describe(other)
            )));
        }
    }
    let eol = if old_text
        .find('\n')
        .is_some_and(|i| old_text[..i].ends_with('\r'))
    {
        "\r\n"
    } else {
        "\n"
    };
    let spans = find_blocks(&old_text, key);
    let present = before.get(key);
    if let Some(v) = present
        && !matches!(v, Value::Mapping(_) | Value::Null)
    {
        let line = spans
            .first()
            .map(|s| format!(" (line {})", line_of(&old_text, s.0)))
            .unwrap_or_default();
        return Err(usage(format!(
            "{shown}: `{key}`{line} is {}, not a mapping; nothing written",
            describe(v)
        )));
    }
    let mut new = Zeroizing::new(String::with_capacity(old_text.len() + 1024));
    new.push_str(bom);
    match (present.is_some(), spans.as_slice()) {
        (true, [(start, end)]) => {
            let mut b = block(eol);
            // Keep an anchor the old block carried, so aliases to it still resolve.
            if let Some(anchor) = anchor_of(&old_text[*start..*end]) {
                b.insert_str(key.len() + 1, &format!(" {anchor}"));
            }
            new.push_str(&old_text[..*start]);
            if *end == old_text.len() && !old_text.ends_with('\n') {
                new.push_str(b.trim_end_matches(['\r', '\n']));
            } else {
                new.push_str(&b);
            }
            new.push_str(&old_text[*end..]);
        }
        (false, []) => {
            new.push_str(&old_text);
            if !old_text.trim().is_empty() {
                if !old_text.ends_with('\n') {
                    new.push_str(eol);
                }
                if !old_text.ends_with(&format!("{eol}{eol}")) {
                    new.push_str(eol);
                }
            }
            new.push_str(&block(eol));
        }
        _ => {
            return Err(usage(format!(
                "{shown}: cannot find a single top-level `{key}:` line to edit (it is written in a form keyctl does not edit); nothing written"
            )));
        }
    }
    verify(&shown, &before, &new[bom.len()..], key, expected)?;
    Ok(Plan {
        target,
        old: Some(old_original),
        new,
    })
}

/// Writes the plan atomically (0600), unless the file changed since it was read.
pub(crate) fn commit(plan: &Plan, shown: &Path) -> anyhow::Result<()> {
    let now = crate::fsutil::read_optional(&plan.target)?.map(Zeroizing::new);
    let same = match (&now, &plan.old) {
        (None, None) => true,
        (Some(a), Some(b)) => a.as_slice() == b.as_bytes(),
        _ => false,
    };
    if !same {
        anyhow::bail!(
            "{} changed while keyctl was editing it; nothing written, run again",
            shown.display()
        );
    }
    crate::fsutil::write_atomic(&plan.target, plan.new.as_bytes())
}

/// A unified diff of the plan for `--dry-run`, with the value of every key that names a
/// secret, and each of `secrets` wherever it appears, shown as `***`.
pub(crate) fn masked_diff(plan: &Plan, shown: &Path, secrets: &[&str]) -> String {
    const CONTEXT: usize = 3;
    let old_text = plan.old.as_deref().map_or("", String::as_str);
    let old: Vec<&str> = old_text.lines().collect();
    let new: Vec<&str> = plan.new.lines().collect();
    let head = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let from = head.saturating_sub(CONTEXT);
    let old_to = (old.len() - tail + CONTEXT).min(old.len());
    let new_to = (new.len() - tail + CONTEXT).min(new.len());
    let range = |start: usize, len: usize| {
        if len == 0 {
            format!("{start},0")
        } else {
            format!("{},{len}", start + 1)
        }
    };
    let mut o = String::new();
    let name = crate::output::sanitize(&shown.display().to_string());
    let old_name = if plan.old.is_some() {
        name.as_str()
    } else {
        "/dev/null"
    };
    o.push_str(&format!("--- {old_name}\n+++ {name}\n"));
    o.push_str(&format!(
        "@@ -{} +{} @@\n",
        range(from, old_to - from),
        range(from, new_to - from)
    ));
    // Every scalar under a secret-like key, whatever its style (quoted key, block
    // scalar, value on the next line), from the parsed documents, plus the given ones.
    let mut hidden: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    for text in [old_text, plan.new.as_str()] {
        if let Ok(doc) = parse(text.trim_start_matches('\u{feff}')) {
            secret_scalars(&doc, false, &mut hidden);
        }
    }
    // A multi-line value is masked line by line.
    let mut pieces: Vec<String> = hidden
        .iter()
        .flat_map(|v| {
            v.lines()
                .map(str::trim)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|p| p.len() >= 4)
        .collect();
    pieces.sort_by_key(|p| std::cmp::Reverse(p.len()));
    pieces.dedup();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    let mut emit = |mark: char, l: &str| {
        o.push(mark);
        o.push_str(&crate::output::sanitize(&mask_line(l, &refs)));
        o.push('\n');
    };
    for l in &old[from..head] {
        emit(' ', l);
    }
    for l in &old[head..old.len() - tail] {
        emit('-', l);
    }
    for l in &new[head..new.len() - tail] {
        emit('+', l);
    }
    for l in &new[new.len() - tail..new_to] {
        emit(' ', l);
    }
    o
}

/// True for a mapping key that names a secret (`api_key_secret`, `"db password"`,
/// `api_key`, `pwd`, `pass`, ...), not for one that names a secret's ID or file
/// (`api_key_id`, `key_file`).
fn secret_like(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let named = [
        "secret",
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "token",
        "private",
        "credential",
        "apikey",
    ]
    .iter()
    .any(|w| k.contains(w));
    let words: Vec<&str> = k
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    // `pass`, `db_pass`; `key`, `api_key`, `access_key` (a word `key` last: `key_id`,
    // `key_file` and `api_key_id` name something else).
    named || words.contains(&"pass") || words.last() == Some(&"key")
}

/// `line` with the password of every `scheme://user:password@host` in it masked.
fn mask_url_passwords(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || "/?#\"'".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority
            .rfind('@')
            .and_then(|at| authority[..at].find(':').map(|colon| (colon, at)))
        {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Collects the scalars under secret-like keys, at any depth.
fn secret_scalars(v: &Value, under_secret: bool, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, x) in m {
                let named = k.as_str().is_some_and(secret_like);
                secret_scalars(x, under_secret || named, out);
            }
        }
        Value::Sequence(xs) => xs.iter().for_each(|x| secret_scalars(x, under_secret, out)),
        Value::Tagged(t) => secret_scalars(&t.value, under_secret, out),
        Value::String(s) if under_secret => out.push(s.clone()),
        Value::Number(n) if under_secret => out.push(n.to_string()),
        _ => {}
    }
}

fn mask_line(line: &str, secrets: &[&str]) -> String {
    let line = line.trim_end_matches('\r');
    let mut out = line.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "***");
    }
    let mut out = mask_url_passwords(&out);
    let body = out.trim_start_matches([' ', '-']);
    if let Some((k, v)) = body.split_once(':') {
        let secretish = secret_like(k.trim_matches(['"', '\'']));
        if secretish && !v.trim().is_empty() && !k.contains(' ') {
            let keep = out.len() - body.len() + k.len() + 1;
            out.truncate(keep);
            out.push_str(" ***");
        }
    }
    out
}

fn parse(text: &str) -> Result<Value, serde_yaml_ng::Error> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_yaml_ng::from_str(text)
}

/// The result must be the old data with only `key` changed, and `key` exactly `expected`.
fn verify(
    shown: &impl std::fmt::Display,
    before: &Value,
    new: &str,
    key: &str,
    expected: &Value,
) -> anyhow::Result<()> {
    let fail = |why: &str| {
        anyhow::anyhow!(
            "{shown}: keyctl's edit of the `{key}` block did not parse back as intended ({why}); nothing written, edit the file by hand"
        )
    };
    let after = parse(new).map_err(|_| fail("the result is not valid YAML"))?;
    let strip = |v: &Value| -> Value {
        match v {
            Value::Mapping(m) => {
                let mut m = m.clone();
                m.remove(key);
                Value::Mapping(m)
            }
            _ => Value::Mapping(Default::default()),
        }
    };
    if after.get(key) != Some(expected) {
        return Err(fail("the new block does not read back as written"));
    }
    if strip(before) != strip(&after) {
        return Err(fail("other data would change"));
    }
    Ok(())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// Byte spans of every top-level `key:` block: from its key line to the next line that
/// starts in column 0 with content, minus the blank lines and column-0 comments just
/// before that line (they belong to what follows).
fn find_blocks(text: &str, key: &str) -> Vec<(usize, usize)> {
    let mut lines = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1);
        lines.push((pos, end));
        pos = end;
    }
    let starts_top = |l: &str| {
        let l = l.strip_prefix('\u{feff}').unwrap_or(l);
        matches!(l.as_bytes().first(), Some(b) if !b" \t\r\n#".contains(b))
    };
    let mut spans = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (s, e) = lines[i];
        if !is_key_line(&text[s..e], key) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < lines.len() && !starts_top(&text[lines[j].0..lines[j].1]) {
            j += 1;
        }
        let mut last = j;
        while last > i + 1 {
            let l = text[lines[last - 1].0..lines[last - 1].1].trim_end_matches(['\r', '\n']);
            if l.trim().is_empty() || l.starts_with('#') {
                last -= 1;
            } else {
                break;
            }
        }
        spans.push((s, lines[last - 1].1));
        i = j;
    }
    spans
}

/// `key:`, `"key":` or `'key':` at column 0, followed by a space, a comment or the end.
fn is_key_line(line: &str, key: &str) -> bool {
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let rest = [key.to_string(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .find_map(|k| line.strip_prefix(k.as_str()))
        .map(|r| r.trim_start_matches([' ', '\t']));
    match rest.and_then(|r| r.strip_prefix(':')) {
        Some(r) => r.is_empty() || r.starts_with([' ', '\t', '\r', '\n']),
        None => false,
    }
}

/// The `&anchor` on a block's key line, if any.
fn anchor_of(block: &str) -> Option<String> {
    let first = block.lines().next()?;
    let after = first.split_once(':')?.1.trim_start();
    let a = after.strip_prefix('&')?;
    let name: String = a.chars().take_while(|c| !c.is_whitespace()).collect();
    (!name.is_empty()).then(|| format!("&{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_block_and_leaves_trailing_comments() {
        let t = "a: 1\nsoda_cloud:\n  host: x\n\n  api_key_id: y\n# about b\n\nb: 2\n";
        let s = find_blocks(t, "soda_cloud");
        assert_eq!(s.len(), 1);
        assert_eq!(
            &t[s[0].0..s[0].1],
            "soda_cloud:\n  host: x\n\n  api_key_id: y\n"
        );
        assert!(find_blocks("soda_clouds: 1\n", "soda_cloud").is_empty());
        assert_eq!(find_blocks("\"soda_cloud\": {}", "soda_cloud").len(), 1);
    }
}
