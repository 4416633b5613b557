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
use crate::policy::{self, Decision, Facts};
use crate::settings::FailMode;
use crate::settings::Settings;
use crate::snapshot::Snapshot;
use crate::spool::{self, HEARTBEAT_STALE_SECS, Kind, Message};
use crate::state;
use crate::store::logs::AuthEvent;
use crate::store::{Store, auth as q, factors, people, rules};
use crate::template::{self, Values};
use crate::{Error, Result};

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
    let mut asking = Asking {
        conv,
        code_asked: false,
    };
    let conv = &mut asking;
    let ip = parse_address(&req.rhost).ok();
    let now = crate::now();
    let mut cx = Cx {
        config,
        snap: Snapshot::load(&config.paths.database),
        store: None,
        record: None,
    };
    let mut facts = match cx.facts(req, ip) {
        Ok(f) => f,
        Err(e) => return unavailable(conv, fallback, format!("cannot read the rules: {e}")),
    };
    // The user's login-state file: the repeat-window grant, and a lockout this file already
    // holds should storing it in the database have failed.
    let st = state::read_user(cx.db(), &req.user);
    facts.locked_until = facts.locked_until.max(st.failures.locked_until);
    facts.last_grant = grants::in_state(&st, &req.service, &req.rhost);
    let fail_mode = facts.settings.fail_mode;
    let decision = policy::decide(&facts, now);
    let (outcome, method) = match decision {
        Decision::Ignore(b) => (Outcome::Ignore { reason: b.reason() }, String::new()),
        Decision::Deny(r) => (
            refuse(conv, Outcome::Deny { reason: r.reason() }),
            String::new(),
        ),
        Decision::Challenge(method) => {
            let flow = second_factor(&mut cx, config, req, &facts, conv, &method);
            (finish(flow), method)
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
    log(config, req, &facts, &outcome, &method);
    // The inbox is moved into the database by mfa-admin; when nobody runs it for long, the
    // module does it itself now and then.
    if crate::authlog::pending(cx.db()) > crate::authlog::INGEST_AT
        && let Ok(store) = cx.store()
    {
        let _ = store.ingest_auth_log();
    }
    outcome
}

/// Where one authentication reads and writes: reads come from the policy snapshot when it
/// is there (two file reads), else from the database; the database is opened only for a
/// write (a lockout, a used backup code, a self-enrollment) or when there is no snapshot.
struct Cx<'a> {
    config: &'a Config,
    snap: Option<Snapshot>,
    store: Option<Store>,
    /// The user's record from the snapshot, read once.
    record: Option<crate::snapshot::UserRecord>,
}

impl Cx<'_> {
    fn db(&self) -> &std::path::Path {
        &self.config.paths.database
    }

    fn store(&mut self) -> Result<&mut Store> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.config.paths.database)?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::Database("the database is not open".into()))
    }

    fn facts(&mut self, req: &Request, ip: Option<std::net::IpAddr>) -> Result<Facts> {
        match &self.snap {
            Some(snap) => {
                self.record = snap.user(&req.user);
                Ok(snap.facts_for(self.record.as_ref(), &req.service, &req.user, ip))
            }
            None => q::facts(self.store()?.conn(), &req.user, &req.service, ip),
        }
    }

    fn contacts(&mut self, user: &str) -> Result<Vec<people::ContactRow>> {
        if self.snap.is_some() {
            return Ok(self
                .record
                .as_ref()
                .map(|r| r.contacts.clone())
                .unwrap_or_default());
        }
        people::contacts(self.store()?.conn(), user)
    }

    fn totp(&mut self, user: &str) -> Result<Option<crate::totp::Key>> {
        if self.snap.is_some() {
            return Ok(self.record.as_ref().and_then(|r| r.key.clone()));
        }
        factors::totp_of(self.store()?.conn(), user)
    }

    fn backup_count(&mut self, user: &str) -> Result<i64> {
        if self.snap.is_some() {
            let n = self.record.as_ref().map_or(0, |r| r.facts.backup_codes);
            return Ok(i64::try_from(n).unwrap_or(0));
        }
        factors::backup_count(self.store()?.conn(), user)
    }

    fn passcode_key(&mut self) -> Result<Vec<u8>> {
        if let Some(k) = self.snap.as_ref().and_then(Snapshot::passcode_key) {
            return Ok(k);
        }
        q::passcode_key(self.store()?.conn())
    }

    fn templates(&mut self) -> Result<Vec<rules::Template>> {
        if let Some(snap) = &self.snap {
            return Ok(snap.templates());
        }
        rules::templates(self.store()?.conn())
    }

    fn carriers(&mut self) -> Result<Vec<people::Carrier>> {
        if let Some(snap) = &self.snap {
            return Ok(snap.carriers());
        }
        people::carriers(self.store()?.conn())
    }
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

