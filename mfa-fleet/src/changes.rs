//! Rules through the central store: shipping this host's outbox to `changes`, following
//! `changes` into the local replica, a new fleet's first generation (`migrate --to
//! postgres`) and a host joining one (see `mfa_core::store::fleet` for what a change is).

use mfa_core::store::Store;
use mfa_core::store::fleet::{self, Applied, Central};
use mfa_core::{Error, Result};
use postgres::Client;

/// Changes fetched per round trip while following.
const FETCH: i64 = 500;
/// Outbox changes shipped per transaction.
const SHIP: usize = 200;

pub(crate) fn central(doing: &str, e: postgres::Error) -> Error {
    let why = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    Error::Central(format!("{doing}: {why}"))
}

/// Ships this host's changes waiting in its outbox, once each (a change the central store
/// already holds, shipped again after a crash, is ignored by its (incarnation, id)).
/// Returns how many were shipped.
pub fn ship(client: &mut Client, store: &mut Store) -> Result<usize> {
    let host = fleet::host(store.conn())?.ok_or_else(not_joined)?;
    let incarnation = fleet::incarnation(store.conn())?;
    // Changes this host shipped that the store no longer holds (a failover to a standby
    // that had not received them) go again. (Those already applied back only when
    // following finds the history broken: `follow`.)
    let held = held(client, &incarnation)?;
    store.fleet_unship_after(held, false)?;
    let mut total = 0;
    loop {
        let out = fleet::outbox(store.conn(), SHIP)?;
        let Some(last) = out.last().map(|o| o.id) else {
            return Ok(total);
        };
        let mut tx = client
            .transaction()
            .map_err(|e| central("shipping changes", e))?;
        for o in &out {
            let schema = fleet::decode(&o.body).map(|c| c.schema)?;
            tx.execute(
                "INSERT INTO changes (origin, incarnation, origin_id, schema, body)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incarnation, origin_id) DO NOTHING",
                &[&host, &incarnation, &o.id, &(schema as i32), &o.body],
            )
            .map_err(|e| central("shipping changes", e))?;
        }
        tx.commit().map_err(|e| central("shipping changes", e))?;
        store.fleet_shipped(last)?;
        total += out.len();
    }
}

/// The highest outbox id of this database (`incarnation`) the store holds (0: none).
fn held(client: &mut Client, incarnation: &str) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT coalesce(max(origin_id), 0) FROM changes WHERE incarnation = $1",
            &[&incarnation],
        )
        .map_err(|e| central("reading what the store holds of this host", e))?
        .get(0))
}

/// The central changes after `after`, oldest first, at most `limit`.
pub fn fetch(client: &mut Client, after: i64, limit: i64) -> Result<Vec<Central>> {
    let rows = client
        .query(
            "SELECT gen, origin, incarnation, origin_id, schema, body FROM changes
              WHERE gen > $1 ORDER BY gen LIMIT $2",
            &[&after, &limit],
        )
        .map_err(|e| central("reading changes", e))?;
    Ok(rows
        .into_iter()
        .map(|r| Central {
            generation: r.get(0),
            origin: r.get(1),
            incarnation: r.get(2),
            origin_id: r.get(3),
            schema: i64::from(r.get::<_, i32>(4)),
            body: r.get(5),
        })
        .collect())
}

/// The newest central generation (0: none yet).
pub fn newest(client: &mut Client) -> Result<i64> {
    let row = client
        .query_one("SELECT coalesce(max(gen), 0) FROM changes", &[])
        .map_err(|e| central("reading the fleet generation", e))?;
    Ok(row.get(0))
}

/// Applies every central change this replica has not applied yet. The total of what was
/// applied and skipped; stops at a change of a newer schema (`newer`).
pub fn follow(client: &mut Client, store: &mut Store) -> Result<Applied> {
    if !same_history(client, store)? {
        // The store's history is not the one this replica followed (a failover lost its
        // last changes, or the database was restored): start again from the first change.
        eprintln!(
            "mfa-fleetd: the central store no longer holds the change this host applied last \
             (generation {}): taking the fleet's rules again from the first change",
            fleet::generation(store.conn())?
        );
        // Its own changes the store lost go again, those it had applied back too (kept
        // for KEEP_APPLIED), so that the fleet's rules taken again include them.
        let held = held(client, &fleet::incarnation(store.conn())?)?;
        store.fleet_unship_after(held, true)?;
        ship(client, store)?;
        let first = fetch(client, 0, FETCH)?;
        let mut total = store.fleet_apply(&first, true)?;
        if total.newer.is_none() {
            let rest = follow(client, store)?;
            total.applied += rest.applied;
            total.skipped.extend(rest.skipped);
            total.generation = rest.generation;
            total.newer = rest.newer;
        }
        return Ok(total);
    }
    let mut total = Applied {
        generation: fleet::generation(store.conn())?,
        ..Applied::default()
    };
    loop {
        let batch = fetch(client, total.generation, FETCH)?;
        if batch.is_empty() {
            return Ok(total);
        }
        let done = store.fleet_apply(&batch, false)?;
        total.applied += done.applied;
        total.skipped.extend(done.skipped);
        total.unlocked.extend(done.unlocked);
        total.generation = done.generation;
        if done.newer.is_some() {
            total.newer = done.newer;
            return Ok(total);
        }
    }
}

