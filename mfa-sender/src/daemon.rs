//! The sender's loop: watch `new/` with inotify (and rescan every minute as a safety net),
//! claim each message by renaming it into `cur/`, hand it to a worker thread, and act on the
//! result: delete it once accepted, retry transient failures with exponential backoff and
//! jitter (honouring Retry-After), move permanent failures and expired messages to
//! `failed/` with the reason. A heartbeat file tells the PAM module the sender is alive.
//! Waiting messages are handed out round-robin per destination, and passcodes over the send
//! limits of `[sender]` go to `failed/` as `rate-limited` instead of out (see `limits`).
//!
//! Nothing is lost when the process dies: a message is deleted only after the server
//! accepted it, and messages left in `cur/` go back to `new/` at the next start.
//!
//! With `[duo]` the daemon (not `--once`) also runs the Duo broker (`crate::duo::Broker`): it
//! opens its socket before the "started" line, closes it at the first sign of SIGTERM, and
//! SIGHUP hands it the new `[duo]` (or starts it, when `[duo]` was added).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use inotify::{Inotify, WatchMask};
use mfa_core::config::{Config, ConfigSource};
use mfa_core::spool::{self, Kind, Message};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::limits::{FairQueue, Limits, destination_key};
use crate::transport::{Delivery, Transports};

const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
const RESCAN_EVERY: Duration = Duration::from_secs(60);
const BACKOFF_BASE: f64 = 1.0;
const BACKOFF_MAX: f64 = 300.0;
/// How often an idle worker closes the SMTP connections idle for too long.
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(1);
/// The status file is rewritten at once when a failure or retry changes it, and at most this
/// often when only the number of messages in flight changed (a drain of thousands of
/// messages would otherwise create and rename a file for every few of them).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// How the loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run until SIGTERM.
    Daemon,
    /// Drain what is there now, then exit (transient failures stay queued).
    Once,
}

struct Job {
    name: String,
    path: PathBuf,
    msg: Message,
    attempt: u32,
    /// Counted against the send limits already (once per message, not per try).
    counted: bool,
}

struct Done {
    job: Job,
    delivery: Delivery,
}

