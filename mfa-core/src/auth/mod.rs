//! One authentication, from the module's point of view: gather the facts, decide, and run the
//! challenge or the self-enrollment over a [`Conversation`]. Generic over the conversation so
//! that it is testable without PAM; `pam_mfa` maps the [`Outcome`] to a PAM code and writes
//! the syslog line.
//!
//! Nothing here panics or touches the network: every failure of the store, the spool or the
//! sender's health becomes [`Outcome::Unavailable`], which the fail mode turns into a denial
//! (`secure`) or a bypass (`safe`).

use crate::config::Config;
use crate::contact::{Channel, Contact};
use crate::grants;
use crate::net::parse_address;
use crate::passcode;
use crate::policy::{self, Decision, Factors, Facts};
use crate::settings::FailMode;
use crate::snapshot::Snapshot;
use crate::spool::{self, HEARTBEAT_STALE_SECS, Kind, Message};
use crate::state;
use crate::store::logs::AuthEvent;
use crate::store::{Store, auth as q, factors, people, rules};
use crate::template::{self, Values};
use crate::{Error, Result};

mod context;
#[cfg(test)]
mod duo_attack_tests;
#[cfg(test)]
mod duo_fixture;
#[cfg(test)]
mod duo_tests;
mod enroll;
mod factor;
#[cfg(test)]
mod factors_tests;
pub mod oneword;
#[cfg(test)]
mod oneword_tests;

use context::{Cx, Tried, grant, lockout, passed};
use enroll::{enroll, enroll_totp};
use factor::passcode::{self as challenge, Destination, check_delivery};
use factor::second_factor;
pub use oneword::{Before, before as oneword_before};

/// The conversation with the user. An `Err` means the conversation failed (Ctrl-C, closed
/// connection): the authentication fails.
pub trait Conversation {
    /// Asks a question; returns the raw answer.
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError>;
    /// Shows information (not when the application asked for silence).
    fn info(&mut self, text: &str) -> Result<(), ConvError>;
    /// Shows what the user needs to answer the next prompt (a menu, a key to type into an
    /// app): shown even when the application asked for silence.
    fn show(&mut self, text: &str) -> Result<(), ConvError> {
        self.info(text)
    }
    /// Shows an error.
    fn error(&mut self, text: &str) -> Result<(), ConvError>;
    /// Asks for a code (a passcode, an authenticator or a backup code): from then on the user
    /// is proving the factor, and whatever fails is a denial, never the fail mode's bypass.
    fn prompt_code(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        self.prompt(text, echo)
    }
    /// The answer to a plain prompt turned out to be a code (a Duo passcode typed at the
    /// menu): from then on as after [`Conversation::prompt_code`].
    fn code_given(&mut self) {}
}

/// The conversation of one authentication, noting whether a code was asked for.
struct Asking<'a> {
    conv: &'a mut dyn Conversation,
    code_asked: bool,
}

impl Conversation for Asking<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        self.conv.prompt(text, echo)
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.conv.info(text)
    }
    fn show(&mut self, text: &str) -> Result<(), ConvError> {
        self.conv.show(text)
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.conv.error(text)
    }
    fn prompt_code(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        self.code_asked = true;
        self.conv.prompt_code(text, echo)
    }
    fn code_given(&mut self) {
        self.code_asked = true;
        self.conv.code_given();
    }
}

/// The conversation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvError;

/// Who is logging in, where from, to what.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub user: String,
    /// The rules' service name.
    pub service: String,
    /// PAM_RHOST ("" for a local login).
    pub rhost: String,
    pub tty: String,
}

/// How an authentication ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The second factor was proved: PAM_SUCCESS.
    Success { method: String, destination: String },
    /// Not this module's business: PAM_IGNORE.
    Ignore { reason: String },
    /// Refused: PAM_AUTH_ERR.
    Deny { reason: String },
    /// mfa cannot work; the fail mode decides.
    Unavailable { reason: String, fail_mode: FailMode },
}

/// How the reason of a denial by a send limit starts (outcome `rate-limited`).
pub const RATE_LIMITED: &str = "rate-limited: ";
/// How the reason of an abandoned login starts (outcome `abandoned`): a code was sent and the
/// conversation ended without any code typed; the reason says how many messages it caused.
pub const ABANDONED: &str = "abandoned: ";

