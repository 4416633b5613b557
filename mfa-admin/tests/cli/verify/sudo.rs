//! `verify` run through sudo: the caller does not choose the configuration, and the syslog
//! line (the module's fields, and who ran sudo).

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use super::*;

#[test]
fn sudo_callers_do_not_choose_the_configuration() {
    use std::os::unix::fs::PermissionsExt;
    let env = setup("passcode");
    let dir = env.dir.path().to_path_buf();
    let mode = |m: u32| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut child = command(&env, &["verify", "alice"], envs).spawn().unwrap();
        drop(child.stdin.take());
        wait(child, Duration::from_secs(30))
    };
    // A directory on the way others may write: they could have put any rules there.
    mode(0o777);
    let o = run(&[("SUDO_USER", "www-data")]);
    mode(0o700);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("writable by others") && o.stderr.contains("www-data"),
        "{o:?}"
    );
    assert_eq!(spooled(&env), 0, "nothing was sent");
    // Root itself (no sudo) may name any file it accepts.
    mode(0o777);
    let o = run(&[]);
    mode(0o700);
    assert_eq!(o.code, 1, "{o:?}");
    // A configuration in a directory another account owns.
    let theirs = env.path("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::copy(&env.config, theirs.join("mfa.toml")).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
    let theirs_config = theirs.join("mfa.toml");
    let sent = spooled(&env);
    for by_env in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfa-admin"));
        if !by_env {
            cmd.arg("--config").arg(&theirs_config);
        }
        prepare(&mut cmd, &["verify", "alice"], &[("SUDO_USER", "www-data")]);
        if by_env {
            cmd.env("MFA_CONFIG", &theirs_config);
        }
        let mut child = cmd.spawn().unwrap();
        drop(child.stdin.take());
        let o = wait(child, Duration::from_secs(30));
        assert_eq!(o.code, 2, "{o:?}");
        assert!(o.stderr.contains("owned by uid 65534"), "{o:?}");
    }
    assert_eq!(spooled(&env), sent, "nothing was sent");
}

/// The syslog line, read from a socket that is /dev/log in a private mount namespace
/// (`unshare -m`: nothing outside it changes).
#[test]
fn the_syslog_line_is_the_modules_with_the_sudo_caller() {
    let env = setup("totp");
    let key = enrol_totp(&env);
    let dev = env.path("dev");
    std::fs::create_dir(&dev).unwrap();
    let sock = std::os::unix::net::UnixDatagram::bind(env.path("log.sock")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let script = "set -e\n\
         mount -t tmpfs mfa-test-dev \"$D/dev\"\n\
         for f in null zero full random urandom tty; do\n\
           if [ -e /dev/$f ]; then touch \"$D/dev/$f\"; mount --bind /dev/$f \"$D/dev/$f\"; fi\n\
         done\n\
         ln -s \"$D/log.sock\" \"$D/dev/log\"\n\
         mount --rbind \"$D/dev\" /dev\n\
         exec \"$@\"\n";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config);
    prepare(
        &mut cmd,
        &[
            "verify",
            "alice",
            "--address",
            "192.0.2.9",
            "--tty",
            "web app",
        ],
        &[
            ("SUDO_USER", "www-data"),
            ("D", env.dir.path().to_str().unwrap()),
        ],
    );
    let mut child = cmd.spawn().unwrap();
    let code = key.code_at(now()).unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\n").as_bytes())
        .unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o:?}");
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <86>: LOG_AUTHPRIV (10 << 3) | LOG_INFO (6).
    assert!(line.starts_with("<86>"), "{line:?}");
    assert!(
        line.ends_with(
            "mfa-verify(mfa-verify): user=alice rhost=192.0.2.9 tty=\"web app\" \
             outcome=success method=totp to=\"\" caller=www-data"
        ),
        "{line:?}"
    );
}

/// Through sudo, verify answers only for mfa-verify and mfa-verify-NAME: a proven factor
/// leaves a repeat-window grant for the service and address, and one for sshd from an
/// address the application chose would let SSH logins from there skip the second factor.
#[test]
fn sudo_callers_answer_only_for_verify_services() {
    let env = setup("totp");
    let key = enrol_totp(&env);
    env.ok(&["settings", "set", "repeat_window=1h"]);
    env.ok(&["service", "set", "sshd", "totp"]);
    let run = |caller: (&str, &str), args: &[&str], input: &[u8]| {
        let mut child = command(&env, args, &[caller]).spawn().unwrap();
        // A refused caller exits before reading: the pipe may be closed already.
        let _ = child.stdin.take().unwrap().write_all(input);
        wait(child, Duration::from_secs(30))
    };
    let code = key.code_at(now()).unwrap();
    let attack = [
        "verify",
        "alice",
        "--service",
        "sshd",
        "--address",
        "203.0.113.9",
    ];
    for caller in [("SUDO_USER", "www-data"), ("DOAS_USER", "www-data")] {
        let o = run(caller, &attack, format!("{code}\n").as_bytes());
        assert_eq!(o.code, 2, "{o:?}");
        assert!(
            o.stderr.contains("mfa-verify-NAME") && o.stderr.contains("www-data"),
            "{o:?}"
        );
        assert!(
            !o.stderr.contains("Authenticator code"),
            "nothing asked: {o:?}"
        );
    }
    assert_eq!(
        mfa_core::grants::last(&env.db(), "alice", "sshd", "203.0.113.9"),
        None,
        "no grant for sshd"
    );
    // An application's own service takes mfa-verify's rules until it has its own, and its
    // grant is its own.
    let mine = [
        "verify",
        "alice",
        "--service",
        "mfa-verify-webapp",
        "--address",
        "203.0.113.9",
    ];
    let o = run(
        ("SUDO_USER", "www-data"),
        &mine,
        format!("{code}\n").as_bytes(),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("Authenticator code"),
        "mfa-verify's method: {o:?}"
    );
    assert!(
        mfa_core::grants::last(&env.db(), "alice", "mfa-verify-webapp", "203.0.113.9").is_some()
    );
    assert_eq!(
        mfa_core::grants::last(&env.db(), "alice", "sshd", "203.0.113.9"),
        None
    );
    // Inside the window, the same service from the same address is not required (3), never 0.
    let o = run(("SUDO_USER", "www-data"), &mine, b"000000\n");
    assert_eq!(o.code, 3, "{o:?}");
    // Root itself (no sudo) may try any service's rules.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"));
    child.arg("--config").arg(&env.config);
    prepare(&mut child, &["verify", "alice", "--service", "sshd"], &[]);
    let mut child = child.spawn().unwrap();
    drop(child.stdin.take());
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 1, "asked, and end of input: {o:?}");
    assert!(o.stderr.contains("Authenticator code"), "{o:?}");
}
