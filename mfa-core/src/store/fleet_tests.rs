//! Tests of the local half of a fleet: what a write queues, and replicas that apply the
//! same central changes converging, with hostile and conflicting changes among them.

use super::fleet::*;
use super::{Store, people, rules};
use crate::contact::Contact;
use crate::snapshot::Snapshot;

struct Host {
    _dir: tempfile::TempDir,
    store: Store,
}

fn host(name: &str) -> Host {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    store.write(|tx| join(tx, name).map(|_| ())).unwrap();
    Host { _dir: dir, store }
}

/// A change through the audited path, as mfa-admin makes it.
fn change(h: &mut Host, f: impl FnOnce(&rusqlite::Transaction<'_>) -> crate::Result<()>) {
    h.store
        .change("test", "test", |tx| f(tx).map(|()| ((), String::new())))
        .unwrap();
}

/// A central store: the changes in the order it numbered them.
#[derive(Default)]
struct Centre {
    log: Vec<Central>,
}

impl Centre {
    /// Moves a host's outbox here (as mfa-fleetd ships it).
    fn ship(&mut self, h: &mut Host) {
        let out = outbox(h.store.conn(), 1000).unwrap();
        for o in &out {
            let c = decode(&o.body).unwrap();
            self.log.push(Central {
                generation: self.log.len() as i64 + 1,
                origin: host(h).unwrap_or_default(),
                incarnation: incarnation(h.store.conn()).unwrap(),
                origin_id: o.id,
                schema: c.schema,
                body: o.body.clone(),
            });
        }
        if let Some(last) = out.last() {
            h.store.fleet_shipped(last.id).unwrap();
        }
        fn host(h: &Host) -> Option<String> {
            super::fleet::host(h.store.conn()).unwrap()
        }
    }

    fn push_raw(&mut self, schema: i64, body: &[u8]) {
        self.log.push(Central {
            generation: self.log.len() as i64 + 1,
            origin: "evil".into(),
            incarnation: "evil".into(),
            origin_id: self.log.len() as i64,
            schema,
            body: body.to_vec(),
        });
    }

    fn follow(&self, h: &mut Host) -> Applied {
        h.store.fleet_apply(&self.log, false).unwrap()
    }
}

/// The replicated tables' rows, as one comparable text.
fn state(h: &Host) -> String {
    let c = full_state(h.store.conn()).unwrap();
    serde_json::to_string(&c.ops).unwrap()
}

#[test]
fn a_single_machine_queues_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    s.change("t", "t", |tx| {
        people::add_user(tx, "ann", "Ann", 1).map(|()| ((), String::new()))
    })
    .unwrap();
    assert_eq!(outbox_len(s.conn()).unwrap(), 0);
}

#[test]
fn a_change_queues_its_rows_not_the_logs() {
    let mut a = host("a");
    change(&mut a, |tx| {
        people::add_user(tx, "ann", "Ann", 1)?;
        people::add_contact(tx, "ann", &Contact::email("ann@example.com")?, "", None, 1)?;
        Ok(())
    });
    let out = outbox(a.store.conn(), 10).unwrap();
    assert_eq!(out.len(), 1, "one transaction, one change");
    let c = decode(&out[0].body).unwrap();
    let tables: Vec<&str> = c.ops.iter().map(|o| o.t.as_str()).collect();
    assert_eq!(tables, ["users", "contacts"], "parents first, no audit_log");
    assert_eq!(c.ops[0].k, vec![Val::Text("ann".into())]);
    let row = c.ops[1].r.as_ref().unwrap();
    assert_eq!(row["address"], Val::Text("ann@example.com".into()));
    // A write that touches no replicated table queues nothing.
    a.store
        .write(|tx| super::logs::audit(tx, "t", "x", "y"))
        .unwrap();
    assert_eq!(outbox_len(a.store.conn()).unwrap(), 1);
}

