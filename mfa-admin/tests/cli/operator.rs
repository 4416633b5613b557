//! What an administrator sees on an installed machine: a rule governs its family of PAM
//! services (`su` -> `su-l`) and `service list` says which files of /etc/pam.d (here
//! `MFA_PAM_DIR`) follow it; a service name without a PAM file is saved with a warning;
//! `user list` flags locked users; logs show dates, not Unix times; a closed output pipe
//! ends mfa-admin quietly.

use mfa_core::store::logs::{AuthEvent, record_auth};
use serde_json::Value;

use super::Env;

/// A directory of PAM service files named like Debian's, for `MFA_PAM_DIR`.
fn pam_dir(env: &Env, names: &[&str]) -> String {
    let d = env.path("pam.d");
    std::fs::create_dir_all(&d).unwrap();
    for n in names {
        std::fs::write(d.join(n), "@include common-auth\n").unwrap();
    }
    d.to_str().unwrap().to_string()
}

#[test]
fn a_rule_governs_its_family_and_service_list_says_so() {
    let env = Env::new();
    let dir = pam_dir(
        &env,
        &[
            "su",
            "su-l",
            "sudo",
            "sudo-i",
            "sshd",
            "login",
            "common-auth",
            "other",
        ],
    );
    let run = |args: &[&str]| {
        let o = env.run_with(args, &[("MFA_PAM_DIR", &dir)]);
        assert_eq!(o.code, 0, "{args:?}: {o:?}");
        o
    };
    let o = run(&["service", "set", "su", "none"]);
    assert!(o.stdout.contains("it also governs su-l"), "{o:?}");
    assert!(o.stderr.is_empty(), "su has a file: no warning: {o:?}");
    run(&["service", "set", "sudo", "totp"]);
    let list: Value = serde_json::from_str(&run(&["--json", "service", "list"]).stdout).unwrap();
    let also = |svc: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == svc)
            .unwrap()["also_governs"]
            .clone()
    };
    assert_eq!(also("su"), serde_json::json!(["su-l"]));
    assert_eq!(also("sudo"), serde_json::json!(["sudo-i"]));
    // common-auth is an include file and `other` a fallback: no services.
    assert_eq!(also("*"), serde_json::json!(["login", "sshd"]));
    let table = run(&["service", "list"]).stdout;
    assert!(
        table.starts_with("SERVICE  METHOD  ALSO GOVERNS"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["su", "none", "su-l"]),
        "{table}"
    );
    assert!(table.contains("every other service"), "{table}");

    // `net check` follows the family too, and says whose rules decide.
    env.ok(&[
        "net",
        "add",
        "--service",
        "su",
        "--cidr",
        "192.0.2.0/24",
        "--require",
        "no",
    ]);
    let listed = env.json(&["net", "list", "--service", "su-l"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["service"], "su", "su's rules apply to su-l");
    let c = env.json(&["net", "check", "--service", "su-l", "192.0.2.9"]);
    assert_eq!(
        (c["decision"].as_str(), c["rules_of"].as_str()),
        (Some("trusted"), Some("su"))
    );
    assert_eq!(c["method"], "none");
    let text = env.ok(&["net", "check", "--service", "sudo-i", "192.0.2.9"]);
    assert!(
        text.contains("sudo-i has no rule of its own: it follows the rules of sudo"),
        "{text}"
    );
    assert!(text.contains("2FA required"), "{text}");

    // A rule of its own ends it; removing that rule returns the service to its family.
    let o = run(&["service", "set", "su-l", "passcode"]);
    assert!(
        o.stdout.contains("su-l: passcode (was none, from su)"),
        "{o:?}"
    );
    assert_eq!(
        env.json(&["net", "check", "--service", "su-l", "192.0.2.9"])["rules_of"],
        "su-l"
    );
    let list: Value = serde_json::from_str(&run(&["--json", "service", "list"]).stdout).unwrap();
    assert_eq!(
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "su")
            .unwrap()["also_governs"],
        serde_json::json!([])
    );
    let o = run(&["service", "del", "su-l"]);
    assert!(
        o.stdout.contains("rule removed; it follows su (none)"),
        "{o:?}"
    );
}

#[test]
fn a_service_name_without_a_pam_file_is_saved_with_a_warning() {
    let env = Env::new();
    let dir = pam_dir(&env, &["sshd", "sshd-publickey", "su", "sudo", "login"]);
    let o = env.run_with(
        &["service", "set", "ssh-d", "passcode"],
        &[("MFA_PAM_DIR", &dir)],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("service ssh-d: passcode"), "{o:?}");
    assert!(
        o.stderr.contains(&format!(
            "warning: there is no PAM service file {dir}/ssh-d"
        )),
        "{o:?}"
    );
    assert!(o.stderr.contains("did you mean sshd?"), "{o:?}");
    let list = env.json(&["service", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["service"] == "ssh-d"),
        "the rule is kept"
    );
    // The same for a network rule.
    let o = env.run_with(
        &[
            "net",
            "add",
            "--service",
            "sudoo",
            "--cidr",
            "10.0.0.0/8",
            "--require",
            "no",
        ],
        &[("MFA_PAM_DIR", &dir)],
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("no PAM service file") && o.stderr.contains("did you mean sudo"),
        "{o:?}"
    );
    // Known names, family parents with only member files, and `*` are quiet.
    for name in ["sshd", "*", "login"] {
        let o = env.run_with(&["service", "set", name, "totp"], &[("MFA_PAM_DIR", &dir)]);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{name}");
    }
    std::fs::remove_file(env.path("pam.d/sshd")).unwrap();
    let o = env.run_with(&["service", "set", "sshd", "any"], &[("MFA_PAM_DIR", &dir)]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (0, ""),
        "sshd-publickey is of its family"
    );
    // An unreadable directory cannot be compared with: no warning, the rule is saved.
    let o = env.run_with(
        &["service", "set", "ssh-d", "none"],
        &[("MFA_PAM_DIR", "/nonexistent/pam.d")],
    );
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
}

