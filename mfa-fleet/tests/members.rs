//! Hosts joining a fleet through the real binaries and a real PostgreSQL (started by the
//! tests): `mfa-admin migrate --to postgres` makes the first, `fleet join` the others,
//! `mfa-fleetd --once` keeps each in step; a change made on one host's mfa-admin reaches
//! another's database and policy snapshot; a change made while the store is down waits in
//! the outbox and goes out when it returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/hosts.rs"]
mod hosts;
#[path = "support/pg.rs"]
mod pg;

use std::path::Path;
use std::process::{Command, Output};

use hosts::{Host, bin};
use mfa_core::snapshot::Snapshot;

/// One round of the host's follower.
fn fleetd_once(h: &Host) -> Output {
    Command::new(bin("mfa-fleetd"))
        .arg("--config")
        .arg(h.config())
        .arg("--once")
        .output()
        .unwrap()
}

fn in_snapshot(h: &Host, user: &str) -> bool {
    snapshot_has(&h.database(), user)
}

fn snapshot_has(db: &Path, user: &str) -> bool {
    Snapshot::open(db)
        .unwrap()
        .unwrap()
        .lookup(user)
        .unwrap()
        .is_some()
}

fn is_member(h: &Host) -> bool {
    let c = rusqlite::Connection::open(h.database()).unwrap();
    mfa_core::store::fleet::host(&c).unwrap().is_some()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn migrate_join_change_and_an_outage() {
    let mut pg = pg::Pg::start();
    let a = Host::new("a", &pg.store_toml("a", true));
    a.ok(&["user", "add", "ann"]);
    let (out, _) = a.ok(&["migrate", "--to", "postgres", &pg.url()]);
    assert!(out.contains("first generation"), "{out}");
    // A second migrate into the same store is refused: that is a join.
    let again = Host::new("x", &pg.store_toml("x", true));
    let refused = again.admin(&["migrate", "--to", "postgres", &pg.url()]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("fleet join"),
        "{}",
        stderr(&refused)
    );
    assert!(
        !is_member(&again),
        "a refused migrate leaves the store its own"
    );
    // A join with no fleet yet in a store is refused the same way.
    let url = pg.new_database();
    let mut c = mfa_fleet::connect::connect(&mfa_core::store_config::StoreConfig {
        backend: mfa_core::store_config::Backend::Postgres,
        url: Some(url.clone()),
        password_file: Some(pg.password_file()),
        ..Default::default()
    })
    .unwrap();
    mfa_fleet::schema::migrate(&mut c).unwrap();
    drop(c);
    let empty = Host::new("y", &pg.store_toml_for(&url, "y", true));
    let refused = empty.admin(&["fleet", "join"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        stderr(&refused).contains("holds no fleet yet"),
        "{}",
        stderr(&refused)
    );
    assert!(!is_member(&empty));

    let b = Host::new("b", &pg.store_toml("b", true));
    b.ok(&["user", "add", "local"]);
    let refused = b.admin(&["fleet", "join"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--replace-local-rules"));
    b.ok(&["fleet", "join", "--replace-local-rules"]);
    assert!(in_snapshot(&b, "ann"));
    assert!(!in_snapshot(&b, "local"), "its own rules replaced");

    // A change on A reaches B's database and snapshot through mfa-fleetd.
    let added = a.admin(&["user", "add", "bob"]);
    assert!(added.status.success());
    // Shipped at once, silently: no warning, nothing left waiting in A's outbox.
    assert!(!stderr(&added).contains("warning"), "{}", stderr(&added));
    assert_eq!(
        a.count("SELECT count(*) FROM fleet_outbox WHERE shipped = 0"),
        0
    );
    let run = fleetd_once(&b);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(in_snapshot(&b, "bob"));

    // The store goes away: B keeps its rules, a change on B waits in its outbox.
    pg.stop();
    let added = b.admin(&["user", "add", "carol"]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("reaches the fleet when"),
        "{}",
        stderr(&added)
    );
    assert!(in_snapshot(&b, "carol"), "applies here at once");
    let run = fleetd_once(&b);
    assert_eq!(run.status.code(), Some(1));
    let status = mfa_core::fleet_status::read(&b.database()).unwrap();
    assert!(!status.connected);
    assert_eq!(status.outbox, 1);
    assert!(!status.last_error.is_empty());
    let (state, detail) = doctor_fleet(&b);
    assert_eq!(state, "warn", "{detail}");
    assert!(
        detail.contains("unreachable") && detail.contains("1 change(s)"),
        "{detail}"
    );
    pg.start_again();
    assert!(fleetd_once(&b).status.success());
    assert!(fleetd_once(&a).status.success());
    assert!(
        in_snapshot(&a, "carol"),
        "the change made meanwhile applies on A"
    );
    let status = mfa_core::fleet_status::read(&b.database()).unwrap();
    assert!(status.connected && status.outbox == 0, "{status:?}");
    let (state, detail) = doctor_fleet(&b);
    assert_eq!(state, "ok", "{detail}");
    assert!(
        detail.contains(&format!("generation {}", status.generation)),
        "{detail}"
    );
}

/// `doctor`'s fleet check: its status and detail.
fn doctor_fleet(h: &Host) -> (String, String) {
    let out = h.admin(&["--json", "doctor"]);
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "fleet")
        .unwrap_or_else(|| panic!("no fleet check: {checks}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["detail"].as_str().unwrap().to_string(),
    )
}
