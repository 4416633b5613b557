//! The Duo factor: Duo Push, a phone call, SMS passcodes or a Duo passcode, asked of Duo's
//! Auth API by mfa-sender, the broker ([`crate::duo`]): the module never opens a network
//! connection. Duo's `preauth` drives the decision (`auth`: the user's devices become menu
//! entries, or the first push-capable one is pushed at once with `[duo] autopush`; `allow`:
//! not required, PAM_IGNORE; `deny`: denied; `enroll`: the enrollment link shown, and sent
//! to the user's first contact through the spool).
//!
//! Every wait is bounded by `[duo] timeout` and the broker's keepalives: a sender that dies
//! while a push is pending ends the login at once under the fail mode. A push denied, a
//! fraud report or no answer counts toward the lockout like a wrong code, so whoever knows a
//! password cannot push-bomb the user for long; a Duo passcode typed is a code asked for: a
//! wrong one, or any failure after it, is a denial, never the fail mode.

use std::time::{Duration, Instant};

use super::*;
use crate::duo::{self as broker, BrokerError, ErrorKind, Reply};

/// The most devices of a user the menu lists.
const MAX_DEVICES: usize = 4;
/// The longest Duo text (a device's name, a status message) shown.
const MAX_SHOWN: usize = 120;
/// The longest Duo passcode accepted at the prompt (a YubiKey OTP is 44 characters).
const MAX_PASSCODE: usize = 64;
/// The longest enrollment link shown or sent.
const MAX_URL: usize = 512;
/// Beyond `[duo] timeout`: the broker's own HTTP exchanges around the wait.
const SLACK: Duration = Duration::from_secs(10);

/// What Duo's preauth leaves to the menu.
pub(super) enum Offer {
    /// The user's Duo entries (none: Duo is not offered, other factors remain).
    Entries(Vec<Entry>),
    /// Decided by Duo before any challenge.
    Done(Outcome),
}

/// One Duo entry of the menu.
pub(super) struct Entry {
    /// The Duo user name.
    username: String,
    factor: broker::Factor,
    /// The device's id and name (none for a passcode).
    device: Option<(String, String)>,
}

/// Asks Duo (through the broker) whether and how the user authenticates. `only`: the
/// service's method is `duo` (else `any`, where Duo is one factor among the user's others,
/// and a Duo that cannot be asked or does not know the user leaves those); `others`: the user
/// has other factors to offer.
pub(super) fn offer(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    only: bool,
    others: bool,
) -> Result<Offer, Flow> {
    let Some(duo) = cx.config.duo.as_ref() else {
        if only {
            return Err(unavailable(
                "method duo, but mfa.toml has no [duo] section".into(),
            ));
        }
        return Ok(Offer::Entries(Vec::new()));
    };
    let autopush = duo.autopush;
    let username = cx.duo_user(&req.user)?.unwrap_or_else(|| req.user.clone());
    let ask = broker::Request::Preauth {
        username: username.clone(),
        ipaddr: ipaddr(req),
        hostname: crate::settings::host_name(),
    };
    let pre = match ask_broker(cx.config, &ask, &mut |_| true) {
        Ok(Reply::Preauth(p)) => p,
        Ok(_) => {
            return Err(unavailable(
                "Duo preauth: the broker answered out of turn".into(),
            ));
        }
        // `any`: the user's other factors still work without Duo.
        Err(_) if !only && others => return Ok(Offer::Entries(Vec::new())),
        // The broker is full (whoever holds MAX_PENDING logins waiting can make it so) or
        // refused the request as malformed: this login's doing, never Duo being down.
        Err(BrokerError::Duo(kind @ (ErrorKind::Busy | ErrorKind::Forbidden), m)) => {
            return Ok(Offer::Done(refused_locally(conv, kind, &m)));
        }
        Err(BrokerError::Duo(ErrorKind::Refused, m)) => {
            let _ = conv.error("Second factor: Duo refused this login.");
            return Ok(Offer::Done(Outcome::Deny {
                reason: format!("Duo refused preauth: {m}"),
            }));
        }
        Err(e) => return Err(unavailable(format!("Duo preauth: {e}"))),
    };
    let msg = shown(&pre.status_msg);
    match pre.result.as_str() {
        "auth" => {
            let entries = entries(&username, &pre.devices, only && autopush);
            Ok(Offer::Entries(entries))
        }
        // Duo's policy lets this user through without a second factor: not this module's
        // business (PAM_IGNORE, never PAM_SUCCESS). Under `any`, Duo is simply not offered.
        "allow" if only => Ok(Offer::Done(Outcome::Ignore {
            reason: format!("Duo preauth: allow ({msg})"),
        })),
        // An administrator's decision in Duo is not bypassed by picking another factor.
        "deny" => {
            let _ = conv.error(&format!("Second factor: Duo denied this login. {msg}"));
            Ok(Offer::Done(Outcome::Deny {
                reason: format!("Duo preauth: deny ({msg})"),
            }))
        }
        "enroll" if only => Ok(Offer::Done(enroll(cx, req, facts, conv, &pre, &msg))),
        "allow" | "enroll" => Ok(Offer::Entries(Vec::new())),
        other => Err(unavailable(format!(
            "Duo preauth: unknown result {:?}",
            shown(other)
        ))),
    }
}

