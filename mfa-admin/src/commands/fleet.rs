//! `fleet`: this host as a member of a fleet (`[store] backend = "postgres"`), whose rules
//! and logs live in one PostgreSQL database (the `mfa-fleet` crate). `fleet status` shows
//! every host as the central `hosts` table has it.

use mfa_core::store_config::StoreConfig;
use mfa_core::{Error, Result, invalid};
use mfa_fleet::hosts::{self, HostStatus};
use serde::Serialize;

use super::Ctx;
use crate::cli::FleetCmd;
use crate::output::{json, table};

pub fn run(ctx: &Ctx, cmd: FleetCmd) -> Result<()> {
    match cmd {
        FleetCmd::Status => status(ctx),
        FleetCmd::Join {
            replace_local_rules,
        } => super::fleet_member::join(ctx, replace_local_rules),
        FleetCmd::Sync => super::fleet_member::sync(ctx),
    }
}

/// `[store]` when this host is in a fleet; else the error (exit 2) naming the fix. `what`
/// is the command or option that needs a fleet.
pub fn require_fleet<'a>(ctx: &'a Ctx, what: &str) -> Result<&'a StoreConfig> {
    let store = &ctx.config.store;
    if !store.is_fleet() {
        return Err(invalid!(
            "{what}: this host is not in a fleet: set [store] backend = \"postgres\" with url, \
             password_file (and ca_file for a server elsewhere) in {}, then run \
             `mfa-admin fleet join`",
            ctx.config_path.display()
        ));
    }
    Ok(store)
}

/// Last contact older than this many seconds makes a host "silent": three rounds of
/// `[store] poll`, at least a minute.
fn silent_after(store: &StoreConfig) -> i64 {
    i64::from(store.poll_secs().unwrap_or(5))
        .saturating_mul(3)
        .max(60)
}

/// A host that lags behind the central store longer than this needs attention.
const BEHIND_GRACE: i64 = 60;

/// One host in `fleet status --json`.
#[derive(Serialize)]
struct HostLine {
    #[serde(flatten)]
    host: HostStatus,
    silent: bool,
    /// What needs attention (empty when healthy).
    problems: Vec<String>,
}

#[derive(Serialize)]
struct Status {
    /// The central store's newest generation.
    generation: i64,
    /// Seconds without contact after which a host is silent.
    silent_after: i64,
    /// No host needs attention.
    ok: bool,
    hosts: Vec<HostLine>,
}

/// A number of seconds as a short age: `42s`, `5m`, `3h`, `2d`.
fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn problems(h: &HostStatus, silent: bool) -> Vec<String> {
    let mut out = Vec::new();
    if silent {
        out.push(format!(
            "silent: last contact {} ago",
            age(h.last_contact_secs)
        ));
    }
    if let Some(s) = h.behind_secs.filter(|s| h.behind > 0 && *s > BEHIND_GRACE) {
        out.push(format!("{} change(s) behind for {}", h.behind, age(s)));
    }
    if !h.last_error.is_empty() {
        out.push(format!("last error: {}", h.last_error));
    }
    out
}

fn status(ctx: &Ctx) -> Result<()> {
    let mut client = mfa_fleet::connect::connect(require_fleet(ctx, "fleet status")?)?;
    let (generation, list) = hosts::status(&mut client)?;
    let limit = silent_after(&ctx.config.store);
    let lines: Vec<HostLine> = list
        .into_iter()
        .map(|host| {
            let silent = host.last_contact_secs > limit;
            let problems = problems(&host, silent);
            HostLine {
                host,
                silent,
                problems,
            }
        })
        .collect();
    let bad: Vec<String> = lines
        .iter()
        .flat_map(|l| {
            l.problems
                .iter()
                .map(move |p| format!("{}: {p}", l.host.name))
        })
        .collect();
    let (n, total) = (
        lines.iter().filter(|l| !l.problems.is_empty()).count(),
        lines.len(),
    );
    if ctx.json {
        json(&Status {
            generation,
            silent_after: limit,
            ok: bad.is_empty(),
            hosts: lines,
        })?;
    } else {
        println!("central generation: {generation}");
        let rows = lines
            .iter()
            .map(|l| {
                let h = &l.host;
                vec![
                    h.name.clone(),
                    if h.behind > 0 {
                        format!("{} (behind {})", h.generation, h.behind)
                    } else {
                        h.generation.to_string()
                    },
                    if l.silent {
                        format!("{} ago, silent", age(h.last_contact_secs))
                    } else {
                        format!("{} ago", age(h.last_contact_secs))
                    },
                    h.queue.to_string(),
                    h.failed.to_string(),
                    h.outbox.to_string(),
                    h.last_error.clone(),
                ]
            })
            .collect();
        table(
            &[
                "HOST",
                "GENERATION",
                "LAST CONTACT",
                "QUEUE",
                "FAILED",
                "OUTBOX",
                "LAST ERROR",
            ],
            rows,
            "no host has reported yet (mfa-fleetd reports each host at every round)",
        );
    }
    if n == 0 {
        return Ok(());
    }
    Err(Error::Failed(format!(
        "{n} of {total} host(s) need attention: {}",
        crate::output::visible(&bad.join("; "))
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_short() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(119), "119s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(7200), "2h");
        assert_eq!(age(3 * 86400), "3d");
    }

    #[test]
    fn silence_is_three_polls_at_least_a_minute() {
        let mut s = StoreConfig::default();
        assert_eq!(silent_after(&s), 60);
        s.poll = "1m".into();
        assert_eq!(silent_after(&s), 180);
    }
}
