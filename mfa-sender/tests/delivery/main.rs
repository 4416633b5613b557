//! Delivery tests of mfa-sender against a real SMTP server: Debian's python3-aiosmtpd, run
//! by `smtp_server.py` beside this file on 127.0.0.1, which stores every message it accepts
//! (and every AUTH, 4xx and 5xx it answers) as JSON lines. Each test drives the built
//! `mfa-sender` on a private configuration and spool in a temporary directory and tells the
//! messages apart by the `Message-ID: <ID@mfa>` the sender puts on each mail. `pool` (the
//! reuse of connections) runs a scripted SMTP server of its own instead, which counts
//! connections and misbehaves on cue.
//!
//! As root, `unprivileged` and `preflight` also run the sender as `nobody` (setpriv) on a
//! spool laid out as an installed system's, with messages root queued under umask 077.
//!
//! Needs `/usr/bin/python3` with aiosmtpd (Debian: python3-aiosmtpd) and `openssl`. One test
//! binary, a module per topic; every child process is killed by a guard when a test ends.

// A failed assertion is the point of a test; helpers here panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod crash;
mod failures;
mod lifecycle;
mod limits;
mod outage;
mod plain;
mod pool;
mod preflight;
mod tls;
mod unprivileged;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use serde_json::Value;

use support::*;

pub const SERVER_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/delivery/smtp_server.py");
/// The From address of every test configuration.
pub const FROM: &str = "mfa@example.com";

/// The aiosmtpd of [`SmtpServer`].
const SMTP_SERVER: PyServerSpec = PyServerSpec {
    name: "the SMTP server",
    script: SERVER_SCRIPT,
    prefix: "mfa-smtp",
    hint: " (is python3-aiosmtpd installed?)",
    ready_timeout: Duration::from_secs(15),
    grace: Duration::from_secs(5),
};

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The last `n` lines of a text, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------
// The SMTP server

/// How the test SMTP server behaves.
#[derive(Debug, Clone, Default)]
pub struct ServerOpts {
    /// Bind this port (default: any free one).
    pub port: Option<u16>,
    /// Recipients answered with 550.
    pub reject: Vec<String>,
    /// Answer 451 to this many first RCPT commands.
    pub tempfail_rcpt: u32,
    /// Answer 451 to this many first DATA commands.
    pub tempfail_data: u32,
    /// Seconds each accepted DATA takes (a slow relay).
    pub data_delay: f64,
    /// Certificate and key: offer STARTTLS and require it.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// User and password: require AUTH.
    pub auth: Option<(String, String)>,
}

/// A running aiosmtpd; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct SmtpServer {
    server: PyServer,
    pub port: u16,
}

/// One message the server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt: Vec<String>,
    pub from: String,
    pub data: String,
    pub tls: bool,
    pub auth: Option<String>,
}

impl Mail {
    /// The value of a header (unfolded), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(v) = value.as_mut() {
                    v.push_str(line);
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_string());
            }
        }
        value
    }

    /// The spool id from `Message-ID: <ID@mfa>`.
    pub fn id(&self) -> String {
        let mid = self
            .header("Message-ID")
            .unwrap_or_else(|| panic!("mail without Message-ID: {}", self.data));
        mid.strip_prefix('<')
            .and_then(|m| m.strip_suffix("@mfa>"))
            .unwrap_or_else(|| panic!("Message-ID {mid:?} is not <ID@mfa>"))
            .to_string()
    }

    /// The body (after the blank line).
    pub fn body(&self) -> &str {
        self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
}

impl SmtpServer {
    pub fn start(opts: &ServerOpts) -> SmtpServer {
        let server = PyServer::start(&SMTP_SERVER, |cmd, dir| {
            cmd.arg("--out")
                .arg(dir.join("events.jsonl"))
                .arg("--port")
                .arg(opts.port.unwrap_or(0).to_string())
                .arg("--tempfail-rcpt")
                .arg(opts.tempfail_rcpt.to_string())
                .arg("--tempfail-data")
                .arg(opts.tempfail_data.to_string())
                .arg("--data-delay")
                .arg(opts.data_delay.to_string());
            for r in &opts.reject {
                cmd.arg("--reject").arg(r);
            }
            if let Some((cert, key)) = &opts.tls {
                cmd.arg("--cert").arg(cert).arg("--key").arg(key);
            }
            if let Some((user, password)) = &opts.auth {
                cmd.arg("--user").arg(user).arg("--password").arg(password);
            }
        });
        SmtpServer {
            port: server.port,
            server,
        }
    }

    /// Every event so far (complete lines only).
    pub fn events(&self) -> Vec<Value> {
        self.server.json_lines("events.jsonl")
    }

