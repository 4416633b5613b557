//! The sender as an installed system runs it: an unprivileged user (`nobody`/`nogroup` here,
//! `mfa` on a real system) against a spool `root:<its group> 2770` whose messages root
//! queued under umask 077, a configuration `0640 root:<its group>`, a runtime directory of
//! its own and a rules database it cannot read. Needs root to set that up (skips otherwise).
//!
//! The helpers here (the installed layout, running the sender as that user, queuing as root
//! under umask 077 in a child process) serve `preflight.rs` too.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};

use super::{
    Env, Install, Out, SENDER, ServerOpts, SmtpServer, admin, kill_and_reap, mfa_admin, seq,
    smtp_plain, terminate, wait_child, wait_until,
};

/// The unprivileged account the sender runs as in these tests.
pub const USER: &str = "nobody";
pub const GROUP: &str = "nogroup";
pub const GID: u32 = 65534;

/// True when the tests can set up an installed layout; otherwise says why they skip.
pub fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped: needs root (runs mfa-sender as {USER})");
    }
    root
}

fn chown(path: &Path, uid: u32, gid: u32, mode: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    // After the chown, which may clear a setgid bit.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Gives an installation the owners and modes `mfa-admin init` gives an installed system,
/// for a sender running as [`USER`]: the temporary root traversable, the configuration
/// 0640 root:GROUP, the spool 0755 root with its subdirectories 2770 root:GROUP, the runtime
/// directory USER:GROUP 0755, and a database directory 0700 root the sender cannot enter.
pub fn installed_layout(i: &Install) {
    chown(i.dir.path(), 0, 0, 0o755);
    chown(&i.config, 0, GID, 0o640);
    chown(&i.spool(), 0, 0, 0o755);
    for sub in spool::SUBDIRS {
        chown(&i.spool().join(sub), 0, GID, 0o2770);
    }
    chown(&i.path("run"), 65534, GID, 0o755);
    std::fs::create_dir_all(i.path("db")).unwrap();
    std::fs::write(i.path("db/mfa.db"), "the rules").unwrap();
    chown(&i.path("db/mfa.db"), 0, 0, 0o600);
    chown(&i.path("db"), 0, 0, 0o700);
}

/// `mfa-sender --config C ARGS` run as [`USER`]:[`GROUP`] with no other groups.
pub fn as_sender(i: &Install, args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", USER, "--regid", GROUP, "--clear-groups"])
        .arg(SENDER)
        .arg("--config")
        .arg(&i.config)
        .args(args)
        .env_remove("MFA_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .stdin(Stdio::null());
    cmd
}

/// Runs [`as_sender`] to the end (killed after `timeout`, which fails the test).
pub fn run_as_sender(i: &Install, args: &[&str], timeout: Duration) -> Out {
    let n = seq();
    let (o, e) = (
        i.path(&format!("run-{n}.out")),
        i.path(&format!("run-{n}.err")),
    );
    let start = Instant::now();
    let mut child = as_sender(i, args)
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
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
    assert!(
        status.is_some(),
        "mfa-sender {args:?} as {USER} hung: {out:?}"
    );
    out
}

/// The environment variable that tells [`child_queues_under_umask_077`] what to queue:
/// `SPOOL|ID,ID,...`.
const CHILD_ENV: &str = "MFA_SENDER_TEST_QUEUE";

/// Child of [`queue_under_umask_077`]: queues the messages named in [`CHILD_ENV`] under the
/// umask it inherited. Ignored in a normal run: its parent runs it with `--ignored`.
#[test]
#[ignore = "run by queue_under_umask_077 under umask 077"]
fn child_queues_under_umask_077() {
    let v = std::env::var(CHILD_ENV).expect("run by queue_under_umask_077");
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(status.contains("Umask:\t0077"), "umask is not 077");
    let (dir, ids) = v.split_once('|').unwrap();
    let now = mfa_core::now();
    for id in ids.split(',') {
        let msg = Message {
            id: id.to_string(),
            created: now,
            expires: now + 600,
            channel: Channel::Email,
            to: "alice@example.com".into(),
            subject: format!("test {id}"),
            body: format!("Delivery test message {id}."),
            user: "alice".into(),
            kind: Kind::Test,
            masked_to: "a***@e***.com".into(),
        };
        spool::enqueue(Path::new(dir), &msg).unwrap();
    }
}

/// Queues `n` messages to alice@example.com as this process's user, under umask 077 (in a
/// child process: the umask is process-wide). Returns their ids.
pub fn queue_under_umask_077(i: &Install, n: usize) -> Vec<String> {
    let now = mfa_core::now();
    let ids: Vec<String> = (0..n).map(|_| format!("{now}-u{:06}", seq())).collect();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("sh")
        .args(["-c", "umask 077; exec \"$@\"", "sh"])
        .arg(&exe)
        .args([
            "--exact",
            "--ignored",
            "unprivileged::child_queues_under_umask_077",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(
            CHILD_ENV,
            format!("{}|{}", i.spool().display(), ids.join(",")),
        )
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    ids
}

#[test]
fn an_unprivileged_sender_delivers_what_root_queued_under_umask_077() {
    if !root_or_skip("an_unprivileged_sender_delivers_what_root_queued_under_umask_077") {
        return;
    }
    let server = SmtpServer::start(&ServerOpts::default());
    // The test installation names `[sender] user = "nobody"` (support::Install::create).
    let env = Env::new(&smtp_plain(server.port));
    installed_layout(&env);
    let queued = queue_under_umask_077(&env, 2);
    for id in &queued {
        let m = std::fs::metadata(env.spool().join("new").join(format!("{id}.json"))).unwrap();
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o640, 0, GID),
            "{id}: queued under umask 077"
        );
    }
    // What the issue saw: a message a writer left 0600 root:root. The sender cannot read
    // it, and must say so.
    let stale = format!("{}-stale{:04}", mfa_core::now(), seq());
    let stale_path = env.spool().join("new").join(format!("{stale}.json"));
    std::fs::write(&stale_path, "{}").unwrap();
    chown(&stale_path, 0, 0, 0o600);

    // --check as the sender: every file check passes but the unreadable message.
    let check = run_as_sender(&env, &["--check"], Duration::from_secs(30));
    assert_eq!(check.code, 1, "{check:?}");
    for line in [
        "OK    config: ",
        "OK    spool new/: ",
        "OK    spool cur/: ",
        "OK    spool failed/: ",
        "OK    runtime: ",
        // A plain local relay: the line claims neither TLS nor a login.
        "OK    smtp: connected to 127.0.0.1, EHLO accepted; no TLS; no login\n",
        "FAIL  spool messages: 1 of 3 message(s)",
    ] {
        assert!(check.stdout.contains(line), "no {line:?} in {check:?}");
    }
    assert!(check.stdout.contains(&stale), "{check:?}");

    // The daemon, as the sender, delivers what root queued, and what root queues next.
    let log = env.path("sender.log");
    let mut sender = as_sender(&env, &[])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    server.wait_ids(&queued, Duration::from_secs(20));
    let more = queue_under_umask_077(&env, 1);
    server.wait_ids(&more, Duration::from_secs(20));
    wait_until("the stale message to fail", Duration::from_secs(10), || {
        env.reason(&stale).is_some()
    });
    wait_until("the spool to drain", Duration::from_secs(10), || {
        env.drained()
    });
    let status = terminate(&mut sender, Duration::from_secs(10));
    let log = read_log();
    assert_eq!(status.code(), Some(0), "{log}");
    let arrivals = server.arrivals();
    for id in queued.iter().chain(&more) {
        assert_eq!(arrivals.get(id), Some(&1), "{id}: {arrivals:?}\n{log}");
    }

    // The unreadable one: logged with its id and reason, in failed/ with a reason file the
    // sender wrote 0640 with the spool's group, and in the status file.
    let reason = env.reason(&stale).unwrap();
    assert!(
        reason.starts_with("unreadable: ") && reason.contains("Permission denied"),
        "{reason}"
    );
    assert!(
        log.contains(&format!("id={stale} failed: unreadable: ")),
        "{log}"
    );
    let m = std::fs::metadata(env.spool().join("failed").join(format!("{stale}.reason"))).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o640, 65534, GID));
    let st: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.runtime().join("sender.status")).unwrap())
            .unwrap();
    assert_eq!(st["failed"], 1, "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{stale}: unreadable")),
        "{st}"
    );
    // It never went near the rules database.
    assert!(!log.contains("mfa.db"), "{log}");

    // What the administrator sees.
    let bin = mfa_admin();
    let text = admin(&env, &bin, &["sender", "status"]);
    assert!(
        text.contains("failed:     1")
            && text.contains(&format!("last error: {stale}: unreadable")),
        "{text}"
    );
    let list = admin(&env, &bin, &["queue", "list"]);
    let row = list
        .lines()
        .find(|l| l.contains(&stale))
        .unwrap_or_default();
    assert!(
        row.contains("failed") && row.contains("unreadable"),
        "{list}"
    );
}
