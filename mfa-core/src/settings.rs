//! The global settings: their keys, accepted forms, defaults and typed view.
//!
//! Settings are stored as canonical text (`10m`, `on`, `6`) in the `settings` table; a key
//! that is absent has its default. Every value is checked by [`Spec::normalize`] before it is
//! stored, so readers ([`Settings::from_stored`]) can rely on the stored forms.

use std::collections::BTreeMap;

use crate::{Error, Result, invalid};

/// The accepted form of one setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
    /// An integer in an inclusive range.
    Int(u32, u32),
    /// A duration in seconds in an inclusive range; `0` is accepted when the minimum is 0.
    Duration(u32, u32),
    /// Free text for display (no control characters, no `:`), 1 to 64 characters.
    Label,
    /// Where self-enrolled SMS may go: `carriers` (the country code of the configured
    /// email-to-SMS gateways: `1`, as they take 10-digit North American numbers, or none
    /// when no gateway is configured), `none`, or a comma-separated list of country codes or
    /// longer number prefixes (1 to 6 digits, no leading zero: `1,44`, `1212`).
    Prefixes,
    /// Which email domains self-enrollment accepts: `any`, or a comma-separated list of
    /// domains (a domain also covers its subdomains).
    Domains,
    /// `none`, or a group's name (the store checks that the group exists).
    Group,
    /// `none`, or an email address.
    Email,
    /// `none`, or a comma-separated subset of these event names.
    Events(&'static [&'static str]),
}

/// One setting: key, accepted form, default and a one-line description.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The key, as typed in `settings set KEY=VALUE`.
    pub key: &'static str,
    /// The accepted form.
    pub kind: Kind,
    /// The default, in canonical form; empty means "computed" (see `totp_issuer`).
    pub default: &'static str,
    /// What the setting does.
    pub about: &'static str,
}

const ON_OFF: &[&str] = &["on", "off"];
const YES_NO: &[&str] = &["yes", "no"];
/// Log levels: every outcome, only rejections, nothing.
pub const LOG_LEVELS: &[&str] = &["all", "rejects", "none"];

const MIN: u32 = 60;
const HOUR: u32 = 3600;
const DAY: u32 = 86400;

