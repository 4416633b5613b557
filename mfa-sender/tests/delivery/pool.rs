//! Connection reuse: many messages over one SMTP connection, and what happens when a reused
//! connection fails. The server here is a small scripted SMTP server in this file (a thread
//! per connection on 127.0.0.1) rather than aiosmtpd: it counts connections and QUITs,
//! offers PIPELINING or not, and misbehaves on cue (closes between messages, answers 421 in
//! the middle of a session, gets out of step, sends garbage). It records a message before
//! it answers 250, as a real server commits before it replies, so "exactly once" is checked
//! on what the server accepted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Env, smtp_plain, tail, wait_until};

/// How the scripted server behaves. Transactions are counted per connection from 1.
#[derive(Clone, Default)]
struct Script {
    /// Offer PIPELINING in the EHLO reply.
    pipelining: bool,
    /// Close the connection, without a word, after this many accepted messages on it.
    close_after: Option<usize>,
    /// Answer `421 4.4.2` to MAIL of this transaction on every connection, and close.
    mail_421_at: Option<usize>,
    /// Answer `421` to the end of data of the first message the server receives (it is not
    /// accepted), and close.
    data_421_once: bool,
    /// On the first connection's second transaction: refuse RCPT with 550, yet answer 354
    /// to DATA (out of step: the client must not reuse that connection).
    out_of_step_once: bool,
    /// On the first connection's second transaction: answer MAIL with a line that is no
    /// SMTP reply.
    garbage_once: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Connect(usize),
    /// A message accepted: connection, the id from its `Message-ID: <ID@mfa>`.
    Message(usize, String),
    Quit(usize),
}

/// A running scripted server; stops (and its threads end) when dropped.
struct Scripted {
    port: u16,
    events: Arc<Mutex<Vec<(Instant, Event)>>>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn start(script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ev, st) = (Arc::clone(&events), Arc::clone(&stop));
        std::thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            let once = Arc::new(AtomicBool::new(false));
            let data_once = Arc::new(AtomicBool::new(false));
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let n = conns.fetch_add(1, Ordering::Relaxed);
                        let (ev, script) = (Arc::clone(&ev), script.clone());
                        let (once, data_once) = (Arc::clone(&once), Arc::clone(&data_once));
                        std::thread::spawn(move || {
                            let _ = session(sock, n, &script, &ev, &once, &data_once);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Scripted { port, events, stop }
    }

    fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn connections(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Connect(_)))
            .count()
    }

    fn quits(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Quit(_)))
            .count()
    }

    /// How many times each id was accepted.
    fn arrivals(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for e in self.events() {
            if let Event::Message(_, id) = e {
                *m.entry(id).or_insert(0) += 1;
            }
        }
        m
    }

    /// When the last event matching `f` happened.
    fn when(&self, f: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(_, e)| f(e))
            .map(|(t, _)| *t)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One SMTP session as the script says. Returns when the client quits or the script
/// closes the connection.
fn session(
    sock: TcpStream,
    conn: usize,
    script: &Script,
    events: &Mutex<Vec<(Instant, Event)>>,
    once: &AtomicBool,
    data_once: &AtomicBool,
) -> std::io::Result<()> {
    let record = |e: Event| events.lock().unwrap().push((Instant::now(), e));
    record(Event::Connect(conn));
    sock.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = sock.try_clone()?;
    let mut input = BufReader::new(sock);
    out.write_all(b"220 scripted ESMTP\r\n")?;
    let (mut txn, mut accepted) = (0usize, 0usize);
    let mut out_of_step = false;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                let pipe = if script.pipelining {
                    "250-PIPELINING\r\n"
                } else {
                    ""
                };
                write!(out, "250-scripted\r\n{pipe}250 8BITMIME\r\n")?;
            }
            "MAIL" => {
                txn += 1;
                let first_conn = conn == 0 && txn == 2;
                if script.mail_421_at == Some(txn) {
                    out.write_all(b"421 4.4.2 scripted: closing the session\r\n")?;
                    return Ok(());
                }
                if script.garbage_once && first_conn && !once.swap(true, Ordering::Relaxed) {
                    out.write_all(b"\x00\xffnot smtp at all\r\n")?;
                    continue;
                }
                out_of_step =
                    script.out_of_step_once && first_conn && !once.swap(true, Ordering::Relaxed);
                out.write_all(b"250 2.1.0 Ok\r\n")?;
            }
            "RCPT" if out_of_step => {
                out.write_all(b"550 5.1.1 <x@example.com>: no such user (scripted)\r\n")?
            }
            "RCPT" => out.write_all(b"250 2.1.5 Ok\r\n")?,
            "DATA" => {
                out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    if input.read_line(&mut l)? == 0 {
                        return Ok(());
                    }
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                if out_of_step {
                    // Whatever came is no message: the client must not trust this session.
                    out.write_all(b"554 5.5.1 no valid recipients (scripted)\r\n")?;
                    continue;
                }
                if script.data_421_once && !data_once.swap(true, Ordering::Relaxed) {
                    out.write_all(b"421 4.3.0 scripted: not accepted, closing\r\n")?;
                    return Ok(());
                }
                let id = data
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: <"))
                    .and_then(|l| l.strip_suffix("@mfa>"))
                    .unwrap_or("?")
                    .to_string();
                record(Event::Message(conn, id));
                out.write_all(b"250 2.0.0 Ok: queued\r\n")?;
                accepted += 1;
                if script.close_after == Some(accepted) {
                    return Ok(());
                }
            }
            "RSET" => out.write_all(b"250 2.0.0 Ok\r\n")?,
            "NOOP" => out.write_all(b"250 2.0.0 Ok\r\n")?,
            "QUIT" => {
                record(Event::Quit(conn));
                out.write_all(b"221 2.0.0 Bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 5.5.2 Error: command not recognized\r\n")?,
        }
    }
}

