//! Attack tests of issue 15's upkeep (helper X's review; inactive users after an upgrade
//! are tested beside the migration, `store::schema`): restores of a tampered backup, and lockout notices an attacker who knows a password can
//! cause. Each test names its finding; those marked `#[ignore]` fail until the fix the
//! report proposes is made (then drop the `ignore`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use mfa_core::store::{Store, auth, people, rules};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn add_user(s: &mut Store, name: &str) {
    s.change("t", "user add", |tx| {
        people::add_user(tx, name, "", now())?;
        Ok(((), name.to_string()))
    })
    .unwrap();
}

fn set(s: &mut Store, key: &str, value: &str) {
    s.change("t", "settings set", |tx| {
        rules::set_setting(tx, key, value)?;
        Ok(((), key.to_string()))
    })
    .unwrap();
}

/// Backs up a store with one mandatory user, `ann`, to `file`.
fn mandatory_ann_backup(dir: &Path, file: &Path) {
    let (mut a, _) = Store::create(&dir.join("a.db")).unwrap();
    add_user(&mut a, "ann");
    a.change("t", "override", |tx| {
        tx.execute(
            "INSERT INTO overrides (user, mandatory) VALUES ('ann', 1)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    a.backup_to(file, false).unwrap();
}

fn ann_is_mandatory(s: &Store) -> bool {
    let f = auth::facts(s.conn(), "ann", "sshd", None).unwrap();
    let u = f.user.expect("ann has a record");
    u.mandatory && !u.exempt
}

/// Finding 2 (medium). A restore checks integrity, the version, the tables and the passcode
/// key, but not that the schema is the one this build makes. A backup whose view
/// `user_policy` (the one definition of every user's effective policy: the snapshot, the
/// module's database fallback and `user show` read it) was redefined makes every user
/// exempt after the restore, and nothing in the data (overrides, groups) shows why.
#[test]
fn a_backup_with_a_redefined_policy_view_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("backup.db");
    mandatory_ann_backup(d.path(), &file);
    {
        let c = rusqlite::Connection::open(&file).unwrap();
        c.execute_batch(
            "DROP VIEW user_policy;
             CREATE VIEW user_policy AS
             SELECT u.name AS user, NULL AS grp, NULL AS grp_from, 0 AS mandatory,
                    1 AS exempt, NULL AS self_enroll, NULL AS log_level, 15 AS factors
               FROM users u;",
        )
        .unwrap();
    }
    let (mut b, _) = Store::create(&d.path().join("b.db")).unwrap();
    add_user(&mut b, "ann");
    b.change("t", "override", |tx| {
        tx.execute(
            "INSERT INTO overrides (user, mandatory) VALUES ('ann', 1)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    let restored = b.restore(&file, now());
    assert!(
        restored.is_err(),
        "a backup whose user_policy view is not this build's was restored: {restored:?}"
    );
    assert!(ann_is_mandatory(&b), "ann is no longer mandatory");
}

/// Finding 2 (medium), the same with a trigger: a backup carrying a trigger that makes
/// every user exempt at their next login (any auth-log row) is restored, and the trigger
/// then runs with the store's authority at each login.
#[test]
fn a_backup_with_a_foreign_trigger_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("backup.db");
    mandatory_ann_backup(d.path(), &file);
    {
        let c = rusqlite::Connection::open(&file).unwrap();
        c.execute_batch(
            "CREATE TRIGGER x_attack AFTER INSERT ON auth_log BEGIN
                 UPDATE overrides SET mandatory = NULL, exempt = 1 WHERE user = NEW.user;
             END;",
        )
        .unwrap();
    }
    let (mut b, _) = Store::create(&d.path().join("b.db")).unwrap();
    let restored = b.restore(&file, now());
    let triggers: i64 = b
        .conn()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND name = 'x_attack'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        restored.is_err() && triggers == 0,
        "a backup with a foreign trigger was restored: {restored:?}, triggers {triggers}"
    );
}

/// Finding 2b (low). SQLite's integrity check does not check foreign keys: a backup
/// where a user names a group that is not there (edited with foreign keys off) was restored,
/// and that user then silently had the global rules instead of any group's (not even the
/// default group's: user_policy finds no group).
#[test]
fn a_backup_with_a_user_of_a_missing_group_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("backup.db");
    mandatory_ann_backup(d.path(), &file);
    {
        let c = rusqlite::Connection::open(&file).unwrap();
        c.execute_batch(
            "PRAGMA foreign_keys = OFF;
             UPDATE users SET group_name = 'gone' WHERE name = 'ann';",
        )
        .unwrap();
    }
    let (mut b, _) = Store::create(&d.path().join("b.db")).unwrap();
    let restored = b.restore(&file, now());
    let err = restored.expect_err("a user of a missing group was restored");
    assert!(err.to_string().contains("foreign keys"), "{err}");
}

/// Finding 2c (low, an administrator's mistake). `backup --force` onto the store itself
/// renamed a copy over the live database (the connections that have it open, the sender's,
/// a login's, go on writing the old file: their writes are lost), and onto a file of the
/// store (`<db>-lockouts`, the snapshot) replaced it with an SQLite file. Refused, and the
/// files are as they were.
#[test]
fn a_backup_onto_the_store_or_its_files_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&d.path().join("mfa.db")).unwrap();
    add_user(&mut s, "ann");
    let inode = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let db = s.path().to_path_buf();
    let mut before: Vec<(String, u64)> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), inode(&p))
        })
        .collect();
    let dotted = d.path().join(".").join("mfa.db");
    for dest in [
        db.clone(),
        dotted,
        std::path::PathBuf::from(format!("{}-lockouts", db.display())),
        std::path::PathBuf::from(format!("{}-policy", db.display())),
    ] {
        let r = s.backup_to(&dest, true);
        assert!(r.is_err(), "{}: {r:?}", dest.display());
    }
    let mut after: Vec<(String, u64)> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), inode(&p))
        })
        .collect();
    before.sort();
    after.sort();
    assert_eq!(before, after, "a file of the store was replaced");
    // Elsewhere in the same directory is fine.
    s.backup_to(&d.path().join("backup-mfa.db"), false).unwrap();
}

