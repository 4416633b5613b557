//! pam_mfa.so: the PAM module. Thin by design: it reads the PAM items and module arguments,
//! runs the conversation, hands the work to `mfa_core::auth`, maps the outcome to a PAM code
//! and writes one syslog line. No network, no threads, no panics across the FFI boundary
//! (pam-bindings' `pam_hooks!` catches any that slipped through and returns PAM_ABORT).
//!
//! Module arguments: `config=PATH` (default /etc/mfa/mfa.toml), `service=NAME` (the rules'
//! service name; default PAM_SERVICE), `fail_mode=secure|safe` (used only when the rules
//! cannot be read at all, since the setting lives with them; default secure),
//! `oneword=before|after` and `separator=C` (one-password services: see `oneword`), `debug`. Any
//! other argument is logged and refused with PAM_SERVICE_ERR. PAM_SILENT: prompts and what
//! the user needs to answer them only (see `conv`).
//!
//! Untrusted items: PAM_USER is resolved to the account's canonical name first (`account`:
//! one getpwnam_r, so `Alice` on a case-insensitive name service is `alice` to the rules);
//! PAM_RHOST and PAM_TTY become text losslessly (`text::lossless`), and every field of the
//! syslog line is quoted when it could be read as more than one field (`text::field`).

mod account;
mod args;
mod conv;
mod oneword;
mod syslog;
mod text;

use std::ffi::CStr;

use mfa_core::auth::{self, Outcome, Request};
use mfa_core::config::{Config, ConfigSource};
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
                    "refusing to run: unknown module argument {bad:?} (known: config=PATH service=NAME fail_mode=secure|safe oneword=before|after separator=C debug)"
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
    let source = ConfigSource::resolve(Some(&args.config));
    if args.oneword == Some(args::OneWord::Before) {
        let config = Config::load(&source).ok().filter(|_| canonical.is_ok());
        let (code, outcome) = oneword::before(pamh, &args, &req, config.as_ref(), silent);
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
    let outcome = match (Config::load(&source), canonical) {
        (Ok(config), Ok(_)) if args.oneword == Some(args::OneWord::After) => {
            oneword::after(pamh, &args, &req, &config)
        }
        (Ok(config), Ok(_)) => {
            let mut conv = conv::PamConversation::new(pamh, silent);
            auth::authenticate(&config, &req, &mut conv, args.fail_mode)
        }
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
        (Err(e), Ok(_)) => {
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

/// Writes the syslog line of an outcome; returns its PAM code.
fn log_line(pam_service: &str, req: &Request, given: &str, outcome: &Outcome) -> PamResultCode {
    let (code, line) = map(outcome);
    let rhost = if req.rhost.is_empty() {
        "local"
    } else {
        &req.rhost
    };
    // Quoted and escaped: a user name, host or tty with spaces, `=`, quotes or control
    // characters must not forge syslog fields or lines.
    let mut text = format!(
        "{} {} {} {line}",
        text::field("user", &req.user),
        text::field("rhost", rhost),
        text::field("tty", &req.tty)
    );
    if req.user != given {
        text.push(' ');
        text.push_str(&text::field("as_given", given));
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
/// spool's failed/, a destination a contact's label) goes through `text::field`.
fn map(outcome: &Outcome) -> (PamResultCode, String) {
    match outcome {
        Outcome::Success {
            method,
            destination,
        } => (
            PamResultCode::PAM_SUCCESS,
            format!(
                "outcome=success {} {}",
                text::field("method", method),
                text::field("to", destination)
            ),
        ),
        Outcome::Ignore { reason } => (
            PamResultCode::PAM_IGNORE,
            format!("outcome=ignore {}", text::field("reason", reason)),
        ),
        Outcome::Deny { reason } => (
            PamResultCode::PAM_AUTH_ERR,
            // deny, rate-limited or abandoned: the outcome `log show --outcome` filters on.
            format!(
                "outcome={} {}",
                outcome.name(),
                text::field("reason", reason)
            ),
        ),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Secure,
        } => (
            PamResultCode::PAM_AUTH_ERR,
            format!(
                "outcome=deny fail_mode=secure {}",
                text::field("reason", &format!("MFA UNAVAILABLE: {reason}"))
            ),
        ),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Safe,
        } => (
            PamResultCode::PAM_IGNORE,
            format!(
                "outcome=ignore fail_mode=safe {}",
                text::field("reason", &format!("MFA UNAVAILABLE: {reason}"))
            ),
        ),
    }
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
