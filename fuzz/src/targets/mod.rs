//! The fuzz targets: one [`Harness`] per parser of untrusted or on-disk input, each calling
//! the parser's public entry point (files are written to a private temporary directory and
//! read back through the same functions the PAM module, the sender and mfa-admin use).
//! Seeds are real inputs the code itself produced; beyond "no panic", each harness checks
//! cheap oracles (print-then-parse round trips, idempotent normalisation, a damaged
//! snapshot never answering differently from the database).

mod duo;
mod files;
mod helper;
mod sends;
mod store_files;
mod text;

use std::path::Path;

use crate::engine::Rng;

/// One target's state between inputs.
pub trait Harness {
    /// Valid inputs produced by the code itself.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// Tokens the mutator inserts (keywords, delimiters, field names).
    fn dictionary(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// The longest input tried.
    fn max_len(&self) -> usize {
        4096
    }
    /// Repairs a mutated input just enough to get past a first check (a length field), on
    /// some inputs: lets mutations reach the parser's depths.
    fn fixup(&self, _rng: &mut Rng, _input: &mut Vec<u8>) {}
    /// Runs the parser on `input`: `Ok(true)` when it accepted it, `Ok(false)` when it
    /// refused it cleanly, `Err` when an oracle failed (a panic is caught by the engine).
    fn run(&mut self, input: &[u8]) -> Result<bool, String>;
}

/// A named target and how to set it up in a private directory.
pub struct Target {
    pub name: &'static str,
    pub about: &'static str,
    pub make: fn(&Path) -> Result<Box<dyn Harness>, String>,
}

/// Every target, in the order `--all` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "snapshot",
        about: "policy snapshot file (Snapshot::open, lookup, facts_checked: must answer as the database)",
        make: store_files::snapshot,
    },
    Target {
        name: "state",
        about: "user login-state file (state::failures/record_failure/accept_step)",
        make: store_files::user_state,
    },
    Target {
        name: "sends",
        about: "send-limit counter files (state::sends::reserve: never more than the limits)",
        make: sends::sends,
    },
    Target {
        name: "challenge",
        about: "passcode challenge file (state::challenge/challenges)",
        make: files::challenge,
    },
    Target {
        name: "authlog",
        about: "auth-log inbox lines (Store::ingest_auth_log)",
        make: store_files::authlog,
    },
    Target {
        name: "spool",
        about: "spool message file (spool::read, failure_reason)",
        make: files::spool,
    },
    Target {
        name: "config",
        about: "configuration file (config::Config::parse, to_toml round trip)",
        make: text::config,
    },
    Target {
        name: "export",
        about: "export document (export::parse, import into a rolled-back transaction, export)",
        make: store_files::export,
    },
    Target {
        name: "net",
        about: "addresses, CIDRs and ranges (net::parse_address, IpRange::parse_*)",
        make: text::net,
    },
    Target {
        name: "template",
        about: "message templates (template::validate, render)",
        make: text::template,
    },
    Target {
        name: "contact",
        about: "contact forms (contact::email, phone + carrier, e164, Channel::parse, masked)",
        make: text::contact,
    },
    Target {
        name: "settings",
        about: "setting values and durations (settings::Spec::normalize, parse_duration, from_stored)",
        make: text::settings,
    },
    Target {
        name: "duo",
        about: "Duo broker frames (duo::read_frame of requests and replies, write_frame round trip)",
        make: duo::duo,
    },
    Target {
        name: "helper",
        about: "pam_mfa <-> mfa-check frames (helper::decode, read_frame, encode round trip)",
        make: helper::helper,
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Splits an input into `n` text fields at NUL bytes (lossy UTF-8: parsers take `&str`).
pub fn fields(input: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = input
        .splitn(n, |&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// Joins text fields with NUL bytes (the inverse of [`fields`], for seeds).
pub fn join(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

/// Turns a list of string tokens into dictionary entries.
pub fn tokens(words: &[&str]) -> Vec<Vec<u8>> {
    words.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// A failed oracle, as a short message.
pub fn fail(what: impl std::fmt::Display) -> Result<bool, String> {
    Err(what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{self, Limits};

    /// Every target sets up, its seeds run without a finding (but those fuzz/known.txt
    /// lists), and at least one is accepted: a target whose seeds all fail would fuzz
    /// nothing but the first check.
    #[test]
    fn every_target_accepts_its_own_seeds() {
        let known = crate::parse_known(include_str!("../../known.txt"));
        for t in TARGETS {
            let dir = tempfile::tempdir().unwrap();
            let mut h = (t.make)(dir.path()).unwrap_or_else(|e| panic!("{}: setup: {e}", t.name));
            let seeds = h.seeds();
            assert!(!seeds.is_empty(), "{}: no seeds", t.name);
            let mut accepted = 0;
            for s in &seeds {
                match engine::run_one(h.as_mut(), s) {
                    Ok(a) => accepted += usize::from(a),
                    Err(e)
                        if known
                            .iter()
                            .any(|(k, p)| k == t.name && e.contains(p.as_str())) => {}
                    Err(e) => panic!("{}: a seed is a finding: {e}", t.name),
                }
            }
            assert!(accepted > 0, "{}: no seed accepted", t.name);
        }
    }

    /// A harness that panics on one input and fails its oracle on another.
    struct Trap;

    impl Harness for Trap {
        fn seeds(&self) -> Vec<Vec<u8>> {
            vec![b"bo".to_vec(), b"zz".to_vec()]
        }
        fn dictionary(&self) -> Vec<Vec<u8>> {
            tokens(&["om", "x"])
        }
        fn run(&mut self, input: &[u8]) -> Result<bool, String> {
            let text = String::from_utf8_lossy(input);
            if text.contains("boom") {
                let v: Vec<u8> = Vec::new();
                return Ok(v[input.len()] == 0);
            }
            if text.contains("zzx") {
                return fail("zz then x");
            }
            Ok(true)
        }
    }

    #[test]
    fn the_engine_catches_panics_and_oracles_and_saves_the_inputs() {
        engine::quiet_panics();
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            seconds: None,
            iterations: Some(200_000),
            timeout: std::time::Duration::from_secs(5),
            crashes: dir.path().to_path_buf(),
            seed: 3,
            max_findings: 10,
            trace: false,
        };
        let r = engine::run("trap", &mut Trap, &limits);
        assert_eq!(r.executions, 200_000);
        assert!(
            r.findings
                .iter()
                .any(|f| f.starts_with("panic at ") && f.contains("index out of bounds")),
            "{:?}",
            r.findings
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.starts_with("oracle: zz then x")),
            "{:?}",
            r.findings
        );
        // Each saved input reproduces its finding.
        let saved: Vec<_> = std::fs::read_dir(dir.path().join("trap"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none())
            .collect();
        assert_eq!(saved.len(), r.findings.len());
        for p in saved {
            let input = std::fs::read(&p).unwrap();
            assert!(
                engine::run_one(&mut Trap, &input).is_err(),
                "{}",
                p.display()
            );
        }
    }
}
