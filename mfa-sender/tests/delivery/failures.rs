//! What the server refuses: 4xx is retried with backoff until it goes through (exactly once),
//! 5xx fails the one message for good with the server's words, and an expired message is
//! never sent. Every message that ends in failed/ is logged and reported (status file,
//! `mfa-admin sender status`, `mfa-admin queue list`).

use std::time::Duration;

use super::{Env, ServerOpts, SmtpServer, admin, mfa_admin, smtp_plain, tail, wait_until};

#[test]
fn temporary_failures_are_retried_and_delivered_once() {
    // The first RCPT and the first DATA get 451: the message needs three attempts.
    let server = SmtpServer::start(&ServerOpts {
        tempfail_rcpt: 1,
        tempfail_data: 1,
        ..ServerOpts::default()
    });
    let env = Env::new(&smtp_plain(server.port));
    let id = env.email("carol@example.com", 600);
    let mut sender = env.start();
    server.wait_ids(std::slice::from_ref(&id), Duration::from_secs(20));
    wait_until("the spool to drain", Duration::from_secs(10), || {
        env.drained()
    });
    // Drained: the sender deleted the message, so nothing more can arrive.
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));

    let stages: Vec<String> = server
        .events_of("tempfail")
        .iter()
        .map(|e| e["stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stages, ["RCPT", "DATA"]);
    let arrivals = server.arrivals();
    assert_eq!(arrivals.get(&id), Some(&1), "{arrivals:?}");
    assert_eq!(arrivals.len(), 1);
    assert!(env.files("failed").is_empty(), "{:?}", env.files("failed"));
    let log = env.log();
    for line in [
        format!("id={id} to=a***@e***.com attempt 1 failed"),
        format!("id={id} to=a***@e***.com attempt 2 failed"),
    ] {
        assert!(log.contains(&line), "log lacks {line:?}:\n{log}");
    }
    assert!(
        log.contains("RCPT TO: 451 ") && log.contains("DATA: 451 "),
        "the server's reply is logged: {log}"
    );
    assert!(log.contains(&format!("id={id} to=a***@e***.com channel=email sent")));
    // Backoff: the 2nd attempt came about 1 s after the 1st, the 3rd about 2 s later.
    let waits: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("; retry in ").nth(1))
        .map(|w| w.trim_end_matches('s').parse().unwrap())
        .collect();
    assert_eq!(waits.len(), 2, "{log}");
    assert!((0.75..=1.25).contains(&waits[0]), "{waits:?}");
    assert!((1.5..=2.5).contains(&waits[1]), "{waits:?}");
}

#[test]
fn permanent_failure_fails_only_that_message() {
    let server = SmtpServer::start(&ServerOpts {
        reject: vec!["nobody@example.com".into()],
        ..ServerOpts::default()
    });
    let env = Env::new(&smtp_plain(server.port));
    let good1 = env.email("dave@example.com", 600);
    let bad = env.email("nobody@example.com", 600);
    let good2 = env.email("erin@example.com", 600);
    let out = env.once();

    server.wait_ids(&[good1.clone(), good2.clone()], Duration::from_secs(10));
    let arrivals = server.arrivals();
    assert!(!arrivals.contains_key(&bad), "{arrivals:?}");
    assert_eq!(arrivals.len(), 2);
    assert!(env.drained(), "{out:?}");
    assert_eq!(
        env.files("failed"),
        [format!("{bad}.json"), format!("{bad}.reason")]
    );
    let reason = env.reason(&bad).unwrap();
    // The server's reason, with the recipient it quoted masked (logs never hold a full
    // contact).
    assert!(
        reason.contains("550") && reason.contains("Recipient address rejected: no such user"),
        "{reason:?}"
    );
    assert!(!reason.contains("nobody@example.com"), "{reason:?}");
    assert!(!out.stderr.contains("nobody@example.com"), "{}", out.stderr);
    // Tried once: a 5xx is not retried.
    assert_eq!(server.events_of("reject").len(), 1);
    assert!(
        out.stderr
            .contains(&format!("id={bad} to=a***@e***.com failed: ")),
        "{out:?}"
    );
    // The message itself is kept intact for `mfa-admin queue retry`.
    let kept =
        mfa_core::spool::read(&env.spool().join("failed").join(format!("{bad}.json"))).unwrap();
    assert_eq!(kept.to, "nobody@example.com");
}

