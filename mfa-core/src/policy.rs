//! The decision, in the order of the design, as a pure function of what the store knows
//! ([`Facts`]) and the time. The PAM module gathers the facts, calls [`decide`] and acts on
//! the [`Decision`]; `mfa-admin net check` explains the network step with the same rule
//! lookup.
//!
//! 1. 2FA globally off, or the service's method is `none` → ignore.
//! 2. The user is exempt → ignore (logged as an override).
//! 3. The user is locked out → deny.
//! 4. The narrowest trusted-network rule says "not required" and the user is not
//!    mandatory → ignore.
//! 5. The user passed 2FA on this service from this address within the repeat window →
//!    ignore.
//! 6. The user has no record or no usable factor → `unassigned`: allow (ignore), deny, or
//!    enroll. A disabled user is denied here.
//! 7. Challenge with the service's method (`duo`: for every user not disabled; Duo's preauth
//!    then decides as its own policy says).

use crate::settings::{LogLevel, Settings, Unassigned};

/// Everything the decision depends on, read from the store for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub settings: Settings,
    /// The service's method: none, passcode, totp, duo or any.
    pub method: String,
    /// The user's record, if mfa knows the user.
    pub user: Option<UserFacts>,
    /// Unix time until which the user (known or not) is locked out; 0 when not.
    pub locked_until: i64,
    /// The deciding trusted-network rule: (rule id, 2FA required, rule's log level).
    pub network: Option<NetworkFacts>,
    /// When the user last passed 2FA on this service from this address.
    pub last_grant: Option<i64>,
}

/// The factors a user may use (their own `factors` override, else their group's, else all):
/// a bit set, stored as an integer from 1 to 15 in the store and the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Factors(u8);

impl Factors {
    pub const PASSCODE: u8 = 1;
    pub const TOTP: u8 = 2;
    pub const BACKUP: u8 = 4;
    pub const DUO: u8 = 8;
    /// Every factor (the default).
    pub const ALL: Factors = Factors(15);
    /// The names, in the order of their bits.
    pub const NAMES: [(&'static str, u8); 4] = [
        ("passcode", Factors::PASSCODE),
        ("totp", Factors::TOTP),
        ("backup", Factors::BACKUP),
        ("duo", Factors::DUO),
    ];

    /// From the stored integer; `None` for one out of 1..=15 (a damaged or hand-edited
    /// store: the caller treats it as damage, never as "all").
    pub fn from_bits(bits: i64) -> Option<Factors> {
        u8::try_from(bits)
            .ok()
            .filter(|b| (1..=15).contains(b))
            .map(Factors)
    }

    /// The stored integer.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether the factor `bit` (one of the constants) is allowed.
    pub fn allows(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// Parses `all` or a comma-separated list of passcode, totp, backup, duo.
    pub fn parse(text: &str) -> crate::Result<Factors> {
        let t = text.trim().to_ascii_lowercase();
        if t == "all" {
            return Ok(Factors::ALL);
        }
        let mut bits = 0u8;
        for word in t.split(',').map(str::trim) {
            match Factors::NAMES.iter().find(|(n, _)| *n == word) {
                Some((_, b)) => bits |= b,
                None => {
                    return Err(crate::invalid!(
                        "invalid factor list {text:?}: expected all, or some of passcode,totp,backup,duo separated by commas"
                    ));
                }
            }
        }
        Ok(Factors(bits))
    }
}

impl Default for Factors {
    fn default() -> Factors {
        Factors::ALL
    }
}

impl std::fmt::Display for Factors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Factors::ALL {
            return f.write_str("all");
        }
        let names: Vec<&str> = Factors::NAMES
            .iter()
            .filter(|(_, b)| self.allows(*b))
            .map(|(n, _)| *n)
            .collect();
        f.write_str(&names.join(","))
    }
}

impl Facts {
    /// The factors the user may use: their record's (own override, else their group's); a
    /// user without a record has no group: every factor.
    pub fn allowed(&self) -> Factors {
        self.user.as_ref().map_or(Factors::ALL, |u| u.factors)
    }
}

