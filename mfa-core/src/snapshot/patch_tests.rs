//! Tests of updating the snapshot ([`super::patch`]): after every kind of change, the
//! updated file says exactly what a build from the database says, and it was updated, not
//! built, where it should be.

use super::tests::populated;
use super::*;
use crate::contact::Contact;
use crate::net::IpRange;
use crate::store::rules::{NewNetRule, add_network, set_service, set_setting};
use crate::store::{Store, auth, factors, people};

pub(super) fn patches() -> usize {
    PATCHES.with(std::cell::Cell::get)
}

/// The snapshot on disk says what a build says, is of the database's generation, and every
/// block checks.
pub(super) fn agrees(s: &mut Store) {
    let (generation, fresh) = s
        .read(|tx| Ok((current_generation(tx)?, build(tx)?)))
        .unwrap();
    assert_eq!(verify(s.path()).unwrap(), Some(generation));
    assert!(
        same_content(s.path(), fresh).unwrap(),
        "differs from a build"
    );
    let locks = s.read(|tx| lockouts::encode(tx)).unwrap();
    assert_eq!(
        std::fs::read(lockouts::path_for(s.path())).unwrap(),
        locks,
        "the lockouts file differs from the database"
    );
}

/// One administrator's change, then the check; `patched`: whether it must have been a patch.
fn change(
    s: &mut Store,
    patched: bool,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> crate::Result<()>,
) {
    let before = patches();
    s.change("t", "t", |tx| {
        f(tx)?;
        Ok(((), String::new()))
    })
    .unwrap();
    assert_eq!(patches() - before, usize::from(patched), "patched");
    agrees(s);
}

#[test]
fn every_kind_of_change_is_patched_and_says_what_a_build_says() {
    let (_d, mut s) = populated();
    agrees(&mut s);
    // Before every name: the first block gets a new first name.
    change(&mut s, true, |tx| people::add_user(tx, "aaa", "", 0));
    // 70 users into one block: it grows past twice its size and splits.
    change(&mut s, true, |tx| {
        for i in 0..70 {
            people::add_user(tx, &format!("user050x{i:02}"), "", 0)?;
        }
        Ok(())
    });
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    assert!(snap.all_user_entries().unwrap().len() >= 5);
    // Whole blocks emptied.
    change(&mut s, true, |tx| {
        for i in 0..45 {
            people::delete_user(tx, &format!("user{i:03}"))?;
        }
        Ok(())
    });
    // Each per-user table.
    change(&mut s, true, |tx| {
        people::add_contact(
            tx,
            "user060",
            &Contact::email("u60@example.com")?,
            "",
            None,
            0,
        )?;
        Ok(())
    });
    change(&mut s, true, |tx| {
        tx.execute(
            "INSERT INTO overrides (user, mandatory, exempt) VALUES ('user061', 1, 0)",
            [],
        )?;
        Ok(())
    });
    change(&mut s, true, |tx| {
        factors::set_totp(tx, "user062", &crate::totp::Key::generate("sha1", 6)?, 0)?;
        factors::set_backup_codes(tx, "user063", &[vec![7], vec![8]], 0)
    });
    change(&mut s, true, |tx| {
        factors::use_backup_code(tx, "e.mile@corp", &[2]).map(|_| ())
    });
    change(&mut s, true, |tx| {
        people::set_enabled(tx, "user070", false).map(|_| ())
    });
    // Rules and services: the rules are encoded again, the users copied.
    change(&mut s, true, |tx| {
        let rule = NewNetRule {
            service: "ftp".into(),
            range: IpRange::parse_any("198.51.100.0/24")?,
            require: false,
            log: None,
            note: String::new(),
        };
        add_network(tx, &rule, 0).map(|_| ())
    });
    change(&mut s, true, |tx| set_service(tx, "login", "passcode"));
    change(&mut s, true, |tx| set_setting(tx, "repeat_window", "7m"));
    // A carrier (its suffix is in every contact of it): built whole.
    change(&mut s, false, |tx| {
        people::add_carrier(tx, "Acme", "sms.acme.example")
    });
    // A lockout, as a login records it (not an administrator's change): its own file is
    // written, the snapshot left as it is.
    let before = patches();
    let snapshot_before = std::fs::read(path_for(s.path())).unwrap();
    s.policy_write(false, |tx| {
        Ok((
            auth::record_lockout(tx, "user080", 5, 0, 4_000_000_000)?,
            true,
        ))
    })
    .unwrap();
    assert_eq!(patches() - before, 0);
    assert_eq!(std::fs::read(path_for(s.path())).unwrap(), snapshot_before);
    agrees(&mut s);
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    assert_eq!(
        snap.facts("user080", "sshd", None).locked_until,
        4_000_000_000
    );
    // Every user gone, then one added to an empty users section.
    change(&mut s, true, |tx| {
        tx.execute("DELETE FROM users", [])?;
        Ok(())
    });
    change(&mut s, true, |tx| people::add_user(tx, "zed", "", 0));
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    assert!(snap.lookup("zed").unwrap().is_some());
    assert!(snap.lookup("ann").unwrap().is_none());
}

