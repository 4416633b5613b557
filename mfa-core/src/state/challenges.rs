//! Passcode challenge files: `<database>-challenges/ID`, one per code sent and not yet
//! answered, holding only a keyed hash of the code. Logins sweep a bounded number of
//! expired ones as they go; [`sweep_challenges`] (the daily `mfa-admin maintain`) all of them.
//!
//! Files are read through [`read_regular`]: never through a symlink, never blocking on a
//! FIFO or a device, at most [`MAX_FILE`] bytes; anything in the directory that is not a
//! regular file named like a challenge is left alone.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use serde::{Deserialize, Serialize};

use super::{dir, remove_if_exists, replace};
use crate::files::sibling;
use crate::{Error, Result};

/// An outstanding challenge. Only a keyed hash of the code is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub id: String,
    pub user: String,
    pub service: String,
    pub address: String,
    /// login or enroll.
    pub purpose: String,
    pub prefix: char,
    pub code_hash: Vec<u8>,
    pub destination: String,
    pub created: i64,
    pub expires: i64,
    pub attempts_left: i64,
    pub resends: i64,
}

fn is_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(super) fn challenge_path(database: &Path, id: &str) -> Result<PathBuf> {
    if !is_id(id) {
        return Err(Error::Invalid(format!("bad challenge id {id:?}")));
    }
    Ok(sibling(database, "-challenges").join(id))
}

/// The directory of the challenge files of `database`.
pub fn challenges_dir(database: &Path) -> PathBuf {
    sibling(database, "-challenges")
}

/// The largest challenge file read (one is a few hundred bytes).
pub const MAX_FILE: u64 = 64 * 1024;

/// What was found at a path that should hold a regular file.
#[derive(Debug)]
pub(crate) enum Regular {
    /// Its first [`MAX_FILE`] bytes and its age in seconds (by modification time).
    File(Vec<u8>, u64),
    /// Something else: a symlink, a FIFO, a directory, a device or a socket (named).
    Not(&'static str),
}

/// Reads a regular file without following a symlink and without blocking on a FIFO (opened
/// `O_NOFOLLOW | O_NONBLOCK`, its type checked on the open descriptor before any read).
/// `Ok(None)`: there is nothing at `path`.
pub(crate) fn read_regular(path: &Path) -> std::io::Result<Option<Regular>> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // ELOOP: the last component is a symlink.
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Ok(Some(Regular::Not("a symlink")));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    let t = meta.file_type();
    if !t.is_file() {
        return Ok(Some(Regular::Not(kind(t))));
    }
    let age = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .map_or(0, |d| d.as_secs());
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes)?;
    Ok(Some(Regular::File(bytes, age)))
}

/// A file type in words.
fn kind(t: std::fs::FileType) -> &'static str {
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Files one login's sweep looks at, at most.
pub const SWEEP_AT_MOST: usize = 256;

/// Stores a new challenge, and drops challenges that expired over an hour ago (a bounded
/// number of them).
pub fn put_challenge(database: &Path, c: &Challenge) -> Result<()> {
    let d = dir(database, "-challenges")?;
    let path = challenge_path(database, &c.id)?;
    let bytes = serde_json::to_vec(c).map_err(|e| Error::Failed(e.to_string()))?;
    // The id is 128 random bits: a new name, written in place (one file creation; a
    // concurrent purge leaves a file it cannot parse alone for an hour).
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(&bytes))
        .map_err(|e| Error::io(&path, e))?;
    // Challenges whose login was killed (a hang-up takes its own along) go away with later
    // ones: one issue in 16 (its random id starts with 0) looks at up to SWEEP_AT_MOST files
    // of the directory, so a login never pays for a large directory (each user has at most
    // sends::MAX_CHALLENGES, and their own expired ones go at their next login).
    if c.id.starts_with('0') {
        let _ = purge_challenges(&d, SWEEP_AT_MOST, |old| old.expires < c.created - 3600);
    }
    Ok(())
}

