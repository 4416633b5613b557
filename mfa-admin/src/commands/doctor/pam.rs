//! The PAM side: every service file under the pam.d directory whose auth stack runs pam_mfa
//! (directly or through `@include`, `include` or `substack`), each reported once with the
//! rule that governs it (its own, its family's — `sudo-i` follows `sudo` — or `*`). For
//! those: each module file exists, is root's and loads; pam_mfa follows a password module,
//! is not `sufficient`, is not reached after a wrong password and cannot be skipped. Coverage:
//! a service whose own or family rule requires a second factor but whose stack lacks
//! pam_mfa fails; a login service (sshd, login, su, su-l, sudo, sudo-i) without pam_mfa is a
//! warning; a rule naming a service without a pam.d file is a warning. The directory and its
//! files must be root's alone (not writable by group or others). A one-password stack
//! (`oneword=before` ... `oneword=after`) is judged by [`oneword`] instead of the one-line
//! order, and every pam_mfa line's arguments as the module parses them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mfa_core::service::governing;

use super::Report;
use super::callers::Stacked;
use super::flow::{self, PRIMARY};
use super::module;
use super::oneword;
use super::stack::{self, Line, Target};

/// Services an administrator logs in through; each is reported even without pam_mfa.
const LOGIN_SERVICES: &[&str] = &["sshd", "login", "su", "su-l", "sudo", "sudo-i"];
/// Of those, the ones whose absence is worth a warning (su-l and sudo-i are Debian's).
const EXPECTED_FILES: &[&str] = &["sshd", "login", "su", "sudo"];

/// The rules doctor needs from the database.
#[derive(Debug, Default)]
pub struct Rules {
    /// 2FA is on globally.
    pub enabled: bool,
    /// Method by service (`*` included).
    pub methods: BTreeMap<String, String>,
    /// Services with at least one trusted-network rule.
    pub networked: BTreeSet<String>,
}

/// Which rule governs a service and what it asks.
struct Governing {
    /// The service whose rule applies, or `*`.
    rule: String,
    method: String,
    /// A second factor is asked (2FA on, method not none).
    requires: bool,
}

impl Rules {
    fn has_rule(&self, s: &str) -> bool {
        s != "*" && (self.methods.contains_key(s) || self.networked.contains(s))
    }

    fn governing(&self, service: &str) -> Governing {
        let g = governing(service, |s| self.has_rule(s));
        let star = || {
            self.methods
                .get("*")
                .cloned()
                .unwrap_or_else(|| "none".into())
        };
        let (rule, method) = if self.has_rule(g) {
            (
                g.to_string(),
                self.methods.get(g).cloned().unwrap_or_else(star),
            )
        } else {
            ("*".to_string(), star())
        };
        let requires = self.enabled && method != "none";
        Governing {
            rule,
            method,
            requires,
        }
    }

    fn describe(&self, service: &str, g: &Governing) -> String {
        let off = if self.enabled {
            ""
        } else {
            "; 2FA is off globally"
        };
        if g.rule == "*" {
            format!("follows * ({}){off}", g.method)
        } else if g.rule == service {
            format!("rule {} ({}){off}", g.rule, g.method)
        } else {
            format!("follows the rule of {} ({}){off}", g.rule, g.method)
        }
    }
}

/// Backup and editor files that libpam would read as services nobody uses.
fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [
            ".dpkg-old",
            ".dpkg-dist",
            ".dpkg-new",
            ".dpkg-bak",
            ".ucf-old",
            ".ucf-dist",
            ".ucf-new",
            ".bak",
            ".orig",
            ".rej",
            ".swp",
        ]
        .iter()
        .any(|s| name.ends_with(s))
}

/// One thing found about a service's stack: ok, warn or fail, and what.
pub struct Finding {
    pub status: &'static str,
    pub text: String,
}

fn rank(s: &str) -> u8 {
    match s {
        "fail" => 2,
        "warn" => 1,
        _ => 0,
    }
}

