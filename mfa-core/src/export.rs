//! The declarative export document: every rule (settings, services, networks, carriers,
//! templates, groups, users with their group, contacts and overrides) as one TOML file, and
//! its all-or-nothing, idempotent import.
//!
//! Format 2 (issue 15) adds `[[groups]]`, a user's `group`, and override `factors`; an
//! override's `mandatory`/`exempt` are three-valued (absent: not set, the group's applies).
//! Format 1 documents are still read: there `mandatory = false` meant "not set", and they
//! name no groups. The members of followed Unix groups (`unix_members`) are state resolved
//! by mfa-admin, not rules: not in the document.
//!
//! Importing a document makes the rules exactly what it says: rows it does not name are
//! removed, rows it names are added or updated in place (a user's lockout state and log
//! history survive an import that keeps the user). Logs, challenges and grants are state,
//! not rules, and are neither exported nor replaced.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::contact::{Contact, MAX_CONTACTS};
use crate::net::{IpRange, addr_key};
use crate::policy::Factors;
use crate::settings::{Kind, SPECS, spec};
use crate::store::{people, rules};
use crate::validate;
use crate::{Error, Result, invalid};

/// The version of the document format this mfa writes (it reads this and 1).
pub const FORMAT: u32 = 2;

/// The changes an import makes, per section (`import --dry-run` prints them).
#[path = "export_diff.rs"]
pub mod diff;

#[path = "export_groups.rs"]
mod groups_doc;
use groups_doc::{CheckedGroup, check_groups, from_format_1, import_groups};

/// The whole document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Always [`FORMAT`].
    pub format: u32,
    /// Setting key → value (strings, or integers for numeric settings).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
    /// Service → method; `*` covers the rest.
    #[serde(default)]
    pub services: BTreeMap<String, String>,
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carriers: Vec<CarrierDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<NetworkDoc>,
    /// Groups (format 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserDoc>,
}

/// A group: every field of the `groups` table but its creation time (state: an existing
/// group keeps its own, a new one gets the import's). An absent key is "not set here".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_enroll: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// `all` or some of `passcode,totp,backup,duo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factors: Option<String>,
    /// The Unix group whose members belong to this group (resolved by mfa-admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierDoc {
    pub name: String,
    pub suffix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDoc {
    pub service: String,
    /// CIDR or FIRST-LAST.
    pub range: String,
    pub require: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub full_name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The user's Duo user name (absent: not known to have Duo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duo_user: Option<String>,
    /// The user's own group (format 2; absent: a followed Unix group's, else the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub overrides: Option<OverrideDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactDoc>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDoc {
    /// Absent: not set for the user (their group's applies). In format 1, false also meant
    /// not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mandatory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exempt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_enroll: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The `seq` of one of the user's contacts: a double logon sends its passcode there
    /// (absent: the first contact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_logon_contact: Option<i64>,
    /// The factors the user may use (format 2): `all` or some of `passcode,totp,backup,duo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factors: Option<String>,
}

/// One contact: exactly one of `email`, `phone` (with `carrier`) or `sms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactDoc {
    pub seq: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
}

