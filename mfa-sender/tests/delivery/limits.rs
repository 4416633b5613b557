//! Send limits and fair order (issue 10, message bombing): a burst of passcodes to one
//! destination is capped at `[sender] destination_limit` (the rest go to failed/ as
//! `rate-limited`, logged), the host-wide `hourly_limit` caps everything, and a flood does not
//! delay another user's code: waiting messages go out round-robin per destination.

use std::time::{Duration, Instant};

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};

use super::{Env, ServerOpts, SmtpServer, seq, smtp_plain, wait_until};

/// Queues a passcode (what a login queues; `mfa-admin test` messages are not limited).
fn passcode(env: &Env, to: &str) -> String {
    let now = mfa_core::now();
    let id = format!("{now}-p{:06}", seq());
    let msg = Message {
        id: id.clone(),
        created: now,
        expires: now + 600,
        channel: Channel::Email,
        to: to.to_string(),
        subject: format!("passcode {id}"),
        body: format!("Your passcode is V-123456 ({id})."),
        user: "alice".into(),
        kind: Kind::Passcode,
        masked_to: "m***@e***.com".into(),
    };
    spool::enqueue(&env.spool(), &msg).unwrap();
    id
}

#[test]
fn a_burst_to_one_destination_is_capped_and_others_still_get_theirs() {
    let server = SmtpServer::start(&ServerOpts::default());
    // The defaults: 5 per 15 minutes per destination, 300 per hour.
    let env = Env::new(&smtp_plain(server.port));
    let mut sender = env.start();
    let start = Instant::now();
    let flood: Vec<String> = (0..100)
        .map(|_| passcode(&env, "victim@example.com"))
        .collect();
    let other = passcode(&env, "bob@example.com");
    server.wait_ids(std::slice::from_ref(&other), Duration::from_secs(10));
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the other user's code took {took:?}"
    );
    wait_until("the spool to drain", Duration::from_secs(20), || {
        env.drained()
    });
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));

    let arrivals = server.arrivals();
    let flooded: Vec<&String> = flood
        .iter()
        .filter(|id| arrivals.contains_key(*id))
        .collect();
    assert_eq!(flooded.len(), 5, "the flood is capped at 5: {arrivals:?}");
    assert_eq!(arrivals.get(&other), Some(&1));
    // The rest are in failed/ with the reason, and each was logged.
    let failed = env.ids("failed");
    assert_eq!(failed.len(), 95, "{failed:?}");
    let log = env.log();
    for id in &failed {
        assert!(flood.contains(id), "{id} is not part of the flood");
        let why = env.reason(id).unwrap();
        assert!(
            why.starts_with("rate-limited: 5 passcodes to this destination in the last 15m"),
            "{why}"
        );
        assert!(
            log.contains(&format!("id={id} to=m***@e***.com failed: rate-limited: ")),
            "{log}"
        );
    }
}

#[test]
fn a_flood_waits_behind_other_destinations() {
    // No limit, one worker, a slow relay: only the order decides when bob's code goes out.
    let server = SmtpServer::start(&ServerOpts {
        data_delay: 0.1,
        ..ServerOpts::default()
    });
    let env = Env::with(
        &smtp_plain(server.port),
        "[sender]\nworkers = 1\ndestination_limit = 0\nhourly_limit = 0\n",
    );
    let flood: Vec<String> = (0..40)
        .map(|_| passcode(&env, "victim@example.com"))
        .collect();
    let other = passcode(&env, "bob@example.com");
    env.once();
    let order: Vec<String> = server.mails().iter().map(|m| m.id()).collect();
    assert_eq!(order.len(), 41, "nothing limited: {order:?}");
    let at = order.iter().position(|id| *id == other).unwrap();
    // First in first out would send it 41st, 4 s after the flood began.
    assert!(at <= 2, "bob's code went out {}th: {order:?}", at + 1);
    assert!(flood.iter().all(|id| order.contains(id)));
}

#[test]
fn the_hourly_cap_is_host_wide_and_test_messages_are_not_limited() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::with(
        &smtp_plain(server.port),
        "[sender]\ndestination_limit = 2\ndestination_window = \"1h\"\nhourly_limit = 3\n",
    );
    let codes: Vec<String> = (0..6)
        .map(|i| passcode(&env, &format!("user{}@example.com", i % 3)))
        .collect();
    // mfa-admin test messages (root's) to one address: never limited, never counted.
    let tests: Vec<String> = (0..4).map(|_| env.email("ops@example.com", 600)).collect();
    let out = env.once();
    let arrivals = server.arrivals();
    let sent = codes.iter().filter(|id| arrivals.contains_key(*id)).count();
    assert_eq!(sent, 3, "host-wide cap 3: {arrivals:?}");
    assert!(tests.iter().all(|id| arrivals.get(id) == Some(&1)));
    let failed = env.ids("failed");
    assert_eq!(failed.len(), 3);
    for id in &failed {
        let why = env.reason(id).unwrap();
        assert!(
            why.starts_with("rate-limited: 3 passcodes from this host in the last hour (sender.hourly_limit = 3)"),
            "{why}"
        );
    }
    assert_eq!(
        out.stderr.matches("failed: rate-limited").count(),
        3,
        "{}",
        out.stderr
    );
}

#[test]
fn invalid_limits_are_refused_with_the_key() {
    let env = Env::with(
        &smtp_plain(1),
        "[sender]\ndestination_window = \"forever\"\n",
    );
    let out = env.run(&["--once"], Duration::from_secs(20));
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("sender.destination_window = \"forever\"")
            && out.stderr.contains("15m"),
        "{}",
        out.stderr
    );
    let env = Env::with(&smtp_plain(1), "[sender]\ndestination_limit = -5\n");
    let out = env.run(&["--once"], Duration::from_secs(20));
    assert_eq!(out.code, 2, "{out:?}");
    // The TOML error names the file, the line of the key and the value.
    assert!(
        out.stderr.contains("mfa.toml, line ") && out.stderr.contains("`-5`"),
        "{}",
        out.stderr
    );
}

#[test]
fn sighup_reloads_the_limits_and_keeps_the_counts() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::with(
        &smtp_plain(server.port),
        "[sender]\ndestination_limit = 1\n",
    );
    let mut sender = env.start();
    let first = passcode(&env, "dora@example.com");
    server.wait_ids(std::slice::from_ref(&first), Duration::from_secs(10));
    let second = passcode(&env, "dora@example.com");
    wait_until(
        "the second to be rate-limited",
        Duration::from_secs(10),
        || {
            env.reason(&second)
                .is_some_and(|r| r.starts_with("rate-limited: 1 passcodes"))
        },
    );
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replace("destination_limit = 1", "destination_limit = 3"),
    )
    .unwrap();
    super::signal(sender.pid(), "HUP");
    wait_until("the reload", Duration::from_secs(10), || {
        env.log().contains("configuration reloaded")
    });
    // The first send still counts: two more go out, the next one is limited.
    let more: Vec<String> = (0..3).map(|_| passcode(&env, "dora@example.com")).collect();
    server.wait_ids(&more[..2], Duration::from_secs(10));
    wait_until(
        "the fourth to be rate-limited",
        Duration::from_secs(10),
        || {
            env.reason(&more[2])
                .is_some_and(|r| r.starts_with("rate-limited: 3 passcodes"))
        },
    );
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert_eq!(server.arrivals().len(), 3);
}
