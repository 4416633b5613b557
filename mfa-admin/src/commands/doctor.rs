//! `doctor`: diagnoses an installation. Each check says ok, warn or fail and why; any fail
//! makes the exit status 1.
//!
//! Checks: the configuration file and its permissions; the database (permissions, integrity,
//! schema); the global switch; the spool; the sender's heartbeat; the PAM stacks of sshd,
//! login, su and sudo (pam_mfa present, after a primary module, not `sufficient`); and sshd's
//! `UsePAM` and `KbdInteractiveAuthentication`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mfa_core::config::check_not_writable_by_others;
use mfa_core::spool::{self, HEARTBEAT_STALE_SECS};
use mfa_core::store::{SCHEMA_VERSION, rules};
use mfa_core::{Error, Result};
use serde::Serialize;

use super::Ctx;
use crate::output::{json, table};

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    /// ok, warn or fail.
    status: &'static str,
    detail: String,
}

struct Report(Vec<Check>);

impl Report {
    fn add(&mut self, check: impl Into<String>, status: &'static str, detail: impl Into<String>) {
        self.0.push(Check {
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// Modules that prove the first factor (a password, a directory login).
const PRIMARY: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_userdb.so",
];

pub fn run(ctx: &Ctx, pam_dir: &Path, sshd_config: &Path) -> Result<()> {
    let mut r = Report(Vec::new());
    check_config(&mut r, &ctx.config_path);
    check_database(&mut r, ctx);
    let spool_dir = &ctx.config.paths.spool;
    match spool::check(spool_dir) {
        Ok(()) => match std::fs::metadata(spool_dir) {
            Ok(m) if m.mode() & 0o002 != 0 => r.add(
                "spool",
                "fail",
                format!("{} is writable by everyone", spool_dir.display()),
            ),
            _ => r.add("spool", "ok", format!("{} is usable", spool_dir.display())),
        },
        Err(e) => r.add("spool", "fail", e.to_string()),
    }
    match spool::heartbeat_age(&ctx.config.paths.runtime, std::time::SystemTime::now()) {
        Some(age) if age <= HEARTBEAT_STALE_SECS => {
            r.add("sender", "ok", format!("heartbeat {age} s old"))
        }
        Some(age) => r.add(
            "sender",
            "fail",
            format!(
                "heartbeat {age} s old: mfa-sender is not running; passcode logins follow fail_mode"
            ),
        ),
        None => r.add(
            "sender",
            "fail",
            "no heartbeat: mfa-sender has not run; passcode logins follow fail_mode",
        ),
    }
    if ctx.config.smtp.is_some() || ctx.config.sms.is_some() {
        check_transports(&mut r, &ctx.config_path);
    } else {
        r.add(
            "transports",
            "warn",
            "no [smtp] or [sms] section: the sender cannot deliver anything",
        );
    }
    let pubkey_mfa = check_sshd(&mut r, sshd_config);
    for service in ["sshd", "login", "su", "sudo"] {
        check_pam(&mut r, pam_dir, service, service == "sshd" && pubkey_mfa);
    }

    let failed = r.0.iter().filter(|c| c.status == "fail").count();
    if ctx.json {
        json(&r.0)?;
    } else {
        let rows =
            r.0.iter()
                .map(|c| vec![c.status.to_uppercase(), c.check.clone(), c.detail.clone()])
                .collect();
        table(&["STATUS", "CHECK", "DETAIL"], rows, "");
    }
    if failed > 0 {
        return Err(Error::Failed(format!("{failed} check(s) failed")));
    }
    Ok(())
}

/// Runs `mfa-sender --check` (the binary next to this one, else on PATH): it connects to each
/// transport and verifies the credentials, which only the sender can read.
fn check_transports(r: &mut Report, config: &Path) {
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("mfa-sender")));
    let bin = match sibling.filter(|p| p.exists()) {
        Some(p) => p,
        None => PathBuf::from("mfa-sender"),
    };
    let out = match std::process::Command::new(&bin)
        .arg("--config")
        .arg(config)
        .arg("--check")
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            return r.add(
                "transports",
                "warn",
                format!("cannot run {}: {e}", bin.display()),
            );
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut any = false;
    for line in text.lines() {
        let (status, rest) = match line.split_once(char::is_whitespace) {
            Some(("OK", rest)) => ("ok", rest.trim()),
            Some(("FAIL", rest)) => ("fail", rest.trim()),
            _ => continue,
        };
        any = true;
        let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
        r.add(format!("transport {name}"), status, detail);
    }
    if !any {
        let err = String::from_utf8_lossy(&out.stderr);
        r.add(
            "transports",
            "fail",
            format!("mfa-sender --check: {}", err.trim()),
        );
    }
}

fn check_config(r: &mut Report, path: &Path) {
    if !path.exists() {
        r.add(
            "config",
            "warn",
            format!(
                "{} does not exist: built-in defaults are used",
                path.display()
            ),
        );
        return;
    }
    match check_not_writable_by_others(path) {
        Ok(()) => r.add(
            "config",
            "ok",
            format!(
                "{} is owned by root and not writable by others",
                path.display()
            ),
        ),
        Err(e) => r.add("config", "fail", e.to_string()),
    }
}

fn check_database(r: &mut Report, ctx: &Ctx) {
    let db = &ctx.config.paths.database;
    let mut store = match ctx.store() {
        Ok(s) => s,
        Err(e) => return r.add("database", "fail", e.to_string()),
    };
    // What the PAM module reads instead of the database (mfa_core::snapshot).
    let snap = mfa_core::snapshot::path_for(db);
    match store.snapshot_matches() {
        Ok(true) => r.add(
            "policy snapshot",
            "ok",
            format!("{} matches the database", snap.display()),
        ),
        Ok(false) => match store.rebuild_snapshot() {
            Ok(()) => r.add(
                "policy snapshot",
                "warn",
                format!(
                    "{} did not match the database (was it changed without mfa-admin?); rewritten",
                    snap.display()
                ),
            ),
            Err(e) => r.add("policy snapshot", "fail", format!("cannot rewrite it: {e}")),
        },
        Err(e) => r.add("policy snapshot", "fail", e.to_string()),
    }
    match std::fs::metadata(db) {
        Ok(m) if m.mode() & 0o077 != 0 => r.add(
            "database permissions",
            "warn",
            format!(
                "{} has mode {:04o}: others can read contacts; chmod 600 {}",
                db.display(),
                m.mode() & 0o7777,
                db.display()
            ),
        ),
        Ok(_) => r.add(
            "database permissions",
            "ok",
            format!("{} is private", db.display()),
        ),
        Err(e) => r.add("database permissions", "fail", e.to_string()),
    }
    match store.integrity_check() {
        Ok(p) if p.is_empty() => r.add(
            "database",
            "ok",
            format!("integrity ok, schema version {SCHEMA_VERSION}"),
        ),
        Ok(p) => r.add(
            "database",
            "fail",
            format!("integrity check: {}", p.join("; ")),
        ),
        Err(e) => r.add("database", "fail", e.to_string()),
    }
    match rules::settings(store.conn()) {
        Ok(s) if s.enabled => r.add("enabled", "ok", "2FA is on"),
        Ok(_) => r.add(
            "enabled",
            "warn",
            "2FA is off globally: `mfa-admin settings set enabled=on`",
        ),
        Err(e) => r.add("enabled", "fail", e.to_string()),
    }
}

/// One auth line of a PAM file: control and module (an `@include` is its own line).
#[derive(Debug)]
struct AuthLine {
    control: String,
    module: String,
}

fn auth_lines(pam_dir: &Path, name: &str, depth: usize) -> Option<Vec<AuthLine>> {
    let text = std::fs::read_to_string(pam_dir.join(name)).ok()?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("@include"), Some(inc)) if depth < 3 => {
                out.extend(auth_lines(pam_dir, inc, depth + 1).unwrap_or_default())
            }
            (Some(kind), Some(rest)) if kind.trim_start_matches('-') == "auth" => {
                // A bracketed control may contain spaces: [success=1 default=ignore].
                let (control, module) = if rest.starts_with('[') {
                    let joined = line.split_once('[').map_or("", |x| x.1);
                    let (ctl, after) = joined.split_once(']').unwrap_or((joined, ""));
                    (
                        format!("[{ctl}]"),
                        after
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    )
                } else {
                    (
                        rest.to_string(),
                        words.next().unwrap_or_default().to_string(),
                    )
                };
                out.push(AuthLine { control, module });
            }
            _ => {}
        }
    }
    Some(out)
}

