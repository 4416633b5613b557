//! The module's flows through libpam.

use super::harness::{PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SERVICE_ERR, PAM_SUCCESS};
use super::{Install, code_for};

/// Answers every passcode prompt with the code from the spool.
fn reader(i: &Install) -> super::harness::Answer<'_> {
    Box::new(move |p: &str| code_for(i, p).map(String::into_bytes))
}

#[test]
fn passcode_success_with_one_contact() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("repeat_window", "0");
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    let prompts = r.prompts();
    assert_eq!(prompts.len(), 1);
    let p = prompts[0];
    assert!(
        p.starts_with("Passcode ") && p.ends_with("- (sent to a***@e***.com): "),
        "{p}"
    );
    let msgs = i.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        (
            m["to"].as_str(),
            m["channel"].as_str(),
            m["kind"].as_str(),
            m["user"].as_str()
        ),
        (
            Some("ann@example.com"),
            Some("email"),
            Some("passcode"),
            Some("ann")
        )
    );
    let body = m["body"].as_str().unwrap();
    let prefix = p.chars().nth(9).unwrap();
    assert!(body.contains(&format!("{prefix}-")), "{body}");
    assert!(m["expires"].as_i64().unwrap() - m["created"].as_i64().unwrap() == 600);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::read_dir(i.path("spool/new"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .metadata()
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o640);
    // Only a keyed hash was stored, and the challenge is gone once answered.
    assert_eq!(i.challenges(), 0);
    assert_eq!(i.outcomes(), ["success:"]);
    let db = i.path("db/mfa.db");
    let granted = mfa_core::grants::last(&db, "ann", "mfa-test", "192.0.2.10");
    assert!(
        granted.is_some_and(|t| (mfa_core::now() - t).abs() < 60),
        "{granted:?}"
    );
    assert_eq!(
        mfa_core::grants::last(&db, "ann", "mfa-test", "192.0.2.11"),
        None
    );
}

#[test]
fn the_code_never_reaches_the_store_or_the_log() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    let mut seen_code = String::new();
    let r = i.auth(
        "ann",
        None,
        Box::new(|p: &str| {
            let c = code_for(&i, p)?;
            // Look at the challenge while it is open: a keyed hash only.
            let open = mfa_core::state::challenges(&i.path("db/mfa.db")).unwrap();
            assert_eq!(open.len(), 1);
            assert_eq!(open[0].code_hash.len(), 32);
            seen_code = c.clone();
            Some(c.into_bytes())
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS);
    // Nowhere beside the database either: database, WAL, snapshot, log inbox, grants,
    // challenges, failure counts.
    i.outcomes();
    let mut files = vec![i.path("db")];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let hay = std::fs::read(&p).unwrap();
        seen += 1;
        assert!(
            !hay.windows(seen_code.len())
                .any(|w| w == seen_code.as_bytes()),
            "code found in {}",
            p.display()
        );
    }
    assert!(seen >= 3, "only {seen} files looked at");
}

#[test]
fn several_contacts_offer_a_masked_menu() {
    let i = Install::new();
    i.user("bob", &["bob@example.com", "robert@work.example"]);
    let r = i.auth(
        "bob",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Choice") {
                Some(b"2".to_vec())
            } else {
                code_for(&i, p).map(String::into_bytes)
            }
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert!(
        r.said("1) b***@e***.com") && r.said("2) r***@w***.example"),
        "{:?}",
        r.shown
    );
    assert!(
        !r.shown.iter().any(|s| s.text.contains("bob@example.com")),
        "a full address was shown"
    );
    assert_eq!(i.messages()[0]["to"], "robert@work.example");
    assert!(r.prompts()[1].contains("r***@w***.example"));
}

