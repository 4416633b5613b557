//! One-password services (vsftpd, proftpd, PostgreSQL's `pam` method, IMAP): the client
//! sends one password and answers every prompt with it, so the module never prompts there.
//! Two instances of the module share the work (`oneword=before` ahead of the password module,
//! `oneword=after` behind it; pam_mfa carries the code between them with pam_set_data):
//!
//! - [`split`] / [`before`]: `PASSWORD<sep>CODE` in the one field gives the password module
//!   the password part and keeps the code; a field that is a code alone is the second login
//!   of a *double logon*, accepted once for an outstanding double-logon challenge of the same
//!   user, service and address within `ftp_window` (the password was verified at the first).
//! - [`super::oneword_after`] (the password was verified): the usual decision; then the kept
//!   code is checked (TOTP, backup code, outstanding passcode), or, without one, a passcode is
//!   sent and the login refused (the double logon's first login).
//!
//! Nothing here ever holds the password beyond returning the split; it is never logged.

use super::*;

/// The purpose of a double logon's challenge: valid `ftp_window`, answered by a later login
/// with the code as its password.
pub const DOUBLE_LOGON: &str = "double-logon";

/// The default separator between the password and the code (duo_unix's).
pub const DEFAULT_SEPARATOR: u8 = b',';

/// Fields longer than this are never split or checked (PAM answers are at most 512 bytes).
pub const MAX_FIELD: usize = 1024;

/// What one password field holds. (Its `Debug` shows lengths only: no password or code in a
/// debug line or a test's failure message.)
#[derive(Clone, PartialEq, Eq)]
pub enum Field<'a> {
    /// `PASSWORD<sep>CODE`: split at the last separator, both parts non-empty, the code part
    /// shaped like a code.
    Split { password: &'a [u8], code: &'a [u8] },
    /// The whole field is shaped like a code (a double logon's second login, or a password
    /// that happens to look like one).
    Code(&'a [u8]),
    /// Anything else: a password for the password module.
    Plain,
}

/// Whether `s` is shaped like a code: 6 to 8 digits (TOTP, passcode, backup code) or
/// `code_length` digits, optionally after a passcode's prefix letter and `-` (`V-123456`).
pub fn looks_like_code(s: &[u8], code_length: u32) -> bool {
    let digits = match s {
        [l, b'-', rest @ ..] if l.is_ascii_alphabetic() => rest,
        _ => s,
    };
    let n = digits.len();
    ((6..=8).contains(&n) || n == code_length as usize) && digits.iter().all(u8::is_ascii_digit)
}

/// Classifies one password field. Never fails: bytes that are not UTF-8, several separators
/// (split at the last), empty parts (no split) and oversized fields (never split) are all
/// handled; a password that merely ends in digits is split only when a separator precedes
/// exactly a code-shaped tail.
pub fn split(field: &[u8], sep: u8, code_length: u32) -> Field<'_> {
    if field.is_empty() || field.len() > MAX_FIELD {
        return Field::Plain;
    }
    if let Some(i) = field.iter().rposition(|b| *b == sep) {
        let (password, code) = (&field[..i], &field[i + 1..]);
        if !password.is_empty() && looks_like_code(code, code_length) {
            return Field::Split { password, code };
        }
    }
    if looks_like_code(field, code_length) {
        return Field::Code(field);
    }
    Field::Plain
}

impl std::fmt::Debug for Field<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Field::Split { password, code } => write!(
                f,
                "Split {{ password: <{} bytes>, code: <{} bytes> }}",
                password.len(),
                code.len()
            ),
            Field::Code(c) => write!(f, "Code(<{} bytes>)", c.len()),
            Field::Plain => write!(f, "Plain"),
        }
    }
}

/// What the first instance (`oneword=before`) found. (`Debug`: lengths only, as [`Field`].)
#[derive(PartialEq, Eq)]
pub enum Before {
    /// Password and code: the password part goes to the password module (PAM_AUTHTOK), the
    /// code to the second instance. PAM_IGNORE.
    Split { password: Vec<u8>, code: Vec<u8> },
    /// A double logon's second login: its passcode was right (PAM_SUCCESS, `done`).
    Success(Outcome),
    /// Nothing for this instance: the field goes to the password module as it is.
    Ignore,
}

