//! Send limits and the cap on outstanding challenges, checked when a passcode is queued.
//!
//! Three counters, all checked and recorded in one step before a message is queued:
//! - per user: the times of the user's messages, in the user's state file (the file a login
//!   reads anyway): at most `send_limit_user` per `send_window`;
//! - per destination: `<database>-sends/HMAC(key, destination)` (a keyed hash: the file names
//!   do not reveal addresses), the times of the messages to that address or number whatever
//!   the user: at most `send_limit_destination` per `send_window`;
//! - per host: `<database>-sends/host`, messages per minute over the last hour: at most
//!   `send_limit_host` per hour.
//!
//! The locks are taken in that order (user, destination, host), each bounded
//! ([`crate::files::LOCK_WAIT`]); a refusal records nothing. Resends count like first sends.
//!
//! The user's file also lists the user's outstanding challenges: a login that would have
//! more than [`MAX_CHALLENGES`] of them is refused, after the expired ones (and those whose
//! file is gone) were dropped and their files deleted.
//!
//! What has left every window goes as logins go (a few destination counters per sweep, a
//! user's own entries at their next message); the daily `mfa-admin maintain` takes the rest:
//! [`sweep_counters`] (every idle destination counter) and [`prune_user_states`] (expired
//! send times, challenge entries and grants in every user's file, rewritten in place under
//! the user's lock).

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{Challenge, challenge_path, dir, lock_within, put_challenge, with_user};
use crate::files::sibling;
use crate::settings::Settings;
use crate::{Error, Result};

/// Outstanding challenges one user may have (logins waiting at a passcode prompt).
pub const MAX_CHALLENGES: usize = 8;

const SENDS: &str = "-sends";
const HOUR: i64 = 3600;

/// Which limit refused a message, and when the next one may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// `user`, `destination`, `host` or `challenges` (too many outstanding).
    pub which: &'static str,
    /// The limit that was reached.
    pub limit: u32,
    /// Seconds the limit counts over.
    pub window: i64,
    /// Seconds until a message would be accepted (at least 1).
    pub wait: i64,
}

impl Limited {
    /// For the log: `rate-limited: 5 messages to this destination in 15m (next in 312 s)`.
    pub fn reason(&self) -> String {
        let window = crate::settings::format_duration(u32::try_from(self.window).unwrap_or(0));
        match self.which {
            "challenges" => format!(
                "rate-limited: {} outstanding challenges for this user (next in {} s)",
                self.limit, self.wait
            ),
            which => format!(
                "rate-limited: {} messages {} in {window} (next in {} s)",
                self.limit,
                match which {
                    "user" => "to this user",
                    "destination" => "to this destination",
                    _ => "from this host",
                },
                self.wait
            ),
        }
    }

    /// Whole minutes to wait, rounded up (at least 1).
    pub fn minutes(&self) -> i64 {
        (self.wait.max(1) + 59) / 60
    }
}

