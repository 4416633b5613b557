//! Tests of the spool: formats, modes and groups whatever the umask, effective ids, links
//! and swapped directories, failure reasons.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn spool() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for s in SUBDIRS {
        std::fs::create_dir(d.path().join(s)).unwrap();
    }
    d
}

#[test]
fn enqueue_renames_into_new() {
    let d = spool();
    let msg = Message {
        id: "1700000000-abc".into(),
        created: 1,
        expires: 2,
        channel: Channel::SmsGateway,
        to: "5551234567@vtext.com".into(),
        subject: "s".into(),
        body: "b".into(),
        user: "ann".into(),
        kind: Kind::Passcode,
        masked_to: "***-***-4567 (Verizon)".into(),
    };
    let p = enqueue(d.path(), &msg).unwrap();
    assert_eq!(p, d.path().join("new/1700000000-abc.json"));
    assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_eq!(read(&p).unwrap(), msg);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(json["channel"], "sms-gateway");
    assert_eq!(json["kind"], "passcode");
    assert!(check(d.path()).is_ok());
    assert_eq!(pending(d.path()).unwrap(), ["1700000000-abc.json"]);
    let claimed = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
    assert!(
        claim(d.path(), "1700000000-abc.json").unwrap().is_none(),
        "claimed twice"
    );
    assert_eq!(recover(d.path()).unwrap(), 1);
    let claimed2 = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
    assert_eq!(claimed, claimed2);
    let failed = fail(d.path(), &claimed, "550 no\nsuch user").unwrap();
    assert_eq!(failure_reason(&failed).unwrap(), "550 no such user");
    assert!(retry(d.path(), "1700000000-abc.json").unwrap());
    assert!(failure_reason(&failed).is_none());
    let c = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
    ack(&c).unwrap();
    assert!(pending(d.path()).unwrap().is_empty());
    let mut bad = msg.clone();
    bad.id = "../x".into();
    assert!(enqueue(d.path(), &bad).is_err());
}

fn message(id: &str) -> Message {
    Message {
        id: id.into(),
        created: 1,
        expires: 2,
        channel: Channel::Email,
        to: "ann@example.com".into(),
        subject: "s".into(),
        body: "b".into(),
        user: "ann".into(),
        kind: Kind::Test,
        masked_to: "a***@e***.com".into(),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The environment variable that tells a re-run test (below) which spool to use.
const CHILD_ENV: &str = "MFA_SPOOL_TEST_CHILD";

/// Runs the test `name` of this binary again in a child process, under `wrapper`
/// (a command that ends by exec'ing its arguments: `sh -c 'umask 077; exec "$@"'`,
/// `setpriv ...`), with [`CHILD_ENV`] naming `spool`. The umask and the ids are
/// process-wide, so they change only in that child. Returns its output.
fn rerun(name: &str, wrapper: &[&str], spool: &Path) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&exe)
        .args(["--exact", &format!("spool::tests::{name}"), "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, spool)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {name} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {name} did not run:\n{text}"
    );
    text
}

/// A spool under a temporary directory others may traverse (a child may run as nobody).
fn open_spool(mode: u32) -> tempfile::TempDir {
    let d = spool();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for s in SUBDIRS {
        std::fs::set_permissions(d.path().join(s), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    d
}

/// Child of `files_get_0640_and_the_group_whatever_the_umask`: queues and fails a
/// message under umask 077. Does nothing unless run by that test.
#[test]
fn child_writes_under_umask_077() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spool = PathBuf::from(dir);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status.contains("Umask:\t0077"),
        "umask not 077 in the child"
    );
    enqueue(&spool, &message("1700000000-umask")).unwrap();
    let claimed = claim(&spool, "1700000000-umask.json").unwrap().unwrap();
    fail(&spool, &claimed, "550 refused").unwrap();
    enqueue(&spool, &message("1700000001-umask")).unwrap();
}

#[test]
fn files_get_0640_and_the_group_whatever_the_umask() {
    let d = open_spool(0o2770);
    // As root, the spool's group is one root is not in (as `mfa` is on a real system);
    // otherwise our own group.
    let group = if is_root() {
        65534
    } else {
        nix::unistd::getegid().as_raw()
    };
    for s in SUBDIRS {
        std::os::unix::fs::chown(d.path().join(s), None, Some(group)).unwrap();
        // chown may clear the setgid bit: put the directory's mode back.
        std::fs::set_permissions(d.path().join(s), std::fs::Permissions::from_mode(0o2770))
            .unwrap();
    }
    rerun(
        "child_writes_under_umask_077",
        &["sh", "-c", "umask 077; exec \"$@\"", "sh"],
        d.path(),
    );
    for f in [
        "new/1700000001-umask.json",
        "failed/1700000000-umask.json",
        "failed/1700000000-umask.reason",
    ] {
        let m = std::fs::metadata(d.path().join(f)).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640, "{f}");
        assert_eq!(m.gid(), group, "{f}");
    }
    assert_eq!(
        failed(d.path(), "1700000000-umask").as_deref(),
        Some("550 refused")
    );
    assert_eq!(failed(d.path(), "1700000001-umask"), None);
    assert_eq!(failed(d.path(), "../failed/1700000000-umask"), None);
    assert_eq!(
        newest_failure(d.path()),
        Some(("1700000000-umask".into(), "550 refused".into()))
    );
}