/// Reads every rule into a document (call inside one read transaction).
pub fn export(conn: &Connection) -> Result<Document> {
    let stored = rules::stored_settings(conn)?;
    let mut settings = BTreeMap::new();
    for s in SPECS {
        let value = match stored.get(s.key) {
            Some(v) => v.clone(),
            // A default computed from the host (totp_issuer) is not pinned by an export.
            None if s.default.is_empty() => continue,
            None => s.default.to_string(),
        };
        let v = match s.kind {
            Kind::Int(..) => value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or(toml::Value::String(value)),
            _ => toml::Value::String(value),
        };
        settings.insert(s.key.to_string(), v);
    }
    let services = rules::services(conn)?
        .into_iter()
        .map(|s| (s.service, s.method))
        .collect();
    let templates = rules::templates(conn)?
        .into_iter()
        .map(|t| (t.name, t.text))
        .collect();
    let carriers = people::carriers(conn)?
        .into_iter()
        .map(|c| CarrierDoc {
            name: c.name,
            suffix: c.suffix,
        })
        .collect();
    let networks = rules::networks(conn, None)?
        .into_iter()
        .map(|n| NetworkDoc {
            service: n.service,
            range: n.range,
            require: n.require,
            log: n.log,
            note: n.note,
        })
        .collect();
    // Three statements for every user at once (not several per user): the export is linear
    // and quick at 100,000 users.
    let mut contacts: std::collections::HashMap<String, Vec<ContactDoc>> =
        std::collections::HashMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT user, seq, channel, address, carrier, label FROM contacts ORDER BY user, seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let channel: String = r.get(2)?;
            let address: String = r.get(3)?;
            let mut d = ContactDoc {
                seq: r.get(1)?,
                email: None,
                phone: None,
                carrier: None,
                sms: None,
                label: r.get(5)?,
            };
            match channel.as_str() {
                "email" => d.email = Some(address),
                "sms-gateway" => {
                    d.phone = Some(address);
                    d.carrier = r.get(4)?;
                }
                _ => d.sms = Some(address),
            }
            contacts.entry(r.get(0)?).or_default().push(d);
        }
    }
    let mut overrides: std::collections::HashMap<String, OverrideDoc> = people::overrides(conn)?
        .into_iter()
        .map(|o| {
            (
                o.user,
                OverrideDoc {
                    mandatory: o.mandatory,
                    exempt: o.exempt,
                    self_enroll: o.self_enroll,
                    log: o.log,
                    double_logon_contact: o.double_logon_contact,
                    factors: o.factors.map(|f| f.to_string()),
                },
            )
        })
        .collect();
    let mut users = Vec::new();
    {
        let mut stmt = conn.prepare(
            "SELECT name, full_name, enabled, duo_user, group_name FROM users ORDER BY name",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            users.push(UserDoc {
                full_name: r.get(1)?,
                enabled: r.get(2)?,
                duo_user: r.get(3)?,
                group: r.get(4)?,
                overrides: overrides.remove(&name),
                contacts: contacts.remove(&name).unwrap_or_default(),
                name,
            });
        }
    }
    let groups = conn
        .prepare(
            "SELECT name, description, mandatory, exempt, self_enroll, log_level, factors,
                    unix_group FROM groups ORDER BY name",
        )?
        .query_map([], |r| {
            Ok(GroupDoc {
                name: r.get(0)?,
                description: r.get(1)?,
                mandatory: r.get(2)?,
                exempt: r.get(3)?,
                self_enroll: r.get(4)?,
                log: r.get(5)?,
                factors: people::factors_of(r.get(6)?)?.map(|f| f.to_string()),
                unix_group: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Document {
        format: FORMAT,
        settings,
        services,
        templates,
        carriers,
        networks,
        groups,
        users,
    })
}

/// Renders a document as TOML.
pub fn to_toml(doc: &Document) -> Result<String> {
    let body = toml::to_string(doc)
        .map_err(|e| Error::Invalid(format!("cannot write the export: {e}")))?;
    Ok(format!(
        "# mfa rules, written by `mfa-admin export`; load with `mfa-admin import FILE`.\n{body}"
    ))
}

/// Parses a document; errors name the file, line and key.
pub fn parse(name: &str, text: &str) -> Result<Document> {
    let doc: Document = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].matches('\n').count() + 1
        });
        Error::Invalid(format!("{name}, line {line}: {}", e.message().trim_end()))
    })?;
    match doc.format {
        FORMAT => Ok(doc),
        1 => from_format_1(name, doc),
        n => Err(invalid!(
            "{name}: format = {n} is not supported; this mfa reads format = 1 and {FORMAT}"
        )),
    }
}

/// A document checked in full, ready to apply.
struct Checked {
    settings: Vec<(String, String)>,
    services: Vec<(String, String)>,
    templates: Vec<(String, String)>,
    carriers: Vec<(String, String)>,
    networks: Vec<rules::NewNetRule>,
    groups: Vec<CheckedGroup>,
    users: Vec<(UserDoc, Vec<NumberedContact>)>,
    /// Each user's override factors, checked (by the index of `users`).
    factors: Vec<Option<Factors>>,
}