/// Fails when the pam.d directory or a file in it can be written by someone other than root:
/// they could take pam_mfa out of any stack (or put pam_permit in).
fn writable_by_others(r: &mut Report, pam_dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let mut bad = Vec::new();
    let files = std::fs::read_dir(pam_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    for p in std::iter::once(pam_dir.to_path_buf()).chain(files) {
        if let Ok(m) = std::fs::symlink_metadata(&p)
            && !m.file_type().is_symlink()
            && (m.uid() != 0 || m.mode() & 0o022 != 0)
        {
            bad.push(format!(
                "{} (owner uid {}, mode {:04o})",
                p.display(),
                m.uid(),
                m.mode() & 0o7777
            ));
        }
    }
    if bad.is_empty() {
        r.add(
            "pam.d files",
            "ok",
            format!("{} and its files are root's alone", pam_dir.display()),
        );
    } else {
        r.add(
            "pam.d files",
            "fail",
            format!(
                "{}: someone other than root can change them, and so take the second factor out \
                 of any stack; chown root: and chmod go-w each",
                bad.join(", ")
            ),
        );
    }
}

/// Checks every service file; `rules` is None when the database could not be read.
/// Returns the files whose auth stack runs pam_mfa.
pub fn check(
    r: &mut Report,
    pam_dir: &Path,
    rules: Option<&Rules>,
    sshd_pubkey_first: bool,
) -> Vec<Stacked> {
    let mut stacked = Vec::new();
    let rd = match std::fs::read_dir(pam_dir) {
        Ok(rd) => rd,
        Err(e) => {
            r.add(
                "pam.d",
                "fail",
                format!("cannot list {}: {e}", pam_dir.display()),
            );
            return stacked;
        }
    };
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !ignored(n) && !n.starts_with("common-"))
        .collect();
    names.sort();
    writable_by_others(r, pam_dir);
    let dirs = module::module_dirs();
    let mut modules: BTreeMap<String, Result<PathBuf, String>> = BTreeMap::new();
    let no_rules = Rules::default();
    for name in &names {
        let st = match stack::read(pam_dir, name) {
            Ok(st) => st,
            Err(e) => {
                r.add(format!("pam.d/{name}"), "warn", e);
                continue;
            }
        };
        let g = rules.map(|x| x.governing(name));
        let rule_text = match (&g, rules) {
            (Some(g), Some(rs)) => rs.describe(name, g),
            _ => "rules unknown (the database could not be read)".to_string(),
        };
        let what = format!("pam.d/{name}");
        if !st.lines.iter().any(Line::is_mfa) {
            let requires = g.as_ref().is_some_and(|g| g.requires);
            let own = g.as_ref().is_some_and(|g| g.rule != "*");
            if own && requires {
                r.add(
                    what,
                    "fail",
                    format!(
                        "{rule_text}, but its auth stack lacks pam_mfa: {name} never asks for a second factor; add `auth required pam_mfa.so` after the password (e.g. after `@include common-auth`), {}",
                        if g.as_ref().is_some_and(|g| g.rule == *name) {
                            format!("or `mfa-admin service set {name} none` if it needs none")
                        } else {
                            format!("or give {name} its own rule (`mfa-admin service set {name} none`)")
                        }
                    ),
                );
            } else if own && g.as_ref().is_some_and(|g| g.method == "none") {
                r.add(
                    what,
                    "ok",
                    format!("{rule_text}: no second factor asked, and pam_mfa is not stacked"),
                );
            } else if LOGIN_SERVICES.contains(&name.as_str()) {
                let why = if requires {
                    format!(
                        "{rule_text}, but pam_mfa is not in the auth stack: no second factor for {name}"
                    )
                } else {
                    format!("{rule_text}; pam_mfa is not in the auth stack: no second factor here")
                };
                r.add(what, "warn", why);
            }
            continue;
        }
        let mfa = || st.lines.iter().filter(|l| l.is_mfa());
        stacked.push(Stacked {
            file: name.clone(),
            services: mfa()
                .map(|l| l.arg("service").unwrap_or(name).to_string())
                .collect(),
            helpers: mfa()
                .filter_map(|l| l.arg("helper"))
                .map(str::to_string)
                .collect(),
        });
        let mut findings = Vec::new();
        // The pam-auth-update profile (common-auth) and a line of the service's own, say:
        // each instance asks for a code of its own.
        // A one-password stack's oneword=before/after pair is one second factor.
        let mfa_lines: Vec<&str> = st
            .lines
            .iter()
            .filter(|l| l.is_mfa() && !l.dash && l.arg("oneword").is_none())
            .map(|l| l.origin.as_str())
            .collect();
        if mfa_lines.len() > 1 {
            findings.push(Finding {
                status: "warn",
                text: format!(
                    "pam_mfa is stacked {} times ({}): every login asks for {} second factors; \
                     keep one (the pam-auth-update profile `mfa` in common-auth, or the service's \
                     own line)",
                    mfa_lines.len(),
                    mfa_lines.join(", "),
                    mfa_lines.len()
                ),
            });
        }
        for n in &st.notes {
            findings.push(Finding {
                status: "fail",
                text: format!("{n}: PAM fails that line"),
            });
        }
        for l in st.lines.iter().filter(|l| l.is_mfa()) {
            findings.extend(oneword::arguments(name, l));
        }
        let one = oneword::check(name, &st.lines);
        if one.is_none()
            && let Some(w) = oneword::plain_on_one_password_service(name, &st.lines)
        {
            findings.push(w);
        }
        let loads: Vec<bool> = st
            .lines
            .iter()
            .map(|l| match &l.target {
                Target::Module(m) => modules
                    .entry(m.clone())
                    .or_insert_with(|| module::check(m, &dirs))
                    .is_ok(),
                Target::BrokenInclude(_) => false,
            })
            .collect();
        let mut reported = BTreeSet::new();
        for l in &st.lines {
            let Target::Module(m) = &l.target else {
                continue;
            };
            let Some(Err(e)) = modules.get(m) else {
                continue;
            };
            if !reported.insert(m.clone()) {
                continue;
            }
            let (status, text) = match (l.is_mfa(), l.dash) {
                (true, true) => (
                    "fail",
                    format!(
                        "{e}; the line ({}) starts with '-', so PAM skips it silently: no second factor for {name}",
                        l.origin
                    ),
                ),
                (true, false) if l.control.failure_is_fatal() => (
                    "fail",
                    format!(
                        "{e}: every login of {name} is refused ({}, {})",
                        l.control.text, l.origin
                    ),
                ),
                (true, false) => (
                    "fail",
                    format!(
                        "{e}: the second factor is never asked ({}, {})",
                        l.control.text, l.origin
                    ),
                ),
                (false, true) => (
                    "warn",
                    format!("{e} (skipped: the line {} starts with '-')", l.origin),
                ),
                (false, false) => (
                    "fail",
                    format!("{e}: PAM fails the line {} ({})", l.origin, l.control.text),
                ),
            };
            findings.push(Finding { status, text });
        }
        let f = flow::analyse(&st.lines, &loads);
        if !f.can_succeed && findings.is_empty() {
            findings.push(Finding {
                status: "fail",
                text: format!(
                    "no path through the auth stack succeeds: every login of {name} is refused"
                ),
            });
        }
        let reported = match one {
            // The pair has its own rules of order (oneword::check).
            Some(one) => {
                findings.extend(one.findings);
                one.reported
            }
            None => {
                order(
                    &mut findings,
                    &st.lines,
                    sshd_pubkey_first && mfa_core::service::lineage(name).any(|s| s == "sshd"),
                );
                BTreeSet::new()
            }
        };
        if let Some(i) = f.mfa_after_failure_of
            && !reported.contains(&i)
        {
            let l = &st.lines[i];
            let text = if PRIMARY.contains(&l.base()) {
                format!(
                    "{} is `{}` ({}): a wrong password still reaches pam_mfa, which sends a passcode to anyone who knows a user name; make it `requisite` (Debian's common-auth already stops at pam_deny)",
                    l.base(),
                    l.control.text,
                    l.origin
                )
            } else {
                format!(
                    "{} is `{}` ({}): when it refuses, pam_mfa still runs (and may send a passcode) for a login that is refused anyway; make it `requisite`",
                    if l.base().is_empty() {
                        "an include"
                    } else {
                        l.base()
                    },
                    l.control.text,
                    l.origin
                )
            };
            findings.push(Finding {
                status: "warn",
                text,
            });
        }
        if let Some(i) = f.skipped_by {
            let l = &st.lines[i];
            let how = if l.is_mfa() {
                format!(
                    "pam_mfa's refusal is ignored (`{}`, {})",
                    l.control.text, l.origin
                )
            } else {
                format!(
                    "{} (`{}`, {}) skips pam_mfa when it succeeds",
                    l.base(),
                    l.control.text,
                    l.origin
                )
            };
            let requires = g.as_ref().is_none_or(|g| g.requires);
            findings.push(Finding {
                status: if requires { "fail" } else { "warn" },
                text: format!("a login can succeed without the second factor: {how}"),
            });
        }
        let mfa_line = st.lines.iter().find(|l| l.is_mfa());
        let worst = findings
            .iter()
            .map(|f| f.status)
            .max_by_key(|s| rank(s))
            .unwrap_or("ok");
        let mut detail = vec![rule_text];
        if findings.iter().all(|f| f.status == "ok") {
            if let Some(m) = mfa_line
                && !m.origin.starts_with(&format!("{name}:"))
            {
                detail.push(format!("pam_mfa from {}", m.origin));
            }
            if g.as_ref().is_some_and(|g| g.method == "none") {
                detail.push("method none: pam_mfa lets every login through".into());
            }
        }
        detail.extend(findings.into_iter().map(|f| f.text));
        r.add(what, worst, detail.join("; "));
    }
    for m in modules.keys() {
        match &modules[m] {
            Ok(p) => r.add(
                format!("pam module {m}"),
                "ok",
                format!("{} loads", p.display()),
            ),
            Err(e) => r.add(format!("pam module {m}"), "fail", e.clone()),
        }
    }
    for s in EXPECTED_FILES {
        if !names.iter().any(|n| n == s) {
            r.add(
                format!("pam.d/{s}"),
                "warn",
                format!("{} not found", pam_dir.join(s).display()),
            );
        }
    }
    let rules = rules.unwrap_or(&no_rules);
    let ruled: BTreeSet<&String> = rules
        .methods
        .keys()
        .chain(rules.networked.iter())
        .filter(|s| s.as_str() != "*")
        .collect();
    for s in ruled {
        let covered = names
            .iter()
            .any(|n| mfa_core::service::lineage(n).any(|x| x == s.as_str()));
        if !covered {
            r.add(
                format!("rule {s}"),
                "warn",
                format!(
                    "no file in {} is {s} or of its family ({s}-...): a service without a file uses pam.d/other; check the name (`mfa-admin service list`)",
                    pam_dir.display()
                ),
            );
        }
    }
    stacked
}

