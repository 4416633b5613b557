//! One-password stacks (pam_mfa(8), `oneword=`): services whose clients send one password
//! and answer every prompt with it (vsftpd, proftpd, PostgreSQL's pam method, ...). Such a
//! stack must be, in this order:
//!
//! ```text
//! auth [success=done ignore=ignore default=die] pam_mfa.so oneword=before
//! auth requisite pam_unix.so use_first_pass
//! auth required  pam_mfa.so oneword=after
//! ```
//!
//! [`check`] says what is wrong with a stack holding a `oneword=` line (each finding naming
//! the file and line and what to write instead); [`arguments`] checks every pam_mfa line's
//! arguments the way the module parses them (it refuses to run with one it does not know);
//! [`plain_on_one_password_service`] warns when a service known to send one password stacks
//! plain pam_mfa, whose passcode prompt its clients answer with the password (issue 12).

use std::collections::BTreeSet;

use super::flow::PRIMARY;
use super::pam::Finding;
use super::stack::{Action, Line, Target};

/// PAM services (and their families: `vsftpd-ssl` follows `vsftpd`) whose clients send one
/// password and nothing else.
pub const ONE_PASSWORD_SERVICES: &[&str] = &[
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "ftp",
    "ftpd",
    "postgresql",
    "dovecot",
    "imap",
    "pop3",
    "cyrus",
    "openvpn",
    "radiusd",
];

/// Auth modules that never prompt: harmless anywhere in a one-password stack.
const NON_PROMPTING: &[&str] = &[
    "pam_listfile.so",
    "pam_shells.so",
    "pam_nologin.so",
    "pam_env.so",
    "pam_faildelay.so",
    "pam_permit.so",
    "pam_deny.so",
    "pam_succeed_if.so",
    "pam_securetty.so",
    "pam_access.so",
    "pam_time.so",
    "pam_group.so",
    "pam_rootok.so",
    "pam_faillock.so",
    "pam_tally2.so",
    "pam_wheel.so",
    "pam_warn.so",
    "pam_localuser.so",
    "pam_echo.so",
    "pam_cap.so",
];

/// The line to write above the password module.
const BEFORE_LINE: &str = "auth [success=done ignore=ignore default=die] pam_mfa.so oneword=before";
/// The password module's line.
const PASSWORD_LINE: &str = "auth requisite pam_unix.so use_first_pass";
/// The line to write below it.
const AFTER_LINE: &str = "auth required pam_mfa.so oneword=after";

fn fail(text: String) -> Finding {
    Finding {
        status: "fail",
        text,
    }
}

fn warn(text: String) -> Finding {
    Finding {
        status: "warn",
        text,
    }
}

/// A separator pam_mfa accepts.
fn separator_ok(s: &str) -> bool {
    matches!(s.as_bytes(), [b] if mfa_core::helper::valid_separator(*b))
}

/// The arguments of one pam_mfa line, as the module parses them: an argument it does not
/// know makes it refuse to run (PAM_SERVICE_ERR) for every login of the service.
pub fn arguments(service: &str, l: &Line) -> Vec<Finding> {
    let mut out = Vec::new();
    let refused = if l.control.failure_is_fatal() {
        format!("every login of {service} is refused")
    } else {
        format!("the line fails and `{}` goes on without it", l.control.text)
    };
    for a in &l.args {
        let problem = match a.split_once('=') {
            Some(("config", p)) if p.starts_with('/') => None,
            Some(("config", _)) => Some("config= needs an absolute path".to_string()),
            Some(("helper", p)) if p.starts_with('/') => None,
            Some(("helper", _)) => Some("helper= needs an absolute path".to_string()),
            Some(("service", s)) if s != "*" && mfa_core::validate::service(s).is_ok() => None,
            Some(("service", _)) => Some("service= needs a PAM service name".to_string()),
            Some(("fail_mode", "secure" | "safe")) => None,
            Some(("fail_mode", _)) => Some("fail_mode= is secure or safe".to_string()),
            Some(("oneword", "before" | "after")) => None,
            Some(("oneword", _)) => Some(
                "oneword= is before (above the password module) or after (below it)".to_string(),
            ),
            Some(("separator", c)) if separator_ok(c) => None,
            Some(("separator", _)) => Some(
                "separator= is one ASCII punctuation character other than '-' (e.g. separator=;)"
                    .to_string(),
            ),
            None if a == "debug" => None,
            _ => Some(format!("known: {}", mfa_core::helper::MODULE_ARGUMENTS)),
        };
        if let Some(p) = problem {
            out.push(fail(format!(
                "pam_mfa refuses to run with the argument {:?} ({}): {refused}; {p}",
                a.escape_debug().to_string(),
                l.origin
            )));
        }
    }
    if l.arg("separator").is_some() && l.arg("oneword").is_none() {
        out.push(warn(format!(
            "separator= on a pam_mfa line without oneword= ({}) has no effect: it belongs on the \
             oneword=before line",
            l.origin
        )));
    }
    out
}

