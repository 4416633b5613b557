//! What the broker answers for each scripted Duo behaviour: pushes approved, denied,
//! reported as fraud or never answered (the `[duo] timeout`: deny/timeout), with Duo's
//! status text relayed as progress; preauth auth/allow/deny/enroll; passcodes (the value
//! never logged) and SMS; enroll and enroll_status; 429 waited out when Retry-After fits,
//! else Unavailable, as are 5xx and a server slower than the timeout.

use std::time::{Duration, Instant};

use mfa_core::duo::{BrokerError, ErrorKind, Factor, Reply, Request};
use serde_json::json;

use super::{DuoConfig, Env, Mock, call, preauth, push, root_or_skip};

fn auth_of(r: Result<Reply, BrokerError>) -> mfa_core::duo::AuthResult {
    match r {
        Ok(Reply::Auth(a)) => a,
        other => panic!("expected an auth reply, got {other:?}"),
    }
}

#[test]
fn pushes_approved_denied_fraud_and_unanswered() {
    if !root_or_skip("pushes_approved_denied_fraud_and_unanswered") {
        return;
    }
    let mock = Mock::start(
        json!({
            "ann": {"push": "approve", "after": 1.5},
            "bob": {"push": "deny"},
            "cat": {"push": "fraud"},
            "dan": {"push": "timeout"},
        }),
        &[],
    );
    let env = Env::new(
        &mock,
        &DuoConfig {
            timeout: "3s",
            ..DuoConfig::default()
        },
    );
    let d = env.daemon();

    let (r, seen) = call(&env, &push("ann"), Duration::from_secs(10));
    let a = auth_of(r);
    assert_eq!((a.result.as_str(), a.status.as_str()), ("allow", "allow"));
    assert!(!a.txid.is_empty());
    // Duo's waiting text came through as progress, once (not at every poll).
    assert_eq!(seen, ["Pushed a login request to your device..."]);
    let sent = &mock.to("/auth/v2/auth")[0];
    assert_eq!(sent["txid"], a.txid.as_str());
    let p = &sent["params"];
    assert_eq!(p["factor"], "push");
    assert_eq!(p["device"], "auto");
    assert_eq!(p["async"], "1");
    assert_eq!(p["ipaddr"], "192.0.2.7");
    assert_eq!(p["hostname"], "web1");
    assert_eq!(p["pushinfo"], "service=sshd");
    // Polled about once a second while Duo waited 1.5 s: 2 or 3 polls, not a busy loop.
    let polls = mock.to("/auth/v2/auth_status").len();
    assert!(
        (2..=4).contains(&polls),
        "{polls} polls: {:?}",
        mock.summary()
    );

    // A remote host name (PAM's rhost may be one) is not sent as ipaddr, which Duo refuses.
    let mut by_name = push("ann");
    if let Request::Auth { ipaddr, .. } = &mut by_name {
        *ipaddr = Some("client.example.org".into());
    }
    let a = auth_of(call(&env, &by_name, Duration::from_secs(10)).0);
    assert_eq!(a.result, "allow");
    let sent = mock.to("/auth/v2/auth");
    assert!(sent[1]["params"].get("ipaddr").is_none(), "{}", sent[1]);

    // A hostile remote host (from PAM_RHOST) in pushinfo and ipaddr: the push still goes,
    // the text cut and without control characters, the address left out.
    let mut hostile = push("bob");
    if let Request::Auth {
        ipaddr, pushinfo, ..
    } = &mut hostile
    {
        *ipaddr = Some("evil\u{1b}[2J".into());
        pushinfo.push(("from".into(), format!("x\u{1b}[2J\ny{}", "h".repeat(1100))));
    }
    let a = auth_of(call(&env, &hostile, Duration::from_secs(10)).0);
    assert_eq!((a.result.as_str(), a.status.as_str()), ("deny", "deny"));
    let sent = mock.to("/auth/v2/auth");
    let p = &sent[2]["params"];
    assert!(p.get("ipaddr").is_none(), "{p}");
    let info = p["pushinfo"].as_str().unwrap();
    assert!(
        info.starts_with("service=sshd&from=x%20%5B2J%20y"),
        "{info}"
    );
    assert!(info.len() < 300 * 3, "{} bytes", info.len());

    for (user, status) in [("bob", "deny"), ("cat", "fraud")] {
        let a = auth_of(call(&env, &push(user), Duration::from_secs(10)).0);
        assert_eq!((a.result.as_str(), a.status.as_str()), ("deny", status));
    }

    // Never answered: the broker's own timeout (3 s) ends it with deny/timeout, and
    // keepalives kept the caller's wait (IDLE) from ending it first.
    let start = Instant::now();
    let a = auth_of(call(&env, &push("dan"), Duration::from_secs(10)).0);
    let took = start.elapsed();
    assert_eq!((a.result.as_str(), a.status.as_str()), ("deny", "timeout"));
    assert!(!a.txid.is_empty());
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(5),
        "{took:?}"
    );

    let log = d.stop();
    assert!(
        log.contains("duo: op=auth user=ann factor=push result=allow status=allow txid="),
        "{log}"
    );
    assert!(
        log.contains("user=cat factor=push result=deny status=fraud"),
        "{log}"
    );
    assert!(
        log.contains("user=dan factor=push result=deny status=timeout"),
        "{log}"
    );
}

