//! `group`: groups of users (issue 15) and their bulk actions, and the resolution of the Unix
//! groups that groups follow through NSS ([`sync_unix_groups`], which the maintenance run
//! calls too). Lookups happen here, in mfa-admin, outside any transaction; logins only ever
//! read the members resolved last (mfa_core::store::groups).

use std::collections::BTreeMap;

use mfa_core::policy::Factors;
use mfa_core::spool;
use mfa_core::store::groups::{self as g, GroupChange, Resolved, SyncReport};
use mfa_core::store::{Store, people, rules};
use mfa_core::{Error, Result, invalid, validate};
use serde::Serialize;

use super::Ctx;
use super::rules::log_level_or_default;
use crate::cli::{GroupCmd, GroupOpts};
use crate::output::{json, table, visible, yes_no};
use crate::when;

pub fn run(ctx: &Ctx, cmd: GroupCmd) -> Result<()> {
    match cmd {
        GroupCmd::List => list(ctx),
        GroupCmd::Show { name, members } => show(ctx, &name, members),
        GroupCmd::Add { name, opts } => add_or_set(ctx, &name, &opts, true),
        GroupCmd::Set { name, opts } => add_or_set(ctx, &name, &opts, false),
        GroupCmd::Del { name } => del(ctx, &name),
        GroupCmd::Sync => sync(ctx),
        GroupCmd::Enable { name } => toggle(ctx, &name, true),
        GroupCmd::Disable { name } => toggle(ctx, &name, false),
        GroupCmd::Test { name } => test(ctx, &name),
    }
}

/// `yes`, `no` or `default` (not set) for option `what`.
pub fn yes_no_default(what: &str, text: &str) -> Result<Option<bool>> {
    match text.to_ascii_lowercase().as_str() {
        "yes" => Ok(Some(true)),
        "no" => Ok(Some(false)),
        "default" => Ok(None),
        _ => Err(invalid!(
            "invalid {what} {text:?}: expected yes, no or default"
        )),
    }
}

/// A factor list, or `default` (not set).
pub fn factors_or_default(text: &str) -> Result<Option<Factors>> {
    if text.trim().eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    Factors::parse(text)
        .map(Some)
        .map_err(|_| invalid!("invalid --factors {text:?}: expected all, default, or some of passcode,totp,backup,duo separated by commas (at least one)"))
}

fn change_of(o: &GroupOpts) -> Result<GroupChange> {
    let yn =
        |what: &str, v: &Option<String>| v.as_deref().map(|t| yes_no_default(what, t)).transpose();
    Ok(GroupChange {
        description: o.description.clone(),
        mandatory: yn("--mandatory", &o.mandatory)?,
        exempt: yn("--exempt", &o.exempt)?,
        self_enroll: yn("--self-enroll", &o.self_enroll)?,
        log: o.log.as_deref().map(log_level_or_default).transpose()?,
        factors: o.factors.as_deref().map(factors_or_default).transpose()?,
        unix_group: match o.unix_group.as_deref() {
            None => None,
            Some(n) if n.eq_ignore_ascii_case("none") => Some(None),
            Some(n) => Some(Some(g::unix_group_name(n)?)),
        },
    })
}

fn nothing_to_change(c: &GroupChange) -> bool {
    c.description.is_none()
        && c.mandatory.is_none()
        && c.exempt.is_none()
        && c.self_enroll.is_none()
        && c.log.is_none()
        && c.factors.is_none()
        && c.unix_group.is_none()
}

/// A group's settings in one line (the audit log, `group set`).
fn fields(x: &g::Group) -> String {
    format!(
        "mandatory {}, exempt {}, self-enroll {}, log {}, factors {}, unix group {}",
        opt_yes_no(x.mandatory),
        opt_yes_no(x.exempt),
        opt_yes_no(x.self_enroll),
        x.log.as_deref().unwrap_or("default"),
        x.factors.map_or("default".into(), |f| f.to_string()),
        x.unix_group.as_deref().unwrap_or("none"),
    )
}

fn opt_yes_no(v: Option<bool>) -> String {
    v.map_or("default".into(), yes_no)
}

/// The accounts `getent passwd` lists: (name, primary gid). NSS may enumerate a directory
/// here (slow, or only local accounts where enumeration is off): mfa-admin only, never a login.
type Passwd = std::result::Result<Vec<(String, u32)>, String>;

fn passwd() -> Passwd {
    let out = std::process::Command::new("getent")
        .arg("passwd")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run getent passwd: {e}"))?;
    // getent exits 2 when there is nothing to list; any other failure is a failed lookup.
    if !out.status.success() && out.status.code() != Some(2) {
        return Err(format!("getent passwd failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let gid = f.get(3)?.parse().ok()?;
            Some((f.first().filter(|n| !n.is_empty())?.to_string(), gid))
        })
        .collect())
}

