//! The fleet's system test (issue 16): three hosts A, B and C on one machine, each with its
//! own configuration, database, policy snapshot, spool and running `mfa-fleetd`, and one
//! PostgreSQL (started here). Logins go through the system's libpam and the built
//! `libpam_mfa.so`, so what is checked is what a user at each host would see:
//! 1. a rule changed through A's `mfa-admin` governs a login on C within 5 s;
//! 2. with PostgreSQL stopped every host keeps enforcing its last policy, and a change made
//!    meanwhile on B applies on A and C once it is back (their followers reconnect alone);
//! 3. a lockout on B stops logins on A and C within seconds, and an unlock on A lets the
//!    user in again everywhere;
//! 4. the central log holds every host's rows exactly once after each `mfa-fleetd` was
//!    SIGKILLed several times while shipping;
//! 5. hostile rows in the central `changes` table (garbage, a change of `meta`) are skipped:
//!    the followers keep going, later changes apply, no host's keys change; `fleet status`
//!    lists the three hosts.
//!
//! The phases share the hosts (setting up a fleet costs seconds), so they run in order in
//! one test; each prints the times it measured.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/hosts.rs"]
mod hosts;
#[path = "support/pg.rs"]
mod pg;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hosts::{Host, Login, PAM_AUTH_ERR, PAM_SUCCESS, Totp, wait_until};
use mfa_core::store::logs::AuthEvent;

/// The users of the fleet's rules: ann (exempt, then not), tom (logs in everywhere), eve
/// (disabled: refused everywhere), cy (locked out on B).
const USERS: &[&str] = &["ann", "tom", "eve", "cy"];

struct Fleet {
    pg: pg::Pg,
    a: Host,
    b: Host,
    c: Host,
    keys: HashMap<String, Totp>,
}

impl Fleet {
    fn hosts(&mut self) -> [&mut Host; 3] {
        [&mut self.a, &mut self.b, &mut self.c]
    }

    /// A login of `user` on `host` with their next authenticator code; the step is marked
    /// used when the login proved it.
    fn login_with_code(&mut self, host: char, user: &str) -> Login {
        let key = self.keys.get_mut(user).unwrap();
        let h = match host {
            'a' => &self.a,
            'b' => &self.b,
            _ => &self.c,
        };
        let mut step = None;
        let l = h.login(user, &mut |_| {
            let (s, code) = key.next();
            step = Some(s);
            Some(code)
        });
        if l.code == PAM_SUCCESS {
            key.accepted(step.unwrap());
        }
        l
    }
}

/// A login that gives up at the first prompt: whether the user was asked for a second
/// factor, without spending a code or counting a failure.
fn asked(h: &Host, user: &str) -> Login {
    h.login(user, &mut |_| None)
}

/// Refused before any prompt: what a locked-out (or disabled) user sees.
fn refused_unasked(l: &Login) -> bool {
    l.code == PAM_AUTH_ERR && l.prompts().is_empty()
}

/// Prompted, given up: the second factor is required.
fn required(l: &Login) -> bool {
    l.code != PAM_SUCCESS && l.prompts().iter().any(|p| p.contains("code"))
}

fn stderr_of(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A, B and C in one fleet, their followers running.
fn setup() -> Fleet {
    let pg = pg::Pg::start();
    let a = Host::new("a", &pg.store_toml("a", true));
    a.ok(&[
        "settings",
        "set",
        "enabled=on",
        "totp_skew=2",
        "lockout_after=3",
    ]);
    a.ok(&["service", "set", "*", "totp"]);
    let mut keys = HashMap::new();
    for u in USERS {
        a.ok(&["user", "add", u]);
        let (json, _) = a.ok(&["--json", "totp", "enroll", u]);
        keys.insert(u.to_string(), Totp::from_enroll_json(&json));
    }
    a.ok(&["override", "set", "ann", "--exempt", "yes"]);
    a.ok(&["user", "disable", "eve"]);
    let (out, _) = a.ok(&["migrate", "--to", "postgres", &pg.url()]);
    assert!(out.contains("first generation"), "{out}");
    let b = Host::new("b", &pg.store_toml("b", true));
    b.ok(&["fleet", "join"]);
    let c = Host::new("c", &pg.store_toml("c", true));
    c.ok(&["fleet", "join"]);
    let mut f = Fleet { pg, a, b, c, keys };
    for h in f.hosts() {
        h.start_fleetd();
    }
    for h in f.hosts() {
        let up = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            h.status().connected
        });
        assert!(
            up.is_some(),
            "host {}: mfa-fleetd did not reach the store: {:?}\n{}",
            h.name,
            h.status(),
            h.fleetd_log()
        );
    }
    f
}

