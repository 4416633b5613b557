//! Runs `mfa-sender --config FILE --check` as the sender's own user (its uid, primary gid and
//! supplementary groups, as systemd would start it) and turns each `OK    name: detail` /
//! `FAIL  name: detail` line into a check: the sender's own preflight of the files it needs
//! and a connection to each transport. Only what the sender says it checked is repeated: an
//! SMTP line never claims TLS without TLS nor AUTH without a login.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::config::{Config, SmtpTls};
use nix::unistd::Uid;

use super::Report;
use super::files::Sender;

/// How long the check may take (it connects to each transport, each with its own timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// The sender binary: next to this one, else on PATH.
fn sender_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("mfa-sender")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("mfa-sender"))
}

pub fn check(r: &mut Report, config: &Config, config_path: &Path, sender: Option<&Sender>) {
    if sender.is_none() && Uid::effective().is_root() {
        // As root every file would look readable: that would say nothing about the sender.
        return r.add(
            "sender check",
            "warn",
            "mfa-sender --check not run: the sender's user does not exist (see `sender user`)",
        );
    }
    let bin = sender_binary();
    let mut cmd = Command::new(&bin);
    cmd.arg("--config")
        .arg(config_path)
        .arg("--check")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/");
    let as_whom = match sender {
        Some(s) if Uid::effective().is_root() && !s.uid.is_root() => {
            let (uid, gid, groups) = (s.uid, s.gid, s.groups.clone());
            cmd.env("HOME", "/")
                .env("USER", &s.name)
                .env("LOGNAME", &s.name);
            // SAFETY: between fork and exec the closure only makes three system calls on
            // values prepared before the fork; it allocates nothing.
            unsafe {
                cmd.pre_exec(move || {
                    nix::unistd::setgroups(&groups)?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                    Ok(())
                });
            }
            format!("as {}", s.name)
        }
        Some(s) if s.uid.is_root() => "as root".to_string(),
        Some(s) if Uid::effective() == s.uid => format!("as {}", s.name),
        _ => {
            // Not root: we cannot become the sender; the result says what this user sees.
            format!(
                "as uid {} (not root: cannot switch to the sender's user)",
                Uid::effective()
            )
        }
    };
    let out = match run(cmd) {
        Ok(o) => o,
        Err(e) => {
            return r.add(
                "sender check",
                "warn",
                format!("cannot run {} --check: {e}", bin.display()),
            );
        }
    };
    let text = String::from_utf8_lossy(&out.0);
    let mut any = false;
    for line in text.lines() {
        let (status, rest) = match line.split_once(char::is_whitespace) {
            Some(("OK", rest)) => ("ok", rest.trim()),
            Some(("FAIL", rest)) => ("fail", rest.trim()),
            Some(("WARN", rest)) => ("warn", rest.trim()),
            _ => continue,
        };
        any = true;
        let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
        let mut status = status;
        let mut detail = detail.to_string();
        if name == "smtp" {
            detail = honest_smtp(config, &detail);
        }
        if name == "transports" && config.smtp.is_none() && config.sms.is_none() {
            // Said once, as a warning: a fresh install has no transport yet.
            status = "warn";
            detail = "no [smtp] or [sms] section: the sender cannot deliver anything".into();
        }
        r.add(
            format!("sender {name}"),
            status,
            format!("{detail} ({as_whom})"),
        );
    }
    if let Some(s) = &config.smtp
        && s.tls == SmtpTls::None
        && !is_loopback(&s.host)
    {
        r.add(
            "sender smtp tls",
            "warn",
            format!(
                "[smtp] tls = \"none\" to {}: passcodes cross the network in clear text; use starttls or tls",
                s.host
            ),
        );
    }
    if !any {
        let err = String::from_utf8_lossy(&out.1);
        let code = out.2.map_or("killed".to_string(), |c| format!("exit {c}"));
        r.add(
            "sender check",
            "fail",
            format!(
                "{} --config {} --check {as_whom}: {} ({code})",
                bin.display(),
                config_path.display(),
                err.trim()
            ),
        );
    }
}

/// Runs with a deadline: (stdout, stderr, exit code).
fn run(mut cmd: Command) -> std::io::Result<(Vec<u8>, Vec<u8>, Option<i32>)> {
    let mut child = cmd.spawn()?;
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() || start.elapsed() > CHECK_TIMEOUT {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait()?.is_none() {
        let _ = child.kill();
    }
    let o = child.wait_with_output()?;
    Ok((o.stdout, o.stderr, o.status.code()))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The SMTP line, saying only what a connection with this configuration exercised.
fn honest_smtp(config: &Config, detail: &str) -> String {
    let Some(s) = &config.smtp else {
        return detail.to_string();
    };
    let mut steps = vec!["EHLO"];
    match s.tls {
        SmtpTls::None => {}
        SmtpTls::Starttls => steps.push("STARTTLS"),
        SmtpTls::Tls => steps.push("TLS"),
    }
    if s.username.is_some() {
        steps.push("AUTH");
    }
    if !detail.contains("EHLO/TLS/AUTH") {
        return detail.to_string();
    }
    let mut out = detail.replace("EHLO/TLS/AUTH", &steps.join("/"));
    if s.tls == SmtpTls::None {
        out.push_str("; no TLS");
    }
    if s.username.is_none() {
        out.push_str("; no login");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_line_claims_only_what_was_done() {
        let mut c = Config::default();
        let t = "[smtp]\nhost = \"mail.example.com\"\nport = 25\ntls = \"none\"\nfrom = \"mfa@example.com\"\n";
        c.smtp = Config::parse(Path::new("x.toml"), t).unwrap().smtp;
        let s = honest_smtp(&c, "connected to mail.example.com, EHLO/TLS/AUTH accepted");
        assert_eq!(
            s,
            "connected to mail.example.com, EHLO accepted; no TLS; no login"
        );
        let failed = "mail.example.com: connection refused";
        assert_eq!(honest_smtp(&c, failed), failed);
        assert!(is_loopback("127.0.0.1") && is_loopback("[::1]") && !is_loopback("mail"));
    }
}
