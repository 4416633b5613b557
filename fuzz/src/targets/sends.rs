//! Target for the send-limit counter files beside the database (`<database>-sends/host`,
//! `<database>-sends/<destination key>`), read and rewritten at every passcode sent
//! ([`mfa_core::state::sends::reserve`]). The input is the host file, a NUL, then the
//! destination file. Oracle: whatever the files held, no more messages go than the limits
//! allow (a damaged file may hold back messages, never let more through).

use std::path::{Path, PathBuf};

use mfa_core::settings::Settings;
use mfa_core::state::{self, Challenge, sends};

use super::{Harness, fail, tokens};

pub(super) const USER: &str = "ann";
/// Reservations tried per input: more than either limit.
const TRIES: i64 = 6;

struct SendsTarget {
    /// The clock of every reservation: the real one (the sweep of old destination files
    /// compares it with their modification times).
    now: i64,
    db: PathBuf,
    host: PathBuf,
    dest: PathBuf,
    dest_key: String,
    settings: Settings,
    seeds: Vec<Vec<u8>>,
}

/// A login challenge of `ann` made at `created` (ids from `id`, never starting with 0).
pub(super) fn challenge(id: i64, created: i64) -> Challenge {
    Challenge {
        id: format!("e{id:031x}"),
        user: USER.into(),
        service: "sshd".into(),
        address: "192.0.2.7".into(),
        purpose: "login".into(),
        prefix: 'K',
        code_hash: vec![0xab; 32],
        destination: "ann@example.com".into(),
        created,
        expires: created + 600,
        attempts_left: 3,
        resends: 0,
    }
}

pub fn sends(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let db = dir.join("mfa.db");
    let mut settings = Settings::from_stored(&Default::default()).map_err(|e| e.to_string())?;
    settings.send_window = 900;
    settings.send_limit_user = 0;
    settings.send_limit_destination = 3;
    settings.send_limit_host = 4;
    let dest_key =
        sends::destination_key(&[7u8; 32], "ann@example.com").map_err(|e| e.to_string())?;
    let d = sends::sends_path(&db);
    let (host, dest) = (d.join("host"), d.join(&dest_key));
    let mut t = SendsTarget {
        now: mfa_core::now(),
        db,
        host,
        dest,
        dest_key,
        settings,
        seeds: Vec::new(),
    };
    // Real files: two sends a few minutes apart.
    t.reset().map_err(|e| format!("setup: {e}"))?;
    for (i, at) in [(1, t.now - 300), (2, t.now - 61)] {
        sends::reserve(&t.db, &challenge(i, at), &t.dest_key, &t.settings)
            .map_err(|e| e.to_string())?;
    }
    let mut seed = std::fs::read(&t.host).map_err(|e| e.to_string())?;
    seed.push(0);
    seed.extend(std::fs::read(&t.dest).map_err(|e| e.to_string())?);
    t.seeds = vec![seed, vec![0]];
    Ok(Box::new(t))
}

impl SendsTarget {
    /// No login state, no challenges: only the fuzzed files count.
    fn reset(&self) -> Result<(), String> {
        state::forget_user(&self.db, USER).map_err(|e| e.to_string())?;
        state::drop_challenges_of(&self.db, None).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Harness for SendsTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let (now, minute) = (self.now, self.now.div_euclid(60));
        let mut d = tokens(&[
            "\n",
            " ",
            "-1",
            "0",
            "18446744073709551615",
            "9223372036854775807",
            "-9223372036854775808",
        ]);
        // Times and minutes inside and at the edges of the windows.
        for v in [
            now,
            now + 1,
            now - 899,
            now - 900,
            minute,
            minute - 59,
            minute - 60,
            minute + 1,
        ] {
            d.push(v.to_string().into_bytes());
        }
        d
    }

    fn max_len(&self) -> usize {
        1024
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let (host, dest) = match input.iter().position(|&b| b == 0) {
            Some(i) => (&input[..i], &input[i + 1..]),
            None => (input, &[][..]),
        };
        // Both counters, then the host's alone (the destination's limit would hide a
        // host count that went wrong).
        let mut host_only = self.settings.clone();
        host_only.send_limit_destination = 0;
        let mut sent_any = false;
        for s in [self.settings.clone(), host_only] {
            self.reset()?;
            std::fs::write(&self.host, host).map_err(|e| format!("setup: {e}"))?;
            std::fs::write(&self.dest, dest).map_err(|e| format!("setup: {e}"))?;
            let mut sent = 0;
            for i in 0..TRIES {
                let c = challenge(100 + i, self.now + i);
                match sends::reserve(&self.db, &c, &self.dest_key, &s) {
                    Ok(None) => sent += 1,
                    Ok(Some(_)) => {}
                    Err(e) => {
                        return fail(format!("reserve failed on a damaged counter file: {e}"));
                    }
                }
            }
            let most = match s.send_limit_destination {
                0 => s.send_limit_host,
                d => d.min(s.send_limit_host),
            };
            if sent > most {
                return fail(format!(
                    "{sent} messages went where the limits allow {most} (host file {:?}, destination file {:?})",
                    String::from_utf8_lossy(host),
                    String::from_utf8_lossy(dest)
                ));
            }
            sent_any |= sent > 0;
        }
        Ok(sent_any)
    }
}