#[test]
fn expired_messages_are_not_sent() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::new(&smtp_plain(server.port));
    let stale = env.email("frank@example.com", -60);
    let just_expired = env.email("grace@example.com", -1);
    let fresh = env.email("heidi@example.com", 600);
    let out = env.once();

    server.wait_ids(std::slice::from_ref(&fresh), Duration::from_secs(10));
    let arrivals = server.arrivals();
    assert_eq!(arrivals.keys().collect::<Vec<_>>(), [&fresh], "{out:?}");
    assert!(env.drained());
    for id in [&stale, &just_expired] {
        assert_eq!(
            env.reason(id).as_deref(),
            Some("expired"),
            "{id}: {:?}\n{}",
            env.files("failed"),
            tail(&out.stderr, 10)
        );
    }
    assert_eq!(env.files("failed").len(), 4);
}

/// Nothing fails silently: a refused, an expired and an unparsable message each get a log
/// line (id, masked recipient when known, reason), the status file's failed count and last
/// error, and a row in `mfa-admin queue list`; `mfa-admin sender status` never says "last
/// error: none" beside failed messages, also when the status file is gone.
#[test]
fn every_failure_is_logged_and_reported() {
    let server = SmtpServer::start(&ServerOpts {
        reject: vec!["nobody@example.com".into()],
        ..ServerOpts::default()
    });
    let env = Env::new(&smtp_plain(server.port));
    let refused = env.email("nobody@example.com", 600);
    let expired = env.email("judy@example.com", -60);
    let garbage = format!("{}-garbage", mfa_core::now());
    std::fs::write(
        env.spool().join("new").join(format!("{garbage}.json")),
        "\u{1b}[2J not json\n",
    )
    .unwrap();
    let good = env.email("ken@example.com", 600);
    let out = env.once();
    server.wait_ids(std::slice::from_ref(&good), Duration::from_secs(10));

    let log = &out.stderr;
    for (id, line) in [
        (&refused, format!("id={refused} to=a***@e***.com failed: ")),
        (
            &expired,
            format!("id={expired} to=a***@e***.com failed: expired"),
        ),
        (&garbage, format!("id={garbage} failed: cannot parse: ")),
    ] {
        assert!(log.contains(&line), "{id}: no {line:?} in:\n{log}");
        assert!(env.reason(id).is_some(), "{id} not in failed/");
    }
    assert!(
        !log.contains('\u{1b}'),
        "control bytes reached the log: {log:?}"
    );
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.runtime().join("sender.status")).unwrap())
            .unwrap();
    assert_eq!(st["failed"], 3, "{st}");
    // The last error is the server's reply, which names the recipient ("550 5.1.1
    // <nobody@example.com>: ..."): the runtime directory is open to everyone (0755), the
    // status file is not (the sender's and its group's, as failed/ID.reason is).
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.runtime().join("sender.status"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o640, "sender.status mode {mode:o}");
    let last = st["last_error"].as_str().unwrap().to_string();
    assert!(
        [&refused, &expired, &garbage]
            .iter()
            .any(|id| last.starts_with(&format!("{id}: "))),
        "{st}"
    );

    let bin = mfa_admin();
    let status = admin(&env, &bin, &["sender", "status"]);
    assert!(
        status.contains("failed:     3") && status.contains(&format!("last error: {last}")),
        "{status}"
    );
    // The status file gone (a restarted sender, a wiped /run): the newest reason in failed/.
    std::fs::remove_file(env.runtime().join("sender.status")).unwrap();
    let status = admin(&env, &bin, &["sender", "status"]);
    assert!(!status.contains("last error: none"), "{status}");
    let shown = status
        .lines()
        .find_map(|l| l.strip_prefix("last error: "))
        .unwrap();
    let (id, reason) = shown.split_once(": ").unwrap();
    assert_eq!(env.reason(id).as_deref(), Some(reason), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&admin(&env, &bin, &["--json", "sender", "status"])).unwrap();
    assert_eq!(json["failed"], 3);
    assert_eq!(json["last_error"].as_str(), Some(shown));

    let list: serde_json::Value =
        serde_json::from_str(&admin(&env, &bin, &["--json", "queue", "list"])).unwrap();
    for (id, says) in [
        (&refused, "550"),
        (&expired, "expired"),
        (&garbage, "cannot parse"),
    ] {
        let row = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == **id)
            .unwrap_or_else(|| panic!("{id} not listed: {list}"));
        assert_eq!(row["state"], "failed", "{row}");
        assert!(row["reason"].as_str().unwrap().contains(says), "{row}");
    }
    let text = admin(&env, &bin, &["queue", "list"]);
    assert!(
        text.lines()
            .any(|l| l.contains(&expired) && l.contains("failed") && l.contains("expired")),
        "{text}"
    );
}