impl Outcome {
    /// The outcome's name in the auth log (and for the syslog line's `outcome=`): `success`,
    /// `ignore`, `deny`, `rate-limited` (a send limit refused the message: a denial),
    /// `abandoned` (a code sent, never answered: a denial), `unavailable-deny`,
    /// `unavailable-ignore`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Success { .. } => "success",
            Outcome::Ignore { .. } => "ignore",
            Outcome::Deny { reason } if reason.starts_with(RATE_LIMITED) => "rate-limited",
            Outcome::Deny { reason } if reason.starts_with(ABANDONED) => "abandoned",
            Outcome::Deny { .. } => "deny",
            Outcome::Unavailable {
                fail_mode: FailMode::Secure,
                ..
            } => "unavailable-deny",
            Outcome::Unavailable { .. } => "unavailable-ignore",
        }
    }
}

/// The message users see when mfa cannot work in secure mode.
pub const UNAVAILABLE_MESSAGE: &str = "second factor unavailable — contact your administrator";

/// The reason of a login whose conversation failed.
const ABORTED: &str = "conversation aborted";

/// Most resends (empty answers) per login.
const MAX_RESENDS: i64 = 2;
/// Most tries at a menu (contact choice, enrollment address).
const MENU_TRIES: usize = 3;

enum Flow {
    Done(Outcome),
    Conv,
}

impl From<ConvError> for Flow {
    fn from(_: ConvError) -> Self {
        Flow::Conv
    }
}

impl From<Error> for Flow {
    fn from(e: Error) -> Self {
        Flow::Done(match busy(&e) {
            Some(o) => o,
            None => Outcome::Unavailable {
                reason: e.to_string(),
                fail_mode: FailMode::Secure,
            },
        })
    }
}

/// A user's login state held locked past [`crate::files::LOCK_WAIT`] is a denial, never mfa being
/// unavailable: under `fail_mode=safe` that would let in whoever can keep another process
/// holding the lock (a login stopped half-way) without a second factor.
fn busy(e: &Error) -> Option<Outcome> {
    match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::TimedOut => {
            Some(Outcome::Deny {
                reason: format!("login state busy: {e}"),
            })
        }
        _ => None,
    }
}

/// Runs one authentication. `fallback` is the fail mode used when the rules cannot be read
/// at all (the setting lives with them).
///
/// The rules come from the policy snapshot ([`crate::snapshot`]) and the user's login state
/// (failures, TOTP step, grants) from their file ([`crate::state`]); the database is opened
/// only to write (a lockout, a used backup code, a self-enrollment) or when there is no
/// usable snapshot.
pub fn authenticate(
    config: &Config,
    req: &Request,
    conv: &mut dyn Conversation,
    fallback: FailMode,
) -> Outcome {
    run(config, req, conv, fallback, None, true)
}

/// [`authenticate`] for a conversation that belongs to a calling server rather than to the
/// user (the setuid helper mfa-check relays the server's): never a self-enrollment. Enrolling
/// registers a factor for every service (a TOTP key shown to the conversation, an address
/// typed into it), so a server's account could enrol its own for any user who may still
/// self-enrol and then pass that user's second factor on SSH. The user is told to enrol on a
/// terminal; the decision is the same one, made once.
pub fn authenticate_without_enrollment(
    config: &Config,
    req: &Request,
    conv: &mut dyn Conversation,
    fallback: FailMode,
) -> Outcome {
    run(config, req, conv, fallback, None, false)
}

/// The second instance of a one-password service (`oneword=after`, behind the password
/// module, so the password was verified): the usual decision, then the code `before` kept
/// (`PASSWORD,CODE`), or the double logon's passcode sent and the login refused. Never
/// prompts and shows nothing ([`oneword`]).
pub fn oneword_after(
    config: &Config,
    req: &Request,
    code: Option<&[u8]>,
    fallback: FailMode,
) -> Outcome {
    run(config, req, &mut oneword::Mute, fallback, Some(code), false)
}

