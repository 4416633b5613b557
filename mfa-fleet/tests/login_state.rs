//! The login state a fleet shares, between two hosts' login-state directories and a real
//! PostgreSQL: a TOTP step accepted on one host is a replay on the other after a round;
//! failures counted on one host add to the other's count, the very first one of the fleet
//! included; a count back to none clears the other's; a count that ran out and grew again
//! between two looks is shipped as both. After the store lost its newest rows and went
//! back with its sequences (a failover to a standby that lagged, simulated with DELETE and
//! setval, or with a restart in between), new steps and failure events are still taken,
//! none twice, and the steps the store lost go out again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pg.rs"]
mod pg;

use std::path::PathBuf;

use mfa_core::state;
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_fleet::login_state::LoginState;
use postgres::Client;

struct Host {
    _dir: tempfile::TempDir,
    db: PathBuf,
    name: &'static str,
    shared: LoginState,
}

impl Host {
    fn new(name: &'static str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        let shared = LoginState::new(&db).unwrap();
        Host {
            _dir: dir,
            db,
            name,
            shared,
        }
    }

    fn round(&mut self, c: &mut Client) -> (usize, usize) {
        self.shared.round(c, self.name).unwrap()
    }
}

fn central() -> Client {
    central_db().0
}

/// A connection to a new migrated database of the shared server, and its URL.
fn central_db() -> (Client, String) {
    let server = pg::Pg::shared();
    let url = server.new_database();
    (connect_to(server, &url), url)
}

fn connect_to(server: &pg::Pg, url: &str) -> Client {
    let mut c = mfa_fleet::connect::connect(&StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file: Some(server.password_file()),
        ..Default::default()
    })
    .unwrap();
    mfa_fleet::schema::migrate(&mut c).unwrap();
    c
}

/// What a failover to a standby that lagged does to `table` of database `db`: its newest
/// `n` rows are gone and its sequence `seq` goes back to the highest kept (the next rows
/// re-use the lost rows' seq).
fn lose_newest(server: &pg::Pg, db: &str, table: &str, seq: &str, n: i64) {
    server.psql_in(
        db,
        &format!(
            "DELETE FROM {table} WHERE seq > (SELECT max(seq) - {n} FROM {table});
             SELECT setval('{seq}', (SELECT max(seq) FROM {table}));"
        ),
    );
}

/// `user`'s failure count in `h`'s file.
fn count(h: &Host, user: &str) -> u32 {
    state::failures(&h.db, user).count
}

#[test]
fn a_totp_step_used_on_one_host_is_a_replay_on_the_other() {
    let mut c = central();
    let (mut a, mut b) = (Host::new("a"), Host::new("b"));
    a.round(&mut c);
    b.round(&mut c);
    let step = 59_000_000;
    assert!(state::accept_step(&a.db, "ann", step).unwrap());
    assert_eq!(a.round(&mut c).0, 1, "A ships the step");
    assert_eq!(b.round(&mut c).1, 1, "B takes it");
    assert!(
        !state::accept_step(&b.db, "ann", step).unwrap(),
        "the same code on B is a replay"
    );
    assert!(
        state::accept_step(&b.db, "ann", step + 1).unwrap(),
        "the next one is not"
    );
    // B's own raise goes out; A's file follows; nothing comes back as news.
    assert_eq!(b.round(&mut c).0, 1);
    a.round(&mut c);
    assert!(!state::accept_step(&a.db, "ann", step + 1).unwrap());
    assert_eq!(a.round(&mut c), (0, 0), "an echo is not shipped again");
}

#[test]
fn failures_count_across_hosts_and_a_success_clears_them() {
    let mut c = central();
    let (mut a, mut b) = (Host::new("a"), Host::new("b"));
    a.round(&mut c);
    b.round(&mut c);
    // The fleet's very first failure event reaches B.
    state::add_failures(&a.db, "ann", 1, 100).unwrap();
    a.round(&mut c);
    b.round(&mut c);
    assert_eq!(state::failures(&b.db, "ann").count, 1);
    state::add_failures(&a.db, "ann", 2, 101).unwrap();
    state::add_failures(&b.db, "ann", 1, 102).unwrap();
    a.round(&mut c);
    b.round(&mut c);
    a.round(&mut c);
    assert_eq!(state::failures(&a.db, "ann").count, 4);
    assert_eq!(state::failures(&b.db, "ann").count, 4);
    // A success on B: A's count goes too.
    state::clear_failures(&b.db, "ann").unwrap();
    b.round(&mut c);
    a.round(&mut c);
    assert_eq!(state::failures(&a.db, "ann").count, 0);
    // A count that went back to none and grew again between two looks: both travel.
    state::add_failures(&a.db, "ann", 3, 103).unwrap();
    a.round(&mut c);
    b.round(&mut c);
    assert_eq!(state::failures(&b.db, "ann").count, 3);
    state::clear_failures(&a.db, "ann").unwrap();
    state::add_failures(&a.db, "ann", 1, 104).unwrap();
    a.round(&mut c);
    b.round(&mut c);
    assert_eq!(state::failures(&b.db, "ann").count, 1);
}