/// The members of a Unix group as NSS gives them: its member list, and the accounts whose
/// primary group it is. `Ok(None)`: NSS does not know the group.
pub fn resolve_unix(name: &str) -> Resolved {
    resolve_with(name, &std::cell::OnceCell::new())
}

/// [`resolve_unix`] with the account list read at most once for several groups.
fn resolve_with(name: &str, accounts: &std::cell::OnceCell<Passwd>) -> Resolved {
    let group = match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => group,
        Ok(None) => return Ok(None),
        Err(e) => {
            return Err(Error::Failed(format!(
                "looking Unix group {name:?} up failed: {e}"
            )));
        }
    };
    let mut names = group.mem;
    let accounts = accounts.get_or_init(passwd).as_ref().map_err(|e| {
        Error::Failed(format!(
            "{e}, while resolving the primary members of {name:?}"
        ))
    })?;
    let gid = group.gid.as_raw();
    names.extend(
        accounts
            .iter()
            .filter(|(_, g)| *g == gid)
            .map(|(n, _)| n.clone()),
    );
    names.sort();
    names.dedup();
    Ok(Some(names))
}

/// Unix groups resolved ahead of a transaction (NSS may be slow: never under the write
/// lock); a name not resolved ahead is resolved when asked.
struct Ahead(BTreeMap<String, std::result::Result<Option<Vec<String>>, String>>);

