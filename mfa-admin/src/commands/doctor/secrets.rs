//! The files that hold secrets or login state, beside the database: the database (every
//! TOTP key, the passcode hash key, contacts), the policy snapshot (a copy of the same), the
//! login-state directories `-users/` and `-challenges/` (failure counts, grants, keyed
//! hashes of outstanding passcodes) and the auth-log inbox. Each must be root's and private:
//! files 0600, directories 0700. The module refuses a database or snapshot others can read
//! (`mfa_core::store`, `mfa_core::snapshot`); this says which file and how to fix it.
//! Checked before the database is opened, which rewrites a snapshot that fails its checks.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Report;

/// How many offending names a check lists before "and N more".
const LIST_AT_MOST: usize = 5;

/// What is wrong with one path, if anything: its owner or any group/other bit.
fn problem(path: &Path, meta: &std::fs::Metadata) -> Option<String> {
    let dir = meta.is_dir();
    let fix = if dir { "chmod 700" } else { "chmod 600" };
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 && meta.uid() != nix::unistd::geteuid().as_raw() {
        return Some(format!(
            "{} is owned by uid {}, not root; fix with: chown root: {}",
            path.display(),
            meta.uid(),
            path.display()
        ));
    }
    if mode & 0o077 != 0 {
        let who = if mode & 0o007 != 0 {
            "everyone"
        } else {
            "its group"
        };
        return Some(format!(
            "{} has mode {mode:04o}: {who} can {}; fix with: {fix} {}",
            path.display(),
            if dir { "list or enter it" } else { "read it" },
            path.display()
        ));
    }
    None
}

/// Every check of this module.
pub fn check(r: &mut Report, database: &Path) {
    let sib = |suffix: &str| {
        let mut s = database.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    };
    let single =
        |r: &mut Report, name: &str, path: &Path, what: &str| match std::fs::symlink_metadata(path)
        {
            Ok(m) => match problem(path, &m) {
                Some(p) => r.add(name, "fail", format!("{p} ({what})")),
                None => r.add(name, "ok", format!("{} is private", path.display())),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => r.add(name, "fail", format!("{}: {e}", path.display())),
        };
    single(
        r,
        "database permissions",
        database,
        "it holds every TOTP key, the passcode hash key and every contact; the module refuses it",
    );
    single(
        r,
        "snapshot permissions",
        &mfa_core::snapshot::path_for(database),
        "a copy of the TOTP keys and the passcode hash key; the module does not use it, and this \
         run of mfa-admin rewrites it",
    );
    single(
        r,
        "lockouts file permissions",
        &mfa_core::snapshot::lockouts::path_for(database),
        "who is locked out; the module does not use it (nor the snapshot), and this run of \
         mfa-admin rewrites it",
    );
    single(
        r,
        "auth-log inbox",
        &mfa_core::authlog::path_for(database),
        "who logged in from where",
    );
    for (name, suffix, what) in [
        (
            "login state",
            "-users",
            "failure counts, authenticator steps and repeat-window grants",
        ),
        (
            "challenges",
            "-challenges",
            "keyed hashes of the passcodes outstanding",
        ),
    ] {
        let dir = sib(suffix);
        let meta = match std::fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                r.add(name, "fail", format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let mut bad: Vec<String> = problem(&dir, &meta).into_iter().collect();
        if meta.is_dir() {
            let mut files: Vec<String> = Vec::new();
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if let Ok(m) = e.metadata()
                    && problem(&e.path(), &m).is_some()
                {
                    files.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            files.sort();
            if !files.is_empty() {
                let more = files.len().saturating_sub(LIST_AT_MOST);
                bad.push(format!(
                    "{} file(s) in {} are readable by others or not root's ({}{}); fix with: \
                     chmod 600 {}/*",
                    files.len(),
                    dir.display(),
                    files[..files.len().min(LIST_AT_MOST)].join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    },
                    dir.display()
                ));
            }
        } else {
            bad.push(format!(
                "{} is not a directory; remove it (the module makes it again)",
                dir.display()
            ));
        }
        if bad.is_empty() {
            r.add(name, "ok", format!("{} is private", dir.display()));
        } else {
            r.add(name, "fail", format!("{} ({what})", bad.join("; ")));
        }
    }
}
