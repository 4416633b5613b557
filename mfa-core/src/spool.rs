//! The message spool between the PAM module and the sender: one JSON file per message.
//!
//! Layout under `paths.spool`: `tmp/` (being written), `new/` (ready), `cur/` (claimed by a
//! sender), `failed/` (given up, with a reason). A message is written to `tmp/ID.json`
//! (mode 0640, created exclusively) and renamed into `new/`, so a reader never sees half a
//! file and a crash never loses a renamed one. The hot path does not fsync: a passcode lives
//! for minutes, and a crash of the machine only costs the user a retry.
//!
//! The file is one JSON object ([`Message`]):
//!
//! | field | meaning |
//! |---|---|
//! | `id` | unique id, also the file name without `.json` |
//! | `created`, `expires` | Unix seconds; the sender does not send after `expires` |
//! | `channel` | `email`, `sms-gateway` or `sms` |
//! | `to` | fully resolved: an address, `number@gateway`, or `+E164` |
//! | `subject`, `body` | the rendered message |
//! | `user` | the user it is for (for logs) |
//! | `kind` | `passcode` or `test` |
//! | `masked_to` | the recipient as logs may show it |
//!
//! A message the sender gives up on moves to `failed/ID.json`, with the reason in
//! `failed/ID.reason` (one line of text).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::contact::Channel;
use crate::{Error, Result};

/// Spool subdirectories, in the order a message moves through them.
pub const SUBDIRS: &[&str] = &["tmp", "new", "cur", "failed"];

/// What a message is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A passcode for a login or an enrollment.
    Passcode,
    /// `mfa-admin test`.
    Test,
}

/// One message, fully resolved: the sender needs nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub created: i64,
    pub expires: i64,
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub user: String,
    pub kind: Kind,
    pub masked_to: String,
}

/// Queues a message: writes `tmp/ID.json` and renames it into `new/`. Returns the path.
pub fn enqueue(spool: &Path, msg: &Message) -> Result<PathBuf> {
    if msg.id.is_empty()
        || !msg
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Error::Invalid(format!(
            "invalid spool message id {:?}",
            msg.id
        )));
    }
    let name = format!("{}.json", msg.id);
    let tmp = spool.join("tmp").join(&name);
    let new = spool.join("new").join(&name);
    let bytes = serde_json::to_vec(msg)
        .map_err(|e| Error::Invalid(format!("cannot encode message: {e}")))?;
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        // Close before the rename: the file is complete when it appears in new/.
        drop(f);
        std::fs::rename(&tmp, &new)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    Ok(new)
}

/// Reads a message file.
pub fn read(path: &Path) -> Result<Message> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("{}: not a spool message: {e}", path.display())))
}

/// Names (`ID.json`) of the messages waiting in `new/`, oldest first (ids start with the
/// creation time).
pub fn pending(spool: &Path) -> Result<Vec<String>> {
    messages_in(spool, "new")
}

/// Names (`ID.json`) of the messages in one spool subdirectory (`new`, `cur`, `failed`),
/// oldest first.
pub fn messages_in(spool: &Path, sub: &str) -> Result<Vec<String>> {
    let dir = spool.join(sub);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    Ok(names)
}

/// Claims a message for sending by renaming `new/NAME` to `cur/NAME`. Returns `None` when
/// another sender claimed it first (the rename is atomic: one of them wins).
pub fn claim(spool: &Path, name: &str) -> Result<Option<PathBuf>> {
    let from = spool.join("new").join(name);
    let to = spool.join("cur").join(name);
    match std::fs::rename(&from, &to) {
        Ok(()) => Ok(Some(to)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&from, e)),
    }
}

/// Deletes a claimed message once the server or API accepted it.
pub fn ack(claimed: &Path) -> Result<()> {
    match std::fs::remove_file(claimed) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(claimed, e)),
    }
}

/// Gives up on a claimed message: writes `failed/ID.reason`, then moves the message to
/// `failed/`.
pub fn fail(spool: &Path, claimed: &Path, reason: &str) -> Result<PathBuf> {
    let name = claimed
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a message file", claimed.display())))?;
    let to = spool.join("failed").join(name);
    let reason_path = to.with_extension("reason");
    std::fs::write(&reason_path, format!("{}\n", reason.replace('\n', " ")))
        .map_err(|e| Error::io(&reason_path, e))?;
    std::fs::rename(claimed, &to).map_err(|e| Error::io(claimed, e))?;
    Ok(to)
}

