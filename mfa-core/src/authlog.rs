//! The auth log's inbox: the PAM module appends one JSON line per outcome to
//! `<database>-authlog` instead of writing the database, and `mfa-admin` (every command, and
//! `mfa-admin maintain`) moves the lines into the `auth_log` table. A database write costs
//! the module an open, a journal and fsyncs; an append costs one `write`. A login never
//! moves lines into the database: once the inbox reaches [`ROTATE_AT`] bytes, the appender
//! that finds it so renames it to `<database>-authlog.<time>.<random>` (a rotated file) and
//! the next append starts a new inbox.
//!
//! Locks: appenders take a shared `flock` around their single `write`, and check after
//! taking it that the file they hold is still the one named `<database>-authlog` (else it was
//! rotated meanwhile, and they open the new one). A rename happens under the exclusive lock,
//! taken without waiting by an appender (a busy inbox is rotated by a later one), so no
//! appender waits longer than a rename, and every line lands in a file that is moved later.
//! The mover renames the inbox the same way, then takes each rotated file's lock exclusively
//! (after which nobody writes to it), reads it, commits its lines and removes it.
//!
//! Each line carries a random event id, and the table has a unique index on it, so a line
//! moved twice (a crash between the commit and the removal) is stored once. A line that does
//! not parse (a disk that filled up mid-write) is skipped and counted.
//!
//! When nothing moves the lines for long, at most [`MAX_ROTATED`] rotated files are kept
//! (64 MiB): past that the inbox is no longer rotated and grows (nothing is ever deleted,
//! every append still works), and `mfa-admin doctor` warns about the backlog. Anything in
//! the directory named like a rotated file that is not a regular file (a symlink, a FIFO) is
//! neither followed nor opened for reading, and doctor names it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};

use crate::files::sibling;
use crate::store::logs::AuthEvent;
use crate::{Error, Result};

/// Inbox size from which an appender renames it to a rotated file.
pub const ROTATE_AT: u64 = 1 << 20;

/// Rotated files kept at most; past it the inbox grows instead (doctor warns).
pub const MAX_ROTATED: usize = 64;

/// Appends that found the inbox rotated under them, at most, before giving up.
const REOPENS: usize = 16;

/// The inbox file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-authlog")
}

/// One line of the inbox: the event and a random id that makes moving it idempotent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Line {
    pub event: String,
    #[serde(flatten)]
    pub ev: AuthEvent,
}

