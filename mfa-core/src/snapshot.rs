//! The policy snapshot: a compact copy of everything the first five steps of the decision
//! read (settings, service methods, trusted-network rules, user overrides, lockouts), kept
//! beside the database as `<database>-policy` so that the PAM module can bypass a login (2FA
//! off, exempt user, trusted network, repeat window) or refuse a locked-out user without
//! opening SQLite. Opening the database, parsing its schema and closing it (a WAL checkpoint)
//! costs milliseconds; reading this file costs microseconds.
//!
//! **Consistency.** The database stays the only truth; the snapshot is derived from it.
//! Every change that affects it ([`crate::store::Store::change`], a lockout) deletes the
//! snapshot *inside* its transaction, before the commit, and writes a new one after the
//! commit, all under an exclusive lock on `<database>-policy.lock`. So at any instant,
//! also after a crash, the snapshot is either missing or equal to the committed database;
//! when it is missing (or unreadable) the module takes the full path through SQLite, which
//! gives the same answer, and the next `mfa-admin` command writes it again. The snapshot
//! also carries the database's `policy_generation`; `mfa-admin` compares the two at every
//! start and rebuilds a snapshot that does not match (a database restored from a backup).
//!
//! **Format** (little-endian; written by [`build`], atomically by rename, mode 0600):
//! `MFAPOL01`, u64 generation, u32 total length, then five sections, each a u32 count then
//! records. Strings are a u16 length then UTF-8 bytes. Log levels are one byte: 0 unset,
//! 1 none, 2 rejects, 3 all.
//! - settings: key, value (only the values that differ from the default, as stored)
//! - services: name, method
//! - rules: 48 bytes each: i64 id, u32 service index, u8 family (4|6), u8 require, u8 log,
//!   u8 0, 16-byte first address key, 16-byte last address key (see [`crate::net`])
//! - users with an override or disabled: name, u8 flags (1 enabled, 2 mandatory, 4 exempt),
//!   u8 log
//! - lockouts (users with a lock time set): name, i64 locked until (Unix seconds)

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::net::addr_key;
use crate::policy::{Facts, NetworkFacts, UserFacts};
use crate::settings::{LogLevel, Settings};
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MFAPOL01";
const HEADER: usize = 8 + 8 + 4;
const RULE: usize = 48;
/// The `meta` key holding the generation the snapshot must carry.
pub const GENERATION_KEY: &str = "policy_generation";

/// The snapshot file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-policy")
}

/// The lock file that serialises writers of the snapshot.
fn lock_path(database: &Path) -> PathBuf {
    sibling(database, "-policy.lock")
}

/// `<database><suffix>`, like SQLite's own `-wal` and `-shm` files.
pub(crate) fn sibling(database: &Path, suffix: &str) -> PathBuf {
    let mut s = database.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A loaded snapshot.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    settings: Settings,
    services: Vec<(String, String)>,
    bytes: Vec<u8>,
    rules: std::ops::Range<usize>,
    users: (usize, std::ops::Range<usize>),
    locks: (usize, std::ops::Range<usize>),
}

/// What the snapshot knows of one request: the facts of the first five steps. `user` is
/// never `None` (the snapshot does not know who has a record), so only a decision of steps
/// 1–5 may be taken from them.
impl Snapshot {
    /// Reads the snapshot of `database`; `None` when it is missing or unreadable (the caller
    /// then asks the database itself).
    pub fn load(database: &Path) -> Option<Snapshot> {
        let bytes = std::fs::read(path_for(database)).ok()?;
        Snapshot::decode(bytes)
    }