/// Whether the change this replica applied last is still the store's change of that
/// generation (by its origin's incarnation and id).
fn same_history(client: &mut Client, store: &Store) -> Result<bool> {
    let generation = fleet::generation(store.conn())?;
    let Some((incarnation, origin_id)) = fleet::last_applied(store.conn())? else {
        return Ok(true);
    };
    let row = client
        .query_opt(
            "SELECT incarnation, origin_id FROM changes WHERE gen = $1",
            &[&generation],
        )
        .map_err(|e| central("checking the fleet's history", e))?;
    Ok(
        row.is_some_and(|r| {
            r.get::<_, String>(0) == incarnation && r.get::<_, i64>(1) == origin_id
        }),
    )
}

/// Ships, then follows: after it the replica holds every change the central store had,
/// its own included.
pub fn sync(client: &mut Client, store: &mut Store) -> Result<Applied> {
    ship(client, store)?;
    follow(client, store)
}

/// Makes this database the first member of a new fleet: its rules become the fleet's first
/// generation. Refused when the central store already holds changes (join that fleet
/// instead, `join`). Returns the generation.
pub fn found(client: &mut Client, store: &mut Store, host: &str) -> Result<i64> {
    store.write(|tx| fleet::join(tx, host).map(|_| ()))?;
    let founded = first_generation(client, store, host);
    if founded.is_err() {
        // Not a member after all: its next writes must not queue for a fleet.
        store.write(|tx| fleet::leave(tx))?;
    }
    founded
}

fn first_generation(client: &mut Client, store: &mut Store, host: &str) -> Result<i64> {
    let incarnation = fleet::incarnation(store.conn())?;
    let base = fleet::encode(&fleet::full_state(store.conn())?)?;
    let mut tx = client
        .transaction()
        .map_err(|e| central("writing the first generation", e))?;
    tx.execute("LOCK TABLE changes IN EXCLUSIVE MODE", &[])
        .map_err(|e| central("writing the first generation", e))?;
    let existing: i64 = tx
        .query_one("SELECT count(*) FROM changes", &[])
        .map_err(|e| central("writing the first generation", e))?
        .get(0);
    if existing > 0 {
        return Err(Error::Conflict(format!(
            "the central store already holds a fleet's rules ({existing} changes); \
             make this host a member with `mfa-admin fleet join` instead (its own rules \
             are then replaced by the fleet's)"
        )));
    }
    let generation: i64 = tx
        .query_one(
            "INSERT INTO changes (origin, incarnation, origin_id, schema, body)
             VALUES ($1, $2, 0, $3, $4) RETURNING gen",
            &[
                &host,
                &incarnation,
                &(mfa_core::store::SCHEMA_VERSION as i32),
                &base,
            ],
        )
        .map_err(|e| central("writing the first generation", e))?
        .get(0);
    tx.commit()
        .map_err(|e| central("writing the first generation", e))?;
    // The rows are already here: nothing of the outbox is news to the fleet.
    store.write(|tx| {
        tx.execute("DELETE FROM fleet_outbox", [])?;
        fleet::meta_set(tx, fleet::GENERATION_KEY, &generation.to_string())
    })?;
    Ok(generation)
}

/// Makes this database a member of the fleet: its replicated rules are replaced by the
/// fleet's (every central change from the first). Returns what was applied.
pub fn join(client: &mut Client, store: &mut Store, host: &str) -> Result<Applied> {
    store.write(|tx| {
        fleet::join(tx, host)?;
        fleet::meta_set(tx, fleet::GENERATION_KEY, "0")
    })?;
    let first = fetch(client, 0, FETCH).and_then(|first| {
        if first.is_empty() {
            return Err(Error::NotFound(
                "the central store holds no fleet yet; make this host its first member with \
                 `mfa-admin migrate --to postgres URL`"
                    .to_string(),
            ));
        }
        store.fleet_apply(&first, true)
    });
    let mut total = match first {
        Ok(applied) => applied,
        Err(e) => {
            // Not a member after all: its rules are still its own.
            store.write(|tx| fleet::leave(tx))?;
            return Err(e);
        }
    };
    if total.newer.is_none() {
        let rest = follow(client, store)?;
        total.applied += rest.applied;
        total.skipped.extend(rest.skipped);
        total.generation = rest.generation;
        total.newer = rest.newer;
    }
    Ok(total)
}

fn not_joined() -> Error {
    Error::Database(
        "this database is not a fleet member yet: run `mfa-admin fleet join` (or \
         `mfa-admin migrate --to postgres URL` for the fleet's first host)"
            .to_string(),
    )
}