/// One authentication: interactive (`oneword` is `None`), or the one-password flow with the
/// code kept from the field, if any; `enrollment`: whether a self-enrollment may happen here.
fn run(
    config: &Config,
    req: &Request,
    conv: &mut dyn Conversation,
    fallback: FailMode,
    oneword: Option<Option<&[u8]>>,
    enrollment: bool,
) -> Outcome {
    let mut asking = Asking {
        conv,
        // A code typed in the one field was given: whatever fails afterwards is a denial.
        code_asked: matches!(oneword, Some(Some(_))),
    };
    let conv = &mut asking;
    let ip = parse_address(&req.rhost).ok();
    let now = crate::now();
    let mut cx = Cx::new(config);
    let mut facts = match cx.facts(req, ip) {
        Ok(f) => f,
        Err(e) => {
            let o = unavailable(conv, fallback, format!("cannot read the rules: {e}"));
            // In the auth log too (whatever the log level: it cannot be read either).
            append(config, req, &o, "", &Tried::default());
            return o;
        }
    };
    // The user's login-state file: the repeat-window grant, and a lockout this file already
    // holds should storing it in the database have failed. Unreadable, it may hide a
    // lockout: the fail mode applies.
    let st = match state::read_user(cx.db(), &req.user) {
        Ok(st) => st,
        Err(e) => {
            let fail_mode = facts.settings.fail_mode;
            let o = match busy(&e) {
                Some(o) => refuse(conv, o),
                None => unavailable(conv, fail_mode, format!("cannot read the login state: {e}")),
            };
            log(config, req, &facts, &o, "", &Tried::default());
            return o;
        }
    };
    facts.locked_until = facts.locked_until.max(st.failures.locked_until);
    facts.last_grant = grants::in_state(&st, &req.service, &req.rhost);
    let fail_mode = facts.settings.fail_mode;
    let decision = policy::decide(&facts, now);
    let (outcome, method) = match decision {
        Decision::Ignore(b) => (Outcome::Ignore { reason: b.reason() }, String::new()),
        // A disabled user trying to log in: the notices the settings ask for, at most one a
        // day per user; one that cannot be queued changes nothing.
        Decision::Deny(r @ policy::Refusal::UserDisabled) => {
            // The user's contacts only when their own notice is asked for (a read of the
            // database when there is no snapshot).
            let contacts = if facts.settings.notify_user_of("disabled") {
                cx.contacts(&req.user).unwrap_or_default()
            } else {
                Vec::new()
            };
            let _ = crate::notice::at_disabled_attempt(
                cx.db(),
                &config.paths.spool,
                &facts.settings,
                &contacts,
                &req.user,
                &req.service,
                &req.rhost,
                now,
            );
            (
                refuse(conv, Outcome::Deny { reason: r.reason() }),
                String::new(),
            )
        }
        Decision::Deny(r) => (
            refuse(conv, Outcome::Deny { reason: r.reason() }),
            String::new(),
        ),
        Decision::Challenge(method) => {
            let flow = match oneword {
                None => second_factor(&mut cx, req, &facts, conv, &method),
                Some(code) => oneword::after(&mut cx, config, req, &facts, &method, code),
            };
            (finish(flow), method)
        }
        // Enrollment needs prompts, which a one-password client answers with its password.
        Decision::EnrollTotp | Decision::Enroll if oneword.is_some() => {
            let reason = "self-enrollment needs prompts: not on a one-password service".into();
            (Outcome::Deny { reason }, String::new())
        }
        // The conversation is a server's, not the user's (see authenticate_without_enrollment).
        Decision::EnrollTotp | Decision::Enroll if !enrollment => {
            let _ = conv.error(
                "Second factor: enrol on a terminal (ssh, login) first; this service cannot enrol you.",
            );
            let reason = "self-enrollment refused: the conversation is not the user's own \
                          (a calling server's through mfa-check, or mfa-admin verify answered \
                          from stdin or for another account); the user enrols on a terminal \
                          (ssh, login) first"
                .into();
            (Outcome::Deny { reason }, String::new())
        }
        // A name mfa-admin could not store (`émile`, a space) is not enrolled at login: the
        // rules would hold a user that `export` writes and `import` refuses (mfa-fuzz). The
        // administrator adds such users by hand, or not at all.
        Decision::EnrollTotp | Decision::Enroll
            if crate::validate::user_name(&req.user).is_err() =>
        {
            let reason =
                "self-enrollment refused: the user name is not one mfa-admin can store".into();
            (refuse(conv, Outcome::Deny { reason }), String::new())
        }
        Decision::EnrollTotp => (
            finish(enroll_totp(&mut cx, req, &facts, conv)),
            "totp".to_string(),
        ),
        Decision::Enroll => (
            finish(enroll(&mut cx, config, req, &facts, conv)),
            "enroll".to_string(),
        ),
    };
    // A code was sent and the conversation ended before any code was typed (Ctrl-C, a dropped
    // connection, empty answers then a hang-up): its own outcome, with the messages it cost.
    let outcome = match outcome {
        Outcome::Deny { reason } if reason == ABORTED && cx.sent > 0 && !cx.typed => {
            Outcome::Deny {
                reason: format!(
                    "{ABANDONED}{} message{} sent, no code typed",
                    cx.sent,
                    if cx.sent == 1 { "" } else { "s" }
                ),
            }
        }
        o => o,
    };
    let outcome = match outcome {
        // Once the user was asked for a code, nothing that fails afterwards (a failure count
        // or a lockout that cannot be stored) opens the login: a wrong code stays wrong.
        Outcome::Unavailable { reason, .. } if conv.code_asked => refuse(
            conv,
            Outcome::Deny {
                reason: format!("{reason} (after a code was asked for)"),
            },
        ),
        Outcome::Unavailable { reason, .. } => unavailable(conv, fail_mode, reason),
        o => o,
    };
    log(config, req, &facts, &outcome, &method, &cx.tried);
    // The inbox is moved into the database by mfa-admin, never here: the module only
    // appends (and rotates a full inbox by a rename, see crate::authlog).
    outcome
}

