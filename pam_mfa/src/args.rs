//! Module arguments from the pam.d line.

use std::ffi::CStr;
use std::path::PathBuf;

use mfa_core::config::DEFAULT_CONFIG;
use mfa_core::settings::FailMode;

/// The parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub config: PathBuf,
    pub service: Option<String>,
    pub fail_mode: FailMode,
    pub debug: bool,
    /// `oneword=before|after`: one instance of a one-password service's pair.
    pub oneword: Option<OneWord>,
    /// `separator=C`: between the password and the code in the one field (default `,`).
    pub separator: u8,
    /// `helper=PATH`: the setuid helper run when the module lacks root (default: the first
    /// of `mfa_core::helper::HELPER_PATHS` that exists).
    pub helper: Option<PathBuf>,
}

/// Which instance of a one-password service's pair this line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneWord {
    /// Ahead of the password module: splits the field, answers a double logon's second login.
    Before,
    /// Behind it: the decision, the kept code or the double logon's passcode.
    After,
}

/// A separator: one byte `mfa_core::helper::valid_separator` accepts.
fn separator(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [b] if mfa_core::helper::valid_separator(*b) => Some(*b),
        _ => None,
    }
}

/// Parses the arguments; returns the first unknown or malformed one as the error.
pub fn parse(raw: &[&CStr]) -> Result<Args, String> {
    let mut a = Args {
        config: PathBuf::from(DEFAULT_CONFIG),
        service: None,
        fail_mode: FailMode::Secure,
        debug: false,
        oneword: None,
        separator: mfa_core::auth::oneword::DEFAULT_SEPARATOR,
        helper: None,
    };
    for r in raw {
        let text = r.to_str().map_err(|_| r.to_string_lossy().into_owned())?;
        match text.split_once('=') {
            Some(("config", p)) if p.starts_with('/') => a.config = PathBuf::from(p),
            Some(("service", s)) if mfa_core::validate::service(s).is_ok() && s != "*" => {
                a.service = Some(s.to_string())
            }
            Some(("fail_mode", "secure")) => a.fail_mode = FailMode::Secure,
            Some(("fail_mode", "safe")) => a.fail_mode = FailMode::Safe,
            Some(("oneword", "before")) => a.oneword = Some(OneWord::Before),
            Some(("oneword", "after")) => a.oneword = Some(OneWord::After),
            Some(("separator", c)) if separator(c).is_some() => {
                a.separator = separator(c).unwrap_or(a.separator)
            }
            Some(("helper", p)) if p.starts_with('/') => a.helper = Some(PathBuf::from(p)),
            None if text == "debug" => a.debug = true,
            _ => return Err(text.to_string()),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(args: &[&str]) -> Result<Args, String> {
        let owned: Vec<std::ffi::CString> = args
            .iter()
            .map(|a| std::ffi::CString::new(*a).unwrap())
            .collect();
        let refs: Vec<&CStr> = owned.iter().map(|c| c.as_c_str()).collect();
        parse(&refs)
    }

    #[test]
    fn oneword_and_separator() {
        let a = parse_all(&"oneword=before separator=;".split(' ').collect::<Vec<_>>()).unwrap();
        assert_eq!((a.oneword, a.separator), (Some(OneWord::Before), b';'));
        let a = parse_all(&["oneword=after"]).unwrap();
        assert_eq!((a.oneword, a.separator), (Some(OneWord::After), b','));
        let a = parse_all(&["helper=/opt/mfa/mfa-check"]).unwrap();
        assert_eq!(a.helper, Some(PathBuf::from("/opt/mfa/mfa-check")));
        assert_eq!(parse_all(&[]).unwrap().helper, None);
        for bad in [
            "helper=",
            "helper=mfa-check",
            "oneword=both",
            "oneword",
            "separator=",
            "separator=-",
            "separator=ab",
            "separator=a",
            "separator=1",
            "separator= ",
        ] {
            assert_eq!(parse_all(&[bad]), Err(bad.to_string()), "{bad}");
        }
    }
}
