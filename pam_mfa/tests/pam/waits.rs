//! Bounded waits: a lock held by another process (the user's state file, the policy lock, the
//! database) fails a login within a few seconds instead of hanging it (before: as long as the
//! holder held it, 30 s and more), and the failure is logged. A login that cannot read the
//! rules is in the auth log's inbox too, not only in syslog.

use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use super::Install;
use super::harness::{PAM_AUTH_ERR, PAM_PERM_DENIED};

/// The module's bound (mfa_core::files::LOCK_WAIT) and a margin for a loaded machine.
const BOUND: Duration = Duration::from_secs(3 + 3);

/// A process holding an exclusive flock on `path` (flock(1)); killed when dropped.
struct Holder(std::process::Child);

impl Holder {
    fn flock(path: &Path) -> Holder {
        let mut child = std::process::Command::new("flock")
            .args([
                "-x",
                path.to_str().unwrap(),
                "sh",
                "-c",
                "echo held; exec sleep 60",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("flock(1) (util-linux)");
        Holder::ready(&mut child);
        Holder(child)
    }

    /// A process holding the database's write lock (BEGIN EXCLUSIVE).
    fn database(db: &Path) -> Holder {
        let script = "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('held',flush=True)\ntime.sleep(60)\n";
        let mut child = std::process::Command::new("python3")
            .args(["-c", script, db.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        Holder::ready(&mut child);
        Holder(child)
    }

    fn ready(child: &mut std::process::Child) {
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "held");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The user's login-state file (the only one in the directory).
fn state_file(i: &Install) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(i.path("db/mfa.db-users"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    files.remove(0)
}

#[test]
fn a_held_state_file_lock_fails_the_login_within_the_bound() {
    for mode in ["secure", "safe"] {
        let i = Install::new();
        i.user("ann", &["ann@example.com"]);
        i.set("fail_mode", mode);
        mfa_core::grants::record(&i.path("db/mfa.db"), "ann", "other", "", 1).unwrap();
        let _held = Holder::flock(&state_file(&i));
        let t = Instant::now();
        let r = i.auth(
            "ann",
            None,
            Box::new(|p: &str| panic!("asked {p} without the login state")),
        );
        let spent = t.elapsed();
        assert!(spent < BOUND, "{mode}: {spent:?}");
        // A denial in both fail modes: a held lock is no outage (under `safe` it would let
        // in whoever keeps a login stopped while it holds the lock).
        assert_eq!(r.code, PAM_AUTH_ERR, "{mode}: {r:?}");
        let log = i.outcomes();
        assert!(
            log[0].contains("login state busy") && log[0].contains("still locked"),
            "{log:?}"
        );
    }
}

/// The lockout write waits for the policy lock and for the database's write lock, each at
/// most a few seconds; the user was asked, so it is a denial in both fail modes.
#[test]
fn held_policy_and_database_locks_fail_the_lockout_write_within_the_bound() {
    for which in ["policy", "database"] {
        for mode in ["secure", "safe"] {
            let i = Install::new();
            i.user("ann", &["ann@example.com"]);
            i.set("fail_mode", mode);
            i.set("lockout_after", "1");
            let db = i.path("db/mfa.db");
            let _held = if which == "policy" {
                let p = i.path("db/mfa.db-policy.lock");
                if !p.exists() {
                    std::fs::write(&p, b"").unwrap();
                }
                Holder::flock(&p)
            } else {
                Holder::database(&db)
            };
            let mut asked = None;
            let r = i.auth(
                "ann",
                None,
                Box::new(|_: &str| {
                    asked = Some(Instant::now());
                    Some(b"0000000".to_vec())
                }),
            );
            let spent = asked.unwrap().elapsed();
            assert!(spent < BOUND, "{which} {mode}: {spent:?}");
            assert_eq!(r.code, PAM_AUTH_ERR, "{which} {mode}: {r:?}");
            drop(_held);
            let log = i.outcomes();
            assert!(log[0].starts_with("deny:"), "{log:?}");
            // The lockout holds anyway (the state file).
            let r = i.auth("ann", None, Box::new(|p: &str| panic!("asked {p}")));
            assert_eq!(r.code, PAM_AUTH_ERR);
        }
    }
}

/// The rules cannot be read (no snapshot, a broken database): the outcome reaches the auth
/// log's inbox, not only syslog.
#[test]
fn rules_that_cannot_be_read_are_in_the_auth_log() {
    for (mode, outcome) in [
        ("secure", "unavailable-deny"),
        ("safe", "unavailable-ignore"),
    ] {
        let i = Install::with_args(&format!("fail_mode={mode}"));
        i.user("ann", &["ann@example.com"]);
        let db = i.path("db/mfa.db");
        std::fs::remove_file(mfa_core::snapshot::path_for(&db)).unwrap();
        std::fs::write(&db, vec![0x5a; 8192]).unwrap();
        let r = i.auth(
            "ann",
            Some("192.0.2.9"),
            Box::new(|p: &str| panic!("asked {p}")),
        );
        assert_ne!(r.code, 0);
        let inbox = std::fs::read_to_string(mfa_core::authlog::path_for(&db)).unwrap();
        let lines: Vec<serde_json::Value> = inbox
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{inbox}");
        assert_eq!(lines[0]["outcome"], outcome);
        assert_eq!(lines[0]["user"], "ann");
        assert_eq!(lines[0]["address"], "192.0.2.9");
        assert!(
            lines[0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("cannot read the rules"),
            "{inbox}"
        );
    }
}

/// A process that holds the auth-log inbox (a hung `mfa-admin` moving it into the database)
/// delays a login by at most the bound: the decision stands, only its log line waits and
/// then goes to syslog alone.
#[test]
fn a_held_auth_log_inbox_delays_a_login_at_most_the_bound() {
    let i = Install::new();
    i.set("unassigned", "allow");
    let inbox = i.path("db/mfa.db-authlog");
    std::fs::write(&inbox, b"").unwrap();
    let held = Holder::flock(&inbox);
    let t = Instant::now();
    let r = i.auth("nobody-here", None, Box::new(|p: &str| panic!("asked {p}")));
    let spent = t.elapsed();
    assert!(spent < BOUND, "{spent:?}");
    // unassigned=allow: PAM_IGNORE, which the test stack turns into PAM_PERM_DENIED.
    assert_eq!(r.code, PAM_PERM_DENIED, "{r:?}");
    drop(held);
}
