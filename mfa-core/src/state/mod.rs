//! The volatile state of logins, kept in small files beside the database instead of in it:
//! outstanding passcode challenges (`<database>-challenges/ID`), and per user
//! (`<database>-users/SHA256(user)`) the failure count, the newest accepted TOTP step and
//! the repeat-window grants ([`crate::grants`]): one file, one lock, one write per login.
//! The design's hot path does no fsync ("passcodes live for minutes; a crash of the machine
//! only costs the user a retry"); a write to the database would cost the module an open, a
//! journal and fsyncs. So a login does not write the database (it does not even read it:
//! [`crate::snapshot`]), and these files are written without fsync: a challenge once, under
//! a new name; a user's file in place under an exclusive `flock`, read under a shared one.
//!
//! The lockout itself is durable: when a failure reaches `lockout_after`, the caller records
//! it in the database's `lockouts` table (and so in the policy snapshot). The failure file
//! carries the same `locked_until`, so that logins already at a prompt see the lockout at
//! their next guess. Counting is serialised per user by an exclusive `flock` on the user's
//! file: 32 concurrent wrong guesses count 32.
//!
//! TOTP replay protection takes the same exclusive `flock` on the user's file and moves the
//! step forward only if the new one is greater: a compare-and-set under a lock, so of any
//! number of concurrent logins with one code exactly one gets in.
//!
//! A guess is checked and counted in one step under that lock ([`guess`]): it is evaluated
//! only if the count before it is below `lockout_after`, so of 100 concurrent wrong guesses
//! at most `lockout_after` are evaluated.
//!
//! The user's file also holds the times of the passcode messages queued for the user and the
//! ids of their outstanding challenges ([`sends`]: the send limits, the cap on challenges).
//!
//! Every lock wait is bounded ([`crate::files::LOCK_WAIT`]): a lock held longer (a hung process) is an
//! error naming the file, and the caller's fail rules apply.
//!
//! The user's file also holds the time of the user's last proven second factor
//! ([`record_success`], [`last_success`]: the maintenance run folds it into
//! `users.last_success` for `inactive_after`) and the time of the last notice about a
//! disabled user trying to log in ([`claim_disabled_notice`]: at most one a day). Only a
//! proven factor is a success here: a bypass (a trusted network, an exempt user, the repeat
//! window) proves nothing about the user and does not keep them active.
//!
//! The directories are 0700, owned by root like the database; files are 0600.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::{lock_within, remove_if_exists, replace, sibling};
use crate::settings::Settings;
use crate::{Error, Result};

mod challenges;
pub mod sends;

pub use challenges::*;

/// A user's consecutive failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    pub last: i64,
    /// Unix time until which the user is locked out (0: not locked).
    pub locked_until: i64,
}

fn dir(database: &Path, which: &str) -> Result<PathBuf> {
    let d = sibling(database, which);
    match std::fs::DirBuilder::new().mode(0o700).create(&d) {
        Ok(()) => Ok(d),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(d),
        Err(e) => Err(Error::io(&d, e)),
    }
}

/// A user's login-state file: named by the SHA-256 of the name (PAM_USER may hold any bytes).
fn user_file(database: &Path, user: &str) -> PathBuf {
    let digest = Sha256::digest(user.as_bytes());
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    sibling(database, USERS).join(name)
}

const USERS: &str = "-users";

/// One user's login state, as its file holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserState {
    pub failures: Failures,
    /// The newest accepted TOTP step (0: none).
    pub step: u64,
    /// Repeat-window grants: (time, service, address), newest last ([`crate::grants`]).
    pub grants: Vec<(i64, String, String)>,
    /// Times of the passcode messages queued for the user, oldest first ([`sends`]).
    pub sends: Vec<i64>,
    /// Outstanding challenges of the user: (id, expiry) ([`sends`]).
    pub challenges: Vec<(String, i64)>,
    /// When the user last proved a second factor (0: never, as far as this file knows).
    pub success: i64,
    /// When a notice last told of this (disabled) user trying to log in (0: never).
    pub disabled_notice: i64,
    /// When a notice last told of a lockout of this user (0: never), and how many lockouts
    /// since were not told ([`claim_lockout_notice`]: at most one an hour).
    pub lockout_notice: i64,
    pub lockouts_untold: u32,
}

