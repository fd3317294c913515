//! Git history and the index, through the `git` command (every developer machine has it,
//! and it reads every repository format, packs and alternates included).
//!
//! History: `git log --raw` walks every commit reachable from HEAD, oldest first, and
//! names each blob a commit added with its path; each blob is scanned once (a secret
//! deleted in a later commit is still leaked), its content streamed through one
//! `git cat-file --batch`. Memory holds the list of blob names, never the history.
//! `--staged`: the blobs the index adds or changes, for a pre-commit hook.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use super::{Finding, Known, scan_buffer};
use crate::error::Error;

/// A blob to scan, and where it first appeared.
struct Blob {
    sha: String,
    path: String,
    commit: Option<String>,
}

fn git(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    c
}

fn run_git(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let o = git(dir)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .context("cannot run git (is it installed?)")?;
    if !o.status.success() {
        return Err(Error::not_found(format!(
            "git {} failed in {}: {}",
            args.first().unwrap_or(&""),
            dir.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
        .into());
    }
    Ok(o.stdout)
}

/// The top of the work tree `dir` is in.
pub fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = run_git(dir, &["rev-parse", "--show-toplevel"])?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
}

/// Every blob added by a commit reachable from HEAD, scanned once. Returns the findings
/// and the number of commits walked.
pub fn scan_history(
    dir: &Path,
    known: &Known,
    max_size: u64,
) -> anyhow::Result<(Vec<Finding>, usize)> {
    let mut child = git(dir)
        .args([
            "log",
            "--reverse",
            "--raw",
            "--no-renames",
            "--no-abbrev",
            "--format=commit %H",
            "HEAD",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run git (is it installed?)")?;
    let out = child.stdout.take().expect("piped");
    let mut seen: HashSet<String> = HashSet::new();
    let mut blobs = Vec::new();
    let mut commits = 0;
    let mut commit = String::new();
    for line in BufReader::new(out).split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        if let Some(c) = line.strip_prefix("commit ") {
            commit = c.to_string();
            commits += 1;
        } else if let Some(raw) = line.strip_prefix(':') {
            // ":100644 100644 OLD NEW M\tpath"
            let Some((meta, path)) = raw.split_once('\t') else {
                continue;
            };
            let fields: Vec<&str> = meta.split_whitespace().collect();
            let (Some(mode), Some(new)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            // Files only (not submodules or symlinks), and not deletions.
            if !mode.starts_with("100") || new.bytes().all(|b| b == b'0') {
                continue;
            }
            if seen.insert(new.to_string()) {
                blobs.push(Blob {
                    sha: new.to_string(),
                    path: path.to_string(),
                    commit: Some(commit.clone()),
                });
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(Error::not_found(format!(
            "{} has no git history to scan (no commits, or not a repository)",
            dir.display()
        ))
        .into());
    }
    Ok((scan_blobs(dir, blobs, known, max_size)?, commits))
}

/// The blobs the index adds or changes (what the next commit would add).
pub fn scan_staged(dir: &Path, known: &Known, max_size: u64) -> anyhow::Result<Vec<Finding>> {
    let out = run_git(
        dir,
        &[
            "diff",
            "--cached",
            "--raw",
            "--no-renames",
            "--no-abbrev",
            "-z",
            "--diff-filter=ACM",
        ],
    )?;
    let mut blobs = Vec::new();
    let mut parts = out.split(|&b| b == 0).filter(|p| !p.is_empty());
    while let (Some(meta), Some(path)) = (parts.next(), parts.next()) {
        let meta = String::from_utf8_lossy(meta);
        let fields: Vec<&str> = meta.trim_start_matches(':').split_whitespace().collect();
        let (Some(mode), Some(new)) = (fields.get(1), fields.get(3)) else {
            continue;
        };
        if mode.starts_with("100") {
            blobs.push(Blob {
                sha: new.to_string(),
                path: String::from_utf8_lossy(path).into_owned(),
                commit: None,
            });
        }
    }
    scan_blobs(dir, blobs, known, max_size)
}

/// Streams the blobs through one `git cat-file --batch` and scans each.
fn scan_blobs(
    dir: &Path,
    blobs: Vec<Blob>,
    known: &Known,
    max_size: u64,
) -> anyhow::Result<Vec<Finding>> {
    if blobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut child = git(dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run git cat-file")?;
    let mut stdin = child.stdin.take().expect("piped");
    let names: Vec<String> = blobs.iter().map(|b| b.sha.clone()).collect();
    // A writer thread, so a full pipe on either side never blocks the other.
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        for n in names {
            writeln!(stdin, "{n}")?;
        }
        Ok(())
    });
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut findings = Vec::new();
    let mut header = String::new();
    let mut buf = Vec::new();
    for b in &blobs {
        header.clear();
        out.read_line(&mut header)?;
        // "SHA blob SIZE" or "SHA missing"
        let size: u64 = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if header.contains(" missing") {
            continue;
        }
        buf.clear();
        if size > max_size {
            // Too large to scan: passed over without holding it in memory.
            std::io::copy(&mut (&mut out).take(size), &mut std::io::sink())?;
        } else {
            (&mut out).take(size).read_to_end(&mut buf)?;
        }
        let mut nl = [0u8; 1];
        out.read_exact(&mut nl)?;
        if !super::is_text(&buf, size, max_size) {
            continue;
        }
        findings.extend(scan_buffer(&buf, known, &b.path, b.commit.as_deref()));
    }
    let _ = writer.join();
    let _ = child.wait();
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::key::{Format, mint};

    fn git_in(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_secret_deleted_later_is_still_found_with_its_commit_and_staged_ones_too() {
        if Command::new("git").arg("--version").output().is_err() {
            eprintln!("skipped: needs git");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git_in(d, &["init", "-q"]);
        let s = mint(Format::Standard, "kca_");
        std::fs::write(d.join("a.yml"), "clean\n").unwrap();
        git_in(d, &["add", "."]);
        git_in(d, &["commit", "-q", "-m", "one"]);
        std::fs::write(
            d.join("a.yml"),
            format!("clean\nk: {}\n", s.secret.expose_secret()),
        )
        .unwrap();
        git_in(d, &["commit", "-q", "-am", "leak"]);
        let leak = String::from_utf8(run_git(d, &["rev-parse", "HEAD"]).unwrap()).unwrap();
        std::fs::write(d.join("a.yml"), "clean\n").unwrap();
        git_in(d, &["commit", "-q", "-am", "remove"]);
        let k = Known::new([3u8; 32]);
        let (f, commits) = scan_history(d, &k, 1 << 20).unwrap();
        assert_eq!(commits, 3);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].path.as_str(), f[0].line, f[0].col), ("a.yml", 2, 4));
        assert_eq!(f[0].commit.as_deref(), Some(leak.trim()));
        assert!(scan_staged(d, &k, 1 << 20).unwrap().is_empty());
        let t = mint(Format::Aksk, "");
        std::fs::write(
            d.join("b.env"),
            format!("SK={}\n", t.secret.expose_secret()),
        )
        .unwrap();
        git_in(d, &["add", "b.env"]);
        let f = scan_staged(d, &k, 1 << 20).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].path.as_str(), f[0].line, f[0].col), ("b.env", 1, 4));
    }
}
