//! File handling shared by everything that keeps files beside the database (the policy
//! snapshot, the login state, the auth-log inbox): their names (`<database><suffix>`),
//! bounded `flock` waits, atomic replacement by rename, removal that tolerates absence.
//! It depends on nothing else in the crate, so the store, the snapshot and the login state
//! can all use it without importing each other.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// `<database><suffix>`, like SQLite's own `-journal` file.
pub(crate) fn sibling(database: &Path, suffix: &str) -> PathBuf {
    let mut s = database.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The longest a login waits for a lock on a state file (or the database): past it the
/// operation fails, naming the file, and the fail rules apply.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Takes an `flock` on `file` (exclusive or shared), waiting at most [`LOCK_WAIT`].
pub fn lock_within(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let res = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match res {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
        let spent = start.elapsed();
        if spent >= LOCK_WAIT {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "still locked by another process after {} s (a hung mfa-admin or login? `fuser -v` names it)",
                        LOCK_WAIT.as_secs()
                    ),
                ),
            ));
        }
        std::thread::sleep(pause.min(LOCK_WAIT - spent));
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// A temporary name beside `path`, unique across processes and threads.
pub(crate) fn temp_name(path: &Path) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!("{TMP_MARK}{}.{n}", std::process::id()));
    PathBuf::from(tmp)
}

/// Marks temporary files (never a challenge id, which is hex).
const TMP_MARK: &str = ".tmp";

/// Removes a file; one that is not there is fine.
pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader sees the
/// old file, no file, or the whole new one. `durable` adds the fsyncs of the file and of
/// its directory.
pub(crate) fn replace(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let tmp = write_temp(path, durable, |f| f.write_all(bytes))?;
    install(&tmp, path, durable)
}

/// The first half of [`replace`]: the content written into a new temporary file beside
/// `path` (fsynced when `durable`), not yet in place; its name is returned. A failure leaves
/// no temporary file.
pub(crate) fn write_temp(
    path: &Path,
    durable: bool,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<PathBuf> {
    let tmp = temp_name(path);
    let res = (|| -> std::io::Result<()> {
        // A new file, never one found there (a leftover of a crashed process with the same
        // pid, or a link planted at the name): removed, then created exclusively.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        write(&mut f)?;
        if durable {
            f.sync_all()?;
        }
        Ok(())
    })();
    match res {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(Error::io(path, e))
        }
    }
}

/// The second half of [`replace`]: `tmp` renamed to `path` (the directory fsynced when
/// `durable`); on failure `tmp` is removed.
pub(crate) fn install(tmp: &Path, path: &Path, durable: bool) -> Result<()> {
    let res = (|| -> std::io::Result<()> {
        std::fs::rename(tmp, path)?;
        if durable && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    res.map_err(|e| Error::io(path, e))
}
