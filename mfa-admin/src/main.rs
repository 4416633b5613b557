//! mfa-admin: the command line that manages mfa's rules, users, contacts and logs.
//!
//! Exit status: 0 done; 1 the system failed us (I/O, database, insecure files); 2 bad input
//! (the message names what was wrong and the accepted form; nothing was changed).

mod actor;
mod cli;
mod commands;
#[cfg(test)]
mod generated;
mod output;
mod pam_files;
mod when;

use std::process::ExitCode;

use clap::Parser;

/// Restores the default action of SIGPIPE, which Rust's runtime sets to "ignore": a reader
/// that stops early (`mfa-admin carrier list | head -1`) then ends mfa-admin quietly, as it
/// ends `ls` or `cat`, instead of every `println!` after it panicking (exit 101). Child
/// processes get the default anyway; sockets are written with MSG_NOSIGNAL by std.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no Rust code as a handler; it is called once,
    // before any thread exists.
    unsafe {
        nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    // Files we create (exports, the database, the configuration) start private.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mfa-admin: {e}");
            if e.is_bad_input() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
