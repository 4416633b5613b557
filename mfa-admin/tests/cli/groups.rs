//! Groups (issue 15): `group add|set|del|list|show|sync|enable|disable|test`, a user's group
//! (`user add/set --group`, `user list --group`), `user show`'s provenance, `override set
//! --factors/--mandatory default`; bad input refused with exit 2 and the store unchanged;
//! the Unix-group sync against real Unix groups and accounts made by the test (removed by a
//! guard, also when the test fails); the snapshot a login reads follows a group change at
//! once. (Precedence over every combination: mfa-core's store/groups_tests.rs.)

use mfa_core::snapshot::Snapshot;

use super::Env;
use super::unix_accounts::UnixAccounts;

fn env_with_users() -> Env {
    let env = Env::new();
    env.ok(&["group", "add", "ops", "--description", "Operations"]);
    env.ok(&["group", "add", "staff"]);
    for u in ["ann", "bob", "cy"] {
        env.ok(&["user", "add", u]);
    }
    env.ok(&["contact", "add", "ann", "--email", "ann@example.com"]);
    env.ok(&["contact", "add", "bob", "--email", "bob@example.com"]);
    env
}

/// The user's record as a login reads it from the snapshot.
fn snapshot_facts(env: &Env, user: &str) -> mfa_core::policy::UserFacts {
    Snapshot::open(&env.db())
        .unwrap()
        .unwrap()
        .lookup(user)
        .unwrap()
        .unwrap()
        .facts
}

