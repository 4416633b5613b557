//! Writing the policy snapshot: [`build`] encodes the database as `conn` sees it in the
//! format described in the parent module; [`assemble`] lays out a head and body from blocks
//! (new ones, or ranges of the old file for [`super::patch`]); [`user_record`] encodes one
//! user as a block holds them.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{
    BLOCK, DIGEST, DIGEST_AT, FANOUT, HEADER, MAGIC, RULE, RULE_BLOCK, RULE_ENTRY,
    current_generation, digest, head_digest,
};
use crate::store::people::ContactRow;
use crate::totp::Key;
use crate::{Error, Result};

/// A piece of the body: new bytes, or a range of the old snapshot copied as it is.
#[derive(Debug)]
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    Copy { from: u64, len: u64 },
}

impl Piece {
    pub(crate) fn len(&self) -> usize {
        match self {
            Piece::Bytes(b) => b.len(),
            Piece::Copy { len, .. } => usize::try_from(*len).unwrap_or(usize::MAX),
        }
    }
}

/// A block of rules: its bounds, bytes and checksum.
#[derive(Debug)]
pub(crate) struct RuleLeaf {
    pub min_first: [u8; 16],
    pub max_last: [u8; 16],
    pub piece: Piece,
    pub digest: [u8; DIGEST],
}

/// A block of users: its first name, bytes and checksum.
#[derive(Debug)]
pub(crate) struct UserLeaf {
    pub first: String,
    pub piece: Piece,
    pub digest: [u8; DIGEST],
}

/// Builds the snapshot of the database as `conn` sees it (call it inside one read
/// transaction so that all sections come from the same state).
pub fn build(conn: &Connection) -> Result<Vec<u8>> {
    let (services, rules) = rule_leaves(conn)?;
    let fixed = fixed_sections(conn, &services)?;
    let users = user_leaves(conn)?;
    let (mut out, body) = assemble(current_generation(conn)?, &fixed, rules, users)?;
    for piece in body {
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(&b),
            Piece::Copy { .. } => {
                return Err(Error::Failed("snapshot: a copy in a full build".into()));
            }
        }
    }
    Ok(out)
}

/// The head and the body of a snapshot: the header, `fixed` (the sections from settings to
/// carriers), the two indexes; the body's blocks of rules, index blocks of rules, blocks of
/// users and index blocks of users, each as a piece to write in that order.
pub(crate) fn assemble(
    generation: u64,
    fixed: &[u8],
    rules: Vec<RuleLeaf>,
    users: Vec<UserLeaf>,
) -> Result<(Vec<u8>, Vec<Piece>)> {
    let mut body: Vec<Piece> = Vec::new();
    let mut at = 0usize;
    let mut entries = Vec::with_capacity(rules.len());
    for leaf in rules {
        let len = leaf.piece.len();
        entries.push((leaf.min_first, leaf.max_last, at, len, leaf.digest));
        at += len;
        body.push(leaf.piece);
    }
    let mut rule_top = Vec::new();
    for chunk in entries.chunks(FANOUT) {
        let mut block = Vec::with_capacity(chunk.len() * RULE_ENTRY);
        for (min_first, max_last, offset, len, digest) in chunk {
            put_rule_entry(&mut block, min_first, max_last, *offset, *len, digest)?;
        }
        let min_first = chunk.iter().map(|e| e.0).min().unwrap_or_default();
        let max_last = chunk.iter().map(|e| e.1).max().unwrap_or_default();
        rule_top.push((min_first, max_last, at, block.len(), digest(&block)));
        at += block.len();
        body.push(Piece::Bytes(block));
    }
    let mut entries = Vec::with_capacity(users.len());
    for leaf in users {
        let len = leaf.piece.len();
        entries.push((leaf.first, at, len, leaf.digest));
        at += len;
        body.push(leaf.piece);
    }
    let mut user_top = Vec::new();
    for chunk in entries.chunks(FANOUT) {
        let mut block = Vec::new();
        for (first, offset, len, digest) in chunk {
            put_user_entry(&mut block, first, *offset, *len, digest)?;
        }
        let first = chunk.first().map(|e| e.0.clone()).unwrap_or_default();
        user_top.push((first, at, block.len(), digest(&block)));
        at += block.len();
        body.push(Piece::Bytes(block));
    }

    let mut indexes = Vec::with_capacity(8 + rule_top.len() * RULE_ENTRY + user_top.len() * 64);
    put_count(&mut indexes, rule_top.len())?;
    for (min_first, max_last, offset, len, digest) in &rule_top {
        put_rule_entry(&mut indexes, min_first, max_last, *offset, *len, digest)?;
    }
    put_count(&mut indexes, user_top.len())?;
    for (first, offset, len, digest) in &user_top {
        put_user_entry(&mut indexes, first, *offset, *len, digest)?;
    }
    Ok((head(generation, fixed, &indexes, at)?, body))
}

