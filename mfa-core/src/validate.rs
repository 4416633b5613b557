//! Checks for the names and small texts the rules are made of: user names, PAM service
//! names, methods, domain names, labels. Each returns an error naming the value and the
//! accepted form.

use crate::{Result, invalid};

/// Second-factor methods a service can require.
pub const METHODS: &[&str] = &["none", "passcode", "totp", "any"];

/// Methods the design names that do not exist yet: refused when set, so that no rule can
/// refuse every login (a database that already holds one still refuses: see
/// [`crate::policy`]).
pub const PLANNED_METHODS: &[&str] = &["duo"];

/// The service name that stands for every service without a rule of its own.
pub const ANY_SERVICE: &str = "*";

/// Checks a method keyword.
pub fn method(text: &str) -> Result<String> {
    let m = text.trim().to_ascii_lowercase();
    if METHODS.contains(&m.as_str()) {
        Ok(m)
    } else if PLANNED_METHODS.contains(&m.as_str()) {
        Err(invalid!(
            "method {m} is not available yet; use passcode, totp or any (or none)"
        ))
    } else {
        Err(invalid!(
            "unknown method {text:?}: expected one of {}",
            METHODS.join("|")
        ))
    }
}

/// Checks a PAM service name (a file name in /etc/pam.d) or `*`.
pub fn service(text: &str) -> Result<String> {
    let s = text.trim();
    if s == ANY_SERVICE {
        return Ok(s.into());
    }
    let form = "expected a PAM service name such as sshd, vsftpd, login, su or sudo (letters, digits, '.', '_', '-'), or * for every service";
    if ["all", "any", "default", "every"].contains(&s.to_ascii_lowercase().as_str()) {
        return Err(invalid!("unknown service keyword {text:?}: {form}"));
    }
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s.into())
    } else {
        Err(invalid!("invalid service name {text:?}: {form}"))
    }
}

/// Checks a user name as PAM gives it (local, or directory names such as `ann@corp.example`).
pub fn user_name(text: &str) -> Result<String> {
    let ok = !text.is_empty()
        && text.len() <= 256
        && !text.starts_with('-')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@$\\".contains(&b));
    if ok {
        Ok(text.into())
    } else {
        Err(invalid!(
            "invalid user name {text:?}: expected 1 to 256 characters of letters, digits and . _ - @ $ \\, not starting with '-'"
        ))
    }
}

/// Checks a free-text label (contact label, full name, note): printable, bounded.
pub fn label(what: &str, text: &str, max: usize) -> Result<String> {
    let t = text.trim();
    if t.chars().count() > max || t.chars().any(char::is_control) {
        Err(invalid!(
            "invalid {what} {text:?}: expected at most {max} characters without control characters"
        ))
    } else {
        Ok(t.into())
    }
}

/// Checks a DNS domain name (carrier gateway suffix, email domain); returns it in lower case.
pub fn domain(what: &str, text: &str) -> Result<String> {
    let d = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let labels: Vec<&str> = d.split('.').collect();
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.bytes().any(|b| b.is_ascii_alphabetic()));
    if d.len() <= 253 && labels.len() >= 2 && labels.iter().all(|l| label_ok(l)) && tld_ok {
        Ok(d)
    } else {
        Err(invalid!(
            "invalid {what} {text:?}: expected a domain name such as vtext.com"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services() {
        for ok in ["sshd", "*", "vsftpd", "sudo-i", "login", "postgresql"] {
            assert_eq!(service(ok).unwrap(), ok);
        }
        for bad in ["", "all", "ss hd", "../etc", ".x", "a/b"] {
            assert!(service(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods() {
        assert_eq!(method("Passcode").unwrap(), "passcode");
        let e = method("sms").unwrap_err().to_string();
        assert!(e.contains("none|passcode|totp|any"), "{e}");
        for duo in ["duo", " Duo "] {
            let e = method(duo).unwrap_err();
            assert!(e.is_bad_input());
            assert!(
                e.to_string()
                    .contains("method duo is not available yet; use passcode, totp or any"),
                "{e}"
            );
        }
    }

    #[test]
    fn names_and_domains() {
        assert!(user_name("alice").is_ok() && user_name("ann@corp.example").is_ok());
        assert!(user_name("-x").is_err() && user_name("a b").is_err() && user_name("").is_err());
        assert_eq!(domain("suffix", "VText.com").unwrap(), "vtext.com");
        for bad in [
            "vtext",
            "-a.com",
            "a..com",
            "a.123",
            "a_b.com",
            "exa mple.com",
        ] {
            assert!(domain("suffix", bad).is_err(), "{bad}");
        }
    }
}
