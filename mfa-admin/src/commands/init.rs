//! `init`: writes a default configuration if there is none, creates the database, spool and
//! runtime directories with safe modes, and creates (or migrates) the database.
//!
//! Modes: database directory 0700 and file 0600 (root only: it will hold the passcode hash
//! key and TOTP secrets). The spool directory 0755 root; its subdirectories 0700, or
//! root:mfa 2770 when the system group `mfa` of the sender exists (the sender must claim and
//! delete messages). Runtime
//! directory 0755, owned by the user `mfa` when it exists (the sender writes its heartbeat).

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use mfa_core::config::{Config, ConfigSource};
use mfa_core::store::Store;
use mfa_core::{Error, Result};
use nix::unistd::{Gid, Group, Uid, User, chown};
use serde::Serialize;

use crate::output::json;

#[derive(Serialize)]
struct Created {
    path: String,
    what: &'static str,
    /// True when init created it now; false when it was already there.
    created: bool,
}

pub fn run(source: &ConfigSource, as_json: bool) -> Result<()> {
    let mut done = Vec::new();
    let config_created = write_default_config(&source.path)?;
    done.push(Created {
        path: source.path.display().to_string(),
        what: "configuration",
        created: config_created,
    });
    let config = Config::load(&ConfigSource {
        path: source.path.clone(),
        explicit: true,
    })?;
    let p = &config.paths;

    let db_dir = p
        .database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    done.push(Created {
        path: db_dir.display().to_string(),
        what: "database directory",
        created: mkdir(db_dir, 0o700, None)?,
    });

    let is_root = Uid::effective().is_root();
    let mfa_group = Group::from_name("mfa").ok().flatten().filter(|_| is_root);
    let spool_owner = mfa_group.as_ref().map(|g| (Uid::from_raw(0), g.gid));
    let spool_mode = if spool_owner.is_some() { 0o2770 } else { 0o700 };
    done.push(Created {
        path: p.spool.display().to_string(),
        what: "spool",
        // The root stays root's: were it group-writable, the sender's group could swap
        // tmp/ or new/ for a symlink and have the module (root) write elsewhere.
        created: mkdir(&p.spool, 0o755, None)?,
    });
    for sub in ["tmp", "new", "cur", "failed"] {
        let d = p.spool.join(sub);
        done.push(Created {
            path: d.display().to_string(),
            what: "spool",
            created: mkdir(&d, spool_mode, spool_owner)?,
        });
    }
    let mfa_user = User::from_name("mfa").ok().flatten().filter(|_| is_root);
    let runtime_owner = mfa_user.map(|u| (u.uid, u.gid));
    done.push(Created {
        path: p.runtime.display().to_string(),
        what: "runtime directory",
        created: mkdir(&p.runtime, 0o755, runtime_owner)?,
    });

    let (mut store, db_created) = Store::create(&p.database)?;
    let detail = format!("database {}", p.database.display());
    store.change(&crate::actor::actor(), "init", |_| Ok(((), detail)))?;
    done.push(Created {
        path: p.database.display().to_string(),
        what: "database",
        created: db_created,
    });

    if as_json {
        return json(&done);
    }
    for d in &done {
        let state = if d.created { "created" } else { "exists " };
        println!("{state}  {:<18}  {}", d.what, d.path);
    }
    println!("\nmfa is initialised; 2FA stays off until `mfa-admin settings set enabled=on`.");
    Ok(())
}

/// Writes the default configuration if the file does not exist; returns whether it did.
fn write_default_config(path: &Path) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        mkdir(dir, 0o755, None)?;
    }
    let text = Config::default().to_toml();
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    };
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(path, e))?;
    Ok(true)
}

/// Creates a directory (and missing parents, 0755) with `mode` and optional owner; an
/// existing directory is left as it is. Returns whether it was created.
fn mkdir(dir: &Path, mode: u32, owner: Option<(Uid, Gid)>) -> Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    if let Some(parent) = dir
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io(parent, e))?;
    }
    DirBuilder::new()
        .mode(mode)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    if let Some((uid, gid)) = owner {
        chown(dir, Some(uid), Some(gid)).map_err(|e| Error::io(dir, e.into()))?;
    }
    // The umask may have narrowed the mode, and set-group-ID needs setting explicitly.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(dir, e))?;
    Ok(true)
}
