//! Issue 13's admin side: doctor's quick database check by default and the full one on
//! request, doctor's report of the auth-log inbox backlog, and import linear in the number of
//! network rules.

use std::path::PathBuf;

use super::doctor_install::{Install, check, root};

fn doctor(i: &Install, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "--json",
        "doctor",
        "--pam-dir",
        i.pam.to_str().unwrap(),
        "--sshd-config",
        i.sshd.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = i.env.run(&args);
    let checks: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    checks.as_array().unwrap().clone()
}

fn rotated(i: &Install, n: u32) -> PathBuf {
    let mut s = mfa_core::authlog::path_for(&i.env.db()).into_os_string();
    s.push(format!(".{:010}.{:09}.{n:012x}", 1_000_000 + n, 0));
    PathBuf::from(s)
}

#[test]
fn doctor_checks_quickly_or_fully_and_reports_the_inbox_backlog() {
    if !root("doctor_checks_quickly_or_fully_and_reports_the_inbox_backlog") {
        return;
    }
    let i = Install::new();
    let db = i.env.db();
    let checks = doctor(&i, &[]);
    let (status, detail) = check(&checks, "database");
    assert_eq!(status, "ok", "{checks:#?}");
    assert!(detail.contains("quick check ok"), "{detail}");
    let full = doctor(&i, &["--full"]);
    let (status, full_detail) = check(&full, "database");
    assert_eq!(status, "ok");
    assert!(full_detail.contains("full check"), "{full_detail}");
    assert_ne!(detail, full_detail);
    assert_eq!(check(&checks, "auth-log backlog").0, "ok");

    // An index of the auth log that no longer matches its rows: the full check finds it;
    // the quick one, made for every run, leaves the logs (and such cross-checks) to --full.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO auth_log (ts, user, service, outcome) VALUES (1, 'ann', 'sshd', 'deny');
         PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET sql = replace(sql, '(service, ts)', '(user, ts)')
          WHERE name = 'auth_log_service';",
    )
    .unwrap();
    drop(conn);
    assert_eq!(check(&doctor(&i, &[]), "database").0, "ok");
    let (status, detail) = check(&doctor(&i, &["--full"]), "database");
    assert_eq!(status, "fail");
    assert!(detail.contains("auth_log_service"), "{detail}");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("REINDEX auth_log_service; DELETE FROM auth_log;")
        .unwrap();
    drop(conn);
    assert_eq!(check(&doctor(&i, &["--full"]), "database").0, "ok");

    // A backlog nothing moved: the most rotated files kept, two days old, and a FIFO and a
    // symlink named like rotated files.
    mfa_core::authlog::append(
        &db,
        &mfa_core::store::logs::AuthEvent {
            user: "ann".into(),
            service: "sshd".into(),
            outcome: "success".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let line = std::fs::read(mfa_core::authlog::path_for(&db)).unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 86400);
    for n in 0..mfa_core::authlog::MAX_ROTATED as u32 {
        let p = rotated(&i, n);
        std::fs::write(&p, &line).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    let fifo = rotated(&i, 9000);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let link = rotated(&i, 9001);
    std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
    let checks = doctor(&i, &[]);
    let (status, detail) = check(&checks, "auth-log backlog");
    assert_eq!(status, "warn", "{checks:#?}");
    for want in [
        "64 rotated file(s)",
        "the most kept",
        "since 3 days",
        "mfa-admin maintain",
        fifo.to_str().unwrap(),
        link.to_str().unwrap(),
    ] {
        assert!(detail.contains(want), "{want:?} in {detail}");
    }

    // Any command moves them (the FIFO and the symlink stay, untouched).
    let out = i.env.run(&["--json", "log", "show"]);
    assert_eq!(out.code, 0, "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "the same line once");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    std::fs::remove_file(&fifo).unwrap();
    std::fs::remove_file(&link).unwrap();
    let checks = doctor(&i, &[]);
    let (status, detail) = check(&checks, "auth-log backlog");
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.starts_with("0 rotated file(s)"), "{detail}");
}

use std::os::unix::fs::FileTypeExt;