#[test]
fn wrong_codes_use_up_attempts_then_lock_out() {
    let i = Install::new();
    i.user("cy", &["cy@example.com"]);
    i.set("attempts", "3");
    i.set("lockout_after", "5");
    let r = i.auth("cy", None, Box::new(|_: &str| Some(b"000000".to_vec())));
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts().len(), 3);
    assert!(
        r.said("2 attempts left") && r.said("No attempts left"),
        "{:?}",
        r.shown
    );
    assert_eq!(i.failures("cy"), 3);
    assert_eq!(
        i.challenges(),
        0,
        "a challenge without attempts left is gone"
    );
    // Two more failures reach lockout_after = 5.
    let r = i.auth("cy", None, Box::new(|_: &str| Some(b"111111".to_vec())));
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.said("locked"), "{:?}", r.shown);
    assert_eq!(r.prompts().len(), 2);
    // Now locked: denied before any passcode is sent, even with the right one.
    let before = i.messages().len();
    let r = i.auth(
        "cy",
        None,
        Box::new(|p: &str| code_for(&i, p).map(String::into_bytes)),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.prompts().is_empty());
    assert_eq!(i.messages().len(), before);
    assert!(
        i.outcomes().last().unwrap().starts_with("deny:locked out"),
        "{:?}",
        i.outcomes()
    );
    // The lockout is in the database (hence the snapshot), the count in its file.
    assert_eq!(
        i.count("SELECT failures FROM lockouts WHERE user = 'cy' AND locked_until > 0"),
        5
    );
    // Unlock (what `mfa-admin user unlock` does) and the right code works again.
    i.unlock("cy");
    assert_eq!(i.failures("cy"), 0);
    let r = i.auth(
        "cy",
        None,
        Box::new(|p: &str| code_for(&i, p).map(String::into_bytes)),
    );
    assert_eq!(r.code, PAM_SUCCESS);
}

