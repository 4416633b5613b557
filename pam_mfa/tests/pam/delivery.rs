//! Delivery as the user sees it at the prompt: a passcode queued from a process whose real
//! uid is not root (su, sudo), a code that could not be queued (the fail mode applies, and
//! the user is told), a resend that could not be queued after the user was asked (a
//! denial), and a code the sender gave up on (spool `failed/`: the user is told to contact
//! the administrator, without the server's text or the recipient).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::harness::{PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS};
use super::{Install, code_for};

const NOT_DELIVERED: &str = "The passcode could not be delivered; contact your administrator.";
const NOT_SENT: &str = "the passcode could not be sent";
const UNAVAILABLE: &str = "second factor unavailable — contact your administrator";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}

/// What the sender does when it gives up: moves every queued message to failed/ with a
/// reason that quotes the server (and the recipient, as servers do).
fn sender_gives_up(i: &Install) -> usize {
    let spool = i.path("spool");
    let names = mfa_core::spool::pending(&spool).unwrap();
    for n in &names {
        let c = mfa_core::spool::claim(&spool, n).unwrap().unwrap();
        mfa_core::spool::fail(&spool, &c, "550 5.1.1 <ann@example.com>: no such user").unwrap();
    }
    names.len()
}

fn no_server_text(r: &super::harness::Result) {
    for s in &r.shown {
        assert!(
            !s.text.contains("550") && !s.text.contains("ann@example.com"),
            "server text or recipient shown: {:?}",
            r.shown
        );
    }
}

