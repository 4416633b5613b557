//! `mfa-admin maintain`, the daily timer's command: the auth log kept for `log_keep_days`,
//! the full challenge sweep (and what it must leave alone), the policy snapshot checked and
//! rewritten until the module's read agrees with the database, a dead database, a caller
//! that is not root, and a run beside logins and another `maintain`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::snapshot::{self, Snapshot};
use mfa_core::state::{self, Challenge};
use mfa_core::store::Store;
use mfa_core::store::logs::AuthEvent;
use serde_json::Value;

use super::{Env, Out};

const DAY: i64 = 86_400;

/// Runs `maintain --json`, killed if it takes over 60 s (a sweep blocked on a FIFO).
fn maintain(env: &Env) -> (Out, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config)
        .args(["--json", "maintain"])
        .env_remove("MFA_CONFIG")
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("maintain did not finish in 60 s (blocked on an entry?)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = super::out(child.wait_with_output().unwrap());
    let v = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("maintain --json printed no JSON ({e}): {out:?}"));
    (out, v)
}

/// Runs `maintain --json` and asserts that it succeeded.
fn maintain_ok(env: &Env) -> Value {
    let (out, v) = maintain(env);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(v["ok"], true, "{v}");
    v
}

fn event(user: &str, time: i64) -> AuthEvent {
    AuthEvent {
        time,
        user: user.into(),
        service: "sshd".into(),
        address: "192.0.2.7".into(),
        outcome: "success".into(),
        method: "passcode".into(),
        reason: "passcode accepted".into(),
        ..AuthEvent::default()
    }
}

