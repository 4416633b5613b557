//! Bulk import of users from a table (`mfa-admin user import --csv FILE`, issue 15): the
//! checks of every line and the writing of the result in the caller's one transaction.
//! The CSV syntax itself (quotes, CRLF, a BOM) is read by mfa-admin; this module gets each
//! line's fields as bytes with the number of the line where the record starts.
//!
//! The header names the columns, in any order: `user` (required), `full_name`, `group`,
//! `email`, `sms`, `phone`, `carrier`. `email` and `sms` may hold several addresses or
//! numbers separated by `;`; `phone` (a 10-digit number for a carrier's email-to-SMS
//! gateway) needs `carrier` on the same line. At most 4 contacts a user.
//!
//! All or nothing: any bad line refuses the whole file, listing up to [`MAX_REPORTED`] bad
//! lines as `line N: reason`. A user who already has a record is refused unless `update` is
//! asked for; then a non-empty `full_name` or `group` replaces the stored one (`group` none
//! clears it) and contacts the user does not have yet are added. Written with prepared
//! statements, so 10,000 users are one quick transaction (the policy snapshot is built
//! once, by the caller's `Store::change`).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::contact::{Contact, MAX_CONTACTS};
use crate::{Result, invalid, validate};

/// The columns a header may name.
pub const COLUMNS: [&str; 7] = [
    "user",
    "full_name",
    "group",
    "email",
    "sms",
    "phone",
    "carrier",
];

/// The most bad lines an error lists (the rest are counted).
pub const MAX_REPORTED: usize = 20;

/// The longest field accepted (longer ones are refused without being echoed).
pub const MAX_FIELD: usize = 1024;

/// Where each column is in a line.
#[derive(Debug, Clone, Copy, Default)]
struct Columns {
    user: usize,
    full_name: Option<usize>,
    group: Option<usize>,
    email: Option<usize>,
    sms: Option<usize>,
    phone: Option<usize>,
    carrier: Option<usize>,
    count: usize,
}

/// One user of the file, checked.
#[derive(Debug, Clone)]
struct Entry {
    user: String,
    /// `None`: keep (an existing user) or empty (a new one).
    full_name: Option<String>,
    /// `None`: keep / no group; `Some(None)`: clear; `Some(Some(g))`: that group.
    group: Option<Option<String>>,
    /// Contacts to add, with the carrier's stored name.
    contacts: Vec<Contact>,
    /// The user has a record already (update).
    exists: bool,
}

/// What an import adds and changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Users given a record.
    pub added: usize,
    /// Existing users whose name, group or contacts change (`--update`).
    pub updated: usize,
    /// Existing users the file names with nothing new (`--update`).
    pub unchanged: usize,
    /// Contacts added (to new and existing users).
    pub contacts: usize,
    /// Lines read (the header not counted).
    pub lines: usize,
}

impl Counts {
    /// One line for the audit log and the command's output.
    pub fn summary(&self) -> String {
        format!(
            "{} lines: {} users added, {} updated, {} unchanged, {} contacts added",
            self.lines, self.added, self.updated, self.unchanged, self.contacts
        )
    }
}

/// A stored user, as the checks need it.
struct Stored {
    full_name: String,
    group: Option<String>,
    /// (channel, address, carrier lower-cased), by seq.
    contacts: Vec<(i64, String, String, Option<String>)>,
}

/// The checks of one file against the store, line by line.
pub struct Import {
    cols: Columns,
    update: bool,
    groups: HashSet<String>,
    /// Lower-cased name → stored name.
    carriers: HashMap<String, String>,
    users: HashMap<String, Stored>,
    /// User → the line that named them.
    seen: HashMap<String, u64>,
    entries: Vec<Entry>,
    errors: Vec<String>,
    bad_lines: usize,
    lines: usize,
}

