//! A real set-user-ID root copy of the helper, run by nobody: it ignores MFA_CONFIG (it reads
//! only /etc/mfa/mfa.toml, which on a test machine lists no caller), and, with a
//! /etc/mfa/mfa.toml that lists nobody in a private mount namespace, it serves nobody as
//! root in every id (nobody can no longer signal it). Never touches the real /etc/mfa.

use mfa_core::helper::{Frame, Mode};
use std::os::unix::fs::PermissionsExt;

use super::*;

/// A directory (world-traversable) holding a setuid-root copy of the helper, on a file
/// system without nosuid; `None` (and why) when this run cannot make one.
pub fn setuid_copy() -> Option<(tempfile::TempDir, PathBuf)> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the setuid test needs root (it chowns a copy to root)");
        return None;
    }
    let target = Path::new(HELPER)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("tmp");
    for base in [std::env::temp_dir(), target] {
        let _ = std::fs::create_dir_all(&base);
        let opts = Command::new("findmnt")
            .args(["-n", "-o", "OPTIONS", "-T"])
            .arg(&base)
            .output()
            .ok()?;
        if String::from_utf8_lossy(&opts.stdout).contains("nosuid") {
            continue;
        }
        let dir = tempfile::tempdir_in(&base).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.path().join("mfa-check");
        std::fs::copy(HELPER, &copy).unwrap();
        std::os::unix::fs::chown(&copy, Some(0), Some(0)).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
        return Some((dir, copy));
    }
    eprintln!("SKIPPED: /tmp and target/ are both mounted nosuid");
    None
}

/// The script of a private mount namespace whose /etc is an overlay (upper and work
/// directories made in `dir`; the machine's /etc/mfa is never touched) with `i`'s
/// configuration as /etc/mfa/mfa.toml: it runs `copy` as nobody, in place of the shell
/// (`exec`) or as its child, in its foreground process group (the shell then exits with the
/// helper's status).
pub fn namespace_script(dir: &Path, i: &Install, copy: &Path, exec: bool) -> String {
    for d in ["up", "work"] {
        std::fs::create_dir(dir.join(d)).unwrap();
    }
    let run = format!(
        "setpriv --reuid nobody --regid nogroup --clear-groups -- {}",
        copy.display()
    );
    let run = if exec {
        format!("exec {run}\n")
    } else {
        format!("{run}\nexit $?\n")
    };
    format!(
        "set -e\n\
         mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/up,workdir={d}/work /etc\n\
         mkdir -p /etc/mfa\n\
         cp {config} /etc/mfa/mfa.toml\n\
         chmod 0640 /etc/mfa/mfa.toml\n\
         {run}",
        d = dir.display(),
        config = i.config().display(),
    )
}

/// `sh -c script` in a private mount namespace of its own.
pub fn in_namespace(script: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        script,
    ]);
    c
}

#[test]
fn a_setuid_helper_ignores_mfa_config() {
    let Some((_dir, copy)) = setuid_copy() else {
        return;
    };
    // A configuration that would let nobody ask: a setuid helper must not read it.
    let i = Install::new();
    world_readable(&i);
    let config = i.config();
    let control = drive(
        spawn(as_nobody(HELPER).env("MFA_CONFIG", &config)),
        &ask(Mode::After, "ann", "", None).encode().unwrap(),
        |p| panic!("prompted: {p}"),
    );
    // The same ask, unprivileged: past the allowlist (the store is root's: unavailable).
    assert!(matches!(control.last, Ok(Frame::Outcome(_))), "{control:?}");
    let before = i.files();
    let r = drive(
        spawn(
            as_nobody(copy.to_str().unwrap())
                .env("MFA_CONFIG", &config)
                .env("TMPDIR", i.dir.path()),
        ),
        &ask(Mode::After, "ann", "", None).encode().unwrap(),
        |p| panic!("prompted: {p}"),
    );
    let why = match &r.last {
        Ok(Frame::Refused(w)) => w.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(r.exit, Some(3 | 4)), "{r:?}");
    // Refused by /etc/mfa/mfa.toml's [callers] (named), or that file cannot be read (then
    // the caller is told nothing of it but that).
    assert!(
        why.contains("/etc/mfa/mfa.toml") || why == super::flows::UNREADABLE,
        "{why}"
    );
    assert!(!why.contains(&config.display().to_string()), "{why}");
    assert_eq!(
        i.files(),
        before,
        "the setuid helper wrote into the test's installation"
    );
}

/// A caller running with no_new_privs (a systemd unit's NoNewPrivileges=yes) starts the
/// setuid helper without privilege: it refuses, naming why and what to change, instead of
/// answering from what nobody can read.
#[test]
fn a_setuid_bit_the_kernel_ignored_is_named() {
    let Some((_dir, copy)) = setuid_copy() else {
        return;
    };
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--no-new-privs",
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ])
    .arg(&copy)
    .current_dir("/");
    let r = drive(
        spawn(&mut cmd),
        &ask(Mode::After, "ann", "", None).encode().unwrap(),
        |p| panic!("prompted: {p}"),
    );
    assert_eq!(r.exit, Some(5), "{r:?}");
    match &r.last {
        Ok(Frame::Refused(why)) => {
            assert!(why.contains("set-user-ID root but runs as uid"), "{why}");
            assert!(why.contains("NoNewPrivileges"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

/// Whether nobody may signal `pid` (kill -0 as nobody).
fn nobody_can_signal(pid: u32) -> bool {
    as_nobody("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The `Uid:`, `Gid:` and `Groups:` lines of /proc/PID/status.
fn ids(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole setuid path, end to end: in a private mount namespace whose /etc is an overlay
/// (the machine's /etc/mfa is never touched), /etc/mfa/mfa.toml lists nobody; nobody runs
/// the setuid copy, with a bogus MFA_CONFIG (ignored). The helper reads the root-only store,
/// relays the passcode prompt, is root in every id while it waits (nobody cannot signal
/// it), and the login succeeds.
#[test]
fn a_setuid_helper_serves_a_listed_caller_as_root() {
    let Some((dir, copy)) = setuid_copy() else {
        return;
    };
    let i = Install::new();
    let script = namespace_script(dir.path(), &i, &copy, true);
    let mut child = spawn(in_namespace(&script).env("MFA_CONFIG", "/nonexistent/mfa.toml"));
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    ask_until_prompt(&mut stdin, &mut stdout, "192.0.2.9");
    // Waiting for the answer: root in every id, no supplementary group, out of nobody's reach.
    let status = ids(pid);
    assert!(
        status.contains("Uid:\t0\t0\t0\t0") && status.contains("Gid:\t0\t0\t0\t0"),
        "{status}"
    );
    assert!(status.lines().any(|l| l.trim() == "Groups:"), "{status}");
    assert!(!nobody_can_signal(pid), "nobody can signal the helper");
    answer_succeeds(&i, &mut stdin, &mut stdout);
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(i.outcomes(), ["success:"]);
    // What it wrote is root's.
    for f in i.files() {
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&f).unwrap());
        assert_eq!(uid, 0, "{} is not root's", f.display());
    }
}