/// Opens without following a symlink, without hanging on a FIFO, and only a regular file.
fn open_regular(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let f = options
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// Whether `path` still names the file `f` (it was not renamed or replaced).
fn still_named(f: &File, path: &Path) -> std::io::Result<bool> {
    let held = f.metadata()?;
    Ok(match std::fs::symlink_metadata(path) {
        Ok(m) => m.dev() == held.dev() && m.ino() == held.ino(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    })
}

/// Appends one outcome to the inbox of `database` (time 0 means now).
pub fn append(database: &Path, ev: &AuthEvent) -> Result<()> {
    let id = crate::passcode::random_bytes::<12>()?;
    let mut ev = ev.clone();
    if ev.time == 0 {
        ev.time = crate::now();
    }
    let line = Line {
        event: id.iter().map(|b| format!("{b:02x}")).collect(),
        ev,
    };
    // A newline before as well as after: a line cut short (a full disk) ends at the next
    // record instead of swallowing it.
    let mut bytes = vec![b'\n'];
    bytes.extend(serde_json::to_vec(&line).map_err(|e| Error::Failed(e.to_string()))?);
    bytes.push(b'\n');
    let p = path_for(database);
    for _ in 0..REOPENS {
        let mut f = open_regular(&p, OpenOptions::new().append(true).create(true).mode(0o600))
            .map_err(|e| Error::io(&p, e))?;
        // Bounded, like every wait of a login: a mover that hangs must not hang logins.
        crate::files::lock_within(&f, &p, false)?;
        if !still_named(&f, &p).map_err(|e| Error::io(&p, e))? {
            continue; // rotated between the open and the lock: append to the new inbox
        }
        // One write: appends of concurrent logins never interleave.
        f.write_all(&bytes).map_err(|e| Error::io(&p, e))?;
        let len = f.metadata().map_err(|e| Error::io(&p, e))?.len();
        if len >= ROTATE_AT {
            // The line is written; a rotation that cannot happen now happens later.
            let _ = rotate_full(&f, &p, database);
        }
        return Ok(());
    }
    Err(Error::io(
        &p,
        std::io::Error::other(format!(
            "rotated under this append {REOPENS} times in a row; is something renaming it?"
        )),
    ))
}

/// An appender's rotation: only if the exclusive lock is free right now (no waiting behind
/// other appenders), the file is still the inbox and fewer than [`MAX_ROTATED`] rotated
/// files wait.
fn rotate_full(f: &File, p: &Path, database: &Path) -> Result<()> {
    f.unlock().map_err(|e| Error::io(p, e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(p, e)),
    }
    if !still_named(f, p).map_err(|e| Error::io(p, e))? {
        return Ok(());
    }
    if rotated(database)?.0.len() >= MAX_ROTATED {
        return Ok(()); // the cap: the inbox grows; doctor warns
    }
    rename_away(p, database)
}

/// Renames the inbox to a new rotated name (the caller holds its exclusive lock).
fn rename_away(p: &Path, database: &Path) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let r = crate::passcode::random_bytes::<6>()?;
    let rand: String = r.iter().map(|b| format!("{b:02x}")).collect();
    // Seconds first, fixed width: names sort oldest first.
    let to = sibling(
        database,
        &format!(
            "-authlog.{:010}.{:09}.{rand}",
            now.as_secs(),
            now.subsec_nanos()
        ),
    );
    std::fs::rename(p, &to).map_err(|e| Error::io(p, e))
}

/// The mover's rotation: renames a non-empty inbox to a rotated file, waiting (bounded) for
/// the appenders' locks. No inbox, or an empty one, is left alone.
pub(crate) fn rotate(database: &Path) -> Result<()> {
    let p = path_for(database);
    let f = match open_regular(&p, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(&p, e)),
    };
    crate::files::lock_within(&f, &p, true)?;
    if !still_named(&f, &p).map_err(|e| Error::io(&p, e))? {
        return Ok(()); // an appender rotated it meanwhile
    }
    if f.metadata().map_err(|e| Error::io(&p, e))?.len() == 0 {
        return Ok(());
    }
    rename_away(&p, database)
}

/// The rotated files of `database`, oldest first, and the other things named like one
/// (not regular files: never opened).
pub fn rotated(database: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let dir = match database.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(
        "{}.",
        path_for(database)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let mut files = Vec::new();
    let mut others = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((files, others)),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.') {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_file() => files.push(entry.path()),
            Ok(_) => others.push(entry.path()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(entry.path(), e)),
        }
    }
    files.sort();
    others.sort();
    Ok((files, others))
}

/// Bytes waiting: the inbox and the rotated files.
pub fn pending(database: &Path) -> u64 {
    let live = std::fs::metadata(path_for(database)).map_or(0, |m| m.len());
    let rotated = rotated(database).map_or(0, |(files, _)| {
        files
            .iter()
            .map(|f| std::fs::symlink_metadata(f).map_or(0, |m| m.len()))
            .sum()
    });
    live + rotated
}

/// What waits to be moved into the database (`mfa-admin doctor`).
#[derive(Debug, Default)]
pub struct Backlog {
    /// Bytes in the inbox.
    pub live: u64,
    /// Rotated files and their bytes.
    pub files: usize,
    pub bytes: u64,
    /// When the oldest rotated file was last written.
    pub oldest: Option<std::time::SystemTime>,
    /// Things named like a rotated file that are not regular files.
    pub others: Vec<PathBuf>,
}

