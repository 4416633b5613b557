//! syslog(3) lines at LOG_AUTHPRIV, tagged `pam_mfa(SERVICE:auth)` like pam_syslog does.
//! openlog is never called: the identity stays the host process's (sshd, sudo, ...).
#![allow(unsafe_code)]

use std::ffi::CString;

fn log(priority: libc::c_int, service: &str, text: &str) {
    let line = format!("pam_mfa({service}:auth): {text}").replace('\0', "");
    let Ok(c) = CString::new(line) else { return };
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call,
    // and the format string consumes exactly one string argument.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), c.as_ptr()) };
}

pub fn err(service: &str, text: &str) {
    log(libc::LOG_ERR, service, text);
}

pub fn notice(service: &str, text: &str) {
    log(libc::LOG_NOTICE, service, text);
}

pub fn info(service: &str, text: &str) {
    log(libc::LOG_INFO, service, text);
}

pub fn debug(service: &str, text: &str) {
    log(libc::LOG_DEBUG, service, text);
}
