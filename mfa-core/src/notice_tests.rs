//! Tests of the notices: their texts (hostile names and addresses stay inert, SMS stays
//! short), and which notices the settings queue.

use super::*;
use std::collections::BTreeMap;

fn spool() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for s in spool::SUBDIRS {
        std::fs::create_dir(d.path().join(s)).unwrap();
    }
    d
}

fn settings(pairs: &[(&str, &str)]) -> Settings {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_stored(&map).unwrap()
}

fn contact(seq: i64, channel: &str, to: &str) -> ContactRow {
    ContactRow {
        seq,
        channel: channel.into(),
        address: to.into(),
        carrier: None,
        to: to.into(),
        masked: "m***".into(),
        label: String::new(),
    }
}

fn queued(d: &Path) -> Vec<Message> {
    let mut out: Vec<Message> = std::fs::read_dir(d.join("new"))
        .unwrap()
        .map(|e| spool::read(&e.unwrap().path()).unwrap())
        .collect();
    out.sort_by(|a, b| a.to.cmp(&b.to));
    out
}

fn lockout(user: &str, address: &str) -> Event {
    Event::Lockout {
        user: user.into(),
        until: 1_764_536_700,
        count: 5,
        service: "sshd".into(),
        address: address.into(),
        untold: 0,
    }
}

#[test]
fn the_lockout_texts_say_who_until_when_how_often_where() {
    let (s, b) = text(&lockout("ann", "192.0.2.7"), To::Admin, "web1", false);
    assert_eq!(s, "web1: user ann locked out");
    assert!(
        b.contains("user ann was locked out until 2025-11-30 21:05 UTC after 5 failed attempts on sshd from 192.0.2.7"),
        "{b}"
    );
    let (s, b) = text(&lockout("ann", ""), To::User, "web1", false);
    assert_eq!(s, "web1: your account locked out");
    assert!(
        b.contains("your account was locked out") && !b.contains("ann"),
        "{b}"
    );
    assert!(
        b.ends_with("on sshd. If this was not you, tell your administrator."),
        "{b}"
    );
}

#[test]
fn hostile_names_and_addresses_never_break_a_line_or_a_header() {
    let evil = "x\r\nBcc: all@example.com\u{1b}[2J\u{202e}\u{0}";
    for event in [
        lockout(evil, evil),
        Event::Disabled {
            user: evil.into(),
            why: Disabled::Attempt {
                service: evil.into(),
                address: evil.into(),
            },
        },
        Event::FailMode {
            detail: evil.into(),
        },
    ] {
        for who in [To::Admin, To::User] {
            for sms in [false, true] {
                let (s, b) = text(&event, who, evil, sms);
                for t in [&s, &b] {
                    assert!(!t.chars().any(|c| c.is_control()), "{t:?}");
                    assert!(!t.contains('\u{202e}'), "{t:?}");
                }
                assert!(b.contains("\\u{d}\\u{a}Bcc") || b.contains("..."), "{b}");
                assert!(s.chars().count() <= 78, "{s}");
            }
        }
    }
    // A long name is cut.
    let long = "a".repeat(5000);
    let (s, b) = text(&lockout(&long, &long), To::Admin, "h", false);
    assert!(b.len() < 600 && s.len() <= 78, "{} {}", b.len(), s.len());
}

#[test]
fn an_sms_notice_is_one_short_text() {
    let e = Event::Disabled {
        user: "ann".into(),
        why: Disabled::Inactive {
            since: 0,
            after: 90 * 86_400,
        },
    };
    let (s, b) = text(&e, To::User, &"h".repeat(300), true);
    assert!(s.is_empty());
    assert!(b.chars().count() <= SMS_MAX, "{}", b.chars().count());
    let (_, b) = text(&e, To::Admin, "web1", false);
    assert!(
        b.contains("since 1970-01-01 00:00 UTC (inactive_after = 90d)"),
        "{b}"
    );
}

#[test]
fn utc_dates() {
    assert_eq!(utc(0), "1970-01-01 00:00 UTC");
    assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    assert_eq!(utc(1_764_536_759), "2025-11-30 21:05 UTC");
    assert_eq!(utc(-60), "1969-12-31 23:59 UTC");
}

#[test]
fn the_settings_decide_who_is_told() {
    let contacts = [
        contact(2, "sms", "+15551230002"),
        contact(1, "email", "ann@example.org"),
    ];
    let e = lockout("ann", "192.0.2.7");
    // Nothing asked for: nothing queued.
    let d = spool();
    let sent = send(d.path(), &settings(&[]), &e, &contacts, 100);
    assert_eq!(sent, Sent::default());
    assert!(queued(d.path()).is_empty());
    // notify_admin without admin_email: nothing.
    let s = settings(&[("notify_admin", "lockout")]);
    assert_eq!(send(d.path(), &s, &e, &contacts, 100).queued, 0);
    // Both: the admin's email and the user's first contact (lowest sequence), as notices.
    let s = settings(&[
        ("notify_admin", "lockout,disabled"),
        ("notify_user", "lockout"),
        ("admin_email", "root@example.com"),
    ]);
    let sent = send(d.path(), &s, &e, &contacts, 100);
    assert_eq!(sent.queued, 2, "{sent:?}");
    let q = queued(d.path());
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].to, "ann@example.org");
    assert_eq!(q[1].to, "root@example.com");
    assert!(q.iter().all(|m| m.kind == Kind::Notice && m.user == "ann"));
    assert_eq!(q[1].channel, Channel::Email);
    assert!(q[1].body.contains("user ann"));
    assert!(q[0].body.contains("your account"));
    // notify_user does not name disabled: only the admin is told of one.
    let d2 = spool();
    let dis = Event::Disabled {
        user: "ann".into(),
        why: Disabled::Attempt {
            service: "sshd".into(),
            address: String::new(),
        },
    };
    assert_eq!(send(d2.path(), &s, &dis, &contacts, 100).queued, 1);
    assert_eq!(queued(d2.path())[0].to, "root@example.com");
    // A user without contacts: the admin only.
    let d3 = spool();
    assert_eq!(send(d3.path(), &s, &e, &[], 100).queued, 1);
}

#[test]
fn a_spool_that_cannot_take_it_is_an_error_returned_not_a_failure() {
    let d = tempfile::tempdir().unwrap();
    let s = settings(&[
        ("notify_admin", "fail-mode"),
        ("admin_email", "root@example.com"),
    ]);
    let e = Event::FailMode {
        detail: "the sender looks down".into(),
    };
    let sent = send(&d.path().join("missing"), &s, &e, &[], 100);
    assert_eq!(sent.queued, 0);
    assert_eq!(sent.errors.len(), 1);
    assert!(
        sent.errors[0].starts_with("fail-mode notice to the administrator"),
        "{sent:?}"
    );
}
