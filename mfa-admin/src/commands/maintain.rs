//! `maintain`: the upkeep that `mfa-maintenance.timer` runs (hourly), doing what `log purge`
//! and `doctor` do by hand, and more. Seven tasks, each reported on one line with counts (the journal
//! keeps them), or together as one JSON object:
//! - `auth log`: moves the module's inbox into the database, then applies `log_keep_days`;
//! - `challenges`: the full sweep of the challenges directory
//!   ([`mfa_core::state::sweep_challenges`]);
//! - `login state`: expired entries out of the users' files and idle destination counters
//!   ([`mfa_core::state::sends`]);
//! - `unix groups`: the members of the Unix groups that groups follow, resolved here (never
//!   inside a login) into the database ([`super::group::sync_unix_groups`]);
//! - `inactive`: each user's last proven second factor moved from their login-state file
//!   into `users.last_success`, then, with `inactive_after` set, every enabled user without
//!   one (nor a record) for that long disabled in one change, and the `disabled` notices;
//! - `notices`: a `fail-mode` notice to the administrator when the auth log gained
//!   `unavailable-*` outcomes since the last run, or when the spool holds a message older
//!   than 15 minutes (the sender looks down): at most one per run, and none again for the
//!   same condition within a day (the times are kept in the database's `meta` table);
//! - `policy snapshot`: checked against the database and rewritten when it does not match
//!   ([`mfa_core::snapshot::check_and_repair`], what `doctor` reports).
//!
//! Every task runs whatever another one did (the challenge sweep needs no database); the exit
//! status is 1 when any of them failed, so that a failed timer run means something an
//! administrator must fix. Each task takes the locks the store already takes (the database's
//! write lock, the snapshot lock, each user's file lock): logins and another `maintain` may
//! run at the same time.

use mfa_core::notice::{self, Disabled, Event};
use mfa_core::snapshot::{self, Finding};
use mfa_core::state::{self, sends};
use mfa_core::store::{Store, activity, people, rules};
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
    unix_groups: &'a Task,
    inactive: &'a Task,
    notices: &'a Task,
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

pub fn run(ctx: &Ctx, allow_mass_disable: bool) -> Result<()> {
    let db = ctx.config.paths.database.clone();
    let now = mfa_core::now();
    // Store::open's errors name the file.
    let mut store = Store::open(&db).map_err(|e| {
        format!("cannot open the database: {e}. Nothing in it was kept up; see `mfa-admin doctor`")
    });
    let auth_log = match &mut store {
        Ok(s) => auth_log(ctx, s, now),
        Err(e) => Task::failed(e.clone()),
    };
    let not_open = || Task::failed("not done: the database cannot be opened (see auth log)");
    let unix_groups = match &mut store {
        Ok(s) => unix_groups(s, &ctx.actor()),
        Err(_) => not_open(),
    };
    let inactive = match &mut store {
        Ok(s) => inactive(
            s,
            &ctx.actor(),
            &ctx.config.paths.spool,
            now,
            allow_mass_disable,
        ),
        Err(_) => not_open(),
    };
    let notices = match &mut store {
        Ok(s) => fail_mode_notices(s, &ctx.config.paths.spool, now),
        Err(_) => not_open(),
    };
    let challenges = challenges(&db, now);
    let login_state = login_state(store.as_mut().ok(), &db, now);
    let snapshot = match &mut store {
        Ok(s) => snapshot_task(s),
        Err(_) => Task::failed("not checked: the database cannot be opened (see auth log)"),
    };
    let named = [
        ("auth log", &auth_log),
        ("unix groups", &unix_groups),
        ("inactive", &inactive),
        ("notices", &notices),
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
            unix_groups: &unix_groups,
            inactive: &inactive,
            notices: &notices,
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
/// ([`Store::purge_auth_log`], recorded in the audit log when it deleted anything); on a
/// fleet host from the central log too (a failure there is a warning: the next run does
/// it).
fn auth_log(ctx: &Ctx, store: &mut Store, now: i64) -> Task {
    let actor = &ctx.actor();
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
        "central_deleted": Value::Null,
    });
    let mut central_error = None;
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
                let mut line =
                    format!("deleted {n} entries before {shown} (log_keep_days = {days})");
                if super::fleet_member::member(&ctx.config, store) {
                    match super::fleet_member::with_client(&ctx.config, |c| {
                        mfa_fleet::logs::purge_central(c, cutoff)
                    }) {
                        Ok(m) => {
                            counts["central_deleted"] = json!(m);
                            line.push_str(&format!(", {m} from the fleet's central log"));
                        }
                        Err(e) => {
                            central_error = Some(format!(
                                "the fleet's central log was not purged ({e}): the next run will"
                            ))
                        }
                    }
                }
                line
            }
            Err(e) => return Task::failed(format!("{inbox}; cannot delete old entries: {e}")),
        }
    };
    match (inbox_error, central_error) {
        (Some(e), _) => Task::new("failed", format!("{e}; {purge}"), counts),
        (None, Some(c)) => Task::new("warn", format!("{inbox}; {purge}; {c}"), counts),
        (None, None) if bad > 0 => Task::new("warn", format!("{inbox}; {purge}"), counts),
        (None, None) => Task::new("ok", format!("{inbox}; {purge}"), counts),
    }
}

