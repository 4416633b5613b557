//! The second factor of a service's method: which factors the user has, the menu.

use super::*;

/// One way to prove the second factor, as the menu offers it.
pub(super) enum Factor {
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
pub(super) fn second_factor(
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
