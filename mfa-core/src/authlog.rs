//! The auth log's inbox: the PAM module appends one JSON line per outcome to
//! `<database>-authlog` instead of writing the database, and whoever opens the store to read
//! the log (`mfa-admin`, or the module itself once the inbox passes [`INGEST_AT`] bytes)
//! moves the lines into the `auth_log` table. A database write costs the module an open, a
//! journal and fsyncs; an append costs one `write`.
//!
//! Each line carries a random event id, and the table has a unique index on it, so a line
//! moved twice (a crash between the commit and the truncation) is stored once. Appenders take
//! a shared `flock` around their single `write`; the mover takes it exclusively around
//! read, commit and truncate, so no line is lost between the read and the truncation. A line
//! that does not parse (a disk that filled up mid-write) is skipped and counted.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::snapshot::sibling;
use crate::store::logs::AuthEvent;
use crate::{Error, Result};

/// Inbox size above which the module moves the lines into the database itself.
pub const INGEST_AT: u64 = 1 << 20;

/// The inbox file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-authlog")
}

/// One line of the inbox.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Line {
    pub event: String,
    pub time: i64,
    pub user: String,
    pub service: String,
    pub address: String,
    pub tty: String,
    pub outcome: String,
    pub method: String,
    pub destination: String,
    pub reason: String,
}

impl Line {
    pub(crate) fn into_event(self) -> (String, AuthEvent) {
        (
            self.event,
            AuthEvent {
                id: 0,
                time: self.time,
                user: self.user,
                service: self.service,
                address: self.address,
                tty: self.tty,
                outcome: self.outcome,
                method: self.method,
                destination: self.destination,
                reason: self.reason,
            },
        )
    }
}

/// Appends one outcome to the inbox of `database` (time 0 means now).
pub fn append(database: &Path, ev: &AuthEvent) -> Result<()> {
    let id = crate::passcode::random_bytes::<12>()?;
    let line = Line {
        event: id.iter().map(|b| format!("{b:02x}")).collect(),
        time: if ev.time == 0 { crate::now() } else { ev.time },
        user: ev.user.clone(),
        service: ev.service.clone(),
        address: ev.address.clone(),
        tty: ev.tty.clone(),
        outcome: ev.outcome.clone(),
        method: ev.method.clone(),
        destination: ev.destination.clone(),
        reason: ev.reason.clone(),
    };
    let mut bytes = serde_json::to_vec(&line).map_err(|e| Error::Failed(e.to_string()))?;
    bytes.push(b'\n');
    let p = path_for(database);
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    f.lock_shared().map_err(|e| Error::io(&p, e))?;
    // One write: appends of concurrent logins never interleave.
    f.write_all(&bytes).map_err(|e| Error::io(&p, e))
}

/// Bytes waiting in the inbox.
pub fn pending(database: &Path) -> u64 {
    std::fs::metadata(path_for(database)).map_or(0, |m| m.len())
}

/// The inbox, locked exclusively, and its parsed lines (and the count of lines that did not
/// parse). `None` when there is no inbox. Truncate with [`Drained::done`] after the lines
/// are safely stored.
pub(crate) fn drain(database: &Path) -> Result<Option<Drained>> {
    let p = path_for(database);
    let mut f = match OpenOptions::new().read(true).write(true).open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&p, e)),
    };
    f.lock().map_err(|e| Error::io(&p, e))?;
    let mut text = Vec::new();
    f.read_to_end(&mut text).map_err(|e| Error::io(&p, e))?;
    let mut lines = Vec::new();
    let mut bad = 0;
    for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Line>(raw) {
            Ok(l) => lines.push(l),
            Err(_) => bad += 1,
        }
    }
    Ok(Some(Drained {
        file: f,
        path: p,
        lines,
        bad,
    }))
}

/// A locked inbox being moved.
pub(crate) struct Drained {
    file: File,
    path: PathBuf,
    pub lines: Vec<Line>,
    pub bad: usize,
}

impl Drained {
    /// Empties the inbox (the lock goes with the file).
    pub fn done(self) -> Result<()> {
        self.file.set_len(0).map_err(|e| Error::io(&self.path, e))
    }
}
