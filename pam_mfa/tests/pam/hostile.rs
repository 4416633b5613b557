//! Hostile PAM items through libpam (issue 10): PAM_USER, PAM_RHOST and PAM_TTY that try to
//! forge syslog fields and lines (`x outcome=success`, a newline and a fake syslog header,
//! terminal escapes), a PAM_RHOST that is not UTF-8 (two such hosts must not share a
//! repeat-window grant), and a user name that a case-insensitive name service resolves to
//! another spelling (`MfaCase` → `mfacase`).
//!
//! Some tests need root and re-run one test of this binary in a private mount namespace
//! (`unshare -m`): `/dev/log` there is a socket the test reads (the syslog lines), and for
//! the name-service test `/etc/nsswitch.conf` names a tiny NSS module built here with `cc`
//! that folds case, as sssd does with `case_sensitive = false`. Nothing outside the
//! namespace changes. Without root they say so and pass.
#![allow(unsafe_code)]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::harness::{
    Answer, PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS, SeeingAnswer, Shown, authenticate_raw,
};
use super::{Install, code_for};

/// pam_authenticate of service `mfa-test` with the items as raw bytes.
fn authenticate(
    confdir: &Path,
    user: &[u8],
    rhost: Option<&[u8]>,
    tty: &[u8],
    mut answer: Answer<'_>,
) -> i32 {
    let answer: SeeingAnswer<'_> = Box::new(move |_: &[Shown], p: &str| answer(p));
    authenticate_raw(confdir, "mfa-test", user, rhost, tty, answer, 0).code
}

fn never() -> Answer<'static> {
    Box::new(|_: &str| None)
}

// ---------------------------------------------------------------------------------------
// Non-UTF-8 PAM_RHOST

#[test]
fn hosts_that_differ_only_in_non_utf8_bytes_do_not_share_a_grant() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("repeat_window", "10m");
    let conf = i.path("pam.d");
    // Latin-1 "hé" and "hè": converted lossily both were "h\u{fffd}".
    let (e_acute, e_grave): (&[u8], &[u8]) = (b"h\xe9", b"h\xe8");
    let code = authenticate(
        &conf,
        b"ann",
        Some(e_acute),
        b"pts/1",
        Box::new(|p: &str| code_for(&i, p).map(String::into_bytes)),
    );
    assert_eq!(code, PAM_SUCCESS);
    assert_eq!(
        authenticate(&conf, b"ann", Some(e_acute), b"pts/1", never()),
        PAM_PERM_DENIED,
        "the same host is within its repeat window"
    );
    assert_eq!(
        authenticate(&conf, b"ann", Some(e_grave), b"pts/1", never()),
        PAM_AUTH_ERR,
        "another host must be challenged"
    );
    assert_eq!(
        authenticate(
            &conf,
            b"ann",
            Some("h\u{fffd}".as_bytes()),
            b"pts/1",
            never()
        ),
        PAM_AUTH_ERR,
        "nor does the replacement character match"
    );
    // The auth log keeps the bytes as escapes.
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE address = 'h\\xe9' AND outcome = 'success'"),
        1
    );
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE address = 'h\\xe8'"),
        1
    );
}

// ---------------------------------------------------------------------------------------
// Runs in a private mount namespace

/// True when the test may use mount namespaces; else says why it passes without running.
pub(crate) fn root(test: &str) -> bool {
    if nix_euid() != 0 {
        eprintln!("{test}: skipped: needs root (a private mount namespace)");
        return false;
    }
    true
}

fn nix_euid() -> u32 {
    unsafe { libc::geteuid() }
}

