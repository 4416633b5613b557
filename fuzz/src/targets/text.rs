//! Targets for the parsers of text an administrator (or a hand-edited file) gives: the
//! configuration, addresses and ranges, templates, contact forms, setting values. No files:
//! the input goes straight to the public function. Multi-field inputs are split at NUL bytes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use mfa_core::config::Config;
use mfa_core::contact::{self, Channel, Contact};
use mfa_core::net::{self, IpRange};
use mfa_core::settings::{self, SPECS, Settings};
use mfa_core::template::{self, TEMPLATES, Values};
use mfa_core::validate;

use super::{Harness, fail, fields, join, tokens};

/// The configuration file.
struct ConfigTarget;

pub fn config(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(ConfigTarget))
}

const SAMPLE_CONFIG: &str = include_str!("../../../etc/mfa.toml");

impl Harness for ConfigTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        let full = "[paths]\ndatabase = \"/var/lib/mfa/mfa.db\"\nspool = \"/var/spool/mfa\"\n\
            runtime = \"/run/mfa\"\n\n[smtp]\nhost = \"mail.example.com\"\nport = 587\n\
            tls = \"starttls\"\nusername = \"mfa\"\npassword_file = \"/etc/mfa/smtp-password\"\n\
            from = \"mfa@example.com\"\ntimeout = \"10s\"\n\n[sms]\nprovider = \"twilio\"\n\
            account_sid = \"AC123\"\nauth_token_file = \"/etc/mfa/twilio-token\"\n\
            from = \"+14155550100\"\n\n[sender]\nuser = \"mfa\"\nworkers = 4\n\
            destination_limit = 5\ndestination_window = \"15m\"\nhourly_limit = 300\n";
        vec![
            Config::default().to_toml().into_bytes(),
            SAMPLE_CONFIG.as_bytes().to_vec(),
            full.as_bytes().to_vec(),
        ]
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "[paths]",
            "[smtp]",
            "[sms]",
            "[sender]",
            "database",
            "spool",
            "runtime",
            "host",
            "port",
            "tls",
            "ca_file",
            "username",
            "password_file",
            "from",
            "timeout",
            "provider",
            "twilio",
            "telesign",
            "account_sid",
            "auth_token_file",
            "messaging_service_sid",
            "customer_id",
            "api_key_file",
            "base_url",
            "workers",
            "user",
            "destination_limit",
            "destination_window",
            "hourly_limit",
            "\"none\"",
            "\"tls\"",
            " = ",
            "\"\"",
            "\"/\"",
            "[[",
            "]]",
            "{",
            "}",
            "'''",
            "\"\"\"",
            "\\u0000",
            "1e400",
            "-0",
            "0x7fffffff",
            "inf",
            "nan",
            "1979-05-27T07:32:00Z",
            "#",
        ])
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let text = String::from_utf8_lossy(input);
        let path = Path::new("/etc/mfa/mfa.toml");
        let Ok(c) = Config::parse(path, &text) else {
            return Ok(false);
        };
        // What init would write must read back as the same configuration.
        let again = Config::parse(path, &c.to_toml())
            .map_err(|e| format!("to_toml of an accepted config does not parse: {e}"))?;
        if again != c {
            return fail(format!(
                "to_toml round trip changed the config: {c:?} -> {again:?}"
            ));
        }
        if let Ok(secs) = c.sender.window_secs()
            && !(1..=mfa_core::config::MAX_DESTINATION_WINDOW).contains(&secs)
        {
            return fail(format!("window_secs accepted {secs}"));
        }
        Ok(true)
    }
}

/// Addresses, CIDRs and ranges: `selector NUL text`.
struct NetTarget;

pub fn net(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(NetTarget))
}

impl Harness for NetTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        [
            "10.0.0.0/8",
            "192.0.2.7",
            "10.2.2.0-10.2.2.254",
            "2001:db8::/32",
            "2001:db8::1-2001:db8::ff",
            "[fe80::1%eth0]",
            "::ffff:10.1.2.3",
            "0.0.0.0/0",
            "::/0",
            "255.255.255.255/32",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "/", "-", "::", ":", ".", "%", "[", "]", "ffff:", "::ffff:", "/32", "/128", "/0",
            "/33", "/129", "255", "0", "00", "ff", "1.2.3.4",
        ])
    }

    fn max_len(&self) -> usize {
        128
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let text = String::from_utf8_lossy(input);
        let mut accepted = false;
        if let Ok(a) = net::parse_address(&text) {
            accepted = true;
            let back = net::parse_address(&a.to_string())
                .map_err(|e| format!("address {a} does not parse back: {e}"))?;
            if back != a {
                return fail(format!("address {text:?} -> {a} -> {back}"));
            }
        }
        for (how, parsed) in [
            ("parse_any", IpRange::parse_any(&text)),
            ("parse_cidr", IpRange::parse_cidr(&text)),
            ("parse_range", IpRange::parse_range(&text)),
        ] {
            let Ok(r) = parsed else { continue };
            accepted = true;
            check_range(&text, how, &r)?;
        }
        Ok(accepted)
    }
}

