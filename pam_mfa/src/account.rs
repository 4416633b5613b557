//! The canonical account name of PAM_USER.
//!
//! A case-insensitive name service (sssd, LDAP, winbind) lets `Alice` through the password
//! module as the account `alice`; mfa's rules know `alice`, so `Alice` would be an unknown
//! user to them (a bypass with `unassigned=allow`, an enrolment under a second name with
//! `enroll`). The module therefore decides for the name the system resolves PAM_USER to:
//! one `getpwnam_r(3)`, and its `pw_name`.
//!
//! - Found: the account's `pw_name` (when it is UTF-8; else the name as given).
//! - No such account: the name as given. The password module before pam_mfa has already
//!   refused a name no account has (pam_unix: user unknown), and a stack without one
//!   authenticates names the system does not know anyway; mfa's rules then decide for it.
//! - The lookup failed (a name service down, out of memory): [`Lookup::Failed`]; the module
//!   treats it as "mfa cannot ask" (the fail mode decides), since it cannot know which
//!   user's rules apply.
//!
//! glibc's `files` service compares names case-sensitively: on such a system nothing
//! changes (`Root` is not `root`).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};

/// What the lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The account's name.
    Found(String),
    /// No account has this name.
    Missing,
    /// The name service failed: errno.
    Failed(i32),
}

/// The name the rules should use for `given`, or the errno of a failed lookup.
pub fn canonical(given: &str) -> Result<String, i32> {
    canonical_with(given, lookup)
}

/// [`canonical`] over any lookup (tests give one that folds case, as sssd does).
pub fn canonical_with(given: &str, find: impl Fn(&str) -> Lookup) -> Result<String, i32> {
    match find(given) {
        // Only a spelling of the same name (case, as sssd and LDAP fold it): a name service
        // that maps `alice` to another name (`alice@example.com`, an alias) would have the
        // rules decide for an account they do not know (unassigned=allow: a bypass).
        Lookup::Found(name) if !name.is_empty() && name.eq_ignore_ascii_case(given) => Ok(name),
        Lookup::Found(_) | Lookup::Missing => Ok(given.to_string()),
        Lookup::Failed(errno) => Err(errno),
    }
}

/// `getpwnam_r(3)`: a 4 KiB buffer, grown on ERANGE up to 1 MiB.
pub fn lookup(name: &str) -> Lookup {
    let Ok(c) = CString::new(name) else {
        return Lookup::Missing;
    };
    let mut size = 4096usize;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: an all-zero passwd is a valid value (null pointers, zero ids) that
        // getpwnam_r overwrites.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call; buf outlives every use of pwd's
        // strings, which point into it.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < (1 << 20) {
            size *= 4;
            continue;
        }
        if result.is_null() {
            // 0, ENOENT, ESRCH, EBADF, EPERM: "not found" as getpwnam_r(3) lists it.
            return match rc {
                0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Lookup::Missing,
                e => Lookup::Failed(e),
            };
        }
        if pwd.pw_name.is_null() {
            return Lookup::Found(String::new());
        }
        // SAFETY: pw_name is a NUL-terminated string inside buf, alive here.
        let found = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Lookup::Found(found.to_str().map(String::from).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name service that folds case, as sssd with `case_sensitive = false` does.
    fn folding(name: &str) -> Lookup {
        match name.to_lowercase().as_str() {
            "alice" => Lookup::Found("alice".into()),
            "down" => Lookup::Failed(libc::EIO),
            _ => Lookup::Missing,
        }
    }

    #[test]
    fn variants_resolve_to_the_account() {
        for given in ["alice", "Alice", "ALICE", "aLiCe"] {
            assert_eq!(canonical_with(given, folding), Ok("alice".to_string()));
        }
        assert_eq!(
            canonical_with("Nobody2", folding),
            Ok("Nobody2".to_string())
        );
        assert_eq!(canonical_with("Down", folding), Err(libc::EIO));
        // A name service that maps a name to another one (a domain suffix, an alias) is not
        // followed: the rules would decide for an account they do not know.
        assert_eq!(
            canonical_with("alice", |_| Lookup::Found("alice@example.com".into())),
            Ok("alice".to_string())
        );
        // A pw_name that is not UTF-8 (or empty) keeps the name as given.
        assert_eq!(
            canonical_with("bob", |_| Lookup::Found(String::new())),
            Ok("bob".to_string())
        );
    }

    #[test]
    fn the_system_lookup() {
        assert_eq!(lookup("root"), Lookup::Found("root".into()));
        // glibc's files service is case-sensitive.
        assert_eq!(lookup("ROOT"), Lookup::Missing);
        assert_eq!(lookup("no-such-user-mfa-test"), Lookup::Missing);
        assert_eq!(lookup("nul\0inside"), Lookup::Missing);
        assert_eq!(canonical("root"), Ok("root".into()));
        assert_eq!(canonical("ROOT"), Ok("ROOT".into()));
    }
}
