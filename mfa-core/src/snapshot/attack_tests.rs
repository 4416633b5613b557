//! Attacks on the updated snapshot ([`super::patch`]): logins reading while administrators
//! and lockouts patch it from other threads, changes made behind mfa's back, damaged and
//! odd files at the snapshot's path before a patch, names at block boundaries, and the
//! size limits of a patch. Each test says what must hold. An edit made behind mfa's back
//! (sqlite3) is not seen by the next patch (it re-reads only what the change touched): it
//! reaches the snapshot at `mfa-admin maintain` or `doctor`, whose check compares content,
//! as the README says to run after such edits.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

mod files;
mod layout;

use super::patch_tests::{agrees, patches};
use super::tests::populated;
use super::*;
use crate::contact::Contact;
use crate::store::{Rebuilt, Store, auth, people};

/// One administrator's change; returns whether it was a patch (rather than a build).
fn change(s: &mut Store, f: impl FnOnce(&rusqlite::Transaction<'_>) -> crate::Result<()>) -> bool {
    let before = patches();
    s.change("t", "t", |tx| {
        f(tx)?;
        Ok(((), String::new()))
    })
    .unwrap();
    patches() - before == 1
}

/// A lockout as a login records it.
fn lockout(s: &mut Store, user: &str, until: i64) -> bool {
    let before = patches();
    s.policy_write(false, |tx| {
        Ok((auth::record_lockout(tx, user, 5, 0, until)?, true))
    })
    .unwrap();
    patches() - before == 1
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, &bytes).unwrap();
}

fn open(db: &Path) -> Snapshot {
    Snapshot::open(db).unwrap().unwrap()
}

/// A store of `n` users named `s0000`, `s0002`, ... (even numbers: odd ones fit between),
/// each with one email contact named after them.
fn store_of(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    change(&mut s, |tx| {
        for i in 0..n {
            let name = format!("s{:04}", 2 * i);
            people::add_user(tx, &name, "", 0)?;
            let c = Contact::email(&format!("{name}@example.com"))?;
            people::add_contact(tx, &name, &c, "", None, 0)?;
        }
        Ok(())
    });
    (dir, s)
}

