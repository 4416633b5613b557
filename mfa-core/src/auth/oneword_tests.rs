//! The one-password flows without PAM: `oneword_before` and `oneword_after` against a
//! private store, spool and heartbeat (the libpam side is in pam_mfa/tests/pam/oneword.rs).

use super::*;
use crate::totp::Key;

struct T {
    dir: tempfile::TempDir,
    config: Config,
}

const PASSWORD: &str = "S3cret-Pw,xyz";

fn setup(method: &str) -> T {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "db",
        "spool/tmp",
        "spool/new",
        "spool/cur",
        "spool/failed",
        "run",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let text = format!(
        "[paths]\ndatabase = \"{0}/db/mfa.db\"\nspool = \"{0}/spool\"\nruntime = \"{0}/run\"\n",
        root.display()
    );
    let config = Config::parse(&root.join("mfa.toml"), &text).unwrap();
    let (mut store, _) = Store::create(&config.paths.database).unwrap();
    store
        .change("t", "t", |tx| {
            rules::set_setting(tx, "enabled", "on")?;
            rules::set_service(tx, "*", method)?;
            people::add_user(tx, "ann", "", 0)?;
            let c = Contact::email("ann@example.com")?;
            people::add_contact(tx, "ann", &c, "", None, 0)?;
            Ok(((), String::new()))
        })
        .unwrap();
    std::fs::File::create(root.join("run/sender.heartbeat")).unwrap();
    T { dir, config }
}

impl T {
    fn req(&self, rhost: &str) -> Request {
        Request {
            user: "ann".into(),
            service: "vsftpd".into(),
            rhost: rhost.into(),
            tty: "ftp".into(),
        }
    }
    fn db(&self) -> &std::path::Path {
        &self.config.paths.database
    }
    fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_dir(self.dir.path().join("spool/new"))
            .unwrap()
            .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
            .collect()
    }
    /// The digits of the only message's passcode.
    fn code(&self) -> String {
        let m = self.messages();
        assert_eq!(m.len(), 1, "{m:?}");
        let body = m[0]["body"].as_str().unwrap();
        let i = body.find('-').unwrap();
        body[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    }
    fn after(&self, rhost: &str, code: Option<&str>) -> Outcome {
        oneword_after(
            &self.config,
            &self.req(rhost),
            code.map(str::as_bytes),
            FailMode::Secure,
        )
    }
    fn before(&self, rhost: &str, field: &str) -> Before {
        oneword_before(&self.config, &self.req(rhost), field.as_bytes(), b',')
    }
    fn failures(&self) -> u32 {
        state::failures(self.db(), "ann").count
    }
}

#[test]
fn the_double_logon_sends_once_and_accepts_the_code_once_from_the_same_address() {
    let t = setup("passcode");
    let o = t.after("192.0.2.1", None);
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.starts_with("double logon")),
        "{o:?}"
    );
    let ch = state::challenges(t.db()).unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].purpose, oneword::DOUBLE_LOGON);
    assert_eq!(
        ch[0].expires - ch[0].created,
        300,
        "ftp_window, not code_ttl"
    );
    let code = t.code();
    // Another address: not a candidate, nothing counted.
    assert_eq!(t.before("192.0.2.2", &code), Before::Ignore);
    assert_eq!(t.failures(), 0);
    // A wrong code counts once and is left to the password module.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(t.before("192.0.2.1", wrong), Before::Ignore);
    assert_eq!(t.failures(), 1);
    assert!(matches!(
        t.before("192.0.2.1", &code),
        Before::Success(Outcome::Success { .. })
    ));
    assert_eq!(t.failures(), 0, "a success clears the count");
    assert!(state::challenges(t.db()).unwrap().is_empty());
    assert!(crate::grants::last(t.db(), "ann", "vsftpd", "192.0.2.1").is_some());
    // Used once.
    assert_eq!(t.before("192.0.2.1", &code), Before::Ignore);
    assert_eq!(t.messages().len(), 1, "nothing else was sent");
}