#[test]
fn group_commands_happy_path() {
    let env = env_with_users();
    let added = env.json(&[
        "group",
        "set",
        "ops",
        "--mandatory",
        "yes",
        "--factors",
        "passcode,totp",
        "--log",
        "rejects",
        "--self-enroll",
        "no",
    ]);
    assert_eq!(added["group"]["mandatory"], true);
    assert_eq!(added["group"]["factors"], "passcode,totp");
    assert_eq!(added["group"]["description"], "Operations");
    env.ok(&["user", "set", "ann", "--group", "ops"]);
    env.ok(&["user", "add", "dee", "--group", "ops"]);
    env.ok(&["settings", "set", "default_group=staff"]);

    // user list: a GROUP column and --group.
    let list = env.ok(&["user", "list"]);
    assert!(list.contains("GROUP"), "{list}");
    let ops: Vec<String> = env
        .json(&["user", "list", "--group", "ops"])
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ops, ["ann", "dee"]);
    let staff = env.json(&["user", "list", "--group", "staff"]);
    assert_eq!(staff.as_array().unwrap().len(), 2, "bob and cy by default");
    assert_eq!(staff[0]["group"], "staff");

    // group list and show.
    let groups = env.json(&["group", "list"]);
    assert_eq!(groups[0]["name"], "ops");
    assert_eq!(groups[0]["members"]["own"], 2);
    assert_eq!(groups[1]["default"], true);
    assert_eq!(groups[1]["members"]["default"], 2);
    let table = env.ok(&["group", "list"]);
    assert!(table.contains("staff (default)"), "{table}");
    let show = env.ok(&["group", "show", "ops", "--members"]);
    assert!(show.contains("members:     2 (2 own"), "{show}");
    assert!(show.contains("ann") && show.contains("dee"), "{show}");
    let shown = env.json(&["group", "show", "ops", "--members"]);
    assert_eq!(shown["member_list"][0]["user"], "ann");
    assert_eq!(shown["member_list"][0]["from"], "user");

    // user show: each effective value and where it comes from.
    env.ok(&[
        "override",
        "set",
        "ann",
        "--factors",
        "totp",
        "--mandatory",
        "no",
    ]);
    let show = env.ok(&["user", "show", "ann"]);
    assert!(show.contains("group:      ops (the user's own)"), "{show}");
    for line in [
        "mandatory    no                 from user",
        "self-enroll  no                 from group ops",
        "log          rejects            from group ops",
        "factors      totp               from user",
    ] {
        assert!(show.contains(line), "{line:?} in {show}");
    }
    let j = env.json(&["user", "show", "ann"]);
    assert_eq!(j["effective"]["group"]["from"], "user");
    assert_eq!(j["effective"]["log"]["group"], "ops");
    assert_eq!(j["effective"]["factors"]["from"], "user");
    let bob = env.json(&["user", "show", "bob"]);
    assert_eq!(bob["effective"]["group"]["value"], "staff");
    assert_eq!(bob["effective"]["group"]["from"], "default");
    assert_eq!(bob["effective"]["mandatory"]["from"], "default");
    // Back to the group's: `default`.
    env.ok(&[
        "override",
        "set",
        "ann",
        "--factors",
        "default",
        "--mandatory",
        "default",
    ]);
    let j = env.json(&["user", "show", "ann"]);
    assert_eq!(j["effective"]["factors"]["value"], "passcode,totp");
    assert_eq!(j["effective"]["mandatory"]["from"], "group");
    assert_eq!(j["override"]["factors"], serde_json::Value::Null);
    assert!(env.ok(&["override", "list"]).contains("FACTORS"));

    // A group setting back to not set.
    env.ok(&[
        "group",
        "set",
        "ops",
        "--log",
        "default",
        "--factors",
        "all",
    ]);
    let g = env.json(&["group", "show", "ops"]);
    assert!(g["log"].is_null());
    assert_eq!(g["factors"], "all");

    // user set --group none: back to the default group.
    let out = env.ok(&["user", "set", "dee", "--group", "none"]);
    assert!(out.contains("now follows group staff (default)"), "{out}");
    assert!(
        env.ok(&["user", "set", "dee", "--group", "none"])
            .contains("(unchanged)")
    );
    // --duo and --group together.
    env.ok(&["user", "set", "cy", "--duo", "cy@corp", "--group", "ops"]);
    let cy = env.json(&["user", "show", "cy"]);
    assert_eq!(cy["duo_user"], "cy@corp");
    assert_eq!(cy["effective"]["group"]["value"], "ops");

    // Delete: once nobody depends on it.
    env.ok(&["user", "set", "ann", "--group", "none"]);
    env.ok(&["user", "set", "cy", "--group", "none"]);
    env.ok(&["group", "del", "ops"]);
    assert_eq!(env.json(&["group", "list"]).as_array().unwrap().len(), 1);
    let audit = env.ok(&["audit", "show"]);
    for a in ["group add", "group set", "group del", "ops: mandatory yes"] {
        assert!(audit.contains(a), "{a:?} in {audit}");
    }
    // The audit of `user add --group`.
    assert!(audit.contains("dee (group ops)"), "{audit}");
}

