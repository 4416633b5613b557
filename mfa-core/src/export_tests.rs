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
