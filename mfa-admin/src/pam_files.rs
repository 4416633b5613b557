//! The PAM service files of this machine (`/etc/pam.d`, or the directory named by the
//! environment variable `MFA_PAM_DIR`): which services exist, which rule governs each (a
//! service without a rule of its own follows its family: `mfa_core::service`), and a warning
//! for a rule that names no service here (a typo such as `ssh-d`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mfa_core::Result;
use mfa_core::service::{governing, lineage};
use mfa_core::store::Store;
use mfa_core::store::rules as q;
use mfa_core::validate::{self, ANY_SERVICE};

/// The environment variable that names another directory of PAM service files (tests, or a
/// chroot being prepared).
pub const DIR_ENV: &str = "MFA_PAM_DIR";

/// Where the PAM service files are.
pub fn dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/etc/pam.d"), PathBuf::from)
}

/// Every regular file of `dir` whose name is a valid service name (packaging leftovers such
/// as `sshd.dpkg-old` and `sshd~` are not services), sorted; `None` when `dir` cannot be read.
fn files(dir: &Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            validate::service(n).is_ok_and(|v| v == *n)
                && n != ANY_SERVICE
                && ![".dpkg-", ".ucf-", ".bak", ".orig", ".save", ".swp"]
                    .iter()
                    .any(|x| n.contains(x))
        })
        .filter(|n| std::fs::metadata(dir.join(n)).is_ok_and(|m| m.is_file()))
        .collect();
    names.sort();
    Some(names)
}

/// The services of `dir`: its files but the include files (`common-*`) and `other` (the
/// stack of services without a file), which no program names as its service.
fn services(dir: &Path) -> Option<Vec<String>> {
    let mut names = files(dir)?;
    names.retain(|n| !n.starts_with("common-") && n != "other");
    Some(names)
}

/// The names that have a rule of their own: a method or a network rule.
fn rule_names(store: &Store) -> Result<BTreeSet<String>> {
    let conn = store.conn();
    let mut names: BTreeSet<String> = q::services(conn)?.into_iter().map(|s| s.service).collect();
    names.extend(q::networks(conn, None)?.into_iter().map(|r| r.service));
    Ok(names)
}

/// For each rule name, the services of `dir` without a rule of their own that follow it:
/// `su` -> [`su-l`], and `*` -> every service whose family has no rule. Empty when `dir`
/// cannot be read.
pub fn followers(store: &Store, dir: &Path) -> Result<BTreeMap<String, Vec<String>>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(services) = services(dir) else {
        return Ok(map);
    };
    let names = rule_names(store)?;
    for s in services {
        if names.contains(&s) {
            continue;
        }
        let g = governing(&s, |n| names.contains(n));
        let key = if g == s { ANY_SERVICE } else { g };
        map.entry(key.to_string()).or_default().push(s.clone());
    }
    Ok(map)
}

/// Warns on standard error when no service file of `dir` is `name` or a member of its
/// family (`name-...`): the rule then governs nothing on this machine, most likely a typo.
/// Names the missing file and the closest existing service names. Silent when `dir` cannot
/// be read (nothing to compare with).
pub fn warn_unknown(name: &str, dir: &Path) {
    if let Some(text) = unknown_warning(name, dir) {
        eprintln!("{text}");
    }
}

