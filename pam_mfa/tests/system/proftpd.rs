//! A real proftpd (Debian's proftpd-basic, mod_auth_pam) on 127.0.0.1, started by the test
//! with a configuration of its own, whose PAM service (`/etc/pam.d/<unique name>`, removed on
//! drop) is the shipped `etc/pam.d/proftpd` as it is (the module named by its path, with the
//! test's config=), a real system user with a real password (pam_unix), and Python's ftplib.
//!
//! The configuration has what etc/pam.d/proftpd's header asks for (`AuthOrder
//! mod_auth_pam.c* mod_auth_unix.c`, `UseReverseDNS off`); one test shows why the first is
//! needed: without it proftpd lets the password in when PAM refuses.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::ftp::{BANNER, Steps, failures, free_port, ok, refused, server, wait_listening};
use super::{Install, PamService, SystemUser, module_path, root_or_skip, unique};

/// A running proftpd, stopped on drop (its PAM service file goes with it).
struct Proftpd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    _pam: PamService,
}

/// The shipped etc/pam.d/proftpd, its pam_mfa lines naming the built module and `config`.
fn shipped_stack(config: &Path) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../etc/pam.d/proftpd"))
            .unwrap();
    let with = format!("{} config={}", module_path().display(), config.display());
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            if !l.starts_with('#') && l.contains("pam_mfa.so") {
                n += 1;
                l.replace("pam_mfa.so", &with)
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(n, 2, "etc/pam.d/proftpd should have two pam_mfa lines");
    out.join("\n") + "\n"
}

impl Proftpd {
    /// Starts proftpd; `authoritative` writes `AuthOrder mod_auth_pam.c* mod_auth_unix.c`
    /// (else proftpd's default order, as Debian's proftpd.conf leaves it).
    fn start(install: &Install, authoritative: bool) -> Proftpd {
        let bin = server("proftpd", "proftpd-core");
        let dir = tempfile::tempdir().unwrap();
        let name = unique("proftpd-mfa-test-");
        let pam = PamService::new(&name, &shipped_stack(&install.config()));
        let banner = dir.path().join("banner");
        std::fs::write(&banner, format!("{BANNER}\n")).unwrap();
        let port = free_port();
        let d = dir.path().display();
        // No Include of Debian's modules.conf: only the compiled-in modules (mod_auth_pam
        // among them), so no mod_ident lookups and nothing listens on IPv6.
        let conf = format!(
            "ServerType standalone\nDefaultServer on\nServerName \"mfa test\"\n\
             Port {port}\nDefaultAddress 127.0.0.1\nSocketBindTight on\nUseIPv6 off\n\
             UseReverseDNS off\nUser nobody\nGroup nogroup\n\
             PidFile {d}/proftpd.pid\nScoreboardFile {d}/proftpd.scoreboard\n\
             SystemLog {d}/proftpd.log\nTransferLog none\nWtmpLog off\n\
             DelayEngine off\nMaxLoginAttempts 100\nRequireValidShell off\n\
             DisplayConnect {}\n\
             AuthPAM on\nAuthPAMConfig {name}\n{}",
            banner.display(),
            if authoritative {
                "AuthOrder mod_auth_pam.c* mod_auth_unix.c\n"
            } else {
                ""
            }
        );
        let conf_path = dir.path().join("proftpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(bin)
            .args(["--nodaemon", "--quiet", "--config"])
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let p = Proftpd {
            child,
            port,
            dir,
            _pam: pam,
        };
        wait_listening(port, "proftpd");
        p
    }

    /// One FTP login from `source`: the reply to PASS, and the greeting.
    fn login(&self, source: &str, user: &str, password: &str) -> (String, String) {
        super::ftp::login(self.port, source, user, password)
    }

    /// proftpd's own log (for a failure's message).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proftpd.log")).unwrap_or_default()
    }
}

impl Drop for Proftpd {
    fn drop(&mut self) {
        // The master only: each connection's child ends with its connection (all closed).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn proftpd_double_logon_and_one_field_codes() {
    if !root_or_skip("proftpd_double_logon_and_one_field_codes") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let ftp = Proftpd::start(&install, true);
    let (u, pw) = (user.name.as_str(), user.password.as_str());
    let log = || ftp.log();
    let steps = Steps {
        install: &install,
        port: ftp.port,
        user: u,
        password: pw,
        log: &log,
    };

    steps.greeting_and_wrong_passwords();
    steps.double_logon();
    // A wrong code costs one failure (none counted before it).
    assert_eq!(failures(&install, u), 0);
    steps.password_and_passcode(1);
    let (key, now, sent) = steps.password_and_totp();
    // A wrong password with a valid code: refused at pam_unix, nothing counted or sent.
    let r = ftp.login(
        "127.0.0.1",
        u,
        &format!("wrong-password,{}", key.code_at(now + 30).unwrap()),
    );
    assert!(refused(&r), "{r:?}");
    assert_eq!(install.messages().len(), sent);
    assert_eq!(failures(&install, u), 0);

    // The password is in no log line of mfa, nor in proftpd's.
    steps.password_not_logged();
    assert!(!log().contains(pw), "{}", log());
}

/// Why etc/pam.d/proftpd's header asks for `AuthOrder mod_auth_pam.c* mod_auth_unix.c`:
/// with proftpd's default order (Debian's proftpd.conf leaves it commented out) a login PAM
/// refuses goes on to mod_auth_unix, which checks the password itself: the password alone
/// logs in, and the second factor is never needed.
#[test]
fn proftpd_without_authoritative_pam_lets_the_password_in() {
    if !root_or_skip("proftpd_without_authoritative_pam_lets_the_password_in") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let ftp = Proftpd::start(&install, false);
    let r = ftp.login("127.0.0.1", &user.name, &user.password);
    assert!(
        ok(&r),
        "proftpd's default AuthOrder no longer falls back to mod_auth_unix: {r:?}\n{}",
        ftp.log()
    );
    // PAM did refuse it (and sent the double logon's passcode).
    assert_eq!(install.messages().len(), 1);
}
