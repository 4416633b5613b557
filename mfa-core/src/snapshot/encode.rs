//! Writing the policy snapshot: [`build`] encodes the database as `conn` sees it in the
//! format described in the parent module.

use std::collections::HashMap;

use rusqlite::Connection;

use sha2::{Digest, Sha256};

use super::{
    BLOCK, DIGEST, DIGEST_AT, HEADER, MAGIC, RULE, RULE_BLOCK, RULE_FENCE, current_generation,
    head_digest,
};
use crate::store::people::ContactRow;
use crate::totp::Key;
use crate::{Error, Result};

/// Builds the snapshot of the database as `conn` sees it (call it inside one read
/// transaction so that all sections come from the same state).
pub fn build(conn: &Connection) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&current_generation(conn)?.to_le_bytes());
    // Total and head lengths, then the head's digest: filled in at the end.
    out.extend_from_slice(&[0u8; 8 + DIGEST]);
    debug_assert_eq!(out.len(), HEADER);

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
    // The rules go in blocks after the head (a login reads and hashes only the blocks whose
    // bounds hold its address); the head keeps each block's bounds, place and digest.
    rules.sort_by(|a, b| a[16..32].cmp(&b[16..32]));
    let rule_blocks: Vec<Vec<u8>> = rules.chunks(RULE_BLOCK).map(|c| c.concat()).collect();
    put_count(&mut out, rule_blocks.len())?;
    let rule_fences_at = out.len();
    out.resize(out.len() + rule_blocks.len() * RULE_FENCE, 0);

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
        fences_len += 2 + n.len() + 4 + DIGEST;
    }
    let head_len = out.len() + fences_len;
    let mut offset = head_len;
    for (i, block) in rule_blocks.iter().enumerate() {
        let at = rule_fences_at + i * RULE_FENCE;
        let min_first = block.chunks_exact(RULE).map(|r| &r[16..32]).min();
        let max_last = block.chunks_exact(RULE).map(|r| &r[32..48]).max();
        let (Some(min_first), Some(max_last)) = (min_first, max_last) else {
            continue;
        };
        out[at..at + 16].copy_from_slice(min_first);
        out[at + 16..at + 32].copy_from_slice(max_last);
        out[at + 32..at + 36].copy_from_slice(&to_u32(offset)?.to_le_bytes());
        out[at + 36..at + 40].copy_from_slice(&to_u32(block.len() / RULE)?.to_le_bytes());
        out[at + 40..at + RULE_FENCE].copy_from_slice(&Sha256::digest(block));
        offset += block.len();
    }
    put_count(&mut out, users.len())?;
    for (first, block) in &users {
        put_str(&mut out, first)?;
        out.extend_from_slice(&to_u32(offset)?.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(block));
        offset += block.len();
    }
    debug_assert_eq!(out.len(), head_len);
    for block in &rule_blocks {
        out.extend_from_slice(block);
    }
    for (_, block) in &users {
        out.extend_from_slice(block);
    }
    let total = to_u32(out.len())?;
    out[16..20].copy_from_slice(&total.to_le_bytes());
    out[20..24].copy_from_slice(&to_u32(head_len)?.to_le_bytes());
    let digest = head_digest(&out[..head_len]);
    out[DIGEST_AT..HEADER].copy_from_slice(&digest);
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
                o.log_level, o.double_logon_contact
         FROM users u LEFT JOIN overrides o ON o.user = u.name",
    )?;
    type Row = (
        String,
        bool,
        bool,
        bool,
        Option<bool>,
        Option<String>,
        Option<i64>,
    );
    let mut users: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Byte order, as the lookup compares.
    users.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut blocks: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, (name, enabled, mandatory, exempt, self_enroll, log, dlc)) in users.iter().enumerate() {
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
        // 0: the first contact (a number outside 1..=255 cannot be stored: the schema keeps
        // it within 1..4).
        out.push(dlc.and_then(|n| u8::try_from(n).ok()).unwrap_or(0));
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
