//! A real set-user-ID root copy of the helper, run by nobody: it ignores MFA_CONFIG (it reads
//! only /etc/mfa/mfa.toml, which it never writes, and which on a test machine lists no
//! caller), and it became root in every id (nobody can no longer signal it). Never touches
//! the real /etc/mfa.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use mfa_core::helper::{Frame, Mode};

use super::*;

/// A directory (world-traversable) holding a setuid-root copy of the helper, on a file
/// system without nosuid; `None` (and why) when this run cannot make one.
fn setuid_copy() -> Option<(tempfile::TempDir, PathBuf)> {
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
    assert!(why.contains("/etc/mfa/mfa.toml"), "{why}");
    assert!(!why.contains(&config.display().to_string()), "{why}");
    assert_eq!(
        i.files(),
        before,
        "the setuid helper wrote into the test's installation"
    );
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

#[test]
fn a_setuid_helper_cannot_be_signalled_by_its_caller() {
    let Some((_dir, copy)) = setuid_copy() else {
        return;
    };
    for (program, signalable) in [(HELPER, true), (copy.to_str().unwrap(), false)] {
        let mut child = spawn(&mut as_nobody(program));
        // Waiting for the ask by now (setpriv has exec'd the helper).
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            nobody_can_signal(child.id()),
            signalable,
            "{program}: nobody can signal it: {}",
            !signalable
        );
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(2), "{program}: {status:?}");
    }
}
