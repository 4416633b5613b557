//! Attack tests of issue 15's groups (helper X's review): a hand-edited store (factors out
//! of 1..15 on a user or a group, written past the CHECK constraints) is never read as "every
//! factor" nor as "no second factor", neither from the database (the module's fallback) nor
//! from the policy snapshot; and the order of administrative commands around a group's
//! deletion never leaves its members with weaker rules than the group gave them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mfa_core::policy::Factors;
use mfa_core::snapshot::Snapshot;
use mfa_core::store::groups::{self, GroupChange};
use mfa_core::store::{Store, auth, people, rules};

fn store(dir: &std::path::Path) -> Store {
    let (mut s, _) = Store::create(&dir.join("mfa.db")).unwrap();
    s.change("t", "setup", |tx| {
        people::add_user(tx, "ann", "", 1)?;
        groups::add(
            tx,
            "ops",
            &GroupChange {
                mandatory: Some(Some(true)),
                factors: Some(Some(Factors::parse("totp").unwrap())),
                ..GroupChange::default()
            },
            1,
        )?;
        groups::set_user_group(tx, "ann", Some("ops"))?;
        Ok(((), String::new()))
    })
    .unwrap();
    s
}

/// A hand edit past the CHECK constraints, made as a change (so the snapshot is rewritten
/// from it).
fn hand_edit(s: &mut Store, sql: &str) {
    let sql = sql.to_string();
    s.change("root", "hand edit", move |tx| {
        tx.execute_batch("PRAGMA ignore_check_constraints = ON")?;
        tx.execute_batch(&sql)?;
        tx.execute_batch("PRAGMA ignore_check_constraints = OFF")?;
        Ok(((), String::new()))
    })
    .unwrap();
}

/// What the snapshot says of ann: `Ok(factors)` or `Err` (damage: the module then asks the
/// database, and on failure applies the fail mode).
fn snapshot_factors(s: &Store) -> Result<Factors, String> {
    let snap = Snapshot::open(s.path())
        .map_err(|d| format!("{d:?}"))?
        .ok_or("no snapshot")?;
    match snap.lookup("ann") {
        Ok(Some(r)) => Ok(r.facts.factors),
        Ok(None) => Err("unknown".into()),
        Err(d) => Err(format!("{d:?}")),
    }
}

#[test]
fn stored_factors_out_of_range_are_damage_never_all() {
    for bad in ["0", "16", "99", "-1", "255", "271"] {
        for table in ["overrides", "groups"] {
            let d = tempfile::tempdir().unwrap();
            let mut s = store(d.path());
            let sql = if table == "overrides" {
                format!("INSERT INTO overrides (user, factors) VALUES ('ann', {bad})")
            } else {
                format!("UPDATE groups SET factors = {bad} WHERE name = 'ops'")
            };
            hand_edit(&mut s, &sql);
            let db = auth::facts(s.conn(), "ann", "sshd", None);
            assert!(
                db.is_err(),
                "{table}.factors = {bad}: the database fallback read {:?}",
                db.map(|f| f.user.map(|u| u.factors))
            );
            let snap = snapshot_factors(&s);
            assert!(
                snap.is_err(),
                "{table}.factors = {bad}: the snapshot read {snap:?}"
            );
        }
    }
}

/// Deleting the group is refused while it governs anyone, in whichever order the commands
/// come: as ann's own group, as the default group, as a followed Unix group's members.
#[test]
fn a_governing_group_cannot_be_deleted_by_any_order_of_commands() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    let del = |s: &mut Store| {
        s.change("t", "group del", |tx| {
            groups::delete(tx, "ops")?;
            Ok(((), String::new()))
        })
    };
    assert!(del(&mut s).is_err(), "ann's own group");
    // ann leaves it, but it becomes the default group first.
    s.change("t", "x", |tx| {
        rules::set_setting(tx, "default_group", "ops")?;
        groups::set_user_group(tx, "ann", None)?;
        Ok(((), String::new()))
    })
    .unwrap();
    assert!(del(&mut s).is_err(), "the default group");
    let f = auth::facts(s.conn(), "ann", "sshd", None).unwrap();
    let u = f.user.unwrap();
    assert!(u.mandatory, "the default group still governs ann");
    assert_eq!(u.factors, Factors::parse("totp").unwrap());
    assert_eq!(snapshot_factors(&s), Ok(Factors::parse("totp").unwrap()));
}

/// Group names that differ only in case (finding 8, low: an administrator's typo): "Ops"
/// mandatory and "ops" exempt could both exist, and `user set alice --group ops` made alice
/// exempt when "Ops" was meant. The second name is refused.
#[test]
fn group_names_differing_only_in_case_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    for name in ["OPS", "Ops", "oPs"] {
        let r = s.change("t", "group add", |tx| {
            groups::add(
                tx,
                name,
                &GroupChange {
                    exempt: Some(Some(true)),
                    ..GroupChange::default()
                },
                1,
            )?;
            Ok(((), String::new()))
        });
        let e = r.expect_err(name);
        assert!(matches!(e, mfa_core::Error::Conflict(_)), "{name}: {e}");
        assert!(e.to_string().contains("\"ops\""), "{e}");
    }
    let names: Vec<String> = groups::list(s.conn())
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names, ["ops"]);
}
