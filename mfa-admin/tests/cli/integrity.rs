//! What a login reads, as mfa-admin keeps it sound: every command rewrites a policy
//! snapshot that fails its checksum or that others could read; doctor fails files with
//! secrets that others can read, naming the file and the fix, and a spool whose root its
//! group can write or whose `new/` is a link.

use std::os::unix::fs::PermissionsExt;

use super::Env;
use super::doctor_install::{Install, check, root};

fn snapshot(env: &Env) -> std::path::PathBuf {
    mfa_core::snapshot::path_for(&env.db())
}

/// Not only doctor: any command (here `user list` and `settings show`) notices a snapshot
/// that fails its checksum, says so, and rewrites it.
#[test]
fn every_command_rewrites_a_damaged_snapshot() {
    let env = Env::new();
    env.ok(&["user", "add", "ann"]);
    env.ok(&["contact", "add", "ann", "--email", "ann@example.com"]);
    let p = snapshot(&env);
    let good = std::fs::read(&p).unwrap();
    for (byte, args) in [
        (good.len() - 3, ["user", "list"]),
        (70, ["settings", "show"]),
        (9, ["user", "list"]),
    ] {
        let mut bad = good.clone();
        bad[byte] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        assert!(mfa_core::snapshot::verify(&env.db()).is_err());
        let o = env.run(&args);
        assert_eq!(o.code, 0, "{o:?}");
        assert!(
            o.stderr.contains("the policy snapshot could not be used")
                && o.stderr.contains("rewritten from the database"),
            "byte {byte}: {}",
            o.stderr
        );
        assert_eq!(std::fs::read(&p).unwrap(), good, "byte {byte}: rewritten");
        // Sound now: the next command says nothing.
        let o = env.run(&args);
        assert!(o.stderr.is_empty(), "{}", o.stderr);
    }
    // One that others can read: rewritten private.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = env.run(&["user", "list"]);
    assert!(o.stderr.contains("chmod 600"), "{}", o.stderr);
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

/// doctor (run as root, like the other doctor tests): a readable snapshot, database,
/// login-state or challenge directory or state file is a FAIL naming the file and the fix.
#[test]
fn doctor_fails_secrets_others_can_read() {
    if !root("doctor_fails_secrets_others_can_read") {
        return;
    }
    let i = Install::new();
    let env = &i.env;
    let (_, checks) = i.doctor();
    for name in ["database permissions", "snapshot permissions"] {
        assert_eq!(check(&checks, name).0, "ok", "{checks:#?}");
    }
    let db = env.db();
    let users = env.path("db/mfa.db-users");
    let challenges = env.path("db/mfa.db-challenges");
    for d in [&users, &challenges] {
        std::fs::create_dir_all(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(users.join("abc"), "0 0 0 0 61\n").unwrap();
    std::fs::set_permissions(users.join("abc"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&challenges, std::fs::Permissions::from_mode(0o755)).unwrap();
    let snap = snapshot(env);
    std::fs::set_permissions(&snap, std::fs::Permissions::from_mode(0o640)).unwrap();

    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (status, detail) = check(&checks, "snapshot permissions");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains(&format!("chmod 600 {}", snap.display())),
        "{detail}"
    );
    let (status, detail) = check(&checks, "login state");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("abc") && detail.contains("chmod 600"),
        "{detail}"
    );
    let (status, detail) = check(&checks, "challenges");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains(&format!("chmod 700 {}", challenges.display())),
        "{detail}"
    );
    // The snapshot was rewritten by that run (it is mfa-admin's to repair).
    assert_eq!(
        std::fs::metadata(&snap).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A database others can read: doctor fails it and the store refuses it.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (status, detail) = check(&checks, "database permissions");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains(&format!("chmod 600 {}", db.display())),
        "{detail}"
    );
    let o = env.run(&["user", "list"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("chmod 600"), "{}", o.stderr);
    // mfa-admin init repairs it.
    env.ok(&["init"]);
    env.ok(&["user", "list"]);
}

/// doctor on the spool attack: the root writable by its group, `new/` a link.
#[test]
fn doctor_fails_a_spool_whose_new_can_be_swapped() {
    if !root("doctor_fails_a_spool_whose_new_can_be_swapped") {
        return;
    }
    let i = Install::new();
    let spool = i.env.path("spool");
    let (_, checks) = i.doctor();
    assert_eq!(check(&checks, "spool").0, "ok", "{checks:#?}");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o775)).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (status, detail) = check(&checks, "spool");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("chmod go-w"), "{detail}");

    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(spool.join("new"), spool.join("new.away")).unwrap();
    std::os::unix::fs::symlink(i.env.path("run"), spool.join("new")).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (status, detail) = check(&checks, "spool");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("symbolic link"), "{detail}");
    // mfa-admin test writes nothing through the link either.
    let before = std::fs::read_dir(i.env.path("run")).unwrap().count();
    i.env.ok(&["user", "add", "ann"]);
    i.env
        .ok(&["contact", "add", "ann", "--email", "ann@example.com"]);
    assert_ne!(i.env.run(&["test", "ann"]).code, 0);
    assert_eq!(
        std::fs::read_dir(i.env.path("run")).unwrap().count(),
        before
    );
}
