//! export and import: all-or-nothing, idempotent, declarative.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use super::{Env, out};

fn populated() -> Env {
    let env = Env::new();
    env.ok(&[
        "settings",
        "set",
        "enabled=on",
        "code_ttl=5m",
        "totp_issuer=Example Corp",
    ]);
    env.ok(&["service", "set", "sudo", "totp"]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--cidr",
        "192.0.2.0/24",
        "--require",
        "no",
    ]);
    env.ok(&["carrier", "add", "Example Mobile", "sms.example.net"]);
    env.ok(&["user", "add", "dave"]);
    env.ok(&[
        "contact",
        "add",
        "dave",
        "--phone",
        "5552010199",
        "--carrier",
        "Example Mobile",
    ]);
    env.ok(&["contact", "add", "dave", "--sms", "+447700900123"]);
    env
}

/// The database dump without the audit log and the policy generation (which count every
/// import).
fn rules(env: &Env) -> Vec<String> {
    env.dump()
        .into_iter()
        .filter(|l| !l.starts_with("audit_log:") && !l.starts_with("meta: \"policy_generation\""))
        .collect()
}

#[test]
fn import_is_idempotent_and_keeps_rule_numbers() {
    let env = populated();
    let file = env.path("doc.toml");
    env.ok(&["export", file.to_str().unwrap()]);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the export holds contacts and must be private");
    let before = rules(&env);
    env.ok(&["import", file.to_str().unwrap()]);
    env.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(
        rules(&env),
        before,
        "importing the current rules must change nothing"
    );
    let audit = env.json(&["audit", "show"]);
    let imports = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "import")
        .count();
    assert_eq!(imports, 2);
}

#[test]
fn import_replaces_rules_and_keeps_state_of_kept_users() {
    let env = populated();
    // (It writes a lockout as the module's state would: not compared with the fleet at the end.)
    env.single_machine();
    env.ok(&["user", "add", "erin"]);
    let doc = env.ok(&["export"]);
    env.ok(&["user", "add", "frank"]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "*",
        "--cidr",
        "198.51.100.0/24",
        "--require",
        "yes",
    ]);
    env.ok(&["settings", "set", "attempts=5"]);
    // erin is locked out (state the PAM module keeps); an import that keeps erin keeps it.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "INSERT INTO lockouts (user, failures, locked_until) VALUES ('erin', 10, 9999999999)",
        [],
    )
    .unwrap();
    drop(conn);

    let file = env.path("doc.toml");
    std::fs::write(&file, &doc).unwrap();
    env.ok(&["import", file.to_str().unwrap()]);
    let users: Vec<String> = env
        .json(&["user", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(users, ["dave", "erin"]);
    assert_eq!(env.json(&["net", "list"]).as_array().unwrap().len(), 1);
    let attempts = env
        .json(&["settings", "show"])
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "attempts")
        .unwrap()["value"]
        .clone();
    assert_eq!(attempts, "3");
    assert_eq!(env.json(&["user", "show", "erin"])["failures"], 10);
    assert_eq!(env.ok(&["export"]), doc);
}

#[test]
fn import_from_standard_input() {
    let env = populated();
    let doc = env.ok(&["export"]);
    let fresh = Env::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
        .arg("--config")
        .arg(&fresh.config)
        .args(["import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    let o = out(child.wait_with_output().unwrap());
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("1 networks, 1 users"), "{}", o.stdout);
    assert_eq!(fresh.ok(&["export"]), doc);
}

#[test]
fn a_bad_document_changes_nothing() {
    let env = populated();
    let mut doc = env.ok(&["export"]);
    // Valid up to the last user's last contact, which is broken.
    doc = doc.replace("+447700900123", "+44");
    let file = env.path("bad.toml");
    std::fs::write(&file, &doc).unwrap();
    let o = env.bad(
        &["import", file.to_str().unwrap()],
        &["users[0].contacts[1]", "E.164"],
    );
    assert!(o.stdout.is_empty());
}

/// A document without users into a store with users (a truncated or wrong file) would
/// delete every user: refused after the document's checks, nothing written; with
/// --allow-no-users it is imported.
#[test]
fn a_document_without_users_does_not_empty_the_store_by_accident() {
    let env = populated();
    let before = env.ok(&["export"]);
    let audit = env.json(&["audit", "show"]).as_array().unwrap().len();
    let file = env.path("empty.toml");
    std::fs::write(&file, "format = 2\n").unwrap();
    let f = file.to_str().unwrap();
    env.bad(
        &["import", f],
        &[
            "holds no user but the store has",
            "nothing was changed",
            "--allow-no-users",
        ],
    );
    assert_eq!(env.ok(&["export"]), before, "nothing written");
    assert_eq!(
        env.json(&["audit", "show"]).as_array().unwrap().len(),
        audit
    );
    // A bad document still says what is wrong with it first.
    std::fs::write(&file, "format = 2\n[settings]\nbogus = 1\n").unwrap();
    env.bad(&["import", f], &["unknown setting 'bogus'"]);
    env.bad(
        &["import", f, "--allow-no-users"],
        &["unknown setting 'bogus'"],
    );
    std::fs::write(&file, "format = 2\n").unwrap();
    assert!(
        env.ok(&["import", "--allow-no-users", f])
            .contains("imported")
    );
    assert!(env.json(&["user", "list"]).as_array().unwrap().is_empty());
}
