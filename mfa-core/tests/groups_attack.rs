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

/// A small deterministic generator (no dependency): xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Random orders of every command that decides a user's rules (users added and deleted,
/// own groups set and cleared, groups' overrides and factors changed, groups deleted, the
/// default group moved, followed Unix groups re-resolved with users in two of them, users'
/// own overrides): after each change, what the policy snapshot says of every name equals
/// what the database says (the module reads the first, falls back to the second), and a
/// user the view gives no group has all factors only when nothing narrows them.
#[test]
fn the_snapshot_never_disagrees_with_the_database_under_random_commands() {
    use mfa_core::store::people::OverrideChange;
    let users = ["ann", "bob", "cy", "dee"];
    let grps = ["ops", "dev", "svc"];
    let tri = [None, Some(false), Some(true)];
    let factor_sets = [None, Some("totp"), Some("passcode,backup"), Some("all")];
    // What the runs reached (so that the comparison is not of empty stores).
    let (mut applied, mut mandatory, mut exempt, mut narrowed, mut by_unix) = (0, 0, 0, 0, 0);
    for seed in 1..=12u64 {
        let d = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::create(&d.path().join("mfa.db")).unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        // Unix group membership as NSS would report it, changed by the steps.
        let mut unix: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for step in 0..120 {
            let op = rng.next() % 10;
            let u = *rng.pick(&users);
            let g = *rng.pick(&grps);
            let (m, e) = (*rng.pick(&tri), *rng.pick(&tri));
            let f = rng.pick(&factor_sets).map(|f| Factors::parse(f).unwrap());
            let members: Vec<&str> = users
                .iter()
                .copied()
                .filter(|_| rng.next().is_multiple_of(2))
                .collect();
            let what = format!("seed {seed} step {step} op {op} user {u} group {g}");
            // Refusals (a group in use, both mandatory and exempt...) are part of the game:
            // a refused change must change nothing either.
            let done = s.change("t", "random", |tx| {
                match op {
                    0 => people::add_user(tx, u, "", 1)?,
                    1 => people::delete_user(tx, u)?,
                    2 => {
                        groups::add(tx, g, &GroupChange::default(), 1)?;
                    }
                    3 => {
                        groups::set(
                            tx,
                            g,
                            &GroupChange {
                                mandatory: Some(m),
                                exempt: Some(e),
                                factors: Some(f),
                                ..GroupChange::default()
                            },
                        )?;
                    }
                    4 => groups::delete(tx, g)?,
                    5 => {
                        let to = if rng.next().is_multiple_of(3) {
                            None
                        } else {
                            Some(g)
                        };
                        groups::set_user_group(tx, u, to)?;
                    }
                    6 => {
                        let v = if rng.next().is_multiple_of(3) {
                            "none"
                        } else {
                            g
                        };
                        rules::set_setting(tx, "default_group", v)?;
                    }
                    7 => {
                        let unix_name = format!("unix-{g}");
                        let v = if rng.next().is_multiple_of(4) {
                            None
                        } else {
                            Some(unix_name)
                        };
                        groups::set(
                            tx,
                            g,
                            &GroupChange {
                                unix_group: Some(v),
                                ..GroupChange::default()
                            },
                        )?;
                    }
                    8 => {
                        unix.insert(g, members.clone());
                        let snapshot = unix.clone();
                        groups::sync_unix(tx, |name| {
                            let key = name.strip_prefix("unix-").unwrap_or(name);
                            Ok(snapshot
                                .get(key)
                                .map(|v| v.iter().map(|s| s.to_string()).collect()))
                        })?;
                    }
                    _ => {
                        people::set_override(
                            tx,
                            u,
                            &OverrideChange {
                                mandatory: Some(m),
                                exempt: Some(e),
                                factors: Some(f),
                                ..OverrideChange::default()
                            },
                        )?;
                    }
                }
                Ok(((), String::new()))
            });
            applied += usize::from(done.is_ok());
            by_unix += s
                .conn()
                .query_row(
                    "SELECT count(*) FROM user_policy WHERE grp_from = 'unix'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap();
            let snap = Snapshot::open(s.path())
                .unwrap_or_else(|d| panic!("{what}: snapshot damaged: {d:?}"))
                .unwrap_or_else(|| panic!("{what}: no snapshot"));
            for name in users {
                let db = auth::facts(s.conn(), name, "sshd", None)
                    .unwrap_or_else(|e| panic!("{what}: facts of {name}: {e}"))
                    .user;
                let from_snapshot = snap
                    .lookup(name)
                    .unwrap_or_else(|d| panic!("{what}: lookup of {name}: {d:?}"))
                    .map(|r| r.facts);
                assert_eq!(from_snapshot, db, "{what}: {name}");
                if let Some(f) = db {
                    assert!(!(f.mandatory && f.exempt), "{what}: {name} both");
                    mandatory += usize::from(f.mandatory);
                    exempt += usize::from(f.exempt);
                    narrowed += usize::from(f.factors != Factors::ALL);
                }
            }
        }
    }
    assert!(
        applied > 500 && mandatory > 100 && exempt > 100 && narrowed > 100 && by_unix > 100,
        "applied {applied}, mandatory {mandatory}, exempt {exempt}, narrowed {narrowed}, \
         by unix {by_unix}"
    );
}