fn unknown_warning(name: &str, dir: &Path) -> Option<String> {
    if name == ANY_SERVICE {
        return None;
    }
    let files = files(dir)?;
    if files.iter().any(|f| lineage(f).any(|l| l == name)) {
        return None;
    }
    let file = dir.join(name);
    let mut close: Vec<(usize, String)> = services(dir)?
        .into_iter()
        .map(|s| (distance(name, &s), s))
        .filter(|(d, s)| *d <= 2.max(s.len().min(name.len()) / 3))
        .collect();
    close.sort();
    let hint = match close.len() {
        0 => format!(
            "the service names are the file names in {} (the rule still applies to a service of that name once it exists)",
            dir.display()
        ),
        _ => format!(
            "did you mean {}?",
            close
                .iter()
                .take(3)
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    };
    Some(format!(
        "warning: there is no PAM service file {} (nor {name}-*): the rule was saved but governs no service on this machine; {hint}",
        file.display()
    ))
}

/// Levenshtein distance over bytes (service names are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pam_dir(names: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::write(d.path().join(n), "auth required pam_unix.so\n").unwrap();
        }
        d
    }

    #[test]
    fn distances() {
        assert_eq!(distance("ssh-d", "sshd"), 1);
        assert_eq!(distance("sudo", "sudo-i"), 2);
        assert_eq!(distance("", "su"), 2);
        assert_eq!(distance("login", "login"), 0);
    }

    #[test]
    fn a_name_without_a_file_is_warned_about_with_close_names() {
        let d = pam_dir(&[
            "sshd",
            "su",
            "su-l",
            "sudo",
            "sudo-i",
            "login",
            "common-auth",
            "other",
            "sshd.dpkg-old",
        ]);
        let w = unknown_warning("ssh-d", d.path()).unwrap();
        assert!(w.contains(&format!("{}/ssh-d", d.path().display())), "{w}");
        assert!(w.contains("did you mean sshd?"), "{w}");
        for known in ["sshd", "su", "sudo-i", "common-auth", "*"] {
            assert_eq!(unknown_warning(known, d.path()), None, "{known}");
        }
        // `sshd-publickey` missing: sshd is closest; a family parent without its own file
        // but with a member file is no typo.
        let d2 = pam_dir(&["sshd-publickey"]);
        assert_eq!(unknown_warning("sshd", d2.path()), None);
        let w = unknown_warning("vsftpd", d.path()).unwrap();
        assert!(w.contains("the service names are the file names"), "{w}");
        assert_eq!(unknown_warning("x", Path::new("/nonexistent/pam.d")), None);
    }

    #[test]
    fn odd_entries_of_the_directory_are_no_services() {
        use std::os::unix::ffi::OsStrExt;
        let d = pam_dir(&["sshd", "sshd~", "sshd.dpkg-old", ".hidden", "-x"]);
        std::fs::create_dir(d.path().join("sudo")).unwrap();
        std::os::unix::fs::symlink("loop", d.path().join("loop")).unwrap();
        std::os::unix::fs::symlink("sshd", d.path().join("sshd-link")).unwrap();
        for hostile in [&b"su\nsu-l"[..], b"su\xff", b"su l", b"su\x1b[2J"] {
            let name = std::ffi::OsStr::from_bytes(hostile);
            std::fs::write(d.path().join(name), "").unwrap();
        }
        assert_eq!(files(d.path()).unwrap(), ["sshd", "sshd-link"]);
        // A warning names only the listed services, never an odd entry.
        let w = unknown_warning("sshh", d.path()).unwrap();
        assert!(!w.contains('\n') && !w.contains('\u{1b}'), "{w}");
        assert!(w.ends_with("did you mean sshd?"), "{w}");
    }

    #[test]
    fn followers_are_the_services_without_rules_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = mfa_core::store::Store::create(&dir.path().join("mfa.db")).unwrap();
        s.change("t", "t", |tx| {
            q::set_service(tx, "su", "none")?;
            q::set_service(tx, "sudo", "totp")?;
            q::set_service(tx, "sudo-i", "totp")?;
            Ok(((), String::new()))
        })
        .unwrap();
        let d = pam_dir(&[
            "su",
            "su-l",
            "sudo",
            "sudo-i",
            "login",
            "runuser-l",
            "common-auth",
            "other",
        ]);
        let f = followers(&s, d.path()).unwrap();
        assert_eq!(f.get("su").unwrap(), &["su-l"]);
        assert_eq!(f.get("sudo"), None, "sudo-i has its own rule");
        assert_eq!(f.get("*").unwrap(), &["login", "runuser-l"]);
        assert!(followers(&s, Path::new("/nonexistent")).unwrap().is_empty());
    }
}
