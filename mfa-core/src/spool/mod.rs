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
//! | `kind` | `passcode`, `test` or `notice` (no code: the Duo enrollment link) |
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
    /// A notice without a code (the Duo enrollment link): not counted by the passcode send
    /// limits.
    Notice,
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
mod tests;
