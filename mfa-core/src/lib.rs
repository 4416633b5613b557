//! mfa-core: everything the parts of mfa share.
//!
//! The configuration file ([`config`]), the SQLite rule store and its migrations ([`store`]),
//! the validated value types the rules are made of (settings, network ranges, contacts,
//! message templates) and the declarative export document ([`export`]). No PAM and no network
//! here: the PAM module, the sender daemon and the admin CLI are thin layers over this crate.

pub mod auth;
pub mod authlog;
pub mod bulk;
pub mod config;
pub mod contact;
pub mod duo;
pub mod error;
pub mod export;
pub mod files;
pub mod fleet_status;
pub mod grants;
pub mod helper;
pub mod logline;
pub mod net;
pub mod notice;
pub mod passcode;
pub mod policy;
pub mod secret;
pub mod service;
pub mod settings;
pub mod snapshot;
pub mod spool;
pub mod state;
pub mod store;
pub mod store_config;
pub mod template;
pub mod totp;
pub mod validate;

pub use error::{Error, Result};

/// Seconds since the Unix epoch, the one time representation of the store.
pub fn now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}
