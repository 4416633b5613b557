//! Shipping each host's logs to a real PostgreSQL (started by the tests): exactly once
//! whatever happens between the central commit and the local cursor, from several hosts at
//! once, with hostile bytes intact, across a server that goes away; the central log read
//! back with `log show`'s filters; the hosts' heartbeats and `fleet status`'s view of them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pg.rs"]
mod pg;

use std::collections::BTreeMap;

use mfa_core::net::IpRange;
use mfa_core::store::Store;
use mfa_core::store::logs::{self, AuthEvent, AuthFilter};
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_fleet::hosts::{self, HostReport};
use mfa_fleet::logs::{
    AUDIT_CURSOR, LOG_CURSOR, central_auth_log, cursor, ship_all, ship_audit_log, ship_auth_log,
};
use postgres::Client;

/// A fleet host: its own database, joined (an incarnation of its own).
struct Host {
    _dir: tempfile::TempDir,
    name: String,
    inc: String,
    store: Store,
}

impl Host {
    fn new(name: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let inc = format!("inc{name}{:x}", std::process::id());
        store
            .conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES ('fleet_incarnation', ?1)",
                [&inc],
            )
            .unwrap();
        Host {
            _dir: dir,
            name: name.to_string(),
            inc,
            store,
        }
    }

    /// `n` auth rows: every third without an event id (rows from before event ids), the
    /// others with one; users, addresses and outcomes vary; times from `t0` on.
    fn add_auth(&mut self, n: usize, t0: i64) {
        let c = self.store.conn();
        c.execute_batch("BEGIN").unwrap();
        for i in 0..n {
            let ev = AuthEvent {
                time: t0 + i as i64,
                user: format!("u{}", i % 5),
                service: if i % 2 == 0 { "sshd" } else { "sudo" }.into(),
                address: if i % 4 == 3 {
                    String::new()
                } else {
                    format!("10.{}.0.{}", i % 3, i % 250 + 1)
                },
                tty: "pts/0".into(),
                outcome: if i % 7 == 0 { "deny" } else { "success" }.into(),
                method: "totp".into(),
                reason: format!("{} #{i}", self.name),
                ..Default::default()
            };
            if i % 3 == 0 {
                logs::record_auth(c, &ev).unwrap();
            } else {
                let event = format!("ev-{}-{}-{i}", self.name, t0);
                assert!(logs::record_auth_event(c, &ev, &event).unwrap());
            }
        }
        c.execute_batch("COMMIT").unwrap();
    }

    fn add_audit(&mut self, n: usize) {
        for i in 0..n {
            logs::audit(self.store.conn(), "root", "user add", &format!("u{i}")).unwrap();
        }
    }

    fn local(&self, f: &AuthFilter) -> Vec<AuthEvent> {
        logs::auth_log(self.store.conn(), f).unwrap()
    }

    fn set_cursor(&self, key: &str, value: i64) {
        self.store
            .conn()
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value.to_string()],
            )
            .unwrap();
    }

    fn max_id(&self, table: &str) -> i64 {
        self.store
            .conn()
            .query_row(
                &format!("SELECT coalesce(max(id), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )
            .unwrap()
    }
}

/// A fresh central database with the schema (on the shared server), and a client of it.
fn central() -> (String, Client) {
    central_on(pg::Pg::shared())
}

fn central_on(server: &pg::Pg) -> (String, Client) {
    let url = server.new_database();
    let mut c = connect_on(server, &url);
    mfa_fleet::schema::migrate(&mut c).unwrap();
    (url, c)
}

/// A client of `url` on the shared server, as a host connects ([store] of mfa.toml).
fn connect(url: &str) -> Client {
    connect_on(pg::Pg::shared(), url)
}

fn connect_on(server: &pg::Pg, url: &str) -> Client {
    // connect() refuses while 4 attempts of this process are in flight (tests run at once).
    for _ in 0..200 {
        match try_connect(server, url) {
            Err(e) if e.to_string().contains("earlier attempts still wait") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r.unwrap(),
        }
    }
    panic!("cannot connect to {url}: too many attempts in flight");
}

fn try_connect(server: &pg::Pg, url: &str) -> mfa_core::Result<Client> {
    mfa_fleet::connect::connect(&StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file: Some(server.password_file()),
        ..Default::default()
    })
}

