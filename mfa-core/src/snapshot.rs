//! The policy snapshot: a compact, read-only copy of everything the PAM module reads from
//! the database (settings, service methods, trusted-network rules, lockouts, every user with
//! their overrides, contacts, authenticator key and backup-code count, the message templates,
//! the carriers and the passcode hash key), kept beside the database as `<database>-policy`.
//! Opening the database, parsing its schema and closing it costs the module most of a
//! millisecond per login; this file costs two reads.
//!
//! **Consistency.** The database stays the only truth; the snapshot is derived from it.
//! Every change that affects it ([`crate::store::Store::change`], a lockout) deletes the
//! snapshot *inside* its transaction, before the commit, and writes a new one after the
//! commit, all under an exclusive lock on `<database>-policy.lock`. So at any instant,
//! also after a crash, the snapshot is either missing or equal to the committed database;
//! when it is missing (or unreadable) the module reads the database, which gives the same
//! answers, and the next `mfa-admin` command writes it again. The snapshot also carries the
//! database's `policy_generation`; `mfa-admin` compares the two at every start and rebuilds
//! a snapshot that does not match (a database restored from a backup). It holds secrets (the
//! hash key, authenticator keys): mode 0600, owned by root, like the database.
//!
//! **Format** (little-endian; written by [`build`], atomically by rename). A header: `MFAPOL02`,
//! u64 generation, u32 total length, u32 length of the head. The head, read at every login:
//! sections of a u32 count then records; strings are a u16 length then UTF-8, byte strings a
//! u16 length then bytes; log levels are one byte (0 unset, 1 none, 2 rejects, 3 all).
//! - settings: key, value (only those that differ from the default, as stored)
//! - services: name, method ("" for a name only rules mention)
//! - rules: 48 bytes each: i64 id, u32 service index, u8 family (4|6), u8 require, u8 log,
//!   u8 0, 16-byte first address key, 16-byte last address key (see [`crate::net`])
//! - lockouts: name, i64 locked until
//! - passcode hash key: one byte string (empty if not created yet)
//! - templates: name, text (the text in force, default or custom)
//! - carriers: name, gateway suffix
//! - fences: name, u32 offset — the first user of every block of [`BLOCK`] users
//!
//! Then the users, sorted by name (bytes), in blocks that a login reads one of with one
//! `pread`: name, u8 flags (1 enabled, 2 mandatory, 4 exempt), u8 log, u8 self-enroll
//! (0 unset, 1 yes, 2 no), u16 backup codes left, u8 has key, [algorithm, u8 digits, secret],
//! u8 contact count, contacts: u8 number, channel, address, carrier ("" none), to, masked,
//! label.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::net::addr_key;
use crate::policy::{Facts, NetworkFacts, UserFacts};
use crate::settings::{LogLevel, Settings};
use crate::store::people::{Carrier, ContactRow};
use crate::store::rules::Template;
use crate::totp::Key;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"MFAPOL02";
const HEADER: usize = 8 + 8 + 4 + 4;
const RULE: usize = 48;
/// Users per block of the users section.
pub const BLOCK: usize = 32;
/// The `meta` key holding the generation the snapshot must carry.
pub const GENERATION_KEY: &str = "policy_generation";
/// What a first read takes: the whole head of most installations.
const FIRST_READ: usize = 64 * 1024;

/// The snapshot file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-policy")
}

/// The lock file that serialises writers of the snapshot.
fn lock_path(database: &Path) -> PathBuf {
    sibling(database, "-policy.lock")
}

/// `<database><suffix>`, like SQLite's own `-journal` file.
pub(crate) fn sibling(database: &Path, suffix: &str) -> PathBuf {
    let mut s = database.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// One user as the snapshot holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRecord {
    pub facts: UserFacts,
    pub key: Option<Key>,
    pub contacts: Vec<ContactRow>,
}

