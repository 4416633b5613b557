//! Untrusted fields in mfa-admin's output (issue 10): user names, hosts and ttys from PAM
//! items, and messages, recipients and reasons from spool files the sender's group can
//! write, carry terminal escape sequences, carriage returns, newlines, C1 controls and bidi
//! overrides. Tables show each as a visible escape (`\x1b`), never raw; JSON escapes them and
//! reads back to the same value. Also `log show --outcome`.

use super::Env;

/// Everything a terminal acts on or hides, in one value.
const HOSTILE: &str =
    "x\x1b[2J\x1b]0;pwned\x07\r\n2026-01-01 root sshd local pts/0 success\u{9b}31m\u{202e}gnp\x7f";

/// The raw characters none of the outputs may contain.
fn raw_hidden(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| {
            (c.is_control() && *c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
        })
        .collect()
}

fn log_row(env: &Env, user: &str, address: &str, tty: &str, outcome: &str, reason: &str) {
    // Make sure the schema exists (init ran), then add a row as the module's inbox would.
    let c = rusqlite::Connection::open(env.db()).unwrap();
    c.execute(
        "INSERT INTO auth_log (ts, user, service, address, tty, outcome, method, destination, reason)
         VALUES (1796000000, ?1, 'sshd', ?2, ?3, ?4, 'passcode', ?5, ?6)",
        rusqlite::params![user, address, tty, outcome, "j***@e***.com", reason],
    )
    .unwrap();
}

#[test]
fn log_show_escapes_every_field_and_filters_by_outcome() {
    let env = Env::new();
    log_row(&env, HOSTILE, HOSTILE, HOSTILE, "deny", HOSTILE);
    log_row(
        &env,
        "alice",
        "192.0.2.1",
        "pts/1",
        "abandoned",
        "2 messages, no answer",
    );
    log_row(
        &env,
        "bob",
        "192.0.2.2",
        "pts/2",
        "rate-limited",
        "send limit",
    );

    let table = env.ok(&["log", "show"]);
    assert_eq!(raw_hidden(&table), Vec::<char>::new(), "{table:?}");
    // One header and three rows: the newline in the values drew no fourth.
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("x\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0a2026-01-01"),
        "{table}"
    );
    assert!(table.contains("\\x9b31m\\u{202e}gnp\\x7f"), "{table}");

    let out = env.run(&["--json", "log", "show"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        raw_hidden(&out.stdout),
        Vec::<char>::new(),
        "{:?}",
        out.stdout
    );
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let first = &rows[0];
    for key in ["user", "address", "tty", "reason"] {
        assert_eq!(first[key], HOSTILE, "{key} reads back unchanged");
    }

    for (outcome, user) in [
        ("abandoned", "alice"),
        ("rate-limited", "bob"),
        ("deny", HOSTILE),
    ] {
        let rows = env.json(&["log", "show", "--outcome", outcome]);
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 1, "--outcome {outcome}: {rows:?}");
        assert_eq!(rows[0]["user"], user);
        assert_eq!(rows[0]["outcome"], outcome);
    }
    assert_eq!(
        env.ok(&["log", "show", "--outcome", "success"]).trim(),
        "no log entries"
    );
    let o = env.bad(
        &["log", "show", "--outcome", "abandon"],
        &["--outcome \"abandon\"", "abandoned, rate-limited"],
    );
    assert!(o.stdout.is_empty());
    let o = env.bad(&["log", "show", "--outcome", "deny\x1b[2J"], &["--outcome"]);
    assert_eq!(raw_hidden(&o.stderr), Vec::<char>::new(), "{:?}", o.stderr);
}

#[test]
fn queue_list_and_sender_status_escape_spool_text() {
    let env = Env::new();
    let spool = env.path("spool");
    let msg = serde_json::json!({
        "id": "1796000000-hostile",
        "created": 1796000000,
        "expires": 1796000600,
        "channel": "email",
        "to": "victim@example.com",
        "subject": "s",
        "body": "b",
        "user": HOSTILE,
        "kind": "passcode",
        "masked_to": HOSTILE,
    });
    let write = |sub: &str, name: &str, text: &str| {
        std::fs::write(spool.join(sub).join(name), text).unwrap();
    };
    write("new", "1796000000-hostile.json", &msg.to_string());
    let mut failed = msg.clone();
    failed["id"] = "1796000001-failed".into();
    write("failed", "1796000001-failed.json", &failed.to_string());
    write("failed", "1796000001-failed.reason", HOSTILE);
    std::fs::write(
        env.path("run/sender.status"),
        serde_json::json!({"in_flight": 0, "retrying": 0, "failed": 1,
                           "last_error": format!("1796000001-failed: {HOSTILE}"), "time": 1})
        .to_string(),
    )
    .unwrap();

    let table = env.ok(&["queue", "list"]);
    assert_eq!(raw_hidden(&table), Vec::<char>::new(), "{table:?}");
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.contains("x\\x1b[2J"), "{table}");

    let out = env.run(&["--json", "queue", "list"]);
    assert_eq!(
        raw_hidden(&out.stdout),
        Vec::<char>::new(),
        "{:?}",
        out.stdout
    );
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for r in rows.as_array().unwrap() {
        assert_eq!(r["user"], HOSTILE);
        assert_eq!(r["to"], HOSTILE);
    }

    let status = env.ok(&["sender", "status"]);
    assert_eq!(raw_hidden(&status), Vec::<char>::new(), "{status:?}");
    assert!(
        status.contains("last error: 1796000001-failed: x\\x1b[2J"),
        "{status}"
    );
    let out = env.run(&["--json", "sender", "status"]);
    assert_eq!(
        raw_hidden(&out.stdout),
        Vec::<char>::new(),
        "{:?}",
        out.stdout
    );
    let st: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        st["last_error"],
        format!("1796000001-failed: {HOSTILE}").as_str()
    );
}
