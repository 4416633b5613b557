//! Twilio's Messages API: a plain send (From, and MessagingServiceSid instead), 429 with
//! Retry-After, 500s, and numbers Twilio refuses for good (21211, 21614).

use std::time::Duration;

use super::{
    BODY, Env, Mock, Provider, SmsConfig, TO, assert_log_discreet, assert_twilio_send, wait_until,
};

#[test]
fn sends_to_from_body_with_basic_auth() {
    let mock = Mock::start(Provider::Twilio, &[]);
    let env = Env::new(&SmsConfig::twilio(&mock));
    let id = env.enqueue(TO, BODY);
    let other = env.enqueue("+447700900123", "second message");

    let out = env.once();
    assert_eq!(out.code, 0, "{out:?}");

    // Each message went out exactly once, as a well-formed request the mock accepted.
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2, "{:?}", mock.summary());
    assert!(reqs.iter().all(|r| r.status == 201), "{:?}", mock.summary());
    let first = mock.requests_to("To", TO);
    assert_eq!(first.len(), 1);
    assert_twilio_send(&first[0], TO, BODY, false);
    let second = mock.requests_to("To", "+447700900123");
    assert_eq!(second.len(), 1);
    assert_twilio_send(&second[0], "+447700900123", "second message", false);
    assert!(
        first[0].raw["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("mfa-sender/"),
        "{}",
        first[0].raw["user_agent"]
    );

    // Deleted once accepted, and the log names the message sid Twilio returned.
    env.assert_empty();
    let sid = first[0].id();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(
        out.stderr.contains(&format!("id={id} ")) && out.stderr.contains(&format!("sent ({sid})")),
        "the log should name the message and its sid {sid}:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("id={other} ")),
        "{}",
        out.stderr
    );
    assert_log_discreet(&out.stderr);
}

#[test]
fn messaging_service_sid_replaces_from() {
    let mock = Mock::start(Provider::Twilio, &[]);
    let env = Env::new(&SmsConfig {
        from: None,
        messaging_service_sid: Some(super::SERVICE_SID.into()),
        ..SmsConfig::twilio(&mock)
    });
    env.enqueue(TO, BODY);

    let out = env.once();
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = mock.accepted();
    assert_eq!(reqs.len(), 1, "{:?}", mock.summary());
    // To, MessagingServiceSid and Body, and no From at all.
    assert_twilio_send(&reqs[0], TO, BODY, true);
    assert_eq!(mock.requests().len(), 1, "{:?}", mock.summary());
    env.assert_empty();
}

#[test]
fn retry_after_of_a_429_is_honoured() {
    // Two 429s with Retry-After: 2. The sender's own first backoff is 0.75-1.25 s, so a
    // retry 2 s later can only come from the header.
    let mock = Mock::start(
        Provider::Twilio,
        &["--rate-limit", "2", "--retry-after", "2"],
    );
    let env = Env::new(&SmsConfig::twilio(&mock));
    let daemon = env.daemon();
    let id = env.enqueue(TO, BODY);

    let reqs = mock.wait_accepted(1, Duration::from_secs(15));
    let all = mock.requests();
    let statuses: Vec<u64> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 429, 201], "{:?}", mock.summary());
    for r in &all {
        assert_twilio_send(r, TO, BODY, false);
    }
    for pair in all.windows(2) {
        let gap = pair[1].t - pair[0].t;
        assert!(
            gap >= 2.0,
            "retried {gap:.3} s after a 429 with Retry-After: 2"
        );
        assert!(
            gap < 3.5,
            "retried {gap:.3} s after a 429 with Retry-After: 2 (too late)"
        );
    }
    assert_eq!(reqs.len(), 1, "delivered more than once");
    wait_until("the spool to drain", Duration::from_secs(5), || {
        env.drained()
    });
    // Nothing else goes out afterwards.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(mock.requests().len(), 3, "{:?}", mock.summary());

    let log = daemon.stop();
    env.assert_empty();
    assert!(log.contains("retry in 2.0s"), "{log}");
    assert!(log.contains("HTTP 429"), "{log}");
    assert!(log.contains(&format!("id={id} ")), "{log}");
    assert_log_discreet(&log);
}

