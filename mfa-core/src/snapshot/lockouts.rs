//! The lockouts in force, in a small file of their own beside the snapshot
//! (`<database>-lockouts`), so that a login that locks a user out writes a few hundred bytes
//! instead of a new snapshot (at 100,000 users the snapshot is 9 MB: copying it cost the
//! locking login about 5 ms of its 9).
//!
//! Derived from the database's `lockouts` table like the snapshot, and kept the same way:
//! written whole under the snapshot lock, deleted inside the transaction of a change and
//! put in place after its commit ([`crate::store::Store::policy_write`]), so that it is
//! either missing or equal to the committed table. It carries the database's lockout
//! generation (`meta` key [`GENERATION_KEY`], moved by every change of the table), which
//! every `mfa-admin` command compares (a restored database). A login reads it with the
//! snapshot's head ([`super::Snapshot::open`]); a missing one makes the login read the
//! database, a damaged one too (reported), as for the snapshot itself.
//!
//! Format (little-endian): `MFALCK01`, u64 generation, u32 count, then per user (sorted by
//! name) a u16 length and the name's bytes, i64 locked until; then the XXH3-128 of
//! everything before it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{DIGEST, Damage, digest};
use crate::files::sibling;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MFALCK01";
/// The `meta` key holding the generation the lockouts file must carry.
pub const GENERATION_KEY: &str = "lockout_generation";
/// A lockouts file larger than this is not read (a lockout is a few dozen bytes).
const MAX_LEN: u64 = 64 << 20;

/// A lockouts file's generation and (user, locked until), sorted by name.
pub(crate) type Lockouts = (u64, Vec<(String, i64)>);

/// The lockouts file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-lockouts")
}

/// The lockouts file of the database as `conn` sees it.
pub(crate) fn encode(conn: &Connection) -> Result<Vec<u8>> {
    let mut stmt = conn
        .prepare("SELECT user, locked_until FROM lockouts WHERE locked_until > 0 ORDER BY user")?;
    let locks: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(24 + locks.len() * 24);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&super::generation_of(conn, GENERATION_KEY)?.to_le_bytes());
    let n = u32::try_from(locks.len()).map_err(|_| Error::Database("too many lockouts".into()))?;
    out.extend_from_slice(&n.to_le_bytes());
    for (name, until) in &locks {
        let len = u16::try_from(name.len())
            .map_err(|_| Error::Database(format!("a user name of {} bytes", name.len())))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&until.to_le_bytes());
    }
    let d = digest(&out);
    out.extend_from_slice(&d);
    Ok(out)
}

/// The lockouts file of `database`: its generation and (user, locked until) sorted by name;
/// `Ok(None)` when there is none, `Err` when it must not be used (not private, not a regular
/// file, damaged).
pub(crate) fn load(database: &Path) -> std::result::Result<Option<Lockouts>, Damage> {
    let Some(bytes) = on_disk(database)? else {
        return Ok(None);
    };
    decode(&bytes).map(Some).ok_or_else(|| {
        Damage::Corrupt(format!(
            "{}: does not match its checksum or does not parse; any mfa-admin command \
             rewrites it from the database",
            path_for(database).display()
        ))
    })
}

