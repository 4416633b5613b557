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
use crate::net::parse_address;
use crate::passcode;
use crate::policy::{self, Decision, Facts};
use crate::settings::FailMode;
use crate::spool::{self, HEARTBEAT_STALE_SECS, Kind, Message};
use crate::store::logs::{AuthEvent, record_auth};
use crate::store::{Store, Tx, auth as q, people, rules};
use crate::template::{self, Values};
use crate::{Error, Result};

/// The conversation with the user. An `Err` means the conversation failed (Ctrl-C, closed
/// connection): the authentication fails.
pub trait Conversation {
    /// Asks a question; returns the raw answer.
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError>;
    /// Shows information.
    fn info(&mut self, text: &str) -> Result<(), ConvError>;
    /// Shows an error.
    fn error(&mut self, text: &str) -> Result<(), ConvError>;
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

/// The message users see when mfa cannot work in secure mode.
pub const UNAVAILABLE_MESSAGE: &str = "second factor unavailable — contact your administrator";

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
        Flow::Done(Outcome::Unavailable {
            reason: e.to_string(),
            fail_mode: FailMode::Secure,
        })
    }
}

/// Runs one authentication. `fallback` is the fail mode used when the database cannot be
/// read (the setting lives in it).
pub fn authenticate(
    config: &Config,
    req: &Request,
    conv: &mut dyn Conversation,
    fallback: FailMode,
) -> Outcome {
    let mut store = match Store::open(&config.paths.database) {
        Ok(s) => s,
        Err(e) => return unavailable(conv, fallback, format!("cannot open the database: {e}")),
    };
    let ip = parse_address(&req.rhost).ok();
    let now = crate::now();
    let facts = match q::facts(store.conn(), &req.user, &req.service, &req.rhost, ip) {
        Ok(f) => f,
        Err(e) => return unavailable(conv, fallback, format!("cannot read the rules: {e}")),
    };
    let fail_mode = facts.settings.fail_mode;
    let decision = policy::decide(&facts, now);
    let (outcome, method) = match decision {
        Decision::Ignore(b) => (Outcome::Ignore { reason: b.reason() }, String::new()),
        Decision::Deny(r) => {
            let _ = conv.error(&match r {
                policy::Refusal::LockedOut { .. } => {
                    "Second factor: too many failures; this account is locked for now.".to_string()
                }
                _ => "Second factor: access denied.".to_string(),
            });
            (Outcome::Deny { reason: r.reason() }, String::new())
        }
        Decision::Challenge(method) => {
            let flow = passcode_login(&mut store, config, req, &facts, conv);
            (finish(flow), method)
        }
        Decision::Enroll => (
            finish(enroll(&mut store, config, req, &facts, conv)),
            "enroll".to_string(),
        ),
    };
    let outcome = match outcome {
        Outcome::Unavailable { reason, .. } => unavailable(conv, fail_mode, reason),
        o => o,
    };
    log(&mut store, req, &facts, &outcome, &method);
    outcome
}

