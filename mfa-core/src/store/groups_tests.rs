//! Tests of groups: precedence (user > group > global) for every override and every kind of
//! membership, agreed on by `user_policy`, the policy snapshot and the module's database
//! fallback; refusals; the Unix-group sync with a fake resolver.

use super::*;
use crate::policy::UserFacts;
use crate::settings::LogLevel;
use crate::store::people::{self, OverrideChange};
use crate::store::{Store, rules};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    (dir, s)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Membership {
    Own,
    Unix,
    Default,
    None,
}

/// One override's three states at one level: not set, value A, value B.
#[derive(Debug, Clone, Copy, PartialEq)]
enum V {
    Unset,
    A,
    B,
}

const FIELDS: [&str; 5] = ["mandatory", "exempt", "self_enroll", "log", "factors"];

fn user_change(field: &str, v: V) -> OverrideChange {
    let mut c = OverrideChange::default();
    let b = match v {
        V::Unset => None,
        V::A => Some(true),
        V::B => Some(false),
    };
    match field {
        "mandatory" => c.mandatory = Some(b),
        "exempt" => c.exempt = Some(b),
        "self_enroll" => c.self_enroll = Some(b),
        "log" => c.log = Some(log_of(v)),
        _ => c.factors = Some(factors_of_v(v)),
    }
    c
}

fn group_change(field: &str, v: V) -> GroupChange {
    let u = user_change(field, v);
    GroupChange {
        mandatory: u.mandatory,
        exempt: u.exempt,
        self_enroll: u.self_enroll,
        log: u.log,
        factors: u.factors,
        ..GroupChange::default()
    }
}

fn log_of(v: V) -> Option<String> {
    match v {
        V::Unset => None,
        V::A => Some("all".into()),
        V::B => Some("none".into()),
    }
}

fn factors_of_v(v: V) -> Option<Factors> {
    match v {
        V::Unset => None,
        V::A => Some(Factors::parse("passcode").unwrap()),
        V::B => Some(Factors::parse("totp,backup").unwrap()),
    }
}

/// The field's value in resolved user facts, as text.
fn fact(f: &UserFacts, field: &str) -> String {
    match field {
        "mandatory" => f.mandatory.to_string(),
        "exempt" => f.exempt.to_string(),
        "self_enroll" => format!("{:?}", f.self_enroll),
        "log" => format!("{:?}", f.log),
        _ => f.factors.to_string(),
    }
}

/// What the field must resolve to: the user's, else the group's (when the user has the
/// group), else the global behaviour.
fn expected(field: &str, user: V, group: V, m: Membership) -> String {
    let v = match (user, group) {
        (V::Unset, g) if m != Membership::None => g,
        (u, _) => u,
    };
    match field {
        "mandatory" | "exempt" => (v == V::A).to_string(),
        "self_enroll" => format!(
            "{:?}",
            match v {
                V::Unset => None,
                V::A => Some(true),
                V::B => Some(false),
            }
        ),
        "log" => format!("{:?}", log_of(v).map(|l| LogLevel::parse(&l).unwrap())),
        _ => factors_of_v(v).unwrap_or(Factors::ALL).to_string(),
    }
}

fn expected_source(user: V, group: V, m: Membership) -> &'static str {
    match (user, group, m) {
        (V::A | V::B, _, _) => "user",
        (V::Unset, V::A | V::B, mm) if mm != Membership::None => "group",
        _ => "default",
    }
}

