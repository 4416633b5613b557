//! Repeat-window grants: "user U passed 2FA on service S from address A at time T", kept in
//! the user's login-state file ([`crate::state`]) beside the failure count, so that the
//! module's repeat-window check is one file read instead of a database open, and a success
//! writes one file. A grant only ever lets the rest of the stack decide (PAM_IGNORE) within
//! `repeat_window`; losing one (a crash, a reboot) costs the user one challenge, so grants
//! are written without fsync, as the design's hot path is. A user keeps at most
//! [`MAX_GRANTS`] grants, none older than [`MAX_AGE`] seconds.

use std::path::Path;

use crate::Result;
use crate::state::{UserState, read_user, user_names, with_user};

/// Grants kept per user (the newest).
pub const MAX_GRANTS: usize = 32;
/// Grants older than this are dropped when another is recorded (the longest repeat window).
pub const MAX_AGE: i64 = 7 * 86_400;

/// Records that `user` passed 2FA on `service` from `address` at `now`.
pub fn record(database: &Path, user: &str, service: &str, address: &str, now: i64) -> Result<()> {
    with_user(database, user, true, |st| {
        st.grants
            .retain(|(t, s, a)| !(s == service && a == address) && *t > now - MAX_AGE);
        st.grants
            .push((now, service.to_string(), address.to_string()));
        if st.grants.len() > MAX_GRANTS {
            let extra = st.grants.len() - MAX_GRANTS;
            st.grants.drain(..extra);
        }
        ((), true)
    })
}

/// When `user` last passed 2FA on `service` from `address`, if a grant is on file.
pub fn last(database: &Path, user: &str, service: &str, address: &str) -> Option<i64> {
    in_state(&read_user(database, user).ok()?, service, address)
}

/// The grant for `service` and `address` in a user's state already read.
pub(crate) fn in_state(st: &UserState, service: &str, address: &str) -> Option<i64> {
    st.grants
        .iter()
        .find(|(_, s, a)| s == service && a == address)
        .map(|(t, _, _)| *t)
}

/// Removes every grant of `user` (deleted, disabled), or of everybody when `user` is `None`.
/// Returns how many were removed.
pub fn revoke(database: &Path, user: Option<&str>) -> Result<usize> {
    let Some(user) = user else {
        let mut n = 0;
        for name in user_names(database) {
            n += revoke(database, Some(&name))?;
        }
        return Ok(n);
    };
    with_user(database, user, false, |st| {
        let n = st.grants.len();
        st.grants.clear();
        (n, n > 0)
    })
}

/// Ages every grant of `user` by `secs` (tests of the repeat window).
#[doc(hidden)]
pub fn age(database: &Path, user: &str, secs: i64) -> Result<()> {
    with_user(database, user, false, |st| {
        for g in &mut st.grants {
            g.0 -= secs;
        }
        ((), true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_read_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), None);
        record(&db, "ann", "sshd", "10.0.0.1", 1000).unwrap();
        record(&db, "ann", "su", "", 1001).unwrap();
        record(&db, "bob", "sshd", "10.0.0.1", 1002).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(1000));
        assert_eq!(last(&db, "ann", "su", ""), Some(1001));
        // Keyed on all three: no grant for another address, service or user.
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.2"), None);
        assert_eq!(last(&db, "ann", "sshd ", "10.0.0.1"), None);
        assert_eq!(last(&db, "carl", "sshd", "10.0.0.1"), None);
        // Any bytes in an address: spaces, newlines.
        record(&db, "ann", "sshd", "evil host\n0 x y", 1003).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "evil host\n0 x y"), Some(1003));
        record(&db, "ann", "sshd", "10.0.0.1", 2000).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(2000));
        age(&db, "ann", 100).unwrap();
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.1"), Some(1900));
        // Failures and grants live side by side.
        let s = crate::settings::Settings::from_stored(&Default::default()).unwrap();
        crate::state::record_failure(&db, "ann", 5, &s).unwrap();
        assert_eq!(last(&db, "ann", "su", ""), Some(901));
        assert_eq!(crate::state::failures(&db, "ann").count, 1);
        assert_eq!(revoke(&db, Some("ann")).unwrap(), 3);
        assert_eq!(last(&db, "ann", "su", ""), None);
        assert_eq!(crate::state::failures(&db, "ann").count, 1);
        assert_eq!(last(&db, "bob", "sshd", "10.0.0.1"), Some(1002));
        assert_eq!(revoke(&db, None).unwrap(), 1);
        assert_eq!(last(&db, "bob", "sshd", "10.0.0.1"), None);
    }

    #[test]
    fn old_and_surplus_grants_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        record(&db, "ann", "sshd", "old", 0).unwrap();
        for i in 0..40 {
            record(&db, "ann", "sshd", &format!("10.0.0.{i}"), MAX_AGE + 10 + i).unwrap();
        }
        assert_eq!(last(&db, "ann", "sshd", "old"), None);
        assert_eq!(
            last(&db, "ann", "sshd", "10.0.0.7"),
            None,
            "the oldest beyond 32 went"
        );
        assert_eq!(last(&db, "ann", "sshd", "10.0.0.39"), Some(MAX_AGE + 49));
    }
}
