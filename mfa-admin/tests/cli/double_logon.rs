//! The double-logon contact override (`override set USER --double-logon-contact N|default`):
//! where a one-password service's double logon sends its passcode. Set, listed (table and
//! JSON), shown, audited, refused for a contact the user lacks, cleared (and said so) when
//! `contact del` deletes its contact, exported and imported all or nothing.

use super::Env;

fn last_audit(env: &Env) -> serde_json::Value {
    env.json(&["audit", "show", "--limit", "1"])[0].clone()
}

/// alice with three contacts (1 email, 2 email, 3 sms) and bob with none.
fn setup() -> Env {
    let env = Env::new();
    env.ok(&["user", "add", "alice"]);
    env.ok(&["user", "add", "bob"]);
    env.ok(&["contact", "add", "alice", "--email", "alice@example.com"]);
    env.ok(&[
        "contact",
        "add",
        "alice",
        "--email",
        "alice.home@example.org",
    ]);
    env.ok(&["contact", "add", "alice", "--sms", "+14155550123"]);
    env
}

fn choice(env: &Env, user: &str) -> serde_json::Value {
    env.json(&["user", "show", user])["override"]["double_logon_contact"].clone()
}

#[test]
fn set_list_show_and_audit() {
    let env = setup();
    let out = env.ok(&["override", "set", "alice", "--double-logon-contact", "2"]);
    assert!(
        out.contains("alice: mandatory default, exempt default"),
        "{out}"
    );
    assert!(out.contains("double-logon contact 2"), "{out}");
    let a = last_audit(&env);
    assert_eq!(a["action"], "override set");
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains("double-logon contact 2"),
        "{a}"
    );
    // Only the option given changes; the JSON carries the number.
    let o = env.json(&["override", "set", "alice", "--mandatory", "yes"]);
    assert_eq!(
        o,
        serde_json::json!({"user": "alice", "mandatory": true, "exempt": null,
            "self_enroll": null, "log": null, "double_logon_contact": 2, "factors": null})
    );
    let table = env.ok(&["override", "list"]);
    assert!(table.contains("DOUBLE-LOGON CONTACT"), "{table}");
    let row = table.lines().find(|l| l.starts_with("alice")).unwrap();
    assert!(row.trim_end().ends_with('2'), "{table}");
    let list = env.json(&["override", "list"]);
    assert_eq!(list[0]["double_logon_contact"], 2);
    let show = env.ok(&["user", "show", "alice"]);
    assert!(show.contains("double-logon contact 2"), "{show}");
    assert_eq!(choice(&env, "alice"), 2);

    // default: back to the first contact (null), the other overrides kept.
    let o = env.json(&[
        "override",
        "set",
        "alice",
        "--double-logon-contact",
        "default",
    ]);
    assert!(o["double_logon_contact"].is_null(), "{o}");
    assert_eq!(o["mandatory"], true);
    let row = env.ok(&["override", "list"]);
    let row = row.lines().find(|l| l.starts_with("alice")).unwrap();
    assert!(row.trim_end().ends_with("default"), "{row}");
    assert!(
        last_audit(&env)["detail"]
            .as_str()
            .unwrap()
            .contains("double-logon contact default")
    );
    // A user without other overrides: a row of its own, only the choice set.
    env.ok(&["contact", "add", "bob", "--email", "bob@example.com"]);
    let o = env.json(&["override", "set", "bob", "--double-logon-contact", "1"]);
    assert_eq!(
        (o["mandatory"].is_null(), o["exempt"].is_null()),
        (true, true),
        "not set: the group's, else the global setting"
    );
    assert_eq!(o["double_logon_contact"], 1);
    env.ok(&["override", "del", "bob"]);
    assert!(env.json(&["user", "show", "bob"])["override"].is_null());
}

#[test]
fn a_contact_the_user_lacks_and_bad_numbers_are_refused() {
    let env = setup();
    env.ok(&["contact", "del", "alice", "2"]);
    env.bad(
        &["override", "set", "alice", "--double-logon-contact", "2"],
        &["alice has no contact 2: see `mfa-admin contact list alice`"],
    );
    env.bad(
        &["override", "set", "alice", "--double-logon-contact", "4"],
        &["alice has no contact 4: see `mfa-admin contact list alice`"],
    );
    env.bad(
        &["override", "set", "bob", "--double-logon-contact", "1"],
        &["bob has no contact 1: see `mfa-admin contact list bob`"],
    );
    for bad in [
        "0",
        "5",
        "-1",
        "two",
        "2x",
        "",
        "99999999999999999999",
        "\u{1b}[2J",
    ] {
        let o = env.bad(
            &[
                "override",
                "set",
                "alice",
                &format!("--double-logon-contact={bad}"),
            ],
            &[
                "invalid --double-logon-contact",
                "expected a contact number from 1 to 4",
                "`mfa-admin contact list alice`",
                "or default",
            ],
        );
        assert!(!o.stderr.contains('\u{1b}'), "{o:?}");
    }
    env.bad(
        &["override", "set", "nosuch", "--double-logon-contact", "1"],
        &["unknown user \"nosuch\""],
    );
    // Refused together with a valid option: nothing of it is stored.
    env.bad(
        &[
            "override",
            "set",
            "alice",
            "--mandatory",
            "yes",
            "--double-logon-contact",
            "2",
        ],
        &["alice has no contact 2"],
    );
    assert!(env.json(&["user", "show", "alice"])["override"].is_null());
}

