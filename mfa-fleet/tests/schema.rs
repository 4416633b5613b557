//! `mfa_fleet::schema` against a real throwaway PostgreSQL (one server, a database per
//! test): migrating once, twice and from 8 hosts at once, a newer schema refused, `check`,
//! the NOTIFY on changes, the uniqueness of shipped rows, and damaged or foreign databases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pg.rs"]
mod pg;

use mfa_core::Error;
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_fleet::connect::connect;
use mfa_fleet::schema::{SCHEMA_VERSION, check, migrate, version};
use pg::Pg;

const TABLES: &str = "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables \
                      WHERE schemaname = 'public'";

fn store(url: &str) -> StoreConfig {
    StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file: Some(Pg::shared().password_file()),
        host: Some("schema-test".to_string()),
        ..StoreConfig::default()
    }
}

/// A fresh database and a connection to it as `mfa`.
fn fresh() -> (String, postgres::Client) {
    let url = Pg::shared().new_database();
    let client = connect(&store(&url)).expect("connect");
    (url, client)
}

#[test]
fn migrate_creates_the_schema_and_twice_is_once() {
    let pg = Pg::shared();
    let (url, mut c) = fresh();
    assert_eq!(version(&mut c).unwrap(), None);
    migrate(&mut c).expect("migrate");
    assert_eq!(version(&mut c).unwrap(), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 2);
    migrate(&mut c).expect("migrate again");
    assert_eq!(version(&mut c).unwrap(), Some(2));
    assert_eq!(pg.psql_in(&url, "SELECT count(*) FROM mfa_schema"), "1");
    assert_eq!(
        pg.psql_in(&url, TABLES),
        "audit_log,auth_log,changes,failures,hosts,log_marks,mfa_schema,totp_steps"
    );
    let indexes = pg.psql_in(
        &url,
        "SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes \
         WHERE tablename = 'auth_log'",
    );
    for want in [
        "(ts)",
        "(host, ts)",
        "(\"user\", ts)",
        "UNIQUE INDEX",
        "(host, event)",
    ] {
        assert!(indexes.contains(want), "{want} missing in:\n{indexes}");
    }
    check(&mut c).expect("check");
    // The tables are the role's (it owns the database), usable as mfa.
    c.execute(
        "INSERT INTO hosts (name) VALUES ('web-1') ON CONFLICT (name) DO NOTHING",
        &[],
    )
    .unwrap();
}

#[test]
fn eight_hosts_migrating_at_once_migrate_once() {
    let pg = Pg::shared();
    let url = pg.new_database();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                let c = connect(&store(&url));
                barrier.wait(); // (also after a failed connect: no thread waits forever)
                migrate(&mut c?)
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().expect("concurrent migrate");
    }
    assert_eq!(
        pg.psql_in(
            &url,
            "SELECT string_agg(version::text, ',') FROM mfa_schema"
        ),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(
        pg.psql_in(&url, TABLES),
        "audit_log,auth_log,changes,failures,hosts,log_marks,mfa_schema,totp_steps"
    );
    assert_eq!(
        pg.psql_in(
            &url,
            "SELECT count(*) FROM pg_trigger WHERE tgname = 'changes_notify'"
        ),
        "1"
    );
}

