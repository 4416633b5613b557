//! Queries for who proves a second factor and how to reach them: users, their contacts
//! (at most four), their overrides, and the carrier gateways phone contacts go through.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::contact::{Channel, Contact, MAX_CONTACTS};
use crate::policy::Factors;
use crate::{Error, Result};

/// A user record with everything `user show` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub full_name: String,
    /// A disabled user's factors are suspended: they are refused wherever 2FA is required.
    pub enabled: bool,
    pub created: i64,
    pub contacts: Vec<ContactRow>,
    #[serde(rename = "override")]
    pub overrides: Option<Override>,
    /// Consecutive failures counted toward the lockout.
    pub failures: i64,
    /// Unix time until which the user is locked out (0: not locked).
    pub locked_until: i64,
    /// The authenticator key's parameters, if one is enrolled (never the key).
    pub totp: Option<TotpInfo>,
    /// Unused backup codes.
    pub backup_codes: i64,
    /// The user's Duo user name; `None`: not known to have Duo (method `duo` asks Duo under
    /// the login name, `any` does not offer Duo).
    pub duo_user: Option<String>,
    /// Each setting's effective value and where it comes from (the user, their group, the
    /// global setting), and why the user has their group.
    pub effective: crate::store::groups::Provenance,
}

/// What `user show` tells of an authenticator key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotpInfo {
    pub algorithm: String,
    pub digits: u32,
    pub created: i64,
}

/// One line of `user list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub name: String,
    pub full_name: String,
    pub enabled: bool,
    pub contacts: i64,
    pub mandatory: bool,
    pub exempt: bool,
    pub created: i64,
    /// Unix time until which the database holds the user locked out (0: no lockout; a
    /// time in the past: the lockout ran out). The user's state file may hold a later one.
    pub locked_until: i64,
    /// The user's Duo user name, if the record names one.
    pub duo_user: Option<String>,
    /// The group that governs the user (their own, a followed Unix group's, the default).
    pub group: Option<String>,
}

/// A stored contact, with its fully resolved destination and masked form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactRow {
    /// 1 to 4; stays with the contact when others are deleted.
    pub seq: i64,
    /// email, sms-gateway or sms.
    pub channel: String,
    /// The email address, 10-digit phone number or +E164 number.
    pub address: String,
    /// Carrier of an sms-gateway contact.
    pub carrier: Option<String>,
    /// Where a message goes: the address, `number@gateway`, or the +E164 number.
    pub to: String,
    /// The form prompts and logs show.
    pub masked: String,
    pub label: String,
}

/// A user's overrides. `None` fields follow the global setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub user: String,
    /// `None`: not set for the user (their group's, else not mandatory).
    pub mandatory: Option<bool>,
    /// `None`: not set for the user (their group's, else not exempt).
    pub exempt: Option<bool>,
    pub self_enroll: Option<bool>,
    pub log: Option<String>,
    /// The contact (its number) a double logon sends its passcode to; `None`: the first.
    pub double_logon_contact: Option<i64>,
    /// The factors the user may use; `None`: their group's, else all.
    #[serde(serialize_with = "factors_text")]
    pub factors: Option<Factors>,
}

/// Serializes allowed factors as their text (`passcode,totp`), `null` when not set.
pub fn factors_text<S: serde::Serializer>(
    f: &Option<Factors>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match f {
        Some(f) => s.serialize_str(&f.to_string()),
        None => s.serialize_none(),
    }
}

/// A change to a user's overrides; `None` leaves a field as it is, `Some(None)` returns it
/// to "not set" (the group's, else the global setting).
#[derive(Debug, Clone, Default)]
pub struct OverrideChange {
    pub mandatory: Option<Option<bool>>,
    pub exempt: Option<Option<bool>>,
    /// `Some(None)` returns to the global setting.
    pub self_enroll: Option<Option<bool>>,
    pub log: Option<Option<String>>,
    /// `Some(None)` returns to the first contact; `Some(Some(n))` must name a contact the
    /// user has.
    pub double_logon_contact: Option<Option<i64>>,
    pub factors: Option<Option<Factors>>,
}