/// Child of `a_writer_that_cannot_set_the_group_fails_clearly`: runs as nobody.
#[test]
fn child_enqueues_as_nobody() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spool = PathBuf::from(dir);
    assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
    let e = enqueue(&spool, &message("1700000000-nobody"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cannot give the message the group of")
            && e.contains("the sender could not read it"),
        "{e}"
    );
    assert!(pending(&spool).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(spool.join("tmp")).unwrap().count(), 0);
}

/// Queuing into a spool whose group the writer is not in, with no way for the sender to
/// read the file through its owner either: an error naming the fix, never a file the
/// sender cannot read.
#[test]
fn a_writer_that_cannot_set_the_group_fails_clearly() {
    if !is_root() {
        eprintln!("skipped: needs root (runs a child as nobody)");
        return;
    }
    // root:root, writable by everyone: nobody can write but cannot give the file the
    // group root, and the directory is not private to nobody.
    let d = open_spool(0o1777);
    rerun(
        "child_enqueues_as_nobody",
        &[
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
        ],
        d.path(),
    );
}

/// Child of `check_uses_the_effective_ids`: real uid nobody, effective uid root, as in
/// su and sudo.
#[test]
fn child_checks_with_real_uid_nobody() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let spool = PathBuf::from(dir);
    assert_eq!(nix::unistd::getuid().as_raw(), 65534, "real uid");
    assert!(nix::unistd::geteuid().is_root(), "effective uid");
    let new = spool.join("new");
    // What the caller may do is not the question: access(2) says no here...
    assert!(
        nix::unistd::access(&new, nix::unistd::AccessFlags::W_OK).is_err(),
        "the test needs a spool the real uid cannot write"
    );
    // ...what this process may do is: it can queue.
    check(&spool).unwrap();
    enqueue(&spool, &message("1700000000-su")).unwrap();
}

#[test]
fn check_uses_the_effective_ids() {
    if !is_root() {
        eprintln!("skipped: needs root (runs a child with real uid nobody, euid root)");
        return;
    }
    let d = open_spool(0o700);
    rerun(
        "child_checks_with_real_uid_nobody",
        &["setpriv", "--ruid", "nobody", "--euid", "root"],
        d.path(),
    );
    assert_eq!(pending(d.path()).unwrap(), ["1700000000-su.json"]);
    // And for a process that really is nobody, the same spool is unusable.
    let e = std::process::Command::new("setpriv")
        .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
        .args(["test", "-w"])
        .arg(d.path().join("new"))
        .status()
        .unwrap();
    assert!(!e.success());
}

#[test]
fn check_names_a_missing_directory() {
    let d = spool();
    std::fs::remove_dir(d.path().join("cur")).unwrap();
    let e = check(d.path()).unwrap_err().to_string();
    assert!(e.contains("cur") && e.contains("mfa-admin init"), "{e}");
}

/// Runs `f` in a thread; fails the test if it has not returned after 5 s (a read that
/// blocks on a FIFO would otherwise hang the test run).
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .expect("blocked (a FIFO read?)")
}

/// The sender's group writes in `failed/`, `new/` and `cur/`: what root reads there (the
/// PAM module's `failed`, mfa-admin's queue list and sender status) must not follow a
/// link to a root-only file, block on a FIFO, read without bound or pass control bytes.
#[test]
fn spool_files_forged_by_the_senders_group_are_read_safely() {
    let d = spool();
    let failed_dir = d.path().join("failed");
    let secret = d.path().join("secret");
    std::fs::write(&secret, "root:$y$j9T$secret-hash:19000\n").unwrap();
    // A reason that is a link to a root-only file: not read.
    std::fs::write(failed_dir.join("1700000000-ln.json"), "{}").unwrap();
    std::os::unix::fs::symlink(&secret, failed_dir.join("1700000000-ln.reason")).unwrap();
    let why = failed(d.path(), "1700000000-ln").unwrap();
    assert!(!why.contains("secret-hash"), "{why}");
    // A message that is a link: not read either.
    std::os::unix::fs::symlink(&secret, d.path().join("new/1700000000-m.json")).unwrap();
    let e = read(&d.path().join("new/1700000000-m.json"))
        .unwrap_err()
        .to_string();
    assert!(!e.contains("secret-hash"), "{e}");
    // A FIFO as reason or message: no blocking.
    for p in ["failed/1700000000-ff.reason", "new/1700000000-ff.json"] {
        nix::unistd::mkfifo(
            &d.path().join(p),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
    }
    std::fs::write(failed_dir.join("1700000000-ff.json"), "{}").unwrap();
    let root = d.path().to_path_buf();
    let why = within_5s(move || failed(&root, "1700000000-ff"));
    assert_eq!(why.as_deref(), Some(""));
    let root = d.path().to_path_buf();
    assert!(within_5s(move || read(&root.join("new/1700000000-ff.json"))).is_err());
    // A reason written directly (not through `fail`): control bytes never come out, and
    // a huge one is cut.
    std::fs::write(failed_dir.join("1700000000-cc.json"), "{}").unwrap();
    let mut raw = b"550 \x1b]0;owned\x07\r\nbad\xff".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 1 << 20));
    std::fs::write(failed_dir.join("1700000000-cc.reason"), &raw).unwrap();
    let why = failed(d.path(), "1700000000-cc").unwrap();
    assert!(why.starts_with("550  ]0;owned   bad"), "{:?}", &why[..40]);
    assert!(!why.chars().any(char::is_control), "{why:?}");
    assert!(why.chars().count() <= 4096, "{}", why.len());
}

