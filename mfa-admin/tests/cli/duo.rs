//! Duo administration: a user's Duo name (`user add|set --duo`), `duo ping|check|preauth|
//! enroll|enroll-status`, `test USER --duo`, doctor's Duo check and the txid in `log show`,
//! driven against a scripted broker: a Unix socket in the installation's runtime directory
//! answering canned `mfa_core::duo` frames (the real broker is mfa-sender's), including
//! every error kind, no broker, a broker dying mid-answer and hostile bytes.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mfa_core::duo::{
    AuthResult, Device, Enrollment, ErrorKind, Preauth, Reply, Request, read_frame, socket_path,
    write_frame,
};

use super::{Env, Out};

/// What the broker does on one connection, in order.
#[derive(Clone)]
pub(super) enum Step {
    /// Sends a frame.
    Frame(Reply),
    /// Sends raw bytes.
    Raw(Vec<u8>),
    /// Waits.
    Sleep(u64),
}

/// A scripted broker: one script per connection, in order of arrival. Joining it returns
/// the requests it read.
pub(super) struct Broker {
    thread: Option<JoinHandle<Vec<Request>>>,
}

impl Broker {
    pub(super) fn start(env: &Env, scripts: Vec<Vec<Step>>) -> Broker {
        let path = socket_path(&runtime(env));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let end = Instant::now() + Duration::from_secs(30);
            for script in scripts {
                let mut conn = loop {
                    match listener.accept() {
                        Ok((c, _)) => break c,
                        Err(_) if Instant::now() < end => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(_) => return seen,
                    }
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                match read_frame::<Request>(&mut conn) {
                    Ok(r) => seen.push(r),
                    Err(_) => continue,
                }
                for step in script {
                    let sent = match step {
                        Step::Frame(r) => write_frame(&mut conn, &r),
                        Step::Raw(b) => conn.write_all(&b),
                        Step::Sleep(ms) => {
                            std::thread::sleep(Duration::from_millis(ms));
                            Ok(())
                        }
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            }
            let _ = std::fs::remove_file(&path);
            seen
        });
        Broker {
            thread: Some(thread),
        }
    }

    pub(super) fn requests(mut self) -> Vec<Request> {
        self.thread.take().unwrap().join().unwrap()
    }
}

pub(super) fn runtime(env: &Env) -> PathBuf {
    env.path("run")
}

/// An installation with `[duo]` configured (the secret key file is the sender's business).
pub(super) fn duo_env() -> Env {
    let env = Env::new();
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!(
        "\n[duo]\nhost = \"api-test.duosecurity.com\"\nikey = \"DIWJ8X6AEYOR5OMC6TQ1\"\nskey_file = \"{}\"\ntimeout = \"5s\"\n",
        env.path("duo.skey").display()
    ));
    std::fs::write(&env.config, text).unwrap();
    env
}

pub(super) fn one(reply: Reply) -> Vec<Step> {
    vec![Step::Frame(reply)]
}

pub(super) fn device(id: &str, name: &str, caps: &[&str]) -> Device {
    Device {
        device: id.into(),
        display_name: name.into(),
        kind: "phone".into(),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
    }
}

pub(super) fn preauth(result: &str, msg: &str, devices: Vec<Device>) -> Reply {
    Reply::Preauth(Preauth {
        result: result.into(),
        status_msg: msg.into(),
        enroll_portal_url: (result == "enroll").then(|| "https://duo.example/portal?c=1".into()),
        devices,
    })
}

pub(super) fn auth(result: &str, status: &str, msg: &str) -> Reply {
    Reply::Auth(AuthResult {
        result: result.into(),
        status: status.into(),
        status_msg: msg.into(),
        txid: "45f7c92b-f45f-4862-8545-e0f58e78075a".into(),
    })
}

pub(super) fn error(kind: ErrorKind, message: &str) -> Reply {
    Reply::Error {
        kind,
        message: message.into(),
    }
}

pub(super) fn fails(out: &Out, code: i32, needles: &[&str]) {
    assert_eq!(out.code, code, "{out:?}");
    for n in needles {
        assert!(out.stderr.contains(n), "stderr lacks {n:?}: {out:?}");
    }
}