/// A loaded snapshot: the head in memory, the file open for the users section.
#[derive(Debug)]
pub struct Snapshot {
    file: File,
    total: usize,
    generation: u64,
    settings: Settings,
    services: Vec<(String, String)>,
    head: Vec<u8>,
    rules: std::ops::Range<usize>,
    locks: (usize, usize),
    key: Vec<u8>,
    templates: Vec<(String, String)>,
    carriers: Vec<(String, String)>,
    /// (first name of the block, offset of the block).
    fences: Vec<(String, usize)>,
}

impl Snapshot {
    /// Reads the head of the snapshot of `database`; `None` when it is missing or
    /// unreadable (the caller then asks the database itself).
    pub fn load(database: &Path) -> Option<Snapshot> {
        let file = File::open(path_for(database)).ok()?;
        // Whoever can write the snapshot decides every login: like the database, it must be
        // root's (or the caller's) and writable by nobody else, and so must its directory
        // (which also holds the login-state files, crate::state). Otherwise the caller goes
        // to the database, whose opening refuses the same with a message saying why.
        if !private(&file.metadata().ok()?) {
            return None;
        }
        let dir = database.parent().filter(|d| !d.as_os_str().is_empty());
        crate::config::check_not_writable_by_others(dir.unwrap_or(Path::new("."))).ok()?;
        let mut head = vec![0u8; FIRST_READ];
        let n = read_at(&file, &mut head, 0)?;
        head.truncate(n);
        if head.len() < HEADER || &head[..8] != MAGIC {
            return None;
        }
        let mut r = Reader { b: &head, at: 8 };
        let generation = r.u64()?;
        let total = usize::try_from(r.u32()?).ok()?;
        let head_len = usize::try_from(r.u32()?).ok()?;
        if head_len > total || head_len < HEADER {
            return None;
        }
        if head.len() < head_len {
            let mut rest = vec![0u8; head_len - head.len()];
            if read_at(&file, &mut rest, u64::try_from(head.len()).ok()?)? != rest.len() {
                return None;
            }
            head.extend_from_slice(&rest);
        }
        head.truncate(head_len);
        if file.metadata().ok()?.len() != u64::try_from(total).ok()? {
            return None;
        }
        Snapshot::decode(file, total, generation, head)
    }

    fn decode(file: File, total: usize, generation: u64, head: Vec<u8>) -> Option<Snapshot> {
        let mut r = Reader {
            b: &head,
            at: HEADER,
        };
        let mut stored = BTreeMap::new();
        for _ in 0..r.u32()? {
            let k = r.str()?.to_string();
            stored.insert(k, r.str()?.to_string());
        }
        let settings = Settings::from_stored(&stored).ok()?;
        let services = r.pairs()?;
        let n = usize::try_from(r.u32()?).ok()?;
        let start = r.at;
        r.skip(n.checked_mul(RULE)?)?;
        let rules = start..r.at;
        let n_locks = usize::try_from(r.u32()?).ok()?;
        let locks_at = r.at;
        for _ in 0..n_locks {
            r.str()?;
            r.skip(8)?;
        }
        let key = r.bytes()?.to_vec();
        let templates = r.pairs()?;
        let carriers = r.pairs()?;
        let n = r.u32()?;
        let mut fences = Vec::new();
        for _ in 0..n {
            let name = r.str()?.to_string();
            fences.push((name, usize::try_from(r.u32()?).ok()?));
        }
        if r.at != head.len() || fences.iter().any(|(_, o)| *o < head.len() || *o > total) {
            return None;
        }
        Some(Snapshot {
            file,
            total,
            generation,
            settings,
            services,
            rules,
            locks: (n_locks, locks_at),
            key,
            templates,
            carriers,
            fences,
            head,
        })
    }

    /// The generation it was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The passcode hash key (`None` until the database created one).
    pub fn passcode_key(&self) -> Option<Vec<u8>> {
        (!self.key.is_empty()).then(|| self.key.clone())
    }

    /// The templates in force.
    pub fn templates(&self) -> Vec<Template> {
        self.templates
            .iter()
            .map(|(name, text)| Template {
                name: name.clone(),
                default: crate::template::default_text(name).is_ok_and(|d| d == text),
                text: text.clone(),
            })
            .collect()
    }

