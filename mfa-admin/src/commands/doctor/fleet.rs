//! A fleet host's link to the central store, without the network: from the configuration,
//! the database (joined or not) and the status file `mfa-fleetd` writes after each round
//! (`mfa_core::fleet_status`). A host that lost the store keeps enforcing its last rules;
//! this says since when, and at which generation.

use std::path::Path;

use mfa_core::config::Config;
use mfa_core::fleet_status;
use mfa_core::store::Store;
use mfa_core::store::fleet;

use super::Report;

/// A status older than this many poll intervals (and at least a minute) means mfa-fleetd is
/// not running.
const STALE_POLLS: i64 = 3;

pub fn check(r: &mut Report, config: &Config) {
    if !config.store.is_fleet() {
        return;
    }
    let db = &config.paths.database;
    if let Some(p) = &config.store.password_file {
        match mfa_fleet::connect::read_password_file(p) {
            Ok(_) => r.add(
                "fleet password",
                "ok",
                format!("{} is root's alone", p.display()),
            ),
            Err(e) => r.add("fleet password", "fail", e.to_string()),
        }
    }
    let joined = Store::open(db)
        .ok()
        .and_then(|s| fleet::host(s.conn()).ok().flatten());
    let Some(host) = joined else {
        r.add(
            "fleet",
            "fail",
            "[store] backend is \"postgres\" but this database has not joined the fleet: \
             run `mfa-admin fleet join` (or `migrate --to postgres URL` on the first host)",
        );
        return;
    };
    report_status(r, db, &host, config);
}

fn report_status(r: &mut Report, db: &Path, host: &str, config: &Config) {
    let poll = i64::from(config.store.poll_secs().unwrap_or(5));
    let stale = (STALE_POLLS * poll).max(60);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let Some(s) = fleet_status::read(db) else {
        r.add(
            "fleet",
            "fail",
            format!(
                "host {host}: mfa-fleetd has never reported; start it (systemctl enable --now \
                 mfa-fleetd): until then this host does not follow the fleet's changes"
            ),
        );
        return;
    };
    let age = now - s.updated;
    if age > stale {
        r.add(
            "fleet",
            "fail",
            format!(
                "host {host}: mfa-fleetd last reported {age} s ago: it is not running; this \
                 host enforces fleet generation {} and does not follow changes",
                s.generation
            ),
        );
    } else if !s.connected {
        let since = if s.last_contact > 0 {
            format!("for {} s", now - s.last_contact)
        } else {
            "since mfa-fleetd started".to_string()
        };
        r.add(
            "fleet",
            "warn",
            format!(
                "host {host}: central store unreachable {since} ({}); enforcing fleet \
                 generation {}, {} change(s) of this host waiting; it catches up when the \
                 store returns; check [store] url and the server",
                s.last_error, s.generation, s.outbox
            ),
        );
    } else if s.needs_schema > 0 {
        r.add(
            "fleet",
            "fail",
            format!(
                "host {host}: stopped at fleet generation {}: the next change needs store \
                 schema {} (this mfa has {}); upgrade mfa on this host",
                s.generation,
                s.needs_schema,
                mfa_core::store::SCHEMA_VERSION
            ),
        );
    } else {
        r.add(
            "fleet",
            "ok",
            format!(
                "host {host}: in contact {} s ago, at fleet generation {} of {}",
                now - s.last_contact,
                s.generation,
                s.central
            ),
        );
    }
}
