//! mfa-sender: the unprivileged daemon that drains mfa's spool. It is the only part of mfa
//! that touches the network and holds transport credentials.
//!
//! `mfa-sender [--config PATH]` runs in the foreground (systemd `Type=notify`);
//! `--once` drains the spool and exits; `--check` connects to each configured transport,
//! verifies its credentials and reports. SIGTERM finishes what is in flight and exits 0;
//! SIGHUP reloads the transports.

mod daemon;
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
                    "mfa-sender [--config PATH] [--once | --check]\n  delivers mfa's spooled messages by SMTP and SMS APIs"
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
    let cfg = match Config::load(&source) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mfa-sender: {e}");
            return ExitCode::from(if e.is_bad_input() { 2 } else { 1 });
        }
    };
    if mode == Some("check") {
        let t = match transport::Transports::new(&cfg) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("mfa-sender: {e}");
                return ExitCode::from(2);
            }
        };
        let mut ok = true;
        for (name, r) in t.check() {
            match r {
                Ok(m) => println!("OK    {name}: {m}"),
                Err(m) => {
                    ok = false;
                    println!("FAIL  {name}: {m}");
                }
            }
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
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