    /// The carriers (their contact counts are not kept: 0).
    pub fn carriers(&self) -> Vec<Carrier> {
        self.carriers
            .iter()
            .map(|(name, suffix)| Carrier {
                name: name.clone(),
                suffix: suffix.clone(),
                contacts: 0,
            })
            .collect()
    }

    /// A user's record; `None` when mfa does not know the user (or the file cannot be read:
    /// callers that must tell the two apart use the database).
    pub fn user(&self, name: &str) -> Option<UserRecord> {
        // The block whose first name is the greatest one not above `name`.
        let i = self
            .fences
            .partition_point(|(first, _)| first.as_str() <= name);
        let (_, start) = self.fences.get(i.checked_sub(1)?)?;
        let end = self.fences.get(i).map_or(self.total, |(_, o)| *o);
        let mut block = vec![0u8; end.checked_sub(*start)?];
        if read_at(&self.file, &mut block, u64::try_from(*start).ok()?)? != block.len() {
            return None;
        }
        let mut r = Reader { b: &block, at: 0 };
        while r.at < block.len() {
            let start = r.at;
            if r.str()? == name {
                r.at = start;
                return read_user(&mut r).map(|(_, rec)| rec);
            }
            skip_user(&mut r)?;
        }
        None
    }

    /// Everything [`crate::policy::decide`] needs but the repeat-window grant (a file:
    /// [`crate::grants`]), as [`crate::store::auth::facts`] reads it from the database.
    pub fn facts(&self, user: &str, service: &str, ip: Option<IpAddr>) -> Facts {
        self.facts_for(self.user(user).as_ref(), service, user, ip)
    }