fn check_range(text: &str, how: &str, r: &IpRange) -> Result<(), String> {
    let shown = r.to_string();
    let back = IpRange::parse_any(&shown)
        .map_err(|e| format!("{how}({text:?}) shows as {shown:?}, which does not parse: {e}"))?;
    if (back.first(), back.last()) != (r.first(), r.last()) {
        return Err(format!("{how}({text:?}) -> {shown} -> {back}"));
    }
    if !r.contains(r.first()) || !r.contains(r.last()) {
        return Err(format!(
            "{how}({text:?}) = {shown} does not contain its own ends"
        ));
    }
    let keys = IpRange::from_keys(
        r.family().number(),
        &net::addr_key(r.first()),
        &net::addr_key(r.last()),
    );
    if keys.map(|k| (k.first(), k.last())) != Some((r.first(), r.last())) {
        return Err(format!(
            "{how}({text:?}) = {shown} does not survive its stored keys"
        ));
    }
    let outside = |a: IpAddr| r.contains(a);
    if let (IpAddr::V4(f), IpAddr::V4(l)) = (r.first(), r.last()) {
        let below = u32::from(f).checked_sub(1).map(|b| IpAddr::V4(b.into()));
        let above = u32::from(l).checked_add(1).map(|b| IpAddr::V4(b.into()));
        if below.is_some_and(outside) || above.is_some_and(outside) {
            return Err(format!("{shown} contains an address outside its ends"));
        }
    }
    Ok(())
}

/// Templates: `name NUL text`.
struct TemplateTarget;

pub fn template(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(TemplateTarget))
}

impl Harness for TemplateTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut s: Vec<Vec<u8>> = TEMPLATES.iter().map(|(n, t)| join(&[n, t])).collect();
        s.push(join(&["passcode-body", "{{literal}} {code} }} {{"]));
        s
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "{code}",
            "{prefix}",
            "{user}",
            "{host}",
            "{minutes}",
            "{{",
            "}}",
            "{",
            "}",
            "passcode-subject",
            "passcode-body",
            "test-body",
            "\n",
            "\t",
            "\r",
            "é",
            "\u{202e}",
        ])
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let f = fields(input, 2);
        let (name, text) = (&f[0], &f[1]);
        if template::validate(name, text).is_err() {
            // Rendering must not care whether the text was validated.
            let _ = template::render(text, &values("{code}"));
            return Ok(false);
        }
        let out = template::render(text, &values("CODE-9173"));
        if name == "passcode-body" && !out.contains("CODE-9173") {
            return fail(format!(
                "validated passcode-body {text:?} renders without the code"
            ));
        }
        if !text.contains(['{', '}']) && out != *text {
            return fail(format!("text without braces {text:?} rendered as {out:?}"));
        }
        if name.ends_with("-subject") && out.contains(['\r', '\n']) {
            return fail(format!("a subject renders over several lines: {out:?}"));
        }
        Ok(true)
    }
}

fn values(code: &str) -> Values<'_> {
    Values {
        prefix: "V",
        code,
        user: "ann",
        host: "web1",
        minutes: 10,
    }
}

/// Contact forms: `selector NUL text NUL carrier`.
struct ContactTarget;

pub fn contact(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(ContactTarget))
}

