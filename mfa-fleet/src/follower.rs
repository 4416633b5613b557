//! The loop of `mfa-fleetd`: keep this host's replica, logs and report in step with the
//! central store, and keep going without it.
//!
//! Each round: ship this host's outbox (its lockouts, used backup codes and changes made
//! while the store was away), apply the central changes it has not applied, share accepted
//! TOTP steps and failure counts (`crate::login_state`), ship its logs, report to `hosts`.
//! Rounds run when PostgreSQL notifies `mfa_changes`, every second for the outbox and the
//! login state (a lockout must reach the other hosts within seconds), and at least every
//! `[store] poll` for the logs and the report. When the store cannot be reached the host keeps enforcing
//! what it has (logins never wait on this), writes the error to its status file
//! (`mfa_core::fleet_status`: `doctor`, `fleet status`), and reconnects with a backoff of
//! 1 s doubling to 30 s; it catches up in its first round back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mfa_core::config::Config;
use mfa_core::fleet_status::{self, FleetStatus};
use mfa_core::store::Store;
use mfa_core::store::fleet;
use mfa_core::{Error, Result};
use postgres::Client;
use postgres::fallible_iterator::FallibleIterator;

use crate::login_state::LoginState;
use crate::{changes, connect, hosts, logs, schema};

/// How often the outbox is looked at between notifications.
const TICK: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to reach the store.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One follower: the host's store and what it last reported.
pub struct Follower {
    config: Config,
    store: Store,
    host: String,
    status: FleetStatus,
    /// Accepted TOTP steps and failure counts travelling (None: the login-state directory
    /// cannot be watched, said at start; each host then protects only itself).
    steps: Option<LoginState>,
    /// Whether a readiness notice was sent (systemd `Type=notify`).
    pub ready: bool,
}

