//! Hosts joining a fleet through the real binaries and a real PostgreSQL (started by the
//! tests): `mfa-admin migrate --to postgres` makes the first, `fleet join` the others,
//! `mfa-fleetd --once` keeps each in step; a change made on one host's mfa-admin reaches
//! another's database and policy snapshot; a change made while the store is down waits in
//! the outbox and goes out when it returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mfa_core::snapshot::Snapshot;

/// A binary of the workspace (built by `cargo build --workspace`, as `make test` does).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: cargo build --workspace first",
        p.display()
    );
    p
}

/// A simulated host: its own configuration, database, spool and runtime directory.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Host {
    pub fn new(name: &str, store: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("db")).unwrap();
        std::fs::write(
            root.join("mfa.toml"),
            format!(
                "[paths]\ndatabase = \"{r}/db/mfa.db\"\nspool = \"{r}/spool\"\nruntime = \"{r}/run\"\n\
                 [sender]\nuser = \"nobody\"\n{store}",
                r = root.display()
            ),
        )
        .unwrap();
        let h = Host {
            dir,
            name: name.to_string(),
        };
        h.ok(&["init"]);
        h
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("mfa.toml")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("db/mfa.db")
    }

    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new(bin("mfa-admin"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "{} mfa-admin {args:?}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn fleetd_once(&self) -> Output {
        Command::new(bin("mfa-fleetd"))
            .arg("--config")
            .arg(self.config())
            .arg("--once")
            .output()
            .unwrap()
    }

    pub fn user_in_snapshot(&self, user: &str) -> bool {
        snapshot_has(&self.database(), user)
    }
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
    let out = a.ok(&["migrate", "--to", "postgres", &pg.url()]);
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
    assert!(b.user_in_snapshot("ann"));
    assert!(!b.user_in_snapshot("local"), "its own rules replaced");

    // A change on A reaches B's database and snapshot through mfa-fleetd.
    let added = a.admin(&["user", "add", "bob"]);
    assert!(added.status.success());
    assert!(stderr(&added).contains("change sent"), "{}", stderr(&added));
    let run = b.fleetd_once();
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(b.user_in_snapshot("bob"));

    // The store goes away: B keeps its rules, a change on B waits in its outbox.
    pg.stop();
    let added = b.admin(&["user", "add", "carol"]);
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stderr(&added).contains("reaches the fleet when"),
        "{}",
        stderr(&added)
    );
    assert!(b.user_in_snapshot("carol"), "applies here at once");
    let run = b.fleetd_once();
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
    assert!(b.fleetd_once().status.success());
    assert!(a.fleetd_once().status.success());
    assert!(
        a.user_in_snapshot("carol"),
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
