//! `mfa-admin verify USER`: the module's flow for scripts. A passcode read from the spool and
//! typed back through standard input, a TOTP code computed from the stored key, wrong codes
//! (denied and counted), bypasses (exit 3), a dead store and a down sender (exit 4 whatever
//! fail_mode says), end of input, hostile answers, bad input refused before anything is read
//! or sent, root only; on a real pseudo-terminal ([`terminal`]: codes not echoed, Ctrl-C
//! and signals a denial, enrollment); under sudo ([`sudo`]: the configuration, the syslog
//! line).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Env, Out};

mod sudo;
mod terminal;

/// alice with one email contact; 2FA on; a fresh sender heartbeat; `method` for mfa-verify.
fn setup(method: &str) -> Env {
    let env = Env::new();
    env.ok(&["settings", "set", "enabled=on"]);
    env.ok(&["user", "add", "alice"]);
    env.ok(&["contact", "add", "alice", "--email", "alice@example.com"]);
    env.ok(&["service", "set", "mfa-verify", method]);
    heartbeat(&env);
    env
}

fn heartbeat(env: &Env) {
    std::fs::File::create(env.path("run/sender.heartbeat")).unwrap();
}

/// Runs `verify` with `input` as the whole of standard input.
fn verify(env: &Env, args: &[&str], input: &[u8]) -> Out {
    let mut child = command(env, args, &[]).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: a long input must not block against a process that stopped
    // reading.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait(child, Duration::from_secs(60));
    writer.join().unwrap();
    out
}

fn command(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfa-admin"));
    cmd.arg("--config").arg(&env.config);
    prepare(&mut cmd, args, envs);
    cmd
}

/// mfa-admin with `args` and `envs`, its three standard streams piped, no SUDO_USER,
/// DOAS_USER or MFA_CONFIG of the test's own.
fn prepare(cmd: &mut Command, args: &[&str], envs: &[(&str, &str)]) {
    cmd.args(args)
        .env_remove("MFA_CONFIG")
        .env_remove("SUDO_USER")
        .env_remove("DOAS_USER")
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
}

