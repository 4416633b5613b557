//! Notices (issue 15): a lockout reached by many concurrent wrong guesses produces exactly
//! one notice to the user and one to the administrator (through `mfa_core::auth`, as the
//! module runs it); a disabled user trying to log in is told at most once a day; the
//! maintenance run's fail-mode notice goes once per condition; and nothing is queued when
//! the settings ask for nothing.

use std::time::SystemTime;

use mfa_core::auth::{self, ConvError, Conversation, Outcome, Request};
use mfa_core::config::{Config, ConfigSource};
use mfa_core::settings::FailMode;
use mfa_core::spool::Message;
use mfa_core::store::{Store, factors, logs::AuthEvent, people, rules};
use mfa_core::totp::Key;

use super::Env;

/// A user at a terminal who types a wrong authenticator code at every prompt (picking the
/// authenticator at a menu).
#[derive(Default)]
pub struct WrongCodes {
    shown: String,
}

impl Conversation for WrongCodes {
    fn prompt(&mut self, text: &str, _echo: bool) -> Result<Vec<u8>, ConvError> {
        if text.starts_with("Choice") {
            let n = self
                .shown
                .lines()
                .find(|l| l.contains("authenticator"))
                .and_then(|l| l.trim().split(')').next())
                .unwrap_or("1")
                .to_string();
            return Ok(n.into_bytes());
        }
        Ok(b"000000".to_vec())
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.shown = text.to_string();
        Ok(())
    }
    fn error(&mut self, _text: &str) -> Result<(), ConvError> {
        Ok(())
    }
}

/// The environment's configuration as the module loads it.
pub fn config(env: &Env) -> Config {
    Config::load(&ConfigSource::resolve(Some(&env.config))).unwrap()
}

/// mfa on, every service `any`, lockout after 3, a sender heartbeat, and users with an
/// authenticator key and an email contact; plus `settings` (KEY=VALUE).
pub fn setup(env: &Env, users: &[&str], settings: &[&str]) {
    let mut store = Store::open(&env.db()).unwrap();
    store
        .change("t", "t", |tx| {
            rules::set_setting(tx, "enabled", "on")?;
            rules::set_setting(tx, "lockout_after", "3")?;
            rules::set_service(tx, "*", "any")?;
            for u in users {
                people::add_user(tx, u, "", 0)?;
                let c = mfa_core::contact::Contact::email(&format!("{u}@example.org"))?;
                people::add_contact(tx, u, &c, "", None, 0)?;
                factors::set_totp(tx, u, &Key::generate("SHA1", 6)?, 0)?;
            }
            Ok(((), String::new()))
        })
        .unwrap();
    drop(store);
    if !settings.is_empty() {
        let mut args = vec!["settings", "set"];
        args.extend_from_slice(settings);
        env.ok(&args);
    }
    let run = env.path("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::File::create(run.join("sender.heartbeat")).unwrap();
}

/// The messages waiting in the spool.
pub fn spooled(env: &Env) -> Vec<Message> {
    let new = env.path("spool/new");
    let mut v: Vec<Message> = std::fs::read_dir(&new)
        .map(|d| {
            d.map(|e| mfa_core::spool::read(&e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.to.cmp(&b.to));
    v
}

fn login(config: &Config, user: &str) -> Outcome {
    let req = Request {
        user: user.into(),
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    };
    auth::authenticate(config, &req, &mut WrongCodes::default(), FailMode::Safe)
}

const NOTIFY: &[&str] = &[
    "admin_email=root@example.com",
    "notify_admin=lockout,disabled,fail-mode",
    "notify_user=lockout,disabled",
];

#[test]
fn a_lockout_by_32_concurrent_wrong_guesses_is_told_once() {
    let env = Env::new();
    setup(&env, &["ann"], NOTIFY);
    let config = config(&env);
    let gate = std::sync::Barrier::new(32);
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| {
                gate.wait();
                let o = login(&config, "ann");
                assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
            });
        }
    });
    let f = mfa_core::state::failures(&env.db(), "ann");
    assert!(f.locked_until > 0, "ann is locked out: {f:?}");
    let q = spooled(&env);
    assert_eq!(
        q.len(),
        2,
        "one notice to ann, one to the administrator: {q:#?}"
    );
    assert_eq!(q[0].to, "ann@example.org");
    assert!(
        q[0].body.contains("your account was locked out until"),
        "{}",
        q[0].body
    );
    assert!(
        q[0].body.contains("after 3 failed attempts"),
        "{}",
        q[0].body
    );
    assert_eq!(q[1].to, "root@example.com");
    assert!(
        q[1].body.contains("user ann was locked out"),
        "{}",
        q[1].body
    );
    // Where the guesses came from: the service and the address of the login that locked.
    assert!(
        q[1].body.contains("sshd") && q[1].body.contains("192.0.2.7"),
        "{}",
        q[1].body
    );
    assert!(q.iter().all(|m| m.kind == mfa_core::spool::Kind::Notice));
    // Further tries while locked out tell nobody again.
    for _ in 0..5 {
        login(&config, "ann");
    }
    assert_eq!(spooled(&env).len(), 2);
}

#[test]
fn without_notify_settings_a_lockout_queues_nothing() {
    let env = Env::new();
    setup(&env, &["bob"], &[]);
    let config = config(&env);
    for _ in 0..4 {
        login(&config, "bob");
    }
    assert!(mfa_core::state::failures(&env.db(), "bob").locked_until > 0);
    assert!(spooled(&env).is_empty());
}