#[test]
fn an_expired_window_refuses_the_code() {
    let t = setup("passcode");
    t.after("192.0.2.1", None);
    let code = t.code();
    state::expire_all_challenges(t.db()).unwrap();
    assert_eq!(t.before("192.0.2.1", &code), Before::Ignore);
    assert_eq!(
        t.failures(),
        0,
        "no outstanding challenge: nothing to guess"
    );
}

#[test]
fn a_password_and_a_passcode_in_one_field() {
    let t = setup("passcode");
    t.after("192.0.2.1", None);
    let code = t.code();
    let field = format!("{PASSWORD},{code}");
    let Before::Split {
        password,
        code: kept,
    } = t.before("192.0.2.1", &field)
    else {
        unreachable!("not split");
    };
    assert_eq!(password, PASSWORD.as_bytes());
    assert_eq!(kept, code.as_bytes());
    let o = t.after("192.0.2.1", Some(&code));
    assert!(
        matches!(o, Outcome::Success { ref method, .. } if method == "passcode"),
        "{o:?}"
    );
    // Once.
    let o = t.after("192.0.2.3", Some(&code));
    assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
    assert_eq!(t.failures(), 1);
    assert_eq!(t.messages().len(), 1);
}

#[test]
fn totp_in_one_field_needs_no_double_logon() {
    let t = setup("totp");
    let key = Key::generate("SHA1", 6).unwrap();
    let (mut store, _) = Store::create(t.db()).unwrap();
    store
        .change("t", "t", |tx| {
            factors::set_totp(tx, "ann", &key, 0)?;
            Ok(((), String::new()))
        })
        .unwrap();
    // Without a code: refused, and nothing sent (a totp service has nothing to send).
    let o = t.after("192.0.2.1", None);
    assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
    assert!(t.messages().is_empty());
    let now = u64::try_from(crate::now()).unwrap();
    let code = key.code_at(now).unwrap();
    let o = t.after("192.0.2.1", Some(&code));
    assert!(
        matches!(o, Outcome::Success { ref method, .. } if method == "totp"),
        "{o:?}"
    );
    // The same step again is a replay, counted once.
    let o = t.after("192.0.2.1", Some(&code));
    assert!(
        matches!(&o, Outcome::Deny { reason } if reason.contains("replayed")),
        "{o:?}"
    );
    assert_eq!(t.failures(), 1);
}

#[test]
fn n_wrong_codes_cost_n_failures_and_lock_out() {
    let t = setup("passcode");
    t.after("192.0.2.1", None);
    let code = t.code();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for n in 1..=2 {
        assert!(matches!(
            t.after("192.0.2.1", Some(wrong)),
            Outcome::Deny { .. }
        ));
        assert_eq!(t.failures(), n);
    }
    // attempts (3) used up by the third wrong one: the challenge is gone.
    t.after("192.0.2.1", Some(wrong));
    assert_eq!(t.failures(), 3);
    assert!(state::challenges(t.db()).unwrap().is_empty());
    assert!(matches!(
        t.after("192.0.2.1", Some(&code)),
        Outcome::Deny { .. }
    ));
}

#[test]
fn the_password_is_in_no_file() {
    let t = setup("passcode");
    let field = format!("{PASSWORD},123456");
    assert!(matches!(
        t.before("192.0.2.1", &field),
        Before::Split { .. }
    ));
    t.after("192.0.2.1", Some("123456"));
    t.after("192.0.2.1", None);
    t.before("192.0.2.1", PASSWORD);
    let code = t.code();
    t.before("192.0.2.1", &code);
    let mut files = vec![t.dir.path().to_path_buf()];
    let mut seen = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let hay = std::fs::read(&p).unwrap();
        seen += 1;
        assert!(
            !hay.windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "password in {}",
            p.display()
        );
    }
    assert!(seen >= 4, "{seen}");
}

