//! The policy snapshot: a compact, read-only copy of everything the PAM module reads from
//! the database (settings, service methods, trusted-network rules, every user with
//! their overrides, contacts, authenticator key and backup-code count, the message templates,
//! the carriers and the passcode hash key), kept beside the database as `<database>-policy`,
//! and the lockouts in force in a small file of their own ([`lockouts`], read with it).
//! Opening the database, parsing its schema and closing it costs the module most of a
//! millisecond per login; these files cost a handful of reads and short checksums.
//!
//! **Consistency.** The database stays the only truth; the snapshot is derived from it.
//! Every change that affects it ([`crate::store::Store::change`], a lockout) writes the new
//! file beside the old one from its own transaction, deletes the old one *inside* the
//! transaction, before the commit, and puts the new one in place after the commit, all under
//! an exclusive lock on `<database>-policy.lock` (a lockout alone: the lockouts file only). So at any instant,
//! also after a crash, the snapshot is either missing or equal to the committed database;
//! when it is missing (or unreadable) the module reads the database, which gives the same
//! answers, and the next `mfa-admin` command writes it again. The snapshot also carries the
//! database's `policy_generation`; `mfa-admin` compares the two at every start and rebuilds
//! a snapshot that does not match (a database restored from a backup). It holds secrets (the
//! hash key, authenticator keys): mode 0600, owned by root, like the database; a snapshot
//! that group or others can read or write, or in a directory others can write, is not used.
//!
//! **Integrity.** A flipped bit must not change a decision (the mutation test found
//! lost mandatory flags, widened trusted ranges and codes sent to `alice@exa-ple.com`). The
//! head carries a checksum of itself, and it holds the checksums of the index blocks, which
//! hold those of the blocks of rules and users: a tree whose root covers every byte of the
//! file. A login verifies the head at [`Snapshot::load`], and each block it reads before
//! decoding it; `mfa-admin` ([`verify`]) checks every block and that the blocks tile the
//! file. A login that meets a mismatch logs it ([`report`]: syslog, and the auth log when the
//! inbox can be written) and reads the database instead: the whole of it at load, the
//! user's record for a damaged user block, the deciding rule for a damaged rule block; never
//! "unknown user" or "no rule". The checksum is XXH3-128 (in SSE2 code chosen at build time:
//! no CPU detection at load, which traps in a VM): about 0.1 µs per KiB where the portable
//! SHA-256 took 4, so a login's cost does not grow with what it hashes. A checksum, not a
//! keyed MAC nor a cryptographic hash: it guards against damage (a disk, a partial copy, a
//! bad restore), not an attacker, since whoever can write the snapshot is root (it must be
//! root's, private, in a directory only root can write) and could rewrite the database, or
//! read any key a MAC would use, just as well.
//!
//! **Cost flat with scale.** A login reads the head (a few KiB whatever the number of users
//! and rules: the index of the index blocks), one index block and one block of users, and
//! for its address the index blocks and blocks of rules whose bounds hold it: a handful of
//! `pread`s of a few KiB each, at 10 users as at 100,000.
//!
//! **Updated, not rebuilt.** Offsets count from the end of the head, so a new head (a
//! setting) leaves the body as it is: a change that touches a few users
//! (`patch`: a used backup code, `mfa-admin user add`) writes a new head, new
//! blocks for those users and new index blocks, and copies every other byte of the old file
//! in the kernel (`copy_file_range`), instead of reading the whole database again.
//!
//! **Format** (little-endian; written by [`build`] or `patch`, atomically by rename). A
//! header: `MFAPOL07`, u64 generation, u32 total length, u32 length of the head, the 16-byte
//! XXH3-128 of the head (the digest field left out). The head, read at every login:
//! sections of a u32 count then records; strings are a u16 length then UTF-8, byte strings a
//! u16 length then bytes; log levels are one byte (0 unset, 1 none, 2 rejects, 3 all).
//! - settings: key, value (only those that differ from the default, as stored)
//! - services: name, method ("" for a name only rules mention)
//! - passcode hash key: one byte string (empty if not created yet)
//! - templates: name, text (the text in force, default or custom)
//! - carriers: name, gateway suffix
//! - rule index: entries of 56 bytes, one per index block of rules: the lowest first and
//!   highest last address key under it, u32 offset, u32 length, 16-byte checksum
//! - user index: entries, one per index block of users: the first name under it, u32
//!   offset, u32 length, 16-byte checksum
//!
//! The body (offsets from its start, the end of the head): blocks of up to `RULE_BLOCK` (32)
//! rules sorted by first key, a rule being 48 bytes: i64 id, u32 service index, u8 family
//! (4|6), u8 require, u8 log, u8 0, 16-byte first address key, 16-byte last address key
//! (see [`crate::net`]); index blocks of rules (up to `FANOUT` (64) entries as in the rule index,
//! each for a block of rules); blocks of users; index blocks of users (up to `FANOUT` (64)
//! entries as in the user index, each for a block of users). Users are sorted by name
//! (bytes); a block holds [`BLOCK`] of them when built, up to twice that after updates. A
//! user: name, u8 flags (1 enabled, 2 mandatory, 4 exempt), u8 log, u8 self-enroll (0 unset,
//! 1 yes, 2 no), u8 double-logon contact (its number; 0 the first contact), u16 backup codes
//! left, u8 has key, [algorithm, u8 digits, secret], u8 contact count, contacts: u8 number,
//! channel, address, carrier ("" none), to, masked, label; the Duo user name ("" none); u8
//! factors allowed (bits of [`crate::policy::Factors`], 1..=15). The flags, log level,
//! self-enroll and factors are the user's *effective* values, their group's resolved in
//! (`user_policy` in the store's schema): a login never looks a group up.
//!
//! **Versions.** The magic names the format; a change of it takes the next number. A file of
//! another version (an `mfa-admin` or module of another build wrote it: during a package
//! upgrade, before its `mfa-admin init` runs) is not used, like a damaged one: logins read the
//! database and the next `mfa-admin` command rewrites it. (`MFAPOL04` added the double-logon
//! contact; `MFAPOL05` the index blocks, offsets from the head's end and XXH3-128; `MFAPOL06`
//! the Duo user name; `MFAPOL07` the factors allowed, and group-resolved values.)

