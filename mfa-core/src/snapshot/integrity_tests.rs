//! The snapshot's checksums against damage: every flipped bit is caught before anything is
//! trusted, a damaged part is read from the database (and reported), and a snapshot or
//! database that others can read is refused.

use std::os::unix::fs::PermissionsExt;

use super::tests::populated;
use super::*;
use crate::policy::Facts;
use crate::store::{Rebuilt, Store, auth, factors, people};

/// The record the database holds for `user`.
fn db_record(store: &Store, user: &str) -> Option<UserRecord> {
    let facts = auth::facts(store.conn(), user, "*", None).unwrap().user?;
    Some(UserRecord {
        facts,
        key: factors::totp_of(store.conn(), user).unwrap(),
        contacts: people::contacts(store.conn(), user).unwrap(),
        duo_user: people::duo_user(store.conn(), user).unwrap(),
    })
}

/// Users in every block, at block edges, and unknown ones (before, between, after).
const USERS: &[&str] = &[
    "", "aaa", "ann", "nobody", "user000", "user003", "user007", "user031", "user032", "user050",
    "user063", "user064", "user099", "zzz", "émile",
];

/// (service, address) pairs that reach every kind of rule.
const CASES: &[(&str, Option<&str>)] = &[
    ("sshd", Some("10.1.2.3")),
    ("sshd", Some("10.9.9.9")),
    ("sudo", None),
    ("su", Some("192.0.2.7")),
    ("su-l", Some("192.0.2.1")),
    ("login", Some("2001:db8::1")),
    ("ftp", Some("203.0.113.1")),
];

fn ip(a: Option<&str>) -> Option<std::net::IpAddr> {
    a.map(|a| a.parse().unwrap())
}

/// The attack: one flipped bit lost a mandatory flag, a required network rule,
/// widened a trusted range, or sent a code elsewhere (35 bypasses and 8 misdirected codes in
/// 600 mutations). Now: every byte of a real snapshot, three bits each. The whole-file check
/// (`verify`, what mfa-admin runs) catches every one; a login's reads (the head at load, the
/// one block of users it needs) either fail (the login reads the database) or, when the
/// flip is in another block, give exactly the database's answers; no read of the block that
/// holds the flipped bit ever succeeds.
#[test]
fn every_flipped_bit_is_caught_and_no_read_disagrees_with_the_database() {
    let (_d, mut store) = populated();
    store.rebuild_snapshot().unwrap();
    let db = store.path().to_path_buf();
    let p = path_for(&db);
    let good = std::fs::read(&p).unwrap();
    let records: Vec<Option<UserRecord>> = USERS.iter().map(|u| db_record(&store, u)).collect();
    let facts: Vec<Vec<Facts>> = USERS
        .iter()
        .map(|u| {
            CASES
                .iter()
                .map(|(s, a)| auth::facts(store.conn(), u, s, ip(*a)).unwrap())
                .collect()
        })
        .collect();
    let clean = Snapshot::open(&db).unwrap().unwrap();
    let head_len = clean.head_len();
    let blocks: Vec<Option<std::ops::Range<usize>>> =
        USERS.iter().map(|u| clean.block_range(u)).collect();
    assert!(
        blocks
            .iter()
            .flatten()
            .collect::<std::collections::HashSet<_>>()
            .len()
            >= 4,
        "the sample must span several blocks"
    );
    drop(clean);

    let (mut mutations, mut head_refused, mut reads_refused, mut reads_ok) = (0, 0, 0, 0);
    let mut rules_refused = 0;
    for byte in 0..good.len() {
        for bit in [byte % 8, (byte + 3) % 8, 7 - byte % 8] {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            std::fs::write(&p, &bad).unwrap();
            mutations += 1;
            assert!(
                verify(&db).is_err(),
                "bit {bit} of byte {byte}: the whole-file check did not see it"
            );
            let snap = match Snapshot::open(&db) {
                Err(_) => {
                    head_refused += 1;
                    continue;
                }
                Ok(None) => panic!("the snapshot vanished"),
                Ok(Some(s)) => s,
            };
            assert!(
                byte >= head_len,
                "bit {bit} of byte {byte} (in the head) was not caught at load"
            );
            for (i, user) in USERS.iter().enumerate() {
                match snap.lookup(user) {
                    Err(_) => reads_refused += 1,
                    Ok(rec) => {
                        reads_ok += 1;
                        assert!(
                            !blocks[i].as_ref().is_some_and(|b| b.contains(&byte)),
                            "bit {bit} of byte {byte}: {user:?} was read from the damaged block"
                        );
                        assert_eq!(rec, records[i], "bit {bit} of byte {byte}: {user:?}");
                        for (j, (service, addr)) in CASES.iter().enumerate() {
                            match snap.facts_checked(rec.as_ref(), service, user, ip(*addr)) {
                                Ok(f) => assert_eq!(
                                    f, facts[i][j],
                                    "bit {bit} of byte {byte}: {user:?} {service} {addr:?}"
                                ),
                                // A damaged block of rules: the login asks the database.
                                Err(_) => rules_refused += 1,
                            }
                        }
                    }
                }
            }
        }
    }
    std::fs::write(&p, &good).unwrap();
    assert!(verify(&db).unwrap().is_some());
    eprintln!(
        "{mutations} mutations of a {} byte snapshot: {head_refused} refused at load, \
         {reads_refused} user reads refused, {reads_ok} user reads from intact blocks (all equal \
         to the database), {rules_refused} rule lookups refused",
        good.len()
    );
    assert!(head_refused > 0 && reads_refused > 0 && reads_ok > 0 && rules_refused > 0);
}