/// Runs the ignored test `child` of this binary in a new mount namespace where `/dev/log` is
/// `dir/log.sock` (and, with `nss`, `/etc/nsswitch.conf` is `dir/nsswitch.conf` and
/// `LD_LIBRARY_PATH` is `dir`). Asserts that it passed.
pub(crate) fn in_namespace(dir: &Path, child: &str, nss: bool, envs: &[(&str, &str)]) {
    let dev = dir.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let mut script = String::from(
        "set -e\n\
         mount -t tmpfs mfa-test-dev \"$D/dev\"\n\
         for f in null zero full random urandom tty; do\n\
           if [ -e /dev/$f ]; then touch \"$D/dev/$f\"; mount --bind /dev/$f \"$D/dev/$f\"; fi\n\
         done\n\
         ln -s \"$D/log.sock\" \"$D/dev/log\"\n\
         mount --rbind \"$D/dev\" /dev\n",
    );
    if nss {
        script.push_str("mount --bind \"$D/nsswitch.conf\" /etc/nsswitch.conf\n");
    }
    script.push_str("exec \"$@\"\n");
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
        .arg(&exe)
        .args([
            "--exact",
            child,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("D", dir)
        .env("MFA_HOSTILE_CHILD", "1");
    if nss {
        cmd.env("LD_LIBRARY_PATH", dir);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{child} failed: {text}");
    assert!(text.contains("1 passed"), "{child} did not run: {text}");
}

/// The child's side: the installation's directory, when running as the child.
pub(crate) fn child_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("MFA_HOSTILE_CHILD")?;
    std::env::var_os("MFA_HOSTILE_DIR").map(Into::into)
}

/// Splits `key=value key="quoted \" value"` into (key, value) pairs, undoing the escapes.
pub(crate) fn fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        rest = rest.trim_start_matches(' ');
        let Some(eq) = rest.find('=') else {
            out.push((rest.to_string(), String::new()));
            break;
        };
        let key = rest[..eq].to_string();
        assert!(!key.contains(' '), "a bare word before {key:?} in {line:?}");
        rest = &rest[eq + 1..];
        let mut value = String::new();
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'x')) => {
                            let h: String = (0..2)
                                .filter_map(|_| chars.next())
                                .map(|(_, c)| c)
                                .collect();
                            value.push(char::from(u8::from_str_radix(&h, 16).unwrap()));
                        }
                        Some((_, 'u')) => {
                            let mut h = String::new();
                            for (_, c) in chars.by_ref() {
                                match c {
                                    '{' => {}
                                    '}' => break,
                                    c => h.push(c),
                                }
                            }
                            value.push(
                                char::from_u32(u32::from_str_radix(&h, 16).unwrap()).unwrap(),
                            );
                        }
                        Some((_, c)) => value.push(c),
                        None => panic!("dangling escape in {line:?}"),
                    },
                    c => value.push(c),
                }
            }
            let end = end.unwrap_or_else(|| panic!("unterminated quote in {line:?}"));
            rest = &q[end..];
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            value.push_str(&rest[..end]);
            rest = &rest[end..];
        }
        out.push((key, value));
    }
    out
}

const USER: &str = "x outcome=success method=totp";
const RHOST: &str = "192.0.2.1 outcome=success\n<13>Nov 30 00:00:00 sshd[1]: pam_mfa(sshd:auth): user=root outcome=success";
const TTY: &str = "pts/1\" outcome=\"success\x1b[2J\u{202e}";

#[test]
fn hostile_items_cannot_forge_syslog_fields_or_lines() {
    if !root("hostile_items_cannot_forge_syslog_fields_or_lines") {
        return;
    }
    let i = Install::new();
    let dir = i.dir.path();
    let sock = UnixDatagram::bind(dir.join("log.sock")).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    in_namespace(
        dir,
        "hostile::syslog_child",
        false,
        &[("MFA_HOSTILE_DIR", dir.to_str().unwrap())],
    );
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    sock.set_nonblocking(true).unwrap();
    while let Ok(n) = sock.recv(&mut buf) {
        lines.push(String::from_utf8(buf[..n].to_vec()).expect("a syslog line is UTF-8"));
    }
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("pam_mfa(mfa-test:auth): "))
        .collect();
    assert_eq!(ours.len(), 1, "one line per login: {lines:?}");
    let line = ours[0];
    assert!(
        !line.chars().any(|c| c.is_control() || c == '\u{202e}'),
        "raw control characters in {line:?}"
    );
    let body = line.split("pam_mfa(mfa-test:auth): ").nth(1).unwrap();
    let f = fields(body);
    let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["user", "rhost", "tty", "outcome", "reason"],
        "{body}"
    );
    assert_eq!(f[0].1, USER);
    assert_eq!(f[1].1, RHOST);
    assert_eq!(f[2].1, TTY);
    assert!(f[3].1 == "deny" || f[3].1 == "ignore", "{body}");
    eprintln!("the syslog line: {line}");
    // The auth log has the values as they were, for `mfa-admin log show` to escape.
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE instr(tty, char(27)) > 0 AND instr(address, char(10)) > 0"),
        1
    );
}

