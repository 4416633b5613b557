//! The passcode factor: a code sent to one of the user's contacts. The sender's health check,
//! issuing a code to a destination (challenge file and spool message), asking for it, resends
//! (also used by self-enrollment and the double logon).

use super::*;

/// A passcode to one of the user's contacts.
pub(super) struct Passcode {
    pub(super) contact: people::ContactRow,
    /// The contact as the menu names it (masked, told apart from the user's others).
    pub(super) name: String,
}

impl Factor for Passcode {
    fn label(&self) -> String {
        format!("passcode to {}", self.name)
    }

    fn short_label(&self) -> Option<String> {
        Some(self.name.clone())
    }

    fn challenge(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        let config = cx.config;
        check_delivery(config)?;
        let dest = Destination {
            channel: Channel::parse(&self.contact.channel)?,
            to: self.contact.to.clone(),
            masked: self.contact.masked.clone(),
        };
        challenge(cx, config, req, facts, conv, &dest, "login")
    }
}

/// The sender must be alive and the spool usable before a passcode is promised.
pub(in crate::auth) fn check_delivery(config: &Config) -> Result<(), Flow> {
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
pub(in crate::auth) struct Destination {
    pub(in crate::auth) channel: Channel,
    pub(in crate::auth) to: String,
    pub(in crate::auth) masked: String,
}

/// Issues a code to `dest` and asks for it until it is typed, the attempts run out, it
/// expires or the user is locked out. An empty answer sends a new code (at most twice, and
/// never past the send limits or for a user locked out meanwhile).
pub(in crate::auth) fn challenge(
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
        Ok(Issued::Sent(c)) => c,
        Ok(Issued::Limited(l)) => return Ok(rate_limited(conv, &l)),
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
        let answer = match conv.prompt_code(&prompt, false) {
            Ok(a) => a,
            Err(e) => {
                // Given up (Ctrl-C, a dropped connection): the code goes with the login.
                let _ = state::delete_challenge(db, &c.id);
                return Err(e.into());
            }
        };
        let now = crate::now();
        let Some(stored) = state::challenge(db, &c.id)? else {
            return Ok(Outcome::Deny {
                reason: "challenge vanished".into(),
            });
        };
        let empty = answer.iter().all(u8::is_ascii_whitespace);
        if !empty {
            cx.typed = true;
        }
        // The sender gave up on this code (spool failed/): the user cannot know it. Say so,
        // without the server's text or the recipient; a typed guess still counts.
        if let Some(why) = spool::failed(&config.paths.spool, &message_id(&c)) {
            state::delete_challenge(db, &c.id)?;
            // The user was asked: the outcome is a denial whatever fails while counting.
            if !empty
                && let Ok(state::Guess::Wrong {
                    locked: Some(until),
                }) = state::guess(db, &req.user, now, s, |_| Ok(None::<()>))
            {
                let _ = lockout(cx, req, now, until);
            }
            conv.error(NOT_DELIVERED_MESSAGE)?;
            let why: String = why.chars().take(200).collect();
            return Ok(Outcome::Deny {
                reason: format!("passcode could not be delivered: {why}"),
            });
        }
        if empty && resends < MAX_RESENDS {
            state::delete_challenge(db, &c.id)?;
            // A user locked out meanwhile (another login's guesses) gets no new message.
            if state::blocked(db, &req.user, now, s)? {
                conv.error("Too many failures: this account is locked for now.")?;
                return Ok(Outcome::Deny {
                    reason: "locked out during the challenge".into(),
                });
            }
            resends += 1;
            // The user was already asked: a resend that cannot be queued is a denial, not
            // the fail mode.
            current = match issue(cx, config, req, facts, dest, purpose, &key, resends) {
                Ok(Issued::Sent(c)) => c,
                Ok(Issued::Limited(l)) => return Ok(rate_limited(conv, &l)),
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
        if now > stored.expires {
            state::delete_challenge(db, &c.id)?;
            conv.error("That passcode has expired. Log in again for a new one.")?;
            return Ok(Outcome::Deny {
                reason: "passcode expired".into(),
            });
        }
        // Checked and counted in one step under the user's lock: evaluated only while the
        // failure count is below lockout_after, whatever other logins do at the same time.
        let verdict = state::guess(db, &req.user, now, s, |_| {
            let good = crate::passcode::normalize_answer(&answer, stored.prefix, s.code_length)
                .is_some_and(|code| {
                    crate::passcode::verify(&key, &stored.id, &code, &stored.code_hash)
                });
            Ok(good.then_some(()))
        });
        let locked = match verdict {
            Ok(state::Guess::Right(())) => {
                state::delete_challenge(db, &c.id)?;
                return Ok(Outcome::Success {
                    method: "passcode".into(),
                    destination: dest.masked.clone(),
                });
            }
            Ok(state::Guess::Locked) => {
                state::delete_challenge(db, &c.id)?;
                conv.error("Too many failures: this account is locked for now.")?;
                return Ok(Outcome::Deny {
                    reason: "locked out during the challenge".into(),
                });
            }
            Ok(state::Guess::Wrong { locked }) => locked,
            Err(e) => {
                let _ = state::delete_challenge(db, &c.id);
                return Err(e.into());
            }
        };
        left = (left - 1).max(0);
        if left == 0 || locked.is_some() {
            state::delete_challenge(db, &c.id)?;
        }
        if let Some(until) = locked {
            // The state file holds the lockout; the database follows (a failure to store it
            // there is a denial too: the user was asked).
            lockout(cx, req, now, until)?;
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

/// A send limit was reached: the user is told how long to wait; no message was queued.
fn rate_limited(conv: &mut dyn Conversation, l: &state::sends::Limited) -> Outcome {
    let n = l.minutes();
    let _ = conv.error(&format!(
        "Too many codes were sent; try again in {n} minute{}.",
        if n == 1 { "" } else { "s" }
    ));
    Outcome::Deny { reason: l.reason() }
}

/// What [`issue`] did.
pub(in crate::auth) enum Issued {
    /// The challenge, its message queued.
    Sent(state::Challenge),
    /// A send limit refused the message.
    Limited(state::sends::Limited),
}

/// Told when a passcode could not be queued (the login then stops, or, after a resend, is
/// denied).
pub(in crate::auth) const NOT_SENT_MESSAGE: &str = "Second factor: the passcode could not be sent.";
/// Told when the sender gave up on the passcode's message (it is in the spool's failed/).
pub(in crate::auth) const NOT_DELIVERED_MESSAGE: &str =
    "The passcode could not be delivered; contact your administrator.";

/// The spool id of a challenge's message (`CREATED-ID`).
pub(in crate::auth) fn message_id(ch: &state::Challenge) -> String {
    format!("{}-{}", ch.created, ch.id)
}

/// Creates a challenge, stores its hash and queues the message, in one transaction.
#[allow(clippy::too_many_arguments)]
pub(in crate::auth) fn issue(
    cx: &mut Cx<'_>,
    config: &Config,
    req: &Request,
    facts: &Facts,
    dest: &Destination,
    purpose: &str,
    key: &[u8],
    resends: i64,
) -> Result<Issued, Flow> {
    let s = &facts.settings;
    let (prefix, code) = crate::passcode::generate(s.code_length)?;
    let id = crate::passcode::random_id()?;
    let now = crate::now();
    // A double logon's passcode is typed at the next login, within the FTP window.
    let ttl = if purpose == oneword::DOUBLE_LOGON {
        s.ftp_window
    } else {
        s.code_ttl
    };
    let expires = now + i64::from(ttl);
    let ch = state::Challenge {
        id: id.clone(),
        user: req.user.clone(),
        service: req.service.clone(),
        address: req.rhost.clone(),
        purpose: purpose.into(),
        prefix,
        code_hash: crate::passcode::hash(key, &id, &code)?,
        destination: dest.masked.clone(),
        created: now,
        expires,
        attempts_left: i64::from(s.attempts),
        resends,
    };
    let host = crate::settings::host_name();
    let spool_dir = config.paths.spool.clone();
    let db = cx.db().to_path_buf();
    // The send limits (user, destination, host) and the cap on outstanding challenges,
    // checked and recorded with the challenge in one step.
    let dest_key = state::sends::destination_key(key, &dest.to)?;
    if let Some(l) = state::sends::reserve(&db, &ch, &dest_key, s)? {
        return Ok(Issued::Limited(l));
    }
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
            minutes: ttl.div_ceil(60),
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
        Ok(()) => {
            cx.sent += 1;
            Ok(Issued::Sent(ch))
        }
        Err(e @ Error::Io { .. }) => Err(Flow::Done(Outcome::Unavailable {
            reason: format!("cannot queue the passcode: {e}"),
            fail_mode: FailMode::Secure,
        })),
        Err(e) => Err(e.into()),
    }
}
