//! One log for the fleet: each host ships the rows of its local `auth_log` and `audit_log`
//! to the central tables of the same names, exactly once, and `log show` reads them back.
//!
//! **Exactly once.** A host keeps, in its local `meta` table, the highest local row id it
//! has shipped of each log (`fleet_log_shipped`, `fleet_audit_shipped`). Shipping reads the
//! rows above the cursor in id order (a batch at a time), inserts the batch centrally in one
//! statement (one transaction) that ignores rows already there — auth rows are unique by
//! (host, event id), audit rows by (incarnation, local id) — and only after that commit
//! moves the cursor. A crash between the two sends the batch again, and the central store
//! ignores it; the cursor only moves forward while shipping, so two shippers at once
//! (`mfa-fleetd` and `mfa-admin`) are safe too. Auth rows from before event ids (`event`
//! NULL) get the stable id `row-<incarnation>-<local id>`.
//!
//! **Failover.** The transaction that inserts a batch also moves this host database's mark
//! in the central `log_marks` (the highest local id shipped of that log). Each round first
//! reads the mark and moves the cursor back to it when the store holds less: after a
//! failover to an asynchronous standby that had not received the last batches, the mark
//! went with them and those rows are sent again, so no row is lost (rule changes re-ship
//! the same way, `changes::ship`). Purging old central rows leaves the marks alone.
//!
//! **Speed.** A batch is one `INSERT ... SELECT FROM unnest($arrays)`: every column travels
//! as one array parameter, so a thousand rows cost one round trip and one statement plan.
//!
//! **Bytes.** PostgreSQL text cannot hold a NUL character, which SQLite text can: a NUL is
//! shipped as the four characters `\x00` (what `log show` prints for it on the host
//! itself). Text that is not UTF-8 (written into the database by hand) is shipped with
//! U+FFFD for the bad bytes. A row is never refused for its content, so one odd row cannot
//! stop a host's shipping.

use std::net::IpAddr;

use postgres::Client;
use postgres::types::ToSql;
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row};

use mfa_core::net::{addr_key, parse_address};
use mfa_core::store::Store;
use mfa_core::store::logs::{AuthEvent, AuthFilter};
use mfa_core::{Error, Result};

/// `meta` key: the highest local auth-log id shipped.
pub const LOG_CURSOR: &str = "fleet_log_shipped";
/// `meta` key: the highest local audit-log id shipped.
pub const AUDIT_CURSOR: &str = "fleet_audit_shipped";
/// `meta` key: this database's random id (set when the host joins the fleet).
const INCARNATION: &str = "fleet_incarnation";
/// Rows per central statement (`ship_all`).
pub const BATCH: usize = 1000;

/// A PostgreSQL failure as a [`Error::Central`]: what was being done, and the server's
/// message (with its detail) when it sent one.
pub(crate) fn central(what: &str, e: &postgres::Error) -> Error {
    match e.as_db_error() {
        Some(db) => {
            let mut msg = format!("{what}: {}", db.message());
            if let Some(d) = db.detail() {
                msg.push_str(&format!(" ({d})"));
            }
            Error::Central(msg)
        }
        None => Error::Central(format!("{what}: {e}")),
    }
}

/// A `meta` value read as text.
fn meta(conn: &rusqlite::Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

/// A shipping cursor (0 when not set yet).
pub fn cursor(conn: &rusqlite::Connection, key: &str) -> Result<i64> {
    match meta(conn, key)? {
        None => Ok(0),
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            Error::Database(format!(
                "meta {key} = {v:?} is not a row id; delete that row of meta to ship this \
                 host's log again from the start (rows already shipped are ignored)"
            ))
        }),
    }
}

/// Moves a cursor forward to `id` (never back: another shipper may be further).
fn advance(store: &mut Store, key: &str, id: i64) -> Result<()> {
    store.write(|tx| {
        if cursor(tx, key)? < id {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, id.to_string()],
            )?;
        }
        Ok(())
    })
}

/// This database's incarnation; shipping needs it (the host joined the fleet).
fn incarnation(conn: &rusqlite::Connection) -> Result<String> {
    meta(conn, INCARNATION)?
        .filter(|i| !i.is_empty())
        .ok_or_else(|| {
            Error::Database(
                "this database has no fleet incarnation (meta fleet_incarnation): it has not \
             joined a fleet; run `mfa-admin fleet join`"
                    .to_string(),
            )
        })
}