#[test]
fn success_resets_the_failure_count() {
    let i = Install::new();
    i.user("dee", &["dee@example.com"]);
    let mut first = true;
    let r = i.auth(
        "dee",
        None,
        Box::new(|p: &str| {
            if std::mem::take(&mut first) {
                Some(b"999999".to_vec())
            } else {
                code_for(&i, p).map(String::into_bytes)
            }
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS);
    assert_eq!(i.failures("dee"), 0);
}

#[test]
fn an_expired_code_is_refused() {
    let i = Install::new();
    i.user("eve", &["eve@example.com"]);
    let r = i.auth(
        "eve",
        None,
        Box::new(|p: &str| {
            let code = code_for(&i, p)?;
            mfa_core::state::expire_all_challenges(&i.path("db/mfa.db")).unwrap();
            Some(code.into_bytes())
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.said("expired"), "{:?}", r.shown);
    assert_eq!(i.outcomes(), ["deny:passcode expired"]);
}

#[test]
fn an_empty_answer_resends_at_most_twice() {
    let i = Install::new();
    i.user("fay", &["fay@example.com"]);
    i.set("attempts", "1");
    let mut n = 0;
    let r = i.auth(
        "fay",
        None,
        Box::new(|_: &str| {
            n += 1;
            Some(Vec::new())
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(i.messages().len(), 3, "first code and two resends");
    assert_eq!(n, 3, "the third empty answer counts as a wrong code");
    assert!(r.said("A new passcode was sent"));
    // A resent code works, the old one does not.
    let i = Install::new();
    i.user("fay", &["fay@example.com"]);
    let mut old = None;
    let r = i.auth(
        "fay",
        None,
        Box::new(|p: &str| {
            if old.is_none() {
                old = code_for(&i, p);
                return Some(Vec::new());
            }
            code_for(&i, p).map(String::into_bytes)
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?} {:?}", i.outcomes());
    assert_eq!(i.messages().len(), 2);
}

#[test]
fn bypasses_are_ignore_never_success() {
    let i = Install::new();
    i.user("gil", &["gil@example.com"]);
    let never = || -> super::harness::Answer<'static> {
        Box::new(|p: &str| panic!("unexpected prompt {p}"))
    };
    i.set("enabled", "off");
    assert_eq!(i.auth("gil", None, never()).code, PAM_PERM_DENIED);
    i.set("enabled", "on");
    {
        let mut s = i.store();
        s.change("t", "t", |tx| {
            Ok((rules::set_service(tx, "mfa-test", "none")?, String::new()))
        })
        .unwrap();
    }
    assert_eq!(i.auth("gil", None, never()).code, PAM_PERM_DENIED);
    i.sql("DELETE FROM services WHERE name = 'mfa-test'");
    i.sql("INSERT INTO overrides (user, exempt) VALUES ('gil', 1)");
    assert_eq!(i.auth("gil", None, never()).code, PAM_PERM_DENIED);
    let log = i.outcomes();
    assert_eq!(
        log,
        [
            "ignore:2FA is off globally",
            "ignore:service method is none",
            "ignore:user is exempt (override)"
        ]
    );
}

use mfa_core::net::IpRange;
use mfa_core::store::rules::{self, NewNetRule};

fn net(i: &Install, service: &str, range: &str, require: bool) {
    let mut s = i.store();
    let rule = NewNetRule {
        service: service.into(),
        range: IpRange::parse_any(range).unwrap(),
        require,
        log: None,
        note: String::new(),
    };
    s.change("t", "net add", |tx| {
        Ok((rules::add_network(tx, &rule, 0)?, String::new()))
    })
    .unwrap();
}

#[test]
fn trusted_networks_and_mandatory_users() {
    let i = Install::new();
    i.user("hal", &["hal@example.com"]);
    net(&i, "mfa-test", "10.2.2.0-10.2.2.254", false);
    net(&i, "mfa-test", "10.2.2.120", true);
    net(&i, "*", "2001:db8::/32", false);
    let none = || -> super::harness::Answer<'static> { Box::new(|_: &str| None) };
    assert_eq!(
        i.auth("hal", Some("10.2.2.7"), none()).code,
        PAM_PERM_DENIED
    );
    assert_eq!(
        i.auth("hal", Some("2001:db8::7"), none()).code,
        PAM_PERM_DENIED
    );
    assert_eq!(
        i.auth("hal", Some("::ffff:10.2.2.8"), none()).code,
        PAM_PERM_DENIED
    );
    assert_eq!(
        i.auth("hal", Some("10.2.2.120"), reader(&i)).code,
        PAM_SUCCESS
    );
    assert_eq!(
        i.auth("hal", Some("10.9.9.9"), reader(&i)).code,
        PAM_SUCCESS
    );
    // A host name is not an address: no rule can trust it.
    assert_eq!(
        i.auth("hal", Some("client.example"), reader(&i)).code,
        PAM_SUCCESS
    );
    i.sql("INSERT INTO overrides (user, mandatory) VALUES ('hal', 1)");
    let r = i.auth("hal", Some("10.2.2.7"), reader(&i));
    assert_eq!(r.code, PAM_SUCCESS);
    assert_eq!(
        r.prompts().len(),
        1,
        "a mandatory user is challenged on a trusted network"
    );
    assert!(
        i.outcomes()[0].starts_with("ignore:trusted network (rule 1)"),
        "{:?}",
        i.outcomes()
    );
}

#[test]
fn repeat_window_is_keyed_on_user_service_and_address() {
    let i = Install::new();
    i.user("ida", &["ida@example.com"]);
    i.user("jo", &["jo@example.com"]);
    i.set("repeat_window", "10m");
    assert_eq!(
        i.auth("ida", Some("198.51.100.1"), reader(&i)).code,
        PAM_SUCCESS
    );
    let none = || -> super::harness::Answer<'static> { Box::new(|_: &str| None) };
    assert_eq!(
        i.auth("ida", Some("198.51.100.1"), none()).code,
        PAM_PERM_DENIED,
        "same user, service, address"
    );
    assert_eq!(
        i.auth("ida", Some("198.51.100.2"), none()).code,
        PAM_AUTH_ERR,
        "another address is challenged"
    );
    assert_eq!(
        i.auth("jo", Some("198.51.100.1"), none()).code,
        PAM_AUTH_ERR,
        "another user is challenged"
    );
    mfa_core::grants::age(&i.path("db/mfa.db"), "ida", 601).unwrap();
    assert_eq!(
        i.auth("ida", Some("198.51.100.1"), none()).code,
        PAM_AUTH_ERR,
        "the window ends"
    );
}

#[test]
fn unassigned_users() {
    let i = Install::new();
    let none = || -> super::harness::Answer<'static> { Box::new(|_: &str| None) };
    let r = i.auth("nobody", None, none());
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.prompts().is_empty());
    i.set("unassigned", "allow");
    assert_eq!(i.auth("nobody", None, none()).code, PAM_PERM_DENIED);
    // A known user without contacts follows the same setting.
    i.user("kai", &[]);
    assert_eq!(i.auth("kai", None, none()).code, PAM_PERM_DENIED);
    // A disabled user is refused wherever 2FA is required.
    i.user("lee", &["lee@example.com"]);
    i.sql("UPDATE users SET enabled = 0 WHERE name = 'lee'");
    assert_eq!(i.auth("lee", None, none()).code, PAM_AUTH_ERR);
    assert_eq!(
        i.outcomes(),
        [
            "deny:no factor; unassigned=deny",
            "ignore:no factor; unassigned=allow",
            "ignore:no factor; unassigned=allow",
            "deny:user is disabled"
        ]
    );
}

#[test]
fn self_enrollment_saves_the_contact_only_after_the_code() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    // A wrong code: nothing saved.
    let r = i.auth(
        "max",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Email address") {
                Some(b"max@example.com".to_vec())
            } else {
                Some(b"000000".to_vec())
            }
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(i.count("SELECT count(*) FROM contacts"), 0);
    assert_eq!(i.count("SELECT count(*) FROM users"), 0);
    assert_eq!(i.messages()[0]["to"], "max@example.com");
    // An invalid address is asked again; then a phone with a carrier; the right code saves it.
    let mut asked = 0;
    let r = i.auth(
        "max",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Email address") {
                asked += 1;
                Some(if asked == 1 {
                    b"max@".to_vec()
                } else {
                    b"555-201-0188".to_vec()
                })
            } else if p.starts_with("Carrier") {
                Some(b"10".to_vec())
            } else {
                code_for(&i, p).map(String::into_bytes)
            }
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert!(
        r.said("Your mobile carrier") && r.said("Your contact is registered"),
        "{:?}",
        r.shown
    );
    assert!(
        r.said("invalid email address"),
        "the bad address is explained: {:?}",
        r.shown
    );
    assert_eq!(
        r.prompts()
            .iter()
            .filter(|p| p.starts_with("Email address"))
            .count(),
        2
    );
    let to: String = rusqlite::Connection::open(i.path("db/mfa.db"))
        .unwrap()
        .query_row(
            "SELECT address || '/' || carrier FROM contacts WHERE user = 'max'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(to, "5552010188/Verizon");
    assert_eq!(i.messages().last().unwrap()["to"], "5552010188@vtext.com");
    assert_eq!(
        i.count("SELECT count(*) FROM audit_log WHERE actor LIKE 'pam_mfa%'"),
        1
    );
    // Next login is an ordinary passcode login to the new contact.
    let r = i.auth("max", None, reader(&i));
    assert_eq!(r.code, PAM_SUCCESS);
    assert!(
        r.prompts()[0].contains("***-***-0188 (Verizon)"),
        "{:?}",
        r.prompts()
    );
}

#[test]
fn bad_enrollment_addresses_are_refused() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    let r = i.auth(
        "ned",
        None,
        Box::new(|_: &str| Some(b"not an address".to_vec())),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts().len(), 3);
    assert!(i.messages().is_empty());
    assert_eq!(i.count("SELECT count(*) FROM users"), 0);
}

#[test]
fn fail_modes() {
    // Stale heartbeat: secure denies with the message, safe ignores; both logged.
    let i = Install::new();
    i.user("oz", &["oz@example.com"]);
    i.heartbeat(120);
    let none = || -> super::harness::Answer<'static> { Box::new(|_: &str| None) };
    let r = i.auth("oz", None, none());
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(
        r.said("second factor unavailable — contact your administrator"),
        "{:?}",
        r.shown
    );
    i.set("fail_mode", "safe");
    let r = i.auth("oz", None, none());
    assert_eq!(r.code, PAM_PERM_DENIED);
    assert!(
        i.messages().is_empty(),
        "nothing is promised while the sender is down"
    );
    let log = i.outcomes();
    assert!(
        log[0].starts_with("unavailable-deny:sender heartbeat is 1")
            && log[1].starts_with("unavailable-ignore:"),
        "{log:?}"
    );
    // No heartbeat file at all.
    std::fs::remove_file(i.path("run/sender.heartbeat")).unwrap();
    i.set("fail_mode", "secure");
    assert_eq!(i.auth("oz", None, none()).code, PAM_AUTH_ERR);

    // Unusable spool.
    let i = Install::new();
    i.user("oz", &["oz@example.com"]);
    std::fs::remove_dir(i.path("spool/new")).unwrap();
    std::fs::write(i.path("spool/new"), b"not a directory").unwrap();
    assert_eq!(i.auth("oz", None, none()).code, PAM_AUTH_ERR);
    i.set("fail_mode", "safe");
    assert_eq!(i.auth("oz", None, none()).code, PAM_PERM_DENIED);
    assert_eq!(i.challenges(), 0, "no challenge without a queued message");

    // Corrupt database and no policy snapshot: the fail mode comes from the module argument
    // (default secure), since the setting lives in the database.
    for (args, expect) in [("", PAM_AUTH_ERR), ("fail_mode=safe", PAM_PERM_DENIED)] {
        let i = Install::with_args(args);
        i.user("oz", &["oz@example.com"]);
        std::fs::remove_file(i.path("db/mfa.db-policy")).unwrap();
        std::fs::write(i.path("db/mfa.db"), vec![0x5a; 8192]).unwrap();
        let r = i.auth("oz", None, none());
        assert_eq!(r.code, expect, "args {args:?}: {r:?}");
    }
    // With the snapshot still there, logins read it and do not notice the database until
    // they must write to it: a wrong code (a failure count is a file) is refused as usual,
    // and the lockout it triggers cannot be stored. The user was asked for a code: that is
    // a denial, never the fail mode's bypass (a wrong code must not open the login).
    let i = Install::with_args("fail_mode=safe");
    i.user("oz", &["oz@example.com"]);
    i.set("lockout_after", "1");
    i.set("fail_mode", "safe");
    std::fs::write(i.path("db/mfa.db"), vec![0x5a; 8192]).unwrap();
    let r = i.auth("oz", None, Box::new(|_: &str| Some(b"000000".to_vec())));
    assert_eq!(r.prompts().len(), 1, "{r:?}");
    assert_eq!(r.code, PAM_AUTH_ERR, "a wrong code let through: {r:?}");
    assert!(r.said("Second factor: access denied."), "{:?}", r.shown);
}

#[test]
fn interrupted_conversation_fails() {
    let i = Install::new();
    i.user("pat", &["pat@example.com"]);
    let r = i.auth("pat", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_AUTH_ERR);
    // A code went out and none was typed: an abandoned login, with what it cost.
    assert_eq!(i.outcomes(), ["abandoned:1 message sent, no code typed"]);
    // At the contact menu too.
    i.user("quinn", &["q1@example.com", "q2@example.com"]);
    let r = i.auth("quinn", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_AUTH_ERR);
}

#[test]
fn hostile_input_is_refused_cleanly() {
    let i = Install::new();
    i.user("ray", &["ray@example.com"]);
    i.set("attempts", "3");
    let mut answers = vec![
        vec![b'7'; 10_240],
        vec![0xff, 0xfe, 0x80, b'1', b'2'],
        b"V-12'; DROP TABLE users;--".to_vec(),
    ]
    .into_iter();
    let r = i.auth(
        "ray",
        Some("2001:db8::dead:beef"),
        Box::new(move |_: &str| answers.next()),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts().len(), 3);
    assert_eq!(i.count("SELECT count(*) FROM users"), 1);
    let log = i.outcomes();
    assert_eq!(log, ["deny:wrong passcode; attempts used up"]);
    let addr: String = rusqlite::Connection::open(i.path("db/mfa.db"))
        .unwrap()
        .query_row("SELECT address FROM auth_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(addr, "2001:db8::dead:beef");
    // A user name full of odd bytes is just an unknown user.
    let r = i.auth("x'; --\u{1b}[31m", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_AUTH_ERR);
}

#[test]
fn unknown_module_arguments_are_refused() {
    let i = Install::with_args("nullok");
    i.user("sam", &["sam@example.com"]);
    let r = i.auth("sam", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_SERVICE_ERR);
    let i = Install::with_args("service=sshd debug");
    i.user("sam", &["sam@example.com"]);
    {
        let mut s = i.store();
        s.change("t", "t", |tx| {
            Ok((rules::set_service(tx, "sshd", "none")?, String::new()))
        })
        .unwrap();
    }
    let r = i.auth("sam", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_PERM_DENIED, "service=sshd selects sshd's rules");
}

#[test]
fn thirty_two_concurrent_logins() {
    let i = Install::new();
    for n in 0..32 {
        i.user(&format!("u{n:02}"), &[&format!("u{n:02}@example.com")]);
    }
    let confdir = i.path("pam.d");
    let spool = i.path("spool/new");
    let handles: Vec<_> = (0..32)
        .map(|n| {
            let confdir = confdir.clone();
            let spool = spool.clone();
            std::thread::spawn(move || {
                let user = format!("u{n:02}");
                let me = user.clone();
                let r = super::harness::authenticate(
                    &confdir,
                    "mfa-test",
                    &user,
                    Some("203.0.113.9"),
                    Box::new(move |p: &str| {
                        let prefix = p.chars().nth(9)?;
                        for e in std::fs::read_dir(&spool).ok()? {
                            let m: serde_json::Value =
                                serde_json::from_slice(&std::fs::read(e.ok()?.path()).ok()?)
                                    .ok()?;
                            if m["user"] == me.as_str() {
                                let body = m["body"].as_str()?;
                                let at = body.find(&format!("{prefix}-"))?;
                                return Some(
                                    body[at + 2..]
                                        .chars()
                                        .take_while(char::is_ascii_digit)
                                        .collect::<String>()
                                        .into_bytes(),
                                );
                            }
                        }
                        None
                    }),
                );
                (r.code, r.shown)
            })
        })
        .collect();
    for h in handles {
        let (code, shown) = h.join().unwrap();
        assert_eq!(code, PAM_SUCCESS, "{shown:?}");
    }
    assert_eq!(i.messages().len(), 32);
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE outcome = 'success'"),
        32
    );
}

#[test]
fn a_lockout_stops_logins_already_at_the_prompt() {
    // Another session of the same user reaches lockout_after while this one waits at the
    // passcode prompt: this session's next guess is refused without being checked.
    let i = Install::new();
    i.user("zed", &["zed@example.com"]);
    i.set("attempts", "3");
    let mut first = true;
    let r = i.auth(
        "zed",
        None,
        Box::new(|p: &str| {
            if std::mem::take(&mut first) {
                return Some(b"000000".to_vec());
            }
            // Another login's failure reaches lockout_after = 2.
            let mut s = mfa_core::store::rules::settings(i.store().conn()).unwrap();
            s.lockout_after = 2;
            let db = i.path("db/mfa.db");
            let until = mfa_core::state::record_failure(&db, "zed", mfa_core::now(), &s).unwrap();
            assert!(until.is_some());
            code_for(&i, p).map(String::into_bytes)
        }),
    );
    assert_eq!(
        r.code, PAM_AUTH_ERR,
        "even the right code is refused once locked: {r:?}"
    );
    assert!(r.said("locked"), "{:?}", r.shown);
    assert_eq!(i.outcomes(), ["deny:locked out during the challenge"]);
    assert_eq!(i.failures("zed"), 2, "the refused guess is not counted");
}

#[test]
fn a_user_with_contacts_is_not_enrolled_on_a_totp_service() {
    let i = Install::new();
    i.user("yan", &["yan@example.com"]);
    i.set("self_enroll", "yes");
    i.set("totp_self_enroll", "yes");
    {
        let mut s = i.store();
        s.change("t", "t", |tx| {
            Ok((rules::set_service(tx, "*", "totp")?, String::new()))
        })
        .unwrap();
    }
    let r = i.auth(
        "yan",
        None,
        Box::new(|p: &str| panic!("unexpected prompt {p}")),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(
        i.outcomes(),
        ["deny:no factor this service's method accepts"]
    );
    assert_eq!(i.count("SELECT count(*) FROM totp"), 0);
}

#[test]
fn a_lockout_only_the_state_file_holds_still_denies() {
    // The failure that locked the user out was counted, but storing the lockout in the
    // database failed (say, the disk was full): the next login is still refused, before any
    // passcode is sent.
    let i = Install::new();
    i.user("vic", &["vic@example.com"]);
    let mut s = mfa_core::store::rules::settings(i.store().conn()).unwrap();
    s.lockout_after = 1;
    let db = i.path("db/mfa.db");
    assert!(
        mfa_core::state::record_failure(&db, "vic", mfa_core::now(), &s)
            .unwrap()
            .is_some()
    );
    let r = i.auth("vic", None, Box::new(|_: &str| None));
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.prompts().is_empty(), "{r:?}");
    assert!(i.messages().is_empty());
    assert!(
        i.outcomes()[0].starts_with("deny:locked out"),
        "{:?}",
        i.outcomes()
    );
}

#[test]
fn pam_silent_sends_prompts_and_menus_only() {
    let i = Install::new();
    i.user("wes", &["w1@example.com", "w2@example.com"]);
    i.set("attempts", "2");
    let silent = |answers: Vec<&'static str>| {
        let mut answers = answers.into_iter();
        super::harness::authenticate_flags(
            &i.path("pam.d"),
            "mfa-test",
            "wes",
            None,
            Box::new(move |_: &[super::harness::Shown], _: &str| {
                answers.next().map(|a| a.as_bytes().to_vec())
            }),
            super::harness::PAM_SILENT,
        )
    };
    // Menu, then two wrong codes: the menu is shown (the user must choose), the "wrong
    // passcode, 1 attempt left" errors are not.
    let r = silent(vec!["2", "000000", "111111"]);
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts().len(), 3, "{r:?}");
    assert!(r.said("w***@e***.com"), "the menu: {r:?}");
    assert!(
        r.shown.iter().all(|s| s.style != 3),
        "no error message under PAM_SILENT: {r:?}"
    );
    // Without PAM_SILENT the same login hears about its mistakes.
    let mut answers = vec!["2", "000000", "111111"].into_iter();
    let r = i.auth(
        "wes",
        None,
        Box::new(move |_: &str| answers.next().map(|a| a.as_bytes().to_vec())),
    );
    assert!(r.said("1 attempt left"), "{r:?}");
}