/// The name of a destination's counter file: the keyed hash of the destination (hex).
pub fn destination_key(key: &[u8], destination: &str) -> Result<String> {
    let h = crate::passcode::hash(key, "send-limit-destination", destination)?;
    Ok(h.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// Checks the limits for one more message of `c.user` to the destination `dest_key` at
/// `c.created`; when none is reached, records the send and the challenge (whose file it
/// writes) and returns `Ok(None)`. A reached limit records nothing and returns it.
pub fn reserve(
    database: &Path,
    c: &Challenge,
    dest_key: &str,
    s: &Settings,
) -> Result<Option<Limited>> {
    let now = c.created;
    with_user(database, &c.user, true, |st| {
        // Outstanding challenges: the expired ones go (their file too), and those whose file
        // is gone (answered, given up).
        let before = st.challenges.len();
        st.challenges.retain(|(id, expires)| {
            let Ok(path) = challenge_path(database, id) else {
                return false;
            };
            if *expires < now {
                let _ = super::remove_if_exists(&path);
                return false;
            }
            path.exists()
        });
        // At the cap, the files themselves say (an administrator may have expired them).
        if st.challenges.len() >= MAX_CHALLENGES {
            st.challenges
                .retain(|(id, _)| match super::challenge(database, id) {
                    Ok(Some(c)) if c.expires >= now => true,
                    Ok(Some(_)) => {
                        let _ = super::delete_challenge(database, id);
                        false
                    }
                    Ok(None) => false,
                    // Unreadable: it counts (and goes when its listed expiry passes).
                    Err(_) => true,
                });
        }
        let changed = st.challenges.len() != before;
        if st.challenges.len() >= MAX_CHALLENGES {
            let wait = st
                .challenges
                .iter()
                .map(|(_, e)| e - now)
                .min()
                .unwrap_or(1);
            return (
                Ok(Some(Limited {
                    which: "challenges",
                    limit: MAX_CHALLENGES as u32,
                    window: 0,
                    wait: wait.max(1),
                })),
                changed,
            );
        }
        let (res, recorded) = within_limits(st, database, dest_key, s, now, || {
            put_challenge(database, c)
        });
        if let Ok(None) = res {
            st.challenges.push((c.id.clone(), c.expires));
        }
        (res, changed || recorded)
    })?
}

/// Checks the limits for one more message to `user` that is not a passcode (a Duo
/// enrollment link) at `now`: it counts like a passcode toward the user's, destination's and
/// host's limits, so a password cannot flood anyone's inbox with links either. `Ok(None)`:
/// recorded, send it.
pub fn reserve_notice(
    database: &Path,
    user: &str,
    dest_key: &str,
    s: &Settings,
    now: i64,
) -> Result<Option<Limited>> {
    with_user(database, user, true, |st| {
        within_limits(st, database, dest_key, s, now, || Ok(()))
    })?
}

/// Under the user's lock: the user's limit, then the destination's and the host's; when
/// none is reached and `then` succeeds, the send is recorded in all three. Returns the
/// refusal, if any, and whether the user's state changed.
fn within_limits(
    st: &mut super::UserState,
    database: &Path,
    dest_key: &str,
    s: &Settings,
    now: i64,
    then: impl FnOnce() -> Result<()>,
) -> (Result<Option<Limited>>, bool) {
    let window = i64::from(s.send_window);
    let before = st.sends.len();
    st.sends.retain(|t| *t > now - window && *t <= now);
    let changed = st.sends.len() != before;
    if let Some(l) = over(&st.sends, s.send_limit_user, window, now, "user") {
        return (Ok(Some(l)), changed);
    }
    let res = (|| -> Result<Option<Limited>> {
        if let Some(l) = destination_and_host(database, dest_key, s, now)? {
            return Ok(Some(l));
        }
        then()?;
        Ok(None)
    })();
    match res {
        Ok(None) => {
            st.sends.push(now);
            // Only the newest `limit` times matter.
            let keep = s.send_limit_user.max(1) as usize;
            if st.sends.len() > keep {
                let extra = st.sends.len() - keep;
                st.sends.drain(..extra);
            }
            (Ok(None), true)
        }
        other => (other, changed),
    }
}

/// Forgets a challenge in its user's list (answered or given up); its file goes separately.
pub fn forget_challenge(database: &Path, user: &str, id: &str) -> Result<()> {
    with_user(database, user, false, |st| {
        let before = st.challenges.len();
        st.challenges.retain(|(c, _)| c != id);
        ((), st.challenges.len() != before)
    })
}

/// The refusal when `times` (newest last, all within the window) already hold `limit`
/// messages (0 = no limit).
fn over(times: &[i64], limit: u32, window: i64, now: i64, which: &'static str) -> Option<Limited> {
    let limit_n = limit as usize;
    if limit == 0 || times.len() < limit_n {
        return None;
    }
    // The message that must leave the window before another may go.
    let oldest = times.get(times.len() - limit_n).copied().unwrap_or(now);
    Some(Limited {
        which,
        limit,
        window,
        wait: (oldest + window - now).max(1),
    })
}

/// A counter file, opened (created) and locked.
fn open_locked(path: &Path) -> Result<(File, String)> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    lock_within(&f, path, true)?;
    let mut bytes = Vec::new();
    // Bounded: a counter file is small; anything larger or not text is damage, whose lines
    // do not parse and are dropped at the next write.
    (&mut f)
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok((f, String::from_utf8_lossy(&bytes).into_owned()))
}

fn write_back(f: &File, path: &Path, old: &str, new: &str) -> Result<()> {
    let res = (|| -> std::io::Result<()> {
        f.write_all_at(new.as_bytes(), 0)?;
        if old.len() > new.len() {
            f.set_len(new.len() as u64)?;
        }
        Ok(())
    })();
    res.map_err(|e| Error::io(path, e))
}

fn sends_dir(database: &Path) -> Result<PathBuf> {
    dir(database, SENDS)
}

/// Checks and records the destination's and the host's counters (both or neither).
fn destination_and_host(
    database: &Path,
    dest_key: &str,
    s: &Settings,
    now: i64,
) -> Result<Option<Limited>> {
    if s.send_limit_destination == 0 && s.send_limit_host == 0 {
        return Ok(None);
    }
    if dest_key.is_empty()
        || dest_key.len() > 64
        || !dest_key.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(Error::Invalid(format!("bad destination key {dest_key:?}")));
    }
    let d = sends_dir(database)?;
    let window = i64::from(s.send_window);
    let mut dest = None;
    if s.send_limit_destination > 0 {
        let path = d.join(dest_key);
        let (f, text) = open_locked(&path)?;
        let mut times: Vec<i64> = text
            .lines()
            .filter_map(|l| l.parse().ok())
            .filter(|t| *t > now - window && *t <= now)
            .collect();
        if let Some(l) = over(&times, s.send_limit_destination, window, now, "destination") {
            return Ok(Some(l));
        }
        times.push(now);
        let keep = s.send_limit_destination as usize;
        if times.len() > keep {
            let extra = times.len() - keep;
            times.drain(..extra);
        }
        dest = Some((f, path, text, times));
    }
    if s.send_limit_host > 0 {
        let path = d.join("host");
        let (f, text) = open_locked(&path)?;
        let minute = now.div_euclid(60);
        // (minute, count), oldest first, within the last hour.
        let mut buckets: Vec<(i64, u64)> = text
            .lines()
            .filter_map(|l| {
                let (m, n) = l.split_once(' ')?;
                Some((m.parse().ok()?, n.parse().ok()?))
            })
            .filter(|(m, _)| *m > minute - 60 && *m <= minute)
            .collect();
        buckets.sort_unstable();
        // Saturating: a damaged file may claim any count (mfa-fuzz found a wrapping sum).
        let total: u64 = buckets.iter().fold(0u64, |a, (_, n)| a.saturating_add(*n));
        let limit = u64::from(s.send_limit_host);
        if total >= limit {
            // The minute whose messages must leave the hour before another may go.
            let mut must = total - limit + 1;
            let mut leaves = minute + 1;
            for (m, n) in &buckets {
                if *n >= must {
                    leaves = *m;
                    break;
                }
                must -= n;
            }
            return Ok(Some(Limited {
                which: "host",
                limit: s.send_limit_host,
                window: HOUR,
                wait: ((leaves + 60) * 60 - now).max(1),
            }));
        }
        match buckets.last_mut() {
            Some((m, n)) if *m == minute => *n = n.saturating_add(1),
            _ => buckets.push((minute, 1)),
        }
        let new: String = buckets.iter().map(|(m, n)| format!("{m} {n}\n")).collect();
        write_back(&f, &path, &text, &new)?;
    }
    if let Some((f, path, text, times)) = dest {
        let new: String = times.iter().map(|t| format!("{t}\n")).collect();
        write_back(&f, &path, &text, &new)?;
    }
    // Destinations nobody sent to for a day go, a few at a time (one reservation in 64).
    if now.rem_euclid(64) == 0 {
        sweep(&d, now, 256);
    }
    Ok(None)
}

