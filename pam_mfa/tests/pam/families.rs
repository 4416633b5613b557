//! Through libpam, as Debian names its services: a rule for `su` governs `su -` (service
//! `su-l`) and one for `sudo` governs `sudo -i` (`sudo-i`), for methods and network rules,
//! until they get rules of their own; and the contact menu tells alike contacts apart.

use mfa_core::contact::Contact;
use mfa_core::net::IpRange;
use mfa_core::store::{people, rules};

use super::harness::{self, PAM_PERM_DENIED, PAM_SUCCESS};
use super::{Install, code_for};

/// An installation whose `su`, `su-l`, `sudo` and `sudo-i` stacks are the test stack (pam_mfa,
/// then pam_debug refusing when the module ignores, so a bypass is visible).
fn debian() -> Install {
    let i = Install::new();
    let stack = std::fs::read(i.path("pam.d/mfa-test")).unwrap();
    for svc in ["su", "su-l", "sudo", "sudo-i"] {
        std::fs::write(i.path(&format!("pam.d/{svc}")), &stack).unwrap();
    }
    i.user("ann", &["ann@example.com"]);
    i
}

fn method(i: &Install, service: &str, method: &str) {
    i.store()
        .change("test", "service set", |tx| {
            Ok((rules::set_service(tx, service, method)?, String::new()))
        })
        .unwrap();
}

fn trust(i: &Install, service: &str, cidr: &str) {
    i.store()
        .change("test", "net add", |tx| {
            let rule = rules::NewNetRule {
                service: service.into(),
                range: IpRange::parse_any(cidr)?,
                require: false,
                log: None,
                note: String::new(),
            };
            Ok((rules::add_network(tx, &rule, 0)?, String::new()))
        })
        .unwrap();
}

/// What a login on `service` from `rhost` did: (PAM code, number of prompts).
fn login(i: &Install, service: &str, rhost: Option<&str>) -> (i32, usize) {
    let r = harness::authenticate(
        &i.path("pam.d"),
        service,
        "ann",
        rhost,
        Box::new(|p: &str| code_for(i, p).map(String::into_bytes)),
    );
    (r.code, r.prompts().len())
}

#[test]
fn su_l_follows_su_until_it_has_a_rule_of_its_own() {
    let i = debian();
    i.set("repeat_window", "0");
    // `*` is `any` (seeded); su none: `su -` is not challenged either.
    method(&i, "su", "none");
    assert_eq!(login(&i, "su", None), (PAM_PERM_DENIED, 0), "ignored");
    assert_eq!(login(&i, "su-l", None), (PAM_PERM_DENIED, 0), "as su");
    // su passcode: `su -` asks for the passcode too.
    method(&i, "su", "passcode");
    assert_eq!(login(&i, "su", None), (PAM_SUCCESS, 1));
    assert_eq!(login(&i, "su-l", None), (PAM_SUCCESS, 1), "as su");
    let services: Vec<String> = {
        i.store().ingest_auth_log().unwrap();
        let c = rusqlite::Connection::open(i.path("db/mfa.db")).unwrap();
        let mut st = c
            .prepare("SELECT service FROM auth_log WHERE outcome = 'success' ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(services, ["su", "su-l"], "the log names the real service");
    // A rule of its own: `su -` keeps it, whatever su's says.
    method(&i, "su-l", "none");
    assert_eq!(login(&i, "su-l", None), (PAM_PERM_DENIED, 0));
    assert_eq!(login(&i, "su", None), (PAM_SUCCESS, 1));
    method(&i, "su", "none");
    method(&i, "su-l", "passcode");
    assert_eq!(login(&i, "su-l", None), (PAM_SUCCESS, 1));
    assert_eq!(login(&i, "su", None), (PAM_PERM_DENIED, 0));
}

#[test]
fn sudo_i_takes_sudos_network_rules_and_method() {
    let i = debian();
    i.set("repeat_window", "0");
    method(&i, "sudo", "passcode");
    trust(&i, "sudo", "192.0.2.0/24");
    for svc in ["sudo", "sudo-i"] {
        assert_eq!(
            login(&i, svc, Some("192.0.2.7")),
            (PAM_PERM_DENIED, 0),
            "{svc}"
        );
        assert_eq!(
            login(&i, svc, Some("198.51.100.7")),
            (PAM_SUCCESS, 1),
            "{svc}"
        );
    }
    // A network rule of its own makes sudo-i govern itself: sudo's trust no longer applies,
    // and its method is `*`'s (any: the passcode here).
    trust(&i, "sudo-i", "203.0.113.0/24");
    assert_eq!(login(&i, "sudo-i", Some("192.0.2.7")), (PAM_SUCCESS, 1));
    assert_eq!(
        login(&i, "sudo-i", Some("203.0.113.9")),
        (PAM_PERM_DENIED, 0)
    );
    assert_eq!(login(&i, "sudo", Some("192.0.2.7")), (PAM_PERM_DENIED, 0));
    // The same answers without the policy snapshot (the module reads the database).
    std::fs::remove_file(mfa_core::snapshot::path_for(&i.path("db/mfa.db"))).unwrap();
    assert_eq!(login(&i, "sudo-i", Some("192.0.2.7")), (PAM_SUCCESS, 1));
    assert_eq!(
        login(&i, "sudo-i", Some("203.0.113.9")),
        (PAM_PERM_DENIED, 0)
    );
    method(&i, "su", "none");
    std::fs::remove_file(mfa_core::snapshot::path_for(&i.path("db/mfa.db"))).unwrap();
    assert_eq!(login(&i, "su-l", None), (PAM_PERM_DENIED, 0));
}

#[test]
fn alike_contacts_are_told_apart_in_the_menu() {
    let i = Install::new();
    i.store()
        .change("test", "contacts", |tx| {
            people::add_user(tx, "jo", "", 0)?;
            for (addr, label) in [
                ("john@example.com", "work"),
                ("jim@example.com", "home"),
                ("joe@elsewhere.com", ""),
                ("jon@elsewhere.com", ""),
            ] {
                people::add_contact(tx, "jo", &Contact::email(addr)?, label, None, 0)?;
            }
            Ok(((), String::new()))
        })
        .unwrap();
    let r = i.auth(
        "jo",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Choice") {
                Some(b"4".to_vec())
            } else {
                code_for(&i, p).map(String::into_bytes)
            }
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    let menu = r
        .shown
        .iter()
        .find(|s| s.text.starts_with("Where should the passcode go?"))
        .unwrap()
        .text
        .clone();
    let lines: Vec<&str> = menu.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "1) j***@e***.com (work)",
            "2) j***@e***.com (home)",
            "3) j***@e***.com (contact 3)",
            "4) j***@e***.com (contact 4)",
        ],
        "{menu}"
    );
    for full in [
        "john@",
        "jim@",
        "joe@",
        "jon@",
        "example.com",
        "elsewhere.com",
    ] {
        assert!(!menu.contains(full), "{full} shown: {menu}");
    }
    assert_eq!(
        i.messages()[0]["to"],
        "jon@elsewhere.com",
        "the 4th was chosen"
    );
}
