//! mfa-check: the minimal setuid-root helper of pam_mfa, for servers that call PAM as their
//! own unprivileged account (PostgreSQL as `postgres`), as pam_unix has unix_chkpwd.
//!
//! The module runs it with a cleared environment and speaks `mfa_core::helper`'s protocol on
//! its standard input and output: one ask (who, which service, which flow), the relayed
//! conversation, one reply that carries the outcome's kind only (the reason, which could
//! name a rule, goes to its own LOG_AUTHPRIV line: `report`), never a secret. It takes no
//! argument. It first closes every descriptor above 2 it inherited, blocks every blockable
//! signal, clears the caller's interval timers and arms its own deadline (`DEADLINE` plus a
//! little: nothing, not a write nobody reads, holds it longer). When it gained privilege
//! (set-user-ID root, run by another user) it reads only /etc/mfa/mfa.toml, becomes root in
//! every id (the caller can no longer signal it), starts a session of its own (no terminal
//! of the caller's can stop or kill it) with normal scheduling, resets the resource limits
//! it depends on and ignores SIGPIPE; it answers only the accounts and
//! services `[callers]` lists, and refuses (a LOG_AUTHPRIV syslog line naming the caller and
//! the service, nothing else done) everyone else. Run without privilege gain (not setuid,
//! or by root) it honours `MFA_CONFIG` (tests); root is always answered (it could read the
//! rules itself). The ask is read first, within `helper::ASK_DEADLINE`, while the process
//! still counts toward the caller's process limit; a plain login that would self-enrol is
//! refused (`mfa_core::auth::authenticate_without_enrollment`).
//!
//! Exit status ([`Exit`]): 0 a reply was written; 2 a bad ask (malformed, oversized,
//! truncated, none before the deadline, or an argument given); 3 the caller or the service is
//! not in `[callers]`; 4 the configuration cannot be read (the caller is told only that);
//! 5 a broken installation, or the privileges, the session (run as a process group leader),
//! the scheduling or the resource limits could not be set up; 6 the reply could not be
//! written (the caller went away).
//! On 2 to 5 a `Refused` frame says why, when the channel still takes it.

mod process;
mod relay;
mod report;

use std::io::Write;
use std::time::Instant;

use mfa_core::auth::{self, Request};
use mfa_core::config::{Config, ConfigSource};
use mfa_core::helper::{self, ASK_DEADLINE, Ask, BeforeReply, DEADLINE, Frame, Mode, Timed};

use process::{Caller, Privilege};

/// The exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Exit {
    Replied = 0,
    BadAsk = 2,
    Refused = 3,
    Config = 4,
    Setup = 5,
    Unwritten = 6,
}

fn main() {
    // No descriptor of the caller's beyond the channel and stderr; then who called; then
    // nothing of the caller's environment stays.
    process::close_inherited_fds();
    let caller = Caller::now();
    let mfa_config = process::clear_environment();
    let exit = run(caller, mfa_config);
    std::process::exit(exit as i32);
}

fn run(caller: Caller, mfa_config: Option<std::ffi::OsString>) -> Exit {
    let started = Instant::now();
    let privilege = caller.privilege();
    let mut out = std::io::stdout();
    process::ignore_signals();
    // Our own deadline, the caller's timers and signals gone (see `arm_deadline`): every
    // read ends by `DEADLINE`, and this alarm bounds the writes too (a channel whose reader
    // the caller keeps open and never reads), and anything else, a little later.
    process::arm_deadline(DEADLINE + process::DEADLINE_GRACE);
    if privilege == Privilege::Misinstalled {
        let why = format!(
            "installed set-user-ID to uid {} instead of root; fix with: chown root: and \
             chmod 4755 the file",
            caller.euid
        );
        return refuse(&mut out, Exit::Setup, &caller, "", &why);
    }
    if std::env::args_os().len() > 1 {
        let why = "mfa-check takes no arguments: pam_mfa runs it and speaks to it on stdin";
        return refuse(&mut out, Exit::BadAsk, &caller, "", why);
    }
    // The ask first, briefly, while the process still counts as the caller's.
    let mut input = Timed {
        fd: std::io::stdin(),
        deadline: started + ASK_DEADLINE,
    };
    let ask = match helper::read_frame(&mut input) {
        Ok(Frame::Ask(a)) => a,
        Ok(other) => {
            let why = format!("expected an ask, got {}", other.kind());
            return refuse(&mut out, Exit::BadAsk, &caller, "", &why);
        }
        Err(e) => {
            return refuse(
                &mut out,
                Exit::BadAsk,
                &caller,
                "",
                &format!("bad ask: {e}"),
            );
        }
    };
    input.deadline = started + DEADLINE;
    let source = match privilege {
        Privilege::Gained => {
            if let Err(e) = process::become_root() {
                let why = format!("cannot become root: {e}");
                return refuse(&mut out, Exit::Setup, &caller, &ask.service, &why);
            }
            // Root now: out of reach of the caller's kill(2); a session of its own puts it
            // out of reach of its terminal and its session's SIGCONT too.
            if let Err(why) = process::detach() {
                return refuse(&mut out, Exit::Setup, &caller, &ask.service, &why);
            }
            ConfigSource::default_file()
        }
        _ => {
            if let Some(why) = process::setuid_ignored(&caller) {
                return refuse(&mut out, Exit::Setup, &caller, &ask.service, &why);
            }
            // The caller could signal us anyway: detaching is a courtesy here.
            let _ = process::detach();
            ConfigSource::named_or_default(mfa_config)
        }
    };
    if let Err(e) = process::reset_limits() {
        return refuse(&mut out, Exit::Setup, &caller, &ask.service, &e);
    }
    let config = match Config::load(&source) {
        Ok(c) => c,
        Err(e) => {
            // The error may quote the root-only file: the log gets it, the caller does not.
            let why = format!("cannot read the configuration: {e}");
            return refuse_telling(
                &mut out,
                Exit::Config,
                &caller,
                &ask.service,
                &why,
                report::CONFIG_UNREADABLE,
            );
        }
    };
    if caller.uid != 0 {
        let name = process::account_name(caller.uid);
        let allowed = name
            .as_deref()
            .is_some_and(|n| config.caller_may_ask(n, &ask.service));
        if !allowed {
            let who = name.as_deref().unwrap_or("(no name)");
            let why = format!(
                "uid {} ({who}) may not ask about service {:?}: not listed in [callers] of {}",
                caller.uid,
                ask.service,
                source.path.display()
            );
            return refuse(&mut out, Exit::Refused, &caller, &ask.service, &why);
        }
    }
    if let Err(e) = check_ask(&ask) {
        return refuse(&mut out, Exit::BadAsk, &caller, &ask.service, &e);
    }
    let req = Request {
        user: ask.user.clone(),
        service: ask.service.clone(),
        rhost: ask.rhost.clone(),
        tty: ask.tty.clone(),
    };
    let mut stdout = std::io::stdout();
    let reply = {
        let mut relay = relay::Relay::new(&mut input, &mut stdout);
        let reply = decide(&config, &req, &ask, &mut relay);
        if let Some(why) = &relay.broken {
            process::syslog(
                libc::LOG_NOTICE,
                &format!(
                    "conversation with uid {} for service {:?} ended: {why}",
                    caller.uid, ask.service
                ),
            );
        }
        reply
    };
    // The details (which rule, until when) to the log; the caller gets the kind.
    let reply = report::outcome(caller.uid, &req, reply);
    match send(&mut out, &reply) {
        Ok(()) => Exit::Replied,
        Err(_) => Exit::Unwritten,
    }
}

