//! The authenticator factor through libpam: codes from `oathtool --totp` (an independent
//! RFC 6238 implementation), replay protection, skew, backup codes, hostile codes,
//! concurrent double use, the `any` menu and self-enrollment.

use std::process::Command;

use mfa_core::store::{auth, factors, rules};
use mfa_core::totp::{self, Key};

use super::Install;
use super::harness::{PAM_AUTH_ERR, PAM_SUCCESS};

/// The code oathtool computes for a key at a Unix time.
fn oathtool(key: &Key, time: i64) -> String {
    let out = Command::new("oathtool")
        .args([
            &format!("--totp={}", key.algorithm.to_ascii_uppercase()),
            "-d",
            &key.digits.to_string(),
            "-b",
            &key.base32(),
            "-N",
            &format!("@{time}"),
        ])
        .output()
        .expect("oathtool (Debian package oathtool) must be installed");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn enrolled(method: &str, algorithm: &str, digits: u32) -> (Install, Key) {
    let i = Install::new();
    i.user("tom", &[]);
    let key = Key::generate(algorithm, digits).unwrap();
    let mut s = i.store();
    s.change("t", "t", |tx| {
        factors::set_totp(tx, "tom", &key, 0)?;
        rules::set_service(tx, "*", method)?;
        Ok(((), String::new()))
    })
    .unwrap();
    (i, key)
}

fn answer(code: String) -> super::harness::Answer<'static> {
    Box::new(move |_: &str| Some(code.clone().into_bytes()))
}

