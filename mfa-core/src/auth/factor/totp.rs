//! The authenticator factor: a TOTP code from the user's app (a backup code is accepted at
//! the same prompt), and the code check backup codes share.

use super::*;

/// A code from the authenticator app (a backup code is accepted too).
pub(super) struct Authenticator;

impl Factor for Authenticator {
    fn label(&self) -> String {
        "code from your authenticator app".into()
    }

    fn challenge(
        &self,
        cx: &mut Cx<'_>,
        req: &Request,
        facts: &Facts,
        conv: &mut dyn Conversation,
    ) -> Result<Outcome, Flow> {
        code_login(cx, req, facts, conv, "Authenticator code: ")
    }
}

/// Asks for an authenticator code or a backup code, `attempts` times at most. A TOTP step is
/// accepted once (and never an earlier one); a backup code once. Failures count toward the
/// lockout.
pub(in crate::auth) fn code_login(
    cx: &mut Cx<'_>,
    req: &Request,
    facts: &Facts,
    conv: &mut dyn Conversation,
    prompt: &str,
) -> Result<Outcome, Flow> {
    let s = &facts.settings;
    let user = req.user.clone();
    let db = &cx.db().to_path_buf();
    // Only the codes the user's group (or own override) allows are checked.
    let allowed = facts.allowed();
    let key = if allowed.allows(Factors::TOTP) {
        cx.totp(&user)?
    } else {
        None
    };
    let backups = allowed.allows(Factors::BACKUP);
    let hash_key = cx.passcode_key()?;
    for attempt in 1..=s.attempts {
        let answer = conv.prompt_code(prompt, false)?;
        let now = crate::now();
        let text: String = match std::str::from_utf8(&answer) {
            Ok(t) if t.len() <= 64 => t
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect(),
            _ => String::new(),
        };
        let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let step = match (&key, digits_only) {
            (Some(k), true) => k.matching_step(&text, u64::try_from(now).unwrap_or(0), s.totp_skew),
            _ => None,
        };
        if !text.is_empty() {
            cx.typed = true;
        }
        // Checked and counted in one step under the user's lock: evaluated only while the
        // user is not locked out and the failure count is below lockout_after (another login
        // of this user may have locked it out while this one waited).
        let mut replay = false;
        let verdict = state::guess(db, &user, now, s, |st| {
            if let Some(step) = step {
                // A compare-and-set under the same lock: one login per step.
                if st.step >= step {
                    replay = true;
                    return Ok(None);
                }
                st.step = step;
                return Ok(Some("totp"));
            }
            if backups && digits_only && text.len() == crate::totp::BACKUP_DIGITS as usize {
                let h = crate::totp::backup_hash(&hash_key, &user, &text)?;
                // Used by deleting its row, a change the snapshot (which counts the codes
                // left) follows.
                let used = cx.store()?.policy_write(false, |tx| {
                    let used = factors::use_backup_code(tx, &user, &h)?;
                    Ok((used, used))
                })?;
                return Ok(used.then_some("backup-code"));
            }
            Ok(None)
        })?;
        let locked = match verdict {
            state::Guess::Locked => {
                conv.error("Too many failures: this account is locked for now.")?;
                return Ok(Outcome::Deny {
                    reason: "locked out during the challenge".into(),
                });
            }
            state::Guess::Right(method) => {
                return Ok(Outcome::Success {
                    method: method.into(),
                    destination: String::new(),
                });
            }
            state::Guess::Wrong { locked } => locked,
        };
        if let Some(until) = locked {
            // The state file holds the lockout; the database follows (a failure there is a
            // denial too: the user was asked).
            lockout(cx, req, now, until)?;
        }
        let why = if replay {
            "That code was already used."
        } else {
            "Wrong code."
        };
        if locked.is_some() {
            conv.error(&format!(
                "{why} Too many failures: this account is locked for now."
            ))?;
            return Ok(Outcome::Deny {
                reason: format!("{}; locked out", why.trim_end_matches('.').to_lowercase()),
            });
        }
        let left = s.attempts - attempt;
        if left == 0 {
            conv.error(&format!("{why} No attempts left."))?;
            return Ok(Outcome::Deny {
                reason: if replay {
                    "code replayed; attempts used up".into()
                } else {
                    "wrong code; attempts used up".into()
                },
            });
        }
        conv.error(&format!(
            "{why} {left} attempt{} left.",
            if left == 1 { "" } else { "s" }
        ))?;
    }
    Ok(Outcome::Deny {
        reason: "wrong code; attempts used up".into(),
    })
}