/// Resolves the Unix groups that groups follow into their members (an unknown group keeps
/// its members and is a warning).
fn unix_groups(store: &mut Store, actor: &str) -> Task {
    match super::group::sync_unix_groups(store, actor) {
        Ok(r) => {
            let counts = serde_json::to_value(&r).unwrap_or(Value::Null);
            if r.groups.is_empty() {
                return Task::new("ok", "no group follows a Unix group", counts);
            }
            let mut line = format!(
                "{} group(s) follow a Unix group; {}",
                r.groups.len(),
                if r.changed() {
                    r.summary()
                } else {
                    "members unchanged".to_string()
                }
            );
            let warnings = r.warnings();
            if warnings.is_empty() {
                return Task::new("ok", line, counts);
            }
            line.push_str(&format!("; {}", warnings.join("; ")));
            // A followed Unix group that cannot be resolved (gone, renamed, the directory
            // down) keeps deciding with old members until an administrator acts: the run
            // fails, so the timer's unit says so. Other warnings are warnings.
            if r.groups.iter().any(|g| !g.resolved) {
                return Task::new("failed", line, counts);
            }
            Task::new("warn", line, counts)
        }
        Err(e) => Task::failed(format!("cannot resolve the Unix groups: {e}")),
    }
}

/// Up to this many inactive users are disabled in one run whatever their share of the
/// enabled ones; above it, more than half of them at once needs `--allow-mass-disable`.
const MASS_DISABLE: i64 = 10;

/// `inactive_after`: the last successes folded into the database, then the inactive users
/// disabled (one change, each named in the audit log) and told.
fn inactive(
    store: &mut Store,
    actor: &str,
    spool: &std::path::Path,
    now: i64,
    allow_mass_disable: bool,
) -> Task {
    let db = store.path().to_path_buf();
    let folded = match store.write(|tx| activity::fold_last_success(tx, &db)) {
        Ok(n) => n,
        Err(e) => return Task::failed(format!("cannot record the users' last successes: {e}")),
    };
    let settings = match rules::settings(store.conn()) {
        Ok(s) => s,
        Err(e) => return Task::failed(format!("cannot read inactive_after: {e}")),
    };
    let mut counts = json!({ "folded": folded, "inactive_after": settings.inactive_after,
                             "disabled": [], "notices": 0 });
    let head = format!("recorded {folded} users' newer last successes");
    if settings.inactive_after == 0 {
        return Task::new(
            "ok",
            format!("{head}; nobody disabled (inactive_after = 0)"),
            counts,
        );
    }
    let after = settings.inactive_after;
    let cutoff = now - i64::from(after);
    let shown_after = mfa_core::settings::format_duration(after);
    let due = |tx: &mfa_core::store::Tx<'_>| -> Result<Vec<activity::Inactive>> {
        Ok(activity::inactive_since(tx, cutoff)?
            .into_iter()
            .filter(|u| u.enabled && !u.exempt)
            .collect())
    };
    // No change (no audit entry, no new snapshot) when nobody is due: most runs.
    match store.read(|tx| due(tx)) {
        Ok(d) if d.is_empty() => {
            return Task::new(
                "ok",
                format!("{head}; no enabled user inactive for {shown_after}"),
                counts,
            );
        }
        Ok(d) if !allow_mass_disable => {
            // More than half of the enabled users at once is more likely a clock that jumped
            // forward than an organisation gone idle: nobody is disabled on it.
            let enabled: i64 = store
                .conn()
                .query_row("SELECT count(*) FROM users WHERE enabled = 1", [], |r| {
                    r.get(0)
                })
                .unwrap_or(0);
            let n = i64::try_from(d.len()).unwrap_or(i64::MAX);
            if n > MASS_DISABLE && n * 2 > enabled {
                counts["would_disable"] = json!(n);
                return Task::new(
                    "failed",
                    format!(
                        "{head}; nobody disabled: {n} of {enabled} enabled users are inactive for {shown_after}, more than half at once (a clock that jumped forward? successes not recorded?); check the time and `mfa-admin user list --inactive {shown_after}`, then run `mfa-admin maintain --allow-mass-disable` to disable them"
                    ),
                    counts,
                );
            }
        }
        Ok(_) => {}
        Err(e) => return Task::failed(format!("{head}; cannot list the inactive users: {e}")),
    }
    // Chosen again and disabled inside the one change: a user who logged in meanwhile
    // (folded by another run) is not disabled on an old reading.
    let res = store.change(actor, "inactive disable", |tx| {
        let due = due(tx)?;
        let names: Vec<String> = due.iter().map(|u| u.name.clone()).collect();
        activity::disable(tx, &names)?;
        let each: Vec<String> = due
            .iter()
            .map(|u| match u.last_success {
                Some(t) => format!("{} (last success {})", u.name, when::show(t)),
                None => format!("{} (never, created {})", u.name, when::show(u.created)),
            })
            .collect();
        let detail = format!(
            "{} inactive user(s) (maintain: inactive_after = {shown_after}): {}",
            due.len(),
            each.join(", ")
        );
        Ok((due, detail))
    });
    let due = match res {
        Ok(d) => d,
        Err(e) => return Task::failed(format!("{head}; cannot disable the inactive users: {e}")),
    };
    let names: Vec<String> = due.iter().map(|u| u.name.clone()).collect();
    counts["disabled"] = json!(names);
    if due.is_empty() {
        return Task::new(
            "ok",
            format!("{head}; no enabled user inactive for {shown_after}"),
            counts,
        );
    }
    let (mut queued, mut errors) = (0, Vec::new());
    for u in &due {
        let contacts = people::contacts(store.conn(), &u.name).unwrap_or_default();
        let event = Event::Disabled {
            user: u.name.clone(),
            why: Disabled::Inactive {
                since: u.since,
                after,
            },
        };
        let sent = notice::send(spool, &settings, &event, &contacts, now);
        queued += sent.queued;
        errors.extend(sent.errors);
    }
    counts["notices"] = json!(queued);
    let line = format!(
        "{head}; disabled {} user(s) inactive for {shown_after}: {}; queued {queued} notice(s)",
        names.len(),
        some(&names)
    );
    if errors.is_empty() {
        return Task::new("ok", line, counts);
    }
    counts["notice_errors"] = json!(errors);
    Task::new(
        "warn",
        format!(
            "{line}; {} notice(s) not queued: {}",
            errors.len(),
            some(&errors)
        ),
        counts,
    )
}

