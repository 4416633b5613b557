//! What the Duo factor's tests share: a private store and configuration, a conversation with
//! scripted answers, and stand-ins for the broker on the runtime directory's socket (one that
//! answers connections in turn from a script of steps, one that serves each connection on its
//! own thread from a function of the request).

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::duo::{self as broker, Reply};

/// What the stand-in broker does with one request.
pub(super) enum Step {
    /// Answers these frames, then closes.
    Answer(Vec<Reply>),
    /// Sends these frames, then closes without a final reply (a sender that died).
    Die(Vec<Reply>),
}

pub(super) struct T {
    _dir: tempfile::TempDir,
    pub(super) config: Config,
    /// Requests the broker received.
    pub(super) seen: Arc<Mutex<Vec<broker::Request>>>,
}

pub(super) fn setup(method: &str, duo_section: &str) -> T {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in [
        "db",
        "spool/tmp",
        "spool/new",
        "spool/cur",
        "spool/failed",
        "run",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::set_permissions(root.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let text = format!(
        "[paths]\ndatabase = \"{0}/db/mfa.db\"\nspool = \"{0}/spool\"\nruntime = \"{0}/run\"\n{duo_section}",
        root.display()
    );
    let config = Config::parse(&root.join("mfa.toml"), &text).unwrap();
    let (mut store, _) = Store::create(&config.paths.database).unwrap();
    store
        .change("t", "t", |tx| {
            rules::set_setting(tx, "enabled", "on")?;
            rules::set_setting(tx, "lockout_after", "3")?;
            rules::set_service(tx, "*", method)?;
            people::add_user(tx, "ann", "", 0)?;
            Ok(((), String::new()))
        })
        .unwrap();
    std::fs::File::create(root.join("run/sender.heartbeat")).unwrap();
    T {
        _dir: dir,
        config,
        seen: Arc::default(),
    }
}

pub(super) const DUO: &str = "[duo]\nhost = \"127.0.0.1:1\"\nikey = \"DIXXXXXXXXXXXXXXXXXX\"\nskey_file = \"/nonexistent\"\ntimeout = \"5s\"\n";

impl T {
    /// Starts the stand-in broker: one step per connection, in order.
    pub(super) fn broker(&self, steps: Vec<Step>) -> std::thread::JoinHandle<()> {
        let l = UnixListener::bind(broker::socket_path(&self.config.paths.runtime)).unwrap();
        let seen = self.seen.clone();
        std::thread::spawn(move || {
            for step in steps {
                let (mut c, _) = l.accept().unwrap();
                let req: broker::Request = broker::read_frame(&mut c).unwrap();
                seen.lock().unwrap().push(req);
                let (frames, _died) = match step {
                    Step::Answer(f) => (f, false),
                    Step::Die(f) => (f, true),
                };
                for f in frames {
                    if broker::write_frame(&mut c, &f).is_err() {
                        break;
                    }
                }
            }
        })
    }

    pub(super) fn login(&self, conv: &mut Script) -> Outcome {
        let req = Request {
            user: "ann".into(),
            service: "sshd".into(),
            rhost: "192.0.2.7".into(),
            tty: "ssh".into(),
        };
        authenticate(&self.config, &req, conv, FailMode::Secure)
    }

    /// Sets the fail mode (`secure` or `safe`) in the rules.
    pub(super) fn fail_mode(&self, mode: &str) {
        let mut store = Store::open(&self.config.paths.database).unwrap();
        store
            .change("t", "t", |tx| {
                rules::set_setting(tx, "fail_mode", mode)?;
                Ok(((), String::new()))
            })
            .unwrap();
    }

    pub(super) fn failures(&self) -> u32 {
        state::failures(&self.config.paths.database, "ann").count
    }
}

/// A conversation with scripted answers that records everything shown.
#[derive(Default)]
pub(super) struct Script {
    pub(super) answers: VecDeque<&'static str>,
    pub(super) shown: Vec<String>,
    /// Fail the conversation at the n-th info message (the user hangs up).
    pub(super) fail_info_at: Option<usize>,
}

impl Script {
    pub(super) fn new(answers: &[&'static str]) -> Self {
        Script {
            answers: answers.iter().copied().collect(),
            ..Default::default()
        }
    }
    pub(super) fn text(&self) -> String {
        self.shown.join("\n")
    }
}

impl Conversation for Script {
    fn prompt(&mut self, text: &str, _echo: bool) -> Result<Vec<u8>, ConvError> {
        self.shown.push(format!("PROMPT {text}"));
        self.answers
            .pop_front()
            .map(|a| a.as_bytes().to_vec())
            .ok_or(ConvError)
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.shown.push(format!("INFO {text}"));
        let infos = self.shown.iter().filter(|s| s.starts_with("INFO")).count();
        if self.fail_info_at.is_some_and(|n| infos >= n) {
            return Err(ConvError);
        }
        Ok(())
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.shown.push(format!("ERROR {text}"));
        Ok(())
    }
}

pub(super) fn device(id: &str, name: &str, caps: &[&str]) -> broker::Device {
    broker::Device {
        device: id.into(),
        display_name: name.into(),
        kind: "phone".into(),
        capabilities: caps.iter().map(|c| c.to_string()).collect(),
    }
}

pub(super) fn preauth(result: &str, devices: Vec<broker::Device>) -> Step {
    Step::Answer(vec![Reply::Preauth(broker::Preauth {
        result: result.into(),
        status_msg: format!("Preauth {result}"),
        enroll_portal_url: (result == "enroll").then(|| "https://duo.example/portal?code=x".into()),
        devices,
    })])
}

pub(super) fn auth(result: &str, status: &str) -> Step {
    Step::Answer(vec![
        Reply::Progress {
            text: "Pushed a login request to your device...".into(),
        },
        Reply::Progress {
            text: String::new(),
        },
        Reply::Auth(broker::AuthResult {
            result: result.into(),
            status: status.into(),
            status_msg: format!("Status {status}"),
            txid: "45f7c92b-f45f-4862-8545-e0f58e78075a".into(),
        }),
    ])
}

pub(super) fn phone() -> broker::Device {
    device(
        "DPFZRS9FB0D46QFTM891",
        "iOS (XXX-XXX-0100)",
        &["auto", "push", "sms", "phone", "mobile_otp"],
    )
}

impl T {
    /// Changes the rules as mfa-admin would.
    pub(super) fn change(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<()>) {
        let mut store = Store::open(&self.config.paths.database).unwrap();
        store
            .change("t", "t", |tx| {
                f(tx)?;
                Ok(((), String::new()))
            })
            .unwrap();
    }
    /// The auth-log lines the module appended.
    pub(super) fn logged(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(crate::authlog::path_for(&self.config.paths.database))
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    pub(super) fn spooled(&self) -> Vec<crate::spool::Message> {
        crate::spool::pending(&self.config.paths.spool)
            .unwrap()
            .iter()
            .map(|n| crate::spool::read(&self.config.paths.spool.join("new").join(n)).unwrap())
            .collect()
    }
}

/// What the serving stand-in answers to one request (it sees the request first).
pub(super) type Answers = dyn Fn(&broker::Request) -> Vec<Reply> + Send + Sync;

impl T {
    /// Starts a stand-in broker that serves every connection on its own thread (parallel
    /// logins are served in parallel) with `answers`; returns the count of `auth` requests
    /// (each one a push, call, SMS batch or passcode check) it received.
    pub(super) fn serve(&self, answers: Arc<Answers>) -> Arc<AtomicUsize> {
        let l = UnixListener::bind(broker::socket_path(&self.config.paths.runtime)).unwrap();
        let auths = Arc::new(AtomicUsize::new(0));
        let counted = auths.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { return };
                let answers = answers.clone();
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let Ok(req) = broker::read_frame::<broker::Request>(&mut c) else {
                        return;
                    };
                    if matches!(req, broker::Request::Auth { .. }) {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                    for f in answers(&req) {
                        if broker::write_frame(&mut c, &f).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        auths
    }
}
