//! Real Unix groups and accounts for a test (`groupadd`/`useradd` on this machine), removed
//! when the fixture is dropped, also when the test fails. The tests of one binary run in
//! parallel and shadow-utils lock /etc/passwd and /etc/group: every command is retried for
//! up to 30 s while another one holds the lock, so no account is left behind.

use std::process::{Command, Stdio};
use std::time::Duration;

/// The groups and accounts one test made.
pub struct UnixAccounts {
    prefix: String,
    groups: Vec<String>,
    users: Vec<String>,
}

/// Runs a shadow-utils command, retrying while it fails (a held lock: exit 10) for up to
/// 30 s; panics with its output when it keeps failing.
fn run(cmd: &str, args: &[&str]) {
    let mut last = None;
    for _ in 0..300 {
        let o = Command::new(cmd).args(args).output().unwrap();
        if o.status.success() {
            return;
        }
        // 10: cannot lock or update /etc/passwd or /etc/group; anything else is final.
        if o.status.code() != Some(10) {
            panic!("{cmd} {args:?}: {o:?}");
        }
        last = Some(o);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{cmd} {args:?} kept failing: {last:?}");
}

/// Removes an account or group, retrying while the lock is held and the name still exists.
fn gone(cmd: &str, name: &str) {
    let db = if cmd == "userdel" { "passwd" } else { "group" };
    for _ in 0..300 {
        let ok = Command::new(cmd)
            .arg(name)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let known = Command::new("getent")
            .args([db, name])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok || !known {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl UnixAccounts {
    /// Names start with `prefix` and this process's id (unique among concurrent runs).
    pub fn new(prefix: &str) -> UnixAccounts {
        UnixAccounts {
            prefix: format!("{prefix}{}", std::process::id() % 100_000),
            groups: Vec::new(),
            users: Vec::new(),
        }
    }

    /// The name this fixture gives `what`.
    pub fn name(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// A new Unix group.
    pub fn group(&mut self, what: &str) -> String {
        let n = self.name(what);
        self.groups.push(n.clone());
        run("groupadd", &[&n]);
        n
    }

    /// A new account without a home: `primary` as its primary group, else in `extra`.
    pub fn user(&mut self, what: &str, primary: Option<&str>, extra: &[&str]) -> String {
        let n = self.name(what);
        let mut args = vec!["-M", "-s", "/usr/sbin/nologin"];
        match primary {
            Some(g) => args.extend(["-g", g]),
            None => args.push("-N"),
        }
        let extra = extra.join(",");
        if !extra.is_empty() {
            args.extend(["-G", &extra]);
        }
        args.push(&n);
        self.users.push(n.clone());
        run("useradd", &args);
        n
    }

    /// Runs another shadow-utils command (gpasswd, usermod) with the same retries.
    pub fn run(&self, cmd: &str, args: &[&str]) {
        run(cmd, args);
    }
}

impl Drop for UnixAccounts {
    fn drop(&mut self) {
        for u in &self.users {
            gone("userdel", u);
        }
        for g in &self.groups {
            gone("groupdel", g);
        }
    }
}
