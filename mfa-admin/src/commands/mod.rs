//! Runs a parsed command: loads the configuration, opens the store and hands over to the
//! module of the command's topic.

mod backup;
mod doctor;
mod duo;
mod fleet;
mod fleet_member;
mod group;
mod init;
mod logs;
mod maintain;
mod network;
mod people;
mod queue;
mod rules;
mod totp;
mod transfer;
mod user_import;
mod verify;

use mfa_core::config::{Config, ConfigSource};
use mfa_core::store::{Rebuilt, Store};
use mfa_core::{Result, invalid};

use crate::cli::{Cli, Command};

/// What every command needs.
pub struct Ctx {
    /// The configuration file in use.
    pub config_path: std::path::PathBuf,
    pub config: Config,
    pub json: bool,
}

impl Ctx {
    /// Opens the configured database, moves the module's auth-log inbox into it and makes
    /// sure the policy snapshot matches it and passes its checksums (see `mfa_core::authlog` and `mfa_core::snapshot`).
    pub fn store(&self) -> Result<Store> {
        let mut store = Store::open(&self.config.paths.database)?;
        // Neither may stop the command: it may be the one that repairs what made them fail.
        match store.ingest_auth_log() {
            Ok((_, 0)) => {}
            Ok((_, bad)) => eprintln!(
                "warning: {bad} unreadable line(s) in the auth-log inbox {} were skipped",
                mfa_core::authlog::path_for(store.path()).display()
            ),
            Err(e) => eprintln!("warning: the auth-log inbox was not moved into the database: {e}"),
        }
        // A fleet host: the fleet's newest rules first (a warning when it cannot).
        fleet_member::catch_up(&self.config, &mut store);
        // A snapshot that fails its checksum or is readable by others is rewritten by every
        // command, and said so: the module reads the database (and logs an error) meanwhile.
        match store.repair_snapshot() {
            Ok(Some(Rebuilt::Damaged(why))) => eprintln!(
                "warning: the policy snapshot could not be used ({why}); rewritten from the database"
            ),
            Ok(_) => {}
            Err(e) => eprintln!(
                "warning: cannot write the policy snapshot: {e}; logins read the database (slower) until it can be written"
            ),
        }
        Ok(store)
    }

    /// The name the audit log records for this change.
    pub fn actor(&self) -> String {
        crate::actor::actor()
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<()> {
    let source = ConfigSource::resolve(cli.config.as_deref());
    if let Command::Init = cli.command {
        return init::run(&source, cli.json);
    }
    if let Command::Verify(args) = &cli.command {
        // Its own exit statuses: 0 proven, 1 denied, 2 bad input, 3 not required, 4 unavailable.
        std::process::exit(i32::from(verify::run(&source, args, cli.json)));
    }
    if let Command::Maintain { .. } = cli.command {
        // Before the configuration, which others may not read: say what is wrong first.
        maintain::require_root()?;
    }
    let config = Config::load(&source)?;
    let ctx = Ctx {
        config_path: source.path,
        config,
        json: cli.json,
    };
    let done = command(&ctx, cli.command);
    if done.is_ok() {
        // A fleet host ships what the command changed at once.
        fleet_member::publish(&ctx.config);
    }
    done
}

fn command(ctx: &Ctx, command: Command) -> Result<()> {
    match command {
        Command::Init => Ok(()),
        Command::Verify(_) => Ok(()),
        Command::Settings(c) => rules::settings(ctx, c),
        Command::Service(c) => rules::service(ctx, c),
        Command::Template(c) => rules::template(ctx, c),
        Command::Net(c) => network::run(ctx, c),
        Command::User(c) => people::user(ctx, c),
        Command::Contact(c) => people::contact(ctx, c),
        Command::Override(c) => people::overrides(ctx, c),
        Command::Group(c) => group::run(ctx, c),
        Command::Carrier(c) => people::carrier(ctx, c),
        Command::Log(c) => logs::log(ctx, c),
        Command::Audit(c) => logs::audit(ctx, c),
        Command::Fleet(c) => fleet::run(ctx, c),
        Command::Test {
            user, duo: true, ..
        } => duo::test(ctx, &user),
        Command::Test { user, contact, .. } => queue::test(ctx, &user, contact.as_deref()),
        Command::Duo(c) => duo::run(ctx, c),
        Command::Queue(c) => queue::run(ctx, c),
        Command::Sender(c) => queue::sender(ctx, c),
        Command::Totp(c) => totp::run(ctx, c),
        Command::BackupCodes { user, count } => totp::backup_codes(ctx, &user, &count),
        Command::Doctor {
            pam_dir,
            sshd_config,
            full,
        } => doctor::run(ctx, &pam_dir, &sshd_config, full),
        Command::Maintain { allow_mass_disable } => maintain::run(ctx, allow_mass_disable),
        Command::Export { file } => transfer::export(ctx, file.as_deref()),
        Command::Import {
            file,
            dry_run,
            allow_no_users,
        } => transfer::import(ctx, &file, dry_run, allow_no_users),
        Command::Backup { file, force } => backup::backup(ctx, &file, force),
        Command::Restore { file } => backup::restore(ctx, &file),
        Command::Migrate {
            to: _,
            url,
            password_file,
            ca_file,
            host,
        } => fleet_member::migrate(
            ctx,
            &url,
            password_file.as_deref(),
            ca_file.as_deref(),
            host.as_deref(),
        ),
    }
}

/// Parses a positive integer argument (an ID, a number, a count).
pub fn parse_number(what: &str, text: &str, max: i64) -> Result<i64> {
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(invalid!(
            "invalid {what} {text:?}: expected a whole number from 1 to {max}"
        )),
    }
}