#[cfg(test)]
mod attack_tests;
mod check;
mod decode;
mod encode;
#[cfg(test)]
mod integrity_tests;
pub mod lockouts;
mod patch;
#[cfg(test)]
mod patch_tests;
mod read;
#[cfg(test)]
mod tests;
mod verify;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::files::sibling;
use crate::policy::UserFacts;
use crate::store::people::ContactRow;
use crate::totp::Key;
use crate::{Error, Result};

pub use check::{Checked, Finding, check_and_repair, same_content};
pub use encode::build;
pub(crate) use patch::stage;
pub use patch::{Changes, MAX_USERS, changes, track_changes};
#[cfg(test)]
pub(crate) use patch::{patch, write_pieces};
pub use read::{Damage, Snapshot};
pub use verify::verify;

#[cfg(test)]
thread_local! {
    /// Snapshots this thread updated by a patch rather than a build (tests).
    pub(crate) static PATCHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The checksum of a block: XXH3-128, little-endian.
pub(crate) fn digest(bytes: &[u8]) -> [u8; DIGEST] {
    xxhash_rust::xxh3::xxh3_128(bytes).to_le_bytes()
}

/// The checksum of a head (`head` is the file's first `head_len` bytes): of everything in it
/// but the digest field itself.
pub(crate) fn head_digest(head: &[u8]) -> [u8; DIGEST] {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(head.get(..DIGEST_AT).unwrap_or_default());
    h.update(head.get(HEADER..).unwrap_or_default());
    h.digest128().to_le_bytes()
}

pub(crate) const MAGIC: &[u8; 8] = b"MFAPOL07";
/// What every version's magic starts with (the last two characters number the format).
pub(crate) const MAGIC_FAMILY: &[u8; 6] = b"MFAPOL";
/// Length of a checksum.
pub(crate) const DIGEST: usize = 16;
/// Where the head's digest sits in the header.
pub(crate) const DIGEST_AT: usize = 8 + 8 + 4 + 4;
pub(crate) const HEADER: usize = DIGEST_AT + DIGEST;
pub(crate) const RULE: usize = 48;
/// Rules per block of rules.
pub(crate) const RULE_BLOCK: usize = 32;
/// An index entry of rules: lowest first key, highest last key, offset, length, checksum.
pub(crate) const RULE_ENTRY: usize = 16 + 16 + 4 + 4 + DIGEST;
/// Users per block of users, as built (updates let a block grow to twice that).
pub const BLOCK: usize = 32;
/// Entries per index block.
pub(crate) const FANOUT: usize = 64;
/// The `meta` key holding the generation the snapshot must carry.
pub const GENERATION_KEY: &str = "policy_generation";
/// What a first read takes: the whole head of most installations.
pub(crate) const FIRST_READ: usize = 16 * 1024;

/// The snapshot file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-policy")
}

/// The lock file that serialises writers of the snapshot.
fn lock_path(database: &Path) -> PathBuf {
    sibling(database, "-policy.lock")
}

/// One user as the snapshot holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    pub facts: UserFacts,
    pub key: Option<Key>,
    pub contacts: Vec<ContactRow>,
    /// The user's Duo user name (`user set --duo`); `None`: not known to have Duo (method
    /// `duo` asks Duo under the login name).
    pub duo_user: Option<String>,
}

/// Counts a change of the policy: the snapshot must carry the new generation. Call it in
/// the transaction of the change. The generation grows by 1 plus a random 32-bit number, so
/// two histories from one backup (a database restored, changed, and another copy restored)
/// do not meet at the same generation with different policies.
pub fn bump_generation(conn: &Connection) -> Result<()> {
    bump(conn, GENERATION_KEY)
}

