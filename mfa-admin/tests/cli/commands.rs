//! Every command's normal use: what it prints (tables and JSON), what it changes, and the
//! audit record it leaves.

use std::os::unix::fs::PermissionsExt;

use mfa_core::store::logs::{AuthEvent, record_auth};
use serde_json::Value;

use super::Env;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn setting(env: &Env, key: &str) -> Value {
    let all = env.json(&["settings", "show"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap()["value"]
        .clone()
}

fn last_audit(env: &Env) -> Value {
    env.json(&["audit", "show", "--limit", "1"])[0].clone()
}

#[test]
fn init_creates_private_files_and_is_idempotent() {
    let env = Env::bare();
    let first = env.json(&["init"]);
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["what"] == "configuration"
                || c["what"] == "sender account"
                || c["created"] == true),
        "{first}"
    );
    assert_eq!(mode(&env.db()), 0o600);
    assert_eq!(mode(&env.path("db")), 0o700);
    // The spool itself is root's and writable by nobody else (a group that could write it
    // could swap tmp/ or new/ for a symlink); its subdirectories are closed to others.
    assert_eq!(mode(&env.path("spool")), 0o755);
    for sub in ["spool/tmp", "spool/new", "spool/cur", "spool/failed"] {
        assert!(env.path(sub).is_dir(), "{sub}");
        assert_eq!(
            mode(&env.path(sub)) & 0o007,
            0,
            "{sub} must not be open to others"
        );
    }
    assert!(env.path("run").is_dir());
    let again = env.json(&["init"]);
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["created"] == false),
        "{again}"
    );
    // A rollback journal (not WAL: see mfa_core::store), and the policy snapshot the module
    // reads, private like the database.
    let journal: String = rusqlite::Connection::open(env.db())
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        journal, "delete",
        "WAL is the one mode a database file remembers"
    );
    let mut snap = env.db().into_os_string();
    snap.push("-policy");
    let mode = std::fs::metadata(&snap).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_named_config_must_exist() {
    // (init writes a missing configuration with the default paths, which tests must not
    // touch; mfa-core's tests check that text.)
    let env = Env::bare();
    let missing = env.path("etc/mfa.toml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .args(["--config", missing.to_str().unwrap(), "settings", "show"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("configuration file not found") && err.contains("mfa-admin init"),
        "{err}"
    );
}

#[test]
fn settings_show_set_reset() {
    let env = Env::new();
    assert_eq!(setting(&env, "enabled"), "off");
    assert_eq!(setting(&env, "code_ttl"), "10m");
    let out = env.ok(&[
        "settings",
        "set",
        "enabled=on",
        "code_ttl=300s",
        "repeat_window=2h",
        "unassigned=enroll",
    ]);
    assert!(out.contains("code_ttl = 5m (was 10m)"), "{out}");
    assert_eq!(setting(&env, "enabled"), "on");
    assert_eq!(setting(&env, "code_ttl"), "5m");
    assert_eq!(setting(&env, "repeat_window"), "2h");
    assert_eq!(setting(&env, "unassigned"), "enroll");
    let a = last_audit(&env);
    assert_eq!(a["action"], "settings set");
    assert!(a["detail"].as_str().unwrap().contains("code_ttl=5m"), "{a}");
    let table = env.ok(&["settings", "show"]);
    assert!(table.lines().next().unwrap().starts_with("KEY"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("code_ttl") && l.contains("5m") && l.contains("10m")),
        "{table}"
    );
    env.ok(&["settings", "reset", "code_ttl", "enabled"]);
    assert_eq!(setting(&env, "code_ttl"), "10m");
    assert_eq!(setting(&env, "enabled"), "off");
    // totp_issuer defaults to the host name.
    assert!(!setting(&env, "totp_issuer").as_str().unwrap().is_empty());
    env.ok(&["settings", "set", "totp_issuer=Example Corp"]);
    assert_eq!(setting(&env, "totp_issuer"), "Example Corp");
}

