//! mfa-sender: the unprivileged daemon that drains mfa's spool. It is the only part of mfa
//! that touches the network and holds transport credentials.
//!
//! `mfa-sender [--config PATH]` runs in the foreground (systemd `Type=notify`);
//! `--once` drains the spool and exits; `--check` verifies what the sender needs from the
//! file system (see `preflight`), connects to each configured transport, verifies its
//! credentials and reports, one `OK`/`FAIL` line each. The daemon and `--once` run the same
//! file checks first and refuse to start when one fails. SIGTERM finishes what is in flight
//! and exits 0; SIGHUP reloads the transports and the send limits. Passcodes over the send
//! limits of `[sender]` are not sent but failed as `rate-limited` (see `limits`).
//!
//! With `[duo]`, the daemon is also the broker of method `duo` (see `duo`): it alone holds
//! Duo's secret key and talks to Duo's Auth API v2, for root callers on the Unix socket
//! `<runtime>/duo.sock`; `--check` adds a `duo:` line (Duo's signed `check`).

mod daemon;
mod duo;
mod limits;
mod preflight;
mod smtp;
mod transport;

use std::path::PathBuf;
use std::process::ExitCode;

use mfa_core::config::{Config, ConfigSource};

fn usage() -> ExitCode {
    eprintln!("usage: mfa-sender [--config PATH] [--once | --check]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config: Option<PathBuf> = None;
    let mut mode = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(p) => config = Some(PathBuf::from(p)),
                None => return usage(),
            },
            "--once" if mode.is_none() => mode = Some("once"),
            "--check" if mode.is_none() => mode = Some("check"),
            "--help" | "-h" => {
                println!(
                    "mfa-sender [--config PATH] [--once | --check]\n  delivers mfa's spooled messages by SMTP and SMS APIs, and brokers Duo requests ([duo])"
                );
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("mfa-sender {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("mfa-sender: unknown argument {other:?}");
                return usage();
            }
        }
    }
    if rustls::crypto::ring::default_provider()
        .install_default()
        .is_err()
    {
        eprintln!("mfa-sender: cannot install the TLS crypto provider");
        return ExitCode::from(1);
    }
    let source = ConfigSource::resolve(config.as_deref());
    let check = mode == Some("check");
    let cfg = match Config::load(&source) {
        Ok(c) => c,
        Err(e) => {
            let (name, detail) = preflight::config_failed(&e);
            let detail = detail.err().unwrap_or_default();
            if check {
                println!("FAIL  {name}: {detail}");
            }
            eprintln!("mfa-sender: {detail}");
            return ExitCode::from(if e.is_bad_input() { 2 } else { 1 });
        }
    };
    // What the sender needs from the file system, verified as the user it runs as.
    let files = preflight::run(&source, &cfg, check);
    let files_ok = files.iter().all(|(_, r)| r.is_ok());
    if check {
        let mut ok = files_ok;
        for (name, r) in &files {
            report(name, r);
        }
        let configured = cfg.smtp.is_some() || cfg.sms.is_some() || cfg.duo.is_some();
        // The transports need their secrets; nothing else above stops them from working.
        let secrets_ok = files
            .iter()
            .all(|(name, r)| r.is_ok() || !name.starts_with("secret "));
        if !configured {
            // Not a failure (a fresh install has no transport yet), but worth a line.
            println!(
                "WARN  transports: no [smtp] or [sms] section: the sender cannot deliver anything"
            );
        } else if !secrets_ok {
            report(
                "transports",
                &Err("not checked: fix the secret files above first".into()),
            );
        } else {
            if let Some(d) = &cfg.duo {
                // Duo's `check`: the keys, the signature and the clock, against Duo itself.
                let r = duo::check(d);
                ok &= r.is_ok();
                report("duo", &r);
            }
            match transport::Transports::new(&cfg) {
                Ok(t) => {
                    for (name, r) in t.check() {
                        ok &= r.is_ok();
                        report(&name, &r);
                    }
                }
                Err(e) => {
                    ok = false;
                    report("transports", &Err(e));
                }
            }
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    if !files_ok {
        for (name, r) in &files {
            if let Err(e) = r {
                eprintln!("mfa-sender: cannot start: {name}: {e}");
            }
        }
        return ExitCode::from(1);
    }
    let d = match daemon::Daemon::new(source, cfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mfa-sender: {e}");
            return ExitCode::from(2);
        }
    };
    let m = if mode == Some("once") {
        daemon::Mode::Once
    } else {
        daemon::Mode::Daemon
    };
    ExitCode::from(u8::try_from(d.run(m)).unwrap_or(1))
}

/// One `--check` line, in the format `mfa-admin doctor` parses: `OK    name: detail` or
/// `FAIL  name: detail` (and `WARN  transports: ...` when none is configured).
fn report(name: &str, r: &Result<String, String>) {
    match r {
        Ok(m) => println!("OK    {name}: {m}"),
        Err(m) => println!("FAIL  {name}: {m}"),
    }
}
