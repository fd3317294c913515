//! Git history and the index, through the `git` command (every developer machine has it,
//! and it reads every repository format, packs and alternates included).
//!
//! History: `git log --raw -c` walks every commit reachable from HEAD (or, with `--all`,
//! from every ref: branches, tags, the stash), oldest first, and names each blob a commit
//! added with its path; merges are diffed against every parent (`-c`), so a blob only a
//! merge introduced is seen too. Each blob is scanned once (a secret deleted in a later
//! commit is still leaked) and reported at every path it was added under; its content is
//! streamed through one `git cat-file --batch`. Memory holds the list of blob names, never
//! the history. `--staged`: the blobs the index adds or changes, for a pre-commit hook.
//!
//! The repository scanned may be hostile (a checkout from anywhere): git is run so that
//! nothing in its configuration runs a command or reaches the network (see [`git`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;

use super::{Known, Scanned, Skip};
use crate::error::Error;

/// A blob to scan, and where it appeared: (path, commit) for each place.
struct Blob {
    sha: String,
    places: Vec<(String, Option<String>)>,
}

/// `git -C DIR` with every way a repository's own configuration could run a command or
/// fetch turned off: no fsmonitor hook, no hooks, no lazy fetch of a partial clone's
/// missing objects (`remote.*.uploadpack` never runs), no transport at all, no optional
/// locks (a scan never writes the index), no external diff or textconv, no pager.
pub(crate) fn git(dir: &Path) -> Command {
    let mut c = git_reading_hooks_path(dir);
    c.args(["-c", "core.hooksPath=/dev/null"]);
    c
}

/// [`git`] but with `core.hooksPath` as the repository sets it, for asking where the hooks
/// are (`--install-hook`); nothing run this way runs a hook.
pub(crate) fn git_reading_hooks_path(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir);
    for kv in [
        "core.fsmonitor=false",
        "core.untrackedCache=false",
        "protocol.allow=never",
        "diff.external=",
        "core.pager=cat",
        "log.showSignature=false",
        "color.ui=false",
    ] {
        c.args(["-c", kv]);
    }
    c.env("GIT_NO_LAZY_FETCH", "1")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_PROTOCOL_FROM_USER", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_EXTERNAL_DIFF")
        .env_remove("GIT_PAGER");
    c
}

