//! `log` and `audit`: reading and purging the auth log, reading the audit log. In a fleet
//! `log show` reads the central log, every host's rows (`--host` one host's, `--local`
//! this host's own database), after shipping this host's newest rows; `log purge` purges
//! this host's log and the central one.

use mfa_core::net::IpRange;
use mfa_core::store::logs::{self as q, AuthEvent, AuthFilter};
use mfa_core::store::rules::settings;
use mfa_core::store_config::valid_host;
use mfa_core::{Result, invalid, validate};
use serde::Serialize;

use super::{Ctx, parse_number};
use crate::cli::{AuditCmd, LogCmd};
use crate::output::{json, table};
use crate::when::{self, parse_time};

const MAX_LIMIT: i64 = 1_000_000_000;

fn limit(text: Option<&str>) -> Result<Option<u32>> {
    text.map(|l| {
        parse_number("--limit", l, MAX_LIMIT).map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    })
    .transpose()
}

pub fn log(ctx: &Ctx, cmd: LogCmd) -> Result<()> {
    let now = mfa_core::now();
    match cmd {
        LogCmd::Show(s) => {
            let filter = AuthFilter {
                user: s.user.map(|u| validate::user_name(&u)).transpose()?,
                address: s.address.as_deref().map(IpRange::parse_any).transpose()?,
                service: s.service.map(|v| validate::service(&v)).transpose()?,
                outcome: s.outcome.as_deref().map(q::outcome).transpose()?,
                since: s
                    .since
                    .as_deref()
                    .map(|t| parse_time("--since", t, now))
                    .transpose()?,
                until: s
                    .until
                    .as_deref()
                    .map(|t| parse_time("--until", t, now))
                    .transpose()?,
                limit: limit(s.limit.as_deref())?,
            };
            if let (Some(a), Some(b)) = (filter.since, filter.until)
                && a >= b
            {
                return Err(invalid!("--since must be before --until"));
            }
            let fleet = ctx.config.store.is_fleet();
            if let Some(h) = &s.host {
                if !fleet {
                    return Err(invalid!(
                        "--host reads a fleet's central log, and this host is not in a fleet \
                         ([store] backend = \"sqlite\" in {}): leave out --host to read this \
                         host's log, or join a fleet (set [store] backend = \"postgres\" with \
                         its url and password_file, then `mfa-admin fleet join`)",
                        ctx.config_path.display()
                    ));
                }
                if !valid_host(h) {
                    return Err(invalid!(
                        "--host {h:?} is not a host name: 1 to 64 letters, digits, '.', '-' or '_'"
                    ));
                }
            }
            if fleet && !s.local {
                return central_log(ctx, &filter, s.host.as_deref());
            }
            let rows = q::auth_log(ctx.store()?.conn(), &filter)?;
            if ctx.json {
                return json(&rows);
            }
            print_log(rows.into_iter().map(|e| (None, e)).collect());
            Ok(())
        }
        LogCmd::Purge { before, keep_days } => {
            let mut store = ctx.store()?;
            let cutoff = match (before, keep_days) {
                (Some(b), _) => parse_time("--before", &b, now)?,
                (None, Some(k)) => now - parse_number("--keep-days", &k, 36500)? * 86400,
                (None, None) => {
                    let days = settings(store.conn())?.log_keep_days;
                    if days == 0 {
                        return Err(invalid!(
                            "say what to purge: --before DATE or --keep-days N (the log_keep_days setting is 0, keep everything)"
                        ));
                    }
                    now - i64::from(days) * 86400
                }
            };
            let shown = when::show(cutoff);
            let n = store.purge_auth_log(&ctx.actor(), cutoff, |n| {
                Some(format!("{n} entries before {shown}"))
            })?;
            // A fleet host: the central log too (it is the one `log show` reads).
            let central = if super::fleet_member::member(&ctx.config, &store) {
                let done = super::fleet_member::with_client(&ctx.config, |c| {
                    mfa_fleet::logs::purge_central(c, cutoff)
                });
                match done {
                    Ok(m) => Some(m),
                    Err(e) => {
                        return Err(mfa_core::Error::Failed(format!(
                            "deleted {n} entries before {shown} from this host's log, but not \
                             from the fleet's central log: {e}; run the same command again \
                             when the central store is reachable"
                        )));
                    }
                }
            } else {
                None
            };
            if ctx.json {
                return json(&serde_json::json!({ "deleted": n, "before": cutoff,
                                                 "central_deleted": central }));
            }
            match central {
                Some(m) => println!(
                    "deleted {n} log entries before {shown} (and {m} from the fleet's central log)"
                ),
                None => println!("deleted {n} log entries before {shown}"),
            }
            Ok(())
        }
    }
}