impl std::fmt::Debug for Before {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Before::Split { password, code } => write!(
                f,
                "Split {{ password: <{} bytes>, code: <{} bytes> }}",
                password.len(),
                code.len()
            ),
            Before::Success(o) => f.debug_tuple("Success").field(o).finish(),
            Before::Ignore => write!(f, "Ignore"),
        }
    }
}

/// The first instance: classifies `field` and, for a code alone with a double-logon
/// challenge outstanding for this user, service and address, checks it (counted once toward
/// the lockout when wrong; then the field is left to the password module, since a real
/// password may look like a code). Never sends anything, never prompts.
pub fn before(config: &Config, req: &Request, field: &[u8], sep: u8) -> Before {
    // Most fields are classified without reading the rules: a tail of 6 to 8 digits is a
    // code whatever `code_length` says, and a field that is plain even for a 4- or 5-digit
    // code length is plain for every one.
    match split(field, sep, 6) {
        Field::Split { password, code } => {
            return Before::Split {
                password: password.to_vec(),
                code: code.to_vec(),
            };
        }
        Field::Plain
            if split(field, sep, 4) == Field::Plain && split(field, sep, 5) == Field::Plain =>
        {
            return Before::Ignore;
        }
        _ => {}
    }
    let mut cx = Cx::new(config);
    let ip = parse_address(&req.rhost).ok();
    let facts = cx.facts(req, ip).ok();
    let code_length = facts.as_ref().map_or(6, |f| f.settings.code_length);
    let code = match split(field, sep, code_length) {
        Field::Split { password, code } => {
            return Before::Split {
                password: password.to_vec(),
                code: code.to_vec(),
            };
        }
        Field::Plain => return Before::Ignore,
        Field::Code(c) => c,
    };
    // The rules cannot be read: the second instance applies the fail mode.
    let Some(mut facts) = facts else {
        return Before::Ignore;
    };
    let now = crate::now();
    let Ok(st) = state::read_user(cx.db(), &req.user) else {
        return Before::Ignore;
    };
    let open = outstanding(cx.db(), req, &st.challenges, now);
    if open.is_empty() {
        return Before::Ignore;
    }
    // The decision still asks for a passcode: a user locked out, disabled or deleted since
    // the first login, or a service whose method changed, gets nothing from the code.
    facts.locked_until = facts.locked_until.max(st.failures.locked_until);
    facts.last_grant = grants::in_state(&st, &req.service, &req.rhost);
    match policy::decide(&facts, now) {
        Decision::Challenge(m)
            if (m == "passcode" || m == "any") && facts.allowed().allows(Factors::PASSCODE) => {}
        _ => return Before::Ignore,
    }
    let allow = Allow {
        totp: false,
        backup: false,
        passcodes: &open,
    };
    let outcome = match verify(&mut cx, req, &facts, code, &allow) {
        Ok(o) | Err(Flow::Done(o)) => o,
        Err(Flow::Conv) => return Before::Ignore,
    };
    let logged = match &outcome {
        Outcome::Success { .. } => outcome.clone(),
        // Left to the password module: a 6-digit password still works.
        Outcome::Deny { reason } => Outcome::Ignore {
            reason: format!("double logon: {reason}; the field goes to the password module"),
        },
        o => Outcome::Ignore {
            reason: format!("double logon: {}", o.name()),
        },
    };
    log(config, req, &facts, &logged, "passcode", &Tried::default());
    match outcome {
        Outcome::Success { .. } => Before::Success(outcome),
        _ => Before::Ignore,
    }
}

/// Outstanding (not expired, attempts left) double-logon challenges for this user, service
/// and address. (An interactive login's challenges belong to that login alone.) Only the
/// user's own challenges are read (at most `sends::MAX_CHALLENGES`, listed in their
/// login-state file when issued: `listed`), never the whole directory: a code-shaped field
/// costs a few small reads whatever the number of users.
fn outstanding(
    db: &std::path::Path,
    req: &Request,
    listed: &[(String, i64)],
    now: i64,
) -> Vec<state::Challenge> {
    listed
        .iter()
        .filter(|(_, expires)| *expires >= now)
        .filter_map(|(id, _)| state::challenge(db, id).ok().flatten())
        .filter(|c| {
            c.user == req.user
                && c.service == req.service
                && c.address == req.rhost
                && c.purpose == DOUBLE_LOGON
                && c.expires >= now
                && c.attempts_left > 0
        })
        .collect()
}