/// Removes up to `at_most` looked-at entries' worth of destination counters untouched for a
/// day (the longest window): regular files named by a key; the host counter, anything else
/// and a symlink (which is not followed) stay. Returns how many it removed.
fn sweep(d: &Path, now: i64, at_most: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(d) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.take(at_most).flatten() {
        let name = e.file_name();
        let is_key = name.to_str().is_some_and(|k| {
            !k.is_empty() && k.len() <= 64 && k.bytes().all(|b| b.is_ascii_hexdigit())
        });
        // DirEntry::metadata does not follow a symlink.
        let old = is_key
            && e.metadata().ok().filter(|m| m.is_file()).is_some_and(|m| {
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX) < now - 86_400)
            });
        if old && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// Removes every destination counter nobody sent to for a day (logins remove a few at a
/// time). A counter a login writes meanwhile is one touched now, which stays; at worst one
/// count of a destination idle for a day is lost to a login that opened it just before.
/// Returns how many were removed.
pub fn sweep_counters(database: &Path, now: i64) -> usize {
    sweep(&sends_path(database), now, usize::MAX)
}

/// What [`prune_user_states`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Users' files looked at.
    pub users: usize,
    /// Users' files rewritten (something in them had expired).
    pub rewritten: usize,
    /// Entries dropped: send times out of the send window, challenge entries expired or
    /// whose file is gone, grants older than the longest repeat window.
    pub entries: usize,
    /// Files that could not be rewritten (a lock held too long, an I/O error), with why.
    pub failed: Vec<String>,
}

