//! The local half of a fleet (`[store] backend = "postgres"`): this database as a replica of
//! the central store. No network here; `mfa-fleet` moves the bytes.
//!
//! **Capture.** On a fleet host (meta `fleet_host` set) every write transaction records,
//! through temporary triggers, the rows it touched in the replicated tables ([`REPLICATED`])
//! with each one's state before, and before it commits turns them into one change: for each
//! key the row as it now is (an upsert) or its absence (a delete), with typed values, and
//! the same rows as they were (its undo). Both go into the local table `fleet_outbox` in the
//! same transaction, so a change is in the outbox exactly when it is in the database,
//! whoever made it (`mfa-admin`, a login that locked a user out or used a backup code, a
//! self-enrollment, the maintenance run).
//!
//! **Apply.** `mfa-fleetd` ships the outbox to the central `changes` table (once each, by
//! this database's incarnation and the outbox id) and applies the central changes in their
//! order ([`Store::fleet_apply`]), in one transaction: this host's own changes not yet
//! applied back are undone (newest first), so the database is again exactly the fleet's
//! state at the last generation applied; the new central changes are applied, each in a
//! savepoint (one that cannot apply, such as a contact of a user deleted meanwhile, is
//! skipped whole, the same way on every host, its origin included); then this host's changes
//! still not numbered centrally are redone on top, since the central order will put them
//! after. So every host's database is the fleet's state at its generation plus its own
//! pending changes, and hosts converge; two changes of one row made on two hosts before
//! either arrived resolve to the one the central store numbered last. Applying runs through
//! [`Store::policy_write`], so the snapshot and lockouts files follow as for any change.
//!
//! **Failover.** A change of this host that the fleet applied back stays in the outbox
//! ([`KEEP_APPLIED`], column `applied`). If the central store turns out not to hold it (a
//! failover to a standby that had not received it), shipping marks it pending again and
//! sends it again; the replica, whose history the store no longer has, takes the fleet's
//! rules again from the first change and redoes its pending changes on top.
//!
//! What does not travel: `meta` (this database's generations and keys, such as the passcode
//! hash key), the logs (shipped as rows of their own, `mfa-fleet::logs`), `unix_members`
//! (each host resolves its own Unix groups through its own NSS) and the login-state files
//! (repeat-window grants stay per host; failure counts and accepted TOTP steps travel on
//! their own, `mfa-fleet::login_state`).
//!
//! Change format (JSON, bytes in `fleet_outbox.body` and the central `changes.body`):
//! `{"v":1,"schema":N,"ops":[{"t":TABLE,"k":[KEY...],"r":{COLUMN:VALUE,...}|null}]}` where a
//! value is `"null"`, `{"int":i}`, `{"real":f}`, `{"text":s}` or `{"blob":HEX}`; `"r":null`
//! deletes the row.

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params_from_iter};
use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, Store};
use crate::{Error, Result};

/// How long (seconds) this host keeps a change of its own after the fleet applied it back:
/// a failover to a standby that had not received it loses it centrally, and the host,
/// seeing that at its next round, ships it again. A host that was away for longer when
/// its change was lost loses it as the fleet did.
pub const KEEP_APPLIED: i64 = 86_400;

/// The replicated tables, parents before children (upserts run in this order, deletes in
/// the reverse one).
pub const REPLICATED: &[&str] = &[
    "settings",
    "services",
    "carriers",
    "groups",
    "users",
    "networks",
    "templates",
    "contacts",
    "overrides",
    "totp",
    "backup_codes",
    "lockouts",
];

/// `meta` key: this host's name in the fleet; set, the database is a fleet replica.
pub const HOST_KEY: &str = "fleet_host";
/// `meta` key: a random id of this database, so that its outbox ids are unique fleet-wide.
pub const INCARNATION_KEY: &str = "fleet_incarnation";
/// `meta` key: the last central change applied.
pub const GENERATION_KEY: &str = "fleet_generation";
/// `meta` key: that change's origin, as `INCARNATION ORIGIN_ID` (to find out that the
/// central store's history changed under a replica: a failover that lost changes).
pub const LAST_KEY: &str = "fleet_last";
/// Format version of a change.
const FORMAT: u32 = 1;
/// A change larger than this is refused (a whole store of 100,000 users is about 60 MB).
pub const MAX_CHANGE: usize = 256 << 20;

