//! The Duo factor without PAM or network: [`authenticate`] against a private store and a
//! scripted stand-in for the broker on the runtime directory's socket (the real broker and
//! the Duo mock are exercised in mfa-sender/tests/duo and pam_mfa/tests/pam/duo.rs).

use super::duo_fixture::*;
use super::*;
use crate::contact::Contact;
use crate::duo::{self as broker, Reply};
use std::time::{Duration, Instant};

#[test]
fn an_approved_push_passes_with_the_device_and_a_menu_of_the_devices_abilities() {
    let t = setup("duo", DUO);
    let b = t.broker(vec![preauth("auth", vec![phone()]), auth("allow", "allow")]);
    // Menu: push, phone, sms, passcode; "1" picks the push.
    let mut conv = Script::new(&["1"]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(
        o,
        Outcome::Success {
            method: "duo-push".into(),
            destination: "iOS (XXX-XXX-0100)".into()
        },
        "{}",
        conv.text()
    );
    let text = conv.text();
    for line in [
        "1) Duo Push to iOS (XXX-XXX-0100)",
        "2) Phone call to iOS (XXX-XXX-0100)",
        "3) SMS passcodes to iOS (XXX-XXX-0100)",
        "4) Duo passcode",
        "Duo Push sent to iOS (XXX-XXX-0100)",
        "INFO Pushed a login request to your device...",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    let seen = t.seen.lock().unwrap();
    let broker::Request::Auth {
        username,
        factor,
        device,
        ipaddr,
        pushinfo,
        passcode,
        ..
    } = &seen[1]
    else {
        panic!("{seen:?}")
    };
    assert_eq!(username, "ann");
    assert_eq!(*factor, broker::Factor::Push);
    assert_eq!(device.as_deref(), Some("DPFZRS9FB0D46QFTM891"));
    assert_eq!(ipaddr.as_deref(), Some("192.0.2.7"));
    assert!(
        pushinfo.contains(&("Service".into(), "sshd".into())),
        "{pushinfo:?}"
    );
    assert!(passcode.is_none());
    assert_eq!(t.failures(), 0);
}

#[test]
fn autopush_pushes_the_first_push_device_without_a_menu() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    let token = device("DTOKEN", "Token 123", &["mobile_otp"]);
    let second = device("DSECOND", "Android (XXX-XXX-0200)", &["push"]);
    let b = t.broker(vec![
        preauth("auth", vec![token, second]),
        auth("allow", "allow"),
    ]);
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert!(
        matches!(o, Outcome::Success { .. }),
        "{o:?} {}",
        conv.text()
    );
    assert!(!conv.text().contains("PROMPT"), "{}", conv.text());
    let seen = t.seen.lock().unwrap();
    assert!(
        matches!(&seen[1], broker::Request::Auth { device: Some(d), .. } if d == "DSECOND"),
        "{seen:?}"
    );
}

#[test]
fn denied_pushes_count_toward_the_lockout_and_stop_push_bombing() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    // lockout_after = 3: three denied or unanswered pushes lock the user out.
    let b = t.broker(vec![
        preauth("auth", vec![phone()]),
        auth("deny", "deny"),
        preauth("auth", vec![phone()]),
        auth("deny", "timeout"),
        preauth("auth", vec![phone()]),
        auth("deny", "fraud"),
    ]);
    let mut reasons = Vec::new();
    for expected in ["Duo: login denied.", "no answer in time", "fraudulent"] {
        let mut conv = Script::new(&[]);
        let o = t.login(&mut conv);
        let Outcome::Deny { reason } = o else {
            panic!("{o:?}")
        };
        assert!(
            conv.text().contains(expected),
            "{expected:?}: {}",
            conv.text()
        );
        reasons.push(reason);
    }
    b.join().unwrap();
    assert!(reasons[2].contains("locked out"), "{reasons:?}");
    // Locked out: the fourth login is refused before Duo is asked (no socket serves it now).
    let n = t.seen.lock().unwrap().len();
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.starts_with("locked out")),
        "{o:?}"
    );
    assert_eq!(t.seen.lock().unwrap().len(), n);
}

