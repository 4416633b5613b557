//! `doctor`: diagnoses an installation. Each check says ok, warn or fail and why; any fail
//! makes the exit status 1.
//!
//! Checks, by module: the configuration file, the private files beside the database
//! ([`secrets`]), the database (integrity, schema, policy snapshot) and the global switch
//! (here); the spool as the module uses it and the sender's heartbeat (here); the files as
//! the sender's user sees them ([`files`]) and the sender's own `--check` run as that user
//! ([`sender`]); every pam.d file that stacks pam_mfa, the module files it names and the
//! rules that govern it ([`pam`], with [`stack`], [`flow`] and [`module`]); sshd's settings
//! ([`sshd`]); one-password stacks (`oneword=`, [`oneword`]); the unprivileged callers of
//! `[callers]` and the setuid helper they need ([`callers`]); proftpd's AuthOrder and
//! UseReverseDNS when its stack runs pam_mfa ([`proftpd`]); Duo's credentials through the
//! sender's broker when `[duo]` is configured (`super::duo::doctor`).

mod callers;
pub(super) mod files;
mod fleet;
mod flow;
mod module;
mod oneword;
mod pam;
mod proftpd;
mod secrets;
mod sender;
mod sshd;
mod stack;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use mfa_core::config::check_not_writable_by_others;
use mfa_core::snapshot::Finding;
use mfa_core::spool::{self, HEARTBEAT_STALE_SECS};
use mfa_core::store::{SCHEMA_VERSION, Store, rules};
use mfa_core::{Error, Result};
use serde::Serialize;

use super::Ctx;
use crate::output::{json, table};

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    /// ok, warn or fail.
    status: &'static str,
    detail: String,
}

/// The checks made so far, in order.
pub struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, check: impl Into<String>, status: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// `full`: SQLite's whole `integrity_check` instead of the quick check (see
/// [`check_database`]).
pub fn run(ctx: &Ctx, pam_dir: &Path, sshd_config: &Path, full: bool) -> Result<()> {
    let mut r = Report(Vec::new());
    check_config(&mut r, &ctx.config_path);
    // Before the database is opened: opening it rewrites a snapshot others could read.
    secrets::check(&mut r, &ctx.config.paths.database);
    let rules = check_database(&mut r, ctx, full);
    check_inbox(&mut r, &ctx.config.paths.database);
    let spool_dir = &ctx.config.paths.spool;
    match spool::check_layout(spool_dir) {
        Ok(()) => match std::fs::metadata(spool_dir) {
            Ok(m) if m.mode() & 0o002 != 0 => r.add(
                "spool",
                "fail",
                format!("{} is writable by everyone", spool_dir.display()),
            ),
            _ => r.add("spool", "ok", format!("{} is usable", spool_dir.display())),
        },
        Err(e) => r.add("spool", "fail", e.to_string()),
    }
    match spool::heartbeat_age(&ctx.config.paths.runtime, std::time::SystemTime::now()) {
        Some(age) if age <= HEARTBEAT_STALE_SECS => {
            r.add("sender", "ok", format!("heartbeat {age} s old"))
        }
        Some(age) => r.add(
            "sender",
            "fail",
            format!(
                "heartbeat {age} s old: mfa-sender is not running; passcode logins follow fail_mode"
            ),
        ),
        None => r.add(
            "sender",
            "fail",
            "no heartbeat: mfa-sender has not run; passcode logins follow fail_mode",
        ),
    }
    fleet::check(&mut r, &ctx.config);
    let who = files::check(&mut r, &ctx.config, &ctx.config_path);
    sender::check(&mut r, &ctx.config, &ctx.config_path, who.as_ref());
    // Duo's signed check through the sender's broker, when [duo] is configured.
    if let Some((status, detail)) = super::duo::doctor(ctx) {
        r.add("duo", status, detail);
    }
    let pubkey_mfa = sshd::check(&mut r, sshd_config);
    let stacked = pam::check(&mut r, pam_dir, rules.as_ref(), pubkey_mfa);
    callers::check(&mut r, &ctx.config.callers, pam_dir, &stacked);
    proftpd::check(&mut r, pam_dir, &stacked);

    let failed = r.0.iter().filter(|c| c.status == "fail").count();
    if ctx.json {
        json(&r.0)?;
    } else {
        let rows =
            r.0.iter()
                .map(|c| vec![c.status.to_uppercase(), c.check.clone(), c.detail.clone()])
                .collect();
        table(&["STATUS", "CHECK", "DETAIL"], rows, "");
    }
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} check(s) failed")));
    }
    Ok(())
}

fn check_config(r: &mut Report, path: &Path) {
    if !path.exists() {
        r.add(
            "config",
            "warn",
            format!(
                "{} does not exist: built-in defaults are used",
                path.display()
            ),
        );
        return;
    }
    // Its directory too: whoever can write there can swap the file.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match check_not_writable_by_others(path).and_then(|()| check_not_writable_by_others(dir)) {
        Ok(()) => r.add(
            "config",
            "ok",
            format!(
                "{} and its directory are owned by root and not writable by others",
                path.display()
            ),
        ),
        Err(e) => r.add("config", "fail", e.to_string()),
    }
}

