//! The message spool between the PAM module and the sender: one JSON file per message.
//!
//! Layout under `paths.spool`: `tmp/` (being written), `new/` (ready), `cur/` (claimed by a
//! sender), `failed/` (given up, with a reason). A message is written to `tmp/ID.json`
//! (created exclusively) and renamed into `new/`, so a reader never sees half a file and a
//! crash never loses a renamed one. Before the rename the file gets mode 0640 and the group
//! of `new/` explicitly (`fchmod`, `fchown` on the open file), whatever the writer's umask:
//! the sender reads it through that group (`root:mfa 2770` directories on an installed
//! system). The module opens `tmp/` and `new/` relative to the spool root without following
//! links and checks their owners first (`open_dirs`): a root writable by the sender's group
//! would let that group point `new/` anywhere. The hot path does not fsync: a passcode lives for minutes, and a crash of the
//! machine only costs the user a retry.
//!
//! Every check here is about what this process can do (its effective ids): the PAM module
//! runs inside su and sudo, whose real uid is the calling user's.
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
//! `failed/ID.reason` (one line of text, mode 0640, the group of `failed/`).

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// Mode of every message and reason file, set explicitly whatever the umask.
pub const FILE_MODE: u32 = 0o640;

/// Queues a message: writes `tmp/ID.json` (mode 0640, the group of `new/`) and renames it
/// into `new/`. Returns the path.
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
    let new_dir = spool.join("new");
    let new = new_dir.join(&name);
    let bytes = serde_json::to_vec(msg)
        .map_err(|e| Error::Invalid(format!("cannot encode message: {e}")))?;
    // tmp/ and new/ as opened from the checked root, without following links: the names
    // below are resolved in these directories, whatever is renamed in the spool meanwhile.
    let dirs = open_dirs(spool)?;
    let new_meta = dirs.new.metadata().map_err(|e| Error::io(&new_dir, e))?;
    let created = std::cell::Cell::new(false);
    let written = (|| -> std::io::Result<()> {
        use nix::fcntl::{OFlag, openat, renameat};
        let fd = openat(
            &dirs.tmp,
            name.as_str(),
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_EXCL
                | OFlag::O_NOFOLLOW
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::from_bits_truncate(FILE_MODE),
        )?;
        created.set(true);
        let mut f = std::fs::File::from(fd);
        share_with_reader(&f, &new_meta, &new_dir)?;
        f.write_all(&bytes)?;
        // Close before the rename: the file is complete when it appears in new/.
        drop(f);
        renameat(&dirs.tmp, name.as_str(), &dirs.new, name.as_str())?;
        Ok(())
    })();
    if let Err(e) = written {
        if created.get() {
            let _ = nix::unistd::unlinkat(
                &dirs.tmp,
                name.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
        return Err(Error::io(&tmp, e));
    }
    Ok(new)
}

/// The spool's `tmp/` and `new/`, opened for a write.
struct Dirs {
    tmp: std::fs::File,
    new: std::fs::File,
}

/// Opens the spool root and, relative to it and without following links, `tmp/` and
/// `new/`, and checks whom they belong to. The root must be root's (or this process's
/// owner's) and writable by nobody else: were it group-writable, the sender's group could
/// rename `new/` away and put a link to any directory in its place, and the module (root)
/// would write there. `tmp/` and `new/` must be real directories of the same owner (the
/// sender's group may write in them: the module creates its files there exclusively,
/// without following links, and renames them within the opened directories).
fn open_dirs(spool: &Path) -> Result<Dirs> {
    let root = open_root(spool)?;
    Ok(Dirs {
        tmp: open_sub(&root, spool, "tmp")?,
        new: open_sub(&root, spool, "new")?,
    })
}

/// A subdirectory of the opened spool root, opened without following a link, and checked:
/// a real directory, root's (or this process's owner's).
fn open_sub(root: &std::fs::File, spool: &Path, name: &str) -> Result<std::fs::File> {
    use nix::fcntl::{OFlag, openat};
    let path = spool.join(name);
    // An I/O error of the spool (the module says the code could not be sent), naming the fix.
    let refused = |what: String| {
        Error::io(
            &path,
            std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{what}: refusing to queue messages"),
            ),
        )
    };
    let fd = openat(
        root,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => refused(
            "not a directory (a symbolic link?); fix with: mfa-admin init, after removing it"
                .to_string(),
        ),
        e => Error::io(&path, e.into()),
    })?;
    let f = std::fs::File::from(fd);
    let m = f.metadata().map_err(|e| Error::io(&path, e))?;
    if let Err(why) = owned_by_us(&path, &m) {
        return Err(Error::Insecure(format!(
            "{why}: refusing to queue messages"
        )));
    }
    Ok(f)
}