#[test]
fn three_hosts_one_fleet() {
    let started = Instant::now();
    let mut f = setup();
    println!("setup: {:?}", started.elapsed());
    rule_on_a_governs_a_login_on_c(&mut f);
    outage_keeps_the_last_policy_and_catches_up(&mut f);
    lockout_on_b_stops_a_and_c(&mut f);
    every_row_once_after_sigkills(&mut f);
    hostile_changes_are_skipped(&mut f);
    for h in f.hosts() {
        h.assert_fleetd_alive();
    }
    println!("three hosts, total: {:?}", started.elapsed());
}

/// Phase 1: `override set ann --exempt no` on A: ann, until then let through without a second
/// factor on C, must prove one there within 5 s.
fn rule_on_a_governs_a_login_on_c(f: &mut Fleet) {
    let l = asked(&f.c, "ann");
    assert!(l.bypassed(), "ann is exempt on C at first: {l:?}");
    let t0 = Instant::now();
    let (_, err) = f.a.ok(&["override", "set", "ann", "--exempt", "no"]);
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(
        f.a.count("SELECT count(*) FROM fleet_outbox WHERE shipped = 0"),
        0,
        "shipped by mfa-admin at once"
    );
    let mut logins = 0;
    let took = loop {
        logins += 1;
        let l = f.login_with_code('c', "ann");
        if l.code == PAM_SUCCESS {
            assert_eq!(l.prompts().len(), 1, "{l:?}");
            break t0.elapsed();
        }
        assert!(l.bypassed(), "neither the old rule nor the new one: {l:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "C still lets ann through after 15 s:\n{}",
            f.c.fleetd_log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("1. rule changed on A governs a login on C after {took:?} ({logins} logins on C)");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

/// Phase 2: PostgreSQL stopped: every host keeps its last policy; a change made on B meanwhile
/// (queued in its outbox) reaches A and C after the store returns, by their followers'
/// own reconnection.
fn outage_keeps_the_last_policy_and_catches_up(f: &mut Fleet) {
    f.pg.stop();
    let down = Instant::now();
    for h in f.hosts() {
        let noticed = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            !h.status().connected && !h.status().last_error.is_empty()
        });
        assert!(
            noticed.is_some(),
            "host {}: mfa-fleetd did not notice the store going away: {:?}",
            h.name,
            h.status()
        );
    }
    println!(
        "2. every follower noticed the outage after {:?}",
        down.elapsed()
    );
    for host in ['a', 'b', 'c'] {
        let l = f.login_with_code(host, "tom");
        assert_eq!(
            l.code, PAM_SUCCESS,
            "host {host}: tom's code, store down: {l:?}"
        );
        let h = match host {
            'a' => &f.a,
            'b' => &f.b,
            _ => &f.c,
        };
        let l = asked(h, "eve");
        assert!(
            refused_unasked(&l),
            "host {host}: disabled eve, store down: {l:?}"
        );
        let l = asked(h, "ann");
        assert!(required(&l), "host {host}: ann's factor, store down: {l:?}");
    }
    let out = f.b.admin(&["override", "set", "ann", "--exempt", "yes"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("reaches the fleet when"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        asked(&f.b, "ann").bypassed(),
        "the change applies on B at once"
    );
    for h in [&f.a, &f.c] {
        assert!(required(&asked(h, "ann")), "{}: not yet", h.name);
    }
    let outage = down.elapsed();
    f.pg.start_again();
    let took = wait_until(Duration::from_secs(45), Duration::from_millis(100), || {
        [&f.a, &f.c].iter().all(|h| asked(h, "ann").bypassed())
    });
    let Some(took) = took else {
        panic!(
            "the change made on B during the outage did not reach A and C within 45 s:\n\
             A: {:?}\n{}\nC: {:?}\n{}",
            f.a.status(),
            f.a.fleetd_log(),
            f.c.status(),
            f.c.fleetd_log()
        );
    };
    println!(
        "2. store down {outage:?}; the change made on B meanwhile governs logins on A and C \
         {took:?} after it returned"
    );
    assert!(took < Duration::from_secs(40), "took {took:?}");
    for h in f.hosts() {
        let ok = wait_until(Duration::from_secs(40), Duration::from_millis(100), || {
            let s = h.status();
            s.connected && s.outbox == 0
        });
        assert!(ok.is_some(), "{}: {:?}", h.name, h.status());
    }
}

/// Phase 3: cy fails three times on B (`lockout_after=3`): A and C refuse cy's right code within
/// seconds; `user unlock cy` on A lets cy in on A, B and C again.
fn lockout_on_b_stops_a_and_c(f: &mut Fleet) {
    let wrong = f.keys["cy"].wrong();
    let l = f.b.login("cy", &mut |_| Some(wrong.clone()));
    assert_eq!(l.code, PAM_AUTH_ERR, "{l:?}");
    assert_eq!(l.prompts().len(), 3, "three attempts: {l:?}");
    assert!(l.said("locked"), "{l:?}");
    let t0 = Instant::now();
    assert!(refused_unasked(&asked(&f.b, "cy")), "locked on B itself");
    let took = wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
        [&f.a, &f.c]
            .iter()
            .all(|h| refused_unasked(&asked(h, "cy")))
    });
    let Some(took) = took else {
        panic!(
            "the lockout on B did not reach A and C within 15 s:\nB: {}\nA: {}",
            f.b.fleetd_log(),
            f.a.fleetd_log()
        );
    };
    println!(
        "3. a lockout on B stops logins on A and C after {took:?} ({:?} with the checks)",
        t0.elapsed()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    // The right code is refused there, unasked.
    for host in ['a', 'c'] {
        let l = f.login_with_code(host, "cy");
        assert!(refused_unasked(&l), "host {host}: cy locked out: {l:?}");
        assert!(l.said("locked"), "host {host}: {l:?}");
    }
    // Unlocked on A: in again on A at once, on C and B within seconds.
    f.a.ok(&["user", "unlock", "cy"]);
    let t1 = Instant::now();
    let l = f.login_with_code('a', "cy");
    assert_eq!(l.code, PAM_SUCCESS, "unlocked on A: {l:?}");
    for host in ['c', 'b'] {
        let took = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            f.login_with_code(host, "cy").code == PAM_SUCCESS
        });
        let Some(_) = took else {
            let l = f.login_with_code(host, "cy");
            panic!("the unlock on A did not let cy in on {host} within 15 s: {l:?}");
        };
        println!(
            "3. unlocked on A: cy logs in on {host} {:?} after",
            t1.elapsed()
        );
        assert!(t1.elapsed() < Duration::from_secs(5));
    }
}