/// A value of a column, typed as SQLite holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    /// Hex.
    Blob(String),
}

/// One row's new state: `r` is `None` for a deleted row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub t: String,
    pub k: Vec<Val>,
    pub r: Option<BTreeMap<String, Val>>,
}

/// A change: the rows one transaction left behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub v: u32,
    pub schema: i64,
    pub ops: Vec<Op>,
}

/// A change as the central store numbered it.
#[derive(Debug, Clone)]
pub struct Central {
    pub generation: i64,
    /// The host that made it.
    pub origin: String,
    /// Its database's incarnation and outbox id.
    pub incarnation: String,
    pub origin_id: i64,
    pub schema: i64,
    pub body: Vec<u8>,
}

/// A change of this host waiting to be shipped.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub id: i64,
    pub body: Vec<u8>,
}

/// A change of this host not yet applied back from the central store.
struct Pending {
    id: i64,
    body: Vec<u8>,
    undo: Vec<u8>,
}

/// What [`Store::fleet_apply`] did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// Changes applied.
    pub applied: usize,
    /// Changes that could not apply here (generation, why), skipped whole.
    pub skipped: Vec<(i64, String)>,
    /// The first change of a newer schema than this build's (its generation and schema):
    /// nothing from it on was applied; this host needs an upgrade.
    pub newer: Option<(i64, i64)>,
    /// The last generation applied (or skipped).
    pub generation: i64,
    /// Users whose lockout a central change ended (an unlock or a success on another
    /// host): their failure counts here are cleared too.
    pub unlocked: Vec<String>,
}

/// A table's columns and which of them make its primary key, in order.
struct Shape {
    columns: Vec<(String, String)>,
    pk: Vec<usize>,
}

fn shape(conn: &Connection, table: &str) -> Result<Shape> {
    let mut stmt = conn.prepare("SELECT name, upper(type), pk FROM pragma_table_info(?1)")?;
    let rows = stmt.query_map([table], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut columns = Vec::new();
    let mut pk: Vec<(i64, usize)> = Vec::new();
    for (i, row) in rows.enumerate() {
        let (name, ty, k) = row?;
        if k > 0 {
            pk.push((k, i));
        }
        columns.push((name, ty));
    }
    if columns.is_empty() || pk.is_empty() {
        return Err(Error::Database(format!(
            "fleet: table {table} is missing or has no primary key"
        )));
    }
    pk.sort();
    Ok(Shape {
        columns,
        pk: pk.into_iter().map(|(_, i)| i).collect(),
    })
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A meta value as text.
pub fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?)
}

/// Sets a meta value.
pub fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![key, value],
    )?;
    Ok(())
}

/// This host's name when the database is a fleet replica.
pub fn host(conn: &Connection) -> Result<Option<String>> {
    meta_get(conn, HOST_KEY)
}

/// Makes the database a replica named `host` (keeping its incarnation if it has one).
pub fn join(conn: &Connection, host_name: &str) -> Result<String> {
    if !crate::store_config::valid_host(host_name) {
        return Err(Error::Invalid(format!(
            "{host_name:?} is not a host name: 1 to 64 letters, digits, '.', '-' or '_'"
        )));
    }
    meta_set(conn, HOST_KEY, host_name)?;
    let inc = match meta_get(conn, INCARNATION_KEY)? {
        Some(i) => i,
        None => {
            let mut raw = [0u8; 16];
            getrandom::fill(&mut raw)
                .map_err(|e| Error::Database(format!("no randomness for an id: {e}")))?;
            let i = hex(&raw);
            meta_set(conn, INCARNATION_KEY, &i)?;
            i
        }
    };
    if meta_get(conn, GENERATION_KEY)?.is_none() {
        meta_set(conn, GENERATION_KEY, "0")?;
    }
    Ok(inc)
}

/// Undoes [`join`] before the database held any of a fleet's rules (a first generation or a
/// join the central store refused): its writes stop queueing for a fleet. The incarnation
/// stays (its outbox ids were never shipped under it).
pub fn leave(conn: &Connection) -> Result<()> {
    conn.execute(
        "DELETE FROM meta WHERE key IN (?1, ?2, ?3)",
        [HOST_KEY, GENERATION_KEY, LAST_KEY],
    )?;
    conn.execute("DELETE FROM fleet_outbox", [])?;
    Ok(())
}

