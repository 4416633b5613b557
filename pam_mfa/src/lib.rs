//! pam_mfa.so: the PAM module. Thin by design: it reads the PAM items and module arguments,
//! runs the conversation, hands the work to `mfa_core::auth`, maps the outcome to a PAM code
//! and writes one syslog line. No network, no threads, no panics across the FFI boundary
//! (pam-bindings' `pam_hooks!` catches any that slipped through and returns PAM_ABORT).
//!
//! Module arguments: `config=PATH` (default /etc/mfa/mfa.toml), `service=NAME` (the rules'
//! service name; default PAM_SERVICE), `fail_mode=secure|safe` (used only when the rules
//! cannot be read at all, since the setting lives with them; default secure),
//! `oneword=before|after` and `separator=C` (one-password services: see `oneword`),
//! `helper=PATH` (the setuid helper run without root: see `helper`), `debug`. Any
//! other argument is logged and refused with PAM_SERVICE_ERR. PAM_SILENT: prompts and what
//! the user needs to answer them only (see `conv`).
//!
//! Untrusted items: PAM_USER is resolved to the account's canonical name first (`account`:
//! one getpwnam_r, so `Alice` on a case-insensitive name service is `alice` to the rules);
//! PAM_RHOST and PAM_TTY become text losslessly (`text::lossless`), and every field of the
//! syslog line is quoted when it could be read as more than one field (`mfa_core::logline`).

mod account;
mod args;
mod conv;
mod helper;
mod oneword;
mod syslog;
mod text;

use std::ffi::CStr;

use mfa_core::auth::{self, Outcome, Request};
use mfa_core::config::{Config, ConfigSource};
use mfa_core::helper as helper_proto;
use mfa_core::logline;
use mfa_core::settings::FailMode;
use pam::constants::{PamFlag, PamResultCode};
use pam::items::{RHost, Service, Tty};
use pam::module::{PamHandle, PamHooks};

struct PamMfa;
pam::pam_hooks!(PamMfa);

impl PamHooks for PamMfa {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        authenticate(pamh, &args, flags & pam::constants::PAM_SILENT != 0)
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }
}

/// A PAM item as text: lossless for RHOST and TTY (bytes that are not UTF-8 as `\xNN`, so
/// that two hosts never share a repeat-window grant); lossy only for the service name, which
/// names a file in /etc/pam.d and goes nowhere but the syslog tag.
fn item<'a, T: pam::items::Item<'a>>(pamh: &'a PamHandle, get: impl Fn(&T) -> &CStr) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(v)) => text::lossless(get(&v).to_bytes()),
        _ => String::new(),
    }
}

