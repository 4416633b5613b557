//! STARTTLS and AUTH: a server that requires both, with a self-signed certificate the test
//! makes with openssl and names as `ca_file`; good and wrong passwords; a password file
//! others can read; a certificate the sender has no reason to trust.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Env, FROM, ServerOpts, SmtpServer, tail, wait_until};

const USER: &str = "mfa-relay";
const PASSWORD: &str = "s3cret pass:word";

/// A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A leaf certificate: rustls (webpki) refuses a CA certificate as the server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (install openssl): {e}"));
    assert!(
        o.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (cert, key)
}

/// A server requiring STARTTLS and AUTH, and an installation whose password file holds
/// `password` with `mode`; `ca` names the certificate as ca_file.
fn setup(password: &str, mode: u32, ca: bool) -> (SmtpServer, Env) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(certs.path());
    let server = SmtpServer::start(&ServerOpts {
        tls: Some((cert.clone(), key)),
        auth: Some((USER.into(), PASSWORD.into())),
        ..ServerOpts::default()
    });
    let env = Env::new("");
    let ca_file = env.path("ca.pem");
    std::fs::copy(&cert, &ca_file).unwrap();
    let password_file = env.path("smtp-password");
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(mode)).unwrap();
    let mut smtp = format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"{USER}\"\npassword_file = \"{}\"\nfrom = \"{FROM}\"\ntimeout = \"5s\"\n",
        server.port,
        password_file.display()
    );
    if ca {
        smtp.push_str(&format!("ca_file = \"{}\"\n", ca_file.display()));
    }
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("[smtp]\n", &format!("[smtp]\n{smtp}"));
    std::fs::write(&env.config, text).unwrap();
    (server, env)
}

#[test]
fn starttls_and_auth_deliver() {
    let (server, env) = setup(PASSWORD, 0o600, true);
    let check = env.run(&["--check"], Duration::from_secs(30));
    assert_eq!(check.code, 0, "{check:?}");
    assert!(
        check
            .stdout
            .contains("OK    smtp: connected to 127.0.0.1, EHLO/STARTTLS/AUTH accepted\n"),
        "{check:?}"
    );

    let id = env.email("bob@example.com", 600);
    env.once();
    let mails = server.wait_ids(std::slice::from_ref(&id), Duration::from_secs(10));
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].tls, "accepted without TLS: {mails:?}");
    assert_eq!(mails[0].auth.as_deref(), Some(USER));
    assert_eq!(mails[0].rcpt, ["bob@example.com"]);
    assert!(env.drained());
    assert!(env.files("failed").is_empty());
    // AUTH happened inside TLS only, and succeeded.
    let auths = server.events_of("auth");
    assert!(!auths.is_empty());
    assert!(
        auths.iter().all(|a| a["ok"] == true && a["tls"] == true),
        "{auths:?}"
    );
}

/// A wrong password is the configuration's fault, not the message's: like Postfix
/// (smtp_sasl_auth_soft_bounce), the sender keeps the message queued and retries with
/// backoff, so mail flows again once the administrator fixes the password.
#[test]
fn wrong_password_keeps_messages_queued() {
    let (server, env) = setup("not the password", 0o600, true);
    let check = env.run(&["--check"], Duration::from_secs(30));
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("FAIL  smtp"), "{check:?}");
    assert!(check.stdout.contains("535"), "{check:?}");

    let id = env.email("bob@example.com", 600);
    let mut sender = env.start();
    // Two refused AUTHs by the daemon (after the one of --check): it retried.
    wait_until(
        "the sender to retry after a refused AUTH",
        Duration::from_secs(20),
        || {
            server
                .events_of("auth")
                .iter()
                .filter(|a| a["ok"] == false)
                .count()
                >= 3
        },
    );
    assert!(server.mails().is_empty());
    assert!(
        env.files("failed").is_empty(),
        "a wrong password failed the message for good: {:?} {:?}\n{}",
        env.files("failed"),
        env.reason(&id),
        tail(&env.log(), 20)
    );
    assert_eq!(
        env.ids("cur"),
        std::slice::from_ref(&id),
        "the message should wait in cur/ for its retry"
    );
    assert!(env.log().contains("535"), "{}", env.log());
    let (status, _) = sender.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        env.ids("new"),
        std::slice::from_ref(&id),
        "SIGTERM should put the waiting message back in new/"
    );

    // The administrator fixes the password: the same message goes out.
    std::fs::write(env.path("smtp-password"), format!("{PASSWORD}\n")).unwrap();
    env.once();
    let mails = server.wait_ids(std::slice::from_ref(&id), Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert!(env.drained());
}

#[test]
fn password_file_readable_by_others_is_refused() {
    let (server, env) = setup(PASSWORD, 0o644, true);
    let id = env.email("bob@example.com", 600);
    for args in [&[][..], &["--once"], &["--check"]] {
        let o = env.run(args, Duration::from_secs(10));
        assert_eq!(o.code, 1, "mfa-sender {args:?}: {o:?}");
        // The daemon and --once say why on stderr; --check on its FAIL line.
        let said = if args == ["--check"] {
            &o.stdout
        } else {
            &o.stderr
        };
        assert!(
            said.contains("secret [smtp] password_file: ")
                && said.contains("mode 0644")
                && said.contains("chmod 600")
                && said.contains("smtp-password"),
            "mfa-sender {args:?}: {o:?}"
        );
    }
    assert_eq!(env.ids("new"), [id], "a refused start touched the spool");
    assert!(server.events().is_empty(), "{:?}", server.events());
}

/// Without ca_file the self-signed certificate is not trusted: nothing is sent in the clear,
/// and the message stays queued (a TLS failure is not the message's fault either).
#[test]
fn untrusted_certificate_sends_nothing_and_keeps_the_message() {
    let (server, env) = setup(PASSWORD, 0o600, false);
    let check = env.run(&["--check"], Duration::from_secs(30));
    assert_eq!(check.code, 1, "{check:?}");
    assert!(check.stdout.contains("FAIL  smtp"), "{check:?}");

    let id = env.email("bob@example.com", 600);
    let o = env.once();
    assert!(o.stderr.contains("attempt 1 failed"), "{o:?}");
    assert_eq!(env.ids("new"), [id], "{o:?}");
    assert!(env.files("failed").is_empty());
    assert!(env.files("cur").is_empty());
    assert!(server.mails().is_empty());
    assert!(
        server.events_of("auth").is_empty(),
        "AUTH without trusted TLS"
    );
}