#[test]
fn user_list_flags_locked_users_and_logs_show_dates() {
    let env = Env::new();
    // (It writes lockouts as the module's state would: not compared with the fleet.)
    env.single_machine();
    for u in ["ann", "bob", "cy"] {
        env.ok(&["user", "add", u]);
    }
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    // ann locked until 2286, bob's lockout ran out in 2001.
    conn.execute_batch(
        "INSERT INTO lockouts (user, failures, last_failure, locked_until) VALUES
             ('ann', 10, 1, 9999999999), ('bob', 10, 1, 1000000000)",
    )
    .unwrap();
    let users = env.json(&["user", "list"]);
    let locked: Vec<(&str, i64)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap(),
                u["locked_until"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        locked,
        [("ann", 9999999999), ("bob", 1000000000), ("cy", 0)]
    );
    let table = env.ok(&["user", "list"]);
    assert!(
        table.lines().next().unwrap().contains("LOCKED UNTIL"),
        "{table}"
    );
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap()
            .to_string()
    };
    // TZ=UTC in the tests.
    assert!(
        line("ann").contains("locked") && line("ann").contains("2286-11-20 17:46:39"),
        "{table}"
    );
    assert!(
        !line("bob").contains("locked") && !line("bob").contains("2001-"),
        "{table}"
    );
    assert!(!line("cy").contains("locked"), "{table}");

    // A raw Unix time in a logged reason (older modules wrote them) reads as a date.
    record_auth(
        &conn,
        &AuthEvent {
            time: 1_767_225_600,
            user: "ann".into(),
            service: "sshd".into(),
            outcome: "deny".into(),
            reason: "locked out until 1796018216".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let log = env.ok(&["log", "show"]);
    assert!(
        log.contains("locked out until 2026-11-30 05:56:56"),
        "{log}"
    );
    assert!(!log.contains("1796018216"), "{log}");
    assert_eq!(
        env.json(&["log", "show"])[0]["reason"],
        "locked out until 1796018216",
        "JSON keeps the stored text"
    );
}

/// `mfa-admin carrier list | head -1`: a reader that is gone ends mfa-admin by SIGPIPE, as
/// it ends `ls`, never with a panic (exit 101).
#[test]
fn a_closed_output_pipe_ends_it_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    for args in [
        &["carrier", "list"][..],
        &["--json", "carrier", "list"],
        &["export"],
        &["service", "list"],
    ] {
        // The read end is closed before mfa-admin writes a byte: the first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
            .arg("--config")
            .arg(&env.config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.signal(),
            Some(13),
            "{args:?}: {:?} {stderr}",
            o.status
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Nothing changed for a reader that stays.
    assert!(env.ok(&["carrier", "list"]).starts_with("CARRIER"));
}

/// A network rule alone makes a name govern itself, and its method then becomes `*`'s. So a
/// "2FA required" rule for `sudo-i` (which followed `sudo`: totp) would silently turn the
/// second factor off for `sudo -i` when `*` is none. `net add` and `net del` refuse a
/// change that would move a service's method, and name the command that makes it explicit.
#[test]
fn a_network_rule_never_changes_a_services_method_silently() {
    let env = Env::new();
    env.ok(&["service", "set", "*", "none"]);
    env.ok(&["service", "set", "sudo", "totp"]);
    let add = [
        "net",
        "add",
        "--service",
        "sudo-i",
        "--cidr",
        "203.0.113.0/24",
        "--require",
        "yes",
    ];
    env.bad(
        &add,
        &[
            "sudo-i",
            "from totp to none",
            "mfa-admin service set sudo-i totp",
        ],
    );
    let check = || env.json(&["net", "check", "--service", "sudo-i", "203.0.113.5"]);
    assert_eq!(check()["method"], "totp");
    // With a method of its own, the rule is added and the method stays.
    env.ok(&["service", "set", "sudo-i", "totp"]);
    let id = env.json(&add)["id"].as_i64().unwrap().to_string();
    assert_eq!(check()["method"], "totp");
    // Without it, deleting the last rule would move the method back (here: to totp, the
    // same) -- allowed; a move to another method is refused.
    env.ok(&["service", "del", "sudo-i"]);
    assert_eq!(check()["method"], "none", "net-only: `*`'s method");
    env.ok(&["service", "set", "*", "any"]);
    env.ok(&["service", "set", "sudo", "none"]);
    env.bad(
        &["net", "del", &id],
        &[
            "sudo-i",
            "from any to none",
            "mfa-admin service set sudo-i any",
        ],
    );
    env.ok(&["service", "set", "sudo-i", "any"]);
    env.ok(&["net", "del", &id]);
    assert_eq!(check()["method"], "any");
    // A rule that leaves the method as it was is not refused.
    env.ok(&["service", "set", "sudo", "any"]);
    env.ok(&["service", "del", "sudo-i"]);
    env.ok(&add);
}