#[test]
fn services() {
    let env = Env::new();
    let list = env.json(&["service", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (&list[0]["service"], &list[0]["method"]),
        (&"*".into(), &"any".into())
    );
    let out = env.ok(&["service", "set", "sshd", "passcode"]);
    assert!(out.contains("sshd: passcode (was any)"), "{out}");
    env.ok(&["service", "set", "vsftpd", "none"]);
    env.ok(&["service", "set", "*", "totp"]);
    let list = env.json(&["service", "list"]);
    let pairs: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().into(),
                s["method"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("*".into(), "totp".into()),
            ("sshd".into(), "passcode".into()),
            ("vsftpd".into(), "none".into())
        ]
    );
    let out = env.ok(&["service", "del", "vsftpd"]);
    assert!(out.contains("'*' applies (totp)"), "{out}");
    assert_eq!(env.json(&["service", "list"]).as_array().unwrap().len(), 2);
    assert_eq!(last_audit(&env)["action"], "service del");
}

#[test]
fn networks_list_add_del_check() {
    let env = Env::new();
    assert!(env.ok(&["net", "list"]).contains("no network rules"));
    let id = env.json(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--cidr",
        "10.0.0.0/8",
        "--require",
        "no",
        "--note",
        "corp",
    ])["id"]
        .as_i64()
        .unwrap();
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--range",
        "10.1.1.10-10.1.1.20",
        "--require",
        "yes",
        "--log",
        "all",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "vsftpd",
        "--cidr",
        "2001:db8::/32",
        "--require",
        "no",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "*",
        "--cidr",
        "fd00::/8",
        "--require",
        "no",
    ]);
    let all = env.json(&["net", "list"]);
    assert_eq!(all.as_array().unwrap().len(), 4);
    let sshd = env.json(&["net", "list", "--service", "sshd"]);
    let ranges: Vec<&str> = sshd
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["range"].as_str().unwrap())
        .collect();
    assert_eq!(ranges, ["fd00::/8", "10.0.0.0/8", "10.1.1.10-10.1.1.20"]);
    let r = &sshd[2];
    assert_eq!(
        (
            r["first"].as_str(),
            r["last"].as_str(),
            r["log"].as_str(),
            r["require"].as_bool()
        ),
        (
            Some("10.1.1.10"),
            Some("10.1.1.20"),
            Some("all"),
            Some(true)
        )
    );

    let c = env.json(&["net", "check", "--service", "sshd", "10.1.1.15"]);
    assert_eq!(c["decision"], "required");
    assert_eq!(c["matches"].as_array().unwrap().len(), 2);
    let c = env.json(&["net", "check", "--service", "sshd", "10.1.1.21"]);
    assert_eq!(
        (c["decision"].as_str(), c["rule"]["id"].as_i64()),
        (Some("trusted"), Some(id))
    );
    // vsftpd's rule does not apply to sshd.
    assert_eq!(
        env.json(&["net", "check", "--service", "sshd", "2001:db8::1"])["decision"],
        "required"
    );
    assert_eq!(
        env.json(&["net", "check", "--service", "vsftpd", "[2001:db8::1]"])["decision"],
        "trusted"
    );
    let text = env.ok(&["net", "check", "--service", "su", "192.168.1.1"]);
    assert!(
        text.contains("2FA required") && text.contains("no trusted-network rule"),
        "{text}"
    );
    assert!(text.contains("2FA is off globally"), "{text}");

    let out = env.ok(&["net", "del", &id.to_string()]);
    assert!(out.contains("10.0.0.0/8"), "{out}");
    assert_eq!(env.json(&["net", "list"]).as_array().unwrap().len(), 3);
    assert_eq!(last_audit(&env)["action"], "net del");
    let table = env.ok(&["net", "list"]);
    assert!(table.starts_with("ID  SERVICE"), "{table}");
}

