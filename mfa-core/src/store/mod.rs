//! The SQLite rule store: opening with safe modes, migrations, and write transactions that
//! always leave an audit record.
//!
//! The database uses a rollback journal in TRUNCATE mode with a 30 s busy timeout, and
//! every write is one `BEGIN IMMEDIATE` transaction, so concurrent writers queue instead of
//! failing with "database is locked" and a failed change leaves nothing behind. The queries
//! themselves live in the submodules, one per topic, as functions over a `Connection`.
//!
//! Why not WAL: the PAM module opens the database at a login and closes it at the end, so its
//! connection is nearly always the only one. In WAL mode that connection creates the -wal
//! and -shm files at open and checkpoints (fsync) and deletes them at close: most of a
//! login's cost (bench/pam_bench.sh). With a rollback journal a read is an open, a shared
//! lock and the pages; logins only read (their state is in files, `crate::state`), and the
//! rare writers (mfa-admin, a lockout, a used backup code, a self-enrollment, moving the
//! auth-log inbox) wait at most a few milliseconds for readers, which the busy timeout
//! absorbs.

pub mod activity;
pub mod auth;
pub mod backup;
pub mod factors;
pub mod fleet;
#[cfg(test)]
mod fleet_tests;
pub mod groups;
pub mod logs;
pub mod people;
pub mod rules;
mod schema;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::config::check_not_writable_by_others;
use crate::snapshot;
use crate::{Error, Result};

/// Why [`Store::repair_snapshot`] rewrote the policy snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuilt {
    /// There was none.
    Missing,
    /// It was of another generation than the database.
    Stale { was: u64, now: u64 },
    /// It could not be used: its checksum, its owner or its mode.
    Damaged(snapshot::Damage),
}

/// The transaction a change runs in.
pub type Tx<'a> = Transaction<'a>;

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = schema::MIGRATIONS.len() as i64;

