//! What `mfa-fleetd` last knew of the central store, in a small file beside the database
//! (`<database>-fleet.json`, root 0600), so that `mfa-admin doctor` and `fleet status` can
//! say on this host, without the network, whether it follows the fleet: connected or not,
//! since when, at which generation, the last error.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::files::sibling;

/// The follower's view, written after each round.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// This host's name in the fleet.
    pub host: String,
    /// Whether the last round reached the central store.
    pub connected: bool,
    /// When it last did (Unix time; 0: never).
    pub last_contact: i64,
    /// The fleet generation this replica has applied.
    pub generation: i64,
    /// The newest generation the central store had at the last contact.
    pub central: i64,
    /// This host's changes not yet shipped.
    pub outbox: i64,
    /// The last round's error ("" when it went well).
    pub last_error: String,
    /// The schema a central change needs when this host is too old to apply it (0: none).
    pub needs_schema: i64,
    /// When this file was written (Unix time).
    pub updated: i64,
}

/// The status file of a database.
pub fn path_for(database: &Path) -> PathBuf {
    sibling(database, "-fleet.json")
}

/// Writes the status (atomically).
pub fn write(database: &Path, status: &FleetStatus) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(status)
        .map_err(|e| crate::Error::Database(format!("fleet status: {e}")))?;
    crate::files::replace(&path_for(database), &bytes, false)
}

/// The status, when `mfa-fleetd` has written one that can be read.
pub fn read(database: &Path) -> Option<FleetStatus> {
    let bytes = std::fs::read(path_for(database)).ok()?;
    if bytes.len() > 1 << 20 {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}
