//! Checking the policy snapshot against the database, and rewriting it when it does not
//! match: what `mfa-admin maintain` (the daily timer) runs, and what `doctor` reports.
//!
//! Every `mfa-admin` command already rewrites a snapshot that is missing, of another
//! generation or damaged ([`crate::store::Store::repair_snapshot`]); [`check_and_repair`]
//! also compares its bytes with what the database gives now (a database edited behind
//! mfa's back keeps its generation), says which of these it found, and reads the rewritten
//! file back as a login would before it calls the snapshot sound.

use serde::Serialize;

use std::path::Path;

use super::{Damage, Snapshot, build, current_generation, lock, path_for, verify, write};
use crate::store::Store;
use crate::{Error, Result};

/// What [`check_and_repair`] found before it rewrote anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// It says what the database says: nothing was written.
    Sound,
    /// There was none (logins read the database meanwhile).
    Missing,
    /// It was of another generation than the database (a crash between a change and its
    /// snapshot, a database restored from a backup).
    Stale { was: u64, now: u64 },
    /// It could not be used: a checksum, its owner or mode, its directory (logins read the
    /// database meanwhile and log an error).
    Damaged(Damage),
    /// Sound and of the right generation, but not what the database holds (the database
    /// was changed without mfa-admin).
    Differs,
}

impl Finding {
    /// One word for programs: sound, missing, stale, damaged, differs.
    pub fn word(&self) -> &'static str {
        match self {
            Finding::Sound => "sound",
            Finding::Missing => "missing",
            Finding::Stale { .. } => "stale",
            Finding::Damaged(_) => "damaged",
            Finding::Differs => "differs",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Sound => f.write_str("matches the database"),
            Finding::Missing => f.write_str("was missing"),
            Finding::Stale { was, now } => {
                write!(f, "was stale (generation {was}, the database is at {now})")
            }
            Finding::Damaged(d) => write!(f, "could not be used ({d})"),
            Finding::Differs => f.write_str(
                "did not match the database (was the database changed without mfa-admin?)",
            ),
        }
    }
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.word())
    }
}

/// Whether the snapshot of `database` on disk says what `fresh` (a build) says, whatever
/// their block boundaries (an updated snapshot's differ from a built one's): the same
/// generation, head sections, rules and users. `Err` when the file is missing or damaged.
pub fn same_content(database: &Path, fresh: Vec<u8>) -> std::result::Result<bool, Damage> {
    let on_disk = Snapshot::open(database)?.ok_or_else(|| {
        Damage::Unreadable(format!("{}: not there", path_for(database).display()))
    })?;
    let fresh = Snapshot::from_bytes(fresh, database)?;
    Ok(on_disk.generation() == fresh.generation() && on_disk.content()? == fresh.content()?)
}

/// What the check found and the generation the snapshot now carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub finding: Finding,
    pub generation: u64,
}