/// A store made by an mfa of central schema 1 is refused by `check` until migrated; the
/// migration keeps its rows and adds the log marks (none yet: each host sends its log
/// again once, and the store ignores what it has).
#[test]
fn a_version_1_store_migrates_and_keeps_its_rows() {
    let pg = Pg::shared();
    let (url, mut c) = fresh();
    c.batch_execute(mfa_fleet::schema::MIGRATIONS[0]).unwrap();
    c.batch_execute(
        "INSERT INTO mfa_schema (version) VALUES (1);
         INSERT INTO auth_log (host, event, ts, \"user\", service, outcome)
         VALUES ('web-1', 'ev-1', 1, 'alice', 'sshd', 'success');",
    )
    .unwrap();
    let e = check(&mut c).unwrap_err().to_string();
    assert!(e.contains("version 1") && e.contains("migrate"), "{e}");
    migrate(&mut c).unwrap();
    assert_eq!(version(&mut c).unwrap(), Some(SCHEMA_VERSION));
    check(&mut c).unwrap();
    assert_eq!(
        pg.psql_in(
            &url,
            "SELECT host || ',' || event || ',' || (SELECT count(*) FROM log_marks) FROM auth_log"
        ),
        "web-1,ev-1,0"
    );
}

#[test]
fn a_newer_schema_is_refused() {
    let pg = Pg::shared();
    let (url, mut c) = fresh();
    migrate(&mut c).unwrap();
    pg.psql_in(&url, "UPDATE mfa_schema SET version = 7");
    for e in [migrate(&mut c).unwrap_err(), check(&mut c).unwrap_err()] {
        assert!(matches!(e, Error::Database(_)), "{e:?}");
        let m = e.to_string();
        let ours = format!("({SCHEMA_VERSION})");
        assert!(m.contains("version 7") && m.contains(&ours), "{m}");
        assert!(m.contains("upgrade mfa on this host"), "{m}");
    }
    assert_eq!(pg.psql_in(&url, "SELECT version FROM mfa_schema"), "7");
}

#[test]
fn check_says_to_migrate() {
    let pg = Pg::shared();
    let (url, mut c) = fresh();
    let e = check(&mut c).unwrap_err();
    assert!(matches!(e, Error::Database(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("run `mfa-admin migrate --to postgres`"),
        "{e}"
    );
    // Nothing was created by looking.
    assert_eq!(pg.psql_in(&url, TABLES), "");
    migrate(&mut c).unwrap();
    check(&mut c).expect("migrated");
}

#[test]
fn an_insert_into_changes_notifies_listeners() {
    let (url, mut listener) = fresh();
    migrate(&mut listener).unwrap();
    listener.batch_execute("LISTEN mfa_changes").unwrap();
    let mut writer = connect(&store(&url)).unwrap();
    writer
        .execute(
            "INSERT INTO changes (origin, incarnation, origin_id, schema, body) \
             VALUES ('web-1', 'abc', 1, 8, '\\x7b7d'), ('web-1', 'abc', 2, 8, '\\x7b7d')",
            &[],
        )
        .unwrap();
    use postgres::fallible_iterator::FallibleIterator;
    let mut n = listener.notifications();
    let first = n
        .timeout_iter(std::time::Duration::from_secs(5))
        .next()
        .unwrap()
        .expect("no notification within 5 s");
    assert_eq!((first.channel(), first.payload()), ("mfa_changes", ""));
    // One per statement: no second one for the second row.
    let more = n
        .timeout_iter(std::time::Duration::from_millis(300))
        .next()
        .unwrap();
    assert!(more.is_none(), "{more:?}");
    drop(n);
    // Nothing without an insert.
    writer.execute("UPDATE hosts SET queue = 1", &[]).unwrap();
    let mut n = listener.notifications();
    let none = n
        .timeout_iter(std::time::Duration::from_millis(300))
        .next()
        .unwrap();
    assert!(none.is_none(), "{none:?}");
}

#[test]
fn a_change_is_stored_once_by_incarnation_and_origin_id() {
    let (_, mut c) = fresh();
    migrate(&mut c).unwrap();
    let insert = "INSERT INTO changes (origin, incarnation, origin_id, schema, body) \
                  VALUES ($1, 'inc-1', 42, 8, '\\x00')";
    c.execute(insert, &[&"web-1"]).unwrap();
    let e = c.execute(insert, &[&"web-2"]).unwrap_err();
    assert_eq!(
        e.code(),
        Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
        "{e}"
    );
    let n = c
        .execute(
            "INSERT INTO changes (origin, incarnation, origin_id, schema, body) \
             VALUES ('web-1', 'inc-1', 42, 8, '\\x00') \
             ON CONFLICT (incarnation, origin_id) DO NOTHING",
            &[],
        )
        .unwrap();
    assert_eq!(n, 0);
    let gens: i64 = c
        .query_one("SELECT count(*) FROM changes", &[])
        .unwrap()
        .get(0);
    assert_eq!(gens, 1);
    // The logs are unique the same way.
    c.batch_execute(
        "INSERT INTO audit_log (host, incarnation, origin_id, ts, actor, action) \
         VALUES ('web-1', 'inc-1', 1, 0, 'root', 'x')",
    )
    .unwrap();
    assert!(
        c.batch_execute(
            "INSERT INTO audit_log (host, incarnation, origin_id, ts, actor, action) \
             VALUES ('web-2', 'inc-1', 1, 0, 'root', 'y')",
        )
        .is_err()
    );
}

#[test]
fn damaged_or_foreign_databases_are_refused() {
    let pg = Pg::shared();
    // mfa_schema without a row.
    let (url, mut c) = fresh();
    pg.psql_in(
        &url,
        "CREATE TABLE mfa_schema (version INT NOT NULL); ALTER TABLE mfa_schema OWNER TO mfa;",
    );
    for e in [migrate(&mut c).unwrap_err(), check(&mut c).unwrap_err()] {
        assert!(matches!(e, Error::Database(_)), "{e:?}");
        assert!(e.to_string().contains("holds no version"), "{e}");
    }
    // A version no mfa writes.
    pg.psql_in(&url, "INSERT INTO mfa_schema VALUES (-3)");
    let e = migrate(&mut c).unwrap_err();
    assert!(e.to_string().contains("holds version -3"), "{e}");
    assert_eq!(pg.psql_in(&url, TABLES), "mfa_schema");

    // Someone else's table called changes: the migration fails whole, naming it.
    let (url, mut c) = fresh();
    pg.psql_in(
        &url,
        "CREATE TABLE changes (x INT); ALTER TABLE changes OWNER TO mfa;",
    );
    let e = migrate(&mut c).unwrap_err();
    assert!(matches!(e, Error::Central(_)), "{e:?}");
    let m = e.to_string();
    assert!(
        m.contains("from version 0 to 1") && m.contains("relation \"changes\" already exists"),
        "{m}"
    );
    assert_eq!(
        pg.psql_in(&url, TABLES),
        "changes",
        "a half-done migration was left"
    );
    assert_eq!(version(&mut c).unwrap(), None);
}

#[test]
fn a_role_that_may_not_create_gets_the_servers_reason() {
    let pg = Pg::shared();
    let url = pg.new_database();
    // The database belongs to the superuser, and its schema allows mfa nothing.
    pg.psql_in(
        &url,
        "ALTER DATABASE {db} OWNER TO postgres; REVOKE ALL ON SCHEMA public FROM PUBLIC;"
            .replace("{db}", &pg::db_name(&url))
            .as_str(),
    );
    let mut c = connect(&store(&url)).unwrap();
    let m = migrate(&mut c).unwrap_err().to_string();
    // (No USAGE on public: the server says no schema is there to create in.)
    assert!(
        m.contains(
            "from version 0 to 1: no schema has been selected to create in [SQLSTATE 3F000]"
        ),
        "{m}"
    );
}