#[test]
fn the_code_alone_follows_the_decision_of_now() {
    let t = setup("passcode");
    t.after("192.0.2.1", None);
    let code = t.code();
    // The service no longer asks for a passcode: the code alone is not a way in (and is not
    // used up or counted); the plain password is, through the rest of the stack.
    let (mut store, _) = Store::create(t.db()).unwrap();
    store
        .change("t", "t", |tx| {
            Ok((rules::set_service(tx, "*", "totp")?, String::new()))
        })
        .unwrap();
    assert_eq!(t.before("192.0.2.1", &code), Before::Ignore);
    assert_eq!(t.failures(), 0);
    assert_eq!(state::challenges(t.db()).unwrap().len(), 1);
    store
        .change("t", "t", |tx| {
            Ok((rules::set_service(tx, "*", "passcode")?, String::new()))
        })
        .unwrap();
    assert!(matches!(t.before("192.0.2.1", &code), Before::Success(_)));
}

/// FTP clients open parallel connections with the same password field: of any number of
/// concurrent logins with one double-logon passcode (alone, or as PASSWORD,CODE), exactly
/// one gets in.
#[test]
fn parallel_logins_with_one_passcode_one_wins() {
    for round in 0..10 {
        let t = setup("passcode");
        t.after("192.0.2.1", None);
        let code = t.code();
        let n = 6;
        let barrier = std::sync::Barrier::new(n);
        let wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for k in 0..n {
                let (barrier, t, code, wins) = (&barrier, &t, &code, &wins);
                s.spawn(move || {
                    barrier.wait();
                    let won = if k % 2 == 0 {
                        matches!(t.before("192.0.2.1", code), Before::Success(_))
                    } else {
                        matches!(t.after("192.0.2.1", Some(code)), Outcome::Success { .. })
                    };
                    if won {
                        wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(
            wins.into_inner(),
            1,
            "round {round}: one passcode, several logins in"
        );
    }
}

/// A wrong guess running beside the right one (another connection from the same NAT
/// address) must not bring the used passcode back: once used, it is refused.
#[test]
fn a_wrong_guess_beside_the_right_one_does_not_bring_the_code_back() {
    for round in 0..10 {
        let t = setup("passcode");
        t.after("192.0.2.1", None);
        let code = t.code();
        let wrong = other_code(&code);
        let n = 6;
        let barrier = std::sync::Barrier::new(n);
        std::thread::scope(|s| {
            for k in 0..n {
                let (barrier, t, code, wrong) = (&barrier, &t, &code, &wrong);
                s.spawn(move || {
                    barrier.wait();
                    let field = if k == 0 { code } else { wrong };
                    let _ = t.before("192.0.2.1", field);
                });
            }
        });
        assert_eq!(
            t.before("192.0.2.1", &code),
            Before::Ignore,
            "round {round}: the used passcode came back: {:?}",
            state::challenges(t.db()).unwrap()
        );
    }
}

/// Parallel wrong guesses each cost the challenge one attempt (no lost update): after
/// `attempts` (3) of them the challenge is gone, whatever lockout_after allows.
#[test]
fn parallel_wrong_guesses_each_cost_an_attempt() {
    for round in 0..10 {
        let t = setup("passcode");
        let (mut store, _) = Store::create(t.db()).unwrap();
        store
            .change("t", "t", |tx| {
                Ok((rules::set_setting(tx, "lockout_after", "0")?, String::new()))
            })
            .unwrap();
        t.after("192.0.2.1", None);
        let code = t.code();
        let wrong = other_code(&code);
        let barrier = std::sync::Barrier::new(3);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    barrier.wait();
                    let _ = t.before("192.0.2.1", &wrong);
                });
            }
        });
        assert_eq!(
            state::challenges(t.db()).unwrap(),
            vec![],
            "round {round}: 3 wrong guesses and the challenge still has attempts"
        );
        assert_eq!(
            t.before("192.0.2.1", &code),
            Before::Ignore,
            "round {round}"
        );
    }
}

fn other_code(code: &str) -> String {
    if code == "000000" {
        "000001".into()
    } else {
        "000000".into()
    }
}

