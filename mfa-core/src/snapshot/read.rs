//! Reading the policy snapshot: [`Snapshot::load`] reads the head, [`Snapshot::user`] one
//! block of users, [`Snapshot::facts`] answers as [`crate::store::auth::facts`] does.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{FIRST_READ, HEADER, MAGIC, RULE, UserRecord, path_for};
use crate::net::addr_key;
use crate::policy::{Facts, NetworkFacts, UserFacts};
use crate::settings::{LogLevel, Settings};
use crate::store::people::{Carrier, ContactRow};
use crate::store::rules::Template;
use crate::totp::Key;

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

fn log_from(b: u8) -> Option<LogLevel> {
    match b {
        1 => Some(LogLevel::None),
        2 => Some(LogLevel::Rejects),
        3 => Some(LogLevel::All),
        _ => None,
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