#[test]
fn preauth_allow_ignores_deny_denies_enroll_shows_the_link() {
    let t = setup("duo", DUO);
    let b = t.broker(vec![
        preauth("allow", vec![]),
        preauth("deny", vec![]),
        preauth("enroll", vec![]),
    ]);
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    assert!(
        matches!(&o, Outcome::Ignore { reason } if reason.contains("allow")),
        "{o:?}"
    );
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.contains("deny")),
        "{o:?}"
    );
    assert!(conv.text().contains("Duo denied"), "{}", conv.text());
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.contains("enrollment")),
        "{o:?}"
    );
    assert!(
        conv.text().contains("https://duo.example/portal?code=x"),
        "{}",
        conv.text()
    );
}

#[test]
fn no_broker_is_the_fail_mode_and_so_is_a_broker_dying_mid_push() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    for (mode, name) in [
        ("secure", "unavailable-deny"),
        ("safe", "unavailable-ignore"),
    ] {
        t.fail_mode(mode);
        let mut conv = Script::new(&[]);
        let o = t.login(&mut conv);
        assert_eq!(o.name(), name, "{o:?}");
    }
    let b = t.broker(vec![
        preauth("auth", vec![phone()]),
        Step::Die(vec![Reply::Progress {
            text: "Pushed".into(),
        }]),
    ]);
    let start = Instant::now();
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "unavailable-ignore", "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // No [duo] section at all: the fail mode too, with the reason.
    let t = setup("duo", "");
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    assert!(
        matches!(&o, Outcome::Unavailable { reason, .. } if reason.contains("[duo]")),
        "{o:?}"
    );
}

#[test]
fn a_wrong_duo_passcode_is_a_denial_and_so_is_a_broker_dying_after_one_was_typed() {
    let t = setup("duo", DUO);
    let wrong = Step::Answer(vec![Reply::Auth(broker::AuthResult {
        result: "deny".into(),
        status: "deny".into(),
        status_msg: "Incorrect passcode. Please try again.".into(),
        txid: String::new(),
    })]);
    t.fail_mode("safe");
    let b = t.broker(vec![
        preauth("auth", vec![phone()]),
        wrong,
        Step::Die(vec![]),
    ]);
    // Option 4: a Duo passcode; a wrong one, then one the broker dies on.
    let mut conv = Script::new(&["4", "123456", "654321"]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "deny", "{o:?} {}", conv.text());
    assert!(
        conv.text().contains("Wrong passcode. 2 attempts left."),
        "{}",
        conv.text()
    );
    assert_eq!(t.failures(), 1);
    let seen = t.seen.lock().unwrap();
    assert!(
        matches!(&seen[1], broker::Request::Auth { factor: broker::Factor::Passcode, passcode: Some(p), .. } if p == "123456"),
        "{seen:?}"
    );
}

#[test]
fn hostile_text_from_duo_is_escaped_and_a_failed_conversation_ends_the_wait() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    t.fail_mode("safe");
    let evil = device("D1", "iOS\u{1b}[2J\u{202e}(XXX)", &["push"]);
    let b = t.broker(vec![
        preauth("auth", vec![evil]),
        Step::Answer(vec![
            Reply::Progress {
                text: "Pushed\u{1b}]0;owned\u{7}".into(),
            },
            Reply::Progress {
                text: "still waiting".into(),
            },
            Reply::Auth(broker::AuthResult {
                result: "allow".into(),
                status: "allow".into(),
                status_msg: String::new(),
                txid: String::new(),
            }),
        ]),
    ]);
    // The user hangs up during the push: a denial (a push sent and never answered by a
    // code: `abandoned`), never a success.
    let mut conv = Script {
        fail_info_at: Some(2),
        ..Default::default()
    };
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "abandoned", "{o:?}");
    let text = conv.text();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{202e}'),
        "{text:?}"
    );
    assert!(text.contains("iOS?[2J?(XXX)"), "{text:?}");
}

