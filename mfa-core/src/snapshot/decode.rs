//! Decoding the snapshot's bytes: index entries (their offsets made absolute and checked to
//! lie in the file), user records, and the bounds-checked cursor every read goes through.

use super::{DIGEST, FANOUT, RULE_ENTRY, UserRecord};
use crate::policy::UserFacts;
use crate::settings::LogLevel;
use crate::store::people::ContactRow;
use crate::totp::Key;

/// An index entry of rules: lowest first key, highest last key, offset in the file, length,
/// checksum of what it points to.
pub(crate) type RuleEntry = ([u8; 16], [u8; 16], usize, usize, [u8; DIGEST]);

/// An index entry of users: the first name under it, offset in the file, length, checksum.
#[derive(Debug, Clone)]
pub(crate) struct UserEntry {
    pub first: String,
    pub at: usize,
    pub len: usize,
    pub digest: [u8; DIGEST],
}

/// Rule index entries, `bytes` holding nothing else; offsets made absolute (`body` is where
/// the body starts) and checked to lie within the file.
pub(super) fn rule_entries(bytes: &[u8], body: usize, total: usize) -> Option<Vec<RuleEntry>> {
    if !bytes.len().is_multiple_of(RULE_ENTRY) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / RULE_ENTRY);
    for e in bytes.chunks_exact(RULE_ENTRY) {
        let mut r = Reader { b: e, at: 0 };
        let min_first: [u8; 16] = r.take(16)?.try_into().ok()?;
        let max_last: [u8; 16] = r.take(16)?.try_into().ok()?;
        let (at, len) = within(r.u32()?, r.u32()?, body, total)?;
        let digest: [u8; DIGEST] = r.take(DIGEST)?.try_into().ok()?;
        out.push((min_first, max_last, at, len, digest));
    }
    Some(out)
}

/// User index entries, `bytes` holding nothing else, in strictly increasing name order.
pub(super) fn user_entries(bytes: &[u8], body: usize, total: usize) -> Option<Vec<UserEntry>> {
    let mut r = Reader { b: bytes, at: 0 };
    let mut out: Vec<UserEntry> = Vec::with_capacity(FANOUT);
    while r.at < bytes.len() {
        let e = user_entry(&mut r, body, total)?;
        if out.last().is_some_and(|p| p.first >= e.first) {
            return None;
        }
        out.push(e);
    }
    Some(out)
}

/// Of the user index entries in `bytes`, the last whose first name is not above `name`
/// (`Some(None)`: `name` comes before them all); `None` when they do not parse or are out of
/// order. It stops at the first entry above `name` and copies only the one it returns.
pub(super) fn last_not_above(
    bytes: &[u8],
    body: usize,
    total: usize,
    name: &str,
) -> Option<Option<UserEntry>> {
    let mut r = Reader { b: bytes, at: 0 };
    let mut best: Option<(&str, usize, usize, &[u8])> = None;
    while r.at < bytes.len() {
        let first = r.str()?;
        let (at, len) = within(r.u32()?, r.u32()?, body, total)?;
        let digest = r.take(DIGEST)?;
        if best.is_some_and(|(b, ..)| b >= first) {
            return None;
        }
        if first > name {
            break;
        }
        best = Some((first, at, len, digest));
    }
    match best {
        None => Some(None),
        Some((first, at, len, digest)) => Some(Some(UserEntry {
            first: first.to_string(),
            at,
            len,
            digest: digest.try_into().ok()?,
        })),
    }
}

/// One user index entry, its offset made absolute and checked.
pub(super) fn user_entry(r: &mut Reader<'_>, body: usize, total: usize) -> Option<UserEntry> {
    let first = r.str()?.to_string();
    let (at, len) = within(r.u32()?, r.u32()?, body, total)?;
    let digest: [u8; DIGEST] = r.take(DIGEST)?.try_into().ok()?;
    Some(UserEntry {
        first,
        at,
        len,
        digest,
    })
}

/// An offset from the body's start and a length: the absolute range, if it lies in the body.
pub(super) fn within(offset: u32, len: u32, body: usize, total: usize) -> Option<(usize, usize)> {
    let at = body.checked_add(usize::try_from(offset).ok()?)?;
    let len = usize::try_from(len).ok()?;
    (at.checked_add(len)? <= total).then_some((at, len))
}

/// Skips the rest of a user record after its name, without decoding it.
pub(super) fn skip_user(r: &mut Reader<'_>) -> Option<()> {
    r.skip(6)?;
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
    r.bytes()?; // the Duo user name
    r.u8()?; // the factors allowed
    Some(())
}

pub(super) fn read_user<'a>(r: &mut Reader<'a>) -> Option<(&'a str, UserRecord)> {
    let name = r.str()?;
    let flags = r.u8()?;
    let log = r.u8()?;
    let self_enroll = match r.u8()? {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    };
    let double_logon_contact = match r.u8()? {
        0 => None,
        n => Some(i64::from(n)),
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
    let duo_user = Some(r.str()?.to_string()).filter(|d| !d.is_empty());
    let factors = crate::policy::Factors::from_bits(i64::from(r.u8()?))?;
    let facts = UserFacts {
        enabled: flags & 1 != 0,
        mandatory: flags & 2 != 0,
        exempt: flags & 4 != 0,
        self_enroll,
        log: log_from(log),
        contacts: contacts.len(),
        totp: key.is_some(),
        backup_codes: usize::from(backups),
        duo: duo_user.is_some(),
        factors,
        double_logon_contact,
    };
    Some((
        name,
        UserRecord {
            facts,
            key,
            contacts,
            duo_user,
        },
    ))
}

pub(super) fn log_from(b: u8) -> Option<LogLevel> {
    match b {
        1 => Some(LogLevel::None),
        2 => Some(LogLevel::Rejects),
        3 => Some(LogLevel::All),
        _ => None,
    }
}

pub(super) fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

pub(super) fn le_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_le_bytes(a)
}

pub(super) fn be_u128(b: &[u8]) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    u128::from_be_bytes(a)
}

/// A bounds-checked cursor over the snapshot bytes.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.b.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    pub(super) fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take(4).map(le_u32)
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| le_i64(s) as u64)
    }
    pub(super) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    pub(super) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    pub(super) fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
    /// A section of (string, string) records.
    pub(super) fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()?;
        let mut v = Vec::with_capacity(usize::try_from(n).ok()?.min(4096));
        for _ in 0..n {
            let a = self.str()?.to_string();
            v.push((a, self.str()?.to_string()));
        }
        Some(v)
    }
}