/// Rows written into each host's auth-log inbox for [`every_row_once_after_sigkills`].
const ROWS: usize = 20_000;
/// Rounds of SIGKILLs at most; the first lets the followers run `KILL_FIRST` ms, each
/// next one `KILL_STEP` ms longer, until every host was caught mid-shipment.
const KILL_ROUNDS: u64 = 24;
const KILL_FIRST: u64 = 150;
const KILL_STEP: u64 = 150;

/// Phase 4: Thousands of auth-log rows per host; each `mfa-fleetd` SIGKILLed again and again while
/// it moves and ships them (until each was caught with part of its rows shipped), then left
/// to finish: the central log holds each host's rows
/// exactly once (same event ids as the host's own log, no duplicates).
fn every_row_once_after_sigkills(f: &mut Fleet) {
    let started = Instant::now();
    for h in f.hosts() {
        h.kill_fleetd();
    }
    for h in f.hosts() {
        let db = h.database();
        for i in 0..ROWS {
            let ev = AuthEvent {
                user: format!("bulk{}", i % 97),
                service: "sshd".into(),
                address: format!("192.0.2.{}", i % 250),
                tty: "ssh".into(),
                outcome: "success".into(),
                method: "totp".into(),
                reason: format!("row {i} of {}", h.name),
                ..AuthEvent::default()
            };
            mfa_core::authlog::append(&db, &ev).unwrap();
        }
    }
    println!(
        "4. {ROWS} rows in each host's inbox after {:?}",
        started.elapsed()
    );
    let central = |pg: &pg::Pg, host: &str| -> i64 {
        pg.psql(&format!(
            "SELECT count(*) FROM auth_log WHERE host = '{host}'"
        ))
        .parse()
        .unwrap()
    };
    // The rows each host had centrally before (its logins so far).
    let pre: HashMap<String, i64> = [&f.a, &f.b, &f.c]
        .iter()
        .map(|h| (h.name.clone(), central(&f.pg, &h.name)))
        .collect();
    let caught = |n: i64, host: &str| n > pre[host] && n < pre[host] + ROWS as i64;
    // The central server made slow, as a distant one is: each shipped batch (1,000 rows)
    // takes 100 ms more, so a host's shipment lasts about 2 s and the SIGKILLs land in it
    // (on this machine the whole shipment otherwise takes less than one KILL_STEP).
    f.pg.psql(
        "CREATE FUNCTION slow_down() RETURNS trigger LANGUAGE plpgsql
           AS $$ BEGIN PERFORM pg_sleep(0.1); RETURN NULL; END $$;
         CREATE TRIGGER slow_shipping AFTER INSERT ON auth_log
           FOR EACH STATEMENT EXECUTE FUNCTION slow_down();",
    );
    // Each round: start the three followers, let them work, SIGKILL them; until each was
    // killed with part of its rows shipped.
    let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
    for round in 0..KILL_ROUNDS {
        for h in f.hosts() {
            h.start_fleetd();
        }
        std::thread::sleep(Duration::from_millis(KILL_FIRST + round * KILL_STEP));
        for h in [&mut f.a, &mut f.b, &mut f.c] {
            h.kill_fleetd();
            seen.entry(h.name.clone())
                .or_default()
                .push(central(&f.pg, &h.name));
        }
        if seen.iter().all(|(h, n)| n.iter().any(|n| caught(*n, h))) {
            break;
        }
    }
    println!("4. central rows per host at each SIGKILL: {seen:?}");
    f.pg.psql("DROP TRIGGER slow_shipping ON auth_log; DROP FUNCTION slow_down();");
    for h in f.hosts() {
        h.start_fleetd();
    }
    let done = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        [&f.a, &f.b, &f.c].iter().all(|h| {
            mfa_core::authlog::pending(&h.database()) == 0
                && h.count("SELECT count(*) FROM auth_log") == central(&f.pg, &h.name)
        })
    });
    assert!(
        done.is_some(),
        "the logs did not arrive within 60 s:\n{}",
        f.a.fleetd_log()
    );
    println!(
        "4. every host's log central {:?} after the last restart ({:?} for the phase)",
        done.unwrap(),
        started.elapsed()
    );
    let dups =
        f.pg.psql("SELECT host, event, count(*) FROM auth_log GROUP BY 1, 2 HAVING count(*) > 1");
    assert_eq!(dups, "", "rows shipped twice");
    let mut mid: Vec<String> = Vec::new();
    for h in [&f.a, &f.b, &f.c] {
        let c = rusqlite::Connection::open(h.database()).unwrap();
        let local: HashSet<String> = c
            .prepare("SELECT event FROM auth_log")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let bulk: i64 = c
            .query_row(
                "SELECT count(*) FROM auth_log WHERE user LIKE 'bulk%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            bulk, ROWS as i64,
            "{}: every inbox line once locally",
            h.name
        );
        let there: HashSet<String> =
            f.pg.psql(&format!(
                "SELECT event FROM auth_log WHERE host = '{}'",
                h.name
            ))
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(local.len(), there.len(), "{}", h.name);
        assert!(local == there, "{}: the central events differ", h.name);
        let audit_local = h.count("SELECT count(*) FROM audit_log");
        let audit_there: i64 =
            f.pg.psql(&format!(
                "SELECT count(*) FROM audit_log WHERE host = '{}'",
                h.name
            ))
            .parse()
            .unwrap();
        assert_eq!(audit_local, audit_there, "{}: audit rows", h.name);
        // Whether a SIGKILL caught this host mid-shipment (timing: a fast machine ships
        // 20,000 rows between two kills); the fleet as a whole must have been caught.
        if seen[&h.name].iter().any(|n| caught(*n, &h.name)) {
            mid.push(h.name.clone());
        }
    }
    println!("4. hosts a SIGKILL caught mid-shipment: {mid:?}");
    assert!(
        !mid.is_empty(),
        "no SIGKILL came while any host shipped (central rows {seen:?})"
    );
}