/// The user must enrol with Duo first: the link is shown and sent to their first contact
/// (when the sender can take it), and this login is denied.
fn enroll(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    pre: &broker::Preauth,
    msg: &str,
) -> Outcome {
    // Only an https link, shown whole (Duo's portal links run to about 100 characters).
    let url = pre
        .enroll_portal_url
        .as_deref()
        .filter(|u| u.starts_with("https://") && u.len() <= MAX_URL)
        .map(|u| shown_up_to(u, MAX_URL))
        .unwrap_or_default();
    if url.is_empty() {
        let _ = conv.error(&format!("Second factor: enrol with Duo first. {msg}"));
    } else {
        let _ = conv.show(&format!(
            "Second factor: enrol with Duo first, then log in again:\n  {url}"
        ));
    }
    let sent = if url.is_empty() {
        String::new()
    } else {
        match send_link(cx, req, facts, &url) {
            Some(masked) => {
                let _ = conv.info(&format!("The link was also sent to {masked}."));
                format!("; link sent to {masked}")
            }
            None => String::new(),
        }
    };
    Outcome::Deny {
        reason: format!("Duo enrollment required ({msg}){sent}"),
    }
}

/// Method `duo` on a one-password service (FTP, a database), after the password was
/// verified: the Duo passcode the user put after the password (`PASSWORD,CODE`) is checked
/// once; without one, the user's first push-capable device gets a push and the login waits
/// for the answer (as duo_unix's autopush does for clients that cannot be prompted).
pub(in crate::auth) fn one_field(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    code: Option<&[u8]>,
) -> Result<Outcome, Flow> {
    let entries = match offer(cx, req, facts, conv, true, false)? {
        Offer::Done(outcome) => return Ok(outcome),
        Offer::Entries(entries) => entries,
    };
    if let Some(code) = code {
        return match entries
            .iter()
            .find(|e| e.factor == broker::Factor::Passcode)
        {
            Some(e) => e.check_passcode(cx, req, facts, conv, code),
            None => Ok(Outcome::Deny {
                reason: "Duo offers no passcode for this user".into(),
            }),
        };
    }
    match entries.iter().find(|e| e.factor == broker::Factor::Push) {
        Some(e) => e.wait(cx, req, facts, conv),
        None => Ok(Outcome::Deny {
            reason: "one-password service: no Duo push device; put a Duo passcode after the \
                     password (PASSWORD,CODE)"
                .into(),
        }),
    }
}

/// Sends the Duo enrollment link to the user's first contact through the spool, when the
/// sender is up and the send limits allow (the link counts like a passcode: whoever knows the
/// password cannot flood the user with links); the masked contact it went to.
fn send_link(cx: &mut Cx<'_>, req: &Request, facts: &Facts, url: &str) -> Option<String> {
    let config = cx.config;
    let contact = cx.contacts(&req.user).ok()?.into_iter().next()?;
    check_delivery(config).ok()?;
    let key = cx.passcode_key().ok()?;
    let dest_key = state::sends::destination_key(&key, &contact.to).ok()?;
    let now = crate::now();
    let limited =
        state::sends::reserve_notice(cx.db(), &req.user, &dest_key, &facts.settings, now).ok()?;
    if limited.is_some() {
        return None;
    }
    let templates = cx.templates().ok()?;
    let msg = crate::template::enrollment_message(
        &templates,
        &req.user,
        &crate::settings::host_name(),
        url,
        Channel::parse(&contact.channel).ok()?,
        &contact.to,
        &contact.masked,
        now,
    )
    .ok()?;
    spool::enqueue(&config.paths.spool, &msg).ok()?;
    cx.sent += 1;
    Some(contact.masked)
}