/// Prints auth-log rows as a table; with a HOST column when they come from the central
/// log (each row's host is `Some`).
fn print_log(rows: Vec<(Option<String>, AuthEvent)>) {
    let hosts = rows.iter().any(|(h, _)| h.is_some());
    // Duo's transaction ids: a column only when a row has one.
    let txids = rows.iter().any(|(_, e)| !e.txid.is_empty());
    let rows = rows
        .into_iter()
        .map(|(host, e)| {
            let mut row = vec![when::show(e.time)];
            if hosts {
                row.push(host.unwrap_or_default());
            }
            row.extend([
                e.user,
                e.service,
                if e.address.is_empty() {
                    "local".into()
                } else {
                    e.address
                },
                e.tty,
                e.outcome,
                e.method,
                e.destination,
                readable_reason(&e.reason),
            ]);
            if txids {
                row.push(e.txid);
            }
            row
        })
        .collect();
    let mut header = vec!["TIME"];
    if hosts {
        header.push("HOST");
    }
    header.extend([
        "USER", "SERVICE", "ADDRESS", "TTY", "OUTCOME", "METHOD", "SENT TO", "REASON",
    ]);
    if txids {
        header.push("DUO TXID");
    }
    table(&header, rows, "no log entries");
}

/// One row of the central log in JSON: the host, then the row as `log show` gives it.
#[derive(Serialize)]
struct CentralRow {
    host: String,
    #[serde(flatten)]
    event: AuthEvent,
}

/// `log show` in a fleet: every host's rows from the central store (`host`: one host's).
fn central_log(ctx: &Ctx, filter: &AuthFilter, host: Option<&str>) -> Result<()> {
    let mut store = ctx.store()?;
    if super::fleet_member::member(&ctx.config, &store)
        && let Err(e) = super::fleet_member::ship_logs(&ctx.config, &mut store)
    {
        eprintln!(
            "warning: this host's newest log rows could not be shipped ({e}); the central \
             log may lack them (`log show --local` reads this host's own)"
        );
    }
    let rows = super::fleet_member::with_client(&ctx.config, |c| {
        mfa_fleet::logs::central_auth_log(c, filter, host)
    })?;
    if ctx.json {
        let rows: Vec<CentralRow> = rows
            .into_iter()
            .map(|(host, event)| CentralRow { host, event })
            .collect();
        return json(&rows);
    }
    print_log(rows.into_iter().map(|(h, e)| (Some(h), e)).collect());
    Ok(())
}

/// A reason as people read it: the Unix time of a lockout that older versions of the module
/// logged (`locked out until 1796018216`) becomes a local date and time. (JSON keeps the
/// stored text.)
fn readable_reason(reason: &str) -> String {
    const AT: &str = "until ";
    let Some(i) = reason.find(AT) else {
        return reason.to_string();
    };
    let rest = &reason[i + AT.len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest[..digits].parse::<i64>() {
        Ok(ts) if digits >= 9 => {
            format!("{}{AT}{}{}", &reason[..i], when::show(ts), &rest[digits..])
        }
        _ => reason.to_string(),
    }
}

pub fn audit(ctx: &Ctx, cmd: AuditCmd) -> Result<()> {
    let AuditCmd::Show { since, limit: lim } = cmd;
    let since = since
        .as_deref()
        .map(|t| parse_time("--since", t, mfa_core::now()))
        .transpose()?;
    let rows = q::audit_log(ctx.store()?.conn(), since, limit(lim.as_deref())?)?;
    if ctx.json {
        return json(&rows);
    }
    let rows = rows
        .into_iter()
        .map(|e| vec![when::show(e.time), e.actor, e.action, e.detail])
        .collect();
    table(
        &["TIME", "WHO", "ACTION", "DETAIL"],
        rows,
        "no audit entries",
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::readable_reason;

    #[test]
    fn raw_lockout_times_become_dates() {
        let shown = readable_reason("locked out until 1796018216");
        assert!(shown.starts_with("locked out until 2026-11-3"), "{shown}");
        assert!(!shown.contains("1796018216"), "{shown}");
        for kept in [
            "locked out until 2026-11-30 05:56:56 UTC",
            "repeat window",
            "until 12",
            "until ",
            "until 99999999999999999999999",
        ] {
            assert_eq!(readable_reason(kept), kept);
        }
    }
}