#[test]
#[ignore = "run by hostile_items_cannot_forge_syslog_fields_or_lines in a mount namespace"]
fn syslog_child() {
    let Some(dir) = child_dir() else { return };
    let code = authenticate(
        &dir.join("pam.d"),
        USER.as_bytes(),
        Some(RHOST.as_bytes()),
        TTY.as_bytes(),
        never(),
    );
    // Not a user name mfa accepts: refused (or ignored), never a success.
    assert!(code == PAM_AUTH_ERR || code == PAM_PERM_DENIED, "{code}");
}

/// A name service module that knows one account, `mfacase`, under any case.
const NSS_C: &str = r#"
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <string.h>
#include <strings.h>

enum nss_status _nss_mfatest_getpwnam_r(const char *name, struct passwd *pw, char *buf,
                                        size_t len, int *errnop) {
    if (strcasecmp(name, "mfacase") != 0) return NSS_STATUS_NOTFOUND;
    if (len < 32) { *errnop = ERANGE; return NSS_STATUS_TRYAGAIN; }
    strcpy(buf, "mfacase");
    strcpy(buf + 8, "x");
    strcpy(buf + 10, "/");
    strcpy(buf + 12, "/bin/false");
    pw->pw_name = buf; pw->pw_passwd = buf + 8; pw->pw_gecos = buf + 8;
    pw->pw_dir = buf + 10; pw->pw_shell = buf + 12;
    pw->pw_uid = 64242; pw->pw_gid = 64242;
    return NSS_STATUS_SUCCESS;
}
"#;

#[test]
fn a_user_name_resolves_to_its_account_name() {
    let i = Install::new();
    i.user("mfacase", &["mc@example.com"]);
    i.set("repeat_window", "0");
    i.set("unassigned", "allow");
    let conf = i.path("pam.d");
    // glibc's files service is case-sensitive: without a folding name service `MfaCase` is
    // no account, so the name stays as given, unknown to mfa (unassigned=allow: ignored).
    assert_eq!(
        authenticate(&conf, b"MfaCase", None, b"pts/1", never()),
        PAM_PERM_DENIED
    );
    if !root("a_user_name_resolves_to_its_account_name") {
        return;
    }
    let dir = i.dir.path();
    std::fs::write(dir.join("nss.c"), NSS_C).unwrap();
    let cc = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.join("libnss_mfatest.so.2"))
        .arg(dir.join("nss.c"))
        .output();
    match cc {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!(
                "a_user_name_resolves_to_its_account_name: skipped: no C compiler: {other:?}"
            );
            return;
        }
    }
    std::fs::write(
        dir.join("nsswitch.conf"),
        "passwd: mfatest files\ngroup: files\nshadow: files\n",
    )
    .unwrap();
    // The socket only gives the child a /dev/log to write to.
    let _sock = UnixDatagram::bind(dir.join("log.sock")).unwrap();
    in_namespace(
        dir,
        "hostile::nss_child",
        true,
        &[("MFA_HOSTILE_DIR", dir.to_str().unwrap())],
    );
    // The code went to mfacase's contact, and the log names the account.
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE user = 'mfacase' AND outcome = 'success'"),
        1
    );
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE user = 'MfaCase' AND outcome = 'success'"),
        0
    );
}

#[test]
#[ignore = "run by a_user_name_resolves_to_its_account_name in a mount namespace"]
fn nss_child() {
    let Some(dir) = child_dir() else { return };
    // The name service folds case, as sssd does.
    let pw = unsafe { libc::getpwnam(c"MFACASE".as_ptr()) };
    assert!(!pw.is_null(), "the test's name service is not in use");
    let spool = dir.join("spool/new");
    let code = authenticate(
        &dir.join("pam.d"),
        b"MfaCase",
        Some(b"192.0.2.7"),
        b"pts/1",
        Box::new(move |p: &str| {
            let prefix = p.strip_prefix("Passcode ")?.chars().next()?;
            let needle = format!("{prefix}-");
            std::fs::read_dir(&spool).ok()?.find_map(|e| {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(e.ok()?.path()).ok()?).ok()?;
                assert_eq!(m["user"], "mfacase");
                let body = m["body"].as_str()?;
                let i = body.find(&needle)?;
                let digits: String = body[i + 2..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                Some(digits.into_bytes())
            })
        }),
    );
    assert_eq!(code, PAM_SUCCESS, "MfaCase is asked as mfacase");
}