/// A contact of the document: its number, the validated contact, its label.
type NumberedContact = (i64, Contact, String);

fn check(doc: &Document) -> Result<Checked> {
    let at = |path: String, e: Error| invalid!("{path}: {e}");
    let mut settings = Vec::new();
    for (k, v) in &doc.settings {
        let text = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => {
                return Err(invalid!(
                    "settings.{k}: expected a string or an integer, found {}",
                    other.type_str()
                ));
            }
        };
        let s = spec(k).map_err(|e| at(format!("settings.{k}"), e))?;
        settings.push((
            k.clone(),
            s.normalize(&text)
                .map_err(|e| at(format!("settings.{k}"), e))?,
        ));
    }
    let mut services = Vec::new();
    for (name, method) in &doc.services {
        let n = validate::service(name).map_err(|e| at(format!("services.{name}"), e))?;
        let m = validate::method(method).map_err(|e| at(format!("services.{name}"), e))?;
        services.push((n, m));
    }
    let mut templates = Vec::new();
    for (name, text) in &doc.templates {
        crate::template::validate(name, text).map_err(|e| at(format!("templates.{name}"), e))?;
        templates.push((name.clone(), text.clone()));
    }
    let mut carriers = Vec::new();
    let mut carrier_names = BTreeSet::new();
    for (i, c) in doc.carriers.iter().enumerate() {
        let name = validate::label("carrier name", &c.name, 40)
            .map_err(|e| at(format!("carriers[{i}].name"), e))?;
        if name.is_empty() {
            return Err(invalid!("carriers[{i}].name: a carrier needs a name"));
        }
        if !carrier_names.insert(name.to_lowercase()) {
            return Err(invalid!("carriers[{i}]: carrier {name:?} is listed twice"));
        }
        let suffix = validate::domain("carrier suffix", &c.suffix)
            .map_err(|e| at(format!("carriers[{i}].suffix"), e))?;
        carriers.push((name, suffix));
    }
    let mut networks = Vec::new();
    let mut seen_nets = BTreeSet::new();
    for (i, n) in doc.networks.iter().enumerate() {
        let p = |f: &str| format!("networks[{i}].{f}");
        let service = validate::service(&n.service).map_err(|e| at(p("service"), e))?;
        let range = IpRange::parse_any(&n.range).map_err(|e| at(p("range"), e))?;
        if let Some(l) = &n.log {
            crate::settings::LogLevel::parse(l).map_err(|e| at(p("log"), e))?;
        }
        let note = validate::label("note", &n.note, 200).map_err(|e| at(p("note"), e))?;
        if !seen_nets.insert((
            service.clone(),
            addr_key(range.first()),
            addr_key(range.last()),
            range.family(),
        )) {
            return Err(invalid!(
                "networks[{i}]: {range} for service {service} is listed twice"
            ));
        }
        networks.push(rules::NewNetRule {
            service,
            range,
            require: n.require,
            log: n.log.clone(),
            note,
        });
    }
    let groups = check_groups(doc)?;
    let group_names: BTreeSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    if let Some((_, g)) = settings.iter().find(|(k, _)| k == "default_group")
        && g != "none"
        && !group_names.contains(g.as_str())
    {
        return Err(invalid!(
            "settings.default_group: no group {g:?} in this document; add a [[groups]] entry named {g:?}, or set default_group = \"none\""
        ));
    }
    let mut users = Vec::new();
    let mut factors = Vec::new();
    let mut user_names = BTreeSet::new();
    for (i, u) in doc.users.iter().enumerate() {
        let p = |f: &str| format!("users[{i}].{f}");
        let name = validate::user_name(&u.name).map_err(|e| at(p("name"), e))?;
        if !user_names.insert(name.clone()) {
            return Err(invalid!("users[{i}]: user {name:?} is listed twice"));
        }
        validate::label("full name", &u.full_name, 100).map_err(|e| at(p("full_name"), e))?;
        if let Some(d) = &u.duo_user {
            validate::duo_user(d).map_err(|e| at(p("duo_user"), e))?;
        }
        if let Some(g) = &u.group
            && !group_names.contains(g.as_str())
        {
            return Err(invalid!(
                "users[{i}].group: user {name:?} names group {g:?}, which is not in this document's [[groups]]; add it there or leave the user's group out"
            ));
        }
        let mut allowed = None;
        if let Some(o) = &u.overrides {
            if o.mandatory == Some(true) && o.exempt == Some(true) {
                return Err(invalid!(
                    "users[{i}].override: user {name:?} cannot be both mandatory and exempt"
                ));
            }
            if let Some(l) = &o.log {
                crate::settings::LogLevel::parse(l).map_err(|e| at(p("override.log"), e))?;
            }
            if let Some(f) = &o.factors {
                allowed = Some(Factors::parse(f).map_err(|e| at(p("override.factors"), e))?);
            }
        }
        factors.push(allowed);
        if u.contacts.len() > MAX_CONTACTS {
            return Err(invalid!(
                "users[{i}].contacts: user {name:?} has {} contacts; at most {MAX_CONTACTS} are allowed",
                u.contacts.len()
            ));
        }
        let mut contacts = Vec::new();
        let mut seqs = BTreeSet::new();
        for (j, c) in u.contacts.iter().enumerate() {
            let cp = format!("users[{i}].contacts[{j}]");
            if !(1..=MAX_CONTACTS as i64).contains(&c.seq) || !seqs.insert(c.seq) {
                return Err(invalid!(
                    "{cp}.seq: expected a number from 1 to {MAX_CONTACTS}, unique for the user"
                ));
            }
            let contact = match (&c.email, &c.phone, &c.carrier, &c.sms) {
                (Some(e), None, None, None) => Contact::email(e),
                (None, Some(ph), Some(k), None) => {
                    if !carrier_names.contains(&k.trim().to_lowercase()) {
                        return Err(invalid!("{cp}.carrier: unknown carrier {k:?}: it must be listed under [[carriers]]"));
                    }
                    Contact::phone(ph, k)
                }
                (None, None, None, Some(s)) => Contact::sms(s),
                _ => return Err(invalid!("{cp}: expected exactly one of email = \"...\", phone = \"...\" with carrier = \"...\", or sms = \"+E164\"")),
            }
            .map_err(|e| at(cp.clone(), e))?;
            let same = |(_, other, _): &&NumberedContact| {
                other.channel == contact.channel
                    && other.address == contact.address
                    && other.carrier.as_deref().map(str::to_lowercase)
                        == contact.carrier.as_deref().map(str::to_lowercase)
            };
            if let Some((seq, _, _)) = contacts.iter().find(same) {
                return Err(invalid!(
                    "{cp}: {} is the same contact as seq {seq} of user {name:?}",
                    contact.address
                ));
            }
            let label =
                validate::label("label", &c.label, 32).map_err(|e| at(format!("{cp}.label"), e))?;
            contacts.push((c.seq, contact, label));
        }
        if let Some(n) = u.overrides.as_ref().and_then(|o| o.double_logon_contact)
            && !contacts.iter().any(|(seq, _, _)| *seq == n)
        {
            return Err(invalid!(
                "users[{i}].override.double_logon_contact: {name} has no contact {n} in this file \
                 (its contacts are numbered {}); give the seq of one of its [[users.contacts]] or \
                 leave the key out for the first contact",
                match contacts
                    .iter()
                    .map(|(s, _, _)| s.to_string())
                    .collect::<Vec<_>>()
                {
                    v if v.is_empty() => "none: it has no contacts".to_string(),
                    v => v.join(", "),
                }
            ));
        }
        users.push((u.clone(), contacts));
    }
    Ok(Checked {
        settings,
        services,
        templates,
        carriers,
        networks,
        groups,
        users,
        factors,
    })
}

