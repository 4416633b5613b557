//! Queries of an authentication: the facts the decision needs, lockouts (and how their end
//! is written for people), and the installation's passcode hash key. (Challenges and failure
//! counts are files: [`crate::state`].)

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};

use crate::passcode::{KEY_LEN, random_bytes};
use crate::policy::{Factors, Facts, NetworkFacts, UserFacts};
use crate::settings::{LogLevel, Settings};
use crate::store::rules;
use crate::{Error, Result};

/// The installation's passcode hash key, created on first use.
pub fn passcode_key(conn: &Connection) -> Result<Vec<u8>> {
    let get = || -> Result<Option<Vec<u8>>> {
        Ok(conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'passcode_key'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    };
    if let Some(k) = get()? {
        return Ok(k);
    }
    let key = random_bytes::<KEY_LEN>()?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('passcode_key', ?1)",
        [key.as_slice()],
    )?;
    get()?.ok_or_else(|| Error::Database("passcode key missing after insert".into()))
}

/// Reads everything [`crate::policy::decide`] needs for one request but the repeat-window
/// grant (a file: [`crate::grants`]). `ip` is PAM_RHOST when it is an IP address.
pub fn facts(conn: &Connection, user: &str, service: &str, ip: Option<IpAddr>) -> Result<Facts> {
    let settings: Settings = rules::settings(conn)?;
    let method = rules::method_for(conn, service)?;
    let user_facts = conn
        .query_row(
            "SELECT u.enabled, p.mandatory, p.exempt, p.self_enroll, p.log_level,
                    (SELECT count(*) FROM contacts c WHERE c.user = u.name),
                    EXISTS (SELECT 1 FROM totp t WHERE t.user = u.name),
                    (SELECT count(*) FROM backup_codes b WHERE b.user = u.name),
                    o.double_logon_contact, u.duo_user IS NOT NULL, p.factors
             FROM users u JOIN user_policy p ON p.user = u.name
             LEFT JOIN overrides o ON o.user = u.name
             WHERE u.name = ?1",
            [user],
            |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<bool>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, bool>(9)?,
                    r.get::<_, i64>(10)?,
                ))
            },
        )
        .optional()?;
    let user_facts = match user_facts {
        Some((
            enabled,
            mandatory,
            exempt,
            self_enroll,
            log,
            contacts,
            totp,
            backups,
            dlc,
            duo,
            f,
        )) => {
            let factors = Factors::from_bits(f).ok_or_else(|| {
                Error::Database(format!(
                    "user {user:?}: stored factors {f} are not within 1..15"
                ))
            })?;
            Some(UserFacts {
                enabled,
                mandatory,
                exempt,
                self_enroll,
                log: log.as_deref().map(LogLevel::parse).transpose()?,
                contacts: usize::try_from(contacts).unwrap_or(0),
                totp,
                backup_codes: usize::try_from(backups).unwrap_or(0),
                duo,
                factors,
                double_logon_contact: dlc,
            })
        }
        None => None,
    };
    // Lockouts are kept by name, so a user without a record (an enrollment that keeps
    // failing) is locked out too.
    let locked_until: i64 = conn
        .query_row(
            "SELECT locked_until FROM lockouts WHERE user = ?1",
            [user],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let network = match ip {
        Some(ip) => rules::matching_networks(conn, service, ip)?
            .into_iter()
            .next()
            .map(|r| NetworkFacts {
                id: r.id,
                require: r.require,
                log: r.log.as_deref().and_then(|l| LogLevel::parse(l).ok()),
            }),
        None => None,
    };
    Ok(Facts {
        settings,
        method,
        user: user_facts,
        locked_until,
        network,
        // Grants are files: the caller adds the time (crate::grants).
        last_grant: None,
    })
}

/// Records a lockout (the failure count itself is a file: [`crate::state`]).
pub fn record_lockout(
    conn: &Connection,
    user: &str,
    failures: u32,
    now: i64,
    until: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO lockouts (user, failures, last_failure, locked_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user) DO UPDATE SET failures = excluded.failures,
             last_failure = excluded.last_failure, locked_until = excluded.locked_until",
        params![user, failures, now, until],
    )?;
    Ok(())
}

/// Records a passed second factor: removes the user's (run-out) lockout. (The failure count
/// and the repeat-window grant are files: [`crate::state`], [`crate::grants`].)
pub fn record_success(conn: &Connection, user: &str) -> Result<()> {
    conn.execute("DELETE FROM lockouts WHERE user = ?1", [user])?;
    Ok(())
}

/// A Unix time as people read it in logs and messages: `2026-11-30 08:15:00 UTC`. UTC, and
/// said so: the PAM module runs inside su, sudo or sshd, whose time zone is not the reader's.
/// A time beyond year 9999 (or before 0) is written as `@SECONDS`.
pub fn time_text(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return format!("@{ts}");
    }
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::time_text;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(time_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time_text(1_796_018_216), "2026-11-30 05:56:56 UTC");
        assert_eq!(time_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time_text(1_709_164_799), "2024-02-28 23:59:59 UTC");
        assert_eq!(time_text(4_102_444_800), "2100-01-01 00:00:00 UTC");
        assert_eq!(time_text(-1), "1969-12-31 23:59:59 UTC");
        assert_eq!(time_text(i64::MAX), format!("@{}", i64::MAX));
        assert_eq!(time_text(i64::MIN), format!("@{}", i64::MIN));
        assert_eq!(time_text(253_402_300_799), "9999-12-31 23:59:59 UTC");
        assert_eq!(time_text(253_402_300_800), "@253402300800");
    }
}
