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