/// Every setting, in display order.
pub const SPECS: &[Spec] = &[
    Spec {
        key: "enabled",
        kind: Kind::Choice(ON_OFF),
        default: "off",
        about: "second factor on or off for every service",
    },
    Spec {
        key: "code_length",
        kind: Kind::Int(4, 8),
        default: "6",
        about: "digits in a passcode",
    },
    Spec {
        key: "code_ttl",
        kind: Kind::Duration(MIN, 999 * MIN),
        default: "10m",
        about: "how long a passcode stays valid",
    },
    Spec {
        key: "attempts",
        kind: Kind::Int(1, 9),
        default: "3",
        about: "tries per passcode",
    },
    Spec {
        key: "repeat_window",
        kind: Kind::Duration(0, 24 * HOUR),
        default: "0",
        about: "skip 2FA when the same user reconnects to the same service from the same address within this time (0 = off)",
    },
    Spec {
        key: "ftp_window",
        kind: Kind::Duration(MIN, 999 * MIN),
        default: "5m",
        about: "time for the second login of a double logon (one-password services: pam_mfa oneword=)",
    },
    Spec {
        key: "self_enroll",
        kind: Kind::Choice(YES_NO),
        default: "no",
        about: "users without a contact may register one at login",
    },
    Spec {
        key: "unassigned",
        kind: Kind::Choice(&["allow", "deny", "enroll"]),
        default: "deny",
        about: "what happens to a user with no record or no usable factor",
    },
    Spec {
        key: "fail_mode",
        kind: Kind::Choice(&["secure", "safe"]),
        default: "secure",
        about: "when mfa itself cannot work: secure denies, safe lets the rest of the stack decide",
    },
    Spec {
        key: "lockout_after",
        kind: Kind::Int(0, 999),
        default: "10",
        about: "consecutive failures that lock a user out (0 = never)",
    },
    Spec {
        key: "lockout_for",
        kind: Kind::Duration(MIN, 7 * DAY),
        default: "15m",
        about: "how long a lockout lasts",
    },
    Spec {
        key: "log_level",
        kind: Kind::Choice(LOG_LEVELS),
        default: "all",
        about: "which outcomes go to the auth log",
    },
    Spec {
        key: "totp_issuer",
        kind: Kind::Label,
        default: "",
        about: "issuer shown in authenticator apps (default: this host's name)",
    },
    Spec {
        key: "log_keep_days",
        kind: Kind::Int(0, 3650),
        default: "0",
        about: "days of auth log kept by `mfa-admin log purge` (0 = keep everything)",
    },
    Spec {
        key: "totp_skew",
        kind: Kind::Int(0, 10),
        default: "1",
        about: "TOTP steps (30 s) accepted before and after the current one",
    },
    Spec {
        key: "totp_self_enroll",
        kind: Kind::Choice(YES_NO),
        default: "no",
        about: "users without an authenticator key enrol one at login (key and QR code shown)",
    },
    Spec {
        key: "send_window",
        kind: Kind::Duration(MIN, DAY),
        default: "15m",
        about: "the time over which send_limit_user and send_limit_destination count messages",
    },
    Spec {
        key: "send_limit_user",
        kind: Kind::Int(0, 999),
        default: "5",
        about: "most passcode messages (resends included) per user per send_window (0 = no limit)",
    },
    Spec {
        key: "send_limit_destination",
        kind: Kind::Int(0, 999),
        default: "5",
        about: "most passcode messages to one address or number per send_window, whatever the user (0 = no limit)",
    },
    Spec {
        key: "send_limit_host",
        kind: Kind::Int(0, 99999),
        default: "100",
        about: "most passcode messages this host queues per hour (0 = no limit)",
    },
    Spec {
        key: "enroll_sms_countries",
        kind: Kind::Prefixes,
        default: "carriers",
        about: "numbers self-enrollment accepts: carriers (the gateways' country code, 1), none, or country codes / number prefixes such as 1,44",
    },
    Spec {
        key: "enroll_email_domains",
        kind: Kind::Domains,
        default: "any",
        about: "email domains self-enrollment accepts: any, or domains such as example.com,example.org (subdomains included)",
    },
    Spec {
        key: "default_group",
        kind: Kind::Group,
        default: "none",
        about: "the group of users who have no group of their own and are in no Unix group a group follows",
    },
    Spec {
        key: "inactive_after",
        kind: Kind::Duration(0, 3650 * DAY),
        default: "0",
        about: "the maintenance run disables users with no proven second factor for this long, such as 90d (0 = never)",
    },
    Spec {
        key: "admin_email",
        kind: Kind::Email,
        default: "none",
        about: "where notices to the administrator go (notify_admin)",
    },
    Spec {
        key: "notify_admin",
        kind: Kind::Events(ADMIN_EVENTS),
        default: "none",
        about: "notices to admin_email: lockout (a user locked out), disabled (a user disabled for inactivity, or a disabled user trying to log in), fail-mode (mfa could not work: the store unreadable, the sender down)",
    },
    Spec {
        key: "notify_user",
        kind: Kind::Events(USER_EVENTS),
        default: "none",
        about: "notices to the user's first contact: lockout (their account was locked out), disabled (they were disabled for inactivity, or someone tried to log in as them while disabled: at most once a day)",
    },
];

/// Events a notice to the administrator can be sent for (setting `notify_admin`).
pub const ADMIN_EVENTS: &[&str] = &["lockout", "disabled", "fail-mode"];
/// Events a notice to the user can be sent for (setting `notify_user`).
pub const USER_EVENTS: &[&str] = &["lockout", "disabled"];

/// Looks a key up; an unknown key is an error listing the known ones.
pub fn spec(key: &str) -> Result<&'static Spec> {
    SPECS.iter().find(|s| s.key == key).ok_or_else(|| {
        invalid!(
            "unknown setting '{key}'; known settings: {}",
            SPECS.iter().map(|s| s.key).collect::<Vec<_>>().join(", ")
        )
    })
}

