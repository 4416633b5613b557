//! The SMTP server is down for 30 s: the sender keeps retrying with backoff; when the server
//! comes back on the same port everything still valid arrives, and what expired meanwhile
//! fails as "expired". The only slow test (about a minute).

use std::time::{Duration, Instant};

use super::{Env, ServerOpts, SmtpServer, free_port, smtp_plain, tail, wait_until};

const OUTAGE: Duration = Duration::from_secs(30);

#[test]
fn server_down_for_30s() {
    let port = free_port();
    let env = Env::new(&smtp_plain(port));
    let short: Vec<String> = (0..3)
        .map(|i| env.email(&format!("short{i}@example.com"), 10))
        .collect();
    let long: Vec<String> = (0..5)
        .map(|i| env.email(&format!("long{i}@example.com"), 600))
        .collect();
    let started = Instant::now();
    let _sender = env.start();

    // While the server is down: the short-lived ones expire and fail, the others wait in cur/
    // for their next try; nothing else fails.
    wait_until(
        "the short-lived messages to fail as expired",
        OUTAGE,
        || short.iter().all(|id| env.reason(id).is_some()),
    );
    for id in &short {
        assert_eq!(env.reason(id).as_deref(), Some("expired"), "{id}");
    }
    let remaining = OUTAGE.saturating_sub(started.elapsed());
    std::thread::sleep(remaining);
    assert_eq!(
        env.ids("cur"),
        long,
        "{:?}\n{}",
        env.files("failed"),
        tail(&env.log(), 20)
    );
    assert!(env.files("new").is_empty());
    assert_eq!(env.files("failed").len(), 2 * short.len());
    assert!(
        env.log().contains("attempt 4 failed"),
        "expected retries with backoff:\n{}",
        env.log()
    );

    let server = SmtpServer::start(&ServerOpts {
        port: Some(port),
        ..ServerOpts::default()
    });
    let up = Instant::now();
    // Backoff by now is 16-32 s (±25 %): allow one full period and a margin.
    server.wait_ids(&long, Duration::from_secs(50));
    wait_until("the spool to drain", Duration::from_secs(10), || {
        env.drained()
    });
    eprintln!(
        "outage: all {} delivered {:.1}s after the server came back ({:.1}s in all)",
        long.len(),
        up.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), long.len(), "{arrivals:?}");
    assert!(arrivals.values().all(|n| *n == 1), "{arrivals:?}");
    assert_eq!(env.files("failed").len(), 2 * short.len());
}
