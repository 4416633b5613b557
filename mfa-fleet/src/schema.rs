//! The central store's schema in PostgreSQL, versioned like the local one
//! (`mfa_core::store::schema`): migration N brings `mfa_schema.version` from N-1 to N.
//! Never edit a released migration: add the next one.
//!
//! [`migrate`] runs every missing migration in one transaction under an advisory lock, so
//! hosts that start together migrate once; a database from a newer mfa is refused.
//! The database must be owned by the role in `store.url` (or the role must be allowed to
//! create in its schema); PostgreSQL 11 or later.

use mfa_core::{Error, Result};

use crate::connect::describe;

/// The schema version this mfa writes and reads.
pub const SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: `MIGRATIONS[N-1]` brings the schema to version N.
pub const MIGRATIONS: &[&str] = &[V1, V2];

/// The key of the transaction-scoped advisory lock held while migrating ("mfa-sche").
pub const MIGRATION_LOCK: i64 = 0x6d66_612d_7363_6865;

const V1: &str = r#"
-- The schema version: one row.
CREATE TABLE mfa_schema (version INT NOT NULL);

-- Rule changes of every host, numbered in the order the fleet applies them (gen).
CREATE TABLE changes (
    gen         BIGSERIAL PRIMARY KEY,
    origin      TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    origin_id   BIGINT NOT NULL,
    schema      INT NOT NULL,
    created     TIMESTAMPTZ NOT NULL DEFAULT now(),
    body        BYTEA NOT NULL,
    UNIQUE (incarnation, origin_id)
);

-- Followers LISTEN on mfa_changes: one notification per inserting statement.
CREATE FUNCTION mfa_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mfa_changes', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION mfa_changes_notify();

-- Every host's authentication log, once each by (host, event).
CREATE TABLE auth_log (
    id          BIGSERIAL PRIMARY KEY,
    host        TEXT NOT NULL,
    event       TEXT NOT NULL,
    ts          BIGINT NOT NULL,
    "user"      TEXT NOT NULL,
    service     TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    addr_key    BYTEA,
    tty         TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    method      TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    txid        TEXT NOT NULL DEFAULT '',
    UNIQUE (host, event)
);
CREATE INDEX auth_log_ts ON auth_log (ts);
CREATE INDEX auth_log_host_ts ON auth_log (host, ts);
CREATE INDEX auth_log_user_ts ON auth_log ("user", ts);

-- Every host's audit log (administrative changes), once each by (incarnation, origin_id).
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    host        TEXT NOT NULL,
    incarnation TEXT NOT NULL,
    origin_id   BIGINT NOT NULL,
    ts          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    UNIQUE (incarnation, origin_id)
);

-- The fleet's members: what each applied, when it last called, its queues, its last error.
CREATE TABLE hosts (
    name         TEXT PRIMARY KEY,
    incarnation  TEXT NOT NULL DEFAULT '',
    generation   BIGINT NOT NULL DEFAULT 0,
    last_contact TIMESTAMPTZ NOT NULL DEFAULT now(),
    queue        INT NOT NULL DEFAULT 0,
    failed       INT NOT NULL DEFAULT 0,
    outbox       INT NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT ''
);