impl Harness for ContactTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![
            join(&["e", "John.Doe@Example.COM", ""]),
            join(&["p", "(555) 201-0199", "Verizon"]),
            join(&["p", "+1 555.201.0199", "AT&T"]),
            join(&["s", "+44 7700 900123", ""]),
            join(&["c", "sms-gateway", ""]),
            join(&["d", "vtext.com.", ""]),
            join(&["u", "ann", "work phone"]),
        ]
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "@",
            ".",
            "..",
            "+",
            "+1",
            "-",
            "(",
            ")",
            " ",
            "\r\n",
            "Bcc: ",
            "<",
            ">",
            ",",
            "example.com",
            "xn--",
            "email",
            "sms",
            "sms-gateway",
            "é",
            "0",
            "1",
            "5552010199",
        ])
    }

    fn max_len(&self) -> usize {
        600
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let f = fields(input, 3);
        let (text, carrier) = (&f[1], &f[2]);
        let header_safe = |s: &str| !s.chars().any(|c| c.is_control() || "<>,;\" ".contains(c));
        let mut accepted = false;
        if let Ok(e) = contact::email(text) {
            accepted = true;
            if contact::email(&e).ok().as_ref() != Some(&e) || !header_safe(&e) {
                return fail(format!(
                    "email {text:?} -> {e:?}: not canonical or header-unsafe"
                ));
            }
            let m = Contact::email(text)
                .map(|c| c.masked())
                .map_err(|e| e.to_string())?;
            if m.contains(&e) && e.len() > 8 {
                return fail(format!("masked email {m:?} shows the address"));
            }
        }
        if let Ok(p) = contact::phone(text) {
            accepted = true;
            if p.len() != 10 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return fail(format!("phone {text:?} -> {p:?} is not 10 digits"));
            }
            if contact::phone(&p).ok().as_ref() != Some(&p) {
                return fail(format!("phone {p:?} is not canonical"));
            }
            let c = Contact::phone(text, carrier).map_err(|e| e.to_string())?;
            let _ = c.masked();
        }
        if let Ok(s) = contact::e164(text) {
            accepted = true;
            let digits = s.strip_prefix('+').unwrap_or("x");
            if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return fail(format!("e164 {text:?} -> {s:?}"));
            }
            if contact::e164(&s).ok().as_ref() != Some(&s) {
                return fail(format!("e164 {s:?} is not canonical"));
            }
            let _ = Contact::sms(text).map(|c| c.masked());
        }
        if let Ok(ch) = Channel::parse(text) {
            accepted = true;
            if ch.as_str() != text {
                return fail(format!("channel {text:?} shows as {}", ch.as_str()));
            }
        }
        if let Ok(d) = validate::domain("domain", text) {
            accepted = true;
            if validate::domain("domain", &d).ok().as_ref() != Some(&d) || !header_safe(&d) {
                return fail(format!("domain {text:?} -> {d:?}"));
            }
        }
        for (what, res) in [
            ("user_name", validate::user_name(text)),
            ("service", validate::service(text)),
            ("method", validate::method(text)),
            ("label", validate::label("label", carrier, 64)),
        ] {
            if let Ok(v) = res {
                accepted = true;
                if v.chars().any(char::is_control) {
                    return fail(format!("{what} accepted control characters: {v:?}"));
                }
            }
        }
        Ok(accepted)
    }
}

/// Setting values: `key selector NUL value`, and durations.
struct SettingsTarget;

pub fn settings(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(SettingsTarget))
}

impl Harness for SettingsTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        SPECS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut v = vec![u8::try_from(i).unwrap_or(0), 0];
                v.extend_from_slice(s.default.as_bytes());
                v
            })
            .collect()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "s",
            "m",
            "h",
            "d",
            "0",
            "4294967295",
            "4294967296",
            "90",
            "ON",
            "off",
            "yes",
            "no",
            "allow",
            "deny",
            "enroll",
            "safe",
            "secure",
            "all",
            "rejects",
            "none",
            ":",
            " ",
            "\u{1f512}",
        ])
    }

    fn max_len(&self) -> usize {
        200
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let sel = input.first().copied().unwrap_or(0);
        let value = String::from_utf8_lossy(input.get(2..).unwrap_or_default()).into_owned();
        // Durations: parse, format, parse again.
        if let Some(n) = settings::parse_duration(&value) {
            let shown = settings::format_duration(n);
            if settings::parse_duration(&shown) != Some(n) {
                return fail(format!("duration {value:?} = {n}s shows as {shown:?}"));
            }
        }
        if input.len() >= 4 {
            let n = u32::from_le_bytes([input[0], input[1], input[2], input[3]]);
            let shown = settings::format_duration(n);
            if settings::parse_duration(&shown) != Some(n) {
                return fail(format!(
                    "format_duration({n}) = {shown:?} does not parse back"
                ));
            }
        }
        let spec = &SPECS[usize::from(sel) % SPECS.len()];
        let _ = settings::spec(&value);
        let Ok(v) = spec.normalize(&value) else {
            return Ok(false);
        };
        if spec.normalize(&v).ok().as_ref() != Some(&v) {
            return fail(format!("{}: {value:?} -> {v:?} is not canonical", spec.key));
        }
        // A value the CLI accepts is stored as is: the module must be able to load it.
        let stored = BTreeMap::from([(spec.key.to_string(), v.clone())]);
        if let Err(e) = Settings::from_stored(&stored) {
            return fail(format!(
                "{} = {v:?} is accepted but cannot be loaded: {e}",
                spec.key
            ));
        }
        // A hand-edited database: any value for any key is an error or settings, never a panic.
        let raw = BTreeMap::from([(spec.key.to_string(), value)]);
        let _ = Settings::from_stored(&raw);
        Ok(true)
    }
}
