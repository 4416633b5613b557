//! `export` and `import`: every rule as one declarative TOML document. `import --dry-run`
//! checks a document and reports what it would change (per section: added, changed,
//! removed) without writing anything.

use std::io::{Read, Write};
use std::path::Path;

use mfa_core::{Error, Result, export};

use super::Ctx;

pub fn export(ctx: &Ctx, file: Option<&Path>) -> Result<()> {
    let mut store = ctx.store()?;
    let doc = store.read(|tx| export::export(tx))?;
    let text = export::to_toml(&doc)?;
    match file {
        None => {
            print!("{text}");
            Ok(())
        }
        Some(path) => {
            write_atomically(path, text.as_bytes())?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
    }
}

/// Writes a file by way of a temporary file in the same directory and a rename, so that a
/// reader never sees half a document. The file is private (mode 0600): it holds contacts.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

pub fn import(ctx: &Ctx, file: &Path, dry_run: bool, allow_no_users: bool) -> Result<()> {
    let (name, text) = if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("standard input", e))?;
        ("standard input".to_string(), s)
    } else {
        let text = std::fs::read_to_string(file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                Error::Invalid(format!("{}: no such file", file.display()))
            }
            std::io::ErrorKind::InvalidData => {
                Error::Invalid(format!("{}: not UTF-8 text", file.display()))
            }
            _ => Error::io(file, e),
        })?;
        (file.display().to_string(), text)
    };
    let doc = export::parse(&name, &text)?;
    // Not freed one allocation at a time before the process ends (at 100,000 users the
    // text and the parsed document are hundreds of MB of small allocations).
    std::mem::forget(text);
    let mut store = ctx.store()?;
    if dry_run {
        let changes = dry_run_import(&store, &doc)?;
        std::mem::forget(doc);
        if ctx.json {
            return crate::output::json(&changes);
        }
        println!(
            "{name} checked, nothing written; an import would change: {}",
            changes.summary()
        );
        return Ok(());
    }
    // A document without users makes a store without users: every record, contact, key and
    // override gone, everyone `unassigned`. More often a truncated or wrong file than meant.
    // Refused after the document's own checks (their errors say more), inside the change:
    // nothing is written.
    // No per-section counts here (`--dry-run` gives them): two more exports of every rule
    // would double an import of 100,000 users.
    let summary = store.change(&ctx.actor(), "import", |tx| {
        let have: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
        let s = export::import(tx, &doc, mfa_core::now())?;
        if doc.users.is_empty() && have > 0 && !allow_no_users {
            return Err(mfa_core::invalid!(
                "{name} holds no user but the store has {have}: importing it would delete every user with their contacts, keys and overrides (a truncated or wrong file?); nothing was changed. Check it with `mfa-admin import --dry-run`, or import it with --allow-no-users"
            ));
        }
        Ok((s.clone(), format!("{name}: {s}")))
    })?;
    std::mem::forget(doc);
    // Users the import removed leave no grant, failure count or challenge behind.
    let users: std::collections::HashSet<String> = store
        .conn()
        .prepare("SELECT name FROM users")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    mfa_core::state::forget_unknown(&ctx.config.paths.database, |n| users.contains(n))?;
    // The members of the Unix groups the imported groups follow: resolved now (NSS, outside
    // the import's transaction), as `group sync` does; a failure leaves the import done.
    match super::group::sync_unix_groups(&mut store, &ctx.actor()) {
        Ok(r) => {
            for w in r.warnings() {
                eprintln!("warning: {}", crate::output::visible(&w));
            }
        }
        Err(e) => eprintln!(
            "warning: the members of followed Unix groups were not resolved ({e}); run `mfa-admin group sync`"
        ),
    }
    println!("imported {name}: {summary}");
    Ok(())
}

/// Runs the import in a transaction that is rolled back: every check the real import makes
/// (the store's constraints included) and the changes it would make, nothing written.
fn dry_run_import(
    store: &mfa_core::store::Store,
    doc: &export::Document,
) -> Result<export::diff::Changes> {
    let tx = store.conn().unchecked_transaction()?;
    let before = export::export(&tx)?;
    export::import(&tx, doc, mfa_core::now())?;
    // The import defers foreign keys to its commit, which a dry run never reaches.
    let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if broken > 0 {
        return Err(Error::Invalid(format!(
            "the document leaves {broken} reference(s) to rows it does not have; the import would fail"
        )));
    }
    let changes = export::diff::diff(&before, &export::export(&tx)?);
    std::mem::forget(before);
    tx.rollback()?;
    Ok(changes)
}