/// The spool root, opened and checked: root's (or this process's owner's), writable by
/// nobody else.
fn open_root(spool: &Path) -> Result<std::fs::File> {
    use nix::fcntl::OFlag;
    let insecure = |what: String| Error::Insecure(format!("{what}: refusing to queue messages"));
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(spool)
        .map_err(|e| Error::io(spool, e))?;
    let meta = root.metadata().map_err(|e| Error::io(spool, e))?;
    owned_by_us(spool, &meta).map_err(insecure)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(insecure(format!(
            "{}: mode {mode:04o} lets {} write the spool root, and so swap tmp/ or new/ for a \
             link to another directory; fix with: chmod go-w {} (mfa-admin init repairs it)",
            spool.display(),
            if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
            spool.display()
        )));
    }
    Ok(root)
}

/// Owned by root or by this process's effective user.
fn owned_by_us(path: &Path, meta: &std::fs::Metadata) -> std::result::Result<(), String> {
    let euid = nix::unistd::geteuid().as_raw();
    if meta.uid() == 0 || meta.uid() == euid {
        return Ok(());
    }
    Err(format!(
        "{}: owned by uid {}, not root; fix with: chown root {} (mfa-admin init repairs it)",
        path.display(),
        meta.uid(),
        path.display()
    ))
}

/// Gives a file just created in the spool mode 0640 and the group of the directory it
/// ends in (`dir`, whose metadata is `dir_meta`), so that the sender, a member of that
/// group, can read it whatever the writer's umask. When the group cannot be set (the
/// writer is neither root nor a member), the file is still fine if the directory is private
/// to the file's owner (then the sender must be that owner); otherwise this fails, naming
/// the fix, rather than leave a file the sender cannot read.
fn share_with_reader(
    f: &std::fs::File,
    dir_meta: &std::fs::Metadata,
    dir: &Path,
) -> std::io::Result<()> {
    let meta = f.metadata()?;
    if meta.gid() != dir_meta.gid()
        && let Err(e) = std::os::unix::fs::fchown(f, None, Some(dir_meta.gid()))
    {
        let private_to_owner = meta.uid() == dir_meta.uid() && dir_meta.mode() & 0o077 == 0;
        if !private_to_owner {
            return Err(std::io::Error::new(
                e.kind(),
                format!(
                    "cannot give the message the group of {} (gid {}): {e}; the sender could \
                     not read it. Queue as root, or run mfa-admin init as root, which repairs \
                     the spool's owners and modes",
                    dir.display(),
                    dir_meta.gid()
                ),
            ));
        }
    }
    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
}

/// Largest message file read; a real one is a few KiB.
const MAX_MESSAGE_BYTES: u64 = 1 << 20;
/// Largest part of a reason file read.
const MAX_REASON_BYTES: u64 = 4096;

/// Reads at most `limit` bytes of a regular file in the spool or the runtime directory. The
/// sender's group writes there and root reads (the PAM module, mfa-admin): a symbolic link
/// is not followed (it could name a root-only file), a FIFO or device is not opened for a
/// blocking or endless read.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use nix::fcntl::OFlag;
    use std::io::Read;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    f.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads a message file (a regular file, not a link; at most 1 MiB).
pub fn read(path: &Path) -> Result<Message> {
    let bytes = read_bounded(path, MAX_MESSAGE_BYTES).map_err(|e| Error::io(path, e))?;
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
    write_reason(&reason_path, reason).map_err(|e| Error::io(&reason_path, e))?;
    std::fs::rename(claimed, &to).map_err(|e| Error::io(claimed, e))?;
    Ok(to)
}

/// Writes `failed/ID.reason`: one line, mode 0640 and the group of `failed/`, whatever the
/// umask (mfa-admin, as root, reads it; so may an administrator of the sender's group).
fn write_reason(path: &Path, reason: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dir_meta = std::fs::metadata(dir)?;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    share_with_reader(&f, &dir_meta, dir)?;
    let line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    f.write_all(format!("{}\n", line.trim()).as_bytes())
}