#[test]
fn a_disabled_user_trying_to_log_in_is_told_once_a_day() {
    let env = Env::new();
    setup(
        &env,
        &["cy"],
        &["admin_email=root@example.com", "notify_admin=disabled"],
    );
    env.ok(&["user", "disable", "cy"]);
    let config = config(&env);
    let gate = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                gate.wait();
                let o = login(&config, "cy");
                assert!(
                    matches!(&o, Outcome::Deny { reason } if reason.contains("disabled")),
                    "{o:?}"
                );
            });
        }
    });
    let q = spooled(&env);
    assert_eq!(q.len(), 1, "{q:#?}");
    assert_eq!(q[0].to, "root@example.com");
    assert!(
        q[0].body
            .contains("user cy is disabled and a login was tried on sshd from 192.0.2.7"),
        "{}",
        q[0].body
    );
    // notify_user does not name disabled: cy's contact got nothing.
    assert!(q.iter().all(|m| m.to != "cy@example.org"));
}

/// Puts an auth-log line into the module's inbox as the module does.
fn logged(env: &Env, outcome: &str) {
    mfa_core::authlog::append(
        &env.db(),
        &AuthEvent {
            time: mfa_core::now(),
            user: "ann\u{1b}[2J".into(),
            service: "sshd".into(),
            outcome: outcome.into(),
            reason: "cannot read the rules".into(),
            ..AuthEvent::default()
        },
    )
    .unwrap();
}

/// `maintain --json`: its report; the exit status is 1 exactly when a task failed.
fn maintain(env: &Env) -> serde_json::Value {
    let o = env.run(&["--json", "maintain"]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(o.code, if v["ok"] == true { 0 } else { 1 }, "{o:?}");
    v
}

fn fail_notices(env: &Env) -> Vec<Message> {
    spooled(env)
        .into_iter()
        .filter(|m| m.subject.contains("cannot work"))
        .collect()
}

#[test]
fn a_fail_mode_condition_is_told_once_a_day() {
    let env = Env::new();
    setup(&env, &[], NOTIFY);
    // Nothing happened: no notice.
    let v = maintain(&env);
    assert_eq!(v["notices"]["status"], "ok", "{v}");
    assert_eq!(v["notices"]["queued"], 0, "{v}");
    // Logins that could not be decided: one notice.
    logged(&env, "unavailable-deny");
    logged(&env, "unavailable-ignore");
    logged(&env, "deny");
    let v = maintain(&env);
    assert_eq!(v["notices"]["unavailable"], 2, "{v}");
    assert_eq!(v["notices"]["queued"], 1, "{v}");
    let q = fail_notices(&env);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].to, "root@example.com");
    assert!(q[0].body.contains("2 login(s) since"), "{}", q[0].body);
    // More of the same within the day: not told again.
    logged(&env, "unavailable-deny");
    let v = maintain(&env);
    assert_eq!(v["notices"]["unavailable"], 1, "{v}");
    assert_eq!(v["notices"]["queued"], 0, "{v}");
    assert_eq!(fail_notices(&env).len(), 1);
    // Another condition (a message waiting for 20 minutes: the sender is down) is told,
    // once, even within the day of the first.
    let stuck = env.path("spool/new/1-stuck.json");
    std::fs::write(&stuck, b"{}").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stuck)
        .unwrap()
        .set_modified(SystemTime::now() - std::time::Duration::from_secs(20 * 60))
        .unwrap();
    let v = maintain(&env);
    assert_eq!(v["notices"]["queued"], 1, "{v}");
    // A sender that does not send fails the run (the timer's unit shows it) while it lasts.
    assert_eq!(v["notices"]["status"], "failed", "{v}");
    assert!(
        v["notices"]["detail"]
            .as_str()
            .unwrap()
            .contains("the sender is not sending"),
        "{v}"
    );
    let v = maintain(&env);
    assert_eq!(v["notices"]["queued"], 0, "{v}");
    assert_eq!(v["ok"], false, "{v}");
    std::fs::remove_file(&stuck).unwrap();
    assert_eq!(maintain(&env)["ok"], true);
    let q = fail_notices(&env);
    assert_eq!(q.len(), 2, "{q:#?}");
    assert!(q.iter().any(|m| m.body.contains("the sender looks down")));
    // A day later (the markers moved back), the same condition is told again.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE meta SET value = CAST(CAST(value AS INTEGER) - 86400 AS TEXT)
          WHERE key IN ('fail_notice_unavailable', 'fail_notice_spool')",
        [],
    )
    .unwrap();
    drop(conn);
    logged(&env, "unavailable-deny");
    let v = maintain(&env);
    assert_eq!(v["notices"]["queued"], 1, "{v}");
    assert!(
        fail_notices(&env)
            .iter()
            .all(|m| !m.body.contains('\u{1b}'))
    );
}

#[test]
fn a_spool_that_cannot_take_a_notice_does_not_change_the_login() {
    let env = Env::new();
    setup(&env, &["dan"], NOTIFY);
    // The spool's new/ is gone: notices cannot be queued; the lockout still happens.
    std::fs::remove_dir_all(env.path("spool/new")).unwrap();
    let config = config(&env);
    for _ in 0..3 {
        let o = login(&config, "dan");
        assert!(matches!(o, Outcome::Deny { .. }), "{o:?}");
    }
    assert!(mfa_core::state::failures(&env.db(), "dan").locked_until > 0);
}