fn authenticate(pamh: &mut PamHandle, raw_args: &[&CStr], silent: bool) -> PamResultCode {
    let pam_service = match pamh.get_item::<Service>() {
        Ok(Some(v)) => v.0.to_string_lossy().into_owned(),
        _ => String::new(),
    };
    let args = match args::parse(raw_args) {
        Ok(a) => a,
        Err(bad) => {
            syslog::err(
                &pam_service,
                &format!(
                    "refusing to run: unknown module argument {bad:?} (known: {})",
                    mfa_core::helper::MODULE_ARGUMENTS
                ),
            );
            return PamResultCode::PAM_SERVICE_ERR;
        }
    };
    let given = match pamh.get_user(None) {
        Ok(u) if !u.is_empty() => u,
        _ => {
            syslog::err(&pam_service, "no user name (or not UTF-8): denied");
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let canonical = account::canonical(&given);
    let req = Request {
        service: args.service.clone().unwrap_or_else(|| pam_service.clone()),
        rhost: item::<RHost>(pamh, |s| s.0),
        tty: item::<Tty>(pamh, |s| s.0),
        user: canonical.clone().unwrap_or_else(|_| given.clone()),
    };
    // Without root the module reads nothing itself: the setuid helper mfa-check decides.
    let delegate = helper::needed();
    let source = ConfigSource::resolve(Some(&args.config));
    if args.oneword == Some(args::OneWord::Before) {
        let (code, outcome) = if delegate {
            let mut decide = |field: &[u8]| {
                if canonical.is_err() {
                    return None;
                }
                let ask = ask(&args, &req, helper_proto::Mode::Before, Some(field));
                match helper::run(&args, ask, &mut mfa_core::auth::oneword::Mute) {
                    Ok(helper::Reply::Before(b)) => {
                        let found = b.apply(field, args.separator);
                        if found.is_none() {
                            syslog::err(
                                &pam_service,
                                "mfa-check: a split that does not fit the field",
                            );
                        }
                        found
                    }
                    Ok(helper::Reply::Outcome(_)) => {
                        syslog::err(
                            &pam_service,
                            "mfa-check: an outcome where a split was asked",
                        );
                        None
                    }
                    Err(f) => {
                        syslog::err(&pam_service, &f.reason);
                        None
                    }
                }
            };
            oneword::before(pamh, &args, silent, &mut decide)
        } else {
            let config = Config::load(&source).ok().filter(|_| canonical.is_ok());
            let mut decide = |field: &[u8]| {
                config
                    .as_ref()
                    .map(|c| auth::oneword_before(c, &req, field, args.separator))
            };
            oneword::before(pamh, &args, silent, &mut decide)
        };
        if let Some(o) = &outcome {
            log_line(&pam_service, &req, &given, o);
        }
        if args.debug {
            syslog::debug(
                &pam_service,
                &format!("service={} oneword=before returns {code:?}", req.service),
            );
        }
        return code;
    }
    let config = match (&canonical, delegate) {
        (Ok(_), false) => Some(Config::load(&source)),
        _ => None,
    };
    let outcome = match (config, canonical) {
        // Which user's rules apply is unknown: mfa cannot ask.
        (_, Err(errno)) => {
            let mut conv = conv::PamConversation::new(pamh, silent);
            if args.fail_mode == FailMode::Secure && args.oneword.is_none() {
                let _ = mfa_core::auth::Conversation::error(&mut conv, auth::UNAVAILABLE_MESSAGE);
            }
            Outcome::Unavailable {
                reason: format!(
                    "cannot look up the account of the user name: {}",
                    std::io::Error::from_raw_os_error(errno)
                ),
                fail_mode: args.fail_mode,
            }
        }
        (None, Ok(_)) if args.oneword == Some(args::OneWord::After) => {
            oneword::after(pamh, |code| {
                let ask = ask(&args, &req, helper_proto::Mode::After, code);
                match helper::run(&args, ask, &mut mfa_core::auth::oneword::Mute) {
                    Ok(helper::Reply::Outcome(o)) => o,
                    Ok(helper::Reply::Before(_)) => helper_failed(
                        &args,
                        "mfa-check: a split where an outcome was asked",
                        code.is_some(),
                    ),
                    Err(f) => helper_failed(&args, &f.reason, code.is_some()),
                }
            })
        }
        (None, Ok(_)) => {
            let mut conv = conv::PamConversation::new(pamh, silent);
            let ask = ask(&args, &req, helper_proto::Mode::Plain, None);
            let reply = match helper::run(&args, ask, &mut conv) {
                Ok(helper::Reply::Outcome(o)) => Ok(o),
                Ok(helper::Reply::Before(_)) => Err(helper::Failed {
                    reason: "mfa-check: a split where an outcome was asked".into(),
                    prompted: false,
                }),
                Err(f) => Err(f),
            };
            match reply {
                Ok(o) => o,
                Err(f) => {
                    let o = helper_failed(&args, &f.reason, f.prompted);
                    // The helper said nothing to the user about its own failure.
                    if matches!(
                        o,
                        Outcome::Unavailable {
                            fail_mode: FailMode::Secure,
                            ..
                        }
                    ) {
                        let _ = mfa_core::auth::Conversation::error(
                            &mut conv,
                            auth::UNAVAILABLE_MESSAGE,
                        );
                    }
                    o
                }
            }
        }
        (Some(Ok(config)), Ok(_)) if args.oneword == Some(args::OneWord::After) => {
            oneword::after(pamh, |code| {
                auth::oneword_after(&config, &req, code, args.fail_mode)
            })
        }
        (Some(Ok(config)), Ok(_)) => {
            let mut conv = conv::PamConversation::new(pamh, silent);
            auth::authenticate(&config, &req, &mut conv, args.fail_mode)
        }
        (Some(Err(e)), Ok(_)) => {
            let mut conv = conv::PamConversation::new(pamh, silent);
            if args.fail_mode == FailMode::Secure && args.oneword.is_none() {
                let _ = mfa_core::auth::Conversation::error(&mut conv, auth::UNAVAILABLE_MESSAGE);
            }
            Outcome::Unavailable {
                reason: format!("configuration: {e}"),
                fail_mode: args.fail_mode,
            }
        }
    };
    let code = log_line(&pam_service, &req, &given, &outcome);
    if args.debug {
        syslog::debug(
            &pam_service,
            &format!("service={} returns {code:?}", req.service),
        );
    }
    code
}

/// The helper's ask for this login.
fn ask(
    args: &args::Args,
    req: &Request,
    mode: helper_proto::Mode,
    secret: Option<&[u8]>,
) -> helper_proto::Ask {
    helper_proto::Ask {
        mode,
        fail_mode: args.fail_mode,
        separator: args.separator,
        service: req.service.clone(),
        user: req.user.clone(),
        rhost: req.rhost.clone(),
        tty: req.tty.clone(),
        secret: secret.map(|s| helper_proto::Secret(s.to_vec())),
    }
}

/// The outcome when the helper gave no usable reply: the fail mode's, unless a code was
/// asked for or given (then a wrong or unchecked code must stay a denial).
fn helper_failed(args: &args::Args, reason: &str, code_involved: bool) -> Outcome {
    if code_involved {
        Outcome::Deny {
            reason: format!("{reason} (after a code was asked for)"),
        }
    } else {
        Outcome::Unavailable {
            reason: reason.to_string(),
            fail_mode: args.fail_mode,
        }
    }
}

/// Writes the syslog line of an outcome; returns its PAM code.
fn log_line(pam_service: &str, req: &Request, given: &str, outcome: &Outcome) -> PamResultCode {
    let (code, line) = map(outcome);
    // Quoted and escaped: a user name, host or tty with spaces, `=`, quotes or control
    // characters must not forge syslog fields or lines.
    let mut text = format!("{} {line}", logline::request_fields(req));
    if req.user != given {
        text.push(' ');
        text.push_str(&logline::field("as_given", given));
    }
    match outcome {
        Outcome::Unavailable { .. } => syslog::err(pam_service, &text),
        Outcome::Deny { .. } => syslog::notice(pam_service, &text),
        _ => syslog::info(pam_service, &text),
    }
    code
}

/// The PAM code of an outcome, and the log text. A bypass is PAM_IGNORE, never
/// PAM_SUCCESS: this module must never make a stack succeed that would otherwise fail.
/// Every value that comes from outside (a reason may carry a server's reply from the
/// spool's failed/, a destination a contact's label) is quoted (`logline::outcome_fields`).
fn map(outcome: &Outcome) -> (PamResultCode, String) {
    let (code, head) = match outcome {
        Outcome::Success { .. } => (PamResultCode::PAM_SUCCESS, "outcome=success".to_string()),
        Outcome::Ignore { .. } => (PamResultCode::PAM_IGNORE, "outcome=ignore".to_string()),
        // deny, rate-limited or abandoned: the outcome `log show --outcome` filters on.
        Outcome::Deny { .. } => (
            PamResultCode::PAM_AUTH_ERR,
            format!("outcome={}", outcome.name()),
        ),
        Outcome::Unavailable {
            fail_mode: FailMode::Secure,
            ..
        } => (
            PamResultCode::PAM_AUTH_ERR,
            "outcome=deny fail_mode=secure".to_string(),
        ),
        Outcome::Unavailable {
            fail_mode: FailMode::Safe,
            ..
        } => (
            PamResultCode::PAM_IGNORE,
            "outcome=ignore fail_mode=safe".to_string(),
        ),
    };
    (code, format!("{head} {}", logline::outcome_fields(outcome)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason can carry text from outside (a server's reply kept in the spool's failed/
    /// by the sender): it stays inside its quotes on the syslog line.
    #[test]
    fn reasons_cannot_forge_syslog_fields() {
        let forged = "passcode could not be delivered: 550 x\" outcome=success method=totp \"";
        for o in [
            Outcome::Deny {
                reason: forged.into(),
            },
            Outcome::Ignore {
                reason: forged.into(),
            },
        ] {
            let (_, line) = map(&o);
            assert!(!line.contains("x\" outcome=success"), "{line}");
            assert_eq!(line.matches("outcome=").count(), 2, "{line}");
            assert!(line.contains("\\\" outcome=success"), "{line}");
        }
    }
}
