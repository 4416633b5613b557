//! The SafeNet-style setup of the issue, run as an administrator would script it, ending in
//! export → wipe → import → export giving the identical document.

use super::Env;

#[test]
fn safenet_style_setup_round_trips() {
    let env = Env::new();
    // (It starts again from an empty database: not compared with the fleet at the end.)
    env.single_machine();
    env.ok(&["settings", "set", "enabled=on"]);
    env.ok(&["service", "set", "sshd", "passcode"]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--range",
        "10.2.2.0-10.2.2.254",
        "--require",
        "no",
        "--note",
        "office LAN",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--cidr",
        "10.2.2.120/32",
        "--require",
        "yes",
        "--note",
        "shared kiosk",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "*",
        "--cidr",
        "2001:db8:10::/48",
        "--require",
        "no",
        "--log",
        "rejects",
    ]);

    // .7 is trusted by the range; .120 needs 2FA by its narrower rule.
    let c7 = env.json(&["net", "check", "--service", "sshd", "10.2.2.7"]);
    assert_eq!(c7["decision"], "trusted");
    assert_eq!(c7["rule"]["range"], "10.2.2.0-10.2.2.254");
    assert_eq!(c7["enabled"], true);
    assert_eq!(c7["method"], "passcode");
    let c120 = env.json(&["net", "check", "--service", "sshd", "10.2.2.120"]);
    assert_eq!(c120["decision"], "required");
    assert_eq!(c120["rule"]["range"], "10.2.2.120/32");
    assert_eq!(c120["matches"].as_array().unwrap().len(), 2);
    let text = env.ok(&["net", "check", "--service", "sshd", "10.2.2.120"]);
    assert!(
        text.contains("2FA required") && text.contains("narrowest of 2 matching rules"),
        "{text}"
    );
    // IPv6: inside the trusted /48, and outside any rule.
    let c6 = env.json(&["net", "check", "--service", "sshd", "2001:db8:10::7"]);
    assert_eq!(c6["decision"], "trusted");
    assert_eq!(c6["rule"]["service"], "*");
    let c6 = env.json(&["net", "check", "--service", "sshd", "2001:db8:11::7"]);
    assert_eq!(c6["decision"], "required");
    assert!(c6["rule"].is_null());
    // An IPv4-mapped IPv6 address is the IPv4 address it carries.
    let mapped = env.json(&["net", "check", "--service", "sshd", "::ffff:10.2.2.7"]);
    assert_eq!(mapped["decision"], "trusted");

    env.ok(&["user", "add", "alice", "--full-name", "Alice Example"]);
    env.ok(&[
        "contact",
        "add",
        "alice",
        "--email",
        "alice@example.com",
        "--label",
        "work",
    ]);
    env.ok(&[
        "contact",
        "add",
        "alice",
        "--phone",
        "(555) 201-0123",
        "--carrier",
        "Verizon",
        "--label",
        "cell",
    ]);
    env.ok(&["user", "add", "bob"]);
    env.ok(&["override", "set", "bob", "--mandatory", "yes"]);
    env.ok(&["user", "add", "carol"]);
    env.ok(&[
        "override", "set", "carol", "--exempt", "yes", "--log", "all",
    ]);
    env.ok(&["template", "set", "passcode-subject", "{host}: your code"]);

    let alice = env.json(&["user", "show", "alice"]);
    let contacts = alice["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1]["to"], "5552010123@vtext.com");
    assert_eq!(contacts[1]["masked"], "***-***-0123 (Verizon)");

    let first = env.ok(&["export"]);
    for needle in [
        "10.2.2.0-10.2.2.254",
        "10.2.2.120/32",
        "alice@example.com",
        "5552010123",
        "{host}: your code",
        "mandatory = true",
        "exempt = true",
    ] {
        assert!(first.contains(needle), "export lacks {needle}:\n{first}");
    }
    let file = env.path("rules.toml");
    env.ok(&["export", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), first);

    // Wipe: a brand-new database.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", env.db().display()));
    }
    env.ok(&["init"]);
    assert_ne!(
        env.ok(&["export"]),
        first,
        "a fresh database should not already hold the rules"
    );
    env.ok(&["import", file.to_str().unwrap()]);
    let second = env.ok(&["export"]);
    assert_eq!(second, first);

    // And the imported rules behave as the originals.
    assert_eq!(
        env.json(&["net", "check", "--service", "sshd", "10.2.2.120"])["decision"],
        "required"
    );
    assert_eq!(
        env.json(&["net", "check", "--service", "sshd", "10.2.2.7"])["decision"],
        "trusted"
    );
}
