//! `mfa-admin verify USER`: the whole second-factor flow for one user, outside PAM, for
//! scripts and applications that are not PAM services (kConnect's DuoAuthUsr, duo_unix's
//! login_duo). It runs the module's own code, `mfa_core::auth::authenticate`, with a
//! conversation on the terminal or on standard input ([`conv`]), so the rules, trusted
//! networks, limits, lockouts and the auth log apply exactly as to a login on a PAM service
//! (named `mfa-verify` unless `--service` says otherwise).
//!
//! Its exit status is its answer, and only a proven factor is 0: 1 denied (a wrong code, a
//! lockout, the conversation ended), 3 no factor was required (a bypass: exempt user, trusted
//! network, repeat window, `unassigned=allow`, method none), 4 mfa could not work (whatever
//! fail_mode says: a script must never read "mfa is down" as a pass), 2 bad input (checked
//! before anything is read or asked).
//!
//! Run through sudo (or doas) by an application's account, it answers only for the services
//! `mfa-verify` and `mfa-verify-NAME` (a proven factor leaves a repeat-window grant for the
//! service and address: one for sshd would let SSH logins from an address the caller chose
//! skip the second factor), and takes a configuration other than the default only from a
//! path nobody but root can change.
//!
//! Self-enrollment happens only when the answers come from a terminal and the process was
//! started through sudo by the user being verified (`SUDO_USER` is that user): a conversation
//! run by another account (an application calling `sudo mfa-admin verify alice`, root at a
//! shell) could otherwise register its own factor for a user who may still enrol, and pass
//! that user's second factor on SSH afterwards (the reason `mfa-check` never enrols either).

mod conv;

use std::io::Write;
use std::time::Duration;

use mfa_core::auth::{self, Outcome, Request};
use mfa_core::config::{Config, ConfigSource};
use mfa_core::settings::FailMode;
use mfa_core::{logline, validate};
use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::output::visible;

/// The rules' service name when `--service` is not given.
pub const DEFAULT_SERVICE: &str = "mfa-verify";

/// Exit statuses.
pub const PROVEN: u8 = 0;
pub const DENIED: u8 = 1;
pub const BAD_INPUT: u8 = 2;
pub const NOT_REQUIRED: u8 = 3;
pub const UNAVAILABLE: u8 = 4;

/// The longest --tty accepted (PAM_TTY is a device name such as pts/3 or a word such as ssh).
const MAX_TTY: usize = 64;

/// The request checked: every value as the rules will see it.
struct Checked {
    req: Request,
    timeout: Duration,
}