/// A carrier gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Carrier {
    pub name: String,
    pub suffix: String,
    /// Contacts that use it.
    pub contacts: i64,
}

fn no_user(name: &str) -> Error {
    Error::NotFound(format!(
        "unknown user {name:?}: add it first with `mfa-admin user add {name}` (`mfa-admin user list` shows the users)"
    ))
}

/// Fails with a clear message unless the user exists.
pub fn require_user(conn: &Connection, name: &str) -> Result<()> {
    crate::validate::user_name(name)?;
    let found: Option<i64> = conn
        .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |r| r.get(0))
        .optional()?;
    found.map(|_| ()).ok_or_else(|| no_user(name))
}

/// Every user, by name.
pub fn users(conn: &Connection) -> Result<Vec<UserSummary>> {
    let mut stmt = conn.prepare(
        "SELECT u.name, u.full_name, u.enabled, u.created,
                (SELECT count(*) FROM contacts c WHERE c.user = u.name),
                p.mandatory, p.exempt, coalesce(l.locked_until, 0), u.duo_user, p.grp
         FROM users u JOIN user_policy p ON p.user = u.name
              LEFT JOIN lockouts l ON l.user = u.name
         ORDER BY u.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(UserSummary {
            name: r.get(0)?,
            full_name: r.get(1)?,
            enabled: r.get(2)?,
            created: r.get(3)?,
            contacts: r.get(4)?,
            mandatory: r.get(5)?,
            exempt: r.get(6)?,
            locked_until: r.get(7)?,
            duo_user: r.get(8)?,
            group: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One user with contacts, overrides and lockout state; `None` if unknown.
pub fn user(conn: &Connection, name: &str) -> Result<Option<User>> {
    let base = conn
        .query_row(
            "SELECT u.full_name, u.enabled, u.created, coalesce(l.failures, 0), coalesce(l.locked_until, 0),
                    u.duo_user
             FROM users u LEFT JOIN lockouts l ON l.user = u.name WHERE u.name = ?1",
            [name],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()?;
    let Some((full_name, enabled, created, failures, locked_until, duo_user)) = base else {
        return Ok(None);
    };
    let effective = crate::store::groups::provenance(conn, name)?
        .ok_or_else(|| Error::Database(format!("user {name:?} is missing from user_policy")))?;
    Ok(Some(User {
        name: name.to_string(),
        full_name,
        enabled,
        created,
        contacts: contacts(conn, name)?,
        overrides: override_of(conn, name)?,
        failures,
        locked_until,
        totp: conn
            .query_row(
                "SELECT algorithm, digits, created FROM totp WHERE user = ?1",
                [name],
                |r| {
                    Ok(TotpInfo {
                        algorithm: r.get(0)?,
                        digits: r.get(1)?,
                        created: r.get(2)?,
                    })
                },
            )
            .optional()?,
        backup_codes: crate::store::factors::backup_count(conn, name)?,
        duo_user,
        effective,
    }))
}

/// The user's Duo user name (`None`: an unknown user, or one not known to have Duo). The
/// database's answer for a login without a policy snapshot.
pub fn duo_user(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT duo_user FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

/// Sets (`Some`, validated) or clears (`None`) the user's Duo user name; returns false when
/// it already was so.
pub fn set_duo_user(conn: &Connection, name: &str, duo_user: Option<&str>) -> Result<bool> {
    require_user(conn, name)?;
    if let Some(d) = duo_user {
        crate::validate::duo_user(d)?;
    }
    let n = conn.execute(
        "UPDATE users SET duo_user = ?2 WHERE name = ?1 AND duo_user IS NOT ?2",
        params![name, duo_user],
    )?;
    Ok(n > 0)
}

/// Adds a user; an existing name is a conflict.
pub fn add_user(conn: &Connection, name: &str, full_name: &str, now: i64) -> Result<()> {
    // Every way in (mfa-admin, import, self-enrollment at login) stores only names export
    // can write and import read back.
    crate::validate::user_name(name)?;
    let n = conn.execute(
        "INSERT INTO users (name, full_name, created) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![name, full_name, now],
    )?;
    if n == 0 {
        return Err(Error::Conflict(format!(
            "user {name:?} already exists; `mfa-admin user show {name}` shows it"
        )));
    }
    Ok(())
}

/// Deletes a user with their contacts, overrides and login state.
pub fn delete_user(conn: &Connection, name: &str) -> Result<()> {
    crate::validate::user_name(name)?;
    if conn.execute("DELETE FROM users WHERE name = ?1", [name])? == 0 {
        return Err(no_user(name));
    }
    conn.execute("DELETE FROM lockouts WHERE user = ?1", [name])?;
    Ok(())
}

/// Enables or disables a user; returns false when it already was so.
///
/// Enabling a disabled user starts their activity afresh (`active_from`, see
/// [`super::activity`]): the next maintenance run does not disable them again for a
/// period of inactivity that ended with this decision.
pub fn set_enabled(conn: &Connection, name: &str, enabled: bool) -> Result<bool> {
    require_user(conn, name)?;
    let n = conn.execute(
        "UPDATE users SET enabled = ?2,
                active_from = CASE WHEN ?2 THEN unixepoch() ELSE active_from END
          WHERE name = ?1 AND enabled <> ?2",
        params![name, enabled],
    )?;
    Ok(n > 0)
}

/// `mfa-admin user unlock`: ends a lockout (in the database, hence the policy snapshot) and
/// clears the failure count (a file, [`crate::state`]); returns whether the user was locked.
/// A locked-out name without a record can be unlocked too (lockouts are kept by name).
pub fn unlock_user(store: &mut super::Store, actor: &str, name: &str) -> Result<bool> {
    let now = crate::now();
    let file_lock = crate::state::failures(store.path(), name).locked_until > now;
    let db_lock = store.change(actor, "user unlock", |tx| {
        let was = unlock(tx, name, now)?;
        if !was && !file_lock {
            require_user(tx, name)?;
        }
        Ok((was, name.to_string()))
    })?;
    crate::state::clear_failures(store.path(), name)?;
    Ok(db_lock || file_lock)
}

/// Ends a lockout in the database; returns whether the user was locked.
pub fn unlock(conn: &Connection, name: &str, now: i64) -> Result<bool> {
    let locked: Option<i64> = conn
        .query_row(
            "SELECT locked_until FROM lockouts WHERE user = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    conn.execute("DELETE FROM lockouts WHERE user = ?1", [name])?;
    Ok(locked.is_some_and(|t| t > now))
}

pub(crate) fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
    let channel: String = r.get(1)?;
    let address: String = r.get(2)?;
    let carrier: Option<String> = r.get(3)?;
    let suffix: Option<String> = r.get(5)?;
    let to = match (&channel[..], &suffix) {
        ("sms-gateway", Some(s)) => format!("{address}@{s}"),
        _ => address.clone(),
    };
    let masked = Contact {
        channel: Channel::parse(&channel).unwrap_or(Channel::Email),
        address: address.clone(),
        carrier: carrier.clone(),
    }
    .masked();
    Ok(ContactRow {
        seq: r.get(0)?,
        channel,
        address,
        carrier,
        to,
        masked,
        label: r.get(4)?,
    })
}

/// How the login menu names each of `contacts`: the masked form, with the contact's label
/// when it has one (`j***@e***.com (work)`). Contacts that still look alike show more of
/// their email address, at most half of the local part and of the domain's host part (never
/// the whole address); those that even so look alike keep the plain mask and show their
/// number instead (`j***@e***.com (work, contact 2)`).
pub fn menu_names(contacts: &[ContactRow]) -> Vec<String> {
    let name = |c: &ContactRow, masked: &str, number: bool| {
        let mut extra: Vec<String> = Vec::new();
        if !c.label.is_empty() {
            // Validated when stored; a label written behind mfa's back must still not
            // reach the user's terminal as control sequences.
            let shown: String = c
                .label
                .chars()
                .map(|ch| if ch.is_control() { '?' } else { ch })
                .collect();
            extra.push(shown);
        }
        if number {
            extra.push(format!("contact {}", c.seq));
        }
        match extra.is_empty() {
            true => masked.to_string(),
            false => format!("{masked} ({})", extra.join(", ")),
        }
    };
    let mut masked: Vec<String> = contacts.iter().map(|c| c.masked.clone()).collect();
    let alike = |masked: &[String]| -> Vec<bool> {
        let names: Vec<String> = contacts
            .iter()
            .zip(masked)
            .map(|(c, m)| name(c, m, false))
            .collect();
        (0..names.len())
            .map(|i| (0..names.len()).any(|j| j != i && names[j] == names[i]))
            .collect()
    };
    // Reveal one more character at a time, only of the contacts that still look alike.
    for shown in 2..=32 {
        let todo = alike(&masked);
        let mut changed = false;
        for (i, c) in contacts.iter().enumerate() {
            if todo[i] && c.channel == Channel::Email.as_str() {
                let longer = mask_email_showing(&c.address, shown);
                changed |= longer != masked[i];
                masked[i] = longer;
            }
        }
        if !changed {
            break;
        }
    }
    // Those still alike show no more of their address than the mask (it did not help), and
    // their number.
    let todo = alike(&masked);
    contacts
        .iter()
        .zip(&masked)
        .zip(todo)
        .map(|((c, m), number)| match number {
            true => name(c, &c.masked, true),
            false => name(c, m, false),
        })
        .collect()
}

/// `j***@e***.com` with up to `n` leading characters of the local part and of the domain's
/// host part, each at most half of it (at least one).
fn mask_email_showing(address: &str, n: usize) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return "***".into();
    };
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    let head = |s: &str| {
        let k = n.min((s.chars().count() / 2).max(1));
        s.chars().take(k).collect::<String>()
    };
    let tld = if tld.is_empty() {
        String::new()
    } else {
        format!(".{tld}")
    };
    format!("{}***@{}***{tld}", head(local), head(host))
}

/// A user's contacts by number.
pub fn contacts(conn: &Connection, user: &str) -> Result<Vec<ContactRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.seq, c.channel, c.address, c.carrier, c.label, k.suffix
         FROM contacts c LEFT JOIN carriers k ON k.name = c.carrier
         WHERE c.user = ?1 ORDER BY c.seq",
    )?;
    let rows = stmt.query_map([user], contact_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Resolves a carrier name (any case) to its stored name.
pub fn carrier_name(conn: &Connection, name: &str) -> Result<String> {
    let found: Option<String> = conn
        .query_row(
            "SELECT name FROM carriers WHERE name = ?1",
            [name.trim()],
            |r| r.get(0),
        )
        .optional()?;
    found.ok_or_else(|| {
        Error::NotFound(format!(
            "unknown carrier {name:?}: `mfa-admin carrier list` shows the carriers, `mfa-admin carrier add NAME SUFFIX` adds one"
        ))
    })
}

/// Adds a contact with the lowest free number (or `seq` when given); a fifth contact or the
/// same destination twice is a conflict. Returns the number.
pub fn add_contact(
    conn: &Connection,
    user: &str,
    contact: &Contact,
    label: &str,
    seq: Option<i64>,
    now: i64,
) -> Result<i64> {
    require_user(conn, user)?;
    let existing = contacts(conn, user)?;
    if existing.len() >= MAX_CONTACTS {
        return Err(Error::Conflict(format!(
            "user {user:?} already has {MAX_CONTACTS} contacts, the most allowed; delete one first with `mfa-admin contact del {user} SEQ`"
        )));
    }
    let carrier = contact
        .carrier
        .as_deref()
        .map(|c| carrier_name(conn, c))
        .transpose()?;
    if let Some(dup) = existing.iter().find(|c| {
        c.channel == contact.channel.as_str()
            && c.address == contact.address
            && c.carrier == carrier
    }) {
        return Err(Error::Conflict(format!(
            "user {user:?} already has this contact as number {}",
            dup.seq
        )));
    }
    let seq = match seq {
        Some(s) if existing.iter().any(|c| c.seq == s) => {
            return Err(Error::Conflict(format!(
                "user {user:?} already has a contact number {s}"
            )));
        }
        Some(s) => s,
        None => (1..=MAX_CONTACTS as i64)
            .find(|s| existing.iter().all(|c| c.seq != *s))
            .unwrap_or(1),
    };
    conn.execute(
        "INSERT INTO contacts (user, seq, channel, address, carrier, label, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            user,
            seq,
            contact.channel.as_str(),
            contact.address,
            carrier,
            label,
            now
        ],
    )?;
    Ok(seq)
}

/// Fails with a clear message unless `user` has a contact number `seq`.
pub fn require_contact(conn: &Connection, user: &str, seq: i64) -> Result<()> {
    if contacts(conn, user)?.iter().any(|c| c.seq == seq) {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "{user} has no contact {seq}: see `mfa-admin contact list {user}`"
    )))
}

/// A deleted contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedContact {
    pub row: ContactRow,
    /// It was the user's double-logon contact: that override was cleared (double logons
    /// now go to the first contact), not left to point at a number another contact may
    /// take later.
    pub cleared_double_logon: bool,
}