#[test]
fn a_one_password_service_checks_the_duo_passcode_in_the_field_or_pushes() {
    let t = setup("duo", DUO);
    let token_only = device("DTOKEN", "Token", &["mobile_otp"]);
    let b = t.broker(vec![
        preauth("auth", vec![phone()]),
        auth("allow", "allow"),
        preauth("auth", vec![phone()]),
        auth("allow", "allow"),
        preauth("auth", vec![token_only]),
    ]);
    let req = Request {
        user: "ann".into(),
        service: "vsftpd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ftp".into(),
    };
    // PASSWORD,CODE: the code is a Duo passcode, checked once.
    let o = oneword_after(&t.config, &req, Some(b"246810"), FailMode::Secure);
    assert_eq!(o.name(), "success", "{o:?}");
    // No code: a push to the first push device, waited for.
    let o = oneword_after(&t.config, &req, None, FailMode::Secure);
    assert!(
        matches!(&o, Outcome::Success { method, .. } if method == "duo-push"),
        "{o:?}"
    );
    // No push device and no code: refused, with what to do.
    let o = oneword_after(&t.config, &req, None, FailMode::Secure);
    b.join().unwrap();
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.contains("PASSWORD,CODE")),
        "{o:?}"
    );
    let seen = t.seen.lock().unwrap();
    assert!(
        matches!(&seen[1], broker::Request::Auth { factor: broker::Factor::Passcode, passcode: Some(p), .. } if p == "246810"),
        "{seen:?}"
    );
    assert!(
        matches!(&seen[3], broker::Request::Auth { factor: broker::Factor::Push, device: Some(d), .. } if d == "DPFZRS9FB0D46QFTM891"),
        "{seen:?}"
    );
}

#[test]
fn a_duo_passcode_is_taken_at_the_menu_and_a_short_wrong_answer_is_not_sent() {
    let t = setup("duo", DUO);
    let b = t.broker(vec![preauth("auth", vec![phone()]), auth("allow", "allow")]);
    // "77" is neither a choice nor code-shaped: asked again; then a passcode at the menu.
    let mut conv = Script::new(&["77", "135790"]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert!(
        matches!(&o, Outcome::Success { method, .. } if method == "duo-passcode"),
        "{o:?} {}",
        conv.text()
    );
    assert!(
        conv.text().contains("PROMPT Choice [1-4] or passcode: "),
        "{}",
        conv.text()
    );
    assert!(
        conv.text()
            .contains("Please answer with one of the numbers"),
        "{}",
        conv.text()
    );
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        matches!(&seen[1], broker::Request::Auth { factor: broker::Factor::Passcode, passcode: Some(p), .. } if p == "135790"),
        "{seen:?}"
    );
}

#[test]
fn the_duo_name_of_the_record_is_asked_and_the_txid_and_device_are_logged() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    t.change(|tx| {
        people::set_duo_user(tx, "ann", Some("ann.smith@corp"))?;
        Ok(())
    });
    let b = t.broker(vec![preauth("auth", vec![phone()]), auth("allow", "allow")]);
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "success", "{o:?}");
    let seen = t.seen.lock().unwrap();
    for r in seen.iter() {
        let (broker::Request::Preauth { username, .. } | broker::Request::Auth { username, .. }) =
            r
        else {
            panic!("{r:?}")
        };
        assert_eq!(username, "ann.smith@corp");
    }
    let rows = t.logged();
    let row = rows.last().unwrap();
    assert_eq!(row["method"], "duo-push", "{row}");
    assert_eq!(row["destination"], "iOS (XXX-XXX-0100)", "{row}");
    assert_eq!(row["txid"], "45f7c92b-f45f-4862-8545-e0f58e78075a", "{row}");
}

#[test]
fn the_enrollment_link_goes_to_the_first_contact_within_the_send_limits() {
    let t = setup("duo", DUO);
    t.change(|tx| {
        let c = Contact::email("ann@example.com")?;
        people::add_contact(tx, "ann", &c, "", None, 0)?;
        rules::set_setting(tx, "send_limit_user", "2")?;
        Ok(())
    });
    let b = t.broker(vec![
        preauth("enroll", vec![]),
        preauth("enroll", vec![]),
        preauth("enroll", vec![]),
    ]);
    let mut texts = Vec::new();
    for _ in 0..3 {
        let mut conv = Script::new(&[]);
        let o = t.login(&mut conv);
        assert_eq!(o.name(), "deny", "{o:?}");
        texts.push(conv.text());
    }
    b.join().unwrap();
    let sent = t.spooled();
    // Two links (the user's send limit), the third login shows the link but sends nothing.
    assert_eq!(sent.len(), 2, "{sent:?}");
    for m in &sent {
        assert_eq!(m.to, "ann@example.com");
        assert!(
            m.body.contains("https://duo.example/portal?code=x"),
            "{}",
            m.body
        );
        assert_ne!(m.kind, crate::spool::Kind::Passcode);
    }
    assert!(
        texts[0].contains("The link was also sent to"),
        "{}",
        texts[0]
    );
    assert!(!texts[2].contains("was also sent"), "{}", texts[2]);
    assert!(
        texts[2].contains("https://duo.example/portal?code=x"),
        "{}",
        texts[2]
    );
}