/// Puts a failed message back in `new/` for another try (`mfa-admin queue retry`, as root):
/// within the checked spool (as a write checks it), without following links.
pub fn retry(spool: &Path, name: &str) -> Result<bool> {
    let from = spool.join("failed").join(name);
    if name.contains('/') || name.starts_with('.') {
        return Err(Error::Invalid(format!(
            "invalid spool message name {name:?}"
        )));
    }
    let root = open_root(spool)?;
    let failed = open_sub(&root, spool, "failed")?;
    let new = open_sub(&root, spool, "new")?;
    match nix::fcntl::renameat(&failed, name, &new, name) {
        Ok(()) => {
            let _ = std::fs::remove_file(from.with_extension("reason"));
            Ok(true)
        }
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(Error::io(&from, e.into())),
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

/// The reason next to a failed message (`ID.reason` beside `ID.json`), if any, as one line
/// without control characters (at most 4 KiB of the file; a link or FIFO is not read).
pub fn failure_reason(message: &Path) -> Option<String> {
    let bytes = read_bounded(&message.with_extension("reason"), MAX_REASON_BYTES).ok()?;
    let line: String = String::from_utf8_lossy(&bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(line.trim().to_string())
}

/// Whether the message with this id ended in `failed/`: `Some(reason)` (empty when no reason
/// was recorded) if it did. An id that is not a valid message id is never there.
pub fn failed(spool: &Path, id: &str) -> Option<String> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let path = spool.join("failed").join(format!("{id}.json"));
    if !path.exists() {
        return None;
    }
    Some(failure_reason(&path).unwrap_or_default())
}

/// The most recent failure in `failed/` (by the time its reason was written, else the
/// message's): its id and reason (`no reason recorded` when there is none).
pub fn newest_failure(spool: &Path) -> Option<(String, String)> {
    let names = messages_in(spool, "failed").ok()?;
    let dir = spool.join("failed");
    let when = |name: &str| {
        let p = dir.join(name);
        std::fs::metadata(p.with_extension("reason"))
            .or_else(|_| std::fs::metadata(&p))
            .and_then(|m| m.modified())
            .ok()
    };
    let newest = names.iter().max_by_key(|n| (when(n), (*n).clone()))?;
    let id = newest.trim_end_matches(".json").to_string();
    let reason = failure_reason(&dir.join(newest))
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "no reason recorded".into());
    Some((id, reason))
}

/// Checks that a spool is usable by this process before a passcode is promised: the root is
/// root's and writable by nobody else (see `open_dirs`), every subdirectory exists, and
/// `tmp`/`new` are writable and searchable with the process's EFFECTIVE ids (`eaccess`, i.e.
/// `faccessat(AT_EACCESS)`), never its real ids: su and sudo run the module with euid 0 and
/// the caller's real uid, for whom `access(2)` would say no. A subdirectory swapped for a
/// link is refused by the write itself ([`enqueue`]) and by [`check_layout`].
pub fn check(spool: &Path) -> Result<()> {
    open_root(spool)?;
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
        nix::unistd::eaccess(
            &d,
            nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
        )
        .map_err(|e| Error::io(&d, e.into()))?;
    }
    Ok(())
}