    /// [`Snapshot::facts`] with the user's record already read.
    pub fn facts_for(
        &self,
        record: Option<&UserRecord>,
        service: &str,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Facts {
        // A service without a rule of its own follows its family (crate::service); the
        // services section names exactly the names with a rule (a method or a network rule).
        let service =
            crate::service::governing(service, |s| self.services.iter().any(|(n, _)| n == s));
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
        let mut locked_until = 0;
        let mut r = Reader {
            b: &self.head,
            at: self.locks.1,
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
            user: record.map(|u| u.facts.clone()),
            locked_until,
            network: ip.and_then(|ip| self.network(service, ip)),
            last_grant: None,
        }
    }

    /// The deciding rule for `service` (the name governing the requested one) and `ip`,
    /// ranked as
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
        for rec in self.head[self.rules.clone()].chunks_exact(RULE) {
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

/// Owned by root or the caller, and writable by neither group nor others.
fn private(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let owner = meta.uid();
    (owner == 0 || owner == nix::unistd::geteuid().as_raw()) && meta.mode() & 0o022 == 0
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Option<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + u64::try_from(done).ok()?) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(done)
}

/// Skips the rest of a user record after its name, without decoding it.
fn skip_user(r: &mut Reader<'_>) -> Option<()> {
    r.skip(5)?;
    if r.u8()? != 0 {
        r.bytes()?;
        r.skip(1)?;
        r.bytes()?;
    }
    for _ in 0..r.u8()? {
        r.skip(1)?;
        for _ in 0..6 {
            r.bytes()?;
        }
    }
    Some(())
}

fn read_user<'a>(r: &mut Reader<'a>) -> Option<(&'a str, UserRecord)> {
    let name = r.str()?;
    let flags = r.u8()?;
    let log = r.u8()?;
    let self_enroll = match r.u8()? {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let backups = r.u16()?;
    let key = match r.u8()? {
        0 => None,
        _ => {
            let algorithm = r.str()?.to_string();
            let digits = u32::from(r.u8()?);
            Some(Key {
                secret: r.bytes()?.to_vec(),
                algorithm,
                digits,
            })
        }
    };
    let n = r.u8()?;
    let mut contacts = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let seq = i64::from(r.u8()?);
        let channel = r.str()?.to_string();
        let address = r.str()?.to_string();
        let carrier = Some(r.str()?.to_string()).filter(|c| !c.is_empty());
        contacts.push(ContactRow {
            seq,
            channel,
            address,
            carrier,
            to: r.str()?.to_string(),
            masked: r.str()?.to_string(),
            label: r.str()?.to_string(),
        });
    }
    let facts = UserFacts {
        enabled: flags & 1 != 0,
        mandatory: flags & 2 != 0,
        exempt: flags & 4 != 0,
        self_enroll,
        log: log_from(log),
        contacts: contacts.len(),
        totp: key.is_some(),
        backup_codes: usize::from(backups),
    };
    Some((
        name,
        UserRecord {
            facts,
            key,
            contacts,
        },
    ))
}

/// Builds the snapshot of the database as `conn` sees it (call it inside one read
/// transaction so that all sections come from the same state).
pub fn build(conn: &Connection) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&current_generation(conn)?.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);

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

    let key: Option<Vec<u8>> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT value FROM meta WHERE key = 'passcode_key'",
        [],
        |r| r.get(0),
    ))?;
    put_bytes(&mut out, key.as_deref().unwrap_or_default())?;

    let templates = crate::store::rules::templates(conn)?;
    put_count(&mut out, templates.len())?;
    for t in &templates {
        put_str(&mut out, &t.name)?;
        put_str(&mut out, &t.text)?;
    }
    let carriers = crate::store::people::carriers(conn)?;
    put_count(&mut out, carriers.len())?;
    for c in &carriers {
        put_str(&mut out, &c.name)?;
        put_str(&mut out, &c.suffix)?;
    }

    let users = user_blocks(conn)?;
    // Fences point past the head, whose length is known once they are written.
    let fence_names: Vec<&str> = users.iter().map(|(first, _)| first.as_str()).collect();
    let mut fences_len = 4;
    for n in &fence_names {
        fences_len += 2 + n.len() + 4;
    }
    let head_len = out.len() + fences_len;
    put_count(&mut out, users.len())?;
    let mut offset = head_len;
    for (first, block) in &users {
        put_str(&mut out, first)?;
        out.extend_from_slice(&to_u32(offset)?.to_le_bytes());
        offset += block.len();
    }
    debug_assert_eq!(out.len(), head_len);
    for (_, block) in &users {
        out.extend_from_slice(block);
    }
    let total = to_u32(out.len())?;
    out[16..20].copy_from_slice(&total.to_le_bytes());
    out[20..24].copy_from_slice(&to_u32(head_len)?.to_le_bytes());
    Ok(out)
}