/// Which factors a code in the one field may prove.
struct Allow<'a> {
    totp: bool,
    backup: bool,
    passcodes: &'a [state::Challenge],
}

/// What matched.
enum Hit {
    Totp,
    Backup,
    /// A passcode (its masked destination), used up.
    Passcode(String),
}

/// Checks `code` once against the allowed factors, under the user's lock: right, it is used
/// up (TOTP step, backup code, challenge) and the factor passed; wrong, it counts once toward
/// the lockout and costs each outstanding passcode one attempt.
fn verify(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    code: &[u8],
    allow: &Allow<'_>,
) -> Result<Outcome, Flow> {
    let s = &facts.settings;
    let user = req.user.clone();
    let db = cx.db().to_path_buf();
    let hash_key = cx.passcode_key()?;
    let key = if allow.totp { cx.totp(&user)? } else { None };
    let now = crate::now();
    let digits: String = match std::str::from_utf8(code) {
        Ok(t) if t.len() <= 64 => t.chars().filter(|c| c.is_ascii_digit()).collect(),
        _ => String::new(),
    };
    let plain_digits = digits.len() == code.len();
    let step = match &key {
        Some(k) if plain_digits => {
            k.matching_step(&digits, u64::try_from(now).unwrap_or(0), s.totp_skew)
        }
        _ => None,
    };
    let mut replay = false;
    let verdict = state::guess(&db, &user, now, s, |st| {
        if let Some(step) = step {
            if st.step >= step {
                replay = true;
            } else {
                st.step = step;
                return Ok(Some(Hit::Totp));
            }
        }
        // The candidates as their files hold them now, under the user's lock: what the list
        // read before the lock says may be stale (FTP clients open parallel connections with
        // the same field). A passcode another login used is gone; one another wrong guess
        // used up is gone; the attempts left are those of the file.
        let open: Vec<state::Challenge> = allow
            .passcodes
            .iter()
            .filter_map(|c| state::challenge(&db, &c.id).ok().flatten())
            .filter(|c| c.purpose == DOUBLE_LOGON && c.expires >= now && c.attempts_left > 0)
            .collect();
        // Every outstanding passcode is compared (constant time each), not only up to a hit.
        let mut hit = None;
        for c in &open {
            let good = passcode::normalize_answer(code, c.prefix, s.code_length)
                .is_some_and(|n| passcode::verify(&hash_key, &c.id, &n, &c.code_hash));
            if good && hit.is_none() {
                hit = Some(c);
            }
        }
        // Used up under the lock, by removing its file: of any number of logins with one
        // passcode, exactly one removes it.
        if let Some(c) = hit
            && state::claim_challenge(&db, &c.id)?
        {
            return Ok(Some(Hit::Passcode(c.destination.clone())));
        }
        if allow.backup && plain_digits && digits.len() == crate::totp::BACKUP_DIGITS as usize {
            let h = crate::totp::backup_hash(&hash_key, &user, &digits)?;
            let used = cx.store()?.policy_write(false, |tx| {
                let used = factors::use_backup_code(tx, &user, &h)?;
                Ok((used, used))
            })?;
            if used {
                return Ok(Some(Hit::Backup));
            }
        }
        // Wrong: each outstanding passcode loses an attempt, still under the lock (no lost
        // update between parallel guesses, and no used passcode written back).
        for mut c in open {
            c.attempts_left -= 1;
            let _ = if c.attempts_left <= 0 {
                state::delete_challenge(&db, &c.id)
            } else {
                state::update_challenge(&db, &c)
            };
        }
        Ok(None)
    })?;
    let (method, destination) = match verdict {
        state::Guess::Right(Hit::Totp) => ("totp", String::new()),
        state::Guess::Right(Hit::Backup) => ("backup-code", String::new()),
        state::Guess::Right(Hit::Passcode(dest)) => ("passcode", dest),
        state::Guess::Locked => {
            return Ok(Outcome::Deny {
                reason: "locked out".into(),
            });
        }
        state::Guess::Wrong { locked } => {
            let why = if replay {
                "code replayed"
            } else {
                "wrong code"
            };
            if let Some(until) = locked {
                lockout(cx, req, now, until)?;
                return Ok(Outcome::Deny {
                    reason: format!("{why}; locked out"),
                });
            }
            return Ok(Outcome::Deny { reason: why.into() });
        }
    };
    passed(cx, req, facts)?;
    Ok(Outcome::Success {
        method: method.into(),
        destination,
    })
}