#[test]
fn server_errors_are_retried_until_accepted() {
    let mock = Mock::start(Provider::Twilio, &["--fail", "2"]);
    let env = Env::new(&SmsConfig::twilio(&mock));
    env.enqueue(TO, BODY);
    let daemon = env.daemon();

    let accepted = mock.wait_accepted(1, Duration::from_secs(15));
    assert_eq!(accepted.len(), 1);
    let all = mock.requests();
    let statuses: Vec<u64> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 201], "{:?}", mock.summary());
    assert_eq!(all[0].code, Some(20500));
    for r in &all {
        assert_twilio_send(r, TO, BODY, false);
    }
    // Exponential backoff with ±25 % jitter: about 1 s, then about 2 s.
    let gaps: Vec<f64> = all.windows(2).map(|w| w[1].t - w[0].t).collect();
    assert!(gaps[0] >= 0.7, "first retry after {:.3} s", gaps[0]);
    assert!(gaps[1] >= 1.45, "second retry after {:.3} s", gaps[1]);

    wait_until("the spool to drain", Duration::from_secs(5), || {
        env.drained()
    });
    let log = daemon.stop();
    env.assert_empty();
    assert!(log.contains("HTTP 500"), "{log}");
    assert!(log.contains("twilio 20500"), "{log}");
    assert_eq!(mock.requests().len(), 3, "{:?}", mock.summary());
}

#[test]
fn refused_numbers_fail_with_the_twilio_code() {
    let mock = Mock::start(
        Provider::Twilio,
        &[
            "--reject",
            "+14155550100:21211",
            "--reject",
            "+14155550101:21614",
        ],
    );
    let env = Env::new(&SmsConfig::twilio(&mock));
    let good = env.enqueue(TO, BODY);
    let invalid = env.enqueue("+14155550100", BODY);
    let landline = env.enqueue("+14155550101", BODY);
    // Not E.164 at all: Twilio's own format check answers 21211.
    let unformatted = env.enqueue("4155550102", BODY);

    let out = env.once();
    assert_eq!(out.code, 0, "{out:?}");

    // The good one went through; each refused one was tried once, never retried.
    assert_eq!(mock.requests_to("To", TO).len(), 1);
    assert!(mock.requests_to("To", TO)[0].accepted);
    for (to, code) in [
        ("+14155550100", 21211),
        ("+14155550101", 21614),
        ("4155550102", 21211),
    ] {
        let reqs = mock.requests_to("To", to);
        assert_eq!(reqs.len(), 1, "{to}: {:?}", mock.summary());
        assert_eq!(reqs[0].status, 400);
        assert_eq!(reqs[0].code, Some(code));
        assert_twilio_send(&reqs[0], to, BODY, false);
    }
    assert_eq!(mock.requests().len(), 4, "{:?}", mock.summary());

    // Nothing left pending; the refused ones are in failed/ with a reason naming the code.
    assert!(
        env.drained(),
        "new {:?} cur {:?}",
        env.files("new"),
        env.files("cur")
    );
    let mut failed = env.files("failed");
    failed.retain(|f| f.ends_with(".json"));
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(!failed.contains(&format!("{good}.json")));
    let reason = env.failure_reason(&invalid);
    assert!(
        reason.contains("21211") && reason.contains("not a valid phone number"),
        "{reason}"
    );
    assert!(reason.contains("HTTP 400"), "{reason}");
    let reason = env.failure_reason(&landline);
    assert!(
        reason.contains("21614") && reason.contains("not a valid mobile number"),
        "{reason}"
    );
    let reason = env.failure_reason(&unformatted);
    assert!(reason.contains("21211"), "{reason}");
    assert!(
        out.stderr.contains(&format!("id={invalid} ")) && out.stderr.contains("failed: HTTP 400"),
        "{}",
        out.stderr
    );
}