/// A time safely inside a step (so a step does not roll over during the test).
fn now_mid_step() -> i64 {
    loop {
        let t = mfa_core::now();
        if (t % 30) < 25 {
            return t;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn oathtool_code_accepted_once() {
    for (alg, digits) in [("sha1", 6), ("sha256", 8), ("sha512", 8)] {
        let (i, key) = enrolled("totp", alg, digits);
        let t = now_mid_step();
        let code = oathtool(&key, t);
        assert_eq!(
            code,
            key.code_at(t as u64).unwrap(),
            "{alg}: our code agrees with oathtool"
        );
        let r = i.auth("tom", None, answer(code.clone()));
        assert_eq!(r.code, PAM_SUCCESS, "{alg}: {r:?}");
        assert_eq!(r.prompts(), ["Authenticator code: "]);
        i.set("attempts", "1");
        let r = i.auth("tom", None, answer(code));
        assert_eq!(r.code, PAM_AUTH_ERR, "{alg}: the same code twice");
        assert!(r.said("already used"), "{:?}", r.shown);
        assert_eq!(
            i.outcomes(),
            ["success:", "deny:code replayed; attempts used up"]
        );
    }
}

#[test]
fn skew_window() {
    let (i, key) = enrolled("totp", "sha1", 6);
    i.set("attempts", "1");
    let t = now_mid_step();
    // One step back and one ahead are inside the default skew of 1; two are not. Each
    // accepted step also refuses every earlier one, so go from the oldest to the newest.
    let far_back = oathtool(&key, t - 60);
    let back = oathtool(&key, t - 30);
    let ahead = oathtool(&key, t + 30);
    let far_ahead = oathtool(&key, t + 60);
    let distinct = |c: &str, others: &[&str]| others.iter().all(|o| o != &c);
    if distinct(&far_back, &[&back, &oathtool(&key, t), &ahead]) {
        assert_eq!(
            i.auth("tom", None, answer(far_back)).code,
            PAM_AUTH_ERR,
            "two steps back"
        );
    }
    assert_eq!(
        i.auth("tom", None, answer(back.clone())).code,
        PAM_SUCCESS,
        "one step back"
    );
    if distinct(&far_ahead, &[&back, &oathtool(&key, t), &ahead]) {
        assert_eq!(
            i.auth("tom", None, answer(far_ahead)).code,
            PAM_AUTH_ERR,
            "two steps ahead"
        );
    }
    assert_eq!(
        i.auth("tom", None, answer(ahead)).code,
        PAM_SUCCESS,
        "one step ahead"
    );
    // The current step is earlier than the accepted one: refused.
    assert_eq!(
        i.auth("tom", None, answer(oathtool(&key, t))).code,
        PAM_AUTH_ERR,
        "an earlier step after a later one"
    );
    // A skew of 0 takes only the current step.
    let (i, key) = enrolled("totp", "sha1", 6);
    i.set("totp_skew", "0");
    i.set("attempts", "1");
    let t = now_mid_step();
    let back = oathtool(&key, t - 30);
    if back != oathtool(&key, t) {
        assert_eq!(i.auth("tom", None, answer(back)).code, PAM_AUTH_ERR);
    }
    assert_eq!(
        i.auth("tom", None, answer(oathtool(&key, t))).code,
        PAM_SUCCESS
    );
}

#[test]
fn backup_codes_work_once_wherever_a_totp_code_does() {
    let (i, _key) = enrolled("totp", "sha1", 6);
    let codes = totp::backup_codes(3).unwrap();
    // Closed before the module runs: the module has its own copy of SQLite, and two copies
    // in one process do not see each other's POSIX locks.
    let mut s = i.store();
    s.change("t", "t", |tx| {
        let k = auth::passcode_key(tx)?;
        let hashes = codes
            .iter()
            .map(|c| totp::backup_hash(&k, "tom", c))
            .collect::<mfa_core::Result<Vec<_>>>()?;
        factors::set_backup_codes(tx, "tom", &hashes, 0)?;
        Ok(((), String::new()))
    })
    .unwrap();
    drop(s);
    i.set("attempts", "1");
    let typed = format!("{}-{}", &codes[0][..4], &codes[0][4..]);
    let r = i.auth("tom", None, answer(typed.clone()));
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert_eq!(
        i.auth("tom", None, answer(typed)).code,
        PAM_AUTH_ERR,
        "a backup code works once"
    );
    assert_eq!(i.count("SELECT count(*) FROM backup_codes"), 2);
    // No key, only backup codes: the prompt asks for a backup code.
    i.sql("DELETE FROM totp");
    let r = i.auth("tom", None, answer(codes[1].clone()));
    assert_eq!(r.code, PAM_SUCCESS);
    assert_eq!(r.prompts(), ["Backup code: "]);
    let log = i.outcomes();
    assert_eq!(log.len(), 3);
}

#[test]
fn malformed_codes_are_refused_cleanly() {
    let (i, key) = enrolled("totp", "sha1", 6);
    i.set("attempts", "4");
    let t = now_mid_step();
    let good = oathtool(&key, t);
    let mut answers = vec![
        b"abcdef".to_vec(),
        b"1234567".to_vec(),
        vec![b'7'; 100 * 1024],
        vec![0xff, 0xfe, 0x31],
    ]
    .into_iter();
    let r = i.auth("tom", None, Box::new(move |_: &str| answers.next()));
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts().len(), 4);
    assert_eq!(i.failures("tom"), 4, "failures count toward the lockout");
    // The good code still works after the garbage (nothing was consumed).
    assert_eq!(i.auth("tom", None, answer(good)).code, PAM_SUCCESS);
    assert_eq!(i.failures("tom"), 0);
}

#[test]
fn concurrent_double_use_succeeds_once() {
    let (i, key) = enrolled("totp", "sha1", 6);
    i.set("attempts", "1");
    let t = now_mid_step();
    let code = oathtool(&key, t);
    let confdir = i.path("pam.d");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (confdir, code) = (confdir.clone(), code.clone());
            std::thread::spawn(move || {
                super::harness::authenticate(&confdir, "mfa-test", "tom", None, answer(code)).code
            })
        })
        .collect();
    let codes: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == PAM_SUCCESS).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == PAM_AUTH_ERR).count(),
        7,
        "{codes:?}"
    );
}

