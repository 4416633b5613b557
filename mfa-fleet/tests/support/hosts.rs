//! Simulated fleet hosts for the system tests: each host is a private installation in a
//! temporary directory (its own `mfa.toml`, database, snapshot, spool and runtime
//! directory, made by `mfa-admin init`), its own `mfa-fleetd` process (killed when its
//! guard drops, and by the kernel when the test thread dies: `PR_SET_PDEATHSIG`), and real
//! logins through the system's libpam and the built `libpam_mfa.so` (`pam_start_confdir`
//! with a service file in the host's directory, no /etc/pam.d edits).
//!
//! The PAM service runs pam_mfa and, when the module ignores the login (exempt, method
//! none), `pam_debug.so auth=perm_denied`, so that a bypass (`PAM_PERM_DENIED`, no prompt)
//! is told apart from a proven factor (`PAM_SUCCESS`) and a refusal (`PAM_AUTH_ERR`).
#![allow(dead_code, unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::libc;

/// `pam_authenticate` results the tests look at.
pub const PAM_SUCCESS: i32 = 0;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
const PAM_CONV_ERR: c_int = 19;
const PAM_TTY: c_int = 3;
/// The PAM service file each host has (the module is told `service=sshd`).
const SERVICE: &str = "mfa-fleet-test";

/// A binary of the workspace (built by `cargo build --workspace`, as `make test` does).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: cargo build --workspace first",
        p.display()
    );
    p
}

/// The PAM module, built now: `cargo test` does not build a cdylib for integration tests
/// (rust-lang/cargo#8311), so without this a test could load a stale libpam_mfa.so.
pub fn module_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev",
                other => other,
            };
            let status = Command::new(env!("CARGO"))
                .args(["build", "--offline", "-q", "-p", "pam_mfa", "--lib"])
                .args(["--profile", profile, "--target-dir"])
                .arg(profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "cargo build -p pam_mfa failed");
            let p = profile_dir.join("libpam_mfa.so");
            assert!(p.exists(), "{} not built", p.display());
            p
        })
        .clone()
}

/// A simulated host: its own configuration, database, spool, runtime directory, PAM
/// service file and (once started) `mfa-fleetd`.
pub struct Host {
    pub name: String,
    daemon: Option<Child>,
    /// Times its mfa-fleetd was started (each start's stderr goes to its own file).
    starts: u32,
    pub dir: tempfile::TempDir,
}

