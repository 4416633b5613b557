//! Message templates: their names, defaults, validation and rendering.
//!
//! A template is text with placeholders `{prefix} {code} {user} {host} {minutes}`; `{{` and
//! `}}` stand for literal braces. Subjects are one line (no header injection) and short
//! (carriers truncate); a passcode body must carry `{code}`.

use crate::{Result, invalid};

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &["prefix", "code", "user", "host", "minutes"];

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
];

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

/// Renders a validated template.
pub fn render(text: &str, v: &Values<'_>) -> String {
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
}
