//! What the real-FTP-server tests (vsftpd.rs, proftpd.rs) share: the server's binary, one
//! login with Python's ftplib from a chosen source address, waiting for a server to listen, a
//! free port, the newest passcode spooled, and a user's failure count.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