/// A head: the header, `fixed` (the sections from settings to carriers) and `indexes` (the
/// rule and user index sections), for a body of `body_len` bytes.
pub(crate) fn head(
    generation: u64,
    fixed: &[u8],
    indexes: &[u8],
    body_len: usize,
) -> Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEADER + fixed.len() + indexes.len());
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&generation.to_le_bytes());
    // Total and head lengths, then the head's digest: filled in at the end.
    head.extend_from_slice(&[0u8; 8 + DIGEST]);
    debug_assert_eq!(head.len(), HEADER);
    head.extend_from_slice(fixed);
    head.extend_from_slice(indexes);
    let total = to_u32(head.len() + body_len)?;
    let head_len = to_u32(head.len())?;
    head[16..20].copy_from_slice(&total.to_le_bytes());
    head[20..24].copy_from_slice(&head_len.to_le_bytes());
    let d = head_digest(&head);
    head[DIGEST_AT..HEADER].copy_from_slice(&d);
    Ok(head)
}

fn put_rule_entry(
    out: &mut Vec<u8>,
    min_first: &[u8; 16],
    max_last: &[u8; 16],
    offset: usize,
    len: usize,
    digest: &[u8; DIGEST],
) -> Result<()> {
    out.extend_from_slice(min_first);
    out.extend_from_slice(max_last);
    out.extend_from_slice(&to_u32(offset)?.to_le_bytes());
    out.extend_from_slice(&to_u32(len)?.to_le_bytes());
    out.extend_from_slice(digest);
    Ok(())
}

fn put_user_entry(
    out: &mut Vec<u8>,
    first: &str,
    offset: usize,
    len: usize,
    digest: &[u8; DIGEST],
) -> Result<()> {
    put_str(out, first)?;
    out.extend_from_slice(&to_u32(offset)?.to_le_bytes());
    out.extend_from_slice(&to_u32(len)?.to_le_bytes());
    out.extend_from_slice(digest);
    Ok(())
}

/// The head's sections from settings to carriers (`services` as [`rule_leaves`] gave them;
/// the lockouts are a file of their own, [`super::lockouts`]).
pub(crate) fn fixed_sections(conn: &Connection, services: &[(String, String)]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8 * 1024);
    let settings = crate::store::rules::stored_settings(conn)?;
    put_count(&mut out, settings.len())?;
    for (k, v) in &settings {
        put_str(&mut out, k)?;
        put_str(&mut out, v)?;
    }
    put_count(&mut out, services.len())?;
    for (name, method) in services {
        put_str(&mut out, name)?;
        put_str(&mut out, method)?;
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
    Ok(out)
}

/// Service names and their methods, as the head lists them.
pub(crate) type Services = Vec<(String, String)>;