/// How long a writer waits for another writer before giving up.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open rule store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Bounded waits ([`Store::open_bounded`]): the database's busy wait and the snapshot
    /// lock give up after [`crate::files::LOCK_WAIT`] instead of 30 s and never.
    bounded: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens an existing database, refusing one that others can write, and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        Store::open_with(path, false)
    }

    /// [`Store::open`] for a login: every wait (a locked database, the snapshot lock held by
    /// a hung `mfa-admin`) ends after [`crate::files::LOCK_WAIT`] with an error naming it.
    pub fn open_bounded(path: &Path) -> Result<Store> {
        Store::open_with(path, true)
    }

    fn open_with(path: &Path, bounded: bool) -> Result<Store> {
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Database(format!(
                    "{}: database does not exist; create it with `mfa-admin init`",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::io(path, e)),
        }
        check_files(path)?;
        check_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = || {
            let conn = Connection::open_with_flags(path, flags)?;
            let mut store = Store {
                conn,
                path: path.to_path_buf(),
                bounded,
            };
            store.configure()?;
            store.migrate()?;
            Ok(store)
        };
        open().map_err(|e| opening(path, e))
    }

    /// Creates the database file (mode 0600) if it does not exist, sets its journal mode and
    /// migrates it. Returns the store and whether the file was created now.
    pub fn create(path: &Path) -> Result<(Store, bool)> {
        let created = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(Error::io(path, e)),
        };
        check_files(path)?;
        let open = || {
            let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            let mut store = Store {
                conn,
                path: path.to_path_buf(),
                bounded: false,
            };
            store.configure()?;
            store.migrate()?;
            Ok(store)
        };
        let mut store = open().map_err(|e| opening(path, e))?;
        // The passcode hash key exists before the first snapshot, which carries it.
        store.write(|tx| auth::passcode_key(tx).map(|_| ()))?;
        store.ensure_snapshot()?;
        Ok((store, created))
    }

    /// Puts the database in rollback-journal mode, TRUNCATE flavour (see the module doc).
    /// A database of an earlier build in WAL mode is switched when no other connection has
    /// it open; until then it keeps working in WAL mode.
    fn set_journal_mode(&mut self) -> Result<()> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = TRUNCATE", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("truncate") || mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        Err(Error::Database(format!(
            "{}: cannot set the journal mode of the database (got {mode})",
            self.path.display()
        )))
    }

    fn configure(&mut self) -> Result<()> {
        self.conn.busy_timeout(if self.bounded {
            crate::files::LOCK_WAIT
        } else {
            DEFAULT_BUSY_TIMEOUT
        })?;
        // temp_store in memory: the snapshot's change tracking (temporary triggers and table,
        // crate::snapshot::track_changes) never writes a temporary file, wherever the PAM
        // module runs.
        self.conn.execute_batch(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA trusted_schema = OFF;
             PRAGMA temp_store = MEMORY;",
        )?;
        // Per connection (only WAL is remembered in the file): see the module doc.
        self.set_journal_mode()?;
        Ok(())
    }

    fn version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Applies missing migrations, each in its own immediate transaction, re-reading the
    /// version under the write lock so that concurrent openers migrate once.
    fn migrate(&mut self) -> Result<()> {
        if self.version()? == SCHEMA_VERSION {
            return Ok(());
        }
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if v > SCHEMA_VERSION {
                return Err(Error::Database(format!(
                    "{}: schema version {v} is newer than this mfa understands ({SCHEMA_VERSION}); upgrade mfa",
                    self.path.display()
                )));
            }
            if v == SCHEMA_VERSION {
                return Ok(());
            }
            let sql = schema::MIGRATIONS
                .get(usize::try_from(v).unwrap_or(usize::MAX))
                .ok_or_else(|| Error::Database(format!("no migration from schema version {v}")))?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", v + 1))?;
            tx.commit()?;
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for reads (each statement sees a consistent snapshot).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs several reads in one snapshot.
    pub fn read<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs one change as an immediate transaction and records it in the audit log.
    /// `f` returns its result and the audit detail; any error rolls everything back. The
    /// commit is durable (synchronous = FULL) and the policy snapshot is rewritten after it
    /// (see [`crate::snapshot`]).
    pub fn change<T>(
        &mut self,
        actor: &str,
        action: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, String)>,
    ) -> Result<T> {
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        let out = self.policy_write(true, |tx| {
            let (out, detail) = f(tx)?;
            logs::audit(tx, actor, action, &detail)?;
            Ok((out, true))
        });
        self.conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        out
    }

    /// Runs a write that is neither an administrator's change nor one the policy snapshot
    /// follows (moving the auth-log inbox) as one immediate transaction.
    /// On a fleet replica the rows it changes in the replicated tables are queued for the
    /// fleet ([`fleet`]) in the same transaction.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let capturing = fleet::capture_begin(&tx)?;
        let out = f(&tx)?;
        if capturing {
            fleet::capture_end(&tx)?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Deletes the auth-log entries older than `before` and, when `detail` gives a text for
    /// the number deleted, records a `log purge` in the audit log, in one transaction. Not a
    /// [`Store::change`]: the auth log is no policy, so the snapshot logins read keeps its
    /// generation (`log purge` by hand and the daily `maintain` both come here).
    pub fn purge_auth_log(
        &mut self,
        actor: &str,
        before: i64,
        detail: impl FnOnce(usize) -> Option<String>,
    ) -> Result<usize> {
        self.write(|tx| {
            let n = logs::purge_auth_log(tx, before)?;
            if let Some(d) = detail(n) {
                logs::audit(tx, actor, "log purge", &d)?;
            }
            Ok(n)
        })
    }

    /// Runs a write that may change what the policy snapshot holds (a lockout): `f` says
    /// whether it did. Then, under the snapshot lock, the new snapshot is written beside the
    /// old one from the transaction's own view (before the commit), the old one deleted, the
    /// change committed and the new one renamed into place: at any instant the snapshot on
    /// disk is missing or equal to the committed database, and it is missing only while the
    /// commit runs. The new one is updated (`snapshot::patch`): the old file with the users
    /// and sections the change touched, as temporary triggers recorded them; built whole when
    /// the old file was not of the database's generation before the change or cannot be read
    /// back.
    ///
    /// On a fleet replica the rows it changes in the replicated tables are queued for the
    /// fleet ([`fleet`]) in the same transaction.
    pub fn policy_write<T>(
        &mut self,
        durable: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, bool)>,
    ) -> Result<T> {
        self.policy_write_as(durable, true, f)
    }

    /// [`Store::policy_write`]; `capture`: queue the change for the fleet (not when it
    /// comes from the fleet).
    fn policy_write_as<T>(
        &mut self,
        durable: bool,
        capture: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, bool)>,
    ) -> Result<T> {
        let _lock = snapshot::lock(&self.path, self.bounded)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        snapshot::track_changes(&tx)?;
        let capturing = capture && fleet::capture_begin(&tx)?;
        let (out, changed) = f(&tx)?;
        if capturing {
            fleet::capture_end(&tx)?;
        }
        // Staged beside the old files, not yet in place; if staging fails, the change still
        // commits and the files are built after it.
        let mut staged: Vec<(Result<PathBuf>, PathBuf, bool)> = Vec::new();
        if changed {
            let changes = snapshot::changes(&tx)?;
            if changes.lockouts {
                snapshot::bump(&tx, snapshot::lockouts::GENERATION_KEY)?;
            }
            // A lockout alone leaves the snapshot as it is: its own small file says it.
            if !changes.lockouts_only() {
                let before = snapshot::current_generation(&tx)?;
                let old = snapshot::Snapshot::open(&self.path)
                    .ok()
                    .flatten()
                    .filter(|s| s.generation() == before);
                snapshot::bump_generation(&tx)?;
                let done = snapshot::stage(&tx, &self.path, old.as_ref(), &changes, durable);
                let patched = done.as_ref().is_ok_and(|(_, p)| *p);
                staged.push((
                    done.map(|(t, _)| t),
                    snapshot::path_for(&self.path),
                    patched,
                ));
            }
            let lockouts = snapshot::lockouts::stage(&tx, &self.path, durable);
            staged.push((lockouts, snapshot::lockouts::path_for(&self.path), false));
            let gone = staged
                .iter()
                .try_for_each(|(_, path, _)| crate::files::remove_if_exists(path));
            if let Err(e) = gone {
                for (tmp, ..) in staged {
                    if let Ok(tmp) = tmp {
                        let _ = std::fs::remove_file(tmp);
                    }
                }
                return Err(e);
            }
        }
        if let Err(e) = tx.commit() {
            for (tmp, ..) in staged {
                if let Ok(tmp) = tmp {
                    let _ = std::fs::remove_file(tmp);
                }
            }
            return Err(e.into());
        }
        // The change is committed; a file not put in place is built now, and failing that
        // readers use the database, which gives the same answers, until `mfa-admin` writes
        // it again at its next start.
        let mut rebuild = false;
        for (tmp, path, _patched) in staged {
            match tmp.and_then(|tmp| crate::files::install(&tmp, &path, durable)) {
                Ok(()) =>
                {
                    #[cfg(test)]
                    if _patched {
                        snapshot::PATCHES.with(|n| n.set(n.get() + 1));
                    }
                }
                Err(_) => rebuild = true,
            }
        }
        if rebuild {
            let _ = self.write_snapshot(durable);
        }
        Ok(out)
    }

    /// Writes the policy snapshot from the database (caller holds the snapshot lock).
    fn write_snapshot(&mut self, durable: bool) -> Result<()> {
        let path = self.path.clone();
        let bytes = self.read(|tx| {
            snapshot::lockouts::write(tx, &path, durable)?;
            snapshot::build(tx)
        })?;
        snapshot::write(&self.path, &bytes, durable)
    }

    /// Rewrites the policy snapshot from the database, whatever its state.
    pub fn rebuild_snapshot(&mut self) -> Result<()> {
        let _lock = snapshot::lock(&self.path, self.bounded)?;
        self.write_snapshot(true)
    }

    /// Whether the policy snapshot on disk is exactly what the database holds now (it is not
    /// after the database was edited behind mfa's back, which the generation cannot tell).
    pub fn snapshot_matches(&mut self) -> Result<bool> {
        let fresh = self.read(|tx| snapshot::build(tx))?;
        Ok(snapshot::same_content(&self.path, fresh).is_ok_and(|same| same))
    }

    /// Rewrites the policy snapshot when it is missing, of another generation than the
    /// database (a crash between a commit and its snapshot, a restored backup), or damaged:
    /// a checksum of its head or an index block that does not match, a file others could read or write. Every
    /// `mfa-admin` command calls it (the module only reads the database meanwhile). Returns
    /// why it rewrote the file, `None` when it was sound.
    pub fn repair_snapshot(&mut self) -> Result<Option<Rebuilt>> {
        let current = snapshot::current_generation(&self.conn)?;
        // The head and the index blocks (a few hundred KiB at 100,000 users, where reading
        // the whole file cost every command 6 ms): a damaged block of users or rules is
        // found by the login that reads it (which then reads the database) and rewritten by
        // `maintain` (daily) and `doctor`, whose check reads every block.
        let locks = snapshot::generation_of(&self.conn, snapshot::lockouts::GENERATION_KEY)?;
        let why = match snapshot::Snapshot::open(&self.path) {
            Ok(Some(s)) => match s.verify_indexes() {
                Ok(()) if s.generation() == current && s.lock_generation() == locks => {
                    return Ok(None);
                }
                Ok(()) if s.generation() == current => Rebuilt::Stale {
                    was: s.lock_generation(),
                    now: locks,
                },
                Ok(()) => Rebuilt::Stale {
                    was: s.generation(),
                    now: current,
                },
                Err(d) => Rebuilt::Damaged(d),
            },
            Ok(None) => Rebuilt::Missing,
            Err(d) => Rebuilt::Damaged(d),
        };
        self.rebuild_snapshot()?;
        Ok(Some(why))
    }

    /// [`Store::repair_snapshot`]: whether it rewrote the snapshot.
    pub fn ensure_snapshot(&mut self) -> Result<bool> {
        Ok(self.repair_snapshot()?.is_some())
    }

    /// Moves the module's auth-log inbox ([`crate::authlog`]) into the `auth_log` table.
    /// Returns the lines moved and the lines that could not be read (skipped).
    pub fn ingest_auth_log(&mut self) -> Result<(usize, usize)> {
        // The inbox becomes a rotated file like the ones the module left, then each rotated
        // file is committed and removed, oldest first (a crash in between: its lines are
        // read again and stored once, by their event ids).
        crate::authlog::rotate(&self.path)?;
        let (mut moved, mut bad) = (0, 0);
        for file in crate::authlog::rotated(&self.path)?.0 {
            let Some(mut inbox) = crate::authlog::take(&file)? else {
                continue;
            };
            bad += inbox.bad;
            let lines = std::mem::take(&mut inbox.lines);
            moved += lines.len();
            if !lines.is_empty() {
                self.write(|tx| {
                    for line in lines {
                        logs::record_auth_event(tx, &line.ev, &line.event)?;
                    }
                    Ok(())
                })?;
            }
            inbox.done()?;
        }
        Ok((moved, bad))
    }

    /// Runs SQLite's integrity check; returns the problems found (empty when sound).
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut problems = Vec::new();
        for r in rows {
            let r = r?;
            if r != "ok" {
                problems.push(r);
            }
        }
        let mut fk = self.conn.prepare("PRAGMA foreign_key_check")?;
        let n = fk.query_map([], |_| Ok(()))?.count();
        if n > 0 {
            problems.push(format!("{n} rows violate foreign keys"));
        }
        Ok(problems)
    }

    /// The check `doctor` makes by default, quick at any size: SQLite's `quick_check` of
    /// every table but the two logs (the tables a login's decision comes from, with their
    /// indexes), and the foreign keys. The logs, the index-to-table cross-checks and the
    /// free list are left to [`Store::integrity_check`] (`doctor --full`): at a million log
    /// rows they take seconds. Returns the problems found and the tables checked.
    pub fn quick_check(&self) -> Result<(Vec<String>, usize)> {
        let tables: Vec<String> = self
            .conn
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table'
                  AND name NOT IN ('auth_log', 'audit_log') ORDER BY name",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut problems = Vec::new();
        for t in &tables {
            // A pragma's argument cannot be bound: the name (from sqlite_schema) is quoted.
            let sql = format!("PRAGMA quick_check(\"{}\")", t.replace('"', "\"\""));
            let mut stmt = self.conn.prepare(&sql)?;
            for r in stmt.query_map([], |r| r.get::<_, String>(0))? {
                let r = r?;
                if r != "ok" {
                    problems.push(r);
                }
            }
        }
        let n = self
            .conn
            .prepare("PRAGMA foreign_key_check")?
            .query_map([], |_| Ok(()))?
            .count();
        if n > 0 {
            problems.push(format!("{n} rows violate foreign keys"));
        }
        Ok((problems, tables.len()))
    }
}

