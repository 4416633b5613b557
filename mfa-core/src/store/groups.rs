//! Groups of users (issue 15): a group carries the overrides a user can have (mandatory,
//! exempt, self-enroll, log level, the factors allowed); a user's own setting beats their
//! group's, the group's beats the global setting. A user's group is their own
//! (`users.group_name`), else the first group by name that follows a Unix group they are in
//! (`unix_members`), else the `default_group` setting: the view `user_policy` is the one
//! definition, which the policy snapshot, the module's database fallback and `user show`
//! ([`provenance`]) all read.
//!
//! Unix groups are resolved by mfa-admin (`group sync`, `group add/set --unix-group`, the
//! daily `mfa-admin maintain`), never inside a login: a login reads the resolved members from
//! the snapshot, so a hung directory (LDAP, sssd) cannot hang a login. The resolver is a
//! parameter of [`sync_unix`], so this module itself never asks NSS.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::policy::Factors;
use crate::store::people::{factors_of, factors_text, require_user};
use crate::{Error, Result, invalid};

/// A group as `group list` and `group show` print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub name: String,
    pub description: String,
    /// `None`: not set here (the global behaviour: not mandatory).
    pub mandatory: Option<bool>,
    /// `None`: not set here (not exempt).
    pub exempt: Option<bool>,
    /// `None`: the global setting `self_enroll`.
    pub self_enroll: Option<bool>,
    /// `None`: the global setting `log_level`.
    pub log: Option<String>,
    /// `None`: every factor.
    #[serde(serialize_with = "factors_text")]
    pub factors: Option<Factors>,
    /// The Unix group whose members are members of this one.
    pub unix_group: Option<String>,
    pub created: i64,
    /// Whether the setting `default_group` names it.
    pub default: bool,
    /// Users it governs, by why.
    pub members: Members,
}

/// How many users a group governs, by why it is theirs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Members {
    /// Their own group (`user set --group`).
    pub own: i64,
    /// Through the Unix group the group follows.
    pub unix: i64,
    /// Through the setting `default_group`.
    pub default: i64,
    pub total: i64,
}

/// A change to a group; `None` leaves a field as it is, `Some(None)` returns it to "not set".
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    pub description: Option<String>,
    pub mandatory: Option<Option<bool>>,
    pub exempt: Option<Option<bool>>,
    pub self_enroll: Option<Option<bool>>,
    pub log: Option<Option<String>>,
    pub factors: Option<Option<Factors>>,
    pub unix_group: Option<Option<String>>,
}

/// A user a group governs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user: String,
    /// `user` (their own group), `unix` or `default`.
    pub from: String,
    pub enabled: bool,
    pub contacts: i64,
}

/// The longest group description.
pub const MAX_DESCRIPTION: usize = 200;

fn no_group(name: &str) -> Error {
    Error::NotFound(format!(
        "unknown group {name:?}: `mfa-admin group list` shows the groups, `mfa-admin group add {name}` creates it"
    ))
}

/// Checks a Unix group name as `groupadd` and directories (`domain users@corp`) accept it:
/// 1 to 256 printable characters without `:`, `,` or control characters, not starting with
/// `-`. (The name is only ever looked up through NSS, never run or written into a file.)
pub fn unix_group_name(text: &str) -> Result<String> {
    let ok = !text.is_empty()
        && text.len() <= 256
        && !text.starts_with('-')
        && !text.eq_ignore_ascii_case("none")
        && text
            .chars()
            .all(|c| !c.is_control() && c != ':' && c != ',' && c != '\n');
    if ok {
        Ok(text.to_string())
    } else {
        Err(invalid!(
            "invalid Unix group name {:?}: expected 1 to 256 characters without ':', ',' or control characters, not starting with '-' (or none, to follow no Unix group)",
            text.escape_debug().to_string()
        ))
    }
}

/// The group `default_group` names, if any.
pub fn default_group(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM settings WHERE key = 'default_group' AND value <> 'none'",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        name: r.get(0)?,
        description: r.get(1)?,
        mandatory: r.get(2)?,
        exempt: r.get(3)?,
        self_enroll: r.get(4)?,
        log: r.get(5)?,
        factors: factors_of(r.get(6)?)?,
        unix_group: r.get(7)?,
        created: r.get(8)?,
        default: false,
        members: Members::default(),
    })
}

const SELECT: &str = "SELECT name, description, mandatory, exempt, self_enroll, log_level, factors,
                             unix_group, created FROM groups";

