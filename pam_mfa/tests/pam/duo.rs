//! Method `duo` through libpam with the real parts: pam_mfa.so asks mfa-sender (running as
//! `nobody`, as the installed sender runs as `mfa`) over its broker socket, and the sender
//! talks HTTPS, signed, to tests/lib/mock_duo.py (Duo's Auth API v2, signatures verified).
//! Approve, deny, no answer, the sender stopped while a push is pending (secure denies, safe
//! ignores), credentials Duo refuses, and 32 logins waiting on pushes at once.
//!
//! Needs root (the sender is started as nobody with setpriv), openssl and /usr/bin/python3;
//! without root each test says so and passes without running.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Install;
use super::harness::{self, PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS};
use mfa_core::store::{people, rules};

const IKEY: &str = "DIWJ8X6AEYOR5OMC6TQ1";
const SKEY: &str = "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// mfa-sender, built now (an integration test of another crate does not build it). Built
/// as `make test` builds every target first (`--workspace --all-targets`): the same
/// features, so nothing is rebuilt there; `-p mfa-sender` alone unified other features and
/// rebuilt mfa-core and the sender in the middle of the tests (CPU that timing tests felt).
fn sender_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let module = harness::module_path();
            let dir = module.parent().unwrap().to_path_buf();
            let release = dir.file_name().unwrap() == "release";
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--offline", "-q", "--workspace", "--all-targets"]);
            if release {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success(), "cannot build mfa-sender");
            dir.join("mfa-sender")
        })
        .clone()
}

/// A private installation whose service method is `duo`, a Duo mock and a running sender.
struct Duo {
    i: Install,
    mock: Child,
    sender: Option<Child>,
}