pub(super) fn username(r: &Request) -> &str {
    match r {
        Request::Preauth { username, .. } | Request::Auth { username, .. } => username,
        Request::Enroll { username } => username.as_deref().unwrap_or(""),
        _ => "",
    }
}

#[test]
fn duo_names_are_set_shown_listed_and_checked() {
    let env = Env::new();
    env.ok(&["user", "add", "ann", "--duo"]);
    env.ok(&["user", "add", "bob", "--duo", "bob.b@corp.example"]);
    env.ok(&["user", "add", "cy"]);
    let list = env.json(&["user", "list"]);
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["duo_user"].clone())
        .collect();
    assert_eq!(
        names,
        [
            serde_json::json!("ann"),
            serde_json::json!("bob.b@corp.example"),
            serde_json::Value::Null
        ]
    );
    assert!(env.ok(&["user", "list"]).contains("bob.b@corp.example"));
    assert!(
        env.ok(&["user", "show", "cy"])
            .contains("not known to have Duo")
    );
    env.ok(&["user", "set", "cy", "--duo", "cy@corp"]);
    assert_eq!(env.json(&["user", "show", "cy"])["duo_user"], "cy@corp");
    assert!(
        env.ok(&["user", "set", "cy", "--duo", "cy@corp"])
            .contains("unchanged")
    );
    env.ok(&["user", "set", "ann", "--no-duo"]);
    assert!(env.json(&["user", "show", "ann"])["duo_user"].is_null());
    // Export carries it.
    assert!(env.ok(&["export"]).contains("duo_user = \"cy@corp\""));
    for bad in ["a b", "x\x1b[2J", &"d".repeat(101), "é"] {
        let o = env.bad(
            &["user", "set", "cy", "--duo", bad],
            &["invalid Duo user name"],
        );
        assert!(!o.stderr.contains('\x1b'), "{o:?}");
        env.bad(
            &["user", "add", "dee", "--duo", bad],
            &["invalid Duo user name"],
        );
    }
    env.bad(&["user", "set", "cy"], &["--duo"]);
    env.bad(
        &["user", "set", "cy", "--duo", "--no-duo"],
        &["cannot be used with"],
    );
    env.bad(
        &["user", "set", "nosuch", "--duo"],
        &["unknown user \"nosuch\""],
    );
    // A login name Duo cannot take as it is needs a NAME.
    let long = "l".repeat(120);
    env.ok(&["user", "add", &long]);
    env.bad(&["user", "set", &long, "--duo"], &["invalid Duo user name"]);
    let audit = env.ok(&["audit", "show"]);
    assert!(
        audit.contains("user set") && audit.contains("cy: Duo user cy@corp"),
        "{audit}"
    );
}