    /// The generation it was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn decode(bytes: Vec<u8>) -> Option<Snapshot> {
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return None;
        }
        let mut r = Reader { b: &bytes, at: 8 };
        let generation = r.u64()?;
        if usize::try_from(r.u32()?).ok()? != bytes.len() {
            return None;
        }
        let mut stored = BTreeMap::new();
        for _ in 0..r.u32()? {
            let k = r.str()?.to_string();
            stored.insert(k, r.str()?.to_string());
        }
        let settings = Settings::from_stored(&stored).ok()?;
        let n = r.u32()?;
        let mut services = Vec::with_capacity(usize::try_from(n).ok()?);
        for _ in 0..n {
            let name = r.str()?.to_string();
            services.push((name, r.str()?.to_string()));
        }
        let n = usize::try_from(r.u32()?).ok()?;
        let start = r.at;
        r.skip(n.checked_mul(RULE)?)?;
        let rules = start..r.at;
        let users = r.section(|r| {
            r.str()?;
            r.skip(2)
        })?;
        let locks = r.section(|r| {
            r.str()?;
            r.skip(8)
        })?;
        if r.at != bytes.len() {
            return None;
        }
        Some(Snapshot {
            generation,
            settings,
            services,
            bytes,
            rules,
            users,
            locks,
        })
    }

    /// The facts of steps 1–5 for a request. `last_grant` is left `None`: the repeat-window
    /// grant lives in its own file ([`crate::grants`]).
    pub fn facts(&self, user: &str, service: &str, ip: Option<IpAddr>) -> Facts {
        let method = self
            .services
            .iter()
            .find(|(n, m)| n == service && !m.is_empty())
            .or_else(|| {
                self.services
                    .iter()
                    .find(|(n, m)| n == "*" && !m.is_empty())
            })
            .map_or_else(|| "none".to_string(), |(_, m)| m.clone());
        let mut u = UserFacts {
            enabled: true,
            ..Default::default()
        };
        let mut r = Reader {
            b: &self.bytes,
            at: self.users.1.start,
        };
        for _ in 0..self.users.0 {
            let (Some(name), Some(flags), Some(log)) = (r.str(), r.u8(), r.u8()) else {
                break;
            };
            if name == user {
                u.enabled = flags & 1 != 0;
                u.mandatory = flags & 2 != 0;
                u.exempt = flags & 4 != 0;
                u.log = log_from(log);
                break;
            }
        }
        let mut locked_until = 0;
        let mut r = Reader {
            b: &self.bytes,
            at: self.locks.1.start,
        };
        for _ in 0..self.locks.0 {
            let (Some(name), Some(until)) = (r.str(), r.i64()) else {
                break;
            };
            if name == user {
                locked_until = until;
                break;
            }
        }
        Facts {
            settings: self.settings.clone(),
            method,
            user: Some(u),
            locked_until,
            network: ip.and_then(|ip| self.network(service, ip)),
            last_grant: None,
        }
    }

    /// The deciding rule for `service` and `ip`, ranked as
    /// [`crate::store::rules::matching_networks`] ranks them: narrowest range, then the
    /// service's own rule over `*`, then "require" over "trusted", then the older rule.
    fn network(&self, service: &str, ip: IpAddr) -> Option<NetworkFacts> {
        let ip = ip.to_canonical();
        let family = if ip.is_ipv4() { 4 } else { 6 };
        let key = addr_key(ip);
        let own = self.services.iter().position(|(n, _)| n == service);
        let any = self.services.iter().position(|(n, _)| n == "*");
        // (span, is_any, !require, id) — smaller is better.
        let mut best: Option<((u128, bool, bool, i64), NetworkFacts)> = None;
        for rec in self.bytes[self.rules.clone()].chunks_exact(RULE) {
            if rec[12] != family {
                continue;
            }
            let (first, last) = (&rec[16..32], &rec[32..48]);
            if first > &key[..] || last < &key[..] {
                continue;
            }
            let svc = usize::try_from(le_u32(&rec[8..12])).ok();
            let is_any = svc == any;
            if !(is_any || (own.is_some() && svc == own)) {
                continue;
            }
            let span = be_u128(last).wrapping_sub(be_u128(first));
            let id = le_i64(&rec[0..8]);
            let require = rec[13] != 0;
            let rank = (span, is_any, !require, id);
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((
                    rank,
                    NetworkFacts {
                        id,
                        require,
                        log: log_from(rec[14]),
                    },
                ));
            }
        }
        best.map(|(_, n)| n)
    }
}

