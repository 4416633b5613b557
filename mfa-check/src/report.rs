//! What the caller learns of a decision, and what only the log does. The detailed outcome
//! (its reason names a rule: "user is exempt (override)", "trusted network (rule 3)", a
//! lockout's end, a sender's failure text) goes to a LOG_AUTHPRIV line of the helper, with
//! the fields pam_mfa's own line has and the caller's uid; the caller gets the outcome's
//! kind with a generic reason (a send limit's or an abandoned login's kind is kept in the
//! reason's prefix, which `Outcome::name` reads). A success keeps its method and masked
//! destination (the module logs them, as it does running as root).

use mfa_core::auth::{ABANDONED, Outcome, RATE_LIMITED, Request};
use mfa_core::helper::{BeforeReply, Frame};
use mfa_core::logline;

use crate::process;

/// The reason the caller gets for any outcome but a success.
pub const GENERIC: &str = "decided by mfa-check: see its log line";

/// What the caller is told when the configuration cannot be read (the error, which may
/// quote the root-only file, goes to the log only).
pub const CONFIG_UNREADABLE: &str = "the configuration cannot be read (see the authpriv log)";

/// Logs `reply`'s outcome in detail and returns what the caller may see of it.
pub fn outcome(caller_uid: u32, req: &Request, reply: Frame) -> Frame {
    let outcome = match &reply {
        Frame::Outcome(o) | Frame::Before(BeforeReply::Success(o)) => o,
        _ => return reply,
    };
    let (priority, text) = line(caller_uid, req, outcome);
    process::syslog(priority, &text);
    match reply {
        Frame::Outcome(o) => Frame::Outcome(generic(o)),
        Frame::Before(BeforeReply::Success(o)) => Frame::Before(BeforeReply::Success(generic(o))),
        other => other,
    }
}

/// The outcome with its reason replaced (its kind kept).
pub fn generic(o: Outcome) -> Outcome {
    match o {
        Outcome::Success { .. } => o,
        Outcome::Ignore { .. } => Outcome::Ignore {
            reason: GENERIC.into(),
        },
        Outcome::Deny { reason } => {
            let kind = [RATE_LIMITED, ABANDONED]
                .into_iter()
                .find(|p| reason.starts_with(p))
                .unwrap_or("");
            Outcome::Deny {
                reason: format!("{kind}{GENERIC}"),
            }
        }
        Outcome::Unavailable { fail_mode, .. } => Outcome::Unavailable {
            reason: GENERIC.into(),
            fail_mode,
        },
    }
}

/// The syslog priority and text of an outcome: the fields of pam_mfa's line
/// (`mfa_core::logline`), quoted, after the caller's uid and the service.
pub fn line(caller_uid: u32, req: &Request, o: &Outcome) -> (libc::c_int, String) {
    let text = format!(
        "caller_uid={caller_uid} {} {} outcome={} {}",
        logline::field("service", &req.service),
        logline::request_fields(req),
        o.name(),
        logline::outcome_fields(o)
    );
    let priority = match o {
        Outcome::Success { .. } | Outcome::Ignore { .. } => libc::LOG_INFO,
        Outcome::Deny { .. } => libc::LOG_NOTICE,
        Outcome::Unavailable { .. } => libc::LOG_ERR,
    };
    (priority, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_core::settings::FailMode;

    fn req(user: &str) -> Request {
        Request {
            user: user.into(),
            service: "postgresql".into(),
            rhost: String::new(),
            tty: String::new(),
        }
    }

    #[test]
    fn reasons_become_generic_and_keep_their_kind() {
        let cases = [
            (
                Outcome::Ignore {
                    reason: "trusted network (rule 3)".into(),
                },
                "ignore",
            ),
            (
                Outcome::Deny {
                    reason: "locked out until 12:00".into(),
                },
                "deny",
            ),
            (
                Outcome::Deny {
                    reason: format!("{RATE_LIMITED}3 messages in 1 h"),
                },
                "rate-limited",
            ),
            (
                Outcome::Deny {
                    reason: format!("{ABANDONED}1 message"),
                },
                "abandoned",
            ),
            (
                Outcome::Unavailable {
                    reason: "no store at /x".into(),
                    fail_mode: FailMode::Safe,
                },
                "unavailable-ignore",
            ),
        ];
        for (o, name) in cases {
            let g = generic(o.clone());
            assert_eq!(g.name(), name, "{o:?}");
            let reason = match &g {
                Outcome::Ignore { reason }
                | Outcome::Deny { reason }
                | Outcome::Unavailable { reason, .. } => reason.clone(),
                Outcome::Success { .. } => panic!("{g:?}"),
            };
            assert!(reason.ends_with(GENERIC), "{reason}");
            for secret in ["rule 3", "12:00", "3 messages", "1 message", "/x"] {
                assert!(!reason.contains(secret), "{reason}");
            }
        }
        let s = Outcome::Success {
            method: "totp".into(),
            destination: "a***@e***".into(),
        };
        assert_eq!(generic(s.clone()), s);
    }

    #[test]
    fn the_log_line_has_the_details_and_cannot_be_forged() {
        let o = Outcome::Ignore {
            reason: "user is exempt (override)".into(),
        };
        let (p, text) = line(26, &req("x outcome=success\n"), &o);
        assert_eq!(p, libc::LOG_INFO);
        assert_eq!(
            text,
            "caller_uid=26 service=postgresql user=\"x outcome=success\\x0a\" rhost=local \
             tty=\"\" outcome=ignore reason=\"user is exempt (override)\""
        );
    }
}
