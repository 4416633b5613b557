//! SMS API tests of mfa-sender: the built binary against local mock servers of the Twilio
//! and TeleSign HTTP APIs (`mock_sms.py` beside this file, run by Debian's
//! `/usr/bin/python3` on 127.0.0.1 with a free port). The mock implements each provider's
//! documented wire protocol, refuses anything else with the provider's own error JSON, and
//! logs every request as a JSON line, so a test can assert both what the sender did
//! (spool, exit code, log) and exactly what it put on the wire (path, form fields, auth,
//! timing of retries).
//!
//! One test binary, a module per topic; every child process is killed by a guard when a
//! test ends.

// A failed assertion is the point of a test; helpers here panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod check;
mod telesign;
mod twilio;

use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use serde_json::Value;

use support::*;

pub const MOCK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sms/mock_sms.py");

/// The Twilio test account the mock knows.
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "9f86d081884c7d659a2feaa0c55ad015";
pub const TWILIO_FROM: &str = "+15005550006";
pub const SERVICE_SID: &str = "MG0123456789abcdef0123456789abcdef";
/// The TeleSign test account the mock knows.
pub const CUSTOMER_ID: &str = "FFFFFFFF-EEEE-DDDD-1234-AB1234567890";
pub const API_KEY: &str = "EXAMPLE----ABC123X9ZJMV1Ylmzm/8rNM3TAb0e2Ja7w==";

/// The recipient of most tests.
pub const TO: &str = "+14155550123";
/// A body with characters that form encoding must escape (`+`, `&`, `=`, `%`, spaces, UTF-8).
pub const BODY: &str = "mfa passcode 482913 for alice@vm (valid 5 min) & +1=%2B café";
/// The passcode inside [`BODY`]: it must never appear in the sender's log.
pub const PASSCODE: &str = "482913";

// ---------------------------------------------------------------------------------------
// The mock API server

/// Which API the mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Twilio,
    Telesign,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Twilio => "twilio",
            Provider::Telesign => "telesign",
        }
    }
}

/// The mock of [`Mock`].
const MOCK_SERVER: PyServerSpec = PyServerSpec {
    name: "the mock SMS API",
    script: MOCK_SCRIPT,
    prefix: "mfa-sms-mock",
    hint: "",
    ready_timeout: Duration::from_secs(10),
    grace: Duration::from_secs(2),
};

/// A running mock; stopped (SIGTERM, then SIGKILL after 2 s) when dropped.
pub struct Mock {
    server: PyServer,
    pub port: u16,
}

/// One request the mock saw, as it logged it.
#[derive(Debug, Clone)]
pub struct Request {
    pub raw: Value,
    /// `time.monotonic()` when it arrived (seconds).
    pub t: f64,
    pub method: String,
    pub path: String,
    pub status: u64,
    pub code: Option<i64>,
    pub accepted: bool,
}

impl Request {
    /// The form fields, each with every value it was given.
    pub fn form(&self) -> BTreeMap<String, Vec<String>> {
        let mut m = BTreeMap::new();
        if let Some(obj) = self.raw["form"].as_object() {
            for (k, v) in obj {
                let values = v
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect();
                m.insert(k.clone(), values);
            }
        }
        m
    }

    /// The form fields, asserting each was given exactly once.
    pub fn fields(&self) -> BTreeMap<String, String> {
        self.form()
            .into_iter()
            .map(|(k, v)| {
                assert_eq!(v.len(), 1, "form field {k} given {} times: {v:?}", v.len());
                (k, v.into_iter().next().unwrap())
            })
            .collect()
    }

    /// The HTTP Basic credentials, if the request had any.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let a = &self.raw["auth"];
        Some((
            a["user"].as_str()?.to_string(),
            a["password"].as_str()?.to_string(),
        ))
    }

    /// The id the mock answered with (Twilio sid, TeleSign reference_id).
    pub fn id(&self) -> String {
        self.raw["id"].as_str().unwrap_or_default().to_string()
    }
}

