//! The sender's preflight: before it starts (daemon and `--once`) and in `--check`, the
//! sender verifies, as the user it runs as, everything it needs from the file system: its
//! configuration is readable, it can list, claim and delete messages in the spool's `new/`,
//! `cur/` and `failed/`, it can write its runtime directory, and each configured secret
//! file is readable and private. It never looks at the rules database.
//!
//! Every check is done by attempting the operation (a probe file created, renamed and
//! deleted), so it answers for this process's effective ids, its groups and its mounts
//! (systemd's `ProtectSystem=strict` without `ReadWritePaths=` shows up here). Each failure
//! is one line naming the path, what the sender needs and the fix.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mfa_core::config::{Config, ConfigSource};

/// One result: a name (`config`, `spool new/`, ...) and a detail.
pub type Check = (String, Result<String, String>);

/// The fix for anything the installation should have set up.
const REPAIR: &str = "run mfa-admin init as root, which repairs owners and modes";

/// Who this process is, for messages: `user mfa (uid 998), group mfa (gid 998)`.
pub fn identity() -> String {
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    format!(
        "user {} (uid {uid}), group {} (gid {gid})",
        user_name(uid.as_raw()),
        group_name(gid.as_raw())
    )
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map_or_else(|| uid.to_string(), |u| u.name)
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

/// The line for a configuration that could not be loaded.
pub fn config_failed(error: &mfa_core::Error) -> Check {
    let denied = matches!(error, mfa_core::Error::Io { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied);
    let detail = if denied {
        format!(
            "{error}; the sender ({}) needs to read it (0640 root:<sender group>): {REPAIR}",
            identity()
        )
    } else {
        error.to_string()
    };
    ("config".into(), Err(detail))
}

/// Every file check, in order. `messages` also tries to open each message waiting in
/// `new/` (for `--check`: a message the sender cannot read would fail as "unreadable").
pub fn run(source: &ConfigSource, config: &Config, messages: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let cfg = &source.path;
    out.push((
        "config".to_string(),
        Ok(if cfg.exists() {
            format!("{} readable", cfg.display())
        } else {
            format!("{} absent: built-in defaults", cfg.display())
        }),
    ));
    out.extend(spool(&config.paths.spool));
    if messages {
        out.push((
            "spool messages".into(),
            readable_messages(&config.paths.spool),
        ));
    }
    out.push(("runtime".into(), runtime(&config.paths.runtime)));
    for (name, path) in secrets(config) {
        out.push((
            format!("secret {name}"),
            secret(path).map(|m| format!("{}: {m}", path.display())),
        ));
    }
    out
}

/// The secret files the configuration names, with the key that names each.
fn secrets(config: &Config) -> Vec<(&'static str, &Path)> {
    let mut v = Vec::new();
    if let Some(p) = config
        .smtp
        .as_ref()
        .and_then(|s| s.password_file.as_deref())
    {
        v.push(("[smtp] password_file", p));
    }
    if let Some(s) = &config.sms {
        if let Some(p) = s.auth_token_file.as_deref() {
            v.push(("[sms] auth_token_file", p));
        }
        if let Some(p) = s.api_key_file.as_deref() {
            v.push(("[sms] api_key_file", p));
        }
    }
    if let Some(d) = &config.duo {
        v.push(("[duo] skey_file", d.skey_file.as_path()));
    }
    v
}

fn need(path: &Path, what: &str, e: &std::io::Error) -> String {
    format!(
        "{}: cannot {what}: {e}; the sender ({}) needs read, write and search permission \
         there (root:<sender group> 2770): {REPAIR}",
        path.display(),
        identity()
    )
}

/// Lists `new/`, `cur/` and `failed/`, then walks a probe file through them as a message
/// goes (created in `new/`, claimed into `cur/`, failed into `failed/`, deleted). The probe
/// is a dot file, which no reader of the spool takes for a message.
fn spool(spool: &Path) -> Vec<Check> {
    let dirs = ["new", "cur", "failed"].map(|d| (d, spool.join(d)));
    let mut result: Vec<(String, Result<String, String>)> = dirs
        .iter()
        .map(|(d, p)| {
            let r = std::fs::read_dir(p)
                .map(|_| format!("{}: list, claim and delete", p.display()))
                .map_err(|e| need(p, "list it", &e));
            (format!("spool {d}/"), r)
        })
        .collect();
    if result.iter().any(|(_, r)| r.is_err()) {
        return result;
    }
    let name = format!(".mfa-sender-check.{}", std::process::id());
    let [new, cur, failed] = [0, 1, 2].map(|i| dirs[i].1.join(&name));
    let step = |i: usize, what: &str, r: std::io::Result<()>| -> Option<(usize, String)> {
        r.err().map(|e| (i, need(&dirs[i].1, what, &e)))
    };
    let failure = step(
        0,
        "create a file in it",
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&new)
            .map(drop),
    )
    .or_else(|| step(1, "claim a message into it", std::fs::rename(&new, &cur)))
    .or_else(|| {
        step(
            2,
            "move a failed message into it",
            std::fs::rename(&cur, &failed),
        )
    })
    .or_else(|| step(2, "delete a message in it", std::fs::remove_file(&failed)));
    for p in [&new, &cur, &failed] {
        let _ = std::fs::remove_file(p);
    }
    if let Some((i, e)) = failure {
        result[i].1 = Err(e);
    }
    result
}

/// Opens each message waiting in `new/` for reading.
fn readable_messages(spool: &Path) -> Result<String, String> {
    let dir = spool.join("new");
    let names = mfa_core::spool::messages_in(spool, "new").map_err(|e| e.to_string())?;
    let bad: Vec<(PathBuf, std::io::Error)> = names
        .iter()
        .map(|n| dir.join(n))
        .filter_map(|p| std::fs::File::open(&p).err().map(|e| (p, e)))
        .collect();
    match bad.first() {
        None => Ok(format!("{} message(s) waiting, all readable", names.len())),
        Some((p, e)) => Err(format!(
            "{} of {} message(s) in {} cannot be read by the sender ({}), such as {}: {e}; \
             messages must be 0640 with the group of new/ (chgrp <sender group> FILE; chmod \
             640 FILE), or they end in failed/ as unreadable",
            bad.len(),
            names.len(),
            dir.display(),
            identity(),
            p.display()
        )),
    }
}

/// Creates and deletes a probe file in the runtime directory (heartbeat, status, lock).
fn runtime(dir: &Path) -> Result<String, String> {
    let probe = dir.join(format!(".mfa-sender-check.{}", std::process::id()));
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map(drop);
    let _ = std::fs::remove_file(&probe);
    r.map(|()| format!("{}: writable", dir.display()))
        .map_err(|e| {
            format!(
                "{}: cannot write there: {e}; the sender ({}) writes its heartbeat and status \
                 there (owned by the sender's user, 0755; systemd: RuntimeDirectory=mfa): \
                 {REPAIR}",
                dir.display(),
                identity()
            )
        })
}

/// Whether a secret file is safe to use and readable: owned by root or by the sender's
/// user, never writable by its group or others, never readable by others, readable by its
/// group only when that is the sender's group (0640 root:mfa; 0600 or 0400 mfa). Returns
/// what it is.
pub fn secret(path: &Path) -> Result<String, String> {
    let p = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("{p}: {e}"))?;
    let mode = meta.mode() & 0o7777;
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let me = user_name(euid);
    let group = group_name(egid);
    let fix = format!(
        "make it readable by the sender only: chmod 600 {p} (owned by {me}), or \
         chown root:{group} {p} && chmod 640 {p}"
    );
    if !meta.is_file() {
        return Err(format!("{p}: not a regular file"));
    }
    if mode & 0o007 != 0 || mode & 0o020 != 0 {
        let who = if mode & 0o007 != 0 {
            "others"
        } else {
            "its group"
        };
        return Err(format!(
            "{p}: secret file has mode {mode:04o}, which lets {who} read or write it; {fix}"
        ));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{p}: secret file is owned by {} (uid {}), who could change it; {fix}",
            user_name(meta.uid()),
            meta.uid()
        ));
    }
    if mode & 0o040 != 0 && meta.gid() != egid {
        return Err(format!(
            "{p}: secret file has mode {mode:04o} and group {}, not the sender's group {group}; {fix}",
            group_name(meta.gid())
        ));
    }
    std::fs::File::open(path).map_err(|e| {
        format!(
            "{p}: cannot read it: {e}; the sender ({}) must be able to: {fix}",
            identity()
        )
    })?;
    Ok(format!(
        "mode {mode:04o}, {}:{}",
        user_name(meta.uid()),
        group_name(meta.gid())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, mode: u32) -> PathBuf {
        let p = dir.join(format!("secret-{mode:o}"));
        std::fs::write(&p, "s3cret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn secret_files_must_be_private() {
        let d = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o400] {
            let p = file(d.path(), mode);
            assert!(secret(&p).is_ok(), "{mode:o}: {:?}", secret(&p));
        }
        // Group-readable is fine when the group is ours (0640 root:mfa as the sender mfa).
        assert!(secret(&file(d.path(), 0o640)).is_ok());
        for (mode, says) in [
            (0o644, "lets others read or write it"),
            (0o604, "lets others"),
            (0o602, "lets others"),
            (0o660, "lets its group read or write it"),
            (0o620, "lets its group"),
        ] {
            let p = file(d.path(), mode);
            let e = secret(&p).unwrap_err();
            assert!(
                e.contains(says)
                    && e.contains(&format!("{mode:04o}"))
                    && e.contains(&format!("chmod 600 {}", p.display()))
                    && !e.contains("s3cret"),
                "{mode:o}: {e}"
            );
        }
        let e = secret(&d.path().join("missing")).unwrap_err();
        assert!(e.contains("missing") && e.contains("No such file"), "{e}");
        let e = secret(d.path()).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_secret_of_another_owner_or_group_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (chown to nobody)");
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let p = file(d.path(), 0o600);
        std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
        let e = secret(&p).unwrap_err();
        assert!(
            e.contains("owned by nobody") && e.contains("could change it"),
            "{e}"
        );
        let p = file(d.path(), 0o640);
        std::os::unix::fs::chown(&p, None, Some(65534)).unwrap();
        let e = secret(&p).unwrap_err();
        assert!(e.contains("group nogroup, not the sender's group"), "{e}");
        // The same file, group-private, is fine.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(secret(&p).is_ok());
    }

    #[test]
    fn the_spool_probe_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        for s in mfa_core::spool::SUBDIRS {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        let r = spool(d.path());
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
        for s in mfa_core::spool::SUBDIRS {
            assert_eq!(
                std::fs::read_dir(d.path().join(s)).unwrap().count(),
                0,
                "{s}"
            );
        }
        // A missing cur/: that line fails, naming the path and the fix.
        std::fs::remove_dir(d.path().join("cur")).unwrap();
        let r = spool(d.path());
        let e = r[1].1.as_ref().unwrap_err();
        assert_eq!(r[1].0, "spool cur/");
        assert!(
            e.contains("/cur: cannot list it") && e.contains(REPAIR),
            "{e}"
        );
        // A file where failed/ should be: the probe reaches it and says so.
        std::fs::create_dir(d.path().join("cur")).unwrap();
        std::fs::remove_dir(d.path().join("failed")).unwrap();
        std::fs::write(d.path().join("failed"), "").unwrap();
        let r = spool(d.path());
        assert!(r[2].1.is_err(), "{r:?}");
        assert_eq!(std::fs::read_dir(d.path().join("new")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(d.path().join("cur")).unwrap().count(), 0);
    }
}