/// Tells the user why a denial without a challenge happened (a lockout, or simply "denied").
fn refuse(conv: &mut dyn Conversation, outcome: Outcome) -> Outcome {
    if let Outcome::Deny { reason } = &outcome {
        let _ = conv.error(if reason.starts_with("locked out") {
            "Second factor: too many failures; this account is locked for now."
        } else {
            "Second factor: access denied."
        });
    }
    outcome
}

fn finish(flow: Result<Outcome, Flow>) -> Outcome {
    match flow {
        Ok(o) | Err(Flow::Done(o)) => o,
        Err(Flow::Conv) => Outcome::Deny {
            reason: ABORTED.into(),
        },
    }
}

fn unavailable(conv: &mut dyn Conversation, mode: FailMode, reason: String) -> Outcome {
    if mode == FailMode::Secure {
        let _ = conv.error(UNAVAILABLE_MESSAGE);
    }
    Outcome::Unavailable {
        reason,
        fail_mode: mode,
    }
}

/// Appends the auth-log row to the inbox ([`crate::authlog`]), honouring the log levels. A
/// failure to log does not change the outcome (syslog still has it).
/// `tried`: the factor the login tried, if one says more than the service's method.
fn log(
    config: &Config,
    req: &Request,
    facts: &Facts,
    outcome: &Outcome,
    method: &str,
    tried: &Tried,
) {
    let rejected = !matches!(outcome, Outcome::Success { .. } | Outcome::Ignore { .. });
    if !policy::should_log(facts, rejected) {
        return;
    }
    append(config, req, outcome, method, tried);
}

/// Appends the auth-log row of `outcome` to the inbox, whatever the log level.
fn append(config: &Config, req: &Request, outcome: &Outcome, method: &str, tried: &Tried) {
    let (reason, destination) = match outcome {
        Outcome::Success { destination, .. } => (String::new(), destination.clone()),
        // The outcome's name already says rate-limited or abandoned.
        Outcome::Deny { reason } => (
            reason
                .strip_prefix(RATE_LIMITED)
                .or_else(|| reason.strip_prefix(ABANDONED))
                .unwrap_or(reason)
                .to_string(),
            tried.destination.clone(),
        ),
        Outcome::Ignore { reason } | Outcome::Unavailable { reason, .. } => {
            (reason.clone(), tried.destination.clone())
        }
    };
    let ev = AuthEvent {
        user: req.user.clone(),
        service: req.service.clone(),
        address: req.rhost.clone(),
        tty: req.tty.clone(),
        outcome: outcome.name().into(),
        // The factor actually used (totp, backup-code, passcode) when one was, or tried (a
        // Duo push denied); else the service's method.
        method: match outcome {
            Outcome::Success { method: used, .. } => used.clone(),
            _ if !tried.method.is_empty() => tried.method.clone(),
            _ => method.into(),
        },
        destination,
        reason,
        txid: tried.txid.clone(),
        ..Default::default()
    };
    let _ = crate::authlog::append(&config.paths.database, &ev);
}