/// What the decision needs of a user record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFacts {
    pub enabled: bool,
    pub mandatory: bool,
    pub exempt: bool,
    /// The user's self-enroll override (None: the global setting).
    pub self_enroll: Option<bool>,
    /// The user's log-level override.
    pub log: Option<LogLevel>,
    /// Number of contacts (passcode destinations).
    pub contacts: usize,
    /// An authenticator key is enrolled.
    pub totp: bool,
    /// Unused backup codes.
    pub backup_codes: usize,
    /// The record names the user's Duo account (`user set --duo`): method `any` offers Duo.
    pub duo: bool,
    /// The factors the user may use (their own override, else their group's, else all).
    pub factors: Factors,
    /// The contact (its number) a double logon sends its passcode to (an override); `None`:
    /// the first contact. Not part of the decision, only of where its passcode goes.
    pub double_logon_contact: Option<i64>,
}

/// The deciding trusted-network rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkFacts {
    pub id: i64,
    pub require: bool,
    pub log: Option<LogLevel>,
}

/// Why the module ignores (lets the rest of the stack decide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    Disabled,
    MethodNone,
    Exempt,
    TrustedNetwork(i64),
    RepeatWindow,
    UnassignedAllow,
}

/// Why the module denies without a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    LockedOut {
        until: i64,
    },
    UnassignedDeny,
    UserDisabled,
    /// The user has factors, but none the service's method accepts.
    NoUsableFactor,
}

/// What the module does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// PAM_IGNORE: never PAM_SUCCESS for a bypass.
    Ignore(Bypass),
    /// PAM_AUTH_ERR (a lockout too).
    Deny(Refusal),
    /// Let the user register a contact now.
    Enroll,
    /// Let the user enrol an authenticator app now (`totp_self_enroll`).
    EnrollTotp,
    /// Challenge with this method (passcode, totp, duo, any).
    Challenge(String),
}

impl Bypass {
    /// Short text for logs.
    pub fn reason(self) -> String {
        match self {
            Bypass::Disabled => "2FA is off globally".into(),
            Bypass::MethodNone => "service method is none".into(),
            Bypass::Exempt => "user is exempt (override)".into(),
            Bypass::TrustedNetwork(id) => format!("trusted network (rule {id})"),
            Bypass::RepeatWindow => "repeat window".into(),
            Bypass::UnassignedAllow => "no factor; unassigned=allow".into(),
        }
    }
}

impl Refusal {
    /// Short text for logs.
    pub fn reason(self) -> String {
        match self {
            Refusal::LockedOut { until } => {
                format!("locked out until {}", crate::store::auth::time_text(until))
            }
            Refusal::UnassignedDeny => "no factor; unassigned=deny".into(),
            Refusal::UserDisabled => "user is disabled".into(),
            Refusal::NoUsableFactor => "no factor this service's method accepts".into(),
        }
    }
}

/// Decides for a request at time `now` (Unix seconds).
pub fn decide(f: &Facts, now: i64) -> Decision {
    let s = &f.settings;
    if !s.enabled {
        return Decision::Ignore(Bypass::Disabled);
    }
    if f.method == "none" {
        return Decision::Ignore(Bypass::MethodNone);
    }
    let user = f.user.as_ref();
    if user.is_some_and(|u| u.exempt) {
        return Decision::Ignore(Bypass::Exempt);
    }
    if f.locked_until > now {
        return Decision::Deny(Refusal::LockedOut {
            until: f.locked_until,
        });
    }
    let mandatory = user.is_some_and(|u| u.mandatory);
    if let Some(n) = &f.network
        && !n.require
        && !mandatory
    {
        return Decision::Ignore(Bypass::TrustedNetwork(n.id));
    }
    if s.repeat_window > 0
        && let Some(t) = f.last_grant
        && t <= now
        && now - t < i64::from(s.repeat_window)
    {
        return Decision::Ignore(Bypass::RepeatWindow);
    }
    // A user's group (or own override) may narrow the factors they may use; a user without
    // a record has no group: every factor.
    let allowed = f.allowed();
    match user {
        Some(u) if !u.enabled => Decision::Deny(Refusal::UserDisabled),
        _ if f.method == "duo" && !allowed.allows(Factors::DUO) => {
            Decision::Deny(Refusal::NoUsableFactor)
        }
        // Duo knows its users: its preauth says whether one must authenticate, enrol, is
        // denied or let through (its new-user policy), so `unassigned` does not apply.
        _ if f.method == "duo" => Decision::Challenge(f.method.clone()),
        Some(u) if has_factor(&f.method, u) => Decision::Challenge(f.method.clone()),
        // Factors, but none this service's method accepts (or the user's group allows):
        // enrolling another one here would let whoever has the password add a factor of
        // their own.
        Some(u) if u.contacts > 0 || u.totp || u.backup_codes > 0 || u.duo => {
            Decision::Deny(Refusal::NoUsableFactor)
        }
        Some(_)
            if s.totp_self_enroll
                && (f.method == "totp" || f.method == "any")
                && allowed.allows(Factors::TOTP) =>
        {
            Decision::EnrollTotp
        }
        Some(u) => match u.self_enroll {
            Some(true) => enroll_for(&f.method, allowed),
            Some(false) => Decision::Deny(Refusal::UnassignedDeny),
            None if s.self_enroll => enroll_for(&f.method, allowed),
            None => unassigned(s.unassigned, &f.method, allowed),
        },
        None => unassigned(s.unassigned, &f.method, allowed),
    }
}