/// Drops from every user's login-state file what has left its window at `now`: send times
/// older than `send_window`, challenge entries that expired (or whose challenge file is
/// gone), grants older than [`crate::grants::MAX_AGE`]. Failure counts, lockouts and the
/// newest TOTP step stay (a count only ends with a success or an unlock; the step guards
/// against replay). Each file is rewritten in place under its user's exclusive lock, the way
/// a login writes it, so a login meanwhile waits (boundedly) and then reads the pruned file;
/// no file is deleted (a login that opened it before would write into a removed file).
pub fn prune_user_states(database: &Path, now: i64, s: &Settings) -> Pruned {
    let window = i64::from(s.send_window);
    let mut out = Pruned::default();
    for name in super::user_names(database) {
        out.users += 1;
        let res = with_user(database, &name, false, |st| {
            let before = st.sends.len() + st.challenges.len() + st.grants.len();
            st.sends.retain(|t| *t > now - window && *t <= now);
            st.challenges.retain(|(id, expires)| {
                *expires >= now && challenge_path(database, id).is_ok_and(|p| p.exists())
            });
            // As grants::record drops them.
            st.grants
                .retain(|(t, _, _)| *t > now - crate::grants::MAX_AGE);
            let dropped = before - (st.sends.len() + st.challenges.len() + st.grants.len());
            (dropped, dropped > 0)
        });
        match res {
            Ok(0) => {}
            Ok(n) => {
                out.rewritten += 1;
                out.entries += n;
            }
            Err(e) => out.failed.push(e.to_string()),
        }
    }
    out
}