/// Users in the auth log, as `log show` lists them.
fn logged_users(env: &Env) -> Vec<String> {
    let mut users: Vec<String> = env
        .json(&["log", "show"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["user"].as_str().unwrap().to_string())
        .collect();
    users.sort();
    users
}

fn audit_purges(env: &Env) -> usize {
    env.json(&["audit", "show"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "log purge")
        .count()
}

#[test]
fn the_auth_log_keeps_log_keep_days() {
    let env = Env::new();
    env.ok(&["settings", "set", "log_keep_days=30"]);
    let now = mfa_core::now();
    // Written by the module into its inbox: maintain moves them into the database first.
    for (user, age) in [("old1", 100), ("old2", 31), ("new1", 29), ("new2", 0)] {
        mfa_core::authlog::append(&env.db(), &event(user, now - age * DAY - 60)).unwrap();
    }
    let v = maintain_ok(&env);
    let t = &v["auth_log"];
    assert_eq!(
        (t["moved"].as_u64(), t["deleted"].as_u64()),
        (Some(4), Some(2)),
        "{v}"
    );
    assert_eq!(t["keep_days"], 30);
    let cutoff = t["before"].as_i64().unwrap();
    assert!(
        (now - 30 * DAY..=now - 30 * DAY + 60).contains(&cutoff),
        "{cutoff}"
    );
    assert_eq!(logged_users(&env), ["new1", "new2"]);
    assert_eq!(audit_purges(&env), 1, "the purge is in the audit log");
    // The text line says it, with the counts.
    let out = env.ok(&["maintain"]);
    let line = out.lines().find(|l| l.starts_with("auth log: ")).unwrap();
    assert!(
        line.contains("moved 0 entries") && line.contains("deleted 0 entries"),
        "{line}"
    );
    assert!(line.contains("log_keep_days = 30"), "{line}");
    assert_eq!(out.lines().count(), 7, "one line per task: {out}");
    assert_eq!(logged_users(&env), ["new1", "new2"]);
    assert_eq!(audit_purges(&env), 1, "a purge of nothing is not audited");
}

#[test]
fn log_keep_days_0_keeps_everything() {
    let env = Env::new();
    let now = mfa_core::now();
    env.ok(&["settings", "set", "log_keep_days=0"]);
    for (user, age) in [("ancient", 3650), ("new", 0)] {
        mfa_core::authlog::append(&env.db(), &event(user, now - age * DAY)).unwrap();
    }
    let v = maintain_ok(&env);
    assert_eq!(v["auth_log"]["deleted"], 0, "{v}");
    assert_eq!(v["auth_log"]["moved"], 2, "{v}");
    assert!(
        v["auth_log"]["detail"]
            .as_str()
            .unwrap()
            .contains("kept every entry"),
        "{v}"
    );
    assert_eq!(logged_users(&env), ["ancient", "new"]);
    assert_eq!(audit_purges(&env), 0);
}

fn challenge(id: &str, user: &str, created: i64, expires: i64) -> Challenge {
    Challenge {
        id: id.into(),
        user: user.into(),
        service: "sshd".into(),
        address: String::new(),
        purpose: "login".into(),
        prefix: 'K',
        code_hash: vec![7; 32],
        destination: "a***@e***.com".into(),
        created,
        expires,
        attempts_left: 3,
        resends: 0,
    }
}

fn ids(db: &Path) -> Vec<String> {
    let mut v: Vec<String> = state::challenges(db)
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    v.sort();
    v
}

#[test]
fn expired_challenges_go_and_live_ones_stay() {
    let env = Env::new();
    let db = env.db();
    let now = mfa_core::now();
    // Abandoned logins: expired hours and days ago (more than a login's sweep looks at).
    for n in 0..300u32 {
        let c = challenge(
            &format!("a{n:04x}"),
            "ann",
            now - 2 * DAY,
            now - 2 * DAY + 600,
        );
        state::put_challenge(&db, &c).unwrap();
    }
    state::put_challenge(
        &db,
        &challenge("b001", "bob", now - 3 * 3600, now - 2 * 3600),
    )
    .unwrap();
    // Outstanding, and expired a minute ago (its login may still be at the prompt).
    state::put_challenge(&db, &challenge("c001", "cy", now - 10, now + 590)).unwrap();
    state::put_challenge(&db, &challenge("c002", "cy", now - 660, now - 60)).unwrap();
    let v = maintain_ok(&env);
    let t = &v["challenges"];
    assert_eq!(
        (t["expired"].as_u64(), t["kept"].as_u64()),
        (Some(301), Some(2)),
        "{v}"
    );
    assert_eq!(t["status"], "ok");
    assert_eq!(ids(&db), ["c001", "c002"]);
    let v = maintain_ok(&env);
    assert_eq!(v["challenges"]["expired"], 0, "{v}");
    assert_eq!(ids(&db), ["c001", "c002"]);
}

/// Hostile entries in the challenges directory: a symlink to an expired challenge elsewhere,
/// a symlink to a precious file, a FIFO, a directory, files with a newline, bytes that are not
/// UTF-8 and a path-like name in their names. None is followed, opened for a blocking read or
/// removed; the run goes on, removes the real expired challenge and says what it left alone.
#[test]
fn hostile_entries_in_the_challenges_directory() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    let db = env.db();
    let now = mfa_core::now();
    let expired = challenge("a001", "ann", now - 2 * DAY, now - 2 * DAY + 600);
    state::put_challenge(&db, &expired).unwrap();
    let cdir = state::challenges_dir(&db);
    let outside = env.path("elsewhere");
    std::fs::create_dir(&outside).unwrap();
    let target = outside.join("a002");
    std::fs::write(&target, serde_json::to_vec(&expired).unwrap()).unwrap();
    let precious = outside.join("precious");
    std::fs::write(&precious, b"keep me").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3 * 86_400);
    for p in [&target, &precious] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    std::os::unix::fs::symlink(&target, cdir.join("a002")).unwrap();
    std::os::unix::fs::symlink(&precious, cdir.join("a003")).unwrap();
    let fifo = cdir.join("a004");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::create_dir(cdir.join("a005")).unwrap();
    std::fs::write(cdir.join("a005/a006"), b"x").unwrap();
    let weird: Vec<PathBuf> = [&b"a007\n"[..], b"\xff\xfe\x1b[2J", b"..a007", b"-rf"]
        .iter()
        .map(|n| cdir.join(OsStr::from_bytes(n)))
        .collect();
    for w in &weird {
        std::fs::write(w, serde_json::to_vec(&expired).unwrap()).unwrap();
        std::fs::File::options()
            .write(true)
            .open(w)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let (out, v) = maintain(&env);
    assert_eq!(out.code, 0, "hostile entries do not fail the run: {out:?}");
    let t = &v["challenges"];
    assert_eq!(t["status"], "warn", "{v}");
    assert_eq!(t["expired"], 1, "{v}");
    assert_eq!(t["foreign"].as_array().unwrap().len(), 8, "{v}");
    let detail = t["detail"].as_str().unwrap();
    assert!(detail.contains("left alone 8 entries"), "{detail}");
    // The text line shows names escaped: no raw escape sequence reaches the terminal.
    let text = env.ok(&["maintain"]);
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(
        text.lines().count() == 7,
        "a name's newline made no line: {text:?}"
    );
    assert!(target.exists() && precious.exists());
    assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    for name in ["a002", "a003", "a004", "a005", "a005/a006"] {
        assert!(
            cdir.join(name).symlink_metadata().is_ok(),
            "{name} was removed"
        );
    }
    for w in &weird {
        assert!(w.exists(), "{w:?} was removed");
    }
    assert!(
        !cdir.join("a001").exists(),
        "the real expired challenge stays"
    );
    // The rest of the run happened.
    assert_eq!(v["snapshot"]["status"], "ok", "{v}");
    assert_eq!(v["auth_log"]["status"], "ok", "{v}");
}

/// What a login reads (the snapshot, verified as the module verifies it) agrees with the
/// database: its generation, and its bytes are those the database gives now.
fn module_read_agrees(env: &Env) -> bool {
    let db = env.db();
    let Ok(Some(generation)) = snapshot::verify(&db) else {
        return false;
    };
    let mut store = Store::open(&db).unwrap();
    let current = snapshot::current_generation(store.conn()).unwrap();
    let loaded = Snapshot::open(&db).unwrap().unwrap();
    let enabled = mfa_core::store::rules::settings(store.conn())
        .unwrap()
        .enabled;
    generation == current
        && loaded.settings().enabled == enabled
        && store.snapshot_matches().unwrap()
}

fn snapshot_finding(env: &Env) -> (String, String) {
    let v = maintain_ok(env);
    (
        v["snapshot"]["status"].as_str().unwrap().to_string(),
        v["snapshot"]["finding"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_missing_stale_corrupt_or_different_snapshot_is_rebuilt() {
    let env = Env::new();
    // (It edits a setting behind mfa-admin: not compared with the fleet at the end.)
    env.single_machine();
    env.ok(&["user", "add", "ann"]);
    let db = env.db();
    let snap = snapshot::path_for(&db);
    assert_eq!(snapshot_finding(&env), ("ok".into(), "sound".into()));
    assert!(module_read_agrees(&env));

    std::fs::remove_file(&snap).unwrap();
    assert_eq!(
        snapshot_finding(&env),
        ("repaired".into(), "missing".into())
    );
    assert!(module_read_agrees(&env));

    // A flipped bit in the users' blocks (the head's checksum still holds).
    let sound = std::fs::read(&snap).unwrap();
    let mut bad = sound.clone();
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    std::fs::write(&snap, &bad).unwrap();
    std::fs::set_permissions(&snap, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        snapshot_finding(&env),
        ("repaired".into(), "damaged".into())
    );
    assert_eq!(std::fs::read(&snap).unwrap(), sound);
    assert!(module_read_agrees(&env));

    // Stale: an older snapshot put back (a restored backup of the files), the database on.
    env.ok(&["settings", "set", "enabled=on"]);
    let newer = std::fs::read(&snap).unwrap();
    std::fs::write(&snap, &sound).unwrap();
    assert!(!module_read_agrees(&env));
    assert_eq!(snapshot_finding(&env), ("repaired".into(), "stale".into()));
    assert_eq!(std::fs::read(&snap).unwrap(), newer);
    assert!(module_read_agrees(&env));

    // Different: the database edited behind mfa-admin's back (same generation).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute(
        "UPDATE settings SET value = 'off' WHERE key = 'enabled'",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(!module_read_agrees(&env));
    assert_eq!(
        snapshot_finding(&env),
        ("repaired".into(), "differs".into())
    );
    assert!(module_read_agrees(&env));
    let loaded = Snapshot::open(&db).unwrap().unwrap();
    assert!(
        !loaded.settings().enabled,
        "the module reads what the database says"
    );

    // Readable by others (it holds every TOTP key): rewritten private.
    std::fs::set_permissions(&snap, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        snapshot_finding(&env),
        ("repaired".into(), "damaged".into())
    );
    let mode = std::fs::metadata(&snap).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    assert_eq!(snapshot_finding(&env), ("ok".into(), "sound".into()));
}

/// A snapshot that cannot be rewritten (its path taken by a directory): the run fails, the
/// line says why, and the other tasks still ran.
#[test]
fn a_snapshot_that_cannot_be_rebuilt_fails_the_run() {
    let env = Env::new();
    let snap = snapshot::path_for(&env.db());
    std::fs::remove_file(&snap).unwrap();
    std::fs::create_dir(&snap).unwrap();
    let (out, v) = maintain(&env);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(v["ok"], false);
    assert_eq!(v["snapshot"]["status"], "failed", "{v}");
    assert!(
        out.stderr.contains("maintenance failed: policy snapshot"),
        "{out:?}"
    );
    assert_eq!(v["auth_log"]["status"], "ok", "{v}");
    assert_eq!(v["challenges"]["status"], "ok", "{v}");
    let text = env.run(&["maintain"]);
    assert_eq!(text.code, 1);
    let line = text
        .stdout
        .lines()
        .find(|l| l.starts_with("policy snapshot: "))
        .unwrap();
    assert!(
        line.contains("FAILED") && line.contains(&snap.display().to_string()),
        "{line}"
    );
    std::fs::remove_dir(&snap).unwrap();
    maintain_ok(&env);
    assert!(module_read_agrees(&env));
}

#[test]
fn a_dead_database_is_a_clear_failure() {
    let env = Env::new();
    // (It breaks its database: not compared with the fleet at the end.)
    env.single_machine();
    let db = env.db();
    let now = mfa_core::now();
    state::put_challenge(
        &db,
        &challenge("a001", "ann", now - 2 * DAY, now - 2 * DAY + 600),
    )
    .unwrap();
    std::fs::write(&db, vec![0x5a; 8192]).unwrap();
    let (out, v) = maintain(&env);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(v["ok"], false);
    let detail = v["auth_log"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("cannot open the database") && detail.contains(&db.display().to_string()),
        "{detail}"
    );
    assert!(detail.contains("restore it from a backup"), "{detail}");
    assert_eq!(v["snapshot"]["status"], "failed", "{v}");
    assert!(out.stderr.contains("maintenance failed"), "{out:?}");
    // What needs no database still ran.
    assert_eq!(v["challenges"]["expired"], 1, "{v}");
    // No database at all (never initialised): the same, and nothing created.
    let bare = Env::bare();
    let (out, v) = maintain(&bare);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        v["auth_log"]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot open the database"),
        "{v}"
    );
    assert!(!bare.db().exists());
}

#[test]
fn a_caller_that_is_not_root_is_refused() {
    let env = Env::new();
    let before = env.dump();
    let out = if nix::unistd::Uid::effective().is_root() {
        // The installation must be reachable, so that only the root check can refuse.
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
        env.run_as_nobody(&["maintain"])
    } else {
        env.run(&["maintain"])
    };
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("maintain must run as root"), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(env.dump(), before);
}

/// Logins (failures counted, challenges issued, outcomes logged, a lockout that rewrites the
/// snapshot) and an administrator's changes while two `maintain` run again and again: every
/// run succeeds, no count or live challenge is lost, every logged outcome arrives once, and
/// the snapshot agrees with the database at the end.
#[test]
fn maintain_beside_logins_and_another_maintain() {
    let env = Env::new();
    env.ok(&["settings", "set", "log_keep_days=30", "lockout_after=0"]);
    env.ok(&["user", "add", "ann"]);
    let db = env.db();
    let now = mfa_core::now();
    let settings = {
        let store = Store::open(&db).unwrap();
        mfa_core::store::rules::settings(store.conn()).unwrap()
    };
    const ROUNDS: u32 = 40;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let runs = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|sc| {
        let mut maintainers = Vec::new();
        for _ in 0..2 {
            maintainers.push(sc.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let (out, v) = maintain(&env);
                    assert_eq!(out.code, 0, "{out:?}");
                    assert_eq!(v["ok"], true, "{v}");
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }));
        }
        let logins = sc.spawn(|| {
            for k in 0..ROUNDS {
                state::record_failure(&db, "zed", now, &settings).unwrap();
                // One live challenge and one long abandoned per round.
                let live = challenge(&format!("b{k:04x}"), "zed", now, now + 3600);
                state::put_challenge(&db, &live).unwrap();
                let dead = challenge(&format!("d{k:04x}"), "zed", now - 2 * DAY, now - DAY);
                state::put_challenge(&db, &dead).unwrap();
                mfa_core::authlog::append(&db, &event(&format!("u{k}"), 0)).unwrap();
                mfa_core::authlog::append(&db, &event("gone", now - 60 * DAY)).unwrap();
                mfa_core::grants::record(&db, "zed", "sshd", &format!("10.0.0.{k}"), now).unwrap();
                // A lockout, as a login records it: the snapshot is rewritten meanwhile.
                let mut store = Store::open_bounded(&db).unwrap();
                store
                    .policy_write(false, |tx| {
                        mfa_core::store::auth::record_lockout(tx, "ann", k, now, now + 60)?;
                        Ok(((), true))
                    })
                    .unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let admin = sc.spawn(|| {
            for k in 0..ROUNDS / 4 {
                env.ok(&["user", "add", &format!("user{k}")]);
            }
        });
        logins.join().unwrap();
        admin.join().unwrap();
        // At least one more run after the last login.
        let seen = runs.load(std::sync::atomic::Ordering::SeqCst);
        while runs.load(std::sync::atomic::Ordering::SeqCst) < seen + 2 {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for m in maintainers {
            m.join().unwrap();
        }
    });
    assert!(runs.into_inner() >= 4);
    // No failure lost, no live challenge lost, every abandoned one gone.
    assert_eq!(state::failures(&db, "zed").count, ROUNDS);
    let left = ids(&db);
    assert_eq!(left.len(), ROUNDS as usize, "{left:?}");
    assert!(left.iter().all(|id| id.starts_with('b')), "{left:?}");
    // The snapshot agrees with the database as the last writer left it: no run wrote one
    // built before a lockout committed after it (the next run finds nothing to repair).
    assert!(module_read_agrees(&env));
    let v = maintain_ok(&env);
    assert_eq!(v["snapshot"]["finding"], "sound", "{v}");
    // Every recent outcome arrived exactly once; the old ones were purged.
    let mut expected: Vec<String> = (0..ROUNDS).map(|k| format!("u{k}")).collect();
    expected.sort();
    assert_eq!(logged_users(&env), expected);
    // The database is sound.
    let store = Store::open(&db).unwrap();
    assert!(store.integrity_check().unwrap().is_empty());
    assert_eq!(
        mfa_core::grants::last(&db, "zed", "sshd", &format!("10.0.0.{}", ROUNDS - 1)),
        Some(now),
        "fresh grants stay"
    );
}

/// The snapshot check runs under the lock every writer of the policy takes first: while a
/// change (here the test, holding the lock) is under way, maintain waits instead of comparing
/// and rewriting beside it, and repairs once the lock is free.
#[test]
fn the_snapshot_check_waits_for_a_change_under_way() {
    let env = Env::new();
    let db = env.db();
    let snap = snapshot::path_for(&db);
    std::fs::write(&snap, b"MFAPOL03 half a change").unwrap();
    let held = snapshot::lock(&db, false).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config)
        .args(["--json", "maintain"])
        .env_remove("MFA_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let mut child = child;
    assert!(
        child.try_wait().unwrap().is_none(),
        "maintain finished while a writer held the snapshot lock"
    );
    assert_eq!(std::fs::read(&snap).unwrap(), b"MFAPOL03 half a change");
    drop(held);
    let out = super::out(child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["snapshot"]["finding"], "damaged", "{v}");
    assert!(module_read_agrees(&env));
}
