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
    /// Duo's transaction id ("" for other factors, and for rows from before it was kept).
    #[serde(default)]
    pub txid: String,
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
             (ts, user, service, address, addr_key, tty, outcome, method, destination, reason, event,
              txid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
        event_id,
        event.txid
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

/// The statement and its parameters for `f`. Only the filters that are set become terms,
/// and only the narrowest one's column may use an index: the others are written `+column`,
/// which keeps SQLite from them (without statistics it would rather take an index that
/// yields the order, such as `service`'s, and walk half the table). Narrowest first: user,
/// address, outcome (often a rare one), service, time. Each index is (column, ts) and ends
/// with the rowid, so it also yields `ORDER BY ts DESC, id DESC` (the newest rows first)
/// for an equality; only an address range sorts what it found. Values are always bound,
/// never pasted into the text.
///
/// `dense`: the address range holds so many rows ([`DENSE`] or more) that walking the
/// newest rows along the time index finds `limit` of them sooner than sorting every row in
/// the range (a `/8` over a million rows); the range is then a plain filter.
///
/// `service_first`: with both a service and an outcome, the service's index (it holds fewer
/// of the matching rows: [`fewer_by_service`]); else the outcome's.
fn auth_query(
    f: &AuthFilter,
    dense: bool,
    service_first: bool,
) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value;
    let mut terms: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    // Whether an earlier (narrower) filter already chose the index.
    let mut chosen = false;
    fn term(chosen: &mut bool, terms: &mut Vec<&str>, indexed: &'static str, plain: &'static str) {
        terms.push(if *chosen { plain } else { indexed });
        *chosen = true;
    }
    if let Some(u) = &f.user {
        term(&mut chosen, &mut terms, "user = ?", "+user = ?");
        args.push(Value::Text(u.clone()));
    }
    // The time range stays usable along (user, ts), (outcome, ts), (service, ts) and ts;
    // not along an address range, whose index cannot narrow by time after a range.
    let time_indexed = f.address.is_none() || (dense && f.user.is_none());
    if let Some(r) = &f.address {
        if dense && !chosen {
            // Not an index: a later filter's, or the time index, yields the newest first.
            terms.push("+addr_key >= ? AND +addr_key <= ?");
        } else {
            term(
                &mut chosen,
                &mut terms,
                "addr_key >= ? AND addr_key <= ?",
                "+addr_key >= ? AND +addr_key <= ?",
            );
        }
        args.push(Value::Blob(log_key(r.first())));
        args.push(Value::Blob(log_key(r.last())));
    }
    let outcome = |chosen: &mut bool, terms: &mut Vec<&str>, args: &mut Vec<Value>| {
        if let Some(o) = &f.outcome {
            term(chosen, terms, "outcome = ?", "+outcome = ?");
            args.push(Value::Text(o.clone()));
        }
    };
    let service = |chosen: &mut bool, terms: &mut Vec<&str>, args: &mut Vec<Value>| {
        if let Some(s) = &f.service {
            term(chosen, terms, "service = ?", "+service = ?");
            args.push(Value::Text(s.clone()));
        }
    };
    if service_first {
        service(&mut chosen, &mut terms, &mut args);
        outcome(&mut chosen, &mut terms, &mut args);
    } else {
        outcome(&mut chosen, &mut terms, &mut args);
        service(&mut chosen, &mut terms, &mut args);
    }
    let ts = |op: &'static str, plain: &'static str| if time_indexed { op } else { plain };
    if let Some(t) = f.since {
        terms.push(ts("ts >= ?", "+ts >= ?"));
        args.push(Value::Integer(t));
    }
    if let Some(t) = f.until {
        terms.push(ts("ts < ?", "+ts < ?"));
        args.push(Value::Integer(t));
    }
    let filter = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    args.push(Value::Integer(f.limit.map_or(-1, i64::from)));
    (
        format!(
            "SELECT * FROM (
               SELECT id, ts, user, service, address, tty, outcome, method, destination, reason,
                      txid
               FROM auth_log {filter}
               ORDER BY ts DESC, id DESC LIMIT ?)
             ORDER BY ts, id"
        ),
        args,
    )
}