/// A message older than this in the spool's `new/` means the sender is not sending.
const SPOOL_STALE: i64 = 15 * 60;
/// The same fail-mode condition is not told again within this time.
const FAIL_NOTICE_QUIET: i64 = 86_400;

fn meta_time(store: &Store, key: &str) -> Result<Option<i64>> {
    activity::marker(store.conn(), key)
}

/// The oldest message waiting in the spool's `new/`, by its file's time.
fn oldest_waiting(spool: &std::path::Path) -> Option<i64> {
    let names = mfa_core::spool::pending(spool).ok()?;
    names
        .iter()
        .filter_map(|n| {
            let m = std::fs::symlink_metadata(spool.join("new").join(n)).ok()?;
            let t = m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            i64::try_from(t.as_secs()).ok()
        })
        .min()
}

/// The `fail-mode` notice (see the module doc).
fn fail_mode_notices(store: &mut Store, spool: &std::path::Path, now: i64) -> Task {
    const SEEN: &str = "fail_notice_seen";
    const UNAVAILABLE: &str = "fail_notice_unavailable";
    const STALE: &str = "fail_notice_spool";
    let got = (|| -> Result<(Option<i64>, Option<i64>, Option<i64>)> {
        Ok((
            meta_time(store, SEEN)?,
            meta_time(store, UNAVAILABLE)?,
            meta_time(store, STALE)?,
        ))
    })();
    let (seen, last_unavailable, last_stale) = match got {
        Ok(t) => t,
        Err(e) => return Task::failed(format!("cannot read the notice markers: {e}")),
    };
    let (unavailable, newest) = match activity::unavailable_since(store.conn(), seen, now) {
        Ok(n) => n,
        Err(e) => return Task::failed(format!("cannot read the auth log: {e}")),
    };
    let stale = oldest_waiting(spool).filter(|t| *t < now - SPOOL_STALE);
    let quiet = |last: Option<i64>| last.is_some_and(|t| t <= now && now - t < FAIL_NOTICE_QUIET);
    let mut parts = Vec::new();
    let mut keys = Vec::new();
    if unavailable > 0 && !quiet(last_unavailable) {
        parts.push(format!(
            "{unavailable} login(s) since the last run could not be decided (outcome unavailable-*: the store or the login state unreadable; `mfa-admin log show --outcome unavailable-deny`)"
        ));
        keys.push(UNAVAILABLE);
    }
    if let Some(t) = stale
        && !quiet(last_stale)
    {
        parts.push(format!(
            "a message has waited in the spool since {} (the sender looks down: `systemctl status mfa-sender`, `mfa-admin queue list`)",
            when::show(t)
        ));
        keys.push(STALE);
    }
    let settings = match rules::settings(store.conn()) {
        Ok(s) => s,
        Err(e) => return Task::failed(format!("cannot read the settings: {e}")),
    };
    let mut counts = json!({ "unavailable": unavailable, "spool_waiting_since": stale,
                             "conditions": parts.len(), "queued": 0 });
    let mut status = "ok";
    let mut line = match (unavailable, stale) {
        (0, None) => "no fail-mode event".to_string(),
        _ => format!(
            "{unavailable} unavailable outcome(s) since the last run{}",
            if stale.is_some() {
                "; the spool has a message waiting over 15 minutes"
            } else {
                ""
            }
        ),
    };
    if !parts.is_empty() && settings.notify_admin_of("fail-mode") {
        let event = Event::FailMode {
            detail: parts.join("; "),
        };
        let sent = notice::send(spool, &settings, &event, &[], now);
        counts["queued"] = json!(sent.queued);
        if sent.errors.is_empty() {
            line.push_str("; told the administrator");
        } else {
            status = "warn";
            line.push_str(&format!("; {}", sent.errors.join("; ")));
            keys.clear();
        }
    } else if !parts.is_empty() {
        line.push_str("; no notice (notify_admin does not name fail-mode, or no admin_email)");
    } else if unavailable > 0 || stale.is_some() {
        line.push_str("; told already within a day");
    }
    let marked = store.write(|tx| {
        let set = |k: &str, v: i64| activity::set_marker(tx, k, v);
        set(SEEN, newest)?;
        if settings.notify_admin_of("fail-mode") {
            for k in &keys {
                set(k, now)?;
            }
        }
        Ok(())
    });
    if let Err(e) = marked {
        return Task::failed(format!("{line}; cannot keep the notice markers: {e}"));
    }
    // A sender that does not send needs an administrator now, and its own notice waits in
    // the spool it does not drain: the run fails (the timer's unit shows it, the journal
    // keeps the line) for as long as the spool is stale.
    if let Some(t) = stale {
        status = "failed";
        line.push_str(&format!(
            "; the sender is not sending (a message has waited since {}): check `systemctl status mfa-sender` and `mfa-admin sender status` (a notice about it goes out only once the sender sends again)",
            when::show(t)
        ));
    }
    Task::new(status, line, counts)
}