#[test]
fn group_bad_input_is_refused_and_changes_nothing() {
    let env = env_with_users();
    env.ok(&["user", "set", "ann", "--group", "ops"]);
    env.ok(&["settings", "set", "default_group=staff"]);
    let unknown = "unknown group \"nope\"";
    for args in [
        &["group", "show", "nope"][..],
        &["group", "set", "nope", "--mandatory", "yes"],
        &["group", "del", "nope"],
        &["group", "enable", "nope"],
        &["group", "disable", "nope"],
        &["group", "test", "nope"],
        &["user", "set", "bob", "--group", "nope"],
        &["user", "list", "--group", "nope"],
    ] {
        env.bad(args, &[unknown, "group list"]);
    }
    // user add --group with an unknown group adds no user either.
    env.bad(&["user", "add", "eve", "--group", "nope"], &[unknown]);
    for bad in ["a b", "none", "-x", "x\x1b[2J", ".hidden", &"g".repeat(65)] {
        let o = env.bad(&["group", "add", "--", bad], &["invalid group name"]);
        assert!(!o.stderr.contains('\x1b'), "{o:?}");
    }
    env.bad(&["group", "add", "ops"], &["group \"ops\" already exists"]);
    let both = "cannot be both mandatory and exempt";
    env.bad(
        &["group", "add", "x", "--mandatory", "yes", "--exempt", "yes"],
        &[both],
    );
    env.ok(&["group", "set", "staff", "--exempt", "yes"]);
    env.bad(
        &["group", "set", "staff", "--mandatory", "yes"],
        &[both, "--exempt default"],
    );
    for bad in ["", ",", "sms", "passcode,,totp", "passcode;totp"] {
        env.bad(
            &["group", "set", "ops", "--factors", bad],
            &["invalid --factors"],
        );
        env.bad(
            &["override", "set", "bob", "--factors", bad],
            &["invalid --factors"],
        );
    }
    env.bad(
        &["group", "set", "ops", "--log", "loud"],
        &["invalid log level"],
    );
    env.bad(
        &["group", "set", "ops", "--self-enroll", "maybe"],
        &["invalid --self-enroll"],
    );
    env.bad(&["group", "set", "ops"], &["nothing to change"]);
    env.bad(
        &["override", "set", "bob", "--mandatory", "perhaps"],
        &["invalid value 'perhaps'", "yes or no, or default"],
    );
    let o = env.bad(
        &["group", "set", "ops", "--description", "evil\x1b[2Jtext"],
        &["invalid description"],
    );
    assert!(!o.stderr.contains('\x1b'), "{o:?}");
    for bad in ["a:b", "x\ny", "-g", "a,b"] {
        env.bad(
            &["group", "set", "ops", &format!("--unix-group={bad}")],
            &["invalid Unix group name"],
        );
    }
    // Deleting a group in use, or the default.
    env.bad(
        &["group", "del", "ops"],
        &["own group of 1 user(s)", "user set USER --group OTHER"],
    );
    env.bad(
        &["group", "del", "staff"],
        &["is the default group", "default_group=none"],
    );
    // A Unix group is followed by one group at most.
    env.ok(&[
        "group",
        "set",
        "ops",
        "--unix-group",
        "mfa-test-no-such-group",
    ]);
    env.bad(
        &[
            "group",
            "set",
            "staff",
            "--unix-group",
            "mfa-test-no-such-group",
        ],
        &["already follows Unix group"],
    );
    // group test above a send limit: refused as a whole, nothing queued.
    env.ok(&["settings", "set", "send_limit_host=1"]);
    env.ok(&["user", "set", "bob", "--group", "ops"]);
    env.bad(&["group", "test", "ops"], &["more than send_limit_host (1"]);
    let queued = std::fs::read_dir(env.path("spool/new")).unwrap().count();
    assert_eq!(queued, 0);
}

