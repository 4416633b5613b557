//! A real OpenSSH sshd on 127.0.0.1 whose keyboard-interactive authentication runs the PAM
//! stack `pam_unix` + `pam_mfa`, and a real client (paramiko) that types the password and
//! the passcode it reads from the spool.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Install, PamService, SystemUser, client, module_path, need, root_or_skip, unique};

/// A running sshd for one user. sshd's PAM service name is the base name of the path it
/// was started by: a symlink `<tmp>/sshd-mfa-test-<pid>x<n> -> /usr/sbin/sshd` uses
/// `/etc/pam.d/sshd-mfa-test-<pid>x<n>` and leaves `/etc/pam.d/sshd` alone. Stopped (and its
/// pam.d file removed) on drop; on a failing test its log is printed.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    pam: PamService,
}

impl Sshd {
    fn start(install: &Install, user: &SystemUser) -> Sshd {
        need("/usr/sbin/sshd", "openssh-server");
        need("/usr/bin/ssh-keygen", "openssh-client");
        let dir = tempfile::tempdir().unwrap();
        let name = unique("sshd-mfa-test-");
        let pam = PamService::new(
            &name,
            &format!(
                "# pam_mfa system test (removed when the test ends)\n\
                 auth     requisite pam_unix.so\n\
                 auth     required  {} config={}\n\
                 account  required  pam_unix.so\n\
                 session  required  pam_permit.so\n",
                module_path().display(),
                install.config().display()
            ),
        );
        let exe = dir.path().join(&name);
        std::os::unix::fs::symlink("/usr/sbin/sshd", &exe).unwrap();
        let key = dir.path().join("host_ed25519");
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "ssh-keygen failed");
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::set_permissions(
            "/run/sshd",
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\n\
                     Port {port}\n\
                     HostKey {key}\n\
                     PidFile {pid}\n\
                     UsePAM yes\n\
                     KbdInteractiveAuthentication yes\n\
                     PasswordAuthentication no\n\
                     PubkeyAuthentication no\n\
                     AuthenticationMethods keyboard-interactive\n\
                     PermitRootLogin no\n\
                     StrictModes no\n\
                     AllowUsers {user}\n\
                     LoginGraceTime 30\n\
                     LogLevel VERBOSE\n",
                    key = key.display(),
                    pid = dir.path().join("sshd.pid").display(),
                    user = user.name,
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("sshd.log")).unwrap();
            let mut child = Command::new(&exe)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            if wait_ready(&mut child, &dir.path().join("sshd.log")) {
                return Sshd {
                    child,
                    port,
                    dir,
                    pam,
                };
            }
            // Lost the port to another process, or sshd refused to start: try again.
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default();
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn host_key(&self) -> PathBuf {
        self.dir.path().join("host_ed25519.pub")
    }

    fn service(&self) -> &str {
        &self.pam.name
    }
}

