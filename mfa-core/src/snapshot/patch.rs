//! Updating the policy snapshot after a change instead of building it again: which users and
//! sections a transaction changed ([`track_changes`], [`changes`]: temporary triggers), the
//! new file from the old one and those changes ([`patch`]), and writing a file whose
//! unchanged blocks are copied from the old one in the kernel ([`write_pieces`]).
//!
//! A build reads every user of the database (100,000 users: a third of a second and 110 MB);
//! a patch reads the old file's indexes, the blocks of the users that changed and those
//! users' rows, and copies the rest (`copy_file_range`: about 3 ms for 9 MB). The head (settings,
//! services, lockouts, the key, templates, carriers) is always read again from the database:
//! it is small. The rules are copied unless a rule or a service changed. A change of a carrier
//! (whose suffix every contact of it carries), or of more than [`MAX_USERS`] users, is built
//! whole, as is any snapshot that cannot be read back as it should.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rusqlite::Connection;

use super::encode::{
    Piece, RuleLeaf, UserLeaf, assemble, fixed_sections, head, leaves_of, rule_leaves, user_record,
};
use super::read::Source;
use super::{BLOCK, Snapshot, current_generation, path_for};
use crate::Result;

/// Changes of more users than this are built whole (reading every user at once is then
/// cheaper than one by one).
pub const MAX_USERS: usize = 2048;

/// What a transaction changed, as far as the snapshot is concerned.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Users whose record (row, overrides, contacts, key, backup codes) changed.
    pub users: BTreeSet<String>,
    /// A network rule or a service changed.
    pub rules: bool,
    /// Something that calls for a whole build (a carrier).
    pub all: bool,
    /// A lockout began or ended (the lockouts file, [`super::lockouts`]).
    pub lockouts: bool,
    /// A section of the head changed (settings, templates, the passcode hash key).
    pub head: bool,
}

impl Changes {
    /// Only lockouts changed: the lockouts file is written, the snapshot stays as it is.
    pub fn lockouts_only(&self) -> bool {
        self.lockouts && !self.head && !self.rules && !self.all && self.users.is_empty()
    }
}

/// The temporary table and triggers that record changes: per connection, in its `temp`
/// schema, never in the database file.
const TRACK: &str = "
CREATE TEMP TABLE IF NOT EXISTS snapshot_changes (kind TEXT NOT NULL, user TEXT);
CREATE TEMP TRIGGER IF NOT EXISTS snapshot_users_i AFTER INSERT ON main.users
  BEGIN INSERT INTO snapshot_changes VALUES ('user', NEW.name); END;
CREATE TEMP TRIGGER IF NOT EXISTS snapshot_users_u
  AFTER UPDATE OF name, enabled, duo_user, group_name ON main.users
  BEGIN INSERT INTO snapshot_changes VALUES ('user', OLD.name), ('user', NEW.name); END;
CREATE TEMP TRIGGER IF NOT EXISTS snapshot_users_d AFTER DELETE ON main.users
  BEGIN INSERT INTO snapshot_changes VALUES ('user', OLD.name); END;
";

/// Tables whose rows belong to one user (column `user`).
const PER_USER: [&str; 5] = [
    "overrides",
    "contacts",
    "totp",
    "backup_codes",
    "unix_members",
];
/// Tables a change of which changes the rules section (rules carry service indexes).
const RULES: [&str; 2] = ["networks", "services"];
/// Tables a change of which calls for a whole build (a group's setting is resolved into
/// each of its users' records; groups change rarely).
const WHOLE: [&str; 2] = ["carriers", "groups"];
/// Tables of the head's sections (`meta`'s passcode hash key below).
const HEAD: [&str; 2] = ["settings", "templates"];