/// An installation sending to `server` with this many workers, and `n` messages queued.
fn queued(server: &Scripted, workers: usize, n: usize) -> (Env, Vec<String>) {
    let env = Env::with(
        &smtp_plain(server.port),
        &format!("[sender]\nworkers = {workers}\n"),
    );
    let ids = (0..n)
        .map(|i| env.email(&format!("user{i}@example.com"), 600))
        .collect();
    (env, ids)
}

/// Every id accepted exactly once, the spool empty, nothing in failed/.
fn exactly_once(server: &Scripted, env: &Env, ids: &[String], log: &str) {
    let arrivals = server.arrivals();
    for id in ids {
        assert_eq!(
            arrivals.get(id),
            Some(&1),
            "{id} accepted {:?} times; log:\n{}",
            arrivals.get(id),
            tail(log, 30)
        );
    }
    assert_eq!(
        arrivals.len(),
        ids.len(),
        "unexpected messages: {arrivals:?}"
    );
    assert!(env.drained(), "left in the spool: {:?}", env.files("cur"));
    assert!(env.files("failed").is_empty(), "{:?}", env.files("failed"));
}

#[test]
fn many_messages_over_one_connection_with_and_without_pipelining() {
    for pipelining in [true, false] {
        let server = Scripted::start(Script {
            pipelining,
            ..Script::default()
        });
        let (env, ids) = queued(&server, 1, 40);
        let o = env.once();
        exactly_once(&server, &env, &ids, &o.stderr);
        assert_eq!(
            server.connections(),
            1,
            "pipelining={pipelining}: {:?}",
            server.events()
        );
        // --once ends with a QUIT on the pooled connection.
        assert_eq!(server.quits(), 1, "{:?}", server.events());
        assert!(
            o.stderr
                .contains("40 message(s) sent, 1 SMTP connection(s) opened"),
            "{}",
            o.stderr
        );
    }
    // Four workers: at most four connections, whatever the number of messages.
    let server = Scripted::start(Script {
        pipelining: true,
        ..Script::default()
    });
    let (env, ids) = queued(&server, 4, 200);
    let o = env.once();
    exactly_once(&server, &env, &ids, &o.stderr);
    let c = server.connections();
    assert!((1..=4).contains(&c), "{c} connections for 4 workers");
    assert_eq!(server.quits(), c, "every connection closed with QUIT");
}

#[test]
fn a_server_that_closes_between_messages_gets_each_exactly_once() {
    for pipelining in [true, false] {
        let server = Scripted::start(Script {
            pipelining,
            close_after: Some(3),
            ..Script::default()
        });
        let (env, ids) = queued(&server, 2, 30);
        let o = env.once();
        exactly_once(&server, &env, &ids, &o.stderr);
        // 30 messages, 3 per connection: at least 10 connections.
        assert!(server.connections() >= 10, "{:?}", server.events());
        // A dead pooled connection found before the message was written: the message went
        // out at once on a fresh one, not after a retry delay.
        assert!(!o.stderr.contains("retry in"), "{}", o.stderr);
        assert!(o.took < Duration::from_secs(20), "{:?}", o.took);
    }
}

