//! The fields of the syslog lines of an outcome, shared by pam_mfa's line and mfa-check's.
//!
//! - [`field`]: one `key=value` field. A value with a space, `=`, `"`, `\`, a control, a
//!   blank other than the space or an invisible formatting character, or an empty one, is
//!   quoted, with `\\`, `\"` and `\xNN` / `\u{N}` escapes inside: `user=x outcome=success` in
//!   a user name cannot become a field of its own, nor can a newline start a new line.
//! - [`request_fields`], [`outcome_fields`]: the login's and the outcome's fields, quoted.

use crate::auth::{Outcome, Request};

/// `user=… rhost=… tty=…` of a login (`rhost=local` without a remote host), quoted.
pub fn request_fields(req: &Request) -> String {
    let rhost = if req.rhost.is_empty() {
        "local"
    } else {
        &req.rhost
    };
    format!(
        "{} {} {}",
        field("user", &req.user),
        field("rhost", rhost),
        field("tty", &req.tty)
    )
}

/// The fields after `outcome=`: `method=… to=…` of a success, else `reason=…` (an
/// unavailable one's prefixed `MFA UNAVAILABLE: `), quoted. A reason may carry text from
/// outside (a server's reply kept in the spool's failed/), a destination a contact's label.
pub fn outcome_fields(o: &Outcome) -> String {
    match o {
        Outcome::Success {
            method,
            destination,
        } => format!("{} {}", field("method", method), field("to", destination)),
        Outcome::Ignore { reason } | Outcome::Deny { reason } => field("reason", reason),
        Outcome::Unavailable { reason, .. } => {
            field("reason", &format!("MFA UNAVAILABLE: {reason}"))
        }
    }
}

/// A character a reader of the log must see as an escape: controls (C0, DEL, C1), blanks
/// other than the space (no-break and wide spaces, line and paragraph separators) and the
/// invisible formatting characters that reorder or hide text (bidi overrides, zero widths).
pub fn hidden(c: char) -> bool {
    c.is_control()
        || (c.is_whitespace() && c != ' ')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `key=value`, the value bare when it is plain, else quoted with escapes inside.
pub fn field(key: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || hidden(c));
    if plain {
        return format!("{key}={value}");
    }
    format!("{key}=\"{}\"", quoted(value))
}

/// The inside of a quoted value: `\\`, `\"`, and hidden characters as `\xNN` (below 256) or
/// `\u{N}`.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if hidden(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_be_forged() {
        assert_eq!(field("user", "alice"), "user=alice");
        assert_eq!(field("rhost", "192.0.2.1"), "rhost=192.0.2.1");
        assert_eq!(field("tty", ""), "tty=\"\"");
        let f = field("user", "x outcome=success");
        assert_eq!(f, "user=\"x outcome=success\"");
        let f = field("user", "x\" outcome=success \"");
        assert_eq!(f, "user=\"x\\\" outcome=success \\\"\"");
        let f = field("rhost", "h\n<13>Nov 30 sshd: fake\x1b[2J\u{202e}");
        assert_eq!(f, "rhost=\"h\\x0a<13>Nov 30 sshd: fake\\x1b[2J\\u{202e}\"");
        assert!(!f.chars().any(hidden));
        assert_eq!(field("k", "a=b"), "k=\"a=b\"");
        assert_eq!(field("k", "a\\b"), "k=\"a\\\\b\"");
        assert_eq!(field("k", "\u{85}"), "k=\"\\x85\"");
        // Blanks other than the space: a no-break space, a line separator.
        assert_eq!(field("k", "a\u{a0}b"), "k=\"a\\xa0b\"");
        assert_eq!(field("k", "a\u{2028}b"), "k=\"a\\u{2028}b\"");
    }

    #[test]
    fn request_and_outcome_fields_are_quoted() {
        let req = Request {
            user: "x outcome=success".into(),
            service: "sshd".into(),
            rhost: String::new(),
            tty: "ssh".into(),
        };
        assert_eq!(
            request_fields(&req),
            "user=\"x outcome=success\" rhost=local tty=ssh"
        );
        let o = Outcome::Unavailable {
            reason: "no store".into(),
            fail_mode: crate::settings::FailMode::Safe,
        };
        assert_eq!(outcome_fields(&o), "reason=\"MFA UNAVAILABLE: no store\"");
        let o = Outcome::Success {
            method: "totp".into(),
            destination: String::new(),
        };
        assert_eq!(outcome_fields(&o), "method=totp to=\"\"");
    }
}