/// Reads a challenge by id.
pub fn challenge(database: &Path, id: &str) -> Result<Option<Challenge>> {
    let path = challenge_path(database, id)?;
    match read_regular(&path) {
        Ok(Some(Regular::File(b, _))) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Database(format!("{}: {e}", path.display()))),
        Ok(Some(Regular::Not(what))) => Err(Error::Database(format!(
            "{}: {what}, not a challenge file",
            path.display()
        ))),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Uses a challenge up by removing its file: `true` for the one caller that removed it,
/// `false` when it was already gone (another login used it).
pub fn claim_challenge(database: &Path, id: &str) -> Result<bool> {
    let path = challenge_path(database, id)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// Rewrites an outstanding challenge (a double logon's attempts left; under the user's lock,
/// after reading it there).
pub fn update_challenge(database: &Path, c: &Challenge) -> Result<()> {
    let bytes = serde_json::to_vec(c).map_err(|e| Error::Failed(e.to_string()))?;
    replace(&challenge_path(database, &c.id)?, &bytes, false)
}

/// Removes a challenge (answered, replaced or given up).
pub fn delete_challenge(database: &Path, id: &str) -> Result<()> {
    remove_if_exists(&challenge_path(database, id)?)
}

/// Every outstanding challenge (for `mfa-admin` and tests).
pub fn challenges(database: &Path) -> Result<Vec<Challenge>> {
    let d = sibling(database, "-challenges");
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&d, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let name = entry.map_err(|e| Error::io(&d, e))?.file_name();
        if let Some(c) = name
            .to_str()
            .and_then(|n| challenge(database, n).ok().flatten())
        {
            out.push(c);
        }
    }
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(out)
}

/// Removes the challenges of `user` (deleted), or every challenge when `None`.
pub fn drop_challenges_of(database: &Path, user: Option<&str>) -> Result<usize> {
    let d = sibling(database, "-challenges");
    if !d.exists() {
        return Ok(0);
    }
    purge_challenges(&d, usize::MAX, |c| user.is_none_or(|u| c.user == u))
}

fn purge_challenges(
    d: &Path,
    at_most: usize,
    doomed: impl Fn(&Challenge) -> bool,
) -> Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(d)
        .map_err(|e| Error::io(d, e))?
        .take(at_most)
    {
        let entry = entry.map_err(|e| Error::io(d, e))?;
        if let Found::Removed(_) = sweep_one(&entry, &doomed) {
            n += 1;
        }
    }
    Ok(n)
}

/// What [`sweep_one`] did with an entry of the challenges directory.
enum Found {
    /// A challenge file that stays.
    Kept,
    /// Removed: a doomed challenge (`false`), or a file an hour old that does not parse
    /// (`true`).
    Removed(bool),
    /// Not a challenge file (named why): left alone.
    Foreign(String),
    /// Gone meanwhile: another sweep, or its login, took it.
    Raced,
    /// Could not be read or removed (named why).
    Failed(String),
}

/// Looks at one entry: removes it when it is a challenge file that `doomed` says goes, or a
/// file named like one that does not parse and is over an hour old (a crashed writer's
/// leftover: one that does not parse may be being written right now). Only regular files
/// named like a challenge id are read or removed; a symlink is neither followed nor removed.
fn sweep_one(entry: &std::fs::DirEntry, doomed: &impl Fn(&Challenge) -> bool) -> Found {
    let name = entry.file_name();
    let shown = format!("{:?}", name.to_string_lossy());
    if !name.to_str().is_some_and(is_id) {
        return Found::Foreign(format!("{shown}: not named like a challenge"));
    }
    // The entry's own type (lstat): a symlink is not followed.
    match entry.file_type() {
        Ok(t) if t.is_file() => {}
        Ok(t) => return Found::Foreign(format!("{shown}: {}", kind(t))),
        Err(e) => return Found::Failed(format!("{shown}: {e}")),
    }
    let path = entry.path();
    let (bytes, age) = match read_regular(&path) {
        Ok(Some(Regular::File(b, age))) => (b, age),
        Ok(Some(Regular::Not(what))) => return Found::Foreign(format!("{shown}: {what}")),
        Ok(None) => return Found::Raced,
        Err(e) => return Found::Failed(format!("{shown}: {e}")),
    };
    let gone = match serde_json::from_slice::<Challenge>(&bytes) {
        Ok(c) => doomed(&c).then_some(false),
        Err(_) => (age > 3600).then_some(true),
    };
    match gone {
        None => Found::Kept,
        Some(unparsed) => match std::fs::remove_file(&path) {
            Ok(()) => Found::Removed(unparsed),
            // Another sweep, or the login itself, was first.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Found::Raced,
            Err(e) => Found::Failed(format!("{shown}: {e}")),
        },
    }
}