/// Member counts of every group (or one), by why.
fn member_counts(conn: &Connection, only: Option<&str>) -> Result<BTreeMap<String, Members>> {
    let mut stmt = conn.prepare(
        "SELECT grp, grp_from, count(*) FROM user_policy
          WHERE grp IS NOT NULL AND (?1 IS NULL OR grp = ?1) GROUP BY grp, grp_from",
    )?;
    let mut out: BTreeMap<String, Members> = BTreeMap::new();
    let rows = stmt.query_map([only], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (g, from, n) = row?;
        let m = out.entry(g).or_default();
        match from.as_str() {
            "user" => m.own += n,
            "unix" => m.unix += n,
            _ => m.default += n,
        }
        m.total += n;
    }
    Ok(out)
}

/// Every group, by name, with its member counts.
pub fn list(conn: &Connection) -> Result<Vec<Group>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY name"))?;
    let mut groups: Vec<Group> = stmt.query_map([], group_row)?.collect::<Result<_, _>>()?;
    let counts = member_counts(conn, None)?;
    let default = default_group(conn)?;
    for g in &mut groups {
        g.members = counts.get(&g.name).copied().unwrap_or_default();
        g.default = default.as_deref() == Some(g.name.as_str());
    }
    Ok(groups)
}

/// One group; `None` if there is none of that name.
pub fn get(conn: &Connection, name: &str) -> Result<Option<Group>> {
    let Some(mut g) = conn
        .query_row(&format!("{SELECT} WHERE name = ?1"), [name], group_row)
        .optional()?
    else {
        return Ok(None);
    };
    g.members = member_counts(conn, Some(name))?
        .remove(name)
        .unwrap_or_default();
    g.default = default_group(conn)?.as_deref() == Some(name);
    Ok(Some(g))
}

/// One group, or an error naming how to see the groups.
pub fn require(conn: &Connection, name: &str) -> Result<Group> {
    crate::validate::group_name(name)?;
    get(conn, name)?.ok_or_else(|| no_group(name))
}

/// Creates a group with the settings of `change` (unset ones stay "not set").
pub fn add(conn: &Connection, name: &str, change: &GroupChange, now: i64) -> Result<Group> {
    let name = crate::validate::group_name(name)?;
    // Names that differ only in case ("Ops" mandatory, "ops" exempt) are one typo apart:
    // `user set alice --group ops` must not silently pick the other one.
    let alike: Option<String> = conn
        .query_row(
            "SELECT name FROM groups WHERE name = ?1 COLLATE NOCASE AND name <> ?1",
            [&name],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = alike {
        return Err(Error::Conflict(format!(
            "group {other:?} exists, and group names that differ only in case are refused (one typo would pick the other); choose another name, or `mfa-admin group set {other}`"
        )));
    }
    let n = conn.execute(
        "INSERT INTO groups (name, created) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![name, now],
    )?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "group {name:?} already exists; `mfa-admin group show {name}` shows it, `mfa-admin group set {name}` changes it"
        )));
    }
    set(conn, &name, change)
}

