//! Reading the policy snapshot: [`Snapshot::load`] reads the head and verifies its
//! checksum, [`Snapshot::user`] one index block and one block of users (each verified
//! against its checksum), [`Snapshot::facts`] answers as [`crate::store::auth::facts`] does.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::decode::{
    Reader, RuleEntry, UserEntry, be_u128, last_not_above, le_i64, le_u32, log_from, read_user,
    rule_entries, skip_user, user_entries, user_entry,
};
use super::{
    DIGEST, DIGEST_AT, FIRST_READ, HEADER, MAGIC, MAGIC_FAMILY, RULE, RULE_ENTRY, UserRecord,
    head_digest, path_for,
};
use crate::net::addr_key;
use crate::policy::{Facts, NetworkFacts};
use crate::settings::Settings;
use crate::store::people::Carrier;
use crate::store::rules::Template;

/// Why the snapshot on disk is not used: the module then reads the database, logs the
/// reason ([`super::report`]) and the next `mfa-admin` command rewrites the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// Others could read it (it holds TOTP keys and the passcode hash key) or write it or
    /// its directory: its content is not trusted.
    Insecure(String),
    /// It does not match its checksums, or does not parse.
    Corrupt(String),
    /// It cannot be read.
    Unreadable(String),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Insecure(s) | Damage::Corrupt(s) | Damage::Unreadable(s) => f.write_str(s),
        }
    }
}

/// Where the snapshot's bytes are: the file (a login), or memory (a build being compared).
#[derive(Debug)]
pub(crate) enum Source {
    File(File),
    Bytes(Vec<u8>),
}

impl Source {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        match self {
            Source::File(f) => read_at(f, buf, offset),
            Source::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let n = buf.len().min(b.len() - start);
                buf[..n].copy_from_slice(&b[start..start + n]);
                Ok(n)
            }
        }
    }
}

/// A loaded snapshot: the head in memory (its checksum verified), the file open for the
/// blocks (each verified against its checksum in the index above it when read).
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) source: Source,
    /// The database it was built from: a damaged block of users is read there instead.
    pub(super) database: PathBuf,
    pub(super) total: usize,
    pub(super) generation: u64,
    pub(super) settings: Settings,
    pub(crate) services: Vec<(String, String)>,
    pub(super) head: Vec<u8>,
    /// Where the sections from settings to carriers end in the head.
    pub(super) fixed_end: usize,
    /// The lockouts in force (user, locked until), sorted by name, and their generation,
    /// from the lockouts file ([`super::lockouts`]).
    pub(super) locks: Vec<(String, i64)>,
    pub(super) lock_generation: u64,
    pub(super) key: Vec<u8>,
    pub(super) templates: Vec<(String, String)>,
    pub(super) carriers: Vec<(String, String)>,
    /// The index of the index blocks of rules.
    pub(super) rule_top: Vec<RuleEntry>,
    /// The index of the index blocks of users: where its entries are in the head.
    pub(super) user_top: std::ops::Range<usize>,
}

impl Snapshot {
    /// Reads the head of the snapshot of `database`; `None` when it is missing or cannot be
    /// used (the caller then asks the database itself). A snapshot that is there but cannot
    /// be used is reported ([`super::report`]): an error line in syslog and the auth log.
    pub fn load(database: &Path) -> Option<Snapshot> {
        match Snapshot::open(database) {
            Ok(s) => s,
            Err(d) => {
                super::report(database, "", &d);
                None
            }
        }
    }

    /// Reads the head of the snapshot of `database` and verifies its checksum: `Ok(None)`
    /// when there is no snapshot, `Err` when there is one that must not be used.
    pub fn open(database: &Path) -> Result<Option<Snapshot>, Damage> {
        let path = path_for(database);
        let Some((file, meta)) = open_private(&path)? else {
            return Ok(None);
        };
        // Its directory also holds the login-state files (crate::state): writable by nobody
        // else.
        let dir = database.parent().filter(|d| !d.as_os_str().is_empty());
        crate::config::check_not_writable_by_others(dir.unwrap_or(Path::new(".")))
            .map_err(|e| Damage::Insecure(e.to_string()))?;
        let mut snap = Snapshot::from_source(Source::File(file), meta.len(), database)?;
        // The lockouts are a file of their own (super::lockouts): without it, no snapshot.
        let Some((generation, locks)) = super::lockouts::load(database)? else {
            return Ok(None);
        };
        snap.lock_generation = generation;
        snap.locks = locks;
        Ok(Some(snap))
    }

