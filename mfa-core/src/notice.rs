//! Notices to the administrator and to users (settings `admin_email`, `notify_admin`,
//! `notify_user`): a lockout, a disabled user (disabled for inactivity, or trying to log in
//! while disabled), a fail-mode event (mfa could not work). Composed here and queued through
//! the spool like the Duo enrollment notice ([`crate::template::enrollment_message`]): kind
//! [`Kind::Notice`], which the sender's passcode send limits do not count.
//!
//! The user's notice goes to their first contact (an email, or a short text for SMS); the
//! administrator's to `admin_email`. User names and addresses come from PAM (PAM_USER,
//! PAM_RHOST) and may hold any bytes: [`shown`] writes every control or format character
//! as an escape and cuts long values, so no subject or body carries a line break, a header
//! or a terminal escape from them.
//!
//! Queueing a notice never changes a login's outcome: [`send`] returns what it queued and
//! the errors, for the caller to log or to ignore.

use std::path::Path;

use crate::Result;
use crate::contact::{Channel, Contact};
use crate::settings::Settings;
use crate::spool::{self, Kind, Message};
use crate::store::people::ContactRow;

/// How long the sender may still deliver a notice.
pub const NOTICE_TTL: i64 = 86_400;

/// The longest SMS text a notice makes (one message).
pub const SMS_MAX: usize = 160;

/// Why a user is disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disabled {
    /// The maintenance run disabled them: no proven second factor since `since` (their last
    /// success, or their record's creation), longer than `inactive_after`.
    Inactive { since: i64, after: u32 },
    /// A disabled user tried to log in.
    Attempt { service: String, address: String },
}

/// What a notice tells of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `user` was locked out until `until` after `count` failed attempts on `service` from
    /// `address` ("" for a local login).
    Lockout {
        user: String,
        until: i64,
        count: u32,
        service: String,
        address: String,
        /// Lockouts of the user since the last lockout notice that were not told (at most
        /// one lockout notice an hour: [`crate::state::claim_lockout_notice`]).
        untold: u32,
    },
    /// `user` is disabled, or tried to log in while disabled.
    Disabled { user: String, why: Disabled },
    /// mfa could not work as it should (administrator only): `detail` says what.
    FailMode { detail: String },
}

impl Event {
    /// The event's name in `notify_admin` / `notify_user`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Lockout { .. } => "lockout",
            Event::Disabled { .. } => "disabled",
            Event::FailMode { .. } => "fail-mode",
        }
    }

    /// The user the event is about ("" for none).
    pub fn user(&self) -> &str {
        match self {
            Event::Lockout { user, .. } | Event::Disabled { user, .. } => user,
            Event::FailMode { .. } => "",
        }
    }
}

/// Who a notice goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Admin,
    User,
}