fn run_git(dir: &Path, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let o = git(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .context("cannot run git (is it installed?)")?;
    if !o.status.success() {
        return Err(Error::not_found(format!(
            "git {} failed in {}: {}",
            args.first().unwrap_or(&""),
            crate::output::sanitize(&dir.display().to_string()),
            crate::output::sanitize(String::from_utf8_lossy(&o.stderr).trim())
        ))
        .into());
    }
    Ok(o.stdout)
}

/// The top of the work tree `dir` is in.
pub(crate) fn toplevel(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = run_git(dir, &["rev-parse", "--show-toplevel"])?;
    Ok(PathBuf::from(String::from_utf8_lossy(&out).trim()))
}

/// Parses one raw diff line's metadata (`:MODE.. SHA.. STATUS`, one colon per parent):
/// the new blob, when it is a file (not a submodule or symlink) and not a deletion.
fn added_blob(meta: &str) -> Option<&str> {
    let parents = meta.bytes().take_while(|&b| b == b':').count();
    let fields: Vec<&str> = meta[parents..].split_whitespace().collect();
    let mode = fields.get(parents)?;
    let sha = fields.get(2 * parents + 1)?;
    (mode.starts_with("100") && !sha.bytes().all(|b| b == b'0')).then_some(*sha)
}

/// Every blob added by a commit reachable from HEAD (every ref with `all_refs`), scanned
/// once and reported at each path it was added under. Returns what was found and the
/// number of commits walked.
pub(crate) fn scan_history(
    dir: &Path,
    known: &Known,
    max_size: u64,
    all_refs: bool,
) -> anyhow::Result<(Scanned, usize)> {
    let mut child = git(dir)
        .args([
            "log",
            "--reverse",
            "--raw",
            "-c",
            "--root",
            "--no-renames",
            "--no-abbrev",
            "--no-ext-diff",
            "--no-textconv",
            "-z",
            "--format=commit %H",
        ])
        .arg(if all_refs { "--all" } else { "HEAD" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run git (is it installed?)")?;
    let out = child.stdout.take().expect("piped");
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut blobs: Vec<Blob> = Vec::new();
    let mut commits = 0;
    let mut commit = String::new();
    // After a raw entry's metadata comes its path: Some(the blob, if it is one to scan).
    let mut path_of: Option<Option<String>> = None;
    for token in BufReader::new(out).split(b'\0') {
        let token = token?;
        if let Some(added) = path_of.take() {
            if let Some(sha) = added {
                let path = String::from_utf8_lossy(&token).into_owned();
                add_place(&mut index, &mut blobs, sha, path, Some(&commit));
            }
            continue;
        }
        let text = String::from_utf8_lossy(&token);
        let text = text.trim_start_matches('\n');
        if let Some(c) = text.strip_prefix("commit ") {
            commit = c.trim().to_string();
            commits += 1;
        } else if text.starts_with(':') {
            path_of = Some(added_blob(text).map(str::to_owned));
        }
    }
    let status = child.wait()?;
    if !status.success() {
        return Err(Error::not_found(format!(
            "{} has no git history to scan (no commits, or not a repository)",
            crate::output::sanitize(&dir.display().to_string())
        ))
        .into());
    }
    Ok((scan_blobs(dir, blobs, known, max_size)?, commits))
}

fn add_place(
    index: &mut HashMap<String, usize>,
    blobs: &mut Vec<Blob>,
    sha: String,
    path: String,
    commit: Option<&str>,
) {
    let i = *index.entry(sha.clone()).or_insert_with(|| {
        blobs.push(Blob {
            sha,
            places: Vec::new(),
        });
        blobs.len() - 1
    });
    let places = &mut blobs[i].places;
    if !places.iter().any(|(p, _)| *p == path) {
        places.push((path, commit.map(str::to_owned)));
    }
}

/// The blobs the index adds or changes (what the next commit would add).
pub(crate) fn scan_staged(dir: &Path, known: &Known, max_size: u64) -> anyhow::Result<Scanned> {
    let out = run_git(
        dir,
        &[
            "diff",
            "--cached",
            "--raw",
            "--no-renames",
            "--no-abbrev",
            "--no-ext-diff",
            "--no-textconv",
            "-z",
            "--diff-filter=ACM",
        ],
    )?;
    let mut index = HashMap::new();
    let mut blobs = Vec::new();
    let mut parts = out.split(|&b| b == 0).filter(|p| !p.is_empty());
    while let (Some(meta), Some(path)) = (parts.next(), parts.next()) {
        let meta = String::from_utf8_lossy(meta);
        if let Some(sha) = added_blob(meta.trim()) {
            let path = String::from_utf8_lossy(path).into_owned();
            add_place(&mut index, &mut blobs, sha.to_string(), path, None);
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
) -> anyhow::Result<Scanned> {
    let mut total = Scanned::default();
    if blobs.is_empty() {
        return Ok(total);
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
    let mut header = String::new();
    let mut buf = Vec::new();
    for b in &blobs {
        header.clear();
        out.read_line(&mut header)?;
        let skip = |total: &mut Scanned, why: Skip| {
            for (path, _) in &b.places {
                total.skip(path.clone(), why.clone());
            }
        };
        // "SHA blob SIZE", or "SHA missing" (a partial clone's object not fetched).
        if header.is_empty() {
            break;
        }
        if header.contains(" missing") {
            skip(&mut total, Skip::Missing);
            continue;
        }
        let size: u64 = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        buf.clear();
        if size > max_size {
            // Too large to scan: passed over without holding it in memory.
            std::io::copy(&mut (&mut out).take(size), &mut std::io::sink())?;
        } else {
            (&mut out).take(size).read_to_end(&mut buf)?;
        }
        let mut nl = [0u8; 1];
        out.read_exact(&mut nl)?;
        if size > max_size {
            skip(&mut total, Skip::TooLarge);
            continue;
        }
        for (i, (path, commit)) in b.places.iter().enumerate() {
            match super::scan_text(&buf, known, path, commit.as_deref()) {
                Ok(found) => {
                    if i == 0 {
                        total.files += 1;
                        total.bytes += size;
                    }
                    total.findings.extend(found);
                }
                Err(why) => total.skip(path.clone(), why),
            }
        }
    }
    drop(out);
    let _ = writer.join();
    let _ = child.wait();
    Ok(total)
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
        let (f, commits) = scan_history(d, &k, 1 << 20, false).unwrap();
        let f = f.findings;
        assert_eq!(commits, 3);
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].path.as_str(), f[0].line, f[0].col), ("a.yml", 2, 4));
        assert_eq!(f[0].commit.as_deref(), Some(leak.trim()));
        assert!(scan_staged(d, &k, 1 << 20).unwrap().findings.is_empty());
        let t = mint(Format::Aksk, "");
        std::fs::write(
            d.join("b.env"),
            format!("SK={}\n", t.secret.expose_secret()),
        )
        .unwrap();
        git_in(d, &["add", "b.env"]);
        let f = scan_staged(d, &k, 1 << 20).unwrap().findings;
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].path.as_str(), f[0].line, f[0].col), ("b.env", 1, 4));
    }
}