/// Replaces every rule with the document's, inside the caller's write transaction. Returns
/// a one-line summary for the audit log. Groups are written before the users who name them
/// and deleted after the users stop naming them; `default_group` is set last.
pub fn import(conn: &Connection, doc: &Document, now: i64) -> Result<String> {
    let c = check(doc)?;
    conn.execute_batch("PRAGMA defer_foreign_keys = ON")?;

    conn.execute("DELETE FROM settings", [])?;
    // default_group names a group: set once the groups are written (at the end).
    for (k, v) in c.settings.iter().filter(|(k, _)| k != "default_group") {
        rules::set_setting(conn, k, v)?;
    }
    conn.execute("DELETE FROM services", [])?;
    for (n, m) in &c.services {
        rules::set_service(conn, n, m)?;
    }
    conn.execute("DELETE FROM templates", [])?;
    for (n, t) in &c.templates {
        rules::set_template(conn, n, t)?;
    }

    import_groups(conn, &c.groups, now)?;

    // Users, contacts and overrides: compared with what is stored, and only the rows that
    // differ are written (importing the current rules writes none of them; at 100,000 users
    // a rewrite of every row cost most of the import). Users not in the document go first.
    let names: BTreeSet<&str> = c.users.iter().map(|(u, _)| u.name.as_str()).collect();
    type UserRow = (String, bool, Option<String>, Option<String>);
    let mut users: HashMap<String, UserRow> = conn
        .prepare("SELECT name, full_name, enabled, duo_user, group_name FROM users")?
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })?
        .collect::<Result<_, _>>()?;
    for name in users.keys() {
        if !names.contains(name.as_str()) {
            people::delete_user(conn, name)?;
        }
    }
    let mut add_user = conn.prepare_cached(
        "INSERT INTO users (name, full_name, enabled, created, duo_user, group_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO UPDATE SET full_name = excluded.full_name, enabled = excluded.enabled,
                                          duo_user = excluded.duo_user,
                                          group_name = excluded.group_name",
    )?;
    for (u, _) in &c.users {
        let want: UserRow = (
            u.full_name.trim().to_string(),
            u.enabled,
            u.duo_user.clone(),
            u.group.clone(),
        );
        if users.remove(&u.name).as_ref() != Some(&want) {
            add_user.execute(params![u.name, want.0, want.1, now, want.2, want.3])?;
        }
    }
    // Groups the document drops, now that no user names them as their own.
    let wanted: BTreeSet<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
    let stored: Vec<String> = conn
        .prepare("SELECT name FROM groups")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for name in stored.iter().filter(|n| !wanted.contains(n.as_str())) {
        conn.execute("DELETE FROM groups WHERE name = ?1", [name])?;
    }

    // Contacts by (user, seq): kept when equal; an unchanged channel and address keep their
    // creation time; the ones the document no longer has are deleted (the schema's trigger
    // clears a double-logon choice that named one; the overrides are written after).
    type Stored = (String, String, Option<String>, String, i64);
    let mut stored: HashMap<(String, i64), Stored> = conn
        .prepare("SELECT user, seq, channel, address, carrier, label, created FROM contacts")?
        .query_map([], |r| {
            Ok((
                (r.get(0)?, r.get(1)?),
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut put_contact = conn.prepare_cached(
        "INSERT INTO contacts (user, seq, channel, address, carrier, label, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user, seq) DO UPDATE SET channel = excluded.channel,
             address = excluded.address, carrier = excluded.carrier, label = excluded.label,
             created = excluded.created",
    )?;
    for (u, contacts) in &c.users {
        for (seq, contact, label) in contacts {
            // Carriers are written below; store the name as the document spells it in
            // the carriers list so the foreign key resolves.
            let carrier = contact.carrier.as_ref().and_then(|k| {
                c.carriers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k.trim()))
                    .map(|(n, _)| n.clone())
            });
            let channel = contact.channel.as_str();
            let old = stored.remove(&(u.name.clone(), *seq));
            let since = match &old {
                Some((ch, addr, car, lab, since)) if ch == channel && *addr == contact.address => {
                    if *car == carrier && lab == label {
                        continue; // unchanged
                    }
                    *since
                }
                _ => now,
            };
            put_contact.execute(params![
                u.name,
                seq,
                channel,
                contact.address,
                carrier,
                label,
                since
            ])?;
        }
    }
    let mut delete_contact =
        conn.prepare_cached("DELETE FROM contacts WHERE user = ?1 AND seq = ?2")?;
    for (user, seq) in stored.keys() {
        delete_contact.execute(params![user, seq])?;
    }

    // Overrides by user, the same way.
    type Over = (
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    let mut overrides: HashMap<String, Over> = conn
        .prepare(
            "SELECT user, mandatory, exempt, self_enroll, log_level, double_logon_contact, factors
             FROM overrides",
        )?
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                (
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut put_override = conn.prepare_cached(
        "INSERT OR REPLACE INTO overrides
             (user, mandatory, exempt, self_enroll, log_level, double_logon_contact, factors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for ((u, _), allowed) in c.users.iter().zip(&c.factors) {
        let Some(o) = &u.overrides else { continue };
        let want: Over = (
            o.mandatory,
            o.exempt,
            o.self_enroll,
            o.log.clone(),
            o.double_logon_contact,
            allowed.map(|f| i64::from(f.bits())),
        );
        if overrides.remove(&u.name).as_ref() != Some(&want) {
            put_override.execute(params![
                u.name, want.0, want.1, want.2, want.3, want.4, want.5
            ])?;
        }
    }
    let mut delete_override = conn.prepare_cached("DELETE FROM overrides WHERE user = ?1")?;
    for user in overrides.keys() {
        delete_override.execute([user])?;
    }

    // Carriers: only those that differ are written (every contact of a carrier carries its
    // suffix in the policy snapshot, so a rewritten carrier makes the snapshot be built whole).
    let stored: HashMap<String, String> = conn
        .prepare("SELECT name, suffix FROM carriers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let wanted: HashMap<&str, &str> = c
        .carriers
        .iter()
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    for name in stored.keys() {
        if !wanted.contains_key(name.as_str()) {
            conn.execute("DELETE FROM carriers WHERE name = ?1", [name])?;
        }
    }
    for (n, s) in &c.carriers {
        if stored.get(n) != Some(s) {
            conn.execute(
                "INSERT INTO carriers (name, suffix) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET suffix = excluded.suffix",
                params![n, s],
            )?;
        }
    }

    // Networks: keep rules whose service and range are unchanged (their numbers stay),
    // update their fields, drop the rest, add the new ones.
    // Looked up in a map by (service, first, last), not by a walk of every existing rule
    // per rule of the document: linear in the number of rules.
    let existing = rules::networks(conn, None)?;
    let by_range: HashMap<(&str, &str, &str), &rules::NetRule> = existing
        .iter()
        .map(|e| ((e.service.as_str(), e.first.as_str(), e.last.as_str()), e))
        .collect();
    let mut kept = std::collections::HashSet::new();
    let mut update = conn.prepare_cached(
        "UPDATE networks SET require = ?2, log_level = ?3, note = ?4 WHERE id = ?1",
    )?;
    for n in &c.networks {
        let (first, last) = (n.range.first().to_string(), n.range.last().to_string());
        match by_range.get(&(n.service.as_str(), first.as_str(), last.as_str())) {
            Some(e) => {
                if (e.require, &e.log, &e.note) != (n.require, &n.log, &n.note) {
                    update.execute(params![e.id, n.require, n.log, n.note])?;
                }
                kept.insert(e.id);
            }
            None => {
                kept.insert(rules::add_network(conn, n, now)?);
            }
        }
    }
    let mut delete = conn.prepare_cached("DELETE FROM networks WHERE id = ?1")?;
    for e in &existing {
        if !kept.contains(&e.id) {
            delete.execute([e.id])?;
        }
    }

    if let Some((k, v)) = c.settings.iter().find(|(k, _)| k == "default_group") {
        rules::set_setting(conn, k, v)?;
    }

    Ok(format!(
        "{} settings, {} services, {} templates, {} carriers, {} networks, {} users, {} groups",
        c.settings.len(),
        c.services.len(),
        c.templates.len(),
        c.carriers.len(),
        c.networks.len(),
        c.users.len(),
        c.groups.len()
    ))
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