/// Column `i` as text PostgreSQL accepts, whatever SQLite holds there (see the module doc).
fn text(row: &Row<'_>, i: usize) -> rusqlite::Result<String> {
    let s = match row.get_ref(i)? {
        ValueRef::Null => String::new(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(b) | ValueRef::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    };
    Ok(if s.contains('\0') {
        s.replace('\0', "\\x00")
    } else {
        s
    })
}

/// Column `i` as an integer (0 for anything else: a damaged row still ships).
fn int(row: &Row<'_>, i: usize) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(i)? {
        ValueRef::Integer(n) => n,
        ValueRef::Real(f) => f as i64,
        ValueRef::Text(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
        _ => 0,
    })
}

/// The central address key of an address: the family (4 or 6) then the 16-byte key, as the
/// local log keeps it, so that a range of one family never matches the other's addresses.
fn log_key(a: IpAddr) -> Vec<u8> {
    let a = a.to_canonical();
    let mut key = vec![if a.is_ipv4() { 4 } else { 6 }];
    key.extend_from_slice(&addr_key(a));
    key
}

/// One batch of auth rows, column by column.
#[derive(Default)]
struct AuthBatch {
    last: i64,
    event: Vec<String>,
    ts: Vec<i64>,
    user: Vec<String>,
    service: Vec<String>,
    address: Vec<String>,
    addr_key: Vec<Option<Vec<u8>>>,
    tty: Vec<String>,
    outcome: Vec<String>,
    method: Vec<String>,
    destination: Vec<String>,
    reason: Vec<String>,
    txid: Vec<String>,
}

const INSERT_AUTH: &str = "INSERT INTO auth_log (host, event, ts, \"user\", service, address, \
     addr_key, tty, outcome, method, destination, reason, txid)
     SELECT $1::text, * FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], \
     $6::text[], $7::bytea[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
     $13::text[])
     ON CONFLICT (host, event) DO NOTHING";

fn read_auth(
    conn: &rusqlite::Connection,
    after: i64,
    batch: usize,
    inc: &str,
) -> Result<AuthBatch> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, event, ts, user, service, address, tty, outcome, method, destination,
                reason, txid
         FROM auth_log WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = stmt.query(rusqlite::params![after, batch as i64])?;
    let mut b = AuthBatch {
        last: after,
        ..Default::default()
    };
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        b.last = id;
        let event = text(r, 1)?;
        b.event.push(if event.is_empty() {
            format!("row-{inc}-{id}")
        } else {
            event
        });
        b.ts.push(int(r, 2)?);
        b.user.push(text(r, 3)?);
        b.service.push(text(r, 4)?);
        let address = text(r, 5)?;
        b.addr_key.push(parse_address(&address).ok().map(log_key));
        b.address.push(address);
        b.tty.push(text(r, 6)?);
        b.outcome.push(text(r, 7)?);
        b.method.push(text(r, 8)?);
        b.destination.push(text(r, 9)?);
        b.reason.push(text(r, 10)?);
        b.txid.push(text(r, 11)?);
    }
    Ok(b)
}

/// How far the central store holds this host database's log `table` (its mark; 0: none).
fn held(client: &mut Client, table: &str, host: &str, inc: &str) -> Result<i64> {
    let row = client
        .query_opt(
            "SELECT upto FROM log_marks WHERE incarnation = $1 AND log = $2",
            &[&inc, &table],
        )
        .map_err(|e| {
            central(
                &format!("shipping {table} rows of {host}: asking what the store holds"),
                &e,
            )
        })?;
    Ok(row.map_or(0, |r| r.get(0)))
}

const MARK: &str = "INSERT INTO log_marks (incarnation, log, upto) VALUES ($1, $2, $3)
     ON CONFLICT (incarnation, log) DO UPDATE SET upto = greatest(log_marks.upto, excluded.upto)";

