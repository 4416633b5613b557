//! Queries of an authentication: the facts the decision needs, passcode challenges (keyed
//! hashes only), failure counts and lockouts, and the installation's passcode hash key.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};

use crate::passcode::{KEY_LEN, random_bytes};
use crate::policy::{Facts, NetworkFacts, UserFacts};
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
            "SELECT u.enabled, coalesce(o.mandatory, 0), coalesce(o.exempt, 0), o.self_enroll, o.log_level,
                    (SELECT count(*) FROM contacts c WHERE c.user = u.name),
                    EXISTS (SELECT 1 FROM totp t WHERE t.user = u.name),
                    (SELECT count(*) FROM backup_codes b WHERE b.user = u.name)
             FROM users u LEFT JOIN overrides o ON o.user = u.name
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
                ))
            },
        )
        .optional()?;
    let user_facts = match user_facts {
        Some((enabled, mandatory, exempt, self_enroll, log, contacts, totp, backups)) => {
            Some(UserFacts {
                enabled,
                mandatory,
                exempt,
                self_enroll,
                log: log.as_deref().map(LogLevel::parse).transpose()?,
                contacts: usize::try_from(contacts).unwrap_or(0),
                totp,
                backup_codes: usize::try_from(backups).unwrap_or(0),
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

/// An outstanding challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub id: String,
    pub user: String,
    pub service: String,
    pub address: String,
    /// login, enroll or ftp.
    pub purpose: String,
    pub prefix: char,
    pub code_hash: Vec<u8>,
    pub destination: String,
    pub created: i64,
    pub expires: i64,
    pub attempts_left: i64,
    pub resends: i64,
}

/// Stores a challenge (and drops challenges that expired over an hour ago).
pub fn insert_challenge(conn: &Connection, c: &Challenge) -> Result<()> {
    conn.execute(
        "DELETE FROM challenges WHERE expires < ?1",
        [c.created - 3600],
    )?;
    conn.execute(
        "INSERT INTO challenges (id, user, service, address, purpose, prefix, code_hash, destination,
                                 created, expires, attempts_left, resends)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            c.id,
            c.user,
            c.service,
            c.address,
            c.purpose,
            c.prefix.to_string(),
            c.code_hash,
            c.destination,
            c.created,
            c.expires,
            c.attempts_left,
            c.resends
        ],
    )?;
    Ok(())
}

/// Reads a challenge by id.
pub fn challenge(conn: &Connection, id: &str) -> Result<Option<Challenge>> {
    Ok(conn
        .query_row(
            "SELECT id, user, service, address, purpose, prefix, code_hash, destination, created, expires,
                    attempts_left, resends FROM challenges WHERE id = ?1",
            [id],
            |r| {
                let prefix: String = r.get(5)?;
                Ok(Challenge {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    service: r.get(2)?,
                    address: r.get(3)?,
                    purpose: r.get(4)?,
                    prefix: prefix.chars().next().unwrap_or('A'),
                    code_hash: r.get(6)?,
                    destination: r.get(7)?,
                    created: r.get(8)?,
                    expires: r.get(9)?,
                    attempts_left: r.get(10)?,
                    resends: r.get(11)?,
                })
            },
        )
        .optional()?)
}

/// Uses up one attempt of a challenge; returns the attempts left.
pub fn spend_attempt(conn: &Connection, id: &str) -> Result<i64> {
    conn.execute("UPDATE challenges SET attempts_left = attempts_left - 1 WHERE id = ?1 AND attempts_left > 0", [id])?;
    Ok(conn
        .query_row(
            "SELECT attempts_left FROM challenges WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Removes a challenge (answered, replaced or given up).
pub fn delete_challenge(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM challenges WHERE id = ?1", [id])?;
    Ok(())
}

/// Counts a failure; returns the time the user is locked out until, if this failure locked
/// them out.
pub fn record_failure(
    conn: &Connection,
    user: &str,
    now: i64,
    settings: &Settings,
) -> Result<Option<i64>> {
    // A lockout that has run out starts a new count.
    conn.execute(
        "UPDATE lockouts SET failures = 0, locked_until = 0
         WHERE user = ?1 AND locked_until > 0 AND locked_until <= ?2",
        params![user, now],
    )?;
    conn.execute(
        "INSERT INTO lockouts (user, failures, last_failure) VALUES (?1, 1, ?2)
         ON CONFLICT (user) DO UPDATE SET failures = failures + 1, last_failure = excluded.last_failure",
        params![user, now],
    )?;
    let failures: i64 = conn.query_row(
        "SELECT failures FROM lockouts WHERE user = ?1",
        [user],
        |r| r.get(0),
    )?;
    if settings.lockout_after > 0 && failures >= i64::from(settings.lockout_after) {
        let until = now + i64::from(settings.lockout_for);
        conn.execute(
            // The count stays: logins already at a prompt see the lockout at their next
            // guess (see `locked_until`), and only a success or an unlock clears it.
            "UPDATE lockouts SET locked_until = ?2 WHERE user = ?1",
            params![user, until],
        )?;
        return Ok(Some(until));
    }
    Ok(None)
}

/// Unix time until which a user is locked out (0 when not). Read inside the transaction
/// that checks a guess, so that logins already waiting at a prompt stop guessing as soon as
/// any of them locked the user out.
pub fn locked_until(conn: &Connection, user: &str) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT locked_until FROM lockouts WHERE user = ?1",
            [user],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

/// Records a passed second factor: clears the failure count. (The repeat-window grant is a
/// file: [`crate::grants::record`].)
pub fn record_success(conn: &Connection, user: &str) -> Result<()> {
    conn.execute("DELETE FROM lockouts WHERE user = ?1", [user])?;
    Ok(())
}