/// `text` as a notice may show it: control and format characters (line breaks, escapes,
/// bidirectional overrides) written as `\u{..}`, at most `max` characters (then `...`).
pub fn shown(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push_str("...");
            break;
        }
        let format = matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{feff}');
        if c.is_control() || format {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A Unix time as `2026-11-30 21:05 UTC`.
pub fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

const NAME_MAX: usize = 64;

/// The subject and body of a notice about `event` for `to` on `host`; `sms`: one short text
/// (the body alone is sent).
pub fn text(event: &Event, to: To, host: &str, sms: bool) -> (String, String) {
    let host = shown(host, NAME_MAX);
    // " on sshd from 192.0.2.7", each part only when known.
    let from = |service: &str, address: &str| {
        let mut t = String::new();
        if !service.is_empty() {
            t.push_str(&format!(" on {}", shown(service, NAME_MAX)));
        }
        if !address.is_empty() {
            t.push_str(&format!(" from {}", shown(address, NAME_MAX)));
        }
        t
    };
    let (subject, body) = match (event, to) {
        (
            Event::Lockout {
                user,
                until,
                count,
                service,
                address,
                untold,
            },
            _,
        ) => {
            let whose = match to {
                To::User => "your account".to_string(),
                To::Admin => format!("user {}", shown(user, NAME_MAX)),
            };
            let mut body = format!(
                "mfa on {host}: {whose} was locked out until {} after {count} failed attempts{}.",
                utc(*until),
                from(service, address)
            );
            if *untold > 0 {
                body.push_str(&format!(
                    " {untold} earlier lockout(s) in the last hour were not told (at most one notice an hour)."
                ));
            }
            let advice = match to {
                To::User => " If this was not you, tell your administrator.",
                To::Admin => " `mfa-admin user unlock` ends it sooner.",
            };
            (
                format!("{host}: {} locked out", whose_short(to, user)),
                format!("{body}{advice}"),
            )
        }
        (Event::Disabled { user, why }, _) => {
            let whose = match to {
                To::User => "your account".to_string(),
                To::Admin => format!("user {}", shown(user, NAME_MAX)),
            };
            let body = match why {
                Disabled::Inactive { since, after } => format!(
                    "mfa on {host}: {whose} was disabled: no second factor proved since {} \
                     (inactive_after = {}).",
                    utc(*since),
                    crate::settings::format_duration(*after)
                ),
                Disabled::Attempt { service, address } => format!(
                    "mfa on {host}: {whose} is disabled and a login was tried{}.",
                    from(service, address)
                ),
            };
            let advice = match to {
                To::User => " Ask your administrator to enable it again.",
                To::Admin => " `mfa-admin user enable` enables it again.",
            };
            (
                format!("{host}: {} disabled", whose_short(to, user)),
                format!("{body}{advice}"),
            )
        }
        (Event::FailMode { detail }, _) => (
            format!("{host}: mfa cannot work as it should"),
            format!(
                "mfa on {host}: {}. Logins follow the fail mode meanwhile; see `mfa-admin doctor`.",
                shown(detail, 400)
            ),
        ),
    };
    if sms {
        let body: String = if body.chars().count() > SMS_MAX {
            let mut b: String = body.chars().take(SMS_MAX - 3).collect();
            b.push_str("...");
            b
        } else {
            body
        };
        return (String::new(), body);
    }
    // A subject is one short line whatever went in (shown() already escaped the values).
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(78)
        .collect();
    (subject, body)
}

fn whose_short(to: To, user: &str) -> String {
    match to {
        To::User => "your account".into(),
        To::Admin => format!("user {}", shown(user, 24)),
    }
}

/// The message of a notice about `event` to `to` over `channel` (`masked`: `to` as logs
/// show it). Fails only when the system's random source does (the id).
pub fn message(
    event: &Event,
    who: To,
    channel: Channel,
    to: &str,
    masked: &str,
    host: &str,
    now: i64,
) -> Result<Message> {
    let sms = matches!(channel, Channel::Sms | Channel::SmsGateway);
    let (subject, body) = text(event, who, host, sms);
    Ok(Message {
        id: format!("{now}-{}", crate::passcode::random_id()?),
        created: now,
        expires: now.saturating_add(NOTICE_TTL),
        channel,
        to: to.to_string(),
        subject,
        body,
        user: event.user().to_string(),
        kind: Kind::Notice,
        masked_to: masked.to_string(),
    })
}

/// The lockout notices, as the module queues them when a guess locks `user` out (once per
/// lockout: [`crate::state::guess`] returns the lock once): the settings in force (from
/// `settings`, else the database), the user's contacts from the database. Never fails: a
/// notice that cannot be queued does not change the login's outcome.
#[allow(clippy::too_many_arguments)]
pub fn at_lockout(
    database: &Path,
    spool_dir: &Path,
    conn: Option<&rusqlite::Connection>,
    settings: Option<&Settings>,
    user: &str,
    count: u32,
    until: i64,
    service: &str,
    address: &str,
    now: i64,
) -> Sent {
    let owned;
    let settings = match (settings, conn) {
        (Some(s), _) => s,
        (None, Some(conn)) => match crate::store::rules::settings(conn) {
            Ok(s) => {
                owned = s;
                &owned
            }
            Err(e) => {
                return Sent {
                    queued: 0,
                    errors: vec![format!("lockout notice: cannot read the settings: {e}")],
                };
            }
        },
        (None, None) => return Sent::default(),
    };
    if !settings.notify_admin_of("lockout") && !settings.notify_user_of("lockout") {
        return Sent::default();
    }
    let contacts = match conn {
        Some(conn) if settings.notify_user_of("lockout") => {
            crate::store::people::contacts(conn, user).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    // At most one an hour per user; a state file that cannot be written tells nobody (the
    // lockout itself is what matters, and it holds).
    let untold = match crate::state::claim_lockout_notice(database, user, now) {
        Ok(Some(n)) => n,
        Ok(None) => return Sent::default(),
        Err(e) => {
            return Sent {
                queued: 0,
                errors: vec![format!("lockout notice: {e}")],
            };
        }
    };
    let event = Event::Lockout {
        user: user.to_string(),
        until,
        count,
        service: service.to_string(),
        address: address.to_string(),
        untold,
    };
    send(spool_dir, settings, &event, &contacts, now)
}

/// The notices of a disabled user trying to log in (event `disabled`), at most one a day
/// per user ([`crate::state::claim_disabled_notice`], kept in the user's login-state file,
/// written only when a notice is asked for). Never fails, as [`at_lockout`].
#[allow(clippy::too_many_arguments)]
pub fn at_disabled_attempt(
    database: &Path,
    spool_dir: &Path,
    settings: &Settings,
    contacts: &[ContactRow],
    user: &str,
    service: &str,
    address: &str,
    now: i64,
) -> Sent {
    if !settings.notify_admin_of("disabled") && !settings.notify_user_of("disabled") {
        return Sent::default();
    }
    match crate::state::claim_disabled_notice(database, user, now) {
        Ok(true) => {}
        Ok(false) => return Sent::default(),
        Err(e) => {
            return Sent {
                queued: 0,
                errors: vec![format!("disabled notice: {e}")],
            };
        }
    }
    let event = Event::Disabled {
        user: user.to_string(),
        why: Disabled::Attempt {
            service: service.to_string(),
            address: address.to_string(),
        },
    };
    send(spool_dir, settings, &event, contacts, now)
}

/// What [`send`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// Notices queued (0 to 2).
    pub queued: usize,
    /// The notice the settings asked for that could not be queued, and why.
    pub errors: Vec<String>,
}

/// Queues the notices the settings ask for about `event`: to `admin_email` when
/// `notify_admin` names the event, to the user's first contact (`contacts` in their order)
/// when `notify_user` names it. A user without a contact gets none. Never fails: the errors
/// are returned.
pub fn send(
    spool_dir: &Path,
    settings: &Settings,
    event: &Event,
    contacts: &[ContactRow],
    now: i64,
) -> Sent {
    let mut sent = Sent::default();
    let host = crate::settings::host_name();
    let name = event.name();
    let mut queue =
        |m: Result<Message>, who: &str| match m.and_then(|m| spool::enqueue(spool_dir, &m)) {
            Ok(_) => sent.queued += 1,
            Err(e) => sent.errors.push(format!("{name} notice to {who}: {e}")),
        };
    if settings.notify_admin_of(name)
        && let Some(admin) = &settings.admin_email
    {
        let masked = Contact::email(admin)
            .map(|c| c.masked())
            .unwrap_or_default();
        queue(
            message(event, To::Admin, Channel::Email, admin, &masked, &host, now),
            "the administrator",
        );
    }
    if name != "fail-mode"
        && settings.notify_user_of(name)
        && let Some(c) = contacts.iter().min_by_key(|c| c.seq)
    {
        match Channel::parse(&c.channel) {
            Ok(ch) => queue(
                message(event, To::User, ch, &c.to, &c.masked, &host, now),
                "the user",
            ),
            Err(e) => sent.errors.push(format!("{name} notice to the user: {e}")),
        }
    }
    sent
}

#[cfg(test)]
#[path = "notice_tests.rs"]
mod tests;
