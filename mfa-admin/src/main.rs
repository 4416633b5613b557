//! mfa-admin: the command line that manages mfa's rules, users, contacts and logs.
//!
//! Exit status: 0 done; 1 the system failed us (I/O, database, insecure files); 2 bad input
//! (the message names what was wrong and the accepted form; nothing was changed).

mod actor;
mod cli;
mod commands;
mod output;
mod when;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
