//! `test`, `queue` and `sender status`: queue a test message, look at (and retry or purge)
//! what waits in the spool, and see whether the sender is alive.

use std::path::Path;

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use mfa_core::store::{people, rules};
use mfa_core::template::{self, Values};
use mfa_core::{Error, Result, invalid};
use serde::Serialize;

use super::{Ctx, parse_number};
use crate::cli::{QueueCmd, SenderCmd};
use crate::output::{json, table, visible};

/// How long a test message may wait for the sender.
const TEST_TTL: i64 = 3600;

/// The test message (`test-body` template `body`) to `user`'s contact `c`, from `host`.
pub(crate) fn test_message(
    user: &str,
    c: &people::ContactRow,
    body: &str,
    host: &str,
    now: i64,
) -> Result<Message> {
    let values = Values {
        prefix: "",
        code: "",
        user,
        host,
        minutes: 0,
    };
    Ok(Message {
        id: format!("{now}-{}", mfa_core::passcode::random_id()?),
        created: now,
        expires: now + TEST_TTL,
        channel: Channel::parse(&c.channel)?,
        to: c.to.clone(),
        subject: format!("mfa test message from {host}"),
        body: template::render(body, &values),
        user: user.to_string(),
        kind: Kind::Test,
        masked_to: c.masked.clone(),
    })
}

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
        let msg = test_message(user, c, &body, &host, mfa_core::now())?;
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
        visible(&msg.masked_to),
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
    match cmd {
        QueueCmd::List => list(ctx),
        QueueCmd::Retry { id, all_failed } => retry(ctx, id.as_deref(), all_failed),
        QueueCmd::Purge { .. } => purge_failed(ctx),
    }
}

fn retry(ctx: &Ctx, id: Option<&str>, all: bool) -> Result<()> {
    let spool_dir = ctx.config.paths.spool.clone();
    let names = match id {
        Some(id) if !all => {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(invalid!(
                    "invalid message id {id:?}: expected an id as `mfa-admin queue list` shows it"
                ));
            }
            vec![format!("{id}.json")]
        }
        _ => spool::messages_in(&spool_dir, "failed")?,
    };
    let mut store = ctx.store()?;
    let moved = store.change(&ctx.actor(), "queue retry", |_| {
        let mut moved = Vec::new();
        for n in &names {
            if spool::retry(&spool_dir, n)? {
                moved.push(n.trim_end_matches(".json").to_string());
            }
        }
        if moved.is_empty() && id.is_some() {
            return Err(Error::NotFound(format!(
                "no failed message {:?}; `mfa-admin queue list` shows the failed ones",
                id.unwrap_or_default()
            )));
        }
        let detail = format!("{} message(s): {}", moved.len(), moved.join(" "));
        Ok((moved, detail))
    })?;
    if ctx.json {
        return json(&serde_json::json!({ "retried": moved }));
    }
    println!("{} message(s) back in the queue", moved.len());
    Ok(())
}

fn purge_failed(ctx: &Ctx) -> Result<()> {
    let spool_dir = ctx.config.paths.spool.clone();
    let names = spool::messages_in(&spool_dir, "failed")?;
    let mut store = ctx.store()?;
    // The sender's group writes in failed/: what cannot be deleted (a directory named like a
    // message) is named and left; what is gone already is not an error.
    let mut left = Vec::new();
    let n = store.change(&ctx.actor(), "queue purge", |_| {
        let mut n = 0;
        for name in &names {
            let p = spool_dir.join("failed").join(name);
            match std::fs::remove_file(&p) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => left.push(format!("{}: {e}", p.display())),
            }
            let _ = std::fs::remove_file(p.with_extension("reason"));
        }
        Ok((n, format!("{n} failed message(s)")))
    })?;
    for l in &left {
        eprintln!("left alone: {}", visible(l));
    }
    if ctx.json {
        return json(&serde_json::json!({ "deleted": n }));
    }
    println!("deleted {n} failed message(s)");
    Ok(())
}

/// `sender status`.
#[derive(Debug, Serialize)]
struct SenderStatus {
    /// Seconds since the last heartbeat; null when there is none.
    heartbeat_age: Option<u64>,
    /// True when the heartbeat is at most 30 s old.
    alive: bool,
    pending: usize,
    in_flight: usize,
    failed: usize,
    /// The sender's last delivery error (`ID: reason`): what it reported in its status
    /// file, else, when failed/ is not empty, the newest reason there.
    last_error: Option<String>,
}

pub fn sender(ctx: &Ctx, cmd: SenderCmd) -> Result<()> {
    let SenderCmd::Status = cmd;
    let p = &ctx.config.paths;
    let count = |sub: &str| -> Result<usize> { Ok(spool::messages_in(&p.spool, sub)?.len()) };
    let age = spool::heartbeat_age(&p.runtime, std::time::SystemTime::now());
    // The runtime directory is the sender's: no link followed, no FIFO read, 64 KiB at most.
    let reported = spool::read_bounded(&p.runtime.join("sender.status"), 1 << 16)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["last_error"].as_str().map(String::from))
        .filter(|e| !e.is_empty());
    let failed = count("failed")?;
    // Never "none" beside failed messages: a sender restarted since, or one that could not
    // write its status, still left the reason beside each of them.
    let last_error = match reported {
        Some(e) => Some(e),
        None if failed > 0 => {
            spool::newest_failure(&p.spool).map(|(id, why)| format!("{id}: {why}"))
        }
        None => None,
    };
    let st = SenderStatus {
        heartbeat_age: age,
        alive: age.is_some_and(|a| a <= spool::HEARTBEAT_STALE_SECS),
        pending: count("new")?,
        in_flight: count("cur")?,
        failed,
        last_error,
    };
    if ctx.json {
        return json(&st);
    }
    match st.heartbeat_age {
        Some(a) if st.alive => println!("sender:     running (heartbeat {a} s ago)"),
        Some(a) => println!("sender:     NOT running (last heartbeat {a} s ago)"),
        None => println!("sender:     NOT running (no heartbeat)"),
    }
    println!("pending:    {}", st.pending);
    println!("in flight:  {}", st.in_flight);
    println!("failed:     {}", st.failed);
    println!(
        "last error: {}",
        st.last_error
            .as_deref()
            .map_or_else(|| "none".to_string(), visible)
    );
    if st.failed > 0 {
        println!("            `mfa-admin queue list` shows every failed message and its reason");
    }
    Ok(())
}

fn list(ctx: &Ctx) -> Result<()> {
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
            // Everything but the state comes from files the sender's group can write:
            // `table` shows every control character in them as a visible escape.
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
        let reason = match spool::failure_reason(&path) {
            Some(r) if !r.is_empty() => r,
            _ if state == "failed" => "no reason recorded".to_string(),
            _ => String::new(),
        };
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
                // A failed message keeps the sender's reason; others say why they cannot
                // be read here.
                reason: if state == "failed" && reason != "no reason recorded" {
                    reason
                } else {
                    format!("unreadable: {err}")
                },
            }),
        }
    }
    Ok(())
}