/// Phase 5: Hostile rows in the central `changes` table, inserted behind mfa's back: bytes that
/// are no change, and changes of `meta` (the passcode key, the host's name). Every
/// follower skips them and keeps going; a later change from A applies on B and C; no
/// host's `meta` changed. `fleet status` lists the three hosts.
fn hostile_changes_are_skipped(f: &mut Fleet) {
    const KEYS: &[&str] = &["passcode_key", "fleet_host", "fleet_incarnation"];
    let before: Vec<Vec<Option<Vec<u8>>>> = [&f.a, &f.b, &f.c]
        .iter()
        .map(|h| KEYS.iter().map(|k| h.meta(k)).collect())
        .collect();
    assert!(before.iter().all(|m| m.iter().all(Option::is_some)));
    let schema = mfa_core::store::SCHEMA_VERSION;
    let meta_key = format!(
        r#"{{"v":1,"schema":{schema},"ops":[{{"t":"meta","k":[{{"text":"passcode_key"}}],"r":{{"key":{{"text":"passcode_key"}},"value":{{"blob":"00"}}}}}}]}}"#
    );
    let meta_del = format!(
        r#"{{"v":1,"schema":{schema},"ops":[{{"t":"meta","k":[{{"text":"fleet_host"}}],"r":null}}]}}"#
    );
    let gens = f.pg.psql(&format!(
        "INSERT INTO changes (origin, incarnation, origin_id, schema, body) VALUES
           ('mallory', 'mallory', 1, {schema}, '\\x00ff7b2276223a'::bytea),
           ('mallory', 'mallory', 2, {schema}, convert_to('{meta_key}', 'UTF8')),
           ('mallory', 'mallory', 3, {schema}, convert_to('{meta_del}', 'UTF8'))
         RETURNING gen"
    ));
    let last_hostile: i64 = gens.lines().last().unwrap().parse().unwrap();
    // A later, honest change: ann no longer exempt.
    let t0 = Instant::now();
    // (A's mfa-admin catches up before its change: it may be the one on A that meets the
    // hostile changes, before A's mfa-fleetd does; it then reports the skips.)
    let (_, admin_err) = f.a.ok(&["override", "set", "ann", "--exempt", "no"]);
    let took = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
        [&f.b, &f.c].iter().all(|h| required(&asked(h, "ann")))
    });
    assert!(
        took.is_some(),
        "a change after the hostile ones did not apply:\n{}",
        f.b.fleetd_log()
    );
    println!(
        "5. after 3 hostile changes, a change on A governs B and C after {:?}",
        t0.elapsed()
    );
    for (h, was) in [&mut f.a, &mut f.b, &mut f.c].into_iter().zip(&before) {
        h.assert_fleetd_alive();
        let ok = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            h.status().generation > last_hostile
        });
        assert!(ok.is_some(), "{}: {:?}", h.name, h.status());
        let now: Vec<Option<Vec<u8>>> = KEYS.iter().map(|k| h.meta(k)).collect();
        assert_eq!(&now, was, "{}: meta changed", h.name);
        let log = h.fleetd_log();
        let by_admin = h.name == "a" && admin_err.contains("skipped on every host");
        assert!(
            log.contains("skipped") || by_admin,
            "{}: {log}\nA's mfa-admin: {admin_err}",
            h.name
        );
    }
    let (json, _) = f.a.ok(&["--json", "fleet", "status"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<&str> = v["hosts"]
        .as_array()
        .unwrap_or_else(|| panic!("{json}"))
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "{json}");
    let (text, _) = f.c.ok(&["fleet", "status"]);
    for n in ["a", "b", "c"] {
        assert!(
            text.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "{text}"
        );
    }
}
