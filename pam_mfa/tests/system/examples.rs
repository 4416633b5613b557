//! The shipped examples are safe to copy: each `etc/pam.d/NAME` is Debian's own
//! `/etc/pam.d/NAME` plus the one pam_mfa line after `@include common-auth` (so nothing of
//! Debian's — pam_nologin, pam_loginuid, pam_limits, pam_env, pam_keyinit, pam_selinux — is
//! lost), and the sshd drop-in never narrows how keys log in.
//!
//! Compared with this machine's files only when they are as their package shipped them
//! (the md5sum dpkg recorded for the conffile); otherwise the test says so and skips.

use std::path::Path;
use std::process::Command;

const LINE: &str = "auth       required   pam_mfa.so";

fn repo(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)).unwrap()
}

/// The system file, if it is exactly what its Debian package shipped.
fn pristine(path: &str) -> Option<String> {
    let owner = Command::new("dpkg").args(["-S", path]).output().ok()?;
    let pkg = String::from_utf8_lossy(&owner.stdout)
        .split(':')
        .next()?
        .trim()
        .to_string();
    let conffiles = Command::new("dpkg-query")
        .args(["-W", "-f=${Conffiles}", &pkg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&conffiles.stdout).to_string();
    let want = text
        .lines()
        .map(str::split_whitespace)
        .find_map(|mut w| (w.next() == Some(path)).then(|| w.next()).flatten())?
        .to_string();
    let sum = Command::new("md5sum").arg(path).output().ok()?;
    let got = String::from_utf8_lossy(&sum.stdout);
    (got.split_whitespace().next() == Some(want.as_str()))
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
}

#[test]
fn pam_examples_are_debians_files_plus_one_line() {
    let mut compared = 0;
    for name in ["sshd", "login", "su", "sudo", "sudo-i"] {
        let example = repo(&format!("etc/pam.d/{name}"));
        // The one line, once, right after common-auth.
        let lines: Vec<&str> = example.lines().collect();
        let at: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == LINE).collect();
        assert_eq!(at.len(), 1, "{name}: {LINE:?} must appear once");
        assert_eq!(lines[at[0] - 1], "@include common-auth", "{name}");
        let Some(system) = pristine(&format!("/etc/pam.d/{name}")) else {
            eprintln!("{name}: /etc/pam.d/{name} is missing or locally changed: not compared");
            continue;
        };
        let without: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at[0])
            .map(|(_, l)| *l)
            .collect();
        assert_eq!(
            without,
            system.lines().collect::<Vec<_>>(),
            "{name}: the example must be Debian's file plus the pam_mfa line"
        );
        compared += 1;
    }
    eprintln!("{compared} example(s) compared with Debian's files");
}

#[test]
fn sshd_publickey_example_only_swaps_the_password_for_pam_mfa() {
    let example = repo("etc/pam.d/sshd-publickey");
    let body: Vec<&str> = example
        .lines()
        .skip_while(|l| !l.starts_with("# PAM configuration"))
        .collect();
    assert!(!body.contains(&"@include common-auth"));
    let at = body.iter().position(|l| *l == LINE).unwrap();
    assert_eq!(body[at + 1], "auth       required   pam_permit.so");
    if let Some(system) = pristine("/etc/pam.d/sshd") {
        let mut ours: Vec<&str> = body.clone();
        ours.splice(at..at + 2, ["@include common-auth"]);
        assert_eq!(ours, system.lines().collect::<Vec<_>>());
    }
}

#[test]
fn sshd_drop_in_cannot_lock_out_key_logins() {
    let conf = repo("etc/ssh/sshd_config.d/mfa.conf");
    let active: Vec<String> = conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_ascii_lowercase)
        .collect();
    // Nothing that changes which methods succeed for everyone.
    for l in &active {
        assert!(
            !l.starts_with("authenticationmethods")
                && !l.starts_with("pubkeyauthentication")
                && !l.starts_with("match")
                && !l.starts_with("permitrootlogin"),
            "the drop-in must not restrict logins for everyone: {l}"
        );
    }
    for want in ["usepam yes", "kbdinteractiveauthentication yes"] {
        assert!(active.iter().any(|l| l == want), "missing {want}");
    }
    // sshd itself accepts it.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hostkey");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status();
    if !matches!(ok, Ok(s) if s.success()) || !Path::new("/usr/sbin/sshd").exists() {
        eprintln!("sshd or ssh-keygen missing: the drop-in was not checked with sshd -t");
        return;
    }
    // sshd -t wants its privilege separation directory (as the sshd tests do, it is left:
    // a running test sshd needs it, and openssh-server's own unit makes it at boot).
    let _ = std::fs::create_dir_all("/run/sshd");
    let cfg = dir.path().join("sshd_config");
    std::fs::write(&cfg, format!("{conf}\nHostKey {}\n", key.display())).unwrap();
    let out = Command::new("/usr/sbin/sshd")
        .arg("-t")
        .arg("-f")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sshd -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