/// Changes a group. Mandatory and exempt both yes is refused; a changed or cleared Unix
/// group drops the members resolved for the old one (the caller resolves the new one in the
/// same transaction: [`sync_group`]).
pub fn set(conn: &Connection, name: &str, change: &GroupChange) -> Result<Group> {
    let mut g = require(conn, name)?;
    if let Some(d) = &change.description {
        g.description = crate::validate::label("description", d, MAX_DESCRIPTION)?;
    }
    if let Some(v) = change.mandatory {
        g.mandatory = v;
    }
    if let Some(v) = change.exempt {
        g.exempt = v;
    }
    if let Some(v) = change.self_enroll {
        g.self_enroll = v;
    }
    if let Some(v) = &change.log {
        if let Some(l) = v {
            crate::settings::LogLevel::parse(l)?;
        }
        g.log = v.clone();
    }
    if let Some(v) = change.factors {
        g.factors = v;
    }
    let old_unix = g.unix_group.clone();
    if let Some(v) = &change.unix_group {
        g.unix_group = v.as_deref().map(unix_group_name).transpose()?;
    }
    if g.mandatory == Some(true) && g.exempt == Some(true) {
        return Err(Error::Conflict(format!(
            "group {name:?} cannot be both mandatory and exempt; set the other to no or default in the same command (e.g. --exempt default --mandatory yes)"
        )));
    }
    if let Some(u) = &g.unix_group {
        let other: Option<String> = conn
            .query_row(
                "SELECT name FROM groups WHERE unix_group = ?1 AND name <> ?2",
                params![u, name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = other {
            return Err(Error::Conflict(format!(
                "group {other:?} already follows Unix group {u:?}; a Unix group is followed by one group at most (`mfa-admin group set {other} --unix-group none` frees it)"
            )));
        }
    }
    conn.execute(
        "UPDATE groups SET description = ?2, mandatory = ?3, exempt = ?4, self_enroll = ?5,
                log_level = ?6, factors = ?7, unix_group = ?8 WHERE name = ?1",
        params![
            name,
            g.description,
            g.mandatory,
            g.exempt,
            g.self_enroll,
            g.log,
            g.factors.map(Factors::bits),
            g.unix_group
        ],
    )?;
    if old_unix != g.unix_group {
        conn.execute("DELETE FROM unix_members WHERE grp = ?1", [name])?;
    }
    require(conn, name)
}

/// Deletes a group nobody depends on. Refused (no `--force`: membership decides who must
/// prove a second factor) while users name it as their own group, while it is the default
/// group, or while it follows a Unix group with resolved members; each message says how to
/// end that first.
pub fn delete(conn: &Connection, name: &str) -> Result<()> {
    let g = require(conn, name)?;
    let own: i64 = conn.query_row(
        "SELECT count(*) FROM users WHERE group_name = ?1",
        [name],
        |r| r.get(0),
    )?;
    if own > 0 {
        return Err(Error::Conflict(format!(
            "group {name:?} is the own group of {own} user(s) (`mfa-admin user list --group {name}` lists them); move each first with `mfa-admin user set USER --group OTHER` or `--group none`"
        )));
    }
    if g.default {
        return Err(Error::Conflict(format!(
            "group {name:?} is the default group; first name another or none: `mfa-admin settings set default_group=OTHER` or `default_group=none`"
        )));
    }
    let unix: i64 = conn.query_row(
        "SELECT count(*) FROM unix_members WHERE grp = ?1",
        [name],
        |r| r.get(0),
    )?;
    if unix > 0 {
        return Err(Error::Conflict(format!(
            "group {name:?} follows Unix group {:?} with {unix} resolved member(s); stop following it first with `mfa-admin group set {name} --unix-group none`",
            g.unix_group.as_deref().unwrap_or("")
        )));
    }
    conn.execute("DELETE FROM groups WHERE name = ?1", [name])?;
    Ok(())
}

/// Sets (`Some`) or clears (`None`) a user's own group; returns false when it already was so.
pub fn set_user_group(conn: &Connection, user: &str, group: Option<&str>) -> Result<bool> {
    require_user(conn, user)?;
    if let Some(g) = group {
        require(conn, g)?;
    }
    let n = conn.execute(
        "UPDATE users SET group_name = ?2 WHERE name = ?1 AND group_name IS NOT ?2",
        params![user, group],
    )?;
    Ok(n > 0)
}

/// The users a group governs (through `user_policy`: own, followed Unix group, default).
pub fn members(conn: &Connection, group: &str) -> Result<Vec<Member>> {
    require(conn, group)?;
    let mut stmt = conn.prepare(
        "SELECT p.user, p.grp_from, u.enabled,
                (SELECT count(*) FROM contacts c WHERE c.user = p.user)
           FROM user_policy p JOIN users u ON u.name = p.user
          WHERE p.grp = ?1 ORDER BY p.user",
    )?;
    let rows = stmt.query_map([group], |r| {
        Ok(Member {
            user: r.get(0)?,
            from: r.get(1)?,
            enabled: r.get(2)?,
            contacts: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The users of `user list --group G`: the names the group governs.
pub fn member_names(conn: &Connection, group: &str) -> Result<BTreeSet<String>> {
    Ok(members(conn, group)?.into_iter().map(|m| m.user).collect())
}

/// What a sync did (or would do) for one group that follows a Unix group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupSync {
    pub group: String,
    pub unix_group: String,
    /// `false`: the Unix group is unknown (or could not be looked up); its old rows stay.
    pub resolved: bool,
    /// Why it was not resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Members after the sync.
    pub members: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Members without an mfa record: not governed until they have one.
    pub without_record: Vec<String>,
    /// Names NSS gave that mfa cannot store (skipped).
    pub invalid: Vec<String>,
}

/// What [`sync_unix`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub groups: Vec<GroupSync>,
    /// Users without a group of their own who are in more than one followed Unix group:
    /// (user, the groups by name; the first governs them).
    pub several: Vec<(String, Vec<String>)>,
}

impl SyncReport {
    /// Whether any membership changed.
    pub fn changed(&self) -> bool {
        self.groups
            .iter()
            .any(|g| !g.added.is_empty() || !g.removed.is_empty())
    }

    /// The warnings an administrator must see: unknown Unix groups (membership kept),
    /// members without a record, names that cannot be stored.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.several.is_empty() {
            let shown: Vec<String> = self
                .several
                .iter()
                .take(10)
                .map(|(u, gs)| format!("{u} ({})", gs.join(" over ")))
                .collect();
            w.push(format!(
                "{} user(s) are in more than one followed Unix group; the first group by name governs each (an exempt group can beat a mandatory one): {}{}; give them a group of their own with `mfa-admin user set USER --group G`",
                self.several.len(),
                shown.join(", "),
                if self.several.len() > 10 { ", ..." } else { "" }
            ));
        }
        for g in &self.groups {
            if !g.resolved {
                w.push(format!(
                    "Unix group {:?} (followed by group {}) could not be resolved ({}); its {} member(s) resolved before are kept: fix the name with `mfa-admin group set {} --unix-group NAME` or stop following it with `--unix-group none`",
                    g.unix_group,
                    g.group,
                    g.error.as_deref().unwrap_or("no such group"),
                    g.members,
                    g.group
                ));
            }
            if !g.without_record.is_empty() {
                w.push(format!(
                    "{} member(s) of Unix group {:?} have no mfa record and are not governed by group {} until they have one: {} (`mfa-admin user import --unix-group {}` creates them)",
                    g.without_record.len(),
                    g.unix_group,
                    g.group,
                    g.without_record.join(", "),
                    g.unix_group
                ));
            }
            if !g.invalid.is_empty() {
                w.push(format!(
                    "skipped {} member name(s) of Unix group {:?} that are not valid user names: {}",
                    g.invalid.len(),
                    g.unix_group,
                    g.invalid
                        .iter()
                        .map(|n| format!("{:?}", n.escape_debug().to_string()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        w
    }

    /// One line for the audit log.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                if g.resolved {
                    format!(
                        "{} ({}): {} member(s), +{} -{}",
                        g.group,
                        g.unix_group,
                        g.members,
                        g.added.len(),
                        g.removed.len()
                    )
                } else {
                    format!(
                        "{} ({}): unresolved, kept {}",
                        g.group, g.unix_group, g.members
                    )
                }
            })
            .collect();
        if parts.is_empty() {
            "no group follows a Unix group".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The groups that follow a Unix group: (group, Unix group), by group name.
pub fn followed(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, unix_group FROM groups WHERE unix_group IS NOT NULL ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Users who hold factors but none of the factors they may use (their own override, else
/// their group's): they are refused wherever a second factor is required ("no factor this
/// service's method accepts") until they enrol an allowed one or the rule changes. Limited to
/// the effective members of `group`, or to `user`, when given; by name.
pub fn stranded(conn: &Connection, group: Option<&str>, user: Option<&str>) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT user FROM (
           SELECT p.user, p.factors AS f,
                  EXISTS (SELECT 1 FROM contacts c WHERE c.user = p.user) AS contact,
                  EXISTS (SELECT 1 FROM totp t WHERE t.user = p.user) AS key,
                  EXISTS (SELECT 1 FROM backup_codes b WHERE b.user = p.user) AS codes,
                  u.duo_user IS NOT NULL AS duo
             FROM user_policy p JOIN users u ON u.name = p.user
            WHERE (?1 IS NULL OR p.grp = ?1) AND (?2 IS NULL OR p.user = ?2))
          WHERE (contact OR key OR codes OR duo)
            AND NOT ((contact AND f & 1) OR (key AND f & 2) OR (codes AND f & 4) OR (duo AND f & 8))
          ORDER BY user",
    )?;
    let rows = stmt.query_map(rusqlite::params![group, user], |r| r.get(0))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// How a Unix group resolves: its member names, `Ok(None)` for an unknown group, `Err` for a
/// lookup that failed (both keep the rows resolved before).
pub type Resolved = Result<Option<Vec<String>>>;

/// Replaces the resolved members of every group that follows a Unix group; run it in one
/// transaction ([`crate::store::Store::change`]). A Unix group that `resolve` does not know
/// (or cannot look up) keeps its old rows and is reported, never emptied: a directory
/// outage must not silently make mandatory users optional.
pub fn sync_unix(conn: &Connection, resolve: impl Fn(&str) -> Resolved) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    for (group, unix) in followed(conn)? {
        report
            .groups
            .push(sync_group(conn, &group, &unix, &resolve)?);
    }
    report.several = in_several(conn)?;
    Ok(report)
}

/// Users with a record and no group of their own who are in more than one followed Unix
/// group, with those groups by name (the first governs: `user_policy`).
fn in_several(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let mut stmt = conn.prepare(
        "SELECT m.user, group_concat(m.grp, char(10)) FROM
           (SELECT user, grp FROM unix_members ORDER BY user, grp) m
           JOIN users u ON u.name = m.user AND u.group_name IS NULL
          GROUP BY m.user HAVING count(*) > 1 ORDER BY m.user",
    )?;
    let rows = stmt.query_map([], |r| {
        let groups: String = r.get(1)?;
        Ok((r.get::<_, String>(0)?, {
            let mut g: Vec<String> = groups.split('\n').map(String::from).collect();
            g.sort();
            g
        }))
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// What [`sync_unix`] would do, without writing: whether a change is needed at all (the
/// daily run writes, and audits, only when members differ).
pub fn plan_unix(conn: &Connection, resolve: impl Fn(&str) -> Resolved) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    for (group, unix) in followed(conn)? {
        report
            .groups
            .push(resolve_group(conn, &group, &unix, &resolve, false)?);
    }
    // As resolved before (a plan writes nothing).
    report.several = in_several(conn)?;
    Ok(report)
}

/// [`sync_unix`] for one group.
pub fn sync_group(
    conn: &Connection,
    group: &str,
    unix: &str,
    resolve: &impl Fn(&str) -> Resolved,
) -> Result<GroupSync> {
    resolve_group(conn, group, unix, resolve, true)
}

fn resolve_group(
    conn: &Connection,
    group: &str,
    unix: &str,
    resolve: &impl Fn(&str) -> Resolved,
    write: bool,
) -> Result<GroupSync> {
    let old: BTreeSet<String> = conn
        .prepare("SELECT user FROM unix_members WHERE grp = ?1")?
        .query_map([group], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = GroupSync {
        group: group.to_string(),
        unix_group: unix.to_string(),
        ..GroupSync::default()
    };
    let names = match resolve(unix) {
        Ok(Some(names)) => names,
        Ok(None) => {
            out.members = old.len();
            return Ok(out);
        }
        Err(e) => {
            out.error = Some(e.to_string());
            out.members = old.len();
            return Ok(out);
        }
    };
    out.resolved = true;
    let mut new = BTreeSet::new();
    for n in names {
        if crate::validate::user_name(&n).is_ok() {
            new.insert(n);
        } else if !out.invalid.contains(&n) {
            out.invalid.push(n);
        }
    }
    out.added = new.difference(&old).cloned().collect();
    out.removed = old.difference(&new).cloned().collect();
    for u in out.removed.iter().filter(|_| write) {
        conn.execute(
            "DELETE FROM unix_members WHERE user = ?1 AND grp = ?2",
            params![u, group],
        )?;
    }
    for u in out.added.iter().filter(|_| write) {
        conn.execute(
            "INSERT INTO unix_members (user, grp) VALUES (?1, ?2)",
            params![u, group],
        )?;
    }
    let mut known = conn.prepare_cached("SELECT 1 FROM users WHERE name = ?1")?;
    for u in &new {
        if !known.exists([u])? {
            out.without_record.push(u.clone());
        }
    }
    out.members = new.len();
    Ok(out)
}

/// Where an effective value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// `user` (the user's own override), `group` (their group's), `default` (the global
    /// setting, or the built-in behaviour when there is no setting).
    pub from: &'static str,
    /// The group, when `from` is `group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One effective setting and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective<T> {
    pub value: T,
    #[serde(flatten)]
    pub source: Source,
}

/// Why a user has their group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupOf {
    /// `None`: no group.
    pub value: Option<String>,
    /// `user` (their own), `unix` (a followed Unix group), `default` (setting
    /// `default_group`), `none`.
    pub from: &'static str,
    /// With `unix`: the Unix group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_group: Option<String>,
    /// Other groups whose followed Unix group the user is in, which do not govern them
    /// (their own group, or a group first by name, wins).
    pub also_in: Vec<String>,
}

/// A user's effective settings with their provenance (`user show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub group: GroupOf,
    pub mandatory: Effective<bool>,
    pub exempt: Effective<bool>,
    pub self_enroll: Effective<bool>,
    pub log: Effective<String>,
    pub factors: Effective<String>,
}

/// A user's effective settings (the values of `user_policy`, the global settings where it
/// leaves them open) and where each comes from; `None` for an unknown user.
pub fn provenance(conn: &Connection, user: &str) -> Result<Option<Provenance>> {
    type Row = (
        Option<String>,
        Option<String>,
        bool,
        bool,
        Option<bool>,
        Option<String>,
        i64,
    );
    let row: Option<Row> = conn
        .query_row(
            "SELECT grp, grp_from, mandatory, exempt, self_enroll, log_level, factors
               FROM user_policy WHERE user = ?1",
            [user],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .optional()?;
    let Some((grp, grp_from, mandatory, exempt, self_enroll, log, factors)) = row else {
        return Ok(None);
    };
    let o = crate::store::people::override_of(conn, user)?;
    let g = match &grp {
        Some(name) => get(conn, name)?,
        None => None,
    };
    let settings = crate::store::rules::settings(conn)?;
    let user_src = || Source {
        from: "user",
        group: None,
    };
    let group_src = || Source {
        from: "group",
        group: grp.clone(),
    };
    let default_src = || Source {
        from: "default",
        group: None,
    };
    // Where a plain value (self-enroll, log, factors) comes from: the user's, the group's,
    // else the global setting.
    let pick = |own: bool, group: bool| {
        if own {
            user_src()
        } else if group {
            group_src()
        } else {
            default_src()
        }
    };
    let (om, oe) = o.as_ref().map_or((None, None), |o| (o.mandatory, o.exempt));
    let (gm, ge) = g.as_ref().map_or((None, None), |g| (g.mandatory, g.exempt));
    // As user_policy resolves them: a level that sets one (or makes the user the other)
    // decides both.
    let level = |own: Option<bool>, other: Option<bool>| own.is_some() || other == Some(true);
    let both = |own_u, other_u, own_g, other_g| pick(level(own_u, other_u), level(own_g, other_g));
    let factors = Factors::from_bits(factors).ok_or_else(|| {
        Error::Database(format!(
            "user {user:?}: stored factors {factors} are not within 1..15"
        ))
    })?;
    let unix_group = g.as_ref().and_then(|g| g.unix_group.clone());
    let also_in: Vec<String> = conn
        .prepare(
            "SELECT m.grp FROM unix_members m WHERE m.user = ?1 AND m.grp IS NOT ?2 ORDER BY m.grp",
        )?
        .query_map(params![user, grp], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(Provenance {
        group: GroupOf {
            from: match grp_from.as_deref() {
                Some("user") => "user",
                Some("unix") => "unix",
                Some(_) => "default",
                None => "none",
            },
            unix_group: if grp_from.as_deref() == Some("unix") {
                unix_group
            } else {
                None
            },
            value: grp.clone(),
            also_in,
        },
        mandatory: Effective {
            value: mandatory,
            source: both(om, oe, gm, ge),
        },
        exempt: Effective {
            value: exempt,
            source: both(oe, om, ge, gm),
        },
        self_enroll: Effective {
            value: self_enroll.unwrap_or(settings.self_enroll),
            source: pick(
                o.as_ref().is_some_and(|o| o.self_enroll.is_some()),
                g.as_ref().is_some_and(|g| g.self_enroll.is_some()),
            ),
        },
        log: Effective {
            value: log.unwrap_or_else(|| settings.log_level.as_str().to_string()),
            source: pick(
                o.as_ref().is_some_and(|o| o.log.is_some()),
                g.as_ref().is_some_and(|g| g.log.is_some()),
            ),
        },
        factors: Effective {
            value: factors.to_string(),
            source: pick(
                o.as_ref().is_some_and(|o| o.factors.is_some()),
                g.as_ref().is_some_and(|g| g.factors.is_some()),
            ),
        },
    }))
}

impl Source {
    /// As `user show` prints it: `user`, `group NAME`, `default`.
    pub fn text(&self) -> String {
        match (&self.group, self.from) {
            (Some(g), "group") => format!("group {g}"),
            _ => self.from.to_string(),
        }
    }
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
