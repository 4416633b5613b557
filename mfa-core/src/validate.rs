//! Checks for the names and small texts the rules are made of: user names, Duo user names,
//! PAM service names, methods, domain names, labels. Each returns an error naming the value and the
//! accepted form.

use crate::{Result, invalid};

/// Second-factor methods a service can require (`duo`: Duo through the sender's broker).
pub const METHODS: &[&str] = &["none", "passcode", "totp", "duo", "any"];

/// The longest Duo user name stored.
pub const MAX_DUO_USER: usize = 100;

/// The service name that stands for every service without a rule of its own.
pub const ANY_SERVICE: &str = "*";

/// Checks a method keyword (case and surrounding blanks do not matter: `DUO` is `duo`).
pub fn method(text: &str) -> Result<String> {
    let m = text.trim().to_ascii_lowercase();
    if METHODS.contains(&m.as_str()) {
        Ok(m)
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

/// Checks a group name (`group add NAME`): 1 to 64 letters, digits and `. _ -`, not starting
/// with `.` or `-`, and not `none` (the word that clears a user's group or the default).
pub fn group_name(text: &str) -> Result<String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && !text.starts_with('-')
        && !text.starts_with('.')
        && !text.eq_ignore_ascii_case("none")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(text.into())
    } else {
        Err(invalid!(
            "invalid group name {:?}: expected 1 to 64 letters, digits and . _ -, not starting with '.' or '-', and not 'none'",
            text.escape_debug().to_string()
        ))
    }
}

/// Checks a Duo user name (`user set --duo NAME`): 1 to [`MAX_DUO_USER`] bytes of printable
/// ASCII without spaces (Duo's names hold letters, digits and `@ . _ -` and the like).
pub fn duo_user(text: &str) -> Result<String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_DUO_USER
        && !text.starts_with('-')
        && text.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(text.into())
    } else {
        Err(invalid!(
            "invalid Duo user name {:?}: expected 1 to {MAX_DUO_USER} printable ASCII characters without spaces, not starting with '-' (such as ann or ann@corp.example)",
            text.escape_debug().to_string()
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
        assert!(e.contains("none|passcode|totp|duo|any"), "{e}");
        for duo in ["duo", " Duo ", "DUO"] {
            assert_eq!(method(duo).unwrap(), "duo");
        }
        for bad in ["duo-push", "d uo", "duo\u{1b}[2J"] {
            let e = method(bad).unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains("unknown method"), "{e}");
        }
    }

    #[test]
    fn duo_user_names() {
        for ok in [
            "ann",
            "ann@corp.example",
            "a.b_c-d",
            "x+tag",
            &"a".repeat(100),
        ] {
            assert_eq!(duo_user(ok).unwrap(), ok);
        }
        let long = "a".repeat(101);
        for bad in ["", "a b", "ann\n", "é", "-ann", "a\u{1b}[2J", "\t", &long] {
            let e = duo_user(bad).unwrap_err();
            assert!(e.is_bad_input(), "{bad}");
            let text = e.to_string();
            assert!(text.contains("Duo user name"), "{text}");
            assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text:?}");
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