#[test]
fn contact_del_clears_the_choice_and_says_so() {
    let env = setup();
    env.ok(&[
        "override",
        "set",
        "alice",
        "--double-logon-contact",
        "3",
        "--mandatory",
        "yes",
    ]);
    // Another contact: numbers do not shift, the choice still names the same contact.
    let out = env.ok(&["contact", "del", "alice", "1"]);
    assert!(!out.contains("double-logon"), "{out}");
    assert_eq!(choice(&env, "alice"), 3);
    let contacts = env.json(&["contact", "list", "alice"]);
    let three = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["seq"] == 3)
        .unwrap();
    assert_eq!(three["address"], "+14155550123");
    // The chosen contact: deleted, the choice cleared, said and audited.
    let out = env.ok(&["contact", "del", "alice", "3"]);
    assert!(out.contains("deleted contact 3 of alice"), "{out}");
    assert!(
        out.contains("it was alice's double-logon contact: that override is cleared"),
        "{out}"
    );
    assert!(out.contains("first contact"), "{out}");
    assert!(
        out.contains("mfa-admin override set alice --double-logon-contact N"),
        "{out}"
    );
    let a = last_audit(&env);
    assert_eq!(a["action"], "contact del");
    assert!(
        a["detail"]
            .as_str()
            .unwrap()
            .contains("double-logon contact override cleared"),
        "{a}"
    );
    assert!(choice(&env, "alice").is_null());
    assert_eq!(
        env.json(&["user", "show", "alice"])["override"]["mandatory"],
        true,
        "the other overrides stay"
    );
    // A new contact that takes number 3 is not chosen by it.
    env.ok(&["contact", "add", "alice", "--sms", "+14155550999"]);
    env.ok(&["contact", "add", "alice", "--sms", "+14155550998"]);
    let seqs: Vec<i64> = env
        .json(&["contact", "list", "alice"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(choice(&env, "alice").is_null());
    // Deleting the user takes the override with it.
    env.ok(&["override", "set", "alice", "--double-logon-contact", "2"]);
    env.ok(&["user", "del", "alice"]);
    assert!(
        env.json(&["override", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn export_and_import_carry_the_choice_all_or_nothing() {
    let env = setup();
    env.ok(&["override", "set", "alice", "--double-logon-contact", "3"]);
    let doc = env.ok(&["export"]);
    assert!(doc.contains("double_logon_contact = 3"), "{doc}");
    // Back from the document, also after it changed in the database.
    env.ok(&[
        "override",
        "set",
        "alice",
        "--double-logon-contact",
        "default",
    ]);
    let file = env.path("doc.toml");
    std::fs::write(&file, &doc).unwrap();
    env.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(choice(&env, "alice"), 3);
    let before = env.dump();
    env.ok(&["import", file.to_str().unwrap()]);
    let strip = |d: Vec<String>| -> Vec<String> {
        d.into_iter()
            .filter(|l| {
                !l.starts_with("audit_log:") && !l.starts_with("meta: \"policy_generation\"")
            })
            .collect()
    };
    assert_eq!(strip(env.dump()), strip(before), "import is idempotent");
    // Into a fresh installation.
    let other = Env::new();
    other.ok(&["import", file.to_str().unwrap()]);
    assert_eq!(choice(&other, "alice"), 3);
    assert_eq!(other.ok(&["export"]), doc);

    // A number the user has no contact of in the file: refused, naming the user and the
    // number, nothing changed (not even the other users or settings of the file).
    let bad = doc.replace("double_logon_contact = 3", "double_logon_contact = 4");
    assert_ne!(bad, doc);
    let bad = bad.replace("enabled = \"off\"", "enabled = \"on\"");
    let f = env.path("bad.toml");
    std::fs::write(&f, &bad).unwrap();
    let o = env.bad(
        &["import", f.to_str().unwrap()],
        &[
            "override.double_logon_contact",
            "alice has no contact 4 in this file",
            "numbered 1, 2, 3",
        ],
    );
    assert!(o.stdout.is_empty());
    // The contact removed from the file while the choice stays.
    let at = doc
        .find("[[users.contacts]]\nseq = 3\n")
        .expect("contact 3 in the export");
    let rest = &doc[at + 1..];
    let end = rest.find("\n[").map_or(doc.len(), |i| at + 1 + i + 1);
    let without = format!("{}{}", &doc[..at], &doc[end..]);
    assert!(!without.contains("+14155550123"), "{without}");
    std::fs::write(&f, &without).unwrap();
    env.bad(
        &["import", f.to_str().unwrap()],
        &["alice has no contact 3 in this file", "numbered 1, 2"],
    );
    // A user without contacts.
    let doc =
        "format = 1\n[[users]]\nname = \"carol\"\n[users.override]\ndouble_logon_contact = 1\n";
    std::fs::write(&f, doc).unwrap();
    env.bad(
        &["import", f.to_str().unwrap()],
        &["carol has no contact 1 in this file", "it has no contacts"],
    );
    // Outside 1..4, or not a number (the parser names the line of the key).
    for (v, says) in [
        ("0", "carol has no contact 0"),
        ("9", "carol has no contact 9"),
        ("-3", "carol has no contact -3"),
        ("\"2\"", "line 5: invalid type: string"),
        ("2.5", "line 5: invalid type: floating point"),
    ] {
        let doc = doc.replace(
            "double_logon_contact = 1",
            &format!("double_logon_contact = {v}"),
        );
        std::fs::write(&f, &doc).unwrap();
        env.bad(&["import", f.to_str().unwrap()], &[says]);
    }
    assert_eq!(choice(&env, "alice"), 3);
}
