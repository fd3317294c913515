//! Walking a tree the way ripgrep does (it is ripgrep's own walker, the `ignore` crate):
//! `.gitignore`, `.ignore` and hidden files respected unless asked otherwise, binary
//! files (a NUL in the first 8 KiB) and files over the size limit skipped, every core
//! busy. Each file is read whole (within the limit) and dropped before the next, so memory
//! stays flat in the size of the tree.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;

use ignore::{WalkBuilder, WalkState};

use super::{Finding, Known, scan_buffer};

/// What to walk and what to skip.
#[derive(Clone, Debug)]
pub struct WalkOptions {
    pub paths: Vec<PathBuf>,
    /// Look into hidden files and directories too.
    pub hidden: bool,
    /// Ignore `.gitignore` and `.ignore`.
    pub no_ignore: bool,
    /// Files larger than this are skipped.
    pub max_size: u64,
}

/// What a walk found, and what it passed over.
#[derive(Default)]
pub struct Walked {
    pub findings: Vec<Finding>,
    pub files: usize,
    pub bytes: u64,
    /// Files that could not be read, with why (for `-v`).
    pub unreadable: Vec<String>,
}

/// Scans every file under the paths, in parallel. Findings come back sorted by path,
/// line and column.
pub fn scan_paths(opts: &WalkOptions, known: &Known) -> Walked {
    let mut paths = opts.paths.iter();
    let first = paths.next().cloned().unwrap_or_else(|| PathBuf::from("."));
    let mut b = WalkBuilder::new(&first);
    for p in paths {
        b.add(p);
    }
    b.hidden(!opts.hidden)
        .ignore(!opts.no_ignore)
        .git_ignore(!opts.no_ignore)
        .git_global(!opts.no_ignore)
        .git_exclude(!opts.no_ignore)
        .parents(!opts.no_ignore)
        .require_git(false)
        // No max_filesize here: it costs a stat per file; the read below stops at the limit.
        // Git's own store is scanned with --git, blob by blob, not as files.
        .filter_entry(|e| e.file_name() != ".git")
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = Mutex::new(Walked::default());
    b.build_parallel().run(|| {
        let total = &total;
        let mut buf = Vec::with_capacity(64 * 1024);
        Box::new(move |entry| {
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let path = entry.path();
            buf.clear();
            let read = std::fs::File::open(path)
                .and_then(|f| f.take(opts.max_size + 1).read_to_end(&mut buf));
            if let Err(e) = read {
                total
                    .lock()
                    .expect("walk lock")
                    .unreadable
                    .push(format!("{}: {e}", path.display()));
                return WalkState::Continue;
            }
            if !super::is_text(&buf, buf.len() as u64, opts.max_size) {
                return WalkState::Continue;
            }
            let shown = path
                .strip_prefix("./")
                .unwrap_or(path)
                .display()
                .to_string();
            let found = scan_buffer(&buf, known, &shown, None);
            let mut t = total.lock().expect("walk lock");
            t.files += 1;
            t.bytes += buf.len() as u64;
            t.findings.extend(found);
            WalkState::Continue
        })
    });
    let mut total = total.into_inner().expect("walk lock");
    total
        .findings
        .sort_by(|a, b| (&a.path, a.line, a.col).cmp(&(&b.path, b.line, b.col)));
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