impl Drop for Duo {
    fn drop(&mut self) {
        for c in [Some(&mut self.mock), self.sender.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Duo {
    /// `users`: the mock's users file; `duo`: extra `[duo]` lines; `skey`: the secret key the
    /// sender is given (the mock knows [`SKEY`]).
    fn start(users: &str, duo: &str, skey: &str) -> Option<Duo> {
        if !is_root() {
            eprintln!("skipped: needs root (runs mfa-sender as nobody with setpriv)");
            return None;
        }
        let i = Install::new();
        i.user("ann", &[]);
        i.store()
            .change("test", "service set", |tx| {
                rules::set_service(tx, "*", "duo")?;
                Ok(((), String::new()))
            })
            .unwrap();
        let d = i.path("duo");
        std::fs::create_dir_all(&d).unwrap();
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
                // An end-entity certificate (webpki refuses a CA certificate as the server's).
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-keyout",
            ])
            .arg(d.join("key.pem"))
            .arg("-out")
            .arg(d.join("cert.pem"))
            .stderr(Stdio::null()));
        std::fs::write(d.join("users.json"), users).unwrap();
        let mock_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/lib/mock_duo.py");
        let mock = Command::new("/usr/bin/python3")
            .arg(mock_py)
            .arg("--ready")
            .arg(d.join("port"))
            .arg("--cert")
            .arg(d.join("cert.pem"))
            .arg("--key")
            .arg(d.join("key.pem"))
            .args(["--ikey", IKEY, "--skey", SKEY, "--users"])
            .arg(d.join("users.json"))
            .arg("--log")
            .arg(d.join("log.jsonl"))
            .spawn()
            .unwrap();
        let port = wait_for("the Duo mock's port", Duration::from_secs(20), || {
            std::fs::read_to_string(d.join("port"))
                .ok()
                .filter(|p| !p.trim().is_empty())
        });
        // The sender's secret, readable by its user only.
        std::fs::write(d.join("skey"), skey).unwrap();
        let cfg = i.path("mfa.toml");
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&format!(
            "\n[sender]\nuser = \"nobody\"\n\n[duo]\nhost = \"127.0.0.1:{}\"\nikey = \"{IKEY}\"\nskey_file = \"{}\"\nca_file = \"{}\"\n{duo}",
            port.trim(),
            d.join("skey").display(),
            d.join("cert.pem").display()
        ));
        std::fs::write(&cfg, text).unwrap();
        // As installed: the sender's user owns the spool and the runtime directory and its
        // secret; everyone may pass through the installation's directory.
        std::fs::set_permissions(i.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(d.join("skey"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(i.path("run"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_file(i.path("run/sender.heartbeat"));
        run(Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(i.path("spool"))
            .arg(i.path("run"))
            .arg(d.join("skey")));
        let mut duo = Duo {
            i,
            mock,
            sender: None,
        };
        duo.start_sender();
        Some(duo)
    }

    fn start_sender(&mut self) {
        let sock = mfa_core::duo::socket_path(&self.i.path("run"));
        let _ = std::fs::remove_file(&sock);
        let child = Command::new("setpriv")
            .args([
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(sender_path())
            .arg("--config")
            .arg(self.i.path("mfa.toml"))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("MFA_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.i.path("sender.log")).unwrap())
            .spawn()
            .unwrap();
        self.sender = Some(child);
        wait_for("the broker's socket", Duration::from_secs(20), || {
            mfa_core::duo::check_socket(&self.i.path("run"), "nobody").ok()
        });
    }

    /// Stops the sender with SIGTERM (as systemd does), waiting for it.
    fn stop_sender(&mut self) {
        if let Some(mut c) = self.sender.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }

    /// The mock's log: one JSON object per request.
    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.i.path("duo/log.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn sender_log(&self) -> String {
        std::fs::read_to_string(self.i.path("sender.log")).unwrap_or_default()
    }

    /// A login of `user` answering every prompt with `answer`.
    fn login(&self, user: &str, answer: &'static str) -> harness::Result {
        self.i.auth(
            user,
            Some("192.0.2.9"),
            Box::new(move |_| Some(answer.into())),
        )
    }
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_approved_push_logs_in_with_a_signed_request_carrying_the_login() {
    let Some(duo) = Duo::start("{}", "", SKEY) else {
        return;
    };
    // Unknown to the mock ("*" absent): Duo's 400 for the user is a denial, not a bypass.
    let r = duo.login("ann", "1");
    assert_eq!(r.code, PAM_AUTH_ERR, "{:?}\n{}", r.shown, duo.sender_log());
    std::fs::write(duo.i.path("duo/users.json"), r#"{"ann": {}}"#).unwrap();
    let r = duo.login("ann", "1");
    assert_eq!(r.code, PAM_SUCCESS, "{:?}\n{}", r.shown, duo.sender_log());
    assert!(r.said("Duo Push to iOS (XXX-XXX-1234)"), "{:?}", r.shown);
    assert!(r.said("Duo Push sent to"), "{:?}", r.shown);
    let reqs = duo.requests();
    let auth = reqs
        .iter()
        .find(|q| q["path"] == "/auth/v2/auth" && q["status"] == 200)
        .unwrap_or_else(|| panic!("{reqs:?}"));
    assert_eq!(auth["sig"], "sha512", "{auth}");
    assert_eq!(auth["params"]["ipaddr"], "192.0.2.9", "{auth}");
    assert_eq!(auth["params"]["factor"], "push", "{auth}");
    assert!(
        auth["params"]["pushinfo"]
            .as_str()
            .unwrap_or("")
            .contains("mfa-test"),
        "{auth}"
    );
    let txid = auth["txid"].as_str().unwrap().to_string();
    assert!(!txid.is_empty());
    // The auth log names the factor, the device and the transaction.
    let c = duo.i.count(&format!(
        "SELECT count(*) FROM auth_log WHERE outcome = 'success' AND method = 'duo-push' \
         AND destination = 'iOS (XXX-XXX-1234)' AND txid = '{txid}'"
    ));
    assert_eq!(c, 1);
}

#[test]
fn denied_and_unanswered_pushes_are_denials_and_lock_the_user_out() {
    let users = r#"{"ann": {"push": "deny"}, "bob": {"push": "timeout"}}"#;
    let Some(duo) = Duo::start(users, "timeout = \"3s\"\nautopush = true\n", SKEY) else {
        return;
    };
    duo.i.user("bob", &[]);
    duo.i.set("lockout_after", "2");
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_AUTH_ERR, "{:?}", r.shown);
    assert!(r.said("Duo: login denied."), "{:?}", r.shown);
    let start = Instant::now();
    let r = duo.login("bob", "");
    assert_eq!(r.code, PAM_AUTH_ERR, "{:?}", r.shown);
    assert!(r.said("no answer in time"), "{:?}", r.shown);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // The second denied push locks ann out; the third login asks Duo nothing.
    let _ = duo.login("ann", "");
    let pushes = duo.requests().len();
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(r.said("locked"), "{:?}", r.shown);
    assert_eq!(
        duo.requests().len(),
        pushes,
        "Duo was asked while locked out"
    );
}

#[test]
fn the_sender_stopped_while_a_push_is_pending_is_the_fail_mode() {
    let users = r#"{"ann": {"after": 30}}"#;
    let Some(mut duo) = Duo::start(users, "autopush = true\n", SKEY) else {
        return;
    };
    for (mode, code) in [("secure", PAM_AUTH_ERR), ("safe", PAM_PERM_DENIED)] {
        duo.i.set("fail_mode", mode);
        let n = duo.requests().len();
        let handle = {
            let path = duo.i.path("pam.d");
            std::thread::spawn(move || {
                harness::authenticate(
                    &path,
                    "mfa-test",
                    "ann",
                    Some("192.0.2.9"),
                    Box::new(|_| None),
                )
            })
        };
        // Once the push is out (the mock saw the auth call), the sender stops.
        wait_for("the push", Duration::from_secs(20), || {
            duo.requests()[n..]
                .iter()
                .any(|q| q["path"] == "/auth/v2/auth")
                .then_some(())
        });
        let stopped = Instant::now();
        duo.stop_sender();
        let r = handle.join().unwrap();
        assert_eq!(r.code, code, "{mode}: {:?}", r.shown);
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "{:?}",
            stopped.elapsed()
        );
        duo.start_sender();
    }
    let outcomes = duo.i.outcomes();
    assert!(
        outcomes.iter().any(|o| o.starts_with("unavailable-deny:")),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|o| o.starts_with("unavailable-ignore:")),
        "{outcomes:?}"
    );
}

#[test]
fn credentials_duo_refuses_are_the_fail_mode_and_no_sender_too() {
    let Some(mut duo) = Duo::start(
        r#"{"*": {}}"#,
        "autopush = true\n",
        "wrong-secret-key-of-40-characters-xxxxx",
    ) else {
        return;
    };
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_AUTH_ERR, "{:?}", r.shown);
    duo.i.set("fail_mode", "safe");
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_PERM_DENIED, "safe mode ignores: {:?}", r.shown);
    assert!(
        duo.requests().iter().any(|q| q["status"] == 401),
        "{:?}",
        duo.requests()
    );
    duo.stop_sender();
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_PERM_DENIED, "{:?}", r.shown);
    duo.i.set("fail_mode", "secure");
    let r = duo.login("ann", "");
    assert_eq!(r.code, PAM_AUTH_ERR, "{:?}", r.shown);
    let outcomes = duo.i.outcomes();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.starts_with("unavailable-"))
            .count(),
        4,
        "{outcomes:?}"
    );
}

#[test]
fn thirty_two_logins_waiting_on_pushes_all_end_within_the_timeout() {
    // Half approve after 2 s, half never answer (the timeout, 6 s, ends them).
    let mut users = serde_json::Map::new();
    for n in 0..32 {
        let answer = if n % 2 == 0 {
            serde_json::json!({"after": 2})
        } else {
            serde_json::json!({"push": "timeout"})
        };
        users.insert(format!("u{n}"), answer);
    }
    let users = serde_json::Value::Object(users).to_string();
    let Some(duo) = Duo::start(&users, "timeout = \"6s\"\nautopush = true\n", SKEY) else {
        return;
    };
    duo.i
        .store()
        .change("test", "users", |tx| {
            for n in 0..32 {
                people::add_user(tx, &format!("u{n}"), "", 0)?;
            }
            Ok(((), String::new()))
        })
        .unwrap();
    let start = Instant::now();
    let handles: Vec<_> = (0..32)
        .map(|n| {
            let path = duo.i.path("pam.d");
            std::thread::spawn(move || {
                let user = format!("u{n}");
                let r = harness::authenticate(
                    &path,
                    "mfa-test",
                    &user,
                    Some("192.0.2.9"),
                    Box::new(|_| None),
                );
                (n, r.code, start.elapsed())
            })
        })
        .collect();
    for h in handles {
        let (n, code, took) = h.join().unwrap();
        let want = if n % 2 == 0 {
            PAM_SUCCESS
        } else {
            PAM_AUTH_ERR
        };
        assert_eq!(code, want, "u{n}\n{}", duo.sender_log());
        assert!(took < Duration::from_secs(6 + 10), "u{n} took {took:?}");
    }
}