/// A snapshot that is not of the database's generation before the change (edited behind
/// mfa's back) is not patched: built whole.
#[test]
fn a_stale_snapshot_is_built_whole_not_patched() {
    let (_d, mut s) = populated();
    s.write(|tx| {
        tx.execute("UPDATE users SET enabled = 0 WHERE name = 'user010'", [])?;
        bump_generation(tx)
    })
    .unwrap();
    change(&mut s, false, |tx| people::add_user(tx, "newcomer", "", 0));
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    assert!(!snap.lookup("user010").unwrap().unwrap().facts.enabled);
}

/// The block a change touches is damaged: built whole from the database, never patched from
/// bad bytes.
#[test]
fn a_damaged_block_under_a_change_is_built_whole() {
    let (_d, mut s) = populated();
    let p = path_for(s.path());
    let range = Snapshot::open(s.path())
        .unwrap()
        .unwrap()
        .block_range("user020")
        .unwrap();
    let mut bytes = std::fs::read(&p).unwrap();
    bytes[range.start + 3] ^= 0x10;
    std::fs::write(&p, &bytes).unwrap();
    change(&mut s, false, |tx| people::add_user(tx, "user020a", "", 0));
}

/// Copies come from the old file's bytes: a patch leaves most of the file as it was and
/// its result reads back whole (no short copy), also at a size where blocks split.
#[test]
fn a_patch_of_many_blocks_copies_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    s.change("t", "t", |tx| {
        for i in 0..5000 {
            people::add_user(tx, &format!("bulk{i:05}"), "", 0)?;
        }
        Ok(((), String::new()))
    })
    .unwrap();
    let before = std::fs::read(path_for(s.path())).unwrap();
    change(&mut s, true, |tx| people::add_user(tx, "bulk02500a", "", 0));
    let after = std::fs::read(path_for(s.path())).unwrap();
    let head = Snapshot::open(s.path()).unwrap().unwrap().head_len();
    // The rules and the blocks before the changed one are the same bytes at the same place.
    let same = before[head..]
        .iter()
        .zip(&after[head..])
        .take_while(|(a, b)| a == b)
        .count();
    assert!(
        same > after.len() / 3,
        "only {same} of {} bytes copied in place",
        after.len()
    );
}

