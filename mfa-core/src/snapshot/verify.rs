//! Checking a whole snapshot, as `mfa-admin` does: every index block and that the blocks
//! tile the file ([`Snapshot::verify_indexes`], every command), every block and each user
//! where the index says ([`verify`], `maintain` and `doctor`), and what it says whatever its
//! block boundaries ([`Snapshot::content`], to compare an updated file with a build).

use std::path::Path;

use super::read::{Source, read_at};
use super::{Damage, HEADER, RULE, Snapshot, path_for};

impl Snapshot {
    /// The same snapshot with the whole file read into memory in one read: for checking
    /// every block (`mfa-admin`), which would otherwise take one `pread` per block.
    pub(crate) fn into_memory(mut self) -> Result<Snapshot, Damage> {
        if let Source::File(f) = &self.source {
            let mut all = vec![0u8; self.total];
            let n = read_at(f, &mut all, 0).map_err(|e| {
                Damage::Unreadable(format!("{}: {e}", path_for(&self.database).display()))
            })?;
            if n != self.total || all.get(..self.head.len()) != Some(&self.head[..]) {
                return Err(Damage::Unreadable(format!(
                    "{}: it changed while it was read",
                    path_for(&self.database).display()
                )));
            }
            self.source = Source::Bytes(all);
        }
        Ok(self)
    }

    /// Checks every block (index blocks, rules, users) against its checksum, and that they
    /// tile the body exactly (the head was checked when loaded): what `mfa-admin` does
    /// before trusting a snapshot.
    pub fn verify_blocks(&self) -> Result<(), Damage> {
        self.verify_indexes()?;
        for (.., at, len, digest) in self.all_rule_entries()? {
            self.read_verified(at, len, &digest, "a block of its network rules")?;
        }
        // Every user where the index says: a block's names strictly increase, start with the
        // entry's first name and stay below the next entry's (a login finds a user by them).
        let entries = self.all_user_entries()?;
        for (i, e) in entries.iter().enumerate() {
            let block = self.user_block(e)?;
            let what = format!("the block of users from {:?}", e.first);
            let names = Snapshot::split_users(&block).ok_or_else(|| self.unparsable(&what))?;
            let next = entries.get(i + 1).map(|n| n.first.as_str());
            let in_place = names.first().is_some_and(|(n, _)| *n == e.first)
                && names.windows(2).all(|w| w[0].0 < w[1].0)
                && names
                    .last()
                    .is_some_and(|(n, _)| next.is_none_or(|next| n.as_str() < next));
            if !in_place {
                return Err(
                    self.unparsable(&format!("{what} (its names are not where the index says)"))
                );
            }
        }
        Ok(())
    }

    /// Checks every index block against its checksum and that the blocks the indexes list
    /// tile the body exactly (the head was checked when loaded), without reading the blocks
    /// of rules and users themselves (each login checks those it reads; [`verify`] all).
    pub fn verify_indexes(&self) -> Result<(), Damage> {
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        for (i, (.., at, len, _)) in self.rule_top.iter().enumerate() {
            ranges.push((*at, *len));
            for (.., at, len, _) in self.rule_index(i)? {
                if !len.is_multiple_of(RULE) {
                    return Err(self.unparsable("a block of its network rules"));
                }
                ranges.push((at, len));
            }
        }
        for e in self.all_user_entries()? {
            ranges.push((e.at, e.len));
        }
        for top in self.user_top() {
            ranges.push((top.at, top.len));
        }
        ranges.sort_unstable();
        let mut at = self.head.len();
        for (start, len) in ranges {
            if start != at {
                return Err(self.unparsable("its blocks (they do not tile the file)"));
            }
            at = start + len;
        }
        if at != self.total {
            return Err(self.unparsable("its blocks (they do not reach its end)"));
        }
        Ok(())
    }

    /// What the snapshot says, whatever its block boundaries: the sections from settings to
    /// carriers as encoded, every rule (sorted), every user record in name order. Two
    /// snapshots of the same database state have the same content (one built, one updated).
    pub(crate) fn content(&self) -> Result<Content, Damage> {
        self.verify_blocks()?;
        let mut rules = Vec::new();
        for (.., at, len, digest) in self.all_rule_entries()? {
            let block = self.read_verified(at, len, &digest, "a block of its network rules")?;
            rules.extend(block.chunks_exact(RULE).map(<[u8]>::to_vec));
        }
        rules.sort_unstable();
        let mut users = Vec::new();
        for e in self.all_user_entries()? {
            users.extend_from_slice(&self.user_block(&e)?);
        }
        Ok(Content {
            fixed: self.head[HEADER..self.fixed_end].to_vec(),
            rules,
            users,
        })
    }
}

/// What a snapshot says ([`Snapshot::content`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Content {
    fixed: Vec<u8>,
    rules: Vec<Vec<u8>>,
    users: Vec<u8>,
}

/// Verifies the whole snapshot of `database` (head, index blocks, every block of rules and
/// users, each user where the index says): its generation, `Ok(None)` when there is none.
/// What `mfa-admin maintain` and `doctor` check.
pub fn verify(database: &Path) -> Result<Option<u64>, Damage> {
    let Some(s) = Snapshot::open(database)? else {
        return Ok(None);
    };
    let s = s.into_memory()?;
    s.verify_blocks()?;
    Ok(Some(s.generation()))
}