impl UserState {
    /// The file's text. A first line of fixed width for a given user, `count last locked
    /// step user`, numbers zero-padded, the user name in hex; then one line per grant,
    /// `time service address` with the time zero-padded and service and address in hex
    /// (PAM_USER and PAM_RHOST may hold any bytes, newlines too). So a rewrite in place that changes no grant covers the old content exactly
    /// (no truncate: on ext4 a truncate-and-rewrite also forces block allocation at close).
    fn text(&self, user: &str) -> String {
        let f = &self.failures;
        let mut t = format!(
            "{:010} {:020} {:020} {:020} {}\n",
            f.count,
            f.last.max(0),
            f.locked_until.max(0),
            self.step,
            hex(user.as_bytes())
        );
        for (time, service, address) in &self.grants {
            t.push_str(&format!(
                "{:020} {} {}\n",
                time.max(&0),
                hex(service.as_bytes()),
                hex(address.as_bytes())
            ));
        }
        // Lines a grant parser skips (the first field is not a number).
        for time in &self.sends {
            t.push_str(&format!("s {time}\n"));
        }
        for (id, expires) in &self.challenges {
            t.push_str(&format!("c {id} {expires}\n"));
        }
        // `l` and `d` lines: older readers skip them like the others (not a number).
        if self.success > 0 {
            t.push_str(&format!("l {}\n", self.success));
        }
        if self.disabled_notice > 0 {
            t.push_str(&format!("d {}\n", self.disabled_notice));
        }
        if self.lockout_notice > 0 {
            t.push_str(&format!(
                "n {} {}\n",
                self.lockout_notice, self.lockouts_untold
            ));
        }
        t
    }

    /// Parses a file; anything else (another user's, damaged) is a fresh state.
    fn parse(text: &str, user: &str) -> UserState {
        let mut lines = text.split('\n');
        let mut it = lines.next().unwrap_or_default().splitn(5, ' ');
        let (Some(c), Some(l), Some(u), Some(st), Some(name)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return UserState::default();
        };
        if unhex(name).as_deref() != Some(user.as_bytes()) {
            return UserState::default();
        }
        let (mut grants, mut sends, mut challenges) = (Vec::new(), Vec::new(), Vec::new());
        let (mut success, mut disabled_notice) = (0i64, 0i64);
        let (mut lockout_notice, mut lockouts_untold) = (0i64, 0u32);
        for line in lines {
            let mut f = line.split(' ');
            match f.next() {
                Some("n") => {
                    lockout_notice = f.next().and_then(|t| t.parse().ok()).unwrap_or(0).max(0);
                    lockouts_untold = f.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    if lockout_notice == 0 {
                        lockouts_untold = 0;
                    }
                }
                Some(kind @ ("l" | "d")) => {
                    let t: i64 = f.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                    let slot = if kind == "l" {
                        &mut success
                    } else {
                        &mut disabled_notice
                    };
                    *slot = (*slot).max(t.max(0));
                }
                Some("s") => {
                    if let Some(t) = f.next().and_then(|t| t.parse().ok()) {
                        sends.push(t);
                    }
                }
                Some("c") => {
                    if let (Some(id), Some(exp)) = (f.next(), f.next().and_then(|e| e.parse().ok()))
                        && !id.is_empty()
                        && id.len() <= 64
                        && id.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        challenges.push((id.to_string(), exp));
                    }
                }
                Some(time) => {
                    let grant = (|| {
                        let time = time.parse().ok()?;
                        let service = String::from_utf8(unhex(f.next()?)?).ok()?;
                        let address = String::from_utf8(unhex(f.next()?)?).ok()?;
                        Some((time, service, address))
                    })();
                    grants.extend(grant);
                }
                None => {}
            }
        }
        UserState {
            failures: Failures {
                count: c.parse().unwrap_or(0),
                last: l.parse().unwrap_or(0),
                locked_until: u.parse().unwrap_or(0),
            },
            step: st.parse().unwrap_or(0),
            grants,
            sends,
            challenges,
            success,
            disabled_notice,
            lockout_notice,
            lockouts_untold,
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(t: &str) -> Option<Vec<u8>> {
    if !t.len().is_multiple_of(2) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Runs `f` on the user's state under an exclusive lock and writes it back when `f` says it
/// changed it. `create`: make the file when there is none (else `f` sees nothing and
/// nothing is written).
pub(crate) fn with_user<T>(
    database: &Path,
    user: &str,
    create: bool,
    f: impl FnOnce(&mut UserState) -> (T, bool),
) -> Result<T> {
    if create {
        dir(database, USERS)?;
    }
    let path = user_file(database, user);
    let mut file: File = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        Err(e) if !create && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(f(&mut UserState::default()).0);
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    lock_within(&file, &path, true)?;
    // Bytes, not text: a damaged file (a byte that is not UTF-8) must still be rewritten
    // whole, or its bad tail would stay and the user's count never add up (mfa-fuzz).
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    let mut st = UserState::parse(&String::from_utf8_lossy(&bytes), user);
    let (out, changed) = f(&mut st);
    if changed {
        let line = st.text(user);
        let res = (|| -> std::io::Result<()> {
            file.write_all_at(line.as_bytes(), 0)?;
            if bytes.len() > line.len() {
                file.set_len(line.len() as u64)?;
            }
            Ok(())
        })();
        res.map_err(|e| Error::io(&path, e))?;
    }
    Ok(out)
}

/// A user's state (fresh when no file). Read under a shared lock: never half a write. An
/// error (a lock held too long, a file that cannot be read) is the caller's to handle: it may
/// hide a lockout.
pub(crate) fn read_user(database: &Path, user: &str) -> Result<UserState> {
    let path = user_file(database, user);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UserState::default()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    lock_within(&file, &path, false)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(&path, e))?;
    Ok(UserState::parse(&String::from_utf8_lossy(&bytes), user))
}

/// The names of the users that have a login-state file (each file's first line ends with
/// its user's name, in hex).
pub(crate) fn user_names(database: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(sibling(database, USERS)) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let bytes = std::fs::read(e.ok()?.path()).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let first = text.lines().next()?;
        String::from_utf8(unhex(first.splitn(5, ' ').nth(4)?)?).ok()
    })
    .collect()
}