fn finish(flow: Result<Outcome, Flow>) -> Outcome {
    match flow {
        Ok(o) | Err(Flow::Done(o)) => o,
        Err(Flow::Conv) => Outcome::Deny {
            reason: "conversation aborted".into(),
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

/// Writes the auth-log row, honouring the log levels. A failure to log does not change the
/// outcome (syslog still has it).
fn log(store: &mut Store, req: &Request, facts: &Facts, outcome: &Outcome, method: &str) {
    let (name, reason, destination, rejected) = match outcome {
        Outcome::Success { destination, .. } => {
            ("success", String::new(), destination.clone(), false)
        }
        Outcome::Ignore { reason } => ("ignore", reason.clone(), String::new(), false),
        Outcome::Deny { reason } => ("deny", reason.clone(), String::new(), true),
        Outcome::Unavailable { reason, fail_mode } => (
            if *fail_mode == FailMode::Secure {
                "unavailable-deny"
            } else {
                "unavailable-ignore"
            },
            reason.clone(),
            String::new(),
            true,
        ),
    };
    if !policy::should_log(facts, rejected) {
        return;
    }
    let ev = AuthEvent {
        user: req.user.clone(),
        service: req.service.clone(),
        address: req.rhost.clone(),
        tty: req.tty.clone(),
        outcome: name.into(),
        method: method.into(),
        destination,
        reason,
        ..Default::default()
    };
    let _ = store.write(|tx| record_auth(tx, &ev));
}

/// The sender must be alive and the spool usable before a passcode is promised.
fn check_delivery(config: &Config) -> Result<(), Flow> {
    if let Err(e) = spool::check(&config.paths.spool) {
        return Err(Flow::Done(Outcome::Unavailable {
            reason: format!("spool unusable: {e}"),
            fail_mode: FailMode::Secure,
        }));
    }
    match spool::heartbeat_age(&config.paths.runtime, std::time::SystemTime::now()) {
        Some(age) if age <= HEARTBEAT_STALE_SECS => Ok(()),
        Some(age) => Err(Flow::Done(Outcome::Unavailable {
            reason: format!("sender heartbeat is {age} s old"),
            fail_mode: FailMode::Secure,
        })),
        None => Err(Flow::Done(Outcome::Unavailable {
            reason: "sender is not running (no heartbeat)".into(),
            fail_mode: FailMode::Secure,
        })),
    }
}

/// Where a passcode goes.
struct Destination {
    channel: Channel,
    to: String,
    masked: String,
}

fn passcode_login(
    store: &mut Store,
    config: &Config,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
) -> Result<Outcome, Flow> {
    check_delivery(config)?;
    let contacts = people::contacts(store.conn(), &req.user)?;
    let dest = match contacts.len() {
        0 => {
            return Ok(Outcome::Deny {
                reason: "no contact".into(),
            });
        }
        1 => &contacts[0],
        n => {
            let mut list = String::from("Where should the passcode go?");
            for c in &contacts {
                list.push_str(&format!("\n  {}) {}", c.seq, c.masked));
            }
            conv.info(&list)?;
            let mut chosen = None;
            for _ in 0..MENU_TRIES {
                let answer = conv.prompt(&format!("Choice [{}]: ", seqs(&contacts)), true)?;
                let text = String::from_utf8_lossy(&answer);
                let text = text.trim();
                if text.is_empty() && n > 0 {
                    chosen = contacts.first();
                    break;
                }
                if let Some(c) = text
                    .parse::<i64>()
                    .ok()
                    .and_then(|s| contacts.iter().find(|c| c.seq == s))
                {
                    chosen = Some(c);
                    break;
                }
                conv.error("Please answer with one of the numbers shown.")?;
            }
            match chosen {
                Some(c) => c,
                None => {
                    return Ok(Outcome::Deny {
                        reason: "no contact chosen".into(),
                    });
                }
            }
        }
    };
    let dest = Destination {
        channel: crate::contact::Channel::parse(&dest.channel)?,
        to: dest.to.clone(),
        masked: dest.masked.clone(),
    };
    let result = challenge(store, config, req, facts, conv, &dest, "login")?;
    if let Outcome::Success { .. } = result {
        let (user, service, addr) = (req.user.clone(), req.service.clone(), req.rhost.clone());
        store.write(|tx| q::record_success(tx, &user, &service, &addr, crate::now()))?;
    }
    Ok(result)
}

fn seqs(contacts: &[people::ContactRow]) -> String {
    contacts
        .iter()
        .map(|c| c.seq.to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Issues a code to `dest` and asks for it until it is typed, the attempts run out, it
/// expires or the user is locked out. An empty answer sends a new code (at most twice).
fn challenge(
    store: &mut Store,
    config: &Config,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    dest: &Destination,
    purpose: &str,
) -> Result<Outcome, Flow> {
    let s = &facts.settings;
    let key = store.write(|tx| q::passcode_key(tx))?;
    let mut resends = 0;
    let mut current = issue(store, config, req, facts, dest, purpose, &key, resends)?;
    loop {
        let c = current.clone();
        let prompt = format!("Passcode {}- (sent to {}): ", c.prefix, dest.masked);
        let answer = conv.prompt(&prompt, false)?;
        let now = crate::now();
        let Some(stored) = q::challenge(store.conn(), &c.id)? else {
            return Ok(Outcome::Deny {
                reason: "challenge vanished".into(),
            });
        };
        if answer.iter().all(u8::is_ascii_whitespace) && resends < MAX_RESENDS {
            resends += 1;
            store.write(|tx| q::delete_challenge(tx, &c.id))?;
            current = issue(store, config, req, facts, dest, purpose, &key, resends)?;
            conv.info(&format!("A new passcode was sent to {}.", dest.masked))?;
            continue;
        }
        if now > stored.expires {
            store.write(|tx| q::delete_challenge(tx, &c.id))?;
            conv.error("That passcode has expired. Log in again for a new one.")?;
            return Ok(Outcome::Deny {
                reason: "passcode expired".into(),
            });
        }
        let good = passcode::normalize_answer(&answer, stored.prefix, s.code_length)
            .is_some_and(|code| passcode::verify(&key, &stored.id, &code, &stored.code_hash));
        if good {
            store.write(|tx| q::delete_challenge(tx, &c.id))?;
            return Ok(Outcome::Success {
                method: "passcode".into(),
                destination: dest.masked.clone(),
            });
        }
        let user = req.user.clone();
        let (left, locked) = store.write(|tx| {
            let left = q::spend_attempt(tx, &c.id)?;
            let locked = q::record_failure(tx, &user, now, s)?;
            if left == 0 || locked.is_some() {
                q::delete_challenge(tx, &c.id)?;
            }
            Ok((left, locked))
        })?;
        if locked.is_some() {
            conv.error("Wrong passcode. Too many failures: this account is locked for now.")?;
            return Ok(Outcome::Deny {
                reason: "wrong passcode; locked out".into(),
            });
        }
        if left == 0 {
            conv.error("Wrong passcode. No attempts left.")?;
            return Ok(Outcome::Deny {
                reason: "wrong passcode; attempts used up".into(),
            });
        }
        conv.error(&format!(
            "Wrong passcode. {left} attempt{} left.",
            if left == 1 { "" } else { "s" }
        ))?;
    }
}

/// Creates a challenge, stores its hash and queues the message, in one transaction.
#[allow(clippy::too_many_arguments)]
fn issue(
    store: &mut Store,
    config: &Config,
    req: &Request,
    facts: &Facts,
    dest: &Destination,
    purpose: &str,
    key: &[u8],
    resends: i64,
) -> Result<q::Challenge, Flow> {
    let s = &facts.settings;
    let (prefix, code) = passcode::generate(s.code_length)?;
    let id = passcode::random_id()?;
    let now = crate::now();
    let expires = now + i64::from(s.code_ttl);
    let ch = q::Challenge {
        id: id.clone(),
        user: req.user.clone(),
        service: req.service.clone(),
        address: req.rhost.clone(),
        purpose: purpose.into(),
        prefix,
        code_hash: passcode::hash(key, &id, &code)?,
        destination: dest.masked.clone(),
        created: now,
        expires,
        attempts_left: i64::from(s.attempts),
        resends,
    };
    let host = crate::settings::host_name();
    let spool_dir = config.paths.spool.clone();
    let result = store.write(|tx: &Tx<'_>| {
        q::insert_challenge(tx, &ch)?;
        let templates = rules::templates(tx)?;
        let text = |name: &str| {
            templates
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.text.clone())
                .unwrap_or_default()
        };
        let prefix_text = prefix.to_string();
        let values = Values {
            prefix: &prefix_text,
            code: &code,
            user: &req.user,
            host: &host,
            minutes: s.code_ttl.div_ceil(60),
        };
        let msg = Message {
            id: format!("{now}-{id}"),
            created: now,
            expires,
            channel: dest.channel.clone(),
            to: dest.to.clone(),
            subject: template::render(&text("passcode-subject"), &values),
            body: template::render(&text("passcode-body"), &values),
            user: req.user.clone(),
            kind: Kind::Passcode,
            masked_to: dest.masked.clone(),
        };
        spool::enqueue(&spool_dir, &msg)?;
        Ok(())
    });
    match result {
        Ok(()) => Ok(ch),
        Err(e @ Error::Io { .. }) => Err(Flow::Done(Outcome::Unavailable {
            reason: format!("cannot queue the passcode: {e}"),
            fail_mode: FailMode::Secure,
        })),
        Err(e) => Err(e.into()),
    }
}

/// Self-enrollment: ask for an email address or a phone number, send a passcode there, and
/// save the contact only once that passcode is typed back.
fn enroll(
    store: &mut Store,
    config: &Config,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
) -> Result<Outcome, Flow> {
    check_delivery(config)?;
    conv.info("Your account has no second factor yet. Register where passcodes should be sent.")?;
    let mut contact = None;
    for _ in 0..MENU_TRIES {
        let answer = conv.prompt("Email address or mobile number: ", true)?;
        let text = String::from_utf8_lossy(&answer).trim().to_string();
        let parsed = if text.contains('@') {
            Contact::email(&text)
        } else if text.starts_with('+') {
            Contact::sms(&text)
        } else {
            match crate::contact::phone(&text) {
                Ok(_) => match choose_carrier(store, conv)? {
                    Some(carrier) => Contact::phone(&text, &carrier),
                    None => continue,
                },
                Err(e) => Err(e),
            }
        };
        match parsed {
            Ok(c) => {
                contact = Some(c);
                break;
            }
            Err(e) => conv.error(&format!("{e}"))?,
        }
    }
    let Some(contact) = contact else {
        return Ok(Outcome::Deny {
            reason: "enrollment: no valid contact given".into(),
        });
    };
    let suffix = match &contact.carrier {
        Some(c) => people::carriers(store.conn())?
            .into_iter()
            .find(|k| &k.name == c)
            .map(|k| k.suffix),
        None => None,
    };
    let to = match &suffix {
        Some(s) => format!("{}@{s}", contact.address),
        None => contact.address.clone(),
    };
    let dest = Destination {
        channel: contact.channel.clone(),
        to,
        masked: contact.masked(),
    };
    let result = challenge(store, config, req, facts, conv, &dest, "enroll")?;
    if let Outcome::Success { .. } = result {
        let (user, service, addr) = (req.user.clone(), req.service.clone(), req.rhost.clone());
        let detail = format!("{user}: {} {}", contact.channel.as_str(), contact.masked());
        store.change("pam_mfa (self-enrollment)", "contact add", |tx| {
            let now = crate::now();
            if people::require_user(tx, &user).is_err() {
                people::add_user(tx, &user, "", now)?;
            }
            people::add_contact(tx, &user, &contact, "self-enrolled", None, now)?;
            q::record_success(tx, &user, &service, &addr, now)?;
            Ok(((), detail))
        })?;
        conv.info("Your contact is registered.")?;
        return Ok(Outcome::Success {
            method: "enroll".into(),
            destination: dest.masked,
        });
    }
    Ok(result)
}

fn choose_carrier(store: &Store, conv: &mut dyn Conversation) -> Result<Option<String>, Flow> {
    let carriers = people::carriers(store.conn())?;
    let mut list = String::from("Your mobile carrier:");
    for (i, c) in carriers.iter().enumerate() {
        list.push_str(&format!("\n  {}) {}", i + 1, c.name));
    }
    conv.info(&list)?;
    let answer = conv.prompt(&format!("Carrier [1-{}]: ", carriers.len()), true)?;
    let text = String::from_utf8_lossy(&answer);
    match text
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| carriers.get(i))
    {
        Some(c) => Ok(Some(c.name.clone())),
        None => {
            conv.error("Please answer with one of the numbers shown.")?;
            Ok(None)
        }
    }
}
