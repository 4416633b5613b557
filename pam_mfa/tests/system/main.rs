//! pam_mfa.so against the real thing: a real OpenSSH `sshd` with a real SSH client
//! (paramiko's keyboard-interactive), and Debian-style `su` and `login` stacks driven by
//! `pamtester` on a pseudo-terminal. Real system users with real passwords (pam_unix), real
//! `/etc/pam.d` service files, the module as built; real vsftpd and proftpd (mod_auth_pam)
//! with the shipped one-password stacks and Python's ftplib.
//!
//! These tests need root (they add users, write `/etc/pam.d/<unique name>` and start sshd);
//! without it each one prints "skipped: needs root" and passes. They need `sshd`, `ssh-keygen`,
//! `pamtester`, `vsftpd`, `proftpd` and `/usr/bin/python3` with paramiko (Debian:
//! openssh-server, openssh-client, pamtester, proftpd-basic, python3-paramiko; vsftpd's
//! package conflicts with proftpd's, so its binary may be unpacked into /usr/local/sbin, as
//! `.ci/run` does). Every name is unique to the test
//! (process id and a counter), so the tests run in parallel; users, pam.d files and processes
//! are removed by Drop guards, also when a test fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default
)]

mod examples;
mod ftp;
mod proftpd;
mod sshd;
mod stacks;
mod vsftpd;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mfa_core::contact::Contact;
use mfa_core::net::IpRange;
use mfa_core::store::rules::{self, NewNetRule};
use mfa_core::store::{Store, people};

/// True when the tests can run; otherwise says why they are skipped.
pub fn root_or_skip(test: &str) -> bool {
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if euid != 0 {
        eprintln!("{test}: skipped: needs root (adds users, writes /etc/pam.d, starts sshd)");
        return false;
    }
    true
}

/// A name no other test (or earlier run) of this process uses: `prefix`, pid, counter.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The module as built from the current sources: target/<profile>/libpam_mfa.so next to
/// this test binary's deps/. `cargo test` does not build a cdylib (not even with
/// `--all-targets`), so a stale or missing module would be tested; build it first, once.
pub fn module_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let target_dir = profile_dir.parent().unwrap();
            let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev",
                other => other,
            };
            let ran = run(
                Command::new(env!("CARGO"))
                    .args(["build", "--offline", "-p", "pam_mfa", "--lib", "--profile"])
                    .arg(profile)
                    .arg("--target-dir")
                    .arg(target_dir)
                    .current_dir(env!("CARGO_MANIFEST_DIR")),
                Duration::from_secs(300),
            );
            assert_eq!(ran.status, Some(0), "cargo build -p pam_mfa: {ran:?}");
            let p = profile_dir.join("libpam_mfa.so");
            assert!(p.exists(), "{} not built", p.display());
            p
        })
        .clone()
}

/// The Python client next to this file.
/// The mfa-sender binary, built now (another package's binary is not built for this one's
/// tests).
pub fn sender_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev",
                other => other,
            };
            let ran = run(
                Command::new(env!("CARGO"))
                    .args([
                        "build",
                        "--offline",
                        "-q",
                        "-p",
                        "mfa-sender",
                        "--bin",
                        "mfa-sender",
                        "--profile",
                    ])
                    .arg(profile)
                    .arg("--target-dir")
                    .arg(profile_dir.parent().unwrap())
                    .current_dir(env!("CARGO_MANIFEST_DIR")),
                Duration::from_secs(600),
            );
            assert_eq!(ran.status, Some(0), "cargo build -p mfa-sender: {ran:?}");
            profile_dir.join("mfa-sender")
        })
        .clone()
}

pub fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/system/client.py")
}

