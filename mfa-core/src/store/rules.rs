//! Queries for the rules that say where a second factor is needed: settings, per-service
//! methods, trusted networks (with the narrowest-rule-wins lookup) and message templates.
//! A service without a rule of its own follows its family ([`crate::service`]): every
//! lookup here goes through [`governing`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::net::{IpRange, addr_key};
use crate::settings::{self, Settings};
use crate::template;
use crate::validate::ANY_SERVICE;
use crate::{Error, Result};

/// The stored (explicitly set) settings, by key.
pub fn stored_settings(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM settings")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The typed settings.
pub fn settings(conn: &Connection) -> Result<Settings> {
    Settings::from_stored(&stored_settings(conn)?)
}

/// Sets one setting to an already-normalised value. Only values that differ from the
/// default are stored, so that one state has one representation (and import is idempotent).
pub fn set_setting(conn: &Connection, key: &str, value: &str) -> Result<()> {
    if key == "default_group" && value != "none" {
        let known: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM groups WHERE name = ?1)",
            [value],
            |r| r.get(0),
        )?;
        if !known {
            return Err(crate::Error::NotFound(format!(
                "no group {value:?}: create it first with `mfa-admin group add {value}`"
            )));
        }
    }
    if settings::spec(key)?.default == value {
        return reset_setting(conn, key);
    }
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Returns a setting to its default.
pub fn reset_setting(conn: &Connection, key: &str) -> Result<()> {
    conn.execute("DELETE FROM settings WHERE key = ?1", [key])?;
    Ok(())
}

/// One service's method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceMethod {
    /// PAM service name, or `*`.
    pub service: String,
    /// none, passcode, totp, duo or any.
    pub method: String,
}

/// Every service rule, `*` first.
pub fn services(conn: &Connection) -> Result<Vec<ServiceMethod>> {
    let mut stmt = conn.prepare("SELECT name, method FROM services ORDER BY name <> '*', name")?;
    let rows = stmt.query_map([], |r| {
        Ok(ServiceMethod {
            service: r.get(0)?,
            method: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether `name` has a rule of its own: a method, or a trusted-network rule.
pub fn has_rule(conn: &Connection, name: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM services WHERE name = ?1)
             OR EXISTS (SELECT 1 FROM networks WHERE service = ?1)",
    )?;
    Ok(stmt.query_row([name], |r| r.get(0))?)
}

/// The name whose rules govern `service` ([`crate::service::governing`]): `service` itself
/// when it has a rule, else the nearest name of its family that has one (`su-l` -> `su`),
/// else `service` (then only `*` applies).
pub fn governing(conn: &Connection, service: &str) -> Result<String> {
    if service == ANY_SERVICE {
        return Ok(service.into());
    }
    for name in crate::service::lineage(service) {
        if has_rule(conn, name)? {
            return Ok(name.into());
        }
    }
    Ok(service.into())
}

/// The method that applies to a service: that of the name governing it ([`governing`]),
/// else `*`'s, else `none`.
pub fn method_for(conn: &Connection, service: &str) -> Result<String> {
    let name = governing(conn, service)?;
    let m: Option<String> = conn
        .query_row(
            "SELECT method FROM services WHERE name IN (?1, '*') ORDER BY name = '*' LIMIT 1",
            [&name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(m.unwrap_or_else(|| "none".into()))
}

/// Sets a service's (validated) method.
pub fn set_service(conn: &Connection, service: &str, method: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO services (name, method) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET method = excluded.method",
        params![service, method],
    )?;
    Ok(())
}

/// Removes a service's own rule so that `*` applies; `*` itself cannot be removed.
pub fn delete_service(conn: &Connection, service: &str) -> Result<()> {
    if service == ANY_SERVICE {
        return Err(Error::Invalid(
            "the * rule cannot be removed: set its method with `service set '*' METHOD`".into(),
        ));
    }
    if conn.execute("DELETE FROM services WHERE name = ?1", [service])? == 0 {
        return Err(Error::NotFound(format!(
            "no rule for service {service:?}; `mfa-admin service list` shows the rules"
        )));
    }
    Ok(())
}

/// A trusted-network rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetRule {
    /// Rule number, for `net del`.
    pub id: i64,
    /// PAM service, or `*`.
    pub service: String,
    /// The range as shown: CIDR when it is one block, else FIRST-LAST.
    pub range: String,
    /// First address of the range.
    pub first: String,
    /// Last address of the range.
    pub last: String,
    /// 4 or 6.
    pub family: i64,
    /// True: 2FA required from here. False: trusted, no second factor.
    pub require: bool,
    /// Log level for outcomes decided by this rule (None: the user's or global level).
    pub log: Option<String>,
    /// Free text.
    pub note: String,
    /// When the rule was added (Unix seconds).
    pub created: i64,
}

/// A new rule, validated.
#[derive(Debug, Clone)]
pub struct NewNetRule {
    pub service: String,
    pub range: IpRange,
    pub require: bool,
    pub log: Option<String>,
    pub note: String,
}

const NET_COLUMNS: &str = "id, service, family, first, last, require, log_level, note, created";

fn net_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NetRule> {
    let family: i64 = r.get(2)?;
    let first: Vec<u8> = r.get(3)?;
    let last: Vec<u8> = r.get(4)?;
    let range = IpRange::from_keys(family, &first, &last).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Blob,
            "bad address key".into(),
        )
    })?;
    Ok(NetRule {
        id: r.get(0)?,
        service: r.get(1)?,
        range: range.to_string(),
        first: range.first().to_string(),
        last: range.last().to_string(),
        family,
        require: r.get(5)?,
        log: r.get(6)?,
        note: r.get(7)?,
        created: r.get(8)?,
    })
}

