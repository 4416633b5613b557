//! The second factors, each in its own file behind one interface, [`Factor`]: how it appears
//! in the menu, and how it challenges the user and verifies the answer. This file gathers
//! the factors the service's method allows and the user has, and runs the menu.
//!
//! - [`passcode`]: a passcode sent to one of the user's contacts;
//! - [`totp`]: a code from the authenticator app (a backup code accepted too);
//! - [`backup`]: a backup code;
//! - [`duo`]: Duo Push, a phone call, SMS passcodes or a Duo passcode, through the broker.

use super::*;

pub(super) mod backup;
pub(in crate::auth) mod duo;
pub(super) mod passcode;
pub(super) mod totp;

/// One way to prove the second factor.
pub(super) trait Factor {
    /// How the menu lists it beside factors of other kinds ("passcode to j***@e***.com").
    fn label(&self) -> String;
    /// How the menu lists it when every entry is a passcode ("j***@e***.com"); only
    /// passcodes differ.
    fn short_label(&self) -> Option<String> {
        None
    }
    /// Challenges the user with this factor and verifies the answer: the outcome of the
    /// second factor (`Success` with the factor's name and destination, or why not).
    fn challenge(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow>;
    /// Whether the menu's prompt takes this factor's code in place of a choice (a Duo
    /// passcode, as duo_unix's menu does); the code then goes to [`Factor::verify`].
    fn takes_code_at_menu(&self) -> bool {
        false
    }
    /// Verifies a code typed at the menu (only asked of a factor that takes one there).
    fn verify(
        &self,
        _cx: &mut Cx<'_>,
        _req: &Request,
        _facts: &Facts,
        _conv: &mut dyn Conversation,
        _code: &[u8],
    ) -> Result<Outcome, Flow> {
        Ok(Outcome::Deny {
            reason: "no code is taken at this menu".into(),
        })
    }
}

/// What the user answered at the menu.
enum Choice {
    /// The option at this index.
    Option(usize),
    /// A code for the option at this index (the one that takes codes at the menu).
    Code(usize, Vec<u8>),
    /// No valid answer.
    Nothing,
}

/// Challenges with the service's method: the factors the method allows and the user has;
/// a menu when there are several.
pub(super) fn second_factor(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    method: &str,
) -> Result<Outcome, Flow> {
    let options = match offered(cx, req, facts, conv, method)? {
        Offer::Factors(options) => options,
        Offer::Done(outcome) => return Ok(outcome),
    };
    let choice = match options.len() {
        0 => {
            return Ok(Outcome::Deny {
                reason: "no usable factor".into(),
            });
        }
        1 => Choice::Option(0),
        _ => choose(conv, &options)?,
    };
    let result = match choice {
        Choice::Option(i) => options[i].challenge(cx, req, facts, conv)?,
        Choice::Code(i, code) => options[i].verify(cx, req, facts, conv, &code)?,
        Choice::Nothing => {
            return Ok(Outcome::Deny {
                reason: "no factor chosen".into(),
            });
        }
    };
    if let Outcome::Success { .. } = result {
        passed(cx, req, facts)?;
    }
    Ok(result)
}

/// What the method offers this user.
enum Offer {
    /// These factors, in menu order.
    Factors(Vec<Box<dyn Factor>>),
    /// Decided before any challenge (Duo's preauth: allow, deny, enroll).
    Done(Outcome),
}

/// The factors `method` allows and the user has, in menu order: authenticator, backup
/// codes, contacts, Duo.
fn offered(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    method: &str,
) -> Result<Offer, Flow> {
    let mut options: Vec<Box<dyn Factor>> = Vec::new();
    // Only the factors the user's group (or own override) allows.
    let allowed = facts.allowed();
    if method == "totp" || method == "any" {
        let has_key = allowed.allows(Factors::TOTP) && cx.totp(&req.user)?.is_some();
        let backups = allowed.allows(Factors::BACKUP) && cx.backup_count(&req.user)? > 0;
        if has_key {
            options.push(Box::new(totp::Authenticator));
        }
        if backups && (method == "any" || !has_key) {
            options.push(Box::new(backup::Backup));
        }
    }
    if (method == "passcode" || method == "any") && allowed.allows(Factors::PASSCODE) {
        let contacts = cx.contacts(&req.user)?;
        // Contacts by masked form and label, told apart when they still look alike.
        let names = people::menu_names(&contacts);
        for (contact, name) in contacts.into_iter().zip(names) {
            options.push(Box::new(passcode::Passcode { contact, name }));
        }
    }
    let duo_user = facts.user.as_ref().is_some_and(|u| u.duo);
    if allowed.allows(Factors::DUO) && (method == "duo" || (method == "any" && duo_user)) {
        match duo::offer(cx, req, facts, conv, method == "duo", !options.is_empty())? {
            duo::Offer::Entries(entries) => {
                options.extend(entries.into_iter().map(|e| Box::new(e) as Box<dyn Factor>));
            }
            duo::Offer::Done(outcome) => return Ok(Offer::Done(outcome)),
        }
    }
    Ok(Offer::Factors(options))
}

/// Shows the menu and asks for a choice (an empty answer picks the first), [`MENU_TRIES`]
/// times at most. When an option takes its code at the menu, an answer that is not a
/// choice but is shaped like a code (6 to 64 letters and digits) goes to it; from that code
/// on, whatever fails is a denial, never the fail mode (a number picked is not a code: a
/// push that cannot be answered then follows the fail mode).
fn choose(conv: &mut dyn Conversation, options: &[Box<dyn Factor>]) -> Result<Choice, Flow> {
    let n = options.len();
    let short: Option<Vec<String>> = options.iter().map(|o| o.short_label()).collect();
    let mut list = String::from(if short.is_some() {
        "Where should the passcode go?"
    } else {
        "How will you prove it is you?"
    });
    for (i, o) in options.iter().enumerate() {
        let label = match &short {
            Some(names) => names[i].clone(),
            None => o.label(),
        };
        list.push_str(&format!("\n  {}) {label}", i + 1));
    }
    conv.show(&list)?;
    let code_option = options.iter().position(|o| o.takes_code_at_menu());
    for _ in 0..MENU_TRIES {
        let answer = match code_option {
            Some(_) => conv.prompt(&format!("Choice [1-{n}] or passcode: "), true)?,
            None => conv.prompt(&format!("Choice [1-{n}]: "), true)?,
        };
        let text = String::from_utf8_lossy(&answer);
        let text = text.trim();
        let pick = if text.is_empty() {
            Some(1)
        } else {
            text.parse::<usize>().ok()
        };
        if let Some(i) = pick.filter(|i| (1..=n).contains(i)) {
            return Ok(Choice::Option(i - 1));
        }
        if let Some(i) = code_option
            && (6..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            // A code was given: whatever fails from here is a denial.
            conv.code_given();
            return Ok(Choice::Code(i, text.as_bytes().to_vec()));
        }
        conv.error("Please answer with one of the numbers shown.")?;
    }
    Ok(Choice::Nothing)
}
