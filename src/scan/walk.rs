//! Walking a tree the way ripgrep does (it is ripgrep's own walker, the `ignore` crate):
//! `.gitignore` and `.ignore` respected unless asked otherwise, every core busy. Unlike
//! ripgrep, hidden files are looked into by default: `.env`, `.github/workflows/*.yml`
//! are where keys leak most (the `.git` directory never: history is `--git`'s). Binary
//! files (a NUL in the first 8 KiB), files over the size limit and what the ignore files
//! leave out are passed over, and counted. Each file is read whole (within the limit) and
//! dropped before the next, so memory stays flat in the size of the tree.
//!
//! A file is opened without blocking and read only when it is a regular file: a FIFO put
//! where a file was, or `/proc/kmsg`, never hangs a scan.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::{WalkBuilder, WalkState};

use super::{Known, Scanned, Skip};

/// What to walk and what to skip.
#[derive(Clone, Debug)]
pub(crate) struct WalkOptions {
    pub paths: Vec<PathBuf>,
    /// Look into hidden files and directories too.
    pub hidden: bool,
    /// Ignore `.gitignore` and `.ignore`.
    pub no_ignore: bool,
    /// Files larger than this are skipped.
    pub max_size: u64,
}

fn builder(opts: &WalkOptions, respect_ignores: bool) -> WalkBuilder {
    let mut paths = opts.paths.iter();
    let first = paths.next().cloned().unwrap_or_else(|| PathBuf::from("."));
    let mut b = WalkBuilder::new(&first);
    for p in paths {
        b.add(p);
    }
    b.hidden(!opts.hidden)
        .ignore(respect_ignores)
        .git_ignore(respect_ignores)
        .git_global(respect_ignores)
        .git_exclude(respect_ignores)
        .parents(respect_ignores)
        .require_git(false)
        // Git's own store is scanned with --git, blob by blob, not as files.
        .filter_entry(|e| e.file_name() != ".git");
    b
}

fn shown(path: &Path) -> String {
    path.strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Opens without blocking (a FIFO or a device never hangs the scan) and reads a regular
/// file only, at most `max + 1` bytes.
fn read_regular(path: &Path, max: u64, buf: &mut Vec<u8>) -> Result<(), Skip> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = o.open(path).map_err(|e| Skip::Unreadable(e.to_string()))?;
    let meta = f.metadata().map_err(|e| Skip::Unreadable(e.to_string()))?;
    if !meta.is_file() {
        return Err(Skip::NotRegular);
    }
    if meta.len() > max {
        return Err(Skip::TooLarge);
    }
    f.take(max + 1)
        .read_to_end(buf)
        .map_err(|e| Skip::Unreadable(e.to_string()))?;
    if buf.len() as u64 > max {
        return Err(Skip::TooLarge);
    }
    Ok(())
}

/// Scans every file under the paths, in parallel. Findings come back sorted by path,
/// line and column.
pub(crate) fn scan_paths(opts: &WalkOptions, known: &Known) -> Scanned {
    let mut b = builder(opts, !opts.no_ignore);
    b.threads(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = Mutex::new(Scanned::default());
    let seen = Mutex::new(HashSet::<PathBuf>::new());
    let count_ignored = !opts.no_ignore;
    b.build_parallel().run(|| {
        let (total, seen) = (&total, &seen);
        let mut buf = Vec::with_capacity(64 * 1024);
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            let path = entry.path();
            if count_ignored {
                seen.lock().expect("walk lock").insert(path.to_path_buf());
            }
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                return WalkState::Continue;
            }
            buf.clear();
            let result = read_regular(path, opts.max_size, &mut buf)
                .and_then(|()| super::scan_text(&buf, known, &shown(path), None));
            let mut t = total.lock().expect("walk lock");
            match result {
                Ok(found) => {
                    t.files += 1;
                    t.bytes += buf.len() as u64;
                    t.findings.extend(found);
                }
                Err(why) => t.skip(shown(path), why),
            }
            WalkState::Continue
        })
    });
    let mut total = total.into_inner().expect("walk lock");
    if count_ignored {
        let seen = seen.into_inner().expect("walk lock");
        // What the ignore files left out: a second walk of names only (no file is read),
        // not descending into an ignored directory (it is counted as one entry).
        let mut all = builder(opts, false);
        let ignored = Arc::new(Mutex::new(Vec::new()));
        all.filter_entry({
            let ignored = Arc::clone(&ignored);
            move |e| {
                if e.file_name() == ".git" {
                    return false;
                }
                if e.depth() == 0 || seen.contains(e.path()) {
                    return true;
                }
                ignored.lock().expect("walk lock").push(shown(e.path()));
                false
            }
        });
        for _ in all.build() {}
        for p in std::mem::take(&mut *ignored.lock().expect("walk lock")) {
            total.skip(p, Skip::Ignored);
        }
    }
    total
        .findings
        .sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
    total.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    total
}
#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::key::{Format, mint};

    #[test]
    fn ignored_hidden_binary_and_huge_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let s = |_: u8| {
            mint(Format::Standard, "kca_")
                .secret
                .expose_secret()
                .to_string()
        };
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("found.yml"), format!("k: {}\n", s(0))).unwrap();
        std::fs::write(root.join("ignored.txt"), s(1)).unwrap();
        std::fs::write(root.join(".hidden"), s(2)).unwrap();
        let mut bin = vec![0u8, 1, 2];
        bin.extend_from_slice(s(3).as_bytes());
        std::fs::write(root.join("blob.bin"), bin).unwrap();
        std::fs::write(
            root.join("huge.txt"),
            format!("{}{}", "x".repeat(2000), s(4)),
        )
        .unwrap();
        let mut opts = WalkOptions {
            paths: vec![root.to_path_buf()],
            hidden: false,
            no_ignore: false,
            max_size: 1000,
        };
        let k = Known::new([0u8; 32]);
        let w = scan_paths(&opts, &k);
        let files: Vec<&str> = w.findings.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(files[0].ends_with("found.yml"));
        opts.hidden = true;
        opts.no_ignore = true;
        opts.max_size = 1 << 20;
        assert_eq!(scan_paths(&opts, &k).findings.len(), 4);
    }
}
