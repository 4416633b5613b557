//! Hostile callers: garbage, truncated and oversized asks, wrong frames in the
//! conversation, arguments, and a caller that leaves mid-conversation.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Stdio};

use mfa_core::auth::Outcome;
use mfa_core::helper::{Frame, Mode};

use super::*;

/// Sends `bytes` and closes the channel's sending side: the helper sees the end of input.
fn raw(i: &Install, bytes: &[u8]) -> Run {
    raw_with(i.spawn(), bytes)
}

fn raw_with(mut child: Child, bytes: &[u8]) -> Run {
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all(bytes);
    drop(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let last = helper::read_frame(&mut stdout);
    Run {
        shown: Vec::new(),
        last,
        exit: child.wait().unwrap().code(),
    }
}

/// Every bad ask: status 2, a refusal saying what was wrong, nothing done.
#[test]
fn bad_asks_are_refused_with_status_2() {
    let i = Install::new();
    let before = i.files();
    let good = ask(Mode::Plain, "ann", "", None).encode().unwrap();
    let mut huge = vec![b'R'];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let mut version = good.clone();
    version[5] = 9;
    let mut star = ask(Mode::Plain, "ann", "", None);
    if let Frame::Ask(a) = &mut star {
        a.service = "*".into();
    }
    let mut blank = ask(Mode::Plain, " ann", "", None);
    if let Frame::Ask(a) = &mut blank {
        a.user = " ann".into();
    }
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "the other side closed"),
        (b"GET / HTTP/1.0\r\n\r\n".to_vec(), "unknown frame tag"),
        (good[..good.len() - 1].to_vec(), "truncated frame 'R'"),
        (good[..3].to_vec(), "truncated frame 'R'"),
        (huge, "oversized frame"),
        (version, "protocol version 9"),
        (Frame::Shown.encode().unwrap(), "expected an ask"),
        (star.encode().unwrap(), "not a service name"),
        (blank.encode().unwrap(), "no user name"),
    ];
    for (bytes, want) in cases {
        let r = raw(&i, &bytes);
        assert_eq!(r.exit, Some(2), "{bytes:?}: {r:?}");
        match &r.last {
            Ok(Frame::Refused(why)) => assert!(why.contains(want), "{bytes:?}: {why}"),
            other => panic!("{bytes:?}: {other:?}"),
        }
    }
    // An argument: refused before anything is read.
    let r = drive(
        spawn(
            Command::new(HELPER)
                .arg("--config=/tmp/x")
                .env("MFA_CONFIG", i.config()),
        ),
        &good,
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.exit, Some(2), "{r:?}");
    assert!(matches!(&r.last, Ok(Frame::Refused(w)) if w.contains("takes no arguments")));
    assert_eq!(i.files(), before);
}

/// Answers that are not answers (an outcome forged by the caller, an oversized answer,
/// garbage) fail the conversation: a denial, never a success.
#[test]
fn forged_or_oversized_answers_fail_the_conversation() {
    let i = Install::new();
    let forged = Frame::Outcome(Outcome::Success {
        method: "totp".into(),
        destination: String::new(),
    })
    .encode()
    .unwrap();
    let mut oversized = vec![b'A'];
    oversized.extend_from_slice(&2000u32.to_be_bytes());
    oversized.extend_from_slice(&[b'1'; 2000]);
    for reply in [forged, oversized, b"\xff\xff\xff\xff\xff\xff".to_vec()] {
        let mut child = i.spawn();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        stdin
            .write_all(&ask(Mode::Plain, "ann", "", None).encode().unwrap())
            .unwrap();
        let first = helper::read_frame(&mut stdout).unwrap();
        assert!(matches!(first, Frame::Prompt { .. }), "{first:?}");
        stdin.write_all(&reply).unwrap();
        let last = helper::read_frame(&mut stdout).unwrap();
        assert!(
            matches!(&last, Frame::Outcome(Outcome::Deny { .. })),
            "{reply:?}: {last:?}"
        );
        drop(stdin);
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
}

/// More conversation frames than allowed: the helper stops relaying (every prompt answered
/// with an empty line asks for a resend, bounded by the flow itself; a message flood is
/// bounded by MAX_EXCHANGES). Here: empty answers end in a denial, in bounded frames.
#[test]
fn the_conversation_is_bounded() {
    let i = Install::new();
    let mut n = 0;
    let r = run(&i, &ask(Mode::Plain, "ann", "", None), |_| {
        n += 1;
        Some(Vec::new())
    });
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Deny { .. }))),
        "{r:?}"
    );
    assert!(r.shown.len() <= helper::MAX_EXCHANGES, "{}", r.shown.len());
    assert!(n >= 1);
}

