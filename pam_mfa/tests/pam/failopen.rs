//! No fail-open after a wrong answer: every store and spool failure, injected after the
//! prompt was shown (failure count, lockout, backup code, resend, challenge file), in both
//! fail modes, through libpam. The fail mode is for "mfa cannot ask"; once a factor was asked
//! for and the answer was wrong, the outcome is a denial (before the reviewer's 76d2410 a
//! wrong code whose lockout could not be stored returned PAM_IGNORE in safe mode). A lockout
//! that could not reach the database is enforced from the state file.

use mfa_core::store::{factors, rules};
use mfa_core::totp::Key;

use super::Install;
use super::harness::PAM_AUTH_ERR;

/// What breaks, after the prompt, before the answer is handled.
#[derive(Debug, Clone, Copy)]
enum Break {
    /// The login-state directory (failure count, lockout, TOTP step, grants).
    State,
    /// The database (the lockout write, the backup code's use); the snapshot stays.
    Database,
    /// The spool's new/ (the resend).
    Spool,
    /// The challenge files.
    Challenges,
}

fn replace_with_file(p: &std::path::Path) {
    if p.is_dir() {
        std::fs::remove_dir_all(p).unwrap();
    }
    std::fs::write(p, b"not a directory").unwrap();
}

fn inject(i: &Install, what: Break) {
    match what {
        Break::State => replace_with_file(&i.path("db/mfa.db-users")),
        Break::Database => std::fs::write(i.path("db/mfa.db"), vec![0x5a; 8192]).unwrap(),
        Break::Spool => replace_with_file(&i.path("spool/new")),
        Break::Challenges => replace_with_file(&i.path("db/mfa.db-challenges")),
    }
}

fn install(mode: &str, method: &str) -> (Install, Option<Key>) {
    let i = Install::new();
    i.set("fail_mode", mode);
    i.set("lockout_after", "1");
    if method == "passcode" {
        i.user("ann", &["ann@example.com"]);
        return (i, None);
    }
    i.user("ann", &[]);
    let key = Key::generate("sha1", 6).unwrap();
    let mut s = i.store();
    s.change("t", "t", |tx| {
        factors::set_totp(tx, "ann", &key, 0)?;
        let k = mfa_core::store::auth::passcode_key(tx)?;
        let h = mfa_core::totp::backup_hash(&k, "ann", "12345678")?;
        factors::set_backup_codes(tx, "ann", &[h], 0)?;
        rules::set_service(tx, "*", "totp")?;
        Ok(((), String::new()))
    })
    .unwrap();
    (i, Some(key))
}

/// A wrong answer of the right shape for `method`.
fn wrong(method: &str, key: Option<&Key>, backup: bool) -> Vec<u8> {
    if method == "passcode" {
        return b"0000000".to_vec();
    }
    if backup {
        return b"87654321".to_vec();
    }
    let now = u64::try_from(mfa_core::now()).unwrap();
    let k = key.unwrap();
    ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| k.matching_step(c, now, 2).is_none())
        .unwrap()
        .as_bytes()
        .to_vec()
}

#[test]
fn a_wrong_answer_is_a_denial_whatever_fails_after_the_prompt() {
    let cases: &[(&str, Break, bool)] = &[
        ("passcode", Break::State, false),
        ("passcode", Break::Database, false),
        ("passcode", Break::Spool, false),
        ("passcode", Break::Challenges, false),
        ("totp", Break::State, false),
        ("totp", Break::Database, false),
        ("totp", Break::Database, true),
        ("totp", Break::State, true),
    ];
    for mode in ["secure", "safe"] {
        for &(method, what, backup) in cases {
            let (i, key) = install(mode, method);
            let answer = wrong(method, key.as_ref(), backup);
            let mut first = true;
            let r = i.auth(
                "ann",
                None,
                Box::new(|_: &str| {
                    if !std::mem::take(&mut first) {
                        return None;
                    }
                    inject(&i, what);
                    // An empty answer asks for a resend: that is what the spool case breaks.
                    Some(if matches!(what, Break::Spool) {
                        Vec::new()
                    } else {
                        answer.clone()
                    })
                }),
            );
            let case = format!("{mode} {method} {what:?} backup={backup}");
            assert_eq!(r.prompts().len(), 1, "{case}: {r:?}");
            assert_eq!(
                r.code, PAM_AUTH_ERR,
                "{case}: a wrong answer let through: {r:?}"
            );
        }
    }
}

/// The lockout a wrong answer set could not be stored in the database: the next login is
/// refused from the state file, before any prompt, in both fail modes.
#[test]
fn a_lockout_the_database_missed_is_enforced_from_the_state_file() {
    for mode in ["secure", "safe"] {
        for method in ["passcode", "totp"] {
            let (i, key) = install(mode, method);
            let answer = wrong(method, key.as_ref(), false);
            let r = i.auth(
                "ann",
                None,
                Box::new(|_: &str| {
                    inject(&i, Break::Database);
                    Some(answer.clone())
                }),
            );
            assert_eq!(r.code, PAM_AUTH_ERR, "{mode} {method}: {r:?}");
            assert_eq!(i.failures("ann"), 1);
            let r = i.auth(
                "ann",
                None,
                Box::new(|p: &str| panic!("{mode} {method}: asked {p} while locked out")),
            );
            assert_eq!(r.code, PAM_AUTH_ERR, "{mode} {method}: {r:?}");
            assert!(r.said("locked"), "{mode} {method}: {:?}", r.shown);
        }
    }
}