/// The directory of the users' login-state files (made 0700 when missing): what the fleet
/// follower watches for accepted TOTP steps.
pub fn users_dir(database: &Path) -> Result<PathBuf> {
    dir(database, USERS)
}

/// What a fleet shares of one user's login state ([`shared_in`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub user: String,
    /// The newest accepted TOTP step.
    pub step: u64,
    /// The consecutive failures.
    pub failures: u32,
}

/// What a fleet shares of one login-state file, read under a shared lock; `None` when it
/// cannot be read, is damaged, or is not named after its user.
pub fn shared_in(path: &Path) -> Option<Shared> {
    let mut file = File::open(path).ok()?;
    lock_within(&file, path, false).ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let name = text.split('\n').next()?.splitn(5, ' ').nth(4)?;
    let user = String::from_utf8(unhex(name)?).ok()?;
    if path.file_name()? != user_file(Path::new("/"), &user).file_name()? {
        return None;
    }
    let st = UserState::parse(&text, &user);
    Some(Shared {
        user,
        step: st.step,
        failures: st.failures.count,
    })
}

/// Adds `n` failures another host of the fleet counted (at `last`) to the user's count, so
/// that guesses spread over the fleet's hosts count toward one `lockout_after`. Returns the
/// new count.
pub fn add_failures(database: &Path, user: &str, n: u32, last: i64) -> Result<u32> {
    with_user(database, user, true, |st| {
        let f = &mut st.failures;
        f.count = f.count.saturating_add(n);
        f.last = f.last.max(last);
        (f.count, n > 0)
    })
}

/// A user's failures (none when no file, or when it cannot be read).
pub fn failures(database: &Path, user: &str) -> Failures {
    read_user(database, user).unwrap_or_default().failures
}

/// A guess at a code, checked and counted in one step ([`guess`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guess<T> {
    /// Not evaluated: the user is locked out, or the count already reached `lockout_after`.
    Locked,
    /// The code was right.
    Right(T),
    /// The code was wrong and counted; `locked` is the lock's end when this guess set it.
    Wrong { locked: Option<i64> },
}

