//! What the real-FTP-server tests (vsftpd.rs, proftpd.rs) share: the server's binary, one
//! login with Python's ftplib from a chosen source address, waiting for a server to listen, a
//! free port, the newest passcode spooled, a user's failure count, and the steps of the
//! scenario both servers go through ([`Steps`]: greeting, wrong passwords, double logon,
//! PASSWORD,CODE, PASSWORD,TOTP, no password in mfa's log).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mfa_core::store::{factors, rules};

use super::{Install, need, run};

/// The server's binary: `/usr/sbin/NAME` (its Debian package installed), else
/// `/usr/local/sbin/NAME`. vsftpd and proftpd-basic cannot be installed together (both
/// provide and conflict with `ftp-server`), so a machine that runs both tests installs one
/// package and puts the other's binary, extracted from its .deb, in /usr/local/sbin.
pub fn server(name: &str, package: &str) -> PathBuf {
    let found = ["/usr/sbin", "/usr/local/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is missing: install the Debian package {package}, or, where the other FTP \
             server's package is installed (they conflict), extract it: `apt-get download \
             {package} && dpkg-deb -x {package}_*.deb x && install -m 0755 x/usr/sbin/{name} \
             /usr/local/sbin/` (its libraries: `apt-get install` its Depends)"
        )
    })
}

/// A port free on 127.0.0.1 now (the server binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`; `what` names the server.
pub fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One FTP login to 127.0.0.1:`port` from `source`: the server's reply to PASS (or the
/// error), and the greeting.
pub fn login(port: u16, source: &str, user: &str, password: &str) -> (String, String) {
    need("/usr/bin/python3", "python3");
    let script = "import ftplib, json, sys\n\
        f = ftplib.FTP()\n\
        f.connect('127.0.0.1', int(sys.argv[1]), timeout=20, source_address=(sys.argv[2], 0))\n\
        w = f.getwelcome()\n\
        try:\n    r = f.login(sys.argv[3], sys.argv[4])\n\
        except ftplib.error_perm as e:\n    r = str(e)\n\
        print(json.dumps([r, w]))\n";
    let ran = run(
        Command::new("/usr/bin/python3").args([
            "-c",
            script,
            &port.to_string(),
            source,
            user,
            password,
        ]),
        Duration::from_secs(40),
    );
    assert_eq!(ran.status, Some(0), "ftplib: {ran:?}");
    let v: (String, String) = serde_json::from_str(ran.stdout.trim()).unwrap();
    v
}

/// The digits of the newest spooled message (a passcode).
pub fn newest_code(install: &Install) -> String {
    let mut m = install.messages();
    m.sort_by_key(|m| m["created"].as_i64().unwrap_or(0));
    let body = m.last().expect("a message")["body"]
        .as_str()
        .unwrap()
        .to_string();
    let k = body.find(|c: char| c.is_ascii_digit()).unwrap();
    body[k..].chars().take_while(char::is_ascii_digit).collect()
}

/// The user's failures toward the lockout.
pub fn failures(install: &Install, user: &str) -> u32 {
    mfa_core::state::failures(&install.path("db/mfa.db"), user).count
}

/// The FTP reply means logged in.
pub fn ok(r: &(String, String)) -> bool {
    r.0.starts_with("230")
}

/// The FTP reply means the login was refused.
pub fn refused(r: &(String, String)) -> bool {
    r.0.starts_with("530")
}

/// The banner both test servers show before the login.
pub const BANNER: &str = "This server uses two-factor authentication: type PASSWORD,CODE.";

/// The scenario steps both FTP servers' tests take, for one user of one running server
/// (the shipped one-password stack, `BANNER` as its greeting).
pub struct Steps<'a> {
    pub install: &'a Install,
    /// The server's port on 127.0.0.1.
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    /// The server's own log, shown with a failed assertion ("" where the test keeps none).
    pub log: &'a dyn Fn() -> String,
}

impl Steps<'_> {
    /// One FTP login as the user from `source`: the reply to PASS, and the greeting.
    pub fn login(&self, source: &str, password: &str) -> (String, String) {
        login(self.port, source, self.user, password)
    }

    /// The greeting says so (220- lines before the login). A wrong password (alone, or with
    /// a code): refused, nothing sent, nothing counted.
    pub fn greeting_and_wrong_passwords(&self) {
        let (install, u) = (self.install, self.user);
        let r = self.login("127.0.0.1", "wrong-password");
        assert!(r.1.starts_with(&format!("220-{BANNER}")), "{r:?}");
        assert!(refused(&r), "{r:?}");
        let r = self.login("127.0.0.1", "wrong-password,123456");
        assert!(refused(&r), "{r:?}");
        assert!(install.messages().is_empty(), "{:?}", install.messages());
        assert_eq!(failures(install, u), 0);
    }

    /// The double logon: the password alone is refused and a passcode goes out; the passcode
    /// as the password logs in, from the same address, once.
    pub fn double_logon(&self) {
        let (install, pw, log) = (self.install, self.password, self.log);
        let r = self.login("127.0.0.1", pw);
        assert!(refused(&r), "{r:?}\n{}", log());
        assert_eq!(install.messages().len(), 1);
        let code = newest_code(install);
        let r = self.login("127.0.0.2", &code);
        assert!(refused(&r), "another address: {r:?}");
        let r = self.login("127.0.0.1", &code);
        assert!(ok(&r), "{r:?}\n{}", log());
        let r = self.login("127.0.0.1", &code);
        assert!(refused(&r), "reused: {r:?}");
    }

    /// PASSWORD,CODE with a passcode received: each of `wrong_tries` wrong codes costs one
    /// failure; the right code logs in and clears them.
    pub fn password_and_passcode(&self, wrong_tries: u32) {
        let (install, u, pw, log) = (self.install, self.user, self.password, self.log);
        assert!(refused(&self.login("127.0.0.1", pw)));
        let code = newest_code(install);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let before = failures(install, u);
        for n in 1..=wrong_tries {
            assert!(refused(&self.login("127.0.0.1", &format!("{pw},{wrong}"))));
            assert_eq!(failures(install, u), before + n);
        }
        let r = self.login("127.0.0.1", &format!("{pw},{code}"));
        assert!(ok(&r), "{r:?}\n{}", log());
        assert_eq!(failures(install, u), 0);
    }

    /// PASSWORD,TOTP: the service becomes a totp one; one connection with the code logs in,
    /// the password alone is refused. Returns the key, the time its code was made for, and
    /// how many messages were spooled before (none is sent here).
    pub fn password_and_totp(&self) -> (mfa_core::totp::Key, u64, usize) {
        let (install, u, pw, log) = (self.install, self.user, self.password, self.log);
        let key = mfa_core::totp::Key::generate("SHA1", 6).unwrap();
        let sent = install.messages().len();
        install
            .store()
            .change("t", "t", |tx| {
                factors::set_totp(tx, u, &key, 0)?;
                Ok((rules::set_service(tx, "*", "totp")?, String::new()))
            })
            .unwrap();
        let now = u64::try_from(mfa_core::now()).unwrap();
        let r = self.login("127.0.0.1", &format!("{pw},{}", key.code_at(now).unwrap()));
        assert!(ok(&r), "{r:?}\n{}", log());
        assert!(refused(&self.login("127.0.0.1", pw)));
        (key, now, sent)
    }

    /// The password is in no log line of mfa.
    pub fn password_not_logged(&self) {
        for l in self.install.log() {
            assert!(!l.contains(self.password), "{l}");
        }
    }
}