#[test]
fn bulk_enable_disable_and_test() {
    let env = env_with_users();
    for u in ["ann", "bob", "cy"] {
        env.ok(&["user", "set", u, "--group", "ops"]);
    }
    env.ok(&["user", "disable", "cy"]);
    let out = env.ok(&["group", "disable", "ops"]);
    assert!(
        out.contains("2 of 3 member(s) disabled (1 already were)"),
        "{out}"
    );
    let users = env.json(&["user", "list"]);
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["enabled"] == false)
    );
    assert!(
        !snapshot_facts(&env, "ann").enabled,
        "the login sees it at once"
    );
    let j = env.json(&["group", "enable", "ops"]);
    assert_eq!(j["enabled"].as_array().unwrap().len(), 3);
    assert!(snapshot_facts(&env, "bob").enabled);
    let audit = env.ok(&["audit", "show"]);
    assert!(audit.contains("ops: 2 of 3 member(s) disabled"), "{audit}");
    assert!(audit.contains("ops: 3 of 3 member(s) enabled"), "{audit}");
    // group test: one message per member with a contact; cy has none.
    let out = env.ok(&["group", "test", "ops"]);
    assert!(out.contains("queued 2 test message(s)"), "{out}");
    assert!(
        out.contains("skipped 1 member(s) without a contact: cy"),
        "{out}"
    );
    let files: Vec<String> = std::fs::read_dir(env.path("spool/new"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(files.len(), 2);
    assert!(files.iter().any(|f| f.contains("ann@example.com")));
    assert!(files.iter().any(|f| f.contains("bob@example.com")));
    assert!(
        env.ok(&["audit", "show"])
            .contains("ops: 2 test message(s) queued, 1 member(s) without a contact")
    );
    // An empty group: nothing to do, no error.
    let out = env.ok(&["group", "test", "staff"]);
    assert!(out.contains("queued 0"), "{out}");
}

#[test]
fn snapshot_follows_a_group_change_at_once() {
    let env = env_with_users();
    env.ok(&["user", "set", "bob", "--group", "ops"]);
    assert!(!snapshot_facts(&env, "bob").mandatory);
    env.ok(&[
        "group",
        "set",
        "ops",
        "--mandatory",
        "yes",
        "--factors",
        "totp",
    ]);
    let f = snapshot_facts(&env, "bob");
    assert!(f.mandatory);
    assert_eq!(f.factors.to_string(), "totp");
    // The default group: every user without a group of their own.
    env.ok(&["group", "set", "staff", "--exempt", "yes"]);
    assert!(!snapshot_facts(&env, "cy").exempt);
    env.ok(&["settings", "set", "default_group=staff"]);
    assert!(snapshot_facts(&env, "cy").exempt);
    assert!(!snapshot_facts(&env, "bob").exempt, "bob's own group wins");
    env.ok(&["override", "set", "cy", "--mandatory", "yes"]);
    let f = snapshot_facts(&env, "cy");
    assert!(
        f.mandatory && !f.exempt,
        "the user's mandatory beats the group's exempt"
    );
}

#[test]
fn dead_store_and_damaged_rows() {
    let env = env_with_users();
    // (It kills and damages its database: not compared with the fleet at the end.)
    env.single_machine();
    env.ok(&["user", "set", "ann", "--group", "ops"]);
    // A value the CHECK keeps out, written with checks off: an error naming it, not "all".
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute_batch(
        "PRAGMA ignore_check_constraints = ON; UPDATE groups SET factors = 99 WHERE name = 'ops';",
    )
    .unwrap();
    drop(conn);
    for args in [&["group", "list"][..], &["user", "show", "ann"]] {
        let o = env.run(args);
        assert_ne!(o.code, 0, "{args:?}: {o:?}");
        assert!(o.stderr.contains("stored factors 99"), "{args:?}: {o:?}");
    }
    // No database: a clear error, no panic.
    std::fs::remove_file(env.db()).unwrap();
    for args in [
        &["group", "list"][..],
        &["group", "sync"],
        &["group", "add", "x"],
    ] {
        let o = env.run(args);
        assert_ne!(o.code, 0);
        assert!(o.stderr.contains("database does not exist"), "{o:?}");
        assert!(!o.stderr.contains("panicked"), "{o:?}");
    }
}

#[test]
fn unix_groups_are_resolved_by_mfa_admin() {
    let mut fx = UnixAccounts::new("mfag");
    let wheel = fx.group("w");
    let other = fx.group("o");
    // One member through the group's member list, one whose primary group it is, one
    // in both followed groups, one without an mfa record.
    let listed = fx.user("a", None, &[&wheel]);
    let primary = fx.user("b", Some(&wheel), &[]);
    let both = fx.user("c", None, &[&wheel, &other]);
    let norecord = fx.user("d", None, &[&wheel]);
    let env = Env::new();
    for u in [&listed, &primary, &both] {
        env.ok(&["user", "add", u]);
    }
    env.ok(&["user", "add", "local"]);
    // Named so that "a-admins" comes first: it governs `both`.
    let o = env.run(&[
        "group",
        "add",
        "a-admins",
        "--mandatory",
        "yes",
        "--unix-group",
        &wheel,
    ]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stdout.contains("4 member(s) (3 with an mfa record)"),
        "{o:?}"
    );
    assert!(
        o.stderr.contains(&norecord) && o.stderr.contains("user import --unix-group"),
        "{o:?}"
    );
    env.ok(&[
        "group",
        "add",
        "b-others",
        "--exempt",
        "yes",
        "--unix-group",
        &other,
    ]);
    for u in [&listed, &primary, &both] {
        assert!(snapshot_facts(&env, u).mandatory, "{u} through {wheel}");
    }
    assert!(!snapshot_facts(&env, "local").mandatory);
    let show = env.ok(&["user", "show", &both]);
    assert!(
        show.contains(&format!("a-admins (through Unix group {wheel})")),
        "{show}"
    );
    assert!(
        show.contains("also in the Unix groups of b-others"),
        "{show}"
    );
    let j = env.json(&["user", "show", &both]);
    assert_eq!(j["effective"]["group"]["from"], "unix");
    assert_eq!(j["effective"]["mandatory"]["group"], "a-admins");
    let g = env.json(&["group", "show", "a-admins"]);
    assert_eq!(g["members"]["unix"], 3);

    // Membership changes are picked up by `group sync` (and only then: no NSS in a login).
    fx.run("gpasswd", &["-d", &listed, &wheel]);
    assert!(snapshot_facts(&env, &listed).mandatory, "not resolved yet");
    let r = env.json(&["group", "sync"]);
    assert_eq!(r["groups"][0]["removed"], serde_json::json!([listed]));
    assert!(!snapshot_facts(&env, &listed).mandatory);
    assert!(env.ok(&["audit", "show"]).contains("group sync"));
    // Nothing changed: no write, no audit entry.
    let before = env.dump();
    env.ok(&["group", "sync"]);
    assert_eq!(env.dump(), before);

    // The Unix group disappears: its members stay (a directory outage must not make
    // mandatory users optional), with a warning.
    fx.run("usermod", &["-g", "users", &primary]);
    fx.run("groupdel", &[&wheel]);
    let o = env.run(&["group", "sync"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr.contains("could not be resolved") && o.stderr.contains("kept"),
        "{o:?}"
    );
    assert!(snapshot_facts(&env, &primary).mandatory, "kept");
    // The maintenance run fails while it lasts (an administrator must act), keeping them.
    let o = env.run(&["--json", "maintain"]);
    assert_eq!(o.code, 1, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["unix_groups"]["status"], "failed", "{v}");
    assert!(snapshot_facts(&env, &primary).mandatory, "still kept");
    // Stop following it: the rows go in the same change.
    env.ok(&["group", "set", "a-admins", "--unix-group", "none"]);
    assert!(!snapshot_facts(&env, &primary).mandatory);
    let f = snapshot_facts(&env, &both);
    assert!(f.exempt, "now governed by b-others");
    env.ok(&["group", "del", "a-admins"]);
    env.bad(
        &["group", "del", "b-others"],
        &["follows Unix group", "--unix-group none"],
    );
}

/// A change that leaves users with factors but none they may use is made, and names them:
/// they are refused wherever a second factor is required until that changes.
#[test]
fn users_left_without_an_allowed_factor_are_named() {
    let env = env_with_users();
    env.ok(&["group", "set", "ops", "--factors", "totp"]);
    let o = env.run(&["user", "set", "bob", "--group", "ops"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(
        o.stderr
            .contains("warning: 1 user(s) have factors but none they may use: bob"),
        "{o:?}"
    );
    assert_eq!(
        snapshot_facts(&env, "bob").factors.to_string(),
        "totp",
        "the change is made"
    );
    // cy has no factor at all: not named (enrolment decides for them).
    let o = env.run(&["user", "set", "cy", "--group", "ops"]);
    assert!(!o.stderr.contains("warning"), "{o:?}");
    // The group's own change names every member it strands; allowing theirs names nobody.
    env.ok(&["user", "set", "ann", "--group", "ops"]);
    let o = env.run(&["group", "set", "ops", "--factors", "totp,backup"]);
    assert!(
        o.stderr.contains("2 user(s)") && o.stderr.contains("ann, bob"),
        "{o:?}"
    );
    let o = env.run(&["group", "set", "ops", "--factors", "passcode"]);
    assert!(!o.stderr.contains("warning"), "{o:?}");
    // A user's own override too.
    let o = env.run(&["override", "set", "ann", "--factors", "duo"]);
    assert!(o.stderr.contains("none they may use: ann"), "{o:?}");
}