/// Evaluates a guess under the user's exclusive lock, only if the user is not locked out and
/// the failure count before it is below `lockout_after`; a wrong guess is counted in the same
/// step. `check` gets the user's state (a TOTP step is accepted in it) and returns the right
/// code's value, or `None` for a wrong one. So concurrent logins cannot evaluate more than
/// `lockout_after` wrong guesses between two successes.
pub(crate) fn guess<T>(
    database: &Path,
    user: &str,
    now: i64,
    settings: &Settings,
    check: impl FnOnce(&mut UserState) -> Result<Option<T>>,
) -> Result<Guess<T>> {
    with_user(database, user, true, |st| {
        let mut changed = false;
        let f = &mut st.failures;
        // A lockout that has run out starts a new count.
        if f.locked_until > 0 && f.locked_until <= now {
            *f = Failures::default();
            changed = true;
        }
        if f.locked_until > now {
            return (Ok(Guess::Locked), changed);
        }
        if settings.lockout_after > 0 && f.count >= settings.lockout_after {
            // Reached under a larger lockout_after: the lock starts now.
            f.locked_until = now + i64::from(settings.lockout_for);
            return (Ok(Guess::Locked), true);
        }
        match check(st) {
            Err(e) => (Err(e), true),
            Ok(Some(t)) => (Ok(Guess::Right(t)), true),
            Ok(None) => {
                let f = &mut st.failures;
                f.count = f.count.saturating_add(1);
                f.last = now;
                let mut locked = None;
                if settings.lockout_after > 0 && f.count >= settings.lockout_after {
                    f.locked_until = now + i64::from(settings.lockout_for);
                    locked = Some(f.locked_until);
                }
                (Ok(Guess::Wrong { locked }), true)
            }
        }
    })?
}

/// Whether the user may not guess now: locked out, or the count at `lockout_after` (no resend
/// for them either).
pub fn blocked(database: &Path, user: &str, now: i64, settings: &Settings) -> Result<bool> {
    let f = read_user(database, user)?.failures;
    if f.locked_until > 0 && f.locked_until <= now {
        return Ok(false);
    }
    Ok(f.locked_until > now || (settings.lockout_after > 0 && f.count >= settings.lockout_after))
}

