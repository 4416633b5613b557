//! `backup` and `restore` (issue 15): a backup taken while 32 logins run (wrong codes that
//! count and lock users out: writes to the store) restores to a store that passes doctor's
//! database and snapshot checks; the backup file is 0600, never written through a link nor
//! over an existing file without --force; a restore of a corrupt, truncated, non-mfa,
//! newer-schema or symlinked file is refused (exit 2) and changes nothing.
//!
//! The restores run on a single machine whatever the backend (`Env::sqlite`): a fleet
//! host refuses `restore` (its rules are the fleet's; `fleet::restore_is_refused_on_a_fleet_host`).

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};

use mfa_core::auth::{self, Outcome, Request};
use mfa_core::settings::FailMode;

use super::Env;
use super::notices::{WrongCodes, config, setup};

fn doctor_checks(env: &Env) -> Vec<serde_json::Value> {
    let pam = env.path("no-pam.d");
    let out = env.run(&[
        "--json",
        "doctor",
        "--pam-dir",
        pam.to_str().unwrap(),
        "--sshd-config",
        env.path("no-sshd").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {out:?}"));
    v.as_array().unwrap().clone()
}

fn status<'a>(checks: &'a [serde_json::Value], name: &str) -> &'a str {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name:?}: {checks:#?}"))["status"]
        .as_str()
        .unwrap()
}

fn users(env: &Env) -> Vec<String> {
    let v = env.json(&["user", "list"]);
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn a_backup_taken_during_32_logins_restores_to_a_sound_store() {
    let env = Env::sqlite();
    let names: Vec<String> = (0..32).map(|i| format!("u{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    setup(&env, &refs, &["lockout_after=2", "lockout_for=1m"]);
    let config = config(&env);
    let file = env.path("backup.db");
    let stop = AtomicBool::new(false);
    let logins = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for name in &names {
            let (config, stop, logins) = (&config, &stop, &logins);
            s.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let req = Request {
                        user: name.clone(),
                        service: "sshd".into(),
                        rhost: "192.0.2.9".into(),
                        tty: "ssh".into(),
                    };
                    let o = auth::authenticate(
                        config,
                        &req,
                        &mut WrongCodes::default(),
                        FailMode::Safe,
                    );
                    assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
                    logins.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // Backups while they run (each replacing the last), then stop them.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for _ in 0..3 {
            let out = env.run(&["backup", "--force", file.to_str().unwrap()]);
            assert_eq!(out.code, 0, "{out:?}");
            assert!(out.stdout.contains("32 users"), "{out:?}");
        }
        stop.store(true, Ordering::SeqCst);
    });
    assert!(logins.into_inner() >= 32);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Changed after the backup; the restore brings the backup's users back.
    env.ok(&["user", "add", "late"]);
    env.ok(&["user", "del", "u00"]);
    let out = env.ok(&["restore", file.to_str().unwrap()]);
    assert!(out.contains("restored the store from"), "{out}");
    assert!(out.contains("before-restore-"), "{out}");
    assert_eq!(users(&env), names);
    let checks = doctor_checks(&env);
    assert_eq!(status(&checks, "database"), "ok", "{checks:#?}");
    assert_eq!(status(&checks, "policy snapshot"), "ok", "{checks:#?}");
    // The database as it was is kept aside, 0600, with the late user.
    let kept: Vec<_> = std::fs::read_dir(env.path("db"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::metadata(&kept[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let dump = super::dump(&kept[0]);
    assert!(dump.iter().any(|l| l.contains("late")));
    // The restore is in the restored store's audit log.
    let audit = env.json(&["audit", "show"]);
    assert!(audit.to_string().contains("restore"), "{audit}");
    // Logins work on the restored store (a wrong code is still refused, and counted).
    let o = auth::authenticate(
        &config,
        &Request {
            user: "u01".into(),
            service: "sshd".into(),
            ..Request::default()
        },
        &mut WrongCodes::default(),
        FailMode::Safe,
    );
    assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
}

#[test]
fn backup_refuses_an_existing_file_a_link_and_standard_output() {
    let env = Env::new();
    let file = env.path("b.db");
    env.ok(&["backup", file.to_str().unwrap()]);
    env.bad(&["backup", file.to_str().unwrap()], &["exists", "--force"]);
    env.bad(&["backup", "-"], &["not -"]);
    let victim = env.path("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    env.bad(&["backup", link.to_str().unwrap()], &["exists"]);
    env.ok(&["backup", "--force", link.to_str().unwrap()]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    let out = env.run(&["backup", env.path("no/such/dir/b.db").to_str().unwrap()]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no/such/dir"), "{out:?}");
}

#[test]
fn restore_refuses_bad_files_and_changes_nothing() {
    let env = Env::sqlite();
    env.ok(&["user", "add", "ann"]);
    let good = env.path("good.db");
    env.ok(&["backup", good.to_str().unwrap()]);
    let bytes = std::fs::read(&good).unwrap();
    env.ok(&["user", "add", "bob"]);
    let write = |name: &str, b: &[u8]| {
        let p = env.path(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    let truncated = write("truncated.db", &bytes[..bytes.len() / 3]);
    let mut c = bytes.clone();
    for b in c.iter_mut().skip(4096).take(8192) {
        *b ^= 0x5a;
    }
    let corrupt = write("corrupt.db", &c);
    let text = write("notes.txt", b"not a database\n");
    let other = env.path("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE users (name); PRAGMA user_version = 2;")
        .unwrap();
    let newer = env.path("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    for (file, says) in [
        (&truncated, "damaged or truncated"),
        (&corrupt, "damaged"),
        (&text, "not an SQLite database"),
        (&other, "not a backup of mfa"),
        (&newer, "newer than this mfa"),
        (&link, "symbolic link"),
        (&env.path("missing.db"), "No such file"),
    ] {
        env.bad(
            &["restore", file.to_str().unwrap()],
            &[says, "nothing was changed"],
        );
    }
    assert_eq!(users(&env), ["ann", "bob"]);
    let left: Vec<_> = std::fs::read_dir(env.path("db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn restore_onto_a_damaged_database_says_how_to_proceed() {
    let env = Env::sqlite();
    env.ok(&["user", "add", "ann"]);
    let good = env.path("good.db");
    env.ok(&["backup", good.to_str().unwrap()]);
    // The live database destroyed: the restore says what to do, and that works.
    std::fs::write(env.db(), b"garbage garbage garbage garbage garbage").unwrap();
    let out = env.run(&["restore", good.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("move it aside") && out.stderr.contains("mfa-admin init"),
        "{out:?}"
    );
    std::fs::rename(env.db(), env.path("db/mfa.db.damaged")).unwrap();
    env.ok(&["init"]);
    env.ok(&["restore", good.to_str().unwrap()]);
    assert_eq!(users(&env), ["ann"]);
}