/// The bytes of the lockouts file of `database`, read as the module reads it (not through a
/// link, never waiting on a FIFO, private, bounded in size); `Ok(None)` when there is none.
pub(crate) fn on_disk(database: &Path) -> std::result::Result<Option<Vec<u8>>, Damage> {
    let path = path_for(database);
    let shown = path.display();
    let Some((file, meta)) = super::read::open_private(&path)? else {
        return Ok(None);
    };
    if meta.len() > MAX_LEN {
        return Err(Damage::Corrupt(format!(
            "{shown}: {} bytes, too large for a lockouts file; any mfa-admin command rewrites it",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    (&file)
        .take(MAX_LEN)
        .read_to_end(&mut bytes)
        .map_err(|e| Damage::Unreadable(format!("{shown}: {e}")))?;
    Ok(Some(bytes))
}

/// The generation and lockouts of a lockouts file's bytes, if they check and parse.
fn decode(bytes: &[u8]) -> Option<Lockouts> {
    let body_len = bytes.len().checked_sub(DIGEST)?;
    let (body, sum) = bytes.split_at(body_len);
    if body.len() < 20 || &body[..8] != MAGIC || digest(body)[..] != sum[..] {
        return None;
    }
    let generation = u64::from_le_bytes(body.get(8..16)?.try_into().ok()?);
    let n = u32::from_le_bytes(body.get(16..20)?.try_into().ok()?);
    let mut at = 20;
    let mut locks = Vec::new();
    for _ in 0..n {
        let len = usize::from(u16::from_le_bytes(body.get(at..at + 2)?.try_into().ok()?));
        let name = std::str::from_utf8(body.get(at + 2..at + 2 + len)?).ok()?;
        at += 2 + len;
        let until = i64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
        at += 8;
        locks.push((name.to_string(), until));
    }
    (at == body.len()).then_some((generation, locks))
}

/// Writes the lockouts file of the database as `conn` sees it beside the old one, not yet in
/// place ([`crate::files::install`]).
pub(crate) fn stage(conn: &Connection, database: &Path, durable: bool) -> Result<PathBuf> {
    let bytes = encode(conn)?;
    crate::files::write_temp(&path_for(database), durable, |f| f.write_all(&bytes))
}

/// Writes the lockouts file of the database as `conn` sees it, in place.
pub(crate) fn write(conn: &Connection, database: &Path, durable: bool) -> Result<()> {
    let tmp = stage(conn, database, durable)?;
    crate::files::install(&tmp, &path_for(database), durable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_flipped_bit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = crate::store::Store::create(&dir.path().join("mfa.db")).unwrap();
        s.conn()
            .execute_batch(
                "INSERT INTO users (name, full_name, enabled, created) VALUES ('ann', '', 1, 0), ('bob', '', 1, 0);
                 INSERT INTO lockouts (user, failures, locked_until) VALUES ('ann', 5, 4000000000), ('bob', 5, 0);",
            )
            .unwrap();
        let bytes = encode(s.conn()).unwrap();
        let (_, locks) = decode(&bytes).unwrap();
        assert_eq!(locks, vec![("ann".to_string(), 4_000_000_000)]);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(decode(&bad).is_none(), "byte {i} bit {bit}");
            }
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"").is_none());
    }

    fn lock(s: &mut crate::store::Store, user: &str) {
        s.policy_write(false, |tx| {
            Ok((
                crate::store::auth::record_lockout(tx, user, 5, 0, 4_000_000_000)?,
                true,
            ))
        })
        .unwrap();
    }

    /// A lockouts file missing, damaged, of another generation (a restored copy) or a FIFO:
    /// logins read the database (never a lockout lost, never a hang), and every mfa-admin
    /// command's check writes it again.
    #[test]
    fn a_missing_damaged_stale_or_odd_lockouts_file_is_not_trusted_and_rewritten() {
        use crate::snapshot::Snapshot;
        use crate::store::Rebuilt;
        let (_d, mut s) = crate::snapshot::tests::populated();
        let db = s.path().to_path_buf();
        let p = path_for(&db);
        let old = std::fs::read(&p).unwrap();
        lock(&mut s, "user010");
        let locked = |db: &Path| {
            Snapshot::open(db)
                .unwrap()
                .unwrap()
                .facts("user010", "sshd", None)
                .locked_until
        };
        assert_eq!(locked(&db), 4_000_000_000);

        // An older copy put back: another generation, rewritten.
        std::fs::write(&p, &old).unwrap();
        assert!(matches!(
            s.repair_snapshot().unwrap(),
            Some(Rebuilt::Stale { .. })
        ));
        assert_eq!(locked(&db), 4_000_000_000);

        // Missing: no snapshot for logins (they read the database), rewritten.
        std::fs::remove_file(&p).unwrap();
        assert!(Snapshot::open(&db).unwrap().is_none());
        assert_eq!(s.repair_snapshot().unwrap(), Some(Rebuilt::Missing));
        assert_eq!(locked(&db), 4_000_000_000);

        // A flipped byte: refused, reported as damaged, rewritten.
        let mut bad = std::fs::read(&p).unwrap();
        bad[22] ^= 0x01;
        std::fs::write(&p, &bad).unwrap();
        assert!(matches!(Snapshot::open(&db), Err(Damage::Corrupt(_))));
        assert!(matches!(
            s.repair_snapshot().unwrap(),
            Some(Rebuilt::Damaged(_))
        ));
        assert_eq!(locked(&db), 4_000_000_000);

        // A FIFO in its place: refused at once, not waited on.
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = std::time::Instant::now();
        assert!(Snapshot::open(&db).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        std::fs::remove_file(&p).unwrap();
        assert!(s.repair_snapshot().unwrap().is_some());
        assert_eq!(locked(&db), 4_000_000_000);
    }

    /// maintain's and doctor's check with a FIFO at the lockouts file's path: it does not
    /// wait for a writer, names the file as not usable and puts a real file in its place.
    #[test]
    fn the_full_check_does_not_hang_on_a_fifo_and_replaces_it() {
        let (_d, mut s) = crate::snapshot::tests::populated();
        lock(&mut s, "user010");
        let p = path_for(s.path());
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(crate::snapshot::check_and_repair(&mut s).map(|c| c.finding));
        });
        let finding = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("check_and_repair still waiting on a FIFO after 10 s")
            .unwrap();
        assert!(
            matches!(finding, crate::snapshot::Finding::Damaged(_)),
            "{finding:?}"
        );
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
        assert_eq!(
            load(p.parent().unwrap().join("mfa.db").as_path())
                .unwrap()
                .unwrap()
                .1
                .len(),
            2
        );
    }
}