#[test]
fn preauth_answers_and_enrollment() {
    if !root_or_skip("preauth_answers_and_enrollment") {
        return;
    }
    let mock = Mock::start(
        json!({
            "ann": {"devices": [
                {"device": "D1", "display_name": "iOS (XXX-XXX-1234)", "type": "phone",
                 "capabilities": ["auto", "push", "sms", "phone", "mobile_otp"]},
                {"device": "D2", "display_name": "Token", "type": "token", "capabilities": []}
            ]},
            "al": {"preauth": "allow"},
            "dee": {"preauth": "deny"},
            "en": {"preauth": "enroll", "enroll_status": "success"},
        }),
        &[],
    );
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let pre = |u: &str| match call(&env, &preauth(u), Duration::from_secs(10)).0 {
        Ok(Reply::Preauth(p)) => p,
        other => panic!("{u}: {other:?}"),
    };
    let p = pre("ann");
    assert_eq!(p.result, "auth");
    assert_eq!(
        p.devices
            .iter()
            .map(|d| d.device.as_str())
            .collect::<Vec<_>>(),
        ["D1", "D2"]
    );
    assert_eq!(p.devices[1].kind, "token");
    assert_eq!(pre("al").result, "allow");
    assert_eq!(pre("dee").result, "deny");
    let e = pre("en");
    assert_eq!(e.result, "enroll");
    assert!(
        e.enroll_portal_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
        "{e:?}"
    );
    // A user Duo does not know (no "*" entry): Duo's 400, Refused, with its message.
    match call(&env, &preauth("nobody-here"), Duration::from_secs(10)).0 {
        Err(BrokerError::Duo(ErrorKind::Refused, m)) => {
            assert!(m.contains("40002") && m.contains("username"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    // A push to a device the user does not have: Refused too.
    let mut req = push("ann");
    if let Request::Auth { device, .. } = &mut req {
        *device = Some("NOPE".into());
    }
    assert!(matches!(
        call(&env, &req, Duration::from_secs(10)).0,
        Err(BrokerError::Duo(ErrorKind::Refused, _))
    ));

    // Enroll, then its status.
    let en = match call(
        &env,
        &Request::Enroll {
            username: Some("en".into()),
        },
        Duration::from_secs(10),
    )
    .0
    {
        Ok(Reply::Enrolled(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(en.username, "en");
    assert!(en.activation_url.starts_with("https://") && !en.user_id.is_empty());
    let status = |code: &str| match call(
        &env,
        &Request::EnrollStatus {
            user_id: en.user_id.clone(),
            activation_code: code.into(),
        },
        Duration::from_secs(10),
    )
    .0
    {
        Ok(Reply::EnrollStatus { status }) => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(status(&en.activation_code), "success");
    assert_eq!(status("duo://wrong"), "invalid");
    d.stop();
}

#[test]
fn passcodes_and_sms() {
    if !root_or_skip("passcodes_and_sms") {
        return;
    }
    let mock = Mock::start(json!({"ann": {"passcodes": ["864209"]}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let code = |c: &str| Request::Auth {
        username: "ann".into(),
        factor: Factor::Passcode,
        device: None,
        passcode: Some(c.into()),
        ipaddr: None,
        hostname: "web1".into(),
        pushinfo: vec![],
    };
    let a = auth_of(call(&env, &code("864209"), Duration::from_secs(10)).0);
    assert_eq!((a.result.as_str(), a.status.as_str()), ("allow", "allow"));
    let a = auth_of(call(&env, &code("111111"), Duration::from_secs(10)).0);
    assert_eq!((a.result.as_str(), a.status.as_str()), ("deny", "deny"));
    let sms = Request::Auth {
        username: "ann".into(),
        factor: Factor::Sms,
        device: Some("DPFZRS9FB0D46QFTM891".into()),
        passcode: None,
        ipaddr: None,
        hostname: "web1".into(),
        pushinfo: vec![],
    };
    let a = auth_of(call(&env, &sms, Duration::from_secs(10)).0);
    assert_eq!((a.result.as_str(), a.status.as_str()), ("deny", "sent"));
    // Passcode requests are synchronous: no async, no txid; the value reaches Duo but
    // neither log holds it.
    let reqs = mock.to("/auth/v2/auth");
    assert_eq!(reqs.len(), 3);
    for r in &reqs[..2] {
        assert_eq!(r["params"]["passcode_present"], true);
        assert!(r["params"].get("async").is_none());
    }
    let log = d.stop();
    assert!(
        !log.contains("864209") && !log.contains("111111"),
        "the sender logged a passcode:\n{log}"
    );
    assert!(log.contains("factor=passcode result=allow"), "{log}");
}

#[test]
fn rate_limits_failures_and_slowness() {
    if !root_or_skip("rate_limits_failures_and_slowness") {
        return;
    }
    // 429 with Retry-After 1 s, once: waited out within the timeout, then answered.
    let mock = Mock::start(
        json!({"ann": {}}),
        &["--rate-limit", "1", "--retry-after", "1"],
    );
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let start = Instant::now();
    let r = call(&env, &preauth("ann"), Duration::from_secs(10)).0;
    assert!(matches!(r, Ok(Reply::Preauth(_))), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(950));
    let pre = mock.to("/auth/v2/preauth");
    assert_eq!(
        pre.iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [429, 200]
    );
    let gap = pre[1]["t"].as_f64().unwrap() - pre[0]["t"].as_f64().unwrap();
    assert!(gap >= 0.95, "retried after {gap} s, before Retry-After");
    drop(d);

    // A Retry-After beyond the timeout: Unavailable at once, not a 30 s wait.
    let mock = Mock::start(
        json!({"ann": {}}),
        &["--rate-limit", "5", "--retry-after", "30"],
    );
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    let start = Instant::now();
    match call(&env, &push("ann"), Duration::from_secs(10)).0 {
        Err(BrokerError::Duo(ErrorKind::Unavailable, m)) => {
            assert!(m.contains("429") && m.contains("Retry-After 30"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(d);

    // 5xx: Unavailable, with Duo's code.
    let mock = Mock::start(json!({"ann": {}}), &["--fail", "1"]);
    let env = Env::new(&mock, &DuoConfig::default());
    let d = env.daemon();
    match call(&env, &push("ann"), Duration::from_secs(10)).0 {
        Err(BrokerError::Duo(ErrorKind::Unavailable, m)) => assert!(m.contains("500"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The next one goes through.
    let a = auth_of(call(&env, &push("ann"), Duration::from_secs(10)).0);
    assert_eq!(a.result, "allow");
    drop(d);

    // Slower than the [duo] timeout (2 s): Unavailable after about 2 s.
    let mock = Mock::start(json!({"ann": {}}), &["--slow", "6"]);
    let env = Env::new(
        &mock,
        &DuoConfig {
            timeout: "2s",
            ..DuoConfig::default()
        },
    );
    let d = env.daemon();
    let start = Instant::now();
    match call(&env, &preauth("ann"), Duration::from_secs(10)).0 {
        Err(BrokerError::Duo(ErrorKind::Unavailable, m)) => {
            assert!(m.contains("no answer within"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    d.stop();
}