impl Spec {
    /// The accepted form, for error messages and `settings show`.
    pub fn accepted(&self) -> String {
        match self.kind {
            Kind::Choice(words) => words.join("|"),
            Kind::Int(lo, hi) => format!("an integer from {lo} to {hi}"),
            Kind::Duration(lo, hi) => {
                let lo = if lo == 0 {
                    "0".to_string()
                } else {
                    format_duration(lo)
                };
                format!(
                    "a duration from {lo} to {} such as 90s, 10m or 2h",
                    format_duration(hi)
                )
            }
            Kind::Label => "text of 1 to 64 characters without ':' or control characters".into(),
            Kind::Prefixes => {
                "carriers, none, or country codes / number prefixes of 1 to 6 digits separated by commas (1,44)".into()
            }
            Kind::Domains => "any, or domains separated by commas (example.com,example.org)".into(),
            Kind::Group => "none, or the name of a group (see `mfa-admin group list`)".into(),
            Kind::Email => "none, or an email address".into(),
            Kind::Events(names) => format!("none, or some of {} separated by commas", names.join(",")),
        }
    }

    /// Checks a value and returns its canonical form, or an error naming the key, the value
    /// and the accepted form.
    pub fn normalize(&self, value: &str) -> Result<String> {
        let bad = || {
            invalid!(
                "invalid value {value:?} for {}: expected {}",
                self.key,
                self.accepted()
            )
        };
        let v = value.trim();
        match self.kind {
            Kind::Choice(words) => {
                let lower = v.to_ascii_lowercase();
                words
                    .iter()
                    .find(|w| **w == lower)
                    .map(|w| w.to_string())
                    .ok_or_else(bad)
            }
            Kind::Int(lo, hi) => match v.parse::<u32>() {
                Ok(n) if (lo..=hi).contains(&n) => Ok(n.to_string()),
                _ => Err(bad()),
            },
            Kind::Duration(lo, hi) => match parse_duration(v) {
                Some(n) if (lo..=hi).contains(&n) => Ok(format_duration(n)),
                _ => Err(bad()),
            },
            Kind::Label => {
                if v.is_empty()
                    || v.chars().count() > 64
                    || v.chars().any(|c| c.is_control() || c == ':')
                {
                    Err(bad())
                } else {
                    Ok(v.to_string())
                }
            }
            Kind::Prefixes => {
                let lower = v.to_ascii_lowercase();
                if lower == "carriers" || lower == "none" {
                    return Ok(lower);
                }
                let mut list: Vec<&str> = lower.split(',').map(str::trim).collect();
                let good = |p: &&str| {
                    (1..=6).contains(&p.len())
                        && p.bytes().all(|b| b.is_ascii_digit())
                        && !p.starts_with('0')
                };
                if list.is_empty() || list.len() > 64 || !list.iter().all(good) {
                    return Err(bad());
                }
                list.sort_unstable();
                list.dedup();
                Ok(list.join(","))
            }
            Kind::Domains => {
                let lower = v.to_ascii_lowercase();
                if lower == "any" {
                    return Ok(lower);
                }
                let mut list = Vec::new();
                for d in lower.split(',').map(str::trim) {
                    list.push(crate::validate::domain("domain", d).map_err(|_| bad())?);
                }
                if list.is_empty() || list.len() > 64 {
                    return Err(bad());
                }
                list.sort_unstable();
                list.dedup();
                Ok(list.join(","))
            }
            Kind::Group => {
                if v.eq_ignore_ascii_case("none") {
                    return Ok("none".into());
                }
                crate::validate::group_name(v).map_err(|_| bad())
            }
            Kind::Email => {
                if v.eq_ignore_ascii_case("none") {
                    return Ok("none".into());
                }
                crate::contact::email(v).map_err(|_| bad())
            }
            Kind::Events(names) => {
                let lower = v.to_ascii_lowercase();
                if lower == "none" {
                    return Ok(lower);
                }
                let mut list: Vec<&str> = lower.split(',').map(str::trim).collect();
                if !list.iter().all(|e| names.contains(e)) {
                    return Err(bad());
                }
                // In the documented order, once each.
                list.sort_unstable_by_key(|e| names.iter().position(|n| n == e));
                list.dedup();
                Ok(list.join(","))
            }
        }
    }
}

