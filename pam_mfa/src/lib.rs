//! pam_mfa.so: the PAM module. Thin by design: it reads the PAM items and module arguments,
//! runs the conversation, hands the work to `mfa_core::auth`, maps the outcome to a PAM code
//! and writes one syslog line. No network, no threads, no panics across the FFI boundary
//! (pam-bindings' `pam_hooks!` catches any that slipped through and returns PAM_ABORT).
//!
//! Module arguments: `config=PATH` (default /etc/mfa/mfa.toml), `service=NAME` (the rules'
//! service name; default PAM_SERVICE), `fail_mode=secure|safe` (used only when the rules
//! cannot be read at all, since the setting lives with them; default secure), `debug`. Any
//! other argument is logged and refused with PAM_SERVICE_ERR. PAM_SILENT: prompts and what
//! the user needs to answer them only (see `conv`).

mod args;
mod conv;
mod syslog;

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

fn item<'a, T: pam::items::Item<'a>>(pamh: &'a PamHandle, get: impl Fn(&T) -> &CStr) -> String {
    match pamh.get_item::<T>() {
        Ok(Some(v)) => get(&v).to_string_lossy().into_owned(),
        _ => String::new(),
    }
}

fn authenticate(pamh: &mut PamHandle, raw_args: &[&CStr], silent: bool) -> PamResultCode {
    let pam_service = item::<Service>(pamh, |s| s.0);
    let args = match args::parse(raw_args) {
        Ok(a) => a,
        Err(bad) => {
            syslog::err(
                &pam_service,
                &format!(
                    "refusing to run: unknown module argument {bad:?} (known: config=PATH service=NAME fail_mode=secure|safe debug)"
                ),
            );
            return PamResultCode::PAM_SERVICE_ERR;
        }
    };
    let user = match pamh.get_user(None) {
        Ok(u) if !u.is_empty() => u,
        _ => {
            syslog::err(&pam_service, "no user name: denied");
            return PamResultCode::PAM_USER_UNKNOWN;
        }
    };
    let req = Request {
        service: args.service.clone().unwrap_or_else(|| pam_service.clone()),
        rhost: item::<RHost>(pamh, |s| s.0),
        tty: item::<Tty>(pamh, |s| s.0),
        user,
    };
    let source = ConfigSource::resolve(Some(&args.config));
    let mut conv = conv::PamConversation::new(pamh, silent);
    let outcome = match Config::load(&source) {
        Ok(config) => auth::authenticate(&config, &req, &mut conv, args.fail_mode),
        Err(e) => {
            if args.fail_mode == FailMode::Secure {
                let _ = mfa_core::auth::Conversation::error(&mut conv, auth::UNAVAILABLE_MESSAGE);
            }
            Outcome::Unavailable {
                reason: format!("configuration: {e}"),
                fail_mode: args.fail_mode,
            }
        }
    };
    let (code, line) = map(&outcome);
    let rhost = if req.rhost.is_empty() {
        "local"
    } else {
        &req.rhost
    };
    // Escaped: a user name or host with control characters must not forge syslog fields.
    let text = format!(
        "user={} rhost={} tty={} {line}",
        req.user.escape_debug(),
        rhost.escape_debug(),
        req.tty.escape_debug()
    );
    match &outcome {
        Outcome::Unavailable { .. } => syslog::err(&pam_service, &text),
        Outcome::Deny { .. } => syslog::notice(&pam_service, &text),
        _ => syslog::info(&pam_service, &text),
    }
    if args.debug {
        syslog::debug(
            &pam_service,
            &format!("service={} returns {code:?}", req.service),
        );
    }
    code
}

/// The PAM code of an outcome, and the log text. A bypass is PAM_IGNORE, never
/// PAM_SUCCESS: this module must never make a stack succeed that would otherwise fail.
/// A reason as it goes between quotes on the syslog line: `\\` and `"` escaped, control
/// characters as `?` (a reason may carry a server's reply from the spool's failed/).
fn quoted(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for c in reason.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

fn map(outcome: &Outcome) -> (PamResultCode, String) {
    match outcome {
        Outcome::Success {
            method,
            destination,
        } => (
            PamResultCode::PAM_SUCCESS,
            format!("outcome=success method={method} to={destination}"),
        ),
        Outcome::Ignore { reason } => (
            PamResultCode::PAM_IGNORE,
            format!("outcome=ignore reason=\"{}\"", quoted(reason)),
        ),
        Outcome::Deny { reason } => (
            PamResultCode::PAM_AUTH_ERR,
            format!("outcome=deny reason=\"{}\"", quoted(reason)),
        ),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Secure,
        } => (
            PamResultCode::PAM_AUTH_ERR,
            format!("outcome=deny fail_mode=secure MFA UNAVAILABLE: {reason}"),
        ),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Safe,
        } => (
            PamResultCode::PAM_IGNORE,
            format!("outcome=ignore fail_mode=safe MFA UNAVAILABLE: {reason}"),
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