/// Where pam_mfa sits relative to the password modules.
fn order(findings: &mut Vec<Finding>, lines: &[Line], pubkey_first: bool) {
    let mfa = lines.iter().position(Line::is_mfa);
    let primary = lines.iter().position(|l| PRIMARY.contains(&l.base()));
    let (status, text) = match (mfa, primary) {
        (None, _) => return,
        (Some(m), _) if lines[m].control.text == "sufficient" => (
            "fail",
            "pam_mfa is `sufficient`: it would let a user in on the second factor alone; use `required`".to_string(),
        ),
        (Some(m), Some(p)) if m > p => (
            "ok",
            format!(
                "pam_mfa ({}) follows {}",
                lines[m].control.text,
                lines[p].base()
            ),
        ),
        (Some(_), Some(p)) => (
            "fail",
            format!(
                "pam_mfa comes before {}: the second factor would be asked before the password",
                lines[p].base()
            ),
        ),
        (Some(_), None) if pubkey_first => (
            "ok",
            "pam_mfa after sshd's publickey (AuthenticationMethods publickey,keyboard-interactive)".to_string(),
        ),
        (Some(_), None) => (
            "fail",
            "pam_mfa has no primary module (pam_unix, pam_sss, ...) before it: the second factor would be the only one".to_string(),
        ),
    };
    findings.push(Finding { status, text });
}
