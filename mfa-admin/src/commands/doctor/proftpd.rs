//! proftpd's own settings that its PAM stack depends on, checked when a proftpd service file
//! runs pam_mfa and `etc/proftpd/proftpd.conf` exists (under the pam.d directory's root):
//!
//! - `AuthOrder mod_auth_pam.c* ...`: by default mod_auth_pam is not authoritative, and a
//!   login PAM refuses goes on to mod_auth_unix, which checks the password against
//!   /etc/shadow itself: the password alone logs in (the proftpd system test shows it).
//!   Debian's proftpd.conf has the line commented out.
//! - `UseReverseDNS off`: otherwise mod_auth_pam passes the client's host name as PAM_RHOST,
//!   so network rules never match and a double logon's passcode is bound to a name the
//!   client's DNS chooses.
//!
//! The file and what it includes (`Include FILE|DIR|GLOB`, bounded) are scanned for the
//! directives, wherever they stand (a `<VirtualHost>` of its own may still differ).

use std::path::{Path, PathBuf};

use super::Report;
use super::callers::{Stacked, root_of};
use super::stack::read_bounded;

/// Files read at most (the main one and its includes).
const MAX_FILES: usize = 64;
/// How deep includes are followed.
const MAX_DEPTH: usize = 4;

/// The directives found, each with where.
#[derive(Default)]
struct Seen {
    auth_order: Vec<(String, String)>,
    reverse_dns: Vec<(String, String)>,
    auth_pam_off: Option<String>,
    files: usize,
}

/// `path` as proftpd would name it, under `root` (relative: from `etc/proftpd`).
fn place(root: &Path, path: &str) -> PathBuf {
    if let Some(p) = path.strip_prefix('/') {
        root.join(p)
    } else {
        root.join("etc/proftpd").join(path)
    }
}

/// Files an `Include` names: a file, every file of a directory, or a `*` pattern in the last
/// part; sorted.
fn included(root: &Path, arg: &str) -> Vec<PathBuf> {
    let p = place(root, arg.trim_matches('"'));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (dir, pattern) = if p.is_dir() {
        (p.clone(), None)
    } else if name.contains('*') {
        (
            p.parent().map(Path::to_path_buf).unwrap_or_default(),
            Some(name),
        )
    } else {
        return vec![p];
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|f| f.is_file())
        .filter(|f| match &pattern {
            None => true,
            Some(pat) => {
                let n = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (pre, post) = pat.split_once('*').unwrap_or((pat, ""));
                n.len() >= pre.len() + post.len() && n.starts_with(pre) && n.ends_with(post)
            }
        })
        .collect();
    out.sort();
    out
}

/// Reads `file` and what it includes; `chain` holds the files including it (a file that
/// includes itself, directly or not, is not read again).
fn scan(root: &Path, file: &Path, chain: &mut Vec<PathBuf>, seen: &mut Seen) {
    if chain.len() > MAX_DEPTH || seen.files >= MAX_FILES || chain.iter().any(|c| c == file) {
        return;
    }
    seen.files += 1;
    let Ok(bytes) = read_bounded(file) else {
        return;
    };
    let text = String::from_utf8_lossy(&bytes);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        let at = format!("{}:{}", file.display(), n + 1);
        match directive.to_ascii_lowercase().as_str() {
            "include" => {
                chain.push(file.to_path_buf());
                for f in rest.first().map(|a| included(root, a)).unwrap_or_default() {
                    scan(root, &f, chain, seen);
                }
                chain.pop();
            }
            "authorder" => seen.auth_order.push((rest.join(" "), at)),
            "usereversedns" => seen.reverse_dns.push((rest.join(" "), at)),
            "authpam" if rest.first().is_some_and(|v| v.eq_ignore_ascii_case("off")) => {
                seen.auth_pam_off = Some(at)
            }
            _ => {}
        }
    }
}

/// PAM decides alone: the first module is `mod_auth_pam.c*`, or it is the only one.
fn authoritative(order: &str) -> bool {
    let mods: Vec<&str> = order.split_whitespace().collect();
    match mods.as_slice() {
        [first, ..] if *first == "mod_auth_pam.c*" => true,
        [only] => only.trim_end_matches('*') == "mod_auth_pam.c",
        _ => false,
    }
}