/// A field's text: UTF-8, at most [`MAX_FIELD`] bytes, trimmed.
fn text<'a>(column: &str, bytes: &'a [u8]) -> std::result::Result<&'a str, String> {
    if bytes.len() > MAX_FIELD {
        return Err(format!(
            "column {column} is {} bytes long; at most {MAX_FIELD} are accepted",
            bytes.len()
        ));
    }
    std::str::from_utf8(bytes).map(str::trim).map_err(|e| {
        format!(
            "column {column} is not UTF-8 text (byte {:#04x} at position {}); save the file as UTF-8",
            bytes.get(e.valid_up_to()).copied().unwrap_or(0),
            e.valid_up_to() + 1
        )
    })
}

impl Import {
    /// Reads the header (line 1) and what the checks need from the store.
    pub fn new(conn: &Connection, header: &[Vec<u8>], update: bool) -> Result<Import> {
        let mut cols = Columns {
            count: header.len(),
            ..Columns::default()
        };
        let mut user = None;
        let mut named: Vec<&str> = Vec::new();
        for (i, raw) in header.iter().enumerate() {
            let name = text("name", raw)
                .map_err(|e| invalid!("line 1 (the header): {e}"))?
                .to_ascii_lowercase();
            let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
                // Shown only when it looks like a column name: the first line of a file given
                // by mistake (a link to /etc/shadow) must not be echoed into a terminal or a
                // log.
                let looks_like_a_column = name.len() <= 32
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
                let shown = if looks_like_a_column {
                    format!("{name:?}")
                } else {
                    format!(
                        "{} (not shown: {} characters that are not a column name; is this a CSV of users?)",
                        i + 1,
                        name.chars().count()
                    )
                };
                return Err(invalid!(
                    "line 1 (the header): unknown column {shown}; the columns are {}",
                    COLUMNS.join(",")
                ));
            };
            if named.contains(known) {
                return Err(invalid!(
                    "line 1 (the header): column {known} is named twice"
                ));
            }
            named.push(known);
            let slot = match *known {
                "user" => {
                    user = Some(i);
                    continue;
                }
                "full_name" => &mut cols.full_name,
                "group" => &mut cols.group,
                "email" => &mut cols.email,
                "sms" => &mut cols.sms,
                "phone" => &mut cols.phone,
                _ => &mut cols.carrier,
            };
            *slot = Some(i);
        }
        cols.user = user.ok_or_else(|| {
            invalid!(
                "line 1 (the header): no column user; the first line names the columns, such as {}",
                COLUMNS.join(",")
            )
        })?;
        if cols.phone.is_some() != cols.carrier.is_some() {
            return Err(invalid!(
                "line 1 (the header): columns phone and carrier go together (a gateway phone needs its carrier)"
            ));
        }
        let groups = conn
            .prepare("SELECT name FROM groups")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let carriers = conn
            .prepare("SELECT name FROM carriers")?
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|n| n.map(|n| (n.to_lowercase(), n)))
            .collect::<rusqlite::Result<_>>()?;
        let mut users: HashMap<String, Stored> = conn
            .prepare("SELECT name, full_name, group_name FROM users")?
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Stored {
                        full_name: r.get(1)?,
                        group: r.get(2)?,
                        contacts: Vec::new(),
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare("SELECT user, seq, channel, address, carrier FROM contacts")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let name: String = r.get(0)?;
            if let Some(u) = users.get_mut(&name) {
                let carrier: Option<String> = r.get(4)?;
                u.contacts.push((
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    carrier.map(|c| c.to_lowercase()),
                ));
            }
        }
        Ok(Import {
            cols,
            update,
            groups,
            carriers,
            users,
            seen: HashMap::new(),
            entries: Vec::new(),
            errors: Vec::new(),
            bad_lines: 0,
            lines: 0,
        })
    }

    /// Records a bad line (also for errors of the CSV syntax, found by the reader).
    pub fn bad(&mut self, line: u64, reason: &str) {
        self.bad_lines += 1;
        if self.errors.len() < MAX_REPORTED {
            self.errors.push(format!("line {line}: {reason}"));
        }
    }

    /// Checks one line (`line`: where its record starts in the file).
    pub fn record(&mut self, line: u64, fields: &[Vec<u8>]) {
        self.lines += 1;
        match self.check(line, fields) {
            Ok(e) => self.entries.push(e),
            Err(reason) => self.bad(line, &reason),
        }
    }

    fn check(&mut self, line: u64, fields: &[Vec<u8>]) -> std::result::Result<Entry, String> {
        let c = self.cols;
        if fields.len() != c.count {
            return Err(format!(
                "{} fields, the header names {} columns (a value with a comma needs double quotes around it)",
                fields.len(),
                c.count
            ));
        }
        let col = |i: Option<usize>, name: &str| -> std::result::Result<&str, String> {
            match i {
                Some(i) => text(name, fields.get(i).map_or(&[][..], Vec::as_slice)),
                None => Ok(""),
            }
        };
        let user = col(Some(c.user), "user")?;
        if user.is_empty() {
            return Err("the user column is empty".into());
        }
        let user = validate::user_name(user).map_err(|e| e.to_string())?;
        if let Some(first) = self.seen.insert(user.clone(), line) {
            return Err(format!("user {user:?} is also on line {first}"));
        }
        let stored = self.users.get(&user);
        if stored.is_some() && !self.update {
            return Err(format!(
                "user {user:?} already has a record; add --update to update existing users, or take the line out"
            ));
        }
        let full_name = match col(c.full_name, "full_name")? {
            "" => None,
            n => Some(validate::label("full name", n, 100).map_err(|e| e.to_string())?),
        };
        let group = match col(c.group, "group")? {
            "" => None,
            g if g.eq_ignore_ascii_case("none") => Some(None),
            g => {
                let g = validate::group_name(g).map_err(|e| e.to_string())?;
                if !self.groups.contains(&g) {
                    return Err(format!(
                        "unknown group {g:?}: `mfa-admin group list` shows the groups, `mfa-admin group add {g}` creates it"
                    ));
                }
                Some(Some(g))
            }
        };
        let mut contacts = Vec::new();
        for e in col(c.email, "email")?.split(';').map(str::trim) {
            if !e.is_empty() {
                contacts.push(Contact::email(e).map_err(|e| e.to_string())?);
            }
        }
        for s in col(c.sms, "sms")?.split(';').map(str::trim) {
            if !s.is_empty() {
                contacts.push(Contact::sms(s).map_err(|e| e.to_string())?);
            }
        }
        match (col(c.phone, "phone")?, col(c.carrier, "carrier")?) {
            ("", "") => {}
            ("", _) => return Err("a carrier without a phone number".into()),
            (_, "") => return Err("a phone number without its carrier".into()),
            (p, k) => {
                let Some(name) = self.carriers.get(&k.to_lowercase()) else {
                    return Err(format!(
                        "unknown carrier {k:?}: `mfa-admin carrier list` shows the carriers, `mfa-admin carrier add` adds one"
                    ));
                };
                contacts.push(Contact::phone(p, name).map_err(|e| e.to_string())?);
            }
        }
        let key = |k: &Contact| {
            (
                k.channel.as_str().to_string(),
                k.address.clone(),
                k.carrier.as_deref().map(str::to_lowercase),
            )
        };
        let mut keys = HashSet::new();
        for k in &contacts {
            if !keys.insert(key(k)) {
                return Err(format!("contact {} is given twice", k.masked()));
            }
        }
        let had = stored.map_or(0, |s| s.contacts.len());
        if let Some(s) = stored {
            contacts.retain(|k| {
                let (ch, addr, car) = key(k);
                !s.contacts
                    .iter()
                    .any(|(_, c, a, k)| *c == ch && *a == addr && *k == car)
            });
        }
        if had + contacts.len() > MAX_CONTACTS {
            return Err(format!(
                "too many contacts: user {user:?} would have {}; at most {MAX_CONTACTS} are allowed",
                had + contacts.len()
            ));
        }
        Ok(Entry {
            exists: stored.is_some(),
            user,
            full_name,
            group,
            contacts,
        })
    }

    /// The error listing the bad lines, if any; else the checked import.
    pub fn finish(self) -> Result<Checked> {
        if self.bad_lines > 0 {
            let more = self.bad_lines - self.errors.len();
            let tail = if more > 0 {
                format!("\n... and {more} more bad line(s)")
            } else {
                String::new()
            };
            return Err(invalid!(
                "{} bad line(s); nothing was imported:\n{}{tail}",
                self.bad_lines,
                self.errors.join("\n")
            ));
        }
        let mut counts = Counts {
            lines: self.lines,
            ..Counts::default()
        };
        let mut entries = Vec::with_capacity(self.entries.len());
        for e in self.entries {
            counts.contacts += e.contacts.len();
            if !e.exists {
                counts.added += 1;
                entries.push(e);
                continue;
            }
            let s = self.users.get(&e.user);
            let same_name = e.full_name.is_none()
                || s.is_some_and(|s| Some(&s.full_name) == e.full_name.as_ref());
            let same_group =
                e.group.is_none() || s.is_some_and(|s| Some(&s.group) == e.group.as_ref());
            if same_name && same_group && e.contacts.is_empty() {
                counts.unchanged += 1;
            } else {
                counts.updated += 1;
                entries.push(e);
            }
        }
        // The contact numbers the updated users have (new contacts take the free ones).
        let mut taken = HashMap::new();
        for e in entries.iter().filter(|e| e.exists) {
            if let Some(s) = self.users.get(&e.user) {
                taken.insert(
                    e.user.clone(),
                    s.contacts.iter().map(|c| c.0).collect::<Vec<i64>>(),
                );
            }
        }
        Ok(Checked {
            entries,
            counts,
            taken,
        })
    }
}