/// Counts a failure at `now`; returns the time the user is locked out until when this
/// failure locked them out (the caller then records the lockout in the database).
pub fn record_failure(
    database: &Path,
    user: &str,
    now: i64,
    settings: &Settings,
) -> Result<Option<i64>> {
    with_user(database, user, true, |st| {
        let f = &mut st.failures;
        // A lockout that has run out starts a new count.
        if f.locked_until > 0 && f.locked_until <= now {
            *f = Failures::default();
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        let mut locked = None;
        if settings.lockout_after > 0 && f.count >= settings.lockout_after && f.locked_until == 0 {
            // The count stays: only a success or an unlock clears it.
            f.locked_until = now + i64::from(settings.lockout_for);
            locked = Some(f.locked_until);
        }
        (locked, true)
    })
}

/// Accepts TOTP `step` for `user` if it is newer than every step accepted before (that
/// step and every earlier one are refused afterwards). Atomic across processes.
pub fn accept_step(database: &Path, user: &str, step: u64) -> Result<bool> {
    with_user(database, user, true, |st| {
        if st.step >= step {
            return (false, false);
        }
        st.step = step;
        (true, true)
    })
}

/// Forgets the accepted TOTP steps of a user (a new key, or none).
pub fn clear_totp(database: &Path, user: &str) -> Result<()> {
    with_user(database, user, false, |st| {
        let changed = st.step != 0;
        st.step = 0;
        ((), changed)
    })
}

/// Clears a user's failures (a success, an unlock).
pub fn clear_failures(database: &Path, user: &str) -> Result<()> {
    with_user(database, user, false, |st| {
        let changed = st.failures != Failures::default();
        st.failures = Failures::default();
        ((), changed)
    })
}

/// A proven second factor at `now`: clears the failures and records the time of the last
/// success ([`last_success`]) in one locked write. Never for a bypass (trusted network,
/// exempt, repeat window): those prove nothing about the user being active.
pub fn record_success(database: &Path, user: &str, now: i64) -> Result<()> {
    with_user(database, user, true, |st| {
        let changed = st.failures != Failures::default() || st.success < now;
        st.failures = Failures::default();
        st.success = st.success.max(now);
        ((), changed)
    })
}

/// When the user last proved a second factor, as their login-state file says (`None`: no
/// file, none recorded, or a file that cannot be read).
pub fn last_success(database: &Path, user: &str) -> Option<i64> {
    let t = read_user(database, user).ok()?.success;
    (t > 0).then_some(t)
}

/// At most one notice a day about a disabled user trying to log in: true (and the time
/// recorded, under the user's lock) when none was sent for `user` in the last 24 hours, so
/// of concurrent attempts exactly one is told.
pub fn claim_disabled_notice(database: &Path, user: &str, now: i64) -> Result<bool> {
    with_user(database, user, true, |st| {
        if st.disabled_notice > 0 && now - st.disabled_notice < 86_400 && st.disabled_notice <= now
        {
            return (false, false);
        }
        st.disabled_notice = now;
        (true, true)
    })
}

/// At most one lockout notice an hour per user: `Some(n)` (and the time recorded, under the
/// user's lock) when none was sent for `user` in the last hour, `n` being the lockouts not
/// told since the last notice; `None` when one was, and this lockout is counted for the
/// next. Whoever knows a password can lock a user out again and again (`lockout_after=1`,
/// `lockout_for=1m`: 1,440 times a day), and notices pass the sender's send limits.
pub fn claim_lockout_notice(database: &Path, user: &str, now: i64) -> Result<Option<u32>> {
    with_user(database, user, true, |st| {
        if st.lockout_notice > 0 && now - st.lockout_notice < 3600 && st.lockout_notice <= now {
            st.lockouts_untold = st.lockouts_untold.saturating_add(1);
            return (None, true);
        }
        let untold = st.lockouts_untold;
        st.lockout_notice = now;
        st.lockouts_untold = 0;
        (Some(untold), true)
    })
}

/// Forgets the login state (file and challenges) of every name for which `known` is false:
/// users an import removed (and names without a record, whose failure counts start over;
/// their lockouts are in the database and stay). Returns how many names were forgotten.
pub fn forget_unknown(database: &Path, known: impl Fn(&str) -> bool) -> Result<usize> {
    let mut n = 0;
    for name in user_names(database).into_iter().filter(|n| !known(n)) {
        drop_challenges_of(database, Some(&name))?;
        forget_user(database, &name)?;
        n += 1;
    }
    Ok(n)
}

/// Forgets everything about a user (deleted).
pub fn forget_user(database: &Path, user: &str) -> Result<()> {
    remove_if_exists(&user_file(database, user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(after: u32) -> Settings {
        let mut s = Settings::from_stored(&BTreeMap::new()).unwrap();
        s.lockout_after = after;
        s.lockout_for = 600;
        s
    }

    #[test]
    fn failures_count_lock_expire_and_clear() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(3);
        assert_eq!(record_failure(&db, "cy", 100, &s).unwrap(), None);
        assert_eq!(record_failure(&db, "cy", 101, &s).unwrap(), None);
        assert_eq!(record_failure(&db, "cy", 102, &s).unwrap(), Some(702));
        // Further failures while locked keep the lock and the count.
        assert_eq!(record_failure(&db, "cy", 103, &s).unwrap(), None);
        let f = failures(&db, "cy");
        assert_eq!((f.count, f.locked_until), (4, 702));
        // After the lock ran out, a failure starts a new count.
        assert_eq!(record_failure(&db, "cy", 800, &s).unwrap(), None);
        assert_eq!(failures(&db, "cy").count, 1);
        clear_failures(&db, "cy").unwrap();
        assert_eq!(failures(&db, "cy"), Failures::default());
        assert_eq!(failures(&db, "nobody"), Failures::default());
    }

    /// A damaged file (a byte that is not UTF-8, found by mfa-fuzz) is rewritten whole by
    /// the next write: counts add up again, and nothing of the damage stays behind.
    #[test]
    fn a_damaged_state_file_heals_at_the_next_write() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(3);
        record_failure(&db, "cy", 100, &s).unwrap();
        let path = user_file(&db, "cy");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(
            b"\xff\xfe trailing damage that is longer than any state line ......",
        );
        std::fs::write(&path, &bytes).unwrap();
        // The intact first line still counts: 1, then 2, then the lockout at 3.
        assert_eq!(record_failure(&db, "cy", 101, &s).unwrap(), None);
        assert_eq!(failures(&db, "cy").count, 2, "the count must add up again");
        let healed = std::fs::read(&path).unwrap();
        assert!(std::str::from_utf8(&healed).is_ok(), "{healed:?}");
        assert!(!healed.windows(6).any(|w| w == b"damage"));
        assert_eq!(record_failure(&db, "cy", 102, &s).unwrap(), Some(702));
    }

    #[test]
    fn a_totp_step_is_accepted_once_and_never_an_earlier_one() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        assert!(accept_step(&db, "tom", 100).unwrap());
        assert!(!accept_step(&db, "tom", 100).unwrap());
        assert!(!accept_step(&db, "tom", 99).unwrap());
        assert!(accept_step(&db, "tom", 101).unwrap());
        assert!(accept_step(&db, "ann", 5).unwrap(), "per user");
        // Failures and the step share the user's file without disturbing each other.
        record_failure(&db, "tom", 5, &settings(0)).unwrap();
        assert!(!accept_step(&db, "tom", 101).unwrap());
        assert_eq!(failures(&db, "tom").count, 1);
        clear_failures(&db, "tom").unwrap();
        assert!(
            !accept_step(&db, "tom", 101).unwrap(),
            "a success keeps the step"
        );
        clear_totp(&db, "tom").unwrap();
        assert!(
            accept_step(&db, "tom", 50).unwrap(),
            "a new key starts over"
        );
        forget_user(&db, "tom").unwrap();
        assert_eq!(failures(&db, "tom"), Failures::default());
        // Eight threads race with one step: exactly one wins.
        let wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    if accept_step(&db, "zoe", 7).unwrap() {
                        wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(wins.into_inner(), 1);
    }

    #[test]
    fn a_success_clears_failures_and_is_remembered_next_to_everything_else() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        assert_eq!(last_success(&db, "ann"), None);
        record_failure(&db, "ann", 5, &settings(0)).unwrap();
        assert!(accept_step(&db, "ann", 40).unwrap());
        record_success(&db, "ann", 1000).unwrap();
        assert_eq!(failures(&db, "ann"), Failures::default());
        assert_eq!(last_success(&db, "ann"), Some(1000));
        assert!(!accept_step(&db, "ann", 40).unwrap(), "the step stays");
        // An earlier time (a clock step back) never moves it backwards.
        record_success(&db, "ann", 900).unwrap();
        assert_eq!(last_success(&db, "ann"), Some(1000));
        // Failures and other writes keep it.
        record_failure(&db, "ann", 1001, &settings(0)).unwrap();
        clear_failures(&db, "ann").unwrap();
        assert_eq!(last_success(&db, "ann"), Some(1000));
        // A file of an older build (no `l` line) reads fine; a damaged `l` line is none.
        let path = user_file(&db, "bob");
        record_failure(&db, "bob", 5, &settings(0)).unwrap();
        assert_eq!(last_success(&db, "bob"), None);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("l notanumber\nl -5\nl\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(last_success(&db, "bob"), None);
        assert_eq!(failures(&db, "bob").count, 1);
    }

    /// An older build's parser reads a file with the new lines as it did: the `l` and `d`
    /// lines are skipped like `s` and `c` (their first field is not a number), so no grant
    /// comes out of them.
    #[test]
    fn the_new_lines_are_no_grants_to_the_grant_parser() {
        let mut st = UserState {
            success: 1_700_000_000,
            disabled_notice: 1_700_000_001,
            ..UserState::default()
        };
        st.grants.push((5, "sshd".into(), "10.0.0.1".into()));
        let text = st.text("ann");
        assert!(text.contains("\nl 1700000000\n") && text.contains("\nd 1700000001\n"));
        let back = UserState::parse(&text, "ann");
        assert_eq!(back, st);
        assert_eq!(back.grants.len(), 1);
    }

    #[test]
    fn a_disabled_attempt_is_told_once_a_day_even_when_racing() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let told = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|sc| {
            for _ in 0..16 {
                sc.spawn(|| {
                    if claim_disabled_notice(&db, "dan", 10_000).unwrap() {
                        told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(told.into_inner(), 1);
        assert!(!claim_disabled_notice(&db, "dan", 10_000 + 86_399).unwrap());
        assert!(claim_disabled_notice(&db, "dan", 10_000 + 86_400).unwrap());
        assert!(
            claim_disabled_notice(&db, "eve", 10_000).unwrap(),
            "per user"
        );
    }

    #[test]
    fn forgetting_the_names_an_import_removed() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        for u in ["ann", "bob", "cy"] {
            record_failure(&db, u, 5, &settings(0)).unwrap();
        }
        put_challenge(&db, &challenges::tests::ch("0b0b", "bob", 5)).unwrap();
        let n = forget_unknown(&db, |n| n != "bob").unwrap();
        assert_eq!(n, 1);
        assert_eq!(failures(&db, "bob"), Failures::default());
        assert_eq!(failures(&db, "ann").count, 1);
        assert!(challenges(&db).unwrap().is_empty());
        let mut names = user_names(&db);
        names.sort();
        assert_eq!(names, ["ann", "cy"]);
    }

    #[test]
    fn any_bytes_in_a_user_name() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let odd = "x y\nz 0000000001";
        record_failure(&db, odd, 5, &settings(0)).unwrap();
        record_failure(&db, odd, 6, &settings(0)).unwrap();
        assert_eq!(failures(&db, odd).count, 2);
        assert_eq!(failures(&db, "x y"), Failures::default());
        assert_eq!(user_names(&db), [odd]);
    }

    #[test]
    fn concurrent_failures_all_count() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(0);
        std::thread::scope(|sc| {
            for _ in 0..8 {
                sc.spawn(|| {
                    for _ in 0..25 {
                        record_failure(&db, "zed", 5, &s).unwrap();
                    }
                });
            }
        });
        assert_eq!(failures(&db, "zed").count, 200);
    }

    #[test]
    fn a_guess_is_evaluated_only_below_the_limit_even_when_racing() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(10);
        let evaluated = std::sync::atomic::AtomicUsize::new(0);
        let locked = std::sync::atomic::AtomicUsize::new(0);
        let gate = std::sync::Barrier::new(100);
        std::thread::scope(|sc| {
            for _ in 0..100 {
                sc.spawn(|| {
                    gate.wait();
                    let g = guess(&db, "zed", 1000, &s, |_| {
                        evaluated.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(None::<()>)
                    })
                    .unwrap();
                    if g == Guess::Locked {
                        locked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(evaluated.into_inner(), 10);
        assert_eq!(locked.into_inner(), 90);
        let f = failures(&db, "zed");
        assert_eq!((f.count, f.locked_until), (10, 1600));
        assert!(blocked(&db, "zed", 1000, &s).unwrap());
        // Once the lock ran out, guesses are evaluated again, from a fresh count.
        assert!(!blocked(&db, "zed", 1600, &s).unwrap());
        let g = guess(&db, "zed", 1600, &s, |_| Ok(Some(7))).unwrap();
        assert_eq!(g, Guess::Right(7));
        // A count reached under a larger lockout_after locks at the next guess, unevaluated.
        for t in 0..5 {
            guess(&db, "amy", 10 + t, &settings(0), |_| Ok(None::<()>)).unwrap();
        }
        let g = guess(&db, "amy", 20, &settings(3), |_| -> Result<Option<()>> {
            panic!("evaluated past the limit")
        })
        .unwrap();
        assert_eq!(g, Guess::Locked);
        assert_eq!(failures(&db, "amy").locked_until, 620);
    }

    #[test]
    fn a_held_lock_is_waited_for_boundedly() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        record_failure(&db, "ann", 5, &settings(0)).unwrap();
        let held = File::open(user_file(&db, "ann")).unwrap();
        held.lock().unwrap();
        let t = std::time::Instant::now();
        let e = record_failure(&db, "ann", 6, &settings(0)).unwrap_err();
        let spent = t.elapsed();
        assert!(
            spent >= crate::files::LOCK_WAIT && spent < crate::files::LOCK_WAIT * 2,
            "{spent:?}"
        );
        assert!(e.to_string().contains("still locked"), "{e}");
        // A shared reader waits too, then fails: an unreadable state is an error, not a
        // fresh one (it might hide a lockout).
        assert!(read_user(&db, "ann").is_err());
        drop(held);
        assert_eq!(read_user(&db, "ann").unwrap().failures.count, 1);
    }
}