/// The services (those with a method, then names that only rules mention, method "") and
/// the blocks of rules, sorted by first address key.
pub(crate) fn rule_leaves(conn: &Connection) -> Result<(Services, Vec<RuleLeaf>)> {
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
    rules.sort_by(|a, b| a[16..32].cmp(&b[16..32]));
    let mut leaves = Vec::new();
    for chunk in rules.chunks(RULE_BLOCK) {
        let block = chunk.concat();
        let min_first = chunk
            .iter()
            .map(|r| key16(&r[16..32]))
            .min()
            .unwrap_or_default();
        let max_last = chunk
            .iter()
            .map(|r| key16(&r[32..48]))
            .max()
            .unwrap_or_default();
        leaves.push(RuleLeaf {
            min_first,
            max_last,
            digest: digest(&block),
            piece: Piece::Bytes(block),
        });
    }
    Ok((services, leaves))
}

fn key16(b: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(&b[..16]);
    k
}

/// One user's row as the snapshot encodes it (a user joined with their overrides).
pub(crate) struct UserRow {
    name: String,
    enabled: bool,
    mandatory: bool,
    exempt: bool,
    self_enroll: Option<bool>,
    log: Option<String>,
    double_logon_contact: Option<i64>,
    duo_user: Option<String>,
    /// The factors the user may use (bits of [`crate::policy::Factors`]).
    factors: i64,
}

/// The user with their overrides resolved through their group (the `user_policy` view:
/// the user's own setting, else the group's, else unset).
const USER_SELECT: &str =
    "SELECT u.name, u.enabled, p.mandatory, p.exempt, p.self_enroll, p.log_level,
        o.double_logon_contact, u.duo_user, p.factors
     FROM users u JOIN user_policy p ON p.user = u.name
     LEFT JOIN overrides o ON o.user = u.name";

const CONTACT_SELECT: &str =
    "SELECT c.seq, c.channel, c.address, c.carrier, c.label, k.suffix, c.user
     FROM contacts c LEFT JOIN carriers k ON k.name = c.carrier";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        enabled: r.get(1)?,
        mandatory: r.get(2)?,
        exempt: r.get(3)?,
        self_enroll: r.get(4)?,
        log: r.get(5)?,
        double_logon_contact: r.get(6)?,
        duo_user: r.get(7)?,
        factors: r.get(8)?,
    })
}

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Key> {
    Ok(Key {
        secret: r.get(0)?,
        algorithm: r.get(1)?,
        digits: r.get(2)?,
    })
}

/// The blocks of users, every user of the database sorted by name (bytes).
pub(crate) fn user_leaves(conn: &Connection) -> Result<Vec<UserLeaf>> {
    let mut keys: HashMap<String, Key> = HashMap::new();
    let mut stmt = conn.prepare("SELECT secret, algorithm, digits, user FROM totp")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        keys.insert(r.get(3)?, key_row(r)?);
    }
    drop(rows);
    let mut stmt = conn.prepare("SELECT user, count(*) FROM backup_codes GROUP BY user")?;
    let backups: HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!("{CONTACT_SELECT} ORDER BY c.user, c.seq"))?;
    let mut contacts: HashMap<String, Vec<ContactRow>> = HashMap::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let c = crate::store::people::contact_row(r)?;
        contacts.entry(r.get(6)?).or_default().push(c);
    }
    drop(rows);
    let mut stmt = conn.prepare(USER_SELECT)?;
    let mut users: Vec<UserRow> = stmt
        .query_map([], user_row)?
        .collect::<rusqlite::Result<_>>()?;
    // Byte order, as the lookup compares.
    users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut records = Vec::with_capacity(users.len());
    for u in &users {
        let mut out = Vec::with_capacity(96);
        let cs = contacts.get(&u.name).map(Vec::as_slice).unwrap_or_default();
        let n = backups.get(&u.name).copied().unwrap_or(0);
        put_user(&mut out, u, keys.get(&u.name), n, cs)?;
        records.push((u.name.clone(), out));
    }
    Ok(leaves_of(records, BLOCK))
}