impl Host {
    /// `mfa-admin init` of a new host whose `mfa.toml` ends with `store` (a `[store]` table).
    pub fn new(name: &str, store: &str) -> Host {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mfa-host-{name}-"))
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("db")).unwrap();
        std::fs::create_dir(root.join("pam.d")).unwrap();
        std::fs::write(
            root.join("mfa.toml"),
            format!(
                "[paths]\ndatabase = \"{r}/db/mfa.db\"\nspool = \"{r}/spool\"\nruntime = \"{r}/run\"\n\
                 [sender]\nuser = \"nobody\"\n{store}",
                r = root.display()
            ),
        )
        .unwrap();
        std::fs::write(
            root.join("pam.d").join(SERVICE),
            format!(
                "auth [success=done ignore=ignore default=die] {} config={}/mfa.toml service=sshd\n\
                 auth requisite pam_debug.so auth=perm_denied\n",
                module_path().display(),
                root.display()
            ),
        )
        .unwrap();
        let h = Host {
            name: name.to_string(),
            daemon: None,
            starts: 0,
            dir,
        };
        h.ok(&["init"]);
        // The sender is alive (a fresh heartbeat), as on a working host.
        File::create(h.dir.path().join("run/sender.heartbeat")).unwrap();
        h
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("mfa.toml")
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("db/mfa.db")
    }

    /// `mfa-admin --config <this host's> ARGS`.
    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new(bin("mfa-admin"))
            .arg("--config")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap()
    }

    /// `mfa-admin ARGS`, which must succeed: its stdout and stderr.
    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.admin(args);
        let (so, se) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "host {}: mfa-admin {args:?} failed ({}): {so}{se}",
            self.name,
            out.status
        );
        (so, se)
    }

    /// Starts this host's `mfa-fleetd` (the follower loop, no `--once`); its stderr goes to
    /// `fleetd-N.log` in the host's directory.
    pub fn start_fleetd(&mut self) {
        assert!(
            self.daemon.is_none(),
            "{}: mfa-fleetd already runs",
            self.name
        );
        self.starts += 1;
        let log =
            File::create(self.dir.path().join(format!("fleetd-{}.log", self.starts))).unwrap();
        let mut cmd = Command::new(bin("mfa-fleetd"));
        cmd.arg("--config")
            .arg(self.config())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal,
        // so a test killed outright leaves no daemon behind.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        self.daemon = Some(cmd.spawn().unwrap());
    }

    /// SIGKILLs this host's `mfa-fleetd` (as a crash or the OOM killer would) and reaps it.
    pub fn kill_fleetd(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether its mfa-fleetd is still running (panics naming its log when it exited).
    pub fn assert_fleetd_alive(&mut self) {
        let child = self.daemon.as_mut().expect("mfa-fleetd started");
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "host {}: mfa-fleetd exited ({status}):\n{}",
                self.name,
                self.fleetd_log()
            );
        }
    }

    /// Everything every mfa-fleetd of this host wrote to stderr, oldest first.
    pub fn fleetd_log(&self) -> String {
        (1..=self.starts)
            .map(|n| {
                std::fs::read_to_string(self.dir.path().join(format!("fleetd-{n}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("--- restarted ---\n")
    }

    /// What this host's mfa-fleetd last wrote to its status file.
    pub fn status(&self) -> mfa_core::fleet_status::FleetStatus {
        mfa_core::fleet_status::read(&self.database()).unwrap_or_default()
    }

    /// A `meta` value of this host's database, as text (`None` when absent).
    pub fn meta(&self, key: &str) -> Option<Vec<u8>> {
        let c = rusqlite::Connection::open(self.database()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        rusqlite::OptionalExtension::optional(c.query_row(
            "SELECT CAST(value AS BLOB) FROM meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        ))
        .unwrap()
    }

    /// A number from this host's database.
    pub fn count(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(self.database()).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// One login of `user` through libpam; `answer` gets each prompt (`None` abandons the
    /// conversation, as Ctrl-C would).
    pub fn login(&self, user: &str, answer: &mut dyn FnMut(&str) -> Option<String>) -> Login {
        authenticate(&self.dir.path().join("pam.d"), user, answer)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_fleetd();
    }
}

/// Waits until `done` holds, polling every `every`; the time it took, or `None` after
/// `limit`.
pub fn wait_until(
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if done() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// What one login returned and showed.
#[derive(Debug, Clone)]
pub struct Login {
    pub code: i32,
    /// Every message, prompts included (`style` 1, 2: prompts; 3 error; 4 info).
    pub shown: Vec<(i32, String)>,
}

impl Login {
    pub fn prompts(&self) -> Vec<&str> {
        self.shown
            .iter()
            .filter(|(s, _)| *s == 1 || *s == 2)
            .map(|(_, t)| t.as_str())
            .collect()
    }

    pub fn said(&self, needle: &str) -> bool {
        self.shown.iter().any(|(_, t)| t.contains(needle))
    }

    /// Not asked for a second factor: the module ignored the login (exempt), pam_debug
    /// refused it.
    pub fn bypassed(&self) -> bool {
        self.code == PAM_PERM_DENIED && self.prompts().is_empty()
    }
}

#[repr(C)]
struct PamMessage {
    style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

struct Script<'a> {
    answer: &'a mut dyn FnMut(&str) -> Option<String>,
    shown: Vec<(i32, String)>,
}

extern "C" fn conversation(
    n: c_int,
    msgs: *mut *const PamMessage,
    resps: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    // SAFETY: libpam passes `n` valid messages and our own Script as appdata.
    let script = unsafe { &mut *(data as *mut Script<'_>) };
    let n = usize::try_from(n).unwrap_or(0);
    let out =
        unsafe { libc::calloc(n.max(1), std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    for i in 0..n {
        let m = unsafe { &**msgs.add(i) };
        let text = unsafe { CStr::from_ptr(m.msg) }
            .to_string_lossy()
            .into_owned();
        script.shown.push((m.style, text.clone()));
        if m.style != 1 && m.style != 2 {
            continue;
        }
        // A panic must not unwind into libpam: it abandons the conversation instead.
        let answered =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (script.answer)(&text)))
                .ok()
                .flatten();
        match answered {
            Some(a) => {
                let c = CString::new(a.replace('\0', "")).unwrap();
                // SAFETY: libpam frees each response with free(): give it malloc'd copies.
                unsafe { (*out.add(i)).resp = libc::strdup(c.as_ptr()) };
            }
            None => {
                for j in 0..i {
                    unsafe { libc::free((*out.add(j)).resp as *mut c_void) };
                }
                unsafe { libc::free(out as *mut c_void) };
                return PAM_CONV_ERR;
            }
        }
    }
    unsafe { *resps = out };
    0
}

/// `pam_authenticate` of `user` on the service file in `confdir`.
fn authenticate(
    confdir: &Path,
    user: &str,
    answer: &mut dyn FnMut(&str) -> Option<String>,
) -> Login {
    let mut script = Script {
        answer,
        shown: Vec::new(),
    };
    let conv = PamConv {
        conv: conversation,
        appdata: &mut script as *mut Script<'_> as *mut c_void,
    };
    let (svc, usr, dir, tty) = (
        CString::new(SERVICE).unwrap(),
        CString::new(user).unwrap(),
        CString::new(confdir.to_str().unwrap()).unwrap(),
        CString::new("pts/7").unwrap(),
    );
    let mut pamh: *mut c_void = std::ptr::null_mut();
    // SAFETY: every pointer outlives the PAM transaction, ended below.
    let rc =
        unsafe { pam_start_confdir(svc.as_ptr(), usr.as_ptr(), &conv, dir.as_ptr(), &mut pamh) };
    assert_eq!(rc, PAM_SUCCESS, "pam_start_confdir failed");
    unsafe { pam_set_item(pamh, PAM_TTY, tty.as_ptr() as *const c_void) };
    let code = unsafe { pam_authenticate(pamh, 0) };
    unsafe { pam_end(pamh, code) };
    Login {
        code,
        shown: script.shown,
    }
}

/// A user's authenticator key with the fleet's view of the steps already used: codes are
/// handed out in increasing steps (a step accepted on one host is refused on the others
/// once it travelled), from the step before now on, so with `totp_skew=2` a code stays
/// valid across a step boundary during the login.
pub struct Totp {
    pub key: mfa_core::totp::Key,
    used: u64,
}

impl Totp {
    /// The key `mfa-admin --json totp enroll` printed.
    pub fn from_enroll_json(json: &str) -> Totp {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        Totp {
            key: mfa_core::totp::Key {
                secret: base32(v["key"].as_str().unwrap()),
                algorithm: v["algorithm"].as_str().unwrap().to_string(),
                digits: u32::try_from(v["digits"].as_u64().unwrap()).unwrap(),
            },
            used: 0,
        }
    }

    /// The next unused step and its code; mark it [`Totp::accepted`] when a login took it.
    pub fn next(&self) -> (u64, String) {
        let now = mfa_core::now() as u64 / mfa_core::totp::STEP;
        let step = (self.used + 1).max(now - 1);
        assert!(
            step <= now + 1,
            "the test used up this user's codes for now (step {step}, now {now})"
        );
        (step, self.key.code_at(step * mfa_core::totp::STEP).unwrap())
    }

    pub fn accepted(&mut self, step: u64) {
        self.used = self.used.max(step);
    }

    /// A wrong code (of the right length) for now.
    pub fn wrong(&self) -> String {
        let now = mfa_core::now() as u64;
        let right: Vec<String> = (0..5)
            .map(|i| {
                self.key
                    .code_at(now + i * mfa_core::totp::STEP - 2 * mfa_core::totp::STEP)
                    .unwrap()
            })
            .collect();
        (0..1_000_000u32)
            .map(|n| format!("{n:0w$}", w = self.key.digits as usize))
            .find(|c| !right.contains(c))
            .unwrap()
    }
}

/// RFC 4648 base 32 without padding (an authenticator key as printed).
fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base 32: {text:?}"));
        bits = (bits << 5) | v as u64;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}