/// Fails with the Debian package to install when `path` is missing.
pub fn need(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package {package}"
    );
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr: {}",
                err_t.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ran {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Runs the Python client and parses the JSON it prints.
pub fn client(args: &[String]) -> serde_json::Value {
    need("/usr/bin/python3", "python3");
    let ran = run(
        Command::new("/usr/bin/python3")
            .arg(client_script())
            .args(args),
        Duration::from_secs(40),
    );
    assert_eq!(ran.status, Some(0), "client failed: {ran:?}");
    serde_json::from_str(ran.stdout.trim())
        .unwrap_or_else(|e| panic!("client printed no JSON ({e}): {ran:?}"))
}

/// A private mfa installation in a temporary directory: configuration, store (2FA on),
/// spool, a fresh sender heartbeat.
pub struct Install {
    pub dir: tempfile::TempDir,
}

impl Install {
    pub fn new() -> Install {
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
        std::fs::write(
            root.join("mfa.toml"),
            format!(
                "[paths]\ndatabase = \"{0}/db/mfa.db\"\nspool = \"{0}/spool\"\nruntime = \"{0}/run\"\n",
                root.display()
            ),
        )
        .unwrap();
        Store::create(&root.join("db/mfa.db")).unwrap();
        let i = Install { dir };
        i.heartbeat();
        let mut s = i.store();
        let v = mfa_core::settings::spec("enabled")
            .unwrap()
            .normalize("on")
            .unwrap();
        s.change("test", "settings set", |tx| {
            Ok((rules::set_setting(tx, "enabled", &v)?, String::new()))
        })
        .unwrap();
        i
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config(&self) -> PathBuf {
        self.path("mfa.toml")
    }

    pub fn spool(&self) -> PathBuf {
        self.path("spool")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path("db/mfa.db")).unwrap()
    }

    /// Touches the sender's heartbeat (the sender counts as running for 30 s).
    pub fn heartbeat(&self) {
        std::fs::File::create(self.path("run/sender.heartbeat")).unwrap();
    }

    /// Adds a user with one email contact.
    pub fn user(&self, name: &str, email: &str) {
        let mut s = self.store();
        s.change("test", "user add", |tx| {
            people::add_user(tx, name, "", 0)?;
            people::add_contact(tx, name, &Contact::email(email).unwrap(), "", None, 0)?;
            Ok(((), String::new()))
        })
        .unwrap();
    }

    /// Adds a network rule for `service`.
    pub fn net(&self, service: &str, range: &str, require: bool) {
        let rule = NewNetRule {
            service: service.into(),
            range: IpRange::parse_any(range).unwrap(),
            require,
            log: None,
            note: String::new(),
        };
        self.store()
            .change("test", "net add", |tx| {
                Ok((rules::add_network(tx, &rule, 0)?, String::new()))
            })
            .unwrap();
    }

    /// The auth log, oldest first, as "outcome|reason|service|address|tty|destination".
    pub fn log(&self) -> Vec<String> {
        mfa_core::store::Store::open(&self.path("db/mfa.db"))
            .unwrap()
            .ingest_auth_log()
            .unwrap();
        let c = rusqlite::Connection::open(self.path("db/mfa.db")).unwrap();
        let mut st = c
            .prepare(
                "SELECT outcome || '|' || reason || '|' || service || '|' || address || '|' || tty
                 || '|' || destination FROM auth_log ORDER BY id",
            )
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Spooled messages (`spool/new`).
    pub fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_dir(self.path("spool/new"))
            .unwrap()
            .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
            .collect()
    }
}

/// useradd, chpasswd and userdel lock /etc/passwd and /etc/shadow; one at a time.
static ACCOUNTS: Mutex<()> = Mutex::new(());

fn accounts_lock() -> std::sync::MutexGuard<'static, ()> {
    ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A real system user with a home directory, a shell and a known password; deleted (with
/// its home) on drop.
pub struct SystemUser {
    pub name: String,
    pub password: String,
}

impl SystemUser {
    pub fn new() -> SystemUser {
        let name = unique("mfat");
        let password = format!("Pw-{name}-s3cret");
        let _g = accounts_lock();
        // A leftover of an earlier run with the same process id.
        let _ = Command::new("userdel")
            .args(["-r", &name])
            .stderr(Stdio::null())
            .status();
        let ran = run(
            Command::new("useradd").args(["-m", "-s", "/bin/sh", &name]),
            Duration::from_secs(20),
        );
        assert_eq!(ran.status, Some(0), "useradd {name}: {ran:?}");
        let user = SystemUser { name, password };
        let mut child = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            child.stdin.as_mut().unwrap(),
            format!("{}:{}\n", user.name, user.password).as_bytes(),
        )
        .unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success(), "chpasswd failed");
        user
    }

    pub fn email(&self) -> String {
        format!("{}@example.com", self.name)
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _g = accounts_lock();
        // A session process of the user (sshd's) may still be on its way out: userdel
        // refuses (status 8) while it runs; retry for a moment, then force.
        let userdel = |force: bool| {
            Command::new("userdel")
                .args(if force {
                    &["-r", "-f"][..]
                } else {
                    &["-r"][..]
                })
                .arg(&self.name)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .ok()
                .and_then(|s| s.code())
        };
        let deadline = Instant::now() + Duration::from_secs(3);
        while userdel(false) == Some(8) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Command::new("id")
            .arg(&self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            userdel(true);
        }
    }
}

/// A service file `/etc/pam.d/<name>`, removed on drop.
pub struct PamService {
    pub name: String,
    path: PathBuf,
}

impl PamService {
    pub fn new(name: &str, text: &str) -> PamService {
        let path = Path::new("/etc/pam.d").join(name);
        assert!(!path.exists(), "{} already exists", path.display());
        std::fs::write(&path, text).unwrap();
        PamService {
            name: name.to_string(),
            path,
        }
    }
}

impl Drop for PamService {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
