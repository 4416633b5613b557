//! Send limits and fair order: what keeps a flood of passcodes to one destination (message
//! bombing, SMS pumping) from costing money without bound or delaying everyone else's codes.
//!
//! The sender cannot read the rules database, so its limits live in `mfa.toml`'s `[sender]`
//! table: `destination_limit` passcodes per `destination_window` to one destination, and
//! `hourly_limit` passcodes per hour from the whole host (0: no limit). A passcode over a
//! limit is not sent: the daemon moves it to failed/ with a reason starting `rate-limited:`.
//! The counts are sliding windows kept in memory (a restart of the sender starts them
//! afresh); each message counts once, when first handed to a worker, not at each retry.
//! Messages of `mfa-admin test` (root's) are neither limited nor counted.
//!
//! Order: waiting messages are kept per destination and handed out round-robin across
//! destinations, oldest first within one, so a burst to one destination waits behind one
//! message of each other destination instead of in front of all of them.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use mfa_core::config::Sender as SenderConfig;

const HOUR: Duration = Duration::from_secs(3600);

/// The key of a destination: the recipient without case or surrounding spaces.
pub fn destination_key(to: &str) -> String {
    to.trim().to_lowercase()
}

/// Sliding-window counts of passcodes handed out.
#[derive(Debug)]
pub struct Limits {
    per_destination: u32,
    window: Duration,
    hourly: u32,
    sent: HashMap<String, VecDeque<Instant>>,
    host: VecDeque<Instant>,
}

impl Limits {
    /// Limits of a validated `[sender]` table (an invalid window falls back to 15 minutes;
    /// `Config::parse` refuses it before this).
    pub fn new(c: &SenderConfig) -> Limits {
        let mut l = Limits {
            per_destination: 0,
            window: Duration::from_secs(900),
            hourly: 0,
            sent: HashMap::new(),
            host: VecDeque::new(),
        };
        l.configure(c);
        l
    }

    /// New limits (SIGHUP); the counts so far stay.
    pub fn configure(&mut self, c: &SenderConfig) {
        self.per_destination = c.destination_limit;
        self.window = Duration::from_secs(u64::from(c.window_secs().unwrap_or(900)));
        self.hourly = c.hourly_limit;
    }

    /// Counts one passcode to `key` at `now`, or says which limit it is over (the text after
    /// `rate-limited: `); a refused message is not counted.
    pub fn admit(&mut self, key: &str, now: Instant) -> Result<(), String> {
        prune(&mut self.host, now, HOUR);
        if self.hourly > 0 && self.host.len() >= self.hourly as usize {
            return Err(format!(
                "{} passcodes from this host in the last hour (sender.hourly_limit = {})",
                self.host.len(),
                self.hourly
            ));
        }
        let window = self.window;
        let q = self.sent.entry(key.to_string()).or_default();
        prune(q, now, window);
        if self.per_destination > 0 && q.len() >= self.per_destination as usize {
            return Err(format!(
                "{} passcodes to this destination in the last {} (sender.destination_limit = {} per sender.destination_window)",
                q.len(),
                mfa_core::settings::format_duration(
                    u32::try_from(window.as_secs()).unwrap_or(u32::MAX)
                ),
                self.per_destination
            ));
        }
        q.push_back(now);
        self.host.push_back(now);
        Ok(())
    }

    /// Forgets destinations with nothing left in their window (bounded memory).
    pub fn sweep(&mut self, now: Instant) {
        let window = self.window;
        self.sent.retain(|_, q| {
            prune(q, now, window);
            !q.is_empty()
        });
        prune(&mut self.host, now, HOUR);
    }