/// Runs `verify`; returns the exit status. Prints the result on standard output (one line,
/// or one JSON object with `json`), prompts and messages on standard error.
pub fn run(source: &ConfigSource, args: &VerifyArgs, json: bool) -> u8 {
    let checked = match check(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mfa-admin verify: {e}");
            return BAD_INPUT;
        }
    };
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "mfa-admin verify: must run as root (it reads the rules, keys and login state the \
             PAM module reads); an application that is not root runs it through sudo with a \
             rule naming it, e.g. in /etc/sudoers.d/mfa-verify:\n  \
             www-data ALL=(root) NOPASSWD: /usr/sbin/mfa-admin verify *"
        );
        return BAD_INPUT;
    }
    // Through sudo, the caller must not choose which rules apply: a configuration named by
    // --config or MFA_CONFIG counts only when nobody but root could have written it or the
    // directories on its way.
    let caller = caller();
    if let Some(c) = &caller
        && !for_verify(&checked.req.service)
    {
        eprintln!(
            "mfa-admin verify: run through sudo by {}, it answers only for the service \
             {DEFAULT_SERVICE} or services named {DEFAULT_SERVICE}-NAME, not {:?}: a proven \
             factor leaves a repeat-window grant for the service and address, which that \
             service's logins would honour; give the application a service of its own, such as \
             {DEFAULT_SERVICE}-webapp (its rules: `service set {DEFAULT_SERVICE}-webapp totp`, \
             else those of {DEFAULT_SERVICE})",
            visible(c),
            checked.req.service
        );
        return BAD_INPUT;
    }
    let source = match &caller {
        Some(caller) if source.explicit => match root_only_path(&source.path) {
            Ok(path) => ConfigSource {
                path,
                explicit: true,
            },
            Err(why) => {
                eprintln!(
                    "mfa-admin verify: run through sudo by {}, it takes a configuration other \
                     than the default only from a path nobody but root can change: {why} \
                     (as root outside sudo, env -u SUDO_USER lifts this)",
                    visible(caller)
                );
                return BAD_INPUT;
            }
        },
        _ => source.clone(),
    };
    let mut req = checked.req;
    // The rules know the account's own spelling of its name, as the module does.
    match canonical(&req.user, |n| {
        nix::unistd::User::from_name(n).map(|u| u.map(|u| u.name))
    }) {
        Ok(name) => req.user = name,
        Err(e) => {
            let outcome = Outcome::Unavailable {
                reason: format!("cannot look up the account of the user name: {e}"),
                fail_mode: FailMode::Secure,
            };
            syslog(&req, &outcome);
            return report(&req, &outcome, json);
        }
    }
    let config = match Config::load(&source) {
        Ok(c) => c,
        Err(e) => {
            let outcome = Outcome::Unavailable {
                reason: format!("configuration: {e}"),
                fail_mode: FailMode::Secure,
            };
            syslog(&req, &outcome);
            return report(&req, &outcome, json);
        }
    };
    let terminal = conv::stdin_is_terminal();
    let outcome = if terminal {
        let mut c = conv::Terminal::new(checked.timeout);
        if may_enrol(&req.user, caller.as_deref()) {
            auth::authenticate(&config, &req, &mut c, FailMode::Secure)
        } else {
            auth::authenticate_without_enrollment(&config, &req, &mut c, FailMode::Secure)
        }
    } else {
        let mut c = conv::Lines::new(checked.timeout);
        auth::authenticate_without_enrollment(&config, &req, &mut c, FailMode::Secure)
    };
    syslog(&req, &outcome);
    report(&req, &outcome, json)
}

/// Checks the arguments: the user name as mfa stores it, a PAM service name (not `*`), an
/// IP address, a tty name without control characters, a timeout in seconds.
fn check(args: &VerifyArgs) -> mfa_core::Result<Checked> {
    let user = validate::user_name(&args.user)?;
    let service = validate::service(&args.service)?;
    if service == validate::ANY_SERVICE {
        return Err(mfa_core::invalid!(
            "invalid service \"*\": verify runs for one service; give its name (default {DEFAULT_SERVICE})"
        ));
    }
    let rhost = match &args.address {
        None => String::new(),
        Some(a) if a.is_empty() => String::new(),
        Some(a) => mfa_core::net::parse_address(a)?.to_string(),
    };
    let tty = match &args.tty {
        Some(t) => {
            if t.len() > MAX_TTY || t.chars().any(char::is_control) {
                return Err(mfa_core::invalid!(
                    "invalid tty {:?}: expected at most {MAX_TTY} characters without control characters, such as pts/3 or ssh",
                    visible(t)
                ));
            }
            t.clone()
        }
        None => conv::stdin_tty_name().unwrap_or_default(),
    };
    let secs = crate::commands::parse_number("timeout", &args.timeout, 3600)?;
    Ok(Checked {
        req: Request {
            user,
            service,
            rhost,
            tty,
        },
        timeout: Duration::from_secs(u64::try_from(secs).unwrap_or(300)),
    })
}

/// The name the rules use for `given`, as pam_mfa decides it (pam_mfa/src/account.rs): the
/// account's name when the system spells the same name otherwise (`Alice` on a name service
/// that folds case is the account `alice`, whom a bypass for an unknown `Alice` must not let
/// in); the name as given when no account has it (applications may verify users that are
/// not accounts of this system); an error when the lookup failed (mfa cannot know whose
/// rules apply). "Not found" errnos count as no account, as getpwnam_r(3) lists them.
fn canonical(
    given: &str,
    lookup: impl Fn(&str) -> nix::Result<Option<String>>,
) -> std::result::Result<String, nix::errno::Errno> {
    use nix::errno::Errno;
    match lookup(given) {
        Ok(Some(name)) if !name.is_empty() && name.eq_ignore_ascii_case(given) => Ok(name),
        Ok(_) | Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => {
            Ok(given.to_string())
        }
        Err(e) => Err(e),
    }
}