/// The menu entries of the user's devices: push, phone call and SMS where a device can; a
/// Duo passcode always (from Duo Mobile, a hardware token or an SMS). With `autopush`, the
/// first push-capable device alone.
fn entries(username: &str, devices: &[broker::Device], autopush: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for d in devices.iter().take(MAX_DEVICES) {
        let name = shown(if d.display_name.is_empty() {
            &d.device
        } else {
            &d.display_name
        });
        for (cap, factor) in [
            ("push", broker::Factor::Push),
            ("phone", broker::Factor::Phone),
            ("sms", broker::Factor::Sms),
        ] {
            if d.capabilities.iter().any(|c| c == cap) {
                let entry = Entry {
                    username: username.to_string(),
                    factor,
                    device: Some((d.device.clone(), name.clone())),
                };
                if autopush && factor == broker::Factor::Push {
                    return vec![entry];
                }
                out.push(entry);
            }
        }
    }
    out.push(Entry {
        username: username.to_string(),
        factor: broker::Factor::Passcode,
        device: None,
    });
    out
}

impl Factor for Entry {
    fn label(&self) -> String {
        let name = self.device.as_ref().map_or("", |(_, n)| n.as_str());
        match self.factor {
            broker::Factor::Push => format!("Duo Push to {name}"),
            broker::Factor::Phone => format!("Phone call to {name}"),
            broker::Factor::Sms => format!("SMS passcodes to {name}"),
            _ => "Duo passcode (Duo Mobile, a token or an SMS)".into(),
        }
    }

    fn challenge(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        match self.factor {
            broker::Factor::Push | broker::Factor::Phone => self.wait(cx, req, facts, conv),
            broker::Factor::Sms => {
                // Duo sends a batch of passcodes and answers deny/`sent`; the user types one.
                if let Some(limited) = self.reserve(cx, req, facts, conv)? {
                    return Ok(limited);
                }
                let r = self.ask(cx, req, conv, None)?;
                let name = self.device.as_ref().map_or("", |(_, n)| n.as_str());
                if r.status != "sent" && r.result != "allow" {
                    let _ = conv.error("Second factor: Duo could not send SMS passcodes.");
                    return Ok(Outcome::Deny {
                        reason: format!("Duo sms {}: {}", shown(&r.status), shown(&r.status_msg)),
                    });
                }
                conv.info(&format!("SMS passcodes were sent to {name}."))?;
                self.passcode(cx, req, facts, conv)
            }
            _ => self.passcode(cx, req, facts, conv),
        }
    }

    fn takes_code_at_menu(&self) -> bool {
        self.factor == broker::Factor::Passcode
    }

    fn verify(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
        code: &[u8],
    ) -> Result<Outcome, Flow> {
        let outcome = self.check_passcode(cx, req, facts, conv, code)?;
        if matches!(&outcome, Outcome::Deny { reason } if !reason.contains("locked out")) {
            conv.error("Wrong passcode.")?;
        }
        Ok(outcome)
    }
}

impl Entry {
    /// The `auth` request of this entry.
    fn request(&self, req: &Request, passcode: Option<String>) -> broker::Request {
        let host = crate::settings::host_name();
        // Within the broker's bounds (1,024 bytes, no controls): PAM_RHOST is the
        // application's choice (an FTP client's, sshd's reverse lookup).
        let mut pushinfo = vec![("Service".to_string(), shown_up_to(&req.service, 255))];
        if !req.rhost.is_empty() {
            pushinfo.push(("From".into(), shown_up_to(&req.rhost, 255)));
        }
        broker::Request::Auth {
            username: self.username.clone(),
            factor: self.factor,
            device: self.device.as_ref().map(|(id, _)| id.clone()),
            passcode,
            ipaddr: ipaddr(req),
            hostname: host,
            pushinfo,
        }
    }

    /// The factor's name in the auth log: `duo-push`, `duo-phone`, `duo-sms`, `duo-passcode`.
    fn name(&self) -> String {
        format!("duo-{}", self.factor.name())
    }

    /// Sends this entry's `auth` request (with the passcode typed, if any) and waits for
    /// Duo's answer; the login's log row names this factor and device from now on.
    fn ask(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        conv: &mut dyn Conversation,
        passcode: Option<String>,
    ) -> Result<broker::AuthResult, Flow> {
        cx.tried = Tried {
            method: self.name(),
            destination: self
                .device
                .as_ref()
                .map(|(_, n)| n.clone())
                .unwrap_or_default(),
            txid: String::new(),
        };
        auth(cx, conv, self.request(req, passcode))
    }