    /// Events of one kind.
    pub fn events_of(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Every message accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.events_of("message")
            .into_iter()
            .map(|e| Mail {
                rcpt: e["rcpt"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap().to_string())
                    .collect(),
                from: e["from"].as_str().unwrap_or("").to_string(),
                data: e["data"].as_str().unwrap().to_string(),
                tls: e["tls"].as_bool().unwrap(),
                auth: e["auth"].as_str().map(String::from),
            })
            .collect()
    }

    /// How many times each spool id arrived.
    pub fn arrivals(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for mail in self.mails() {
            *m.entry(mail.id()).or_insert(0) += 1;
        }
        m
    }

    /// Waits until every one of `ids` arrived at least once; returns all mails.
    pub fn wait_ids(&self, ids: &[String], timeout: Duration) -> Vec<Mail> {
        wait_until(
            &format!("{} message(s) to arrive", ids.len()),
            timeout,
            || {
                let a = self.arrivals();
                ids.iter().all(|id| a.contains_key(id))
            },
        );
        self.mails()
    }

    /// SIGTERM, then SIGKILL after 5 s; nothing if it has already stopped.
    pub fn stop(&mut self) {
        self.server.stop();
    }
}

// ---------------------------------------------------------------------------------------
// The installation: configuration, spool, runtime directory

/// A private mfa installation for the sender: config, spool and runtime under one temp dir
/// (an [`Install`] with an `[smtp]` table, and what the delivery tests ask of it).
pub struct Env(Install);

impl Deref for Env {
    type Target = Install;

    fn deref(&self) -> &Install {
        &self.0
    }
}

/// The `[smtp]` lines of a plain (no TLS, no AUTH) server on 127.0.0.1.
pub fn smtp_plain(port: u16) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"{FROM}\"\ntimeout = \"5s\"\n"
    )
}

impl Env {
    /// A configuration with these `[smtp]` lines, and the spool and runtime directories.
    pub fn new(smtp: &str) -> Env {
        Env::with(smtp, "")
    }

    /// Like [`Env::new`], with more TOML appended (such as a `[sender]` table).
    pub fn with(smtp: &str, extra: &str) -> Env {
        Env(Install::create(
            tempfile::tempdir().unwrap(),
            &format!("[smtp]\n{smtp}\n{extra}"),
        ))
    }

    pub fn runtime(&self) -> PathBuf {
        self.path("run")
    }

    /// Ids of the messages in a spool subdirectory.
    pub fn ids(&self, sub: &str) -> Vec<String> {
        self.files(sub)
            .iter()
            .filter_map(|n| n.strip_suffix(".json"))
            .map(String::from)
            .collect()
    }

    /// The reason next to a failed message.
    pub fn reason(&self, id: &str) -> Option<String> {
        // As mfa-admin reads it: once the message is in failed/ (the sender writes the
        // reason first, then moves the message there). Reading the reason file alone could
        // catch it created and not yet written (outage::server_down_for_30s saw "").
        spool::failed(&self.spool(), id)
    }

    /// Queues a message to `to` that expires `ttl` seconds from now (negative: expired).
    pub fn enqueue(&self, to: &str, channel: Channel, ttl: i64) -> String {
        let now = mfa_core::now();
        let id = format!("{now}-t{:06}", seq());
        let msg = Message {
            id: id.clone(),
            created: now,
            expires: now + ttl,
            channel,
            to: to.to_string(),
            subject: format!("test {id}"),
            body: format!("Delivery test message {id}."),
            user: "alice".into(),
            kind: Kind::Test,
            masked_to: "a***@e***.com".into(),
        };
        spool::enqueue(&self.spool(), &msg).unwrap();
        id
    }

    /// Queues an email to `to`.
    pub fn email(&self, to: &str, ttl: i64) -> String {
        self.enqueue(to, Channel::Email, ttl)
    }

    /// The sender's log (stderr of every run started by [`Env::start`]).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("sender.log")).unwrap_or_default()
    }

    /// `mfa-sender --once`, asserted to exit 0.
    pub fn once(&self) -> Out {
        let o = self.run(&["--once"], Duration::from_secs(60));
        assert_eq!(o.code, 0, "mfa-sender --once failed: {o:?}");
        o
    }

    /// Starts the daemon; its stderr goes to `sender.log`.
    pub fn start(&self) -> Sender {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("sender.log"))
            .unwrap();
        let child = self
            .command(&[])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Sender { child }
    }
}

/// A running `mfa-sender` daemon; SIGKILLed when dropped.
pub struct Sender {
    child: Child,
}

impl Sender {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM; returns the exit status and how long the exit took, or panics after
    /// `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        let start = Instant::now();
        signal(self.pid(), "TERM");
        let status = wait_child(&mut self.child, timeout)
            .unwrap_or_else(|| panic!("mfa-sender did not exit within {timeout:?} of SIGTERM"));
        (status, start.elapsed())
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.kill();
    }
}