/// The real path of `path` when it and every directory above it are owned by root and
/// writable by nobody else (a sticky directory such as /tmp may be, since only root may then
/// rename or delete what root owns in it); else why not.
fn root_only_path(path: &std::path::Path) -> std::result::Result<std::path::PathBuf, String> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for part in real.ancestors() {
        let meta =
            std::fs::symlink_metadata(part).map_err(|e| format!("{}: {e}", part.display()))?;
        if meta.uid() != 0 {
            return Err(format!(
                "{} is owned by uid {}, not root",
                part.display(),
                meta.uid()
            ));
        }
        let writable = meta.mode() & 0o022 != 0;
        if writable && !(meta.is_dir() && meta.mode() & 0o1000 != 0) {
            return Err(format!(
                "{} is writable by others (mode {:04o})",
                part.display(),
                meta.mode() & 0o7777
            ));
        }
    }
    Ok(real)
}

/// Who ran verify through sudo (`SUDO_USER`) or doas (`DOAS_USER`), which set these
/// themselves: the account it answers for, not root. `None` when root ran it directly.
fn caller() -> Option<String> {
    ["SUDO_USER", "DOAS_USER"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(|v| v.to_string_lossy().into_owned())
}

/// Whether a service is one a caller through sudo may name: `mfa-verify` or
/// `mfa-verify-NAME`. Repeat-window grants are kept per service and address, so these never
/// give a PAM service's logins a grant (`mfa-verify-NAME` takes the rules of `mfa-verify`
/// while it has none of its own).
fn for_verify(service: &str) -> bool {
    service == DEFAULT_SERVICE
        || service
            .strip_prefix(DEFAULT_SERVICE)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|name| !name.is_empty())
}

/// Whether this run may enrol the user: started through sudo by that very user.
fn may_enrol(user: &str, caller: Option<&str>) -> bool {
    caller.is_some_and(|s| s == user)
}

/// The exit status of an outcome.
pub fn status(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Success { .. } => PROVEN,
        Outcome::Deny { .. } => DENIED,
        Outcome::Ignore { .. } => NOT_REQUIRED,
        Outcome::Unavailable { .. } => UNAVAILABLE,
    }
}

/// The JSON result (docs/json.md: `verify`).
#[derive(Serialize)]
struct Verdict<'a> {
    user: &'a str,
    service: &'a str,
    address: &'a str,
    tty: &'a str,
    /// As in the auth log: success, ignore, deny, rate-limited, abandoned,
    /// unavailable-deny, unavailable-ignore.
    outcome: &'static str,
    /// The factor proved (success only).
    method: &'a str,
    /// Where the passcode went, masked (success only).
    destination: &'a str,
    /// Why it was not a success.
    reason: &'a str,
    exit_status: u8,
}

/// Prints the result; returns the exit status.
fn report(req: &Request, outcome: &Outcome, json: bool) -> u8 {
    let code = status(outcome);
    let (method, destination, reason) = match outcome {
        Outcome::Success {
            method,
            destination,
        } => (method.as_str(), destination.as_str(), ""),
        // The outcome's name already says rate-limited or abandoned (as in the auth log).
        Outcome::Deny { reason } => (
            "",
            "",
            reason
                .strip_prefix(auth::RATE_LIMITED)
                .or_else(|| reason.strip_prefix(auth::ABANDONED))
                .unwrap_or(reason),
        ),
        Outcome::Ignore { reason } | Outcome::Unavailable { reason, .. } => {
            ("", "", reason.as_str())
        }
    };
    if json {
        let r = Verdict {
            user: &req.user,
            service: &req.service,
            address: &req.rhost,
            tty: &req.tty,
            outcome: outcome.name(),
            method,
            destination,
            reason,
            exit_status: code,
        };
        if let Err(e) = crate::output::json(&r) {
            eprintln!("mfa-admin verify: {e}");
        }
    } else {
        let line = match outcome {
            Outcome::Success { .. } if destination.is_empty() => format!("proven: {method}"),
            Outcome::Success { .. } => format!("proven: {method} ({destination})"),
            Outcome::Ignore { .. } => format!("not required: {reason}"),
            Outcome::Deny { .. } => format!("{}: {reason}", outcome.name().replace('-', " ")),
            Outcome::Unavailable { .. } => format!("unavailable: {reason}"),
        };
        println!("{}", visible(&line));
    }
    let _ = std::io::stdout().flush();
    code
}

