//! `net`: trusted-network rules per service, and `net check`, which explains the decision
//! for an address.

use mfa_core::net::{IpRange, parse_address};
use mfa_core::settings::LogLevel;
use mfa_core::store::rules::{self as q, NetRule, NewNetRule};
use mfa_core::{Result, validate};
use serde::Serialize;

use super::{Ctx, parse_number};
use crate::cli::NetCmd;
use crate::output::{json, table};
use crate::when;

/// Refuses (the transaction is rolled back) a network-rule change that moved `service`'s
/// method: a network rule alone makes a name govern itself (`mfa_core::service`), so a first
/// rule for `sudo-i` would take it from `sudo`'s method to `*`'s, and deleting the last one
/// back again. A "2FA required" rule must never turn the second factor off silently; the
/// administrator gives the service its method explicitly first.
fn keep_method(service: &str, before: &str, after: &str, doing: &str) -> Result<()> {
    if after == before {
        return Ok(());
    }
    Err(mfa_core::invalid!(
        "{doing} would change the method of {service} from {before} to {after} (a network rule \
         alone makes a service follow its own rules, else its family's, before `*`); give it \
         its method explicitly first: `mfa-admin service set {service} {before}`"
    ))
}

fn rows(rules: &[NetRule]) -> Vec<Vec<String>> {
    rules
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                r.service.clone(),
                r.range.clone(),
                if r.require {
                    "required".into()
                } else {
                    "trusted".into()
                },
                r.log.clone().unwrap_or_else(|| "-".into()),
                when::show(r.created),
                r.note.clone(),
            ]
        })
        .collect()
}

const HEADER: &[&str] = &["ID", "SERVICE", "RANGE", "2FA", "LOG", "ADDED", "NOTE"];

#[derive(Serialize)]
struct Check {
    address: String,
    service: String,
    /// "required" or "trusted".
    decision: &'static str,
    /// The deciding rule; null when no rule matches (2FA required).
    rule: Option<NetRule>,
    /// Every matching rule, deciding rule first.
    matches: Vec<NetRule>,
    /// The global switch.
    enabled: bool,
    /// The method of the service.
    method: String,
    /// The name whose rules apply: the service itself, or the nearest name of its family
    /// with a rule of its own (`su` for `su-l`; see `mfa_core::service`).
    rules_of: String,
}

pub fn run(ctx: &Ctx, cmd: NetCmd) -> Result<()> {
    match cmd {
        NetCmd::List { service } => {
            let service = service.map(|s| validate::service(&s)).transpose()?;
            let store = ctx.store()?;
            // The rules that apply to the service: those of the name governing it (its own,
            // or its family's: `su` for `su-l`) and `*`'s.
            let service = service
                .map(|s| q::governing(store.conn(), &s))
                .transpose()?;
            let list = q::networks(store.conn(), service.as_deref())?;
            if ctx.json {
                return json(&list);
            }
            table(HEADER, rows(&list), "no network rules");
            Ok(())
        }
        NetCmd::Add(a) => {
            let service = validate::service(&a.service)?;
            let range = match (&a.cidr, &a.range) {
                (Some(c), _) => IpRange::parse_cidr(c)?,
                (None, Some(r)) => IpRange::parse_range(r)?,
                (None, None) => unreachable_where()?,
            };
            let log = a
                .log
                .as_deref()
                .map(LogLevel::parse)
                .transpose()?
                .map(|l| l.as_str().to_string());
            let note = validate::label("note", &a.note, 200)?;
            let rule = NewNetRule {
                service,
                range,
                require: a.require,
                log,
                note,
            };
            let mut store = ctx.store()?;
            let what = format!(
                "{} for {}: 2FA {}",
                rule.range,
                rule.service,
                if rule.require {
                    "required"
                } else {
                    "not required (trusted)"
                }
            );
            let id = store.change(&ctx.actor(), "net add", |tx| {
                let before = q::method_for(tx, &rule.service)?;
                let id = q::add_network(tx, &rule, mfa_core::now())?;
                let after = q::method_for(tx, &rule.service)?;
                keep_method(&rule.service, &before, &after, "adding this rule")?;
                Ok((id, format!("rule {id}: {what}")))
            })?;
            crate::pam_files::warn_unknown(&rule.service, &crate::pam_files::dir());
            if ctx.json {
                return json(&serde_json::json!({ "id": id }));
            }
            println!("added rule {id}: {what}");
            Ok(())
        }
        NetCmd::Del { id } => {
            let id = parse_number("rule ID", &id, i64::MAX)?;
            let mut store = ctx.store()?;
            let rule = store.change(&ctx.actor(), "net del", |tx| {
                let service: Option<String> = tx
                    .query_row("SELECT service FROM networks WHERE id = ?1", [id], |r| {
                        r.get(0)
                    })
                    .ok();
                let before = service
                    .as_deref()
                    .map(|s| q::method_for(tx, s))
                    .transpose()?;
                let r = q::delete_network(tx, id)?;
                if let Some(before) = before {
                    let after = q::method_for(tx, &r.service)?;
                    keep_method(&r.service, &before, &after, "deleting this rule")?;
                }
                let detail = format!("rule {id}: {} for {}", r.range, r.service);
                Ok((r, detail))
            })?;
            println!("deleted rule {id}: {} for {}", rule.range, rule.service);
            Ok(())
        }
        NetCmd::Check { service, address } => {
            let service = validate::service(&service)?;
            let addr = parse_address(&address)?;
            let store = ctx.store()?;
            let rules_of = q::governing(store.conn(), &service)?;
            let matches = q::matching_networks(store.conn(), &service, addr)?;
            let settings = q::settings(store.conn())?;
            let method = q::method_for(store.conn(), &service)?;
            let rule = matches.first().cloned();
            let decision = match &rule {
                Some(r) if !r.require => "trusted",
                _ => "required",
            };
            let check = Check {
                address: addr.to_string(),
                service: service.clone(),
                decision,
                rule,
                matches,
                enabled: settings.enabled,
                method,
                rules_of,
            };
            if ctx.json {
                return json(&check);
            }
            print_check(&check);
            Ok(())
        }
    }
}

fn print_check(c: &Check) {
    if c.rules_of != c.service {
        println!(
            "{} has no rule of its own: it follows the rules of {}",
            c.service, c.rules_of
        );
    }
    match &c.rule {
        Some(r) => {
            let why = if c.matches.len() == 1 {
                "the only matching rule".to_string()
            } else {
                format!("the narrowest of {} matching rules", c.matches.len())
            };
            let verdict = if r.require {
                "2FA required".to_string()
            } else {
                "trusted: no second factor (except for users marked mandatory)".to_string()
            };
            println!("{} on {}: {verdict}", c.address, c.service);
            println!(
                "rule {} ({} for {}) decides: {why}",
                r.id, r.range, r.service
            );
            println!();
            table(HEADER, rows(&c.matches), "");
        }
        None => {
            println!("{} on {}: 2FA required", c.address, c.service);
            println!(
                "no trusted-network rule for {} or * contains this address",
                c.rules_of
            );
        }
    }
    if !c.enabled {
        println!("note: 2FA is off globally; `mfa-admin settings set enabled=on` turns it on");
    }
    if c.method == "none" {
        println!(
            "note: service {} has method none; `mfa-admin service set {} METHOD` changes it",
            c.service, c.service
        );
    }
}

fn unreachable_where() -> Result<IpRange> {
    Err(mfa_core::invalid!("give --cidr or --range"))
}