/// Database checks; returns the rules the PAM checks need when the database is readable.
/// The integrity part is quick by default (every table but the logs, [`Store::quick_check`]:
/// well under a second at 100,000 users and a million log rows) and whole with `full`
/// ([`Store::integrity_check`]: seconds at that size).
fn check_database(r: &mut Report, ctx: &Ctx, full: bool) -> Option<pam::Rules> {
    let db = &ctx.config.paths.database;
    // Not ctx.store(): it would rewrite a damaged snapshot quietly before the check sees it.
    let mut store = match Store::open(db) {
        Ok(s) => s,
        Err(e) => {
            r.add("database", "fail", e.to_string());
            return None;
        }
    };
    // What the PAM module reads instead of the database: the check `mfa-admin maintain` (the
    // daily timer) runs, which rewrites the snapshot when it is not what the database holds.
    let snap = mfa_core::snapshot::path_for(db);
    match mfa_core::snapshot::check_and_repair(&mut store) {
        Ok(c) if c.finding == Finding::Sound => r.add(
            "policy snapshot",
            "ok",
            format!("{} matches the database", snap.display()),
        ),
        Ok(c) => r.add(
            "policy snapshot",
            "warn",
            format!(
                "{} {} (logins read the database meanwhile: slower, and logged as errors); \
                 rewritten",
                snap.display(),
                c.finding
            ),
        ),
        Err(e) => r.add("policy snapshot", "fail", format!("cannot rewrite it: {e}")),
    }
    let checked = if full {
        store
            .integrity_check()
            .map(|p| (p, "integrity ok (full check)".to_string()))
    } else {
        store.quick_check().map(|(p, n)| {
            (
                p,
                format!("quick check ok ({n} tables; the logs and the full check: doctor --full)"),
            )
        })
    };
    match checked {
        Ok((p, ok)) if p.is_empty() => r.add(
            "database",
            "ok",
            format!("{ok}, schema version {SCHEMA_VERSION}"),
        ),
        Ok((p, _)) => r.add(
            "database",
            "fail",
            format!(
                "{} check: {}",
                if full { "integrity" } else { "quick" },
                p.join("; ")
            ),
        ),
        Err(e) => r.add("database", "fail", e.to_string()),
    }
    let enabled = match rules::settings(store.conn()) {
        Ok(s) if s.enabled => {
            r.add("enabled", "ok", "2FA is on");
            true
        }
        Ok(_) => {
            r.add(
                "enabled",
                "warn",
                "2FA is off globally: `mfa-admin settings set enabled=on`",
            );
            false
        }
        Err(e) => {
            r.add("enabled", "fail", e.to_string());
            return None;
        }
    };
    let methods = rules::services(store.conn()).ok()?;
    let networks = rules::networks(store.conn(), None).ok()?;
    Some(pam::Rules {
        enabled,
        methods: methods.into_iter().map(|m| (m.service, m.method)).collect(),
        networked: networks.into_iter().map(|n| n.service).collect(),
    })
}

/// Days after which a rotated auth-log file that nothing moved is a warning (the daily
/// maintenance run, or any mfa-admin command, moves them).
const INBOX_STALE_DAYS: u64 = 2;

/// The module's auth-log inbox: what waits to be moved into the database, and anything
/// named like a rotated file that is not one (never read; see `mfa_core::authlog`).
fn check_inbox(r: &mut Report, database: &Path) {
    use mfa_core::authlog::{MAX_ROTATED, backlog};
    let b = match backlog(database) {
        Ok(b) => b,
        Err(e) => return r.add("auth-log backlog", "fail", e.to_string()),
    };
    let waiting = format!(
        "{} rotated file(s), {} bytes, and {} bytes in the inbox wait",
        b.files, b.bytes, b.live
    );
    let age = b
        .oldest
        .and_then(|t| t.elapsed().ok())
        .map_or(0, |d| d.as_secs() / 86400);
    let mut problems = Vec::new();
    if b.files >= MAX_ROTATED {
        problems.push(format!(
            "{MAX_ROTATED} rotated files, the most kept: the inbox is no longer rotated and \
             grows"
        ));
    }
    if age >= INBOX_STALE_DAYS {
        problems.push(format!("the oldest waits since {age} days"));
    }
    if !b.others.is_empty() {
        let names: Vec<String> = b.others.iter().map(|p| p.display().to_string()).collect();
        problems.push(format!(
            "not regular files, never read (remove them): {}",
            names.join(", ")
        ));
    }
    if problems.is_empty() {
        r.add("auth-log backlog", "ok", waiting);
    } else {
        r.add(
            "auth-log backlog",
            "warn",
            format!(
                "{waiting}; {}: is mfa-maintenance.timer running? `mfa-admin maintain` moves them",
                problems.join("; ")
            ),
        );
    }
}