#[test]
fn any_offers_every_factor_the_user_has() {
    let (i, key) = enrolled("any", "sha1", 6);
    {
        let mut s = i.store();
        s.change("t", "t", |tx| {
            mfa_core::store::people::add_contact(
                tx,
                "tom",
                &mfa_core::contact::Contact::email("tom@example.com").unwrap(),
                "",
                None,
                0,
            )?;
            Ok(((), String::new()))
        })
        .unwrap();
    }
    let t = now_mid_step();
    let code = oathtool(&key, t);
    let r = i.auth(
        "tom",
        None,
        Box::new(move |p: &str| {
            Some(if p.starts_with("Choice") {
                b"1".to_vec()
            } else {
                code.clone().into_bytes()
            })
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert!(
        r.said("1) code from your authenticator app") && r.said("2) passcode to t***@e***.com"),
        "{:?}",
        r.shown
    );
    assert!(
        i.messages().is_empty(),
        "no passcode was sent for an authenticator login"
    );
    // Choosing the contact sends a passcode.
    let r = i.auth(
        "tom",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Choice") {
                Some(b"2".to_vec())
            } else {
                super::code_for(&i, p).map(String::into_bytes)
            }
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert_eq!(i.messages().len(), 1);
}

#[test]
fn authenticator_self_enrollment() {
    let i = Install::new();
    i.user("una", &[]);
    i.set("totp_self_enroll", "yes");
    i.set("attempts", "2");
    {
        let mut s = i.store();
        s.change("t", "t", |tx| {
            Ok((rules::set_service(tx, "*", "totp")?, String::new()))
        })
        .unwrap();
    }
    // Wrong codes: nothing is saved.
    let r = i.auth("una", None, answer("000000".into()));
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(r.prompts(), ["Code from the app: ", "Code from the app: "]);
    let info = &r
        .shown
        .iter()
        .find(|s| s.text.contains("Key: "))
        .expect("the key is shown")
        .text;
    assert!(
        info.contains('█') && info.contains("Account: una"),
        "a QR code and the account: {info}"
    );
    assert_eq!(
        i.count("SELECT count(*) FROM totp"),
        0,
        "nothing saved without a valid code"
    );
    // The code of the key shown (computed by oathtool from the key as printed) saves it.
    let confdir = i.path("pam.d");
    let r = super::harness::authenticate_seeing(
        &confdir,
        "mfa-test",
        "una",
        None,
        Box::new(|shown: &[super::harness::Shown], _p: &str| {
            let text = &shown.iter().rev().find(|s| s.text.contains("Key: "))?.text;
            let b32 = text.rsplit("Key: ").next()?.trim().to_string();
            let key = Key {
                secret: base32_decode(&b32),
                algorithm: "sha1".into(),
                digits: 6,
            };
            Some(oathtool(&key, mfa_core::now()).into_bytes())
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert!(r.said("Your authenticator app is set up"));
    assert_eq!(i.count("SELECT count(*) FROM totp WHERE user = 'una'"), 1);
    assert_eq!(
        i.count("SELECT count(*) FROM audit_log WHERE action = 'totp enroll'"),
        1
    );
    // From now on it is an ordinary authenticator login.
    let r = i.auth("una", None, answer("123".into()));
    assert_eq!(r.prompts()[0], "Authenticator code: ");
}

fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            out.push((bits >> (n - 8)) as u8);
            n -= 8;
        }
    }
    out
}

/// A wrong authenticator code whose lockout cannot be stored (the database unusable, the
/// policy snapshot still read) is a denial in safe mode too: the user was asked for a code.
#[test]
fn a_wrong_code_is_never_the_fail_modes_bypass() {
    let (i, _key) = enrolled("totp", "sha1", 6);
    i.set("lockout_after", "1");
    i.set("fail_mode", "safe");
    std::fs::write(i.path("db/mfa.db"), vec![0x5a; 8192]).unwrap();
    let r = i.auth("tom", None, answer("000000".into()));
    assert_eq!(r.prompts().len(), 1, "{r:?}");
    assert_eq!(r.code, PAM_AUTH_ERR, "a wrong code let through: {r:?}");
}