/// The users section: blocks of [`BLOCK`] encoded users, with each block's first name.
fn user_blocks(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>> {
    let mut keys: HashMap<String, Key> = HashMap::new();
    let mut stmt = conn.prepare("SELECT user, secret, algorithm, digits FROM totp")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        keys.insert(
            r.get(0)?,
            Key {
                secret: r.get(1)?,
                algorithm: r.get(2)?,
                digits: r.get(3)?,
            },
        );
    }
    drop(rows);
    let mut stmt = conn.prepare("SELECT user, count(*) FROM backup_codes GROUP BY user")?;
    let backups: HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(
        "SELECT c.seq, c.channel, c.address, c.carrier, c.label, k.suffix, c.user
         FROM contacts c LEFT JOIN carriers k ON k.name = c.carrier ORDER BY c.user, c.seq",
    )?;
    let mut contacts: HashMap<String, Vec<ContactRow>> = HashMap::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let c = crate::store::people::contact_row(r)?;
        contacts.entry(r.get(6)?).or_default().push(c);
    }
    drop(rows);
    let mut stmt = conn.prepare(
        "SELECT u.name, u.enabled, coalesce(o.mandatory, 0), coalesce(o.exempt, 0), o.self_enroll,
                o.log_level
         FROM users u LEFT JOIN overrides o ON o.user = u.name",
    )?;
    type Row = (String, bool, bool, bool, Option<bool>, Option<String>);
    let mut users: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Byte order, as the lookup compares.
    users.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut blocks: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, enabled, mandatory, exempt, self_enroll, log)) in users.iter().enumerate() {
        if i % BLOCK == 0 {
            blocks.push((name.clone(), Vec::new()));
        }
        let Some((_, out)) = blocks.last_mut() else {
            continue;
        };
        put_str(out, name)?;
        out.push(u8::from(*enabled) | (u8::from(*mandatory) << 1) | (u8::from(*exempt) << 2));
        out.push(log_to(log.as_deref()));
        out.push(match self_enroll {
            Some(true) => 1,
            Some(false) => 2,
            None => 0,
        });
        let n = backups.get(name).copied().unwrap_or(0);
        out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_le_bytes());
        match keys.get(name) {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                put_str(out, &k.algorithm)?;
                out.push(u8::try_from(k.digits).unwrap_or(0));
                put_bytes(out, &k.secret)?;
            }
        }
        let cs = contacts.get(name).map(Vec::as_slice).unwrap_or_default();
        out.push(u8::try_from(cs.len()).unwrap_or(u8::MAX));
        for c in cs {
            out.push(u8::try_from(c.seq).unwrap_or(0));
            put_str(out, &c.channel)?;
            put_str(out, &c.address)?;
            put_str(out, c.carrier.as_deref().unwrap_or_default())?;
            put_str(out, &c.to)?;
            put_str(out, &c.masked)?;
            put_str(out, &c.label)?;
        }
    }
    Ok(blocks)
}

fn to_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Database("the policy snapshot would exceed 4 GiB".into()))
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
    crate::state::remove_if_exists(&path_for(database))
}

/// Writes `bytes` as the snapshot of `database`: a temporary file renamed into place, so a
/// reader sees the old file, no file, or the whole new one. `durable` adds the fsyncs an
/// administrator's change deserves (the module's lockouts do without, as the design's hot
/// path does).
pub fn write(database: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    crate::state::replace(&path_for(database), bytes, durable)
}

