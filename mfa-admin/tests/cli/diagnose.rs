//! `test`, `queue list`, `doctor` and unlocking a name without a record.

use std::path::Path;

use super::Env;
use super::doctor_install::{Install, check, root};

fn heartbeat(env: &Env, age: u64) {
    let f = std::fs::File::create(env.path("run/sender.heartbeat")).unwrap();
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age))
        .unwrap();
}

#[test]
fn test_message_is_spooled_and_listed() {
    let env = Env::new();
    env.ok(&["user", "add", "una"]);
    env.ok(&["contact", "add", "una", "--email", "una@example.com"]);
    env.ok(&[
        "contact",
        "add",
        "una",
        "--phone",
        "5552010177",
        "--carrier",
        "AT&T",
    ]);
    env.ok(&["template", "set", "test-body", "Hello {user} from {host}"]);
    let q = env.json(&["test", "una", "--contact", "2"]);
    assert_eq!(q["to"], "***-***-0177 (AT&T)");
    let files: Vec<_> = std::fs::read_dir(env.path("spool/new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(
        (m["to"].as_str(), m["channel"].as_str(), m["kind"].as_str()),
        (
            Some("5552010177@txt.att.net"),
            Some("sms-gateway"),
            Some("test")
        )
    );
    assert!(
        m["body"].as_str().unwrap().starts_with("Hello una from "),
        "{m}"
    );
    assert_eq!(m["id"], q["id"]);
    env.ok(&["test", "una"]);

    // A failed message with its reason, and one claimed by a sender.
    let failed = env.path("spool/failed").join(files[0].file_name().unwrap());
    std::fs::rename(&files[0], &failed).unwrap();
    std::fs::write(failed.with_extension("reason"), "550 5.1.1 no such user\n").unwrap();
    let list = env.json(&["queue", "list"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let f = list.iter().find(|x| x["state"] == "failed").unwrap();
    assert_eq!(
        (f["reason"].as_str(), f["to"].as_str(), f["user"].as_str()),
        (
            Some("550 5.1.1 no such user"),
            Some("***-***-0177 (AT&T)"),
            Some("una")
        )
    );
    let p = list.iter().find(|x| x["state"] == "pending").unwrap();
    assert_eq!(p["to"], "u***@e***.com");
    let text = env.ok(&["queue", "list"]);
    assert!(
        !text.contains("una@example.com") && !text.contains("5552010177"),
        "recipients must be masked: {text}"
    );
    assert_eq!(
        env.json(&["audit", "show", "--limit", "1"])[0]["action"],
        "test"
    );

    env.bad(&["test", "nobody"], &["unknown user"]);
    env.ok(&["user", "add", "vic"]);
    env.bad(&["test", "vic"], &["has no contact", "contact add vic"]);
    env.bad(&["test", "una", "--contact", "3"], &["no contact number 3"]);
}

/// `doctor --json` on an [`Install`] with another sshd_config: (exit code, checks).
fn doctor(i: &Install, sshd: &Path) -> (i32, Vec<serde_json::Value>, String) {
    let out = i.env.run(&[
        "--json",
        "doctor",
        "--pam-dir",
        i.pam.to_str().unwrap(),
        "--sshd-config",
        sshd.to_str().unwrap(),
    ]);
    let checks: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"));
    (out.code, checks.as_array().unwrap().clone(), out.stderr)
}

#[test]
fn doctor_reports_each_problem() {
    if !root("doctor_reports_each_problem") {
        return;
    }
    let i = Install::new();
    let env = &i.env;
    let pam = &i.pam;
    let m = i.module.display();
    let sshd = env.path("sshd_config");
    std::fs::write(
        &sshd,
        format!(
            "Include {}/sshd_config.d/*.conf\nUsePAM no\n",
            env.dir.path().display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("sshd_config.d")).unwrap();
    std::fs::write(
        env.path("sshd_config.d/mfa.conf"),
        "UsePAM yes\nKbdInteractiveAuthentication yes\n",
    )
    .unwrap();
    let out = env.run(&[
        "doctor",
        "--pam-dir",
        pam.to_str().unwrap(),
        "--sshd-config",
        sshd.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("pam_mfa (required) follows pam_unix.so"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("UsePAM yes"),
        "the Include comes first and wins: {}",
        out.stdout
    );

    // Break things one by one.
    heartbeat(env, 300);
    std::fs::write(
        pam.join("su"),
        format!("auth required {m}\n@include common-auth\n"),
    )
    .unwrap();
    std::fs::write(
        pam.join("sudo"),
        format!("@include common-auth\nauth sufficient {m}\n"),
    )
    .unwrap();
    std::fs::write(pam.join("login"), "@include common-auth\n").unwrap();
    std::fs::write(
        pam.join("sshd"),
        format!("auth required pam_unix.so\nauth required {m}\n"),
    )
    .unwrap();
    std::fs::write(
        env.path("sshd_config.d/mfa.conf"),
        "KbdInteractiveAuthentication no\n",
    )
    .unwrap();
    let (code, checks, stderr) = doctor(&i, &sshd);
    assert_eq!(code, 1, "{checks:#?}");
    let status = |name: &str| check(&checks, name).0;
    assert_eq!(status("sender"), "fail");
    assert_eq!(status("pam.d/su"), "fail");
    assert!(
        check(&checks, "pam.d/su")
            .1
            .contains("pam_mfa comes before pam_unix.so"),
        "{checks:#?}"
    );
    assert_eq!(status("pam.d/sudo"), "fail");
    assert!(check(&checks, "pam.d/sudo").1.contains("`sufficient`"));
    assert_eq!(status("pam.d/login"), "warn");
    assert_eq!(
        status("pam.d/sshd"),
        "warn",
        "a `required` password module lets wrong passwords reach pam_mfa"
    );
    assert_eq!(status("sshd UsePAM"), "fail");
    assert_eq!(status("sshd KbdInteractiveAuthentication"), "fail");
    assert_eq!(status("database"), "ok");
    assert_eq!(status("policy snapshot"), "ok");
    assert!(stderr.contains("check(s) failed"), "{stderr}");

    // The database changed behind mfa-admin's back: the snapshot the module reads is stale,
    // which doctor notices (the generation did not move) and repairs.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "INSERT INTO services (name, method) VALUES ('vsftpd', 'none')",
        [],
    )
    .unwrap();
    drop(conn);
    let (_, checks, _) = doctor(&i, &sshd);
    assert_eq!(check(&checks, "policy snapshot").0, "warn", "{checks:#?}");
    // A rule for a service without a pam.d file is named.
    assert_eq!(check(&checks, "rule vsftpd").0, "warn");
    let (_, checks, _) = doctor(&i, &sshd);
    assert_eq!(check(&checks, "policy snapshot").0, "ok", "rewritten");

    // A corrupt database fails the database check; the PAM checks still run.
    env.single_machine();
    std::fs::write(env.db(), vec![0x42; 4096]).unwrap();
    let (code, checks, _) = doctor(&i, &sshd);
    assert_eq!(code, 1);
    assert_eq!(check(&checks, "database").0, "fail");
    assert!(check(&checks, "pam.d/su").1.contains("rules unknown"));
}

/// The pam-auth-update profile puts pam_mfa in common-auth; a service that also has the
/// README's own line asks for two codes: doctor says so for that service, and only there.
#[test]
fn doctor_warns_when_pam_mfa_is_stacked_twice() {
    if !root("doctor_warns_when_pam_mfa_is_stacked_twice") {
        return;
    }
    let i = Install::new();
    let m = i.module.display();
    let (code, checks) = i.doctor();
    assert_eq!(code, 0, "{checks:#?}");
    assert!(
        !check(&checks, "pam.d/su").1.contains("stacked"),
        "{checks:#?}"
    );
    // What `pam-auth-update --enable mfa` writes: the profile's line after the primary block.
    let common = std::fs::read_to_string(i.pam.join("common-auth")).unwrap();
    std::fs::write(
        i.pam.join("common-auth"),
        format!("{common}auth\trequired\t{m} \n"),
    )
    .unwrap();
    // sudo-i keeps only the profile's line.
    std::fs::write(
        i.pam.join("sudo-i"),
        "@include common-auth\n@include common-account\n",
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (status, detail) = check(&checks, "pam.d/su");
    assert_eq!(status, "warn", "{checks:#?}");
    assert!(
        detail.contains("pam_mfa is stacked 2 times") && detail.contains("common-auth:4"),
        "{detail}"
    );
    let (status, detail) = check(&checks, "pam.d/sudo-i");
    assert_eq!(status, "ok", "{detail}");
    assert!(!detail.contains("stacked"), "{detail}");
}

#[test]
fn doctor_accepts_publickey_then_passcode() {
    if !root("doctor_accepts_publickey_then_passcode") {
        return;
    }
    let i = Install::new();
    std::fs::write(
        i.pam.join("sshd"),
        format!(
            "auth required {}\nauth required pam_permit.so\n",
            i.module.display()
        ),
    )
    .unwrap();
    std::fs::write(&i.sshd, "UsePAM yes\nKbdInteractiveAuthentication yes\nAuthenticationMethods publickey,keyboard-interactive\n").unwrap();
    // The example file kept under its own name is of sshd's family: the same reading.
    std::fs::copy(i.pam.join("sshd"), i.pam.join("sshd-publickey")).unwrap();
    let (code, checks) = i.doctor();
    for s in ["pam.d/sshd", "pam.d/sshd-publickey"] {
        let (st, d) = check(&checks, s);
        assert_eq!(st, "ok", "{s}: {d}");
        assert!(d.contains("publickey"), "{s}: {d}");
    }
    assert_eq!(code, 0, "{checks:#?}");
}

#[test]
fn unlock_a_name_without_a_record() {
    let env = Env::new();
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "INSERT INTO lockouts (user, failures, locked_until) VALUES ('walt', 0, 9999999999)",
        [],
    )
    .unwrap();
    assert!(
        env.ok(&["user", "unlock", "walt"])
            .contains("unlocked user walt")
    );
    let left: i64 = conn
        .query_row("SELECT count(*) FROM lockouts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    env.bad(&["user", "unlock", "walt"], &["unknown user"]);
}

#[test]
fn queue_retry_purge_and_sender_status() {
    let env = Env::new();
    env.ok(&["user", "add", "xia"]);
    env.ok(&["contact", "add", "xia", "--email", "xia@example.com"]);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            env.json(&["test", "xia"])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // A sender gave up on two of them.
    for id in &ids[..2] {
        let from = env.path(&format!("spool/new/{id}.json"));
        let to = env.path(&format!("spool/failed/{id}.json"));
        std::fs::rename(&from, &to).unwrap();
        std::fs::write(to.with_extension("reason"), "550 rejected\n").unwrap();
    }
    let st = env.json(&["sender", "status"]);
    assert_eq!(
        (
            st["pending"].as_u64(),
            st["failed"].as_u64(),
            st["alive"].as_bool()
        ),
        (Some(1), Some(2), Some(false))
    );
    assert!(st["heartbeat_age"].is_null());
    assert!(
        env.ok(&["sender", "status"])
            .contains("NOT running (no heartbeat)")
    );
    heartbeat(&env, 3);
    std::fs::write(
        env.path("run/sender.status"),
        r#"{"last_error":"abc: 451 try later"}"#,
    )
    .unwrap();
    let st = env.json(&["sender", "status"]);
    assert_eq!(
        (st["alive"].as_bool(), st["last_error"].as_str()),
        (Some(true), Some("abc: 451 try later"))
    );
    assert!(st["heartbeat_age"].as_u64().unwrap() >= 3);

    let r = env.json(&["queue", "retry", &ids[0]]);
    assert_eq!(r["retried"], serde_json::json!([ids[0]]));
    assert!(env.path(&format!("spool/new/{}.json", ids[0])).exists());
    assert!(
        !env.path(&format!("spool/failed/{}.reason", ids[0]))
            .exists()
    );
    env.bad(&["queue", "retry", &ids[0]], &["no failed message"]);
    env.bad(&["queue", "retry", "../etc"], &["invalid message id"]);
    env.bad(&["queue", "retry"], &["--all-failed"]);
    // Put it back and purge every failed one.
    std::fs::rename(
        env.path(&format!("spool/new/{}.json", ids[0])),
        env.path(&format!("spool/failed/{}.json", ids[0])),
    )
    .unwrap();
    assert_eq!(env.json(&["queue", "purge", "--failed"])["deleted"], 2);
    assert_eq!(
        std::fs::read_dir(env.path("spool/failed")).unwrap().count(),
        0
    );
    assert_eq!(env.json(&["sender", "status"])["pending"], 1);
    let audit = env.json(&["audit", "show"]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"queue retry") && actions.contains(&"queue purge"),
        "{actions:?}"
    );
}

/// Runs mfa-admin on `env` and kills it if it has not finished in 10 s (a read that blocks
/// on a FIFO would otherwise hang the test run). Returns (finished, stdout).
fn run_within_10s(env: &Env, args: &[&str]) -> (bool, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&env.config)
        .args(args)
        .env_remove("MFA_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let finished = loop {
        if child.try_wait().unwrap().is_some() {
            break true;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (finished, out)
}

/// The sender's group writes in the spool and owns the runtime directory: what it plants
/// there (FIFOs, links to root's files, control bytes in a message) must not hang, leak
/// into or take over the terminal of root's `queue list` and `sender status`.
#[test]
fn queue_list_and_sender_status_survive_what_the_senders_group_planted() {
    let env = Env::new();
    let secret = env.path("secret");
    std::fs::write(&secret, "root:$y$j9T$secret-hash:19000\n").unwrap();
    let fifo = |p: &str| {
        nix::unistd::mkfifo(
            &env.path(p),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap()
    };
    fifo("spool/new/1700000000-fifo.json");
    fifo("run/sender.status");
    std::fs::write(env.path("spool/failed/1700000001-ln.json"), "{}").unwrap();
    std::os::unix::fs::symlink(&secret, env.path("spool/failed/1700000001-ln.reason")).unwrap();
    std::fs::write(
        env.path("spool/cur/1700000002-esc.json"),
        serde_json::json!({
            "id": "1700000002-esc\u{1b}[2J", "created": 1, "expires": 2, "channel": "email",
            "to": "a@b", "subject": "s", "body": "b", "user": "eve\u{1b}]0;owned\u{7}",
            "kind": "test", "masked_to": "a\r\n***@b"
        })
        .to_string(),
    )
    .unwrap();
    let (finished, out) = run_within_10s(&env, &["queue", "list"]);
    assert!(finished, "queue list blocked on a FIFO:\n{out}");
    assert!(!out.contains("secret-hash"), "{out}");
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "control bytes reach the terminal: {out:?}"
    );
    assert_eq!(out.lines().count(), 4, "one line per message:\n{out}");
    let (finished, out) = run_within_10s(&env, &["sender", "status"]);
    assert!(finished, "sender status blocked on a FIFO:\n{out}");
    assert!(!out.contains("secret-hash"), "{out}");
    assert!(out.contains("failed:     1"), "{out}");
}

/// What the sender's group can leave in failed/ (a directory named like a message, a message
/// gone meanwhile) does not stop `queue purge`: the real failed messages are deleted and the
/// rest is named.
#[test]
fn queue_purge_is_not_stopped_by_what_it_cannot_delete() {
    let env = Env::new();
    env.ok(&["user", "add", "xia"]);
    env.ok(&["contact", "add", "xia", "--email", "xia@example.com"]);
    let id = env.json(&["test", "xia"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = env.path(&format!("spool/failed/{id}.json"));
    std::fs::rename(env.path(&format!("spool/new/{id}.json")), &failed).unwrap();
    std::fs::create_dir(env.path("spool/failed/1700000000-dir.json")).unwrap();
    let o = env.run(&["queue", "purge", "--failed"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(!failed.exists(), "{o:?}");
    assert!(o.stdout.contains("deleted 1 failed message(s)"), "{o:?}");
    assert!(o.stderr.contains("1700000000-dir.json"), "{o:?}");
}
