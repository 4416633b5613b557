//! Attacks on the Duo broker's HTTP client (helper X, issue 14): the built mfa-sender as a
//! daemon (as `nobody`) whose `[duo] host` answers with a redirect to another host. Duo's
//! API never redirects; a client that follows sends the request (a Duo passcode in a 307's
//! body) to that host and takes its answer for Duo's. `redirect_server.py` plays both the
//! redirecting host and the other one (which logs what reached it).
//!
//! Needs root (setpriv, chown), `/usr/bin/python3` and `openssl`; skips without root.

// A failed assertion is the point of a test; helpers here panic on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Only part of the shared support is used here.
#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::duo::{Factor, Reply, Request};

use support::*;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/duo_attacks/redirect_server.py"
);
const SKEY: &str = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep";
const IKEY: &str = "DIWJ8X6AEYOR5OMC6TQ1";
const UID: u32 = 65534;
const GID: u32 = 65534;

const SERVER: PyServerSpec = PyServerSpec {
    name: "the redirecting server",
    script: SCRIPT,
    prefix: "mfa-duo-redirect",
    hint: " (needs /usr/bin/python3)",
    ready_timeout: Duration::from_secs(10),
    grace: Duration::from_secs(3),
};

/// A certificate for 127.0.0.1 and localhost (two host names for the client).
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
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

fn chown(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The daemon (as nobody) with `[duo] host = 127.0.0.1:PORT`; killed when dropped.
struct Daemon {
    child: Child,
    install: Install,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

fn daemon(port: u16, ca: &Path) -> Daemon {
    let dir = tempfile::Builder::new()
        .prefix("mfa-duo-x")
        .tempdir()
        .unwrap();
    let skey = dir.path().join("duo.skey");
    std::fs::write(&skey, format!("{SKEY}\n")).unwrap();
    let install = Install::create(
        dir,
        &format!(
            "[duo]\nhost = \"127.0.0.1:{port}\"\nikey = \"{IKEY}\"\nskey_file = \"{}\"\n\
             ca_file = \"{}\"\ntimeout = \"5s\"\n",
            skey.display(),
            ca.display()
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
    let log = install.path("daemon.err");
    let child = Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .arg(SENDER)
        .arg("--config")
        .arg(&install.config)
        .env_remove("MFA_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = Daemon { child, install };
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("duo: broker listening") {
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

/// Duo's host redirects (302 for GET, 307 for POST) to another host with a valid
/// certificate: the broker must not follow. Today reqwest's default policy follows up to 10
/// redirects: `ping` returns the other host's time, and a Duo passcode's `auth` is posted
/// again, body and all, to the other host, whose `allow` comes back as Duo's answer.
/// Fix: `.redirect(reqwest::redirect::Policy::none())` in `Client::new`
/// (mfa-sender/src/duo/api.rs); a 3xx then maps to `Refused`/`Unavailable` naming it.
#[test]
fn the_broker_follows_no_redirect_to_another_host() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (runs mfa-sender as nobody)");
        return;
    }
    let certs = tempfile::Builder::new()
        .prefix("mfa-duo-x-cert")
        .tempdir()
        .unwrap();
    let (cert, key) = make_cert(certs.path());
    let sink = PyServer::start(&SERVER, |cmd, dir| {
        cmd.arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--log")
            .arg(dir.join("requests.jsonl"));
    });
    let to = format!("https://localhost:{}", sink.port);
    let redirector = PyServer::start(&SERVER, |cmd, _| {
        cmd.arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--to", &to]);
    });
    let d = daemon(redirector.port, &cert);
    let runtime = d.install.path("run");
    let call = |req: &Request| {
        mfa_core::duo::call(
            &runtime,
            "nobody",
            req,
            Instant::now() + Duration::from_secs(20),
            &mut |_| true,
        )
    };
    let ping = call(&Request::Ping);
    let passcode = call(&Request::Auth {
        username: "ann".into(),
        factor: Factor::Passcode,
        device: None,
        passcode: Some("271828".into()),
        ipaddr: None,
        hostname: "web1".into(),
        pushinfo: Vec::new(),
    });
    let reached = sink.json_lines("requests.jsonl");
    let followed = matches!(ping, Ok(Reply::Time { time: 42 }))
        || matches!(&passcode, Ok(Reply::Auth(r)) if r.result == "allow")
        || !reached.is_empty();
    assert!(
        !followed,
        "the broker followed Duo's host to another one:\n ping: {ping:?}\n passcode: \
         {passcode:?}\n requests that reached the other host: {reached:?}"
    );
}