/// Runs `insert` (a batch of `table`, local ids up to `last`) and moves the mark, in one
/// central transaction.
fn insert_marked(
    client: &mut Client,
    (table, inc, last): (&str, &str, i64),
    what: &str,
    insert: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<()> {
    let fail = |e: postgres::Error| central(what, &e);
    let mut tx = client.transaction().map_err(fail)?;
    tx.execute(insert, params).map_err(fail)?;
    tx.execute(MARK, &[&inc, &table, &last]).map_err(fail)?;
    tx.commit().map_err(fail)
}

/// Moves a cursor back to `held` when the central store holds less than it says was
/// shipped: a failover to a standby that had not received the last batches lost them,
/// and they go again (the store ignores what it already has).
fn rewind(store: &mut Store, key: &str, held: i64) -> Result<()> {
    if cursor(store.conn(), key)? <= held {
        return Ok(());
    }
    store.write(|tx| {
        tx.execute(
            "UPDATE meta SET value = ?2 WHERE key = ?1",
            rusqlite::params![key, held.to_string()],
        )?;
        Ok(())
    })
}

/// The shipping round both logs share (`host` names the host in errors): the cursor `key` brought back to what the store
/// holds of `table`, then `send(store, after)` (which ships the rows above `after` and
/// returns how many, and the last id) until fewer than `batch` rows were left. Returns
/// the rows sent.
fn ship_log(
    client: &mut Client,
    store: &mut Store,
    (table, key, host): (&str, &str, &str),
    batch: usize,
    mut send: impl FnMut(&mut Client, &Store, i64) -> Result<(usize, i64)>,
) -> Result<usize> {
    let inc = incarnation(store.conn())?;
    let held = held(client, table, host, &inc)?;
    rewind(store, key, held)?;
    let mut total = 0;
    loop {
        let after = cursor(store.conn(), key)?;
        let (n, last) = send(client, store, after)?;
        if n == 0 {
            return Ok(total);
        }
        advance(store, key, last)?;
        total += n;
        if n < batch {
            return Ok(total);
        }
    }
}

/// Ships this host's auth-log rows not shipped yet to the central `auth_log`, `batch` rows
/// per central transaction, until none is left; returns how many rows were sent (rows the
/// central store already had count too, and are ignored there).
pub fn ship_auth_log(
    client: &mut Client,
    store: &mut Store,
    host: &str,
    batch: usize,
) -> Result<usize> {
    let batch = batch.max(1);
    let inc = incarnation(store.conn())?;
    ship_log(
        client,
        store,
        ("auth_log", LOG_CURSOR, host),
        batch,
        |client, store, after| {
            let b = read_auth(store.conn(), after, batch, &inc)?;
            let n = b.event.len();
            if n == 0 {
                return Ok((0, after));
            }
            let params: [&(dyn ToSql + Sync); 13] = [
                &host,
                &b.event,
                &b.ts,
                &b.user,
                &b.service,
                &b.address,
                &b.addr_key,
                &b.tty,
                &b.outcome,
                &b.method,
                &b.destination,
                &b.reason,
                &b.txid,
            ];
            insert_marked(
                client,
                ("auth_log", &inc, b.last),
                &format!("shipping {n} auth-log rows of {host}"),
                INSERT_AUTH,
                &params,
            )?;
            Ok((n, b.last))
        },
    )
}

const INSERT_AUDIT: &str = "INSERT INTO audit_log (host, incarnation, origin_id, ts, actor, \
     action, detail)
     SELECT $1::text, $2::text, * FROM unnest($3::int8[], $4::int8[], $5::text[], $6::text[], \
     $7::text[])
     ON CONFLICT (incarnation, origin_id) DO NOTHING";

/// Ships this host's audit-log rows not shipped yet to the central `audit_log`, like
/// [`ship_auth_log`]; returns how many rows were sent.
pub fn ship_audit_log(
    client: &mut Client,
    store: &mut Store,
    host: &str,
    batch: usize,
) -> Result<usize> {
    let batch = batch.max(1);
    let inc = incarnation(store.conn())?;
    ship_log(
        client,
        store,
        ("audit_log", AUDIT_CURSOR, host),
        batch,
        |client, store, after| {
            let (mut id, mut ts, mut actor, mut action, mut detail) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            {
                let mut stmt = store.conn().prepare_cached(
                    "SELECT id, ts, actor, action, detail FROM audit_log
                     WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?;
                let mut rows = stmt.query(rusqlite::params![after, batch as i64])?;
                while let Some(r) = rows.next()? {
                    id.push(r.get::<_, i64>(0)?);
                    ts.push(int(r, 1)?);
                    actor.push(text(r, 2)?);
                    action.push(text(r, 3)?);
                    detail.push(text(r, 4)?);
                }
            }
            let n = id.len();
            let Some(&last) = id.last() else {
                return Ok((0, after));
            };
            let params: [&(dyn ToSql + Sync); 7] =
                [&host, &inc, &id, &ts, &actor, &action, &detail];
            insert_marked(
                client,
                ("audit_log", &inc, last),
                &format!("shipping {n} audit-log rows of {host}"),
                INSERT_AUDIT,
                &params,
            )?;
            Ok((n, last))
        },
    )
}

/// Moves the module's auth-log inbox into the local table, then ships both logs; returns
/// the auth and audit rows sent. An inbox that cannot be moved does not stop the shipping
/// of what is already in the table (the error comes after).
pub fn ship_all(client: &mut Client, store: &mut Store, host: &str) -> Result<(usize, usize)> {
    let ingested = store.ingest_auth_log();
    let auth = ship_auth_log(client, store, host, BATCH)?;
    let audit = ship_audit_log(client, store, host, BATCH)?;
    ingested?;
    Ok((auth, audit))
}

/// Deletes the central auth-log rows (every host's) from before `before`; how many. The
/// hosts' shipping marks stay, so nothing purged is sent again.
pub fn purge_central(client: &mut Client, before: i64) -> Result<u64> {
    client
        .execute("DELETE FROM auth_log WHERE ts < $1", &[&before])
        .map_err(|e| central("purging the central auth log", &e))
}

/// The central auth log as `log show` lists it: the rows `filter` describes, of every host
/// or of `host` alone; the newest `filter.limit` of them (all when `None`), oldest first,
/// each with its host. Values are bound parameters, never pasted into the statement.
pub fn central_auth_log(
    client: &mut Client,
    filter: &AuthFilter,
    host: Option<&str>,
) -> Result<Vec<(String, AuthEvent)>> {
    let (sql, args) = central_query(filter, host);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
    let rows = client
        .query(&sql, &params)
        .map_err(|e| central("reading the central auth log", &e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.iter().rev() {
        let get = |e: postgres::Error| central("reading the central auth log", &e);
        out.push((
            r.try_get::<_, String>(0).map_err(get)?,
            AuthEvent {
                id: r.try_get(1).map_err(get)?,
                time: r.try_get(2).map_err(get)?,
                user: r.try_get(3).map_err(get)?,
                service: r.try_get(4).map_err(get)?,
                address: r.try_get(5).map_err(get)?,
                tty: r.try_get(6).map_err(get)?,
                outcome: r.try_get(7).map_err(get)?,
                method: r.try_get(8).map_err(get)?,
                destination: r.try_get(9).map_err(get)?,
                reason: r.try_get(10).map_err(get)?,
                txid: r.try_get(11).map_err(get)?,
            },
        ));
    }
    Ok(out)
}

type Arg = Box<dyn ToSql + Sync>;

/// The statement of [`central_auth_log`] and its parameters: one `$n` per value.
fn central_query(f: &AuthFilter, host: Option<&str>) -> (String, Vec<Arg>) {
    let mut terms: Vec<String> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |terms: &mut Vec<String>, sql: &str, v: Arg| {
        args.push(v);
        terms.push(sql.replace('#', &format!("${}", args.len())));
    };
    if let Some(h) = host {
        push(&mut terms, "host = #", Box::new(h.to_string()));
    }
    if let Some(u) = &f.user {
        push(&mut terms, "\"user\" = #", Box::new(u.clone()));
    }
    if let Some(r) = &f.address {
        push(&mut terms, "addr_key >= #", Box::new(log_key(r.first())));
        push(&mut terms, "addr_key <= #", Box::new(log_key(r.last())));
    }
    if let Some(s) = &f.service {
        push(&mut terms, "service = #", Box::new(s.clone()));
    }
    if let Some(o) = &f.outcome {
        push(&mut terms, "outcome = #", Box::new(o.clone()));
    }
    if let Some(t) = f.since {
        push(&mut terms, "ts >= #", Box::new(t));
    }
    if let Some(t) = f.until {
        push(&mut terms, "ts < #", Box::new(t));
    }
    let filter = if terms.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", terms.join(" AND "))
    };
    let limit = match f.limit {
        Some(l) => {
            args.push(Box::new(i64::from(l)));
            format!("LIMIT ${}", args.len())
        }
        None => String::new(),
    };
    (
        format!(
            "SELECT host, id, ts, \"user\", service, address, tty, outcome, method, destination,
                    reason, txid
             FROM auth_log {filter} ORDER BY ts DESC, id DESC {limit}"
        ),
        args,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_a_parameter() {
        let f = AuthFilter {
            user: Some("x' OR '1'='1".into()),
            address: Some(mfa_core::net::IpRange::parse_any("10.0.0.0/8").unwrap()),
            service: Some("s\"; DROP TABLE auth_log; --".into()),
            outcome: Some("deny".into()),
            since: Some(1),
            until: Some(2),
            limit: Some(3),
        };
        let (sql, args) = central_query(&f, Some("web1"));
        assert_eq!(args.len(), 9);
        for i in 1..=9 {
            assert!(sql.contains(&format!("${i}")), "{sql}");
        }
        assert!(!sql.contains("$10"));
        for pasted in ["OR '1'", "DROP", "web1", "deny"] {
            assert!(!sql.contains(pasted), "{sql}");
        }
        let (sql, args) = central_query(&AuthFilter::default(), None);
        assert!(
            args.is_empty() && !sql.contains('$') && !sql.contains("WHERE"),
            "{sql}"
        );
    }

    #[test]
    fn keys_keep_families_apart() {
        let v4 = log_key("10.0.0.1".parse().unwrap());
        let mapped = log_key("::ffff:10.0.0.1".parse().unwrap());
        let v6 = log_key("2001:db8::1".parse().unwrap());
        assert_eq!(v4, mapped);
        assert_eq!((v4[0], v6[0], v4.len()), (4, 6, 17));
    }
}
