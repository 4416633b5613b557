//! Backups of the whole store and their restore (`mfa-admin backup FILE`, `restore FILE`).
//!
//! A backup is a copy of the database made with SQLite's online backup API in one step: the
//! pages are copied under one read lock, so the copy is one consistent state of the store
//! while logins go on (a login only reads; a writer such as a lockout waits the few
//! milliseconds of the copy, within its busy timeout). Not `VACUUM INTO`, which would do as
//! well for the copy: the backup API is also how a restore is written into the live database
//! (below), so one mechanism serves both. The file is created 0600 under a temporary name
//! with `O_EXCL | O_NOFOLLOW` in the target's directory, fsynced, then linked into place
//! (refused when the name exists) or, with `force`, renamed over it (a symbolic link there
//! is replaced, never followed), and the directory fsynced.
//!
//! A backup holds everything the database holds: TOTP keys, backup-code hashes, the
//! passcode hash key, contacts, the logs. It is as secret as the database. It does not hold
//! the login-state files beside the database ([`crate::state`]: failure counts, the newest
//! accepted TOTP step, repeat-window grants, send counters) nor the spool.
//!
//! A restore ([`Store::restore`]) checks a private copy of the file first (an SQLite
//! header, `integrity_check`, a schema version not newer than this build's, then migrated,
//! and an mfa store: `meta` with a passcode key, the users table): a bad file changes
//! nothing. Then, under the snapshot lock, it keeps the current database aside
//! (`<db>.before-restore-<time>`, 0600), writes the checked copy into the live database
//! with the backup API (one transaction under SQLite's own locks: every connection sees the
//! old store or the new one, and the file keeps its owner and mode), moves both
//! generations past what they were (no snapshot of the old store can pass for the new),
//! and rewrites the policy snapshot and lockouts file. The login-state files stay: failure
//! counts and the newest TOTP steps used carry on. So a TOTP code used since the backup
//! cannot be replayed; and should the state files have been lost too (a new machine), the
//! restore raises every TOTP user's newest accepted step to the current one, so no code
//! used before the restore passes again (a user at that very moment waits for the next
//! code, 30 s at most).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{SCHEMA_VERSION, Store};
use crate::{Error, Result, invalid};

/// The first 16 bytes of every SQLite database.
const HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long a restore waits for the live database's readers and writers.
const WAIT: Duration = Duration::from_secs(30);

/// What [`Store::backup_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
    pub users: i64,
}

/// What [`Store::restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Where the database as it was before is kept.
    pub kept: PathBuf,
    /// The schema version of the file (migrated to this build's when older).
    pub schema: i64,
    pub users: i64,
    /// The policy generation now.
    pub generation: u64,
}

fn random_suffix() -> Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Failed(format!("no random bytes: {e}")))?;
    Ok(b.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `path` 0600, exclusively, never through a symbolic link.
fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_nofollow())
        .open(path)
        .map_err(|e| Error::io(path, e))
}

fn libc_nofollow() -> i32 {
    nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Opens an SQLite file this process just created (`NOFOLLOW`), checking it is still the
/// file `created` (same inode): nobody swapped the name meanwhile.
fn open_created(path: &Path, created: &File) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| Error::Database(format!("{}: {e}", path.display())))?;
    let ours = created.metadata().map_err(|e| Error::io(path, e))?;
    let now = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if (ours.dev(), ours.ino()) != (now.dev(), now.ino()) {
        return Err(Error::Failed(format!(
            "{} was replaced while it was written; nothing was kept",
            path.display()
        )));
    }
    Ok(conn)
}

