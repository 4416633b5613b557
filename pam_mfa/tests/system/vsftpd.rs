//! A real vsftpd on 127.0.0.1 whose PAM service (`/etc/pam.d/<unique name>`, removed on
//! drop) is the shipped one-password stack (`etc/pam.d/vsftpd`'s three auth lines), a real
//! system user with a real password (pam_unix), and a real client (Python's ftplib, bound to
//! 127.0.0.1 or 127.0.0.2 as its source address).

use std::process::{Child, Command, Stdio};

use super::ftp::{failures, free_port, newest_code, ok, refused, server, wait_listening};
use super::{Install, PamService, SystemUser, module_path, root_or_skip, unique};
use mfa_core::store::{factors, rules};

/// A running vsftpd, stopped on drop (its PAM service file goes with it).
struct Vsftpd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    _pam: PamService,
}

const BANNER: &str = "This server uses two-factor authentication: type PASSWORD,CODE.";

impl Vsftpd {
    fn start(install: &Install) -> Vsftpd {
        let bin = server("vsftpd", "vsftpd");
        let dir = tempfile::tempdir().unwrap();
        let name = unique("vsftpd-mfa-test-");
        let m = module_path();
        let c = install.config();
        let pam = PamService::new(
            &name,
            &format!(
                "# pam_mfa system test (removed when the test ends)\n\
                 auth  [success=done ignore=ignore default=die]  {m} config={c} oneword=before\n\
                 auth  requisite  pam_unix.so use_first_pass\n\
                 auth  required   {m} config={c} oneword=after\n\
                 account  required  pam_unix.so\n\
                 session  required  pam_permit.so\n",
                m = m.display(),
                c = c.display()
            ),
        );
        // vsftpd chroots its unprivileged parts into an empty directory root owns: one of
        // the test's own (Debian's /var/run/vsftpd/empty comes with the package, which may be
        // absent: the binary is enough).
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let banner = dir.path().join("banner");
        std::fs::write(&banner, format!("{BANNER}\n")).unwrap();
        let port = free_port();
        let conf = dir.path().join("vsftpd.conf");
        std::fs::write(
            &conf,
            format!(
                "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
                 anonymous_enable=NO\nlocal_enable=YES\npam_service_name={name}\n\
                 secure_chroot_dir={}\nseccomp_sandbox=NO\nisolate=NO\n\
                 isolate_network=NO\nxferlog_enable=NO\nbanner_file={}\n\
                 max_login_fails=100\n",
                empty.display(),
                banner.display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let v = Vsftpd {
            child,
            port,
            _dir: dir,
            _pam: pam,
        };
        wait_listening(port, "vsftpd");
        v
    }

    /// curl's exit status listing the home directory as `user` from `source` (0: logged in,
    /// 67: the login was denied).
    fn curl(&self, source: &str, user: &str, password: &str) -> i32 {
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "--interface", source, "--user"])
            .arg(format!("{user}:{password}"))
            .arg(format!("ftp://127.0.0.1:{}/", self.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .code()
            .unwrap_or(-1)
    }

    /// One FTP login from `source`; the server's reply to PASS (or the error), and the
    /// greeting.
    fn login(&self, source: &str, user: &str, password: &str) -> (String, String) {
        super::ftp::login(self.port, source, user, password)
    }
}

impl Drop for Vsftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn vsftpd_double_logon_and_one_field_codes() {
    if !root_or_skip("vsftpd_double_logon_and_one_field_codes") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let ftp = Vsftpd::start(&install);
    let (u, pw) = (user.name.as_str(), user.password.as_str());

    // The greeting says so (220- lines before the login).
    let r = ftp.login("127.0.0.1", u, "wrong-password");
    assert!(r.1.starts_with(&format!("220-{BANNER}")), "{r:?}");
    // A wrong password: refused, nothing sent, nothing counted.
    assert!(refused(&r), "{r:?}");
    let r = ftp.login("127.0.0.1", u, "wrong-password,123456");
    assert!(refused(&r), "{r:?}");
    assert!(install.messages().is_empty());
    assert_eq!(failures(&install, u), 0);

    // The double logon.
    let r = ftp.login("127.0.0.1", u, pw);
    assert!(refused(&r), "{r:?}");
    assert_eq!(install.messages().len(), 1);
    let code = newest_code(&install);
    let r = ftp.login("127.0.0.2", u, &code);
    assert!(refused(&r), "another address: {r:?}");
    let r = ftp.login("127.0.0.1", u, &code);
    assert!(ok(&r), "{r:?}");
    let r = ftp.login("127.0.0.1", u, &code);
    assert!(refused(&r), "reused: {r:?}");

    // An expired window.
    assert!(refused(&ftp.login("127.0.0.1", u, pw)));
    let code = newest_code(&install);
    mfa_core::state::expire_all_challenges(&install.path("db/mfa.db")).unwrap();
    assert!(refused(&ftp.login("127.0.0.1", u, &code)));

    // PASSWORD,CODE with a passcode received; N wrong codes cost N failures.
    assert!(refused(&ftp.login("127.0.0.1", u, pw)));
    let code = newest_code(&install);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let before = failures(&install, u);
    for n in 1..=2 {
        assert!(refused(&ftp.login(
            "127.0.0.1",
            u,
            &format!("{pw},{wrong}")
        )));
        assert_eq!(failures(&install, u), before + n);
    }
    let r = ftp.login("127.0.0.1", u, &format!("{pw},{code}"));
    assert!(ok(&r), "{r:?}");
    assert_eq!(failures(&install, u), 0);

    // PASSWORD,TOTP: a totp service, one connection, nothing sent.
    let key = mfa_core::totp::Key::generate("SHA1", 6).unwrap();
    let sent = install.messages().len();
    install
        .store()
        .change("t", "t", |tx| {
            factors::set_totp(tx, &user.name, &key, 0)?;
            Ok((rules::set_service(tx, "*", "totp")?, String::new()))
        })
        .unwrap();
    let now = u64::try_from(mfa_core::now()).unwrap();
    let r = ftp.login(
        "127.0.0.1",
        u,
        &format!("{pw},{}", key.code_at(now).unwrap()),
    );
    assert!(ok(&r), "{r:?}");
    assert!(refused(&ftp.login("127.0.0.1", u, pw)));
    assert_eq!(install.messages().len(), sent);

    // A repeat window: after a second factor from an address, more connections from it (FTP
    // clients open several) need only the password — here with curl, another real client;
    // from another address the plain password is refused and nothing is sent.
    install
        .store()
        .change("t", "t", |tx| {
            rules::set_setting(tx, "repeat_window", "10m")?;
            Ok(((), String::new()))
        })
        .unwrap();
    assert_eq!(ftp.curl("127.0.0.1", u, pw), 0);
    assert_eq!(
        ftp.curl("127.0.0.1", u, "wrong-password"),
        67,
        "login denied"
    );
    assert_eq!(ftp.curl("127.0.0.2", u, pw), 67, "login denied");
    assert_eq!(install.messages().len(), sent);

    // A trusted network lets the plain password in.
    install.net("*", "127.0.0.0/8", false);
    assert!(ok(&ftp.login("127.0.0.1", u, pw)));
    assert!(refused(&ftp.login("127.0.0.1", u, "wrong-password")));

    // The password is in no log line of mfa.
    for l in install.log() {
        assert!(!l.contains(pw), "{l}");
    }
}
