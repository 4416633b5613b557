//! Repeat-window grants: "user U passed 2FA on service S from address A at time T", one small
//! file per (U, S, A) in `<database>-grants/`, so that the module's repeat-window check is one
//! file read instead of a database open. A grant only ever lets the rest of the stack decide
//! (PAM_IGNORE) within `repeat_window`; losing one (a crash, a reboot) costs the user one
//! challenge, so grants are written without fsync, as the design's hot path is.
//!
//! A file is named by the SHA-256 of `U\0S\0A` (PAM_RHOST may hold any bytes a client sent)
//! and holds `T\0U\0S\0A`; a read checks the whole content, so a collision or a damaged file
//! is no grant. The directory is 0700 and owned by root, like the database.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::snapshot::sibling;
use crate::{Error, Result};

/// The grant directory of a database.
pub fn dir_for(database: &Path) -> PathBuf {
    sibling(database, "-grants")
}

fn file_for(database: &Path, user: &str, service: &str, address: &str) -> PathBuf {
    let digest = Sha256::digest(key(user, service, address));
    let mut name = String::with_capacity(64);
    for b in digest {
        name.push_str(&format!("{b:02x}"));
    }
    dir_for(database).join(name)
}

fn key(user: &str, service: &str, address: &str) -> Vec<u8> {
    [user.as_bytes(), service.as_bytes(), address.as_bytes()].join(&0u8)
}

/// Records that `user` passed 2FA on `service` from `address` at `now`.
pub fn record(database: &Path, user: &str, service: &str, address: &str, now: i64) -> Result<()> {
    let dir = dir_for(database);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(&dir, e)),
    }
    let path = file_for(database, user, service, address);
    let mut content = now.to_string().into_bytes();
    content.push(0);
    content.extend_from_slice(&key(user, service, address));
    crate::state::replace(&path, &content)
}

/// When `user` last passed 2FA on `service` from `address`, if a grant is on file.
pub fn last(database: &Path, user: &str, service: &str, address: &str) -> Option<i64> {
    let content = std::fs::read(file_for(database, user, service, address)).ok()?;
    let (time, rest) = content.split_at(content.iter().position(|&b| b == 0)?);
    if rest.get(1..)? != key(user, service, address).as_slice() {
        return None;
    }
    std::str::from_utf8(time).ok()?.parse().ok()
}

/// Removes every grant of `user` (deleted, renamed, unlocked or given a new factor), or of
/// everybody when `user` is `None`. Returns how many were removed.
pub fn revoke(database: &Path, user: Option<&str>) -> Result<usize> {
    let dir = dir_for(database);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let matches = match user {
            None => true,
            Some(u) => std::fs::read(&path)
                .is_ok_and(|c| c.split(|&b| b == 0).nth(1) == Some(u.as_bytes())),
        };
        if matches && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Ages every grant by `secs` (tests of the repeat window).
#[doc(hidden)]
pub fn age_all(database: &Path, secs: i64) -> Result<()> {
    let dir = dir_for(database);
    let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| Error::io(&dir, e))?.path();
        let content = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let Some(i) = content.iter().position(|&b| b == 0) else {
            continue;
        };
        let Some(t) = std::str::from_utf8(&content[..i])
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
        else {
            continue;
        };
        let mut new = (t - secs).to_string().into_bytes();
        new.extend_from_slice(&content[i..]);
        std::fs::write(&path, new).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_read_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), None);
        record(&db, "ann", "sshd", "10.0.0.1", 1000).unwrap();
        record(&db, "ann", "su", "", 1001).unwrap();
        record(&db, "bob", "sshd", "10.0.0.1", 1002).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(1000));
        assert_eq!(last(&db, "ann", "su", ""), Some(1001));
        // Keyed on all three: no grant for another address, service or user.
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.2"), None);
        assert_eq!(last(&db, "ann", "sshd\0", "10.0.0.1"), None);
        record(&db, "ann", "sshd", "10.0.0.1", 2000).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(2000));
        age_all(&db, 100).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(1900));
        assert_eq!(revoke(&db, Some("ann")).unwrap(), 2);
        assert_eq!(last(&db, "ann", "su", ""), None);
        assert_eq!(last(&db, "bob", "sshd", "10.0.0.1"), Some(902));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir_for(&db))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn a_damaged_or_foreign_file_is_no_grant() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        record(&db, "ann", "sshd", "h", 5).unwrap();
        let f = file_for(&db, "ann", "sshd", "h");
        std::fs::write(&f, b"5\0bob\0sshd\0h").unwrap();
        assert_eq!(last(&db, "ann", "sshd", "h"), None);
        std::fs::write(&f, b"garbage").unwrap();
        assert_eq!(last(&db, "ann", "sshd", "h"), None);
    }
}
