//! What the mfa-sender integration-test binaries (`tests/delivery` and `tests/sms`) share:
//! polling with a timeout, signalling and stopping child processes, the Python helper server
//! each binary runs on 127.0.0.1 (an SMTP server, a mock SMS API), a private mfa
//! installation (configuration, spool, runtime directory) in a temporary directory with runs
//! of the built `mfa-sender` on it, and `mfa-admin` runs against that installation.
//!
//! Each binary includes it with `#[path = "../support/mod.rs"] mod support;` and
//! `use support::*;`, so its test modules reach these items as `super::NAME`. Both use every
//! item here: an item only one of them needs belongs in that one's `main.rs`, or the other
//! warns that it is never used.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mfa_core::spool;
use serde_json::Value;

/// Debian's interpreter: the helper servers' modules (aiosmtpd) are installed for it, and
/// another `python3` on PATH may be a different one.
pub const PYTHON: &str = "/usr/bin/python3";
/// The mfa-sender binary under test.
pub const SENDER: &str = env!("CARGO_BIN_EXE_mfa-sender");

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A number no other call in this test binary gets, for ids and file names.
pub fn seq() -> usize {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------
// Waiting and processes

/// Polls `f` every 20 ms until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it is true (see [`wait_for`]).
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    wait_for(what, timeout, || f().then_some(()));
}

/// Waits for a child with a timeout; `None` if it is still running.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `SIG` (a name such as `TERM`) to `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let s = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(s.success(), "kill -{sig} {pid} failed");
}

/// SIGKILL, and reap; errors (it has already exited) are ignored.
pub fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a child: SIGTERM, then SIGKILL after `grace`. Returns how it ended.
pub fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    if let Some(s) = child.try_wait().unwrap() {
        return s;
    }
    signal(child.id(), "TERM");
    match wait_child(child, grace) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The Python helper server

/// Which helper script a [`PyServer`] runs, and how long it gets.
pub struct PyServerSpec {
    /// What failure messages call it ("the SMTP server").
    pub name: &'static str,
    pub script: &'static str,
    /// The prefix of its temporary directory.
    pub prefix: &'static str,
    /// Appended to the message when it cannot start (" (install python3-foo)").
    pub hint: &'static str,
    /// How long it may take to listen.
    pub ready_timeout: Duration,
    /// How long it gets to exit after SIGTERM before it is killed.
    pub grace: Duration,
}

/// A helper server run by [`PYTHON`]: `SCRIPT --ready DIR/ready ARGS`, which binds
/// 127.0.0.1 and writes its port to `DIR/ready`. Its stdout and stderr, and any log the
/// arguments point into `DIR`, stay in its private temporary directory `DIR`. Stopped
/// (SIGTERM, then SIGKILL) when dropped.
pub struct PyServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    grace: Duration,
}