/// Builds the snapshot of the database as `conn` sees it (call it inside one read
/// transaction so that all sections come from the same state).
pub fn build(conn: &Connection) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation(conn)?.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());

    let settings = crate::store::rules::stored_settings(conn)?;
    put_count(&mut out, settings.len())?;
    for (k, v) in &settings {
        put_str(&mut out, k)?;
        put_str(&mut out, v)?;
    }

    // Services: those with a method, then names that only rules mention (method "").
    let mut services: Vec<(String, String)> = crate::store::rules::services(conn)?
        .into_iter()
        .map(|s| (s.service, s.method))
        .collect();
    let mut stmt = conn.prepare(
        "SELECT id, service, family, first, last, require, log_level FROM networks ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    let mut rules = Vec::new();
    while let Some(r) = rows.next()? {
        let service: String = r.get(1)?;
        let idx = match services.iter().position(|(n, _)| *n == service) {
            Some(i) => i,
            None => {
                services.push((service, String::new()));
                services.len() - 1
            }
        };
        let mut rec = [0u8; RULE];
        rec[0..8].copy_from_slice(&r.get::<_, i64>(0)?.to_le_bytes());
        let idx = u32::try_from(idx).map_err(|_| Error::Database("too many services".into()))?;
        rec[8..12].copy_from_slice(&idx.to_le_bytes());
        rec[12] = u8::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
        rec[13] = u8::from(r.get::<_, bool>(5)?);
        rec[14] = log_to(r.get::<_, Option<String>>(6)?.as_deref());
        let (first, last): (Vec<u8>, Vec<u8>) = (r.get(3)?, r.get(4)?);
        if first.len() != 16 || last.len() != 16 {
            return Err(Error::Database(format!(
                "network rule {} has a corrupt address key",
                r.get::<_, i64>(0)?
            )));
        }
        rec[16..32].copy_from_slice(&first);
        rec[32..48].copy_from_slice(&last);
        rules.push(rec);
    }
    drop(rows);
    drop(stmt);
    put_count(&mut out, services.len())?;
    for (name, method) in &services {
        put_str(&mut out, name)?;
        put_str(&mut out, method)?;
    }
    put_count(&mut out, rules.len())?;
    for rec in &rules {
        out.extend_from_slice(rec);
    }

    let mut stmt = conn.prepare(
        "SELECT u.name, u.enabled, coalesce(o.mandatory, 0), coalesce(o.exempt, 0), o.log_level
         FROM users u LEFT JOIN overrides o ON o.user = u.name
         WHERE NOT u.enabled OR o.mandatory OR o.exempt OR o.log_level IS NOT NULL
         ORDER BY u.name",
    )?;
    let users: Vec<(String, u8, u8)> = stmt
        .query_map([], |r| {
            let flags = u8::from(r.get::<_, bool>(1)?)
                | (u8::from(r.get::<_, bool>(2)?) << 1)
                | (u8::from(r.get::<_, bool>(3)?) << 2);
            Ok((
                r.get(0)?,
                flags,
                log_to(r.get::<_, Option<String>>(4)?.as_deref()),
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    put_count(&mut out, users.len())?;
    for (name, flags, log) in &users {
        put_str(&mut out, name)?;
        out.push(*flags);
        out.push(*log);
    }

    let mut stmt = conn
        .prepare("SELECT user, locked_until FROM lockouts WHERE locked_until > 0 ORDER BY user")?;
    let locks: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    put_count(&mut out, locks.len())?;
    for (name, until) in &locks {
        put_str(&mut out, name)?;
        out.extend_from_slice(&until.to_le_bytes());
    }

    let len = u32::try_from(out.len()).map_err(|_| Error::Database("snapshot too large".into()))?;
    out[16..20].copy_from_slice(&len.to_le_bytes());
    Ok(out)
}

/// Counts a change of the policy: the snapshot must carry the new generation. Call it in
/// the transaction of the change.
pub fn bump_generation(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [GENERATION_KEY],
    )?;
    Ok(())
}

/// The generation of the database as `conn` sees it.
pub fn current_generation(conn: &Connection) -> Result<u64> {
    generation(conn)
}

/// Takes the exclusive lock that serialises the writers of the snapshot (held until the
/// returned file is dropped). Take it before the database's write lock, never after.
pub fn lock(database: &Path) -> Result<File> {
    let p = lock_path(database);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&p)
        .map_err(|e| Error::io(&p, e))?;
    f.lock().map_err(|e| Error::io(&p, e))?;
    Ok(f)
}

/// Deletes the snapshot, so that readers use the database until a new one is written.
/// Call it inside the transaction of a change, before the commit.
pub fn invalidate(database: &Path) -> Result<()> {
    let p = path_for(database);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&p, e)),
    }
}

/// Writes `bytes` as the snapshot of `database`: a temporary file renamed into place, so a
/// reader sees the old file, no file, or the whole new one. `durable` adds the fsyncs an
/// administrator's change deserves (the module's lockouts do without, as the design's hot
/// path does).
pub fn write(database: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let p = path_for(database);
    let tmp = sibling(database, &format!("-policy.tmp{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &p)?;
        if durable && let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| Error::io(&p, e))
}

fn generation(conn: &Connection) -> Result<u64> {
    use rusqlite::OptionalExtension;
    let g: Option<String> = conn
        .query_row(
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1",
            [GENERATION_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(g.and_then(|g| g.parse().ok()).unwrap_or(0))
}

fn put_count(out: &mut Vec<u8>, n: usize) -> Result<()> {
    let n = u32::try_from(n).map_err(|_| Error::Database("snapshot section too large".into()))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    let n = u16::try_from(s.len())
        .map_err(|_| Error::Database(format!("snapshot: text of {} bytes is too long", s.len())))?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn log_from(b: u8) -> Option<LogLevel> {
    match b {
        1 => Some(LogLevel::None),
        2 => Some(LogLevel::Rejects),
        3 => Some(LogLevel::All),
        _ => None,
    }
}

fn log_to(l: Option<&str>) -> u8 {
    match l {
        Some("none") => 1,
        Some("rejects") => 2,
        Some("all") => 3,
        _ => 0,
    }
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

fn be_u128(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    u128::from_be_bytes(a)
}

/// A bounds-checked cursor over the snapshot bytes.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(le_u32)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| le_i64(s) as u64)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8).map(le_i64)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))?;
        std::str::from_utf8(self.take(usize::from(n))?).ok()
    }
    /// A section of variable-length records: its count and byte range.
    fn section(
        &mut self,
        mut record: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<(usize, std::ops::Range<usize>)> {
        let n = usize::try_from(self.u32()?).ok()?;
        let start = self.at;
        for _ in 0..n {
            record(self)?;
        }
        Some((n, start..self.at))
    }
}
