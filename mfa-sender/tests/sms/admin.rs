//! End to end: an SMS contact made with mfa-admin, a test message queued with
//! `mfa-admin test`, delivered by `mfa-sender --once` through the Twilio API.

use super::{Env, Mock, Provider, SmsConfig, TO, admin, assert_twilio_send, mfa_admin};

#[test]
fn mfa_admin_test_message_reaches_twilio() {
    let mock = Mock::start(Provider::Twilio, &[]);
    let env = Env::new(&SmsConfig::twilio(&mock));
    let bin = mfa_admin();
    admin(&env, &bin, &["init"]);
    admin(&env, &bin, &["user", "add", "alice"]);
    // Typed the way people type numbers; stored and sent as E.164.
    admin(
        &env,
        &bin,
        &["contact", "add", "alice", "--sms", "+1 415 555 0123"],
    );
    let queued = admin(&env, &bin, &["test", "alice"]);
    assert!(queued.contains("(sms)"), "{queued}");
    assert_eq!(env.files("new").len(), 1);

    let out = env.once();
    assert_eq!(out.code, 0, "{out:?}");
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1, "{:?}", mock.summary());
    assert_eq!(reqs[0].status, 201);
    let body = reqs[0].fields()["Body"].clone();
    assert!(
        body.contains("Test message from mfa") && body.contains("alice"),
        "{body}"
    );
    assert_twilio_send(&reqs[0], TO, &body, false);
    env.assert_empty();
    assert!(!out.stderr.contains(TO), "{}", out.stderr);
}