/// Rows counted at most when a filter's rows are counted along its index (a few
/// milliseconds of index reading).
const DENSE: i64 = 16_384;

/// Whether `f`'s address range is dense ([`auth_query`]): a limited listing without a user
/// then walks the newest rows along the time index, expecting to read `limit × rows / in
/// range` of them, instead of sorting every row in the range; it does when that is less
/// than half the rows in range (a walked row costs about twice a sorted one: its table
/// page is read too). The range's rows are counted along the address index, at most
/// [`DENSE`] (past it the range is dense).
fn dense(conn: &Connection, f: &AuthFilter) -> Result<bool> {
    let (Some(r), Some(limit), None) = (&f.address, f.limit, &f.user) else {
        return Ok(false);
    };
    let in_range: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM auth_log
               WHERE addr_key >= ?1 AND addr_key <= ?2 LIMIT ?3)",
        )?
        .query_row(
            params![log_key(r.first()), log_key(r.last()), DENSE],
            |row| row.get(0),
        )?;
    if in_range >= DENSE {
        return Ok(true);
    }
    if in_range == 0 {
        return Ok(false);
    }
    // The rowids span about as many rows as the table holds (two index lookups).
    let rows: i64 = conn
        .prepare_cached(
            // Each its own subquery: only a lone min() or max() reads just one end of the
            // rowid b-tree; both in one expression scan the table.
            "SELECT coalesce((SELECT max(id) FROM auth_log) - (SELECT min(id) FROM auth_log) + 1, 0)",
        )?
        .query_row([], |row| row.get(0))?;
    let walk = 2 * i64::from(limit) * rows / in_range;
    Ok(walk < in_range)
}

/// With both a service and an outcome filter, whether fewer rows have the service than the
/// outcome (each counted along its index, at most [`DENSE`] entries read): the narrower one's
/// index is read then. Both are few-valued columns whose values are far from equally common
/// (`--service nosuch --outcome ignore` must not walk every `ignore` row).
fn fewer_by_service(conn: &Connection, f: &AuthFilter) -> Result<bool> {
    let (Some(service), Some(outcome)) = (&f.service, &f.outcome) else {
        return Ok(false);
    };
    let count = |sql: &str, value: &str| -> Result<i64> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(params![value, DENSE], |r| r.get(0))?)
    };
    let by_service = count(
        "SELECT count(*) FROM (SELECT 1 FROM auth_log WHERE service = ?1 LIMIT ?2)",
        service,
    )?;
    let by_outcome = count(
        "SELECT count(*) FROM (SELECT 1 FROM auth_log WHERE outcome = ?1 LIMIT ?2)",
        outcome,
    )?;
    Ok(by_service < by_outcome)
}

/// The matching rows, oldest first (the newest `limit` of them).
pub fn auth_log(conn: &Connection, f: &AuthFilter) -> Result<Vec<AuthEvent>> {
    let dense = dense(conn, f)?;
    let (sql, args) = auth_query(f, dense, fewer_by_service(conn, f)?);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
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
            txid: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes by time, along the `ts` index.
const PURGE_SQL: &str = "DELETE FROM auth_log WHERE ts < ?1";

/// Deletes auth-log rows older than `before` (Unix seconds); returns how many.
pub fn purge_auth_log(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute(PURGE_SQL, [before])?)
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

/// The statement of [`audit_log`]: with `since`, a range on the `ts` index; newest first
/// along it either way.
fn audit_query(since: bool) -> &'static str {
    if since {
        "SELECT * FROM (SELECT id, ts, actor, action, detail FROM audit_log
                        WHERE ts >= ?1 ORDER BY ts DESC, id DESC LIMIT ?2)
         ORDER BY ts, id"
    } else {
        "SELECT * FROM (SELECT id, ts, actor, action, detail FROM audit_log
                        ORDER BY ts DESC, id DESC LIMIT ?2)
         ORDER BY ts, id"
    }
}