/// Logins in three threads (load, lookup, facts) while one store patches for an
/// administrator (users added and deleted in the blocks of the users the logins look up,
/// first users of blocks among them), a second store records lockouts, and a third runs
/// `maintain`'s check: no login ever meets a damaged or torn file, a wrong record, or
/// "unknown" for a user that exists throughout; the check finds the file sound every time
/// (the lock serialises it with the patches); at the end the file agrees with a build.
#[test]
fn logins_during_patches_lockouts_and_checks_never_see_a_torn_file_or_lose_a_user() {
    let (dir, mut admin) = store_of(200);
    let db = admin.path().to_path_buf();
    let stable: Vec<String> = (0..200).map(|i| format!("s{:04}", 2 * i)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, missing) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let start = Arc::new(Barrier::new(7));
    let mut readers = Vec::new();
    for t in 0..3 {
        let (db, stable, stop, reads, missing, start) = (
            db.clone(),
            stable.clone(),
            stop.clone(),
            reads.clone(),
            missing.clone(),
            start.clone(),
        );
        readers.push(std::thread::spawn(move || {
            start.wait();
            let mut i = t * 37;
            while !stop.load(Ordering::Relaxed) {
                i = (i + 13) % stable.len();
                let name = &stable[i];
                let snap = match Snapshot::open(&db) {
                    Ok(Some(s)) => s,
                    // Between a change's commit and its new file: the database answers,
                    // as a login asks it.
                    Ok(None) => {
                        let store = Store::open_bounded(&db).unwrap();
                        let facts = auth::facts(store.conn(), name, "sshd", None).unwrap();
                        assert!(
                            facts.user.is_some_and(|u| u.enabled),
                            "{name} in the database"
                        );
                        missing.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(d) => panic!("a login met {d}"),
                };
                let rec = snap
                    .lookup(name)
                    .unwrap_or_else(|d| panic!("{name}: {d}"))
                    .unwrap_or_else(|| panic!("{name} unknown"));
                assert_eq!(rec.contacts.len(), 1, "{name}");
                assert_eq!(rec.contacts[0].address, format!("{name}@example.com"));
                assert!(rec.facts.enabled, "{name}");
                let facts = snap.facts_checked(Some(&rec), "sshd", name, None).unwrap();
                assert!(facts.user.is_some());
                // A transient user is either there whole or not there.
                let odd = format!("s{:04}x", 2 * i + 1);
                if let Some(r) = snap.lookup(&odd).unwrap_or_else(|d| panic!("{odd}: {d}")) {
                    assert!(r.contacts.is_empty() && r.facts.enabled, "{odd}");
                }
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // A second connection records lockouts, as logins do.
    let lockouts = {
        let (db, start, stable) = (db.clone(), start.clone(), stable.clone());
        std::thread::spawn(move || {
            let mut s = Store::open(&db).unwrap();
            start.wait();
            for k in 0..25 {
                let user = &stable[(k * 7) % stable.len()];
                lockout(&mut s, user, 4_000_000_000 + k as i64);
            }
        })
    };
    // A third runs maintain's check and repair.
    let checks = {
        let (db, start) = (db.clone(), start.clone());
        std::thread::spawn(move || {
            let mut s = Store::open(&db).unwrap();
            start.wait();
            for _ in 0..6 {
                let c = check_and_repair(&mut s).unwrap();
                assert_eq!(c.finding, Finding::Sound, "a patch left {c:?}");
            }
        })
    };
    // And the check every mfa-admin command starts with (generation and checksums, the
    // rewrite under the lock): it may find the file missing or of the generation before
    // (it reads the generation, then the file), never damaged.
    let repairs = {
        let (db, start, stop) = (db.clone(), start.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut s = Store::open(&db).unwrap();
            start.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 40 {
                match s.repair_snapshot().unwrap() {
                    None | Some(Rebuilt::Missing | Rebuilt::Stale { .. }) => {}
                    Some(Rebuilt::Damaged(d)) => panic!("mfa-admin met {d}"),
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    start.wait();
    let mut patched = 0;
    for k in 0..25 {
        // Odd names next to the stable ones, the lowest of blocks among them.
        let names: Vec<String> = (0..6)
            .map(|j| format!("s{:04}x", 2 * ((k * 31 + j * 64) % 200) + 1))
            .collect();
        patched += usize::from(change(&mut admin, |tx| {
            for n in &names {
                if people::user(tx, n)?.is_some() {
                    people::delete_user(tx, n)?;
                } else {
                    people::add_user(tx, n, "", 0)?;
                }
            }
            Ok(())
        }));
    }
    lockouts.join().unwrap();
    checks.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    repairs.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert!(patched >= 20, "only {patched} of 25 changes were patches");
    assert!(
        missing.load(Ordering::Relaxed) > 0,
        "no login met the window"
    );
    assert!(
        reads.load(Ordering::Relaxed) > 50,
        "{} reads",
        reads.load(Ordering::Relaxed)
    );
    agrees(&mut admin);
    drop(dir);
}

/// A change made behind mfa's back (sqlite3, or `Store::write`), which neither bumps the
/// generation nor deletes the snapshot, then an administrator's change through mfa: the
/// patch copies the block of the user edited behind its back, so the snapshot keeps saying
/// what the database no longer says; the check every `mfa-admin` command makes
/// (`repair_snapshot`: generation and checksums) does not see it; `maintain`'s comparison
/// does, and rewrites it. (Before patches, the next change rebuilt the file and the edit
/// reached logins then; now it reaches them at the next `maintain`.)
#[test]
fn an_edit_behind_mfas_back_outlives_a_patch_until_maintain() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    // Another connection, as sqlite3 would: user050 disabled.
    // Another connection, as sqlite3 would: user050 disabled, a user added, one deleted.
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch(
            "PRAGMA foreign_keys = ON;
             UPDATE users SET enabled = 0 WHERE name = 'user050';
             INSERT INTO users (name, created) VALUES ('user050b', 0);
             DELETE FROM users WHERE name = 'user051';",
        )
        .unwrap();
    drop(other);
    // And on mfa's own connection, outside a tracked change.
    s.write(|tx| {
        tx.execute("UPDATE users SET enabled = 0 WHERE name = 'user090'", [])?;
        Ok(())
    })
    .unwrap();
    assert!(open(&db).lookup("user050").unwrap().unwrap().facts.enabled);
    // A tracked change in another block: a patch.
    assert!(change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    let snap = open(&db);
    assert!(snap.lookup("aaa").unwrap().is_some());
    let stale = |snap: &Snapshot, u: &str| snap.lookup(u).unwrap().unwrap().facts.enabled;
    assert!(stale(&snap, "user050"), "the edit reached the snapshot");
    assert!(stale(&snap, "user090"), "the edit reached the snapshot");
    // In the very block of the change too: the patch re-reads only the names it tracked.
    assert!(change(&mut s, |tx| people::set_enabled(
        tx, "user052", false
    )
    .map(|_| ())));
    let snap = open(&db);
    assert!(stale(&snap, "user050"), "the edit reached the snapshot");
    assert!(
        snap.lookup("user050b").unwrap().is_none(),
        "a user added behind mfa's back is unknown to logins"
    );
    let db_facts = auth::facts(s.conn(), "user050b", "sshd", None).unwrap();
    assert!(db_facts.user.is_some(), "the database knows user050b");
    assert!(
        snap.lookup("user051").unwrap().is_some(),
        "a user deleted behind mfa's back is still known to logins"
    );
    assert!(!s.snapshot_matches().unwrap());
    // Every mfa-admin command's check: generation and checksums are fine.
    assert_eq!(s.repair_snapshot().unwrap(), None);
    // maintain's comparison finds and repairs it.
    let c = check_and_repair(&mut s).unwrap();
    assert_eq!(c.finding, Finding::Differs);
    let snap = open(&db);
    assert!(!stale(&snap, "user050") && !stale(&snap, "user090"));
    assert!(snap.lookup("user050b").unwrap().is_some());
    assert!(snap.lookup("user051").unwrap().is_none());
    agrees(&mut s);
}

/// A flipped byte in a block of users no change touches: the patch copies it with its old
/// checksum, so the damage stays detected (verify fails, a login of a user in that block
/// reads the database and gets the right record), and the next `mfa-admin` command's
/// repair rewrites it.
#[test]
fn damage_in_an_untouched_block_stays_detected_after_a_patch_and_is_repaired() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let range = open(&db).block_range("user090").unwrap();
    assert_ne!(
        range,
        open(&db).block_range("ann").unwrap(),
        "not the touched block"
    );
    flip(&p, range.start + 5);
    assert!(change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    assert!(matches!(verify(&db), Err(Damage::Corrupt(_))));
    let snap = open(&db);
    assert!(snap.lookup("user090").is_err(), "never read as unknown");
    let rec = snap.user("user090").expect("from the database");
    assert!(rec.facts.enabled);
    assert!(snap.lookup("aaa").unwrap().is_some());
    assert!(snap.lookup("ann").unwrap().is_some());
    // A lockout writes the lockouts file only: the snapshot, damage and all, is untouched.
    assert!(!lockout(&mut s, "user001", 4_000_000_000));
    assert!(matches!(verify(&db), Err(Damage::Corrupt(_))));
    assert_eq!(
        open(&db).facts("user001", "sshd", None).locked_until,
        4_000_000_000
    );
    // Every command's check reads the head and the index blocks only: the damaged block
    // is for logins to report and maintain's (or doctor's) full check to rewrite.
    assert_eq!(s.repair_snapshot().unwrap(), None);
    let c = check_and_repair(&mut s).unwrap();
    assert!(
        matches!(c.finding, Finding::Damaged(Damage::Corrupt(_))),
        "{c:?}"
    );
    agrees(&mut s);
}

/// A flipped byte in an index block of users (the last bytes of the file): a change of
/// users cannot patch from it and builds whole; a lockout copies it as it is and the
/// damage stays detected; the repair rewrites it.
#[test]
fn damage_in_an_index_block_of_users_is_built_whole_or_stays_detected() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let len = std::fs::metadata(&p).unwrap().len() as usize;
    flip(&p, len - 20);
    assert!(open(&db).all_user_entries().is_err());
    assert!(!change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    agrees(&mut s);
    let len = std::fs::metadata(&p).unwrap().len() as usize;
    flip(&p, len - 20);
    assert!(!lockout(&mut s, "user002", 4_000_000_000));
    assert!(matches!(verify(&db), Err(Damage::Corrupt(_))));
    let snap = open(&db);
    assert!(snap.lookup("user099").is_err(), "never read as unknown");
    assert!(
        !snap.user("user099").unwrap().facts.enabled,
        "from the database"
    );
    assert!(s.repair_snapshot().unwrap().is_some());
    agrees(&mut s);
}

/// A flipped byte in the index block of rules (right after the only block of rules): a
/// change of users builds whole (the rules cannot be copied by an index that does not
/// check); a change of rules encodes them again and the result is sound.
#[test]
fn damage_in_the_index_block_of_rules() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let at = open(&db).head_len() + 7 * RULE + 5;
    flip(&p, at);
    assert!(open(&db).all_rule_entries().is_err());
    assert!(!change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    agrees(&mut s);
    flip(&p, open(&db).head_len() + 7 * RULE + 5);
    assert!(change(&mut s, |tx| {
        crate::store::rules::set_service(tx, "login", "totp")
    }));
    agrees(&mut s);
}

/// A flipped byte in the head's index sections, a truncated file, a file with bytes
/// appended, a file of another generation: never patched from, built whole.
#[test]
fn a_bad_head_or_length_is_never_patched_from() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let head = open(&db).head_len();
    flip(&p, head - 3);
    assert!(Snapshot::open(&db).is_err());
    assert!(!change(&mut s, |tx| people::add_user(tx, "a1", "", 0)));
    agrees(&mut s);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 100]).unwrap();
    assert!(!change(&mut s, |tx| people::add_user(tx, "a2", "", 0)));
    agrees(&mut s);
    let mut bytes = std::fs::read(&p).unwrap();
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&p, &bytes).unwrap();
    // A lockout writes its own file only: the bad snapshot stays unused by logins (they
    // read the database) until the next mfa-admin command's check rewrites it.
    assert!(!lockout(&mut s, "user004", 4_000_000_000));
    assert!(Snapshot::open(&db).is_err());
    assert!(s.repair_snapshot().unwrap().is_some());
    agrees(&mut s);
    assert_eq!(
        open(&db).facts("user004", "sshd", None).locked_until,
        4_000_000_000
    );
    let old = std::fs::read(&p).unwrap();
    assert!(change(&mut s, |tx| people::add_user(tx, "a3", "", 0)));
    std::fs::write(&p, &old).unwrap();
    assert!(!change(&mut s, |tx| people::add_user(tx, "a4", "", 0)));
    agrees(&mut s);
    assert!(open(&db).lookup("a3").unwrap().is_some());
}

/// Two backups of the database at the same generation but of different histories (an
/// administrator restores one, changes things, then restores the other): the snapshot of
/// one history carries the generation of the other, so neither every `mfa-admin` command's
/// check nor the next change notices, and the next change patches the wrong history's file.
/// A generation that only counts cannot tell histories apart: each bump adds a random
/// 32-bit number as well, so the two histories' generations differ and the check rebuilds.
#[test]
fn a_restored_database_of_another_history_at_the_same_generation_is_caught() {
    let (dir, mut s) = populated();
    let db = s.path().to_path_buf();
    let backup0 = dir.path().join("backup0");
    let backup_a = dir.path().join("backupA");
    std::fs::copy(&db, &backup0).unwrap();
    // History A: user050 disabled.
    change(&mut s, |tx| {
        people::set_enabled(tx, "user050", false).map(|_| ())
    });
    std::fs::copy(&db, &backup_a).unwrap();
    drop(s);
    // Back to the first backup; history B: bob added (its snapshot is built whole).
    std::fs::copy(&backup0, &db).unwrap();
    let mut s = Store::open(&db).unwrap();
    change(&mut s, |tx| people::add_user(tx, "bob", "", 0));
    drop(s);
    // Back to history A, at the same generation as B's snapshot.
    std::fs::copy(&backup_a, &db).unwrap();
    let mut s = Store::open(&db).unwrap();
    assert_ne!(
        open(&db).generation(),
        current_generation(s.conn()).unwrap()
    );
    let why = s.repair_snapshot().unwrap();
    assert!(
        why.is_some(),
        "every mfa-admin command's check found it sound"
    );
    change(&mut s, |tx| people::add_user(tx, "carol", "", 0));
    agrees(&mut s);
}
