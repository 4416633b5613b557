//! The broker's socket: only root is served (a non-root peer is refused before Duo is
//! asked); 32 pushes at once all end correctly; SIGTERM or SIGKILL of the sender ends every
//! pending wait at once (Unavailable), and the next start replaces the stale socket; hostile
//! clients (oversized length, garbage, a client that sends nothing) never keep it from
//! serving the next one; a file in place of the socket stops the start; `--once` never
//! listens.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use mfa_core::duo::{BrokerError, ErrorKind, Reply, Request};
use serde_json::json;

use super::{DuoConfig, Env, Mock, call, call_at, push, root_or_skip, signal};

const CHILD_ENV: &str = "MFA_DUO_TEST_RUNTIME";

/// Child of `a_non_root_peer_is_refused`: calls the broker (ping) as whoever runs it and
/// prints the outcome. Ignored in a normal run.
#[test]
#[ignore = "run by a_non_root_peer_is_refused as another user"]
fn child_calls_the_broker() {
    let runtime = std::env::var(CHILD_ENV).expect("run by a_non_root_peer_is_refused");
    let (r, _) = call_at(
        std::path::Path::new(&runtime),
        &Request::Ping,
        Duration::from_secs(5),
    );
    println!("OUTCOME {r:?}");
}

fn call_as(env: &Env, user: &str, group: &str) -> String {
    let o = Command::new("setpriv")
        .args(["--reuid", user, "--regid", group, "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "broker::child_calls_the_broker",
            "--nocapture",
        ])
        .env(CHILD_ENV, env.runtime())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("OUTCOME"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn a_non_root_peer_is_refused() {
    if !root_or_skip("a_non_root_peer_is_refused") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let meta = std::fs::symlink_metadata(env.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // The sender's own user may connect to its 0600 socket, but is not root: Forbidden.
    let out = call_as(&env, super::USER, super::GROUP);
    assert!(
        out.contains("Duo(Forbidden") && out.contains("only root may use the Duo broker"),
        "{out}"
    );
    // Any other user cannot even connect.
    let out = call_as(&env, "daemon", "daemon");
    assert!(out.contains("Unavailable"), "{out}");
    // Duo was never asked.
    assert!(mock.requests().is_empty(), "{:?}", mock.summary());
    // Root is served.
    let (r, _) = call(&env, &Request::Ping, Duration::from_secs(5));
    assert!(matches!(r, Ok(Reply::Time { .. })), "{r:?}");
    let log = d.stop();
    assert!(log.contains("refused a connection from uid 65534"), "{log}");
    assert!(!env.socket().exists(), "the socket outlived the sender");
}

#[test]
fn thirty_two_concurrent_pushes_all_end_correctly() {
    if !root_or_skip("thirty_two_concurrent_pushes_all_end_correctly") {
        return;
    }
    let mut users = serde_json::Map::new();
    for i in 0..32 {
        let answer = ["approve", "deny", "fraud", "timeout"][i % 4];
        users.insert(format!("u{i}"), json!({"push": answer, "after": 1.0}));
    }
    let mock = Mock::start(serde_json::Value::Object(users), &[]);
    let env = Env::new(
        &mock,
        &DuoConfig {
            timeout: "6s",
            ..DuoConfig::default()
        },
    );
    let d = env.daemon();
    let start = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let env = &env;
                s.spawn(move || {
                    let r = call(env, &push(&format!("u{i}")), Duration::from_secs(20)).0;
                    (i, r, start.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r, took) in results {
        let want = [
            ("allow", "allow"),
            ("deny", "deny"),
            ("deny", "fraud"),
            ("deny", "timeout"),
        ][i % 4];
        match r {
            Ok(Reply::Auth(a)) => {
                assert_eq!((a.result.as_str(), a.status.as_str()), want, "u{i}")
            }
            other => panic!("u{i}: {other:?}"),
        }
        // Answered ones within a few seconds; unanswered ones at the 6 s timeout.
        assert!(took < Duration::from_secs(9), "u{i} took {took:?}");
    }
    assert_eq!(mock.to("/auth/v2/auth").len(), 32);
    d.stop();
}

#[test]
fn sigterm_or_sigkill_ends_pending_waits_at_once() {
    if !root_or_skip("sigterm_or_sigkill_ends_pending_waits_at_once") {
        return;
    }
    let mock = Mock::start(json!({"*": {"push": "timeout"}}), &[]);
    let env = Env::new(
        &mock,
        &DuoConfig {
            timeout: "60s",
            ..DuoConfig::default()
        },
    );
    for sig in ["TERM", "KILL"] {
        let d = env.daemon();
        let before = mock.to("/auth/v2/auth").len();
        let ended = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let env = &env;
                    s.spawn(move || {
                        let r = call(env, &push(&format!("w{i}")), Duration::from_secs(60)).0;
                        (r, Instant::now())
                    })
                })
                .collect();
            // All four pushes are pending at Duo.
            super::wait_until("4 pushes pending", Duration::from_secs(10), || {
                mock.to("/auth/v2/auth").len() >= before + 4
            });
            std::thread::sleep(Duration::from_millis(300));
            let at = Instant::now();
            signal(d.child.id(), sig);
            let v: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            (at, v)
        });
        let (at, v) = ended;
        for (r, when) in v {
            assert!(
                matches!(r, Err(BrokerError::Unavailable(_))),
                "SIG{sig}: {r:?}"
            );
            assert!(
                when.duration_since(at) < Duration::from_secs(2),
                "SIG{sig}: the wait ended {:?} after the signal",
                when.duration_since(at)
            );
        }
        if sig == "TERM" {
            let log = d.stop();
            assert!(!env.socket().exists(), "SIGTERM left the socket");
            assert!(log.contains("duo: broker stopped, socket removed"), "{log}");
        } else {
            drop(d);
            // SIGKILL leaves a stale socket; the next start replaces it.
            assert!(env.socket().exists());
        }
    }
    let d = env.daemon();
    let (r, _) = call(&env, &Request::Ping, Duration::from_secs(5));
    assert!(matches!(r, Ok(Reply::Time { .. })), "{r:?}");
    d.stop();
}

/// Reads frames until the final reply (or EOF); returns the final one.
fn final_reply(s: &mut UnixStream) -> Option<Reply> {
    loop {
        match mfa_core::duo::read_frame::<Reply>(s) {
            Ok(Reply::Progress { .. }) => continue,
            Ok(r) => return Some(r),
            Err(_) => return None,
        }
    }
}

#[test]
fn hostile_clients_never_stop_the_broker() {
    if !root_or_skip("hostile_clients_never_stop_the_broker") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let path = env.socket();

    // A client that connects and sends nothing, held open throughout.
    let mut loris = UnixStream::connect(&path).unwrap();
    // A half-sent frame, held open too.
    let mut half = UnixStream::connect(&path).unwrap();
    half.write_all(&100u32.to_be_bytes()).unwrap();
    half.write_all(b"{\"op\":").unwrap();

    // Meanwhile others are served at once.
    let start = Instant::now();
    let (r, _) = call(&env, &Request::Ping, Duration::from_secs(5));
    assert!(matches!(r, Ok(Reply::Time { .. })), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(2));

    // An oversized length: refused without reading (or allocating) the body.
    let mut big = UnixStream::connect(&path).unwrap();
    big.write_all(&u32::MAX.to_be_bytes()).unwrap();
    match final_reply(&mut big) {
        Some(Reply::Error { kind, message }) => {
            assert_eq!(kind, ErrorKind::Forbidden);
            assert!(message.contains("over"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Garbage JSON, and a well-formed frame with an unknown op.
    for body in [&b"\xff\xfe garbage"[..], br#"{"op":"shutdown"}"#] {
        let mut g = UnixStream::connect(&path).unwrap();
        g.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        g.write_all(body).unwrap();
        match final_reply(&mut g) {
            Some(Reply::Error { kind, message }) => {
                assert_eq!(kind, ErrorKind::Forbidden);
                assert!(message.contains("malformed request"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
    // Control characters in a user name are refused before Duo sees them.
    match call(
        &env,
        &super::preauth("ann\nfake log line"),
        Duration::from_secs(5),
    )
    .0
    {
        Err(BrokerError::Duo(ErrorKind::Forbidden, _)) => {}
        other => panic!("{other:?}"),
    }
    // A client that hangs up mid-push: the broker stops polling for it.
    mock.set_users(json!({"ann": {}, "hang": {"push": "timeout"}}));
    let mut gone = UnixStream::connect(&path).unwrap();
    mfa_core::duo::write_frame(&mut gone, &push("hang")).unwrap();
    super::wait_until("the push to reach Duo", Duration::from_secs(5), || {
        mock.to("/auth/v2/auth").iter().any(|r| r["user"] == "hang")
    });
    drop(gone);

    // The silent clients are cut off after the read timeout, with a reason.
    loris
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cut = Instant::now();
    match final_reply(&mut loris) {
        Some(Reply::Error { kind, message }) => {
            assert_eq!(kind, ErrorKind::Forbidden);
            assert!(message.contains("no request within"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(cut.elapsed() < Duration::from_secs(5));
    let mut rest = Vec::new();
    half.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = half.read_to_end(&mut rest);

    // And the broker still serves.
    let (r, _) = call(&env, &push("ann"), Duration::from_secs(10));
    assert!(
        matches!(r, Ok(Reply::Auth(ref a)) if a.result == "allow"),
        "{r:?}"
    );
    // The abandoned push was not polled until the timeout.
    std::thread::sleep(Duration::from_millis(1500));
    let polls = |m: &Mock| {
        m.requests()
            .iter()
            .filter(|r| r["path"] == "/auth/v2/auth_status" && r["user"] == "hang")
            .count()
    };
    let n = polls(&mock);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        polls(&mock),
        n,
        "the broker still polls for a caller that left"
    );
    d.stop();
}

#[test]
fn a_file_at_the_socket_path_stops_the_start_and_once_never_listens() {
    if !root_or_skip("a_file_at_the_socket_path_stops_the_start_and_once_never_listens") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    // --once drains the spool and exits; it never opens the broker.
    let out = env.run(&["--once"], Duration::from_secs(15));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!env.socket().exists());
    assert!(!out.stderr.contains("duo: broker"), "{}", out.stderr);

    std::fs::write(env.socket(), "not a socket").unwrap();
    let out = env.run(&[], Duration::from_secs(15));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("cannot start the Duo broker")
            && out.stderr.contains("exists and is not a socket")
            && out.stderr.contains("rm "),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(env.socket()).unwrap(),
        "not a socket"
    );
}

#[test]
fn more_than_max_pending_at_once_is_busy() {
    if !root_or_skip("more_than_max_pending_at_once_is_busy") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    // MAX_PENDING clients holding a slot each (connected, silent).
    let held: Vec<UnixStream> = (0..mfa_core::duo::MAX_PENDING)
        .map(|_| UnixStream::connect(env.socket()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    match call(&env, &Request::Ping, Duration::from_secs(5)).0 {
        Err(BrokerError::Duo(ErrorKind::Busy, m)) => assert!(m.contains("already serves"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(mock.requests().is_empty(), "{:?}", mock.summary());
    drop(held);
    // Slots free again once those clients are gone.
    super::wait_until("the broker to serve again", Duration::from_secs(8), || {
        matches!(
            call(&env, &Request::Ping, Duration::from_secs(5)).0,
            Ok(Reply::Time { .. })
        )
    });
    let log = d.stop();
    assert!(log.contains("duo: busy"), "{log}");
}

#[test]
fn sighup_rereads_the_duo_section() {
    if !root_or_skip("sighup_rereads_the_duo_section") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    assert!(matches!(
        call(&env, &Request::Check, Duration::from_secs(5)).0,
        Ok(Reply::Time { .. })
    ));
    let reload = |skey: &str, n: usize| {
        std::fs::write(&env.skey, format!("{skey}\n")).unwrap();
        signal(d.child.id(), "HUP");
        super::wait_until("the reload", Duration::from_secs(5), || {
            d.log().matches("configuration reloaded (SIGHUP)").count() >= n
        });
    };
    reload("a-new-wrong-key", 1);
    match call(&env, &Request::Check, Duration::from_secs(5)).0 {
        Err(BrokerError::Duo(ErrorKind::Credentials, m)) => assert!(m.contains("40103"), "{m}"),
        other => panic!("{other:?}"),
    }
    reload(super::SKEY, 2);
    assert!(matches!(
        call(&env, &Request::Check, Duration::from_secs(5)).0,
        Ok(Reply::Time { .. })
    ));
    let log = d.stop();
    assert!(!log.contains("a-new-wrong-key"), "{log}");
}

#[test]
fn sighup_opens_the_broker_when_duo_is_added() {
    if !root_or_skip("sighup_opens_the_broker_when_duo_is_added") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let config = env.install.config.clone();
    let full = std::fs::read_to_string(&config).unwrap();
    let start = full.find("[duo]").unwrap();
    let end = full[start..].find("\n\n").map_or(full.len(), |e| start + e);
    std::fs::write(&config, format!("{}{}", &full[..start], &full[end..])).unwrap();
    assert!(!std::fs::read_to_string(&config).unwrap().contains("[duo]"));

    let log = env.install.path("daemon-added.err");
    let child = env
        .as_sender(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Guard(child);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    super::wait_until("the sender to start", Duration::from_secs(10), || {
        read().contains("started:")
    });
    assert!(
        !env.socket().exists(),
        "a broker without [duo]:\n{}",
        read()
    );
    std::fs::write(&config, &full).unwrap();
    signal(child.0.id(), "HUP");
    super::wait_until("the broker to open", Duration::from_secs(10), || {
        read().contains("duo: broker listening")
    });
    let (r, _) = call(&env, &Request::Ping, Duration::from_secs(5));
    assert!(matches!(r, Ok(Reply::Time { .. })), "{r:?}");
    let status = super::terminate(&mut child.0, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", read());
    assert!(!env.socket().exists());
}

/// Kills the child when the test ends, whatever happened.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        super::kill_and_reap(&mut self.0);
    }
}