fn count(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// The central rows of a host as (event, the event's fields but the id), by event.
fn central_rows(c: &mut Client, host: &str) -> BTreeMap<String, AuthEvent> {
    c.query(
        "SELECT event, ts, \"user\", service, address, tty, outcome, method, destination, \
         reason, txid FROM auth_log WHERE host = $1",
        &[&host],
    )
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.get(0),
            AuthEvent {
                id: 0,
                time: r.get(1),
                user: r.get(2),
                service: r.get(3),
                address: r.get(4),
                tty: r.get(5),
                outcome: r.get(6),
                method: r.get(7),
                destination: r.get(8),
                reason: r.get(9),
                txid: r.get(10),
            },
        )
    })
    .collect()
}

/// A host's local rows as the central store must hold them: by event id (its own, else
/// `row-<incarnation>-<id>`), id cleared.
fn expected_rows(h: &Host) -> BTreeMap<String, AuthEvent> {
    let mut stmt = h
        .store
        .conn()
        .prepare("SELECT id, event FROM auth_log")
        .unwrap();
    let events: BTreeMap<i64, Option<String>> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    h.local(&AuthFilter::default())
        .into_iter()
        .map(|mut e| {
            let key = events[&e.id]
                .clone()
                .unwrap_or_else(|| format!("row-{}-{}", h.inc, e.id));
            e.id = 0;
            (key, e)
        })
        .collect()
}

fn strip(rows: Vec<(String, AuthEvent)>) -> Vec<(String, AuthEvent)> {
    rows.into_iter()
        .map(|(h, mut e)| {
            e.id = 0;
            (h, e)
        })
        .collect()
}

#[test]
fn shipping_twice_ships_once() {
    let (_, mut c) = central();
    let mut h = Host::new("web1");
    h.add_auth(2500, 1_800_000_000);
    h.add_audit(30);
    assert_eq!(
        ship_auth_log(&mut c, &mut h.store, "web1", 1000).unwrap(),
        2500
    );
    assert_eq!(ship_audit_log(&mut c, &mut h.store, "web1", 7).unwrap(), 30);
    assert_eq!(
        cursor(h.store.conn(), LOG_CURSOR).unwrap(),
        h.max_id("auth_log")
    );
    assert_eq!(
        cursor(h.store.conn(), AUDIT_CURSOR).unwrap(),
        h.max_id("audit_log")
    );
    // Nothing new: nothing sent.
    assert_eq!(ship_all(&mut c, &mut h.store, "web1").unwrap(), (0, 0));
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 2500);
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit_log"), 30);
    assert_eq!(central_rows(&mut c, "web1"), expected_rows(&h));
    // Rows from before event ids got the stable one.
    let old = format!("row-{}-1", h.inc);
    assert!(central_rows(&mut c, "web1").contains_key(&old));
    let audit: Vec<(String, String, i64, String)> = c
        .query(
            "SELECT host, incarnation, origin_id, detail FROM audit_log ORDER BY origin_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(audit.len(), 30);
    assert_eq!(audit[4], ("web1".into(), h.inc.clone(), 5, "u4".into()));
    // New rows: only they travel.
    h.add_auth(3, 1_800_100_000);
    h.add_audit(2);
    assert_eq!(ship_all(&mut c, &mut h.store, "web1").unwrap(), (3, 2));
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 2503);
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit_log"), 32);
}

/// A crash after the central commit and before the local cursor moved: the next round
/// sends the rows again and the central store keeps one of each.
#[test]
fn a_lost_cursor_resends_and_duplicates_nothing() {
    let (_, mut c) = central();
    let mut h = Host::new("web2");
    h.add_auth(1200, 1_800_000_000);
    h.add_audit(5);
    assert_eq!(ship_all(&mut c, &mut h.store, "web2").unwrap(), (1200, 5));
    let before = central_rows(&mut c, "web2");
    h.set_cursor(LOG_CURSOR, 0);
    h.set_cursor(AUDIT_CURSOR, 0);
    h.add_auth(10, 1_800_200_000);
    assert_eq!(ship_all(&mut c, &mut h.store, "web2").unwrap(), (1210, 5));
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 1210);
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit_log"), 5);
    let after = central_rows(&mut c, "web2");
    assert!(before.iter().all(|(k, v)| after.get(k) == Some(v)));
    assert_eq!(after, expected_rows(&h));
    // A cursor behind another shipper's never moves it back.
    h.set_cursor(LOG_CURSOR, 5);
    ship_auth_log(&mut c, &mut h.store, "web2", 1000).unwrap();
    assert_eq!(
        cursor(h.store.conn(), LOG_CURSOR).unwrap(),
        h.max_id("auth_log")
    );
    // A damaged cursor is named with its fix.
    h.set_cursor(LOG_CURSOR, 0);
    h.store
        .conn()
        .execute("UPDATE meta SET value = 'x' WHERE key = ?1", [LOG_CURSOR])
        .unwrap();
    let e = ship_auth_log(&mut c, &mut h.store, "web2", 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fleet_log_shipped") && e.contains("delete"),
        "{e}"
    );
}