/// The sends directory of a database (tests).
#[doc(hidden)]
pub fn sends_path(database: &Path) -> PathBuf {
    sibling(database, SENDS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn settings(user: u32, dest: u32, host: u32) -> Settings {
        let mut s = Settings::from_stored(&BTreeMap::new()).unwrap();
        s.send_limit_user = user;
        s.send_limit_destination = dest;
        s.send_limit_host = host;
        s.send_window = 900;
        s
    }

    fn ch(n: u32, user: &str, now: i64) -> Challenge {
        let mut c = super::super::challenges::tests::ch(&format!("{n:04x}"), user, now);
        c.expires = now + 600;
        c
    }

    /// A damaged host counter that claims more than u64 can add (mfa-fuzz) is a full hour:
    /// refused, never a panic or a count that wraps round to "room left".
    #[test]
    fn a_host_counter_claiming_too_much_is_full_not_wrapped() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(0, 0, 100);
        let now = 6_000_000;
        let minute = now / 60;
        let dir = sends_dir(&db).unwrap();
        std::fs::write(
            dir.join("host"),
            format!("{} {}\n{} 1\n", minute - 5, u64::MAX, minute - 1),
        )
        .unwrap();
        let got = destination_and_host(&db, "ab", &s, now).unwrap();
        assert!(
            matches!(got, Some(Limited { which: "host", .. })),
            "{got:?}"
        );
        // And a counter at the edge of u64 in this minute saturates instead of wrapping.
        std::fs::write(dir.join("host"), format!("{minute} {}\n", u64::MAX - 1)).unwrap();
        let s = settings(0, 0, 99_999);
        assert!(destination_and_host(&db, "ab", &s, now).unwrap().is_some());
    }

    #[test]
    fn user_destination_and_host_limits() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(3, 4, 5);
        let mut n = 0;
        let mut go = |user: &str, dest: &str, now: i64| {
            n += 1;
            let c = ch(n, user, now);
            let r = reserve(&db, &c, dest, &s).unwrap();
            if r.is_none() {
                // Answered: the challenge goes.
                crate::state::delete_challenge(&db, &c.id).unwrap();
            }
            r
        };
        for t in 0..3 {
            assert_eq!(go("ann", "aa", 1000 + t), None);
        }
        let l = go("ann", "aa", 1010).unwrap();
        assert_eq!((l.which, l.limit, l.wait), ("user", 3, 890));
        assert_eq!(l.minutes(), 15);
        assert!(
            l.reason().contains("3 messages to this user in 15m"),
            "{}",
            l.reason()
        );
        // Another user, same destination: the destination's fourth goes, its fifth not.
        assert_eq!(go("bob", "aa", 1011), None);
        let l = go("bob", "aa", 1012).unwrap();
        assert_eq!(l.which, "destination");
        // Refusals recorded nothing: bob may still send elsewhere; the host is then at 5 of 5.
        assert_eq!(go("bob", "bb", 1013), None);
        let l = go("cy", "cc", 1014).unwrap();
        assert_eq!((l.which, l.limit), ("host", 5));
        assert_eq!(l.wait, (1000 / 60 + 60) * 60 - 1014);
        // Once the window has passed, ann may send again; the host's hour too.
        assert_eq!(go("ann", "dd", 1000 + 3600), None);
        // 0 = no limit.
        let free = settings(0, 0, 0);
        for k in 0..50 {
            let c = ch(1000 + k, "zed", 5000);
            assert_eq!(reserve(&db, &c, "ee", &free).unwrap(), None);
            crate::state::delete_challenge(&db, &c.id).unwrap();
        }
    }

    #[test]
    fn outstanding_challenges_are_capped_and_swept() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(0, 0, 0);
        for n in 0..MAX_CHALLENGES as u32 {
            assert_eq!(reserve(&db, &ch(n, "ann", 100), "aa", &s).unwrap(), None);
        }
        let l = reserve(&db, &ch(99, "ann", 100), "aa", &s)
            .unwrap()
            .unwrap();
        assert_eq!((l.which, l.wait), ("challenges", 600));
        assert_eq!(crate::state::challenges(&db).unwrap().len(), MAX_CHALLENGES);
        // One answered (its file gone): room for one more.
        crate::state::delete_challenge(&db, "0000").unwrap();
        assert_eq!(reserve(&db, &ch(100, "ann", 100), "aa", &s).unwrap(), None);
        // Later, the expired ones are swept with their files.
        assert_eq!(reserve(&db, &ch(101, "ann", 1000), "aa", &s).unwrap(), None);
        assert_eq!(crate::state::challenges(&db).unwrap().len(), 1);
        // Another user is not affected by ann's.
        assert_eq!(reserve(&db, &ch(102, "bob", 100), "aa", &s).unwrap(), None);
    }

    #[test]
    fn damaged_counter_files_start_over() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(0, 2, 0);
        std::fs::create_dir_all(sends_path(&db)).unwrap();
        std::fs::write(
            sends_path(&db).join("aa"),
            b"x\n\xff\n-5\n99999999999999999999\n",
        )
        .unwrap();
        assert_eq!(
            reserve(&db, &ch(1, "ann", 100_000), "aa", &s).unwrap(),
            None
        );
        assert_eq!(
            reserve(&db, &ch(2, "ann", 100_001), "aa", &s).unwrap(),
            None
        );
        assert!(
            reserve(&db, &ch(3, "ann", 100_002), "aa", &s)
                .unwrap()
                .is_some()
        );
        // A key that is not hex never reaches the file system.
        assert!(reserve(&db, &ch(4, "ann", 100_003), "../x", &s).is_err());
    }

    #[test]
    fn pruning_drops_what_left_its_window_and_keeps_counts_step_and_live_entries() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        // A user limit of 5 keeps 5 send times.
        let s = settings(5, 0, 0);
        assert_eq!(prune_user_states(&db, 5, &s), Pruned::default());
        // ann: two messages long ago (one challenge answered, one abandoned), a grant eight
        // days old and one from now, two failures and a TOTP step.
        let now = 10_000_000;
        for n in 0..2 {
            assert_eq!(
                reserve(&db, &ch(n, "ann", 1_000 + i64::from(n)), "aa", &s).unwrap(),
                None
            );
        }
        crate::state::delete_challenge(&db, "0000").unwrap();
        // (A grant recorded drops those older than MAX_AGE from its own time: the fresh one
        // first.)
        crate::grants::record(&db, "ann", "sshd", "10.0.0.2", now - 60).unwrap();
        crate::grants::record(&db, "ann", "sshd", "10.0.0.1", now - 8 * 86_400).unwrap();
        let mut st = settings(0, 0, 0);
        st.lockout_after = 0;
        crate::state::record_failure(&db, "ann", now - 30, &st).unwrap();
        crate::state::record_failure(&db, "ann", now - 20, &st).unwrap();
        assert!(crate::state::accept_step(&db, "ann", 77).unwrap());
        // bob: a live challenge and a message within the window.
        let live = ch(9, "bob", now - 10);
        assert_eq!(reserve(&db, &live, "bb", &s).unwrap(), None);
        let p = prune_user_states(&db, now, &s);
        // ann: 2 send times, 2 challenge entries, 1 grant.
        assert_eq!((p.users, p.rewritten, p.entries), (2, 1, 5), "{p:?}");
        assert!(p.failed.is_empty());
        let ann = crate::state::read_user(&db, "ann").unwrap();
        assert!(ann.sends.is_empty() && ann.challenges.is_empty(), "{ann:?}");
        assert_eq!(ann.grants.len(), 1);
        assert_eq!(
            crate::grants::last(&db, "ann", "sshd", "10.0.0.2"),
            Some(now - 60)
        );
        assert_eq!((ann.failures.count, ann.step), (2, 77));
        let bob = crate::state::read_user(&db, "bob").unwrap();
        assert_eq!(bob.sends, [now - 10]);
        assert_eq!(bob.challenges, [(live.id.clone(), live.expires)]);
        // Nothing more to do.
        let again = prune_user_states(&db, now, &s);
        assert_eq!((again.users, again.rewritten, again.entries), (2, 0, 0));
    }

    /// Pruning beside logins: every failure they count while it rewrites the file stays.
    #[test]
    fn pruning_loses_no_concurrent_count() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let s = settings(0, 0, 0);
        let mut st = settings(0, 0, 0);
        st.lockout_after = 0;
        let now = crate::now();
        // Something to prune at every pass: an old send time and challenge, added anew.
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..25 {
                        crate::state::record_failure(&db, "zed", now, &st).unwrap();
                    }
                });
            }
            sc.spawn(|| {
                for k in 0..25 {
                    let _ = reserve(&db, &ch(k, "zed", now - 5_000), "aa", &s);
                    let p = prune_user_states(&db, now, &s);
                    assert!(p.failed.is_empty(), "{p:?}");
                }
            });
        });
        assert_eq!(crate::state::failures(&db, "zed").count, 100);
        // The last pass came after the last message: nothing of them is left.
        let zed = crate::state::read_user(&db, "zed").unwrap();
        assert!(zed.sends.is_empty() && zed.challenges.is_empty(), "{zed:?}");
    }

    #[test]
    fn destination_counters_untouched_for_a_day_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("sends");
        std::fs::create_dir_all(&dir).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for name in ["aa", "bb", "host"] {
            let f = std::fs::File::create(dir.join(name)).unwrap();
            f.set_modified(old).unwrap();
        }
        std::fs::write(dir.join("cc"), b"1\n").unwrap();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        assert_eq!(sweep(&dir, now, usize::MAX), 2);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["cc", "host"]);
    }
}