/// Parses `90s`, `10m`, `2h`, `1d` (or `0`) into seconds.
pub fn parse_duration(text: &str) -> Option<u32> {
    if text == "0" {
        return Some(0);
    }
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    let scale = match unit {
        's' => 1,
        'm' => MIN,
        'h' => HOUR,
        'd' => DAY,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Formats seconds in the largest unit that divides them exactly (`600` → `10m`).
pub fn format_duration(secs: u32) -> String {
    match secs {
        0 => "0".into(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % HOUR == 0 => format!("{}h", s / HOUR),
        s if s % MIN == 0 => format!("{}m", s / MIN),
        s => format!("{s}s"),
    }
}

/// What happens to a user with no record or no usable factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unassigned {
    /// Let the rest of the stack decide (PAM_IGNORE).
    Allow,
    /// Refuse the login.
    Deny,
    /// Let the user register a contact at this login.
    Enroll,
}

/// What the module does when mfa itself cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Deny.
    Secure,
    /// Let the rest of the stack decide (PAM_IGNORE).
    Safe,
}

/// How much of the outcome goes to the auth log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Nothing.
    None,
    /// Only rejections.
    Rejects,
    /// Every outcome.
    All,
}

impl LogLevel {
    /// Parses `all`, `rejects` or `none`.
    pub fn parse(text: &str) -> Result<LogLevel> {
        match text {
            "all" => Ok(LogLevel::All),
            "rejects" => Ok(LogLevel::Rejects),
            "none" => Ok(LogLevel::None),
            other => Err(invalid!(
                "invalid log level {other:?}: expected all|rejects|none"
            )),
        }
    }

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::All => "all",
            LogLevel::Rejects => "rejects",
            LogLevel::None => "none",
        }
    }
}

/// The settings, typed. Durations are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub code_length: u32,
    pub code_ttl: u32,
    pub attempts: u32,
    pub repeat_window: u32,
    pub ftp_window: u32,
    pub self_enroll: bool,
    pub unassigned: Unassigned,
    pub fail_mode: FailMode,
    pub lockout_after: u32,
    pub lockout_for: u32,
    pub log_level: LogLevel,
    /// `None` means the host name.
    pub totp_issuer: Option<String>,
    pub log_keep_days: u32,
    pub totp_skew: u32,
    pub totp_self_enroll: bool,
    /// Seconds over which the user and destination send limits count.
    pub send_window: u32,
    /// Most messages per user per window (0 = no limit).
    pub send_limit_user: u32,
    /// Most messages per destination per window (0 = no limit).
    pub send_limit_destination: u32,
    /// Most messages per host per hour (0 = no limit).
    pub send_limit_host: u32,
    /// Where self-enrolled SMS may go.
    pub enroll_sms_countries: SmsPrefixes,
    /// Which email domains self-enrollment accepts; `None` = any.
    pub enroll_email_domains: Option<Vec<String>>,
    /// The group of users with no group of their own nor a followed Unix group.
    pub default_group: Option<String>,
    /// Seconds without a proven second factor after which the maintenance run disables a
    /// user (0 = never).
    pub inactive_after: u32,
    /// Where notices to the administrator go.
    pub admin_email: Option<String>,
    /// Events the administrator is told of (names from [`ADMIN_EVENTS`]).
    pub notify_admin: Vec<String>,
    /// Events the user is told of (names from [`USER_EVENTS`]).
    pub notify_user: Vec<String>,
}

/// Where self-enrolled SMS (and gateway phones) may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsPrefixes {
    /// The configured gateways' country code: `1` when a carrier gateway exists, else none.
    Carriers,
    /// These country codes or number prefixes (digits, without `+`); empty = none.
    List(Vec<String>),
}

impl SmsPrefixes {
    /// Whether self-enrollment may send to the `+E164` number `number` (a 10-digit gateway
    /// phone is `+1` followed by it). `have_carriers`: whether any gateway is configured.
    pub fn allows(&self, number: &str, have_carriers: bool) -> bool {
        let Some(digits) = number.strip_prefix('+') else {
            return false;
        };
        match self {
            SmsPrefixes::Carriers => have_carriers && digits.starts_with('1'),
            SmsPrefixes::List(list) => list.iter().any(|p| digits.starts_with(p.as_str())),
        }
    }

    /// What is allowed, for the message to the user: `+1`, `+1, +44`, or `no numbers`.
    pub fn describe(&self, have_carriers: bool) -> String {
        let list: Vec<String> = match self {
            SmsPrefixes::Carriers if have_carriers => vec!["+1".into()],
            SmsPrefixes::Carriers => Vec::new(),
            SmsPrefixes::List(l) => l.iter().map(|p| format!("+{p}")).collect(),
        };
        if list.is_empty() {
            "no numbers".into()
        } else {
            list.join(", ")
        }
    }
}