/// Every override × user {unset, A, B} × group {unset, A, B} × membership {own, unix,
/// default, none}: user_policy (through `provenance`), the snapshot a login reads and the
/// module's database fallback agree, and the source `user show` names is right.
#[test]
fn precedence_exhaustive() {
    let (dir, mut s) = store();
    let db = dir.path().join("mfa.db");
    s.change("t", "setup", |tx| {
        people::add_user(tx, "u", "", 1)?;
        add(
            tx,
            "g",
            &GroupChange {
                unix_group: Some(Some("ux".into())),
                ..GroupChange::default()
            },
            1,
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    let mut checked = 0;
    for field in FIELDS {
        for m in [
            Membership::Own,
            Membership::Unix,
            Membership::Default,
            Membership::None,
        ] {
            for user in [V::Unset, V::A, V::B] {
                for group in [V::Unset, V::A, V::B] {
                    s.change("t", "combo", |tx| {
                        tx.execute("DELETE FROM overrides", [])?;
                        tx.execute("UPDATE users SET group_name = NULL", [])?;
                        tx.execute("DELETE FROM unix_members", [])?;
                        rules::reset_setting(tx, "default_group")?;
                        let reset = GroupChange {
                            mandatory: Some(None),
                            exempt: Some(None),
                            self_enroll: Some(None),
                            log: Some(None),
                            factors: Some(None),
                            ..GroupChange::default()
                        };
                        set(tx, "g", &reset)?;
                        set(tx, "g", &group_change(field, group))?;
                        people::set_override(tx, "u", &user_change(field, user))?;
                        match m {
                            Membership::Own => {
                                set_user_group(tx, "u", Some("g"))?;
                            }
                            Membership::Unix => {
                                sync_unix(tx, |_| Ok(Some(vec!["u".to_string()])))?;
                            }
                            Membership::Default => rules::set_setting(tx, "default_group", "g")?,
                            Membership::None => {}
                        }
                        Ok(((), String::new()))
                    })
                    .unwrap();
                    let what = format!("{field}: user {user:?}, group {group:?}, {m:?}");
                    let want = expected(field, user, group, m);
                    let snap = crate::snapshot::Snapshot::open(&db)
                        .unwrap()
                        .unwrap()
                        .lookup("u")
                        .unwrap()
                        .unwrap();
                    assert_eq!(fact(&snap.facts, field), want, "snapshot, {what}");
                    let facts = crate::store::auth::facts(s.conn(), "u", "sshd", None)
                        .unwrap()
                        .user
                        .unwrap();
                    assert_eq!(fact(&facts, field), want, "database fallback, {what}");
                    let p = provenance(s.conn(), "u").unwrap().unwrap();
                    let (shown, src) = match field {
                        "mandatory" => (p.mandatory.value.to_string(), &p.mandatory.source),
                        "exempt" => (p.exempt.value.to_string(), &p.exempt.source),
                        "self_enroll" => (
                            format!("{:?}", facts.self_enroll.map(|_| p.self_enroll.value)),
                            &p.self_enroll.source,
                        ),
                        "log" => (
                            format!(
                                "{:?}",
                                facts.log.map(|_| LogLevel::parse(&p.log.value).unwrap())
                            ),
                            &p.log.source,
                        ),
                        _ => (p.factors.value.clone(), &p.factors.source),
                    };
                    assert_eq!(shown, want, "provenance, {what}");
                    assert_eq!(src.from, expected_source(user, group, m), "source, {what}");
                    if src.from == "group" {
                        assert_eq!(src.group.as_deref(), Some("g"));
                        assert_eq!(src.text(), "group g");
                    }
                    let gfrom = match m {
                        Membership::Own => "user",
                        Membership::Unix => "unix",
                        Membership::Default => "default",
                        Membership::None => "none",
                    };
                    assert_eq!(p.group.from, gfrom, "{what}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 5 * 4 * 3 * 3);
}

/// A user's mandatory beats their group's exempt and the other way round (and a group's
/// one beats the other's unset at the user level only through the user's own setting).
#[test]
fn mandatory_and_exempt_across_levels() {
    let (_dir, mut s) = store();
    let cases = [
        // ((user mandatory, user exempt), (group mandatory, group exempt))
        //   -> (mandatory, exempt, where mandatory comes from, where exempt comes from)
        (
            (Some(true), None),
            (None, Some(true)),
            (true, false, "user", "user"),
        ),
        (
            (None, Some(true)),
            (Some(true), None),
            (false, true, "user", "user"),
        ),
        // The user says only "not mandatory": the group's mandatory still says "not exempt".
        (
            (Some(false), None),
            (Some(true), None),
            (false, false, "user", "group"),
        ),
        (
            (None, None),
            (None, Some(true)),
            (false, true, "group", "group"),
        ),
        (
            (None, Some(false)),
            (None, Some(true)),
            (false, false, "group", "user"),
        ),
    ];
    for (i, ((um, ue), (gm, ge), (m, e, mfrom, efrom))) in cases.into_iter().enumerate() {
        let user = format!("u{i}");
        let group = format!("g{i}");
        s.change("t", "case", |tx| {
            people::add_user(tx, &user, "", 1)?;
            add(
                tx,
                &group,
                &GroupChange {
                    mandatory: Some(gm),
                    exempt: Some(ge),
                    ..GroupChange::default()
                },
                1,
            )?;
            set_user_group(tx, &user, Some(&group))?;
            people::set_override(
                tx,
                &user,
                &OverrideChange {
                    mandatory: Some(um),
                    exempt: Some(ue),
                    ..OverrideChange::default()
                },
            )?;
            Ok(((), String::new()))
        })
        .unwrap();
        let p = provenance(s.conn(), &user).unwrap().unwrap();
        assert_eq!((p.mandatory.value, p.exempt.value), (m, e), "case {i}");
        assert_eq!(p.mandatory.source.from, mfrom, "case {i}");
        assert_eq!(p.exempt.source.from, efrom, "case {i}");
    }
}

#[test]
fn refusals_leave_the_store_alone() {
    let (_dir, s) = store();
    let c = s.conn();
    people::add_user(c, "ann", "", 1).unwrap();
    assert!(matches!(
        add(c, "none", &GroupChange::default(), 1),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        add(c, "-x", &GroupChange::default(), 1),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        add(c, "a b", &GroupChange::default(), 1),
        Err(Error::Invalid(_))
    ));
    let both = GroupChange {
        mandatory: Some(Some(true)),
        exempt: Some(Some(true)),
        ..GroupChange::default()
    };
    add(c, "ops", &GroupChange::default(), 1).unwrap();
    assert!(matches!(set(c, "ops", &both), Err(Error::Conflict(_))));
    assert!(matches!(
        add(c, "ops", &GroupChange::default(), 1),
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        set(c, "nope", &GroupChange::default()),
        Err(Error::NotFound(_))
    ));
    let bad_desc = GroupChange {
        description: Some("a\u{7}b".into()),
        ..GroupChange::default()
    };
    assert!(matches!(set(c, "ops", &bad_desc), Err(Error::Invalid(_))));
    for bad in ["", "a:b", "a,b", "-g", "x\ny", "none"] {
        let ch = GroupChange {
            unix_group: Some(Some(bad.into())),
            ..GroupChange::default()
        };
        assert!(
            matches!(set(c, "ops", &ch), Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }
    // A Unix group is followed by one group at most.
    let follow = |g: &str| GroupChange {
        unix_group: Some(Some(g.into())),
        ..GroupChange::default()
    };
    set(c, "ops", &follow("wheel")).unwrap();
    add(c, "dev", &GroupChange::default(), 1).unwrap();
    let e = set(c, "dev", &follow("wheel")).unwrap_err();
    assert!(e.to_string().contains("ops"), "{e}");
    // Deleting: refused while a user names it, while it is the default, while it follows a
    // Unix group with members.
    set_user_group(c, "ann", Some("dev")).unwrap();
    let e = delete(c, "dev").unwrap_err();
    assert!(
        e.to_string().contains("1 user(s)") && e.to_string().contains("--group"),
        "{e}"
    );
    assert!(matches!(
        set_user_group(c, "ann", Some("nope")),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        set_user_group(c, "bob", Some("dev")),
        Err(Error::NotFound(_))
    ));
    assert!(set_user_group(c, "ann", None).unwrap());
    assert!(!set_user_group(c, "ann", None).unwrap());
    rules::set_setting(c, "default_group", "dev").unwrap();
    let e = delete(c, "dev").unwrap_err();
    assert!(e.to_string().contains("default_group"), "{e}");
    rules::reset_setting(c, "default_group").unwrap();
    sync_unix(c, |_| Ok(Some(vec!["ann".into()]))).unwrap();
    let e = delete(c, "ops").unwrap_err();
    assert!(e.to_string().contains("--unix-group none"), "{e}");
    assert_eq!(list(c).unwrap().len(), 2);
    delete(c, "dev").unwrap();
    set(
        c,
        "ops",
        &GroupChange {
            unix_group: Some(None),
            ..GroupChange::default()
        },
    )
    .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM unix_members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        n, 0,
        "clearing the Unix group drops its members in the same change"
    );
    delete(c, "ops").unwrap();
    assert!(list(c).unwrap().is_empty());
    assert!(matches!(delete(c, "ops"), Err(Error::NotFound(_))));
}

#[test]
fn unix_sync_keeps_unknown_and_failed_groups() {
    let (_dir, s) = store();
    let c = s.conn();
    for u in ["ann", "bob"] {
        people::add_user(c, u, "", 1).unwrap();
    }
    let follow = |g: &str| GroupChange {
        unix_group: Some(Some(g.into())),
        ..GroupChange::default()
    };
    add(c, "a-admins", &follow("wheel"), 1).unwrap();
    add(c, "b-staff", &follow("staff"), 1).unwrap();
    let r = sync_unix(c, |g| {
        Ok(Some(match g {
            "wheel" => vec!["ann".into(), "zed".into(), "bad name".into(), "ann".into()],
            _ => vec!["ann".into(), "bob".into()],
        }))
    })
    .unwrap();
    assert!(r.changed());
    assert_eq!(r.groups[0].added, ["ann", "zed"]);
    assert_eq!(r.groups[0].without_record, ["zed"]);
    assert_eq!(r.groups[0].invalid, ["bad name"]);
    assert_eq!(r.groups[1].added, ["ann", "bob"]);
    let w = r.warnings().join("\n");
    assert!(
        w.contains("zed") && w.contains("user import --unix-group wheel"),
        "{w}"
    );
    // In two followed groups: the first by name governs; `user show` names the other.
    let p = provenance(c, "ann").unwrap().unwrap();
    assert_eq!(p.group.value.as_deref(), Some("a-admins"));
    assert_eq!(p.group.from, "unix");
    assert_eq!(p.group.unix_group.as_deref(), Some("wheel"));
    assert_eq!(p.group.also_in, ["b-staff"]);
    assert_eq!(get(c, "b-staff").unwrap().unwrap().members.unix, 1);
    // The sync says so too, naming the one that governs (zed has no record: not listed).
    assert_eq!(
        r.several,
        [(
            "ann".to_string(),
            vec!["a-admins".to_string(), "b-staff".to_string()]
        )]
    );
    assert!(
        w.contains("1 user(s) are in more than one followed Unix group")
            && w.contains("ann (a-admins over b-staff)"),
        "{w}"
    );
    // Unknown, then failing: the rows stay, the report says so.
    let r = sync_unix(c, |g| match g {
        "wheel" => Ok(None),
        _ => Err(Error::Invalid("ldap down".into())),
    })
    .unwrap();
    assert!(!r.changed());
    assert!(!r.groups[0].resolved && r.groups[0].members == 2);
    assert_eq!(r.groups[1].error.as_deref(), Some("ldap down"));
    let w = r.warnings().join("\n");
    assert!(
        w.contains("could not be resolved") && w.contains("ldap down"),
        "{w}"
    );
    assert_eq!(
        member_names(c, "a-admins").unwrap().len(),
        1,
        "zed has no record"
    );
    // Membership changes are picked up.
    let r = sync_unix(c, |_| Ok(Some(vec!["bob".into()]))).unwrap();
    assert_eq!(r.groups[0].removed, ["ann", "zed"]);
    assert_eq!(r.groups[1].removed, ["ann"]);
    assert_eq!(provenance(c, "ann").unwrap().unwrap().group.from, "none");
    assert!(
        r.summary().contains("a-admins (wheel): 1 member(s), +1 -2"),
        "{}",
        r.summary()
    );
}

#[test]
fn damaged_factors_are_an_error_not_all() {
    let (_dir, s) = store();
    let c = s.conn();
    people::add_user(c, "ann", "", 1).unwrap();
    add(c, "g", &GroupChange::default(), 1).unwrap();
    set_user_group(c, "ann", Some("g")).unwrap();
    // The CHECK keeps 0 out; a store written with checks off could hold it.
    c.execute_batch("PRAGMA ignore_check_constraints = ON; UPDATE groups SET factors = 0;")
        .unwrap();
    assert!(provenance(c, "ann").is_err());
    assert!(list(c).is_err());
}

#[test]
fn plan_reports_without_writing() {
    let (_dir, s) = store();
    let c = s.conn();
    people::add_user(c, "ann", "", 1).unwrap();
    let follow = GroupChange {
        unix_group: Some(Some("wheel".into())),
        ..GroupChange::default()
    };
    add(c, "ops", &follow, 1).unwrap();
    let resolve = |_: &str| Ok(Some(vec!["ann".to_string(), "zed".to_string()]));
    let plan = plan_unix(c, resolve).unwrap();
    assert!(plan.changed());
    assert_eq!(plan.groups[0].added, ["ann", "zed"]);
    assert_eq!(plan.groups[0].without_record, ["zed"]);
    let n: i64 = c
        .query_row("SELECT count(*) FROM unix_members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "a plan writes nothing");
    assert_eq!(
        sync_unix(c, resolve).unwrap(),
        plan,
        "the sync does what the plan said"
    );
    assert!(!plan_unix(c, resolve).unwrap().changed());
}