/// Logs one line to stderr (journald): message ids and masked recipients, never a body.
/// Control characters (from a server's reply or a spool file) become spaces: one event is
/// one line.
pub(crate) fn log(text: &str) {
    let mut line = String::with_capacity(text.len() + 13);
    line.push_str("mfa-sender: ");
    line.extend(text.chars().map(|c| if c.is_control() { ' ' } else { c }));
    line.push('\n');
    // One write per line (eprintln! writes its pieces separately): lines of concurrent
    // writers never interleave, and a drain of thousands of messages makes a third of the
    // system calls.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A message the server accepted: deleted from the spool, and logged.
fn accepted(job: &Job, reply: &str) {
    let id = &job.msg.id;
    if let Err(e) = spool::ack(&job.path) {
        log(&format!("id={id}: sent but cannot delete: {e}"));
    }
    log(&format!(
        "id={id} to={} channel={} sent ({reply})",
        job.msg.masked_to,
        job.msg.channel.as_str()
    ));
}

pub struct Daemon {
    source: ConfigSource,
    config: Config,
    transports: Arc<RwLock<Arc<Transports>>>,
    jobs: Sender<Job>,
    results: Receiver<Done>,
    wake_read: UnixStream,
    /// Messages handed to a worker: at most `workers`.
    in_flight: usize,
    workers: usize,
    /// Claimed messages waiting for a free worker. They stay here rather than in the workers'
    /// channel so that SIGTERM waits only for the sends under way and puts these back.
    /// Per destination, round-robin: a flood to one waits behind everyone else's.
    ready: FairQueue<Job>,
    limits: Limits,
    /// Claimed messages waiting for their next try, by due time.
    retries: BTreeMap<(Instant, String), Job>,
    attempts: HashMap<String, u32>,
    terminate: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    last_error: Option<String>,
    /// Messages this sender moved to failed/.
    failed: u64,
    /// The state last written by `status`, and when.
    reported: Option<(usize, usize, u64, Option<String>)>,
    reported_at: Instant,
    /// Messages accepted by a server in this run.
    sent: u64,
    /// The Duo broker (daemon mode with `[duo]` only).
    duo: Option<crate::duo::Broker>,
    /// Daemon mode: the mode that runs the Duo broker.
    serving: bool,
}

fn now_secs() -> i64 {
    mfa_core::now()
}

impl Daemon {
    pub fn new(source: ConfigSource, config: Config) -> Result<Daemon, String> {
        let transports = Arc::new(RwLock::new(Arc::new(Transports::new(&config)?)));
        let (wake_read, wake_write) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        wake_read.set_nonblocking(true).map_err(|e| e.to_string())?;
        let terminate = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&terminate)).map_err(|e| e.to_string())?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
            .map_err(|e| e.to_string())?;
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGHUP,
        ] {
            let w = wake_write.try_clone().map_err(|e| e.to_string())?;
            signal_hook::low_level::pipe::register(sig, w).map_err(|e| e.to_string())?;
        }
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, results) = channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for i in 0..config.sender.workers.max(1) {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let transports = Arc::clone(&transports);
            let mut wake = wake_write.try_clone().map_err(|e| e.to_string())?;
            std::thread::Builder::new()
                .name(format!("send-{i}"))
                .spawn(move || {
                    let current = || transports.read().map(|t| Arc::clone(&t)).ok();
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv_timeout(IDLE_CHECK_EVERY),
                            Err(_) => return,
                        };
                        let job = match job {
                            Ok(job) => job,
                            // An idle worker closes the pool's idle connections: a server
                            // slow to answer QUIT delays no one.
                            Err(RecvTimeoutError::Timeout) => {
                                if let Some(t) = current() {
                                    t.expire_idle();
                                }
                                continue;
                            }
                            Err(RecvTimeoutError::Disconnected) => return,
                        };
                        let Some(t) = current() else { return };
                        let delivery = t.send(&job.msg);
                        if let Delivery::Sent(r) = &delivery {
                            // Accepted: deleted here, by the worker, so that a drain's
                            // deletions and log lines run in parallel.
                            accepted(&job, r);
                        }
                        if done_tx.send(Done { job, delivery }).is_err() {
                            return;
                        }
                        let _ = wake.write_all(b"d");
                        // Under a steady trickle no worker waits long enough to time out.
                        t.expire_idle();
                    }
                })
                .map_err(|e| e.to_string())?;
        }
        let limits = Limits::new(&config.sender);
        Ok(Daemon {
            workers: usize::from(config.sender.workers.max(1)),
            source,
            config,
            transports,
            jobs,
            results,
            wake_read,
            in_flight: 0,
            ready: FairQueue::default(),
            limits,
            retries: BTreeMap::new(),
            attempts: HashMap::new(),
            terminate,
            reload,
            last_error: None,
            failed: 0,
            reported: None,
            reported_at: Instant::now(),
            sent: 0,
            duo: None,
            serving: false,
        })
    }

    fn spool(&self) -> &Path {
        &self.config.paths.spool
    }

    /// Runs until SIGTERM (daemon) or until the spool is drained (once). Returns the exit code.
    pub fn run(mut self, mode: Mode) -> i32 {
        let spool = self.spool().to_path_buf();
        // One sender per spool: a second one (say `--once` beside the daemon) would move the
        // first one's claimed messages back to new/ and send them twice.
        let lock_path = self.config.paths.runtime.join("sender.lock");
        let _lock = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
        {
            Ok(f) => {
                match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                    Ok(l) => l,
                    Err(_) => {
                        log(&format!(
                            "another mfa-sender is running on this spool ({} is locked)",
                            lock_path.display()
                        ));
                        return 1;
                    }
                }
            }
            Err(e) => {
                log(&format!("cannot open {}: {e}", lock_path.display()));
                return 1;
            }
        };
        match spool::recover(&spool) {
            Ok(0) => {}
            Ok(n) => log(&format!(
                "{n} message(s) left in cur/ by a previous sender returned to new/"
            )),
            Err(e) => {
                log(&format!("cannot use the spool: {e}"));
                return 1;
            }
        }
        let mut inotify = match Inotify::init() {
            Ok(i) => i,
            Err(e) => {
                log(&format!("inotify: {e}"));
                return 1;
            }
        };
        if let Err(e) = inotify.watches().add(
            spool.join("new"),
            // Messages arrive only by rename from tmp/ (mfa_core::spool::enqueue).
            WatchMask::MOVED_TO,
        ) {
            log(&format!(
                "cannot watch {}: {e}",
                spool.join("new").display()
            ));
            return 1;
        }
        // The Duo broker: the daemon only (not --once), when [duo] is set.
        self.serving = mode == Mode::Daemon;
        if self.serving
            && let Some(d) = &self.config.duo
        {
            match crate::duo::Broker::start(d, &self.config.paths.runtime) {
                Ok(b) => self.duo = Some(b),
                Err(e) => {
                    log(&format!("cannot start the Duo broker: {e}"));
                    return 1;
                }
            }
        }
        self.heartbeat();
        // A fresh status: the last error of a previous run does not linger.
        self.status();
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        log(&format!(
            "started: {} worker(s), spool {}",
            self.config.sender.workers.max(1),
            spool.display()
        ));
        let mut next_heartbeat = Instant::now() + HEARTBEAT_EVERY;
        let mut next_scan = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            if self.reload.swap(false, Ordering::Relaxed) {
                self.reload_config();
            }
            let stopping = self.terminate.load(Ordering::Relaxed);
            if stopping && let Some(b) = &mut self.duo {
                // At once: no new Duo request, and each waiting caller sees EOF now.
                b.stop();
            }
            let now = Instant::now();
            if !stopping && now >= next_scan {
                self.scan();
                next_scan = now + RESCAN_EVERY;
            }
            self.collect();
            self.due_retries();
            self.pump();
            if Instant::now() >= next_heartbeat {
                self.heartbeat();
                next_heartbeat = Instant::now() + HEARTBEAT_EVERY;
            }
            if stopping && self.in_flight == 0 {
                self.release_retries();
                let closed = self.close_connections();
                log(&format!("stopped (SIGTERM): nothing in flight; {closed}"));
                return 0;
            }
            if mode == Mode::Once
                && self.in_flight == 0
                && (self.retries.is_empty() || !self.retries_soon())
            {
                let pending = spool::pending(&spool).map(|p| p.len()).unwrap_or(0);
                if pending == 0 || self.retries.len() >= pending {
                    self.release_retries();
                    let closed = self.close_connections();
                    log(&format!("done (--once): {closed}"));
                    return 0;
                }
                next_scan = Instant::now();
                continue;
            }
            // Sleep until something happens: a new file, a finished send, a signal, a timer.
            let mut deadline = next_heartbeat.min(next_scan);
            if let Some(((due, _), _)) = self.retries.first_key_value() {
                deadline = deadline.min(*due);
            }
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            let ms = u16::try_from(wait.as_millis()).unwrap_or(1000);
            let (ino_ready, wake_ready) = {
                let mut fds = [
                    PollFd::new(inotify.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.wake_read.as_fd(), PollFlags::POLLIN),
                ];
                let _ = poll(&mut fds, PollTimeout::from(ms));
                let ready =
                    |f: &PollFd<'_>| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
                (ready(&fds[0]), ready(&fds[1]))
            };
            if wake_ready {
                while matches!(self.wake_read.read(&mut buf), Ok(n) if n > 0) {}
            }
            if ino_ready {
                let mut names = Vec::new();
                if let Ok(events) = inotify.read_events(&mut buf) {
                    for ev in events {
                        if let Some(n) = ev.name.and_then(|n| n.to_str())
                            && n.ends_with(".json")
                        {
                            names.push(n.to_string());
                        }
                    }
                }
                if !self.terminate.load(Ordering::Relaxed) {
                    for n in names {
                        self.claim(&n);
                    }
                }
            }
        }
    }

    /// QUIT to every idle pooled connection (the workers are idle: nothing is in flight);
    /// says how many messages went out on how many connections.
    fn close_connections(&mut self) -> String {
        let t = self.transports.read().map(|t| Arc::clone(&t)).ok();
        let opened = t.as_ref().map_or(0, |t| {
            t.close();
            t.connections_opened()
        });
        format!(
            "{} message(s) sent, {opened} SMTP connection(s) opened (since the last reload)",
            self.sent
        )
    }

    fn retries_soon(&self) -> bool {
        self.retries.keys().next().is_some_and(|(due, _)| {
            due.saturating_duration_since(Instant::now()) < Duration::from_secs(2)
        })
    }

    /// Claims everything in new/.
    fn scan(&mut self) {
        match spool::pending(&self.config.paths.spool.clone()) {
            Ok(names) => {
                for n in names {
                    self.claim(&n);
                    // Thousands waiting (a backlog at start, --once): workers that finish
                    // get their next message now, not after the whole scan.
                    self.collect();
                    self.pump();
                }
            }
            Err(e) => log(&format!("scan: {e}")),
        }
    }

    fn claim(&mut self, name: &str) {
        let spool = self.config.paths.spool.clone();
        let path = match spool::claim(&spool, name) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                log(&format!("claim {name}: {e}"));
                return;
            }
        };
        let msg = match spool::read(&path) {
            Ok(m) => m,
            Err(e) => {
                let why = match e {
                    mfa_core::Error::Io { .. } => format!(
                        "unreadable: {e} (messages must be 0640 with the group of new/, \
                         which the sender is in)"
                    ),
                    e => format!("cannot parse: {e}"),
                };
                let id = name.trim_end_matches(".json").to_string();
                self.give_up(&path, name, &id, None, &why);
                return;
            }
        };
        let attempt = self.attempts.remove(name).unwrap_or(0);
        self.dispatch(Job {
            name: name.to_string(),
            path,
            msg,
            attempt,
            counted: false,
        });
    }

    fn dispatch(&mut self, job: Job) {
        self.ready.push(destination_key(&job.msg.to), job);
        self.pump();
    }

    /// Hands waiting messages to idle workers (none once SIGTERM came), a destination at a
    /// time; fails expired ones and passcodes over a send limit.
    fn pump(&mut self) {
        while self.in_flight < self.workers && !self.terminate.load(Ordering::Relaxed) {
            let Some(mut job) = self.ready.pop() else {
                return;
            };
            if job.msg.expires < now_secs() {
                let to = job.msg.masked_to.clone();
                self.give_up(&job.path, &job.name, &job.msg.id, Some(&to), "expired");
                continue;
            }
            if !job.counted && job.msg.kind == Kind::Passcode {
                let key = destination_key(&job.msg.to);
                if let Err(why) = self.limits.admit(&key, Instant::now()) {
                    let to = job.msg.masked_to.clone();
                    let reason = format!("rate-limited: {why}");
                    self.give_up(&job.path, &job.name, &job.msg.id, Some(&to), &reason);
                    continue;
                }
                job.counted = true;
            }
            self.in_flight += 1;
            if self.jobs.send(job).is_err() {
                self.in_flight -= 1;
                log("no worker left");
                return;
            }
        }
    }

    /// Moves a claimed message to failed/ with its reason, and says so: a log line with the
    /// id, the masked recipient when known and the reason, and the status file's last error
    /// and failed count. Nothing ends in failed/ silently.
    fn give_up(&mut self, path: &Path, name: &str, id: &str, to: Option<&str>, reason: &str) {
        self.attempts.remove(name);
        let to = to.map(|t| format!(" to={t}")).unwrap_or_default();
        log(&format!("id={id}{to} failed: {reason}"));
        self.failed += 1;
        self.last_error = Some(format!("{id}: {reason}"));
        if let Err(e) = spool::fail(&self.config.paths.spool.clone(), path, reason) {
            log(&format!("id={id}: cannot move it to failed/: {e}"));
            self.last_error = Some(format!("{id}: {reason}; cannot move it to failed/: {e}"));
        }
        self.status();
    }

    /// Acts on finished sends.
    fn collect(&mut self) {
        while let Ok(Done { job, delivery }) = self.results.try_recv() {
            self.in_flight -= 1;
            let id = job.msg.id.clone();
            let to = job.msg.masked_to.clone();
            match delivery {
                // Deleted and logged by the worker (`accepted`).
                Delivery::Sent(_) => self.sent += 1,
                Delivery::Permanent(reason) => {
                    self.give_up(&job.path, &job.name, &id, Some(&to), &reason);
                }
                Delivery::Transient {
                    reason,
                    retry_after,
                } => {
                    let attempt = job.attempt + 1;
                    let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                    log(&format!(
                        "id={id} to={to} attempt {attempt} failed ({reason}); retry in {:.1}s",
                        wait.as_secs_f64()
                    ));
                    self.last_error = Some(format!("{id}: {reason}"));
                    let due = Instant::now() + wait;
                    self.retries
                        .insert((due, job.name.clone()), Job { attempt, ..job });
                }
            }
        }
        self.status();
    }

    fn due_retries(&mut self) {
        if self.terminate.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let job = entry.remove();
            self.dispatch(job);
        }
    }

    /// Puts messages waiting for a retry or for a worker back in new/ (at shutdown, or at
    /// the end of --once).
    fn release_retries(&mut self) {
        let spool = self.config.paths.spool.clone();
        let retries = std::mem::take(&mut self.retries).into_values();
        for job in retries.chain(self.ready.drain()) {
            let _ = std::fs::rename(&job.path, spool.join("new").join(&job.name));
        }
    }

    fn heartbeat(&mut self) {
        self.limits.sweep(Instant::now());
        let path = spool::heartbeat_path(&self.config.paths.runtime);
        let tmp = path.with_extension("tmp");
        let ok = std::fs::write(&tmp, format!("{}\n", now_secs()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = ok {
            log(&format!(
                "cannot write the heartbeat {}: {e}",
                path.display()
            ));
        }
        if sd_notify::watchdog_enabled().is_some() {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }

    /// Reports the queue state (sd_notify STATUS and `<runtime>/sender.status`, mode 0640,
    /// replaced atomically) when it changed since the last report. The file is JSON:
    /// `in_flight`, `retrying`, `failed` (messages this sender moved to failed/ since it
    /// started), `last_error` (`ID: reason`, or null) and `time`.
    fn status(&mut self) {
        let state = (
            self.in_flight,
            self.retries.len(),
            self.failed,
            self.last_error.clone(),
        );
        match &self.reported {
            Some(old) if *old == state => return,
            // Only the number in flight changed: at most every STATUS_EVERY (the loop wakes
            // at least every second and calls this again).
            Some(old)
                if (old.1, old.2, &old.3) == (state.1, state.2, &state.3)
                    && self.reported_at.elapsed() < STATUS_EVERY =>
            {
                return;
            }
            _ => {}
        }
        self.reported = Some(state);
        self.reported_at = Instant::now();
        let text = format!(
            "in flight {}, waiting to retry {}, failed {}{}",
            self.in_flight,
            self.retries.len(),
            self.failed,
            self.last_error
                .as_ref()
                .map(|e| format!("; last error {e}"))
                .unwrap_or_default()
        );
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Status(&text)]);
        let status = self.config.paths.runtime.join("sender.status");
        let tmp = status.with_extension("status.tmp");
        let body = serde_json::json!({
            "in_flight": self.in_flight,
            "retrying": self.retries.len(),
            "failed": self.failed,
            "last_error": self.last_error,
            "time": now_secs(),
        })
        .to_string();
        // 0640 whatever the umask: the last error is a server's reply, which may name the
        // recipient, and the runtime directory is open to everyone.
        let written = (|| {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o640)
                .open(&tmp)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o640))?;
            f.write_all(body.as_bytes())?;
            drop(f);
            std::fs::rename(&tmp, &status)
        })();
        if let Err(e) = written {
            log(&format!("cannot write {}: {e}", status.display()));
        }
    }

    fn reload_config(&mut self) {
        match Config::load(&self.source)
            .map_err(|e| e.to_string())
            .and_then(|c| Transports::new(&c).map(|t| (c, t)))
        {
            Ok((c, t)) => {
                if let Ok(mut slot) = self.transports.write() {
                    *slot = Arc::new(t);
                }
                self.limits.configure(&c.sender);
                self.config.sender.destination_limit = c.sender.destination_limit;
                self.config.sender.destination_window = c.sender.destination_window;
                self.config.sender.hourly_limit = c.sender.hourly_limit;
                self.config.smtp = c.smtp;
                self.config.sms = c.sms;
                match (&self.duo, &c.duo) {
                    (Some(b), d) => b.reload(d.as_ref()),
                    (None, Some(d)) if self.serving && !self.terminate.load(Ordering::Relaxed) => {
                        match crate::duo::Broker::start(d, &self.config.paths.runtime) {
                            Ok(b) => self.duo = Some(b),
                            Err(e) => log(&format!("cannot start the Duo broker: {e}")),
                        }
                    }
                    (None, _) => {}
                }
                self.config.duo = c.duo;
                log("configuration reloaded (SIGHUP)");
            }
            Err(e) => log(&format!(
                "reload failed, keeping the old configuration: {e}"
            )),
        }
    }
}

/// Exponential backoff with ±25 % jitter: 1 s, 2 s, 4 s, ... up to 5 minutes.
fn backoff(attempt: u32) -> Duration {
    let base = (BACKOFF_BASE * 2f64.powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(30)))
        .min(BACKOFF_MAX);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = 0.75 + 0.5 * f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    Duration::from_secs_f64(base * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt).as_secs_f64();
            let base = (2f64.powi(attempt as i32 - 1)).min(300.0);
            assert!(
                d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9,
                "attempt {attempt}: {d}"
            );
        }
    }
}