/// The caller closes the channel at the passcode prompt: the helper ends the login as an
/// abandoned one (the auth log says so, the state file reads back), cannot write its reply
/// (status 6), and leaves no temporary file behind.
#[test]
fn a_caller_leaving_mid_conversation_leaves_consistent_state() {
    let i = Install::new();
    let mut child = i.spawn();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin
        .write_all(&ask(Mode::Plain, "ann", "192.0.2.7", None).encode().unwrap())
        .unwrap();
    let first = helper::read_frame(&mut stdout).unwrap();
    assert!(matches!(first, Frame::Prompt { .. }), "{first:?}");
    // The reading side first: the helper's reply, written once it sees the end of its
    // input, cannot be read.
    drop(stdout);
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(6), "{status:?}");
    let outcomes = i.outcomes();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(outcomes[0].starts_with("abandoned:"), "{outcomes:?}");
    let db = i.path("db/mfa.db");
    // The challenge file and the user's state read back whole.
    assert!(mfa_core::state::challenges(&db).is_ok());
    assert_eq!(mfa_core::state::failures(&db, "ann").count, 0);
    assert_eq!(i.messages().len(), 1);
    for f in i.files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.starts_with('.') && !name.contains(".tmp") && !f.starts_with(i.path("spool/tmp")),
            "left behind: {}",
            f.display()
        );
    }
}

/// A plain ask for ann from 192.0.2.8, answered with the mailed passcode, to a helper that
/// `sh -c "PRELUDE exec helper"` starts: it inherits what the shell's `prelude` set up.
fn run_after_shell(i: &Install, prelude: &str) -> Run {
    let child = spawn(
        Command::new("sh")
            .args(["-c", &format!("{prelude} exec \"$0\""), HELPER])
            .env("MFA_CONFIG", i.config()),
    );
    drive(
        child,
        &ask(Mode::Plain, "ann", "192.0.2.8", None).encode().unwrap(),
        |_| Some(i.mailed_code().into_bytes()),
    )
}

/// A caller's umask and file-size limit do not reach what the helper writes: with umask 777
/// and a soft `ulimit -f 0` the passcode is spooled whole, mode 0640 (the sender's group
/// reads it), and the login succeeds.
#[test]
fn the_callers_umask_and_soft_limits_do_not_cut_writes() {
    let i = Install::new();
    let r = run_after_shell(&i, "umask 777; ulimit -S -f 0; ulimit -S -t 1;");
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Success { .. }))),
        "{r:?}"
    );
    assert_eq!(r.exit, Some(0));
    let spooled: Vec<_> = std::fs::read_dir(i.path("spool/new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(spooled.len(), 1);
    let mode = std::fs::metadata(&spooled[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{}", spooled[0].display());
    assert_eq!(i.outcomes(), ["success:"]);
}

/// A hard file-size limit of 0: lifted where root may raise hard limits, else the helper
/// refuses (status 5, the limit named) and writes nothing, rather than fail half-way.
#[test]
fn a_hard_limit_is_lifted_or_refused() {
    let i = Install::new();
    let before = i.files();
    // Can this root raise a lowered hard limit (CAP_SYS_RESOURCE)?
    let raisable = Command::new("sh")
        .args([
            "-c",
            "ulimit -S -f 0 && ulimit -H -f 0 && ulimit -H -f unlimited",
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    let r = run_after_shell(&i, "ulimit -S -f 0 && ulimit -H -f 0 &&");
    if raisable {
        assert!(
            matches!(r.last, Ok(Frame::Outcome(Outcome::Success { .. }))),
            "{r:?}"
        );
    } else {
        assert_eq!(r.exit, Some(5), "{r:?}");
        assert!(
            matches!(&r.last, Ok(Frame::Refused(w)) if w.contains("RLIMIT_FSIZE is 0")),
            "{r:?}"
        );
        assert_eq!(i.files(), before, "something was written");
    }
}

/// A configuration that does not parse: the caller (its reply and its stderr) gets a
/// generic refusal, never the parser's error, which quotes the root-only file.
#[test]
fn a_broken_configuration_is_not_quoted() {
    let i = Install::new();
    let marker = "k3pt-pr1vate-marker";
    let text = std::fs::read_to_string(i.config()).unwrap();
    std::fs::write(
        i.config(),
        format!("{text}\n[smtp]\nusername = \"{marker}\n"),
    )
    .unwrap();
    let mut child = Command::new(HELPER)
        .env("MFA_CONFIG", i.config())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&ask(Mode::After, "ann", "", None).encode().unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let reply = helper::read_frame(&mut out.stdout.as_slice());
    assert_eq!(
        reply,
        Ok(Frame::Refused(super::flows::UNREADABLE.into())),
        "{out:?}"
    );
    for stream in [&out.stdout, &out.stderr] {
        let s = String::from_utf8_lossy(stream);
        assert!(!s.contains(marker) && !s.contains("smtp"), "{s}");
    }
}