impl Mock {
    /// Starts a mock of `provider` with extra flags (`--rate-limit 2`, `--reject N:CODE`, ...).
    /// The account it accepts is [`ACCOUNT_SID`]/[`AUTH_TOKEN`] with [`TWILIO_FROM`] and
    /// [`SERVICE_SID`], or [`CUSTOMER_ID`]/[`API_KEY`].
    pub fn start(provider: Provider, flags: &[&str]) -> Mock {
        let server = PyServer::start(&MOCK_SERVER, |cmd, dir| {
            cmd.args(["--provider", provider.name()])
                .arg("--log")
                .arg(dir.join("requests.jsonl"))
                .args(["--account-sid", ACCOUNT_SID, "--auth-token", AUTH_TOKEN])
                .args([
                    "--from",
                    TWILIO_FROM,
                    "--messaging-service-sid",
                    SERVICE_SID,
                ])
                .args(["--customer-id", CUSTOMER_ID, "--api-key", API_KEY])
                .args(flags);
        });
        Mock {
            port: server.port,
            server,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, in arrival order (complete lines only).
    pub fn requests(&self) -> Vec<Request> {
        let mut v: Vec<Request> = self
            .server
            .json_lines("requests.jsonl")
            .into_iter()
            .map(|raw| Request {
                t: raw["t"].as_f64().unwrap(),
                method: raw["method"].as_str().unwrap().to_string(),
                path: raw["path"].as_str().unwrap().to_string(),
                status: raw["status"].as_u64().unwrap(),
                code: raw["code"].as_i64(),
                accepted: raw["accepted"].as_bool().unwrap(),
                raw,
            })
            .collect();
        v.sort_by_key(|r| r.raw["seq"].as_u64());
        v
    }

    /// The requests the mock accepted.
    pub fn accepted(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.accepted).collect()
    }

    /// Requests whose form sends to `field` = `value` (To for Twilio, phone_number for
    /// TeleSign).
    pub fn requests_to(&self, field: &str, value: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.form()
                    .get(field)
                    .is_some_and(|v| v.iter().any(|x| x == value))
            })
            .collect()
    }

    /// Waits until `n` requests were accepted; returns them.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Request> {
        wait_until(
            &format!("{n} accepted request(s); saw {:?}", self.summary()),
            timeout,
            || self.accepted().len() >= n,
        );
        self.accepted()
    }

    /// `METHOD path -> status` of each request, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
            .collect()
    }

    /// The mock's stderr (its own failures; it logs requests to the JSON file only).
    pub fn stderr(&self) -> String {
        self.server.read("stderr")
    }
}

// ---------------------------------------------------------------------------------------
// A private installation: configuration, secrets, spool, runtime directory

/// The `[sms]` table of a test, before it is written out.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub provider: Provider,
    pub base_url: String,
    /// The secret written to the token (Twilio) or API key (TeleSign) file.
    pub secret: String,
    /// The mode of that file.
    pub secret_mode: u32,
    /// Twilio: `from` (None: leave it out).
    pub from: Option<String>,
    /// Twilio: `messaging_service_sid`.
    pub messaging_service_sid: Option<String>,
}

impl SmsConfig {
    /// Twilio with the mock's account and `from`.
    pub fn twilio(mock: &Mock) -> SmsConfig {
        SmsConfig {
            provider: Provider::Twilio,
            base_url: mock.base_url(),
            secret: AUTH_TOKEN.into(),
            secret_mode: 0o600,
            from: Some(TWILIO_FROM.into()),
            messaging_service_sid: None,
        }
    }

    /// TeleSign with the mock's account.
    pub fn telesign(mock: &Mock) -> SmsConfig {
        SmsConfig {
            provider: Provider::Telesign,
            base_url: mock.base_url(),
            secret: API_KEY.into(),
            secret_mode: 0o600,
            from: None,
            messaging_service_sid: None,
        }
    }
}

/// A private mfa installation for the sender under one temporary directory (an [`Install`]
/// with an `[sms]` table and its secret file, and what the SMS tests ask of it).
pub struct Env {
    install: Install,
    /// The token or API key file.
    pub secret: PathBuf,
}

impl Deref for Env {
    type Target = Install;

    fn deref(&self) -> &Install {
        &self.install
    }
}

