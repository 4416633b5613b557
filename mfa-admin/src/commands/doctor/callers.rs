//! Unprivileged callers (`[callers]` in mfa.toml): servers such as PostgreSQL call PAM as
//! their own account, where pam_mfa reads nothing itself and runs the setuid helper
//! `mfa-check`, which answers only for the accounts and services listed. Checks: each listed
//! account exists; the helper pam_mfa would run exists, is root's, setuid and writable by
//! nobody else; each listed service has a pam.d file that runs pam_mfa for it; and a
//! PostgreSQL stack with pam_mfa has its caller listed.
//!
//! Paths are under the root of the pam.d directory checked (`/` for `/etc/pam.d`; `DIR` for
//! `DIR/etc/pam.d`), so that tests can lay out a throwaway root.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Report;

/// Services whose server calls PAM as its own account, and that account (Debian's).
const UNPRIVILEGED: &[(&str, &str)] = &[("postgresql", "postgres")];

/// A pam.d file whose auth stack runs pam_mfa.
#[derive(Debug)]
pub struct Stacked {
    /// The file's name (the PAM service).
    pub file: String,
    /// The rules' service names its pam_mfa lines decide for: the file's name, or the
    /// `service=` argument.
    pub services: BTreeSet<String>,
    /// `helper=` arguments of its pam_mfa lines.
    pub helpers: BTreeSet<String>,
}

/// The root a pam.d directory belongs to: `R` for `R/etc/pam.d`, else `/`.
pub fn root_of(pam_dir: &Path) -> PathBuf {
    if pam_dir.ends_with("etc/pam.d") {
        pam_dir
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
    } else {
        PathBuf::from("/")
    }
}

/// `path` (absolute, as the module names it) under `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Checks one helper file: Ok(detail) or Err(what is wrong and the fix).
fn helper_file(p: &Path) -> Result<String, String> {
    let m = std::fs::metadata(p).map_err(|e| {
        format!(
            "{}: {e}: pam_mfa running as a caller cannot ask it; install the package \
             libpam-mfa (or `make install`), or correct helper=",
            p.display()
        )
    })?;
    let mode = m.mode() & 0o7777;
    let fix = format!("chown root:root {0} && chmod 4755 {0}", p.display());
    if !m.is_file() {
        return Err(format!("{} is not a regular file", p.display()));
    }
    if m.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, not root: it cannot read the rules for the callers, and its \
             owner can change what it answers; {fix}",
            p.display(),
            m.uid()
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{} (mode {mode:04o}) is writable by group or others: they could replace a setuid \
             root program; {fix}",
            p.display()
        ));
    }
    if mode & 0o4000 == 0 || mode & 0o001 == 0 {
        return Err(format!(
            "{} (mode {mode:04o}) is not setuid root and executable by all: pam_mfa running as \
             a caller cannot use it, and their logins get \"second factor unavailable\" \
             (fail_mode); {fix}",
            p.display()
        ));
    }
    Ok(format!("{} (mode {mode:04o}, root)", p.display()))
}

/// The checks; `stacked` lists the pam.d files that run pam_mfa.
pub fn check(
    r: &mut Report,
    callers: &BTreeMap<String, Vec<String>>,
    pam_dir: &Path,
    stacked: &[Stacked],
) {
    let root = root_of(pam_dir);
    let listed: BTreeSet<&str> = callers.values().flatten().map(String::as_str).collect();
    for (service, account) in UNPRIVILEGED {
        for s in stacked
            .iter()
            .filter(|s| mfa_core::service::lineage(&s.file).any(|x| x == *service))
        {
            let missing: Vec<&String> = s
                .services
                .iter()
                .filter(|x| !listed.contains(x.as_str()))
                .collect();
            if let Some(m) = missing.first() {
                r.add(
                    format!("callers {}", s.file),
                    "warn",
                    format!(
                        "pam.d/{} runs pam_mfa for {m}, but no account in [callers] of mfa.toml \
                         lists it: {service}'s server calls PAM as `{account}`, not root, and \
                         pam_mfa's helper refuses it (logins get \"second factor unavailable\"); \
                         add `[callers]` `{account} = [\"{m}\"]` (the account the server runs \
                         as)",
                        s.file
                    ),
                );
            }
        }
    }
    if callers.is_empty() {
        return;
    }
    for (account, services) in callers {
        let what = format!("caller {account}");
        match nix::unistd::User::from_name(account) {
            Ok(Some(u)) => r.add(
                what.clone(),
                "ok",
                format!("account {account} (uid {}) exists", u.uid),
            ),
            Ok(None) => r.add(
                what.clone(),
                "warn",
                format!(
                    "[callers] lists {account}, but there is no such account: the entry does \
                     nothing; write the account the server runs as (`ps -o user= -C postgres`)"
                ),
            ),
            Err(e) => r.add(
                what.clone(),
                "warn",
                format!("cannot look up the account {account}: {e}"),
            ),
        }
        for svc in services {
            let users: Vec<&str> = stacked
                .iter()
                .filter(|s| s.services.contains(svc))
                .map(|s| s.file.as_str())
                .collect();
            if users.is_empty() {
                r.add(
                    format!("caller {account} {svc}"),
                    "warn",
                    format!(
                        "[callers] lets {account} ask about {svc}, but no file in {} runs \
                         pam_mfa for it (a file named {svc}, or pam_mfa with service={svc}): \
                         check the name (PostgreSQL: pg_hba.conf pamservice=)",
                        pam_dir.display()
                    ),
                );
            } else {
                r.add(
                    format!("caller {account} {svc}"),
                    "ok",
                    format!("pam_mfa runs for {svc} in pam.d/{}", users.join(", pam.d/")),
                );
            }
        }
    }
    // The helper the module runs: helper= if a stack names one, else the first that exists.
    let named: BTreeSet<&String> = stacked.iter().flat_map(|s| &s.helpers).collect();
    if named.is_empty() {
        let candidates: Vec<PathBuf> = mfa_core::helper::HELPER_PATHS
            .iter()
            .map(|h| under(&root, h))
            .collect();
        match candidates.iter().find(|p| p.exists()) {
            Some(p) => match helper_file(p) {
                Ok(d) => r.add("helper mfa-check", "ok", d),
                Err(e) => r.add("helper mfa-check", "fail", e),
            },
            None => r.add(
                "helper mfa-check",
                "fail",
                format!(
                    "[callers] is set, but neither {} exists: pam_mfa running as a caller finds \
                     no helper and their logins get \"second factor unavailable\" (fail_mode); \
                     install the package libpam-mfa (or `make install`)",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" nor ")
                ),
            ),
        }
    } else {
        for h in named {
            match helper_file(&under(&root, h)) {
                Ok(d) => r.add(format!("helper {h}"), "ok", d),
                Err(e) => r.add(format!("helper {h}"), "fail", e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_of_a_pam_dir() {
        assert_eq!(root_of(Path::new("/etc/pam.d")), Path::new("/"));
        assert_eq!(root_of(Path::new("/tmp/x/etc/pam.d")), Path::new("/tmp/x"));
        assert_eq!(root_of(Path::new("/tmp/x/pam.d")), Path::new("/"));
        assert_eq!(
            under(Path::new("/tmp/x"), "/usr/lib/mfa/mfa-check"),
            Path::new("/tmp/x/usr/lib/mfa/mfa-check")
        );
    }
}
