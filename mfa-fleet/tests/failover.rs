//! Issue 16's HA acceptance test: a failover of the central PostgreSQL to a standby that
//! lagged loses nothing of mfa's. High availability is PostgreSQL's; mfa's part is to
//! reconnect on its own, retry, and send again what the new primary lost.
//!
//! The tested setup (all on 127.0.0.1, TLS, scram passwords):
//! - a primary (`pg::Pg::start`) and a hot standby made with `pg_basebackup -R -X stream`
//!   (asynchronous streaming replication: the primary never waits for the standby);
//! - every host's `[store] url` names both servers with
//!   `target_session_attrs=read-write`, host A's primary first, host B's standby first (so
//!   the attribute, not the order, finds the primary):
//!   `postgresql://mfa@127.0.0.1:P,127.0.0.1:S/mfa?target_session_attrs=read-write`;
//!   the central schema and the fleet's first generation come from A's
//!   `mfa-admin migrate --to postgres URL` with that URL, B joins with `fleet join`;
//! - hosts A and B each run `mfa-fleetd` (never restarted here).
//!
//! The scenario: A's auth-log rows and a rule change reach the primary and the standby.
//! Then the standby is cut off its primary (its WAL receiver stopped: see
//! `pg::Pg::detach_standby`), A ships more rows and a rule change that B applies, so the
//! primary acknowledged commits the standby never has (checked on the standby). The primary
//! is SIGKILLed (its port then refuses connections; a dead first host that accepts and never
//! answers, or drops packets, is not what is tested here), the standby pointed at it again
//! and promoted (`pg_promote`).
//!
//! What it proves: both followers reconnect on their own to the promoted server; the new
//! primary ends up with every one of A's auth-log and audit rows exactly once (same count
//! and same event ids / local ids as A's own log, so none missing and none twice); the rule
//! change the standby lost is in the new primary's `changes` again and B enforces it (a
//! login through PAM on B); a change made on B after the failover governs a login on A.
//! The times measured are printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/hosts.rs"]
mod hosts;
#[path = "support/pg.rs"]
mod pg;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hosts::{Host, Login, PAM_SUCCESS, wait_until};
use mfa_core::store::logs::AuthEvent;

/// Auth-log rows A writes while the standby follows (they must survive the failover).
const KEPT_ROWS: usize = 500;
/// Auth-log rows A writes while the standby is cut off (the new primary never gets them
/// from the old one; more than one shipping batch).
const LOST_ROWS: usize = 1500;
/// How long the fleet may take to be whole again after the promotion.
const CONVERGE: Duration = Duration::from_secs(30);

/// A login that gives up at the first prompt: whether the user was asked for a second
/// factor, without spending a code or counting a failure.
fn asked(h: &Host, user: &str) -> Login {
    h.login(user, &mut |_| None)
}

/// Prompted, given up: the second factor is required.
fn required(l: &Login) -> bool {
    l.code != PAM_SUCCESS && l.prompts().iter().any(|p| p.contains("code"))
}

/// `n` auth-log rows in `h`'s inbox (what pam_mfa writes at each login).
fn write_rows(h: &Host, n: usize, tag: &str) {
    let db = h.database();
    for i in 0..n {
        let ev = AuthEvent {
            user: format!("bulk{}", i % 31),
            service: "sshd".into(),
            address: format!("198.51.100.{}", i % 250),
            tty: "ssh".into(),
            outcome: "success".into(),
            method: "totp".into(),
            reason: format!("{tag} row {i}"),
            ..AuthEvent::default()
        };
        mfa_core::authlog::append(&db, &ev).unwrap();
    }
}

/// `mfa-admin ARGS` on `h`, a rule change: it must reach the store at once (nothing left
/// unshipped in the outbox, no warning).
fn change(h: &Host, args: &[&str]) {
    let (_, err) = h.ok(args);
    let unshipped = h.count("SELECT count(*) FROM fleet_outbox WHERE shipped = 0");
    assert!(
        unshipped == 0 && !err.contains("warning"),
        "host {}: mfa-admin {args:?} did not ship its change ({unshipped} unshipped): {err}",
        h.name
    );
}

/// A's log as the fleet must hold it: auth events (a row without one ships as
/// `row-<incarnation>-<id>`) and audit ids.
struct Local {
    events: HashSet<String>,
    audit: HashSet<i64>,
}

