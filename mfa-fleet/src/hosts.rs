//! The fleet's hosts as the central `hosts` table records them: each host's heartbeat (the
//! fleet generation it applied, its delivery spool, its changes not yet shipped, its last
//! error, its version) and the status `mfa-admin fleet status` shows.

use std::path::Path;

use postgres::Client;
use serde::Serialize;

use mfa_core::Result;

use crate::logs::central;

/// What a host reports about itself at each contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostReport {
    pub name: String,
    /// Its database's incarnation (`meta fleet_incarnation`).
    pub incarnation: String,
    /// The last fleet generation it applied.
    pub generation: i64,
    /// Messages waiting in (or being sent from) its delivery spool.
    pub queue: i32,
    /// Messages its sender gave up on.
    pub failed: i32,
    /// Its changes not yet shipped.
    pub outbox: i32,
    /// Its last error ("" when its last round went well).
    pub last_error: String,
    /// mfa's version on it.
    pub version: String,
}

/// Records a host's report and that it was in contact now.
pub fn heartbeat(client: &mut Client, r: &HostReport) -> Result<()> {
    client
        .execute(
            "INSERT INTO hosts (name, incarnation, generation, last_contact, queue, failed,
                                outbox, last_error, version)
             VALUES ($1, $2, $3, now(), $4, $5, $6, $7, $8)
             ON CONFLICT (name) DO UPDATE SET incarnation = excluded.incarnation,
                 generation = excluded.generation, last_contact = now(),
                 queue = excluded.queue, failed = excluded.failed, outbox = excluded.outbox,
                 last_error = excluded.last_error, version = excluded.version",
            &[
                &r.name,
                &r.incarnation,
                &r.generation,
                &r.queue,
                &r.failed,
                &r.outbox,
                &r.last_error,
                &r.version,
            ],
        )
        .map_err(|e| central(&format!("recording the heartbeat of host {}", r.name), &e))?;
    Ok(())
}

/// Records a host's error without counting it as contact (its generation and queues stay
/// as last reported). The text is cut to 2000 characters.
pub fn report_error(client: &mut Client, host: &str, err: &str) -> Result<()> {
    let err: String = err.replace('\0', "\\x00").chars().take(2000).collect();
    client
        .execute(
            "INSERT INTO hosts (name, last_error) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_error = excluded.last_error",
            &[&host, &err],
        )
        .map_err(|e| central(&format!("recording the error of host {host}"), &e))?;
    Ok(())
}

/// One host as `fleet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub incarnation: String,
    /// The last fleet generation it applied.
    pub generation: i64,
    /// Central changes it has not applied yet.
    pub behind: i64,
    /// Seconds since the oldest central change it has not applied was made (`None` when it
    /// is up to date): how long it has been behind.
    pub behind_secs: Option<i64>,
    /// Seconds since its last heartbeat.
    pub last_contact_secs: i64,
    pub queue: i32,
    pub failed: i32,
    pub outbox: i32,
    pub last_error: String,
    pub version: String,
}

/// The central store's newest generation (0 when no change was ever made) and every host,
/// by name.
pub fn status(client: &mut Client) -> Result<(i64, Vec<HostStatus>)> {
    let what = "reading the fleet's hosts";
    let mut tx = client.transaction().map_err(|e| central(what, &e))?;
    let newest: i64 = tx
        .query_one("SELECT coalesce(max(gen), 0)::int8 FROM changes", &[])
        .and_then(|r| r.try_get(0))
        .map_err(|e| central(what, &e))?;
    let rows = tx
        .query(
            "SELECT h.name, h.incarnation, h.generation,
                    greatest(0, floor(extract(epoch FROM now() - h.last_contact)))::int8,
                    h.queue, h.failed, h.outbox, h.last_error, h.version,
                    (SELECT floor(extract(epoch FROM now() - c.created))::int8 FROM changes c
                     WHERE c.gen > h.generation ORDER BY c.gen LIMIT 1)
             FROM hosts h ORDER BY h.name",
            &[],
        )
        .map_err(|e| central(what, &e))?;
    tx.commit().map_err(|e| central(what, &e))?;
    let mut hosts = Vec::with_capacity(rows.len());
    for r in &rows {
        let get = |e: postgres::Error| central(what, &e);
        let generation: i64 = r.try_get(2).map_err(get)?;
        hosts.push(HostStatus {
            name: r.try_get(0).map_err(get)?,
            incarnation: r.try_get(1).map_err(get)?,
            generation,
            behind: (newest - generation).max(0),
            behind_secs: r
                .try_get::<_, Option<i64>>(9)
                .map_err(get)?
                .map(|s| s.max(0)),
            last_contact_secs: r.try_get(3).map_err(get)?,
            queue: r.try_get(4).map_err(get)?,
            failed: r.try_get(5).map_err(get)?,
            outbox: r.try_get(6).map_err(get)?,
            last_error: r.try_get(7).map_err(get)?,
            version: r.try_get(8).map_err(get)?,
        });
    }
    Ok((newest, hosts))
}

/// This host's delivery spool as a heartbeat reports it: messages queued (waiting in `new/`
/// or being sent from `cur/`) and failed (`failed/`), counted as `sender status` counts
/// them.
pub fn spool_counts(spool: &Path) -> Result<(i32, i32)> {
    let count =
        |sub: &str| -> Result<usize> { Ok(mfa_core::spool::messages_in(spool, sub)?.len()) };
    let clamp = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    Ok((
        clamp(count("new")? + count("cur")?),
        clamp(count("failed")?),
    ))
}
