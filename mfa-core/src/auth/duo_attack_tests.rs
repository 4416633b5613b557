//! Attacks on the module's Duo factor (issue 14), through [`authenticate`] against
//! a private store and a scripted stand-in for the broker on the runtime directory's socket:
//! someone who knows the password and floods the broker, hangs up during a push, runs logins
//! in parallel, or gets a request refused as malformed; and a broker or Duo answering what it
//! should not. Each test names what must hold; the first six were findings of the attacker's
//! report (issue 14), fixed with them. (The fixture is [`super::duo_fixture`].)

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::duo_fixture::{Answers, DUO, Script, T, phone};
use super::*;
use crate::duo::{self as broker, ErrorKind, Reply};

/// The fixture's store with `send_limit_user` = 3 besides its `lockout_after` = 3 (so a
/// push-bombing test holds whichever of the two bounds pushes), and `fail_mode` as given.
fn setup(method: &str, duo_section: &str, fail_mode: &str) -> T {
    let t = super::duo_fixture::setup(method, duo_section);
    t.change(|tx| {
        rules::set_setting(tx, "send_limit_user", "3")?;
        rules::set_setting(tx, "fail_mode", fail_mode)?;
        Ok(())
    });
    t
}

/// A login of ann from `rhost`.
fn login_from(t: &T, conv: &mut Script, rhost: &str) -> Outcome {
    let req = Request {
        user: "ann".into(),
        service: "sshd".into(),
        rhost: rhost.into(),
        tty: "ssh".into(),
    };
    authenticate(&t.config, &req, conv, FailMode::Secure)
}

/// A denial of any kind (`deny`, `abandoned`, `rate-limited`).
fn denied(o: &Outcome) -> bool {
    matches!(o, Outcome::Deny { .. })
}

fn preauth_auth() -> Reply {
    Reply::Preauth(broker::Preauth {
        result: "auth".into(),
        status_msg: "Account is active".into(),
        enroll_portal_url: None,
        devices: vec![phone()],
    })
}

fn auth_reply(result: &str, status: &str) -> Reply {
    Reply::Auth(broker::AuthResult {
        result: result.into(),
        status: status.into(),
        status_msg: format!("Status {status}"),
        txid: "45f7c92b-f45f-4862-8545-e0f58e78075a".into(),
    })
}

fn error(kind: ErrorKind) -> Reply {
    Reply::Error {
        kind,
        message: format!("scripted {kind:?}"),
    }
}

/// Preauth answers `auth` with one phone; `auth` gets `reply`.
fn pushes(reply: impl Fn() -> Vec<Reply> + Send + Sync + 'static) -> Arc<Answers> {
    Arc::new(move |req: &broker::Request| match req {
        broker::Request::Preauth { .. } => vec![preauth_auth()],
        _ => reply(),
    })
}

fn autopush() -> String {
    format!("{DUO}autopush = true\n")
}

// ---------------------------------------------------------------------------------------
// Flooding the broker: MAX_PENDING reached is not "Duo is down".

/// Whoever holds MAX_PENDING broker slots (256 logins with a known password, each waiting
/// on a push for `[duo] timeout`) makes the broker answer `Busy` to everyone else. Under
/// `fail_mode = safe` that must not become the fail mode's bypass, or the 257th login
/// (any user whose password is known, without their phone) passes with no second factor.
/// Same reasoning as `auth::busy` for a login state held locked.
#[test]
fn a_busy_broker_is_a_denial_never_the_fail_modes_bypass() {
    // Busy at preauth.
    let t = setup("duo", &autopush(), "safe");
    let _b = t.serve(Arc::new(|_: &broker::Request| vec![error(ErrorKind::Busy)]));
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "deny", "Busy at preauth under safe: {o:?}");
    // Busy at the push itself.
    let t = setup("duo", &autopush(), "safe");
    let _b = t.serve(pushes(|| vec![error(ErrorKind::Busy)]));
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "deny", "Busy at auth under safe: {o:?}");
}