fn base(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

fn check_pam(r: &mut Report, pam_dir: &Path, service: &str, pubkey_first: bool) {
    let what = format!("pam.d/{service}");
    let Some(lines) = auth_lines(pam_dir, service, 0) else {
        return r.add(
            what,
            "warn",
            format!("{} not found", pam_dir.join(service).display()),
        );
    };
    let mfa = lines.iter().position(|l| base(&l.module) == "pam_mfa.so");
    let primary = lines
        .iter()
        .position(|l| PRIMARY.contains(&base(&l.module)));
    match (mfa, primary) {
        (None, _) => r.add(what, "warn", "pam_mfa is not in the auth stack: no second factor here"),
        (Some(m), _) if lines[m].control == "sufficient" => {
            r.add(what, "fail", "pam_mfa is `sufficient`: it would let a user in on the second factor alone; use `required`")
        }
        (Some(m), Some(p)) if m > p && lines[p].control == "required" => r.add(
            what,
            "warn",
            format!(
                "{} is `required`: a wrong password still reaches pam_mfa, which sends a passcode to anyone who knows a user name; make it `requisite` (Debian's common-auth already stops at pam_deny)",
                base(&lines[p].module)
            ),
        ),
        (Some(m), Some(p)) if m > p => r.add(what, "ok", format!("pam_mfa ({}) follows {}", lines[m].control, base(&lines[p].module))),
        (Some(_), Some(p)) => r.add(what, "fail", format!("pam_mfa comes before {}: the second factor would be asked before the password", base(&lines[p].module))),
        (Some(_), None) if pubkey_first => r.add(what, "ok", "pam_mfa after sshd's publickey (AuthenticationMethods publickey,keyboard-interactive)"),
        (Some(_), None) => r.add(what, "fail", "pam_mfa has no primary module (pam_unix, pam_sss, ...) before it: the second factor would be the only one"),
    }
}

/// Reads sshd_config the way sshd does (first value wins, `Include` expanded); returns
/// whether AuthenticationMethods puts publickey before keyboard-interactive.
fn check_sshd(r: &mut Report, path: &Path) -> bool {
    let mut values: Vec<(String, String)> = Vec::new();
    if !read_sshd(path, &mut values, 0) {
        r.add(
            "sshd_config",
            "warn",
            format!("{} not found", path.display()),
        );
        return false;
    }
    let get = |k: &str| {
        values
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    match get("usepam") {
        Some(v) if v == "yes" => r.add("sshd UsePAM", "ok", "UsePAM yes"),
        _ => r.add(
            "sshd UsePAM",
            "fail",
            "sshd does not use PAM: set `UsePAM yes`",
        ),
    }
    let kbd =
        get("kbdinteractiveauthentication").or_else(|| get("challengeresponseauthentication"));
    match kbd.as_deref() {
        Some("yes") | None => r.add(
            "sshd KbdInteractiveAuthentication",
            "ok",
            "keyboard-interactive is enabled",
        ),
        Some(_) => r.add(
            "sshd KbdInteractiveAuthentication",
            "fail",
            "set `KbdInteractiveAuthentication yes`: the passcode prompt needs it",
        ),
    }
    get("authenticationmethods").is_some_and(|m| {
        m.split_whitespace()
            .any(|l| l.starts_with("publickey,keyboard-interactive"))
    })
}

fn read_sshd(path: &Path, values: &mut Vec<(String, String)>, depth: usize) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or((line, ""));
        let key = key.to_ascii_lowercase();
        let value = value
            .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
            .trim()
            .to_string();
        if key == "match" {
            break; // settings after Match apply only to some connections
        }
        if key == "include" && depth < 4 {
            for pattern in value.split_whitespace() {
                for f in expand(path, pattern) {
                    read_sshd(&f, values, depth + 1);
                }
            }
            continue;
        }
        values.push((key, value));
    }
    true
}

/// Expands an Include pattern: relative to /etc/ssh, with `*` only in the file name.
fn expand(config: &Path, pattern: &str) -> Vec<PathBuf> {
    let p = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        config
            .parent()
            .unwrap_or(Path::new("/etc/ssh"))
            .join(pattern)
    };
    let (Some(dir), Some(name)) = (
        p.parent(),
        p.file_name().map(|n| n.to_string_lossy().into_owned()),
    ) else {
        return vec![];
    };
    if !name.contains('*') {
        return vec![p.clone()];
    }
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.file_name().is_some_and(|n| {
                        n.to_string_lossy().starts_with(pre) && n.to_string_lossy().ends_with(post)
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