/// True once sshd says it listens; false if it exited or never did.
fn wait_ready(child: &mut Child, log: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if std::fs::read_to_string(log).is_ok_and(|l| l.contains("Server listening on")) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- sshd log ({}) ---\n{}", self.pam.name, self.log());
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Logs `user` in to `sshd` with the Python client; `bind` picks the source address.
/// The client's arguments for a login to `sshd` as `user`, running a command that proves
/// the session works.
fn ssh_args(sshd: &Sshd, install: &Install, user: &SystemUser) -> Vec<String> {
    vec![
        "ssh".into(),
        "--port".into(),
        sshd.port.to_string(),
        "--user".into(),
        user.name.clone(),
        "--password".into(),
        user.password.clone(),
        "--spool".into(),
        install.spool().display().to_string(),
        "--host-key".into(),
        sshd.host_key().display().to_string(),
        "--command".into(),
        "echo mfa-ok-$USER; id -un".into(),
    ]
}

fn login(
    sshd: &Sshd,
    install: &Install,
    user: &SystemUser,
    bind: Option<&str>,
    wrong: bool,
) -> serde_json::Value {
    login_with(sshd, install, user, bind, wrong, None)
}

fn login_with(
    sshd: &Sshd,
    install: &Install,
    user: &SystemUser,
    bind: Option<&str>,
    wrong: bool,
    totp_key: Option<&str>,
) -> serde_json::Value {
    install.heartbeat();
    let mut args = ssh_args(sshd, install, user);
    if let Some(b) = bind {
        args.extend(["--bind".into(), b.into()]);
    }
    if wrong {
        args.push("--wrong".into());
    }
    if let Some(k) = totp_key {
        args.extend(["--totp-key".into(), k.into()]);
    }
    let r = client(&args);
    assert_eq!(r["host_key_ok"], true, "not our sshd: {r}");
    r
}

/// Every prompt the client was shown, in order: (text, echo, what it answered).
fn prompts(r: &serde_json::Value) -> Vec<(String, bool, String)> {
    r["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|round| round["prompts"].as_array().unwrap().iter())
        .map(|p| {
            (
                p["text"].as_str().unwrap().to_string(),
                p["echo"].as_bool().unwrap(),
                p["answered"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// All text the client was shown (instructions and prompts).
fn shown(r: &serde_json::Value) -> String {
    r["rounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|round| {
            let mut s = round["instructions"].as_str().unwrap_or("").to_string();
            for p in round["prompts"].as_array().unwrap() {
                s.push('\n');
                s.push_str(p["text"].as_str().unwrap());
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The prompt pam_mfa shows for `user`'s one email contact, with the prefix letter.
fn passcode_prompt(text: &str) -> Option<char> {
    let rest = text.strip_prefix("Passcode ")?;
    let letter = rest.chars().next()?;
    (letter.is_ascii_uppercase() && &rest[1..] == "- (sent to m***@e***.com): ").then_some(letter)
}

fn columns(row: &str) -> Vec<&str> {
    row.split('|').collect()
}

#[test]
fn ssh_login_with_password_and_emailed_passcode() {
    if !root_or_skip("ssh_login_with_password_and_emailed_passcode") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let sshd = Sshd::start(&install, &user);

    let r = login(&sshd, &install, &user, None, false);
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(r["exit"], 0, "{r}");
    assert_eq!(
        r["output"].as_str().unwrap(),
        format!("mfa-ok-{0}\n{0}\n", user.name),
        "{r}"
    );
    // The password (pam_unix), then the passcode (pam_mfa), both without echo.
    let p = prompts(&r);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(
        (p[0].1, p[0].2.as_str()),
        (false, "password"),
        "first prompt: {p:?}"
    );
    assert!(p[0].0.contains("Password"), "{p:?}");
    let letter = passcode_prompt(&p[1].0).unwrap_or_else(|| panic!("second prompt: {p:?}"));
    assert_eq!((p[1].1, p[1].2.as_str()), (false, "passcode"), "{p:?}");
    // One message, to the user's address, carrying the prompt's prefix.
    let msgs = install.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["to"], user.email().as_str());
    assert_eq!(msgs[0]["user"], user.name.as_str());
    assert!(
        msgs[0]["body"]
            .as_str()
            .unwrap()
            .contains(&format!("{letter}-")),
        "{msgs:?}"
    );
    // sshd handed pam_mfa its service name and the client's address.
    let log = install.log();
    assert_eq!(log.len(), 1, "{log:?}");
    let row = columns(&log[0]);
    assert_eq!(
        (row[0], row[2], row[3], row[5]),
        ("success", sshd.service(), "127.0.0.1", "m***@e***.com"),
        "{log:?}"
    );
}

#[test]
fn ssh_from_a_trusted_address_skips_the_passcode() {
    if !root_or_skip("ssh_from_a_trusted_address_skips_the_passcode") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let sshd = Sshd::start(&install, &user);
    install.net(sshd.service(), "127.0.0.5/32", false);

    let r = login(&sshd, &install, &user, Some("127.0.0.5"), false);
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(
        r["output"].as_str().unwrap(),
        format!("mfa-ok-{0}\n{0}\n", user.name),
        "{r}"
    );
    let p = prompts(&r);
    assert_eq!(p.len(), 1, "only the password was asked for: {p:?}");
    assert_eq!(p[0].2, "password", "{p:?}");
    assert!(!shown(&r).contains("Passcode"), "{r}");
    assert!(install.messages().is_empty(), "a passcode was sent");
    let log = install.log();
    assert_eq!(log.len(), 1, "{log:?}");
    let row = columns(&log[0]);
    assert_eq!(
        (row[0], row[2], row[3]),
        ("ignore", sshd.service(), "127.0.0.5"),
        "{log:?}"
    );
    assert!(row[1].contains("trusted network"), "{log:?}");

    // The rule trusts 127.0.0.5 only: from 127.0.0.1 the passcode is asked for.
    let r = login(&sshd, &install, &user, None, false);
    assert_eq!(r["authenticated"], true, "{r}");
    let p = prompts(&r);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(passcode_prompt(&p[1].0).is_some(), "{p:?}");
    let log = install.log();
    assert_eq!(log.len(), 2, "{log:?}");
    let row = columns(&log[1]);
    assert_eq!((row[0], row[3]), ("success", "127.0.0.1"), "{log:?}");
}

#[test]
fn ssh_wrong_passcode_is_refused() {
    if !root_or_skip("ssh_wrong_passcode_is_refused") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let sshd = Sshd::start(&install, &user);

    let r = login(&sshd, &install, &user, None, true);
    assert_eq!(r["authenticated"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("Authentication"),
        "{r}"
    );
    assert!(r["output"].is_null(), "a command ran: {r}");
    // The password was right; every one of the `attempts` (3) tries at the code was wrong.
    let p = prompts(&r);
    assert_eq!(p[0].2, "password", "{p:?}");
    let tries: Vec<_> = p.iter().filter(|x| x.2 == "passcode-wrong").collect();
    assert_eq!(tries.len(), 3, "{p:?}");
    assert!(
        shown(&r).contains("Wrong passcode. 2 attempts left."),
        "{r}"
    );
    assert_eq!(install.messages().len(), 1, "one code for one login");
    let log = install.log();
    assert_eq!(log.len(), 1, "{log:?}");
    let row = columns(&log[0]);
    assert_eq!(
        (row[0], row[1], row[2], row[3]),
        (
            "deny",
            "wrong passcode; attempts used up",
            sshd.service(),
            "127.0.0.1"
        ),
        "{log:?}"
    );
}

#[test]
fn ssh_login_with_an_authenticator_code() {
    if !root_or_skip("ssh_login_with_an_authenticator_code") {
        return;
    }
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    let key = mfa_core::totp::Key::generate("sha1", 6).unwrap();
    {
        let mut s = install.store();
        s.change("test", "totp", |tx| {
            mfa_core::store::factors::set_totp(tx, &user.name, &key, 0)?;
            mfa_core::store::rules::set_service(tx, "*", "totp")?;
            Ok(((), String::new()))
        })
        .unwrap();
    }
    let sshd = Sshd::start(&install, &user);
    // Stay clear of a step boundary: the client computes the code a moment after we look.
    while mfa_core::now() % 30 > 25 {
        std::thread::sleep(Duration::from_millis(500));
    }
    let r = login_with(&sshd, &install, &user, None, false, Some(&key.base32()));
    assert_eq!(r["authenticated"], true, "{r}");
    assert_eq!(
        r["output"].as_str().unwrap(),
        format!("mfa-ok-{0}\n{0}\n", user.name),
        "{r}"
    );
    let p = prompts(&r);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].0.contains("Password") && p[1].0 == "Authenticator code: ",
        "{p:?}"
    );
    assert_eq!((p[1].1, p[1].2.as_str()), (false, "totp"), "{p:?}");
    assert!(
        install.messages().is_empty(),
        "no passcode is sent for an authenticator login"
    );
    let log = install.log();
    let row = columns(&log[0]);
    assert_eq!((row[0], row[2]), ("success", sshd.service()), "{log:?}");
}

/// Stops a child process when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// Waits up to `limit` for `path` to exist.
fn wait_file(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn ssh_login_with_the_passcode_from_the_mail_server() {
    if !root_or_skip("ssh_login_with_the_passcode_from_the_mail_server") {
        return;
    }
    need(
        "/usr/lib/python3/dist-packages/aiosmtpd",
        "python3-aiosmtpd",
    );
    let install = Install::new();
    let user = SystemUser::new();
    install.user(&user.name, &user.email());
    // A real SMTP server, and the real sender delivering to it (its heartbeat, not ours).
    let smtp_port = free_port();
    let mailbox = install.path("mailbox.jsonl");
    let ready = install.path("smtp.ready");
    let smtp = Killed(
        Command::new("/usr/bin/python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/system/smtp_sink.py"))
            .arg(smtp_port.to_string())
            .arg(&mailbox)
            .arg(&ready)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_file(&ready, Duration::from_secs(15)),
        "the SMTP server did not start"
    );
    let mut config = std::fs::read_to_string(install.config()).unwrap();
    config.push_str(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\nfrom = \"mfa@example.com\"\n"
    ));
    std::fs::write(install.config(), config).unwrap();
    std::fs::remove_file(install.path("run/sender.heartbeat")).unwrap();
    let sender_log = std::fs::File::create(install.path("sender.log")).unwrap();
    let sender = Killed(
        Command::new(super::sender_path())
            .arg("--config")
            .arg(install.config())
            .stderr(sender_log)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_file(
            &install.path("run/sender.heartbeat"),
            Duration::from_secs(15)
        ),
        "mfa-sender did not start: {}",
        std::fs::read_to_string(install.path("sender.log")).unwrap_or_default()
    );
    let sshd = Sshd::start(&install, &user);

    let mut args = ssh_args(&sshd, &install, &user);
    args.extend([
        "--mailbox".into(),
        mailbox.display().to_string(),
        "--rcpt".into(),
        user.email(),
    ]);
    let r = client(&args);
    assert_eq!(
        r["authenticated"],
        true,
        "{r}\nsender: {}",
        std::fs::read_to_string(install.path("sender.log")).unwrap_or_default()
    );
    assert_eq!(
        r["output"].as_str().unwrap(),
        format!("mfa-ok-{0}\n{0}\n", user.name),
        "{r}"
    );
    let p = prompts(&r);
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[1].2, "passcode-from-mail", "{p:?}");
    // The mail really went through the server, and the sender deleted the spool file.
    let mails = std::fs::read_to_string(&mailbox).unwrap();
    assert_eq!(mails.lines().count(), 1, "{mails}");
    let mail: serde_json::Value = serde_json::from_str(mails.lines().next().unwrap()).unwrap();
    assert_eq!(mail["rcpt"], serde_json::json!([user.email()]));
    assert!(
        mail["data"]
            .as_str()
            .unwrap()
            .contains("From: mfa@example.com"),
        "{mail}"
    );
    let spooled = std::fs::read_dir(install.path("spool/new"))
        .unwrap()
        .count()
        + std::fs::read_dir(install.path("spool/cur"))
            .unwrap()
            .count();
    assert_eq!(spooled, 0, "the sender deletes what the server accepted");
    let log = install.log();
    assert_eq!(columns(&log[0])[0], "success", "{log:?}");
    let sender_text = std::fs::read_to_string(install.path("sender.log")).unwrap();
    assert!(
        sender_text.contains("sent (250)") && !sender_text.contains(&user.email()),
        "masked in the sender's log: {sender_text}"
    );
    drop((sender, smtp));
}