/// The broker refuses a request it finds malformed (`Forbidden`: a field over its bound or
/// with control characters, such as a PAM_RHOST of over 1,024 bytes put in `pushinfo`, which
/// the PAM application, not mfa, chooses). That is the request's fault, not Duo being down:
/// under `fail_mode = safe` it must not let the login in.
#[test]
fn a_request_the_broker_refuses_as_malformed_is_a_denial_never_the_fail_modes_bypass() {
    let t = setup("duo", &autopush(), "safe");
    // As the real broker does (mfa-sender/src/duo/broker.rs `valid`): pushinfo values over
    // 1,024 bytes or with control characters are refused.
    let _b = t.serve(Arc::new(|req: &broker::Request| match req {
        broker::Request::Preauth { .. } => vec![preauth_auth()],
        broker::Request::Auth { pushinfo, .. }
            if pushinfo
                .iter()
                .any(|(_, v)| v.len() > 1024 || v.chars().any(char::is_control)) =>
        {
            vec![error(ErrorKind::Forbidden)]
        }
        _ => vec![auth_reply("deny", "deny")],
    }));
    for rhost in ["h".repeat(1100), "evil\u{1b}[2Jhost.example".to_string()] {
        let mut conv = Script::default();
        let o = login_from(&t, &mut conv, &rhost);
        assert_eq!(
            o.name(),
            "deny",
            "rhost of {} bytes under safe: {o:?}",
            rhost.len()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Push bombing: every push, call or SMS batch must cost the attacker.

/// The attacker (who knows the password) starts a login, the push goes out, and they hang
/// up (or sshd kills the login when the client disconnects). The push is on the user's
/// phone all the same, so it must cost the attacker (toward the lockout or the send limits);
/// otherwise pushes are unlimited (one per TCP connection) and the user, woken by the
/// tenth, approves one. Six such logins must not push more than 3 times.
#[test]
fn pushes_abandoned_by_hanging_up_are_bounded() {
    let t = setup("duo", &autopush(), "secure");
    let b = t.serve(pushes(|| {
        std::thread::sleep(Duration::from_millis(100));
        vec![
            Reply::Progress {
                text: "Pushed a login request to your device...".into(),
            },
            auth_reply("deny", "timeout"),
        ]
    }));
    for _ in 0..6 {
        // Info 1 is "Duo Push sent to ..."; info 2 (Duo's progress) fails: the hang-up.
        let mut conv = Script {
            fail_info_at: Some(2),
            ..Default::default()
        };
        let o = t.login(&mut conv);
        assert!(denied(&o), "{o:?}");
    }
    let pushed = b.load(Ordering::SeqCst);
    assert!(
        pushed <= 3,
        "6 logins abandoned by hanging up sent {pushed} pushes to ann's phone \
         (lockout_after = send_limit_user = 3; {} failures counted)",
        t.failures()
    );
}

/// Same for a phone call and for a batch of SMS passcodes (each one costs Duo telephony
/// credits and rings or buzzes the user's phone): chosen from the menu, then the attacker
/// hangs up. Six such logins must not reach the phone more than 3 times.
#[test]
fn calls_and_sms_batches_abandoned_by_hanging_up_are_bounded() {
    let t = setup("duo", DUO, "secure");
    let b = t.serve(Arc::new(|req: &broker::Request| match req {
        broker::Request::Preauth { .. } => vec![preauth_auth()],
        broker::Request::Auth {
            factor: broker::Factor::Sms,
            ..
        } => vec![auth_reply("deny", "sent")],
        _ => vec![
            Reply::Progress {
                text: "Dialing XXX-XXX-0100...".into(),
            },
            auth_reply("deny", "timeout"),
        ],
    }));
    // Menu: 1) push 2) phone call 3) SMS 4) Duo passcode.
    for _ in 0..3 {
        // SMS: the batch is sent, then the passcode prompt gets no answer (hang-up).
        let mut conv = Script {
            answers: ["3"].into(),
            ..Default::default()
        };
        let o = t.login(&mut conv);
        assert!(denied(&o), "{o:?} {:?}", conv.shown);
    }
    for _ in 0..3 {
        // Call: info 1 the menu, info 2 "Calling ...", info 3 (Duo's progress) fails.
        let mut conv = Script {
            answers: ["2"].into(),
            fail_info_at: Some(3),
            ..Default::default()
        };
        let o = t.login(&mut conv);
        assert!(denied(&o), "{o:?}");
    }
    let sent = b.load(Ordering::SeqCst);
    assert!(
        sent <= 3,
        "{sent} SMS batches and calls sent to ann's phone with lockout_after = \
         send_limit_user = 3 ({} failures counted)",
        t.failures()
    );
}

/// Parallel logins with the password: each sends its push before any answer is counted, so
/// N logins at once push N times however small lockout_after is (up to the broker's
/// MAX_PENDING = 256 in one burst, again as soon as they time out). Pushes outstanding must
/// count toward the lockout when they are sent.
#[test]
fn parallel_logins_cannot_push_more_than_the_limits_allow() {
    let t = Arc::new(setup("duo", &autopush(), "secure"));
    let b = t.serve(pushes(|| {
        // Nobody answers the push for a while.
        std::thread::sleep(Duration::from_millis(1500));
        vec![auth_reply("deny", "timeout")]
    }));
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut conv = Script::default();
                t.login(&mut conv).name()
            })
        })
        .collect();
    let names: Vec<&str> = logins.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        names
            .iter()
            .all(|n| matches!(*n, "deny" | "abandoned" | "rate-limited")),
        "{names:?}"
    );
    let pushed = b.load(Ordering::SeqCst);
    assert!(
        pushed <= 3,
        "8 parallel logins sent {pushed} pushes to ann's phone with lockout_after = \
         send_limit_user = 3"
    );
}

// ---------------------------------------------------------------------------------------
// Answers that are not what they seem (these hold today: kept as regression tests).

