//! mfa-fleetd: keeps a fleet host's replica, logs and report in step with the fleet's
//! central PostgreSQL store (see `mfa_fleet::follower`). Runs as root (it rewrites root's
//! database and policy snapshot), sandboxed by its unit; logins never wait on it.
//!
//! `mfa-fleetd [--config PATH]` runs in the foreground (systemd `Type=notify`) until
//! SIGTERM or SIGINT; `--once` runs one round and exits 0, or 1 with the error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use mfa_core::config::{Config, ConfigSource};
use mfa_fleet::follower::Follower;

fn usage() -> ExitCode {
    eprintln!("usage: mfa-fleetd [--config PATH] [--once]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut config: Option<PathBuf> = None;
    let mut once = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--config" => match args.next() {
                Some(p) => config = Some(PathBuf::from(p)),
                None => return usage(),
            },
            "--once" => once = true,
            "--help" | "-h" => {
                println!(
                    "mfa-fleetd [--config PATH] [--once]\n  follows the fleet's central store: ships this host's changes and logs, applies the fleet's"
                );
                return ExitCode::SUCCESS;
            }
            "--version" => {
                println!("mfa-fleetd {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("mfa-fleetd: unknown argument {other:?}");
                return usage();
            }
        }
    }
    let source = ConfigSource::resolve(config.as_deref());
    let config = match Config::load(&source) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mfa-fleetd: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("mfa-fleetd: cannot handle signal {sig}: {e}");
            return ExitCode::from(1);
        }
    }
    let mut follower = match Follower::new(config) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mfa-fleetd: {e}");
            return ExitCode::from(if e.is_bad_input() { 2 } else { 1 });
        }
    };
    match follower.run(&stop, once) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-fleetd: {e}");
            ExitCode::from(1)
        }
    }
}