/// Deletes a contact by number, returning it; a double-logon override that chose it is
/// cleared.
pub fn delete_contact(conn: &Connection, user: &str, seq: i64) -> Result<DeletedContact> {
    require_user(conn, user)?;
    let row = contacts(conn, user)?.into_iter().find(|c| c.seq == seq).ok_or_else(|| {
        Error::NotFound(format!(
            "user {user:?} has no contact number {seq}; `mfa-admin contact list {user}` shows the numbers"
        ))
    })?;
    // The schema's trigger clears the choice with the contact; this only tells the caller.
    let cleared_double_logon: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM overrides WHERE user = ?1 AND double_logon_contact = ?2)",
        params![user, seq],
        |r| r.get(0),
    )?;
    conn.execute(
        "DELETE FROM contacts WHERE user = ?1 AND seq = ?2",
        params![user, seq],
    )?;
    Ok(DeletedContact {
        row,
        cleared_double_logon,
    })
}

fn override_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Override> {
    Ok(Override {
        user: r.get(0)?,
        mandatory: r.get(1)?,
        exempt: r.get(2)?,
        self_enroll: r.get(3)?,
        log: r.get(4)?,
        double_logon_contact: r.get(5)?,
        factors: factors_of(r.get(6)?)?,
    })
}

/// Stored allowed factors (`NULL` or 1..15); another value is a damaged store.
pub fn factors_of(v: Option<i64>) -> rusqlite::Result<Option<Factors>> {
    v.map(|b| {
        Factors::from_bits(b).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Integer,
                format!("stored factors {b} are not within 1..15").into(),
            )
        })
    })
    .transpose()
}