/// A long random walk of changes (names of the shapes mfa-admin accepts: capitals, dots,
/// underscores, at signs, dollars, backslashes, names that sort before, between and after
/// the blocks), each patched: after every step
/// the snapshot says what a build says.
#[test]
fn a_random_walk_of_changes_always_agrees_with_a_build() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    s.change("t", "t", |tx| {
        for i in 0..300 {
            people::add_user(tx, &format!("m{:04}", i * 3), "", 0)?;
        }
        Ok(((), String::new()))
    })
    .unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let shapes = [
        "m{}", "M{}", "m{}.x", "_{}", "m{}@corp", "0{}", "zz{}", "a$b\\{}",
    ];
    let mut live: Vec<String> = (0..300).map(|i| format!("m{:04}", i * 3)).collect();
    for step in 0..120 {
        let before = patches();
        let op = next(5);
        let mut names = Vec::new();
        for _ in 0..=next(40) {
            let shape = shapes[next(shapes.len() as u64) as usize];
            names.push(shape.replace("{}", &format!("{:04}", next(1000))));
        }
        let mut victims: Vec<String> = (0..=next(8))
            .filter_map(|_| live.get(next(live.len().max(1) as u64) as usize).cloned())
            .collect();
        victims.sort();
        victims.dedup();
        s.change("t", "t", |tx| {
            match op {
                0 | 1 => {
                    for n in &names {
                        if people::user(tx, n)?.is_none() {
                            people::add_user(tx, n, "", 0)?;
                        }
                    }
                }
                2 => {
                    for v in &victims {
                        if people::user(tx, v)?.is_some() {
                            people::delete_user(tx, v)?;
                        }
                    }
                }
                3 => {
                    for v in &victims {
                        if people::user(tx, v)?.is_some() && people::contacts(tx, v)?.len() < 4 {
                            let c = Contact::email(&format!("c{step}@example.com"))?;
                            people::add_contact(tx, v, &c, "", None, 0)?;
                        }
                    }
                }
                _ => {
                    for v in &victims {
                        if people::user(tx, v)?.is_some() {
                            people::set_enabled(tx, v, step % 2 == 0)?;
                        }
                    }
                }
            }
            Ok(((), String::new()))
        })
        .unwrap();
        match op {
            0 | 1 => live.extend(names),
            2 => live.retain(|n| !victims.contains(n)),
            _ => {}
        }
        live.sort();
        live.dedup();
        assert_eq!(patches() - before, 1, "step {step} was not a patch");
        agrees(&mut s);
    }
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    for n in &live {
        assert!(snap.lookup(n).unwrap().is_some(), "{n} lost");
    }
}

/// Importing the export of the rules in force changes no user, rule or carrier row: a
/// patch of the head (an import used to rewrite every carrier, which builds whole), and
/// the result agrees with a build; an import that changes one user patches that user.
#[test]
fn an_import_of_the_rules_in_force_is_a_patch() {
    let (_d, mut s) = populated();
    let doc = s.read(|tx| crate::export::export(tx)).unwrap();
    change(&mut s, true, |tx| {
        crate::export::import(tx, &doc, 0).map(|_| ())
    });
    let mut doc2 = doc.clone();
    doc2.users.retain(|u| u.name != "user042");
    change(&mut s, true, |tx| {
        crate::export::import(tx, &doc2, 0).map(|_| ())
    });
    let snap = Snapshot::open(s.path()).unwrap().unwrap();
    assert!(snap.lookup("user042").unwrap().is_none());
    assert!(snap.lookup("user043").unwrap().is_some());
}

/// A user's Duo name is part of their record: setting, changing and clearing it (by
/// `user set` or by an import) patches that user's block, and the snapshot's record, the
/// database fallback and `people::duo_user` say the same.
#[test]
fn a_duo_name_is_patched_into_the_users_record() {
    let (_d, mut s) = populated();
    change(&mut s, true, |tx| {
        people::set_duo_user(tx, "user042", Some("u42@corp.example")).map(|_| ())
    });
    let check = |s: &Store, user: &str, want: Option<&str>| {
        let snap = Snapshot::open(s.path()).unwrap().unwrap();
        let rec = snap.lookup(user).unwrap().unwrap();
        assert_eq!(rec.duo_user.as_deref(), want, "{user}");
        assert_eq!(rec.facts.duo, want.is_some(), "{user}");
        assert_eq!(
            people::duo_user(s.conn(), user).unwrap().as_deref(),
            want,
            "{user}"
        );
        let db = user_from_database(s.path(), user).unwrap();
        assert_eq!(db, rec, "the database fallback says what the snapshot says");
    };
    check(&s, "user042", Some("u42@corp.example"));
    check(&s, "user043", None);
    change(&mut s, true, |tx| {
        people::set_duo_user(tx, "user042", Some("user042")).map(|_| ())
    });
    check(&s, "user042", Some("user042"));
    // An import that changes only this user's Duo name is a patch too.
    let mut doc = s.read(|tx| crate::export::export(tx)).unwrap();
    let u = doc.users.iter_mut().find(|u| u.name == "user042").unwrap();
    assert_eq!(u.duo_user.as_deref(), Some("user042"), "exported");
    u.duo_user = None;
    change(&mut s, true, |tx| {
        crate::export::import(tx, &doc, 0).map(|_| ())
    });
    check(&s, "user042", None);
    assert_eq!(people::duo_user(s.conn(), "nosuch").unwrap(), None);
}