#[test]
fn ping_check_preauth_enroll_and_status_through_the_broker() {
    let env = duo_env();
    env.ok(&["user", "add", "ann", "--duo", "ann@corp.example"]);
    let now = mfa_core::now();
    let b = Broker::start(
        &env,
        vec![
            one(Reply::Time { time: now }),
            one(Reply::Time { time: now }),
            vec![
                Step::Frame(Reply::Progress {
                    text: String::new(),
                }),
                Step::Frame(preauth(
                    "auth",
                    "Account is active",
                    vec![
                        device(
                            "DPFZRS9FB0D46QFTM891",
                            "iOS (XXX-XXX-1234)",
                            &["auto", "push", "sms"],
                        ),
                        device("DHEKH0JJIYC1LX3AZWO4", "YubiKey", &["mobile_otp"]),
                    ],
                )),
            ],
            one(preauth("auth", "Account is active", vec![])),
            one(Reply::Enrolled(Enrollment {
                activation_barcode: "https://api-test.duosecurity.com/frame/qr?value=x".into(),
                activation_code: "duo://abc-def".into(),
                activation_url: "https://m-test.duosecurity.com/activate/abc".into(),
                expiration: now + 86400,
                user_id: "DU9I6T0F7R2S1J4XZHHA".into(),
                username: "nouser".into(),
            })),
            one(Reply::EnrollStatus {
                status: "waiting".into(),
            }),
            one(Reply::EnrollStatus {
                status: "success".into(),
            }),
        ],
    );
    assert!(env.ok(&["duo", "ping"]).contains("Duo is reachable"));
    assert_eq!(env.json(&["duo", "check"])["ok"], true);
    let text = env.ok(&["duo", "preauth", "ann"]);
    for want in [
        "Duo user ann@corp.example",
        "result:    auth",
        "iOS (XXX-XXX-1234)",
        "auto,push,sms",
        "DHEKH0JJIYC1LX3AZWO4",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let v = env.json(&["duo", "preauth", "nouser"]);
    assert_eq!(
        (v["user"].as_str(), v["duo_user"].as_str()),
        (Some("nouser"), Some("nouser"))
    );
    assert!(
        v.get("enroll_portal_url").is_some_and(|u| u.is_null()),
        "null, never absent: {v}"
    );
    assert_eq!(v["devices"], serde_json::json!([]));
    let text = env.ok(&["duo", "enroll", "nouser"]);
    for want in [
        "https://m-test.duosecurity.com/activate/abc",
        "duo://abc-def",
        "DU9I6T0F7R2S1J4XZHHA",
        "enroll-status",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(
        env.ok(&[
            "duo",
            "enroll-status",
            "DU9I6T0F7R2S1J4XZHHA",
            "duo://abc-def"
        ])
        .contains("waiting")
    );
    assert_eq!(
        env.json(&[
            "duo",
            "enroll-status",
            "DU9I6T0F7R2S1J4XZHHA",
            "duo://abc-def"
        ])["status"],
        "success"
    );
    let seen = b.requests();
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!((&seen[0], &seen[1]), (&Request::Ping, &Request::Check));
    assert_eq!(
        username(&seen[2]),
        "ann@corp.example",
        "the recorded Duo name"
    );
    assert_eq!(username(&seen[3]), "nouser", "else the login name");
    assert!(
        matches!(&seen[2], Request::Preauth { hostname, ipaddr: None, .. } if !hostname.is_empty())
    );
    assert_eq!(username(&seen[4]), "nouser");
    assert_eq!(
        seen[5],
        Request::EnrollStatus {
            user_id: "DU9I6T0F7R2S1J4XZHHA".into(),
            activation_code: "duo://abc-def".into()
        }
    );
    // Bad input never reaches the broker.
    env.bad(&["duo", "enroll-status", "a b", "c"], &["invalid user id"]);
    env.bad(
        &["duo", "enroll-status", "x", &"c".repeat(101)],
        &["invalid activation code"],
    );
    env.bad(&["duo", "preauth", "a b"], &["invalid user name"]);
}

#[test]
fn every_broker_error_says_what_failed_and_what_to_check() {
    let env = duo_env();
    let cases: &[(ErrorKind, i32, &[&str])] = &[
        (
            ErrorKind::Unavailable,
            1,
            &["Duo cannot be reached", "[duo] host", "duo ping"],
        ),
        (
            ErrorKind::Credentials,
            1,
            &[
                "refused the integration's credentials",
                "ikey",
                "skey_file",
                "restart mfa-sender",
            ],
        ),
        (ErrorKind::Refused, 2, &["Duo refused the request"]),
        (
            ErrorKind::NotConfigured,
            1,
            &[
                "no usable [duo] configuration",
                "readable by the sender's user",
            ],
        ),
        (
            ErrorKind::Forbidden,
            1,
            &["refused this request", "as root"],
        ),
        (ErrorKind::Busy, 1, &["busy", "try again"]),
    ];
    for (kind, code, needles) in cases {
        let b = Broker::start(&env, vec![one(error(*kind, "the broker's words"))]);
        let o = env.run(&["duo", "check"]);
        fails(&o, *code, needles);
        assert!(o.stderr.contains("the broker's words"), "{o:?}");
        assert_eq!(b.requests(), [Request::Check]);
    }
}

#[test]
fn no_broker_no_config_a_dying_broker_and_hostile_frames_fail_cleanly() {
    let env = duo_env();
    // Nobody listening.
    fails(
        &env.run(&["duo", "ping"]),
        1,
        &[
            "Duo broker (mfa-sender) cannot be reached",
            "systemctl start mfa-sender",
        ],
    );
    // A socket file nobody serves any more.
    drop(UnixListener::bind(socket_path(&runtime(&env))).unwrap());
    fails(&env.run(&["duo", "ping"]), 1, &["cannot be reached"]);
    std::fs::remove_file(socket_path(&runtime(&env))).unwrap();
    let scripts = vec![
        // Dies after a progress frame.
        vec![Step::Frame(Reply::Progress {
            text: "Pushed".into(),
        })],
        // A frame over the limit: refused before it is read.
        vec![
            Step::Raw(u32::MAX.to_be_bytes().to_vec()),
            Step::Raw(vec![b'x'; 1000]),
        ],
        // Garbage.
        vec![Step::Raw(b"\x00\x00\x00\x05{\"rep".to_vec())],
        vec![Step::Raw(b"HTTP/1.1 200 OK\r\n\r\n".to_vec())],
        // A well-formed reply of the wrong kind.
        one(Reply::EnrollStatus {
            status: "success".into(),
        }),
        // Half a frame, then nothing.
        vec![Step::Raw(vec![0, 0, 0, 100, b'{'])],
    ];
    let b = Broker::start(&env, scripts);
    let start = Instant::now();
    fails(&env.run(&["duo", "check"]), 1, &["closed the connection"]);
    fails(&env.run(&["duo", "check"]), 1, &["over"]);
    fails(&env.run(&["duo", "check"]), 1, &["malformed frame"]);
    fails(&env.run(&["duo", "check"]), 1, &["cannot be reached"]);
    fails(
        &env.run(&["duo", "check"]),
        1,
        &["does not fit the request"],
    );
    fails(&env.run(&["duo", "check"]), 1, &["cannot be reached"]);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(b.requests().len(), 6);
    // A runtime directory others can write: its socket is not the broker's.
    let b = Broker::start(&env, vec![one(Reply::Time { time: 1 })]);
    let rt = runtime(&env);
    let mode = std::fs::metadata(&rt).unwrap().permissions();
    std::fs::set_permissions(&rt, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    fails(
        &env.run(&["duo", "ping"]),
        1,
        &["writable by group or others"],
    );
    std::fs::set_permissions(&rt, mode).unwrap();
    env.ok(&["duo", "ping"]);
    b.requests();
    // No [duo]: said so, and doctor says nothing of Duo.
    let plain = Env::new();
    fails(
        &plain.run(&["duo", "check"]),
        1,
        &["Duo is not configured", "no [duo] section"],
    );
    fails(
        &plain.run(&["test", "x", "--duo"]),
        1,
        &["Duo is not configured"],
    );
    let checks = super::duo_admin::doctor(&plain);
    assert!(checks.iter().all(|c| c["check"] != "duo"), "{checks:?}");
}

#[test]
fn hostile_duo_text_is_escaped_on_the_terminal() {
    let env = duo_env();
    env.ok(&["user", "add", "ann", "--duo"]);
    let evil = "\x1b[2J\x1b]0;owned\x07\r\nroot# \u{202e}";
    let b = Broker::start(
        &env,
        vec![
            one(preauth(
                "auth",
                evil,
                vec![device("D1\x1b[31m", evil, &["push", evil])],
            )),
            one(preauth("auth", "ok", vec![device("D1", evil, &["push"])])),
            vec![
                Step::Frame(Reply::Progress { text: evil.into() }),
                Step::Frame(auth("deny", "deny", evil)),
            ],
            one(error(
                ErrorKind::Credentials,
                &format!("{evil}{}", "y".repeat(60_000)),
            )),
        ],
    );
    let mut outs = vec![
        env.run(&["duo", "preauth", "ann"]),
        env.run(&["test", "ann", "--duo"]),
    ];
    outs.push(env.run(&["duo", "check"]));
    for o in &outs {
        for text in [&o.stdout, &o.stderr] {
            assert!(
                !text.contains('\x1b')
                    && !text.contains('\x07')
                    && !text.contains('\r')
                    && !text.contains('\u{202e}'),
                "{o:?}"
            );
        }
    }
    assert!(outs[0].stdout.contains("\\x1b[2J"), "{:?}", outs[0]);
    assert!(outs[1].stderr.contains("Duo: \\x1b[2J"), "{:?}", outs[1]);
    assert!(
        outs[2].stderr.len() < 2000,
        "the broker's text is bounded: {}",
        outs[2].stderr.len()
    );
    b.requests();
    // JSON keeps the text, escaped.
    let b = Broker::start(&env, vec![one(preauth("auth", evil, vec![]))]);
    let o = env.run(&["--json", "duo", "preauth", "ann"]);
    assert!(
        !o.stdout.contains('\x1b') && !o.stdout.contains('\u{202e}'),
        "{o:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["status_msg"], evil);
    b.requests();
}

#[test]
fn test_duo_pushes_to_the_first_push_device_and_exits_0_only_on_allow() {
    let env = duo_env();
    env.ok(&["user", "add", "ann", "--duo", "ann@corp"]);
    let devices = || {
        vec![
            device("DTOKEN", "Token", &["mobile_otp"]),
            device("DPHONE", "iOS (XXX-XXX-1234)", &["auto", "push"]),
        ]
    };
    let pushed = |end: Reply| {
        vec![
            one(preauth("auth", "ok", devices())),
            vec![
                Step::Frame(Reply::Progress {
                    text: "Pushed a login request to your device...".into(),
                }),
                Step::Sleep(100),
                Step::Frame(Reply::Progress {
                    text: String::new(),
                }),
                Step::Frame(end),
            ],
        ]
    };
    let b = Broker::start(
        &env,
        pushed(auth("allow", "allow", "Success. Logging you in...")),
    );
    let o = env.run(&["test", "ann", "--duo"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("allowed") && o.stdout.contains("45f7c92b"),
        "{o:?}"
    );
    assert!(o.stderr.contains("Duo: Pushed a login request"), "{o:?}");
    let seen = b.requests();
    match &seen[1] {
        Request::Auth {
            username,
            factor,
            device,
            pushinfo,
            ..
        } => {
            assert_eq!(
                (username.as_str(), *factor),
                ("ann@corp", mfa_core::duo::Factor::Push)
            );
            assert_eq!(
                device.as_deref(),
                Some("DPHONE"),
                "the first push-capable device"
            );
            assert!(!pushinfo.is_empty());
        }
        other => panic!("{other:?}"),
    }
    for (end, needle) in [
        (
            auth("deny", "deny", "Login request denied."),
            "the user denied the push",
        ),
        (
            auth("deny", "timeout", "Login timed out."),
            "no answer before the timeout",
        ),
        (
            auth("deny", "fraud", "Fraud reported."),
            "reported the push as fraud",
        ),
    ] {
        let b = Broker::start(&env, pushed(end));
        fails(
            &env.run(&["test", "ann", "--duo"]),
            1,
            &[needle, "45f7c92b"],
        );
        assert_eq!(b.requests().len(), 2);
    }
    let b = Broker::start(&env, pushed(auth("deny", "deny", "no")));
    let o = env.run(&["--json", "test", "ann", "--duo"]);
    assert_eq!(o.code, 1);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        (v["result"].as_str(), v["device"].as_str()),
        (Some("deny"), Some("iOS (XXX-XXX-1234)"))
    );
    b.requests();
    // No push when preauth says otherwise, or no device can take one.
    for (reply, needle) in [
        (
            preauth("allow", "bypass", vec![]),
            "without a second factor",
        ),
        (preauth("deny", "locked", vec![]), "Duo denies ann"),
        (
            preauth("enroll", "new", vec![]),
            "must enrol with Duo first",
        ),
        (
            preauth(
                "auth",
                "ok",
                vec![device("DTOKEN", "Token", &["mobile_otp"])],
            ),
            "can take a push",
        ),
    ] {
        let b = Broker::start(&env, vec![one(reply)]);
        fails(
            &env.run(&["test", "ann", "--duo"]),
            1,
            &["no push sent", needle],
        );
        assert_eq!(b.requests().len(), 1, "no auth request");
    }
    // The broker dies while the push is pending.
    let b = Broker::start(
        &env,
        vec![
            one(preauth("auth", "ok", devices())),
            vec![Step::Frame(Reply::Progress {
                text: "Pushed".into(),
            })],
        ],
    );
    fails(
        &env.run(&["test", "ann", "--duo"]),
        1,
        &["closed the connection"],
    );
    b.requests();
    env.bad(
        &["test", "ann", "--duo", "--contact", "1"],
        &["cannot be used with"],
    );
}