/// `records` (name, encoded user; sorted by name) in blocks of `per` users.
pub(crate) fn leaves_of(records: Vec<(String, Vec<u8>)>, per: usize) -> Vec<UserLeaf> {
    let mut leaves = Vec::with_capacity(records.len() / per + 1);
    let mut iter = records.into_iter().peekable();
    while iter.peek().is_some() {
        let mut first = None;
        let mut block = Vec::new();
        for (name, bytes) in iter.by_ref().take(per) {
            first.get_or_insert(name);
            block.extend_from_slice(&bytes);
        }
        leaves.push(UserLeaf {
            first: first.unwrap_or_default(),
            digest: digest(&block),
            piece: Piece::Bytes(block),
        });
    }
    leaves
}

/// One user as the database holds them now, encoded; `None` when there is no such user.
pub(crate) fn user_record(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    use rusqlite::OptionalExtension;
    // Cached statements: a patch asks this for each of up to MAX_USERS users.
    let Some(u) = conn
        .prepare_cached(&format!("{USER_SELECT} WHERE u.name = ?1"))?
        .query_row([name], user_row)
        .optional()?
    else {
        return Ok(None);
    };
    let key = conn
        .prepare_cached("SELECT secret, algorithm, digits FROM totp WHERE user = ?1")?
        .query_row([name], key_row)
        .optional()?;
    let backups: i64 = conn
        .prepare_cached("SELECT count(*) FROM backup_codes WHERE user = ?1")?
        .query_row([name], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "{CONTACT_SELECT} WHERE c.user = ?1 ORDER BY c.seq"
    ))?;
    let contacts: Vec<ContactRow> = stmt
        .query_map([name], crate::store::people::contact_row)?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(96);
    put_user(&mut out, &u, key.as_ref(), backups, &contacts)?;
    Ok(Some(out))
}

fn put_user(
    out: &mut Vec<u8>,
    u: &UserRow,
    key: Option<&Key>,
    backups: i64,
    contacts: &[ContactRow],
) -> Result<()> {
    put_str(out, &u.name)?;
    out.push(u8::from(u.enabled) | (u8::from(u.mandatory) << 1) | (u8::from(u.exempt) << 2));
    out.push(log_to(u.log.as_deref()));
    out.push(match u.self_enroll {
        Some(true) => 1,
        Some(false) => 2,
        None => 0,
    });
    // 0: the first contact (a number outside 1..=255 cannot be stored: the schema keeps
    // it within 1..4).
    out.push(
        u.double_logon_contact
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(0),
    );
    out.extend_from_slice(&u16::try_from(backups).unwrap_or(u16::MAX).to_le_bytes());
    match key {
        None => out.push(0),
        Some(k) => {
            out.push(1);
            put_str(out, &k.algorithm)?;
            out.push(u8::try_from(k.digits).unwrap_or(0));
            put_bytes(out, &k.secret)?;
        }
    }
    out.push(u8::try_from(contacts.len()).unwrap_or(u8::MAX));
    for c in contacts {
        out.push(u8::try_from(c.seq).unwrap_or(0));
        put_str(out, &c.channel)?;
        put_str(out, &c.address)?;
        put_str(out, c.carrier.as_deref().unwrap_or_default())?;
        put_str(out, &c.to)?;
        put_str(out, &c.masked)?;
        put_str(out, &c.label)?;
    }
    // The Duo user name, "" for none (a stored name is never empty: validate::duo_user).
    put_str(out, u.duo_user.as_deref().unwrap_or_default())?;
    // The factors the user may use; a value outside 1..=15 (a hand-edited store) is written
    // as 0, which the reader refuses as damage (never "all").
    out.push(
        crate::policy::Factors::from_bits(u.factors)
            .map(crate::policy::Factors::bits)
            .unwrap_or(0),
    );
    Ok(())
}

fn to_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Database("the policy snapshot would exceed 4 GiB".into()))
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

fn log_to(l: Option<&str>) -> u8 {
    match l {
        Some("none") => 1,
        Some("rejects") => 2,
        Some("all") => 3,
        _ => 0,
    }
}
