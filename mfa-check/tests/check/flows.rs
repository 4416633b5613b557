//! The three flows through the helper, and the refusals.

use mfa_core::auth::Outcome;
use mfa_core::helper::{BeforeReply, Frame, Message, Mode};

use std::os::unix::fs::PermissionsExt;

use super::*;

/// The reason the caller gets for every outcome but a success (the details go to the log).
pub const GENERIC: &str = "decided by mfa-check: see its log line";
/// What the caller is told of a configuration that cannot be read.
pub const UNREADABLE: &str = "the configuration cannot be read (see the authpriv log)";

/// The reasons of outcomes name no rule to the caller (which users are exempt, which
/// networks trusted, until when a user is locked out): the kind, a generic reason; the
/// auth log keeps the details.
#[test]
fn reasons_name_no_rule() {
    let i = Install::new();
    i.store()
        .change("t", "t", |tx| {
            let change = mfa_core::store::people::OverrideChange {
                exempt: Some(Some(true)),
                ..Default::default()
            };
            people::set_override(tx, "ann", &change)?;
            Ok(((), String::new()))
        })
        .unwrap();
    let r = run(&i, &ask(Mode::Plain, "ann", "192.0.2.11", None), |p| {
        panic!("prompted: {p}")
    });
    assert_eq!(r.exit, Some(0), "{r:?}");
    match &r.last {
        Ok(Frame::Outcome(Outcome::Ignore { reason })) => assert_eq!(reason, GENERIC),
        other => panic!("{other:?}"),
    }
    // A send limit's denial keeps its kind (the module's outcome=rate-limited).
    i.user("bea", &["bea@example.com"]);
    i.set("send_limit_user", "1");
    let _ = run(&i, &ask(Mode::Plain, "bea", "192.0.2.11", None), |_| None);
    let r = run(&i, &ask(Mode::Plain, "bea", "192.0.2.12", None), |_| None);
    match &r.last {
        Ok(Frame::Outcome(o @ Outcome::Deny { reason })) => {
            assert_eq!(o.name(), "rate-limited", "{r:?}");
            assert!(reason.ends_with(GENERIC), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

/// Plain mode: the passcode prompt is relayed, the answer relayed back, the outcome is the
/// usual decision, written to the auth log by the helper.
#[test]
fn plain_mode_relays_the_prompt_and_decides() {
    let i = Install::new();
    let code = std::cell::RefCell::new(None::<String>);
    let r = run(&i, &ask(Mode::Plain, "ann", "192.0.2.10", None), |p| {
        assert!(p.starts_with("Passcode "), "{p}");
        let c = i.mailed_code();
        *code.borrow_mut() = Some(c.clone());
        Some(c.into_bytes())
    });
    assert_eq!(r.exit, Some(0), "{r:?}");
    assert!(code.borrow().is_some(), "no prompt relayed: {r:?}");
    match &r.last {
        Ok(Frame::Outcome(Outcome::Success {
            method,
            destination,
        })) => {
            assert_eq!(method, "passcode");
            assert_eq!(destination, "a***@e***.com");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(i.outcomes(), ["success:"]);
    // A wrong code: the denial, and its message relayed as an error.
    let r = run(&i, &ask(Mode::Plain, "ann", "192.0.2.10", None), |_| {
        Some(b"000000".to_vec())
    });
    assert_eq!(r.exit, Some(0));
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Deny { .. }))),
        "{r:?}"
    );
    // The conversation failing (Ctrl-C) after the passcode was sent: abandoned.
    let r = run(&i, &ask(Mode::Plain, "ann", "192.0.2.10", None), |_| None);
    assert!(
        matches!(&r.last, Ok(Frame::Outcome(Outcome::Deny { reason })) if reason.starts_with("abandoned")),
        "{r:?}"
    );
}

/// A user mfa does not cover: ignore, no prompt; an unknown service's method (`none`)
/// likewise; and messages are relayed as messages.
#[test]
fn an_ignore_needs_no_conversation() {
    let i = Install::new();
    i.set("enabled", "off");
    let r = run(&i, &ask(Mode::Plain, "ann", "", None), |p| {
        panic!("prompted: {p}")
    });
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Ignore { .. }))),
        "{r:?}"
    );
    assert!(r.shown.is_empty(), "{r:?}");
    assert_eq!(r.exit, Some(0));
}