/// The last central change applied here.
pub fn generation(conn: &Connection) -> Result<i64> {
    Ok(meta_get(conn, GENERATION_KEY)?
        .and_then(|g| g.parse().ok())
        .unwrap_or(0))
}

/// The origin (incarnation, outbox id) of the last central change applied here.
pub fn last_applied(conn: &Connection) -> Result<Option<(String, i64)>> {
    Ok(meta_get(conn, LAST_KEY)?.and_then(|v| {
        let (inc, id) = v.split_once(' ')?;
        Some((inc.to_string(), id.parse().ok()?))
    }))
}

/// This database's incarnation (set by [`join`]).
pub fn incarnation(conn: &Connection) -> Result<String> {
    meta_get(conn, INCARNATION_KEY)?
        .ok_or_else(|| Error::Database("this database has not joined a fleet".to_string()))
}

/// Starts recording the rows a transaction touches (on a fleet replica only; returns
/// whether it records).
pub(crate) fn capture_begin(conn: &Connection) -> Result<bool> {
    if host(conn)?.is_none() {
        return Ok(false);
    }
    record(conn)?;
    Ok(true)
}

/// Creates the recording triggers (once per connection) and empties the record.
fn record(conn: &Connection) -> Result<()> {
    let mut sql = String::from(
        "CREATE TEMP TABLE IF NOT EXISTS fleet_touched (
             seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL, key TEXT NOT NULL, before TEXT);
         DELETE FROM temp.fleet_touched;\n",
    );
    for t in REPLICATED {
        let s = shape(conn, t)?;
        let col = |row: &str, i: usize| {
            let (c, ty) = &s.columns[i];
            if ty == "BLOB" {
                format!("hex({row}.{})", quote(c))
            } else {
                format!("{row}.{}", quote(c))
            }
        };
        let key = |row: &str| {
            let parts: Vec<String> = s.pk.iter().map(|&i| col(row, i)).collect();
            format!("json_array({})", parts.join(", "))
        };
        let image = |row: &str| {
            let parts: Vec<String> = (0..s.columns.len())
                .map(|i| format!("'{}', {}", s.columns[i].0.replace('\'', "''"), col(row, i)))
                .collect();
            format!("json_object({})", parts.join(", "))
        };
        for (when, rows) in [
            ("INSERT", vec![(key("NEW"), "NULL".to_string())]),
            (
                "UPDATE",
                vec![(key("OLD"), image("OLD")), (key("NEW"), "NULL".to_string())],
            ),
            ("DELETE", vec![(key("OLD"), image("OLD"))]),
        ] {
            let values: Vec<String> = rows
                .iter()
                .map(|(k, b)| format!("('{t}', {k}, {b})"))
                .collect();
            sql.push_str(&format!(
                "CREATE TEMP TRIGGER IF NOT EXISTS fleet_{t}_{w} AFTER {when} ON main.{t}
                   BEGIN INSERT INTO temp.fleet_touched (tbl, key, before) VALUES {}; END;\n",
                values.join(", "),
                w = &when[..1]
            ));
        }
    }
    conn.execute_batch(&sql)?;
    Ok(())
}

/// Ends the recording: the touched rows become one change in the outbox (nothing when no
/// row was touched). Returns whether a change was queued.
pub(crate) fn capture_end(conn: &Connection) -> Result<bool> {
    let change = touched(conn)?;
    conn.execute("DELETE FROM temp.fleet_touched", [])?;
    let Some((after, before)) = change else {
        return Ok(false);
    };
    conn.execute(
        "INSERT INTO fleet_outbox (created, body, undo) VALUES (unixepoch(), ?1, ?2)",
        [encode(&after)?, encode(&before)?],
    )?;
    Ok(true)
}

/// Forgets what was recorded (a change applied from the central store is not this host's).
fn capture_discard(conn: &Connection) -> Result<()> {
    let recording: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_temp_master WHERE name = 'fleet_touched'",
        [],
        |r| r.get(0),
    )?;
    if recording {
        conn.execute("DELETE FROM temp.fleet_touched", [])?;
    }
    Ok(())
}