/// Enrolment of the kind the method can use and the user may use: a contact for passcodes,
/// a key for TOTP; neither allowed: no usable factor.
fn enroll_for(method: &str, allowed: Factors) -> Decision {
    let passcode = allowed.allows(Factors::PASSCODE);
    let totp = allowed.allows(Factors::TOTP);
    match method {
        "totp" if totp => Decision::EnrollTotp,
        "passcode" if passcode => Decision::Enroll,
        "any" if passcode => Decision::Enroll,
        "any" if totp => Decision::EnrollTotp,
        _ => Decision::Deny(Refusal::NoUsableFactor),
    }
}

fn unassigned(u: Unassigned, method: &str, allowed: Factors) -> Decision {
    match u {
        Unassigned::Allow => Decision::Ignore(Bypass::UnassignedAllow),
        Unassigned::Deny => Decision::Deny(Refusal::UnassignedDeny),
        Unassigned::Enroll => enroll_for(method, allowed),
    }
}

/// True when the user has a factor the method can use and may use. A backup code counts
/// wherever an authenticator code does.
fn has_factor(method: &str, u: &UserFacts) -> bool {
    let a = u.factors;
    let passcode = u.contacts > 0 && a.allows(Factors::PASSCODE);
    let totp =
        (u.totp && a.allows(Factors::TOTP)) || (u.backup_codes > 0 && a.allows(Factors::BACKUP));
    match method {
        "passcode" => passcode,
        "totp" => totp,
        "any" => passcode || totp || (u.duo && a.allows(Factors::DUO)),
        _ => false,
    }
}

