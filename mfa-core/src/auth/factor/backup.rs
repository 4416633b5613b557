//! The backup-code factor: one of the user's single-use codes, checked as the authenticator
//! prompt checks them ([`super::totp::code_login`]).

use super::*;

/// A backup code.
pub(super) struct Backup;

impl Factor for Backup {
    fn label(&self) -> String {
        "backup code".into()
    }

    fn challenge(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        totp::code_login(cx, req, facts, conv, "Backup code: ")
    }
}