/// What a sound restore still does (the guard above must not refuse a plain backup, nor
/// one of an earlier schema): a backup of this build restores and ann is mandatory again.
#[test]
fn a_plain_backup_still_restores() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("backup.db");
    mandatory_ann_backup(d.path(), &file);
    let (mut b, _) = Store::create(&d.path().join("b.db")).unwrap();
    add_user(&mut b, "bob");
    b.restore(&file, now()).unwrap();
    assert!(ann_is_mandatory(&b));
    let bob: i64 = b
        .conn()
        .query_row("SELECT count(*) FROM users WHERE name = 'bob'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(bob, 0, "the restored store is the backup's");
}

fn spool() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for s in mfa_core::spool::SUBDIRS {
        std::fs::create_dir(d.path().join(s)).unwrap();
    }
    d
}

/// Finding 3 (medium, cost and flood). "At most one notice per user per lockout" holds,
/// but nothing bounds the lockouts' notices over time, and the sender's send limits do not
/// count notices. With `lockout_after=1` and `lockout_for=1m` (both allowed), whoever knows
/// a user's password locks them out once a minute: 1,440 SMS a day to the user's phone and
/// as many mails to the administrator (with the defaults, 10 and 15m: 96 a day per user
/// attacked, times every user whose password is known). Proposed bound: one lockout notice
/// per user and recipient an hour (the next one says how many lockouts there were since).
#[test]
fn repeated_lockouts_do_not_flood_the_user_and_the_administrator() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("mfa.db");
    let sp = spool();
    let (mut s, _) = Store::create(&db).unwrap();
    add_user(&mut s, "ann");
    s.change("t", "contact", |tx| {
        tx.execute(
            "INSERT INTO contacts (user, seq, channel, address, created)
             VALUES ('ann', 1, 'sms', '+15555550100', 1)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    for (k, v) in [
        ("admin_email", "root@example.org"),
        ("notify_admin", "lockout"),
        ("notify_user", "lockout"),
        ("lockout_after", "1"),
        ("lockout_for", "1m"),
    ] {
        set(&mut s, k, v);
    }
    // Three hours of one wrong guess a minute, each a new lockout (as the module calls
    // at_lockout: once per lockout).
    let t0 = now();
    let mut queued = 0;
    for i in 0..180 {
        let t = t0 + i * 61;
        let sent = mfa_core::notice::at_lockout(
            &db,
            &sp.path().join(""),
            Some(s.conn()),
            None,
            "ann",
            1,
            t + 60,
            "sshd",
            "192.0.2.66",
            t,
        );
        assert!(sent.errors.is_empty(), "{:?}", sent.errors);
        queued += sent.queued;
    }
    let files = std::fs::read_dir(sp.path().join("new")).unwrap().count();
    assert_eq!(files, queued);
    assert!(
        queued <= 2 * 4,
        "{queued} notices queued for 180 lockouts in 3 hours (one user, two recipients)"
    );
    // The lockouts not told are counted in the next notice.
    let bodies: Vec<String> = std::fs::read_dir(sp.path().join("new"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("earlier lockout(s) in the last hour were not told")),
        "{bodies:?}"
    );
}
