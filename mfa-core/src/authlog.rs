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

use crate::files::sibling;
use crate::store::logs::AuthEvent;
use crate::{Error, Result};

/// Inbox size above which the module moves the lines into the database itself.
pub const INGEST_AT: u64 = 1 << 20;

/// The inbox file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-authlog")
}

/// One line of the inbox: the event and a random id that makes moving it idempotent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Line {
    pub event: String,
    #[serde(flatten)]
    pub ev: AuthEvent,
}

/// Appends one outcome to the inbox of `database` (time 0 means now).
pub fn append(database: &Path, ev: &AuthEvent) -> Result<()> {
    let id = crate::passcode::random_bytes::<12>()?;
    let mut ev = ev.clone();
    if ev.time == 0 {
        ev.time = crate::now();
    }
    let line = Line {
        event: id.iter().map(|b| format!("{b:02x}")).collect(),
        ev,
    };
    // A newline before as well as after: a line cut short (a full disk) ends at the next
    // record instead of swallowing it.
    let mut bytes = vec![b'\n'];
    bytes.extend(serde_json::to_vec(&line).map_err(|e| Error::Failed(e.to_string()))?);
    bytes.push(b'\n');
    let p = path_for(database);
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    // Bounded, like every wait of a login: a mover that hangs must not hang logins.
    crate::files::lock_within(&f, &p, false)?;
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
    crate::files::lock_within(&f, &p, true)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::logs::{AuthFilter, auth_log};

    fn ev(user: &str) -> AuthEvent {
        AuthEvent {
            user: user.into(),
            service: "sshd".into(),
            address: "192.0.2.1".into(),
            outcome: "ignore".into(),
            reason: "trusted network (rule 1)".into(),
            ..Default::default()
        }
    }

    #[test]
    fn lines_move_once_even_when_moved_twice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        let db = store.path().to_path_buf();
        for u in ["ann", "bob", "cy"] {
            append(&db, &ev(u)).unwrap();
        }
        let inbox = std::fs::read(path_for(&db)).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (3, 0));
        assert_eq!(pending(&db), 0);
        // A crash between the commit and the truncation leaves the lines in the inbox.
        let mut again = inbox.clone();
        // ... and a line cut short by a full disk.
        again.extend_from_slice(b"{\"event\":\"ab\",\"us");
        std::fs::write(path_for(&db), &again).unwrap();
        append(&db, &ev("dee")).unwrap();
        assert_eq!(store.ingest_auth_log().unwrap(), (4, 1));
        let rows = auth_log(store.conn(), &AuthFilter::default()).unwrap();
        let mut users: Vec<_> = rows.iter().map(|r| r.user.as_str()).collect();
        users.sort();
        assert_eq!(users, ["ann", "bob", "cy", "dee"], "each line stored once");
        assert!(
            rows.iter()
                .all(|r| r.time > 0 && r.reason.starts_with("trusted"))
        );
        assert_eq!(store.ingest_auth_log().unwrap(), (0, 0));
    }
}