/// A failover to a standby that had not received the last batches: the store holds less
/// than the host's cursors say, and the marks went with the rows. The next round sends
/// what it lacks, once. Purging old central rows is not a loss: nothing is sent again.
#[test]
fn rows_the_store_lost_are_sent_again() {
    let (_, mut c) = central();
    let mut h = Host::new("web4");
    h.add_auth(1500, 1_800_000_000);
    h.add_audit(9);
    assert_eq!(ship_all(&mut c, &mut h.store, "web4").unwrap(), (1500, 9));
    let marks = |c: &mut Client| -> Vec<(String, i64)> {
        c.query("SELECT log, upto FROM log_marks ORDER BY log", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    assert_eq!(
        marks(&mut c),
        [
            ("audit_log".to_string(), h.max_id("audit_log")),
            ("auth_log".to_string(), h.max_id("auth_log"))
        ]
    );
    let all = central_rows(&mut c, "web4");
    // What a failover loses: the last batches' rows and their marks (the first 1000 auth
    // rows were one batch, the rest another; the audit rows one).
    let lost = c
        .execute(
            "DELETE FROM auth_log WHERE id > (SELECT min(id) + 999 FROM auth_log)",
            &[],
        )
        .unwrap();
    assert_eq!(lost, 500);
    c.batch_execute(
        "DELETE FROM audit_log; UPDATE log_marks SET upto = 1000 WHERE log = 'auth_log';
         DELETE FROM log_marks WHERE log = 'audit_log';",
    )
    .unwrap();
    h.add_auth(2, 1_800_300_000);
    assert_eq!(ship_all(&mut c, &mut h.store, "web4").unwrap(), (502, 9));
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 1502);
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit_log"), 9);
    let now = central_rows(&mut c, "web4");
    assert!(all.iter().all(|(k, v)| now.get(k) == Some(v)));
    assert_eq!(now, expected_rows(&h));
    // Nothing lost: nothing sent again.
    assert_eq!(ship_all(&mut c, &mut h.store, "web4").unwrap(), (0, 0));
    // Old rows purged centrally: the marks stay, nothing comes back.
    c.batch_execute("DELETE FROM auth_log; DELETE FROM audit_log;")
        .unwrap();
    assert_eq!(ship_all(&mut c, &mut h.store, "web4").unwrap(), (0, 0));
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 0);
}

/// Three hosts ship at once into one database (small batches, so that their statements
/// interleave): every row once, each under its own host.
#[test]
fn three_hosts_at_once() {
    let (url, mut c) = central();
    let mut workers = Vec::new();
    for name in ["a1", "b2", "c3"] {
        let url = url.clone();
        workers.push(std::thread::spawn(move || {
            let mut h = Host::new(name);
            h.add_auth(3000, 1_800_000_000);
            h.add_audit(50);
            let mut c = connect(&url);
            let mut sent = 0;
            // Twice at once on the same host, as mfa-fleetd and mfa-admin may.
            for _ in 0..2 {
                sent += ship_auth_log(&mut c, &mut h.store, name, 100).unwrap();
            }
            assert_eq!(sent, 3000);
            assert_eq!(ship_audit_log(&mut c, &mut h.store, name, 9).unwrap(), 50);
            h
        }));
    }
    let hosts: Vec<Host> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 9000);
    assert_eq!(count(&mut c, "SELECT count(*) FROM audit_log"), 150);
    for h in &hosts {
        let rows = central_rows(&mut c, &h.name);
        assert_eq!(rows.len(), 3000, "{}", h.name);
        assert!(rows.values().all(|e| e.reason.starts_with(&h.name)));
        assert_eq!(rows, expected_rows(h), "{}", h.name);
    }
}

