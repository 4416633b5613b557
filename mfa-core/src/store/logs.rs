//! The two logs: the auth log (one row per authentication outcome, written by the PAM
//! module) and the admin audit log (one row per change made through mfa-admin).

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use std::net::IpAddr;

use crate::Result;
use crate::net::{IpRange, addr_key, parse_address};

/// One authentication outcome. `destination` is masked; no code ever goes here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthEvent {
    pub id: i64,
    pub time: i64,
    pub user: String,
    pub service: String,
    /// PAM_RHOST as given ("" for a local login).
    pub address: String,
    pub tty: String,
    /// What happened: one of [`OUTCOMES`].
    pub outcome: String,
    pub method: String,
    pub destination: String,
    pub reason: String,
}

/// Every outcome the module logs, with what it means (`log show --outcome`).
pub const OUTCOMES: &[(&str, &str)] = &[
    ("success", "the second factor was proved"),
    (
        "ignore",
        "not asked: exempt, trusted network, repeat window, unassigned=allow",
    ),
    (
        "deny",
        "refused: wrong or no answer, locked out, unassigned=deny",
    ),
    (
        "abandoned",
        "a code was sent and never answered (the connection dropped)",
    ),
    ("rate-limited", "refused: a send limit was reached"),
    (
        "error",
        "the policy snapshot was damaged or not private: the login read the database instead",
    ),
    (
        "unavailable-deny",
        "mfa could not ask; fail_mode=secure denied",
    ),
    (
        "unavailable-ignore",
        "mfa could not ask; fail_mode=safe let the login through",
    ),
];

/// Checks an outcome name for `log show --outcome`; the error lists the names.
pub fn outcome(name: &str) -> Result<String> {
    if OUTCOMES.iter().any(|(o, _)| *o == name) {
        return Ok(name.to_string());
    }
    let names: Vec<&str> = OUTCOMES.iter().map(|(o, _)| *o).collect();
    Err(crate::Error::Invalid(format!(
        "--outcome {name:?}: no such outcome; one of: {}",
        names.join(", ")
    )))
}

/// Appends an auth-log row (the `id` and, if zero, `time` of `event` are ignored/filled).
pub fn record_auth(conn: &Connection, event: &AuthEvent) -> Result<i64> {
    insert_auth(conn, event, None)?;
    Ok(conn.last_insert_rowid())
}

/// Stores a row moved from the module's inbox, once per `event_id`; returns whether it was
/// new.
pub fn record_auth_event(conn: &Connection, event: &AuthEvent, event_id: &str) -> Result<bool> {
    Ok(insert_auth(conn, event, Some(event_id))? > 0)
}

fn insert_auth(conn: &Connection, event: &AuthEvent, event_id: Option<&str>) -> Result<usize> {
    let key = parse_address(&event.address).ok().map(log_key);
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO auth_log
             (ts, user, service, address, addr_key, tty, outcome, method, destination, reason, event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let ts = if event.time == 0 {
        crate::now()
    } else {
        event.time
    };
    Ok(stmt.execute(params![
        ts,
        event.user,
        event.service,
        event.address,
        key,
        event.tty,
        event.outcome,
        event.method,
        event.destination,
        event.reason,
        event_id
    ])?)
}

/// The auth log's address key: the family (4 or 6) then the 16-byte address key, so that
/// a range of one family never matches addresses of the other.
fn log_key(a: IpAddr) -> Vec<u8> {
    let a = a.to_canonical();
    let mut key = vec![if a.is_ipv4() { 4 } else { 6 }];
    key.extend_from_slice(&addr_key(a));
    key
}

/// Filters of `log show`. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct AuthFilter {
    pub user: Option<String>,
    /// An address, or a range containing the address.
    pub address: Option<IpRange>,
    pub service: Option<String>,
    /// One of [`OUTCOMES`].
    pub outcome: Option<String>,
    /// Inclusive lower bound, Unix seconds.
    pub since: Option<i64>,
    /// Exclusive upper bound, Unix seconds.
    pub until: Option<i64>,
    /// Most rows to return (the newest ones).
    pub limit: Option<u32>,
}

