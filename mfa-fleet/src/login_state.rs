//! The login state a fleet shares: accepted TOTP steps (replay protection) and failure
//! counts (guesses spread over the hosts count toward one `lockout_after`). Logins never
//! wait on it; while the central store is reachable a step or a failure reaches the other
//! hosts in about a second (one follower tick; measured by the system test).
//!
//! A login keeps its own rules in the user's login-state file (`mfa_core::state`: the newest
//! accepted step, compare-and-set under a lock; the failure count, checked and counted under
//! the same lock). `mfa-fleetd` watches those files with inotify and ships what changed:
//! - a newer step to `totp_steps` (raised, never lowered); every other host raises its own
//!   file's step to it, so a code used on host A is refused on host B as a replay on A is;
//! - new failures, and a count going back to 0 (a success, a lockout run out), as events to
//!   `failures`; every other host adds the failures to its count, or clears it.
//!
//! So an attacker who knows the password gets `lockout_after` guesses on the fleet, plus
//! what fits in the propagation delay, not `lockout_after` per host. While the store is
//! unreachable each host protects only itself (a code used on one host may be used once on
//! each other host within its validity; each host counts its own guesses); what happened
//! meanwhile goes out when it returns. Repeat-window grants stay per host: a grant is bound
//! to the address one host saw, and widening it to every host would let one host's trusted
//! session open all the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};
use mfa_core::state::{self, Shared};
use mfa_core::{Error, Result};
use postgres::Client;

use crate::changes::central;

/// What this host knows of each user's state, and where it is in the central tables.
pub struct LoginState {
    database: PathBuf,
    dir: PathBuf,
    inotify: Inotify,
    /// Per user, the step and failure count the file had when last read or written here.
    known: HashMap<String, (u64, u32)>,
    /// Steps of this host not yet shipped.
    steps: HashMap<String, u64>,
    /// Failure events of this host not yet shipped: (user, failures; 0 = back to none).
    events: Vec<(String, u32)>,
    step_cursor: i64,
    /// `None` until the first round: events from before this follower started are history.
    failure_cursor: Option<i64>,
}