/// Checks the snapshot of `store`'s database: verified (header, checksums, owner and mode,
/// its directory) and saying what a snapshot built from the database now says.
/// Anything else is rewritten from the database, durably, and the new file verified again
/// as a login reads it. All of it under the snapshot lock, which every writer of the
/// database's policy and of the snapshot takes first: no change can slip in between the
/// comparison and the rewrite, and a second check waits for the first.
///
/// `Err` when the database cannot be read or the snapshot cannot be written, or when the
/// rewritten file still cannot be used (a directory others can write): logins then read the
/// database, and the message says what to fix.
pub fn check_and_repair(store: &mut Store) -> Result<Checked> {
    let db = store.path().to_path_buf();
    let shown = path_for(&db).display().to_string();
    let _lock = lock(&db, false)?;
    let (generation, fresh, locks) = store.read(|tx| {
        Ok((
            current_generation(tx)?,
            build(tx)?,
            super::lockouts::encode(tx)?,
        ))
    })?;
    // The lockouts file beside it (a missing one makes the snapshot missing to logins).
    let locks_path = super::lockouts::path_for(&db);
    // Read as a login reads it: a FIFO put there must not hang the check.
    let locks_differ = super::lockouts::on_disk(&db).map_or(true, |b| b.as_ref() != Some(&locks));
    let finding = match verify(&db) {
        Ok(Some(g)) if g != generation => Finding::Stale {
            was: g,
            now: generation,
        },
        Ok(Some(_)) => match same_content(&db, fresh.clone()) {
            Ok(true) if locks_differ => Finding::Differs,
            Ok(true) => Finding::Sound,
            Ok(false) => Finding::Differs,
            Err(d) => Finding::Damaged(d),
        },
        Ok(None) => Finding::Missing,
        Err(d) => Finding::Damaged(d),
    };
    if finding == Finding::Sound {
        return Ok(Checked {
            finding,
            generation,
        });
    }
    crate::files::replace(&locks_path, &locks, true)?;
    write(&db, &fresh, true)?;
    let still = match verify(&db) {
        Ok(Some(g)) if g == generation => match same_content(&db, fresh) {
            Ok(true) => None,
            Ok(false) => Some("it reads back different from what was written".to_string()),
            Err(d) => Some(d.to_string()),
        },
        Ok(Some(g)) => Some(format!("it reads back as generation {g}, not {generation}")),
        Ok(None) => Some("it is not there after writing it".to_string()),
        Err(d) => Some(d.to_string()),
    };
    match still {
        None => Ok(Checked {
            finding,
            generation,
        }),
        Some(why) => Err(Error::Failed(format!(
            "{shown} {finding}; rewritten from the database, but it still cannot be used: {why}. \
             Logins read the database (slower) until it can: fix the file's directory \
             (root's, not writable by group or others), then run mfa-admin maintain again"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn store(d: &tempfile::TempDir) -> Store {
        Store::create(&d.path().join("mfa.db")).unwrap().0
    }

    fn snap(s: &Store) -> std::path::PathBuf {
        path_for(s.path())
    }

    #[test]
    fn each_finding_is_named_and_repaired() {
        let d = tempfile::tempdir().unwrap();
        let mut s = store(&d);
        let c = check_and_repair(&mut s).unwrap();
        assert_eq!(c.finding, Finding::Sound);
        let sound = std::fs::read(snap(&s)).unwrap();
        let mtime = std::fs::metadata(snap(&s)).unwrap().modified().unwrap();
        assert_eq!(check_and_repair(&mut s).unwrap().finding, Finding::Sound);
        assert_eq!(
            std::fs::metadata(snap(&s)).unwrap().modified().unwrap(),
            mtime,
            "a sound snapshot is not rewritten"
        );

        std::fs::remove_file(snap(&s)).unwrap();
        assert_eq!(check_and_repair(&mut s).unwrap().finding, Finding::Missing);
        assert_eq!(std::fs::read(snap(&s)).unwrap(), sound);

        // A flipped byte in the last block.
        let mut bad = sound.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        std::fs::write(snap(&s), &bad).unwrap();
        let c = check_and_repair(&mut s).unwrap();
        assert!(
            matches!(c.finding, Finding::Damaged(Damage::Corrupt(_))),
            "{c:?}"
        );
        assert_eq!(std::fs::read(snap(&s)).unwrap(), sound);

        // Readable by others: its content is not trusted; the rewrite is private.
        std::fs::set_permissions(snap(&s), std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = check_and_repair(&mut s).unwrap();
        assert!(
            matches!(c.finding, Finding::Damaged(Damage::Insecure(_))),
            "{c:?}"
        );
        let mode = std::fs::metadata(snap(&s)).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");

        // The database moved on behind the snapshot's back (a restored backup).
        let old = std::fs::read(snap(&s)).unwrap();
        s.change("t", "settings set", |tx| {
            crate::store::rules::set_setting(tx, "enabled", "on")?;
            Ok(((), String::new()))
        })
        .unwrap();
        std::fs::write(snap(&s), &old).unwrap();
        let c = check_and_repair(&mut s).unwrap();
        assert!(
            matches!(c.finding, Finding::Stale { was, now } if now > was),
            "{c:?}"
        );
        let g = c.generation;
        assert_eq!(verify(s.path()).unwrap(), Some(g));

        // Edited without mfa-admin: same generation, other content.
        s.conn()
            .execute(
                "UPDATE settings SET value = 'off' WHERE key = 'enabled'",
                [],
            )
            .unwrap();
        let c = check_and_repair(&mut s).unwrap();
        assert_eq!(c.finding, Finding::Differs);
        let snapshot = super::super::Snapshot::open(s.path()).unwrap().unwrap();
        assert!(
            !snapshot.settings().enabled,
            "the snapshot follows the database"
        );
        assert_eq!(check_and_repair(&mut s).unwrap().finding, Finding::Sound);
    }

    /// A snapshot of the previous format (`MFAPOL03`, before the double-logon contact), as a
    /// package upgrade leaves it: named as such, rewritten in this format, then sound.
    #[test]
    fn a_snapshot_of_another_version_is_named_and_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let mut s = store(&d);
        let sound = std::fs::read(snap(&s)).unwrap();
        let mut old = sound.clone();
        old[..8].copy_from_slice(b"MFAPOL03");
        std::fs::write(snap(&s), &old).unwrap();
        let c = check_and_repair(&mut s).unwrap();
        let Finding::Damaged(Damage::Corrupt(why)) = &c.finding else {
            panic!("{c:?}");
        };
        assert!(
            why.contains("written by another version of mfa (MFAPOL03"),
            "{why}"
        );
        assert_eq!(std::fs::read(snap(&s)).unwrap(), sound);
        assert_eq!(check_and_repair(&mut s).unwrap().finding, Finding::Sound);
    }

    /// A directory others can write: the rewrite cannot make the snapshot usable, and says
    /// what to fix.
    #[test]
    fn a_snapshot_that_cannot_be_made_usable_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let mut s = store(&d);
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_and_repair(&mut s).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("still cannot be used"), "{text}");
        assert!(text.contains("not writable by group or others"), "{text}");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_and_repair(&mut s).is_ok());
    }
}
