//! A real vsftpd on 127.0.0.1 whose PAM service (`/etc/pam.d/<unique name>`, removed on
//! drop) is the shipped one-password stack (`etc/pam.d/vsftpd`'s three auth lines), a real
//! system user with a real password (pam_unix), and a real client (Python's ftplib, bound to
//! 127.0.0.1 or 127.0.0.2 as its source address).

use std::process::{Child, Command, Stdio};

use super::ftp::{BANNER, Steps, free_port, newest_code, ok, refused, server, wait_listening};
use super::{Install, PamService, SystemUser, module_path, root_or_skip, unique};
use mfa_core::store::rules;

/// A running vsftpd, stopped on drop (its PAM service file goes with it).
struct Vsftpd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    _pam: PamService,
}

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
    let steps = Steps {
        install: &install,
        port: ftp.port,
        user: u,
        password: pw,
        log: &String::new,
    };

    steps.greeting_and_wrong_passwords();
    steps.double_logon();

    // An expired window.
    assert!(refused(&ftp.login("127.0.0.1", u, pw)));
    let code = newest_code(&install);
    mfa_core::state::expire_all_challenges(&install.path("db/mfa.db")).unwrap();
    assert!(refused(&ftp.login("127.0.0.1", u, &code)));

    // PASSWORD,CODE: two wrong codes cost two failures.
    steps.password_and_passcode(2);
    let (_, _, sent) = steps.password_and_totp();

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

    steps.password_not_logged();
}