/// How long after its expiry a challenge file stays: a login still at its prompt then reads
/// "expired" rather than "vanished". The same hour as the logins' own sweep.
pub const SWEEP_GRACE: i64 = 3600;

/// What [`sweep_challenges`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    /// Challenges removed: expired over [`SWEEP_GRACE`] ago (their login was abandoned or
    /// killed, or answered too late).
    pub expired: usize,
    /// Files named like a challenge that did not parse, removed when over an hour old.
    pub unreadable: usize,
    /// Challenges that stay (outstanding, or expired less than [`SWEEP_GRACE`] ago).
    pub kept: usize,
    /// Entries left alone because they are not challenge files (a symlink, a FIFO, a
    /// directory, another name), each named and escaped: worth an administrator's look.
    pub foreign: Vec<String>,
    /// Files gone between listing and reading or removing them (another sweep, or their
    /// login, took them).
    pub raced: usize,
    /// Entries that could not be read or removed, each with why.
    pub failed: Vec<String>,
}

/// Sweeps the whole challenges directory of `database` (where logins look at a bounded
/// number of files, [`SWEEP_AT_MOST`]): removes every challenge that expired more than
/// [`SWEEP_GRACE`] before `now`, and files named like a challenge that do not parse and are
/// over an hour old. Nothing else is touched; no entry stops the sweep. Safe beside logins
/// and another sweep: a challenge file is only ever created under a new name and removed,
/// and a file that vanishes meanwhile is counted in `raced`.
pub fn sweep_challenges(database: &Path, now: i64) -> Result<Swept> {
    let d = sibling(database, "-challenges");
    match std::fs::symlink_metadata(&d) {
        Ok(m) if m.is_dir() => {}
        Ok(m) => {
            return Err(Error::Insecure(format!(
                "{} is {}, not a directory: remove it (logins recreate it, mode 0700)",
                d.display(),
                kind(m.file_type())
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Swept::default()),
        Err(e) => return Err(Error::io(&d, e)),
    }
    let doomed = |c: &Challenge| c.expires < now.saturating_sub(SWEEP_GRACE);
    let mut out = Swept::default();
    for entry in std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.failed.push(e.to_string());
                continue;
            }
        };
        match sweep_one(&entry, &doomed) {
            Found::Kept => out.kept += 1,
            Found::Removed(false) => out.expired += 1,
            Found::Removed(true) => out.unreadable += 1,
            Found::Foreign(why) => out.foreign.push(why),
            Found::Raced => out.raced += 1,
            Found::Failed(why) => out.failed.push(why),
        }
    }
    out.foreign.sort();
    Ok(out)
}