    /// A snapshot held in memory (a fresh build), read as a login reads a file.
    pub(crate) fn from_bytes(bytes: Vec<u8>, database: &Path) -> Result<Snapshot, Damage> {
        let len = bytes.len() as u64;
        Snapshot::from_source(Source::Bytes(bytes), len, database)
    }

    fn from_source(source: Source, len: u64, database: &Path) -> Result<Snapshot, Damage> {
        let path = path_for(database);
        let shown = path.display();
        let corrupt = |what: &str| Damage::Corrupt(format!("{shown}: {what}"));
        let io = |e: std::io::Error| Damage::Unreadable(format!("{shown}: {e}"));
        let mut head = vec![0u8; FIRST_READ];
        let n = source.read_at(&mut head, 0).map_err(io)?;
        head.truncate(n);
        if head.len() >= HEADER && head[..6] == MAGIC_FAMILY[..] && &head[..8] != MAGIC {
            let version = head[..8].escape_ascii().to_string();
            return Err(corrupt(&format!(
                "written by another version of mfa ({version}; this one reads {}); any mfa-admin \
                 command rewrites it (a package upgrade's `mfa-admin init` does)",
                String::from_utf8_lossy(MAGIC)
            )));
        }
        if head.len() < HEADER || &head[..8] != MAGIC {
            return Err(corrupt(
                "not a policy snapshot of this version (bad header)",
            ));
        }
        let mut r = Reader { b: &head, at: 8 };
        let fields = (|| Some((r.u64()?, r.u32()?, r.u32()?)))();
        let (generation, total, head_len) = fields.ok_or_else(|| corrupt("short header"))?;
        let (total, head_len) = (total as usize, head_len as usize);
        if head_len > total || head_len < HEADER {
            return Err(corrupt("impossible lengths in its header"));
        }
        if len != total as u64 {
            return Err(corrupt(&format!(
                "{len} bytes where its header says {total}"
            )));
        }
        if head.len() < head_len {
            let mut rest = vec![0u8; head_len - head.len()];
            let at = head.len() as u64;
            if source.read_at(&mut rest, at).map_err(io)? != rest.len() {
                return Err(corrupt("shorter than its header says"));
            }
            head.extend_from_slice(&rest);
        }
        head.truncate(head_len);
        if head_digest(&head)[..] != head[DIGEST_AT..HEADER] {
            return Err(corrupt("its head does not match its checksum"));
        }
        let database = database.to_path_buf();
        match Snapshot::decode(source, database, total, generation, head) {
            Some(s) => Ok(s),
            None => Err(corrupt(
                "its checksum matches but it does not parse (written by another version?)",
            )),
        }
    }

    fn decode(
        source: Source,
        database: PathBuf,
        total: usize,
        generation: u64,
        head: Vec<u8>,
    ) -> Option<Snapshot> {
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
        let key = r.bytes()?.to_vec();
        let templates = r.pairs()?;
        let carriers = r.pairs()?;
        let fixed_end = r.at;
        let body = head.len();
        let n = usize::try_from(r.u32()?).ok()?;
        let rule_top = rule_entries(r.take(n.checked_mul(RULE_ENTRY)?)?, body, total)?;
        let n = r.u32()?;
        let start = r.at;
        for _ in 0..n {
            user_entry(&mut r, body, total)?;
        }
        let user_top = start..r.at;
        if r.at != head.len() {
            return None;
        }
        Some(Snapshot {
            source,
            database,
            total,
            generation,
            settings,
            services,
            head,
            fixed_end,
            locks: Vec::new(),
            lock_generation: 0,
            key,
            templates,
            carriers,
            rule_top,
            user_top,
        })
    }

    /// The head's index sections as they are, and the body's place (start, length).
    pub(crate) fn indexes_and_body(&self) -> (&[u8], (usize, usize)) {
        let indexes = self.head.get(self.fixed_end..).unwrap_or_default();
        (indexes, (self.head.len(), self.total - self.head.len()))
    }

