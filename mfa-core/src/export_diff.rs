//! What an import changes, per section of the export document: the rules exported before
//! the import compared with those exported after it (inside the same transaction), so the
//! counts are what the store really holds, defaults and normalisation included.
//! `mfa-admin import --dry-run` prints them and rolls back; `import` prints them too.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Document;

/// The changes to one section.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    pub section: &'static str,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
}

impl Section {
    fn is_empty(&self) -> bool {
        self.added + self.changed + self.removed == 0
    }
}

/// The changes to every section, in the document's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub sections: Vec<Section>,
}

impl Changes {
    /// True when the import changes no rule.
    pub fn is_empty(&self) -> bool {
        self.sections.iter().all(Section::is_empty)
    }

    /// One line: `users 3 added, 1 changed, 0 removed; groups 1 added, ...` naming only the
    /// sections that change, or `no changes`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .sections
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| {
                format!(
                    "{} {} added, {} changed, {} removed",
                    s.section, s.added, s.changed, s.removed
                )
            })
            .collect();
        if parts.is_empty() {
            "no changes".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Counts the keys only in `after` (added), in both with another value (changed) and only
/// in `before` (removed).
fn count<K: Ord, V: PartialEq>(
    section: &'static str,
    before: BTreeMap<K, V>,
    mut after: BTreeMap<K, V>,
) -> Section {
    let mut s = Section {
        section,
        ..Section::default()
    };
    for (k, v) in before {
        match after.remove(&k) {
            None => s.removed += 1,
            Some(w) if w != v => s.changed += 1,
            Some(_) => {}
        }
    }
    s.added = after.len();
    s
}

/// The changes from the rules `before` to the rules `after` (both read by
/// [`super::export`]). A user counts as changed when anything of theirs differs: name,
/// group, Duo name, enabled, overrides or contacts.
pub fn diff(before: &Document, after: &Document) -> Changes {
    let settings = |d: &Document| d.settings.clone();
    let services = |d: &Document| d.services.clone();
    let templates = |d: &Document| d.templates.clone();
    let carriers = |d: &Document| {
        d.carriers
            .iter()
            .map(|c| (c.name.clone(), c.suffix.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let networks = |d: &Document| {
        d.networks
            .iter()
            .map(|n| {
                (
                    (n.service.clone(), n.range.clone()),
                    (n.require, n.log.clone(), n.note.clone()),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let groups = |d: &Document| {
        d.groups
            .iter()
            .map(|g| (g.name.clone(), g.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let users = |d: &Document| {
        d.users
            .iter()
            .map(|u| (u.name.clone(), u.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    Changes {
        sections: vec![
            count("settings", settings(before), settings(after)),
            count("services", services(before), services(after)),
            count("templates", templates(before), templates(after)),
            count("carriers", carriers(before), carriers(after)),
            count("networks", networks(before), networks(after)),
            count("groups", groups(before), groups(after)),
            count("users", users(before), users(after)),
        ],
    }
}
