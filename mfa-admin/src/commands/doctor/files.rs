//! The files as the sender's user sees them: who the sender is (`[sender] user`), and whether
//! that user can read its configuration and transport secrets, use the spool's
//! subdirectories, read every queued message and write its runtime directory. The ownership
//! model (README, "Files and permissions"): mfa.toml 0640 root:GROUP, secrets 0640 root:GROUP
//! or 0600 USER, spool subdirectories 2770 root:GROUP, messages 0640 with the spool's group,
//! runtime directory owned by USER. Access is computed from owners and mode bits for the
//! sender's uid and groups, never with access(2) (which would ask about root).

use std::ffi::CString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mfa_core::config::Config;
use mfa_core::spool::SUBDIRS;
use nix::unistd::{Gid, Group, Uid, User};

use super::Report;

/// How many unreadable message names a check lists before "and N more".
const LIST_AT_MOST: usize = 5;

/// The sender's account.
#[derive(Debug, Clone)]
pub struct Sender {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
    /// Every group it is in, the primary one included.
    pub groups: Vec<Gid>,
    pub group_name: String,
}

const READ: u32 = 4;
const WRITE: u32 = 2;
const EXEC: u32 = 1;

impl Sender {
    /// Looks the user up in the system's user database.
    pub fn lookup(name: &str) -> Result<Option<Sender>, String> {
        let user = match User::from_name(name) {
            Ok(Some(u)) => u,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("cannot look up user {name:?}: {e}")),
        };
        let cname = CString::new(name).map_err(|_| format!("{name:?}: NUL in the name"))?;
        let mut groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_default();
        if !groups.contains(&user.gid) {
            groups.push(user.gid);
        }
        let group_name = Group::from_gid(user.gid)
            .ok()
            .flatten()
            .map_or_else(|| user.gid.to_string(), |g| g.name);
        Ok(Some(Sender {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            group_name,
        }))
    }

    /// Whether this user may do `bits` (READ, WRITE, EXEC) on a file with this metadata.
    fn may(&self, m: &Metadata, bits: u32) -> bool {
        if self.uid.is_root() {
            return true;
        }
        let mode = m.mode();
        let granted = if m.uid() == self.uid.as_raw() {
            mode >> 6
        } else if self.groups.iter().any(|g| g.as_raw() == m.gid()) {
            mode >> 3
        } else {
            mode
        } & 7;
        granted & bits == bits
    }

    fn who(&self) -> String {
        format!("user {} (group {})", self.name, self.group_name)
    }
}

/// Who else holds the sender's uid or group, if anyone: `nobody` (which other programs run
/// as), members of its group, accounts whose primary group it is (from /etc/passwd).
pub(crate) fn shared_with_others(s: &Sender) -> Option<String> {
    if s.name == "nobody" || s.uid.as_raw() == 65534 {
        return Some(format!(
            "the sender's user {} is shared by other programs",
            s.name
        ));
    }
    let mut others: Vec<String> = Group::from_gid(s.gid)
        .ok()
        .flatten()
        .map(|g| g.mem)
        .unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string("/etc/passwd") {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 3 && f[3] == s.gid.to_string() {
                others.push(f[0].to_string());
            }
        }
    }
    others.retain(|n| *n != s.name);
    others.sort();
    others.dedup();
    if others.is_empty() {
        return None;
    }
    let shown: Vec<String> = others.iter().take(LIST_AT_MOST).cloned().collect();
    let more = others.len().saturating_sub(LIST_AT_MOST);
    Some(format!(
        "the sender's group {} is also {}'s{}",
        s.group_name,
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}

/// `0640 root:mfa`.
fn describe(m: &Metadata) -> String {
    let name = |uid: u32| {
        User::from_uid(Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name)
    };
    let group = Group::from_gid(Gid::from_raw(m.gid()))
        .ok()
        .flatten()
        .map_or_else(|| m.gid().to_string(), |g| g.name);
    format!("{:04o} {}:{}", m.mode() & 0o7777, name(m.uid()), group)
}

/// The first directory above `path` the sender cannot search, if any.
fn blocked_dir(s: &Sender, path: &Path) -> Option<String> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut dirs: Vec<PathBuf> = abs.ancestors().skip(1).map(Path::to_path_buf).collect();
    dirs.reverse();
    for d in dirs {
        match std::fs::metadata(&d) {
            Ok(m) if !s.may(&m, EXEC) => {
                return Some(format!(
                    "{} cannot enter {} ({})",
                    s.who(),
                    d.display(),
                    describe(&m)
                ));
            }
            Err(e) => return Some(format!("{}: {e}", d.display())),
            Ok(_) => {}
        }
    }
    None
}