impl PyServer {
    /// Starts `spec.script`; `args` adds its arguments, given `DIR`. Returns once it listens.
    pub fn start(spec: &PyServerSpec, args: impl FnOnce(&mut Command, &Path)) -> PyServer {
        let tmp = tempfile::Builder::new()
            .prefix(spec.prefix)
            .tempdir()
            .unwrap();
        let dir = tmp.path();
        let mut cmd = Command::new(PYTHON);
        cmd.arg(spec.script).arg("--ready").arg(dir.join("ready"));
        args(&mut cmd, dir);
        cmd.stdin(Stdio::null())
            .stdout(File::create(dir.join("stdout")).unwrap())
            .stderr(File::create(dir.join("stderr")).unwrap());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {PYTHON} {}{}: {e}", spec.script, spec.hint));
        // Built before the wait, so that a panic there kills the server.
        let mut server = PyServer {
            child,
            port: 0,
            dir: tmp,
            grace: spec.grace,
        };
        let ready = server.path("ready");
        let what = format!("{} to listen", spec.name);
        server.port = wait_for(&what, spec.ready_timeout, || {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}){}:\n{}",
                    spec.name,
                    spec.hint,
                    server.read("stderr")
                );
            }
            std::fs::read_to_string(&ready)
                .ok()
                .and_then(|t| t.trim().parse().ok())
        });
        server
    }

    /// A file in its directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file in its directory as text; empty if there is none.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// The complete lines of a JSON-lines file in its directory, parsed.
    pub fn json_lines(&self, name: &str) -> Vec<Value> {
        let text = self.read(name);
        let complete = text.rfind('\n').map_or("", |i| &text[..i]);
        complete
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line in {name}: {l:?}: {e}"))
            })
            .collect()
    }

    /// SIGTERM, then SIGKILL after the grace time; nothing if it has already stopped.
    pub fn stop(&mut self) {
        terminate(&mut self.child, self.grace);
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// The installation: configuration, spool, runtime directory

/// A private mfa installation for the sender under one temporary directory: `mfa.toml`,
/// `spool/` with its subdirectories, and the runtime directory `run/`.
pub struct Install {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

/// What a finished run of mfa-sender did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Install {
    /// Writes `dir/mfa.toml` (mode 0600): `[paths]` into `dir`, then `tables`. Makes the
    /// spool and runtime directories.
    pub fn create(dir: tempfile::TempDir, tables: &str) -> Install {
        let root = dir.path();
        let config = root.join("mfa.toml");
        // `mfa-admin init` must not create the sender's account `mfa` on the test machine:
        // name an account every Debian system has.
        let tables = if tables.contains("[sender]") {
            tables.replace("[sender]\n", "[sender]\nuser = \"nobody\"\n")
        } else {
            format!("{tables}\n[sender]\nuser = \"nobody\"\n")
        };
        std::fs::write(
            &config,
            format!(
                "[paths]\ndatabase = \"{r}/db/mfa.db\"\nspool = \"{r}/spool\"\nruntime = \"{r}/run\"\n\n{tables}",
                r = root.display()
            ),
        )
        .unwrap();
        // The sender refuses a configuration others could write, whatever the umask.
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
        for sub in spool::SUBDIRS {
            std::fs::create_dir_all(root.join("spool").join(sub)).unwrap();
        }
        std::fs::create_dir_all(root.join("run")).unwrap();
        Install { dir, config }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn spool(&self) -> PathBuf {
        self.path("spool")
    }

    /// Sorted file names in a spool subdirectory.
    pub fn files(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.spool().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    /// True when nothing waits in new/ or cur/ (and tmp/ is empty).
    pub fn drained(&self) -> bool {
        ["tmp", "new", "cur"]
            .iter()
            .all(|s| self.files(s).is_empty())
    }

    /// `mfa-sender --config C ARGS`, with nothing from the environment of the test run
    /// that could point it elsewhere or make it talk to systemd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(SENDER);
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs mfa-sender to the end (`--once`, `--check`, or a daemon expected to refuse to
    /// start), killing it after `timeout`; panics if it had to be killed.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Out {
        let n = seq();
        let (o, e) = (
            self.path(&format!("run-{n}.out")),
            self.path(&format!("run-{n}.err")),
        );
        let start = Instant::now();
        let mut child = self
            .command(args)
            .stdout(File::create(&o).unwrap())
            .stderr(File::create(&e).unwrap())
            .spawn()
            .unwrap();
        let status = wait_child(&mut child, timeout);
        let took = start.elapsed();
        if status.is_none() {
            kill_and_reap(&mut child);
        }
        let out = Out {
            code: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap(),
            stderr: std::fs::read_to_string(&e).unwrap(),
            took,
        };
        assert!(
            status.is_some(),
            "mfa-sender {args:?} still running after {timeout:?}: {out:?}"
        );
        out
    }
}

// ---------------------------------------------------------------------------------------
// mfa-admin

/// The mfa-admin binary of the same build (a sibling of mfa-sender); built by cargo if this
/// test run did not build it (`cargo test -p mfa-sender` builds mfa-sender only).
pub fn mfa_admin() -> PathBuf {
    let sender = PathBuf::from(SENDER);
    let admin = sender.with_file_name("mfa-admin");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    // target/<profile>/mfa-sender
    let profile_dir = sender.parent().unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&workspace)
        .args(["build", "--quiet", "-p", "mfa-admin"])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap());
    if profile_dir.ends_with("release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "cargo build -p mfa-admin failed");
    assert!(admin.exists(), "{} missing", admin.display());
    admin
}

/// Runs `BIN --config C ARGS` (`bin` from [`mfa_admin`]) on `install`, asserts it succeeded,
/// and returns its stdout.
pub fn admin(install: &Install, bin: &Path, args: &[&str]) -> String {
    let o = Command::new(bin)
        .arg("--config")
        .arg(&install.config)
        .args(args)
        .env_remove("MFA_CONFIG")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    );
    assert!(
        o.status.success(),
        "mfa-admin {args:?}: {}\n{stdout}{stderr}",
        o.status
    );
    stdout
}