#[test]
fn users_and_contacts() {
    let env = Env::new();
    assert!(env.ok(&["user", "list"]).contains("no users"));
    env.ok(&["user", "add", "ann", "--full-name", "Ann Example"]);
    env.ok(&["user", "add", "ben@corp.example"]);
    let c1 = env.json(&[
        "contact",
        "add",
        "ann",
        "--email",
        "Ann.Example@Example.COM",
        "--label",
        "work",
    ]);
    assert_eq!(
        (
            c1["seq"].as_i64(),
            c1["address"].as_str(),
            c1["masked"].as_str()
        ),
        (
            Some(1),
            Some("Ann.Example@example.com"),
            Some("A***@e***.com")
        )
    );
    let c2 = env.json(&[
        "contact",
        "add",
        "ann",
        "--phone",
        "+1 555 201 0142",
        "--carrier",
        "t-mobile",
    ]);
    assert_eq!(
        (c2["to"].as_str(), c2["carrier"].as_str()),
        (Some("5552010142@tmomail.net"), Some("T-Mobile"))
    );
    let c3 = env.json(&["contact", "add", "ann", "--sms", "+44 7700 900142"]);
    assert_eq!(
        (c3["to"].as_str(), c3["channel"].as_str()),
        (Some("+447700900142"), Some("sms"))
    );
    let list = env.json(&["contact", "list", "ann"]);
    assert_eq!(list.as_array().unwrap().len(), 3);
    env.ok(&["contact", "del", "ann", "2"]);
    // The freed number is reused; numbers of other contacts stay.
    let c4 = env.json(&["contact", "add", "ann", "--email", "ann@home.example"]);
    assert_eq!(c4["seq"], 2);
    let seqs: Vec<i64> = env
        .json(&["contact", "list", "ann"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    let table = env.ok(&["contact", "list", "ann"]);
    assert!(
        table.contains("ann@home.example") && table.contains("SHOWN AS"),
        "{table}"
    );

    let show = env.json(&["user", "show", "ann"]);
    assert_eq!(
        (show["full_name"].as_str(), show["enabled"].as_bool()),
        (Some("Ann Example"), Some(true))
    );
    assert!(show["override"].is_null());
    let text = env.ok(&["user", "show", "ann"]);
    assert!(
        text.contains("Ann Example") && text.contains("ann@home.example"),
        "{text}"
    );

    env.ok(&["user", "disable", "ann"]);
    assert_eq!(env.json(&["user", "show", "ann"])["enabled"], false);
    assert!(
        env.ok(&["user", "disable", "ann"])
            .contains("already disabled")
    );
    assert!(env.ok(&["user", "list"]).contains("disabled"));
    env.ok(&["user", "enable", "ann"]);
    assert_eq!(env.json(&["user", "show", "ann"])["enabled"], true);

    let users = env.json(&["user", "list"]);
    assert_eq!(users[0]["name"], "ann");
    assert_eq!(users[0]["contacts"], 3);
    assert_eq!(users[1]["name"], "ben@corp.example");
    env.ok(&["user", "del", "ann"]);
    assert_eq!(env.json(&["user", "list"]).as_array().unwrap().len(), 1);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM contacts WHERE user = 'ann'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0, "deleting a user deletes their contacts");
}

#[test]
fn unlock_ends_a_lockout() {
    let env = Env::new();
    env.ok(&["user", "add", "gus"]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute("INSERT INTO lockouts (user, failures, last_failure, locked_until) VALUES ('gus', 10, 1, 9999999999)", []).unwrap();
    let text = env.ok(&["user", "show", "gus"]);
    assert!(text.contains("locked out: until"), "{text}");
    assert_eq!(
        env.json(&["user", "show", "gus"])["locked_until"],
        9999999999i64
    );
    assert!(
        env.ok(&["user", "unlock", "gus"])
            .contains("unlocked user gus")
    );
    let show = env.json(&["user", "show", "gus"]);
    assert_eq!(
        (show["locked_until"].as_i64(), show["failures"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(
        env.ok(&["user", "unlock", "gus"])
            .contains("was not locked out")
    );
    assert_eq!(last_audit(&env)["action"], "user unlock");
}

#[test]
fn overrides() {
    let env = Env::new();
    env.ok(&["user", "add", "hal"]);
    env.ok(&["user", "add", "ivy"]);
    assert!(env.ok(&["override", "list"]).contains("no overrides"));
    let o = env.json(&[
        "override",
        "set",
        "hal",
        "--mandatory",
        "yes",
        "--self-enroll",
        "no",
        "--log",
        "rejects",
    ]);
    assert_eq!(
        o,
        serde_json::json!({"user": "hal", "mandatory": true, "exempt": null, "self_enroll": false, "log": "rejects", "double_logon_contact": null, "factors": null})
    );
    // Only the options given change.
    let o = env.json(&["override", "set", "hal", "--self-enroll", "default"]);
    assert_eq!(
        (
            o["mandatory"].as_bool(),
            o["self_enroll"].is_null(),
            o["log"].as_str()
        ),
        (Some(true), true, Some("rejects"))
    );
    // Swapping mandatory for exempt in one command is allowed.
    let o = env.json(&[
        "override",
        "set",
        "hal",
        "--mandatory",
        "no",
        "--exempt",
        "yes",
    ]);
    assert_eq!(
        (o["mandatory"].as_bool(), o["exempt"].as_bool()),
        (Some(false), Some(true))
    );
    env.ok(&["override", "set", "ivy", "--exempt", "yes"]);
    let list = env.json(&["override", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let users = env.json(&["user", "list"]);
    assert_eq!(users[0]["exempt"], true);
    env.ok(&["override", "del", "hal"]);
    assert_eq!(env.json(&["override", "list"]).as_array().unwrap().len(), 1);
    assert!(env.json(&["user", "show", "hal"])["override"].is_null());
}

#[test]
fn carriers() {
    let env = Env::new();
    let list = env.json(&["carrier", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for (name, suffix) in [
        ("Verizon", "vtext.com"),
        ("AT&T", "txt.att.net"),
        ("T-Mobile", "tmomail.net"),
        ("Sprint", "messaging.sprintpcs.com"),
        ("Sprint (Nextel)", "messaging.nextel.com"),
        ("Cellular One", "mobile.celloneusa.com"),
        ("Boost Mobile", "myboostmobile.com"),
        ("Cricket", "sms.mycricket.com"),
        ("US Cellular", "email.uscc.net"),
        ("Alltel", "message.alltel.com"),
    ] {
        let c = list
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not seeded: {names:?}"));
        assert_eq!(c["suffix"], suffix);
    }
    assert_eq!(names.len(), 10);
    env.ok(&["carrier", "add", "Google Fi", "MSG.FI.GOOGLE.COM"]);
    let fi = env
        .json(&["carrier", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Google Fi")
        .cloned()
        .unwrap();
    assert_eq!(fi["suffix"], "msg.fi.google.com");
    env.ok(&["carrier", "del", "google fi"]);
    assert_eq!(env.json(&["carrier", "list"]).as_array().unwrap().len(), 10);
    let table = env.ok(&["carrier", "list"]);
    assert!(
        table.contains("Sprint (Nextel)") && table.contains("messaging.nextel.com"),
        "{table}"
    );
}

#[test]
fn templates() {
    let env = Env::new();
    let all = env.json(&["template", "show"]);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "passcode-subject",
            "passcode-body",
            "test-body",
            "duo-enroll-subject",
            "duo-enroll-body"
        ]
    );
    assert!(all.as_array().unwrap().iter().all(|t| t["default"] == true));
    // The Duo enrollment templates take {url} (their body must), the others do not.
    env.ok(&["template", "set", "duo-enroll-body", "{user}: {url}"]);
    let o = env.run(&["template", "set", "duo-enroll-body", "no link"]);
    assert!(
        o.code == 2 && o.stderr.contains("must contain {url}"),
        "{o:?}"
    );
    let o = env.run(&["template", "set", "passcode-body", "{code} {url}"]);
    assert!(
        o.code == 2 && o.stderr.contains("cannot use {url}"),
        "{o:?}"
    );
    env.ok(&["template", "reset", "duo-enroll-body"]);
    env.ok(&[
        "template",
        "set",
        "passcode-body",
        "Code {prefix}-{code} for {user}@{host}, valid {minutes} min. {{not a placeholder}}",
    ]);
    let body = env.json(&["template", "show", "passcode-body"]);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["default"], false);
    assert!(
        body[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Code {prefix}-{code}")
    );
    let text = env.ok(&["template", "show"]);
    assert!(
        text.contains("passcode-subject (default)") && text.contains("Code {prefix}"),
        "{text}"
    );
    env.ok(&["template", "reset", "passcode-body"]);
    assert_eq!(
        env.json(&["template", "show", "passcode-body"])[0]["default"],
        true
    );
}

#[test]
fn auth_log_show_filter_purge() {
    let env = Env::new();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    // 2026-01-01T00:00:00Z = 1767225600
    let day = 86400;
    let base = 1_767_225_600;
    let rows = [
        (base, "ann", "sshd", "10.2.2.7", "ignore"),
        (base + day, "ann", "sshd", "10.2.2.120", "success"),
        (base + 2 * day, "bob", "sudo", "", "deny"),
        (base + 3 * day, "bob", "sshd", "2001:db8::5", "fail"),
    ];
    for (t, user, service, address, outcome) in rows {
        let ev = AuthEvent {
            time: t,
            user: user.into(),
            service: service.into(),
            address: address.into(),
            outcome: outcome.into(),
            method: "passcode".into(),
            destination: "a***@e***.com".into(),
            ..Default::default()
        };
        record_auth(&conn, &ev).unwrap();
    }
    drop(conn);
    let n = |args: &[&str]| {
        let mut a = vec!["log", "show"];
        a.extend_from_slice(args);
        env.json(&a).as_array().unwrap().len()
    };
    assert_eq!(n(&[]), 4);
    assert_eq!(n(&["--user", "ann"]), 2);
    assert_eq!(n(&["--service", "sshd"]), 3);
    assert_eq!(n(&["--address", "10.2.2.120"]), 1);
    assert_eq!(n(&["--address", "10.2.2.0/24"]), 2);
    assert_eq!(n(&["--address", "10.2.2.0-10.2.2.7"]), 1);
    assert_eq!(n(&["--address", "2001:db8::/32"]), 1);
    assert_eq!(n(&["--since", "2026-01-02", "--until", "2026-01-04"]), 2);
    assert_eq!(n(&["--since", "2026-01-02T00:00:00Z"]), 3);
    assert_eq!(n(&["--until", "@1767312000"]), 1);
    assert_eq!(n(&["--since", "1d"]), 0);
    let newest = env.json(&["log", "show", "--limit", "1"]);
    assert_eq!(newest[0]["outcome"], "fail");
    let table = env.ok(&["log", "show", "--user", "bob"]);
    assert!(
        table.contains("local") && table.contains("2026-01-03 00:00:00"),
        "{table}"
    );

    // The auth log is no policy: a purge leaves the snapshot logins read as it was.
    let snap = env.path("db/mfa.db-policy");
    let snap_before = std::fs::read(&snap).unwrap();
    let purged = env.json(&["log", "purge", "--before", "2026-01-03"]);
    assert_eq!(purged["deleted"], 2);
    assert_eq!(
        std::fs::read(&snap).unwrap(),
        snap_before,
        "log purge rewrote the snapshot"
    );
    assert_eq!(n(&[]), 2);
    assert_eq!(last_audit(&env)["action"], "log purge");
    // --keep-days and the log_keep_days setting: everything here is older than 30 days.
    env.ok(&["settings", "set", "log_keep_days=30"]);
    let text = env.ok(&["log", "purge"]);
    assert!(text.contains("deleted 2 log entries"), "{text}");
    assert_eq!(n(&[]), 0);
    assert!(env.ok(&["log", "show"]).contains("no log entries"));
}

#[test]
fn audit_records_who_did_what() {
    let env = Env::new();
    let o = env.run_with(&["user", "add", "kim"], &[("SUDO_USER", "operator7")]);
    assert_eq!(o.code, 0, "{o:?}");
    let a = last_audit(&env);
    assert_eq!(
        (
            a["actor"].as_str(),
            a["action"].as_str(),
            a["detail"].as_str()
        ),
        (Some("operator7"), Some("user add"), Some("kim"))
    );
    assert!(a["time"].as_i64().unwrap() > 1_700_000_000);
    // Without sudo, the login name.
    env.ok(&["user", "del", "kim"]);
    let a = last_audit(&env);
    assert!(!a["actor"].as_str().unwrap().is_empty());
    assert_ne!(a["actor"], "operator7");
    // Reads leave no record.
    let before = env.json(&["audit", "show"]).as_array().unwrap().len();
    env.ok(&["user", "list"]);
    env.ok(&["export"]);
    assert_eq!(
        env.json(&["audit", "show"]).as_array().unwrap().len(),
        before
    );
    let table = env.ok(&["audit", "show"]);
    assert!(
        table.starts_with("TIME") && table.contains("operator7"),
        "{table}"
    );
}

#[test]
fn config_from_environment() {
    let env = Env::new();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .args(["--json", "user", "list"])
        .env("MFA_CONFIG", &env.config)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[]");
}
