//! `maintain`: the daily upkeep that `mfa-maintenance.timer` runs, doing what `log purge`
//! and `doctor` do by hand. Four tasks, each reported on one line with counts (the journal
//! keeps them), or together as one JSON object:
//! - `auth log`: moves the module's inbox into the database, then applies `log_keep_days`;
//! - `challenges`: the full sweep of the challenges directory
//!   ([`mfa_core::state::sweep_challenges`]);
//! - `login state`: expired entries out of the users' files and idle destination counters
//!   ([`mfa_core::state::sends`]);
//! - `policy snapshot`: checked against the database and rewritten when it does not match
//!   ([`mfa_core::snapshot::check_and_repair`], what `doctor` reports).
//!
//! Every task runs whatever another one did (the challenge sweep needs no database); the exit
//! status is 1 when any of them failed, so that a failed timer run means something an
//! administrator must fix. Each task takes the locks the store already takes (the database's
//! write lock, the snapshot lock, each user's file lock): logins and another `maintain` may
//! run at the same time.

use mfa_core::snapshot::{self, Finding};
use mfa_core::state::{self, sends};
use mfa_core::store::{Store, rules};
use mfa_core::{Error, Result};
use serde::Serialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::output::{json as print_json, visible};
use crate::when;

/// One task's result.
#[derive(Debug, Serialize)]
struct Task {
    /// ok, warn (done, with something an administrator may look at), repaired (the snapshot
    /// was rewritten) or failed.
    status: &'static str,
    /// The line printed for it, without the task's name.
    detail: String,
    /// The task's counts.
    #[serde(flatten)]
    counts: Value,
}

impl Task {
    fn new(status: &'static str, detail: impl Into<String>, counts: Value) -> Task {
        Task {
            status,
            detail: detail.into(),
            counts,
        }
    }

    fn failed(detail: impl Into<String>) -> Task {
        Task::new("failed", detail, json!({}))
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    /// No task failed.
    ok: bool,
    auth_log: &'a Task,
    challenges: &'a Task,
    login_state: &'a Task,
    snapshot: &'a Task,
}

/// Refuses a caller that is not root, before anything is read: every file `maintain` keeps
/// is root's.
pub fn require_root() -> Result<()> {
    if nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    Err(Error::Failed(
        "maintain must run as root: the database, the policy snapshot and the login state it \
         keeps are root's (run it as `sudo mfa-admin maintain`; mfa-maintenance.timer runs it daily)"
            .into(),
    ))
}

pub fn run(ctx: &Ctx) -> Result<()> {
    let db = ctx.config.paths.database.clone();
    let now = mfa_core::now();
    // Store::open's errors name the file.
    let mut store = Store::open(&db).map_err(|e| {
        format!("cannot open the database: {e}. Nothing in it was kept up; see `mfa-admin doctor`")
    });
    let auth_log = match &mut store {
        Ok(s) => auth_log(s, &ctx.actor(), now),
        Err(e) => Task::failed(e.clone()),
    };
    let challenges = challenges(&db, now);
    let login_state = login_state(store.as_mut().ok(), &db, now);
    let snapshot = match &mut store {
        Ok(s) => snapshot_task(s),
        Err(_) => Task::failed("not checked: the database cannot be opened (see auth log)"),
    };
    let named = [
        ("auth log", &auth_log),
        ("challenges", &challenges),
        ("login state", &login_state),
        ("policy snapshot", &snapshot),
    ];
    let failed: Vec<&str> = named
        .iter()
        .filter(|(_, t)| t.status == "failed")
        .map(|(n, _)| *n)
        .collect();
    if ctx.json {
        print_json(&Report {
            ok: failed.is_empty(),
            auth_log: &auth_log,
            challenges: &challenges,
            login_state: &login_state,
            snapshot: &snapshot,
        })?;
    } else {
        for (name, t) in named {
            let mark = if t.status == "failed" { "FAILED: " } else { "" };
            println!("{name}: {mark}{}", visible(&t.detail));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "maintenance failed: {} (see the line of each above)",
        failed.join(", ")
    )))
}

