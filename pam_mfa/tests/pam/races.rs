//! Lockout races: a hundred logins parked at the prompt answer wrong at the same instant;
//! the check and the count are one step under the user's lock, so at most `lockout_after`
//! guesses are evaluated (before: 10 to 79 against lockout_after = 10). A user locked out
//! meanwhile cannot make an open prompt resend.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mfa_core::store::{factors, rules};
use mfa_core::totp::Key;

use super::harness::{self, PAM_AUTH_ERR};
use super::{Install, code_for};

/// Runs `n` logins of `user` in threads; each answers its first prompt with `answer` once all
/// of them are at that prompt (or after 30 s: a login that never reaches it must not hang
/// the test). Returns the PAM codes.
fn parked(i: &Install, user: &str, n: usize, answer: &'static [u8]) -> Vec<i32> {
    let gate = Arc::new(AtomicUsize::new(0));
    let confdir = i.path("pam.d");
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let gate = gate.clone();
            let confdir = confdir.clone();
            let user = user.to_string();
            std::thread::spawn(move || {
                let mut first = true;
                harness::authenticate(
                    &confdir,
                    "mfa-test",
                    &user,
                    Some("192.0.2.44"),
                    Box::new(move |_: &str| {
                        if std::mem::take(&mut first) {
                            gate.fetch_add(1, Ordering::SeqCst);
                            let t = Instant::now();
                            while gate.load(Ordering::SeqCst) < n
                                && t.elapsed() < Duration::from_secs(30)
                            {
                                std::thread::sleep(Duration::from_millis(2));
                            }
                            Some(answer.to_vec())
                        } else {
                            None
                        }
                    }),
                )
                .code
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn evaluated_and_locked(i: &Install) -> (usize, usize) {
    let log = i.outcomes();
    let locked = log
        .iter()
        .filter(|l| l.as_str() == "deny:locked out during the challenge")
        .count();
    (log.len() - locked, locked)
}

#[test]
fn a_hundred_concurrent_wrong_authenticator_codes_evaluate_at_most_lockout_after() {
    let i = Install::new();
    i.user("tom", &[]);
    let key = Key::generate("sha1", 6).unwrap();
    i.store()
        .change("t", "t", |tx| {
            factors::set_totp(tx, "tom", &key, 0)?;
            rules::set_service(tx, "*", "totp")?;
            Ok(((), String::new()))
        })
        .unwrap();
    i.set("attempts", "1");
    // A code that is not the current one (nor its neighbours).
    let now = u64::try_from(mfa_core::now()).unwrap();
    let wrong: &'static [u8] = ["000000", "111111", "222222"]
        .into_iter()
        .find(|c| key.matching_step(c, now, 2).is_none())
        .unwrap()
        .as_bytes();
    let codes = parked(&i, "tom", 100, wrong);
    assert!(codes.iter().all(|c| *c == PAM_AUTH_ERR), "{codes:?}");
    assert_eq!(i.failures("tom"), 10, "evaluated guesses = lockout_after");
    let (evaluated, locked) = evaluated_and_locked(&i);
    assert_eq!((evaluated, locked), (10, 90), "{:?}", i.outcomes());
    // The lockout reached the database (and the snapshot).
    assert_eq!(
        i.count("SELECT count(*) FROM lockouts WHERE user = 'tom' AND locked_until > 0"),
        1
    );
}

/// Passcodes: as many parked logins as a user may have outstanding challenges (8), against
/// lockout_after = 3.
#[test]
fn concurrent_wrong_passcodes_evaluate_at_most_lockout_after() {
    let i = Install::new();
    i.user("pam", &["pam@example.com"]);
    i.set("send_limit_user", "0");
    i.set("send_limit_destination", "0");
    i.set("lockout_after", "3");
    let n = mfa_core::state::sends::MAX_CHALLENGES;
    let codes = parked(&i, "pam", n, b"0000000");
    assert!(codes.iter().all(|c| *c == PAM_AUTH_ERR), "{codes:?}");
    assert_eq!(i.messages().len(), n, "every login reached the prompt");
    assert_eq!(i.failures("pam"), 3);
    let (evaluated, locked) = evaluated_and_locked(&i);
    assert_eq!((evaluated, locked), (3, n - 3), "{:?}", i.outcomes());
    assert_eq!(i.challenges(), 0, "each login took its challenge along");
}

/// Another login locks the user out while this one waits at the prompt: an empty answer
/// does not make it send another code.
#[test]
fn a_locked_out_user_gets_no_resend_at_an_open_prompt() {
    let i = Install::new();
    i.user("kim", &["kim@example.com"]);
    let db = i.path("db/mfa.db");
    let r = i.auth(
        "kim",
        None,
        Box::new(|_: &str| {
            let mut s = rules::settings(i.store().conn()).unwrap();
            s.lockout_after = 1;
            mfa_core::state::record_failure(&db, "kim", mfa_core::now(), &s).unwrap();
            Some(Vec::new())
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert_eq!(i.messages().len(), 1, "no resend for a locked-out user");
    assert!(r.said("locked"), "{:?}", r.shown);
    assert_eq!(i.outcomes(), ["deny:locked out during the challenge"]);
    // A right code is refused too, unevaluated.
    let i = Install::new();
    i.user("kim", &["kim@example.com"]);
    let r = i.auth(
        "kim",
        None,
        Box::new(|p: &str| {
            let mut s = rules::settings(i.store().conn()).unwrap();
            s.lockout_after = 1;
            mfa_core::state::record_failure(&db_of(&i), "kim", mfa_core::now(), &s).unwrap();
            code_for(&i, p).map(String::into_bytes)
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(i.failures("kim"), 1, "the refused guess is not counted");
}

fn db_of(i: &Install) -> std::path::PathBuf {
    i.path("db/mfa.db")
}