/// The matching rows, oldest first (the newest `limit` of them).
pub fn auth_log(conn: &Connection, f: &AuthFilter) -> Result<Vec<AuthEvent>> {
    let (first, last) = match &f.address {
        Some(r) => (Some(log_key(r.first())), Some(log_key(r.last()))),
        None => (None, None),
    };
    let mut stmt = conn.prepare(
        "SELECT * FROM (
           SELECT id, ts, user, service, address, tty, outcome, method, destination, reason FROM auth_log
           WHERE (?1 IS NULL OR user = ?1)
             AND (?2 IS NULL OR (addr_key >= ?2 AND addr_key <= ?3))
             AND (?4 IS NULL OR service = ?4)
             AND (?5 IS NULL OR ts >= ?5)
             AND (?6 IS NULL OR ts < ?6)
             AND (?8 IS NULL OR outcome = ?8)
           ORDER BY id DESC LIMIT ?7)
         ORDER BY id",
    )?;
    let limit = f.limit.map_or(-1, i64::from);
    let rows = stmt.query_map(
        params![
            f.user, first, last, f.service, f.since, f.until, limit, f.outcome
        ],
        |r| {
            Ok(AuthEvent {
                id: r.get(0)?,
                time: r.get(1)?,
                user: r.get(2)?,
                service: r.get(3)?,
                address: r.get(4)?,
                tty: r.get(5)?,
                outcome: r.get(6)?,
                method: r.get(7)?,
                destination: r.get(8)?,
                reason: r.get(9)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes auth-log rows older than `before` (Unix seconds); returns how many.
pub fn purge_auth_log(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM auth_log WHERE ts < ?1", [before])?)
}

/// One administrator's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub time: i64,
    /// Who: SUDO_USER, else the login name.
    pub actor: String,
    /// The command, such as `net add`.
    pub action: String,
    /// What changed.
    pub detail: String,
}

/// Appends an audit record.
pub fn audit(conn: &Connection, actor: &str, action: &str, detail: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (ts, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![crate::now(), actor, action, detail],
    )?;
    Ok(())
}

/// The newest `limit` audit records (all when `None`), oldest first, optionally since a time.
pub fn audit_log(
    conn: &Connection,
    since: Option<i64>,
    limit: Option<u32>,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT * FROM (SELECT id, ts, actor, action, detail FROM audit_log
                        WHERE ?1 IS NULL OR ts >= ?1 ORDER BY id DESC LIMIT ?2)
         ORDER BY id",
    )?;
    let rows = stmt.query_map(params![since, limit.map_or(-1, i64::from)], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            time: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            detail: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn filters() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let c = s.conn();
        for (i, (user, addr)) in [
            ("ann", "10.0.0.1"),
            ("bob", "10.0.0.2"),
            ("ann", "2001:db8::1"),
            ("ann", ""),
        ]
        .iter()
        .enumerate()
        {
            let ev = AuthEvent {
                time: 1000 + i as i64,
                user: user.to_string(),
                service: "sshd".into(),
                address: addr.to_string(),
                outcome: if i == 1 { "abandoned" } else { "success" }.into(),
                ..Default::default()
            };
            record_auth(c, &ev).unwrap();
        }
        let q = |f: AuthFilter| auth_log(c, &f).unwrap().len();
        assert_eq!(q(AuthFilter::default()), 4);
        assert_eq!(
            q(AuthFilter {
                user: Some("ann".into()),
                ..Default::default()
            }),
            3
        );
        let net = IpRange::parse_cidr("10.0.0.0/30").unwrap();
        assert_eq!(
            q(AuthFilter {
                address: Some(net),
                ..Default::default()
            }),
            2
        );
        let v6 = IpRange::parse_cidr("2001:db8::/32").unwrap();
        assert_eq!(
            q(AuthFilter {
                address: Some(v6),
                ..Default::default()
            }),
            1
        );
        let low6 = IpRange::parse_cidr("::/64").unwrap();
        assert_eq!(
            q(AuthFilter {
                address: Some(low6),
                ..Default::default()
            }),
            0
        );
        assert_eq!(
            q(AuthFilter {
                since: Some(1001),
                until: Some(1003),
                ..Default::default()
            }),
            2
        );
        assert_eq!(
            q(AuthFilter {
                outcome: Some(outcome("abandoned").unwrap()),
                ..Default::default()
            }),
            1
        );
        assert_eq!(
            q(AuthFilter {
                outcome: Some("rate-limited".into()),
                ..Default::default()
            }),
            0
        );
        let e = outcome("succes").unwrap_err().to_string();
        assert!(
            e.contains("\"succes\"") && e.contains("abandoned, rate-limited"),
            "{e}"
        );
        let last = auth_log(
            c,
            &AuthFilter {
                limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(last[0].time, 1003);
        assert_eq!(purge_auth_log(c, 1002).unwrap(), 2);
        assert_eq!(q(AuthFilter::default()), 2);
    }
}