#[test]
fn a_421_in_the_middle_of_a_session_loses_and_doubles_nothing() {
    // 421 to MAIL of each connection's third transaction: the server drops the session.
    for pipelining in [true, false] {
        let server = Scripted::start(Script {
            pipelining,
            mail_421_at: Some(3),
            ..Script::default()
        });
        let (env, ids) = queued(&server, 2, 20);
        let o = env.once();
        exactly_once(&server, &env, &ids, &o.stderr);
        assert!(!o.stderr.contains("retry in"), "{}", o.stderr);
        // Two messages per connection, then the 421: about ten connections.
        assert!(server.connections() >= 10, "{:?}", server.events());
    }
    // 421 to the end of data: that message was not accepted; it is retried (after its
    // backoff, on a new connection) and arrives once.
    let server = Scripted::start(Script {
        pipelining: true,
        data_421_once: true,
        ..Script::default()
    });
    let (env, ids) = queued(&server, 1, 5);
    let o = env.once();
    exactly_once(&server, &env, &ids, &o.stderr);
    assert!(
        o.stderr.contains("attempt 1 failed (DATA: 421 4.3.0"),
        "{}",
        o.stderr
    );
    assert!(server.connections() >= 2, "{:?}", server.events());
}

#[test]
fn a_hostile_or_out_of_step_server_costs_only_its_connection() {
    // RCPT refused, then 354 to the pipelined DATA: the refused message fails for good
    // (550), the connection is dropped rather than reused, the others arrive once.
    let server = Scripted::start(Script {
        pipelining: true,
        out_of_step_once: true,
        ..Script::default()
    });
    let (env, ids) = queued(&server, 1, 6);
    env.once();
    let failed = env.ids("failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        env.reason(&failed[0]).unwrap().contains("550"),
        "{failed:?}"
    );
    let rest: Vec<String> = ids.into_iter().filter(|i| *i != failed[0]).collect();
    let arrivals = server.arrivals();
    for id in &rest {
        assert_eq!(arrivals.get(id), Some(&1), "{arrivals:?}");
    }
    assert_eq!(server.connections(), 2, "{:?}", server.events());

    // Bytes that are no SMTP reply, on a reused connection: that connection is dropped and
    // the message sent on a fresh one, once.
    for pipelining in [true, false] {
        let server = Scripted::start(Script {
            pipelining,
            garbage_once: true,
            ..Script::default()
        });
        let (env, ids) = queued(&server, 1, 6);
        let o = env.once();
        exactly_once(&server, &env, &ids, &o.stderr);
        assert_eq!(server.connections(), 2, "{:?}", server.events());
    }
}

#[test]
fn an_idle_connection_is_closed_with_quit_and_a_new_one_opened_later() {
    let server = Scripted::start(Script {
        pipelining: true,
        ..Script::default()
    });
    let env = Env::with(&smtp_plain(server.port), "[sender]\nworkers = 2\n");
    let mut sender = env.start();
    let first = env.email("a@example.com", 600);
    wait_until("the first message", Duration::from_secs(10), || {
        server.arrivals().contains_key(&first)
    });
    let sent_at = server.when(|e| matches!(e, Event::Message(..))).unwrap();
    // Idle for IDLE_LIMIT (5 s): QUIT, checked by an idle worker every second.
    wait_until(
        "QUIT on the idle connection",
        Duration::from_secs(10),
        || server.quits() == 1,
    );
    let idle = server.when(|e| matches!(e, Event::Quit(_))).unwrap() - sent_at;
    assert!(
        idle >= Duration::from_millis(4500) && idle <= Duration::from_secs(9),
        "closed after {idle:?} idle"
    );
    // The next message opens a new connection, and SIGTERM closes it with QUIT.
    let second = env.email("b@example.com", 600);
    wait_until("the second message", Duration::from_secs(10), || {
        server.arrivals().contains_key(&second)
    });
    assert_eq!(server.connections(), 2, "{:?}", server.events());
    let (status, took) = sender.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(server.quits(), 2, "{:?}", server.events());
    assert!(
        env.log()
            .contains("2 message(s) sent, 2 SMTP connection(s) opened"),
        "{}",
        env.log()
    );
}