/// The second instance's challenge (the password was verified): with a kept code, it is
/// checked against the factors the service's method allows; without one, the double logon:
/// a passcode to the user's double-logon contact ([`double_logon_contact`]: the one the
/// administrator chose, else the first), valid `ftp_window`, and this login refused.
pub(super) fn after(
    cx: &mut Cx<'_>,
    config: &Config,
    req: &Request,
    facts: &Facts,
    method: &str,
    code: Option<&[u8]>,
) -> Result<Outcome, Flow> {
    if method == "duo" {
        return factor::duo::one_field(cx, req, facts, &mut Mute, code);
    }
    // The factors the method accepts and the user's group (or own override) allows.
    let allowed = facts.allowed();
    let codes = method == "totp" || method == "any";
    let totp = codes && allowed.allows(Factors::TOTP);
    let backup = codes && allowed.allows(Factors::BACKUP);
    let passcodes = (method == "passcode" || method == "any") && allowed.allows(Factors::PASSCODE);
    if let Some(code) = code {
        let open = if passcodes {
            let listed = state::read_user(cx.db(), &req.user)
                .map(|st| st.challenges)
                .unwrap_or_default();
            outstanding(cx.db(), req, &listed, crate::now())
        } else {
            Vec::new()
        };
        let allow = Allow {
            totp,
            backup,
            passcodes: &open,
        };
        return verify(cx, req, facts, code, &allow);
    }
    let contact = if passcodes {
        let chosen = facts.user.as_ref().and_then(|u| u.double_logon_contact);
        double_logon_contact(cx.contacts(&req.user)?, chosen)
    } else {
        None
    };
    let Some(c) = contact else {
        return Ok(Outcome::Deny {
            reason: if totp || backup {
                "one-password service: the code must follow the password in the one field".into()
            } else {
                "no usable factor".into()
            },
        });
    };
    check_delivery(config)?;
    let dest = Destination {
        channel: Channel::parse(&c.channel)?,
        to: c.to.clone(),
        masked: c.masked.clone(),
    };
    let key = cx.passcode_key()?;
    match challenge::issue(cx, config, req, facts, &dest, DOUBLE_LOGON, &key, 0)? {
        challenge::Issued::Sent(_) => Ok(Outcome::Deny {
            reason: format!(
                "double logon: passcode sent to {}; log in again with it as the password",
                dest.masked
            ),
        }),
        challenge::Issued::Limited(l) => Ok(Outcome::Deny { reason: l.reason() }),
    }
}

/// Where a double logon sends its passcode: the contact the administrator chose for it
/// (`mfa-admin override set USER --double-logon-contact N`) when the user has it, else the
/// first contact. (`contact del` clears a choice whose contact it deletes; a database edited
/// behind mfa's back may still name a number the user lacks: the first contact then.)
pub(super) fn double_logon_contact(
    contacts: Vec<people::ContactRow>,
    chosen: Option<i64>,
) -> Option<people::ContactRow> {
    let mut first = None;
    for c in contacts {
        if Some(c.seq) == chosen {
            return Some(c);
        }
        first.get_or_insert(c);
    }
    first
}

/// A conversation for the one-password flows: nothing is shown, and a prompt (which the
/// client would answer with the password) is an error. pam_mfa uses it too, for the helper's
/// one-password runs.
pub struct Mute;