/// Waits for a child at most `limit`, then kills it (and fails).
fn wait(mut child: Child, limit: Duration) -> Out {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return super::out(child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("verify still running after {limit:?}: {o:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A verify run answered as it goes: its standard error read by a thread.
struct Live {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

fn drain(mut r: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Live {
    fn start(env: &Env, args: &[&str]) -> Live {
        let mut child = command(env, args, &[]).spawn().unwrap();
        let stdin = child.stdin.take();
        let stderr = drain(child.stderr.take().unwrap());
        let stdout = drain(child.stdout.take().unwrap());
        Live {
            child: Some(child),
            stdin,
            stderr,
            stdout,
        }
    }

    /// Standard error so far, once it holds `needle` (20 s at most).
    fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let text = String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned();
            if text.contains(needle) {
                return text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {needle:?} on standard error: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
    }

    /// Closes standard input and waits for the exit: (status, stdout, stderr).
    fn finish(mut self) -> Out {
        self.stdin = None;
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("verify did not end");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The drains end at the pipes' end.
        std::thread::sleep(Duration::from_millis(50));
        Out {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned(),
        }
    }
}

/// The digits of the newest spooled message (a passcode), and how many messages there are.
fn newest_code(env: &Env) -> (String, usize) {
    let mut m: Vec<serde_json::Value> = std::fs::read_dir(env.path("spool/new"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    m.sort_by_key(|m| m["created"].as_i64().unwrap_or(0));
    let body = m.last().expect("a message")["body"]
        .as_str()
        .unwrap()
        .to_string();
    let k = body.find(|c: char| c.is_ascii_digit()).unwrap();
    (
        body[k..].chars().take_while(char::is_ascii_digit).collect(),
        m.len(),
    )
}

fn spooled(env: &Env) -> usize {
    std::fs::read_dir(env.path("spool/new"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Enrols alice's authenticator; returns the stored key.
pub(super) fn enrol_totp(env: &Env) -> mfa_core::totp::Key {
    env.ok(&["totp", "enroll", "alice"]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.query_row(
        "SELECT secret, algorithm, digits FROM totp WHERE user = 'alice'",
        [],
        |r| {
            Ok(mfa_core::totp::Key {
                secret: r.get(0)?,
                algorithm: r.get(1)?,
                digits: r.get(2)?,
            })
        },
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A 6-digit code no step within ±2 of now matches.
fn wrong_code(key: &mfa_core::totp::Key) -> String {
    let t = now();
    let near: Vec<String> = (0..5)
        .map(|i| key.code_at(t + i * 30 - 60).unwrap())
        .collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

/// The auth log's rows, oldest first (`log show` moves the inbox into the database).
fn log_rows(env: &Env) -> Vec<serde_json::Value> {
    let mut rows = env.json(&["log", "show"]).as_array().unwrap().clone();
    rows.sort_by_key(|r| r["id"].as_i64().unwrap());
    rows
}

fn failures(env: &Env) -> u32 {
    mfa_core::state::failures(&env.db(), "alice").count
}

#[test]
fn proves_a_passcode_read_from_the_spool() {
    let env = setup("passcode");
    let mut run = Live::start(&env, &["verify", "alice", "--tty", "pts/9"]);
    let err = run.wait_for("Passcode ");
    // The prompt is one line of its own, ending in ": ".
    let prompt = err.lines().find(|l| l.starts_with("Passcode ")).unwrap();
    assert!(
        prompt.ends_with(": ") && prompt.contains("a***@e***.com"),
        "{err:?}"
    );
    let (code, n) = newest_code(&env);
    assert_eq!(n, 1, "one passcode sent");
    run.send(format!("{code}\n").as_bytes());
    let o = run.finish();
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "proven: passcode (a***@e***.com)\n", "{o:?}");
    assert!(!o.stdout.contains(&code) && !o.stderr.contains(&code));
    let rows = log_rows(&env);
    let last = rows.last().unwrap();
    assert_eq!(
        (
            last["user"].as_str(),
            last["service"].as_str(),
            last["outcome"].as_str(),
            last["method"].as_str(),
            last["tty"].as_str(),
            last["address"].as_str()
        ),
        (
            Some("alice"),
            Some("mfa-verify"),
            Some("success"),
            Some("passcode"),
            Some("pts/9"),
            Some("")
        ),
        "{rows:?}"
    );
    assert_eq!(failures(&env), 0);
}

#[test]
fn proves_a_totp_code_and_says_so_in_json() {
    let env = setup("totp");
    let key = enrol_totp(&env);
    // A CRLF line is the same answer.
    let code = key.code_at(now()).unwrap();
    let o = verify(
        &env,
        &["--json", "verify", "alice", "--address", "192.0.2.7"],
        format!("{code}\r\n").as_bytes(),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"user": "alice", "service": "mfa-verify", "address": "192.0.2.7",
            "tty": "", "outcome": "success", "method": "totp", "destination": "",
            "reason": "", "exit_status": 0})
    );
    assert!(o.stderr.contains("Authenticator code"), "{o:?}");
    assert_eq!(spooled(&env), 0, "no message for a TOTP login");
    // The same code again is a replay: refused.
    let again = verify(&env, &["verify", "alice"], format!("{code}\n").as_bytes());
    assert_eq!(again.code, 1, "{again:?}");
    // Another service's method applies under --service.
    env.ok(&["service", "set", "webapp", "none"]);
    let o = verify(&env, &["verify", "alice", "--service", "webapp"], b"");
    assert_eq!(o.code, 3, "{o:?}");
}

#[test]
fn wrong_codes_are_denied_and_counted() {
    let env = setup("totp");
    let key = enrol_totp(&env);
    let wrong = wrong_code(&key);
    let o = verify(
        &env,
        &["verify", "alice"],
        format!("{wrong}\n{wrong}\n{wrong}\n").as_bytes(),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.starts_with("deny: "), "{o:?}");
    assert_eq!(
        failures(&env),
        3,
        "every wrong code counts toward the lockout"
    );
    assert_eq!(log_rows(&env).last().unwrap()["outcome"], "deny");
    // At the lockout, even the right code is refused.
    env.ok(&["settings", "set", "lockout_after=4"]);
    let o = verify(&env, &["verify", "alice"], format!("{wrong}\n").as_bytes());
    assert_eq!(o.code, 1, "{o:?}");
    let right = key.code_at(now()).unwrap();
    let o = verify(&env, &["verify", "alice"], format!("{right}\n").as_bytes());
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("locked out"), "{o:?}");
}

#[test]
fn a_bypass_is_exit_3_with_its_reason() {
    let env = setup("passcode");
    env.ok(&[
        "net",
        "add",
        "--service",
        "mfa-verify",
        "--cidr",
        "10.0.0.0/8",
        "--require",
        "no",
    ]);
    let o = verify(&env, &["verify", "alice", "--address", "10.1.2.3"], b"");
    assert_eq!(o.code, 3, "{o:?}");
    assert!(o.stdout.starts_with("not required: "), "{o:?}");
    // From elsewhere, the same user is challenged (and end of input is a denial).
    let o = verify(&env, &["verify", "alice", "--address", "192.0.2.1"], b"");
    assert_eq!(o.code, 1, "{o:?}");
    env.ok(&["override", "set", "alice", "--exempt", "yes"]);
    let o = verify(&env, &["--json", "verify", "alice"], b"");
    assert_eq!(o.code, 3, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        (v["outcome"].as_str(), v["exit_status"].as_u64()),
        (Some("ignore"), Some(3))
    );
    assert!(!v["reason"].as_str().unwrap().is_empty(), "{v}");
    // A user mfa does not know, with unassigned=allow: a bypass, never a pass.
    env.ok(&["settings", "set", "unassigned=allow"]);
    let o = verify(&env, &["verify", "nobody-here"], b"");
    assert_eq!(o.code, 3, "{o:?}");
}

#[test]
fn mfa_down_is_exit_4_never_0() {
    let env = setup("passcode");
    // The sender down under fail_mode=safe: the module would let the stack decide; verify
    // must not read that as a pass nor as a bypass.
    env.ok(&["settings", "set", "fail_mode=safe"]);
    std::fs::remove_file(env.path("run/sender.heartbeat")).unwrap();
    let o = verify(&env, &["verify", "alice"], b"123456\n");
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.starts_with("unavailable: "), "{o:?}");
    assert_eq!(
        log_rows(&env).last().unwrap()["outcome"],
        "unavailable-ignore"
    );
    heartbeat(&env);
    // The database and the snapshot gone.
    env.single_machine();
    let db = env.db();
    let dir = db.parent().unwrap();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else {
            std::fs::remove_file(&p).unwrap();
        }
    }
    let o = verify(&env, &["verify", "alice"], b"123456\n");
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("cannot read the rules"), "{o:?}");
    // A database of garbage (and no snapshot).
    std::fs::write(&db, vec![0x5au8; 8192]).unwrap();
    let o = verify(&env, &["verify", "alice"], b"123456\n");
    assert_eq!(o.code, 4, "{o:?}");
    // No configuration at all.
    std::fs::remove_file(&env.config).unwrap();
    let o = verify(&env, &["verify", "alice"], b"123456\n");
    assert_eq!(o.code, 4, "{o:?}");
    assert!(o.stdout.contains("configuration"), "{o:?}");
}

#[test]
fn end_of_input_is_a_denial() {
    let env = setup("passcode");
    let o = verify(&env, &["verify", "alice"], b"");
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(
        o.stdout, "abandoned: 1 message sent, no code typed\n",
        "{o:?}"
    );
    // A menu answered, then nothing.
    env.ok(&["contact", "add", "alice", "--email", "alice2@example.com"]);
    let o = verify(&env, &["verify", "alice"], b"2\n");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("Where should the passcode go?"), "{o:?}");
    // An answer that never comes: the timeout ends it.
    let mut run = Live::start(&env, &["verify", "alice", "--timeout", "1"]);
    run.wait_for("Choice");
    let start = Instant::now();
    let child = run.child.take().unwrap();
    let o = wait(child, Duration::from_secs(20));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn hostile_answers_never_pass_nor_crash() {
    let env = setup("totp");
    let key = enrol_totp(&env);
    env.ok(&["settings", "set", "lockout_after=0"]);
    let right = || key.code_at(now()).unwrap();
    let cases: Vec<Vec<u8>> = vec![
        // The right code with a NUL after it: a C string would stop at the NUL.
        [right().as_bytes(), b"\0junk\n"].concat(),
        [b"\0", right().as_bytes(), b"\n"].concat(),
        // Not UTF-8.
        [right().as_bytes(), b"\xff\xfe\n"].concat(),
        b"\xc3\x28\xa0\xa1\n".to_vec(),
        // A megabyte on one line, starting with the right code; and without any newline.
        [
            right().as_bytes().to_vec(),
            vec![b'7'; 1 << 20],
            b"\n".to_vec(),
        ]
        .concat(),
        [right().as_bytes().to_vec(), vec![b' '; 1 << 20]].concat(),
        // Escapes for the terminal.
        b"\x1b[2J\x1b]0;owned\x07\n".to_vec(),
    ];
    for input in cases {
        let o = verify(&env, &["verify", "alice"], &input);
        assert_eq!(
            o.code,
            1,
            "{:?}: {o:?}",
            String::from_utf8_lossy(&input[..20.min(input.len())])
        );
    }
    // Three lines in one: only the first is the answer to the first prompt.
    let w = wrong_code(&key);
    let o = verify(
        &env,
        &["verify", "alice"],
        format!("{w}\n{}\n", right()).as_bytes(),
    );
    assert_eq!(o.code, 0, "the second prompt takes the second line: {o:?}");
    assert_eq!(o.stderr.matches("Authenticator code").count(), 2, "{o:?}");
}

#[test]
fn bad_input_is_exit_2_before_anything_is_read_or_sent() {
    let env = setup("passcode");
    let inbox_before = log_rows(&env).len();
    for (args, needle) in [
        (vec!["verify", "al ice"], "invalid user name"),
        (vec!["verify", "émile"], "invalid user name"),
        (vec!["verify", "alice\n"], "invalid user name"),
        (vec!["verify", "--", "-alice"], "invalid user name"),
        (vec!["verify", "alice", "--bogus"], "unexpected argument"),
        (vec!["verify"], "USER"),
        (
            vec!["verify", "alice", "--address", "example.com"],
            "invalid IP address",
        ),
        (vec!["verify", "alice", "--service", "*"], "one service"),
        (
            vec!["verify", "alice", "--service", "a/b"],
            "invalid service name",
        ),
        (
            vec!["verify", "alice", "--tty", "pts/1\x1b[2J"],
            "invalid tty",
        ),
        (vec!["verify", "alice", "--timeout", "0"], "timeout"),
        (vec!["verify", "alice", "--timeout", "soon"], "timeout"),
    ] {
        let o = verify(&env, &args, b"123456\n");
        assert_eq!(o.code, 2, "{args:?}: {o:?}");
        assert!(o.stderr.contains(needle), "{args:?}: {o:?}");
        assert!(!o.stderr.contains("\x1b"), "{args:?}: {o:?}");
    }
    assert_eq!(spooled(&env), 0, "nothing was sent");
    assert_eq!(log_rows(&env).len(), inbox_before, "nothing was logged");
    // A bad user name is refused even before the configuration is read.
    std::fs::remove_file(&env.config).unwrap();
    let o = verify(&env, &["verify", "al ice"], b"");
    assert_eq!(o.code, 2, "{o:?}");
}

#[test]
fn root_only_and_says_how() {
    let env = setup("passcode");
    let o = env.run_as_nobody(&["verify", "alice"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("must run as root") && o.stderr.contains("NOPASSWD"),
        "{o:?}"
    );
    assert_eq!(spooled(&env), 0);
}

#[test]
fn stdin_answers_never_enrol() {
    let env = setup("passcode");
    env.ok(&["settings", "set", "unassigned=enroll"]);
    env.ok(&["settings", "set", "self_enroll=yes"]);
    let before = env.dump();
    // Even with SUDO_USER naming the user: enrolment needs a terminal.
    let mut cmd = command(&env, &["verify", "newbie"], &[("SUDO_USER", "newbie")]);
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"mallory@example.com\n")
        .unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("self-enrollment refused"), "{o:?}");
    let after = env.dump();
    assert!(
        !after.iter().any(|l| l.contains("mallory")),
        "nothing enrolled: {:?}",
        after
            .iter()
            .filter(|l| !before.contains(l))
            .collect::<Vec<_>>()
    );
}