/// Puts a failed message back in `new/` for another try (`mfa-admin queue retry`).
pub fn retry(spool: &Path, name: &str) -> Result<bool> {
    let from = spool.join("failed").join(name);
    let to = spool.join("new").join(name);
    match std::fs::rename(&from, &to) {
        Ok(()) => {
            let _ = std::fs::remove_file(from.with_extension("reason"));
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(&from, e)),
    }
}

/// Moves every message a dead sender left in `cur/` back to `new/`; returns how many.
pub fn recover(spool: &Path) -> Result<usize> {
    let dir = spool.join("cur");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let to = spool.join("new").join(e.file_name());
        std::fs::rename(e.path(), &to).map_err(|err| Error::io(e.path(), err))?;
        n += 1;
    }
    Ok(n)
}

/// The reason next to a failed message (`ID.reason` beside `ID.json`), if any.
pub fn failure_reason(message: &Path) -> Option<String> {
    let text = std::fs::read_to_string(message.with_extension("reason")).ok()?;
    Some(text.trim().to_string())
}

/// True when a spool is usable: every subdirectory exists and `tmp`/`new` are writable by us.
pub fn check(spool: &Path) -> Result<()> {
    for sub in SUBDIRS {
        let d = spool.join(sub);
        if !d.is_dir() {
            return Err(Error::io(
                &d,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "spool directory missing; run mfa-admin init",
                ),
            ));
        }
    }
    for sub in ["tmp", "new"] {
        let d = spool.join(sub);
        nix::unistd::access(
            &d,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .map_err(|e| Error::io(&d, e.into()))?;
    }
    Ok(())
}

/// The sender's heartbeat file under the runtime directory.
pub fn heartbeat_path(runtime: &Path) -> PathBuf {
    runtime.join("sender.heartbeat")
}

/// Seconds since the sender last touched its heartbeat, or `None` if there is none.
pub fn heartbeat_age(runtime: &Path, now: std::time::SystemTime) -> Option<u64> {
    let modified = std::fs::metadata(heartbeat_path(runtime))
        .ok()?
        .modified()
        .ok()?;
    Some(now.duration_since(modified).map_or(0, |d| d.as_secs()))
}

/// A heartbeat older than this means the sender is not running.
pub const HEARTBEAT_STALE_SECS: u64 = 30;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn spool() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for s in SUBDIRS {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        d
    }

    #[test]
    fn enqueue_renames_into_new() {
        let d = spool();
        let msg = Message {
            id: "1700000000-abc".into(),
            created: 1,
            expires: 2,
            channel: Channel::SmsGateway,
            to: "5551234567@vtext.com".into(),
            subject: "s".into(),
            body: "b".into(),
            user: "ann".into(),
            kind: Kind::Passcode,
            masked_to: "***-***-4567 (Verizon)".into(),
        };
        let p = enqueue(d.path(), &msg).unwrap();
        assert_eq!(p, d.path().join("new/1700000000-abc.json"));
        assert_eq!(std::fs::read_dir(d.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(read(&p).unwrap(), msg);
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(json["channel"], "sms-gateway");
        assert_eq!(json["kind"], "passcode");
        assert!(check(d.path()).is_ok());
        assert_eq!(pending(d.path()).unwrap(), ["1700000000-abc.json"]);
        let claimed = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
        assert!(
            claim(d.path(), "1700000000-abc.json").unwrap().is_none(),
            "claimed twice"
        );
        assert_eq!(recover(d.path()).unwrap(), 1);
        let claimed2 = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
        assert_eq!(claimed, claimed2);
        let failed = fail(d.path(), &claimed, "550 no\nsuch user").unwrap();
        assert_eq!(failure_reason(&failed).unwrap(), "550 no such user");
        assert!(retry(d.path(), "1700000000-abc.json").unwrap());
        assert!(failure_reason(&failed).is_none());
        let c = claim(d.path(), "1700000000-abc.json").unwrap().unwrap();
        ack(&c).unwrap();
        assert!(pending(d.path()).unwrap().is_empty());
        let mut bad = msg.clone();
        bad.id = "../x".into();
        assert!(enqueue(d.path(), &bad).is_err());
    }
}