    #[cfg(test)]
    fn destinations(&self) -> usize {
        self.sent.len()
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q
        .front()
        .is_some_and(|t| now.saturating_duration_since(*t) >= window)
    {
        q.pop_front();
    }
}

/// Waiting items, per destination, handed out round-robin across destinations and in
/// arrival order within one.
#[derive(Debug)]
pub struct FairQueue<T> {
    queues: HashMap<String, VecDeque<T>>,
    /// Destinations with something waiting, in turn order; each appears once.
    turn: VecDeque<String>,
    len: usize,
}

impl<T> Default for FairQueue<T> {
    fn default() -> Self {
        FairQueue {
            queues: HashMap::new(),
            turn: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> FairQueue<T> {
    /// Adds an item at the end of its destination's queue.
    pub fn push(&mut self, key: String, item: T) {
        let q = self.queues.entry(key.clone()).or_default();
        if q.is_empty() {
            self.turn.push_back(key);
        }
        q.push_back(item);
        self.len += 1;
    }

    /// The oldest item of the destination whose turn it is.
    pub fn pop(&mut self) -> Option<T> {
        let key = self.turn.pop_front()?;
        let q = self.queues.get_mut(&key)?;
        let item = q.pop_front();
        if q.is_empty() {
            self.queues.remove(&key);
        } else {
            self.turn.push_back(key);
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Everything, emptying the queue.
    pub fn drain(&mut self) -> Vec<T> {
        self.turn.clear();
        self.len = 0;
        std::mem::take(&mut self.queues)
            .into_values()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(limit: u32, window: &str, hourly: u32) -> SenderConfig {
        SenderConfig {
            destination_limit: limit,
            destination_window: window.into(),
            hourly_limit: hourly,
            ..SenderConfig::default()
        }
    }

    #[test]
    fn destination_limit_slides() {
        let mut l = Limits::new(&config(3, "10m", 0));
        let t0 = Instant::now();
        for i in 0..3 {
            l.admit("a@x", t0 + Duration::from_secs(i)).unwrap();
        }
        let e = l.admit("a@x", t0 + Duration::from_secs(5)).unwrap_err();
        assert!(
            e.contains("3 passcodes to this destination in the last 10m"),
            "{e}"
        );
        // Another destination is not affected; case does not make a new destination.
        l.admit("b@x", t0).unwrap();
        assert!(l.admit(&destination_key(" A@X "), t0).is_err());
        // Refusals are not counted: once the first send leaves the window, one more goes.
        let later = t0 + Duration::from_secs(600);
        l.admit("a@x", later).unwrap();
        assert!(l.admit("a@x", later).is_err());
    }

    #[test]
    fn hourly_cap_is_host_wide() {
        let mut l = Limits::new(&config(0, "15m", 4));
        let t0 = Instant::now();
        for i in 0..4 {
            l.admit(&format!("u{i}@x"), t0).unwrap();
        }
        let e = l.admit("new@x", t0).unwrap_err();
        assert!(e.contains("sender.hourly_limit = 4"), "{e}");
        l.admit("new@x", t0 + HOUR).unwrap();
    }

    #[test]
    fn zero_means_no_limit() {
        let mut l = Limits::new(&config(0, "15m", 0));
        let t0 = Instant::now();
        for _ in 0..10_000 {
            l.admit("a@x", t0).unwrap();
        }
    }

    #[test]
    fn sweep_forgets_quiet_destinations() {
        let mut l = Limits::new(&config(5, "1m", 0));
        let t0 = Instant::now();
        for i in 0..1000 {
            l.admit(&format!("u{i}@x"), t0).unwrap();
        }
        assert_eq!(l.destinations(), 1000);
        l.sweep(t0 + Duration::from_secs(61));
        assert_eq!(l.destinations(), 0);
    }

    #[test]
    fn fair_queue_takes_turns() {
        let mut q = FairQueue::default();
        for i in 0..100 {
            q.push("flood".into(), format!("f{i}"));
        }
        q.push("other".into(), "o0".into());
        q.push("third".into(), "t0".into());
        assert_eq!(q.len(), 102);
        let first: Vec<String> = (0..4).filter_map(|_| q.pop()).collect();
        assert_eq!(first, ["f0", "o0", "t0", "f1"]);
        // Oldest first within a destination, and a destination that empties comes back
        // at the end of the turn.
        q.push("other".into(), "o1".into());
        assert_eq!(q.pop().as_deref(), Some("f2"));
        assert_eq!(q.pop().as_deref(), Some("o1"));
        assert_eq!(q.len(), 97);
        let rest = q.drain();
        assert_eq!(rest.len(), 97);
        assert_eq!(q.len(), 0);
        assert!(q.pop().is_none());
    }
}