/// Quotes, backslashes, terminal escapes, bidi overrides, 10 KB values, text that is not
/// UTF-8 and a NUL (SQLite text may hold one, PostgreSQL text may not) arrive, and the
/// hostile values match as filters exactly.
#[test]
fn hostile_bytes_arrive_intact() {
    let (_, mut c) = central();
    let mut h = Host::new("evil");
    let big = "é\u{202e}'\"\\".repeat(2048);
    let hostile = [
        "x' OR '1'='1",
        "a\"; DROP TABLE auth_log; --",
        "\\x00 $1 ?1 %s",
        "x\x1b[2J\x1b]0;pwned\x07\r\n2026 root sshd local\u{9b}31m\u{202e}gnp\x7f",
        big.as_str(),
    ];
    for (i, v) in hostile.iter().enumerate() {
        let ev = AuthEvent {
            time: 1_800_000_000 + i as i64,
            user: v.to_string(),
            service: v.to_string(),
            address: v.to_string(),
            tty: v.to_string(),
            outcome: "deny".into(),
            method: v.to_string(),
            destination: v.to_string(),
            reason: v.to_string(),
            txid: v.to_string(),
            ..Default::default()
        };
        logs::record_auth_event(h.store.conn(), &ev, &format!("{v}#{i}")).unwrap();
    }
    logs::audit(h.store.conn(), hostile[3], hostile[0], &big).unwrap();
    // A NUL and bytes that are not UTF-8, written past rusqlite's checks.
    h.store
        .conn()
        .execute_batch(
            "INSERT INTO auth_log (ts, user, service, outcome, reason, event)
             VALUES (1, 'nul', 'sshd', 'deny', 'a' || char(0) || 'b', 'nul-row');
             INSERT INTO auth_log (ts, user, service, outcome, reason, event)
             VALUES (2, 'bad', 'sshd', 'deny', CAST(x'61ff62' AS TEXT), 'bad-row');
             INSERT INTO audit_log (ts, actor, action, detail)
             VALUES (3, 'root', 'x', 'c' || char(0) || 'd');",
        )
        .unwrap();
    assert_eq!(ship_all(&mut c, &mut h.store, "evil").unwrap(), (7, 2));
    let rows = central_rows(&mut c, "evil");
    for (i, v) in hostile.iter().enumerate() {
        let e = &rows[&format!("{v}#{i}")];
        for got in [
            &e.user, &e.service, &e.address, &e.tty, &e.method, &e.reason, &e.txid,
        ] {
            assert_eq!(got, v);
        }
        // Found by its own value, and only it.
        let found = central_auth_log(
            &mut c,
            &AuthFilter {
                user: Some(v.to_string()),
                ..Default::default()
            },
            Some("evil"),
        )
        .unwrap();
        assert_eq!(found.len(), 1, "{v:?}");
        assert_eq!(found[0].1.reason, *v);
    }
    assert_eq!(rows["nul-row"].reason, "a\\x00b");
    assert_eq!(rows["bad-row"].reason, "a\u{fffd}b");
    let details: Vec<String> = c
        .query("SELECT detail FROM audit_log ORDER BY origin_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(details, [big.clone(), "c\\x00d".to_string()]);
    // Other hosts' filters see none of it.
    let none = central_auth_log(&mut c, &AuthFilter::default(), Some("x' OR '1'='1")).unwrap();
    assert!(none.is_empty());
}

/// The server goes away in the middle of a shipment: the error says so, the cursor stays
/// where the central store's commits left it, and the next round completes with every row
/// once.
#[test]
fn central_gone_mid_ship() {
    let (url, mut c) = central();
    let mut h = Host::new("web3");
    h.add_auth(2500, 1_800_000_000);
    // The shipper's statement waits behind a lock another session holds, and its session
    // is ended from outside (as a server restart ends it) meanwhile.
    let mut locker = connect(&url);
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE auth_log IN EXCLUSIVE MODE")
        .unwrap();
    let pid: i32 = c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let shipper = std::thread::spawn(move || {
        let r = ship_auth_log(&mut c, &mut h.store, "web3", 1000);
        (r, h)
    });
    let mut admin = connect(&url);
    // Wait until the shipper's insert is blocked on the lock.
    for _ in 0..200 {
        let waiting: bool = admin
            .query_one(
                "SELECT count(*) > 0 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'",
                &[&pid],
            )
            .unwrap()
            .get(0);
        if waiting {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    admin
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .unwrap();
    let (r, mut h) = shipper.join().unwrap();
    let e = r.unwrap_err();
    assert!(matches!(e, mfa_core::Error::Central(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("shipping 1000 auth-log rows of web3"),
        "{e}"
    );
    assert_eq!(cursor(h.store.conn(), LOG_CURSOR).unwrap(), 0);
    tx.rollback().unwrap();
    let mut c = connect(&url);
    assert_eq!(
        ship_auth_log(&mut c, &mut h.store, "web3", 1000).unwrap(),
        2500
    );
    assert_eq!(central_rows(&mut c, "web3"), expected_rows(&h));

    // The server itself stopped: an error naming the central store, the cursor unmoved;
    // back, and the rows shipped once.
    let mut server = pg::Pg::start();
    let (url, mut c) = central_on(&server);
    let mut h = Host::new("web4");
    h.add_auth(1500, 1_800_000_000);
    assert_eq!(
        ship_auth_log(&mut c, &mut h.store, "web4", 1000).unwrap(),
        1500
    );
    h.add_auth(700, 1_800_100_000);
    server.stop();
    let e = ship_auth_log(&mut c, &mut h.store, "web4", 1000).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("central store: shipping auth_log rows of web4"),
        "{e}"
    );
    assert_eq!(cursor(h.store.conn(), LOG_CURSOR).unwrap(), 1500);
    // Not back yet: connecting fails, saying so.
    let Err(e) = try_connect(&server, &url) else {
        panic!("connected to a stopped server")
    };
    assert!(matches!(e, mfa_core::Error::Central(_)), "{e:?}");
    server.start_again();
    let mut c = connect_on(&server, &url);
    assert_eq!(
        ship_auth_log(&mut c, &mut h.store, "web4", 1000).unwrap(),
        700
    );
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), 2200);
    assert_eq!(central_rows(&mut c, "web4"), expected_rows(&h));
}

/// `log show`'s filters read the central log as they read a host's own: for each filter,
/// the central rows of a host are that host's local rows; without a host, both hosts'.
#[test]
fn central_filters_match_local_ones() {
    let (_, mut c) = central();
    let mut a = Host::new("ha");
    let mut b = Host::new("hb");
    a.add_auth(400, 1_800_000_000);
    b.add_auth(300, 1_800_000_100);
    ship_all(&mut c, &mut a.store, "ha").unwrap();
    ship_all(&mut c, &mut b.store, "hb").unwrap();
    let filters = [
        AuthFilter::default(),
        AuthFilter {
            user: Some("u2".into()),
            ..Default::default()
        },
        AuthFilter {
            address: Some(IpRange::parse_any("10.1.0.0/16").unwrap()),
            ..Default::default()
        },
        AuthFilter {
            address: Some(IpRange::parse_any("10.0.0.5").unwrap()),
            service: Some("sshd".into()),
            ..Default::default()
        },
        AuthFilter {
            address: Some(IpRange::parse_any("::/0").unwrap()),
            ..Default::default()
        },
        AuthFilter {
            outcome: Some("deny".into()),
            since: Some(1_800_000_150),
            until: Some(1_800_000_300),
            ..Default::default()
        },
        AuthFilter {
            service: Some("sudo".into()),
            limit: Some(7),
            ..Default::default()
        },
        AuthFilter {
            limit: Some(1),
            ..Default::default()
        },
    ];
    for f in &filters {
        for h in [&a, &b] {
            let want: Vec<(String, AuthEvent)> = h
                .local(f)
                .into_iter()
                .map(|mut e| {
                    e.id = 0;
                    (h.name.clone(), e)
                })
                .collect();
            let got = strip(central_auth_log(&mut c, f, Some(&h.name)).unwrap());
            assert_eq!(got, want, "{f:?} on {}", h.name);
        }
        let all = central_auth_log(&mut c, f, None).unwrap();
        let (na, nb) = (
            all.iter().filter(|(h, _)| h == "ha").count(),
            all.iter().filter(|(h, _)| h == "hb").count(),
        );
        match f.limit {
            None => assert_eq!((na, nb), (a.local(f).len(), b.local(f).len()), "{f:?}"),
            Some(l) => assert_eq!(na + nb, l as usize, "{f:?}"),
        }
        // Oldest first, as on one host.
        assert!(all.windows(2).all(|w| w[0].1.time <= w[1].1.time), "{f:?}");
    }
    assert_eq!(
        central_auth_log(&mut c, &filters[7], None).unwrap()[0]
            .1
            .time,
        1_800_000_399
    );
}

#[test]
fn heartbeats_and_status() {
    let (_, mut c) = central();
    assert_eq!(hosts::status(&mut c).unwrap(), (0, vec![]));
    for (name, generation, queue) in [("web1", 3, 2), ("web2", 1, 0)] {
        hosts::heartbeat(
            &mut c,
            &HostReport {
                name: name.into(),
                incarnation: format!("i-{name}"),
                generation,
                queue,
                failed: 1,
                outbox: 4,
                last_error: String::new(),
                version: "0.1.0".into(),
            },
        )
        .unwrap();
    }
    c.batch_execute(
        "INSERT INTO changes (origin, incarnation, origin_id, schema, body, created)
         SELECT 'web1', 'i-web1', g, 8, '\\x7b7d', now() - interval '90 seconds' + g * interval '1 second'
         FROM generate_series(1, 3) g;
         UPDATE hosts SET last_contact = now() - interval '10 minutes' WHERE name = 'web2';",
    )
    .unwrap();
    hosts::report_error(&mut c, "web2", "apply: no\0such table").unwrap();
    let (newest, list) = hosts::status(&mut c).unwrap();
    assert_eq!(newest, 3);
    assert_eq!(list.len(), 2);
    let (w1, w2) = (&list[0], &list[1]);
    assert_eq!(
        (w1.name.as_str(), w1.generation, w1.behind, w1.behind_secs),
        ("web1", 3, 0, None)
    );
    assert_eq!((w1.queue, w1.failed, w1.outbox), (2, 1, 4));
    assert!(w1.last_contact_secs <= 5, "{w1:?}");
    assert_eq!((w2.generation, w2.behind), (1, 2));
    // Behind since gen 2 was made, 88 s ago.
    assert!((86..=95).contains(&w2.behind_secs.unwrap()), "{w2:?}");
    assert!((598..=610).contains(&w2.last_contact_secs), "{w2:?}");
    assert_eq!(w2.last_error, "apply: no\\x00such table");
    // A heartbeat clears the error and counts as contact.
    hosts::heartbeat(
        &mut c,
        &HostReport {
            name: "web2".into(),
            generation: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let (_, list) = hosts::status(&mut c).unwrap();
    assert_eq!((list[1].behind, list[1].last_error.as_str()), (0, ""));
    assert!(list[1].last_contact_secs <= 5);
}

#[test]
fn spool_counts_as_sender_status() {
    let dir = tempfile::tempdir().unwrap();
    for (sub, n) in [("new", 3), ("cur", 1), ("failed", 2)] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
        for i in 0..n {
            std::fs::write(dir.path().join(format!("{sub}/{i}.json")), "{}").unwrap();
        }
    }
    std::fs::write(dir.path().join("failed/0.reason"), "x").unwrap();
    assert_eq!(hosts::spool_counts(dir.path()).unwrap(), (4, 2));
    let e = hosts::spool_counts(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

/// Central ingestion rate with many hosts shipping at once (not run by default):
/// `MFA_BENCH_HOSTS=100 MFA_BENCH_ROWS=2000 cargo test --release -p mfa-fleet --test logs
/// -- --ignored --nocapture ingestion_rate`. The hosts' databases are filled first; the
/// time is from the first shipment to the last commit, 16 connections at once.
#[test]
#[ignore]
fn ingestion_rate() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (hosts_n, rows) = (env("MFA_BENCH_HOSTS", 100), env("MFA_BENCH_ROWS", 2000));
    let (url, mut c) = central();
    let hosts: Vec<Host> = (0..hosts_n)
        .map(|i| {
            let mut h = Host::new(&format!("h{i:03}"));
            h.add_auth(rows, 1_800_000_000);
            h
        })
        .collect();
    let queue = std::sync::Mutex::new(hosts);
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let mut c = connect(&url);
                loop {
                    let Some(mut h) = queue.lock().unwrap().pop() else {
                        return;
                    };
                    let name = h.name.clone();
                    assert_eq!(
                        ship_auth_log(&mut c, &mut h.store, &name, 1000).unwrap(),
                        rows
                    );
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let total = (hosts_n * rows) as i64;
    assert_eq!(count(&mut c, "SELECT count(*) FROM auth_log"), total);
    println!(
        "central ingestion: {hosts_n} hosts x {rows} rows = {total} rows in {secs:.2} s: {:.0} rows/s",
        total as f64 / secs
    );
}