/// Whether self-enrollment accepts an email address in `domain` (lower case): any domain when
/// `allowed` is `None`, else one of the list or a subdomain of one.
pub fn domain_allowed(allowed: Option<&[String]>, domain: &str) -> bool {
    let Some(list) = allowed else {
        return true;
    };
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    list.iter().any(|d| {
        domain == *d
            || domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.ends_with('.'))
    })
}

impl Settings {
    /// Builds the typed view from stored `(key, canonical value)` pairs; absent keys take
    /// their defaults. A stored value that does not parse (a hand-edited database) is an error.
    pub fn from_stored(stored: &BTreeMap<String, String>) -> Result<Settings> {
        let get = |key: &str| -> Result<String> {
            let s = spec(key)?;
            match stored.get(key) {
                Some(v) => s
                    .normalize(v)
                    .map_err(|e| Error::Database(format!("stored setting is corrupt: {e}"))),
                None => Ok(s.default.to_string()),
            }
        };
        let num = |key: &str| -> Result<u32> {
            let v = get(key)?;
            v.parse::<u32>()
                .or_else(|_| parse_duration(&v).ok_or(()))
                .map_err(|()| Error::Database(format!("stored setting {key} is corrupt")))
        };
        Ok(Settings {
            enabled: get("enabled")? == "on",
            code_length: num("code_length")?,
            code_ttl: num("code_ttl")?,
            attempts: num("attempts")?,
            repeat_window: num("repeat_window")?,
            ftp_window: num("ftp_window")?,
            self_enroll: get("self_enroll")? == "yes",
            unassigned: match get("unassigned")?.as_str() {
                "allow" => Unassigned::Allow,
                "enroll" => Unassigned::Enroll,
                _ => Unassigned::Deny,
            },
            fail_mode: match get("fail_mode")?.as_str() {
                "safe" => FailMode::Safe,
                _ => FailMode::Secure,
            },
            lockout_after: num("lockout_after")?,
            lockout_for: num("lockout_for")?,
            log_level: LogLevel::parse(&get("log_level")?)?,
            totp_issuer: stored.get("totp_issuer").cloned(),
            log_keep_days: num("log_keep_days")?,
            totp_skew: num("totp_skew")?,
            totp_self_enroll: get("totp_self_enroll")? == "yes",
            send_window: num("send_window")?,
            send_limit_user: num("send_limit_user")?,
            send_limit_destination: num("send_limit_destination")?,
            send_limit_host: num("send_limit_host")?,
            enroll_sms_countries: match get("enroll_sms_countries")?.as_str() {
                "carriers" => SmsPrefixes::Carriers,
                "none" => SmsPrefixes::List(Vec::new()),
                list => SmsPrefixes::List(list.split(',').map(String::from).collect()),
            },
            enroll_email_domains: match get("enroll_email_domains")?.as_str() {
                "any" => None,
                list => Some(list.split(',').map(String::from).collect()),
            },
            default_group: Some(get("default_group")?).filter(|g| g != "none"),
            inactive_after: num("inactive_after")?,
            admin_email: Some(get("admin_email")?).filter(|a| a != "none"),
            notify_admin: events(&get("notify_admin")?),
            notify_user: events(&get("notify_user")?),
        })
    }

    /// Whether the administrator is to be told of `event` (and there is an address).
    pub fn notify_admin_of(&self, event: &str) -> bool {
        self.admin_email.is_some() && self.notify_admin.iter().any(|e| e == event)
    }

    /// Whether the user is to be told of `event`.
    pub fn notify_user_of(&self, event: &str) -> bool {
        self.notify_user.iter().any(|e| e == event)
    }

    /// The issuer shown in authenticator apps: the setting, or this host's name.
    pub fn totp_issuer(&self) -> String {
        self.totp_issuer.clone().unwrap_or_else(host_name)
    }
}

/// The event names of a stored `notify_*` value (`none`: none).
fn events(stored: &str) -> Vec<String> {
    if stored == "none" {
        return Vec::new();
    }
    stored.split(',').map(String::from).collect()
}

