//! Self-enrollment at login: an authenticator app, or a contact proved by a passcode.

use super::*;

/// Enrols an authenticator app at login: shows a new key and its QR code, and saves the key
/// only once the user typed a valid code from it.
pub(super) fn enroll_totp(
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
            // A proven enrolment (a code from the new factor) counts as activity.
            let _ = state::record_success(cx.db(), &req.user, crate::now());
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
/// Self-enrollment: ask for an email address or a phone number, send a passcode there, and
/// save the contact only once that passcode is typed back.
pub(super) fn enroll(
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
                // A gateway takes 10-digit North American numbers: +1.
                Ok(number) if !allowed(cx, facts, &format!("+1{number}"))? => {
                    Err(refused_number(cx, facts)?)
                }
                Ok(_) => match choose_carrier(cx, conv)? {
                    Some(carrier) => Contact::phone(&text, &carrier),
                    None => continue,
                },
                Err(e) => Err(e),
            }
        };
        // Where self-enrollment may send (SMS pumping, toll fraud): the settings
        // enroll_sms_countries and enroll_email_domains.
        let parsed = match parsed {
            Ok(c) if c.channel == Channel::Sms && !allowed(cx, facts, &c.address)? => {
                Err(refused_number(cx, facts)?)
            }
            Ok(c) if c.channel == Channel::Email => {
                let domain = c.address.rsplit_once('@').map_or("", |(_, d)| d);
                if crate::settings::domain_allowed(
                    facts.settings.enroll_email_domains.as_deref(),
                    domain,
                ) {
                    Ok(c)
                } else {
                    Err(crate::invalid!(
                        "Addresses at {domain} cannot be registered here; allowed domains: {}.",
                        facts
                            .settings
                            .enroll_email_domains
                            .as_deref()
                            .unwrap_or_default()
                            .join(", ")
                    ))
                }
            }
            other => other,
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
    let result = challenge::challenge(cx, config, req, facts, conv, &dest, "enroll")?;
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
        // A proven enrolment (a code from the new factor) counts as activity.
        let _ = state::record_success(cx.db(), &req.user, crate::now());
        grant(cx, req);
        conv.info("Your contact is registered.")?;
        return Ok(Outcome::Success {
            method: "enroll".into(),
            destination: dest.masked,
        });
    }
    Ok(result)
}

pub(super) fn choose_carrier(
    cx: &mut Cx<'_>,
    conv: &mut dyn Conversation,
) -> Result<Option<String>, Flow> {
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

/// Whether self-enrollment may send to the `+E164` number (setting `enroll_sms_countries`).
fn allowed(cx: &mut Cx<'_>, facts: &Facts, number: &str) -> Result<bool, Flow> {
    let have_carriers = !cx.carriers()?.is_empty();
    Ok(facts
        .settings
        .enroll_sms_countries
        .allows(number, have_carriers))
}

/// The error shown for a number self-enrollment may not send to.
fn refused_number(cx: &mut Cx<'_>, facts: &Facts) -> Result<Error, Flow> {
    let have_carriers = !cx.carriers()?.is_empty();
    Ok(crate::invalid!(
        "That number cannot be registered here; allowed: {}.",
        facts.settings.enroll_sms_countries.describe(have_carriers)
    ))
}