/// The inbox's backlog.
pub fn backlog(database: &Path) -> Result<Backlog> {
    let (files, others) = rotated(database)?;
    let mut b = Backlog {
        live: std::fs::symlink_metadata(path_for(database)).map_or(0, |m| m.len()),
        others,
        ..Default::default()
    };
    for f in &files {
        if let Ok(m) = std::fs::symlink_metadata(f) {
            b.files += 1;
            b.bytes += m.len();
            let t = m.modified().ok();
            if b.oldest.is_none() || t < b.oldest {
                b.oldest = t;
            }
        }
    }
    Ok(b)
}

/// A rotated file, locked exclusively (no appender writes to it any more), and its parsed
/// lines (and the count of lines that did not parse). `None` when it is gone (another mover
/// took it) or is not a regular file. Remove it with [`Drained::done`] once the lines are
/// safely stored.
pub(crate) fn take(path: &Path) -> Result<Option<Drained>> {
    let mut f = match open_regular(path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::InvalidInput
            ) || e.raw_os_error() == Some(nix::libc::ELOOP) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    crate::files::lock_within(&f, path, true)?;
    if !still_named(&f, path).map_err(|e| Error::io(path, e))? {
        return Ok(None); // moved and removed by another mover meanwhile
    }
    let mut text = Vec::new();
    f.read_to_end(&mut text).map_err(|e| Error::io(path, e))?;
    let mut lines = Vec::new();
    let mut bad = 0;
    for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Line>(raw) {
            Ok(l) => lines.push(l),
            Err(_) => bad += 1,
        }
    }
    Ok(Some(Drained {
        _file: f,
        path: path.to_path_buf(),
        lines,
        bad,
    }))
}

/// A locked rotated file being moved.
pub(crate) struct Drained {
    /// Holds the lock until the file is removed.
    _file: File,
    path: PathBuf,
    pub lines: Vec<Line>,
    pub bad: usize,
}