/// Records the repeat-window grant of a passed second factor. A grant that cannot be written
/// only costs the user a challenge next time.
fn grant(cx: &Cx<'_>, req: &Request) {
    let _ = grants::record(cx.db(), &req.user, &req.service, &req.rhost, crate::now());
}

/// A passed second factor: the failure count goes, a lockout that ran out leaves the
/// database (a database write only then), and the repeat window starts.
fn passed(cx: &mut Cx<'_>, req: &Request, facts: &Facts) -> Result<()> {
    state::clear_failures(cx.db(), &req.user)?;
    if facts.locked_until != 0 {
        let user = req.user.clone();
        cx.store()?
            .policy_write(false, |tx| Ok((q::record_success(tx, &user)?, true)))?;
    }
    grant(cx, req);
    Ok(())
}

/// Counts a failure; when it locks the user out, the lockout goes into the database (and so
/// into the policy snapshot). Returns the lock's end when this failure set it.
fn failure(cx: &mut Cx<'_>, user: &str, now: i64, s: &Settings) -> Result<Option<i64>> {
    let locked = state::record_failure(cx.db(), user, now, s)?;
    if let Some(until) = locked {
        let count = state::failures(cx.db(), user).count;
        cx.store()?.policy_write(false, |tx| {
            Ok((q::record_lockout(tx, user, count, now, until)?, true))
        })?;
    }
    Ok(locked)
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

/// Appends the auth-log row to the inbox ([`crate::authlog`]), honouring the log levels. A
/// failure to log does not change the outcome (syslog still has it).
fn log(config: &Config, req: &Request, facts: &Facts, outcome: &Outcome, method: &str) {
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
        // The factor actually used (totp, backup-code, passcode) when one was; else the
        // service's method.
        method: match outcome {
            Outcome::Success { method: used, .. } => used.clone(),
            _ => method.into(),
        },
        destination,
        reason,
        ..Default::default()
    };
    let _ = crate::authlog::append(&config.paths.database, &ev);
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

/// One way to prove the second factor, as the menu offers it.
enum Factor {
    /// A passcode to this contact.
    Contact(people::ContactRow),
    /// A code from the authenticator app (a backup code is accepted too).
    Authenticator,
    /// A backup code.
    Backup,
}

impl Factor {
    fn label(&self) -> String {
        match self {
            Factor::Contact(c) => format!("passcode to {}", c.masked),
            Factor::Authenticator => "code from your authenticator app".into(),
            Factor::Backup => "backup code".into(),
        }
    }
}

/// Challenges with the service's method: the factors the method allows and the user has;
/// a menu when there are several.
fn second_factor(
    cx: &mut Cx<'_>,
    config: &Config,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    method: &str,
) -> Result<Outcome, Flow> {
    let mut options = Vec::new();
    if method == "totp" || method == "any" {
        let has_key = cx.totp(&req.user)?.is_some();
        let backups = cx.backup_count(&req.user)? > 0;
        if has_key {
            options.push(Factor::Authenticator);
        }
        if backups && (method == "any" || !has_key) {
            options.push(Factor::Backup);
        }
    }
    if method == "passcode" || method == "any" {
        let contacts = cx.contacts(&req.user)?;
        options.extend(contacts.into_iter().map(Factor::Contact));
    }
    let chosen = match options.len() {
        0 => {
            return Ok(Outcome::Deny {
                reason: "no usable factor".into(),
            });
        }
        1 => options.swap_remove(0),
        n => {
            let all_contacts = options.iter().all(|o| matches!(o, Factor::Contact(_)));
            let mut list = String::from(if all_contacts {
                "Where should the passcode go?"
            } else {
                "How will you prove it is you?"
            });
            // Contacts by masked form and label, told apart when they still look alike.
            let contacts: Vec<people::ContactRow> = options
                .iter()
                .filter_map(|o| match o {
                    Factor::Contact(c) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            let mut names = people::menu_names(&contacts).into_iter();
            for (i, o) in options.iter().enumerate() {
                let label = match o {
                    Factor::Contact(_) if all_contacts => names.next().unwrap_or_default(),
                    Factor::Contact(_) => {
                        format!("passcode to {}", names.next().unwrap_or_default())
                    }
                    o => o.label(),
                };
                list.push_str(&format!("\n  {}) {label}", i + 1));
            }
            conv.show(&list)?;
            let mut chosen = None;
            for _ in 0..MENU_TRIES {
                let answer = conv.prompt(&format!("Choice [1-{n}]: "), true)?;
                let text = String::from_utf8_lossy(&answer);
                let text = text.trim();
                let pick = if text.is_empty() {
                    Some(1)
                } else {
                    text.parse::<usize>().ok()
                };
                if let Some(i) = pick.filter(|i| (1..=n).contains(i)) {
                    chosen = Some(i - 1);
                    break;
                }
                conv.error("Please answer with one of the numbers shown.")?;
            }
            match chosen {
                Some(i) => options.swap_remove(i),
                None => {
                    return Ok(Outcome::Deny {
                        reason: "no factor chosen".into(),
                    });
                }
            }
        }
    };
    let result = match chosen {
        Factor::Contact(c) => {
            check_delivery(config)?;
            let dest = Destination {
                channel: Channel::parse(&c.channel)?,
                to: c.to.clone(),
                masked: c.masked.clone(),
            };
            challenge(cx, config, req, facts, conv, &dest, "login")?
        }
        Factor::Authenticator => code_login(cx, req, facts, conv, "Authenticator code: ")?,
        Factor::Backup => code_login(cx, req, facts, conv, "Backup code: ")?,
    };
    if let Outcome::Success { .. } = result {
        passed(cx, req, facts)?;
    }
    Ok(result)
}

/// Asks for an authenticator code or a backup code, `attempts` times at most. A TOTP step is
/// accepted once (and never an earlier one); a backup code once. Failures count toward the
/// lockout.
fn code_login(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    prompt: &str,
) -> Result<Outcome, Flow> {
    let s = &facts.settings;
    let user = req.user.clone();
    let db = &cx.db().to_path_buf();
    let key = cx.totp(&user)?;
    let hash_key = cx.passcode_key()?;
    for attempt in 1..=s.attempts {
        let answer = conv.prompt_code(prompt, false)?;
        let now = crate::now();
        let text: String = match std::str::from_utf8(&answer) {
            Ok(t) if t.len() <= 64 => t
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
            _ => String::new(),
        };
        let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let step = match (&key, digits_only) {
            (Some(k), true) => k.matching_step(&text, u64::try_from(now).unwrap_or(0), s.totp_skew),
            _ => None,
        };
        // Another login of this user may have locked it out while this one waited.
        let locked_now = state::failures(db, &user).locked_until > now;
        let (ok, replay) = if locked_now {
            (Some("locked"), false)
        } else if let Some(step) = step {
            // A compare-and-set under the user's lock (crate::state): one login per step.
            if state::accept_step(db, &user, step)? {
                (Some("totp"), false)
            } else {
                (None, true)
            }
        } else if digits_only && text.len() == crate::totp::BACKUP_DIGITS as usize {
            let h = crate::totp::backup_hash(&hash_key, &user, &text)?;
            // Used by deleting its row, a change the snapshot (which counts the codes left)
            // follows.
            let used = cx.store()?.policy_write(false, |tx| {
                let used = factors::use_backup_code(tx, &user, &h)?;
                Ok((used, used))
            })?;
            (used.then_some("backup-code"), false)
        } else {
            (None, false)
        };
        if ok == Some("locked") {
            conv.error("Too many failures: this account is locked for now.")?;
            return Ok(Outcome::Deny {
                reason: "locked out during the challenge".into(),
            });
        }
        if let Some(method) = ok {
            return Ok(Outcome::Success {
                method: method.into(),
                destination: String::new(),
            });
        }
        let locked = failure(cx, &user, now, s)?;
        let why = if replay {
            "That code was already used."
        } else {
            "Wrong code."
        };
        if locked.is_some() {
            conv.error(&format!(
                "{why} Too many failures: this account is locked for now."
            ))?;
            return Ok(Outcome::Deny {
                reason: format!("{}; locked out", why.trim_end_matches('.').to_lowercase()),
            });
        }
        let left = s.attempts - attempt;
        if left == 0 {
            conv.error(&format!("{why} No attempts left."))?;
            return Ok(Outcome::Deny {
                reason: if replay {
                    "code replayed; attempts used up".into()
                } else {
                    "wrong code; attempts used up".into()
                },
            });
        }
        conv.error(&format!(
            "{why} {left} attempt{} left.",
            if left == 1 { "" } else { "s" }
        ))?;
    }
    Ok(Outcome::Deny {
        reason: "wrong code; attempts used up".into(),
    })
}

/// Enrols an authenticator app at login: shows a new key and its QR code, and saves the key
/// only once the user typed a valid code from it.
fn enroll_totp(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
) -> Result<Outcome, Flow> {
    let key = crate::totp::Key::generate("sha1", 6)?;
    let issuer = facts.settings.totp_issuer();
    let uri = key.uri(&issuer, &req.user);
    conv.show(&format!(
        "Set up your authenticator app: scan this QR code, or enter the key by hand.\n\n{}\nIssuer: {issuer}\nAccount: {}\nKey: {}",
        crate::totp::qr_text(&uri)?,
        req.user,
        key.base32()
    ))?;
    for attempt in 1..=facts.settings.attempts {
        let answer = conv.prompt_code("Code from the app: ", true)?;
        let text = String::from_utf8_lossy(&answer).trim().to_string();
        let now = u64::try_from(crate::now()).unwrap_or(0);
        if let Some(step) = key.matching_step(&text, now, facts.settings.totp_skew) {
            let user = req.user.clone();
            cx.store()?
                .change("pam_mfa (self-enrollment)", "totp enroll", |tx| {
                    let t = crate::now();
                    if people::require_user(tx, &user).is_err() {
                        people::add_user(tx, &user, "", t)?;
                    }
                    factors::set_totp(tx, &user, &key, t)?;
                    q::record_success(tx, &user)?;
                    Ok((
                        (),
                        format!(
                            "{user}: authenticator key ({}, {} digits)",
                            key.algorithm, key.digits
                        ),
                    ))
                })?;
            // The enrolment code is used: it cannot log in again.
            state::clear_totp(cx.db(), &req.user)?;
            state::accept_step(cx.db(), &req.user, step)?;
            let _ = state::clear_failures(cx.db(), &req.user);
            grant(cx, req);
            conv.info("Your authenticator app is set up.")?;
            return Ok(Outcome::Success {
                method: "totp-enroll".into(),
                destination: String::new(),
            });
        }
        let left = facts.settings.attempts - attempt;
        conv.error(&format!(
            "That code does not match. {left} attempt{} left.",
            if left == 1 { "" } else { "s" }
        ))?;
    }
    Ok(Outcome::Deny {
        reason: "authenticator enrollment: no valid code".into(),
    })
}

/// Issues a code to `dest` and asks for it until it is typed, the attempts run out, it
/// expires or the user is locked out. An empty answer sends a new code (at most twice).
fn challenge(
    cx: &mut Cx<'_>,
    config: &Config,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    dest: &Destination,
    purpose: &str,
) -> Result<Outcome, Flow> {
    let s = &facts.settings;
    let db = &cx.db().to_path_buf();
    let key = cx.passcode_key()?;
    let mut resends = 0;
    let mut current = match issue(cx, config, req, facts, dest, purpose, &key, resends) {
        Ok(c) => c,
        Err(Flow::Done(Outcome::Unavailable { reason, fail_mode })) => {
            // Nothing was asked yet: the fail mode applies ("mfa cannot ask"); in secure
            // mode the user learns why the login stops.
            if s.fail_mode == FailMode::Secure {
                let _ = conv.error(NOT_SENT_MESSAGE);
            }
            return Err(Flow::Done(Outcome::Unavailable { reason, fail_mode }));
        }
        Err(e) => return Err(e),
    };
    // Attempts are counted here: a challenge belongs to the one login that issued it.
    let mut left = current.attempts_left;
    loop {
        let c = current.clone();
        let prompt = format!("Passcode {}- (sent to {}): ", c.prefix, dest.masked);
        let answer = conv.prompt_code(&prompt, false)?;
        let now = crate::now();
        let Some(stored) = state::challenge(db, &c.id)? else {
            return Ok(Outcome::Deny {
                reason: "challenge vanished".into(),
            });
        };
        let empty = answer.iter().all(u8::is_ascii_whitespace);
        // The sender gave up on this code (spool failed/): the user cannot know it. Say so,
        // without the server's text or the recipient; a typed guess still counts.
        if let Some(why) = spool::failed(&config.paths.spool, &message_id(&c)) {
            state::delete_challenge(db, &c.id)?;
            // The user was asked: the outcome is a denial whatever fails while counting.
            if !empty {
                let _ = failure(cx, &req.user, now, s);
            }
            conv.error(NOT_DELIVERED_MESSAGE)?;
            let why: String = why.chars().take(200).collect();
            return Ok(Outcome::Deny {
                reason: format!("passcode could not be delivered: {why}"),
            });
        }
        if empty && resends < MAX_RESENDS {
            resends += 1;
            state::delete_challenge(db, &c.id)?;
            // The user was already asked: a resend that cannot be queued is a denial, not
            // the fail mode.
            current = match issue(cx, config, req, facts, dest, purpose, &key, resends) {
                Ok(c) => c,
                Err(Flow::Done(Outcome::Unavailable { reason, .. })) => {
                    conv.error(NOT_SENT_MESSAGE)?;
                    return Ok(Outcome::Deny {
                        reason: format!("resend failed: {reason}"),
                    });
                }
                Err(e) => return Err(e),
            };
            left = current.attempts_left;
            conv.info(&format!("A new passcode was sent to {}.", dest.masked))?;
            continue;
        }
        if state::failures(db, &req.user).locked_until > now {
            state::delete_challenge(db, &c.id)?;
            conv.error("Too many failures: this account is locked for now.")?;
            return Ok(Outcome::Deny {
                reason: "locked out during the challenge".into(),
            });
        }
        if now > stored.expires {
            state::delete_challenge(db, &c.id)?;
            conv.error("That passcode has expired. Log in again for a new one.")?;
            return Ok(Outcome::Deny {
                reason: "passcode expired".into(),
            });
        }
        let good = passcode::normalize_answer(&answer, stored.prefix, s.code_length)
            .is_some_and(|code| passcode::verify(&key, &stored.id, &code, &stored.code_hash));
        if good {
            state::delete_challenge(db, &c.id)?;
            return Ok(Outcome::Success {
                method: "passcode".into(),
                destination: dest.masked.clone(),
            });
        }
        left = (left - 1).max(0);
        let locked = failure(cx, &req.user, now, s)?;
        if left == 0 || locked.is_some() {
            state::delete_challenge(db, &c.id)?;
        }
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

/// Told when a passcode could not be queued (the login then stops, or, after a resend, is
/// denied).
const NOT_SENT_MESSAGE: &str = "Second factor: the passcode could not be sent.";
/// Told when the sender gave up on the passcode's message (it is in the spool's failed/).
const NOT_DELIVERED_MESSAGE: &str =
    "The passcode could not be delivered; contact your administrator.";

/// The spool id of a challenge's message (`CREATED-ID`).
fn message_id(ch: &state::Challenge) -> String {
    format!("{}-{}", ch.created, ch.id)
}

/// Creates a challenge, stores its hash and queues the message, in one transaction.
#[allow(clippy::too_many_arguments)]
fn issue(
    cx: &mut Cx<'_>,
    config: &Config,
    req: &Request,
    facts: &Facts,
    dest: &Destination,
    purpose: &str,
    key: &[u8],
    resends: i64,
) -> Result<state::Challenge, Flow> {
    let s = &facts.settings;
    let (prefix, code) = passcode::generate(s.code_length)?;
    let id = passcode::random_id()?;
    let now = crate::now();
    let expires = now + i64::from(s.code_ttl);
    let ch = state::Challenge {
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
    let db = cx.db().to_path_buf();
    state::put_challenge(&db, &ch)?;
    let result = (|| -> Result<()> {
        let templates = cx.templates()?;
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
            id: message_id(&ch),
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
    })();
    if result.is_err() {
        // No challenge without a queued message.
        let _ = state::delete_challenge(&db, &ch.id);
    }
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
    cx: &mut Cx<'_>,
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
                Ok(_) => match choose_carrier(cx, conv)? {
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
        Some(c) => cx
            .carriers()?
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
    let result = challenge(cx, config, req, facts, conv, &dest, "enroll")?;
    if let Outcome::Success { .. } = result {
        let user = req.user.clone();
        let detail = format!("{user}: {} {}", contact.channel.as_str(), contact.masked());
        cx.store()?
            .change("pam_mfa (self-enrollment)", "contact add", |tx| {
                let now = crate::now();
                if people::require_user(tx, &user).is_err() {
                    people::add_user(tx, &user, "", now)?;
                }
                people::add_contact(tx, &user, &contact, "self-enrolled", None, now)?;
                q::record_success(tx, &user)?;
                Ok(((), detail))
            })?;
        let _ = state::clear_failures(cx.db(), &req.user);
        grant(cx, req);
        conv.info("Your contact is registered.")?;
        return Ok(Outcome::Success {
            method: "enroll".into(),
            destination: dest.masked,
        });
    }
    Ok(result)
}

fn choose_carrier(cx: &mut Cx<'_>, conv: &mut dyn Conversation) -> Result<Option<String>, Flow> {
    let carriers = cx.carriers()?;
    let mut list = String::from("Your mobile carrier:");
    for (i, c) in carriers.iter().enumerate() {
        list.push_str(&format!("\n  {}) {}", i + 1, c.name));
    }
    conv.show(&list)?;
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