/// Makes every outstanding challenge expired (tests of expiry).
#[doc(hidden)]
pub fn expire_all_challenges(database: &Path) -> Result<()> {
    for mut c in challenges(database)? {
        c.expires = 1;
        let bytes = serde_json::to_vec(&c).map_err(|e| Error::Failed(e.to_string()))?;
        replace(&challenge_path(database, &c.id)?, &bytes, false)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ch(id: &str, user: &str, created: i64) -> Challenge {
        Challenge {
            id: id.into(),
            user: user.into(),
            service: "sshd".into(),
            address: "".into(),
            purpose: "login".into(),
            prefix: 'K',
            code_hash: vec![1, 2, 3],
            destination: "a***@e***.com".into(),
            created,
            expires: created + 600,
            attempts_left: 2,
            resends: 0,
        }
    }

    #[test]
    fn challenges_round_trip_and_expire() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        put_challenge(&db, &ch("aa01", "ann", 10_000)).unwrap();
        assert_eq!(
            challenge(&db, "aa01").unwrap(),
            Some(ch("aa01", "ann", 10_000))
        );
        // An id is used once.
        assert!(put_challenge(&db, &ch("aa01", "ann", 10_000)).is_err());
        // A file being written (not parseable yet) survives a purge.
        std::fs::write(sibling(&db, "-challenges").join("cc03"), b"{").unwrap();
        // A challenge issued two hours later sweeps the one that expired long ago (when its
        // id starts with 0: one in 16 does the sweeping).
        put_challenge(&db, &ch("bb02", "bob", 10_000 + 7200)).unwrap();
        assert!(challenge(&db, "aa01").unwrap().is_some());
        put_challenge(&db, &ch("0b02", "bob", 10_000 + 7200)).unwrap();
        assert_eq!(challenge(&db, "aa01").unwrap(), None);
        assert_eq!(challenges(&db).unwrap().len(), 2);
        assert!(sibling(&db, "-challenges").join("cc03").exists());
        assert_eq!(drop_challenges_of(&db, Some("bob")).unwrap(), 2);
        assert!(challenges(&db).unwrap().is_empty());
        // Ids are hex: nothing else reaches the file system.
        assert!(challenge(&db, "../mfa.db").is_err());
    }

    /// An expired, long-abandoned challenge (its file an hour old and more).
    fn old(db: &Path, id: &str, user: &str) {
        let mut c = ch(id, user, 1_000);
        c.expires = 1_600;
        put_challenge(db, &c).unwrap();
    }

    fn age_file(path: &Path, secs: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn the_full_sweep_takes_every_expired_challenge_and_only_those() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let now = 1_000_000;
        assert_eq!(
            sweep_challenges(&db, now).unwrap(),
            Swept::default(),
            "no directory yet"
        );
        // More than one login's sweep looks at.
        for n in 0..(SWEEP_AT_MOST as u32 + 44) {
            old(&db, &format!("a{n:04x}"), "ann");
        }
        let live = ch("b001", "bob", now - 60);
        put_challenge(&db, &live).unwrap();
        // Expired a minute ago: the login at its prompt still reads "expired".
        let mut recent = ch("b002", "bob", now - 700);
        recent.expires = now - 60;
        put_challenge(&db, &recent).unwrap();
        let cdir = sibling(&db, "-challenges");
        // Named like a challenge but not one: a fresh one may be being written, an old one
        // is a crashed writer's leftover.
        std::fs::write(cdir.join("c001"), b"{\"id\":").unwrap();
        std::fs::write(cdir.join("c002"), b"\xff\xfe").unwrap();
        age_file(&cdir.join("c002"), 7200);
        let s = sweep_challenges(&db, now).unwrap();
        assert_eq!(s.expired, SWEEP_AT_MOST + 44);
        assert_eq!((s.unreadable, s.kept), (1, 3));
        assert!(s.foreign.is_empty() && s.failed.is_empty(), "{s:?}");
        let mut left: Vec<String> = challenges(&db).unwrap().into_iter().map(|c| c.id).collect();
        left.sort();
        assert_eq!(left, ["b001", "b002"]);
        assert!(cdir.join("c001").exists() && !cdir.join("c002").exists());
        // A second sweep finds nothing more to do.
        let again = sweep_challenges(&db, now).unwrap();
        assert_eq!((again.expired, again.unreadable, again.kept), (0, 0, 3));
    }

    /// Hostile entries: a symlink (to an expired challenge elsewhere, and to a file that is
    /// not one), a FIFO and a directory named like challenges, files with other names (a
    /// newline, bytes that are not UTF-8, a path-like name). Nothing is followed, nothing
    /// blocks, none is removed, and the sweep goes on to the real expired challenge.
    #[test]
    fn hostile_entries_are_left_alone_and_do_not_stop_the_sweep() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        old(&db, "a001", "ann");
        let cdir = sibling(&db, "-challenges");
        // An expired challenge outside the directory, and a precious file.
        let outside = d.path().join("elsewhere");
        std::fs::create_dir(&outside).unwrap();
        let target = outside.join("a002");
        std::fs::write(&target, serde_json::to_vec(&ch("a002", "ann", 5)).unwrap()).unwrap();
        age_file(&target, 7200);
        let precious = outside.join("precious");
        std::fs::write(&precious, b"not json").unwrap();
        age_file(&precious, 7200);
        std::os::unix::fs::symlink(&target, cdir.join("a002")).unwrap();
        std::os::unix::fs::symlink(&precious, cdir.join("a003")).unwrap();
        nix::unistd::mkfifo(
            &cdir.join("a004"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::create_dir(cdir.join("a005")).unwrap();
        std::fs::write(cdir.join("a005/a006"), b"x").unwrap();
        let expired = serde_json::to_vec(&ch("a007", "ann", 5)).unwrap();
        use std::os::unix::ffi::OsStrExt;
        let weird = [
            std::ffi::OsStr::from_bytes(b"a007\n"),
            std::ffi::OsStr::from_bytes(b"\xff\xfe"),
            std::ffi::OsStr::from_bytes(b"..a007"),
            std::ffi::OsStr::from_bytes(b"a007.tmp1.2"),
        ];
        for w in weird {
            std::fs::write(cdir.join(w), &expired).unwrap();
            age_file(&cdir.join(w), 7200);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let db2 = db.clone();
        std::thread::spawn(move || {
            let _ = tx.send((sweep_challenges(&db2, 1_000_000), challenges(&db2)));
        });
        let (swept, listed) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the sweep blocked (on the FIFO?)");
        let s = swept.unwrap();
        assert_eq!((s.expired, s.unreadable, s.kept), (1, 0, 0), "{s:?}");
        assert_eq!(s.foreign.len(), 4 + weird.len(), "{s:?}");
        assert!(s.foreign.iter().any(|f| f.contains("a FIFO")), "{s:?}");
        assert!(s.foreign.iter().any(|f| f.contains("a directory")), "{s:?}");
        assert_eq!(
            s.foreign.iter().filter(|f| f.contains("a symlink")).count(),
            2
        );
        assert!(
            s.foreign.iter().any(|f| f.contains("\\n")),
            "names are escaped: {s:?}"
        );
        // The listing does not block or follow either.
        assert!(listed.unwrap().is_empty());
        assert!(target.exists() && precious.exists());
        for name in ["a002", "a003", "a004", "a005", "a005/a006"] {
            assert!(
                cdir.join(name).symlink_metadata().is_ok(),
                "{name} was removed"
            );
        }
        for w in weird {
            assert!(cdir.join(w).exists(), "{w:?} was removed");
        }
        assert!(!cdir.join("a001").exists());
        // Reading a hostile entry by id is an error, never a hang or a followed link.
        assert!(challenge(&db, "a002").is_err());
        assert!(challenge(&db, "a004").is_err());
        assert!(challenge(&db, "a005").is_err());
        // The logins' own sweep leaves them alone too.
        put_challenge(&db, &ch("0001", "bob", 1_000_000)).unwrap();
        assert!(cdir.join("a003").symlink_metadata().is_ok() && precious.exists());
    }

    #[test]
    fn a_challenges_path_that_is_not_a_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(
            elsewhere.join("a001"),
            serde_json::to_vec(&ch("a001", "x", 5)).unwrap(),
        )
        .unwrap();
        std::os::unix::fs::symlink(&elsewhere, sibling(&db, "-challenges")).unwrap();
        let e = sweep_challenges(&db, 1_000_000).unwrap_err();
        assert!(e.to_string().contains("a symlink, not a directory"), "{e}");
        assert!(elsewhere.join("a001").exists());
    }

    #[test]
    fn a_sweep_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        // 2,000 long-expired leftovers of killed logins.
        for n in 0..2000u32 {
            put_challenge(&db, &ch(&format!("a{n:04x}"), "ann", 10)).unwrap();
        }
        let t = std::time::Instant::now();
        put_challenge(&db, &ch("0fff", "bob", 100_000)).unwrap();
        let spent = t.elapsed();
        let left = challenges(&db).unwrap().len();
        assert_eq!(
            left,
            2001 - SWEEP_AT_MOST,
            "one sweep looks at SWEEP_AT_MOST files"
        );
        assert!(spent < std::time::Duration::from_millis(500), "{spent:?}");
        // Later sweeps take the rest.
        for k in 0..8u32 {
            put_challenge(&db, &ch(&format!("0e{k:02x}"), "bob", 100_000)).unwrap();
        }
        assert_eq!(challenges(&db).unwrap().len(), 9);
    }
}