/// Copies every page of `from` into `to` in one step, retrying while the destination (or
/// the source) is busy, for at most [`WAIT`].
fn copy_pages(from: &Connection, to: &mut Connection, what: &str) -> Result<()> {
    let b = Backup::new(from, to)?;
    let start = Instant::now();
    loop {
        match b.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if start.elapsed() > WAIT {
                    return Err(Error::Database(format!(
                        "{what}: the database stayed locked for {} s; try again",
                        WAIT.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {}
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn count_users(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// Writes a consistent copy of the live database to a new file at `dest` created 0600 (see
/// the module doc), removed again if anything fails.
/// Returns its size and the temporary name it has (for the caller to name it).
fn write_copy(conn: &Connection, dest: &Path) -> Result<(u64, PathBuf)> {
    let dir = parent(dest);
    let name = dest
        .file_name()
        .ok_or_else(|| invalid!("{}: not a file name", dest.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        random_suffix()?
    ));
    let file = create_private(&tmp)?;
    let done = (|| -> Result<u64> {
        let mut to = open_created(&tmp, &file)?;
        copy_pages(conn, &mut to, &dest.display().to_string())?;
        // One file, no journal beside it: the copy is complete and closed before it is named.
        to.execute_batch("PRAGMA journal_mode = DELETE")?;
        drop(to);
        file.sync_all().map_err(|e| Error::io(&tmp, e))?;
        Ok(file.metadata().map_err(|e| Error::io(&tmp, e))?.len())
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done.map(|n| (n, tmp))
}

impl Store {
    /// Writes a backup of the whole store to `dest` (see the module doc): refused when
    /// `dest` exists, unless `force` (then replaced, a link there too, never followed).
    pub fn backup_to(&self, dest: &Path, force: bool) -> Result<Written> {
        if dest.as_os_str() == "-" {
            return Err(invalid!(
                "a backup is a binary SQLite file: give a file name, not - (standard output)"
            ));
        }
        // Not the store itself nor a file beside it that belongs to it (`<db>-lockouts`,
        // the snapshot, the journal, the login-state files): `--force` would replace the
        // live database under the connections that have it open, or damage its companions.
        if let (Ok(db), Ok(dir), Some(name)) = (
            std::fs::canonicalize(&self.path),
            std::fs::canonicalize(parent(dest)),
            dest.file_name(),
        ) && dir
            .join(name)
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(db.as_os_str().as_encoded_bytes())
        {
            return Err(invalid!(
                "{} is the store or one of its own files ({}*); write the backup elsewhere",
                dest.display(),
                db.display()
            ));
        }
        if !force && std::fs::symlink_metadata(dest).is_ok() {
            return Err(Error::Conflict(format!(
                "{} exists; choose another name, or --force to replace it",
                dest.display()
            )));
        }
        let users = count_users(&self.conn)?;
        let (bytes, tmp) = write_copy(&self.conn, dest)?;
        let placed = if force {
            std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
        } else {
            match std::fs::hard_link(&tmp, dest) {
                Ok(()) => std::fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(Error::Conflict(format!(
                        "{} exists; choose another name, or --force to replace it",
                        dest.display()
                    )))
                }
                Err(e) => Err(Error::io(dest, e)),
            }
        };
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&parent(dest))?;
        Ok(Written {
            path: dest.to_path_buf(),
            bytes,
            users,
        })
    }

    /// Restores the store from the backup `src` (see the module doc). A file that is not a
    /// sound mfa store of this or an earlier schema is refused with an error saying what is
    /// wrong; nothing changes then.
    pub fn restore(&mut self, src: &Path, now: i64) -> Result<Restored> {
        let copy = checked_copy(src, &self.path)?;
        let out = self.restore_from(&copy, now);
        for p in [copy.clone(), crate::files::sibling(&copy, "-journal")] {
            let _ = std::fs::remove_file(p);
        }
        out
    }

    fn restore_from(&mut self, copy: &Path, now: i64) -> Result<Restored> {
        // The checked copy: opened as a store (migrated to this build's schema), then
        // checked as an mfa store.
        let schema = schema_version(copy)?;
        let restored = Store::open(copy).map_err(|e| refused(copy, &e.to_string()))?;
        mfa_store(&restored.conn).map_err(|why| refused(copy, &why))?;
        same_schema(&restored.conn).map_err(|why| refused(copy, &why))?;
        // Foreign keys are not part of SQLite's integrity check: a user of a group that is
        // not there (a file edited with foreign keys off) would silently lose the group's
        // rules (user_policy then finds no group: the global ones apply).
        let dangling: i64 =
            restored
                .conn
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
        if dangling > 0 {
            return Err(refused(
                copy,
                &format!(
                    "{dangling} row(s) name what is not there (foreign keys: e.g. a user of a \
                     group that does not exist): damaged or edited by hand"
                ),
            ));
        }
        let users = count_users(&restored.conn)?;
        let _lock = crate::snapshot::lock(&self.path, false)?;
        // The database as it is, aside.
        // Named by the time; a second restore within the same second takes the next free
        // name (`-2`, `-3`, ...): never over an earlier copy.
        let named = |n: u32| {
            let suffix = if n == 1 {
                format!(".before-restore-{now}")
            } else {
                format!(".before-restore-{now}-{n}")
            };
            crate::files::sibling(&self.path, &suffix)
        };
        let (_, tmp) = write_copy(&self.conn, &named(1))?;
        let mut kept = named(1);
        let mut n = 1;
        loop {
            match std::fs::hard_link(&tmp, &kept) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    kept = named(n);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(Error::io(&kept, e));
                }
            }
        }
        let _ = std::fs::remove_file(&tmp);
        sync_dir(&parent(&kept))?;
        let before = (
            crate::snapshot::current_generation(&self.conn)?,
            crate::snapshot::generation_of(&self.conn, crate::snapshot::lockouts::GENERATION_KEY)?,
        );
        // Durable: the restore is one committed transaction of the live database.
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        let copied = copy_pages(&restored.conn, &mut self.conn, "restore");
        self.conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        copied?;
        drop(restored);
        // Both generations past the old store's and the backup's: no snapshot or lockouts
        // file of either passes for the restored store.
        let generation = self.write(|tx| {
            for (key, old) in [
                (crate::snapshot::GENERATION_KEY, before.0),
                (crate::snapshot::lockouts::GENERATION_KEY, before.1),
            ] {
                let mine = crate::snapshot::generation_of(tx, key)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    rusqlite::params![key, old.max(mine).to_string()],
                )?;
                crate::snapshot::bump(tx, key)?;
            }
            crate::snapshot::current_generation(tx)
        })?;
        self.write_snapshot(true)?;
        // TOTP replay after a restore: see the module doc.
        let step = u64::try_from(now).unwrap_or(0) / crate::totp::STEP;
        let totp_users: Vec<String> = self
            .conn
            .prepare("SELECT user FROM totp")?
            .query_map([], |r| r.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        for u in totp_users {
            crate::state::accept_step(&self.path, &u, step)?;
        }
        Ok(Restored {
            kept,
            schema,
            users,
            generation,
        })
    }
}

fn refused(src: &Path, why: &str) -> Error {
    invalid!(
        "{} cannot be restored: {why}; nothing was changed",
        src.display()
    )
}

/// Copies the backup `src` to a private file beside `database` (0600), after checking it is
/// a regular file (not a link) that starts like an SQLite database and has no journal.
fn checked_copy(src: &Path, database: &Path) -> Result<PathBuf> {
    let bad = |why: String| refused(src, &why);
    let meta = std::fs::symlink_metadata(src).map_err(|e| bad(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(bad(
            "it is a symbolic link (give the file it points to, after checking it)".into(),
        ));
    }
    if !meta.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc_nofollow() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(src)
        .map_err(|e| bad(e.to_string()))?;
    let mut head = [0u8; 16];
    let n = f.read(&mut head).map_err(|e| bad(e.to_string()))?;
    if n < 16 || &head != HEADER {
        return Err(bad(
            "it is not an SQLite database (no SQLite header): not a backup of mfa".into(),
        ));
    }
    let copy = crate::files::sibling(database, &format!(".restore-{}", random_suffix()?));
    let mut out = create_private(&copy)?;
    let copied = (|| -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        f.seek(SeekFrom::Start(0))?;
        std::io::copy(&mut f, &mut out)?;
        out.sync_all()
    })();
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&copy);
        return Err(Error::io(src, e));
    }
    drop(out);
    // The file's checks before any migration: a damaged page fails here.
    let checked = (|| -> Result<()> {
        let conn = Connection::open_with_flags(
            &copy,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(|e| bad(e.to_string()))?;
        let ok: String = conn
            .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
            .map_err(|e| bad(format!("SQLite cannot read it ({e}): damaged or truncated")))?;
        if ok != "ok" {
            return Err(bad(format!(
                "SQLite's integrity check fails ({ok}): damaged or truncated"
            )));
        }
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > SCHEMA_VERSION {
            return Err(bad(format!(
                "its schema version {v} is newer than this mfa understands ({SCHEMA_VERSION}); \
                 restore it with the mfa that made it, or upgrade mfa"
            )));
        }
        if v < 1 {
            return Err(bad("it has no mfa schema: not a backup of mfa".into()));
        }
        mfa_store(&conn).map_err(&bad)
    })();
    if let Err(e) = checked {
        let _ = std::fs::remove_file(&copy);
        return Err(e);
    }
    Ok(copy)
}

fn schema_version(path: &Path) -> Result<i64> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Whether `conn` holds an mfa store: the tables of one and a passcode key.
fn mfa_store(conn: &Connection) -> std::result::Result<(), String> {
    for table in ["meta", "users", "settings", "contacts"] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())?;
        if n != 1 {
            return Err(format!("it has no table {table}: not a backup of mfa"));
        }
    }
    let key: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'passcode_key'",
            [],
            |r| r.get(0),
        )
        .ok();
    match key {
        Some(k) if !k.is_empty() => Ok(()),
        _ => Err("it holds no passcode key: not a backup of an mfa store".into()),
    }
}

/// The tables, indexes, views and triggers of `conn` (SQLite's own aside), as SQL text.
fn schema_of(conn: &Connection) -> rusqlite::Result<Vec<(String, String, Option<String>)>> {
    conn.prepare(
        "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
          ORDER BY type, name",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
    .collect()
}

/// Whether the (migrated) store `conn` has exactly the schema this build makes: a view or
/// trigger of its own in a backup (a `user_policy` that makes everyone exempt, a trigger
/// that runs at each login) would otherwise come into the live store with the restore.
fn same_schema(conn: &Connection) -> std::result::Result<(), String> {
    let fresh = (|| -> rusqlite::Result<_> {
        let c = Connection::open_in_memory()?;
        for m in super::schema::MIGRATIONS {
            c.execute_batch(m)?;
        }
        schema_of(&c)
    })()
    .map_err(|e| format!("cannot make this build's schema to compare: {e}"))?;
    let theirs = schema_of(conn).map_err(|e| e.to_string())?;
    if let Some((kind, name, _)) = theirs.iter().find(|t| !fresh.contains(t)) {
        return Err(format!(
            "its {kind} {name:?} is not one mfa makes (its schema was changed by hand or by \
             something else): not a backup of mfa as it made it"
        ));
    }
    if let Some((kind, name, _)) = fresh.iter().find(|t| !theirs.contains(t)) {
        return Err(format!(
            "it lacks mfa's {kind} {name:?} (its schema was changed by hand or by something \
             else): not a backup of mfa as it made it"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "backup_tests.rs"]
mod tests;