/// The rows recorded since [`record`]: as they are now and as they were before (the first
/// state recorded of each), or `None` when none was touched.
fn touched(conn: &Connection) -> Result<Option<(Change, Change)>> {
    let mut stmt = conn.prepare(
        "SELECT tbl, key, before FROM temp.fleet_touched t
          WHERE seq = (SELECT min(seq) FROM temp.fleet_touched f
                        WHERE f.tbl = t.tbl AND f.key = t.key)",
    )?;
    let touched = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if touched.is_empty() {
        return Ok(None);
    }
    let (mut after, mut before) = (Vec::new(), Vec::new());
    for t in REPLICATED {
        let mine: Vec<&(String, String, Option<String>)> =
            touched.iter().filter(|(tbl, ..)| tbl == t).collect();
        if mine.is_empty() {
            continue;
        }
        let s = shape(conn, t)?;
        let mut fetch = conn.prepare(&format!(
            "SELECT * FROM main.{} WHERE {}",
            quote(t),
            where_pk(&s)
        ))?;
        for (_, key, was) in mine {
            let k = decode_key(&s, t, key)?;
            let params: Vec<Value> = k.iter().map(to_sql).collect::<Result<_>>()?;
            let row = fetch
                .query_row(params_from_iter(params.iter()), |r| {
                    let mut m = BTreeMap::new();
                    for (i, (c, _)) in s.columns.iter().enumerate() {
                        m.insert(c.clone(), from_sql(r.get::<_, Value>(i)?));
                    }
                    Ok(m)
                })
                .optional()?;
            let was = match was {
                Some(json) => Some(decode_image(&s, t, json)?),
                None => None,
            };
            if row == was {
                continue;
            }
            after.push(Op {
                t: t.to_string(),
                k: k.clone(),
                r: row,
            });
            before.push(Op {
                t: t.to_string(),
                k,
                r: was,
            });
        }
    }
    if after.is_empty() {
        return Ok(None);
    }
    Ok(Some((ordered(after), ordered(before))))
}

/// Upserts parents first, then deletes children first.
fn ordered(mut ops: Vec<Op>) -> Change {
    let rank = |t: &str| REPLICATED.iter().position(|x| *x == t).unwrap_or(0) as i64;
    ops.sort_by_key(|op| match op.r {
        Some(_) => (0, rank(&op.t)),
        None => (1, -rank(&op.t)),
    });
    Change {
        v: FORMAT,
        schema: SCHEMA_VERSION,
        ops,
    }
}

/// A row image the triggers wrote (`json_object`, blobs in hex), typed by the table's
/// declared column types.
fn decode_image(s: &Shape, table: &str, json: &str) -> Result<BTreeMap<String, Val>> {
    let bad = || Error::Database(format!("fleet: unreadable row image of table {table}"));
    let obj: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|_| bad())?;
    let mut m = BTreeMap::new();
    for (c, ty) in &s.columns {
        let v = obj.get(c).ok_or_else(bad)?;
        m.insert(c.clone(), typed(v, ty == "BLOB").ok_or_else(bad)?);
    }
    Ok(m)
}

fn typed(v: &serde_json::Value, blob: bool) -> Option<Val> {
    Some(match v {
        serde_json::Value::Null => Val::Null,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Val::Int(i),
            None => Val::Real(n.as_f64()?),
        },
        serde_json::Value::String(t) if blob => Val::Blob(t.clone()),
        serde_json::Value::String(t) => Val::Text(t.clone()),
        _ => return None,
    })
}