/// Starts recording which users and sections the statements of the current transaction on
/// `conn` change (call it inside the transaction, before the change; [`changes`] reads the
/// record). Temporary triggers, so nothing is added to the database file, and a database
/// edited by other means is caught by the generation and `maintain`'s comparison.
pub fn track_changes(conn: &Connection) -> Result<()> {
    let mut sql = String::from(TRACK);
    for t in PER_USER {
        for (when, rows) in [
            ("INSERT", "('user', NEW.user)"),
            ("UPDATE", "('user', OLD.user), ('user', NEW.user)"),
            ("DELETE", "('user', OLD.user)"),
        ] {
            sql.push_str(&format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS snapshot_{t}_{w} AFTER {when} ON main.{t}
                   BEGIN INSERT INTO snapshot_changes VALUES {rows}; END;\n",
                w = &when[..1]
            ));
        }
    }
    for (kind, tables) in [
        ("rules", &RULES[..]),
        ("all", &WHOLE[..]),
        ("lockouts", &["lockouts"][..]),
        ("head", &HEAD[..]),
    ] {
        for t in tables {
            for when in ["INSERT", "UPDATE", "DELETE"] {
                sql.push_str(&format!(
                    "CREATE TEMP TRIGGER IF NOT EXISTS snapshot_{t}_{w} AFTER {when} ON main.{t}
                       BEGIN INSERT INTO snapshot_changes VALUES ('{kind}', NULL); END;\n",
                    w = &when[..1]
                ));
            }
        }
    }
    for (when, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS snapshot_meta_{w} AFTER {when} ON main.meta
               WHEN {row}.key = 'passcode_key'
               BEGIN INSERT INTO snapshot_changes VALUES ('head', NULL); END;\n",
            w = &when[..1]
        ));
    }
    // The default group is resolved into the record of every user without a group.
    for (when, row) in [("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")] {
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS snapshot_default_group_{w} AFTER {when} ON main.settings
               WHEN {row}.key = 'default_group'
               BEGIN INSERT INTO snapshot_changes VALUES ('all', NULL); END;\n",
            w = &when[..1]
        ));
    }
    sql.push_str("DELETE FROM temp.snapshot_changes;");
    conn.execute_batch(&sql)?;
    Ok(())
}

/// What was recorded since [`track_changes`].
pub fn changes(conn: &Connection) -> Result<Changes> {
    let mut out = Changes::default();
    let mut stmt = conn.prepare("SELECT DISTINCT kind, user FROM temp.snapshot_changes")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        match (
            r.get::<_, String>(0)?.as_str(),
            r.get::<_, Option<String>>(1)?,
        ) {
            ("user", Some(u)) => {
                out.users.insert(u);
            }
            ("rules", _) => out.rules = true,
            ("lockouts", _) => out.lockouts = true,
            ("head", _) => out.head = true,
            _ => out.all = true,
        }
    }
    if out.users.len() > MAX_USERS {
        out.all = true;
    }
    Ok(out)
}

/// The snapshot after `changes`: `old` (the snapshot of the database just before them, its
/// head verified) with the database as `conn` sees it now. `Ok(None)` when it must be built
/// whole instead: the changes call for it, or a block of `old` it needs cannot be used.
pub(crate) fn patch(
    conn: &Connection,
    old: &Snapshot,
    changes: &Changes,
) -> Result<Option<(Vec<u8>, Vec<Piece>)>> {
    if changes.all {
        return Ok(None);
    }
    if !changes.rules && changes.users.is_empty() {
        // Only the head's sections changed (a lockout, a setting): the indexes and the whole
        // body stay as they are, offsets counting from the end of the head.
        let services = old.services.clone();
        let fixed = fixed_sections(conn, &services)?;
        let (indexes, body) = old.indexes_and_body();
        let head = head(current_generation(conn)?, &fixed, indexes, body.1)?;
        let copy = Piece::Copy {
            from: body.0 as u64,
            len: body.1 as u64,
        };
        return Ok(Some((head, vec![copy])));
    }
    let (services, rules) = if changes.rules {
        rule_leaves(conn)?
    } else {
        let Ok(entries) = old.all_rule_entries() else {
            return Ok(None);
        };
        let leaves = entries
            .into_iter()
            .map(|(min_first, max_last, at, len, digest)| RuleLeaf {
                min_first,
                max_last,
                piece: Piece::Copy {
                    from: at as u64,
                    len: len as u64,
                },
                digest,
            })
            .collect();
        (old.services.clone(), leaves)
    };
    let fixed = fixed_sections(conn, &services)?;
    let Ok(entries) = old.all_user_entries() else {
        return Ok(None);
    };
    // Each changed name goes to the block that holds it or would hold it.
    let mut touched: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for name in &changes.users {
        let i = entries.partition_point(|e| e.first.as_str() <= name.as_str());
        touched.entry(i.saturating_sub(1)).or_default().push(name);
    }
    let mut users: Vec<UserLeaf> = Vec::with_capacity(entries.len() + 1);
    for (i, e) in entries.iter().enumerate() {
        let Some(names) = touched.remove(&i) else {
            users.push(UserLeaf {
                first: e.first.clone(),
                piece: Piece::Copy {
                    from: e.at as u64,
                    len: e.len as u64,
                },
                digest: e.digest,
            });
            continue;
        };
        let Ok(block) = old.user_block(e) else {
            return Ok(None);
        };
        let Some(records) = Snapshot::split_users(&block) else {
            return Ok(None);
        };
        let mut records: BTreeMap<String, Vec<u8>> = records.into_iter().collect();
        for name in names {
            records.remove(name);
            if let Some(rec) = user_record(conn, name)? {
                records.insert(name.to_string(), rec);
            }
        }
        // A block grows up to twice its built size, then splits.
        let per = if records.len() > 2 * BLOCK {
            BLOCK
        } else {
            2 * BLOCK
        };
        users.extend(leaves_of(records.into_iter().collect(), per));
    }
    // No blocks at all before: the new users make the first ones.
    if let Some(names) = touched.remove(&0) {
        let mut records = Vec::new();
        for name in names {
            if let Some(rec) = user_record(conn, name)? {
                records.push((name.to_string(), rec));
            }
        }
        users.extend(leaves_of(records, BLOCK));
    }
    assemble(current_generation(conn)?, &fixed, rules, users).map(Some)
}

