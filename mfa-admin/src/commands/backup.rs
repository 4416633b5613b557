//! `backup FILE` and `restore FILE`: a consistent copy of the whole store while logins go
//! on, and putting one back (checked first, the current database kept aside). The work is
//! [`mfa_core::store::backup`]'s; this prints what it did. A fleet host's restore is
//! refused: its rules are the fleet's (the central database is what to restore).

use std::path::Path;

use mfa_core::Result;
use mfa_core::store::{Store, logs};
use serde_json::json;

use super::Ctx;
use crate::output::{json as print_json, visible};

pub fn backup(ctx: &Ctx, file: &Path, force: bool) -> Result<()> {
    let store = ctx.store()?;
    let w = store.backup_to(file, force)?;
    if ctx.json {
        return print_json(&json!({
            "file": w.path, "bytes": w.bytes, "users": w.users,
        }));
    }
    println!(
        "wrote {} ({} bytes, {} users, mode 0600): it holds every secret of the store (TOTP keys, \
         backup-code hashes, the passcode key); keep it as safe as the database",
        visible(&w.path.display().to_string()),
        w.bytes,
        w.users
    );
    Ok(())
}

pub fn restore(ctx: &Ctx, file: &Path) -> Result<()> {
    if ctx.config.store.is_fleet() {
        // The rules of a fleet host are the fleet's: an old copy of its replica would be
        // undone by the fleet's changes, or would bring back an identity (incarnation) the
        // fleet has moved past. The fleet's backup is the central database's.
        return Err(mfa_core::Error::Conflict(format!(
            "this host is in a fleet ([store] backend = \"postgres\" in {}): its rules are \
             the fleet's, so restoring its own database would not bring rules back. The \
             fleet's backup is the central PostgreSQL database's (pg_dump); to undo a change, \
             make the opposite one; to rebuild this host, move its database aside, run \
             `mfa-admin init` and `mfa-admin fleet join`",
            ctx.config_path.display()
        )));
    }
    // Opened without ctx.store(): no snapshot repair or inbox move into a database that is
    // about to be replaced (the inbox is moved afterwards, into the restored one).
    let db = &ctx.config.paths.database;
    let mut store = Store::open(db).map_err(|e| {
        mfa_core::Error::Failed(format!(
            "cannot open the current database: {e}. A restore writes into it; if it is \
             damaged, move it aside (mv {0} {0}.damaged), run `mfa-admin init`, then restore \
             again",
            db.display()
        ))
    })?;
    let now = mfa_core::now();
    let r = store.restore(file, now)?;
    let shown = visible(&file.display().to_string());
    let kept = visible(&r.kept.display().to_string());
    // The restored store's audit log says it (not a policy change: the snapshot stays).
    let detail = format!("from {shown}; the database before it kept as {kept}");
    store.write(|tx| logs::audit(tx, &ctx.actor(), "restore", &detail))?;
    let moved = store.ingest_auth_log();
    if ctx.json {
        return print_json(&json!({
            "file": file, "kept": r.kept, "schema": r.schema, "users": r.users,
            "generation": r.generation,
        }));
    }
    println!("restored the store from {shown} ({} users)", r.users);
    if r.schema < mfa_core::store::SCHEMA_VERSION {
        println!(
            "the backup's schema version {} was migrated to {}",
            r.schema,
            mfa_core::store::SCHEMA_VERSION
        );
    }
    println!("the database as it was before is kept as {kept} (mode 0600; delete it when done)");
    println!(
        "the policy snapshot and lockouts file were rewritten (generation {}); login-state \
         files (failure counts, TOTP steps) were kept, and no TOTP code used before now passes again",
        r.generation
    );
    if let Err(e) = moved {
        eprintln!("warning: the auth-log inbox was not moved into the database: {e}");
    }
    Ok(())
}