/// The generation of the database as `conn` sees it (0 before the first change).
pub fn current_generation(conn: &Connection) -> Result<u64> {
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

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u16::try_from(b.len())
        .map_err(|_| Error::Database(format!("snapshot: {} bytes are too long", b.len())))?;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
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
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// A section of (string, string) records.
    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()?;
        let mut v = Vec::with_capacity(usize::try_from(n).ok()?.min(4096));
        for _ in 0..n {
            let a = self.str()?.to_string();
            v.push((a, self.str()?.to_string()));
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::Contact;
    use crate::net::IpRange;
    use crate::store::rules::{NewNetRule, add_network, set_service, set_setting};
    use crate::store::{Store, auth, factors, people};

    /// An installation with a bit of everything, and enough users for several blocks.
    fn populated() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
        s.change("t", "t", |tx| {
            set_setting(tx, "enabled", "on")?;
            set_setting(tx, "repeat_window", "5m")?;
            set_service(tx, "sshd", "passcode")?;
            set_service(tx, "sudo", "totp")?;
            set_service(tx, "ftp", "none")?;
            for (svc, range, require) in [
                ("*", "10.0.0.0/8", false),
                ("sshd", "10.1.0.0/16", true),
                ("sshd", "10.1.2.0/24", false),
                ("su", "192.0.2.0/24", false),
                ("*", "2001:db8::/32", false),
                ("*", "10.1.2.0/24", true),
                ("sshd-mfa", "10.1.2.0/24", true),
            ] {
                let rule = NewNetRule {
                    service: svc.into(),
                    range: IpRange::parse_any(range)?,
                    require,
                    log: (svc == "su").then(|| "none".to_string()),
                    note: String::new(),
                };
                add_network(tx, &rule, 0)?;
            }
            for n in 0..100 {
                people::add_user(tx, &format!("user{n:03}"), "", 0)?;
            }
            people::add_user(tx, "ann", "Ann", 0)?;
            people::add_contact(tx, "ann", &Contact::email("ann@example.com")?, "work", None, 0)?;
            people::add_contact(tx, "ann", &Contact::phone("5552010199", "Verizon")?, "", None, 0)?;
            people::add_contact(tx, "ann", &Contact::sms("+447700900123")?, "", None, 0)?;
            people::add_user(tx, "émile", "", 0)?;
            factors::set_totp(tx, "émile", &Key::generate("sha256", 8)?, 0)?;
            factors::set_backup_codes(tx, "émile", &[vec![1], vec![2], vec![3]], 0)?;
            tx.execute(
                "INSERT INTO overrides (user, mandatory, exempt, self_enroll, log_level)
                 VALUES ('user007', 1, 0, 1, 'rejects'), ('user050', 0, 1, 0, NULL)",
                [],
            )?;
            tx.execute("UPDATE users SET enabled = 0 WHERE name = 'user099'", [])?;
            tx.execute(
                "INSERT INTO lockouts (user, failures, locked_until) VALUES ('user003', 5, 4000000000)",
                [],
            )?;
            Ok(((), String::new()))
        })
        .unwrap();
        (dir, s)
    }

    #[test]
    fn the_snapshot_answers_as_the_database_does() {
        let (_d, mut store) = populated();
        store.rebuild_snapshot().unwrap();
        let snap = Snapshot::load(store.path()).unwrap();
        assert_eq!(snap.generation(), current_generation(store.conn()).unwrap());
        let users = [
            "ann", "émile", "user000", "user003", "user007", "user031", "user032", "user050",
            "user099", "nobody", "", "zzz", "aaa",
        ];
        let services = [
            "sshd",
            "sudo",
            "ftp",
            "su",
            "login",
            "su-l",
            "sudo-i",
            "sshd-publickey",
            "sshd-mfa",
            "sshd-mfa-test",
            "ftp-x-y",
            "-su",
            "login-",
        ];
        let addrs = [
            None,
            Some("10.1.2.3"),
            Some("10.1.3.3"),
            Some("10.9.9.9"),
            Some("192.0.2.7"),
            Some("::ffff:10.1.2.3"),
            Some("2001:db8::1"),
            Some("203.0.113.1"),
        ];
        for user in users {
            for service in services {
                for addr in addrs {
                    let ip = addr.map(|a| a.parse().unwrap());
                    let want = auth::facts(store.conn(), user, service, ip).unwrap();
                    let got = snap.facts(user, service, ip);
                    assert_eq!(got, want, "{user} {service} {addr:?}");
                }
            }
            let rec = snap.user(user);
            assert_eq!(
                rec.as_ref().map(|r| r.contacts.clone()).unwrap_or_default(),
                people::contacts(store.conn(), user).unwrap(),
                "{user}"
            );
            assert_eq!(
                rec.as_ref().and_then(|r| r.key.clone()),
                factors::totp_of(store.conn(), user).unwrap(),
                "{user}"
            );
        }
        assert_eq!(
            snap.passcode_key().unwrap(),
            auth::passcode_key(store.conn()).unwrap()
        );
        assert_eq!(
            snap.templates(),
            crate::store::rules::templates(store.conn()).unwrap()
        );
        let names = |v: Vec<Carrier>| {
            v.into_iter()
                .map(|c| (c.name, c.suffix))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(snap.carriers()),
            names(people::carriers(store.conn()).unwrap())
        );
    }

    #[test]
    fn a_change_rewrites_it_and_a_damaged_file_is_no_snapshot() {
        let (_d, mut store) = populated();
        let before = Snapshot::load(store.path()).unwrap().generation();
        store
            .change("t", "t", |tx| {
                Ok((set_service(tx, "login", "totp")?, String::new()))
            })
            .unwrap();
        let snap = Snapshot::load(store.path()).unwrap();
        assert_eq!(snap.generation(), before + 1);
        assert_eq!(snap.facts("ann", "login", None).method, "totp");
        // Behind mfa's back: the generation does not move, so only a rebuild sees it.
        store
            .conn()
            .execute("DELETE FROM services WHERE name = 'login'", [])
            .unwrap();
        assert!(!store.ensure_snapshot().unwrap());
        store
            .conn()
            .execute(
                &format!(
                    "UPDATE meta SET value = '{}' WHERE key = '{GENERATION_KEY}'",
                    before + 7
                ),
                [],
            )
            .unwrap();
        assert!(store.ensure_snapshot().unwrap());
        assert_eq!(
            Snapshot::load(store.path())
                .unwrap()
                .facts("ann", "login", None)
                .method,
            "any"
        );
        // A truncated or foreign file is ignored (the module then reads the database).
        let p = path_for(store.path());
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(Snapshot::load(store.path()).is_none());
        let mut other = bytes.clone();
        other[3] = b'X';
        std::fs::write(&p, &other).unwrap();
        assert!(Snapshot::load(store.path()).is_none());
        use std::os::unix::fs::PermissionsExt;
        store.rebuild_snapshot().unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds keys");
        // A snapshot others could have written is not trusted.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(Snapshot::load(store.path()).is_none());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Snapshot::load(store.path()).is_some());
        let dir = store.path().parent().unwrap().to_path_buf();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            Snapshot::load(store.path()).is_none(),
            "nor in a directory anyone can write"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_service_without_rules_follows_its_family() {
        let (_d, mut store) = populated();
        let snap = Snapshot::load(store.path()).unwrap();
        let ip = |a: &str| Some(a.parse().unwrap());
        // su has only a network rule: su-l takes it, and `*`'s method (as su does).
        let su_l = snap.facts("ann", "su-l", ip("192.0.2.7"));
        assert_eq!(su_l.method, "any");
        assert_eq!(
            su_l.network,
            snap.facts("ann", "su", ip("192.0.2.7")).network
        );
        assert!(su_l.network.is_some_and(|n| !n.require));
        // sudo-i takes sudo's method; sshd-publickey sshd's method and network rules.
        assert_eq!(snap.facts("ann", "sudo-i", None).method, "totp");
        let pk = snap.facts("ann", "sshd-publickey", ip("10.1.9.9"));
        assert_eq!(pk.method, "passcode");
        assert!(
            pk.network.is_some_and(|n| n.require),
            "sshd's /16 rule decides"
        );
        // The nearest name with a rule wins: sshd-mfa has a network rule (and no method).
        let t = snap.facts("ann", "sshd-mfa-test", ip("10.1.2.3"));
        assert_eq!(t.method, "any", "sshd-mfa's method is `*`'s, not sshd's");
        // A name that is no family member stays on `*`.
        assert_eq!(snap.facts("ann", "subscribe", None).method, "any");
        assert_eq!(snap.facts("ann", "-su", None).method, "any");

        // A rule of its own ends the inheritance, for methods and for network rules alike.
        store
            .change("t", "t", |tx| {
                set_service(tx, "sudo-i", "none")?;
                let rule = NewNetRule {
                    service: "su-l".into(),
                    range: IpRange::parse_any("198.51.100.0/24")?,
                    require: true,
                    log: None,
                    note: String::new(),
                };
                add_network(tx, &rule, 0)?;
                Ok(((), String::new()))
            })
            .unwrap();
        let snap = Snapshot::load(store.path()).unwrap();
        assert_eq!(snap.facts("ann", "sudo-i", None).method, "none");
        assert_eq!(snap.facts("ann", "sudo", None).method, "totp");
        assert_eq!(snap.facts("ann", "su-l", ip("192.0.2.7")).network, None);
        assert!(snap.facts("ann", "su", ip("192.0.2.7")).network.is_some());
        for service in ["su-l", "sudo-i", "su", "sudo"] {
            for addr in [None, ip("192.0.2.7"), ip("198.51.100.1")] {
                assert_eq!(
                    snap.facts("ann", service, addr),
                    auth::facts(store.conn(), "ann", service, addr).unwrap(),
                    "{service} {addr:?}"
                );
            }
        }
    }
}
