//! What a scan says, for machines: one JSON object per finding (`--json`), SARIF 2.1.0
//! (`--format sarif`, what GitHub code scanning reads), and the pre-commit hook that runs
//! `keyctl scan --staged`. Findings are already masked; nothing here sees a secret.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Finding;
use crate::error::Error;

/// What is known about the key a finding is.
#[derive(Clone, Debug)]
pub(crate) struct KeyInfo {
    pub id: String,
    pub name: String,
    /// active, expiring, expired, superseded, revoked.
    pub status: String,
}

impl KeyInfo {
    /// Still works somewhere: active, expiring, superseded (in its grace period).
    pub(crate) fn is_live(&self) -> bool {
        matches!(self.status.as_str(), "active" | "expiring" | "superseded")
    }
}

/// The status of a finding: its key's, or `unknown` (a keyctl secret this home does not
/// know, which may well work).
pub(crate) fn status<'a>(f: &Finding, keys: &'a [KeyInfo]) -> &'a str {
    f.key
        .and_then(|i| keys.get(i))
        .map_or("unknown", |k| k.status.as_str())
}

/// Whether a finding may still work: a live key, or an unknown keyctl secret.
pub(crate) fn is_live(f: &Finding, keys: &[KeyInfo]) -> bool {
    f.key.and_then(|i| keys.get(i)).is_none_or(KeyInfo::is_live)
}

/// One finding as JSON.
pub(crate) fn finding_json(f: &Finding, keys: &[KeyInfo]) -> Value {
    let key = f.key.and_then(|i| keys.get(i));
    json!({
        "path": f.path,
        "line": f.line,
        "column": f.col,
        "commit": f.commit,
        "secret": f.masked,
        "recognised_by": if f.checksum { "checksum" } else { "fingerprint" },
        "encoding": f.encoding,
        "key_id": key.map(|k| k.id.as_str()),
        "key_name": key.map(|k| k.name.as_str()),
        "status": status(f, keys),
        "live": is_live(f, keys),
    })
}

/// A SARIF 2.1.0 log: one run, one rule per kind of finding, `error` for live secrets
/// and `note` for revoked ones.
pub(crate) fn sarif(findings: &[Finding], keys: &[KeyInfo]) -> Value {
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let key = f.key.and_then(|i| keys.get(i));
            let live = is_live(f, keys);
            let what = match key {
                Some(k) => format!("key '{}' ({}), {}", k.name, k.id, k.status),
                None => "a keyctl secret this home does not know (it may work)".into(),
            };
            let mut location = json!({
                "physicalLocation": {
                    "artifactLocation": {"uri": uri(&f.path)},
                    "region": {"startLine": f.line, "startColumn": f.col},
                }
            });
            if let Some(c) = &f.commit {
                location["message"] = json!({"text": format!("added in commit {c}")});
            }
            json!({
                "ruleId": if live { "keyctl/live-secret" } else { "keyctl/revoked-secret" },
                "level": if live { "error" } else { "note" },
                "message": {"text": format!("Leaked secret {}: {what}", f.masked)},
                "locations": [location],
                "partialFingerprints": {
                    "keyctlSecret/v1": format!("{}:{}:{}", f.path, f.masked, key.map_or("", |k| k.id.as_str())),
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "keyctl",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/",
                "rules": [
                    {
                        "id": "keyctl/live-secret",
                        "shortDescription": {"text": "A keyctl secret that still works is in the file"},
                        "help": {"text": "Revoke it (keyctl revoke KEY, or keyctl scan --revoke), then rotate or re-render the configuration without the secret (keyctl config KEY --secret-ref env)."},
                        "defaultConfiguration": {"level": "error"},
                    },
                    {
                        "id": "keyctl/revoked-secret",
                        "shortDescription": {"text": "A revoked or expired keyctl secret is in the file"},
                        "help": {"text": "It no longer works; remove it from the file when convenient."},
                        "defaultConfiguration": {"level": "note"},
                    },
                ],
            }},
            "results": results,
        }],
    })
}

