//! Message templates: their names, defaults, validation and rendering.
//!
//! A template is text with placeholders `{prefix} {code} {user} {host} {minutes} {url}`
//! (which ones depends on the template: [`allowed`]); `{{` and `}}` stand for literal braces.
//! Subjects are one line (no header injection) and short (carriers truncate); a passcode body
//! must carry `{code}`, a Duo enrollment body `{url}`. [`enrollment_message`] builds the Duo
//! enrollment notice that both the PAM module and `mfa-admin duo enroll --send` queue.

use crate::contact::Channel;
use crate::spool::{Kind, Message};
use crate::store::rules::Template;
use crate::{Result, invalid};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["prefix", "code", "user", "host", "minutes", "url"];

/// How long the sender may still deliver a Duo enrollment notice (its link is Duo's).
pub const ENROLL_NOTICE_TTL: i64 = 3600;

/// Every template: name, default text.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("passcode-subject", "{host} passcode"),
    (
        "passcode-body",
        "{prefix}-{code} is your passcode for {user} on {host}. It expires in {minutes} minutes. If you did not try to log in, tell your administrator.",
    ),
    (
        "test-body",
        "Test message from mfa on {host} for {user}. No action is needed.",
    ),
    ("duo-enroll-subject", "{host}: enrol with Duo"),
    (
        "duo-enroll-body",
        "To log in to {host} as {user} you need Duo. Enrol your phone here: {url} If you did not try to log in, tell your administrator.",
    ),
];

/// The placeholders the template `name` may use (`{url}` only where there is a link, the
/// passcode's only where there is a passcode).
pub fn allowed(name: &str) -> &'static [&'static str] {
    if name.starts_with("duo-enroll-") {
        &["user", "host", "url"]
    } else {
        &["prefix", "code", "user", "host", "minutes"]
    }
}

const MAX_SUBJECT: usize = 78;
const MAX_BODY: usize = 1000;

/// The default text of a template, or an error listing the names.
pub fn default_text(name: &str) -> Result<&'static str> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            invalid!(
                "unknown template {name:?}: expected one of {}",
                TEMPLATES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Checks a template's text for its name.
pub fn validate(name: &str, text: &str) -> Result<()> {
    default_text(name)?;
    let used = placeholders(text)?;
    if let Some(p) = used.iter().find(|p| !allowed(name).contains(p)) {
        return Err(invalid!(
            "template {name} cannot use {{{p}}}: it may use {}",
            allowed(name)
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let is_subject = name.ends_with("-subject");
    let max = if is_subject { MAX_SUBJECT } else { MAX_BODY };
    if text.trim().is_empty() {
        return Err(invalid!(
            "template {name} is empty: give the text of the message"
        ));
    }
    if text.chars().count() > max {
        return Err(invalid!(
            "template {name} is {} characters long: at most {max} are allowed",
            text.chars().count()
        ));
    }
    if is_subject && text.chars().any(char::is_control) {
        return Err(invalid!(
            "template {name} must be one line without control characters"
        ));
    }
    if !is_subject
        && text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid!(
            "template {name} contains control characters other than newline and tab"
        ));
    }
    if name == "passcode-body" && !used.contains(&"code") {
        return Err(invalid!(
            "template passcode-body must contain {{code}}, or users never see their passcode"
        ));
    }
    if name == "duo-enroll-body" && !used.contains(&"url") {
        return Err(invalid!(
            "template duo-enroll-body must contain {{url}}, or users never see the enrollment link"
        ));
    }
    Ok(())
}

/// The placeholders used in `text`; an unknown or unclosed one is an error.
fn placeholders(text: &str) -> Result<Vec<&'static str>> {
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        let (head, tail) = rest.split_at(i);
        let _ = head;
        if let Some(t) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
            rest = t;
            continue;
        }
        if tail.starts_with('}') {
            return Err(invalid!(
                "unmatched '}}' in template: write }}}} for a literal brace"
            ));
        }
        let close = tail
            .find('}')
            .ok_or_else(|| invalid!("unclosed '{{' in template: write {{{{ for a literal brace"))?;
        let name = &tail[1..close];
        let known = PLACEHOLDERS.iter().find(|p| **p == name).ok_or_else(|| {
            invalid!(
                "unknown placeholder {{{name}}} in template: expected {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })?;
        used.push(*known);
        rest = &tail[close + 1..];
    }
    Ok(used)
}

/// The values placeholders are replaced with.
#[derive(Debug, Clone, Default)]
pub struct Values<'a> {
    pub prefix: &'a str,
    pub code: &'a str,
    pub user: &'a str,
    pub host: &'a str,
    pub minutes: u32,
}

/// Renders a validated template (`{url}` renders empty: see [`render_link`]).
pub fn render(text: &str, v: &Values<'_>) -> String {
    render_link(text, v, "")
}

