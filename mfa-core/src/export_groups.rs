//! The groups of the export document (format 2, issue 15): their checks and their import,
//! and the reading of format-1 documents, which had no groups.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, params};

use super::{Document, FORMAT};
use crate::policy::Factors;
use crate::store::groups;
use crate::validate;
use crate::{Error, Result, invalid};

/// A format-1 document in today's terms: an override's `mandatory = false` or
/// `exempt = false` meant "not set" (there were no groups to differ from). Keys that came
/// with format 2 are refused rather than read with a meaning their author did not give them.
pub(super) fn from_format_1(name: &str, mut doc: Document) -> Result<Document> {
    let newer = |what: &str| {
        invalid!(
            "{name}: {what} needs format = {FORMAT} (this file says format = 1); change the format line, or export again to get a current document"
        )
    };
    if !doc.groups.is_empty() {
        return Err(newer("[[groups]]"));
    }
    for (i, u) in doc.users.iter_mut().enumerate() {
        if u.group.is_some() {
            return Err(newer(&format!("users[{i}].group")));
        }
        if let Some(o) = &mut u.overrides {
            if o.factors.is_some() {
                return Err(newer(&format!("users[{i}].override.factors")));
            }
            o.mandatory = o.mandatory.filter(|m| *m);
            o.exempt = o.exempt.filter(|e| *e);
        }
    }
    doc.format = FORMAT;
    Ok(doc)
}

/// A group of the document, checked: the row as stored.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CheckedGroup {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) mandatory: Option<bool>,
    pub(super) exempt: Option<bool>,
    pub(super) self_enroll: Option<bool>,
    pub(super) log: Option<String>,
    pub(super) factors: Option<i64>,
    pub(super) unix_group: Option<String>,
}

/// Checks the document's groups as `group add` would: names, descriptions, log levels,
/// factor lists, Unix group names; none listed twice, no Unix group followed twice, none
/// both mandatory and exempt.
pub(super) fn check_groups(doc: &Document) -> Result<Vec<CheckedGroup>> {
    let at = |path: String, e: Error| invalid!("{path}: {e}");
    let mut out: Vec<CheckedGroup> = Vec::new();
    let mut unix = BTreeMap::new();
    for (i, g) in doc.groups.iter().enumerate() {
        let p = |f: &str| format!("groups[{i}].{f}");
        let name = validate::group_name(&g.name).map_err(|e| at(p("name"), e))?;
        if out.iter().any(|o| o.name == name) {
            return Err(invalid!("groups[{i}]: group {name:?} is listed twice"));
        }
        let description = validate::label("description", &g.description, groups::MAX_DESCRIPTION)
            .map_err(|e| at(p("description"), e))?;
        if g.mandatory == Some(true) && g.exempt == Some(true) {
            return Err(invalid!(
                "groups[{i}]: group {name:?} cannot be both mandatory and exempt"
            ));
        }
        if let Some(l) = &g.log {
            crate::settings::LogLevel::parse(l).map_err(|e| at(p("log"), e))?;
        }
        let factors = g
            .factors
            .as_deref()
            .map(Factors::parse)
            .transpose()
            .map_err(|e| at(p("factors"), e))?
            .map(|f| i64::from(f.bits()));
        let unix_group = g
            .unix_group
            .as_deref()
            .map(groups::unix_group_name)
            .transpose()
            .map_err(|e| at(p("unix_group"), e))?;
        if let Some(u) = &unix_group
            && let Some(other) = unix.insert(u.clone(), name.clone())
        {
            return Err(invalid!(
                "groups[{i}].unix_group: Unix group {u:?} is already followed by group {other:?}; a Unix group is followed by one group at most"
            ));
        }
        out.push(CheckedGroup {
            name,
            description,
            mandatory: g.mandatory,
            exempt: g.exempt,
            self_enroll: g.self_enroll,
            log: g.log.clone(),
            factors,
            unix_group,
        });
    }
    Ok(out)
}

/// Adds and updates the document's groups (only those that differ are written; an existing
/// group keeps its creation time). A group whose Unix group changes loses the members
/// resolved for the old one (mfa-admin resolves the new one after the import). Groups the
/// document drops are deleted by the caller once no user names them.
pub(super) fn import_groups(conn: &Connection, wanted: &[CheckedGroup], now: i64) -> Result<()> {
    let stored: HashMap<String, CheckedGroup> = conn
        .prepare(
            "SELECT name, description, mandatory, exempt, self_enroll, log_level, factors,
                    unix_group FROM groups",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                CheckedGroup {
                    name: r.get(0)?,
                    description: r.get(1)?,
                    mandatory: r.get(2)?,
                    exempt: r.get(3)?,
                    self_enroll: r.get(4)?,
                    log: r.get(5)?,
                    factors: r.get(6)?,
                    unix_group: r.get(7)?,
                },
            ))
        })?
        .collect::<Result<_, _>>()?;
    let want: HashMap<&str, &CheckedGroup> = wanted.iter().map(|g| (g.name.as_str(), g)).collect();
    // A Unix group may move from one group to another in one document: every group whose
    // Unix group changes (or that goes) lets go of it first (the column is unique).
    for (name, old) in &stored {
        let new_unix = want.get(name.as_str()).and_then(|g| g.unix_group.as_ref());
        if old.unix_group.is_some() && old.unix_group.as_ref() != new_unix {
            conn.execute(
                "UPDATE groups SET unix_group = NULL WHERE name = ?1",
                [name],
            )?;
            conn.execute("DELETE FROM unix_members WHERE grp = ?1", [name])?;
        }
    }
    let mut put = conn.prepare_cached(
        "INSERT INTO groups (name, description, mandatory, exempt, self_enroll, log_level,
                             factors, unix_group, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (name) DO UPDATE SET description = excluded.description,
             mandatory = excluded.mandatory, exempt = excluded.exempt,
             self_enroll = excluded.self_enroll, log_level = excluded.log_level,
             factors = excluded.factors, unix_group = excluded.unix_group",
    )?;
    for g in wanted {
        if stored.get(&g.name) != Some(g) {
            put.execute(params![
                g.name,
                g.description,
                g.mandatory,
                g.exempt,
                g.self_enroll,
                g.log,
                g.factors,
                g.unix_group,
                now
            ])?;
        }
    }
    Ok(())
}
