//! Contacts: where a passcode goes (an email address, a phone at an email-to-SMS carrier
//! gateway, or a number for an SMS API), their validation and their masked forms.
//!
//! Prompts and logs only ever show [`Contact::masked`]; the full address stays in the store
//! and in the spool message the sender needs.

use serde::{Deserialize, Serialize};

use crate::validate::domain;
use crate::{Result, invalid};

/// Most contacts a user may have.
pub const MAX_CONTACTS: usize = 4;

/// How a message reaches a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Email through SMTP.
    Email,
    /// SMS through a carrier's email-to-SMS gateway.
    SmsGateway,
    /// SMS through an HTTP API (Twilio, TeleSign).
    Sms,
}

impl Channel {
    /// The stored keyword: `email`, `sms-gateway`, `sms`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::SmsGateway => "sms-gateway",
            Channel::Sms => "sms",
        }
    }

    /// Parses a stored keyword.
    pub fn parse(text: &str) -> Result<Channel> {
        match text {
            "email" => Ok(Channel::Email),
            "sms-gateway" => Ok(Channel::SmsGateway),
            "sms" => Ok(Channel::Sms),
            other => Err(invalid!(
                "unknown channel {other:?}: expected email|sms-gateway|sms"
            )),
        }
    }
}

/// One validated contact. `address` is the email address, the 10-digit phone number (for
/// `SmsGateway`, with `carrier` naming the gateway) or the `+E164` number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The channel.
    pub channel: Channel,
    /// The address in canonical form.
    pub address: String,
    /// The carrier name, for `SmsGateway`.
    pub carrier: Option<String>,
}

impl Contact {
    /// An email contact.
    pub fn email(text: &str) -> Result<Contact> {
        Ok(Contact {
            channel: Channel::Email,
            address: email(text)?,
            carrier: None,
        })
    }

    /// A phone reached through a carrier's gateway.
    pub fn phone(text: &str, carrier: &str) -> Result<Contact> {
        Ok(Contact {
            channel: Channel::SmsGateway,
            address: phone(text)?,
            carrier: Some(carrier.to_string()),
        })
    }

    /// A number for an SMS API.
    pub fn sms(text: &str) -> Result<Contact> {
        Ok(Contact {
            channel: Channel::Sms,
            address: e164(text)?,
            carrier: None,
        })
    }

    /// The form shown in prompts and logs: `j***@e***.com`, `***-***-1234 (Verizon)`,
    /// `+*********1234`.
    pub fn masked(&self) -> String {
        match self.channel {
            Channel::Email => mask_email(&self.address),
            Channel::SmsGateway => {
                let tail = last_chars(&self.address, 4);
                match &self.carrier {
                    Some(c) => format!("***-***-{tail} ({c})"),
                    None => format!("***-***-{tail}"),
                }
            }
            Channel::Sms => {
                let digits = self.address.len().saturating_sub(1);
                format!(
                    "+{}{}",
                    "*".repeat(digits.saturating_sub(4)),
                    last_chars(&self.address, 4)
                )
            }
        }
    }
}

fn last_chars(s: &str, n: usize) -> &str {
    let start = s
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    &s[start..]
}

fn mask_email(addr: &str) -> String {
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return "***".into();
    };
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = domain.rsplit_once('.').unwrap_or((domain, ""));
    let tld = if tld.is_empty() {
        String::new()
    } else {
        format!(".{tld}")
    };
    format!("{}***@{}***{tld}", first(local), first(host))
}

/// Checks an email address: `local@domain`, the local part of RFC 5322 atoms joined by
/// dots, a real domain, nothing that could break out of a mail header. Returns it with the
/// domain in lower case.
pub fn email(text: &str) -> Result<String> {
    let bad =
        || invalid!("invalid email address {text:?}: expected a form such as ann@example.com");
    let t = text.trim();
    let (local, dom) = t.rsplit_once('@').ok_or_else(bad)?;
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(atext));
    if !local_ok || t.len() > 254 {
        return Err(bad());
    }
    let dom = domain("email domain", dom).map_err(|_| bad())?;
    Ok(format!("{local}@{dom}"))
}

/// Checks a North American phone number for a carrier gateway: ten digits, written with any
/// of spaces, dots, dashes and parentheses, optionally after `+1` or `1`. Returns the digits.
pub fn phone(text: &str) -> Result<String> {
    let bad = || {
        invalid!(
            "invalid phone number {text:?}: expected a 10-digit North American number such as 555-123-4567 (carrier gateways take no country code; use --sms +E164 for other countries)"
        )
    };
    let t = text.trim();
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || " .-()+".contains(c))
    {
        return Err(bad());
    }
    if t.chars().skip(1).any(|c| c == '+') {
        return Err(bad());
    }
    let mut digits: String = t.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && digits.starts_with('1') {
        digits.remove(0);
    } else if t.starts_with('+') {
        return Err(bad());
    }
    // NANP area codes never start with 0 or 1.
    let valid = digits.len() == 10 && !digits.starts_with('0') && !digits.starts_with('1');
    if valid { Ok(digits) } else { Err(bad()) }
}

/// Checks an E.164 number: `+`, a country code not starting with 0, 8 to 15 digits in all.
/// Spaces, dots and dashes between digits are dropped.
pub fn e164(text: &str) -> Result<String> {
    let bad = || {
        invalid!(
            "invalid SMS number {text:?}: expected E.164 form, '+' then country code and number, such as +14155550123"
        )
    };
    let t = text.trim();
    let rest = t.strip_prefix('+').ok_or_else(bad)?;
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || " .-".contains(c))
    {
        return Err(bad());
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if (8..=15).contains(&digits.len()) && !digits.starts_with('0') {
        Ok(format!("+{digits}"))
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("John.Doe@Example.COM").unwrap(),
            "John.Doe@example.com"
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.com",
            "a@b",
            "a b@c.com",
            "a@b.com>",
            "a..b@c.com",
            "a@b.com\r\nBcc: x@y.com",
            "a,b@c.com",
            "<a@b.com>",
            ".a@b.com",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones() {
        for ok in [
            "5551234567",
            "(555) 123-4567",
            "555.123.4567",
            "+1 555 123 4567",
            "1-555-123-4567",
        ] {
            assert_eq!(phone(ok).unwrap(), "5551234567", "{ok}");
        }
        for bad in [
            "",
            "555123456",
            "55512345678",
            "+44 20 7946 0958",
            "0551234567",
            "155-123-4567",
            "555-123-456x",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
        assert_eq!(e164("+1 415 555 0123").unwrap(), "+14155550123");
        for bad in [
            "14155550123",
            "+0123456789",
            "+1234",
            "+1234567890123456",
            "+1-415-ABC",
        ] {
            assert!(e164(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(
            Contact::email("john@example.com").unwrap().masked(),
            "j***@e***.com"
        );
        assert_eq!(
            Contact::phone("5551231234", "Verizon").unwrap().masked(),
            "***-***-1234 (Verizon)"
        );
        assert_eq!(
            Contact::sms("+14155550123").unwrap().masked(),
            "+*******0123"
        );
        let m = Contact::email("j@mail.example.co.uk").unwrap().masked();
        assert!(!m.contains("mail.example"), "{m}");
    }
}
