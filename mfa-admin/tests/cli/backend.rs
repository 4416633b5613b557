//! Which store backend the suite runs against. By default every `Env` is a single machine
//! (the embedded SQLite store). With `MFA_TEST_BACKEND=postgres` each `Env::new()` is instead
//! the first host of a fleet of its own: a fresh database on a real PostgreSQL (started once
//! per test process, `support/pg.rs`), `migrate --to postgres` right after `init`, the
//! `[store]` table in its mfa.toml and one round of its `mfa-fleetd` (`--once`, so `doctor`
//! sees a follower that reported), so every command of the test goes through the fleet
//! (catch up before, ship after).
//!
//! When the test ends its changes must all be in the central store: its host ships what is
//! left (`fleet sync`), a second host made from nothing joins (`init`, `fleet join`), and
//! the two databases must hold the same rows in every replicated table. A test that edits
//! or breaks its database behind mfa-admin's back says so with [`super::Env::single_machine`]
//! and is left out of that comparison (it still runs through the fleet).

use std::path::Path;

use super::pg::Pg;
use super::{Env, dump, paths_toml};

/// The variable that selects the backend, and its one non-default value.
const VAR: &str = "MFA_TEST_BACKEND";

/// The host name of every test's own installation in its fleet.
const HOST: &str = "test-host";

/// True when the suite runs against PostgreSQL (`MFA_TEST_BACKEND=postgres`); panics on any
/// other value than `sqlite` or unset, so a typo cannot quietly test the default.
pub fn postgres() -> bool {
    match std::env::var(VAR).as_deref() {
        Err(_) | Ok("") | Ok("sqlite") => false,
        Ok("postgres") => true,
        Ok(other) => panic!("{VAR}={other:?}: use \"sqlite\" (the default) or \"postgres\""),
    }
}

/// A test installation's own central database.
#[derive(Debug)]
pub struct Central {
    pub url: String,
}

/// Makes the freshly initialised `env` the first host of a fleet of its own.
pub fn found(env: &Env) -> Central {
    let pg = Pg::shared();
    let url = pg.new_database();
    let password = pg.password_file();
    let o = env.run(&[
        "migrate",
        "--to",
        "postgres",
        &url,
        "--password-file",
        &password.to_string_lossy(),
        "--host",
        HOST,
    ]);
    assert_eq!(o.code, 0, "migrate --to postgres {url}: {o:?}");
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text += "\n";
    text += &pg.store_toml_for(&url, HOST, false);
    std::fs::write(&env.config, text).unwrap();
    // The host's follower, once: it reports to the fleet and writes the status `doctor`
    // reads, as the running mfa-fleetd would.
    let fleetd = Path::new(env!("CARGO_BIN_EXE_mfa-admin")).with_file_name("mfa-fleetd");
    assert!(
        fleetd.exists(),
        "{}: missing; build the workspace first (cargo build --workspace)",
        fleetd.display()
    );
    let o = super::out(
        std::process::Command::new(&fleetd)
            .arg("--config")
            .arg(&env.config)
            .arg("--once")
            .output()
            .unwrap(),
    );
    assert_eq!(o.code, 0, "mfa-fleetd --once: {o:?}");
    Central { url }
}

/// Runs mfa-admin with `config`; panics with its output unless it succeeds.
fn admin(config: &Path, args: &[&str]) {
    let o = super::out(
        std::process::Command::new(env!("CARGO_BIN_EXE_mfa-admin"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .output()
            .unwrap(),
    );
    assert_eq!(
        o.code,
        0,
        "mfa-admin --config {} {args:?}: {o:?}",
        config.display()
    );
}

/// The rows of the replicated tables in the database at `db`, as [`dump`] prints them.
fn replicated(db: &Path) -> Vec<String> {
    dump(db)
        .into_iter()
        .filter(|line| {
            line.split_once(": ")
                .is_some_and(|(t, _)| mfa_core::store::fleet::REPLICATED.contains(&t))
        })
        .collect()
}

/// At the end of a test: `env`'s rules are exactly what a host joining its fleet now gets.
/// Then the central database is dropped.
pub fn check(env: &Env, central: &Central) {
    let pg = Pg::shared();
    let store = pg.store_toml_for(&central.url, HOST, false);
    // Through a configuration of its own: the test may have rewritten env's mfa.toml.
    let own = env.path("fleet-check.toml");
    std::fs::write(&own, format!("{}\n{store}", paths_toml(env.dir.path()))).unwrap();
    admin(&own, &["fleet", "sync"]);

    let other = tempfile::tempdir().unwrap();
    let config = other.path().join("mfa.toml");
    let store = pg.store_toml_for(&central.url, "joining-host", false);
    std::fs::write(&config, format!("{}\n{store}", paths_toml(other.path()))).unwrap();
    admin(&config, &["init"]);
    admin(&config, &["fleet", "join"]);

    let mine = replicated(&env.db());
    let joined = replicated(&other.path().join("db/mfa.db"));
    if mine != joined {
        let only_mine: Vec<_> = mine.iter().filter(|l| !joined.contains(l)).collect();
        let only_joined: Vec<_> = joined.iter().filter(|l| !mine.contains(l)).collect();
        panic!(
            "the fleet does not hold this host's rules:\n only here: {only_mine:#?}\n only in a \
             host that joined: {only_joined:#?}"
        );
    }
    drop_database(central);
}

/// Drops the test's central database (they add up over a run otherwise).
pub fn drop_database(central: &Central) {
    let name = super::pg::db_name(&central.url);
    Pg::shared().psql_in(
        "postgres",
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE);"),
    );
}
