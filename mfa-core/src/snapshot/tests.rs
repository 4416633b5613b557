//! Tests of the policy snapshot against the database it is built from.

use super::*;
use crate::contact::Contact;
use crate::net::IpRange;
use crate::store::people::Carrier;
use crate::store::rules::{NewNetRule, add_network, set_service, set_setting};
use crate::store::{Store, auth, factors, people};

/// An installation with a bit of everything, and enough users for several blocks.
pub(super) fn populated() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    s.change("t", "t", |tx| {
        set_setting(tx, "enabled", "on")?;
        set_setting(tx, "repeat_window", "5m")?;
        set_service(tx, "sshd", "passcode")?;
        set_service(tx, "sudo", "totp")?;
        set_service(tx, "ftp", "none")?;
        for (svc, range, require) in [
            ("*", "10.0.0.0/8", false),
            ("sshd", "10.1.0.0/16", true),
            ("sshd", "10.1.2.0/24", false),
            ("su", "192.0.2.0/24", false),
            ("*", "2001:db8::/32", false),
            ("*", "10.1.2.0/24", true),
            ("sshd-mfa", "10.1.2.0/24", true),
        ] {
            let rule = NewNetRule {
                service: svc.into(),
                range: IpRange::parse_any(range)?,
                require,
                log: (svc == "su").then(|| "none".to_string()),
                note: String::new(),
            };
            add_network(tx, &rule, 0)?;
        }
        for n in 0..100 {
            people::add_user(tx, &format!("user{n:03}"), "", 0)?;
        }
        people::add_user(tx, "ann", "Ann", 0)?;
        people::add_contact(
            tx,
            "ann",
            &Contact::email("ann@example.com")?,
            "work",
            None,
            0,
        )?;
        people::add_contact(
            tx,
            "ann",
            &Contact::phone("5552010199", "Verizon")?,
            "",
            None,
            0,
        )?;
        people::add_contact(tx, "ann", &Contact::sms("+447700900123")?, "", None, 0)?;
        // Duo names: one of its own, one the login name (records with and without one).
        people::set_duo_user(tx, "ann", Some("ann.b@corp.example"))?;
        people::set_duo_user(tx, "user031", Some("user031"))?;
        people::add_user(tx, "e.mile@corp", "", 0)?;
        factors::set_totp(tx, "e.mile@corp", &Key::generate("sha256", 8)?, 0)?;
        factors::set_backup_codes(tx, "e.mile@corp", &[vec![1], vec![2], vec![3]], 0)?;
        tx.execute(
            "INSERT INTO overrides (user, mandatory, exempt, self_enroll, log_level, double_logon_contact)
             VALUES ('user007', 1, 0, 1, 'rejects', NULL), ('user050', 0, 1, 0, NULL, NULL),
                    ('ann', 0, 0, NULL, NULL, 3)",
            [],
        )?;
        tx.execute("UPDATE users SET enabled = 0 WHERE name = 'user099'", [])?;
        tx.execute(
            "INSERT INTO lockouts (user, failures, locked_until) VALUES ('user003', 5, 4000000000)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    (dir, s)
}

#[test]
fn the_snapshot_answers_as_the_database_does() {
    let (_d, mut store) = populated();
    store.rebuild_snapshot().unwrap();
    let snap = Snapshot::load(store.path()).unwrap();
    assert_eq!(snap.generation(), current_generation(store.conn()).unwrap());
    let users = [
        "ann",
        "émile",
        "e.mile@corp",
        "user000",
        "user003",
        "user007",
        "user031",
        "user032",
        "user050",
        "user099",
        "nobody",
        "",
        "zzz",
        "aaa",
    ];
    let services = [
        "sshd",
        "sudo",
        "ftp",
        "su",
        "login",
        "su-l",
        "sudo-i",
        "sshd-publickey",
        "sshd-mfa",
        "sshd-mfa-test",
        "ftp-x-y",
        "-su",
        "login-",
    ];
    let addrs = [
        None,
        Some("10.1.2.3"),
        Some("10.1.3.3"),
        Some("10.9.9.9"),
        Some("192.0.2.7"),
        Some("::ffff:10.1.2.3"),
        Some("2001:db8::1"),
        Some("203.0.113.1"),
    ];
    for user in users {
        for service in services {
            for addr in addrs {
                let ip = addr.map(|a| a.parse().unwrap());
                let want = auth::facts(store.conn(), user, service, ip).unwrap();
                let got = snap.facts(user, service, ip);
                assert_eq!(got, want, "{user} {service} {addr:?}");
            }
        }
        let rec = snap.user(user);
        assert_eq!(
            rec.as_ref().map(|r| r.contacts.clone()).unwrap_or_default(),
            people::contacts(store.conn(), user).unwrap(),
            "{user}"
        );
        assert_eq!(
            rec.as_ref().and_then(|r| r.key.clone()),
            factors::totp_of(store.conn(), user).unwrap(),
            "{user}"
        );
        assert_eq!(
            rec.as_ref().and_then(|r| r.duo_user.clone()),
            people::duo_user(store.conn(), user).unwrap(),
            "{user}"
        );
    }
    assert_eq!(
        snap.user("ann").and_then(|r| r.duo_user).as_deref(),
        Some("ann.b@corp.example")
    );
    assert_eq!(
        snap.passcode_key().unwrap(),
        auth::passcode_key(store.conn()).unwrap()
    );
    assert_eq!(
        snap.templates(),
        crate::store::rules::templates(store.conn()).unwrap()
    );
    let names = |v: Vec<Carrier>| {
        v.into_iter()
            .map(|c| (c.name, c.suffix))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(snap.carriers()),
        names(people::carriers(store.conn()).unwrap())
    );
}

/// The double-logon contact goes through the snapshot as the database holds it: set, back
/// to the first contact, and for a user whose block is not the first.
#[test]
fn the_double_logon_contact_round_trips() {
    let (_d, mut store) = populated();
    let snap = Snapshot::load(store.path()).unwrap();
    let ann = snap.user("ann").unwrap();
    assert_eq!(ann.facts.double_logon_contact, Some(3));
    assert_eq!(ann.contacts.len(), 3);
    assert_eq!(
        snap.user("user007").unwrap().facts.double_logon_contact,
        None
    );
    assert_eq!(
        snap.user("user050").unwrap().facts.double_logon_contact,
        None
    );
    store
        .change("t", "t", |tx| {
            people::add_contact(
                tx,
                "user098",
                &Contact::email("x@example.com")?,
                "",
                Some(4),
                0,
            )?;
            let choose = |n| people::OverrideChange {
                double_logon_contact: Some(n),
                ..Default::default()
            };
            people::set_override(tx, "user098", &choose(Some(4)))?;
            people::set_override(tx, "ann", &choose(None))?;
            Ok(((), String::new()))
        })
        .unwrap();
    let snap = Snapshot::load(store.path()).unwrap();
    snap.verify_blocks().unwrap();
    assert_eq!(snap.user("ann").unwrap().facts.double_logon_contact, None);
    let u = snap.user("user098").unwrap();
    assert_eq!(u.facts.double_logon_contact, Some(4));
    assert_eq!(u.contacts[0].seq, 4);
    for user in ["ann", "user098", "user099", "user097"] {
        assert_eq!(
            snap.facts(user, "vsftpd", None),
            auth::facts(store.conn(), user, "vsftpd", None).unwrap(),
            "{user}"
        );
    }
}

/// A snapshot another version of mfa wrote (`MFAPOL03`, before the double-logon contact)
/// is not read as this format: logins read the database, and any mfa-admin command (a
/// package upgrade's `init`) rewrites it, saying why.
#[test]
fn a_snapshot_of_the_previous_format_is_rebuilt() {
    let (_d, mut store) = populated();
    let p = path_for(store.path());
    let mut old = std::fs::read(&p).unwrap();
    old[..8].copy_from_slice(b"MFAPOL03");
    std::fs::write(&p, &old).unwrap();
    let e = Snapshot::open(store.path()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Damage::Corrupt(_)), "{e:?}");
    assert!(
        text.contains("another version of mfa (MFAPOL03; this one reads MFAPOL07)"),
        "{text}"
    );
    assert!(text.contains("any mfa-admin command rewrites it"), "{text}");
    let why = store.repair_snapshot().unwrap();
    assert!(
        matches!(
            why,
            Some(crate::store::Rebuilt::Damaged(Damage::Corrupt(_)))
        ),
        "{why:?}"
    );
    let snap = Snapshot::load(store.path()).unwrap();
    assert_eq!(
        snap.user("ann").unwrap().facts.double_logon_contact,
        Some(3)
    );
    // Something else entirely keeps the old words.
    let mut foreign = std::fs::read(&p).unwrap();
    foreign[..8].copy_from_slice(b"NOTMFA!!");
    std::fs::write(&p, &foreign).unwrap();
    let text = Snapshot::open(store.path()).unwrap_err().to_string();
    assert!(text.contains("bad header"), "{text}");
}

#[test]
fn a_change_rewrites_it_and_a_damaged_file_is_no_snapshot() {
    let (_d, mut store) = populated();
    let before = Snapshot::load(store.path()).unwrap().generation();
    store
        .change("t", "t", |tx| {
            Ok((set_service(tx, "login", "totp")?, String::new()))
        })
        .unwrap();
    let snap = Snapshot::load(store.path()).unwrap();
    assert!(snap.generation() > before);
    assert_eq!(snap.facts("ann", "login", None).method, "totp");
    // Behind mfa's back: the generation does not move, so only a rebuild sees it.
    store
        .conn()
        .execute("DELETE FROM services WHERE name = 'login'", [])
        .unwrap();
    assert!(!store.ensure_snapshot().unwrap());
    store
        .conn()
        .execute(
            &format!(
                "UPDATE meta SET value = '{}' WHERE key = '{GENERATION_KEY}'",
                before + 7
            ),
            [],
        )
        .unwrap();
    assert!(store.ensure_snapshot().unwrap());
    assert_eq!(
        Snapshot::load(store.path())
            .unwrap()
            .facts("ann", "login", None)
            .method,
        "any"
    );
    // A truncated or foreign file is ignored (the module then reads the database).
    let p = path_for(store.path());
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    assert!(Snapshot::load(store.path()).is_none());
    let mut other = bytes.clone();
    other[3] = b'X';
    std::fs::write(&p, &other).unwrap();
    assert!(Snapshot::load(store.path()).is_none());
    use std::os::unix::fs::PermissionsExt;
    store.rebuild_snapshot().unwrap();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "it holds keys");
    // A snapshot others could have written is not trusted.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
    assert!(Snapshot::load(store.path()).is_none());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(Snapshot::load(store.path()).is_some());
    let dir = store.path().parent().unwrap().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(
        Snapshot::load(store.path()).is_none(),
        "nor in a directory anyone can write"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_service_without_rules_follows_its_family() {
    let (_d, mut store) = populated();
    let snap = Snapshot::load(store.path()).unwrap();
    let ip = |a: &str| Some(a.parse().unwrap());
    // su has only a network rule: su-l takes it, and `*`'s method (as su does).
    let su_l = snap.facts("ann", "su-l", ip("192.0.2.7"));
    assert_eq!(su_l.method, "any");
    assert_eq!(
        su_l.network,
        snap.facts("ann", "su", ip("192.0.2.7")).network
    );
    assert!(su_l.network.is_some_and(|n| !n.require));
    // sudo-i takes sudo's method; sshd-publickey sshd's method and network rules.
    assert_eq!(snap.facts("ann", "sudo-i", None).method, "totp");
    let pk = snap.facts("ann", "sshd-publickey", ip("10.1.9.9"));
    assert_eq!(pk.method, "passcode");
    assert!(
        pk.network.is_some_and(|n| n.require),
        "sshd's /16 rule decides"
    );
    // The nearest name with a rule wins: sshd-mfa has a network rule (and no method).
    let t = snap.facts("ann", "sshd-mfa-test", ip("10.1.2.3"));
    assert_eq!(t.method, "any", "sshd-mfa's method is `*`'s, not sshd's");
    // A name that is no family member stays on `*`.
    assert_eq!(snap.facts("ann", "subscribe", None).method, "any");
    assert_eq!(snap.facts("ann", "-su", None).method, "any");

    // A rule of its own ends the inheritance, for methods and for network rules alike.
    store
        .change("t", "t", |tx| {
            set_service(tx, "sudo-i", "none")?;
            let rule = NewNetRule {
                service: "su-l".into(),
                range: IpRange::parse_any("198.51.100.0/24")?,
                require: true,
                log: None,
                note: String::new(),
            };
            add_network(tx, &rule, 0)?;
            Ok(((), String::new()))
        })
        .unwrap();
    let snap = Snapshot::load(store.path()).unwrap();
    assert_eq!(snap.facts("ann", "sudo-i", None).method, "none");
    assert_eq!(snap.facts("ann", "sudo", None).method, "totp");
    assert_eq!(snap.facts("ann", "su-l", ip("192.0.2.7")).network, None);
    assert!(snap.facts("ann", "su", ip("192.0.2.7")).network.is_some());
    for service in ["su-l", "sudo-i", "su", "sudo"] {
        for addr in [None, ip("192.0.2.7"), ip("198.51.100.1")] {
            assert_eq!(
                snap.facts("ann", service, addr),
                auth::facts(store.conn(), "ann", service, addr).unwrap(),
                "{service} {addr:?}"
            );
        }
    }
}