    /// Reads `len` bytes at `start` and verifies them against `digest`.
    pub(super) fn read_verified(
        &self,
        start: usize,
        len: usize,
        digest: &[u8; DIGEST],
        what: &str,
    ) -> Result<Cow<'_, [u8]>, Damage> {
        let shown = || path_for(&self.database).display().to_string();
        let block = match &self.source {
            // In memory: checked where it lies.
            Source::Bytes(all) => Cow::Borrowed(
                start
                    .checked_add(len)
                    .and_then(|end| all.get(start..end))
                    .unwrap_or_default(),
            ),
            Source::File(f) => {
                let mut block = vec![0u8; len];
                let n = read_at(f, &mut block, start as u64)
                    .map_err(|e| Damage::Unreadable(format!("{}: {e}", shown())))?;
                block.truncate(n);
                Cow::Owned(block)
            }
        };
        if block.len() != len || super::digest(&block)[..] != digest[..] {
            return Err(Damage::Corrupt(format!(
                "{}: {what} does not match its checksum",
                shown()
            )));
        }
        Ok(block)
    }

    pub(super) fn unparsable(&self, what: &str) -> Damage {
        Damage::Corrupt(format!(
            "{}: {what} matches its checksum but does not parse",
            path_for(&self.database).display()
        ))
    }

    /// Index block `i` of rules, verified: the entries of its blocks of rules.
    pub(super) fn rule_index(&self, i: usize) -> Result<Vec<RuleEntry>, Damage> {
        let what = format!("index block {i} of its network rules");
        let Some((.., at, len, digest)) = self.rule_top.get(i) else {
            return Err(Damage::Corrupt(format!("{what}: no such block")));
        };
        let block = self.read_verified(*at, *len, digest, &what)?;
        rule_entries(&block, self.head.len(), self.total).ok_or_else(|| self.unparsable(&what))
    }

    /// The entries of the index of index blocks of users (in the head).
    pub(super) fn user_top(&self) -> Vec<UserEntry> {
        let bytes = self.head.get(self.user_top.clone()).unwrap_or_default();
        user_entries(bytes, self.head.len(), self.total).unwrap_or_default()
    }

    /// An index block of users (`top` its entry in the head), verified.
    pub(super) fn user_index_block(&self, top: &UserEntry) -> Result<Cow<'_, [u8]>, Damage> {
        let what = format!("the index block of its users from {:?}", top.first);
        self.read_verified(top.at, top.len, &top.digest, &what)
    }

    /// An index block of users, verified: the entries of its blocks of users.
    pub(super) fn user_index(&self, top: &UserEntry) -> Result<Vec<UserEntry>, Damage> {
        let block = self.user_index_block(top)?;
        user_entries(&block, self.head.len(), self.total).ok_or_else(|| {
            self.unparsable(&format!(
                "the index block of its users from {:?}",
                top.first
            ))
        })
    }

    /// The entries of every block of rules (each index block verified).
    pub(crate) fn all_rule_entries(&self) -> Result<Vec<RuleEntry>, Damage> {
        let mut all = Vec::new();
        for i in 0..self.rule_top.len() {
            all.extend(self.rule_index(i)?);
        }
        Ok(all)
    }

    /// The entries of every block of users (each index block verified), in name order.
    pub(crate) fn all_user_entries(&self) -> Result<Vec<UserEntry>, Damage> {
        let mut all = Vec::new();
        for top in self.user_top() {
            all.extend(self.user_index(&top)?);
        }
        if !all.windows(2).all(|w| w[0].first < w[1].first) {
            return Err(self.unparsable("the index of its users (not in order)"));
        }
        Ok(all)
    }

    /// A block of users, verified.
    pub(crate) fn user_block(&self, e: &UserEntry) -> Result<Cow<'_, [u8]>, Damage> {
        self.read_verified(
            e.at,
            e.len,
            &e.digest,
            &format!("the block of users from {:?}", e.first),
        )
    }

    /// The bytes of the block of users that holds (or would hold) `name`.
    #[cfg(test)]
    pub(crate) fn block_range(&self, name: &str) -> Option<std::ops::Range<usize>> {
        let e = self.entry_for(name).ok()??;
        Some(e.at..e.at + e.len)
    }

    /// The length of the head.
    #[cfg(test)]
    pub(crate) fn head_len(&self) -> usize {
        self.head.len()
    }

    /// The index entry of the block of users that would hold `name`: the one whose first name
    /// is the greatest not above it (`None`: before the first user).
    fn entry_for(&self, name: &str) -> Result<Option<UserEntry>, Damage> {
        let (body, total) = (self.head.len(), self.total);
        let top = self.head.get(self.user_top.clone()).unwrap_or_default();
        let Some(top) = last_not_above(top, body, total, name)
            .ok_or_else(|| self.unparsable("the index of its users"))?
        else {
            return Ok(None);
        };
        let block = self.user_index_block(&top)?;
        last_not_above(&block, body, total, name).ok_or_else(|| {
            self.unparsable(&format!(
                "the index block of its users from {:?}",
                top.first
            ))
        })
    }

    /// A user's record, `Ok(None)` when mfa does not know the user; `Err` when the block of
    /// users that would hold it does not match its checksum or cannot be read (never read
    /// as "unknown": with `unassigned=allow` that would let the user in).
    pub fn lookup(&self, name: &str) -> Result<Option<UserRecord>, Damage> {
        let Some(e) = self.entry_for(name)? else {
            return Ok(None);
        };
        let block = self.user_block(&e)?;
        let bad = || self.unparsable(&format!("the block of users from {:?}", e.first));
        let mut r = Reader { b: &block, at: 0 };
        while r.at < block.len() {
            let start = r.at;
            if r.str().ok_or_else(bad)? == name {
                r.at = start;
                return read_user(&mut r).map(|(_, rec)| Some(rec)).ok_or_else(bad);
            }
            skip_user(&mut r).ok_or_else(bad)?;
        }
        Ok(None)
    }

    /// The users of a block: (name, the record's bytes), in order.
    pub(crate) fn split_users(block: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
        let mut r = Reader { b: block, at: 0 };
        let mut out = Vec::new();
        while r.at < block.len() {
            let start = r.at;
            let name = r.str()?.to_string();
            skip_user(&mut r)?;
            out.push((name, block.get(start..r.at)?.to_vec()));
        }
        Some(out)
    }

    /// The generation of the lockouts file read with it.
    pub fn lock_generation(&self) -> u64 {
        self.lock_generation
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

    /// A user's record; `None` when mfa does not know the user. When the snapshot's block
    /// cannot be used ([`Snapshot::lookup`]) the damage is reported and the record comes from
    /// the database; if that fails too, the record is one that is denied (disabled and
    /// mandatory): never "unknown", which `unassigned=allow` would let in.
    pub fn user(&self, name: &str) -> Option<UserRecord> {
        match self.lookup(name) {
            Ok(r) => r,
            Err(d) => {
                super::report(&self.database, name, &d);
                super::user_from_database(&self.database, name)
            }
        }
    }

    /// Everything [`crate::policy::decide`] needs but the repeat-window grant (a file:
    /// [`crate::grants`]), as [`crate::store::auth::facts`] reads it from the database.
    pub fn facts(&self, user: &str, service: &str, ip: Option<IpAddr>) -> Facts {
        self.facts_for(self.user(user).as_ref(), service, user, ip)
    }

    /// [`Snapshot::facts`] with the user's record already read.
    /// A block of rules that does not match its checksum is reported and the deciding rule
    /// read from the database.
    pub fn facts_for(
        &self,
        record: Option<&UserRecord>,
        service: &str,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Facts {
        self.facts_checked(record, service, user, ip)
            .unwrap_or_else(|failed| {
                let (d, mut facts, service) = *failed;
                super::report(&self.database, user, &d);
                facts.network = super::network_from_database(&self.database, user, &service, ip);
                facts
            })
    }

    /// [`Snapshot::facts_for`] without reporting or reading the database: `Err` carries the
    /// damage of a block of rules it met, the facts but the network rule, and the governing
    /// service name (for checks and fuzzing, which must not log).
    pub fn facts_checked(
        &self,
        record: Option<&UserRecord>,
        service: &str,
        user: &str,
        ip: Option<IpAddr>,
    ) -> Result<Facts, Box<(Damage, Facts, String)>> {
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
        let locked_until = self
            .locks
            .binary_search_by(|(name, _)| name.as_str().cmp(user))
            .ok()
            .and_then(|i| self.locks.get(i))
            .map_or(0, |(_, until)| *until);
        let mut facts = Facts {
            settings: self.settings.clone(),
            method,
            user: record.map(|u| u.facts.clone()),
            locked_until,
            network: None,
            last_grant: None,
        };
        match ip.map(|ip| self.network(service, ip)).transpose() {
            Ok(n) => {
                facts.network = n.flatten();
                Ok(facts)
            }
            Err(d) => Err(Box::new((d, facts, service.to_string()))),
        }
    }

    /// The deciding rule for `service` (the name governing the requested one) and `ip`,
    /// ranked as
    /// [`crate::store::rules::matching_networks`] ranks them: narrowest range, then the
    /// service's own rule over `*`, then "require" over "trusted", then the older rule.
    fn network(&self, service: &str, ip: IpAddr) -> Result<Option<NetworkFacts>, Damage> {
        let ip = ip.to_canonical();
        let family = if ip.is_ipv4() { 4 } else { 6 };
        let key = addr_key(ip);
        let own = self.services.iter().position(|(n, _)| n == service);
        let any = self.services.iter().position(|(n, _)| n == "*");
        // (span, is_any, !require, id) — smaller is better.
        let mut best: Option<((u128, bool, bool, i64), NetworkFacts)> = None;
        let holds = |min_first: &[u8; 16], max_last: &[u8; 16]| {
            min_first[..] <= key[..] && max_last[..] >= key[..]
        };
        for (i, (min_first, max_last, ..)) in self.rule_top.iter().enumerate() {
            // A rule that holds the address lies in blocks whose bounds hold it.
            if !holds(min_first, max_last) {
                continue;
            }
            for (min_first, max_last, at, len, digest) in self.rule_index(i)? {
                if !holds(&min_first, &max_last) {
                    continue;
                }
                let block = self.read_verified(at, len, &digest, "a block of its network rules")?;
                for rec in block.chunks_exact(RULE) {
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
            }
        }
        Ok(best.map(|(_, n)| n))
    }
}

/// The open(2) flags and errno the snapshot is opened with (nix's values, as plain ints).
mod libc_flags {
    pub const NOFOLLOW: i32 = nix::fcntl::OFlag::O_NOFOLLOW.bits();
    pub const NONBLOCK: i32 = nix::fcntl::OFlag::O_NONBLOCK.bits();
    pub const ELOOP: i32 = nix::errno::Errno::ELOOP as i32;
}

/// Opens a file the module trusts (the snapshot, the lockouts file): not through a symbolic
/// link, without blocking on a FIFO put in its place (a login must not hang on what an
/// administrator's mistake left there), a regular file, root's (or the caller's) and private
/// — whoever can write it decides every login, whoever can read the snapshot has every TOTP
/// key and the passcode hash key. `Ok(None)` when there is none.
pub(super) fn open_private(path: &Path) -> Result<Option<(File, std::fs::Metadata)>, Damage> {
    let shown = path.display();
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags::NOFOLLOW | libc_flags::NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc_flags::ELOOP) => {
            return Err(Damage::Insecure(format!(
                "{shown}: a symbolic link, not the file itself: not trusted (any mfa-admin \
                 command writes a file in its place)"
            )));
        }
        Err(e) => return Err(Damage::Unreadable(format!("{shown}: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Damage::Unreadable(format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Damage::Unreadable(format!(
            "{shown}: not a regular file; remove it (any mfa-admin command then writes it)"
        )));
    }
    private(path, &meta)?;
    Ok(Some((file, meta)))
}

/// Owned by root or the caller, and neither readable nor writable by group or others.
fn private(path: &Path, meta: &std::fs::Metadata) -> Result<(), Damage> {
    use std::os::unix::fs::MetadataExt;
    let owner = meta.uid();
    let euid = nix::unistd::geteuid().as_raw();
    if owner != 0 && owner != euid {
        return Err(Damage::Insecure(format!(
            "{}: owned by uid {owner}, not by root: not trusted",
            path.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Damage::Insecure(format!(
            "{}: mode {mode:04o} lets others read or write it (it holds TOTP keys and the passcode \
             hash key); fix with: chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