/// Every check of this module.
pub fn check(r: &mut Report, config: &Config, config_path: &Path) -> Option<Sender> {
    let name = &config.sender.user;
    let s = match Sender::lookup(name) {
        Ok(Some(s)) => s,
        Ok(None) => {
            r.add(
                "sender user",
                "fail",
                format!(
                    "the sender's user {name:?} ([sender] user) does not exist: run mfa-admin init as root (creates the system user mfa)"
                ),
            );
            return None;
        }
        Err(e) => {
            r.add("sender user", "fail", e);
            return None;
        }
    };
    if s.uid.is_root() {
        r.add(
            "sender user",
            "warn",
            "[sender] user is root: run the sender as the unprivileged user mfa (`mfa-admin init` creates it)",
        );
    } else {
        r.add(
            "sender user",
            "ok",
            format!("mfa-sender runs as {} (uid {})", s.who(), s.uid),
        );
    }
    if let Some(why) = shared_with_others(&s) {
        r.add(
            "sender group",
            "warn",
            format!(
                "{why}: they can read every queued passcode (messages are 0640 root:{g}) and \
                 queue messages of their own; give the sender an account and group of its own \
                 ([sender] user = \"mfa\"; `mfa-admin init` creates it)",
                g = s.group_name
            ),
        );
    }
    if config_path.exists() {
        readable_file(r, &s, "config as sender", config_path, false);
    }
    let secrets = [
        config.smtp.as_ref().and_then(|c| c.password_file.clone()),
        config.sms.as_ref().and_then(|c| c.auth_token_file.clone()),
        config.sms.as_ref().and_then(|c| c.api_key_file.clone()),
    ];
    for f in secrets.into_iter().flatten() {
        readable_file(r, &s, &format!("secret {}", f.display()), &f, true);
    }
    spool(r, &s, &config.paths.spool);
    runtime(r, &s, &config.paths.runtime);
    Some(s)
}

/// A file the sender must read; `secret`: nobody else may.
fn readable_file(r: &mut Report, s: &Sender, what: &str, path: &Path, secret: bool) {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return r.add(what, "fail", format!("{}: {e}", path.display())),
    };
    let p = path.display();
    if let Some(why) = blocked_dir(s, path) {
        return r.add(what, "fail", format!("{why}, so it cannot read {p}"));
    }
    if !s.may(&m, READ) {
        return r.add(
            what,
            "fail",
            format!(
                "{} cannot read {p} ({}): chgrp {} {p}; chmod 0640 {p} (mfa-admin init as root repairs it)",
                s.who(),
                describe(&m),
                s.group_name
            ),
        );
    }
    if m.uid() != 0 && m.uid() != s.uid.as_raw() {
        return r.add(
            what,
            "fail",
            format!(
                "{p} ({}) belongs to another user: chown root: {p}",
                describe(&m)
            ),
        );
    }
    if m.mode() & 0o022 != 0 {
        return r.add(
            what,
            "fail",
            format!(
                "{p} ({}) can be written by others: chmod go-w {p}",
                describe(&m)
            ),
        );
    }
    if secret && m.mode() & 0o004 != 0 {
        return r.add(
            what,
            "fail",
            format!(
                "{p} ({}) holds a secret every user can read: chmod o-r {p}",
                describe(&m)
            ),
        );
    }
    if !secret && m.mode() & 0o004 != 0 {
        return r.add(
            what,
            "warn",
            format!(
                "{p} ({}) is readable by every user: expected 0640 root:{} (mfa-admin init as root repairs it)",
                describe(&m),
                s.group_name
            ),
        );
    }
    r.add(
        what,
        "ok",
        format!("{p} ({}) is readable by {}", describe(&m), s.who()),
    );
}

