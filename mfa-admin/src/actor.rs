//! Who is making a change, for the audit log: the user who ran sudo, else the login name
//! the kernel's audit login UID records (which survives `su`), else the real user.

use nix::unistd::{Uid, User};

/// The name recorded as the actor of a change.
pub fn actor() -> String {
    if let Ok(u) = std::env::var("SUDO_USER")
        && !u.is_empty()
        && !u.chars().any(char::is_control)
    {
        return u;
    }
    let login_uid = std::fs::read_to_string("/proc/self/loginuid")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|uid| *uid != u32::MAX);
    let uid = login_uid.map_or_else(Uid::current, Uid::from_raw);
    match User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}