impl Drained {
    /// Removes the moved file (the lock goes with it).
    pub fn done(self) -> Result<()> {
        crate::files::remove_if_exists(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::logs::{AuthFilter, auth_log};

    fn ev(user: &str) -> AuthEvent {
        AuthEvent {
            user: user.into(),
            service: "sshd".into(),
            address: "192.0.2.1".into(),
            outcome: "ignore".into(),
            reason: "trusted network (rule 1)".into(),
            ..Default::default()
        }
    }

    #[test]
    fn lines_move_once_even_when_moved_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        for u in ["ann", "bob", "cy"] {
            append(&db, &ev(u)).unwrap();
        }
        let inbox = std::fs::read(path_for(&db)).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (3, 0));
        assert_eq!(pending(&db), 0);
        // A crash between the commit and the truncation leaves the lines in the inbox.
        let mut again = inbox.clone();
        // ... and a line cut short by a full disk.
        again.extend_from_slice(b"{\"event\":\"ab\",\"us");
        std::fs::write(path_for(&db), &again).unwrap();
        append(&db, &ev("dee")).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (4, 1));
        let rows = auth_log(store.conn(), &AuthFilter::default()).unwrap();
        let mut users: Vec<_> = rows.iter().map(|r| r.user.as_str()).collect();
        users.sort();
        assert_eq!(users, ["ann", "bob", "cy", "dee"], "each line stored once");
        assert!(
            rows.iter()
                .all(|r| r.time > 0 && r.reason.starts_with("trusted"))
        );
        assert_eq!(store.ingest_auth_log().unwrap(), (0, 0));
    }

    /// A Duo row's transaction id goes through the inbox; a line written before lines had
    /// one still reads (txid "").
    #[test]
    fn the_duo_txid_is_carried_and_old_lines_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        let mut duo = ev("ann");
        duo.outcome = "success".into();
        duo.method = "duo-push".into();
        duo.destination = "iOS (XXX-XXX-1234)".into();
        duo.txid = "45f7c92b-f45f-4862-8545-e0f58e78075a".into();
        append(&db, &duo).unwrap();
        let old = b"{\"event\":\"0badc0de\",\"id\":0,\"time\":50,\"user\":\"bob\",\"service\":\"sshd\",\"address\":\"\",\"tty\":\"\",\"outcome\":\"ignore\",\"method\":\"\",\"destination\":\"\",\"reason\":\"exempt\"}\n";
        let mut f = OpenOptions::new().append(true).open(path_for(&db)).unwrap();
        f.write_all(old).unwrap();
        drop(f);
        assert_eq!(store.ingest_auth_log().unwrap(), (2, 0));
        let rows = auth_log(store.conn(), &AuthFilter::default()).unwrap();
        assert_eq!(rows.len(), 2);
        let bob = rows.iter().find(|r| r.user == "bob").unwrap();
        assert_eq!((bob.time, bob.txid.as_str()), (50, ""));
        let ann = rows.iter().find(|r| r.user == "ann").unwrap();
        assert_eq!(ann.txid, duo.txid);
        assert_eq!(
            (ann.method.as_str(), ann.destination.as_str()),
            ("duo-push", "iOS (XXX-XXX-1234)")
        );
    }

    fn count(store: &Store) -> i64 {
        store
            .conn()
            .query_row("SELECT count(*) FROM auth_log", [], |r| r.get(0))
            .unwrap()
    }

    /// A rotated file's name for `db` (as `rename_away` makes them).
    fn rotated_name(db: &Path, n: u32) -> PathBuf {
        sibling(
            db,
            &format!("-authlog.{:010}.{:09}.{:012x}", 1_000_000 + n, 0, n),
        )
    }

    /// Four threads append while a fifth moves the inbox into the database again and again,
    /// and the lines are long enough for the appenders to rotate the inbox several times:
    /// every line is stored exactly once, and nothing is left behind.
    #[test]
    fn concurrent_appends_rotations_and_moves_lose_and_double_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        drop(store);
        const THREADS: usize = 4;
        const EACH: usize = 1500;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mover = {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let mut s = Store::open(&db).unwrap();
                let mut moves = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    s.ingest_auth_log().unwrap();
                    moves += 1;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                moves
            })
        };
        let long = "x".repeat(900);
        let appenders: Vec<_> = (0..THREADS)
            .map(|t| {
                let (db, long) = (db.clone(), long.clone());
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        let mut e = ev(&format!("t{t}n{i}"));
                        e.reason = long.clone();
                        append(&db, &e).unwrap();
                    }
                })
            })
            .collect();
        for h in appenders {
            h.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(mover.join().unwrap() > 0);
        let mut store = Store::open(&db).unwrap();
        store.ingest_auth_log().unwrap();
        assert_eq!(count(&store), (THREADS * EACH) as i64, "every line once");
        let distinct: i64 = store
            .conn()
            .query_row("SELECT count(DISTINCT user) FROM auth_log", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(distinct, (THREADS * EACH) as i64);
        assert_eq!(pending(&db), 0, "nothing left behind");
        assert!(rotated(&db).unwrap().0.is_empty());
    }

    /// The appenders rotate a full inbox themselves, and no login moves anything into the
    /// database: the rows arrive only when the store moves them.
    #[test]
    fn a_full_inbox_is_rotated_by_rename_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        let mut e = ev("ann");
        e.reason = "y".repeat(4000);
        let mut n = 0;
        while rotated(&db).unwrap().0.is_empty() {
            append(&db, &e).unwrap();
            n += 1;
            assert!(n < 1000, "never rotated");
        }
        let first = &rotated(&db).unwrap().0[0];
        let size = std::fs::metadata(first).unwrap().len();
        assert!(
            (ROTATE_AT..ROTATE_AT + 4200).contains(&size),
            "rotated at {size} bytes, {n} lines"
        );
        assert_eq!(count(&store), 0, "appends never write the database");
        append(&db, &e).unwrap();
        assert!(std::fs::metadata(path_for(&db)).unwrap().len() < ROTATE_AT);
        assert_eq!(store.ingest_auth_log().unwrap(), (n + 1, 0));
        assert_eq!(count(&store), n as i64 + 1);
    }

    /// With [`MAX_ROTATED`] files waiting, the inbox is no longer rotated: it grows past
    /// [`ROTATE_AT`], every append still works, nothing is deleted; a move takes it all.
    #[test]
    fn past_the_cap_the_inbox_grows_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        let one = {
            append(&db, &ev("old")).unwrap();
            std::fs::read(path_for(&db)).unwrap()
        };
        std::fs::remove_file(path_for(&db)).unwrap();
        for k in 0..MAX_ROTATED as u32 {
            std::fs::write(rotated_name(&db, k), &one).unwrap();
        }
        let mut e = ev("new");
        e.reason = "z".repeat(8000);
        let lines = (ROTATE_AT / 8000 + 20) as usize;
        for _ in 0..lines {
            append(&db, &e).unwrap();
        }
        assert_eq!(
            rotated(&db).unwrap().0.len(),
            MAX_ROTATED,
            "no new rotation"
        );
        assert!(std::fs::metadata(path_for(&db)).unwrap().len() > ROTATE_AT);
        let b = backlog(&db).unwrap();
        assert_eq!(b.files, MAX_ROTATED);
        assert!(b.live > ROTATE_AT && b.oldest.is_some());
        // The same line in every old file: stored once.
        assert_eq!(store.ingest_auth_log().unwrap(), (MAX_ROTATED + lines, 0));
        assert_eq!(count(&store), 1 + lines as i64);
        assert_eq!(pending(&db), 0);
    }

    /// A crash after a rotated file's lines were committed and before it was removed: the
    /// next move reads it again and stores nothing twice.
    #[test]
    fn a_crash_between_commit_and_removal_stores_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        for u in ["ann", "bob"] {
            append(&db, &ev(u)).unwrap();
        }
        rotate(&db).unwrap();
        let (files, _) = rotated(&db).unwrap();
        assert_eq!(files.len(), 1);
        assert!(!path_for(&db).exists(), "the inbox was renamed, not copied");
        let kept = std::fs::read(&files[0]).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (2, 0));
        assert!(!files[0].exists());
        std::fs::write(&files[0], &kept).unwrap(); // as if the removal never happened
        append(&db, &ev("cy")).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (3, 0));
        assert_eq!(count(&store), 3);
        assert_eq!(pending(&db), 0);
    }

    /// Things named like rotated files that are not regular files: a symlink to a file of
    /// valid lines is not followed (its lines are not stored, it stays), a FIFO does not
    /// hang the move; both are named by [`backlog`]. A FIFO in the inbox's place is an error,
    /// not a hang, for the appender and for the move.
    #[test]
    fn hostile_files_are_not_followed_and_do_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        drop(store);
        append(&db, &ev("elsewhere")).unwrap();
        let outside = dir.path().join("outside");
        std::fs::rename(path_for(&db), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, rotated_name(&db, 1)).unwrap();
        nix::unistd::mkfifo(&rotated_name(&db, 2), nix::sys::stat::Mode::S_IRWXU).unwrap();
        append(&db, &ev("ann")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let db2 = db.clone();
        std::thread::spawn(move || {
            let mut s = Store::open(&db2).unwrap();
            let _ = tx.send(s.ingest_auth_log().map_err(|e| e.to_string()));
        });
        let moved = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the move hung");
        assert_eq!(moved, Ok((1, 0)));
        let store = Store::open(&db).unwrap();
        let users: Vec<String> = auth_log(store.conn(), &AuthFilter::default())
            .unwrap()
            .into_iter()
            .map(|r| r.user)
            .collect();
        assert_eq!(users, ["ann"], "the symlink's target was not read");
        let b = backlog(&db).unwrap();
        assert_eq!(b.others, [rotated_name(&db, 1), rotated_name(&db, 2)]);
        assert_eq!(b.files, 0);
        assert!(outside.exists() && std::fs::read(&outside).unwrap().len() > 10);

        // A FIFO where the inbox should be.
        nix::unistd::mkfifo(&path_for(&db), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let db3 = db.clone();
        std::thread::spawn(move || {
            let a = append(&db3, &ev("bob")).map_err(|e| e.to_string());
            let m = Store::open(&db3)
                .unwrap()
                .ingest_auth_log()
                .map_err(|e| e.to_string());
            let _ = tx.send((a, m));
        });
        let (a, m) = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a FIFO inbox hung");
        assert!(a.is_err() && m.is_err(), "{a:?} {m:?}");
    }
}