/// This machine's host name (`localhost` if it cannot be read).
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (text, secs) in [
            ("90s", 90),
            ("10m", 600),
            ("2h", 7200),
            ("1d", 86400),
            ("0", 0),
        ] {
            assert_eq!(parse_duration(text), Some(secs));
            assert_eq!(format_duration(secs), text);
        }
        assert_eq!(format_duration(120 * 60), "2h");
        for bad in ["", "m", "10", "-1m", "1.5h", "10x", "99999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges_enforced() {
        let ttl = spec("code_ttl").unwrap();
        assert_eq!(ttl.normalize("600s").unwrap(), "10m");
        assert!(ttl.normalize("30s").is_err());
        assert!(ttl.normalize("1000m").is_err());
        assert_eq!(spec("repeat_window").unwrap().normalize("0").unwrap(), "0");
        assert!(spec("repeat_window").unwrap().normalize("25h").is_err());
        assert!(spec("code_length").unwrap().normalize("9").is_err());
        assert!(spec("code_length").unwrap().normalize("3").is_err());
        assert_eq!(spec("enabled").unwrap().normalize("ON").unwrap(), "on");
        let e = spec("attempts")
            .unwrap()
            .normalize("0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("attempts") && e.contains("from 1 to 9"), "{e}");
        assert!(
            spec("nope")
                .unwrap_err()
                .to_string()
                .contains("known settings: enabled")
        );
    }

    #[test]
    fn defaults_parse() {
        let s = Settings::from_stored(&BTreeMap::new()).unwrap();
        assert!(!s.enabled);
        assert_eq!((s.code_length, s.code_ttl, s.attempts), (6, 600, 3));
        assert_eq!((s.lockout_after, s.lockout_for), (10, 900));
        assert_eq!(s.unassigned, Unassigned::Deny);
        assert_eq!(s.fail_mode, FailMode::Secure);
        assert!(!s.totp_issuer().is_empty());
        assert_eq!(s.send_window, 900);
        assert_eq!(
            (
                s.send_limit_user,
                s.send_limit_destination,
                s.send_limit_host
            ),
            (5, 5, 100)
        );
        assert_eq!(s.enroll_sms_countries, SmsPrefixes::Carriers);
        assert_eq!(s.enroll_email_domains, None);
    }

    #[test]
    fn enrollment_destinations() {
        let p = spec("enroll_sms_countries").unwrap();
        assert_eq!(p.normalize(" 44, 1 ,44").unwrap(), "1,44");
        assert_eq!(p.normalize("NONE").unwrap(), "none");
        for bad in ["", "+1", "0", "01", "1234567", "1,,2", "1;2", "x", "1\n2"] {
            assert!(p.normalize(bad).is_err(), "{bad:?}");
        }
        let d = spec("enroll_email_domains").unwrap();
        assert_eq!(
            d.normalize("Example.ORG,example.com").unwrap(),
            "example.com,example.org"
        );
        for bad in [
            "",
            "a..b",
            "exa mple.com",
            "x.com,",
            "@x.com",
            "x.com\nevil.org",
        ] {
            assert!(d.normalize(bad).is_err(), "{bad:?}");
        }
        let mut stored = BTreeMap::new();
        stored.insert("enroll_sms_countries".to_string(), "1,44".to_string());
        stored.insert(
            "enroll_email_domains".to_string(),
            "example.com".to_string(),
        );
        let s = Settings::from_stored(&stored).unwrap();
        assert!(s.enroll_sms_countries.allows("+447700900123", false));
        assert!(!s.enroll_sms_countries.allows("+882123456789", true));
        assert!(!s.enroll_sms_countries.allows("+2348012345678", true));
        assert!(!s.enroll_sms_countries.allows("12025550100", true));
        assert!(SmsPrefixes::Carriers.allows("+12025550100", true));
        assert!(!SmsPrefixes::Carriers.allows("+12025550100", false));
        assert!(!SmsPrefixes::Carriers.allows("+447700900123", true));
        let doms = s.enroll_email_domains.as_deref();
        assert!(domain_allowed(doms, "example.com"));
        assert!(domain_allowed(doms, "mail.example.com"));
        assert!(!domain_allowed(doms, "badexample.com"));
        assert!(!domain_allowed(doms, "example.com.evil.org"));
        assert!(domain_allowed(None, "anything.example"));
    }
}
