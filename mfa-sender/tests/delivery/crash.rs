//! Nothing is lost when the sender dies: 1,000 messages, the daemon SIGKILLed twice in the
//! middle of the burst and restarted. Every message arrives; a message arrives twice only if
//! the server had accepted it and the dead sender had not yet deleted it (at most the
//! messages in flight: 2 × workers per kill).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Env, ServerOpts, SmtpServer, smtp_plain, tail, wait_until};

const MESSAGES: usize = 1000;
/// The default `[sender] workers`.
const WORKERS: usize = 8;
/// Kill when this many distinct messages have arrived.
const KILL_AT: [usize; 2] = [300, 650];

#[test]
fn sigkill_twice_mid_burst_loses_nothing() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::new(&smtp_plain(server.port));
    let ids: Vec<String> = (0..MESSAGES)
        .map(|i| env.email(&format!("user{i}@example.com"), 3600))
        .collect();
    let all: BTreeSet<String> = ids.iter().cloned().collect();
    let started = Instant::now();
    let mut sender = env.start();
    // Accepted by the server but still in the spool when a sender died: the only messages
    // that may arrive twice.
    let mut unacked_at_kills: BTreeSet<String> = BTreeSet::new();

    for (k, at) in KILL_AT.iter().enumerate() {
        wait_until(
            &format!("{at} messages to arrive"),
            Duration::from_secs(120),
            || server.arrivals().len() >= *at,
        );
        sender.kill();
        let arrived_at_kill = server.arrivals().len();
        assert!(
            arrived_at_kill < MESSAGES,
            "kill {k} came after the burst ({arrived_at_kill} arrived): nothing was tested"
        );
        // Let the server finish whatever the dead sender had fully transmitted.
        let mut last = (server.events().len(), Instant::now());
        wait_until("the server to settle", Duration::from_secs(10), || {
            let n = server.events().len();
            if n != last.0 {
                last = (n, Instant::now());
            }
            last.1.elapsed() >= Duration::from_millis(300)
        });
        let arrived: BTreeSet<String> = server.arrivals().into_keys().collect();
        let spooled: BTreeSet<String> = env.ids("new").into_iter().chain(env.ids("cur")).collect();
        assert!(env.files("tmp").is_empty() && env.files("failed").is_empty());
        let lost: Vec<&String> = all
            .iter()
            .filter(|id| !arrived.contains(*id) && !spooled.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "kill {k}: {} message(s) neither arrived nor in the spool: {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        let unacked: BTreeSet<String> = arrived.intersection(&spooled).cloned().collect();
        eprintln!(
            "kill {k}: {arrived_at_kill} arrived at the kill, {} after settling, {} spooled, \
             {} accepted but not yet deleted",
            arrived.len(),
            spooled.len(),
            unacked.len()
        );
        assert!(
            unacked.len() <= 2 * WORKERS,
            "kill {k}: {} messages were accepted but still spooled (more than in flight)",
            unacked.len()
        );
        unacked_at_kills.extend(unacked);
        sender = env.start();
    }

    server.wait_ids(&ids, Duration::from_secs(120));
    wait_until("the spool to drain", Duration::from_secs(30), || {
        env.drained()
    });
    let (status, _) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(env.files("failed").is_empty(), "{:?}", env.files("failed"));

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), MESSAGES);
    let duplicates: Vec<(&String, &usize)> = arrivals.iter().filter(|(_, n)| **n > 1).collect();
    let extra: usize = duplicates.iter().map(|(_, n)| **n - 1).sum();
    eprintln!(
        "crash: {MESSAGES} messages, {} mails, {extra} duplicate(s) in {:.1}s",
        server.mails().len(),
        started.elapsed().as_secs_f64()
    );
    for (id, n) in &duplicates {
        assert!(
            unacked_at_kills.contains(*id) && **n == 2,
            "{id} arrived {n} times but was not in flight at a kill\n{}",
            tail(&env.log(), 20)
        );
    }
    assert!(extra <= KILL_AT.len() * 2 * WORKERS);
    // Every mail went to the message's own recipient.
    for m in server.mails() {
        let i: usize = m.rcpt[0]
            .strip_prefix("user")
            .and_then(|r| r.strip_suffix("@example.com"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(m.id(), ids[i]);
    }
}
