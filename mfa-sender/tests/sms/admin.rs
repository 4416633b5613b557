//! End to end: an SMS contact made with mfa-admin, a test message queued with
//! `mfa-admin test`, delivered by `mfa-sender --once` through the Twilio API.

use std::path::PathBuf;
use std::process::Command;

use super::{Env, Mock, Provider, SmsConfig, TO, assert_twilio_send};

/// The mfa-admin binary of the same build (a sibling of mfa-sender); built by cargo if this
/// test run did not build it (`cargo test -p mfa-sender` builds mfa-sender only).
fn mfa_admin() -> PathBuf {
    let sender = PathBuf::from(super::SENDER);
    let target = sender.parent().unwrap().parent().unwrap().to_path_buf();
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let status = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args(["build", "--quiet", "-p", "mfa-admin"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p mfa-admin failed");
    let admin = sender.with_file_name("mfa-admin");
    assert!(admin.exists(), "{} missing", admin.display());
    admin
}

fn admin(env: &Env, bin: &PathBuf, args: &[&str]) -> String {
    let o = Command::new(bin)
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env_remove("MFA_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "mfa-admin {args:?}: {}\n{stdout}{stderr}",
        o.status
    );
    stdout
}

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
