//! sshd's side of a passcode login: `UsePAM yes` and keyboard-interactive enabled, read the
//! way sshd reads its configuration (first value wins, `Include` expanded, `Match` blocks
//! left out); and whether `AuthenticationMethods` asks for a key before the passcode.

use std::path::{Path, PathBuf};

use super::Report;

/// Reads sshd_config the way sshd does (first value wins, `Include` expanded); returns
/// whether AuthenticationMethods puts publickey before keyboard-interactive.
pub fn check(r: &mut Report, path: &Path) -> bool {
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
    let Ok(bytes) = super::stack::read_bounded(path) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
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
