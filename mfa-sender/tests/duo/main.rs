//! Duo tests of mfa-sender: the built binary as a real daemon (run as `nobody`, as an
//! installed system runs it as `mfa`) brokering for root callers (`mfa_core::duo::call`),
//! against `tests/lib/mock_duo.py`, a local HTTPS stand-in for Duo's Auth API v2 that
//! verifies both signature schemes and logs every request as a JSON line.
//!
//! Needs root (setpriv, chown), `/usr/bin/python3` and `openssl`; skips without root. Every
//! child process is killed by a guard when a test ends.

// A failed assertion is the point of a test; helpers here panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Only part of the shared support is used here.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod api;
mod broker;
mod flows;
mod redirects;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::duo::{BrokerError, Factor, Reply, Request};
use serde_json::Value;

use support::*;

pub const MOCK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/lib/mock_duo.py");
pub const IKEY: &str = "DIWJ8X6AEYOR5OMC6TQ1";
pub const SKEY: &str = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep";
/// The unprivileged account the sender runs as here.
pub const USER: &str = "nobody";
pub const GROUP: &str = "nogroup";
pub const UID: u32 = 65534;
pub const GID: u32 = 65534;

/// True when running as root; otherwise says why the test skips.
pub fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped: needs root (runs mfa-sender as {USER})");
    }
    root
}

const MOCK: PyServerSpec = PyServerSpec {
    name: "the Duo mock",
    script: MOCK_SCRIPT,
    prefix: "mfa-duo-mock",
    hint: " (needs /usr/bin/python3)",
    ready_timeout: Duration::from_secs(10),
    grace: Duration::from_secs(3),
};

/// A running `mock_duo.py` with its certificate and users file.
pub struct Mock {
    pub server: PyServer,
    pub port: u16,
    /// Its certificate: the sender's `ca_file`.
    pub cert: PathBuf,
    users: PathBuf,
    _certs: tempfile::TempDir,
}

/// A leaf certificate for 127.0.0.1 and its key, made with openssl.
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    make_cert_for(dir, "IP:127.0.0.1")
}

/// A leaf certificate for the subject alternative names `san` and its key.
pub fn make_cert_for(dir: &Path, san: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", &format!("subjectAltName={san}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (install openssl): {e}"));
    assert!(
        o.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
    (cert, key)
}

impl Mock {
    /// Starts the mock with `users` (JSON) and extra flags (`--rate-limit 1`, ...).
    pub fn start(users: Value, flags: &[&str]) -> Mock {
        let certs = tempfile::Builder::new()
            .prefix("mfa-duo-cert")
            .tempdir()
            .unwrap();
        let (cert, key) = make_cert(certs.path());
        let users_file = certs.path().join("users.json");
        std::fs::write(&users_file, users.to_string()).unwrap();
        let server = PyServer::start(&MOCK, |cmd, dir| {
            cmd.arg("--cert")
                .arg(&cert)
                .arg("--key")
                .arg(&key)
                .args(["--ikey", IKEY, "--skey", SKEY])
                .arg("--users")
                .arg(&users_file)
                .arg("--log")
                .arg(dir.join("requests.jsonl"))
                .args(flags);
        });
        Mock {
            port: server.port,
            server,
            cert,
            users: users_file,
            _certs: certs,
        }
    }

    /// Replaces the users file (the mock re-reads it at each request).
    pub fn set_users(&self, users: Value) {
        let tmp = self.users.with_extension("tmp");
        std::fs::write(&tmp, users.to_string()).unwrap();
        std::fs::rename(&tmp, &self.users).unwrap();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        let mut v = self.server.json_lines("requests.jsonl");
        v.sort_by_key(|r| r["seq"].as_u64());
        v
    }

    /// Requests to `path`.
    pub fn to(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r["path"] == path)
            .collect()
    }

    /// `METHOD path -> status (sig)` of each request, for failure messages.
    pub fn summary(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {} -> {} {} ({})",
                    r["method"], r["path"], r["status"], r["code"], r["sig"]
                )
            })
            .collect()
    }
}

/// The `[duo]` table of a test.
#[derive(Clone)]
pub struct DuoConfig {
    pub skey: String,
    pub ikey: String,
    pub signature: &'static str,
    pub timeout: &'static str,
}

impl Default for DuoConfig {
    fn default() -> Self {
        DuoConfig {
            skey: SKEY.into(),
            ikey: IKEY.into(),
            signature: "sha512",
            timeout: "5s",
        }
    }
}

/// A private installation laid out as an installed system (the sender runs as `nobody`):
/// configuration 0640 root:nogroup, spool 2770 root:nogroup, runtime directory owned by
/// nobody, the secret key 0640 root:nogroup. Only `[duo]`: no `[smtp]`, no `[sms]`.
pub struct Env {
    pub install: Install,
    pub skey: PathBuf,
}