fn spool(r: &mut Report, s: &Sender, spool: &Path) {
    let what = "spool as sender";
    let m = match std::fs::metadata(spool) {
        Ok(m) => m,
        Err(e) => {
            return r.add(
                what,
                "fail",
                format!("{}: {e}; run mfa-admin init as root", spool.display()),
            );
        }
    };
    if let Some(why) = blocked_dir(s, &spool.join("new")) {
        return r.add(what, "fail", why);
    }
    if m.mode() & 0o022 != 0 || m.uid() != 0 {
        // Whoever can write the spool's root can swap new/ for a symlink to any directory,
        // where the module (root) would then write.
        r.add(
            what,
            "fail",
            format!(
                "{} ({}) must be root's and not writable by others: chown root:root {p}; chmod 0755 {p}",
                spool.display(),
                describe(&m),
                p = spool.display()
            ),
        );
    }
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for sub in SUBDIRS {
        let d = spool.join(sub);
        let p = d.display();
        let m = match std::fs::metadata(&d) {
            Ok(m) if m.is_dir() => m,
            Ok(_) => {
                problems.push(format!("{p} is not a directory"));
                continue;
            }
            Err(e) => {
                problems.push(format!("{p}: {e}"));
                continue;
            }
        };
        if !s.may(&m, READ | WRITE | EXEC) {
            problems.push(format!(
                "{} cannot use {p} ({}): expected 2770 root:{}",
                s.who(),
                describe(&m),
                s.group_name
            ));
        } else if m.mode() & 0o002 != 0 {
            problems.push(format!("{p} ({}) is writable by everyone", describe(&m)));
        } else if m.uid() != 0 {
            warnings.push(format!("{p} ({}) should be root's", describe(&m)));
        } else if m.mode() & 0o2000 == 0 {
            warnings.push(format!(
                "{p} ({}) lacks the set-group-ID bit (2770)",
                describe(&m)
            ));
        }
    }
    let fix = "; mfa-admin init as root repairs the spool";
    if !problems.is_empty() {
        r.add(what, "fail", problems.join("; ") + fix);
    } else if !warnings.is_empty() {
        r.add(what, "warn", warnings.join("; ") + fix);
    } else {
        r.add(
            what,
            "ok",
            format!(
                "{} can claim, deliver and fail messages in {}",
                s.who(),
                spool.display()
            ),
        );
    }
    messages(r, s, spool);
}

/// Every message file the sender cannot read.
fn messages(r: &mut Report, s: &Sender, spool: &Path) {
    let mut bad = Vec::new();
    let mut total = 0;
    for sub in ["new", "cur", "failed"] {
        let Ok(rd) = std::fs::read_dir(spool.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            total += 1;
            match std::fs::symlink_metadata(e.path()) {
                Ok(m) if m.is_file() && s.may(&m, READ) => {}
                Ok(m) => bad.push(format!("{sub}/{name} ({})", describe(&m))),
                Err(_) => {} // gone meanwhile: delivered
            }
        }
    }
    if bad.is_empty() {
        return r.add(
            "spool messages",
            "ok",
            format!(
                "{} can read all {total} queued or failed message(s)",
                s.who()
            ),
        );
    }
    bad.sort();
    let n = bad.len();
    let mut list: Vec<String> = bad.into_iter().take(LIST_AT_MOST).collect();
    if n > LIST_AT_MOST {
        list.push(format!("and {} more", n - LIST_AT_MOST));
    }
    r.add(
        "spool messages",
        "fail",
        format!(
            "{} cannot read {n} message file(s) in {}: {}; they end in failed/ unsent (messages must be 0640 with the spool's group {}: chgrp {} FILE; chmod 0640 FILE)",
            s.who(),
            spool.display(),
            list.join(", "),
            s.group_name,
            s.group_name
        ),
    );
}

fn runtime(r: &mut Report, s: &Sender, dir: &Path) {
    let what = "runtime directory";
    let p = dir.display();
    let m = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => {
            return r.add(
                what,
                "fail",
                format!("{p}: {e}; run mfa-admin init as root"),
            );
        }
    };
    if let Some(why) = blocked_dir(s, &dir.join("x")) {
        return r.add(what, "fail", why);
    }
    if !s.may(&m, WRITE | EXEC) {
        return r.add(
            what,
            "fail",
            format!(
                "{} cannot write its heartbeat in {p} ({}): chown {}:{} {p}",
                s.who(),
                describe(&m),
                s.name,
                s.group_name
            ),
        );
    }
    if m.mode() & 0o002 != 0 {
        return r.add(
            what,
            "fail",
            format!("{p} ({}) is writable by everyone", describe(&m)),
        );
    }
    if m.uid() != s.uid.as_raw() {
        return r.add(
            what,
            "warn",
            format!(
                "{p} ({}) should belong to the sender: chown {}:{} {p}",
                describe(&m),
                s.name,
                s.group_name
            ),
        );
    }
    r.add(
        what,
        "ok",
        format!("{p} ({}) belongs to the sender", describe(&m)),
    );
}