#[test]
fn failure_events_after_the_ids_went_back_are_taken_and_none_twice() {
    let (mut c, url) = central_db();
    let server = pg::Pg::shared();
    let (mut a, mut b, mut late) = (Host::new("a"), Host::new("b"), Host::new("late"));
    for h in [&mut a, &mut b, &mut late] {
        h.round(&mut c);
    }
    let before = ["ann", "bob", "cy", "dan", "eve"];
    for (i, u) in before.iter().enumerate() {
        state::add_failures(&a.db, u, 1, 100 + i as i64).unwrap();
        assert_eq!(a.round(&mut c).0, 1, "one event per round");
    }
    for h in [&mut b, &mut late] {
        assert_eq!(h.round(&mut c).1, 5);
    }
    // The store loses the newest 3 events (cy, dan, eve) and its ids go back: B's and
    // late's cursors are above the central max.
    lose_newest(server, &url, "failures", "failures_seq_seq", 3);
    state::add_failures(&a.db, "fay", 2, 200).unwrap();
    a.round(&mut c);
    assert_eq!(
        b.round(&mut c).1,
        1,
        "B takes fay's event (below its cursor), and no kept event again"
    );
    assert_eq!(count(&b, "fay"), 2);
    // New events past the old cursor: they re-use the lost events' ids.
    let after = ["gus", "hal", "ida", "jon"];
    for u in after {
        state::add_failures(&a.db, u, 1, 300).unwrap();
        a.round(&mut c);
    }
    assert_eq!(b.round(&mut c).1, 4, "B: the events re-using lost ids");
    // Late did not look while the ids went back: the event at its cursor is another one.
    assert_eq!(
        late.round(&mut c).1,
        5,
        "late: fay's event and the 4 after it"
    );
    for h in [&b, &late] {
        for u in before.iter().chain(&after) {
            assert_eq!(count(h, u), 1, "host {}: {u}", h.name);
        }
        assert_eq!(count(h, "fay"), 2, "host {}", h.name);
    }
    assert_eq!(b.round(&mut c), (0, 0), "nothing more to take");
}

#[test]
fn steps_after_the_ids_went_back_are_taken_and_lost_steps_go_out_again() {
    let (mut c, url) = central_db();
    let server = pg::Pg::shared();
    let (mut a, mut b) = (Host::new("a"), Host::new("b"));
    a.round(&mut c);
    b.round(&mut c);
    let step = 59_000_000;
    for (i, u) in ["u1", "u2", "u3", "u4"].into_iter().enumerate() {
        assert!(state::accept_step(&a.db, u, step + i as u64).unwrap());
        assert_eq!(a.round(&mut c).0, 1);
    }
    assert_eq!(b.round(&mut c).1, 4);
    lose_newest(server, &url, "totp_steps", "totp_steps_seq", 2);
    // A code used on A now gets a seq below B's cursor.
    assert!(state::accept_step(&a.db, "u5", step).unwrap());
    a.round(&mut c);
    assert_eq!(b.round(&mut c).1, 1, "B takes u5's step");
    assert!(
        !state::accept_step(&b.db, "u5", step).unwrap(),
        "u5's code on B is a replay"
    );
    // u3's and u4's steps, lost by the store, go out again.
    a.round(&mut c);
    b.round(&mut c);
    assert_eq!(
        server.psql_in(
            &url,
            "SELECT string_agg(\"user\" || '=' || step, ',' ORDER BY \"user\") FROM totp_steps"
        ),
        format!(
            "u1={},u2={},u3={},u4={},u5={step}",
            step,
            step + 1,
            step + 2,
            step + 3
        )
    );
    assert_eq!(b.round(&mut c), (0, 0));
}

#[test]
fn after_a_restart_that_lost_rows_every_new_step_is_taken_and_no_failure_twice() {
    let mut server = pg::Pg::start();
    let url = server.url();
    let mut c = connect_to(&server, &url);
    let (mut a, mut b) = (Host::new("a"), Host::new("b"));
    a.round(&mut c);
    b.round(&mut c);
    let step = 59_000_000;
    for (i, u) in ["u1", "u2", "u3", "u4"].into_iter().enumerate() {
        state::accept_step(&a.db, u, step + i as u64).unwrap();
        state::add_failures(&a.db, u, 1, 100).unwrap();
        a.round(&mut c);
    }
    assert_eq!(b.round(&mut c).1, 8);
    // The store loses 2 steps and goes back with its sequence, then restarts (another
    // server for the followers); the new steps' seqs pass B's cursor before B looks.
    lose_newest(&server, &url, "totp_steps", "totp_steps_seq", 2);
    drop(c);
    server.stop();
    server.start_again();
    let mut c = connect_to(&server, &url);
    for u in ["u5", "u6", "u7"] {
        state::accept_step(&a.db, u, step).unwrap();
        a.round(&mut c);
    }
    state::add_failures(&a.db, "u1", 1, 200).unwrap();
    a.round(&mut c);
    let (_, taken) = b.round(&mut c);
    assert_eq!(
        taken, 4,
        "B: the 3 new steps and the new failure, nothing twice"
    );
    for u in ["u5", "u6", "u7"] {
        assert!(
            !state::accept_step(&b.db, u, step).unwrap(),
            "{u}: not a replay on B"
        );
    }
    assert_eq!(count(&b, "u1"), 2);
    for u in ["u2", "u3", "u4"] {
        assert_eq!(count(&b, u), 1, "{u}");
    }
}
