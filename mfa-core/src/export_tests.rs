//! Import at scale: linear in the number of network rules (it was quadratic: every rule of
//! the document looked for its match by walking every existing rule).

use super::*;
use crate::store::Store;

/// A document of `n` IPv4 /24 rules (and no users).
fn doc_with(store: &mut Store, n: u32) -> Document {
    let mut doc = store.read(|tx| export(tx)).unwrap();
    doc.networks = (0..n)
        .map(|k| NetworkDoc {
            service: ["*", "sshd", "ftp"][(k % 3) as usize].into(),
            range: format!("10.{}.{}.0/24", k / 256, k % 256),
            require: k % 7 == 0,
            log: None,
            note: format!("rule {k}"),
        })
        .collect();
    doc
}

/// The fastest of three imports of `doc` into a store that already holds its rules (every
/// rule is then matched against the stored ones: the path that was quadratic).
fn import_time(n: u32) -> std::time::Duration {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let doc = doc_with(&mut store, n);
    store.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let ids: Vec<i64> = store
        .read(|tx| rules::networks(tx, None))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids.len(), n as usize);
    let mut best = std::time::Duration::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        store.write(|tx| import(tx, &doc, 2).map(|_| ())).unwrap();
        best = best.min(t.elapsed());
    }
    // Unchanged rules keep their numbers.
    let again: Vec<i64> = store
        .read(|tx| rules::networks(tx, None))
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(again, ids);
    best
}

/// Four times the rules cost about four times the time, far from the sixteen of a
/// quadratic import (a generous bound: the machine may be busy).
#[test]
fn import_is_linear_in_network_rules() {
    let small = import_time(2000);
    let large = import_time(8000);
    let ratio = large.as_secs_f64() / small.as_secs_f64().max(1e-6);
    assert!(
        ratio < 9.0,
        "2,000 rules: {small:?}, 8,000 rules: {large:?} (x{ratio:.1}; linear is about x4)"
    );
}

/// Import keeps its checks at scale: one duplicate among thousands of rules refuses the
/// whole document and changes nothing.
#[test]
fn a_duplicate_among_many_rules_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let mut doc = doc_with(&mut store, 3000);
    store.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let before = store.read(|tx| rules::networks(tx, None)).unwrap();
    doc.networks[2999].range = doc.networks[3].range.clone();
    doc.networks[2999].service = doc.networks[3].service.clone();
    doc.networks[0].note = "changed".into();
    let err = store
        .write(|tx| import(tx, &doc, 2).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("networks[2999]") && err.contains("listed twice"),
        "{err}"
    );
    assert_eq!(store.read(|tx| rules::networks(tx, None)).unwrap(), before);
}

/// A document of users with contacts and overrides, parsed from TOML.
fn users_doc(store: &mut Store, users: &str) -> Document {
    let base = to_toml(&store.read(|tx| export(tx)).unwrap()).unwrap();
    parse("test", &format!("{base}\n{users}")).unwrap()
}