impl LoginState {
    /// Starts watching. Files already there are read once: their steps are shipped (steps
    /// accepted while the follower was not running); their failure counts are taken as
    /// known (old counts are not news).
    pub fn new(database: &Path) -> Result<LoginState> {
        let dir = state::users_dir(database)?;
        let inotify = Inotify::init().map_err(|e| Error::io(&dir, e))?;
        inotify
            .watches()
            .add(&dir, WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO)
            .map_err(|e| Error::io(&dir, e))?;
        let mut me = LoginState {
            database: database.to_path_buf(),
            dir,
            inotify,
            known: HashMap::new(),
            steps: HashMap::new(),
            events: Vec::new(),
            step_cursor: 0,
            failure_cursor: None,
        };
        let files: Vec<PathBuf> = std::fs::read_dir(&me.dir)
            .map_err(|e| Error::io(&me.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        for f in files {
            if let Some(s) = state::shared_in(&f) {
                if s.step > 0 {
                    me.steps.insert(s.user.clone(), s.step);
                }
                me.known.insert(s.user, (s.step, s.failures));
            }
        }
        Ok(me)
    }

    /// Compares a file with what was known of it.
    fn look_at(&mut self, s: Shared) {
        let (step, failures) = self.known.get(&s.user).copied().unwrap_or((0, 0));
        if s.step > step {
            self.steps.insert(s.user.clone(), s.step);
        }
        if s.failures > failures {
            self.events.push((s.user.clone(), s.failures - failures));
        } else if s.failures < failures {
            // The count went back to none (a success, a lockout run out), and perhaps
            // grew again before this look.
            self.events.push((s.user.clone(), 0));
            if s.failures > 0 {
                self.events.push((s.user.clone(), s.failures));
            }
        }
        self.known.insert(s.user, (s.step.max(step), s.failures));
    }

    /// Reads the files changed since the last call (without waiting).
    fn collect(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            let names: Vec<PathBuf> = match self.inotify.read_events(&mut buf) {
                Ok(events) => events
                    .filter_map(|e| e.name.map(|n| self.dir.join(n)))
                    .collect(),
                Err(_) => break,
            };
            if names.is_empty() {
                break;
            }
            for n in names {
                if let Some(s) = state::shared_in(&n) {
                    self.look_at(s);
                }
            }
        }
    }

    /// Ships this host's news and takes the other hosts'. Returns (shipped, taken).
    pub fn round(&mut self, client: &mut Client, host: &str) -> Result<(usize, usize)> {
        self.collect();
        let shipped = self.ship(client, host)?;
        let taken = self.take(client, host)?;
        // What we just wrote comes back through inotify as known: nothing to ship.
        self.collect();
        Ok((shipped, taken))
    }

    fn ship(&mut self, client: &mut Client, host: &str) -> Result<usize> {
        let n = self.steps.len() + self.events.len();
        if n == 0 {
            return Ok(0);
        }
        let now = now();
        let mut tx = client
            .transaction()
            .map_err(|e| central("shipping login state", e))?;
        for (user, step) in &self.steps {
            tx.execute(
                "INSERT INTO totp_steps (\"user\", step, host) VALUES ($1, $2, $3)
                 ON CONFLICT (\"user\") DO UPDATE
                   SET step = excluded.step, host = excluded.host,
                       seq = nextval('totp_steps_seq'), at = now()
                 WHERE totp_steps.step < excluded.step",
                &[user, &(*step as i64), &host],
            )
            .map_err(|e| central("shipping TOTP steps", e))?;
        }
        for (user, failures) in &self.events {
            tx.execute(
                "INSERT INTO failures (\"user\", host, failures, at) VALUES ($1, $2, $3, $4)",
                &[user, &host, &(*failures as i32), &now],
            )
            .map_err(|e| central("shipping failure counts", e))?;
        }
        tx.commit()
            .map_err(|e| central("shipping login state", e))?;
        self.steps.clear();
        self.events.clear();
        Ok(n)
    }

    fn take(&mut self, client: &mut Client, host: &str) -> Result<usize> {
        let mut taken = 0;
        let rows = client
            .query(
                "SELECT \"user\", step, seq FROM totp_steps
                  WHERE seq > $1 AND host <> $2 ORDER BY seq",
                &[&self.step_cursor, &host],
            )
            .map_err(|e| central("reading TOTP steps", e))?;
        for r in rows {
            let (user, step, seq): (String, i64, i64) = (r.get(0), r.get(1), r.get(2));
            self.step_cursor = self.step_cursor.max(seq);
            let step = step.max(0) as u64;
            let known = self.known.get(&user).copied().unwrap_or((0, 0));
            if known.0 >= step {
                continue;
            }
            state::accept_step(&self.database, &user, step)?;
            self.known.insert(user, (step, known.1));
            taken += 1;
        }
        let Some(mut cursor) = self.failure_cursor else {
            // Events from before this follower started are history: counts start here.
            let row = client
                .query_one("SELECT coalesce(max(seq), 0) FROM failures", &[])
                .map_err(|e| central("reading failure counts", e))?;
            self.failure_cursor = Some(row.get(0));
            return Ok(taken);
        };
        let rows = client
            .query(
                "SELECT \"user\", failures, at, seq FROM failures
                  WHERE seq > $1 AND host <> $2 ORDER BY seq",
                &[&cursor, &host],
            )
            .map_err(|e| central("reading failure counts", e))?;
        for r in rows {
            let (user, failures, at, seq): (String, i32, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            cursor = cursor.max(seq);
            self.failure_cursor = Some(cursor);
            let step = self.known.get(&user).map_or(0, |k| k.0);
            let count = if failures <= 0 {
                state::clear_failures(&self.database, &user)?;
                0
            } else {
                state::add_failures(&self.database, &user, failures as u32, at)?
            };
            self.known.insert(user, (step, count));
            taken += 1;
        }
        Ok(taken)
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