pub fn check(r: &mut Report, pam_dir: &Path, stacked: &[Stacked]) {
    let Some(svc) = stacked
        .iter()
        .find(|s| mfa_core::service::lineage(&s.file).any(|x| x == "proftpd"))
    else {
        return;
    };
    let root = root_of(pam_dir);
    let conf = root.join("etc/proftpd/proftpd.conf");
    if !conf.is_file() {
        return;
    }
    let mut seen = Seen::default();
    scan(&root, &conf, &mut Vec::new(), &mut seen);
    if let Some(at) = &seen.auth_pam_off {
        r.add(
            "proftpd.conf",
            "warn",
            format!(
                "AuthPAM off ({at}): proftpd does not use PAM, so pam.d/{} (and pam_mfa) is \
                 never asked",
                svc.file
            ),
        );
        return;
    }
    let fix = "AuthOrder mod_auth_pam.c* mod_auth_unix.c";
    match seen.auth_order.last() {
        Some((order, at)) if authoritative(order) => r.add(
            "proftpd.conf",
            "ok",
            format!("AuthOrder {order} ({at}): PAM decides alone"),
        ),
        Some((order, at)) => r.add(
            "proftpd.conf",
            "fail",
            format!(
                "AuthOrder {order} ({at}): PAM is not authoritative, so a login PAM refuses \
                 (pam_mfa's, a double logon's first) goes on to another module that checks the \
                 password itself, and the password alone logs in; write `{fix}`"
            ),
        ),
        None => r.add(
            "proftpd.conf",
            "fail",
            format!(
                "{} has no AuthOrder: proftpd's default lets mod_auth_unix check the password \
                 when PAM refuses a login, so the password alone logs in and pam.d/{} asks \
                 for nothing; add `{fix}`",
                conf.display(),
                svc.file
            ),
        ),
    }
    match seen.reverse_dns.last() {
        Some((v, _)) if v.eq_ignore_ascii_case("off") => {}
        other => r.add(
            "proftpd.conf reverse DNS",
            "warn",
            format!(
                "UseReverseDNS is {}: mod_auth_pam then passes the client's host name as \
                 PAM_RHOST, so mfa's network rules do not match and a double logon's passcode \
                 is bound to a name the client's DNS chooses; add `UseReverseDNS off`",
                other.map_or_else(
                    || "on (the default)".to_string(),
                    |(v, at)| format!("{v} ({at})")
                )
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_orders_are_authoritative() {
        assert!(authoritative("mod_auth_pam.c* mod_auth_unix.c"));
        assert!(authoritative("mod_auth_pam.c"));
        assert!(!authoritative("mod_auth_pam.c mod_auth_unix.c"));
        assert!(!authoritative("mod_auth_unix.c mod_auth_pam.c*"));
        assert!(!authoritative(""));
    }

    #[test]
    fn includes_files_directories_patterns_bounded() {
        let d = tempfile::tempdir().unwrap();
        let etc = d.path().join("etc/proftpd");
        std::fs::create_dir_all(etc.join("conf.d")).unwrap();
        std::fs::write(
            etc.join("proftpd.conf"),
            "# AuthOrder mod_auth_unix.c\nInclude /etc/proftpd/conf.d/\nInclude /etc/proftpd/*.inc\n\
             Include /etc/proftpd/proftpd.conf\nInclude /dev/zero\n",
        )
        .unwrap();
        std::fs::write(etc.join("conf.d/a"), "AuthOrder mod_auth_pam.c*\n").unwrap();
        std::fs::write(etc.join("x.inc"), "usereversedns off\n").unwrap();
        std::fs::write(etc.join("x.other"), "UseReverseDNS on\n").unwrap();
        let mut seen = Seen::default();
        scan(
            d.path(),
            &etc.join("proftpd.conf"),
            &mut Vec::new(),
            &mut seen,
        );
        assert_eq!(seen.auth_order.len(), 1, "the comment is no directive");
        assert!(seen.auth_order[0].1.ends_with("conf.d/a:1"));
        assert_eq!(seen.reverse_dns.len(), 1, "*.inc only");
        // It includes itself (not read again) and a device (not read at all).
        assert_eq!(
            seen.files, 4,
            "proftpd.conf, conf.d/a, x.inc, /dev/zero refused"
        );
    }
}