#[test]
fn a_wrong_answer_to_a_code_the_sender_gave_up_on_says_so() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    let mut prompts = 0;
    let r = i.auth(
        "ann",
        None,
        Box::new(|_: &str| {
            prompts += 1;
            assert_eq!(sender_gives_up(&i), 1);
            Some(b"123456".to_vec())
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert_eq!(prompts, 1, "no second try at a code that never came: {r:?}");
    assert!(r.said(NOT_DELIVERED), "{:?}", r.shown);
    no_server_text(&r);
    assert_eq!(i.failures("ann"), 1, "a typed guess counts");
    assert_eq!(i.challenges(), 0);
    let log = i.outcomes();
    assert_eq!(log.len(), 1);
    assert!(
        log[0].starts_with("deny:passcode could not be delivered: 550"),
        "{log:?}"
    );
}

#[test]
fn an_empty_answer_to_a_code_the_sender_gave_up_on_says_so_and_sends_no_more() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    let r = i.auth(
        "ann",
        None,
        Box::new(|_: &str| {
            sender_gives_up(&i);
            Some(Vec::new())
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert!(r.said(NOT_DELIVERED), "{:?}", r.shown);
    assert!(!r.said("A new passcode was sent"), "{:?}", r.shown);
    no_server_text(&r);
    assert!(i.messages().is_empty(), "nothing resent");
    assert_eq!(i.failures("ann"), 0, "an empty answer is no guess");
}

#[test]
fn a_code_still_queued_is_not_reported_as_undelivered() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("attempts", "2");
    let mut n = 0;
    let r = i.auth(
        "ann",
        None,
        Box::new(|p: &str| {
            n += 1;
            if n == 1 {
                return Some(b"000000".to_vec());
            }
            code_for(&i, p).map(String::into_bytes)
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert!(!r.said("could not be delivered"), "{:?}", r.shown);
}

/// A directory on another filesystem than `near`, for a rename that fails (EXDEV) while
/// every check before it passes; `None` when this machine has no such directory.
fn other_filesystem(near: &Path) -> Option<tempfile::TempDir> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(near).ok()?.dev();
    ["/dev/shm", "/run", "/var/tmp", env!("CARGO_MANIFEST_DIR")]
        .iter()
        .filter(|d| std::fs::metadata(d).is_ok_and(|m| m.dev() != dev))
        .find_map(|d| tempfile::tempdir_in(d).ok())
}

/// Makes `spool/new` a link to a directory on another filesystem: the spool checks pass,
/// the rename from `tmp/` fails.
fn break_queuing(i: &Install, other: &Path) {
    std::fs::remove_dir(i.path("spool/new")).unwrap();
    std::os::unix::fs::symlink(other, i.path("spool/new")).unwrap();
}

#[test]
fn a_code_that_cannot_be_queued_stops_the_login_and_says_so() {
    let i = Install::new();
    let Some(other) = other_filesystem(&i.path("spool")) else {
        eprintln!("skipped: no directory on another filesystem than the temporary directory");
        return;
    };
    i.user("ann", &["ann@example.com"]);
    break_queuing(&i, other.path());
    let r = i.auth(
        "ann",
        None,
        Box::new(|_: &str| panic!("asked for a code never sent")),
    );
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert!(r.said(NOT_SENT) && r.said(UNAVAILABLE), "{:?}", r.shown);
    assert_eq!(i.challenges(), 0, "no challenge without a queued message");
    assert_eq!(std::fs::read_dir(i.path("spool/tmp")).unwrap().count(), 0);
    let log = i.outcomes();
    assert!(
        log[0].starts_with("unavailable-deny:cannot queue the passcode"),
        "{log:?}"
    );
    // fail_mode=safe: "mfa cannot ask" is a bypass (PAM_IGNORE, which this stack turns into
    // pam_debug's PAM_PERM_DENIED), logged.
    i.set("fail_mode", "safe");
    let r = i.auth(
        "ann",
        None,
        Box::new(|_: &str| panic!("asked for a code never sent")),
    );
    assert_eq!(r.code, PAM_PERM_DENIED, "{r:?}");
    assert!(i.outcomes()[1].starts_with("unavailable-ignore:cannot queue"));
}

#[test]
fn a_resend_that_cannot_be_queued_is_a_denial_even_in_safe_mode() {
    let i = Install::new();
    let Some(other) = other_filesystem(&i.path("spool")) else {
        eprintln!("skipped: no directory on another filesystem than the temporary directory");
        return;
    };
    i.user("ann", &["ann@example.com"]);
    i.set("fail_mode", "safe");
    let mut n = 0;
    let r = i.auth(
        "ann",
        None,
        Box::new(|_: &str| {
            n += 1;
            if n == 1 {
                // The first code went out; the spool breaks before the resend.
                for e in std::fs::read_dir(i.path("spool/new")).unwrap() {
                    std::fs::remove_file(e.unwrap().path()).unwrap();
                }
                break_queuing(&i, other.path());
            }
            Some(Vec::new())
        }),
    );
    assert_eq!(n, 1, "{r:?}");
    assert_eq!(r.code, PAM_AUTH_ERR, "the user was asked: no bypass; {r:?}");
    assert!(r.said(NOT_SENT), "{:?}", r.shown);
    assert!(i.outcomes()[0].starts_with("deny:resend failed: cannot queue the passcode"));
}

/// The environment variable naming the installation a re-run child test uses.
const CHILD_ENV: &str = "MFA_PAM_TEST_CHILD";

/// Child of `a_login_whose_real_uid_is_a_user_queues_the_passcode`: real uid nobody,
/// effective uid root, as su and sudo run the module.
#[test]
fn child_logs_in_with_real_uid_nobody() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: getuid and geteuid have no preconditions.
    let (ruid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    assert_eq!((ruid, euid), (65534, 0));
    let root = PathBuf::from(dir);
    let spool_new = root.join("spool/new");
    let r = super::harness::authenticate(
        &root.join("pam.d"),
        "mfa-test",
        "ann",
        None,
        Box::new(|p: &str| {
            // The one queued message: its body carries `P-` and the code.
            let prefix = p.strip_prefix("Passcode ")?.chars().next()?;
            let file = std::fs::read_dir(&spool_new).ok()?.next()?.ok()?.path();
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
            let body = m["body"].as_str()?;
            let at = body.find(&format!("{prefix}-"))? + 2;
            Some(
                body[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
                    .into_bytes(),
            )
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
}

#[test]
fn a_login_whose_real_uid_is_a_user_queues_the_passcode() {
    if !is_root() {
        eprintln!("skipped: needs root (runs a login with real uid nobody and euid root)");
        return;
    }
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    // Spool directories the calling user cannot write, as on an installed system.
    std::fs::set_permissions(i.path(""), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["tmp", "new", "cur", "failed"] {
        std::fs::set_permissions(
            i.path(&format!("spool/{d}")),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("setpriv")
        .args(["--ruid", "nobody", "--euid", "root"])
        .arg(&exe)
        .args([
            "--exact",
            "delivery::child_logs_in_with_real_uid_nobody",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, i.dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    assert_eq!(i.outcomes(), ["success:"]);
}
