//! A fleet host's `mfa-admin` in step with the central store, and the commands that make a
//! host a member: `fleet join`, `fleet sync`, `migrate --to postgres URL`.
//!
//! Before a command, a fleet host ships its outbox and applies what is new, so the command
//! sees the fleet's rules; after a command that changed something, it ships the change at
//! once and says so. When the central store cannot be reached the command still runs on this
//! host's replica, and a change made then waits in the outbox until `mfa-fleetd` ships it:
//! rules keep being enforced and managed through an outage, and the change reaches the other
//! hosts when the store returns (a change of the same row made meanwhile on another host
//! and shipped later wins).

use std::sync::Mutex;
use std::time::Duration;

use mfa_core::config::Config;
use mfa_core::store::Store;
use mfa_core::store::fleet;
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_core::{Error, Result};
use mfa_fleet::{changes, connect, schema};
use serde::Serialize;

use super::Ctx;
use crate::output::json;

/// How long a command waits for the central store before going on without it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether this host's commands go through a fleet: `[store] backend = "postgres"` and a
/// database that joined.
pub fn member(config: &Config, store: &Store) -> bool {
    config.store.is_fleet() && fleet::host(store.conn()).ok().flatten().is_some()
}

/// Before a command: this host's changes shipped and the fleet's applied. Never stops the
/// command (a warning says why the rules may be behind).
pub fn catch_up(config: &Config, store: &mut Store) {
    if !config.store.is_fleet() {
        return;
    }
    if !member(config, store) {
        eprintln!(
            "warning: [store] backend is \"postgres\" but this database has not joined the \
             fleet: run `mfa-admin fleet join` (or `migrate --to postgres` on the first host)"
        );
        return;
    }
    match sync_now(config, store) {
        Ok(done) => report_skips(&done),
        Err(e) => eprintln!(
            "warning: {e}; this command uses this host's copy of the rules (generation {})",
            fleet::generation(store.conn()).unwrap_or(0)
        ),
    }
}

/// The connection `catch_up` opened, for `publish` after the command (one login to the
/// central store per command, not two).
static CLIENT: Mutex<Option<connect::Client>> = Mutex::new(None);

/// Runs `f` on the command's connection to the central store, opened at first use within
/// [`COMMAND_TIMEOUT`] and kept for the rest of the command (a closed one is not kept).
pub fn with_client<T>(
    config: &Config,
    f: impl FnOnce(&mut connect::Client) -> Result<T>,
) -> Result<T> {
    let mut slot = CLIENT.lock().unwrap_or_else(|p| p.into_inner());
    let mut client = match slot.take() {
        Some(c) if !c.is_closed() => c,
        _ => connect::connect_with(&config.store, COMMAND_TIMEOUT)?,
    };
    let done = f(&mut client);
    if !client.is_closed() {
        *slot = Some(client);
    }
    done
}

/// Ships this host's changes and applies the fleet's, through the command's connection.
fn sync_now(config: &Config, store: &mut Store) -> Result<fleet::Applied> {
    with_client(config, |client| changes::sync(client, store))
}

/// This host's log rows not shipped yet go to the central log now, so that reading it
/// shows this host's newest logins (mfa-fleetd ships them every `[store] poll` anyway).
pub fn ship_logs(config: &Config, store: &mut Store) -> Result<()> {
    let Some(host) = fleet::host(store.conn())? else {
        return Ok(());
    };
    with_client(config, |client| {
        mfa_fleet::logs::ship_all(client, store, &host).map(|_| ())
    })
}

/// After a command: a change it made shipped to the fleet now, or said to be waiting.
pub fn publish(config: &Config) {
    if !config.store.is_fleet() {
        return;
    }
    let Ok(mut store) = Store::open(&config.paths.database) else {
        return;
    };
    if !member(config, &store) || fleet::outbox_len(store.conn()).unwrap_or(0) == 0 {
        return;
    }
    match sync_now(config, &mut store) {
        // (Silent when it worked, like the command on a single machine.)
        Ok(done) => report_skips(&done),
        Err(e) => eprintln!(
            "warning: {e}; the change applies on this host now and reaches the fleet when \
             mfa-fleetd can ship it ({} change(s) waiting)",
            fleet::outbox_len(store.conn()).unwrap_or(0)
        ),
    }
}

fn report_skips(done: &fleet::Applied) {
    for (generation, why) in &done.skipped {
        eprintln!(
            "warning: fleet change {generation} could not apply and was skipped on every host: {why}"
        );
    }
    if let Some((generation, schema)) = done.newer {
        eprintln!(
            "warning: fleet change {generation} needs store schema {schema} (this mfa has {}): \
             upgrade mfa on this host; it stays at generation {}",
            mfa_core::store::SCHEMA_VERSION,
            done.generation
        );
    }
}

/// What `fleet join`, `fleet sync` and `migrate` report.
#[derive(Serialize)]
struct Joined {
    host: String,
    generation: i64,
    applied: usize,
    skipped: usize,
}

fn fleet_config(ctx: &Ctx) -> Result<&StoreConfig> {
    if !ctx.config.store.is_fleet() {
        return Err(Error::Invalid(format!(
            "{}: this host is not in a fleet: set [store] backend = \"postgres\", url and \
             password_file (README, \"A fleet\") first",
            ctx.config_path.display()
        )));
    }
    Ok(&ctx.config.store)
}