/// Renders a validated template whose `{url}` is `url`.
pub fn render_link(text: &str, v: &Values<'_>, url: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(t) = tail.strip_prefix("{{") {
            out.push('{');
            rest = t;
        } else if let Some(t) = tail.strip_prefix("}}") {
            out.push('}');
            rest = t;
        } else if let (true, Some(close)) = (tail.starts_with('{'), tail.find('}')) {
            match &tail[1..close] {
                "prefix" => out.push_str(v.prefix),
                "code" => out.push_str(v.code),
                "user" => out.push_str(v.user),
                "host" => out.push_str(v.host),
                "minutes" => out.push_str(&v.minutes.to_string()),
                "url" => out.push_str(url),
                other => {
                    out.push('{');
                    out.push_str(other);
                    out.push('}');
                }
            }
            rest = &tail[close + 1..];
        } else {
            out.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The Duo enrollment notice for `user` (Duo's enrollment link `url`), to `to` over
/// `channel` (`masked`: `to` as logs may show it), from the templates in force
/// (`duo-enroll-subject`, `duo-enroll-body`; a template missing from `templates` has its
/// default text). Its kind is [`Kind::Notice`]: the sender's passcode send limits do not
/// count it. The PAM module and `mfa-admin duo enroll --send` both queue it with
/// [`crate::spool::enqueue`]. Fails only when the system's random source does (the id).
#[allow(clippy::too_many_arguments)]
pub fn enrollment_message(
    templates: &[Template],
    user: &str,
    host: &str,
    url: &str,
    channel: Channel,
    to: &str,
    masked: &str,
    now: i64,
) -> Result<Message> {
    let text = |name: &str| -> String {
        templates
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.text.clone())
            .or_else(|| default_text(name).ok().map(str::to_string))
            .unwrap_or_default()
    };
    let values = Values {
        user,
        host,
        ..Values::default()
    };
    // One line, whatever Duo's link holds (a subject never carries a newline).
    let subject: String = render_link(&text("duo-enroll-subject"), &values, url)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Ok(Message {
        id: format!("{now}-{}", crate::passcode::random_id()?),
        created: now,
        expires: now.saturating_add(ENROLL_NOTICE_TTL),
        channel,
        to: to.to_string(),
        subject,
        body: render_link(&text("duo-enroll-body"), &values, url),
        user: user.to_string(),
        kind: Kind::Notice,
        masked_to: masked.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for (name, text) in TEMPLATES {
            validate(name, text).unwrap();
        }
    }

    #[test]
    fn renders() {
        let v = Values {
            prefix: "V",
            code: "482913",
            user: "ann",
            host: "web1",
            minutes: 10,
        };
        let body = render(default_text("passcode-body").unwrap(), &v);
        assert!(
            body.starts_with("V-482913 is your passcode for ann on web1"),
            "{body}"
        );
        assert_eq!(render("{{x}} {code}", &v), "{x} 482913");
    }

    #[test]
    fn rejects() {
        assert!(
            validate("passcode-body", "no code here")
                .unwrap_err()
                .to_string()
                .contains("{code}")
        );
        assert!(
            validate("passcode-body", "{code} {nope}")
                .unwrap_err()
                .to_string()
                .contains("{nope}")
        );
        assert!(validate("passcode-subject", "a\r\nBcc: x").is_err());
        assert!(validate("passcode-subject", &"x".repeat(79)).is_err());
        assert!(
            validate("other", "x")
                .unwrap_err()
                .to_string()
                .contains("passcode-subject")
        );
        assert!(validate("test-body", "open { brace").is_err());
        assert!(validate("test-body", "close } brace").is_err());
    }

    #[test]
    fn duo_enrollment_templates_use_their_own_placeholders() {
        validate("duo-enroll-body", "{user}: {url}").unwrap();
        let e = validate("duo-enroll-body", "enrol at the portal")
            .unwrap_err()
            .to_string();
        assert!(e.contains("{url}"), "{e}");
        let e = validate("duo-enroll-body", "{url} {code}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot use {code}"), "{e}");
        let e = validate("passcode-body", "{code} {url}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot use {url}"), "{e}");
        assert!(validate("duo-enroll-subject", "{url}\r\nBcc: x").is_err());
    }

    #[test]
    fn the_enrollment_message_carries_the_link_and_is_no_passcode() {
        let custom = [Template {
            name: "duo-enroll-body".into(),
            text: "{{hi}} {user}@{host}: {url}".into(),
            default: false,
        }];
        let m = enrollment_message(
            &custom,
            "ann",
            "web1",
            "https://api-x.duosecurity.com/portal?code=abc&akey=1",
            Channel::Email,
            "ann@example.com",
            "a***@example.com",
            1000,
        )
        .unwrap();
        assert_eq!(
            m.body,
            "{hi} ann@web1: https://api-x.duosecurity.com/portal?code=abc&akey=1"
        );
        assert_eq!(m.subject, "web1: enrol with Duo", "the default subject");
        assert_eq!(m.kind, Kind::Notice);
        assert_eq!((m.created, m.expires), (1000, 1000 + ENROLL_NOTICE_TTL));
        assert_eq!(m.to, "ann@example.com");
        assert_eq!(m.masked_to, "a***@example.com");
        assert!(m.id.starts_with("1000-") && m.id.len() > 20, "{}", m.id);
        // A hostile link cannot add a header line through the subject.
        let hostile = [Template {
            name: "duo-enroll-subject".into(),
            text: "{url}".into(),
            default: false,
        }];
        let m = enrollment_message(
            &hostile,
            "ann",
            "web1",
            "x\r\nBcc: all@example.com",
            Channel::Sms,
            "+15551234567",
            "+1555***4567",
            1,
        )
        .unwrap();
        assert!(!m.subject.contains(['\r', '\n']), "{:?}", m.subject);
        let other = enrollment_message(&[], "ann", "web1", "u", Channel::Sms, "t", "m", 1).unwrap();
        assert_ne!(m.id, other.id, "ids are unique");
    }
}
