//! `user import`: records in bulk, from a CSV file (`--csv FILE`, checked line by line by
//! mfa_core::bulk, all or nothing) or for the members of a Unix group (`--unix-group G`,
//! records without contacts, so that `unassigned=enroll` lets them enroll at their next
//! login). `--dry-run` checks and counts, writes nothing. One transaction, one audit line.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use mfa_core::bulk::{self, Counts, Import};
use mfa_core::store::{Tx, groups};
use mfa_core::{Error, Result, invalid, validate};
use serde::Serialize;

use super::Ctx;
use crate::cli::UserImport;
use crate::output::visible;

pub fn run(ctx: &Ctx, a: UserImport) -> Result<()> {
    match (&a.csv, &a.unix_group) {
        (Some(file), None) => csv(ctx, file, a.update, a.dry_run),
        (None, Some(unix)) => unix_group(ctx, unix, a.group.as_deref(), a.dry_run),
        _ => Err(invalid!(
            "give one of --csv FILE or --unix-group GROUP (see `mfa-admin user import --help`)"
        )),
    }
}

/// A parsed CSV file: the header and each record with the line it starts on, or the
/// lines the CSV syntax itself refused.
struct Table {
    header: Vec<Vec<u8>>,
    records: Vec<(u64, Vec<Vec<u8>>)>,
    broken: Vec<(u64, String)>,
}

fn read_input(file: &Path) -> Result<(String, Vec<u8>)> {
    if file == Path::new("-") {
        let b = read_capped(std::io::stdin(), "standard input")?;
        return Ok(("standard input".into(), b));
    }
    let shown = visible(&file.display().to_string());
    // Non-blocking open: a FIFO nobody writes must not hang here (refused below).
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Invalid(format!("{shown}: no such file")),
            _ => Error::io(file, e),
        })?;
    let meta = f.metadata().map_err(|e| Error::io(file, e))?;
    if !meta.is_file() {
        return Err(invalid!(
            "{shown}: not a regular file (a device, a FIFO or a directory); give a CSV file, or - for standard input"
        ));
    }
    let bytes = read_capped(f, &shown)?;
    Ok((shown, bytes))
}

/// The largest CSV read (about a million lines of users with contacts).
const MAX_CSV: u64 = 128 << 20;

/// Reads at most [`MAX_CSV`] bytes; more is refused (standard input may be endless).
fn read_capped(r: impl Read, shown: &str) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    r.take(MAX_CSV + 1)
        .read_to_end(&mut b)
        .map_err(|e| Error::io(shown, e))?;
    if b.len() as u64 > MAX_CSV {
        return Err(invalid!(
            "{shown}: larger than {} MiB; split it into several files",
            MAX_CSV >> 20
        ));
    }
    Ok(b)
}

/// Splits the file into records: RFC 4180 quoting (a quoted field may hold commas, quotes
/// doubled and line breaks), CRLF or LF line ends, blank lines skipped, a UTF-8 byte-order
/// mark before the header ignored. Fields stay bytes: mfa_core::bulk checks their UTF-8.
fn parse(name: &str, bytes: &[u8]) -> Result<Table> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut header = None;
    let mut records = Vec::new();
    let mut broken = Vec::new();
    let mut rec = csv::ByteRecord::new();
    // Line numbers counted here: the reader's own are one short after a CRLF (it counts the
    // LF when it reads the next record).
    let mut lines = LineCounter::default();
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let at = rec.position().map_or(start, csv::Position::byte);
                let line = lines.line_of(body, at);
                let fields: Vec<Vec<u8>> = rec.iter().map(<[u8]>::to_vec).collect();
                if header.is_none() {
                    header = Some(fields);
                } else {
                    records.push((line, fields));
                }
            }
            Err(e) => {
                let line = lines.line_of(body, e.position().map_or(start, csv::Position::byte));
                broken.push((line, format!("not readable as CSV: {e}")));
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
            }
        }
    }
    let header = header.ok_or_else(|| {
        invalid!(
            "{name}: empty; the first line names the columns, such as {}",
            bulk::COLUMNS.join(",")
        )
    })?;
    Ok(Table {
        header,
        records,
        broken,
    })
}

/// The line number of byte offsets that only grow: the newlines before the offset, counted
/// once; line ends and blank lines at the offset are skipped (a record starts after them).
#[derive(Default)]
struct LineCounter {
    at: usize,
    newlines: u64,
}

impl LineCounter {
    fn line_of(&mut self, body: &[u8], offset: u64) -> u64 {
        let mut end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        while end < body.len() && (body[end] == b'\r' || body[end] == b'\n') {
            end += 1;
        }
        if end > self.at {
            self.newlines += body[self.at..end].iter().filter(|b| **b == b'\n').count() as u64;
            self.at = end;
        }
        self.newlines + 1
    }
}