fn print(ctx: &Ctx, what: &str, j: &Joined) -> Result<()> {
    if ctx.json {
        json(j)?;
    } else {
        println!(
            "{what} as {}: at fleet generation {} ({} change(s) applied, {} skipped)",
            j.host, j.generation, j.applied, j.skipped
        );
    }
    Ok(())
}

/// `fleet join`: this host's rules become the fleet's. A database holding rules of its own
/// (users, networks, service rules) is refused unless `replace`.
pub fn join(ctx: &Ctx, replace: bool) -> Result<()> {
    let cfg = fleet_config(ctx)?;
    let host = cfg.host_name();
    let mut store = Store::open(&ctx.config.paths.database)?;
    if let Some(h) = fleet::host(store.conn())? {
        return Err(Error::Conflict(format!(
            "this database is already the fleet member {h:?}; `mfa-admin fleet sync` brings \
             it up to date"
        )));
    }
    let own: i64 = store.conn().query_row(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM networks)",
        [],
        |r| r.get(0),
    )?;
    if own > 0 && !replace {
        return Err(Error::Conflict(format!(
            "this database holds {own} user(s) and network rule(s) of its own, which joining \
             replaces with the fleet's; keep a copy (`mfa-admin export FILE`) and add \
             --replace-local-rules"
        )));
    }
    let mut client = connect::connect(cfg)?;
    schema::check(&mut client)?;
    let done = changes::join(&mut client, &mut store, &host)?;
    report_skips(&done);
    store.write(|tx| {
        mfa_core::store::logs::audit(
            tx,
            &ctx.actor(),
            "fleet join",
            &format!("as {host}, at generation {}", done.generation),
        )
    })?;
    print(
        ctx,
        "joined the fleet",
        &Joined {
            host,
            generation: done.generation,
            applied: done.applied,
            skipped: done.skipped.len(),
        },
    )
}

/// `fleet sync`: ship and apply now; an error when the store cannot be reached.
pub fn sync(ctx: &Ctx) -> Result<()> {
    let cfg = fleet_config(ctx)?;
    let mut store = Store::open(&ctx.config.paths.database)?;
    let host = fleet::host(store.conn())?.ok_or_else(|| {
        Error::Invalid(
            "this database has not joined the fleet: run `mfa-admin fleet join`".to_string(),
        )
    })?;
    let mut client = connect::connect(cfg)?;
    let done = changes::sync(&mut client, &mut store)?;
    report_skips(&done);
    print(
        ctx,
        "in step with the fleet",
        &Joined {
            host,
            generation: done.generation,
            applied: done.applied,
            skipped: done.skipped.len(),
        },
    )
}

/// `migrate --to postgres URL`: this machine's store becomes a new fleet's first
/// generation. The connection's other settings (password file, CA file, host name) come
/// from the options, else from `[store]`.
pub fn migrate(
    ctx: &Ctx,
    url: &str,
    password_file: Option<&std::path::Path>,
    ca_file: Option<&std::path::Path>,
    host: Option<&str>,
) -> Result<()> {
    let base = &ctx.config.store;
    let cfg = StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file: password_file
            .map(|p| p.to_path_buf())
            .or(base.password_file.clone()),
        ca_file: ca_file.map(|p| p.to_path_buf()).or(base.ca_file.clone()),
        host: host.map(str::to_string).or(base.host.clone()),
        poll: base.poll.clone(),
    };
    cfg.check().map_err(Error::Invalid)?;
    let name = cfg.host_name();
    let mut store = Store::open(&ctx.config.paths.database)?;
    if let Some(h) = fleet::host(store.conn())? {
        return Err(Error::Conflict(format!(
            "this database is already the fleet member {h:?}"
        )));
    }
    let mut client = connect::connect(&cfg)?;
    schema::migrate(&mut client)?;
    let generation = changes::found(&mut client, &mut store, &name)?;
    // The logs so far go with the rules: the fleet's log starts with this host's.
    let (auth, audit) = mfa_fleet::logs::ship_all(&mut client, &mut store, &name)?;
    store.write(|tx| {
        mfa_core::store::logs::audit(
            tx,
            &ctx.actor(),
            "migrate",
            &format!("to {url} as {name}, fleet generation {generation}"),
        )
    })?;
    if ctx.json {
        return json(&serde_json::json!({"host": name, "generation": generation,
                                        "auth_log": auth, "audit_log": audit}));
    }
    println!(
        "This store is now the fleet's first generation ({generation}), as host {name}; \
         {auth} auth-log and {audit} audit rows shipped."
    );
    if *base != cfg {
        println!(
            "\nPut this in {} (every host of the fleet has it, each with its own host), then \
             start mfa-fleetd (systemctl enable --now mfa-fleetd):\n\n{}",
            ctx.config_path.display(),
            store_table(&cfg)
        );
    }
    Ok(())
}

/// The `[store]` table of a configuration, as TOML text.
fn store_table(cfg: &StoreConfig) -> String {
    #[derive(Serialize)]
    struct Only<'a> {
        store: &'a StoreConfig,
    }
    toml::to_string(&Only { store: cfg }).unwrap_or_default()
}