/// Whether an outcome is written to the auth log: the rule's level, else the user's, else
/// the global one. `rejected` marks denials and failures.
pub fn should_log(f: &Facts, rejected: bool) -> bool {
    let level = f
        .network
        .as_ref()
        .and_then(|n| n.log)
        .or_else(|| f.user.as_ref().and_then(|u| u.log))
        .unwrap_or(f.settings.log_level);
    match level {
        LogLevel::All => true,
        LogLevel::Rejects => rejected,
        LogLevel::None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn facts() -> Facts {
        let mut s = Settings::from_stored(&BTreeMap::new()).unwrap();
        s.enabled = true;
        Facts {
            settings: s,
            method: "passcode".into(),
            user: Some(UserFacts {
                enabled: true,
                contacts: 1,
                ..Default::default()
            }),
            locked_until: 0,
            network: None,
            last_grant: None,
        }
    }

    const NOW: i64 = 1_000_000;

    #[test]
    fn order_of_the_design() {
        let f = facts();
        assert_eq!(decide(&f, NOW), Decision::Challenge("passcode".into()));

        let mut g = f.clone();
        g.settings.enabled = false;
        g.locked_until = NOW + 10;
        assert_eq!(
            decide(&g, NOW),
            Decision::Ignore(Bypass::Disabled),
            "step 1 before 3"
        );

        let mut g = f.clone();
        g.method = "none".into();
        assert_eq!(decide(&g, NOW), Decision::Ignore(Bypass::MethodNone));

        let mut g = f.clone();
        g.user.as_mut().unwrap().exempt = true;
        g.locked_until = NOW + 10;
        assert_eq!(
            decide(&g, NOW),
            Decision::Ignore(Bypass::Exempt),
            "step 2 before 3"
        );

        let mut g = f.clone();
        g.locked_until = NOW + 10;
        g.network = Some(NetworkFacts {
            id: 1,
            require: false,
            log: None,
        });
        assert_eq!(
            decide(&g, NOW),
            Decision::Deny(Refusal::LockedOut { until: NOW + 10 }),
            "step 3 before 4"
        );
        g.locked_until = NOW;
        assert_eq!(
            decide(&g, NOW),
            Decision::Ignore(Bypass::TrustedNetwork(1)),
            "a lockout ends"
        );

        let mut g = f.clone();
        g.network = Some(NetworkFacts {
            id: 1,
            require: false,
            log: None,
        });
        g.user.as_mut().unwrap().mandatory = true;
        assert_eq!(
            decide(&g, NOW),
            Decision::Challenge("passcode".into()),
            "mandatory ignores trust"
        );
        g.network = Some(NetworkFacts {
            id: 2,
            require: true,
            log: None,
        });
        g.user.as_mut().unwrap().mandatory = false;
        assert_eq!(
            decide(&g, NOW),
            Decision::Challenge("passcode".into()),
            "required rule"
        );
    }

    #[test]
    fn repeat_window() {
        let mut f = facts();
        f.last_grant = Some(NOW - 60);
        assert_eq!(
            decide(&f, NOW),
            Decision::Challenge("passcode".into()),
            "window off by default"
        );
        f.settings.repeat_window = 300;
        assert_eq!(decide(&f, NOW), Decision::Ignore(Bypass::RepeatWindow));
        f.last_grant = Some(NOW - 300);
        assert_eq!(
            decide(&f, NOW),
            Decision::Challenge("passcode".into()),
            "window is half-open"
        );
        f.last_grant = Some(NOW + 100);
        assert_eq!(
            decide(&f, NOW),
            Decision::Challenge("passcode".into()),
            "a grant from the future is not trusted"
        );
        // A mandatory user from a trusted network still gets the repeat window.
        f.last_grant = Some(NOW - 1);
        f.user.as_mut().unwrap().mandatory = true;
        assert_eq!(decide(&f, NOW), Decision::Ignore(Bypass::RepeatWindow));
    }

    #[test]
    fn unassigned_and_enrollment() {
        let mut f = facts();
        f.user = None;
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::UnassignedDeny));
        f.settings.unassigned = Unassigned::Allow;
        assert_eq!(decide(&f, NOW), Decision::Ignore(Bypass::UnassignedAllow));
        f.settings.unassigned = Unassigned::Enroll;
        assert_eq!(decide(&f, NOW), Decision::Enroll);

        let mut f = facts();
        f.user.as_mut().unwrap().contacts = 0;
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::UnassignedDeny));
        f.settings.self_enroll = true;
        assert_eq!(decide(&f, NOW), Decision::Enroll);
        f.user.as_mut().unwrap().self_enroll = Some(false);
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::UnassignedDeny));
        f.settings.self_enroll = false;
        f.user.as_mut().unwrap().self_enroll = Some(true);
        assert_eq!(decide(&f, NOW), Decision::Enroll);

        let mut f = facts();
        f.method = "totp".into();
        assert_eq!(
            decide(&f, NOW),
            Decision::Deny(Refusal::NoUsableFactor),
            "contacts are no TOTP key"
        );
        f.method = "any".into();
        assert_eq!(decide(&f, NOW), Decision::Challenge("any".into()));

        let mut f = facts();
        f.user.as_mut().unwrap().enabled = false;
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::UserDisabled));
        f.network = Some(NetworkFacts {
            id: 1,
            require: false,
            log: None,
        });
        assert_eq!(decide(&f, NOW), Decision::Ignore(Bypass::TrustedNetwork(1)));
    }

    #[test]
    fn never_success_without_challenge() {
        // Exhaustive over the boolean inputs: the decision is never a bypass when 2FA is
        // required and nothing allows it.
        for bits in 0..256u32 {
            let b = |i: u32| bits & (1 << i) != 0;
            let mut f = facts();
            f.settings.enabled = b(0);
            f.method = if b(1) {
                "passcode".into()
            } else {
                "none".into()
            };
            let u = f.user.as_mut().unwrap();
            u.exempt = b(2);
            u.mandatory = b(3) && !b(2);
            u.contacts = usize::from(b(5));
            f.locked_until = if b(4) { NOW + 1 } else { 0 };
            f.network = b(6).then_some(NetworkFacts {
                id: 9,
                require: b(7),
                log: None,
            });
            let d = decide(&f, NOW);
            let may_bypass = !f.settings.enabled
                || f.method == "none"
                || b(2)
                || (b(6) && !b(7) && !b(3) && !b(4));
            if let Decision::Ignore(_) = d {
                assert!(may_bypass, "bits {bits:08b}: {d:?}");
            }
            if b(4) && f.settings.enabled && f.method != "none" && !b(2) {
                assert!(
                    matches!(d, Decision::Deny(Refusal::LockedOut { .. })),
                    "bits {bits:08b}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn enrolment_only_without_any_factor() {
        // A user with contacts on a totp service: no enrolment, whatever the settings.
        let mut f = facts();
        f.method = "totp".into();
        f.settings.totp_self_enroll = true;
        f.settings.self_enroll = true;
        f.settings.unassigned = Unassigned::Enroll;
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::NoUsableFactor));
        // Without any factor: a key for totp, a contact for passcode.
        f.user.as_mut().unwrap().contacts = 0;
        assert_eq!(decide(&f, NOW), Decision::EnrollTotp);
        f.settings.totp_self_enroll = false;
        assert_eq!(
            decide(&f, NOW),
            Decision::EnrollTotp,
            "self-enrolment on a totp service enrols a key"
        );
        f.method = "passcode".into();
        assert_eq!(decide(&f, NOW), Decision::Enroll);
        // A key but no contact on a passcode service: refused, not enrolled.
        f.user.as_mut().unwrap().totp = true;
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::NoUsableFactor));
        // Unknown users with unassigned=enroll get the method's kind of enrolment.
        f.user = None;
        assert_eq!(decide(&f, NOW), Decision::Enroll);
        f.method = "totp".into();
        assert_eq!(decide(&f, NOW), Decision::EnrollTotp);
        // Method duo: Duo's preauth decides, whatever `unassigned` says, for known and
        // unknown users; a disabled user is still refused first.
        f.method = "duo".into();
        for unassigned in [Unassigned::Allow, Unassigned::Deny, Unassigned::Enroll] {
            f.settings.unassigned = unassigned;
            assert_eq!(decide(&f, NOW), Decision::Challenge("duo".into()));
        }
        f.user = Some(UserFacts::default());
        assert_eq!(decide(&f, NOW), Decision::Deny(Refusal::UserDisabled));
        // Method any: a Duo name alone is a usable factor.
        f.method = "any".into();
        f.user = Some(UserFacts {
            enabled: true,
            duo: true,
            ..Default::default()
        });
        assert_eq!(decide(&f, NOW), Decision::Challenge("any".into()));
    }

    #[test]
    fn log_levels() {
        let mut f = facts();
        assert!(should_log(&f, false));
        f.settings.log_level = LogLevel::Rejects;
        assert!(!should_log(&f, false) && should_log(&f, true));
        f.user.as_mut().unwrap().log = Some(LogLevel::All);
        assert!(should_log(&f, false));
        f.network = Some(NetworkFacts {
            id: 1,
            require: false,
            log: Some(LogLevel::None),
        });
        assert!(!should_log(&f, true));
    }

    /// A group (or a user's own override) that narrows the factors: a factor the user has
    /// but may not use never counts, and enrollment never offers a kind the user may not use.
    #[test]
    fn factors_allowed_narrow_the_decision() {
        let with = |method: &str, factors: &str, u: UserFacts| {
            let mut f = facts();
            f.method = method.into();
            f.user = Some(UserFacts {
                enabled: true,
                factors: Factors::parse(factors).unwrap(),
                ..u
            });
            decide(&f, NOW)
        };
        let contact = UserFacts {
            contacts: 1,
            ..Default::default()
        };
        let key = UserFacts {
            totp: true,
            ..Default::default()
        };
        let codes = UserFacts {
            backup_codes: 3,
            ..Default::default()
        };
        let duo = UserFacts {
            duo: true,
            ..Default::default()
        };
        let challenge = |m: &str| Decision::Challenge(m.into());
        let none = Decision::Deny(Refusal::NoUsableFactor);
        assert_eq!(
            with("passcode", "all", contact.clone()),
            challenge("passcode")
        );
        assert_eq!(with("passcode", "totp,backup", contact.clone()), none);
        assert_eq!(with("any", "totp", contact.clone()), none);
        assert_eq!(with("any", "passcode", contact), challenge("any"));
        assert_eq!(with("totp", "passcode", key.clone()), none);
        assert_eq!(with("totp", "totp", key.clone()), challenge("totp"));
        assert_eq!(
            with("totp", "totp", codes.clone()),
            none,
            "backup codes not allowed"
        );
        assert_eq!(with("totp", "backup", codes.clone()), challenge("totp"));
        assert_eq!(with("any", "passcode,totp,backup", duo.clone()), none);
        assert_eq!(with("any", "duo", duo.clone()), challenge("any"));
        assert_eq!(
            with("duo", "passcode", duo),
            none,
            "method duo, duo not allowed"
        );
        assert_eq!(
            with("duo", "duo", UserFacts::default()),
            challenge("duo"),
            "Duo decides for its users"
        );
        // Enrollment offers only what the user may use.
        let mut f = facts();
        f.settings.unassigned = Unassigned::Enroll;
        let enrol = |method: &str, factors: &str| {
            let mut g = f.clone();
            g.method = method.into();
            g.user = Some(UserFacts {
                enabled: true,
                factors: Factors::parse(factors).unwrap(),
                ..Default::default()
            });
            decide(&g, NOW)
        };
        assert_eq!(enrol("passcode", "all"), Decision::Enroll);
        assert_eq!(enrol("passcode", "totp"), none);
        assert_eq!(enrol("any", "totp"), Decision::EnrollTotp);
        assert_eq!(enrol("any", "passcode,totp"), Decision::Enroll);
        assert_eq!(enrol("totp", "passcode"), none);
        assert_eq!(enrol("any", "backup,duo"), none);
        f.settings.totp_self_enroll = true;
        f.method = "any".into();
        f.user = Some(UserFacts {
            enabled: true,
            factors: Factors::parse("passcode").unwrap(),
            ..Default::default()
        });
        assert_eq!(
            decide(&f, NOW),
            Decision::Enroll,
            "no key enrolment where TOTP is not allowed"
        );
        // No record: no group, every factor.
        f.user = None;
        assert_eq!(f.allowed(), Factors::ALL);
    }

    #[test]
    fn factor_lists_parse_and_print() {
        assert_eq!(Factors::parse("ALL").unwrap(), Factors::ALL);
        assert_eq!(
            Factors::parse("duo, passcode").unwrap().to_string(),
            "passcode,duo"
        );
        assert_eq!(
            Factors::parse("passcode,totp,backup,duo").unwrap(),
            Factors::ALL
        );
        assert_eq!(Factors::ALL.to_string(), "all");
        for bad in ["", "none", "sms", "passcode,,totp", "passcode;totp"] {
            let e = Factors::parse(bad).unwrap_err().to_string();
            assert!(e.contains("passcode,totp,backup,duo"), "{bad:?}: {e}");
        }
        assert_eq!(Factors::from_bits(0), None);
        assert_eq!(Factors::from_bits(16), None);
        assert_eq!(Factors::from_bits(-1), None);
        assert_eq!(Factors::from_bits(5).map(Factors::bits), Some(5));
    }
}