impl Ahead {
    fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Ahead {
        let accounts = std::cell::OnceCell::new();
        Ahead(
            names
                .into_iter()
                .map(|n| {
                    let r = resolve_with(n, &accounts).map_err(|e| e.to_string());
                    (n.to_string(), r)
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Resolved {
        match self.0.get(name) {
            Some(Ok(v)) => Ok(v.clone()),
            Some(Err(e)) => Err(Error::Failed(e.clone())),
            None => resolve_unix(name),
        }
    }
}

/// Resolves every Unix group a group follows (NSS, before the transaction) and replaces the
/// stored members in one change when any differs (nothing is written, nor audited, when none
/// does). A Unix group NSS does not know keeps its members; see [`SyncReport::warnings`].
/// The maintenance run calls this.
pub fn sync_unix_groups(store: &mut Store, actor: &str) -> Result<SyncReport> {
    let followed = store.read(|tx| g::followed(tx))?;
    if followed.is_empty() {
        return Ok(SyncReport::default());
    }
    let ahead = Ahead::of(followed.iter().map(|(_, u)| u.as_str()));
    let resolve = |u: &str| ahead.get(u);
    // No write (nor audit entry) when the members are unchanged: the daily run, mostly.
    let plan = store.read(|tx| g::plan_unix(tx, resolve))?;
    if !plan.changed() {
        return Ok(plan);
    }
    store.change(actor, "group sync", |tx| {
        let r = g::sync_unix(tx, resolve)?;
        let detail = r.summary();
        Ok((r, detail))
    })
}

/// Warns about users a change left with factors but none they may use (on stderr: the
/// change is made, as asked; the administrator learns who is now refused).
pub(crate) fn warn_stranded(
    store: &mfa_core::store::Store,
    group: Option<&str>,
    user: Option<&str>,
) {
    let Ok(names) = g::stranded(store.conn(), group, user) else {
        return;
    };
    if names.is_empty() {
        return;
    }
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    eprintln!(
        "warning: {} user(s) have factors but none they may use: {}{}; they are refused wherever a second factor is required until they enrol one that is allowed or their factors are allowed (`mfa-admin user show USER` says which factors apply and why)",
        names.len(),
        visible(&shown.join(", ")),
        if names.len() > 10 { ", ..." } else { "" }
    );
}

fn print_warnings(r: &SyncReport) {
    for w in r.warnings() {
        eprintln!("warning: {}", visible(&w));
    }
}

fn sync(ctx: &Ctx) -> Result<()> {
    let mut store = ctx.store()?;
    let r = sync_unix_groups(&mut store, &ctx.actor())?;
    print_warnings(&r);
    if ctx.json {
        return json(&r);
    }
    if r.groups.is_empty() {
        println!("no group follows a Unix group (`mfa-admin group set G --unix-group NAME`)");
    }
    for s in &r.groups {
        if s.resolved {
            println!(
                "group {} (Unix group {}): {} member(s){}{}",
                s.group,
                visible(&s.unix_group),
                s.members,
                list_of(", added", &s.added),
                list_of(", removed", &s.removed)
            );
        } else {
            println!(
                "group {} (Unix group {}): not resolved, {} member(s) kept",
                s.group,
                visible(&s.unix_group),
                s.members
            );
        }
    }
    Ok(())
}

fn list_of(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("{what} {}", visible(&names.join(" ")))
    }
}

#[derive(Serialize)]
struct Changed {
    group: g::Group,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync: Option<g::GroupSync>,
}

fn add_or_set(ctx: &Ctx, name: &str, opts: &GroupOpts, add: bool) -> Result<()> {
    let name = validate::group_name(name)?;
    let change = change_of(opts)?;
    if !add && nothing_to_change(&change) {
        return Err(invalid!(
            "nothing to change: give at least one of --description, --mandatory, --exempt, --self-enroll, --log, --factors, --unix-group"
        ));
    }
    let new_unix = change.unix_group.clone().flatten();
    let ahead = Ahead::of(new_unix.as_deref());
    let mut store = ctx.store()?;
    let action = if add { "group add" } else { "group set" };
    let out = store.change(&ctx.actor(), action, |tx| {
        let before = if add {
            None
        } else {
            Some(g::require(tx, &name)?)
        };
        let group = if add {
            g::add(tx, &name, &change, mfa_core::now())?
        } else {
            g::set(tx, &name, &change)?
        };
        // A new Unix group is resolved in the same change (the old one's members are gone).
        let unix_changed = before.map(|b| b.unix_group) != Some(group.unix_group.clone());
        let sync = match (&group.unix_group, unix_changed) {
            (Some(u), true) => Some(g::sync_group(tx, &name, u, &|n: &str| ahead.get(n))?),
            _ => None,
        };
        let group = g::require(tx, &name)?;
        let mut detail = format!("{name}: {}", fields(&group));
        if let Some(s) = &sync {
            detail.push_str(&format!("; {} Unix member(s)", s.members));
        }
        Ok((Changed { group, sync }, detail))
    })?;
    if let Some(s) = &out.sync {
        print_warnings(&SyncReport {
            groups: vec![s.clone()],
            several: Vec::new(),
        });
    }
    warn_stranded(&store, Some(&name), None);
    if ctx.json {
        return json(&out);
    }
    let verb = if add { "added group" } else { "group" };
    println!("{verb} {name}: {}", fields(&out.group));
    if let Some(s) = out.sync.as_ref().filter(|s| s.resolved) {
        println!(
            "Unix group {}: {} member(s) ({} with an mfa record)",
            visible(&s.unix_group),
            s.members,
            s.members - s.without_record.len()
        );
    }
    Ok(())
}

fn del(ctx: &Ctx, name: &str) -> Result<()> {
    let mut store = ctx.store()?;
    store.change(&ctx.actor(), "group del", |tx| {
        g::delete(tx, name)?;
        Ok(((), name.to_string()))
    })?;
    println!("deleted group {name}");
    Ok(())
}

fn list(ctx: &Ctx) -> Result<()> {
    let groups = g::list(ctx.store()?.conn())?;
    if ctx.json {
        return json(&groups);
    }
    let rows = groups
        .into_iter()
        .map(|x| {
            let mut name = x.name.clone();
            if x.default {
                name.push_str(" (default)");
            }
            vec![
                name,
                x.members.total.to_string(),
                opt_yes_no(x.mandatory),
                opt_yes_no(x.exempt),
                opt_yes_no(x.self_enroll),
                x.log.unwrap_or_else(|| "default".into()),
                x.factors.map_or("default".into(), |f| f.to_string()),
                x.unix_group.map_or("-".into(), |u| visible(&u)),
                visible(&x.description),
            ]
        })
        .collect();
    table(
        &[
            "GROUP",
            "MEMBERS",
            "MANDATORY",
            "EXEMPT",
            "SELF-ENROLL",
            "LOG",
            "FACTORS",
            "UNIX GROUP",
            "DESCRIPTION",
        ],
        rows,
        "no groups (`mfa-admin group add NAME` creates one)",
    );
    Ok(())
}

fn show(ctx: &Ctx, name: &str, with_members: bool) -> Result<()> {
    let store = ctx.store()?;
    let x = g::require(store.conn(), name)?;
    let members = if with_members {
        Some(g::members(store.conn(), name)?)
    } else {
        None
    };
    if ctx.json {
        #[derive(Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            group: &'a g::Group,
            #[serde(skip_serializing_if = "Option::is_none")]
            member_list: Option<&'a Vec<g::Member>>,
        }
        return json(&Shown {
            group: &x,
            member_list: members.as_ref(),
        });
    }
    println!("group:       {}", x.name);
    println!("description: {}", visible(&x.description));
    println!(
        "default:     {}",
        if x.default {
            "yes (setting default_group)"
        } else {
            "no"
        }
    );
    println!("mandatory:   {}", opt_yes_no(x.mandatory));
    println!("exempt:      {}", opt_yes_no(x.exempt));
    println!("self-enroll: {}", opt_yes_no(x.self_enroll));
    println!("log:         {}", x.log.as_deref().unwrap_or("default"));
    println!(
        "factors:     {}",
        x.factors.map_or("default (all)".into(), |f| f.to_string())
    );
    println!(
        "unix group:  {}",
        x.unix_group.as_deref().map_or("none".into(), visible)
    );
    println!("added:       {}", when::show(x.created));
    println!(
        "members:     {} ({} own, {} through the Unix group, {} as the default group)",
        x.members.total, x.members.own, x.members.unix, x.members.default
    );
    if let Some(m) = members {
        let rows = m
            .into_iter()
            .map(|m| vec![m.user, m.from, yes_no(m.enabled), m.contacts.to_string()])
            .collect();
        table(&["USER", "FROM", "ENABLED", "CONTACTS"], rows, "no members");
    }
    Ok(())
}

/// `group enable` / `group disable`: every member the group governs, one audit entry.
fn toggle(ctx: &Ctx, name: &str, enabled: bool) -> Result<()> {
    let action = if enabled {
        "group enable"
    } else {
        "group disable"
    };
    let mut store = ctx.store()?;
    let (changed, total) = store.change(&ctx.actor(), action, |tx| {
        let members = g::members(tx, name)?;
        let mut changed = Vec::new();
        for m in &members {
            if people::set_enabled(tx, &m.user, enabled)? {
                changed.push(m.user.clone());
            }
        }
        let state = if enabled { "enabled" } else { "disabled" };
        let detail = format!(
            "{name}: {} of {} member(s) {state}",
            changed.len(),
            members.len()
        );
        Ok(((changed, members.len()), detail))
    })?;
    if !enabled {
        // As `user disable`: their repeat windows end now.
        for u in &changed {
            mfa_core::grants::revoke(&ctx.config.paths.database, Some(u))?;
        }
    }
    let state = if enabled { "enabled" } else { "disabled" };
    if ctx.json {
        return json(&serde_json::json!({
            "group": name, "members": total, state: changed,
        }));
    }
    println!(
        "group {name}: {} of {total} member(s) {state} ({} already were)",
        changed.len(),
        total - changed.len()
    );
    Ok(())
}

/// `group test`: a test message to each member's first contact.
fn test(ctx: &Ctx, name: &str) -> Result<()> {
    let mut store = ctx.store()?;
    let spool_dir = ctx.config.paths.spool.clone();
    spool::check(&spool_dir)?;
    let host = mfa_core::settings::host_name();
    let (targets, skipped, body, limit) = store.read(|tx| {
        let mut targets = Vec::new();
        let mut skipped = Vec::new();
        for m in g::members(tx, name)? {
            match people::contacts(tx, &m.user)?.into_iter().next() {
                Some(c) => targets.push((m.user, c)),
                None => skipped.push(m.user),
            }
        }
        let body = rules::templates(tx)?
            .into_iter()
            .find(|t| t.name == "test-body")
            .map(|t| t.text)
            .unwrap_or_default();
        Ok((targets, skipped, body, rules::settings(tx)?.send_limit_host))
    })?;
    if limit > 0 && targets.len() > limit as usize {
        return Err(invalid!(
            "group {name} has {} member(s) with a contact, more than send_limit_host ({limit} messages per hour); nothing was queued: raise it for the test (`mfa-admin settings set send_limit_host=N`) or test users one by one (`mfa-admin test USER`)",
            targets.len()
        ));
    }
    let now = mfa_core::now();
    let mut queued = Vec::new();
    for (user, c) in &targets {
        let msg = super::queue::test_message(user, c, &body, &host, now)?;
        spool::enqueue(&spool_dir, &msg)?;
        queued.push(serde_json::json!({ "user": user, "id": msg.id, "to": msg.masked_to }));
    }
    store.change(&ctx.actor(), "group test", |_| {
        Ok((
            (),
            format!(
                "{name}: {} test message(s) queued, {} member(s) without a contact",
                queued.len(),
                skipped.len()
            ),
        ))
    })?;
    if ctx.json {
        return json(&serde_json::json!({ "group": name, "queued": queued, "skipped": skipped }));
    }
    println!("group {name}: queued {} test message(s)", queued.len());
    for q in &queued {
        println!(
            "  {} -> {}",
            q["user"].as_str().unwrap_or_default(),
            visible(q["to"].as_str().unwrap_or_default())
        );
    }
    if !skipped.is_empty() {
        println!(
            "skipped {} member(s) without a contact: {} (`mfa-admin contact add USER --email ADDR`)",
            skipped.len(),
            skipped.join(" ")
        );
    }
    Ok(())
}