fn local_log(h: &Host, incarnation: &str) -> Local {
    let c = rusqlite::Connection::open(h.database()).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let events = c
        .prepare("SELECT coalesce(event, 'row-' || ?1 || '-' || id) FROM auth_log")
        .unwrap()
        .query_map([incarnation], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let audit = c
        .prepare("SELECT id FROM audit_log")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    Local { events, audit }
}

/// A's rows in `pg`'s central log: (auth rows, distinct auth events, audit rows, distinct
/// audit ids).
fn central_counts(pg: &pg::Pg, incarnation: &str) -> (i64, i64, i64, i64) {
    let out = pg.psql(&format!(
        "SELECT (SELECT count(*) FROM auth_log WHERE host = 'a'),
                (SELECT count(DISTINCT event) FROM auth_log WHERE host = 'a'),
                (SELECT count(*) FROM audit_log WHERE incarnation = '{incarnation}'),
                (SELECT count(DISTINCT origin_id) FROM audit_log
                  WHERE incarnation = '{incarnation}')"
    ));
    let n: Vec<i64> = out.split('|').map(|x| x.parse().unwrap()).collect();
    (n[0], n[1], n[2], n[3])
}

/// Whether `pg` holds exactly A's local log (nothing missing, nothing twice) and A's
/// inbox is empty.
fn log_complete(a: &Host, pg: &pg::Pg, incarnation: &str) -> bool {
    if mfa_core::authlog::pending(&a.database()) != 0 {
        return false;
    }
    let auth = a.count("SELECT count(*) FROM auth_log");
    let audit = a.count("SELECT count(*) FROM audit_log");
    let (c_auth, c_events, c_audit, c_ids) = central_counts(pg, incarnation);
    (c_auth, c_events, c_audit, c_ids) == (auth, auth, audit, audit)
}

/// The (generation, origin id) of A's newest change in `pg`'s `changes`.
fn newest_change(pg: &pg::Pg, incarnation: &str) -> (i64, i64) {
    let out = pg.psql(&format!(
        "SELECT gen, origin_id FROM changes WHERE incarnation = '{incarnation}'
          ORDER BY gen DESC LIMIT 1"
    ));
    let (g, o) = out.split_once('|').unwrap_or_else(|| panic!("{out:?}"));
    (g.parse().unwrap(), o.parse().unwrap())
}

/// The generation under which `pg` holds A's change `origin_id`, if it does.
fn change_gen(pg: &pg::Pg, incarnation: &str, origin_id: i64) -> Option<i64> {
    let out = pg.psql(&format!(
        "SELECT gen FROM changes WHERE incarnation = '{incarnation}' AND origin_id = {origin_id}"
    ));
    (!out.is_empty()).then(|| out.parse().unwrap())
}

/// Whether `h`'s mfa-fleetd finished a round with the store at or after `since` (unix s).
fn reconnected(h: &Host, since: i64) -> bool {
    let s = h.status();
    s.connected && s.last_contact >= since
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn failover_to_a_standby_that_lagged_loses_nothing() {
    let started = Instant::now();
    // --- Setup: primary, standby, A and B following both through one URL each.
    let mut primary = pg::Pg::start();
    let standby = primary.standby();
    let (p, s) = (primary.port(), standby.port());
    let url_a =
        format!("postgresql://mfa@127.0.0.1:{p},127.0.0.1:{s}/mfa?target_session_attrs=read-write");
    let url_b =
        format!("postgresql://mfa@127.0.0.1:{s},127.0.0.1:{p}/mfa?target_session_attrs=read-write");
    let mut a = Host::new("a", &primary.store_toml_for(&url_a, "a", true));
    a.ok(&["settings", "set", "enabled=on"]);
    a.ok(&["service", "set", "*", "totp"]);
    for u in ["ann", "tom"] {
        a.ok(&["user", "add", u]);
        a.ok(&["--json", "totp", "enroll", u]);
    }
    let (out, _) = a.ok(&["migrate", "--to", "postgres", &url_a]);
    assert!(out.contains("first generation"), "{out}");
    let mut b = Host::new("b", &primary.store_toml_for(&url_b, "b", true));
    b.ok(&["fleet", "join"]);
    for h in [&mut a, &mut b] {
        h.start_fleetd();
    }
    for h in [&a, &b] {
        let up = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            h.status().connected
        });
        assert!(
            up.is_some(),
            "host {}: mfa-fleetd did not reach the primary: {:?}\n{}",
            h.name,
            h.status(),
            h.fleetd_log()
        );
    }
    let inc = String::from_utf8(a.meta("fleet_incarnation").unwrap()).unwrap();
    for (h, user) in [(&a, "ann"), (&b, "ann"), (&b, "tom")] {
        assert!(required(&asked(h, user)), "{}: {user} at first", h.name);
    }
    eprintln!("setup: {:?}", started.elapsed());

    // --- Before the cut: rows and a change that reach the primary and the standby.
    write_rows(&a, KEPT_ROWS, "kept");
    change(&a, &["override", "set", "ann", "--exempt", "yes"]);
    let shipped = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        log_complete(&a, &primary, &inc) && asked(&b, "ann").bypassed()
    });
    assert!(
        shipped.is_some(),
        "A's first rows and change did not reach the primary and B:\n{}",
        a.fleetd_log()
    );
    standby.catch_up(&primary);
    let conninfo = standby.detach_standby();
    let kept_auth = a.count("SELECT count(*) FROM auth_log");
    let kept_audit = a.count("SELECT count(*) FROM audit_log");
    let (kept_gen, kept_change) = newest_change(&standby, &inc);
    assert_eq!(
        central_counts(&standby, &inc),
        (kept_auth, kept_auth, kept_audit, kept_audit),
        "the standby holds A's log so far"
    );

    // --- Cut off: rows and a change the primary acknowledges and the standby never gets.
    write_rows(&a, LOST_ROWS, "lost");
    change(&a, &["override", "set", "tom", "--exempt", "yes"]);
    let shipped = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        log_complete(&a, &primary, &inc) && asked(&b, "tom").bypassed()
    });
    assert!(
        shipped.is_some(),
        "A's later rows and change did not reach the primary and B:\n{}",
        a.fleetd_log()
    );
    let (lost_gen, lost_change) = newest_change(&primary, &inc);
    assert!(lost_change > kept_change && lost_gen > kept_gen);
    let (all_auth, all_audit) = (
        a.count("SELECT count(*) FROM auth_log"),
        a.count("SELECT count(*) FROM audit_log"),
    );
    assert_eq!(all_auth, kept_auth + LOST_ROWS as i64);
    assert!(all_audit > kept_audit, "the change on A was audited");
    // The standby (what the new primary starts from) lacks all of it.
    assert_eq!(
        central_counts(&standby, &inc),
        (kept_auth, kept_auth, kept_audit, kept_audit),
        "the standby was cut off: it must not have A's later rows"
    );
    assert_eq!(change_gen(&standby, &inc, lost_change), None);
    assert_eq!(newest_change(&standby, &inc), (kept_gen, kept_change));
    eprintln!(
        "primary acknowledged {} auth and {} audit rows of A and A's change {lost_change} \
         (generation {lost_gen}) that the standby does not have",
        all_auth - kept_auth,
        all_audit - kept_audit
    );

    // --- Failover: the primary dies, the standby (pointed at it again) is promoted.
    let killed = Instant::now();
    primary.kill();
    for h in [&a, &b] {
        let noticed = wait_until(Duration::from_secs(15), Duration::from_millis(20), || {
            !h.status().connected
        });
        assert!(
            noticed.is_some(),
            "host {}: mfa-fleetd did not notice the primary's death: {:?}",
            h.name,
            h.status()
        );
    }
    standby.reattach_standby(&conninfo);
    // (Before: a round that ends on the promoted server ends after this second.)
    let promoted_unix = unix_now();
    standby.promote();
    let promoted = Instant::now();
    eprintln!(
        "failover: primary SIGKILLed, standby promoted {:?} later",
        promoted - killed
    );
    let new_primary = &standby;

    // --- Both followers reconnect on their own (same processes), to the promoted server.
    let mut back: [Option<Duration>; 2] = [None, None];
    while back.iter().any(Option::is_none) && promoted.elapsed() < CONVERGE {
        for (i, h) in [&a, &b].into_iter().enumerate() {
            if back[i].is_none() && reconnected(h, promoted_unix) {
                back[i] = Some(promoted.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (h, t) in [&a, &b].into_iter().zip(back) {
        let Some(t) = t else {
            panic!(
                "host {}: mfa-fleetd did not reconnect to the promoted server within \
                 {CONVERGE:?}: {:?}\n{}",
                h.name,
                h.status(),
                h.fleetd_log()
            );
        };
        eprintln!(
            "host {}: mfa-fleetd reconnected {t:?} after the promotion ({:?} after the kill)",
            h.name,
            t + (promoted - killed)
        );
    }
    let sessions = new_primary.psql(
        "SELECT string_agg(DISTINCT application_name, ',' ORDER BY application_name)
           FROM pg_stat_activity WHERE application_name IN ('mfa-a', 'mfa-b')",
    );
    assert_eq!(
        sessions, "mfa-a,mfa-b",
        "the followers' sessions on the new primary"
    );
    for h in [&mut a, &mut b] {
        h.assert_fleetd_alive();
    }

    // --- The fleet whole again: A's whole log once, A's lost change back and on B.
    let (mut rows_at, mut change_at, mut on_b_at) = (None, None, None);
    let mut new_gen = None;
    let deadline = promoted + CONVERGE;
    while Instant::now() < deadline && (rows_at.is_none() || on_b_at.is_none()) {
        if rows_at.is_none() && log_complete(&a, new_primary, &inc) {
            rows_at = Some(promoted.elapsed());
        }
        if new_gen.is_none() {
            new_gen = change_gen(new_primary, &inc, lost_change);
            if new_gen.is_some() {
                change_at = Some(promoted.elapsed());
            }
        }
        if let Some(g) = new_gen
            && on_b_at.is_none()
            && reconnected(&b, promoted_unix)
            && b.status().generation >= g
            && asked(&b, "tom").bypassed()
        {
            on_b_at = Some(promoted.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "after the promotion: A's whole log central {rows_at:?}; A's lost change back in \
         changes {change_at:?} (generation {new_gen:?}), enforced on B {on_b_at:?}"
    );
    let mut failures: Vec<String> = Vec::new();
    // A's log on the new primary against A's own: every row once, none missing.
    let local = local_log(&a, &inc);
    let (c_auth, c_events, c_audit, c_ids) = central_counts(new_primary, &inc);
    let central_events: HashSet<String> = new_primary
        .psql("SELECT event FROM auth_log WHERE host = 'a'")
        .lines()
        .map(str::to_string)
        .collect();
    let central_audit: HashSet<i64> = new_primary
        .psql(&format!(
            "SELECT origin_id FROM audit_log WHERE incarnation = '{inc}'"
        ))
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    if c_auth != c_events || c_audit != c_ids {
        failures.push(format!(
            "rows twice on the new primary: auth {c_auth} rows of {c_events} events, audit \
             {c_audit} rows of {c_ids} ids"
        ));
    }
    let missing_auth = local.events.difference(&central_events).count();
    let extra_auth = central_events.difference(&local.events).count();
    let missing_audit: Vec<i64> = {
        let mut m: Vec<i64> = local.audit.difference(&central_audit).copied().collect();
        m.sort();
        m
    };
    let extra_audit = central_audit.difference(&local.audit).count();
    if missing_auth > 0 || extra_auth > 0 || c_auth != local.events.len() as i64 {
        failures.push(format!(
            "A's auth log: {} rows on A, {c_auth} on the new primary; {missing_auth} of A's \
             events missing there, {extra_auth} there not on A (A wrote {LOST_ROWS} rows \
             while the standby was cut off)",
            local.events.len()
        ));
    }
    if !missing_audit.is_empty() || extra_audit > 0 || c_audit != local.audit.len() as i64 {
        failures.push(format!(
            "A's audit log: {} rows on A, {c_audit} on the new primary; missing there: local \
             ids {missing_audit:?}; {extra_audit} there not on A",
            local.audit.len()
        ));
    }
    match new_gen {
        None => failures.push(format!(
            "A's change {lost_change} (generation {lost_gen} on the old primary), lost by the \
             failover, is not in the new primary's changes after {CONVERGE:?}: A's changes \
             there: {:?}",
            new_primary.psql(&format!(
                "SELECT string_agg(origin_id::text, ',' ORDER BY gen) FROM changes
                  WHERE incarnation = '{inc}'"
            ))
        )),
        Some(g) if on_b_at.is_none() => failures.push(format!(
            "A's lost change is back (generation {g}) but B does not enforce it: B at \
             generation {}, tom asked for a code: {}",
            b.status().generation,
            !asked(&b, "tom").bypassed()
        )),
        Some(_) => {}
    }
    // A change made on B after the failover governs a login on A.
    let mut b_to_a = None;
    if asked(&a, "ann").bypassed() {
        let t0 = Instant::now();
        change(&b, &["override", "set", "ann", "--exempt", "no"]);
        b_to_a = wait_until(Duration::from_secs(15), Duration::from_millis(50), || {
            required(&asked(&a, "ann"))
        });
        match b_to_a {
            Some(t) => eprintln!(
                "a change made on B after the failover governs a login on A after {t:?} \
                 ({:?} with mfa-admin)",
                t0.elapsed()
            ),
            None => failures
                .push("a change made on B after the failover did not reach A within 15 s".into()),
        }
    } else {
        failures.push(
            "ann's exemption (set on A before the cut, on the standby) is gone from A".into(),
        );
    }
    for h in [&mut a, &mut b] {
        h.assert_fleetd_alive();
    }
    eprintln!(
        "failover test: reconnect, whole log {rows_at:?}, lost change on B {on_b_at:?}, B's \
         change on A {b_to_a:?}; total {:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "after the failover:\n- {}\n\nA's mfa-fleetd:\n{}\nB's mfa-fleetd:\n{}",
        failures.join("\n- "),
        a.fleetd_log(),
        b.fleetd_log()
    );
}
