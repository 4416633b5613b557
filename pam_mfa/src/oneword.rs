//! The two instances of a one-password service (`oneword=before`, `oneword=after`).
//!
//! `before` runs ahead of the password module: it takes the one password (PAM_AUTHTOK, or
//! one echo-off `Password: ` prompt, the only prompt), hands the field to
//! `mfa_core::auth::oneword_before` (without root: to the helper mfa-check, which answers
//! with the split's index), puts the password part in PAM_AUTHTOK for
//! `pam_unix use_first_pass`, and keeps the code for `after` with pam_set_data. `after` takes it back (once) and runs the decision
//! with it. The password is never logged; the kept code is zeroed when PAM drops it.
#![allow(unsafe_code)]

use std::ffi::{CString, c_int, c_void};

use mfa_core::auth::{self, Before};
use mfa_core::secret::Secret;
use pam::constants::PamResultCode;
use pam::items::AuthTok;
use pam::module::PamHandle;

use crate::args::Args;
use crate::conv::PamConversation;

/// The pam_set_data key of the kept code.
const KEY: &str = "pam_mfa_oneword_code";
/// PAM_AUTHTOK in `security/_pam_types.h`.
const PAM_AUTHTOK: c_int = 6;

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
}

/// Keeps `code` for `after` (as a [`Secret`]: zeroed when PAM drops it).
fn keep(pamh: &mut PamHandle, code: Vec<u8>) -> bool {
    pamh.set_data(KEY, Box::new(Secret(code))).is_ok()
}

/// Takes the kept code (once: it is replaced by none).
fn take(pamh: &mut PamHandle) -> Option<Vec<u8>> {
    // SAFETY: KEY is only ever set by `keep`, with a `Secret`.
    let code = unsafe { pamh.get_data::<Secret>(KEY) }
        .ok()
        .filter(|k| !k.0.is_empty())
        .map(|k| k.0.clone());
    let _ = keep(pamh, Vec::new());
    code
}

/// Sets PAM_AUTHTOK (libpam copies it).
fn set_authtok(pamh: &mut PamHandle, password: &[u8]) -> bool {
    let Ok(c) = CString::new(password) else {
        return false;
    };
    let c = Secret(c.into_bytes_with_nul());
    // SAFETY: a NUL-terminated string that outlives the call; libpam copies item strings.
    let rc = unsafe { pam_set_item(pamh, PAM_AUTHTOK, c.0.as_ptr().cast::<c_void>()) };
    rc == 0
}

/// The first instance. Returns PAM_IGNORE (the password module decides), PAM_SUCCESS (a
/// double logon's second login; the line is `success=done`), or PAM_AUTH_ERR when the one
/// password cannot be had (the conversation failed) or PAM_AUTHTOK cannot be set.
///
/// `decide` is the rules' answer for the field (`auth::oneword_before`, here or through the
/// helper `mfa-check`); `None` when the rules cannot be had: the field is still split, so
/// the password works, and `after` applies the fail mode.
pub fn before(
    pamh: &mut PamHandle,
    args: &Args,
    silent: bool,
    decide: &mut dyn FnMut(&[u8]) -> Option<Before>,
) -> (PamResultCode, Option<auth::Outcome>) {
    // No stale code from an earlier pam_authenticate on this handle, whatever happens next
    // (a failed prompt too).
    let _ = keep(pamh, Vec::new());
    let (field, prompted) = match pamh.get_item::<AuthTok>() {
        Ok(Some(t)) => (Secret(t.as_bytes().to_vec()), false),
        _ => {
            let mut conv = PamConversation::new(pamh, silent);
            match auth::Conversation::prompt(&mut conv, "Password: ", false) {
                Ok(a) => (Secret(a), true),
                Err(_) => return (PamResultCode::PAM_AUTH_ERR, None),
            }
        }
    };
    let found = match decide(&field.0) {
        Some(found) => found,
        // The rules cannot be read: still split, so the password works; `after` applies
        // the fail mode.
        None => match auth::oneword::split(&field.0, args.separator, 6) {
            auth::oneword::Field::Split { password, code } => Before::Split {
                password: password.to_vec(),
                code: code.to_vec(),
            },
            _ => Before::Ignore,
        },
    };
    match found {
        Before::Split { password, code } => {
            let password = Secret(password);
            if !set_authtok(pamh, &password.0) || !keep(pamh, code) {
                return (PamResultCode::PAM_AUTH_ERR, None);
            }
            (PamResultCode::PAM_IGNORE, None)
        }
        Before::Success(o) => (PamResultCode::PAM_SUCCESS, Some(o)),
        Before::Ignore => {
            if prompted && !set_authtok(pamh, &field.0) {
                return (PamResultCode::PAM_AUTH_ERR, None);
            }
            (PamResultCode::PAM_IGNORE, None)
        }
    }
}

/// The second instance: the decision with the kept code, if any (`decide`:
/// `auth::oneword_after`, here or through the helper `mfa-check`).
pub fn after(
    pamh: &mut PamHandle,
    decide: impl FnOnce(Option<&[u8]>) -> auth::Outcome,
) -> auth::Outcome {
    let code = take(pamh).map(Secret);
    decide(code.as_ref().map(|c| c.0.as_slice()))
}