/// A user's overrides, if any.
pub fn override_of(conn: &Connection, user: &str) -> Result<Option<Override>> {
    Ok(conn
        .query_row(
            "SELECT user, mandatory, exempt, self_enroll, log_level, double_logon_contact, factors
             FROM overrides WHERE user = ?1",
            [user],
            override_row,
        )
        .optional()?)
}

/// Every override, by user.
pub fn overrides(conn: &Connection) -> Result<Vec<Override>> {
    let mut stmt = conn.prepare(
        "SELECT user, mandatory, exempt, self_enroll, log_level, double_logon_contact, factors
         FROM overrides ORDER BY user",
    )?;
    let rows = stmt.query_map([], override_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Applies a change to a user's overrides; being both mandatory and exempt is refused.
pub fn set_override(conn: &Connection, user: &str, change: &OverrideChange) -> Result<Override> {
    require_user(conn, user)?;
    let mut o = override_of(conn, user)?.unwrap_or(Override {
        user: user.to_string(),
        mandatory: None,
        exempt: None,
        self_enroll: None,
        log: None,
        double_logon_contact: None,
        factors: None,
    });
    if let Some(v) = change.mandatory {
        o.mandatory = v;
    }
    if let Some(v) = change.exempt {
        o.exempt = v;
    }
    if let Some(v) = change.self_enroll {
        o.self_enroll = v;
    }
    if let Some(v) = &change.log {
        o.log.clone_from(v);
    }
    if let Some(v) = change.double_logon_contact {
        if let Some(n) = v {
            require_contact(conn, user, n)?;
        }
        o.double_logon_contact = v;
    }
    if let Some(v) = change.factors {
        o.factors = v;
    }
    if o.mandatory == Some(true) && o.exempt == Some(true) {
        return Err(Error::Conflict(format!(
            "user {user:?} cannot be both mandatory and exempt; set the other to no in the same command (e.g. --exempt no --mandatory yes)"
        )));
    }
    conn.execute(
        "INSERT INTO overrides (user, mandatory, exempt, self_enroll, log_level, double_logon_contact,
                                factors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (user) DO UPDATE SET mandatory = excluded.mandatory, exempt = excluded.exempt,
             self_enroll = excluded.self_enroll, log_level = excluded.log_level,
             double_logon_contact = excluded.double_logon_contact, factors = excluded.factors",
        params![
            user,
            o.mandatory,
            o.exempt,
            o.self_enroll,
            o.log,
            o.double_logon_contact,
            o.factors.map(Factors::bits)
        ],
    )?;
    Ok(o)
}

/// Removes a user's overrides.
pub fn delete_override(conn: &Connection, user: &str) -> Result<()> {
    require_user(conn, user)?;
    if conn.execute("DELETE FROM overrides WHERE user = ?1", [user])? == 0 {
        return Err(Error::NotFound(format!("user {user:?} has no overrides")));
    }
    Ok(())
}

/// Every carrier, by name.
pub fn carriers(conn: &Connection) -> Result<Vec<Carrier>> {
    let mut stmt = conn.prepare(
        "SELECT k.name, k.suffix, (SELECT count(*) FROM contacts c WHERE c.carrier = k.name)
         FROM carriers k ORDER BY k.name COLLATE NOCASE",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Carrier {
            name: r.get(0)?,
            suffix: r.get(1)?,
            contacts: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds a carrier (name and suffix already validated); an existing name is a conflict.
pub fn add_carrier(conn: &Connection, name: &str, suffix: &str) -> Result<()> {
    if conn.execute(
        "INSERT INTO carriers (name, suffix) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![name, suffix],
    )? == 0
    {
        let existing = carrier_name(conn, name)?;
        return Err(Error::Conflict(format!(
            "carrier {existing:?} already exists; delete it first with `mfa-admin carrier del '{existing}'`"
        )));
    }
    Ok(())
}

/// Deletes a carrier no contact uses; otherwise the error names the users.
pub fn delete_carrier(conn: &Connection, name: &str) -> Result<String> {
    let name = carrier_name(conn, name)?;
    let mut stmt =
        conn.prepare("SELECT DISTINCT user FROM contacts WHERE carrier = ?1 ORDER BY user")?;
    let users: Vec<String> = stmt
        .query_map([&name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if !users.is_empty() {
        return Err(Error::Conflict(format!(
            "carrier {name:?} is used by contacts of {}; delete or change those contacts first",
            users.join(", ")
        )));
    }
    conn.execute("DELETE FROM carriers WHERE name = ?1", [&name])?;
    Ok(name)
}

#[cfg(test)]
#[path = "people_tests.rs"]
mod tests;