    /// A push or a phone call: sent, then the answer awaited while Duo's progress is shown.
    fn wait(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        let name = self.device.as_ref().map_or("", |(_, n)| n.as_str());
        let what = if self.factor == broker::Factor::Push {
            format!("Duo Push sent to {name}; approve it to log in…")
        } else {
            format!("Calling {name}…")
        };
        if let Some(limited) = self.reserve(cx, req, facts, conv)? {
            return Ok(limited);
        }
        conv.info(&what)?;
        let r = self.ask(cx, req, conv, None)?;
        self.verdict(cx, req, facts, conv, &r)
    }

    /// Counts a push, a call or a batch of SMS passcodes like a sent passcode, under the
    /// user's lock and before it goes out: whoever knows the password cannot make the
    /// user's phone ring more often than the send limits allow, hanging up or logging in
    /// in parallel (the answers alone count toward the lockout, and only when they come).
    fn reserve(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Option<Outcome>, Flow> {
        // The destination: this Duo user's device (ids of different users' devices may
        // coincide in a test double; the user's own limit counts across devices).
        let device = self.device.as_ref().map_or("auto", |(id, _)| id.as_str());
        let key = cx.passcode_key()?;
        let dest_key =
            state::sends::destination_key(&key, &format!("duo:{}:{device}", self.username))?;
        let now = crate::now();
        // The user's and the device's limits; not the host's, which counts messages this host
        // sends (a bastion's many Duo logins would soon exhaust it for everyone).
        let limits = crate::settings::Settings {
            send_limit_host: 0,
            ..facts.settings.clone()
        };
        if let Some(l) = state::sends::reserve_notice(cx.db(), &req.user, &dest_key, &limits, now)?
        {
            let n = l.minutes();
            let _ = conv.error(&format!(
                "Too many Duo requests; try again in {n} minute{}.",
                if n == 1 { "" } else { "s" }
            ));
            return Ok(Some(Outcome::Deny { reason: l.reason() }));
        }
        // A hang-up before any code is typed is then logged `abandoned`.
        cx.sent += 1;
        Ok(None)
    }

    /// Asks for a Duo passcode, `attempts` times at most.
    fn passcode(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        let attempts = facts.settings.attempts.max(1);
        for attempt in 1..=attempts {
            let answer = conv.prompt_code("Duo passcode: ", false)?;
            let outcome = self.check_passcode(cx, req, facts, conv, &answer)?;
            let left = attempts - attempt;
            match outcome {
                Outcome::Deny { reason } if left > 0 && !reason.contains("locked out") => {
                    conv.error(&format!(
                        "Wrong passcode. {left} attempt{} left.",
                        if left == 1 { "" } else { "s" }
                    ))?;
                }
                o => return Ok(o),
            }
        }
        Ok(Outcome::Deny {
            reason: "wrong Duo passcode; attempts used up".into(),
        })
    }

    /// Checks one Duo passcode with Duo, counted like any code (a malformed one is wrong
    /// without asking Duo).
    fn check_passcode(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
        answer: &[u8],
    ) -> Result<Outcome, Flow> {
        let code: String = String::from_utf8_lossy(answer)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let well_formed = !code.is_empty()
            && code.len() <= MAX_PASSCODE
            && code.bytes().all(|b| b.is_ascii_alphanumeric());
        if !code.is_empty() {
            cx.typed = true;
        }
        let r = if well_formed {
            self.ask(cx, req, conv, Some(code))?
        } else {
            broker::AuthResult {
                result: "deny".into(),
                status: "deny".into(),
                status_msg: "not a passcode".into(),
                txid: String::new(),
            }
        };
        self.verdict(cx, req, facts, conv, &r)
    }

    /// Duo's answer, counted like a code under the user's lock: an allow passes only if the
    /// user is not locked out meanwhile; a denial (a push refused, a fraud report, no answer,
    /// a wrong passcode) counts toward the lockout.
    fn verdict(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
        r: &broker::AuthResult,
    ) -> Result<Outcome, Flow> {
        let method = self.name();
        cx.tried.txid = shown(&r.txid);
        let allow = r.result == "allow";
        let now = crate::now();
        let verdict = state::guess(cx.db(), &req.user, now, &facts.settings, |_| {
            Ok(allow.then_some(()))
        })?;
        let why = format!(
            "Duo {} {}: {}",
            self.factor.name(),
            shown(&r.status),
            shown(&r.status_msg)
        );
        match verdict {
            state::Guess::Right(()) => Ok(Outcome::Success {
                method,
                destination: self
                    .device
                    .as_ref()
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
            }),
            state::Guess::Locked => {
                conv.error("Too many failures: this account is locked for now.")?;
                Ok(Outcome::Deny {
                    reason: "locked out during the challenge".into(),
                })
            }
            state::Guess::Wrong { locked } => {
                let told = match (self.factor, r.status.as_str()) {
                    (broker::Factor::Passcode, _) => "Wrong passcode.",
                    (_, "timeout") => "Duo: no answer in time; login denied.",
                    (_, "fraud") => "Duo: the login was reported as fraudulent; denied.",
                    _ => "Duo: login denied.",
                };
                if let Some(until) = locked {
                    lockout(cx, req, now, until)?;
                    conv.error(&format!(
                        "{told} Too many failures: this account is locked for now."
                    ))?;
                    return Ok(Outcome::Deny {
                        reason: format!("{why}; locked out"),
                    });
                }
                // A wrong passcode is told with the attempts left by the prompt's loop.
                if self.factor != broker::Factor::Passcode {
                    conv.error(told)?;
                }
                Ok(Outcome::Deny { reason: why })
            }
        }
    }
}

/// Sends an `auth` request and waits for Duo's answer, showing its progress.
fn auth(
    cx: &mut Cx<'_>,
    conv: &mut dyn Conversation,
    ask: broker::Request,
) -> Result<broker::AuthResult, Flow> {
    let mut conv_failed = false;
    let reply = ask_broker(cx.config, &ask, &mut |text| {
        conv_failed = conv.info(&shown(text)).is_err();
        !conv_failed
    });
    match reply {
        Ok(Reply::Auth(r)) => Ok(r),
        Ok(_) => Err(unavailable(
            "Duo auth: the broker answered out of turn".into(),
        )),
        Err(BrokerError::Stopped) => Err(Flow::Conv),
        Err(BrokerError::Duo(ErrorKind::Refused, m)) => {
            let _ = conv.error("Second factor: Duo refused this login.");
            Err(Flow::Done(Outcome::Deny {
                reason: format!("Duo refused auth: {m}"),
            }))
        }
        Err(BrokerError::Duo(kind @ (ErrorKind::Busy | ErrorKind::Forbidden), m)) => {
            Err(Flow::Done(refused_locally(conv, kind, &m)))
        }
        Err(e) => Err(unavailable(format!("Duo auth: {e}"))),
    }
}

/// The broker is busy or refused the request itself: a denial, never the fail mode (under
/// `safe` that would let in whoever fills the broker or shapes a field it refuses).
fn refused_locally(conv: &mut dyn Conversation, kind: ErrorKind, m: &str) -> Outcome {
    let _ = conv.error("Second factor: Duo cannot be asked now; try again in a minute.");
    Outcome::Deny {
        reason: format!("Duo broker: {} ({kind:?})", shown(m)),
    }
}

/// One request to the broker, bounded by `[duo] timeout` and [`SLACK`].
fn ask_broker(
    config: &Config,
    ask: &broker::Request,
    progress: &mut dyn FnMut(&str) -> bool,
) -> Result<Reply, BrokerError> {
    let secs = config
        .duo
        .as_ref()
        .and_then(|d| d.timeout_secs().ok())
        .unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(u64::from(secs)) + SLACK;
    broker::call(
        &config.paths.runtime,
        &config.sender.user,
        ask,
        deadline,
        progress,
    )
}

/// mfa cannot ask Duo: the fail mode decides (or, after a code was typed, a denial).
fn unavailable(reason: String) -> Flow {
    Flow::Done(Outcome::Unavailable {
        reason,
        fail_mode: FailMode::Secure,
    })
}

/// The login's remote address for Duo, when it is an IP address.
fn ipaddr(req: &Request) -> Option<String> {
    parse_address(&req.rhost).ok().map(|ip| ip.to_string())
}

/// Text from Duo (through the broker) made safe to show and log: controls and invisible
/// characters become `?`, and it is cut at [`MAX_SHOWN`] characters.
fn shown(text: &str) -> String {
    shown_up_to(text, MAX_SHOWN)
}

/// [`shown`], cut at `max` characters.
fn shown_up_to(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if crate::logline::hidden(c) { '?' } else { c })
        .collect()
}