fn chown(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Env {
    pub fn new(mock: &Mock, duo: &DuoConfig) -> Env {
        Env::for_host(mock.port, &mock.cert, duo)
    }

    /// An installation whose `[duo] host` is 127.0.0.1:`port`, trusting `ca`.
    pub fn for_host(port: u16, ca: &Path, duo: &DuoConfig) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("mfa-duo")
            .tempdir()
            .unwrap();
        let skey = dir.path().join("duo.skey");
        std::fs::write(&skey, format!("{}\n", duo.skey)).unwrap();
        let install = Install::create(
            dir,
            &format!(
                "[duo]\nhost = \"127.0.0.1:{port}\"\nikey = \"{ikey}\"\nskey_file = \"{skey}\"\n\
                 ca_file = \"{ca}\"\nsignature = \"{sig}\"\ntimeout = \"{timeout}\"\n",
                ikey = duo.ikey,
                skey = skey.display(),
                ca = ca.display(),
                sig = duo.signature,
                timeout = duo.timeout,
            ),
        );
        chown(install.dir.path(), 0, 0, 0o755);
        chown(&install.config, 0, GID, 0o640);
        chown(&skey, 0, GID, 0o640);
        chown(&install.spool(), 0, 0, 0o755);
        for sub in mfa_core::spool::SUBDIRS {
            chown(&install.spool().join(sub), 0, GID, 0o2770);
        }
        chown(&install.path("run"), UID, GID, 0o755);
        Env { install, skey }
    }

    pub fn runtime(&self) -> PathBuf {
        self.install.path("run")
    }

    pub fn socket(&self) -> PathBuf {
        mfa_core::duo::socket_path(&self.runtime())
    }

    /// `mfa-sender --config C ARGS` as nobody:nogroup.
    pub fn as_sender(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", USER, "--regid", GROUP, "--clear-groups"])
            .arg(SENDER)
            .arg("--config")
            .arg(&self.install.config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the sender (as nobody) to the end.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Out {
        let n = seq();
        let (o, e) = (
            self.install.path(&format!("run-{n}.out")),
            self.install.path(&format!("run-{n}.err")),
        );
        let start = Instant::now();
        let mut child = self
            .as_sender(args)
            .stdout(File::create(&o).unwrap())
            .stderr(File::create(&e).unwrap())
            .spawn()
            .unwrap();
        let status = wait_child(&mut child, timeout);
        if status.is_none() {
            kill_and_reap(&mut child);
        }
        let out = Out {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap(),
            stderr: std::fs::read_to_string(&e).unwrap(),
            took: start.elapsed(),
        };
        assert!(status.is_some(), "mfa-sender {args:?} hung: {out:?}");
        out
    }

    /// Starts the daemon as nobody; returns once the broker listens.
    pub fn daemon(&self) -> Daemon {
        let log = self.install.path(&format!("daemon-{}.err", seq()));
        let child = self
            .as_sender(&[])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon { child, log };
        let start = Instant::now();
        loop {
            let text = d.log();
            if text.contains("started:") && text.contains("duo: broker listening") {
                break;
            }
            if let Some(s) = d.child.try_wait().unwrap() {
                panic!("the sender exited ({s}) before its broker listened:\n{text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the broker did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }
}

/// A running daemon; killed when dropped.
pub struct Daemon {
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; asserts exit 0 within 10 s; returns the log.
    pub fn stop(mut self) -> String {
        let status = terminate(&mut self.child, Duration::from_secs(10));
        let log = self.log();
        assert_eq!(status.code(), Some(0), "after SIGTERM: {status}\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// A bounded call to the broker; returns the result and the progress texts seen.
pub fn call(
    env: &Env,
    req: &Request,
    within: Duration,
) -> (Result<Reply, BrokerError>, Vec<String>) {
    call_at(&env.runtime(), req, within)
}

pub fn call_at(
    runtime: &Path,
    req: &Request,
    within: Duration,
) -> (Result<Reply, BrokerError>, Vec<String>) {
    let mut seen = Vec::new();
    let r = mfa_core::duo::call(runtime, USER, req, Instant::now() + within, &mut |t| {
        seen.push(t.to_string());
        true
    });
    (r, seen)
}

/// A push request for `user` (device auto) from 192.0.2.7 to host web1, service sshd.
pub fn push(user: &str) -> Request {
    Request::Auth {
        username: user.into(),
        factor: Factor::Push,
        device: None,
        passcode: None,
        ipaddr: Some("192.0.2.7".into()),
        hostname: "web1".into(),
        pushinfo: vec![("service".into(), "sshd".into())],
    }
}

pub fn preauth(user: &str) -> Request {
    Request::Preauth {
        username: user.into(),
        ipaddr: Some("192.0.2.7".into()),
        hostname: "web1".into(),
    }
}
