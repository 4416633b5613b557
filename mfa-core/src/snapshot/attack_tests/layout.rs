//! Attacks through the layout: names at the boundaries of blocks and of index blocks,
//! renames that move users between blocks, carriers renamed, more than twice a block's users
//! into one block, and the `MAX_USERS` boundary between a patch and a build.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;

/// Names at block boundaries: every block's first user deleted, a name just below every
/// first added (it joins the block before), names before all and after all, in one change
/// and then one by one; every live user is found and every deleted one unknown.
#[test]
fn first_users_of_blocks_deleted_and_names_at_every_boundary() {
    let (_d, mut s) = store_of(300);
    let db = s.path().to_path_buf();
    let firsts: Vec<String> = open(&db)
        .all_user_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.first)
        .collect();
    assert!(firsts.len() >= 9, "{firsts:?}");
    let mut live: BTreeSet<String> = (0..300).map(|i| format!("s{:04}", 2 * i)).collect();
    let mut gone = BTreeSet::new();
    // Just below a first: s0064 -> s0063z (between s0062 and s0064).
    let below = |f: &str| {
        let n: usize = f[1..5].parse().unwrap();
        format!("s{:04}z", n - 1)
    };
    assert!(change(&mut s, |tx| {
        for f in &firsts[1..] {
            people::delete_user(tx, f)?;
            people::add_user(tx, &below(f), "", 0)?;
        }
        people::delete_user(tx, &firsts[0])?;
        people::add_user(tx, "a", "", 0)?;
        people::add_user(tx, "zzzz", "", 0)?;
        Ok(())
    }));
    for f in &firsts {
        live.remove(f);
        gone.insert(f.clone());
    }
    for f in &firsts[1..] {
        live.insert(below(f));
    }
    live.extend(["a".to_string(), "zzzz".to_string()]);
    agrees(&mut s);
    // One by one: the new first of each block deleted, the old first put back.
    let firsts2: Vec<String> = open(&db)
        .all_user_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.first)
        .collect();
    for (i, f) in firsts2.iter().enumerate().take(6) {
        assert!(change(&mut s, |tx| people::delete_user(tx, f)));
        live.remove(f);
        gone.insert(f.clone());
        if let Some(old) = firsts.get(i) {
            assert!(change(&mut s, |tx| people::add_user(tx, old, "", 0)));
            gone.remove(old);
            live.insert(old.clone());
        }
        agrees(&mut s);
    }
    let snap = open(&db);
    for n in &live {
        assert!(snap.lookup(n).unwrap().is_some(), "{n} lost");
    }
    for n in &gone {
        assert!(snap.lookup(n).unwrap().is_none(), "{n} still there");
    }
}

/// A user renamed (ON UPDATE CASCADE takes their contacts, key and overrides along) from
/// one block to another: the old name leaves its block, the new one arrives with
/// everything.
#[test]
fn a_rename_moves_the_user_and_their_rows() {
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    assert!(change(&mut s, |tx| {
        tx.execute("UPDATE users SET name = 'zoe' WHERE name = 'ann'", [])?;
        tx.execute(
            "UPDATE users SET name = 'user0505' WHERE name = 'e.mile@corp'",
            [],
        )?;
        Ok(())
    }));
    agrees(&mut s);
    let snap = open(&db);
    assert!(snap.lookup("ann").unwrap().is_none());
    assert!(snap.lookup("e.mile@corp").unwrap().is_none());
    let zoe = snap.lookup("zoe").unwrap().unwrap();
    assert_eq!(zoe.contacts.len(), 3);
    assert_eq!(zoe.facts.double_logon_contact, Some(3));
    let u = snap.lookup("user0505").unwrap().unwrap();
    assert!(u.key.is_some() && u.facts.backup_codes == 3);
}