/// A passcode length of 4: the short code is a code only because the rules say so (the
/// first instance reads them for fields a 6-to-8-digit reading leaves plain), both alone
/// (the double logon) and after the separator; with the default length the same fields are
/// passwords.
#[test]
fn a_short_code_length_is_read_from_the_rules() {
    let t = setup("passcode");
    // The default length: "pw,1234" and "1234" are passwords.
    assert_eq!(t.before("192.0.2.1", "pw,1234"), Before::Ignore);
    assert_eq!(t.before("192.0.2.1", "1234"), Before::Ignore);
    Store::open(t.db())
        .unwrap()
        .change("t", "t", |tx| {
            rules::set_setting(tx, "code_length", "4")?;
            Ok(((), String::new()))
        })
        .unwrap();
    assert_eq!(
        t.before("192.0.2.1", "pw,1234"),
        Before::Split {
            password: b"pw".to_vec(),
            code: b"1234".to_vec()
        }
    );
    // A 6-digit tail is split whatever the length.
    assert!(matches!(
        t.before("192.0.2.1", "pw,123456"),
        Before::Split { .. }
    ));
    // The double logon with a 4-digit passcode.
    let o = t.after("192.0.2.1", None);
    assert!(matches!(&o, Outcome::Deny { .. }), "{o:?}");
    let code = t.code();
    assert_eq!(code.len(), 4, "{code}");
    assert!(matches!(
        t.before("192.0.2.1", &code),
        Before::Success(Outcome::Success { .. })
    ));
}

/// The queued messages, taken out of the spool.
fn take_messages(t: &T) -> Vec<serde_json::Value> {
    let m = t.messages();
    for e in std::fs::read_dir(t.dir.path().join("spool/new")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    m
}

/// The administrator's double-logon contact gets the passcode, not the first contact, read
/// from the snapshot and from the database alike; the outcome and the auth log name it
/// (masked). Without a choice, or with one naming a contact the user lacks (a database
/// edited behind mfa's back), the first contact.
#[test]
fn the_double_logon_goes_to_the_chosen_contact() {
    let t = setup("passcode");
    let (mut store, _) = Store::create(t.db()).unwrap();
    store
        .change("t", "t", |tx| {
            people::add_contact(tx, "ann", &Contact::sms("+14155550123")?, "", None, 0)?;
            let home = Contact::email("ann.home@example.org")?;
            people::add_contact(tx, "ann", &home, "home", None, 0)?;
            let change = people::OverrideChange {
                double_logon_contact: Some(Some(3)),
                ..Default::default()
            };
            people::set_override(tx, "ann", &change)?;
            Ok(((), String::new()))
        })
        .unwrap();
    let first = Contact::email("ann@example.com").unwrap().masked();
    let chosen = Contact::email("ann.home@example.org").unwrap().masked();
    assert_ne!(first, chosen);
    let snapshot = crate::snapshot::path_for(t.db());
    for (i, from_snapshot) in [true, false].into_iter().enumerate() {
        if !from_snapshot {
            std::fs::remove_file(&snapshot).unwrap();
        }
        assert_eq!(snapshot.exists(), from_snapshot);
        let rhost = format!("192.0.2.{}", i + 1);
        let o = t.after(&rhost, None);
        assert!(
            matches!(&o, Outcome::Deny { reason } if reason.contains(&format!("passcode sent to {chosen}"))),
            "{o:?}"
        );
        let m = t.messages();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0]["to"], "ann.home@example.org");
        assert_eq!(m[0]["masked_to"], chosen.as_str());
        let code = t.code();
        take_messages(&t);
        let o = t.before(&rhost, &code);
        assert_eq!(
            o,
            Before::Success(Outcome::Success {
                method: "passcode".into(),
                destination: chosen.clone(),
            })
        );
    }
    // The auth log: the first login names the chosen contact, the second logs it as the
    // destination; the first contact appears nowhere.
    store.ingest_auth_log().unwrap();
    let mut stmt = store
        .conn()
        .prepare("SELECT outcome, destination, reason FROM auth_log ORDER BY id")
        .unwrap();
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    drop(stmt);
    assert_eq!(rows.len(), 4, "{rows:?}");
    for pair in rows.chunks(2) {
        assert_eq!(pair[0].0, "deny", "{rows:?}");
        assert!(pair[0].2.contains(&chosen), "{rows:?}");
        assert_eq!(
            (pair[1].0.as_str(), pair[1].1.as_str()),
            ("success", chosen.as_str())
        );
    }
    assert!(
        rows.iter()
            .all(|r| !r.1.contains(&first) && !r.2.contains(&first)),
        "{rows:?}"
    );
    // A choice naming a contact the user does not have: the first contact, from the
    // database and from a snapshot built from it.
    for from_snapshot in [false, true] {
        store
            .conn()
            .execute_batch(
                "DROP TRIGGER IF EXISTS contacts_double_logon_gone;
                 DELETE FROM contacts WHERE user = 'ann' AND seq = 3;
                 UPDATE overrides SET double_logon_contact = 3 WHERE user = 'ann';",
            )
            .unwrap();
        let _ = std::fs::remove_file(&snapshot);
        if from_snapshot {
            store.rebuild_snapshot().unwrap();
            let snap = crate::snapshot::Snapshot::load(t.db()).unwrap();
            assert_eq!(
                snap.user("ann").unwrap().facts.double_logon_contact,
                Some(3)
            );
        }
        let rhost = if from_snapshot {
            "192.0.2.8"
        } else {
            "192.0.2.9"
        };
        let o = t.after(rhost, None);
        assert!(
            matches!(&o, Outcome::Deny { reason } if reason.contains(&format!("passcode sent to {first}"))),
            "{o:?}"
        );
        let m = take_messages(&t);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0]["to"], "ann@example.com");
    }
}