/// The database and its directory must not be writable by anyone but root or their owner.
fn check_files(path: &Path) -> Result<()> {
    check_not_writable_by_others(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    check_not_writable_by_others(dir)
}

/// The database holds every TOTP key, the passcode hash key and everyone's contacts: a file
/// that group or others can read is refused (the PAM module then follows its fail mode;
/// `mfa-admin init` and `chmod 600` repair it). [`Store::create`] does not check, so that
/// init can open a database to repair it.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::Insecure(format!(
            "{}: refusing to use it: mode {mode:04o} lets others read it (TOTP keys, the \
             passcode hash key, contacts); fix with: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// An error from opening the database at `path` (SQLite's own messages name no file), and
/// for a file SQLite cannot read as a database the way out: nothing was changed.
fn opening(path: &Path, e: Error) -> Error {
    match e {
        Error::Sqlite(rusqlite::Error::SqliteFailure(f, _))
            if matches!(
                f.code,
                rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
            ) =>
        {
            Error::Database(format!(
                "{}: not a readable mfa database ({f}); it was left as it is: restore it from \
                 a backup, or move it away and run `mfa-admin init` to start an empty one",
                path.display()
            ))
        }
        Error::Sqlite(s) => Error::Database(format!("{}: {s}", path.display())),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        assert!(matches!(Store::open(&db), Err(Error::Database(_))));
        let (_, created) = Store::create(&db).unwrap();
        assert!(created);
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (s, created) = Store::create(&db).unwrap();
        assert!(!created);
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
        let s = Store::open(&db).unwrap();
        assert!(s.integrity_check().unwrap().is_empty());
        let jm: String = s
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "truncate");
    }

    #[test]
    fn refuses_writable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        Store::create(&db).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Store::open(&db).unwrap_err();
        assert!(matches!(e, Error::Insecure(_)), "{e}");
        assert!(e.to_string().contains("chmod go-w"), "{e}");
    }

    #[test]
    fn a_database_of_the_first_release_is_brought_up_to_date() {
        // Schema 2 in WAL mode, as the first build made it, with a key and its used step, a
        // grant and a log row.
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        {
            let c = Connection::open(&db).unwrap();
            let mode: String = c
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            c.execute_batch(schema::MIGRATIONS[0]).unwrap();
            c.execute_batch(schema::MIGRATIONS[1]).unwrap();
            c.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO users (name, full_name, enabled, created) VALUES ('ann', '', 1, 0);
                 INSERT INTO totp (user, secret, algorithm, digits, created, last_step)
                     VALUES ('ann', X'00112233445566778899aabbccddeeff00112233', 'sha1', 6, 0, 99);
                 INSERT INTO grants (user, service, address, granted) VALUES ('ann', 'sshd', '', 5);
                 INSERT INTO auth_log (ts, user, service, outcome) VALUES (1, 'ann', 'sshd', 'success');",
            )
            .unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = Store::open(&db).unwrap();
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
        let secret: Vec<u8> = s
            .conn()
            .query_row("SELECT secret FROM totp WHERE user = 'ann'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(secret.len(), 20, "keys survive");
        let n: i64 = s
            .conn()
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('grants', 'challenges')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "state tables moved to files");
        let old: i64 = s
            .conn()
            .query_row(
                "SELECT count(*) FROM auth_log WHERE event IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 1, "old log rows stay");
        s.ensure_snapshot().unwrap();
        drop(s);
        // The journal is no longer WAL once nobody else has the file open.
        let mode: String = Connection::open(&db)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        assert!(!dir.path().join("mfa.db-wal").exists());
    }

    /// Schema 3 (the previous release's) with users, contacts and overrides: migration 4
    /// adds the double-logon contact to every override row (NULL: the first contact), keeps
    /// the rows, and a deleted contact takes the choice with it whatever deletes it.
    #[test]
    fn a_schema_3_database_gains_the_double_logon_contact() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        {
            let c = Connection::open(&db).unwrap();
            for m in &schema::MIGRATIONS[..3] {
                c.execute_batch(m).unwrap();
            }
            c.execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO users (name, full_name, enabled, created) VALUES ('ann', 'Ann', 1, 0), ('bob', '', 0, 0);
                 INSERT INTO contacts (user, seq, channel, address, created) VALUES
                     ('ann', 1, 'email', 'ann@example.com', 0), ('ann', 3, 'sms', '+14155550123', 0),
                     ('bob', 2, 'email', 'bob@example.com', 0);
                 INSERT INTO overrides (user, mandatory, exempt, self_enroll, log_level)
                     VALUES ('ann', 1, 0, 0, 'all'), ('bob', 0, 1, NULL, NULL);",
            )
            .unwrap();
        }
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = Store::open(&db).unwrap();
        assert_eq!(s.version().unwrap(), SCHEMA_VERSION);
        let all = people::overrides(s.conn()).unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0],
            people::Override {
                user: "ann".into(),
                mandatory: Some(true),
                // Before groups, "not exempt" and "not set" were one: it becomes not set.
                exempt: None,
                self_enroll: Some(false),
                log: Some("all".into()),
                double_logon_contact: None,
                factors: None,
            }
        );
        assert!(all[1].exempt == Some(true) && all[1].double_logon_contact.is_none());
        // The snapshot of the migrated database carries the rows (and the choice once made).
        s.ensure_snapshot().unwrap();
        let set = |s: &mut Store, user: &str, n: Option<i64>| {
            s.change("t", "override set", |tx| {
                let change = people::OverrideChange {
                    double_logon_contact: Some(n),
                    ..Default::default()
                };
                Ok((people::set_override(tx, user, &change), String::new()))
            })
            .unwrap()
        };
        let o = set(&mut s, "ann", Some(3)).unwrap();
        assert_eq!(o.double_logon_contact, Some(3));
        assert_eq!(o.mandatory, Some(true), "the other fields stay");
        let snap = crate::snapshot::Snapshot::open(&db).unwrap().unwrap();
        let rec = snap.lookup("ann").unwrap().unwrap();
        assert_eq!(rec.facts.double_logon_contact, Some(3));
        assert!(rec.facts.mandatory);
        // A number the user lacks is refused, naming the user, the number and the way out.
        let e = set(&mut s, "ann", Some(2)).unwrap_err().to_string();
        assert!(
            e.contains("ann has no contact 2: see `mfa-admin contact list ann`"),
            "{e}"
        );
        assert_eq!(
            people::override_of(s.conn(), "ann")
                .unwrap()
                .unwrap()
                .double_logon_contact,
            Some(3)
        );
        // The schema refuses numbers outside 1..4 written behind mfa's back.
        assert!(
            s.conn()
                .execute(
                    "UPDATE overrides SET double_logon_contact = 5 WHERE user = 'ann'",
                    []
                )
                .is_err()
        );
        // Deleted without mfa-admin, the contact still takes the choice with it.
        s.conn()
            .execute("DELETE FROM contacts WHERE user = 'ann' AND seq = 3", [])
            .unwrap();
        let o = people::override_of(s.conn(), "ann").unwrap().unwrap();
        assert_eq!(o.double_logon_contact, None);
        assert_eq!(o.mandatory, Some(true));
        assert!(s.integrity_check().unwrap().is_empty());
    }

    #[test]
    fn failed_change_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let r: Result<()> = s.change("root", "test", |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('enabled', 'on')",
                [],
            )?;
            Err(Error::Invalid("no".into()))
        });
        assert!(r.is_err());
        let n: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
            .unwrap();
        let a: i64 = s
            .conn()
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!((n, a), (0, 0));
    }
}