/// Moves the inbox into the database, then deletes what `log_keep_days` no longer keeps
/// ([`Store::purge_auth_log`], recorded in the audit log when it deleted anything).
fn auth_log(store: &mut Store, actor: &str, now: i64) -> Task {
    let (moved, bad, inbox_error) = match store.ingest_auth_log() {
        Ok((moved, bad)) => (moved, bad, None),
        Err(e) => (
            0,
            0,
            Some(format!(
                "the module's log inbox {} was not moved into the database: {e}",
                mfa_core::authlog::path_for(store.path()).display()
            )),
        ),
    };
    let mut inbox = format!("moved {moved} entries from the module's inbox");
    if bad > 0 {
        inbox.push_str(&format!(" ({bad} unreadable lines skipped)"));
    }
    let days = match rules::settings(store.conn()) {
        Ok(s) => s.log_keep_days,
        Err(e) => return Task::failed(format!("{inbox}; cannot read log_keep_days: {e}")),
    };
    let mut counts = json!({
        "moved": moved,
        "unreadable": bad,
        "keep_days": days,
        "deleted": 0,
        "before": Value::Null,
    });
    let purge = if days == 0 {
        "kept every entry (log_keep_days = 0)".to_string()
    } else {
        let cutoff = now - i64::from(days) * 86_400;
        let shown = when::show(cutoff);
        // An audit row only when something went: not one a day for nothing.
        let res = store.purge_auth_log(actor, cutoff, |n| {
            (n > 0)
                .then(|| format!("{n} entries before {shown} (maintain: log_keep_days = {days})"))
        });
        match res {
            Ok(n) => {
                counts["deleted"] = json!(n);
                counts["before"] = json!(cutoff);
                format!("deleted {n} entries before {shown} (log_keep_days = {days})")
            }
            Err(e) => return Task::failed(format!("{inbox}; cannot delete old entries: {e}")),
        }
    };
    match inbox_error {
        Some(e) => Task::new("failed", format!("{e}; {purge}"), counts),
        None if bad > 0 => Task::new("warn", format!("{inbox}; {purge}"), counts),
        None => Task::new("ok", format!("{inbox}; {purge}"), counts),
    }
}

/// Lists at most a few names in a line (the JSON has them all).
fn some(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut t = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if names.len() > SHOWN {
        t.push_str(&format!("; and {} more", names.len() - SHOWN));
    }
    t
}

fn challenges(db: &std::path::Path, now: i64) -> Task {
    let dir = state::challenges_dir(db);
    let s = match state::sweep_challenges(db, now) {
        Ok(s) => s,
        Err(e) => return Task::failed(e.to_string()),
    };
    let mut line = format!(
        "removed {} expired and {} unreadable, kept {} outstanding",
        s.expired, s.unreadable, s.kept
    );
    let mut status = "ok";
    if !s.foreign.is_empty() {
        status = "warn";
        line.push_str(&format!(
            "; left alone {} entries of {} that are not challenge files: {}",
            s.foreign.len(),
            dir.display(),
            some(&s.foreign)
        ));
    }
    if !s.failed.is_empty() {
        status = "failed";
        line.push_str(&format!(
            "; could not sweep {}: {}",
            s.failed.len(),
            some(&s.failed)
        ));
    }
    let counts = serde_json::to_value(&s).unwrap_or(Value::Null);
    Task::new(status, line, counts)
}

fn login_state(store: Option<&mut Store>, db: &std::path::Path, now: i64) -> Task {
    let counters = sends::sweep_counters(db, now);
    let Some(store) = store else {
        return Task::failed(format!(
            "removed {counters} idle send counters; users' files not pruned: the database \
             (which holds send_window) cannot be opened"
        ));
    };
    let settings = match rules::settings(store.conn()) {
        Ok(s) => s,
        Err(e) => return Task::failed(format!("cannot read the settings: {e}")),
    };
    let p = sends::prune_user_states(db, now, &settings);
    let mut line = format!(
        "dropped {} expired entries from {} of {} users' files; removed {counters} idle send counters",
        p.entries, p.rewritten, p.users
    );
    let mut counts = serde_json::to_value(&p).unwrap_or(Value::Null);
    counts["counters"] = json!(counters);
    if p.failed.is_empty() {
        return Task::new("ok", line, counts);
    }
    line.push_str(&format!(
        "; could not prune {}: {}",
        p.failed.len(),
        some(&p.failed)
    ));
    Task::new("failed", line, counts)
}

fn snapshot_task(store: &mut Store) -> Task {
    let shown = snapshot::path_for(store.path()).display().to_string();
    match snapshot::check_and_repair(store) {
        Ok(c) => {
            let counts = json!({ "finding": c.finding, "generation": c.generation });
            if c.finding == Finding::Sound {
                Task::new(
                    "ok",
                    format!("{shown} matches the database (generation {})", c.generation),
                    counts,
                )
            } else {
                // A damage's text names the file already.
                let what = match &c.finding {
                    Finding::Damaged(_) => c.finding.to_string(),
                    other => format!("{shown} {other}"),
                };
                Task::new(
                    "repaired",
                    format!(
                        "{what}; rewritten from the database (generation {})",
                        c.generation
                    ),
                    counts,
                )
            }
        }
        Err(e) => Task::failed(e.to_string()),
    }
}