/// The newest `limit` audit records (all when `None`), oldest first, optionally since a time.
pub fn audit_log(
    conn: &Connection,
    since: Option<i64>,
    limit: Option<u32>,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(audit_query(since.is_some()))?;
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

    /// The plan's lines (EXPLAIN QUERY PLAN details) of a statement.
    fn plan(c: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> Vec<String> {
        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Every way the table may be read: along an index, never a scan of the whole table.
    fn assert_indexed(what: &str, lines: &[String]) {
        let reads: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("auth_log") || l.contains("audit_log"))
            .collect();
        assert!(
            !reads.is_empty(),
            "{what}: no read of the table in {lines:?}"
        );
        for l in reads {
            assert!(
                l.contains("USING INDEX") || l.contains("USING COVERING INDEX"),
                "{what}: {l:?} reads the table without an index ({lines:?})"
            );
        }
    }

    /// Each of the 128 filter combinations `log show` can produce (every subset of user,
    /// address, service, outcome, since, until; with and without --limit), each with a
    /// sparse and a dense address range and either of service and outcome the narrower, reads the auth log along an index, and the
    /// narrowest filter's index when there is one; so do the audit listing and the purge by
    /// time.
    #[test]
    fn every_filter_combination_uses_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let c = s.conn();
        for bits in 0u32..512 {
            // Bit 7: an address range dense with rows (a listing walks the time index).
            let dense = bits & (1 << 7) != 0;
            // Bit 8: fewer rows of the service than of the outcome.
            let service_first = bits & (1 << 8) != 0;
            let on = |b: u32| bits & (1 << b) != 0;
            let f = AuthFilter {
                user: on(0).then(|| "ann".to_string()),
                address: on(1).then(|| IpRange::parse_cidr("10.1.0.0/16").unwrap()),
                service: on(2).then(|| "sshd".to_string()),
                outcome: on(3).then(|| "deny".to_string()),
                since: on(4).then_some(1000),
                until: on(5).then_some(2000),
                limit: on(6).then_some(20),
            };
            let (sql, args) = auth_query(&f, dense, service_first);
            assert_eq!(
                sql.matches('?').count(),
                args.len(),
                "{f:?}: one bound value per placeholder"
            );
            let lines = plan(c, &sql, &args);
            let what = format!("{f:?} dense={dense} service_first={service_first}");
            assert_indexed(&what, &lines);
            let reads = lines.iter().find(|l| l.contains("auth_log")).unwrap();
            let index = if f.user.is_some() {
                "auth_log_user"
            } else if f.address.is_some() && !dense {
                "auth_log_addr"
            } else if f.service.is_some() && (service_first || f.outcome.is_none()) {
                "auth_log_service"
            } else if f.outcome.is_some() {
                "auth_log_outcome"
            } else {
                "auth_log_ts"
            };
            assert!(
                reads.contains(&format!("INDEX {index} ")) || reads.ends_with(index),
                "{what}: {reads:?} is not along {index}"
            );
            // The newest rows come in the index's order (no sort of everything found),
            // except after an address range.
            if f.address.is_none() || (dense && f.user.is_none()) {
                let sorts = lines
                    .iter()
                    .filter(|l| l.contains("TEMP B-TREE FOR ORDER BY"))
                    .count();
                assert!(sorts <= 1, "{what}: the inner query sorts: {lines:?}");
            }
            // The rows of the query are the ones the filter describes (the statement runs).
            auth_log(c, &f).unwrap();
        }
        for since in [false, true] {
            let args = [
                rusqlite::types::Value::Integer(1000),
                rusqlite::types::Value::Integer(20),
            ];
            assert_indexed(
                &format!("audit since={since}"),
                &plan(c, audit_query(since), &args),
            );
        }
        let span = plan(
            c,
            "SELECT coalesce((SELECT max(id) FROM auth_log) - (SELECT min(id) FROM auth_log) + 1, 0)",
            &[],
        );
        assert!(
            span.iter()
                .all(|l| !l.starts_with("SCAN auth_log") || l.contains("INDEX")),
            "the row estimate reads the ends of the table only: {span:?}"
        );
        assert!(
            span.iter()
                .filter(|l| l.contains("SEARCH auth_log"))
                .count()
                == 2,
            "{span:?}"
        );
        assert_indexed(
            "purge",
            &plan(c, PURGE_SQL, &[rusqlite::types::Value::Integer(1000)]),
        );
    }

    /// A hostile value is a bound value: quotes, a statement separator and SQL keywords in
    /// a user or service name match nothing and change nothing.
    #[test]
    fn filter_values_are_bound_not_pasted() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let c = s.conn();
        record_auth(
            c,
            &AuthEvent {
                user: "ann".into(),
                service: "sshd".into(),
                outcome: "success".into(),
                ..Default::default()
            },
        )
        .unwrap();
        for evil in ["x' OR '1'='1", "x\"; DROP TABLE auth_log; --", "?", "?1"] {
            let f = AuthFilter {
                user: Some(evil.into()),
                service: Some(evil.into()),
                ..Default::default()
            };
            assert!(auth_log(c, &f).unwrap().is_empty(), "{evil}");
            assert!(evil.starts_with('?') || !auth_query(&f, false, false).0.contains(evil));
        }
        assert_eq!(auth_log(c, &AuthFilter::default()).unwrap().len(), 1);
    }

    /// A limited listing of a dense address range (read along the time index) returns the
    /// same rows as a sparse one would (read along the address index): the newest matching.
    /// With a service and an outcome, the one with fewer rows is read along its index.
    #[test]
    fn dense_and_sparse_ranges_list_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let c = s.conn();
        c.execute_batch("BEGIN").unwrap();
        for i in 0..(DENSE + 500) {
            let ev = AuthEvent {
                time: 1000 + i / 3,
                user: format!("u{}", i % 7),
                service: "sshd".into(),
                address: format!("10.{}.{}.1", i % 3, i % 200),
                outcome: "ignore".into(),
                ..Default::default()
            };
            record_auth(c, &ev).unwrap();
        }
        record_auth(
            c,
            &AuthEvent {
                time: 5000,
                user: "zed".into(),
                service: "rare".into(),
                outcome: "ignore".into(),
                ..Default::default()
            },
        )
        .unwrap();
        c.execute_batch("COMMIT").unwrap();
        // The narrower of service and outcome is chosen, whichever it is; the rows agree.
        for (service, outcome, want) in [
            ("rare", "ignore", true),
            ("nosuch", "ignore", true),
            ("sshd", "deny", false),
        ] {
            let f = AuthFilter {
                service: Some(service.into()),
                outcome: Some(outcome.into()),
                limit: Some(5),
                ..Default::default()
            };
            assert_eq!(
                fewer_by_service(c, &f).unwrap(),
                want,
                "{service} {outcome}"
            );
            let rows = auth_log(c, &f).unwrap();
            assert_eq!(
                rows.len(),
                usize::from(service == "rare"),
                "{service} {outcome}"
            );
        }
        for (range, want_dense) in [("10.0.0.0/8", true), ("10.1.7.0/24", false)] {
            let f = AuthFilter {
                address: Some(IpRange::parse_cidr(range).unwrap()),
                limit: Some(25),
                ..Default::default()
            };
            assert_eq!(dense(c, &f).unwrap(), want_dense, "{range}");
            let ids = |d: bool| -> Vec<i64> {
                let (sql, args) = auth_query(&f, d, false);
                c.prepare(&sql)
                    .unwrap()
                    .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            };
            let along_time = ids(true);
            assert_eq!(along_time, ids(false), "{range}");
            let r = f.address.as_ref().unwrap();
            let in_range: i64 = c
                .query_row(
                    "SELECT count(*) FROM auth_log WHERE addr_key BETWEEN ?1 AND ?2",
                    params![log_key(r.first()), log_key(r.last())],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(along_time.len() as i64, in_range.min(25), "{range}");
            assert_eq!(
                auth_log(c, &f)
                    .unwrap()
                    .iter()
                    .map(|e| e.id)
                    .collect::<Vec<_>>(),
                along_time
            );
        }
    }
}