/// A carrier renamed (ON UPDATE CASCADE changes every contact of it): built whole, and the
/// contacts carry the new name.
#[test]
fn a_carrier_rename_is_built_whole() {
    let (_d, mut s) = populated();
    assert!(!change(&mut s, |tx| {
        tx.execute("UPDATE carriers SET name = 'Vz' WHERE name = 'Verizon'", [])?;
        Ok(())
    }));
    agrees(&mut s);
    let ann = open(s.path()).lookup("ann").unwrap().unwrap();
    assert!(
        ann.contacts
            .iter()
            .any(|c| c.carrier.as_deref() == Some("Vz"))
    );
}

/// Three times `2 * BLOCK` users into one block in one change: it splits into blocks of at
/// most `2 * BLOCK`, all found; then `MAX_USERS` users changed at once are patched, one more
/// is built whole.
#[test]
fn big_changes_split_blocks_and_max_users_is_the_boundary() {
    let (_d, mut s) = store_of(100);
    let db = s.path().to_path_buf();
    let many: Vec<String> = (0..6 * BLOCK).map(|i| format!("s0100_{i:04}")).collect();
    assert!(change(&mut s, |tx| {
        for n in &many {
            people::add_user(tx, n, "", 0)?;
        }
        Ok(())
    }));
    agrees(&mut s);
    let snap = open(&db);
    for e in snap.all_user_entries().unwrap() {
        let users = Snapshot::split_users(&snap.user_block(&e).unwrap()).unwrap();
        assert!(
            !users.is_empty() && users.len() <= 2 * BLOCK,
            "{}",
            users.len()
        );
    }
    for n in &many {
        assert!(snap.lookup(n).unwrap().is_some(), "{n}");
    }
    let t = Instant::now();
    assert!(change(&mut s, |tx| {
        for i in 0..MAX_USERS {
            people::add_user(tx, &format!("m{i:05}"), "", 0)?;
        }
        Ok(())
    }));
    assert!(!change(&mut s, |tx| {
        for i in 0..=MAX_USERS {
            people::add_user(tx, &format!("n{i:05}"), "", 0)?;
        }
        Ok(())
    }));
    agrees(&mut s);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// Index blocks' boundaries (64 blocks each): the first user of the second index block
/// deleted (the head's entry changes), a name added just below it (it joins the last block
/// of the first index block), the last block grown until it splits (a block moves to the
/// next index block), names before everything: every user is found.
#[test]
fn names_at_index_block_boundaries() {
    let (_d, mut s) = store_of(FANOUT * BLOCK + 100);
    let db = s.path().to_path_buf();
    let entries = open(&db).all_user_entries().unwrap();
    assert!(entries.len() > FANOUT, "{} blocks", entries.len());
    let second = entries[FANOUT].first.clone();
    let n: usize = second[1..].parse().unwrap();
    let below = format!("s{:04}z", n - 1);
    let mut gone = vec![second.clone()];
    let grown: Vec<String> = (0..2 * BLOCK)
        .map(|i| format!("s{:04}y{i:03}", n - 1))
        .collect();
    assert!(change(&mut s, |tx| {
        people::delete_user(tx, &second)?;
        people::add_user(tx, &below, "", 0)?;
        people::add_user(tx, "0", "", 0)?;
        for g in &grown {
            people::add_user(tx, g, "", 0)?;
        }
        Ok(())
    }));
    agrees(&mut s);
    // The first user of the first index block, then of the second one again.
    let entries = open(&db).all_user_entries().unwrap();
    let firsts = [entries[0].first.clone(), entries[FANOUT].first.clone()];
    for f in &firsts {
        assert!(change(&mut s, |tx| people::delete_user(tx, f)));
        gone.push(f.clone());
    }
    agrees(&mut s);
    let snap = open(&db);
    let live: Vec<String> = people::users(s.conn())
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(live.len(), FANOUT * BLOCK + 100 + 2 * BLOCK + 2 - 3);
    for n in &live {
        assert!(snap.lookup(n).unwrap().is_some(), "{n} lost");
    }
    for n in &gone {
        assert!(snap.lookup(n).unwrap().is_none(), "{n} still there");
    }
}
