//! No self-enrollment through the helper. Enrolling registers a factor for the user on every
//! service (a TOTP key shown to the conversation, or an email address typed into it): through
//! the helper the conversation is the calling server's, so a caller that can run code as its
//! account (a database superuser) could enrol a key or an address of its own for any user who
//! may still self-enrol, and then pass that user's second factor on SSH. The helper decides
//! first, with the same facts and `policy::decide` the module uses, and refuses a login
//! that would enrol: the user enrols on a terminal (ssh, login) or by the administrator.

use std::net::IpAddr;

use mfa_core::auth::{Conversation, Outcome, Request};
use mfa_core::config::Config;
use mfa_core::helper::Frame;
use mfa_core::policy::{self, Decision};
use mfa_core::snapshot::Snapshot;
use mfa_core::store::{self, Store};

use crate::process::{self, Caller};

/// The reason in the helper's syslog line (the caller gets a generic one: `report`).
pub const REASON: &str =
    "self-enrollment refused through mfa-check: enrol on a terminal (ssh, login) first";

/// Whether the usual decision for `req` would be a self-enrollment. When the rules cannot be
/// read, false: the flow itself then fails as it always does.
pub fn would_enroll(config: &Config, req: &Request) -> bool {
    let db = &config.paths.database;
    let ip: Option<IpAddr> = mfa_core::net::parse_address(&req.rhost).ok();
    let facts = match Snapshot::load(db) {
        Some(snap) => {
            let record = snap.user(&req.user);
            snap.facts_for(record.as_ref(), &req.service, &req.user, ip)
        }
        None => match Store::open(db) {
            Ok(s) => match store::auth::facts(s.conn(), &req.user, &req.service, ip) {
                Ok(f) => f,
                Err(_) => return false,
            },
            Err(_) => return false,
        },
    };
    matches!(
        policy::decide(&facts, mfa_core::now()),
        Decision::Enroll | Decision::EnrollTotp
    )
}

/// The denial of a login that would enrol: the user is told, syslog says who asked.
pub fn refuse(conv: &mut dyn Conversation, caller: &Caller, req: &Request) -> Frame {
    let _ = conv.error(
        "Second factor: enrol on a terminal (ssh, login) first; this service cannot enrol you.",
    );
    process::syslog(
        libc::LOG_NOTICE,
        &format!(
            "uid {} asked for user {:?} on service {:?}: {REASON}",
            caller.uid, req.user, req.service
        ),
    );
    Frame::Outcome(Outcome::Deny {
        reason: REASON.into(),
    })
}
