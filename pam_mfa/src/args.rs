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
}

/// Parses the arguments; returns the first unknown or malformed one as the error.
pub fn parse(raw: &[&CStr]) -> Result<Args, String> {
    let mut a = Args {
        config: PathBuf::from(DEFAULT_CONFIG),
        service: None,
        fail_mode: FailMode::Secure,
        debug: false,
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
            None if text == "debug" => a.debug = true,
            _ => return Err(text.to_string()),
        }
    }
    Ok(a)
}
