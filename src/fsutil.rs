//! Private, crash-safe files: directories 0700, files 0600, writes that are atomic
//! (temp file in the same directory, fsync, rename, fsync of the directory) and
//! serialized by an exclusive lock file, so that many keyctl processes at once lose
//! nothing and a crash leaves either the old file or the new one.
//!
//! A file keyctl writes may hold a secret (the file store, a configuration file with a
//! `soda_cloud` block), so a crash must not leave a *named* temporary copy behind either
//! (in a git working tree it gets committed). On Linux the new content is written to an
//! unnamed file (`O_TMPFILE`), named only once complete, and renamed over the target
//! right away: the named copy exists for two system calls. Elsewhere, or where the file
//! system has no `O_TMPFILE`, a named temporary file is used; either way, temporary files
//! of our naming left by a killed keyctl are removed by the next write beside them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// Creates `dir` (and parents) with mode 0700 where it has to create them.
pub(crate) fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Holds an exclusive lock on a lock file until dropped.
#[derive(Debug)]
pub(crate) struct LockGuard {
    _file: File,
    /// A lock file of one operation, removed while still locked when the guard drops.
    remove: Option<std::path::PathBuf>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(p) = &self.remove {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(crate) fn lock_exclusive(path: &Path) -> anyhow::Result<LockGuard> {
    let file = open_lock_file(path)?;
    file.lock()
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(LockGuard {
        _file: file,
        remove: None,
    })
}

/// The lock file at `path` (0600, created with its directory when missing).
fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        ensure_private_dir(dir)?;
    }
    let mut o = OpenOptions::new();
    o.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
        .with_context(|| format!("cannot open lock file {}", path.display()))
}

/// Takes an exclusive lock without waiting: Err when another process holds it.
pub(crate) fn try_lock(path: &Path) -> anyhow::Result<LockGuard> {
    let file = open_lock_file(path)?;
    file.try_lock()
        .map_err(|e| anyhow::anyhow!("{} is locked: {e}", path.display()))?;
    Ok(LockGuard {
        _file: file,
        remove: None,
    })
}

/// [`try_lock`] for a lock file of one operation on one thing (`rotate-ID.lock`): the file
/// is removed when the guard drops, so none stays per key. A process that opened the file
/// just before its holder removed it would lock a file no longer at `path`; it notices
/// (the path names another file, or none) and tries again with the file now there.
pub(crate) fn try_lock_removable(path: &Path) -> anyhow::Result<LockGuard> {
    for _ in 0..3 {
        let mut guard = try_lock(path)?;
        if same_file(&guard._file, path) {
            guard.remove = Some(path.to_path_buf());
            return Ok(guard);
        }
    }
    anyhow::bail!("{} is locked", path.display())
}

/// True when `path` names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        // Windows does not delete a file another process holds open.
        let _ = file;
        path.exists()
    }
}

/// How old a temporary file of ours must be before a later write removes it (a live
/// writer holds its own for milliseconds).
const STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// Replaces `path` with `bytes` atomically; the new file is 0600 from its first byte.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let prefix = format!(".{}.", name.as_deref().unwrap_or("keyctl"));
    remove_stale(dir, &prefix);
    // Our temporary files carry our PID, so the next run knows which ones nobody is
    // writing any more.
    let ours = format!("{prefix}pid{}.", std::process::id());
    #[cfg(target_os = "linux")]
    if unnamed::write(dir, path, &ours, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?
    {
        return Ok(());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&ours)
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `PREFIX*.tmp` files of our naming that no running keyctl is writing: those
/// whose process is gone (the PID in the name), or, named by an older keyctl without
/// one, older than [`STALE`]. What a killed keyctl left beside the file it replaced.
fn remove_stale(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if !(n.starts_with(prefix) && n.ends_with(".tmp")) {
            continue;
        }
        let writer = n[prefix.len()..]
            .strip_prefix("pid")
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let abandoned = match writer {
            Some(pid) => pid != std::process::id() && !alive(pid),
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE),
        };
        if abandoned {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether process `pid` still exists.
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(target_os = "linux")]
mod unnamed {
    use std::ffi::CString;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    use std::path::Path;

    /// Writes through an unnamed file; Ok(false) where the file system cannot.
    pub(super) fn write(
        dir: &Path,
        path: &Path,
        prefix: &str,
        bytes: &[u8],
    ) -> std::io::Result<bool> {
        let opened = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir);
        let mut file = match opened {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        file.write_all(bytes)?;
        file.sync_all()?;
        let tmp = dir.join(format!("{prefix}{:016x}.tmp", rand::random::<u64>()));
        let src = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
        let dst = CString::new(tmp.as_os_str().as_bytes())?;
        // SAFETY: both paths are NUL-terminated C strings that outlive the call.
        let linked = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                src.as_ptr(),
                libc::AT_FDCWD,
                dst.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if linked != 0 {
            // No /proc (a chroot): the named path below does the job.
            return Ok(false);
        }
        if let Err(e) = std::fs::rename(&tmp, path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(true)
    }
}

/// Refuses a file keyctl keeps that is a symbolic link (writing it would replace the
/// link and leave the target's old contents behind) and, for a file holding secrets
/// (`secret`), one that group or others may read or that another user owns, as ssh
/// refuses such a private key. A missing file is fine.
pub(crate) fn check_private(path: &Path, secret: bool) -> anyhow::Result<()> {
    let m = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if m.file_type().is_symlink() {
        anyhow::bail!(
            "{} is a symbolic link; keyctl keeps it as a regular file: move the file it points to in its place (or remove the link)",
            path.display()
        );
    }
    #[cfg(not(unix))]
    let _ = secret;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if m.uid() != me {
            anyhow::bail!(
                "{} belongs to another user (uid {}); keyctl reads secrets only from its own files",
                path.display(),
                m.uid()
            );
        }
        if m.mode() & 0o077 != 0 {
            anyhow::bail!(
                "{} can be read or written by group or others (mode {:o}); `chmod 600 {}` fixes it",
                path.display(),
                m.mode() & 0o777,
                path.display()
            );
        }
    }
    Ok(())
}

/// True when others than the owner may write `dir` (a keyctl home anyone can change).
pub(crate) fn writable_by_others(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o022 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

/// serde_json's error without its quote of the input: a bare JSON string where a map
/// belongs would otherwise put the string (a secret) into the message.
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "not JSON",
        Category::Data => "not the expected JSON structure",
        Category::Eof => "cut short",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Reads a file, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        // A parent that is a file means the file cannot exist either; the later write
        // reports the real problem ("cannot create directory").
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