/// Rules, optionally only those of one service (and `*`), in a stable order.
pub fn networks(conn: &Connection, service: Option<&str>) -> Result<Vec<NetRule>> {
    let sql = format!(
        "SELECT {NET_COLUMNS} FROM networks WHERE ?1 IS NULL OR service IN (?1, '*')
         ORDER BY service <> '*', service, family, first, last"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([service], net_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds a rule; the same range for the same service twice is a conflict naming the rule.
pub fn add_network(conn: &Connection, rule: &NewNetRule, now: i64) -> Result<i64> {
    let r = &rule.range;
    // Cached statements: an import adds thousands of rules in one transaction.
    let existing: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM networks WHERE service = ?1 AND family = ?2 AND first = ?3 AND last = ?4",
        )?
        .query_row(
            params![rule.service, r.family().number(), addr_key(r.first()), addr_key(r.last())],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(id) = existing {
        return Err(Error::Conflict(format!(
            "rule {id} already covers {r} for service {}; delete it first with `mfa-admin net del {id}`",
            rule.service
        )));
    }
    conn.prepare_cached(
        "INSERT INTO networks (service, family, first, last, span, require, log_level, note, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        rule.service,
        r.family().number(),
        addr_key(r.first()),
        addr_key(r.last()),
        r.span().to_be_bytes(),
        rule.require,
        rule.log,
        rule.note,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Deletes a rule by number, returning it.
pub fn delete_network(conn: &Connection, id: i64) -> Result<NetRule> {
    let rule = conn
        .query_row(
            &format!("SELECT {NET_COLUMNS} FROM networks WHERE id = ?1"),
            [id],
            net_row,
        )
        .optional()?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no network rule {id}; `mfa-admin net list` shows the rules"
            ))
        })?;
    conn.execute("DELETE FROM networks WHERE id = ?1", [id])?;
    Ok(rule)
}