#[test]
fn replicas_converge_through_every_kind_of_row() {
    let (mut a, mut b, mut c) = (host("a"), host("b"), host("c"));
    let mut centre = Centre::default();
    change(&mut a, |tx| {
        rules::set_setting(tx, "enabled", "on")?;
        rules::set_service(tx, "sshd", "totp")?;
        people::add_carrier(tx, "Acme", "sms.acme.example")?;
        for u in ["ann", "bob", "cy"] {
            people::add_user(tx, u, "", 1)?;
        }
        people::add_contact(tx, "bob", &Contact::email("bob@example.com")?, "", None, 1)?;
        tx.execute(
            "INSERT INTO backup_codes (user, hash, created) VALUES ('bob', x'00FF10', 1), ('bob', x'ABCD', 1)",
            [],
        )?;
        tx.execute(
            "INSERT INTO totp (user, secret, algorithm, digits, created) VALUES ('ann', x'0102', 'sha1', 6, 1)",
            [],
        )?;
        Ok(())
    });
    centre.ship(&mut a);
    // B uses a backup code (a login deletes its row), C deletes a user meanwhile.
    centre.follow(&mut b);
    centre.follow(&mut c);
    b.store
        .write(|tx| {
            tx.execute("DELETE FROM backup_codes WHERE hash = x'00FF10'", [])?;
            Ok(())
        })
        .unwrap();
    change(&mut c, |tx| people::delete_user(tx, "cy"));
    centre.ship(&mut b);
    centre.ship(&mut c);
    for h in [&mut a, &mut b, &mut c] {
        let done = centre.follow(h);
        assert!(done.skipped.is_empty(), "{:?}", done.skipped);
        assert_eq!(done.generation, 3);
    }
    assert_eq!(state(&a), state(&b));
    assert_eq!(state(&a), state(&c));
    let left: i64 = a
        .store
        .conn()
        .query_row("SELECT count(*) FROM backup_codes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1, "the used code is gone on every host");
    assert!(people::user(a.store.conn(), "cy").unwrap().is_none());
    // Each replica's snapshot says what its database says.
    for h in [&a, &b, &c] {
        let snap = Snapshot::open(h.store.path()).unwrap().unwrap();
        assert!(snap.lookup("bob").unwrap().is_some());
        assert!(snap.lookup("cy").unwrap().is_none());
    }
}

#[test]
fn a_lockout_on_one_host_reaches_the_others_lockouts_file() {
    let (mut a, mut b) = (host("a"), host("b"));
    let mut centre = Centre::default();
    change(&mut a, |tx| people::add_user(tx, "ann", "", 1));
    centre.ship(&mut a);
    centre.follow(&mut b);
    b.store
        .policy_write(false, |tx| {
            super::auth::record_lockout(tx, "ann", 5, 100, 4_000_000_000)?;
            Ok(((), true))
        })
        .unwrap();
    centre.ship(&mut b);
    centre.follow(&mut a);
    let snap = Snapshot::open(a.store.path()).unwrap().unwrap();
    let facts = snap.facts("ann", "sshd", None);
    assert_eq!(facts.locked_until, 4_000_000_000);
}

#[test]
fn the_central_order_decides_a_conflict_on_every_host() {
    let (mut a, mut b) = (host("a"), host("b"));
    let mut centre = Centre::default();
    change(&mut a, |tx| people::add_user(tx, "ann", "first", 1));
    centre.ship(&mut a);
    centre.follow(&mut b);
    // Both change ann's name before either hears of the other; A's arrives first.
    change(&mut a, |tx| {
        tx.execute("UPDATE users SET full_name = 'by a' WHERE name = 'ann'", [])?;
        Ok(())
    });
    change(&mut b, |tx| {
        tx.execute("UPDATE users SET full_name = 'by b' WHERE name = 'ann'", [])?;
        Ok(())
    });
    centre.ship(&mut a);
    // B follows before shipping: its own pending change stays on top.
    centre.follow(&mut b);
    assert_eq!(
        people::user(b.store.conn(), "ann")
            .unwrap()
            .unwrap()
            .full_name,
        "by b"
    );
    centre.ship(&mut b);
    centre.follow(&mut a);
    centre.follow(&mut b);
    for h in [&a, &b] {
        assert_eq!(
            people::user(h.store.conn(), "ann")
                .unwrap()
                .unwrap()
                .full_name,
            "by b"
        );
    }
    assert_eq!(state(&a), state(&b));
}

#[test]
fn a_change_that_cannot_apply_is_skipped_whole_everywhere() {
    let (mut a, mut b) = (host("a"), host("b"));
    let mut centre = Centre::default();
    change(&mut a, |tx| people::add_user(tx, "ann", "", 1));
    centre.ship(&mut a);
    centre.follow(&mut b);
    // B deletes ann; A adds her a contact and a user before hearing of it.
    change(&mut b, |tx| people::delete_user(tx, "ann"));
    change(&mut a, |tx| {
        people::add_user(tx, "zed", "", 1)?;
        people::add_contact(tx, "ann", &Contact::email("ann@example.com")?, "", None, 1)?;
        Ok(())
    });
    centre.ship(&mut b);
    centre.ship(&mut a);
    for h in [&mut a, &mut b] {
        let done = centre.follow(h);
        assert_eq!(done.skipped.len(), 1, "{:?}", done.skipped);
        assert_eq!(done.skipped[0].0, 3);
    }
    assert_eq!(state(&a), state(&b));
    assert!(
        people::user(a.store.conn(), "zed").unwrap().is_none(),
        "all or nothing"
    );
}

#[test]
fn hostile_changes_are_skipped_and_touch_nothing() {
    let mut a = host("a");
    change(&mut a, |tx| people::add_user(tx, "ann", "", 1));
    let before = state(&a);
    let mut centre = Centre::default();
    let hostile: Vec<Vec<u8>> = vec![
        b"not json".to_vec(),
        br#"{"v":2,"schema":8,"ops":[]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"sqlite_master","k":[{"text":"x"}],"r":null}]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"meta","k":[{"text":"passcode_key"}],"r":null}]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"users","k":[{"text":"ann"}],"r":{"name":{"text":"ann"},"enabled\" = 0; --":{"int":1}}}]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"users","k":[{"text":"ann"},{"text":"x"}],"r":null}]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"backup_codes","k":[{"text":"ann"},{"blob":"XYZ"}],"r":null}]}"#.to_vec(),
        br#"{"v":1,"schema":8,"ops":[{"t":"users","k":[{"text":"ann"}],"r":{"name":{"text":"ann"},"enabled":{"int":7}}}]}"#.to_vec(),
        vec![b'['; 100_000],
    ];
    for h in &hostile {
        centre.push_raw(8, h);
    }
    let done = centre.follow(&mut a);
    assert_eq!(done.applied, 0);
    assert_eq!(done.skipped.len(), hostile.len(), "{:?}", done.skipped);
    assert_eq!(done.generation, hostile.len() as i64, "skipped, not stuck");
    assert_eq!(state(&a), before);
    let key: i64 = a
        .store
        .conn()
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'passcode_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(key, 1);
}

#[test]
fn a_change_of_a_newer_schema_stops_the_host_there() {
    let mut a = host("a");
    let mut centre = Centre::default();
    centre.push_raw(
        super::SCHEMA_VERSION + 1,
        br#"{"v":1,"schema":99,"ops":[]}"#,
    );
    let mut b = host("b");
    change(&mut b, |tx| people::add_user(tx, "late", "", 1));
    centre.ship(&mut b);
    let done = centre.follow(&mut a);
    assert_eq!(done.newer, Some((1, super::SCHEMA_VERSION + 1)));
    assert_eq!(done.generation, 0, "nothing after it either");
    assert!(people::user(a.store.conn(), "late").unwrap().is_none());
}

#[test]
fn joining_takes_the_fleets_rules_whole() {
    let mut a = host("a");
    change(&mut a, |tx| {
        people::add_user(tx, "ann", "", 1)?;
        tx.execute("DELETE FROM carriers WHERE name = 'Verizon'", [])?;
        Ok(())
    });
    let base = encode(&full_state(a.store.conn()).unwrap()).unwrap();
    // B has rules of its own from before it joined (no outbox then).
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let mut b = Host { _dir: dir, store };
    change(&mut b, |tx| people::add_user(tx, "local-only", "", 1));
    b.store.write(|tx| join(tx, "b").map(|_| ())).unwrap();
    assert_eq!(outbox_len(b.store.conn()).unwrap(), 0);
    let central = vec![Central {
        generation: 1,
        origin: "a".into(),
        incarnation: "a".into(),
        origin_id: 1,
        schema: super::SCHEMA_VERSION,
        body: base,
    }];
    let done = b.store.fleet_apply(&central, true).unwrap();
    assert_eq!(done.applied, 1);
    assert_eq!(state(&a), state(&b));
    assert!(
        people::user(b.store.conn(), "local-only")
            .unwrap()
            .is_none()
    );
}

/// A host's Unix group members (its own, not replicated) survive its own group change
/// being undone and applied back, another host's change, and a reset; a group the fleet
/// deletes takes its members with it.
#[test]
fn unix_group_members_stay_through_applying() {
    let mut centre = Centre::default();
    let mut a = host("a");
    let mut b = host("b");
    let members = |h: &Host| -> Vec<(String, String)> {
        let mut stmt = h
            .store
            .conn()
            .prepare("SELECT user, grp FROM unix_members ORDER BY user, grp")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    change(&mut a, |tx| {
        tx.execute(
            "INSERT INTO groups (name, created) VALUES ('ops', 1), ('dev', 1)",
            [],
        )?;
        tx.execute(
            "INSERT INTO unix_members (user, grp) VALUES ('ann', 'ops'), ('bob', 'dev')",
            [],
        )?;
        Ok(())
    });
    let want = vec![
        ("ann".to_string(), "ops".to_string()),
        ("bob".to_string(), "dev".to_string()),
    ];
    let mut want = want;
    want.sort();
    // A's own change comes back from the store (undone, then applied).
    centre.ship(&mut a);
    centre.follow(&mut a);
    assert_eq!(members(&a), want);
    // B changes a group; A applies it with a change of its own pending.
    centre.follow(&mut b);
    change(&mut b, |tx| {
        tx.execute("UPDATE groups SET description = 'x' WHERE name = 'ops'", [])?;
        Ok(())
    });
    centre.ship(&mut b);
    change(&mut a, |tx| {
        tx.execute("UPDATE groups SET description = 'y' WHERE name = 'dev'", [])?;
        Ok(())
    });
    centre.follow(&mut a);
    assert_eq!(members(&a), want);
    // A reset (a failover, a restored store) takes every row again.
    a.store.fleet_apply(&centre.log, true).unwrap();
    assert_eq!(members(&a), want);
    // The fleet deletes a group: its members here go with it.
    centre.ship(&mut a);
    centre.follow(&mut b);
    change(&mut b, |tx| {
        tx.execute("DELETE FROM groups WHERE name = 'dev'", [])?;
        Ok(())
    });
    centre.ship(&mut b);
    centre.follow(&mut a);
    assert_eq!(members(&a), vec![("ann".to_string(), "ops".to_string())]);
}

/// A change the fleet applied back and then lost (a failover to a standby that had not
/// received it) is shipped again: the host sees the store hold less of it than it shipped,
/// takes the fleet's rules again from the first change, and its change reaches the others.
#[test]
fn a_change_the_store_lost_after_applying_it_goes_again() {
    let mut centre = Centre::default();
    let mut a = host("a");
    let mut b = host("b");
    // The fleet's first generation: the whole state (as `migrate --to postgres` makes it).
    centre.log.push(Central {
        generation: 1,
        origin: "founder".into(),
        incarnation: "founder".into(),
        origin_id: 1,
        schema: super::SCHEMA_VERSION,
        body: encode(&full_state(a.store.conn()).unwrap()).unwrap(),
    });
    change(&mut a, |tx| people::add_user(tx, "kept", "", 1));
    centre.ship(&mut a);
    centre.follow(&mut a);
    centre.follow(&mut b);
    change(&mut a, |tx| people::add_user(tx, "lost", "", 1));
    centre.ship(&mut a);
    centre.follow(&mut a);
    let applied: i64 = a
        .store
        .conn()
        .query_row(
            "SELECT count(*) FROM fleet_outbox WHERE applied IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(applied, 2, "kept after being applied back");
    // The failover: the store's last change is gone.
    let lost = centre.log.pop().unwrap();
    let held = centre
        .log
        .iter()
        .filter(|c| c.incarnation == lost.incarnation)
        .map(|c| c.origin_id)
        .max()
        .unwrap();
    // Not when only shipping (the history is intact as far as shipping can tell)...
    a.store.fleet_unship_after(held, false).unwrap();
    assert_eq!(outbox_len(a.store.conn()).unwrap(), 0);
    // ...but once following found the history broken.
    a.store.fleet_unship_after(held, true).unwrap();
    assert_eq!(outbox_len(a.store.conn()).unwrap(), 1);
    centre.ship(&mut a);
    a.store.fleet_apply(&centre.log, true).unwrap();
    centre.follow(&mut b);
    for h in [&a, &b] {
        assert!(people::user(h.store.conn(), "lost").unwrap().is_some());
        assert!(people::user(h.store.conn(), "kept").unwrap().is_some());
    }
    assert_eq!(state(&a), state(&b));
    // Kept no longer than KEEP_APPLIED.
    a.store
        .conn()
        .execute(
            "UPDATE fleet_outbox SET applied = applied - ?1 - 1",
            [KEEP_APPLIED],
        )
        .unwrap();
    change(&mut a, |tx| people::add_user(tx, "later", "", 1));
    centre.ship(&mut a);
    centre.follow(&mut a);
    let left: Vec<i64> = a
        .store
        .conn()
        .prepare("SELECT id FROM fleet_outbox")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left.len(), 1, "only the newest change kept: {left:?}");
}

/// Random changes on three hosts, shipped and followed in random interleavings: once every
/// host has shipped and followed, all hold the same rows (seeded, so a failure repeats).
#[test]
fn random_interleavings_converge() {
    for seed in 1..=12u64 {
        let mut rng = seed;
        let mut next = move |n: u64| {
            rng = rng
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (rng >> 33) % n
        };
        let mut hosts = vec![host("a"), host("b"), host("c")];
        let mut centre = Centre::default();
        for step in 0..60 {
            let h = next(3) as usize;
            let user = format!("u{}", next(4));
            let sql = match next(8) {
                0 => format!("INSERT INTO users (name, created) VALUES ('{user}', {step})"),
                1 => format!("DELETE FROM users WHERE name = '{user}'"),
                2 => format!("UPDATE users SET full_name = 'n{step}' WHERE name = '{user}'"),
                3 => format!(
                    "INSERT INTO contacts (user, seq, channel, address, created)
                     VALUES ('{user}', {}, 'email', 'x{step}@example.com', 1)",
                    1 + next(4)
                ),
                4 => format!(
                    "INSERT INTO backup_codes (user, hash, created) VALUES ('{user}', x'{:04X}', 1)",
                    next(3)
                ),
                5 => format!("DELETE FROM backup_codes WHERE user = '{user}'"),
                6 => format!(
                    "INSERT INTO lockouts (user, failures, locked_until) VALUES ('{user}', 5, {step})
                     ON CONFLICT (user) DO UPDATE SET locked_until = excluded.locked_until"
                ),
                _ => format!("INSERT OR REPLACE INTO settings (key, value) VALUES ('lockout_after', '{}')", 3 + step % 5),
            };
            let _ = hosts[h].store.change("t", "t", |tx| {
                tx.execute(&sql, [])?;
                Ok(((), String::new()))
            });
            match next(4) {
                0 => centre.ship(&mut hosts[h]),
                1 => {
                    centre.follow(&mut hosts[h]);
                }
                _ => {}
            }
        }
        for h in hosts.iter_mut() {
            centre.ship(h);
        }
        for h in hosts.iter_mut() {
            centre.follow(h);
            assert_eq!(outbox_len(h.store.conn()).unwrap(), 0);
        }
        let (a, b, c) = (state(&hosts[0]), state(&hosts[1]), state(&hosts[2]));
        assert_eq!(a, b, "seed {seed}");
        assert_eq!(a, c, "seed {seed}");
        for h in &hosts {
            let left: i64 = h
                .store
                .conn()
                .query_row(
                    "SELECT count(*) FROM fleet_outbox WHERE applied IS NULL",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(left, 0, "every own change applied back, seed {seed}");
        }
    }
}