/// A service whose clients send one password, stacking pam_mfa without `oneword=`.
pub fn plain_on_one_password_service(service: &str, lines: &[Line]) -> Option<Finding> {
    let known = mfa_core::service::lineage(service).find(|s| ONE_PASSWORD_SERVICES.contains(s))?;
    let plain = lines
        .iter()
        .find(|l| l.is_mfa() && l.arg("oneword").is_none())?;
    Some(warn(format!(
        "{known}'s clients send one password and answer every prompt with it, but pam_mfa here \
         ({}) has no oneword=: it asks for a code, gets the password, and refuses every enrolled \
         user (each attempt counting as wrong codes toward the lockout, and sending a passcode); \
         use the one-password stack (the shipped etc/pam.d/{known}): `{BEFORE_LINE}`, \
         `{PASSWORD_LINE}`, `{AFTER_LINE}`, and no @include common-auth",
        l_origin(plain)
    )))
}

fn l_origin(l: &Line) -> String {
    match &l.via {
        Some(v) => format!("{}, included at {v}", l.origin),
        None => l.origin.clone(),
    }
}

/// What a one-password stack found: its findings, and the password-module lines already
/// reported as not `requisite` (the general "a wrong password reaches pam_mfa" warning is
/// then not repeated for them).
pub struct Report {
    pub findings: Vec<Finding>,
    pub reported: BTreeSet<usize>,
}