/// [`check`], and every subdirectory a real directory (not a link) owned by root, as a
/// write checks `tmp/` and `new/`: what `mfa-admin doctor` reports.
pub fn check_layout(spool: &Path) -> Result<()> {
    let root = open_root(spool)?;
    for sub in SUBDIRS {
        if std::fs::symlink_metadata(spool.join(sub)).is_ok() {
            open_sub(&root, spool, sub)?;
        }
    }
    check(spool)
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

    fn message(id: &str) -> Message {
        Message {
            id: id.into(),
            created: 1,
            expires: 2,
            channel: Channel::Email,
            to: "ann@example.com".into(),
            subject: "s".into(),
            body: "b".into(),
            user: "ann".into(),
            kind: Kind::Test,
            masked_to: "a***@e***.com".into(),
        }
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// The environment variable that tells a re-run test (below) which spool to use.
    const CHILD_ENV: &str = "MFA_SPOOL_TEST_CHILD";

    /// Runs the test `name` of this binary again in a child process, under `wrapper`
    /// (a command that ends by exec'ing its arguments: `sh -c 'umask 077; exec "$@"'`,
    /// `setpriv ...`), with [`CHILD_ENV`] naming `spool`. The umask and the ids are
    /// process-wide, so they change only in that child. Returns its output.
    fn rerun(name: &str, wrapper: &[&str], spool: &Path) -> String {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg(&exe)
            .args(["--exact", &format!("spool::tests::{name}"), "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_ENV, spool)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child {name} failed:\n{text}");
        assert!(
            text.contains("1 passed"),
            "child {name} did not run:\n{text}"
        );
        text
    }

    /// A spool under a temporary directory others may traverse (a child may run as nobody).
    fn open_spool(mode: u32) -> tempfile::TempDir {
        let d = spool();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for s in SUBDIRS {
            std::fs::set_permissions(d.path().join(s), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        d
    }

    /// Child of `files_get_0640_and_the_group_whatever_the_umask`: queues and fails a
    /// message under umask 077. Does nothing unless run by that test.
    #[test]
    fn child_writes_under_umask_077() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let spool = PathBuf::from(dir);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(
            status.contains("Umask:\t0077"),
            "umask not 077 in the child"
        );
        enqueue(&spool, &message("1700000000-umask")).unwrap();
        let claimed = claim(&spool, "1700000000-umask.json").unwrap().unwrap();
        fail(&spool, &claimed, "550 refused").unwrap();
        enqueue(&spool, &message("1700000001-umask")).unwrap();
    }

    #[test]
    fn files_get_0640_and_the_group_whatever_the_umask() {
        let d = open_spool(0o2770);
        // As root, the spool's group is one root is not in (as `mfa` is on a real system);
        // otherwise our own group.
        let group = if is_root() {
            65534
        } else {
            nix::unistd::getegid().as_raw()
        };
        for s in SUBDIRS {
            std::os::unix::fs::chown(d.path().join(s), None, Some(group)).unwrap();
            // chown may clear the setgid bit: put the directory's mode back.
            std::fs::set_permissions(d.path().join(s), std::fs::Permissions::from_mode(0o2770))
                .unwrap();
        }
        rerun(
            "child_writes_under_umask_077",
            &["sh", "-c", "umask 077; exec \"$@\"", "sh"],
            d.path(),
        );
        for f in [
            "new/1700000001-umask.json",
            "failed/1700000000-umask.json",
            "failed/1700000000-umask.reason",
        ] {
            let m = std::fs::metadata(d.path().join(f)).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o640, "{f}");
            assert_eq!(m.gid(), group, "{f}");
        }
        assert_eq!(
            failed(d.path(), "1700000000-umask").as_deref(),
            Some("550 refused")
        );
        assert_eq!(failed(d.path(), "1700000001-umask"), None);
        assert_eq!(failed(d.path(), "../failed/1700000000-umask"), None);
        assert_eq!(
            newest_failure(d.path()),
            Some(("1700000000-umask".into(), "550 refused".into()))
        );
    }

    /// Child of `a_writer_that_cannot_set_the_group_fails_clearly`: runs as nobody.
    #[test]
    fn child_enqueues_as_nobody() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let spool = PathBuf::from(dir);
        assert_eq!(nix::unistd::geteuid().as_raw(), 65534);
        let e = enqueue(&spool, &message("1700000000-nobody"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot give the message the group of")
                && e.contains("the sender could not read it"),
            "{e}"
        );
        assert!(pending(&spool).unwrap().is_empty());
        assert_eq!(std::fs::read_dir(spool.join("tmp")).unwrap().count(), 0);
    }

    /// Queuing into a spool whose group the writer is not in, with no way for the sender to
    /// read the file through its owner either: an error naming the fix, never a file the
    /// sender cannot read.
    #[test]
    fn a_writer_that_cannot_set_the_group_fails_clearly() {
        if !is_root() {
            eprintln!("skipped: needs root (runs a child as nobody)");
            return;
        }
        // root:root, writable by everyone: nobody can write but cannot give the file the
        // group root, and the directory is not private to nobody.
        let d = open_spool(0o1777);
        rerun(
            "child_enqueues_as_nobody",
            &[
                "setpriv",
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
                "--clear-groups",
            ],
            d.path(),
        );
    }

    /// Child of `check_uses_the_effective_ids`: real uid nobody, effective uid root, as in
    /// su and sudo.
    #[test]
    fn child_checks_with_real_uid_nobody() {
        let Some(dir) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let spool = PathBuf::from(dir);
        assert_eq!(nix::unistd::getuid().as_raw(), 65534, "real uid");
        assert!(nix::unistd::geteuid().is_root(), "effective uid");
        let new = spool.join("new");
        // What the caller may do is not the question: access(2) says no here...
        assert!(
            nix::unistd::access(&new, nix::unistd::AccessFlags::W_OK).is_err(),
            "the test needs a spool the real uid cannot write"
        );
        // ...what this process may do is: it can queue.
        check(&spool).unwrap();
        enqueue(&spool, &message("1700000000-su")).unwrap();
    }

    #[test]
    fn check_uses_the_effective_ids() {
        if !is_root() {
            eprintln!("skipped: needs root (runs a child with real uid nobody, euid root)");
            return;
        }
        let d = open_spool(0o700);
        rerun(
            "child_checks_with_real_uid_nobody",
            &["setpriv", "--ruid", "nobody", "--euid", "root"],
            d.path(),
        );
        assert_eq!(pending(d.path()).unwrap(), ["1700000000-su.json"]);
        // And for a process that really is nobody, the same spool is unusable.
        let e = std::process::Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--clear-groups"])
            .args(["test", "-w"])
            .arg(d.path().join("new"))
            .status()
            .unwrap();
        assert!(!e.success());
    }

    #[test]
    fn check_names_a_missing_directory() {
        let d = spool();
        std::fs::remove_dir(d.path().join("cur")).unwrap();
        let e = check(d.path()).unwrap_err().to_string();
        assert!(e.contains("cur") && e.contains("mfa-admin init"), "{e}");
    }

    /// Runs `f` in a thread; fails the test if it has not returned after 5 s (a read that
    /// blocks on a FIFO would otherwise hang the test run).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("blocked (a FIFO read?)")
    }

    /// The sender's group writes in `failed/`, `new/` and `cur/`: what root reads there (the
    /// PAM module's `failed`, mfa-admin's queue list and sender status) must not follow a
    /// link to a root-only file, block on a FIFO, read without bound or pass control bytes.
    #[test]
    fn spool_files_forged_by_the_senders_group_are_read_safely() {
        let d = spool();
        let failed_dir = d.path().join("failed");
        let secret = d.path().join("secret");
        std::fs::write(&secret, "root:$y$j9T$secret-hash:19000\n").unwrap();
        // A reason that is a link to a root-only file: not read.
        std::fs::write(failed_dir.join("1700000000-ln.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&secret, failed_dir.join("1700000000-ln.reason")).unwrap();
        let why = failed(d.path(), "1700000000-ln").unwrap();
        assert!(!why.contains("secret-hash"), "{why}");
        // A message that is a link: not read either.
        std::os::unix::fs::symlink(&secret, d.path().join("new/1700000000-m.json")).unwrap();
        let e = read(&d.path().join("new/1700000000-m.json"))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret-hash"), "{e}");
        // A FIFO as reason or message: no blocking.
        for p in ["failed/1700000000-ff.reason", "new/1700000000-ff.json"] {
            nix::unistd::mkfifo(
                &d.path().join(p),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
        }
        std::fs::write(failed_dir.join("1700000000-ff.json"), "{}").unwrap();
        let root = d.path().to_path_buf();
        let why = within_5s(move || failed(&root, "1700000000-ff"));
        assert_eq!(why.as_deref(), Some(""));
        let root = d.path().to_path_buf();
        assert!(within_5s(move || read(&root.join("new/1700000000-ff.json"))).is_err());
        // A reason written directly (not through `fail`): control bytes never come out, and
        // a huge one is cut.
        std::fs::write(failed_dir.join("1700000000-cc.json"), "{}").unwrap();
        let mut raw = b"550 \x1b]0;owned\x07\r\nbad\xff".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 1 << 20));
        std::fs::write(failed_dir.join("1700000000-cc.reason"), &raw).unwrap();
        let why = failed(d.path(), "1700000000-cc").unwrap();
        assert!(why.starts_with("550  ]0;owned   bad"), "{:?}", &why[..40]);
        assert!(!why.chars().any(char::is_control), "{why:?}");
        assert!(why.chars().count() <= 4096, "{}", why.len());
    }

    /// The issue's attack on the spool: its root made group-writable, a member of the
    /// sender's group swaps `new/` (or `tmp/`) for a link to another directory. Nothing is
    /// written there: the root's mode, the links and the owners are refused, naming the fix.
    #[test]
    fn a_swapped_new_or_a_group_writable_root_is_refused() {
        let d = spool();
        let root = d.path();
        let elsewhere = tempfile::tempdir().unwrap();
        let count = |p: &Path| std::fs::read_dir(p).unwrap().count();
        let refused = |needle: &str| {
            let e = enqueue(root, &message("1700000000-x")).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            let c = check_layout(root).unwrap_err().to_string();
            assert!(c.contains(needle), "{c}");
        };
        // The root writable by its group (or everyone).
        for mode in [0o775, 0o757, 0o2770] {
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode)).unwrap();
            refused("chmod go-w");
        }
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        // new/ or tmp/ a link to another directory.
        for sub in ["new", "tmp"] {
            std::fs::rename(root.join(sub), root.join("away")).unwrap();
            std::os::unix::fs::symlink(elsewhere.path(), root.join(sub)).unwrap();
            refused("not a directory (a symbolic link?)");
            if sub == "new" {
                // mfa-admin queue retry (root) does not move a message through it either.
                std::fs::write(root.join("failed/1700000000-f.json"), "{}").unwrap();
                let e = retry(root, "1700000000-f.json").unwrap_err().to_string();
                assert!(e.contains("symbolic link"), "{e}");
                std::fs::remove_file(root.join("failed/1700000000-f.json")).unwrap();
            }
            assert_eq!(count(elsewhere.path()), 0, "written through {sub}");
            std::fs::remove_file(root.join(sub)).unwrap();
            std::fs::rename(root.join("away"), root.join(sub)).unwrap();
        }
        // new/ a file.
        std::fs::rename(root.join("new"), root.join("away")).unwrap();
        std::fs::write(root.join("new"), "").unwrap();
        refused("not a directory");
        std::fs::remove_file(root.join("new")).unwrap();
        std::fs::rename(root.join("away"), root.join("new")).unwrap();
        // Owned by someone else (as root only: others cannot chown).
        if is_root() {
            for p in [root.to_path_buf(), root.join("new"), root.join("tmp")] {
                std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
                refused("not root");
                std::os::unix::fs::chown(&p, Some(0), None).unwrap();
            }
        }
        assert_eq!(count(&root.join("tmp")), 0);
        assert_eq!(count(&root.join("new")), 0);
        // Sound again: it queues.
        enqueue(root, &message("1700000000-x")).unwrap();
        assert_eq!(pending(root).unwrap(), ["1700000000-x.json"]);
    }

    /// A link planted in tmp/ under the next message's name is not followed (the name is
    /// created exclusively), and one planted in new/ is replaced, not written through.
    #[test]
    fn links_planted_inside_tmp_and_new_are_not_followed() {
        let d = spool();
        let target = d.path().join("target");
        std::fs::write(&target, "untouched").unwrap();
        std::os::unix::fs::symlink(&target, d.path().join("tmp/1700000000-t.json")).unwrap();
        assert!(enqueue(d.path(), &message("1700000000-t")).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        std::os::unix::fs::symlink(&target, d.path().join("new/1700000000-u.json")).unwrap();
        let p = enqueue(d.path(), &message("1700000000-u")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(
            !std::fs::symlink_metadata(&p)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(read(&p).unwrap(), message("1700000000-u"));
    }

    #[test]
    fn reasons_are_one_line_without_control_bytes() {
        let d = spool();
        enqueue(d.path(), &message("1700000000-r")).unwrap();
        let c = claim(d.path(), "1700000000-r.json").unwrap().unwrap();
        fail(d.path(), &c, "550 bad\r\n\x1b[31mred\0").unwrap();
        let text = std::fs::read_to_string(d.path().join("failed/1700000000-r.reason")).unwrap();
        assert_eq!(text, "550 bad  \u{1b}[31mred\n".replace('\u{1b}', " "));
        assert_eq!(newest_failure(d.path()).unwrap().0, "1700000000-r");
        std::fs::remove_file(d.path().join("failed/1700000000-r.reason")).unwrap();
        assert_eq!(newest_failure(d.path()).unwrap().1, "no reason recorded");
        assert_eq!(failed(d.path(), "1700000000-r").as_deref(), Some(""));
    }
}
