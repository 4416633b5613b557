//! The daemon's life: it writes a heartbeat every 10 s while it runs, and exits 0 promptly on
//! SIGTERM when idle.

use std::time::{Duration, SystemTime};

use mfa_core::spool;

use super::{Env, ServerOpts, SmtpServer, smtp_plain, wait_for, wait_until};

#[test]
fn heartbeat_while_running_and_sigterm_exits_zero() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::new(&smtp_plain(server.port));
    let path = spool::heartbeat_path(&env.runtime());
    let mut sender = env.start();

    let first = wait_for("the first heartbeat", Duration::from_secs(10), || {
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<i64>().ok())
    });
    assert!(
        (first - mfa_core::now()).abs() <= 2,
        "heartbeat {first} is not now"
    );
    assert!(spool::heartbeat_age(&env.runtime(), SystemTime::now()).unwrap() <= 2);

    // It keeps beating: a new time within one period (10 s) and a bit.
    let second = wait_for(
        "the heartbeat to be refreshed",
        Duration::from_secs(15),
        || {
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .filter(|t| *t > first)
        },
    );
    assert!(
        (9..=12).contains(&(second - first)),
        "heartbeats {first} and {second}: expected about 10 s apart"
    );
    assert!(spool::heartbeat_age(&env.runtime(), SystemTime::now()).unwrap() <= 2);
    assert!(
        spool::heartbeat_age(&env.runtime(), SystemTime::now()).unwrap()
            < spool::HEARTBEAT_STALE_SECS
    );
    assert!(sender.running());

    // Idle (it delivered one message meanwhile), SIGTERM: exit 0 at once.
    let id = env.email("ivan@example.com", 600);
    server.wait_ids(std::slice::from_ref(&id), Duration::from_secs(10));
    wait_until("the spool to drain", Duration::from_secs(10), || {
        env.drained()
    });
    let (status, took) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", env.log());
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM took {took:?} to stop an idle sender"
    );
    assert!(env.log().contains("stopped (SIGTERM)"), "{}", env.log());
}

/// SIGTERM in the middle of a backlog on a slow relay: the sender finishes the sends under
/// way, puts the rest back in new/ and exits 0 within a second or two, not after the whole
/// backlog; nothing is lost and nothing sent twice.
#[test]
fn sigterm_mid_backlog_finishes_only_what_is_in_flight() {
    let server = SmtpServer::start(&ServerOpts {
        data_delay: 0.25,
        ..ServerOpts::default()
    });
    let env = Env::new(&smtp_plain(server.port));
    let ids: Vec<String> = (0..160)
        .map(|i| env.email(&format!("slow{i}@example.com"), 3600))
        .collect();
    let mut sender = env.start();
    wait_until("16 messages to arrive", Duration::from_secs(30), || {
        server.arrivals().len() >= 16
    });
    let (status, took) = sender.terminate(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", env.log());
    eprintln!(
        "SIGTERM with a backlog: exited in {:.2}s, {} sent, {} left in new/",
        took.as_secs_f64(),
        server.arrivals().len(),
        env.files("new").len()
    );
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM took {took:?}: the sender drained its backlog instead of stopping"
    );
    let arrivals = server.arrivals();
    assert!(arrivals.values().all(|n| *n == 1), "{arrivals:?}");
    let left = env.ids("new");
    assert!(
        !left.is_empty(),
        "the whole backlog went out before SIGTERM"
    );
    assert!(env.files("cur").is_empty() && env.files("failed").is_empty());
    for id in &ids {
        assert!(
            arrivals.contains_key(id) != left.contains(id),
            "{id}: sent {} and left in new/ {}",
            arrivals.contains_key(id),
            left.contains(id)
        );
    }
    // What was left goes out at the next start.
    env.once();
    server.wait_ids(&ids, Duration::from_secs(10));
    assert!(server.arrivals().values().all(|n| *n == 1));
    assert!(env.drained());
}

/// SIGHUP reloads the transports: a sender pointed at a port where no server listens keeps
/// the message queued; after the configuration names the right port and SIGHUP, it arrives.
#[test]
fn sighup_reloads_the_transport() {
    let server = SmtpServer::start(&ServerOpts::default());
    let dead = super::free_port();
    let env = Env::new(&smtp_plain(dead));
    let mut sender = env.start();
    let id = env.email("hugo@example.com", 600);
    wait_until("a failed attempt", Duration::from_secs(10), || {
        env.log().contains("attempt 1 failed")
    });
    assert!(server.arrivals().is_empty());
    let config = env.path("mfa.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let fixed = text.replace(
        &format!("port = {dead}"),
        &format!("port = {}", server.port),
    );
    assert_ne!(text, fixed, "the test could not rewrite the port: {text}");
    std::fs::write(&config, fixed).unwrap();
    super::support::signal(sender.pid(), "HUP");
    wait_until("the reload", Duration::from_secs(5), || {
        env.log().contains("configuration reloaded (SIGHUP)")
    });
    server.wait_ids(std::slice::from_ref(&id), Duration::from_secs(20));
    assert_eq!(server.arrivals().get(&id), Some(&1));
    assert!(sender.running(), "SIGHUP must not stop the sender");
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", env.log());
}

/// A second sender on the same spool (here `--once` beside the daemon) refuses to run: it
/// would move the daemon's claimed messages back and send them twice.
#[test]
fn one_sender_per_spool() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::new(&smtp_plain(server.port));
    let mut sender = env.start();
    wait_until("the daemon's heartbeat", Duration::from_secs(10), || {
        spool::heartbeat_age(&env.runtime(), SystemTime::now()).is_some()
    });
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_mfa-sender"))
        .arg("--config")
        .arg(env.path("mfa.toml"))
        .arg("--once")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another mfa-sender is running"),
        "{o:?}"
    );
    assert!(sender.running());
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    // With the daemon gone, --once runs.
    env.once();
}