/// The issue's attack on the spool: its root made group-writable, a member of the
/// sender's group swaps `new/` (or `tmp/`) for a link to another directory. Nothing is
/// written there: the root's mode, the links and the owners are refused, naming the fix.
#[test]
fn a_swapped_new_or_a_group_writable_root_is_refused() {
    let d = spool();
    let root = d.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let count = |p: &Path| std::fs::read_dir(p).unwrap().count();
    let refused = |needle: &str| {
        let e = enqueue(root, &message("1700000000-x")).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        let c = check_layout(root).unwrap_err().to_string();
        assert!(c.contains(needle), "{c}");
    };
    // The root writable by its group (or everyone).
    for mode in [0o775, 0o757, 0o2770] {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode)).unwrap();
        refused("chmod go-w");
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    // new/ or tmp/ a link to another directory.
    for sub in ["new", "tmp"] {
        std::fs::rename(root.join(sub), root.join("away")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join(sub)).unwrap();
        refused("not a directory (a symbolic link?)");
        if sub == "new" {
            // mfa-admin queue retry (root) does not move a message through it either.
            std::fs::write(root.join("failed/1700000000-f.json"), "{}").unwrap();
            let e = retry(root, "1700000000-f.json").unwrap_err().to_string();
            assert!(e.contains("symbolic link"), "{e}");
            std::fs::remove_file(root.join("failed/1700000000-f.json")).unwrap();
        }
        assert_eq!(count(elsewhere.path()), 0, "written through {sub}");
        std::fs::remove_file(root.join(sub)).unwrap();
        std::fs::rename(root.join("away"), root.join(sub)).unwrap();
    }
    // new/ a file.
    std::fs::rename(root.join("new"), root.join("away")).unwrap();
    std::fs::write(root.join("new"), "").unwrap();
    refused("not a directory");
    std::fs::remove_file(root.join("new")).unwrap();
    std::fs::rename(root.join("away"), root.join("new")).unwrap();
    // Owned by someone else (as root only: others cannot chown).
    if is_root() {
        for p in [root.to_path_buf(), root.join("new"), root.join("tmp")] {
            std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
            refused("not root");
            std::os::unix::fs::chown(&p, Some(0), None).unwrap();
        }
    }
    assert_eq!(count(&root.join("tmp")), 0);
    assert_eq!(count(&root.join("new")), 0);
    // Sound again: it queues.
    enqueue(root, &message("1700000000-x")).unwrap();
    assert_eq!(pending(root).unwrap(), ["1700000000-x.json"]);
}

/// A link planted in tmp/ under the next message's name is not followed (the name is
/// created exclusively), and one planted in new/ is replaced, not written through.
#[test]
fn links_planted_inside_tmp_and_new_are_not_followed() {
    let d = spool();
    let target = d.path().join("target");
    std::fs::write(&target, "untouched").unwrap();
    std::os::unix::fs::symlink(&target, d.path().join("tmp/1700000000-t.json")).unwrap();
    assert!(enqueue(d.path(), &message("1700000000-t")).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    std::os::unix::fs::symlink(&target, d.path().join("new/1700000000-u.json")).unwrap();
    let p = enqueue(d.path(), &message("1700000000-u")).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    assert!(
        !std::fs::symlink_metadata(&p)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(&p).unwrap(), message("1700000000-u"));
}

#[test]
fn reasons_are_one_line_without_control_bytes() {
    let d = spool();
    enqueue(d.path(), &message("1700000000-r")).unwrap();
    let c = claim(d.path(), "1700000000-r.json").unwrap().unwrap();
    fail(d.path(), &c, "550 bad\r\n\x1b[31mred\0").unwrap();
    let text = std::fs::read_to_string(d.path().join("failed/1700000000-r.reason")).unwrap();
    assert_eq!(text, "550 bad  \u{1b}[31mred\n".replace('\u{1b}', " "));
    assert_eq!(newest_failure(d.path()).unwrap().0, "1700000000-r");
    std::fs::remove_file(d.path().join("failed/1700000000-r.reason")).unwrap();
    assert_eq!(newest_failure(d.path()).unwrap().1, "no reason recorded");
    assert_eq!(failed(d.path(), "1700000000-r").as_deref(), Some(""));
}