/// `user list --inactive DURATION`: the users without a proven second factor (nor a newer
/// record) for that long, as the maintenance run counts them, the login-state files'
/// newer successes included (read here, not written). With `--group`, its members only.
pub fn list_inactive(ctx: &Ctx, group: Option<&str>, duration: &str) -> Result<()> {
    let secs = mfa_core::settings::parse_duration(duration)
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            mfa_core::invalid!(
                "invalid duration {duration:?} for --inactive: expected a time such as 30d, 12h or 90d"
            )
        })?;
    let mut store = ctx.store()?;
    let db = ctx.config.paths.database.clone();
    let now = mfa_core::now();
    let cutoff = now - i64::from(secs);
    let members = match group {
        Some(g) => Some(store.read(|tx| mfa_core::store::groups::member_names(tx, g))?),
        None => None,
    };
    let mut users = store.read(|tx| activity::inactive_since(tx, cutoff))?;
    // A success the maintenance run has not folded in yet keeps the user active.
    users.retain(|u| state::last_success(&db, &u.name).is_none_or(|t| t < cutoff));
    if let Some(m) = &members {
        users.retain(|u| m.contains(&u.name));
    }
    if ctx.json {
        return print_json(&users);
    }
    let rows = users
        .into_iter()
        .map(|u| {
            let mut flags = Vec::new();
            if !u.enabled {
                flags.push("disabled");
            }
            if u.exempt {
                flags.push("exempt");
            }
            vec![
                u.name,
                u.last_success.map_or("never".into(), when::show),
                when::show(u.created),
                flags.join(","),
            ]
        })
        .collect();
    crate::output::table(
        &["USER", "LAST SUCCESS", "CREATED", "FLAGS"],
        rows,
        &format!(
            "(no user inactive for {})",
            mfa_core::settings::format_duration(secs)
        ),
    );
    Ok(())
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