/// The usual decision of the ask's flow.
fn decide(config: &Config, req: &Request, ask: &Ask, relay: &mut relay::Relay<'_>) -> Frame {
    match ask.mode {
        // No self-enrollment: the conversation is the calling server's, not the user's.
        Mode::Plain => Frame::Outcome(auth::authenticate_without_enrollment(
            config,
            req,
            relay,
            ask.fail_mode,
        )),
        Mode::After => Frame::Outcome(auth::oneword_after(
            config,
            req,
            ask.secret.as_ref().map(|s| s.0.as_slice()),
            ask.fail_mode,
        )),
        Mode::Before => {
            let field = ask.secret.as_ref().map(|s| s.0.as_slice()).unwrap_or(&[]);
            let found = auth::oneword_before(config, req, field, ask.separator);
            match BeforeReply::of(field, ask.separator, found) {
                Some(r) => Frame::Before(r),
                None => Frame::Refused("the field's split could not be expressed".into()),
            }
        }
    }
}

/// What mfa-core needs of an ask beyond the protocol's bounds: a service name of the rules
/// (not `*`), a user name.
fn check_ask(ask: &Ask) -> Result<(), String> {
    if ask.service == mfa_core::validate::ANY_SERVICE
        || mfa_core::validate::service(&ask.service).is_err()
    {
        return Err(format!("bad ask: {:?} is not a service name", ask.service));
    }
    if ask.user.is_empty() || ask.user.trim() != ask.user {
        return Err("bad ask: no user name, or one with surrounding blanks".into());
    }
    Ok(())
}

/// Writes one frame. Blocking: a caller that never reads its end is bounded by the alarm
/// `process::arm_deadline` armed, which ends the helper.
fn send(out: &mut dyn Write, frame: &Frame) -> std::io::Result<()> {
    let bytes = frame.encode().map_err(std::io::Error::other)?;
    out.write_all(&bytes)?;
    out.flush()
}

/// Refuses: one syslog line naming the caller and the service, a `Refused` frame (if the
/// channel takes it), and the exit status.
fn refuse(out: &mut dyn Write, exit: Exit, caller: &Caller, service: &str, why: &str) -> Exit {
    refuse_telling(out, exit, caller, service, why, why)
}

/// Refuses, logging `why` and telling the caller only `told`.
fn refuse_telling(
    out: &mut dyn Write,
    exit: Exit,
    caller: &Caller,
    service: &str,
    why: &str,
    told: &str,
) -> Exit {
    let name = process::account_name(caller.uid).unwrap_or_else(|| "(no name)".into());
    let service = if service.is_empty() {
        "(none)"
    } else {
        service
    };
    process::syslog(
        libc::LOG_WARNING,
        &format!(
            "refused caller uid={} ({name:?}) service={service:?}: {why}",
            caller.uid
        ),
    );
    let _ = send(out, &Frame::Refused(told.into()));
    // For a person who ran it by hand (the module sends stderr to /dev/null).
    let _ = writeln!(std::io::stderr(), "mfa-check: {told}");
    exit
}