/// One syslog line at LOG_AUTHPRIV, like the module's (`pam_mfa(SERVICE:auth): user=...
/// outcome=...`), tagged `mfa-verify(SERVICE)` and naming who ran it through sudo. The auth
/// log row is the flow's own, written as for any login.
#[allow(unsafe_code)]
fn syslog(req: &Request, outcome: &Outcome) {
    use nix::libc;
    let severity = match outcome {
        Outcome::Unavailable { .. } => libc::LOG_ERR,
        Outcome::Deny { .. } => libc::LOG_NOTICE,
        _ => libc::LOG_INFO,
    };
    let mut text = format!(
        "mfa-verify({}): {} outcome={} {}",
        req.service,
        logline::request_fields(req),
        outcome.name(),
        logline::outcome_fields(outcome)
    );
    if let Some(caller) = caller() {
        text.push(' ');
        text.push_str(&logline::field("caller", &caller));
    }
    let Ok(c) = std::ffi::CString::new(text.replace('\0', "")) else {
        return;
    };
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call,
    // and the format string consumes exactly one string argument.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | severity, c"%s".as_ptr(), c.as_ptr()) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_proven_factor_is_zero() {
        let cases = [
            (
                Outcome::Success {
                    method: "totp".into(),
                    destination: String::new(),
                },
                0,
            ),
            (Outcome::Deny { reason: "x".into() }, 1),
            (Outcome::Ignore { reason: "x".into() }, 3),
            (
                Outcome::Unavailable {
                    reason: "x".into(),
                    fail_mode: FailMode::Safe,
                },
                4,
            ),
            (
                Outcome::Unavailable {
                    reason: "x".into(),
                    fail_mode: FailMode::Secure,
                },
                4,
            ),
        ];
        for (o, want) in cases {
            assert_eq!(status(&o), want, "{o:?}");
        }
    }

    #[test]
    fn services_a_sudo_caller_may_name() {
        for ok in ["mfa-verify", "mfa-verify-webapp", "mfa-verify-a-b"] {
            assert!(for_verify(ok), "{ok}");
        }
        for bad in [
            "sshd",
            "mfa",
            "mfa-verify-",
            "mfa-verifyx",
            "xmfa-verify",
            "sudo",
            "*",
        ] {
            assert!(!for_verify(bad), "{bad}");
        }
    }

    #[test]
    fn the_account_spelling_of_a_name() {
        use nix::errno::Errno;
        let folding = |n: &str| Ok(Some(n.to_lowercase()));
        assert_eq!(canonical("Alice", folding), Ok("alice".to_string()));
        // An alias to another name is not the same user.
        let alias = |_: &str| Ok(Some("bob".to_string()));
        assert_eq!(canonical("alice", alias), Ok("alice".to_string()));
        assert_eq!(canonical("zed", |_| Ok(None)), Ok("zed".to_string()));
        assert_eq!(
            canonical("zed", |_| Err(Errno::ENOENT)),
            Ok("zed".to_string())
        );
        assert_eq!(canonical("zed", |_| Err(Errno::EIO)), Err(Errno::EIO));
    }

    #[test]
    fn enrolment_only_for_the_sudo_caller_itself() {
        assert!(may_enrol("alice", Some("alice")));
        assert!(!may_enrol("alice", Some("www-data")));
        assert!(!may_enrol("alice", Some("Alice")));
        assert!(
            !may_enrol("alice", None),
            "root at a shell does not enrol users"
        );
    }
}