/// Writes a snapshot of `database` made of `head` and `body` (whose copies come from `old`'s
/// file) through a temporary file and a rename, like [`crate::files::replace`]; `durable`
/// adds the fsyncs.
#[cfg(test)]
pub(crate) fn write_pieces(
    database: &Path,
    old: Option<&Snapshot>,
    head: &[u8],
    body: Vec<Piece>,
    durable: bool,
) -> Result<()> {
    let tmp = stage_pieces(database, old, head, body, durable)?;
    crate::files::install(&tmp, &path_for(database), durable)
}

/// The snapshot of `database` after a change, written beside it but not yet in place
/// ([`crate::files::install`] puts it there): `old` patched with `changes` when it can be,
/// else built whole, both from the database as `conn` sees it (the change's own transaction,
/// before its commit). Returns the temporary file and whether it was a patch.
pub(crate) fn stage(
    conn: &Connection,
    database: &Path,
    old: Option<&Snapshot>,
    changes: &Changes,
    durable: bool,
) -> Result<(std::path::PathBuf, bool)> {
    if let Some(old) = old
        && let Some((head, body)) = patch(conn, old, changes)?
        && let Ok(tmp) = stage_pieces(database, Some(old), &head, body, durable)
    {
        return Ok((tmp, true));
    }
    // No usable old file, or a patch that could not be written (the old file cut short
    // under it): built whole.
    let bytes = super::build(conn)?;
    let tmp = crate::files::write_temp(&path_for(database), durable, |f| f.write_all(&bytes))?;
    Ok((tmp, false))
}

/// [`write_pieces`] into a temporary file, not yet in place.
fn stage_pieces(
    database: &Path,
    old: Option<&Snapshot>,
    head: &[u8],
    body: Vec<Piece>,
    durable: bool,
) -> Result<std::path::PathBuf> {
    crate::files::write_temp(&path_for(database), durable, |f| {
        f.write_all(head)?;
        let mut pending: Option<(u64, u64)> = None;
        for piece in body {
            match piece {
                // Copies of adjacent ranges go in one call.
                Piece::Copy { from, len } => match pending {
                    Some((start, n)) if start + n == from => pending = Some((start, n + len)),
                    _ => {
                        if let Some((start, n)) = pending.take() {
                            copy(old, f, start, n)?;
                        }
                        pending = Some((from, len));
                    }
                },
                Piece::Bytes(b) => {
                    if let Some((start, n)) = pending.take() {
                        copy(old, f, start, n)?;
                    }
                    f.write_all(&b)?;
                }
            }
        }
        match pending {
            Some((start, n)) => copy(old, f, start, n),
            None => Ok(()),
        }
    })
}

/// Appends `len` bytes of `old`'s file from `from` to `out`: `copy_file_range` in the kernel
/// (std's `io::copy` between files), no user-space buffer the size of the file.
fn copy(old: Option<&Snapshot>, out: &mut File, from: u64, len: u64) -> std::io::Result<()> {
    let missing = || std::io::Error::other("a piece to copy but no old snapshot");
    let n = match old.map(|s| &s.source) {
        Some(Source::File(f)) => {
            let mut src: &File = f;
            src.seek(SeekFrom::Start(from))?;
            std::io::copy(&mut std::io::Read::take(src, len), out)?
        }
        Some(Source::Bytes(b)) => {
            let start = usize::try_from(from).map_err(|_| missing())?;
            let end = start.saturating_add(usize::try_from(len).map_err(|_| missing())?);
            let part = b.get(start..end).ok_or_else(missing)?;
            out.write_all(part)?;
            part.len() as u64
        }
        None => return Err(missing()),
    };
    if n != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the old snapshot ended before a block to copy",
        ));
    }
    Ok(())
}