/// The double logon and PASSWORD,CODE through the helper: `before` answers with the index
/// of the split (never the password), `after` sends the passcode and refuses, the code alone
/// is then accepted once from the same address.
#[test]
fn before_and_after() {
    let i = Install::new();
    i.method("passcode");
    let here = "127.0.0.1";
    // PASSWORD,CODE: split at the last separator; nothing of the field comes back.
    let r = run(
        &i,
        &ask(Mode::Before, "ann", here, Some(b"pass,word,123456")),
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.last, Ok(Frame::Before(BeforeReply::Split(9))), "{r:?}");
    assert_eq!(r.exit, Some(0));
    // A plain password: ignore.
    let r = run(
        &i,
        &ask(Mode::Before, "ann", here, Some(b"just-a-password")),
        |_| None,
    );
    assert_eq!(r.last, Ok(Frame::Before(BeforeReply::Ignore)));
    // After, no code: the double logon's passcode is sent, the login refused.
    let r = run(&i, &ask(Mode::After, "ann", here, None), |p| {
        panic!("prompted: {p}")
    });
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Deny { .. }))),
        "{r:?}"
    );
    assert_eq!(i.messages().len(), 1);
    let code = i.mailed_code();
    // The code alone from another address: the password module decides (ignore).
    let r = run(
        &i,
        &ask(Mode::Before, "ann", "192.0.2.2", Some(code.as_bytes())),
        |_| None,
    );
    assert_eq!(r.last, Ok(Frame::Before(BeforeReply::Ignore)), "{r:?}");
    // From the same address: success, once.
    let r = run(
        &i,
        &ask(Mode::Before, "ann", here, Some(code.as_bytes())),
        |_| None,
    );
    assert!(
        matches!(
            &r.last,
            Ok(Frame::Before(BeforeReply::Success(Outcome::Success { .. })))
        ),
        "{r:?}"
    );
    let r = run(
        &i,
        &ask(Mode::Before, "ann", here, Some(code.as_bytes())),
        |_| None,
    );
    assert_eq!(r.last, Ok(Frame::Before(BeforeReply::Ignore)), "{r:?}");
    // After with a wrong kept code: a denial, counted once.
    let r = run(&i, &ask(Mode::After, "ann", here, Some(b"000000")), |_| {
        None
    });
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Deny { .. }))),
        "{r:?}"
    );
    assert_eq!(
        mfa_core::state::failures(&i.path("db/mfa.db"), "ann").count,
        1
    );
}