/// A login that meets a damaged block reads the user from the database (never "unknown"),
/// and says so in the auth log; a damaged head is reported at load. mfa-admin rewrites it.
#[test]
fn a_damaged_snapshot_is_reported_read_from_the_database_and_rebuilt() {
    let (_d, mut store) = populated();
    let db = store.path().to_path_buf();
    let p = path_for(&db);
    let good = std::fs::read(&p).unwrap();
    let snap = Snapshot::open(&db).unwrap().unwrap();
    let block = snap.block_range("user040").unwrap();
    drop(snap);
    let inbox = crate::authlog::path_for(&db);

    // The bug's example: an unparsable user record read as an unknown user.
    let mut bad = good.clone();
    bad[block.start + 3] ^= 0x04;
    std::fs::write(&p, &bad).unwrap();
    let snap = Snapshot::load(&db).expect("the head is intact");
    assert!(matches!(snap.lookup("user040"), Err(Damage::Corrupt(_))));
    assert_eq!(snap.user("user040"), db_record(&store, "user040"));
    assert!(snap.user("user040").is_some(), "never an unknown user");
    let log = std::fs::read_to_string(&inbox).unwrap();
    assert!(
        log.contains("\"outcome\":\"error\"")
            && log.contains("user040")
            && log.contains("does not match its checksum"),
        "{log}"
    );
    // The database unreadable too: a record that is denied, not an unknown user.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let rec = snap.user("user040").unwrap();
    assert!(!rec.facts.enabled && rec.facts.mandatory, "{rec:?}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    drop(snap);

    // A damaged head: no snapshot, reported.
    std::fs::remove_file(&inbox).unwrap();
    let mut bad = good.clone();
    bad[HEADER + 5] ^= 0x80;
    std::fs::write(&p, &bad).unwrap();
    assert!(Snapshot::load(&db).is_none());
    let log = std::fs::read_to_string(&inbox).unwrap();
    assert!(
        log.contains("its head does not match its checksum"),
        "{log}"
    );

    // mfa-admin's check rewrites it (every command runs it).
    match store.repair_snapshot().unwrap() {
        Some(Rebuilt::Damaged(Damage::Corrupt(why))) => assert!(why.contains("checksum"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&p).unwrap(), good);
    assert_eq!(store.repair_snapshot().unwrap(), None);
}

/// A snapshot others can read (every TOTP key, the hash key) is not used, and mfa-admin
/// rewrites it private; a database others can read is refused, naming the fix.
#[test]
fn secrets_readable_by_others_are_refused() {
    let (_d, mut store) = populated();
    let db = store.path().to_path_buf();
    let p = path_for(&db);
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        match Snapshot::open(&db) {
            Err(Damage::Insecure(why)) => assert!(why.contains("chmod 600"), "{why}"),
            other => panic!("mode {mode:o}: {other:?}"),
        }
        assert!(verify(&db).is_err());
        assert!(matches!(
            store.repair_snapshot().unwrap(),
            Some(Rebuilt::Damaged(Damage::Insecure(_)))
        ));
        let now = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(now, 0o600);
        assert!(Snapshot::open(&db).unwrap().is_some());
    }
    drop(store);
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = Store::open(&db).unwrap_err().to_string();
        assert!(
            e.contains("lets others read it") && e.contains("chmod 600"),
            "{e}"
        );
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Store::open(&db).is_ok());
}

/// A damaged block of network rules: the deciding rule comes from the database (a login
/// never takes a trusted range the database does not have), and it is reported.
#[test]
fn a_damaged_block_of_rules_is_read_from_the_database_and_reported() {
    let (_d, store) = populated();
    let db = store.path().to_path_buf();
    let p = path_for(&db);
    let mut bytes = std::fs::read(&p).unwrap();
    let head_len = Snapshot::open(&db).unwrap().unwrap().head_len();
    // The first rule block follows the head; widen a range's last key.
    bytes[head_len + 40] ^= 0x01;
    std::fs::write(&p, &bytes).unwrap();
    let snap = Snapshot::load(&db).expect("the head is intact");
    for (service, addr) in CASES {
        let want = auth::facts(store.conn(), "ann", service, ip(*addr)).unwrap();
        assert_eq!(
            snap.facts("ann", service, ip(*addr)),
            want,
            "{service} {addr:?}"
        );
    }
    let log = std::fs::read_to_string(crate::authlog::path_for(&db)).unwrap();
    assert!(
        log.contains("a block of its network rules does not match its checksum"),
        "{log}"
    );
    assert!(verify(&db).is_err());
}
