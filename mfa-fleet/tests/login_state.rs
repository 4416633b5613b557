//! The login state a fleet shares, between two hosts' login-state directories and a real
//! PostgreSQL: a TOTP step accepted on one host is a replay on the other after a round;
//! failures counted on one host add to the other's count, the very first one of the fleet
//! included; a count back to none clears the other's; a count that ran out and grew again
//! between two looks is shipped as both.

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
    let server = pg::Pg::shared();
    let url = server.new_database();
    let mut c = mfa_fleet::connect::connect(&StoreConfig {
        backend: Backend::Postgres,
        url: Some(url),
        password_file: Some(server.password_file()),
        ..Default::default()
    })
    .unwrap();
    mfa_fleet::schema::migrate(&mut c).unwrap();
    c
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