/// Import writes only the users, contacts and overrides that differ: the result is exactly
/// what an import into an empty database gives, whatever was stored before (users gone,
/// contacts changed, moved or gone, a double-logon choice whose contact left, overrides
/// changed or gone); and an unchanged contact keeps its creation time.
#[test]
fn import_over_stored_users_equals_import_into_an_empty_store() {
    let first = r#"
[[users]]
name = "ann"
full_name = "Ann"
duo_user = "ann@corp.example"
[users.override]
mandatory = true
double_logon_contact = 2
[[users.contacts]]
seq = 1
email = "ann@example.com"
[[users.contacts]]
seq = 2
email = "ann2@example.com"

[[users]]
name = "bob"
[users.override]
exempt = true
[[users.contacts]]
seq = 1
email = "bob@example.com"

[[users]]
name = "cy"
[[users.contacts]]
seq = 1
email = "cy@example.com"
label = "old"
"#;
    let second = r#"
[[users]]
name = "ann"
full_name = "Ann B"
[users.override]
mandatory = true
[[users.contacts]]
seq = 1
email = "ann@example.com"

[[users]]
name = "cy"
enabled = false
duo_user = "cy"
[[users.contacts]]
seq = 1
email = "cy@example.com"
label = "new"
[[users.contacts]]
seq = 3
email = "cy3@example.com"

[[users]]
name = "dee"
[[users.contacts]]
seq = 1
email = "dee@example.com"
"#;
    let dir = tempfile::tempdir().unwrap();
    let (mut over, _) = Store::create(&dir.path().join("over.db")).unwrap();
    let (mut fresh, _) = Store::create(&dir.path().join("fresh.db")).unwrap();
    let a = users_doc(&mut over, first);
    let b = users_doc(&mut over, second);
    over.write(|tx| import(tx, &a, 100).map(|_| ())).unwrap();
    over.write(|tx| import(tx, &b, 200).map(|_| ())).unwrap();
    fresh.write(|tx| import(tx, &b, 200).map(|_| ())).unwrap();
    let got = over.read(|tx| export(tx)).unwrap();
    assert_eq!(got, fresh.read(|tx| export(tx)).unwrap());
    assert_eq!(
        got.users
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["ann", "cy", "dee"]
    );
    let created = |s: &Store, user: &str, seq: i64| -> i64 {
        s.conn()
            .query_row(
                "SELECT created FROM contacts WHERE user = ?1 AND seq = ?2",
                params![user, seq],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(created(&over, "ann", 1), 100, "unchanged: kept");
    assert_eq!(created(&over, "cy", 1), 100, "only the label changed: kept");
    assert_eq!(created(&over, "cy", 3), 200, "new");
    let duo: Vec<Option<&str>> = got.users.iter().map(|u| u.duo_user.as_deref()).collect();
    assert_eq!(duo, [None, Some("cy"), None], "Duo names set and cleared");
    // The same document again writes nothing that shows.
    over.write(|tx| import(tx, &b, 300).map(|_| ())).unwrap();
    assert_eq!(over.read(|tx| export(tx)).unwrap(), got);
    assert_eq!(created(&over, "cy", 3), 200);
}

/// A rule whose range stays keeps its number and takes the document's fields; an unchanged
/// one is left as it is; a rule the document drops is deleted.
#[test]
fn changed_rules_are_updated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let mut doc = doc_with(&mut store, 50);
    store.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let before = store.read(|tx| rules::networks(tx, None)).unwrap();
    doc.networks[10].note = "moved to the lab".into();
    doc.networks[10].require = !doc.networks[10].require;
    doc.networks[11].log = Some("none".into());
    doc.networks.pop();
    store.write(|tx| import(tx, &doc, 2).map(|_| ())).unwrap();
    let after = store.read(|tx| rules::networks(tx, None)).unwrap();
    assert_eq!(after.len(), 49);
    let find = |rules: &[rules::NetRule], range: &str| {
        rules.iter().find(|r| r.range == range).cloned().unwrap()
    };
    let (old10, new10) = (
        find(&before, &doc.networks[10].range),
        find(&after, &doc.networks[10].range),
    );
    assert_eq!(old10.id, new10.id);
    assert_eq!(
        (new10.note.as_str(), new10.require),
        ("moved to the lab", doc.networks[10].require)
    );
    assert_eq!(
        find(&after, &doc.networks[11].range).log.as_deref(),
        Some("none")
    );
    assert_eq!(
        find(&after, &doc.networks[12].range),
        find(&before, &doc.networks[12].range)
    );
}

/// A Duo user name in a document is checked like `user set --duo`: a hostile one refuses the
/// whole document, naming where it is; a good one survives the TOML round trip.
#[test]
fn duo_user_names_are_checked_on_import() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    for bad in ["a b", "", "\u{1b}[2J", "-x", &"d".repeat(101)] {
        let mut doc = users_doc(&mut store, "[[users]]\nname = \"ann\"\n");
        doc.users[0].duo_user = Some(bad.to_string());
        let err = store
            .write(|tx| import(tx, &doc, 1).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("users[0].duo_user") && err.contains("Duo user name"),
            "{bad:?}: {err}"
        );
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
    assert!(store.read(|tx| people::users(tx)).unwrap().is_empty());
    let doc = users_doc(
        &mut store,
        "[[users]]\nname = \"ann\"\nduo_user = \"ann.b@corp.example\"\n",
    );
    store.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let back = parse(
        "t",
        &to_toml(&store.read(|tx| export(tx)).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(
        back.users[0].duo_user.as_deref(),
        Some("ann.b@corp.example")
    );
}

/// Groups, users' groups, three-valued overrides and override factors (format 2).
const GROUPS: &str = r#"
[[groups]]
name = "admins"
description = "root holders"
mandatory = true
log = "all"
factors = "totp,backup"
unix_group = "wheel"

[[groups]]
name = "staff"
exempt = false
self_enroll = true

[[users]]
name = "ann"
group = "admins"
[users.override]
mandatory = false
factors = "passcode,totp"

[[users]]
name = "bob"
[users.override]
exempt = true
"#;

/// export → TOML → import into an empty store gives the same rules (groups, a user's own
/// group, overrides not set, set to no and set to yes, factors, the default group), and
/// importing them again changes nothing.
#[test]
fn groups_round_trip_and_a_second_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut a, _) = Store::create(&dir.path().join("a.db")).unwrap();
    let mut doc = users_doc(&mut a, GROUPS);
    doc.settings
        .insert("default_group".into(), toml::Value::String("staff".into()));
    a.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let text = to_toml(&a.read(|tx| export(tx)).unwrap()).unwrap();
    assert!(text.contains("format = 2"), "{text}");
    assert!(text.contains("unix_group = \"wheel\""), "{text}");
    assert!(text.contains("factors = \"totp,backup\""), "{text}");
    assert!(text.contains("default_group = \"staff\""), "{text}");
    let o = people::override_of(a.conn(), "ann").unwrap().unwrap();
    assert_eq!(
        (o.mandatory, o.exempt),
        (Some(false), None),
        "false is kept as no, absent as not set"
    );
    assert_eq!(
        o.factors.map(|f| f.to_string()).as_deref(),
        Some("passcode,totp")
    );
    let back = parse("a", &text).unwrap();
    let (mut b, _) = Store::create(&dir.path().join("b.db")).unwrap();
    b.write(|tx| import(tx, &back, 2).map(|_| ())).unwrap();
    let got = b.read(|tx| export(tx)).unwrap();
    assert_eq!(got, a.read(|tx| export(tx)).unwrap());
    let group: Option<String> = b
        .conn()
        .query_row("SELECT grp FROM user_policy WHERE user = 'bob'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(group.as_deref(), Some("staff"), "the default group applies");
    b.write(|tx| import(tx, &back, 3).map(|_| ())).unwrap();
    let again = b.read(|tx| export(tx)).unwrap();
    assert!(
        diff::diff(&got, &again).is_empty(),
        "{:?}",
        diff::diff(&got, &again)
    );
    let created: i64 = b
        .conn()
        .query_row(
            "SELECT created FROM groups WHERE name = 'admins'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(created, 2, "an unchanged group keeps its creation time");
}

/// A format-1 document: `mandatory = false` meant "not set" and is read so; keys of
/// format 2 are refused, naming the format; an unknown format is refused.
#[test]
fn format_1_documents_are_read_with_their_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let base = to_toml(&store.read(|tx| export(tx)).unwrap())
        .unwrap()
        .replace("format = 2", "format = 1");
    let v1 = format!(
        "{base}\n[[users]]\nname = \"ann\"\n[users.override]\nmandatory = false\nexempt = true\n"
    );
    let doc = parse("old.toml", &v1).unwrap();
    assert_eq!(doc.format, FORMAT);
    let o = doc.users[0].overrides.as_ref().unwrap();
    assert_eq!((o.mandatory, o.exempt), (None, Some(true)));
    store.write(|tx| import(tx, &doc, 1).map(|_| ())).unwrap();
    let stored = people::override_of(store.conn(), "ann").unwrap().unwrap();
    assert_eq!((stored.mandatory, stored.exempt), (None, Some(true)));
    for (extra, names) in [
        ("[[groups]]\nname = \"g\"\n", "[[groups]]"),
        (
            "[[users]]\nname = \"bob\"\ngroup = \"g\"\n",
            "users[0].group",
        ),
        (
            "[[users]]\nname = \"bob\"\n[users.override]\nfactors = \"totp\"\n",
            "users[0].override.factors",
        ),
    ] {
        let err = parse("old.toml", &format!("{base}\n{extra}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(names) && err.contains("format = 2"), "{err}");
    }
    let err = parse("new.toml", &base.replace("format = 1", "format = 3"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("format = 3 is not supported"), "{err}");
}

/// Bad groups refuse the whole document, naming where; nothing is written.
#[test]
fn bad_groups_refuse_the_document() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let g = |body: &str| format!("[[groups]]\nname = \"g\"\n{body}\n");
    let cases: Vec<(String, &str)> = vec![
        (g("factors = \"sms\""), "groups[0].factors"),
        (
            g("mandatory = true\nexempt = true"),
            "both mandatory and exempt",
        ),
        (g("log = \"loud\""), "groups[0].log"),
        (g("unix_group = \"a:b\""), "groups[0].unix_group"),
        (g("description = \"\\u001b[2J\""), "groups[0].description"),
        ("[[groups]]\nname = \"none\"\n".into(), "groups[0].name"),
        (format!("{}{}", g(""), g("")), "listed twice"),
        (
            format!(
                "{}[[groups]]\nname = \"h\"\nunix_group = \"w\"\n",
                g("unix_group = \"w\"")
            ),
            "already followed by group \"g\"",
        ),
        (
            "[[users]]\nname = \"ann\"\ngroup = \"nope\"\n".into(),
            "users[0].group",
        ),
        (
            format!(
                "{}[[users]]\nname = \"ann\"\n[users.override]\nfactors = \"all,x\"\n",
                g("")
            ),
            "users[0].override.factors",
        ),
    ];
    for (extra, needle) in cases {
        let doc = users_doc(&mut store, &extra);
        let err = store
            .write(|tx| import(tx, &doc, 1).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{extra}: {err}");
        assert!(!err.contains('\u{1b}'), "{err:?}");
    }
    let mut doc = users_doc(&mut store, "");
    doc.settings
        .insert("default_group".into(), toml::Value::String("ghost".into()));
    let err = store
        .write(|tx| import(tx, &doc, 1).map(|_| ()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("settings.default_group") && err.contains("ghost"),
        "{err}"
    );
    let n: i64 = store
        .conn()
        .query_row(
            "SELECT (SELECT count(*) FROM groups) + (SELECT count(*) FROM users)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 0);
}

/// A document may move a Unix group from one group to another, rename a user's group and
/// drop the old group (and the members resolved for it) in one import.
#[test]
fn unix_groups_move_and_dropped_groups_go() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let first = users_doc(&mut store, GROUPS);
    store.write(|tx| import(tx, &first, 1).map(|_| ())).unwrap();
    store
        .write(|tx| {
            tx.execute(
                "INSERT INTO unix_members (user, grp) VALUES ('cy', 'admins')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    // The document names only these groups and users (not those stored).
    let mut base = store.read(|tx| export(tx)).unwrap();
    base.groups.clear();
    base.users.clear();
    let second = parse(
        "second",
        &format!(
            "{}{}",
            to_toml(&base).unwrap(),
            r#"
[[groups]]
name = "ops"
unix_group = "wheel"

[[users]]
name = "ann"
group = "ops"
"#
        ),
    )
    .unwrap();
    let before = store.read(|tx| export(tx)).unwrap();
    store
        .write(|tx| import(tx, &second, 2).map(|_| ()))
        .unwrap();
    let after = store.read(|tx| export(tx)).unwrap();
    let names: Vec<&str> = after.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["ops"]);
    assert_eq!(after.groups[0].unix_group.as_deref(), Some("wheel"));
    assert_eq!(after.users[0].group.as_deref(), Some("ops"));
    let members: i64 = store
        .conn()
        .query_row("SELECT count(*) FROM unix_members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        members, 0,
        "members resolved for the dropped group went with it"
    );
    let d = diff::diff(&before, &after);
    let groups = d.sections.iter().find(|s| s.section == "groups").unwrap();
    assert_eq!((groups.added, groups.changed, groups.removed), (1, 0, 2));
    let users = d.sections.iter().find(|s| s.section == "users").unwrap();
    assert_eq!((users.added, users.changed, users.removed), (0, 1, 1));
    assert!(
        d.summary().contains("groups 1 added, 0 changed, 2 removed"),
        "{}",
        d.summary()
    );
}