/// Checks every line against the store (in the caller's transaction).
fn check(conn: &Tx<'_>, t: &Table, update: bool) -> Result<bulk::Checked> {
    let mut imp = Import::new(conn, &t.header, update)?;
    for (line, reason) in &t.broken {
        imp.bad(*line, reason);
    }
    for (line, fields) in &t.records {
        imp.record(*line, fields);
    }
    imp.finish()
}

#[derive(Serialize)]
struct CsvReport<'a> {
    file: &'a str,
    dry_run: bool,
    #[serde(flatten)]
    counts: Counts,
}

fn csv(ctx: &Ctx, file: &Path, update: bool, dry_run: bool) -> Result<()> {
    let (name, bytes) = read_input(file)?;
    let table = parse(&name, &bytes)?;
    drop(bytes);
    let mut store = ctx.store()?;
    let counts = if dry_run {
        store.read(|tx| check(tx, &table, update).map(|c| c.counts()))?
    } else {
        store.change(&ctx.actor(), "user import", |tx| {
            let n = check(tx, &table, update)?.apply(tx, mfa_core::now())?;
            Ok((n, format!("{name}: {}", n.summary())))
        })?
    };
    if ctx.json {
        return crate::output::json(&CsvReport {
            file: &name,
            dry_run,
            counts,
        });
    }
    if dry_run {
        println!(
            "{name} checked, nothing written; importing it would give {}",
            counts.summary()
        );
    } else {
        println!("imported {name}: {}", counts.summary());
    }
    Ok(())
}

#[derive(Serialize, Default)]
struct UnixReport {
    unix_group: String,
    group: Option<String>,
    dry_run: bool,
    /// Members given a record.
    added: Vec<String>,
    /// Members who had one (left as they are).
    existing: usize,
    /// Member names mfa cannot store (reported, skipped).
    skipped: Vec<String>,
}

fn unix_group(ctx: &Ctx, unix: &str, group: Option<&str>, dry_run: bool) -> Result<()> {
    let unix = groups::unix_group_name(unix)?;
    // NSS first, outside any transaction (a directory may be slow).
    let members = super::group::resolve_unix(&unix)?.ok_or_else(|| {
        Error::NotFound(format!(
            "unknown Unix group {unix:?}: `getent group {unix}` finds no such group"
        ))
    })?;
    let mut report = UnixReport {
        unix_group: unix.clone(),
        group: group.map(String::from),
        dry_run,
        ..UnixReport::default()
    };
    let mut names = Vec::new();
    for m in members {
        match validate::user_name(&m) {
            Ok(n) => names.push(n),
            Err(_) => report.skipped.push(m.escape_debug().to_string()),
        }
    }
    let mut store = ctx.store()?;
    let plan = |tx: &Tx<'_>| -> Result<(Vec<String>, usize)> {
        if let Some(g) = group {
            groups::require(tx, g)?;
        }
        let mut known = tx.prepare_cached("SELECT 1 FROM users WHERE name = ?1")?;
        let mut new = Vec::new();
        let mut existing = 0;
        for n in &names {
            if known.exists([n])? {
                existing += 1;
            } else {
                new.push(n.clone());
            }
        }
        Ok((new, existing))
    };
    let (added, existing) = if dry_run {
        store.read(|tx| plan(tx))?
    } else {
        let detail = |added: usize, existing: usize| {
            format!(
                "--unix-group {unix}{}: {added} users added, {existing} had records, {} names skipped",
                group.map_or(String::new(), |g| format!(" --group {g}")),
                report.skipped.len()
            )
        };
        store.change(&ctx.actor(), "user import", |tx| {
            let (new, existing) = plan(tx)?;
            let mut add = tx.prepare_cached(
                "INSERT INTO users (name, full_name, created, group_name) VALUES (?1, '', ?2, ?3)",
            )?;
            let now = mfa_core::now();
            for n in &new {
                add.execute((n, now, group))?;
            }
            let d = detail(new.len(), existing);
            Ok(((new, existing), d))
        })?
    };
    report.added = added;
    report.existing = existing;
    if ctx.json {
        return crate::output::json(&report);
    }
    for s in &report.skipped {
        eprintln!(
            "warning: member {} of Unix group {unix:?} skipped: not a name mfa can store",
            visible(s)
        );
    }
    let verb = if dry_run { "would add" } else { "added" };
    println!(
        "Unix group {unix}: {verb} {} user(s){}, {} already had records, {} skipped{}",
        report.added.len(),
        group.map_or(String::new(), |g| format!(" in group {g}")),
        report.existing,
        report.skipped.len(),
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    if !report.added.is_empty() && report.added.len() <= 50 {
        println!("{}", report.added.join(" "));
    }
    Ok(())
}