fn where_pk(s: &Shape) -> String {
    s.pk.iter()
        .enumerate()
        .map(|(n, &i)| format!("{} = ?{}", quote(&s.columns[i].0), n + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The trigger's JSON key, typed by the table's declared primary-key types.
fn decode_key(s: &Shape, table: &str, key: &str) -> Result<Vec<Val>> {
    let bad = || Error::Database(format!("fleet: unreadable key {key:?} of table {table}"));
    let parts: Vec<serde_json::Value> = serde_json::from_str(key).map_err(|_| bad())?;
    if parts.len() != s.pk.len() {
        return Err(bad());
    }
    parts
        .iter()
        .zip(&s.pk)
        .map(|(v, &i)| typed(v, s.columns[i].1 == "BLOB").ok_or_else(bad))
        .collect()
}

fn from_sql(v: Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Integer(i) => Val::Int(i),
        Value::Real(f) => Val::Real(f),
        Value::Text(t) => Val::Text(t),
        Value::Blob(b) => Val::Blob(hex(&b)),
    }
}

fn to_sql(v: &Val) -> Result<Value> {
    Ok(match v {
        Val::Null => Value::Null,
        Val::Int(i) => Value::Integer(*i),
        Val::Real(f) => Value::Real(*f),
        Val::Text(t) => Value::Text(t.clone()),
        Val::Blob(h) => {
            Value::Blob(unhex(h).ok_or_else(|| Error::Invalid(format!("fleet: {h:?} is not hex")))?)
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Decodes a change's bytes, refusing anything but this format.
pub fn decode(body: &[u8]) -> Result<Change> {
    if body.len() > MAX_CHANGE {
        return Err(Error::Invalid(format!(
            "fleet: a change of {} bytes is over the limit of {MAX_CHANGE}",
            body.len()
        )));
    }
    let c: Change = serde_json::from_slice(body)
        .map_err(|e| Error::Invalid(format!("fleet: not a change: {e}")))?;
    if c.v != FORMAT {
        return Err(Error::Invalid(format!(
            "fleet: change format {} (this mfa reads {FORMAT})",
            c.v
        )));
    }
    Ok(c)
}

/// Applies one change's operations (the caller holds a savepoint).
fn apply_ops(conn: &Connection, change: &Change) -> Result<()> {
    let mut shapes: BTreeMap<&str, Shape> = BTreeMap::new();
    for op in &change.ops {
        let Some(t) = REPLICATED.iter().find(|t| **t == op.t) else {
            return Err(Error::Invalid(format!(
                "fleet: table {:?} is not replicated",
                op.t
            )));
        };
        if !shapes.contains_key(t) {
            shapes.insert(t, shape(conn, t)?);
        }
        let Some(s) = shapes.get(t) else { continue };
        if op.k.len() != s.pk.len() {
            return Err(Error::Invalid(format!(
                "fleet: a key of {} values for table {t}",
                op.k.len()
            )));
        }
        match &op.r {
            None => {
                let params: Vec<Value> = op.k.iter().map(to_sql).collect::<Result<_>>()?;
                conn.execute(
                    &format!("DELETE FROM main.{} WHERE {}", quote(t), where_pk(s)),
                    params_from_iter(params.iter()),
                )?;
            }
            Some(row) => {
                if let Some(c) = row.keys().find(|c| !s.columns.iter().any(|(n, _)| n == *c)) {
                    return Err(Error::Invalid(format!(
                        "fleet: column {c:?} is not in table {t} here (a newer mfa made it)"
                    )));
                }
                let cols: Vec<&String> = row.keys().collect();
                let params: Vec<Value> = row.values().map(to_sql).collect::<Result<_>>()?;
                let pk: Vec<String> = s.pk.iter().map(|&i| quote(&s.columns[i].0)).collect();
                let set: Vec<String> = cols
                    .iter()
                    .filter(|c| !s.pk.iter().any(|&i| s.columns[i].0 == ***c))
                    .map(|c| format!("{q} = excluded.{q}", q = quote(c)))
                    .collect();
                let on_conflict = if set.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    format!("DO UPDATE SET {}", set.join(", "))
                };
                let sql = format!(
                    "INSERT INTO main.{} ({}) VALUES ({}) ON CONFLICT ({}) {on_conflict}",
                    quote(t),
                    cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                    (1..=cols.len())
                        .map(|i| format!("?{i}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    pk.join(", ")
                );
                conn.execute(&sql, params_from_iter(params.iter()))?;
            }
        }
    }
    Ok(())
}

/// Applies one change in a savepoint: all of it or nothing.
fn apply_one(conn: &Connection, body: &[u8]) -> Result<()> {
    let change = decode(body)?;
    apply_change(conn, &change)
}

fn apply_change(conn: &Connection, change: &Change) -> Result<()> {
    conn.execute_batch("SAVEPOINT fleet_change")?;
    match apply_ops(conn, change) {
        Ok(()) => {
            conn.execute_batch("RELEASE fleet_change")?;
            Ok(())
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO fleet_change; RELEASE fleet_change")?;
            Err(e)
        }
    }
}

/// The whole replicated state as one change (for `migrate --to postgres` and a new fleet's
/// first generation).
pub fn full_state(conn: &Connection) -> Result<Change> {
    let mut ops = Vec::new();
    for t in REPLICATED {
        let s = shape(conn, t)?;
        let mut stmt = conn.prepare(&format!("SELECT * FROM main.{}", quote(t)))?;
        let rows = stmt.query_map([], |r| {
            let mut m = BTreeMap::new();
            for (i, (c, _)) in s.columns.iter().enumerate() {
                m.insert(c.clone(), from_sql(r.get::<_, Value>(i)?));
            }
            Ok(m)
        })?;
        for row in rows {
            let row = row?;
            let k =
                s.pk.iter()
                    .map(|&i| row.get(&s.columns[i].0).cloned().unwrap_or(Val::Null))
                    .collect();
            ops.push(Op {
                t: t.to_string(),
                k,
                r: Some(row),
            });
        }
    }
    Ok(Change {
        v: FORMAT,
        schema: SCHEMA_VERSION,
        ops,
    })
}

/// Encodes a change.
pub fn encode(change: &Change) -> Result<Vec<u8>> {
    serde_json::to_vec(change)
        .map_err(|e| Error::Database(format!("fleet: cannot encode a change: {e}")))
}

/// The oldest changes waiting to be shipped.
pub fn outbox(conn: &Connection, limit: usize) -> Result<Vec<Outgoing>> {
    let mut stmt =
        conn.prepare("SELECT id, body FROM fleet_outbox WHERE shipped = 0 ORDER BY id LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(Outgoing {
            id: r.get(0)?,
            body: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many changes wait to be shipped.
pub fn outbox_len(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM fleet_outbox WHERE shipped = 0",
        [],
        |r| r.get(0),
    )?)
}

/// This host's changes the fleet has not applied back yet, oldest first.
fn pending(conn: &Connection) -> Result<Vec<Pending>> {
    let mut stmt =
        conn.prepare("SELECT id, body, undo FROM fleet_outbox WHERE applied IS NULL ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Pending {
            id: r.get(0)?,
            body: r.get(1)?,
            undo: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Store {
    /// Marks the outbox's changes up to `id` shipped: the central store holds them. They stay
    /// until this host applies them back in the central order.
    pub fn fleet_shipped(&mut self, id: i64) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE fleet_outbox SET shipped = 1 WHERE id <= ?1 AND shipped = 0",
                [id],
            )?;
            Ok(())
        })
    }

    /// Marks this host's changes after `id` not shipped (the central store does not hold
    /// them: a failover lost them); they go again. `applied_too`: also those this host had
    /// applied back, which become pending again. Only when the store's history broke (the
    /// change this replica applied last is gone): otherwise a change another shipper of
    /// this database sent and applied back between the read of `id` and this would be
    /// taken for a lost one and stay pending with a stale undo.
    pub fn fleet_unship_after(&mut self, id: i64, applied_too: bool) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE fleet_outbox SET shipped = 0, applied = NULL
                  WHERE id > ?1 AND shipped = 1 AND (?2 OR applied IS NULL)",
                rusqlite::params![id, applied_too],
            )?;
            Ok(())
        })
    }

    /// Applies central changes in order (see the module doc); `reset` first empties the
    /// replicated tables and starts from generation 0 (a host joining a fleet takes the
    /// fleet's rules, not its own; a replica whose store lost its history takes it again);
    /// this host's pending changes are redone on top either way.
    pub fn fleet_apply(&mut self, changes: &[Central], reset: bool) -> Result<Applied> {
        let done = self.fleet_apply_rows(changes, reset)?;
        // A lockout ended elsewhere ends this host's count too, or its own login-state file
        // would keep the user locked out here.
        for user in &done.unlocked {
            crate::state::clear_failures(&self.path, user)?;
        }
        Ok(done)
    }

    fn fleet_apply_rows(&mut self, changes: &[Central], reset: bool) -> Result<Applied> {
        self.policy_write_as(true, false, |tx| {
            let mut done = Applied {
                generation: generation(tx)?,
                ..Applied::default()
            };
            let fresh = changes.iter().any(|c| c.generation > done.generation);
            if !fresh && !reset {
                return Ok((done, false));
            }
            let mine = incarnation(tx)?;
            let mut last = None;
            // This host's Unix group members are its own (not replicated), but they hang
            // off `groups`, whose rows the undo and the changes below may delete and put
            // back: kept aside, and restored for every group that still exists.
            tx.execute_batch(
                "DROP TABLE IF EXISTS temp.fleet_unix;
                 CREATE TEMP TABLE fleet_unix AS SELECT user, grp FROM main.unix_members;",
            )?;
            if reset {
                done.generation = 0;
                for t in REPLICATED.iter().rev() {
                    tx.execute(&format!("DELETE FROM main.{}", quote(t)), [])?;
                }
            }
            // Back to the fleet's state at our generation: our own changes undone, newest
            // first (after a reset there is nothing to undo: the tables are empty). An undo
            // that cannot apply means the database was changed behind the fleet's back; the
            // central changes are applied anyway.
            let own = pending(tx)?;
            if !reset {
                for p in own.iter().rev() {
                    let _ = apply_one(tx, &p.undo);
                }
            }
            for c in changes {
                if c.generation <= done.generation {
                    continue;
                }
                if c.schema > SCHEMA_VERSION {
                    done.newer = Some((c.generation, c.schema));
                    break;
                }
                match apply_one(tx, &c.body) {
                    Ok(()) => {
                        done.applied += 1;
                        if let Ok(change) = decode(&c.body) {
                            done.unlocked.extend(change.ops.iter().filter_map(|op| {
                                match (op.t.as_str(), &op.r, op.k.first()) {
                                    ("lockouts", None, Some(Val::Text(u))) => Some(u.clone()),
                                    _ => None,
                                }
                            }));
                        }
                    }
                    Err(e) => done.skipped.push((c.generation, e.to_string())),
                }
                if c.incarnation == mine {
                    // Kept a while (KEEP_APPLIED), in case a failover loses it centrally.
                    tx.execute(
                        "UPDATE fleet_outbox SET applied = unixepoch(), shipped = 1
                          WHERE id = ?1",
                        [c.origin_id],
                    )?;
                }
                done.generation = c.generation;
                last = Some(format!("{} {}", c.incarnation, c.origin_id));
            }
            meta_set(tx, GENERATION_KEY, &done.generation.to_string())?;
            if let Some(last) = last {
                meta_set(tx, LAST_KEY, &last)?;
            }
            // Our changes the central store has not numbered yet come after all of these:
            // redone on top, each with its undo taken again from the new state.
            let applied_back: Vec<i64> = changes
                .iter()
                .filter(|c| c.incarnation == mine && c.generation <= done.generation)
                .map(|c| c.origin_id)
                .collect();
            for p in own.iter().filter(|p| !applied_back.contains(&p.id)) {
                record(tx)?;
                let undo = match decode(&p.body).and_then(|c| apply_change(tx, &c)) {
                    Ok(()) => match touched(tx)? {
                        Some((_, before)) => encode(&before)?,
                        None => encode(&ordered(Vec::new()))?,
                    },
                    // It no longer applies here; the central order will decide it.
                    Err(_) => encode(&ordered(Vec::new()))?,
                };
                tx.execute(
                    "UPDATE fleet_outbox SET undo = ?2 WHERE id = ?1",
                    rusqlite::params![p.id, undo],
                )?;
            }
            tx.execute(
                "DELETE FROM fleet_outbox WHERE applied < unixepoch() - ?1",
                [KEEP_APPLIED],
            )?;
            tx.execute_batch(
                "INSERT OR IGNORE INTO main.unix_members (user, grp)
                   SELECT user, grp FROM temp.fleet_unix
                    WHERE grp IN (SELECT name FROM main.groups);
                 DROP TABLE temp.fleet_unix;",
            )?;
            capture_discard(tx)?;
            Ok((done, true))
        })
    }
}