/// Every rule of the name governing `service` ([`governing`]) or of `*` whose range contains
/// `addr`, the deciding rule first: narrowest range, then a rule of the service (or its
/// family) over `*`, then "require" over "trusted" (the safer reading of a tie), then the
/// older rule.
pub fn matching_networks(conn: &Connection, service: &str, addr: IpAddr) -> Result<Vec<NetRule>> {
    let service = governing(conn, service)?;
    let addr = addr.to_canonical();
    let family = if addr.is_ipv4() { 4 } else { 6 };
    let sql = format!(
        "SELECT {NET_COLUMNS} FROM networks
         WHERE family = ?1 AND first <= ?2 AND last >= ?2 AND service IN (?3, '*')
         ORDER BY span, service = '*', require DESC, id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![family, addr_key(addr), service], net_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One template and whether it is the default text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    /// passcode-subject, passcode-body or test-body.
    pub name: String,
    /// The text with its placeholders.
    pub text: String,
    /// True when the administrator has not changed it.
    pub default: bool,
}

/// Every template, in the order of [`template::TEMPLATES`].
pub fn templates(conn: &Connection) -> Result<Vec<Template>> {
    let mut stmt = conn.prepare_cached("SELECT body FROM templates WHERE name = ?1")?;
    template::TEMPLATES
        .iter()
        .map(|(name, default)| {
            let custom: Option<String> = stmt.query_row([name], |r| r.get(0)).optional()?;
            Ok(Template {
                name: name.to_string(),
                default: custom.is_none(),
                text: custom.unwrap_or_else(|| default.to_string()),
            })
        })
        .collect()
}

/// Sets a template after validating it; the default text is stored as "unchanged".
pub fn set_template(conn: &Connection, name: &str, text: &str) -> Result<()> {
    template::validate(name, text)?;
    if template::default_text(name)? == text {
        conn.execute("DELETE FROM templates WHERE name = ?1", [name])?;
    } else {
        conn.execute(
            "INSERT INTO templates (name, body) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            params![name, text],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::parse_address;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        (dir, s)
    }

    fn add(conn: &Connection, service: &str, range: &str, require: bool) -> i64 {
        let rule = NewNetRule {
            service: service.into(),
            range: IpRange::parse_any(range).unwrap(),
            require,
            log: None,
            note: String::new(),
        };
        add_network(conn, &rule, 0).unwrap()
    }

    #[test]
    fn narrowest_rule_wins() {
        let (_d, s) = store();
        let c = s.conn();
        let wide = add(c, "sshd", "10.2.2.0-10.2.2.254", false);
        let host = add(c, "sshd", "10.2.2.120", true);
        let star = add(c, "*", "10.0.0.0/8", true);
        let v6 = add(c, "*", "2001:db8::/32", false);
        let at = |a: &str| matching_networks(c, "sshd", parse_address(a).unwrap()).unwrap();
        assert_eq!(
            at("10.2.2.7").iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![wide, star]
        );
        assert_eq!(at("10.2.2.120")[0].id, host);
        assert_eq!(at("10.9.9.9")[0].id, star);
        assert_eq!(at("2001:db8::5")[0].id, v6);
        assert!(at("192.168.1.1").is_empty());
        assert!(
            matching_networks(c, "vsftpd", parse_address("10.2.2.7").unwrap()).unwrap()[0].id
                == star
        );
    }

    #[test]
    fn ties_prefer_own_service_then_require() {
        let (_d, s) = store();
        let c = s.conn();
        let star = add(c, "*", "10.0.0.0/24", false);
        let own = add(c, "sshd", "10.0.0.0/24", false);
        let a = parse_address("10.0.0.1").unwrap();
        assert_eq!(matching_networks(c, "sshd", a).unwrap()[0].id, own);
        assert_eq!(matching_networks(c, "su", a).unwrap()[0].id, star);
        let e = add_network(
            c,
            &NewNetRule {
                service: "sshd".into(),
                range: IpRange::parse_any("10.0.0.0/24").unwrap(),
                require: true,
                log: None,
                note: String::new(),
            },
            0,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Conflict(_)));
    }

    #[test]
    fn service_methods() {
        let (_d, s) = store();
        let c = s.conn();
        assert_eq!(method_for(c, "sshd").unwrap(), "any");
        set_service(c, "sshd", "passcode").unwrap();
        assert_eq!(method_for(c, "sshd").unwrap(), "passcode");
        assert_eq!(method_for(c, "su").unwrap(), "any");
        delete_service(c, "sshd").unwrap();
        assert!(delete_service(c, "*").is_err());
        assert!(matches!(delete_service(c, "sshd"), Err(Error::NotFound(_))));
    }

    #[test]
    fn families_follow_the_nearest_rule() {
        let (_d, s) = store();
        let c = s.conn();
        set_service(c, "su", "none").unwrap();
        set_service(c, "sudo", "totp").unwrap();
        assert_eq!(method_for(c, "su-l").unwrap(), "none");
        assert_eq!(method_for(c, "sudo-i").unwrap(), "totp");
        assert_eq!(method_for(c, "sudo-i-x").unwrap(), "totp");
        assert_eq!(
            method_for(c, "sudoedit").unwrap(),
            "any",
            "not a family member"
        );
        assert_eq!(governing(c, "su-l").unwrap(), "su");
        assert_eq!(governing(c, "login").unwrap(), "login");
        assert_eq!(governing(c, "*").unwrap(), "*");

        // Network rules of the family apply, and count as the service's own over `*`.
        let star = add(c, "*", "10.0.0.0/24", false);
        let su = add(c, "su", "10.0.0.0/24", true);
        let a = parse_address("10.0.0.9").unwrap();
        let ids = |svc: &str| {
            matching_networks(c, svc, a)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("su-l"), vec![su, star]);
        assert_eq!(ids("sudo-i"), vec![star]);

        // A network rule alone makes a name govern itself: its method is then `*`'s.
        let own = add(c, "su-l", "10.0.0.0/24", false);
        assert_eq!(governing(c, "su-l").unwrap(), "su-l");
        assert_eq!(method_for(c, "su-l").unwrap(), "any");
        assert_eq!(ids("su-l"), vec![own, star]);
        // So does a method alone.
        set_service(c, "sudo-i", "passcode").unwrap();
        assert_eq!(method_for(c, "sudo-i").unwrap(), "passcode");
        delete_service(c, "sudo-i").unwrap();
        assert_eq!(
            method_for(c, "sudo-i").unwrap(),
            "totp",
            "back to the family"
        );
    }
}
