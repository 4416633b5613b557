//! Queries for the authenticator-app factor and backup codes: enrol, remove, and the atomic
//! use of a backup code. (The newest accepted TOTP step is a file: [`crate::state`].)

use rusqlite::{Connection, OptionalExtension, params};

use crate::Result;
use crate::totp::Key;

/// Stores (or replaces) a user's key; the old key stops working at once.
pub fn set_totp(conn: &Connection, user: &str, key: &Key, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO totp (user, secret, algorithm, digits, created) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (user) DO UPDATE SET secret = excluded.secret, algorithm = excluded.algorithm,
             digits = excluded.digits, created = excluded.created",
        params![user, key.secret, key.algorithm, key.digits, now],
    )?;
    Ok(())
}

/// A user's key, if enrolled.
pub fn totp_of(conn: &Connection, user: &str) -> Result<Option<Key>> {
    Ok(conn
        .query_row(
            "SELECT secret, algorithm, digits FROM totp WHERE user = ?1",
            [user],
            |r| {
                Ok(Key {
                    secret: r.get(0)?,
                    algorithm: r.get(1)?,
                    digits: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Removes a user's key; returns whether there was one.
pub fn remove_totp(conn: &Connection, user: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM totp WHERE user = ?1", [user])? > 0)
}

/// Replaces a user's backup codes by these hashes.
pub fn set_backup_codes(conn: &Connection, user: &str, hashes: &[Vec<u8>], now: i64) -> Result<()> {
    conn.execute("DELETE FROM backup_codes WHERE user = ?1", [user])?;
    let mut st = conn
        .prepare("INSERT OR IGNORE INTO backup_codes (user, hash, created) VALUES (?1, ?2, ?3)")?;
    for h in hashes {
        st.execute(params![user, h, now])?;
    }
    Ok(())
}

/// Uses a backup code: deletes its row; true when there was one (the code was valid and
/// unused).
pub fn use_backup_code(conn: &Connection, user: &str, hash: &[u8]) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM backup_codes WHERE user = ?1 AND hash = ?2",
        params![user, hash],
    )? == 1)
}

/// How many backup codes a user has left.
pub fn backup_count(conn: &Connection, user: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM backup_codes WHERE user = ?1",
        [user],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, people};

    #[test]
    fn keys_replace_and_backup_codes_work_once() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let c = s.conn();
        people::add_user(c, "ann", "", 0).unwrap();
        let k = Key::generate("sha1", 6).unwrap();
        set_totp(c, "ann", &k, 0).unwrap();
        assert_eq!(totp_of(c, "ann").unwrap().unwrap(), k);
        // A new key replaces the old one at once.
        let k2 = Key::generate("sha256", 8).unwrap();
        set_totp(c, "ann", &k2, 1).unwrap();
        assert_eq!(totp_of(c, "ann").unwrap().unwrap(), k2);
        assert!(remove_totp(c, "ann").unwrap());
        assert!(totp_of(c, "ann").unwrap().is_none());
        assert!(!remove_totp(c, "ann").unwrap());

        set_backup_codes(c, "ann", &[vec![1], vec![2]], 0).unwrap();
        assert_eq!(backup_count(c, "ann").unwrap(), 2);
        assert!(use_backup_code(c, "ann", &[1]).unwrap());
        assert!(!use_backup_code(c, "ann", &[1]).unwrap());
        set_backup_codes(c, "ann", &[vec![3]], 0).unwrap();
        assert!(
            !use_backup_code(c, "ann", &[2]).unwrap(),
            "new codes revoke the old"
        );
        assert_eq!(backup_count(c, "ann").unwrap(), 1);
    }
}
