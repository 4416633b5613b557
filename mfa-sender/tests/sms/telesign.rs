//! TeleSign's messaging API: a plain OTP send, and a 500 followed by success.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    API_KEY, BODY, CUSTOMER_ID, Env, Mock, Provider, Request, SmsConfig, TO, assert_log_discreet,
    wait_until,
};

/// Asserts a request was a well-formed TeleSign send of [`BODY`] to [`TO`].
fn assert_telesign_send(r: &Request) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messaging");
    assert_eq!(
        r.basic_auth(),
        Some((CUSTOMER_ID.to_string(), API_KEY.to_string())),
        "Basic auth must be CustomerId:ApiKey"
    );
    assert!(
        r.raw["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        r.raw["content_type"]
    );
    // The number without its '+', the body as is, and the OTP message type.
    let want = BTreeMap::from([
        ("phone_number".to_string(), "14155550123".to_string()),
        ("message".to_string(), BODY.to_string()),
        ("message_type".to_string(), "OTP".to_string()),
    ]);
    assert_eq!(r.fields(), want);
}

#[test]
fn sends_an_otp_message() {
    let mock = Mock::start(Provider::Telesign, &[]);
    let env = Env::new(&SmsConfig::telesign(&mock));
    let id = env.enqueue(TO, BODY);

    let out = env.once();
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "{:?}", mock.summary());
    assert_eq!(reqs[0].status, 200);
    assert!(reqs[0].accepted);
    assert_telesign_send(&reqs[0]);

    env.assert_empty();
    let reference = reqs[0].id();
    assert_eq!(reference.len(), 32, "{reference}");
    assert!(
        out.stderr.contains(&format!("id={id} "))
            && out.stderr.contains(&format!("sent ({reference})")),
        "the log should name the message and its reference_id {reference}:\n{}",
        out.stderr
    );
    assert_log_discreet(&out.stderr);
}

#[test]
fn a_server_error_is_retried() {
    let mock = Mock::start(Provider::Telesign, &["--fail", "1"]);
    let env = Env::new(&SmsConfig::telesign(&mock));
    let daemon = env.daemon();
    env.enqueue(TO, BODY);

    let accepted = mock.wait_accepted(1, Duration::from_secs(10));
    assert_eq!(accepted.len(), 1);
    let all = mock.requests();
    let statuses: Vec<u64> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200], "{:?}", mock.summary());
    for r in &all {
        assert_telesign_send(r);
    }
    let gap = all[1].t - all[0].t;
    assert!(
        gap >= 0.7,
        "retried {gap:.3} s after a 500 (backoff is 1 s ± 25 %)"
    );

    wait_until("the spool to drain", Duration::from_secs(5), || {
        env.drained()
    });
    let log = daemon.stop();
    env.assert_empty();
    assert!(log.contains("HTTP 500"), "{log}");
    assert_eq!(mock.requests().len(), 2, "{:?}", mock.summary());
    assert_log_discreet(&log);
}