/// Checks a stack holding pam_mfa with `oneword=`; None when it has none.
pub fn check(service: &str, lines: &[Line]) -> Option<Report> {
    let oneword: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].is_mfa() && lines[i].arg("oneword").is_some())
        .collect();
    if oneword.is_empty() {
        return None;
    }
    // A refusal of either pam_mfa line is judged here, not by the general "pam_mfa runs
    // after a failure" warning.
    let mut r = Report {
        findings: Vec::new(),
        reported: oneword.iter().copied().collect(),
    };
    let of = |v: &str| -> Vec<usize> {
        oneword
            .iter()
            .copied()
            .filter(|&i| lines[i].arg("oneword") == Some(v))
            .collect()
    };
    let (befores, afters) = (of("before"), of("after"));
    let origins = |v: &[usize]| -> String {
        v.iter()
            .map(|&i| l_origin(&lines[i]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for l in lines
        .iter()
        .filter(|l| l.is_mfa() && l.arg("oneword").is_none())
    {
        r.findings.push(fail(format!(
            "pam_mfa without oneword= ({}) in a one-password stack: it prompts for a code, which \
             a one-password client answers with its password (refused, counted toward the \
             lockout, a passcode sent); remove it{}",
            l_origin(l),
            if l.via.is_some() {
                " by not including that file here (pam-auth-update's profile puts pam_mfa in \
                 common-auth): write the password module itself"
            } else {
                ""
            }
        )));
    }
    // A value the module refuses is reported by `arguments`; pairing it would only add noise.
    let bad_value = befores.len() + afters.len() < oneword.len();
    if befores.len() > 1 {
        r.findings.push(fail(format!(
            "oneword=before is stacked {} times ({}): the second reads what the first left in \
             PAM_AUTHTOK; keep one, above the password module",
            befores.len(),
            origins(&befores)
        )));
    }
    if afters.len() > 1 {
        r.findings.push(fail(format!(
            "oneword=after is stacked {} times ({}): each checks the code, or sends a passcode, \
             on its own; keep one, below the password module",
            afters.len(),
            origins(&afters)
        )));
    }
    match (befores.as_slice(), afters.as_slice()) {
        ([], [a, ..]) if !bad_value => r.findings.push(fail(format!(
            "oneword=after ({}) without oneword=before: the one field is never split, so \
             PASSWORD,CODE reaches the password module whole and a double logon's passcode is \
             never accepted; write `{BEFORE_LINE}` above the password module",
            l_origin(&lines[*a])
        ))),
        ([b, ..], []) if !bad_value => r.findings.push(fail(format!(
            "oneword=before ({}) without oneword=after: the code in the field is never checked \
             and the password alone logs in; write `{AFTER_LINE}` below the password module \
             (`{PASSWORD_LINE}`)",
            l_origin(&lines[*b])
        ))),
        ([b], [a]) if b > a => r.findings.push(fail(format!(
            "oneword=after ({}) comes before oneword=before ({}): the decision is made before the \
             field is split and the password checked; write `{BEFORE_LINE}` above the password \
             module and `{AFTER_LINE}` below it",
            l_origin(&lines[*a]),
            l_origin(&lines[*b])
        ))),
        ([b], [a]) => pair(service, lines, *b, *a, &mut r),
        _ => {}
    }
    Some(r)
}

/// The stack around exactly one `before` (line b) and one later `after` (line a).
fn pair(service: &str, lines: &[Line], b: usize, a: usize, r: &mut Report) {
    let before = &lines[b];
    let after = &lines[a];
    let ctl = &before.control;
    // pam_mfa returns PAM_SUCCESS, never PAM_NEW_AUTHTOK_REQD: only `success=` counts.
    if ctl.actions.get("success").copied().unwrap_or(ctl.default) != Action::Done {
        r.findings.push(fail(format!(
            "oneword=before is `{}` ({}): its success (a double logon's passcode, verified) must \
             end the stack, `success=done`; otherwise the passcode goes on to the password module \
             as a password and the double logon never logs in; write `{BEFORE_LINE}`",
            ctl.text,
            l_origin(before)
        )));
    }
    if ctl.on_ignore() != Action::Ignore {
        r.findings.push(fail(format!(
            "oneword=before is `{}` ({}): it returns PAM_IGNORE for every ordinary login and \
             leaves the decision to the password module and oneword=after, so it must be \
             `ignore=ignore`; write `{BEFORE_LINE}`",
            ctl.text,
            l_origin(before)
        )));
    }
    if !ctl.failure_is_fatal() {
        r.findings.push(fail(format!(
            "oneword=before is `{}` ({}): it fails only when the one password cannot be read or \
             handed on, and then the login must stop (`default=die`); write `{BEFORE_LINE}`",
            ctl.text,
            l_origin(before)
        )));
    }
    if !after.control.failure_is_fatal()
        || after
            .control
            .on_success()
            .iter()
            .any(|x| !matches!(x, Action::Ok | Action::Done))
    {
        r.findings.push(fail(format!(
            "oneword=after is `{}` ({}): its refusal (a wrong or missing code) must fail the \
             login, or the password alone logs in; make it `required` (or `requisite`)",
            after.control.text,
            l_origin(after)
        )));
    }
    // What runs before `after`: includes and modules that prompt, password modules.
    let mut includes_reported = BTreeSet::new();
    for (i, l) in lines.iter().enumerate().take(a) {
        if i == b || l.is_mfa() {
            continue;
        }
        let base = l.base();
        // Lines the pair's own file brings (the pair itself may sit in an included file)
        // are the stack's own; another include is not.
        if let Some(via) = l.via.as_ref().filter(|_| l.via != before.via) {
            if (PRIMARY.contains(&base) || !NON_PROMPTING.contains(&base))
                && includes_reported.insert(via.clone())
            {
                r.findings.push(fail(format!(
                    "the include at {via} runs {} ({}) before oneword=after: an included stack \
                     such as common-auth prompts for the password itself (no use_first_pass), \
                     and a one-password client answers with the whole field (PASSWORD,CODE); its \
                     password module is not requisite either (Debian's jumps past pam_deny), so \
                     a wrong password would reach oneword=after; write the password module \
                     itself between the pam_mfa lines instead: `{PASSWORD_LINE}`",
                    if base.is_empty() { "an include" } else { base },
                    l.origin
                )));
            }
            continue;
        }
        if matches!(l.target, Target::BrokenInclude(_)) {
            continue;
        }
        if PRIMARY.contains(&base) && i < b {
            r.findings.push(fail(format!(
                "{base} ({}) comes before oneword=before: it reads the one field whole \
                 (PASSWORD,CODE) as the password; move it between the pam_mfa lines: \
                 `{PASSWORD_LINE}`",
                l.origin
            )));
        } else if !PRIMARY.contains(&base) && !NON_PROMPTING.contains(&base) {
            r.findings.push(warn(format!(
                "{base} ({}) runs before oneword=after: if it prompts, a one-password client \
                 answers with its password",
                l.origin
            )));
        }
    }
    let primaries: Vec<usize> = (b + 1..a)
        .filter(|&i| lines[i].via == before.via && PRIMARY.contains(&lines[i].base()))
        .collect();
    if primaries.is_empty() {
        r.findings.push(fail(format!(
            "no password module between oneword=before ({}) and oneword=after ({}): nothing \
             checks the password, so anyone who knows a user name can have a passcode sent and \
             log in with any password and a code; write `{PASSWORD_LINE}` between them",
            l_origin(before),
            l_origin(after)
        )));
    }
    for &p in &primaries {
        let l = &lines[p];
        let c = &l.control;
        if c.on_success()
            .iter()
            .any(|x| matches!(x, Action::Done | Action::Jump(_)))
        {
            r.reported.insert(p);
            r.findings.push(fail(format!(
                "{} is `{}` ({}): its success ends the stack or jumps, so oneword=after never \
                 runs and the password alone logs in; make it `requisite`",
                l.base(),
                c.text,
                l.origin
            )));
        } else if !c.on_failure().iter().all(|x| *x == Action::Die) {
            r.reported.insert(p);
            r.findings.push(fail(format!(
                "{} is `{}` ({}): a wrong password still reaches oneword=after, which sends a \
                 passcode to anyone who knows a user name, and whoever learns that passcode logs \
                 in with it alone (the double logon's second login checks no password); make it \
                 `requisite`",
                l.base(),
                c.text,
                l.origin
            )));
        }
        if !l.flag("use_first_pass") && !l.flag("try_first_pass") {
            r.findings.push(warn(format!(
                "{} ({}) has neither use_first_pass nor try_first_pass: it prompts for the \
                 password again, and a one-password client answers with the whole field \
                 (PASSWORD,CODE), so PASSWORD,CODE never logs in; add use_first_pass",
                l.base(),
                l.origin
            )));
        }
    }
    if r.findings.is_empty()
        && let Some(&p) = primaries.first()
    {
        r.findings.push(Finding {
            status: "ok",
            text: format!(
                "one-password stack for {service}: oneword=before ({}), {} `{}` ({}), \
                 oneword=after `{}` ({})",
                l_origin(before),
                lines[p].base(),
                lines[p].control.text,
                lines[p].origin,
                after.control.text,
                l_origin(after)
            ),
        });
    }
}