/// Run as nobody (not setuid: MFA_CONFIG is honoured): a caller `[callers]` does not list,
/// or a service not listed for it, is refused with status 3, a reason, and nothing done.
#[test]
fn callers_and_services_not_listed_are_refused() {
    let i = Install::new();
    world_readable(&i);
    let before = i.files();
    // nobody is listed for pg-test only.
    let mut f = ask(Mode::Plain, "ann", "", None);
    if let Frame::Ask(a) = &mut f {
        a.service = "sshd".into();
    }
    let r = drive(
        spawn(as_nobody(HELPER).env("MFA_CONFIG", i.config())),
        &f.encode().unwrap(),
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.exit, Some(3), "{r:?}");
    match &r.last {
        Ok(Frame::Refused(why)) => assert!(
            why.contains("(nobody) may not ask about service \"sshd\"")
                && why.contains("[callers]"),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    // nobody not listed at all.
    std::fs::write(
        i.config(),
        std::fs::read_to_string(i.config())
            .unwrap()
            .replace("nobody = ", "postgres = "),
    )
    .unwrap();
    let r = drive(
        spawn(as_nobody(HELPER).env("MFA_CONFIG", i.config())),
        &ask(Mode::Before, "ann", "", Some(b"pw,123456"))
            .encode()
            .unwrap(),
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.exit, Some(3), "{r:?}");
    assert!(
        matches!(&r.last, Ok(Frame::Refused(w)) if w.contains("uid 65534 (nobody)")),
        "{r:?}"
    );
    // Nothing written anywhere: no message, no log row, no state file.
    assert_eq!(i.files(), before);
    assert!(i.outcomes().is_empty());
}

/// A configuration nobody cannot read: status 4 and the file named; as root, a malformed
/// [callers] likewise.
#[test]
fn an_unreadable_configuration_is_refused() {
    let i = Install::new();
    std::fs::set_permissions(i.config(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = drive(
        spawn(as_nobody(HELPER).env("MFA_CONFIG", i.config())),
        &ask(Mode::Plain, "ann", "", None).encode().unwrap(),
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.exit, Some(4), "{r:?}");
    assert!(
        matches!(&r.last, Ok(Frame::Refused(w)) if w == UNREADABLE),
        "{r:?}"
    );
    std::fs::write(i.config(), "[callers]\nnobody = [\"*\"]\n").unwrap();
    let r = run(&i, &ask(Mode::Plain, "ann", "", None), |p| {
        panic!("prompted: {p}")
    });
    assert_eq!(r.exit, Some(4), "{r:?}");
    assert!(
        matches!(&r.last, Ok(Frame::Refused(w)) if w == UNREADABLE),
        "the error's text (callers.nobody) is the log's only: {r:?}"
    );
}

/// Messages are relayed with their kind (the module applies PAM_SILENT to them).
#[test]
fn messages_keep_their_kind() {
    let i = Install::new();
    // A locked-out user: the denial's error message.
    i.set("lockout_after", "1");
    let _ = run(&i, &ask(Mode::After, "ann", "", Some(b"000000")), |_| None);
    let r = run(&i, &ask(Mode::Plain, "ann", "", None), |p| {
        panic!("prompted: {p}")
    });
    assert!(
        matches!(&r.last, Ok(Frame::Outcome(Outcome::Deny { reason })) if reason == GENERIC),
        "{r:?}"
    );
    let logged = i.outcomes();
    assert!(
        logged.last().is_some_and(|o| o.contains("locked out")),
        "{logged:?}"
    );
    assert!(
        r.shown
            .iter()
            .any(|f| matches!(f, Frame::Message { kind: Message::Error, text } if text.contains("locked"))),
        "{r:?}"
    );
}

/// A login that would self-enrol is refused through the helper (the conversation is the
/// calling server's: it could enrol a key or an address of its own): no prompt, nothing
/// stored, the user told to enrol on a terminal.
#[test]
fn self_enrollment_is_refused_through_the_helper() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    i.user("bob", &[]);
    for (user, method) in [("bob", "passcode"), ("carol", "passcode"), ("bob", "totp")] {
        i.method(method);
        let r = run(&i, &ask(Mode::Plain, user, "", None), |p| {
            panic!("{user}/{method}: prompted: {p}")
        });
        assert_eq!(r.exit, Some(0), "{r:?}");
        assert!(
            matches!(&r.last, Ok(Frame::Outcome(Outcome::Deny { reason })) if reason == GENERIC),
            "{user}/{method}: {r:?}"
        );
        assert!(
            r.shown.iter().any(|f| matches!(f, Frame::Message { kind: Message::Error, text } if text.contains("enrol on a terminal"))),
            "{r:?}"
        );
    }
    assert!(i.messages().is_empty(), "an enrollment message was sent");
    // ann, with a contact, still gets her passcode prompt.
    i.method("passcode");
    let mut prompted = false;
    let _ = run(&i, &ask(Mode::Plain, "ann", "", None), |_| {
        prompted = true;
        None
    });
    assert!(prompted);
}
