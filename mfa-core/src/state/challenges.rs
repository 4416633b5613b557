//! Passcode challenge files: `<database>-challenges/ID`, one per code sent and not yet
//! answered, holding only a keyed hash of the code.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{dir, remove_if_exists, replace};
use crate::snapshot::sibling;
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

pub(super) fn challenge_path(database: &Path, id: &str) -> Result<PathBuf> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Invalid(format!("bad challenge id {id:?}")));
    }
    Ok(sibling(database, "-challenges").join(id))
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
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Database(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&path, e)),
    }
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
        let path = entry.path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        // A file that does not parse may be one another login is writing right now; it goes
        // only when an hour old (a crashed writer's leftover).
        let gone = match serde_json::from_slice::<Challenge>(&bytes) {
            Ok(c) => doomed(&c),
            Err(_) => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600),
        };
        if gone && std::fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    Ok(n)
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
