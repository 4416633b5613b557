//! Duo administration, continued: `duo enroll --send` through the spool, doctor's Duo check
//! and the Duo transaction id in `log show` (the scripted broker is [`super::duo`]'s).

use mfa_core::duo::{Enrollment, ErrorKind, Reply, Request};

use super::Env;
use super::duo::{Broker, duo_env, error, fails, one};

#[test]
fn enroll_send_queues_the_link_through_the_spool() {
    let env = duo_env();
    env.ok(&["user", "add", "ann"]);
    env.ok(&["contact", "add", "ann", "--email", "ann@example.com"]);
    env.ok(&["contact", "add", "ann", "--sms", "+14155550123"]);
    env.ok(&[
        "template",
        "set",
        "duo-enroll-body",
        "Hi {user}, enrol at {url}",
    ]);
    let enrolled = || {
        one(Reply::Enrolled(Enrollment {
            activation_barcode: "https://api-test.duosecurity.com/qr".into(),
            activation_code: "duo://c".into(),
            activation_url: "https://m-test.duosecurity.com/activate/xyz".into(),
            expiration: mfa_core::now() + 3600,
            user_id: "DUID".into(),
            username: "ann".into(),
        }))
    };
    let b = Broker::start(&env, vec![enrolled(), enrolled()]);
    let out = env.ok(&["duo", "enroll", "ann", "--send", "email"]);
    assert!(out.contains("link queued to "), "{out}");
    assert!(!out.contains("ann@example.com"), "masked: {out}");
    let v = env.json(&["duo", "enroll", "ann", "--send", "2"]);
    let to = v["sent"]["to"].as_str().unwrap();
    assert!(to.ends_with("0123") && to != "+14155550123", "masked: {v}");
    b.requests();
    let mut msgs: Vec<serde_json::Value> = std::fs::read_dir(env.path("spool/new"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    msgs.sort_by_key(|m| m["channel"].as_str().unwrap().to_string());
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["channel"], "email");
    assert_eq!(msgs[0]["to"], "ann@example.com");
    assert_eq!(msgs[0]["kind"], "notice", "not counted as a passcode");
    assert_eq!(
        msgs[0]["body"],
        "Hi ann, enrol at https://m-test.duosecurity.com/activate/xyz"
    );
    assert_eq!(msgs[1]["to"], "+14155550123");
    assert!(env.ok(&["audit", "show"]).contains("duo enroll --send"));
    // What --send cannot do is refused before Duo is asked.
    env.ok(&["user", "add", "bob"]);
    env.ok(&["contact", "add", "bob", "--email", "bob@example.com"]);
    let b = Broker::start(&env, vec![]);
    env.bad(
        &["duo", "enroll", "bob", "--send", "sms"],
        &["has no sms contact"],
    );
    env.bad(
        &["duo", "enroll", "bob", "--send", "3"],
        &["has no contact number 3"],
    );
    env.bad(
        &["duo", "enroll", "bob", "--send", "fax"],
        &["expected email, sms or a contact number"],
    );
    env.bad(
        &["duo", "enroll", "nobody", "--send", "email"],
        &["unknown user"],
    );
    assert!(b.requests().is_empty());
    // A link that is no https link is not sent.
    let b = Broker::start(
        &env,
        vec![one(Reply::Enrolled(Enrollment {
            activation_barcode: String::new(),
            activation_code: "c".into(),
            activation_url: "javascript:alert(1)\r\nBcc: all@example.com".into(),
            expiration: 0,
            user_id: "U".into(),
            username: "bob".into(),
        }))],
    );
    fails(
        &env.run(&["duo", "enroll", "bob", "--send", "email"]),
        1,
        &["not sent"],
    );
    b.requests();
    assert_eq!(std::fs::read_dir(env.path("spool/new")).unwrap().count(), 2);
}

/// `doctor --json`'s checks.
pub(super) fn doctor(env: &Env) -> Vec<serde_json::Value> {
    let pam = env.path("pam.d");
    std::fs::create_dir_all(&pam).unwrap();
    let o = env.run(&[
        "--json",
        "doctor",
        "--pam-dir",
        pam.to_str().unwrap(),
        "--sshd-config",
        env.path("sshd_config").to_str().unwrap(),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"));
    v.as_array().unwrap().clone()
}

fn duo_check(env: &Env) -> (String, String) {
    let checks = doctor(env);
    let c = checks
        .iter()
        .find(|c| c["check"] == "duo")
        .unwrap_or_else(|| panic!("{checks:?}"));
    (
        c["status"].as_str().unwrap().into(),
        c["detail"].as_str().unwrap().into(),
    )
}

#[test]
fn doctor_checks_duo_through_the_broker_when_configured() {
    let env = duo_env();
    let (status, detail) = duo_check(&env);
    assert_eq!(status, "fail");
    assert!(
        detail.contains("broker is not running") && detail.contains("start mfa-sender"),
        "{detail}"
    );
    for (reply, status, needle) in [
        (
            Reply::Time {
                time: mfa_core::now(),
            },
            "ok",
            "Duo accepted the credentials",
        ),
        (
            error(ErrorKind::Credentials, "Invalid signature"),
            "fail",
            "credentials refused",
        ),
        (
            error(ErrorKind::Unavailable, "connect timed out"),
            "fail",
            "Duo unreachable",
        ),
        (
            error(ErrorKind::NotConfigured, "skey_file unreadable"),
            "fail",
            "skey_file",
        ),
    ] {
        let b = Broker::start(&env, vec![one(reply)]);
        let (s, d) = duo_check(&env);
        assert_eq!(s, status, "{d}");
        assert!(d.contains(needle), "{needle}: {d}");
        assert_eq!(b.requests(), [Request::Check]);
    }
}

#[test]
fn log_show_has_the_duo_txid() {
    let env = Env::new();
    {
        let store = mfa_core::store::Store::open(&env.db()).unwrap();
        let ev = mfa_core::store::logs::AuthEvent {
            user: "ann".into(),
            service: "sshd".into(),
            outcome: "success".into(),
            method: "passcode".into(),
            ..Default::default()
        };
        mfa_core::store::logs::record_auth(store.conn(), &ev).unwrap();
        assert!(
            !env.ok(&["log", "show"]).contains("DUO TXID"),
            "no column without a txid"
        );
        let duo = mfa_core::store::logs::AuthEvent {
            method: "duo-push".into(),
            destination: "iOS (XXX-XXX-1234)".into(),
            txid: "45f7c92b-f45f-4862-8545-e0f58e78075a".into(),
            ..ev
        };
        mfa_core::store::logs::record_auth(store.conn(), &duo).unwrap();
    }
    let text = env.ok(&["log", "show"]);
    assert!(text.lines().next().unwrap().contains("DUO TXID"), "{text}");
    assert!(
        text.contains("45f7c92b-f45f-4862-8545-e0f58e78075a") && text.contains("duo-push"),
        "{text}"
    );
    let v = env.json(&["log", "show"]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows[0]["txid"], "");
    assert_eq!(rows[1]["txid"], "45f7c92b-f45f-4862-8545-e0f58e78075a");
}