/// A path as a SARIF `uri` (a relative URI reference, RFC 3986): every byte that is not
/// unreserved or `/` percent-encoded, so a file named `a b#c?.yml` stays one path.
pub(crate) fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A string for `sh`, in single quotes.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The pre-commit hook: blocks a commit that adds a live secret (exit 12 from scan). It
/// runs the keyctl that installed it, by its absolute path: a `keyctl` earlier on PATH
/// (Debian's keyutils has one) or one shipped in the repository is never run.
pub(crate) fn hook(keyctl: &Path) -> String {
    format!(
        "#!/bin/sh\n# Installed by `keyctl scan --install-hook`: refuses a commit that adds a live keyctl\n# secret. `git commit --no-verify` skips it.\nexec {} scan --staged\n",
        sh_quote(&keyctl.display().to_string())
    )
}

fn git_path(repo: &Path, args: &[&str]) -> anyhow::Result<PathBuf> {
    let out = super::git::git_reading_hooks_path(repo)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(Error::not_found(format!(
            "{} is not in a git repository",
            crate::output::sanitize(&repo.display().to_string())
        ))
        .into());
    }
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim_end_matches('\n'));
    Ok(if p.is_absolute() { p } else { repo.join(p) })
}

/// `path` made absolute with `..` and symlinks resolved as far as it exists.
fn resolved(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut p = path.to_path_buf();
    loop {
        if let Ok(c) = p.canonicalize() {
            return missing.into_iter().rev().fold(c, |acc, m| acc.join(m));
        }
        match (p.file_name().map(|n| n.to_owned()), p.parent()) {
            (Some(n), Some(parent)) => {
                missing.push(n);
                p = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Writes the hook where git runs it (`core.hooksPath` honored, when it is inside the
/// repository). Already there: fine. A different hook, or a symlink, is never written
/// through; nothing is created outside the repository.
pub(crate) fn install_hook(repo: &Path, keyctl: &Path) -> anyhow::Result<PathBuf> {
    let hooks = git_path(repo, &["rev-parse", "--git-path", "hooks"])?;
    let top =
        git_path(repo, &["rev-parse", "--show-toplevel"]).unwrap_or_else(|_| repo.to_path_buf());
    let common = git_path(repo, &["rev-parse", "--git-common-dir"])?;
    let (hooks_r, top_r, common_r) = (resolved(&hooks), resolved(&top), resolved(&common));
    let shown = |p: &Path| crate::output::sanitize(&p.display().to_string());
    if !hooks_r.starts_with(&top_r) && !hooks_r.starts_with(&common_r) {
        return Err(Error::conflict(format!(
            "the hooks directory {} (core.hooksPath) is outside the repository; add `{} scan --staged` to its pre-commit hook yourself",
            shown(&hooks),
            shown(keyctl)
        ))
        .into());
    }
    let path = hooks.join("pre-commit");
    let hook = hook(keyctl);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(Error::conflict(format!(
                "{} is a symbolic link; keyctl does not write through it: add `{} scan --staged` to the hook yourself",
                shown(&path),
                shown(keyctl)
            ))
            .into());
        }
        Ok(_) => {
            return match std::fs::read(&path) {
                Ok(have) if have == hook.as_bytes() => Ok(path),
                Ok(_) => Err(Error::conflict(format!(
                    "{} already holds another hook; add `{} scan --staged` to it yourself",
                    shown(&path),
                    shown(keyctl)
                ))
                .into()),
                Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", shown(&path))),
            };
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", shown(&path))),
    }
    std::fs::create_dir_all(&hooks)?;
    let mut o = std::fs::OpenOptions::new();
    // create_new: never through a link put there in the meantime.
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o755);
    }
    use std::io::Write as _;
    let mut f = o
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", shown(&path)))?;
    f.write_all(hook.as_bytes())?;
    f.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(key: Option<usize>) -> Finding {
        Finding {
            path: "a.yml".into(),
            line: 2,
            col: 5,
            commit: None,
            masked: "kca_…Ab12".into(),
            key,
            checksum: true,
            encoding: None,
        }
    }

    #[test]
    fn sarif_has_what_code_scanning_reads_and_no_secret() {
        let keys = vec![KeyInfo {
            id: "kcx".into(),
            name: "ci".into(),
            status: "revoked".into(),
        }];
        let v = sarif(&[finding(None), finding(Some(0))], &keys);
        assert_eq!(v["version"], "2.1.0");
        let r = &v["runs"][0]["results"];
        assert_eq!(r[0]["level"], "error");
        assert_eq!(r[1]["level"], "note");
        assert_eq!(
            r[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            2
        );
        assert_eq!(finding_json(&finding(Some(0)), &keys)["live"], false);
        assert_eq!(finding_json(&finding(None), &keys)["status"], "unknown");
    }
}