/// A checked import, ready to write.
pub struct Checked {
    entries: Vec<Entry>,
    counts: Counts,
    /// The contact numbers each existing user has.
    taken: HashMap<String, Vec<i64>>,
}

impl Checked {
    /// What [`Checked::apply`] will do.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Writes the users and contacts in the caller's transaction.
    pub fn apply(&self, conn: &Connection, now: i64) -> Result<Counts> {
        let mut add_user = conn.prepare_cached(
            "INSERT INTO users (name, full_name, created, group_name) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut set_name =
            conn.prepare_cached("UPDATE users SET full_name = ?2 WHERE name = ?1")?;
        let mut set_group =
            conn.prepare_cached("UPDATE users SET group_name = ?2 WHERE name = ?1")?;
        let mut add_contact = conn.prepare_cached(
            "INSERT INTO contacts (user, seq, channel, address, carrier, label, created)
             VALUES (?1, ?2, ?3, ?4, ?5, '', ?6)",
        )?;
        for e in &self.entries {
            if e.exists {
                if let Some(n) = &e.full_name {
                    set_name.execute(params![e.user, n])?;
                }
                if let Some(g) = &e.group {
                    set_group.execute(params![e.user, g])?;
                }
            } else {
                add_user.execute(params![
                    e.user,
                    e.full_name.as_deref().unwrap_or(""),
                    now,
                    e.group.clone().flatten()
                ])?;
            }
            let taken = self.taken.get(&e.user).map_or(&[][..], Vec::as_slice);
            let mut free = (1..=MAX_CONTACTS as i64).filter(|s| !taken.contains(s));
            for k in &e.contacts {
                let seq = free
                    .next()
                    .ok_or_else(|| invalid!("user {:?} has no free contact number left", e.user))?;
                add_contact.execute(params![
                    e.user,
                    seq,
                    k.channel.as_str(),
                    k.address,
                    k.carrier,
                    now
                ])?;
            }
        }
        Ok(self.counts)
    }
}

#[cfg(test)]
#[path = "bulk_tests.rs"]
mod tests;
