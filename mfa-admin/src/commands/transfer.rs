//! `export` and `import`: every rule as one declarative TOML document.

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

pub fn import(ctx: &Ctx, file: &Path) -> Result<()> {
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
    let summary = store.change(&ctx.actor(), "import", |tx| {
        let s = export::import(tx, &doc, mfa_core::now())?;
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
    println!("imported {name}: {summary}");
    Ok(())
}
