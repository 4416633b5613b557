//! `test` and `queue`: queue a test message, and look at what waits in the spool.

use std::path::Path;

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use mfa_core::store::{people, rules};
use mfa_core::template::{self, Values};
use mfa_core::{Error, Result, invalid};
use serde::Serialize;

use super::{Ctx, parse_number};
use crate::cli::QueueCmd;
use crate::output::{json, table};

/// How long a test message may wait for the sender.
const TEST_TTL: i64 = 3600;

pub fn test(ctx: &Ctx, user: &str, contact: Option<&str>) -> Result<()> {
    let seq = contact
        .map(|c| parse_number("contact number", c, 4))
        .transpose()?;
    let mut store = ctx.store()?;
    let spool_dir = ctx.config.paths.spool.clone();
    spool::check(&spool_dir)?;
    let host = mfa_core::settings::host_name();
    let msg = store.change(&ctx.actor(), "test", |tx| {
        people::require_user(tx, user)?;
        let contacts = people::contacts(tx, user)?;
        let c = match seq {
            Some(s) => contacts.iter().find(|c| c.seq == s).ok_or_else(|| {
                Error::NotFound(format!("user {user:?} has no contact number {s}; `mfa-admin contact list {user}` shows the numbers"))
            })?,
            None => contacts.first().ok_or_else(|| {
                invalid!("user {user:?} has no contact; add one with `mfa-admin contact add {user} --email ADDR`")
            })?,
        };
        let body = rules::templates(tx)?.into_iter().find(|t| t.name == "test-body").map(|t| t.text).unwrap_or_default();
        let now = mfa_core::now();
        let values = Values { prefix: "", code: "", user, host: &host, minutes: 0 };
        let msg = Message {
            id: format!("{now}-{}", mfa_core::passcode::random_id()?),
            created: now,
            expires: now + TEST_TTL,
            channel: Channel::parse(&c.channel)?,
            to: c.to.clone(),
            subject: format!("mfa test message from {host}"),
            body: template::render(&body, &values),
            user: user.to_string(),
            kind: Kind::Test,
            masked_to: c.masked.clone(),
        };
        spool::enqueue(&spool_dir, &msg)?;
        let detail = format!("{user} #{}: {} ({})", c.seq, c.masked, msg.id);
        Ok((msg, detail))
    })?;
    if ctx.json {
        return json(&serde_json::json!({ "id": msg.id, "to": msg.masked_to }));
    }
    println!(
        "queued test message {} to {} ({})",
        msg.id,
        msg.masked_to,
        msg.channel.as_str()
    );
    Ok(())
}

/// One message in the spool, as `queue list` shows it.
#[derive(Debug, Serialize)]
struct Queued {
    id: String,
    /// pending (new), in-flight (cur) or failed.
    state: &'static str,
    user: String,
    kind: String,
    to: String,
    /// Seconds since the message was created.
    age: i64,
    /// Seconds until it expires (negative: expired).
    expires_in: i64,
    /// Why it failed (failed messages), or why it could not be read.
    reason: String,
}

pub fn run(ctx: &Ctx, cmd: QueueCmd) -> Result<()> {
    let QueueCmd::List = cmd;
    let now = mfa_core::now();
    let mut all = Vec::new();
    for (dir, state) in [
        ("new", "pending"),
        ("cur", "in-flight"),
        ("failed", "failed"),
    ] {
        scan(&ctx.config.paths.spool.join(dir), state, now, &mut all)?;
    }
    all.sort_by_key(|q| -q.age);
    if ctx.json {
        return json(&all);
    }
    let rows = all
        .into_iter()
        .map(|q| {
            vec![
                q.id,
                q.state.into(),
                q.user,
                q.kind,
                q.to,
                format!("{}s", q.age),
                q.reason,
            ]
        })
        .collect();
    table(
        &["ID", "STATE", "USER", "KIND", "TO", "AGE", "REASON"],
        rows,
        "the queue is empty",
    );
    Ok(())
}

fn scan(dir: &Path, state: &'static str, now: i64, out: &mut Vec<Queued>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in entries {
        let path = e.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let reason = spool::failure_reason(&path).unwrap_or_default();
        match spool::read(&path) {
            Ok(m) => out.push(Queued {
                id: m.id,
                state,
                user: m.user,
                kind: format!("{:?}", m.kind).to_lowercase(),
                to: m.masked_to,
                age: now - m.created,
                expires_in: m.expires - now,
                reason,
            }),
            Err(err) => out.push(Queued {
                id: path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                state,
                user: String::new(),
                kind: String::new(),
                to: String::new(),
                age: 0,
                expires_in: 0,
                reason: format!("unreadable: {err}"),
            }),
        }
    }
    Ok(())
}