impl Conversation for Mute {
    fn prompt(&mut self, _: &str, _: bool) -> Result<Vec<u8>, ConvError> {
        Err(ConvError)
    }
    fn info(&mut self, _: &str) -> Result<(), ConvError> {
        Ok(())
    }
    fn error(&mut self, _: &str) -> Result<(), ConvError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_and_a_code_split_at_the_last_separator() {
        let f = split(b"hunter2,123456", b',', 6);
        assert_eq!(
            f,
            Field::Split {
                password: b"hunter2",
                code: b"123456"
            }
        );
        // Several separators: the password keeps all but the last.
        let f = split(b"a,b,,c,12345678", b',', 6);
        assert_eq!(
            f,
            Field::Split {
                password: b"a,b,,c",
                code: b"12345678"
            }
        );
        // A passcode with its prefix letter.
        let f = split(b"pw,V-123456", b',', 6);
        assert_eq!(
            f,
            Field::Split {
                password: b"pw",
                code: b"V-123456"
            }
        );
        // Another separator.
        assert!(matches!(split(b"pw;123456", b';', 6), Field::Split { .. }));
        assert_eq!(split(b"pw,123456", b';', 6), Field::Plain);
        // The code length setting (4 or 5 digits) is a code too.
        assert!(matches!(split(b"pw,1234", b',', 4), Field::Split { .. }));
        assert_eq!(split(b"pw,1234", b',', 6), Field::Plain);
    }

    #[test]
    fn hostile_fields_are_never_split_wrongly() {
        // No separator; a password ending in digits.
        assert_eq!(split(b"hunter2", b',', 6), Field::Plain);
        assert_eq!(split(b"summer2024123456", b',', 6), Field::Plain);
        // Empty parts.
        assert_eq!(split(b"", b',', 6), Field::Plain);
        assert_eq!(split(b",", b',', 6), Field::Plain);
        assert_eq!(split(b"pw,", b',', 6), Field::Plain);
        assert_eq!(split(b",123456", b',', 6), Field::Plain);
        assert_eq!(split(b",,", b',', 6), Field::Plain);
        // The last separator decides: a code before it is part of the password.
        assert_eq!(split(b"pw,123456,", b',', 6), Field::Plain);
        assert_eq!(split(b"pw,123456,x", b',', 6), Field::Plain);
        // Not code-shaped tails: too short, too long, letters, spaces, non-ASCII digits.
        for tail in [
            &b"12345"[..],
            b"123456789",
            b"12345a",
            b" 123456",
            b"123 456",
            "١٢٣٤٥٦".as_bytes(),
            b"VV-123456",
            b"-123456",
        ] {
            let mut f = b"pw,".to_vec();
            f.extend_from_slice(tail);
            assert_eq!(split(&f, b',', 6), Field::Plain, "{tail:?}");
        }
        // Bytes that are not UTF-8 in the password part are carried as they are.
        let f = split(b"\xff\xfe\x00pw,654321", b',', 6);
        assert_eq!(
            f,
            Field::Split {
                password: b"\xff\xfe\x00pw",
                code: b"654321"
            }
        );
        assert_eq!(split(b"\xff\xfe", b',', 6), Field::Plain);
        // A 1 MiB field is never split or checked.
        let mut big = vec![b'a'; 1 << 20];
        big.extend_from_slice(b",123456");
        assert_eq!(split(&big, b',', 6), Field::Plain);
        let digits = vec![b'1'; 1 << 20];
        assert_eq!(split(&digits, b',', 6), Field::Plain);
    }

    #[test]
    fn debug_shows_no_password_or_code() {
        let f = split(b"hunter2,123456", b',', 6);
        let b = Before::Split {
            password: b"hunter2".to_vec(),
            code: b"123456".to_vec(),
        };
        for text in [
            format!("{f:?}"),
            format!("{b:?}"),
            format!("{:?}", split(b"654321", b',', 6)),
        ] {
            assert!(
                !text.contains("hunter2") && !text.contains("104, 117"),
                "{text}"
            );
            assert!(
                !text.contains("123456") && !text.contains("654321") && !text.contains("49, 50"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_code_alone_is_told_from_a_password() {
        assert_eq!(split(b"123456", b',', 6), Field::Code(b"123456"));
        assert_eq!(split(b"K-123456", b',', 6), Field::Code(b"K-123456"));
        assert_eq!(split(b"12345678", b',', 6), Field::Code(b"12345678"));
        assert_eq!(split(b"1234567890", b',', 6), Field::Plain);
        assert_eq!(split(b"abc123", b',', 6), Field::Plain);
    }
}