/// An `auth` result that is neither allow nor deny, or an allow given to a preauth, never
/// passes; an unknown result counts as a failure.
#[test]
fn odd_answers_never_pass() {
    let t = setup("duo", &autopush(), "safe");
    let _b = t.serve(pushes(|| vec![auth_reply("maybe", "allow")]));
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "deny", "{o:?}");
    assert_eq!(t.failures(), 1);
    // A broker answering preauth with an auth allow: out of turn, never a success.
    let t = setup("duo", &autopush(), "secure");
    let _b = t.serve(Arc::new(|_: &broker::Request| {
        vec![auth_reply("allow", "allow")]
    }));
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "unavailable-deny", "{o:?}");
}

/// A broker (or a Duo relayed by it) that sends progress frames forever does not hold the
/// login past `[duo] timeout` and the module's slack (10 s).
#[test]
fn progress_forever_is_bounded_by_the_timeout() {
    let t = setup(
        "duo",
        &autopush().replace("timeout = \"5s\"", "timeout = \"1s\""),
        "secure",
    );
    let _b = t.serve(pushes(|| {
        (0..2000)
            .map(|i| {
                std::thread::sleep(Duration::from_millis(10));
                Reply::Progress {
                    text: format!("still waiting {i}"),
                }
            })
            .collect()
    }));
    let start = Instant::now();
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    let took = start.elapsed();
    assert_ne!(o.name(), "success", "{o:?}");
    assert!(took < Duration::from_secs(14), "the login took {took:?}");
}

/// Duo's text with terminal escapes, bidi controls and a forged second line is shown
/// defanged at the prompt and in the reason logged.
#[test]
fn hostile_duo_text_is_defanged_in_the_conversation_and_the_reason() {
    let t = setup("duo", &autopush(), "secure");
    let _b = t.serve(pushes(|| {
        vec![
            Reply::Progress {
                text: "\u{1b}]0;pwned\u{7}\nLogin approved\r\u{202e}".into(),
            },
            Reply::Auth(broker::AuthResult {
                result: "deny".into(),
                status: "deny\nmfa: outcome=success".into(),
                status_msg: "\u{1b}[31mx\u{0}y".into(),
                txid: "t\nx".into(),
            }),
        ]
    }));
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    let Outcome::Deny { reason } = &o else {
        panic!("{o:?}")
    };
    for text in conv.shown.iter().chain([reason]) {
        let body = text.split_once(' ').map_or(text.as_str(), |(_, b)| b);
        assert!(
            !body.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{text:?}"
        );
    }
}

/// A Duo passcode typed at the menu, then the broker dies before answering: a denial, never
/// the fail mode, even under `safe`; the broker saw the preauth and the one passcode.
#[test]
fn a_broker_dying_after_a_duo_passcode_is_a_denial_under_safe() {
    let t = setup("duo", DUO, "safe");
    let seen = Arc::new(Mutex::new(0usize));
    let s = seen.clone();
    let _b = t.serve(Arc::new(move |req: &broker::Request| {
        *s.lock().unwrap() += 1;
        match req {
            broker::Request::Preauth { .. } => vec![preauth_auth()],
            _ => vec![Reply::Progress {
                text: String::new(),
            }],
        }
    }));
    let mut conv = Script {
        answers: ["123456"].into(),
        ..Default::default()
    };
    let o = t.login(&mut conv);
    assert_eq!(o.name(), "deny", "{o:?}");
    assert_eq!(*seen.lock().unwrap(), 2);
}

// ---------------------------------------------------------------------------------------
// Who may stand in for the broker.

/// An administrator's mistake: the runtime directory belongs to someone other than root and
/// the sender's user (`[paths] runtime` under /tmp, pre-created by a local user before the
/// sender first started; or a directory chowned to the wrong account). `check_socket` only
/// asks that the directory be writable by its owner alone and the socket belong to that
/// owner, so that local user plants `duo.sock` and answers `allow` for every login. The
/// module must accept only a directory and a socket of root or of `[sender] user`.
#[test]
fn a_runtime_directory_of_another_user_is_not_trusted_with_the_broker() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (chown)");
        return;
    }
    let t = setup(
        "duo",
        &format!("[sender]\nuser = \"nobody\"\n{}", autopush()),
        "secure",
    );
    // uid 4242: a local user, neither root nor the sender's user (nobody).
    let mallory = Some(nix::unistd::Uid::from_raw(4242));
    let run = &t.config.paths.runtime;
    let _b = t.serve(pushes(|| vec![auth_reply("allow", "allow")]));
    nix::unistd::chown(run, mallory, None).unwrap();
    nix::unistd::chown(&broker::socket_path(run), mallory, None).unwrap();
    let mut conv = Script::default();
    let o = t.login(&mut conv);
    assert_ne!(
        o.name(),
        "success",
        "a broker socket planted by uid 4242 in its own runtime directory answered for ann: {o:?}"
    );
}