/// Moves the generation `meta` holds under `key` as [`bump_generation`] does.
pub fn bump(conn: &Connection, key: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE
           SET value = CAST(CAST(value AS INTEGER) + 1 + (random() & 4294967295) AS TEXT)",
        [key],
    )?;
    Ok(())
}

/// Takes the exclusive lock that serialises the writers of the snapshot (held until the
/// returned file is dropped). Take it before the database's write lock, never after.
/// `bounded`: give up after [`crate::files::LOCK_WAIT`] (a login), else wait (mfa-admin,
/// behind another administrator's long import).
pub fn lock(database: &Path, bounded: bool) -> Result<File> {
    let p = lock_path(database);
    // Never through a link nor blocking on a FIFO left in its place: every wait here is
    // bounded below, and opening must not be an unbounded one.
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    if !f.metadata().map_err(|e| Error::io(&p, e))?.is_file() {
        return Err(Error::io(
            &p,
            std::io::Error::other("not a regular file; remove it (mfa writes its own)"),
        ));
    }
    if bounded {
        crate::files::lock_within(&f, &p, true)?;
    } else {
        f.lock().map_err(|e| Error::io(&p, e))?;
    }
    Ok(f)
}

/// Deletes the snapshot, so that readers use the database until a new one is written.
/// Call it inside the transaction of a change, before the commit.
pub fn invalidate(database: &Path) -> Result<()> {
    crate::files::remove_if_exists(&path_for(database))
}

/// Writes `bytes` as the snapshot of `database`: a temporary file renamed into place, so a
/// reader sees the old file, no file, or the whole new one. `durable` adds the fsyncs an
/// administrator's change deserves (the module's lockouts do without, as the design's hot
/// path does).
pub fn write(database: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    crate::files::replace(&path_for(database), bytes, durable)
}

/// The generation of the database as `conn` sees it (0 before the first change).
pub fn current_generation(conn: &Connection) -> Result<u64> {
    generation_of(conn, GENERATION_KEY)
}

/// A generation `meta` holds under `key` (0 before the first change).
pub fn generation_of(conn: &Connection, key: &str) -> Result<u64> {
    use rusqlite::OptionalExtension;
    let g: Option<String> = conn
        .query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1",
            [key],
            |r| r.get(0),
        )
        .optional()?;
    Ok(g.and_then(|g| g.parse().ok()).unwrap_or(0))
}

/// Tells that the snapshot of `database` cannot be used: one error line in syslog and, when
/// the inbox can be written, in the auth log (outcome `error`). The login goes on with the
/// database; any `mfa-admin` command rewrites the snapshot.
pub fn report(database: &Path, user: &str, damage: &Damage) {
    let text = format!(
        "policy snapshot not used: {damage}; the database is read instead until any mfa-admin command rewrites it"
    );
    syslog_error(&text);
    let ev = crate::store::logs::AuthEvent {
        user: user.to_string(),
        outcome: "error".into(),
        reason: text,
        ..Default::default()
    };
    let _ = crate::authlog::append(database, &ev);
}

/// One line at LOG_AUTHPRIV|LOG_ERR, sent to /dev/log as syslog(3) would (control
/// characters as `?`); dropped when there is no syslog daemon.
fn syslog_error(text: &str) {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let line = format!("<{}>pam_mfa[{}]: {clean}", 10 * 8 + 3, std::process::id());
    if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = sock.send_to(line.as_bytes(), "/dev/log");
    }
}

/// A user's record read from the database, for a snapshot whose block of users cannot be
/// used. When the database cannot be read either, a record that is denied (disabled and
/// mandatory, no factor): never `None`, which would read as an unknown user.
pub(crate) fn user_from_database(database: &Path, name: &str) -> Option<UserRecord> {
    let read = || -> Result<Option<UserRecord>> {
        let store = crate::store::Store::open_bounded(database)?;
        let conn = store.conn();
        let Some(facts) = crate::store::auth::facts(conn, name, "*", None)?.user else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            facts,
            key: crate::store::factors::totp_of(conn, name)?,
            contacts: crate::store::people::contacts(conn, name)?,
            duo_user: crate::store::people::duo_user(conn, name)?,
        }))
    };
    read().unwrap_or_else(|_| {
        Some(UserRecord {
            facts: UserFacts {
                enabled: false,
                mandatory: true,
                ..UserFacts::default()
            },
            key: None,
            contacts: Vec::new(),
            duo_user: None,
        })
    })
}

/// The deciding network rule read from the database, for a snapshot whose block of rules
/// cannot be used (`service` is the governing name). When the database cannot be read
/// either, a rule that requires the second factor: never a trusted network by default.
pub(crate) fn network_from_database(
    database: &Path,
    user: &str,
    service: &str,
    ip: Option<std::net::IpAddr>,
) -> Option<crate::policy::NetworkFacts> {
    let read = || -> Result<Option<crate::policy::NetworkFacts>> {
        let store = crate::store::Store::open_bounded(database)?;
        Ok(crate::store::auth::facts(store.conn(), user, service, ip)?.network)
    };
    read().unwrap_or(Some(crate::policy::NetworkFacts {
        id: 0,
        require: true,
        log: None,
    }))
}