impl Follower {
    /// Opens the host's replica; refuses a configuration or database not in a fleet.
    pub fn new(config: Config) -> Result<Follower> {
        if !config.store.is_fleet() {
            return Err(Error::Config(
                "mfa-fleetd follows a fleet's central store: set [store] backend = \
                 \"postgres\" and url in mfa.toml (README, \"A fleet\")"
                    .to_string(),
            ));
        }
        let store = Store::open(&config.paths.database)?;
        let host = fleet::host(store.conn())?.ok_or_else(|| {
            Error::Config(
                "this host has not joined the fleet: run `mfa-admin fleet join` (or \
                 `mfa-admin migrate --to postgres URL` for the first host)"
                    .to_string(),
            )
        })?;
        let wanted = config.store.host_name();
        if host != wanted {
            return Err(Error::Config(format!(
                "this database joined the fleet as {host:?} but [store] host says {wanted:?}; \
                 set it back, or join again under the new name"
            )));
        }
        let status = fleet_status::read(&config.paths.database).unwrap_or_default();
        let steps = match LoginState::new(&config.paths.database) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!(
                    "mfa-fleetd: {e}: accepted TOTP steps and failure counts are not shared \
                     with the fleet (each host still protects itself)"
                );
                None
            }
        };
        Ok(Follower {
            config,
            store,
            host,
            status,
            steps,
            ready: false,
        })
    }

    /// Runs rounds until `stop` is set (SIGTERM); `once`: one round, its error returned.
    pub fn run(&mut self, stop: &AtomicBool, once: bool) -> Result<()> {
        let poll = Duration::from_secs(u64::from(self.config.store.poll_secs().unwrap_or(5)));
        let mut backoff = Duration::from_secs(1);
        while !stop.load(Ordering::Relaxed) {
            let mut client = match self.connect() {
                Ok(c) => c,
                Err(e) => {
                    self.failed(&e);
                    if once {
                        return Err(e);
                    }
                    sleep(stop, backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            backoff = Duration::from_secs(1);
            match self.follow(&mut client, stop, poll, once) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.failed(&e);
                    let _ = hosts::report_error(&mut client, &self.host, &e.to_string());
                    if once {
                        return Err(e);
                    }
                    sleep(stop, backoff);
                }
            }
        }
        Ok(())
    }

    fn connect(&mut self) -> Result<Client> {
        let mut client = connect::connect(&self.config.store)?;
        schema::check(&mut client)?;
        client
            .batch_execute("LISTEN mfa_changes")
            .map_err(|e| changes::central("listening for changes", e))?;
        Ok(client)
    }

    /// Rounds on one connection until it fails or `stop`.
    fn follow(
        &mut self,
        client: &mut Client,
        stop: &AtomicBool,
        poll: Duration,
        once: bool,
    ) -> Result<()> {
        let mut last_full = None::<Instant>;
        loop {
            let full = last_full.is_none_or(|t: Instant| t.elapsed() >= poll);
            self.round(client, full)?;
            if full {
                last_full = Some(Instant::now());
            }
            if !self.ready {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
                self.ready = true;
            }
            if once || stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            // The next round at a notification (at once), else after a tick.
            let mut it = client.notifications();
            if it
                .timeout_iter(TICK)
                .next()
                .map_err(|e| changes::central("waiting for changes", e))?
                .is_some()
            {
                // Several changes in a burst: one round for all of them.
                while it
                    .iter()
                    .next()
                    .map_err(|e| changes::central("waiting for changes", e))?
                    .is_some()
                {}
            }
        }
    }

    /// Ships the outbox and applies what is new; with `full` also ships the logs and
    /// reports to `hosts`.
    fn round(&mut self, client: &mut Client, full: bool) -> Result<()> {
        changes::ship(client, &mut self.store)?;
        self.apply(client)?;
        if let Some(steps) = &mut self.steps {
            steps.round(client, &self.host)?;
        }
        if full {
            logs::ship_all(client, &mut self.store, &self.host)?;
            let (queue, failed) = hosts::spool_counts(&self.config.paths.spool).unwrap_or((0, 0));
            self.status.central = changes::newest(client)?;
            hosts::heartbeat(
                client,
                &hosts::HostReport {
                    name: self.host.clone(),
                    incarnation: fleet::incarnation(self.store.conn())?,
                    generation: self.status.generation,
                    queue,
                    failed,
                    outbox: fleet::outbox_len(self.store.conn())? as i32,
                    last_error: if self.status.needs_schema > 0 {
                        format!(
                            "generation {} needs store schema {}: upgrade mfa on this host",
                            self.status.generation + 1,
                            self.status.needs_schema
                        )
                    } else {
                        String::new()
                    },
                    version: env!("CARGO_PKG_VERSION").to_string(),
                },
            )?;
        }
        self.status.connected = true;
        self.status.last_contact = now();
        self.status.last_error.clear();
        self.save();
        Ok(())
    }

    fn apply(&mut self, client: &mut Client) -> Result<()> {
        let done = changes::follow(client, &mut self.store)?;
        for (generation, why) in &done.skipped {
            eprintln!("mfa-fleetd: change {generation} skipped here and on every host: {why}");
        }
        if let Some((generation, schema)) = done.newer {
            if self.status.needs_schema != schema {
                eprintln!(
                    "mfa-fleetd: change {generation} needs store schema {schema} (this mfa has {}): \
                     upgrade mfa on this host; it keeps enforcing generation {}",
                    mfa_core::store::SCHEMA_VERSION,
                    done.generation
                );
            }
            self.status.needs_schema = schema;
        } else {
            self.status.needs_schema = 0;
        }
        if done.applied > 0 {
            eprintln!(
                "mfa-fleetd: applied {} change(s), now at generation {}",
                done.applied, done.generation
            );
        }
        self.status.generation = done.generation;
        self.status.outbox = fleet::outbox_len(self.store.conn())?;
        Ok(())
    }

    fn failed(&mut self, e: &Error) {
        if self.status.connected || self.status.last_error != e.to_string() {
            eprintln!(
                "mfa-fleetd: {e}; this host keeps enforcing generation {} and retries",
                self.status.generation
            );
        }
        self.status.connected = false;
        self.status.last_error = e.to_string();
        // Ready all the same: the host enforces what it has; waiting for the store would
        // hold the boot up.
        if !self.ready {
            let _ = sd_notify::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(
                    "central store unreachable; enforcing the last rules",
                ),
            ]);
            self.ready = true;
        }
        self.status.outbox = fleet::outbox_len(self.store.conn()).unwrap_or(-1);
        self.save();
    }

    fn save(&mut self) {
        self.status.host = self.host.clone();
        self.status.updated = now();
        if let Err(e) = fleet_status::write(&self.config.paths.database, &self.status) {
            eprintln!("mfa-fleetd: {e}");
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sleeps `d`, waking early on `stop`.
fn sleep(stop: &AtomicBool, d: Duration) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
    }
}
