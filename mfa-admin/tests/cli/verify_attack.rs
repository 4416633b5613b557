//! Attack tests of `mfa-admin verify` (helper X's review of issue 15). The caller through
//! sudo (an application account with the documented rule `verify *`) chooses `--service`
//! and `--address`; what a run it starts may change for real PAM logins is checked here.

use std::io::Write;
use std::process::{Command, Stdio};

use super::{Env, Out};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// alice with an authenticator; sshd and mfa-verify ask for TOTP; a repeat window of an
/// hour; a fresh sender heartbeat. Returns the key.
fn setup(env: &Env) -> mfa_core::totp::Key {
    env.ok(&["settings", "set", "enabled=on", "repeat_window=1h"]);
    env.ok(&["user", "add", "alice"]);
    env.ok(&["service", "set", "mfa-verify", "totp"]);
    env.ok(&["service", "set", "sshd", "totp"]);
    std::fs::File::create(env.path("run/sender.heartbeat")).unwrap();
    super::verify::enrol_totp(env)
}

/// `mfa-admin verify ARGS` as `sudo_user` would run it through sudo, `input` on stdin.
fn verify_as(env: &Env, sudo_user: &str, args: &[&str], input: &[u8]) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env_remove("MFA_CONFIG")
        .env("SUDO_USER", sudo_user)
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run refused before it reads standard input closes it: EPIPE is not the test's
    // business.
    let _ = child.stdin.take().unwrap().write_all(input);
    super::out(child.wait_with_output().unwrap())
}

/// Finding 5 (medium; fixed in d451ab3: through sudo, verify answers only for
/// `mfa-verify` and `mfa-verify-NAME`). An application that may run `sudo mfa-admin verify
/// *` asks alice for her code "to approve a payment", but runs `verify alice --service sshd
/// --address ATTACKER`. Her proven code recorded a repeat-window grant for sshd from the
/// attacker's address, and for the repeat window whoever had her password logged in over
/// SSH from there without a second factor (the module's decision: Ignore(RepeatWindow)).
/// Whatever the fix (refused, or run without a grant), no sshd grant may come of it.
#[test]
fn a_verify_run_by_an_application_grants_no_ssh_login() {
    let env = Env::new();
    let key = setup(&env);
    let code = key.code_at(now()).unwrap();
    let o = verify_as(
        &env,
        "www-data",
        &[
            "verify",
            "alice",
            "--service",
            "sshd",
            "--address",
            "203.0.113.9",
        ],
        format!("{code}\n").as_bytes(),
    );
    assert!(
        o.code == 0 || o.code == 2,
        "proven, or refused as bad input: {o:?}"
    );
    let grant = mfa_core::grants::last(&env.db(), "alice", "sshd", "203.0.113.9");
    assert_eq!(
        grant, None,
        "a verify run by www-data left alice a repeat-window grant for sshd from the \
         address it chose: SSH from there needs no second factor for an hour"
    );
    // The same for a caller through doas.
    let code = key.code_at(now() + 30).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config)
        .args([
            "verify",
            "alice",
            "--service",
            "sshd",
            "--address",
            "203.0.113.10",
        ])
        .env_remove("MFA_CONFIG")
        .env_remove("SUDO_USER")
        .env("DOAS_USER", "www-data")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\n").as_bytes());
    let o = super::out(child.wait_with_output().unwrap());
    assert!(o.code == 0 || o.code == 2, "{o:?}");
    assert_eq!(
        mfa_core::grants::last(&env.db(), "alice", "sshd", "203.0.113.10"),
        None,
        "through doas: {o:?}"
    );
}

/// What must keep working whatever the fix: a bypass through a grant is never exit 0 for
/// verify (a second run inside the repeat window answers 3, not required), and a wrong
/// code after a proven one is still a denial.
#[test]
fn a_grant_never_makes_verify_exit_0() {
    let env = Env::new();
    let key = setup(&env);
    let code = key.code_at(now()).unwrap();
    let first = verify_as(
        &env,
        "www-data",
        &["verify", "alice"],
        format!("{code}\n").as_bytes(),
    );
    assert_eq!(first.code, 0, "{first:?}");
    let again = verify_as(&env, "www-data", &["verify", "alice"], b"000000\n");
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again.code == 3 || again.code == 1,
        "within the repeat window: not required (3) or denied (1): {again:?}"
    );
}