#[test]
fn any_lists_duo_beside_the_other_factors_and_keeps_them_when_duo_is_down() {
    let t = setup("any", DUO);
    t.change(|tx| {
        let c = Contact::email("ann@example.com")?;
        people::add_contact(tx, "ann", &c, "", None, 0)?;
        people::set_duo_user(tx, "ann", Some("ann"))?;
        Ok(())
    });
    // Duo down (no broker): the passcode alone is offered, no menu.
    let mut conv = Script::new(&[]);
    let _ = t.login(&mut conv);
    assert!(conv.text().contains("PROMPT Passcode"), "{}", conv.text());
    assert!(!conv.text().contains("Duo"), "{}", conv.text());
    // Duo up: passcode and Duo entries in one menu; the push is picked.
    let b = t.broker(vec![preauth("auth", vec![phone()]), auth("allow", "allow")]);
    let mut conv = Script::new(&["2"]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    let text = conv.text();
    assert!(text.contains("1) passcode to"), "{text}");
    assert!(text.contains("2) Duo Push to iOS"), "{text}");
    assert!(
        matches!(&o, Outcome::Success { method, .. } if method == "duo-push"),
        "{o:?} {text}"
    );
}

#[test]
fn an_enrollment_link_that_is_not_https_is_neither_shown_nor_sent() {
    let t = setup("duo", DUO);
    t.change(|tx| {
        let c = Contact::email("ann@example.com")?;
        people::add_contact(tx, "ann", &c, "", None, 0)?;
        Ok(())
    });
    let bad = |url: &str| {
        Step::Answer(vec![Reply::Preauth(broker::Preauth {
            result: "enroll".into(),
            status_msg: "Enroll".into(),
            enroll_portal_url: Some(url.into()),
            devices: vec![],
        })])
    };
    let long = format!("https://duo.example/{}", "a".repeat(600));
    let b = t.broker(vec![
        bad("http://evil.example/x"),
        bad("file:///etc/shadow"),
        bad(&long),
    ]);
    for _ in 0..3 {
        let mut conv = Script::new(&[]);
        let o = t.login(&mut conv);
        assert_eq!(o.name(), "deny", "{o:?}");
        let text = conv.text();
        assert!(
            !text.contains("evil") && !text.contains("shadow") && !text.contains("aaaa"),
            "{text}"
        );
        assert!(text.contains("enrol with Duo first"), "{text}");
    }
    b.join().unwrap();
    assert!(t.spooled().is_empty());
}

#[test]
fn a_menu_number_is_no_code_but_a_passcode_at_the_menu_is() {
    let t = setup("duo", DUO);
    t.fail_mode("safe");
    let b = t.broker(vec![
        preauth("auth", vec![phone()]),
        Step::Die(vec![]),
        preauth("auth", vec![phone()]),
        Step::Die(vec![]),
    ]);
    // "1" picks the push; the sender dies while it waits: the fail mode (safe: ignore).
    let mut conv = Script::new(&["1"]);
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "unavailable-ignore", "{o:?}");
    // A passcode typed at the menu, then the sender dies: a denial whatever the fail mode.
    let mut conv = Script::new(&["135790"]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "deny", "{o:?}");
    let rows = t.logged();
    assert_eq!(rows[0]["method"], "duo-push", "{rows:?}");
    assert_eq!(rows[0]["destination"], "iOS (XXX-XXX-0100)", "{rows:?}");
    assert_eq!(rows[1]["method"], "duo-passcode", "{rows:?}");
}

#[test]
fn a_denied_push_is_logged_with_its_factor_device_and_txid() {
    let t = setup("duo", &format!("{DUO}autopush = true\n"));
    let b = t.broker(vec![preauth("auth", vec![phone()]), auth("deny", "deny")]);
    let mut conv = Script::new(&[]);
    let o = t.login(&mut conv);
    b.join().unwrap();
    assert_eq!(o.name(), "deny", "{o:?}");
    let rows = t.logged();
    let row = rows.last().unwrap();
    assert_eq!(row["method"], "duo-push", "{row}");
    assert_eq!(row["destination"], "iOS (XXX-XXX-0100)", "{row}");
    assert_eq!(row["txid"], "45f7c92b-f45f-4862-8545-e0f58e78075a", "{row}");
}