/// The choice only picks among the contacts: the first when unset or absent, never one of
/// another number.
#[test]
fn the_double_logon_contact_is_picked_by_number() {
    let row = |seq: i64| people::ContactRow {
        seq,
        channel: "email".into(),
        address: format!("u{seq}@example.com"),
        carrier: None,
        to: format!("u{seq}@example.com"),
        masked: String::new(),
        label: String::new(),
    };
    let pick = |have: &[i64], chosen| {
        oneword::double_logon_contact(have.iter().map(|s| row(*s)).collect(), chosen).map(|c| c.seq)
    };
    assert_eq!(pick(&[2, 3, 4], None), Some(2));
    assert_eq!(pick(&[2, 3, 4], Some(4)), Some(4));
    assert_eq!(pick(&[2, 3, 4], Some(3)), Some(3));
    assert_eq!(pick(&[2, 3, 4], Some(1)), Some(2));
    assert_eq!(pick(&[], Some(1)), None);
    assert_eq!(pick(&[], None), None);
}

/// A login state another process holds locked past the wait is a denial even under
/// `fail_mode=safe` (which lets logins through when mfa is unavailable): whoever could keep a
/// login stopped while it holds the lock must not get in without a second factor. The
/// interactive path and both one-password instances.
#[test]
fn a_login_state_held_locked_is_a_denial_even_when_fail_mode_is_safe() {
    let t = setup("passcode");
    Store::open(t.db())
        .unwrap()
        .change("t", "t", |tx| {
            rules::set_setting(tx, "fail_mode", "safe")?;
            Ok(((), String::new()))
        })
        .unwrap();
    // A wrong code creates ann's state file.
    let _ = t.after("192.0.2.1", Some("000000"));
    let dir = std::path::PathBuf::from(format!("{}-users", t.db().display()));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let held = std::fs::File::open(&files[0]).unwrap();
    held.lock().unwrap();
    for o in [
        t.after("192.0.2.1", None),
        t.after("192.0.2.1", Some("123456")),
        authenticate(
            &t.config,
            &t.req("192.0.2.1"),
            &mut oneword::Mute,
            FailMode::Safe,
        ),
    ] {
        assert!(
            matches!(&o, Outcome::Deny { reason } if reason.contains("login state busy")),
            "{o:?}"
        );
    }
    held.unlock().unwrap();
    assert!(
        t.messages().is_empty(),
        "nothing sent while the state was held"
    );
}