-- The login state a fleet shares (mfa_fleet::login_state): each user's newest accepted
-- TOTP step (raised, never lowered; seq moves at each raise), and failure events (failures
-- counted on a host; 0: its count went back to none).
CREATE SEQUENCE totp_steps_seq;
CREATE TABLE totp_steps (
    "user" TEXT PRIMARY KEY,
    step   BIGINT NOT NULL,
    host   TEXT NOT NULL,
    seq    BIGINT NOT NULL DEFAULT nextval('totp_steps_seq'),
    at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX totp_steps_seq_idx ON totp_steps (seq);
CREATE TRIGGER totp_steps_notify AFTER INSERT OR UPDATE ON totp_steps
    FOR EACH STATEMENT EXECUTE FUNCTION mfa_changes_notify();
CREATE TABLE failures (
    seq      BIGSERIAL PRIMARY KEY,
    "user"   TEXT NOT NULL,
    host     TEXT NOT NULL,
    failures INT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE TRIGGER failures_notify AFTER INSERT ON failures
    FOR EACH STATEMENT EXECUTE FUNCTION mfa_changes_notify();
"#;

/// Version 2: how far each host database (incarnation) has shipped each log, moved in the
/// transaction that ships the rows (`logs`): a failover that loses rows loses the mark with
/// them, so the host sends them again; purging old rows leaves the mark alone.
const V2: &str = r#"
CREATE TABLE log_marks (
    incarnation TEXT NOT NULL,
    log         TEXT NOT NULL,
    upto        BIGINT NOT NULL,
    PRIMARY KEY (incarnation, log)
);
"#;

/// The schema version of the central store; None when it has no mfa schema.
pub fn version(client: &mut impl postgres::GenericClient) -> Result<Option<i32>> {
    let fail = |e: postgres::Error| {
        Error::Central(format!(
            "reading the schema version (mfa_schema): {}",
            describe(&e)
        ))
    };
    let exists: bool = client
        .query_one("SELECT to_regclass('mfa_schema') IS NOT NULL", &[])
        .map_err(fail)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM mfa_schema", &[])
        .map_err(fail)?
        .get(0);
    match v {
        Some(v) if v >= 1 => Ok(Some(v)),
        Some(v) => Err(Error::Database(format!(
            "the central store's table mfa_schema holds version {v}, which no mfa writes: the \
             database is damaged or not mfa's; restore it, or name an empty database in store.url"
        ))),
        None => Err(Error::Database(
            "the central store's table mfa_schema holds no version: the database is damaged \
             or not mfa's; restore it, or name an empty database in store.url"
                .to_string(),
        )),
    }
}

/// Brings the central store's schema to [`SCHEMA_VERSION`] (creating it in an empty
/// database): every missing migration in one transaction, under an advisory lock so that
/// concurrent hosts migrate once. A schema newer than this mfa's is refused.
pub fn migrate(client: &mut postgres::Client) -> Result<()> {
    let mut tx = client
        .transaction()
        .map_err(|e| Error::Central(format!("migrating the schema: BEGIN: {}", describe(&e))))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| {
            Error::Central(format!(
                "migrating the schema: waiting for another host's migration: {}",
                describe(&e)
            ))
        })?;
    let current = version(&mut tx)?.unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(newer(current));
    }
    if current == SCHEMA_VERSION {
        return Ok(()); // (the transaction rolls back: nothing was written)
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let to = i + 1;
        tx.batch_execute(sql).map_err(|e| {
            Error::Central(format!(
                "migrating the schema from version {} to {to}: {}",
                to - 1,
                describe(&e)
            ))
        })?;
    }
    let set = if current == 0 {
        "INSERT INTO mfa_schema (version) VALUES ($1)"
    } else {
        "UPDATE mfa_schema SET version = $1"
    };
    tx.execute(set, &[&SCHEMA_VERSION]).map_err(|e| {
        Error::Central(format!(
            "migrating the schema: recording version {SCHEMA_VERSION}: {}",
            describe(&e)
        ))
    })?;
    tx.commit().map_err(|e| {
        Error::Central(format!(
            "migrating the schema to version {SCHEMA_VERSION}: COMMIT: {}",
            describe(&e)
        ))
    })
}

/// The central store has mfa's schema at exactly [`SCHEMA_VERSION`] (before following it).
pub fn check(client: &mut postgres::Client) -> Result<()> {
    match version(client)? {
        None => Err(Error::Database(
            "the central store has no mfa schema: run `mfa-admin migrate --to postgres` \
             (once, on one host)"
                .to_string(),
        )),
        Some(v) if v < SCHEMA_VERSION => Err(Error::Database(format!(
            "the central store's schema is version {v}, older than this mfa's \
             ({SCHEMA_VERSION}): run `mfa-admin migrate --to postgres`"
        ))),
        Some(v) if v > SCHEMA_VERSION => Err(newer(v)),
        Some(_) => Ok(()),
    }
}

fn newer(v: i32) -> Error {
    Error::Database(format!(
        "the central store's schema is version {v}, newer than this mfa's \
         ({SCHEMA_VERSION}): upgrade mfa on this host"
    ))
}