impl Env {
    pub fn new(sms: &SmsConfig) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("mfa-sms")
            .tempdir()
            .unwrap();
        let root = dir.path();
        let (secret, keys) = match sms.provider {
            Provider::Twilio => {
                let secret = root.join("twilio.token");
                let mut keys = format!(
                    "provider = \"twilio\"\naccount_sid = \"{ACCOUNT_SID}\"\nauth_token_file = \"{}\"\n",
                    secret.display()
                );
                if let Some(f) = &sms.from {
                    keys.push_str(&format!("from = \"{f}\"\n"));
                }
                if let Some(s) = &sms.messaging_service_sid {
                    keys.push_str(&format!("messaging_service_sid = \"{s}\"\n"));
                }
                (secret, keys)
            }
            Provider::Telesign => {
                let secret = root.join("telesign.key");
                let keys = format!(
                    "provider = \"telesign\"\ncustomer_id = \"{CUSTOMER_ID}\"\napi_key_file = \"{}\"\n",
                    secret.display()
                );
                (secret, keys)
            }
        };
        // A trailing newline, as `echo TOKEN > file` leaves it: the sender must strip it.
        std::fs::write(&secret, format!("{}\n", sms.secret)).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(sms.secret_mode))
            .unwrap();
        let install = Install::create(
            dir,
            &format!(
                "[sms]\n{keys}base_url = \"{base}\"\ntimeout = \"5s\"\n\n[sender]\nworkers = 2\n",
                base = sms.base_url,
            ),
        );
        std::fs::create_dir_all(install.path("db")).unwrap();
        Env { install, secret }
    }

    /// Asserts the whole spool is empty (nothing pending, nothing failed).
    pub fn assert_empty(&self) {
        for sub in spool::SUBDIRS {
            assert!(
                self.files(sub).is_empty(),
                "spool/{sub} is not empty: {:?}",
                self.files(sub)
            );
        }
    }

    /// The reason next to a failed message.
    pub fn failure_reason(&self, id: &str) -> String {
        let json = self.spool().join("failed").join(format!("{id}.json"));
        assert!(
            json.exists(),
            "{id} is not in failed/: {:?}",
            self.files("failed")
        );
        spool::failure_reason(&json).unwrap_or_else(|| panic!("{id} failed without a reason"))
    }

    /// Queues an SMS to `to` with `body`; returns its id.
    pub fn enqueue(&self, to: &str, body: &str) -> String {
        let now = mfa_core::now();
        let id = format!("{now}-sms{}-{}", seq(), std::process::id());
        let masked = format!("+*******{}", &to[to.len().saturating_sub(4)..]);
        let msg = Message {
            id: id.clone(),
            created: now,
            expires: now + 300,
            channel: Channel::Sms,
            to: to.into(),
            subject: "mfa passcode".into(),
            body: body.into(),
            user: "alice".into(),
            kind: Kind::Passcode,
            masked_to: masked,
        };
        spool::enqueue(&self.spool(), &msg).unwrap();
        id
    }

    /// `mfa-sender --once`, which must finish within 15 s.
    pub fn once(&self) -> Out {
        self.run(&["--once"], Duration::from_secs(15))
    }

    /// Starts the sender as a daemon; it is stopped when the guard drops.
    pub fn daemon(&self) -> Daemon {
        let log = self.path(&format!("daemon-{}.err", seq()));
        let child = self
            .command(&[])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon { child, log };
        // Ready once it wrote its "started" line (inotify watch in place, spool scanned).
        wait_until("the sender to start", Duration::from_secs(10), || {
            d.log().contains("started:")
        });
        d
    }
}

/// A running `mfa-sender` daemon; killed when dropped.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Its stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; asserts it exits 0 within 10 s; returns its log.
    pub fn stop(mut self) -> String {
        let status = terminate(&mut self.child, Duration::from_secs(10));
        let log = self.log();
        assert_eq!(
            status.code(),
            Some(0),
            "sender exited {status} after SIGTERM:\n{log}"
        );
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// Asserts the sender's log never shows a passcode or a full number.
pub fn assert_log_discreet(log: &str) {
    assert!(
        !log.contains(PASSCODE),
        "the sender logged a message body:\n{log}"
    );
    assert!(
        !log.contains(TO),
        "the sender logged a full phone number:\n{log}"
    );
}

/// Asserts a request was a well-formed Twilio send of `body` to `to` (with `From`, or with
/// `MessagingServiceSid` when `service` is set), with the account's Basic credentials.
pub fn assert_twilio_send(r: &Request, to: &str, body: &str, service: bool) {
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
    );
    assert_eq!(
        r.basic_auth(),
        Some((ACCOUNT_SID.to_string(), AUTH_TOKEN.to_string())),
        "Basic auth must be AccountSid:AuthToken"
    );
    assert!(
        r.raw["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"),
        "{}",
        r.raw["content_type"]
    );
    let mut want = BTreeMap::from([
        ("To".to_string(), to.to_string()),
        ("Body".to_string(), body.to_string()),
    ]);
    if service {
        want.insert("MessagingServiceSid".into(), SERVICE_SID.into());
    } else {
        want.insert("From".into(), TWILIO_FROM.into());
    }
    assert_eq!(r.fields(), want);
}
