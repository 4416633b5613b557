//! Integration tests of mfa-admin: each drives the built binary on a private configuration
//! and database in a temporary directory. One test binary, a module per topic.

// A failed assertion is the point of a test; helpers here panic on purpose.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default
)]

mod authenticator;
mod backend;
mod backup;
mod bad_input;
mod commands;
mod concurrency;
mod diagnose;
mod doctor_install;
mod doctor_oneword;
mod double_logon;
mod duo;
mod duo_admin;
mod fleet;
mod groups;
mod hostile_output;
mod import;
mod import_attack;
mod inactive;
mod integrity;
mod maintain;
mod notices;
mod operator;
mod safenet;
mod scale;
mod setup;
mod transfer;
mod unix_accounts;
mod upkeep_attack;
mod verify;
mod verify_attack;

#[path = "../../../mfa-fleet/tests/support/pg.rs"]
mod pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::types::ValueRef;

/// A private mfa installation: config, database, spool and runtime under one temp dir;
/// with `MFA_TEST_BACKEND=postgres`, the first host of a fleet of its own (`backend.rs`).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// Its central database when the suite runs against PostgreSQL.
    central: Option<backend::Central>,
    /// Set by [`Env::single_machine`]: no comparison with the fleet at the end.
    single_machine: AtomicBool,
}

/// What a run of mfa-admin did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// A configuration file only (no database yet).
    pub fn bare() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let config = root.join("mfa.toml");
        std::fs::write(&config, paths_toml(root)).unwrap();
        Env {
            dir,
            config,
            central: None,
            single_machine: AtomicBool::new(false),
        }
    }

    /// An initialised installation (a fleet's first host with `MFA_TEST_BACKEND=postgres`).
    pub fn new() -> Env {
        let mut env = Env::bare();
        env.ok(&["init"]);
        if backend::postgres() {
            env.central = Some(backend::found(&env));
        }
        env
    }

    /// An initialised installation that is the first host of a fleet of its own, whatever
    /// the backend (tests of what only a fleet host does).
    pub fn fleet() -> Env {
        let mut env = Env::sqlite();
        env.central = Some(backend::found(&env));
        env
    }

    /// An initialised single-machine installation, whatever the backend (tests of becoming
    /// or not being a fleet member).
    pub fn sqlite() -> Env {
        let env = Env::bare();
        env.ok(&["init"]);
        env
    }

    /// This test edits or breaks its database behind mfa-admin's back: with
    /// `MFA_TEST_BACKEND=postgres` its rules are not compared with the fleet's at the end.
    pub fn single_machine(&self) {
        self.single_machine.store(true, Ordering::Relaxed);
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("db/mfa.db")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs mfa-admin with `--config` pointing at this installation.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[])
    }

    /// Runs mfa-admin with extra environment variables.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mfa-admin"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .env("TZ", "UTC");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        out(cmd.output().unwrap())
    }

    /// Runs mfa-admin as the user nobody (real and effective ids, group nogroup, no other
    /// groups; the caller must be root), with `--config` pointing at this installation,
    /// from `/`.
    pub fn run_as_nobody<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Out {
        out(Command::new("setpriv")
            .args([
                "--reuid",
                "nobody",
                "--regid",
                "nogroup",
                "--clear-groups",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_mfa-admin"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("MFA_CONFIG")
            .current_dir("/")
            .output()
            .unwrap())
    }

    /// Runs and asserts success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.code, 0, "mfa-admin {args:?} failed: {o:?}");
        o.stdout
    }

    /// Runs with --json and parses the output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let text = self.ok(&a);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {text}"))
    }

    /// Asserts that a command is refused as bad input (exit 2) with a message containing
    /// every one of `needles`, and that the database is exactly as it was.
    pub fn bad(&self, args: &[&str], needles: &[&str]) -> Out {
        let before = self.dump();
        let o = self.run(args);
        assert_eq!(o.code, 2, "mfa-admin {args:?} should exit 2: {o:?}");
        for n in needles {
            assert!(
                o.stderr.contains(n),
                "mfa-admin {args:?}: stderr lacks {n:?}: {}",
                o.stderr
            );
        }
        assert_eq!(
            self.dump(),
            before,
            "mfa-admin {args:?} changed the database"
        );
        o
    }

    /// Every row of every table (and the schema version), as sorted text.
    pub fn dump(&self) -> Vec<String> {
        dump(&self.db())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Some(central) = &self.central else {
            return;
        };
        if std::thread::panicking() || self.single_machine.load(Ordering::Relaxed) {
            backend::drop_database(central);
        } else {
            backend::check(self, central);
        }
    }
}

/// The configuration of an installation rooted at `root`: its `[paths]` there, and
/// `[sender] user = "nobody"` (an account every Debian system has, so that `init`, as root,
/// does not create the sender's account `mfa` on the test machine).
pub fn paths_toml(root: &Path) -> String {
    format!(
        "[paths]\ndatabase = \"{r}/db/mfa.db\"\nspool = \"{r}/spool\"\nruntime = \"{r}/run\"\n\n[sender]\nuser = \"nobody\"\n",
        r = root.display()
    )
}

pub fn out(o: Output) -> Out {
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A logical dump of a database: independent of page layout and WAL state.
pub fn dump(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut lines = vec![format!("user_version={version}")];
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut table_lines = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".into(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(v) => format!("{:?}", String::from_utf8_lossy(v)),
                    ValueRef::Blob(v) => format!(
                        "x{}",
                        v.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    ),
                })
                .collect();
            table_lines.push(format!("{t}: {}", cells.join("|")));
        }
        table_lines.sort();
        lines.extend(table_lines);
    }
    lines
}
