//! The factors a user's group (or own override) allows, through the module's flows: the menu
//! offers only those, a code of another kind is refused wherever it is typed (the
//! authenticator prompt, the one field of a one-password service), and the snapshot and the
//! database fallback agree.

use super::duo_fixture::{DUO, Script, setup};
use super::*;
use crate::totp::Key;

/// ann with an email contact, an authenticator key and backup codes, in group `ops` that
/// allows `factors` (bits); returns the key and one backup code.
fn ann_in_ops(t: &super::duo_fixture::T, factors: &str) -> (Key, String) {
    let key = Key::generate("SHA1", 6).unwrap();
    let mut store = Store::open(&t.config.paths.database).unwrap();
    let hash_key = store.read(|tx| q::passcode_key(tx)).unwrap();
    let code = "12345678".to_string();
    let hash = crate::totp::backup_hash(&hash_key, "ann", &code).unwrap();
    let bits = policy::Factors::parse(factors).unwrap().bits();
    store
        .change("t", "t", |tx| {
            let c = Contact::email("ann@example.com")?;
            people::add_contact(tx, "ann", &c, "", None, 0)?;
            factors::set_totp(tx, "ann", &key, 0)?;
            factors::set_backup_codes(tx, "ann", std::slice::from_ref(&hash), 0)?;
            tx.execute(
                "INSERT INTO groups (name, factors, created) VALUES ('ops', ?1, 0)",
                [bits],
            )?;
            tx.execute("UPDATE users SET group_name = 'ops' WHERE name = 'ann'", [])?;
            Ok(((), String::new()))
        })
        .unwrap();
    (key, code)
}

fn totp_now(key: &Key) -> String {
    key.code_at(u64::try_from(crate::now()).unwrap()).unwrap()
}

fn spooled(t: &super::duo_fixture::T) -> usize {
    std::fs::read_dir(t.config.paths.spool.join("new"))
        .unwrap()
        .count()
}

/// Runs `f` once reading the policy snapshot and once with it gone: the database fallback
/// (until a change in `f` writes it again).
fn both_ways(t: &super::duo_fixture::T, f: impl Fn()) {
    f();
    let snap = crate::snapshot::path_for(&t.config.paths.database);
    std::fs::remove_file(&snap).unwrap();
    f();
}

#[test]
fn a_group_that_allows_only_totp_offers_only_the_authenticator() {
    let t = setup("any", DUO);
    let (key, backup) = ann_in_ops(&t, "totp");
    let backup: &'static str = backup.leak();
    both_ways(&t, || {
        // No menu: one factor; a backup code at its prompt is refused and counted.
        let mut conv = Script::new(&[backup, "000000", "999999"]);
        let o = t.login(&mut conv);
        assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
        let text = conv.text();
        assert!(!text.contains("ann@"), "no passcode option: {text}");
        assert!(!text.contains("backup"), "no backup option: {text}");
        assert_eq!(spooled(&t), 0, "nothing sent");
        assert_eq!(t.failures(), 3, "the backup code counted as a wrong code");
        // Three failures locked ann out (lockout_after = 3): the administrator unlocks.
        let mut store = Store::open(&t.config.paths.database).unwrap();
        assert!(people::unlock_user(&mut store, "t", "ann").unwrap());
        // Its own factor passes (a new step each time: wait out the replay guard).
        let code: &'static str = totp_now(&key).leak();
        state::clear_totp(&t.config.paths.database, "ann").unwrap();
        let o = t.login(&mut Script::new(&[code]));
        assert!(
            matches!(&o, Outcome::Success { method, .. } if method == "totp"),
            "{o:?}"
        );
    });
}

#[test]
fn a_group_without_totp_offers_passcodes_and_backup_codes() {
    let t = setup("any", DUO);
    ann_in_ops(&t, "passcode,backup");
    let mut conv = Script::new(&["", ""]);
    let _ = t.login(&mut conv);
    let text = conv.text();
    assert!(text.contains("backup code"), "{text}");
    assert!(!text.contains("authenticator"), "{text}");
    // A TOTP code at the backup prompt is refused; the backup code passes.
    let t = setup("totp", DUO);
    let (key2, backup2) = ann_in_ops(&t, "passcode,backup");
    let mut conv = Script::new(&[totp_now(&key2).leak(), backup2.clone().leak()]);
    let o = t.login(&mut conv);
    assert!(
        matches!(&o, Outcome::Success { method, .. } if method == "backup-code"),
        "{o:?} {}",
        conv.text()
    );
    assert_eq!(t.failures(), 0, "a success clears the count");
}

#[test]
fn a_service_whose_method_the_group_forbids_is_refused_without_a_message() {
    let t = setup("passcode", DUO);
    ann_in_ops(&t, "totp,backup");
    both_ways(&t, || {
        let o = t.login(&mut Script::new(&["", "", ""]));
        assert!(
            matches!(&o, Outcome::Deny { reason } if reason.contains("no factor this service's method accepts")),
            "{o:?}"
        );
        assert_eq!(spooled(&t), 0);
    });
}

#[test]
fn the_one_field_takes_only_allowed_codes() {
    let t = setup("any", DUO);
    let (key, backup) = ann_in_ops(&t, "passcode");
    let req = Request {
        user: "ann".into(),
        service: "vsftpd".into(),
        rhost: "192.0.2.9".into(),
        tty: "ftp".into(),
    };
    let after =
        |code: &str| oneword_after(&t.config, &req, Some(code.as_bytes()), FailMode::Secure);
    let o = after(&totp_now(&key));
    assert!(
        matches!(o, Outcome::Deny { .. }),
        "a TOTP code is not allowed: {o:?}"
    );
    let o = after(&backup);
    assert!(
        matches!(o, Outcome::Deny { .. }),
        "a backup code is not allowed: {o:?}"
    );
    assert_eq!(t.failures(), 2);
    // The group allows TOTP again (through the default group this time): the code passes.
    let mut store = Store::open(&t.config.paths.database).unwrap();
    store
        .change("t", "t", |tx| {
            tx.execute(
                "INSERT INTO groups (name, factors, created) VALUES ('all-codes', 6, 0)",
                [],
            )?;
            rules::set_setting(tx, "default_group", "all-codes")?;
            tx.execute("UPDATE users SET group_name = NULL WHERE name = 'ann'", [])?;
            Ok(((), String::new()))
        })
        .unwrap();
    let o = after(&totp_now(&key));
    assert!(
        matches!(&o, Outcome::Success { method, .. } if method == "totp"),
        "{o:?}"
    );
}
