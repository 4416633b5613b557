//! Users' activity for `inactive_after`: the time of each user's last proven second factor
//! (`users.last_success`, folded in from the login-state files by the maintenance run: a
//! login writes only its state file, [`crate::state::record_success`]) and the users with
//! none for a given time (`mfa-admin user list --inactive`, the maintenance run's
//! `inactive` task).
//!
//! A user's activity is `max(last_success, created, active_from)`: a user who never logged
//! in counts from the creation of their record, or from the upgrade to schema 7 (earlier
//! versions kept no successes) or their last re-enabling (`active_from`), whichever is later. Users exempt from the second factor (their own
//! override or their group's) never prove one, so inactivity does not apply to them: they
//! are listed (marked exempt) but never disabled by it.

use std::path::Path;

use rusqlite::Connection;

use crate::Result;

/// A user without a proven second factor since before some time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inactive {
    pub name: String,
    /// `max(last_success, created, active_from)`.
    pub since: i64,
    /// The last proven second factor, if any is known.
    pub last_success: Option<i64>,
    pub created: i64,
    pub enabled: bool,
    /// Exempt (own or group override): never disabled for inactivity.
    pub exempt: bool,
}

/// Moves each user's last success from their login-state file into `users.last_success`
/// (the later of both). Returns how many records moved forward. Not a policy change: the
/// policy snapshot does not carry the column, so this is a plain [`super::Store::write`].
pub fn fold_last_success(conn: &Connection, database: &Path) -> Result<usize> {
    let mut stmt = conn.prepare(
        "UPDATE users SET last_success = ?2
          WHERE name = ?1 AND (last_success IS NULL OR last_success < ?2)",
    )?;
    let mut n = 0;
    for name in crate::state::user_names(database) {
        if let Some(t) = crate::state::last_success(database, &name) {
            n += stmt.execute(rusqlite::params![name, t])?;
        }
    }
    Ok(n)
}

/// The users (enabled or not) whose activity is older than `before`, oldest first.
pub fn inactive_since(conn: &Connection, before: i64) -> Result<Vec<Inactive>> {
    let mut stmt = conn.prepare(
        "SELECT u.name,
                max(coalesce(u.last_success, 0), u.created, coalesce(u.active_from, 0)) AS since,
                u.last_success, u.created, u.enabled, coalesce(p.exempt, 0)
           FROM users u LEFT JOIN user_policy p ON p.user = u.name
          WHERE max(coalesce(u.last_success, 0), u.created, coalesce(u.active_from, 0)) < ?1
          ORDER BY since, u.name",
    )?;
    let rows = stmt.query_map([before], |r| {
        Ok(Inactive {
            name: r.get(0)?,
            since: r.get(1)?,
            last_success: r.get(2)?,
            created: r.get(3)?,
            enabled: r.get::<_, i64>(4)? != 0,
            exempt: r.get::<_, i64>(5)? != 0,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Disables the given users (inside the caller's change); returns how many were enabled.
pub fn disable(conn: &Connection, names: &[String]) -> Result<usize> {
    let mut stmt = conn.prepare("UPDATE users SET enabled = 0 WHERE name = ?1 AND enabled = 1")?;
    let mut n = 0;
    for name in names {
        n += stmt.execute([name])?;
    }
    Ok(n)
}

/// A time kept in the `meta` table under `key` (the maintenance run's notice markers).
pub fn marker(conn: &Connection, key: &str) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()))
}

/// Keeps `time` in the `meta` table under `key`.
pub fn set_marker(conn: &Connection, key: &str, time: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![key, time.to_string()],
    )?;
    Ok(())
}

/// The logins in the auth log that ended `unavailable-*` (mfa could not decide: the fail
/// mode applied) among the entries after id `after` (or, with none, of the day before
/// `now`): their count, and the newest entry id there is (the next call's `after`). By id,
/// not time: an entry logged in the second of a run is counted once, by the next run.
pub fn unavailable_since(conn: &Connection, after: Option<i64>, now: i64) -> Result<(i64, i64)> {
    let newest: i64 = conn.query_row("SELECT coalesce(max(id), 0) FROM auth_log", [], |r| {
        r.get(0)
    })?;
    let n = match after {
        Some(id) => conn.query_row(
            "SELECT count(*) FROM auth_log WHERE outcome LIKE 'unavailable-%' AND id > ?1
               AND id <= ?2",
            [id, newest],
            |r| r.get(0),
        )?,
        None => conn.query_row(
            "SELECT count(*) FROM auth_log WHERE outcome LIKE 'unavailable-%' AND ts > ?1
               AND id <= ?2",
            [now - 86_400, newest],
            |r| r.get(0),
        )?,
    };
    Ok((n, newest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn activity_is_the_later_of_success_and_creation_and_exempt_users_are_marked() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let (mut s, _) = Store::create(&db).unwrap();
        s.change("t", "add", |tx| {
            tx.execute_batch(
                "INSERT INTO users (name, created) VALUES ('old', 100), ('new', 900),
                        ('active', 100), ('ex', 100);
                 INSERT INTO overrides (user, exempt) VALUES ('ex', 1);",
            )?;
            Ok(((), String::new()))
        })
        .unwrap();
        crate::state::record_success(&db, "active", 950).unwrap();
        // A state file of a name without a record changes nothing.
        crate::state::record_success(&db, "ghost", 950).unwrap();
        assert_eq!(s.write(|tx| fold_last_success(tx, &db)).unwrap(), 1);
        assert_eq!(s.write(|tx| fold_last_success(tx, &db)).unwrap(), 0, "once");
        let names = |v: Vec<Inactive>| v.into_iter().map(|i| i.name).collect::<Vec<_>>();
        assert_eq!(names(inactive_since(s.conn(), 900).unwrap()), ["ex", "old"]);
        assert_eq!(
            names(inactive_since(s.conn(), 901).unwrap()),
            ["ex", "old", "new"]
        );
        let all = inactive_since(s.conn(), 10_000).unwrap();
        assert_eq!(names(all.clone()), ["ex", "old", "new", "active"]);
        assert!(all[0].exempt && !all[1].exempt);
        assert_eq!(all[3].last_success, Some(950));
        assert_eq!(all[3].since, 950);
        let n = s
            .write(|tx| disable(tx, &["old".into(), "old".into(), "nobody".into()]))
            .unwrap();
        assert_eq!(n, 1);
        assert!(!inactive_since(s.conn(), 900).unwrap()[1].enabled);
    }
}
