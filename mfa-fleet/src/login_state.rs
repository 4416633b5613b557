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
//!
//! After a failover of the central store the new primary may lack the newest rows, and its
//! sequences go on from what the standby saw (plus up to 32 values PostgreSQL logs ahead),
//! so a `seq` may be lower than this follower's cursor, or re-used by another event. So:
//! - when the server is another one (`pg_postmaster_start_time()` changed: a failover, a
//!   restart) or `totp_steps` ends below the step cursor, every step is read again (taking a
//!   step is idempotent: a step is only ever raised), and this host's steps the server
//!   lacks are shipped again;
//! - the failure events read (every host's) are remembered by `seq` with what they hold
//!   (user, host, count, time), the newest [`SEEN_WINDOW`]; when the server is another one
//!   or the event at the cursor is gone or different, the events from the oldest one
//!   remembered on are read again, and only those not remembered as they are are applied
//!   (adding failures is not idempotent: none is counted twice). (An event that re-uses the
//!   `seq` of a lost one and holds the same user, host, count and second is taken for it.)

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};
use mfa_core::state::{self, Shared};
use mfa_core::{Error, Result};
use postgres::Client;

use crate::changes::central;

/// How many of the newest failure events read are remembered (to tell, after the server
/// lost some or re-used their `seq`, which were applied here already).
pub const SEEN_WINDOW: usize = 4096;

/// A failure event as read from `failures`: what tells it apart from another event that
/// re-uses its `seq`.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Event {
    user: String,
    host: String,
    failures: i32,
    at: i64,
}

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
    /// The highest `totp_steps.seq` read.
    step_cursor: i64,
    /// The highest `failures.seq` read; `None` until the first round: events from before
    /// this follower started are history.
    failure_cursor: Option<i64>,
    /// The newest failure events read (every host's, this one's included), by `seq`; at
    /// most [`SEEN_WINDOW`]. The one at `failure_cursor` (if any) anchors the cursor.
    seen: BTreeMap<i64, Event>,
    /// The server's `pg_postmaster_start_time()` at the last round: when it changes, the
    /// store may have lost rows and gone back with its sequences.
    server: Option<String>,
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
            seen: BTreeMap::new(),
            server: None,
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

    /// Takes the other hosts' steps and failure events, after checking that the server's
    /// history is the one the cursors were read from.
    fn take(&mut self, client: &mut Client, host: &str) -> Result<usize> {
        let row = client
            .query_one(
                "SELECT extract(epoch FROM pg_postmaster_start_time())::text,
                        (SELECT coalesce(max(seq), 0) FROM totp_steps)",
                &[],
            )
            .map_err(|e| central("reading TOTP steps", e))?;
        let (server, step_max): (String, i64) = (row.get(0), row.get(1));
        let other_server = self.server.as_ref().is_some_and(|s| *s != server);
        self.server = Some(server);
        let taken = self.take_steps(client, host, other_server || step_max < self.step_cursor)?;
        Ok(taken + self.take_failures(client, host, other_server)?)
    }

    /// Takes the steps raised since the cursor; with `again`, all of them (the server's
    /// history changed), shipping again this host's steps the server lacks.
    fn take_steps(&mut self, client: &mut Client, host: &str, again: bool) -> Result<usize> {
        if again {
            self.step_cursor = 0;
        }
        let rows = client
            .query(
                "SELECT \"user\", step, seq, host FROM totp_steps WHERE seq > $1 ORDER BY seq",
                &[&self.step_cursor],
            )
            .map_err(|e| central("reading TOTP steps", e))?;
        let mut central_steps: HashMap<String, u64> = HashMap::new();
        let mut taken = 0;
        for r in rows {
            let (user, step, seq, by): (String, i64, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            self.step_cursor = self.step_cursor.max(seq);
            let step = step.max(0) as u64;
            if again {
                central_steps.insert(user.clone(), step);
            }
            let known = self.known.get(&user).copied().unwrap_or((0, 0));
            if by == host || known.0 >= step {
                continue;
            }
            state::accept_step(&self.database, &user, step)?;
            self.known.insert(user, (step, known.1));
            taken += 1;
        }
        if again {
            // Steps the server lost (or never had): out again at the next round.
            for (user, (step, _)) in &self.known {
                if *step > central_steps.get(user).copied().unwrap_or(0) {
                    let s = self.steps.entry(user.clone()).or_insert(0);
                    *s = (*s).max(*step);
                }
            }
        }
        Ok(taken)
    }

    /// Takes the failure events after the cursor, or, when the event at the cursor is gone
    /// or another one, or with `again` (another server), every event from the oldest one
    /// remembered on that is not remembered as it is.
    fn take_failures(&mut self, client: &mut Client, host: &str, again: bool) -> Result<usize> {
        let Some(mut cursor) = self.failure_cursor else {
            // Events from before this follower started are history: counts start here.
            let rows = client
                .query(
                    "SELECT seq, \"user\", host, failures, at FROM failures
                      ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .map_err(|e| central("reading failure counts", e))?;
            let mut cursor = 0;
            for r in rows {
                let (seq, ev) = event(&r);
                cursor = seq;
                self.seen.insert(seq, ev);
            }
            self.failure_cursor = Some(cursor);
            return Ok(0);
        };
        let mut rows = failures_from(client, cursor)?;
        let anchored = match self.seen.get(&cursor) {
            Some(ev) => rows
                .first()
                .is_some_and(|r| event(r) == (cursor, ev.clone())),
            None => true,
        };
        if again || !anchored {
            let oldest = self.seen.keys().next().copied().unwrap_or(cursor);
            cursor = cursor.min(oldest - 1).max(0);
            self.failure_cursor = Some(cursor);
            rows = failures_from(client, cursor)?;
        }
        let mut taken = 0;
        for r in rows {
            let (seq, ev) = event(&r);
            if seq <= cursor {
                continue; // the anchor
            }
            cursor = seq;
            self.failure_cursor = Some(cursor);
            if self.seen.get(&seq) == Some(&ev) {
                continue; // read (and applied, if another host's) before
            }
            self.seen.insert(seq, ev.clone());
            while self.seen.len() > SEEN_WINDOW {
                self.seen.pop_first();
            }
            if ev.host == host {
                continue;
            }
            let step = self.known.get(&ev.user).map_or(0, |k| k.0);
            let count = if ev.failures <= 0 {
                state::clear_failures(&self.database, &ev.user)?;
                0
            } else {
                state::add_failures(&self.database, &ev.user, ev.failures as u32, ev.at)?
            };
            self.known.insert(ev.user, (step, count));
            taken += 1;
        }
        Ok(taken)
    }
}

/// The failure events from `seq` on (`seq` itself included: the anchor), oldest first.
fn failures_from(client: &mut Client, seq: i64) -> Result<Vec<postgres::Row>> {
    client
        .query(
            "SELECT seq, \"user\", host, failures, at FROM failures
              WHERE seq >= $1 ORDER BY seq",
            &[&seq],
        )
        .map_err(|e| central("reading failure counts", e))
}

/// A row of [`failures_from`]: its `seq` and event.
fn event(r: &postgres::Row) -> (i64, Event) {
    (
        r.get(0),
        Event {
            user: r.get(1),
            host: r.get(2),
            failures: r.get(3),
            at: r.get(4),
        },
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
