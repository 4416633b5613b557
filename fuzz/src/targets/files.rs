//! Targets for small files that need no database: passcode challenge files (written by the
//! module, read back at the next prompt) and spool messages (written by the module, read by
//! the sender and mfa-admin; the sender's group can write the spool). Each input is written
//! where the code looks for it and read back through the public function.

use std::path::{Path, PathBuf};

use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use mfa_core::state::{self, Challenge};

use super::{Harness, fail, tokens};

/// The id every fuzzed challenge file is read under (hex; not starting with 0, which
/// would make `put_challenge` scan the directory).
const FUZZ_ID: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
/// The id a parsed challenge is stored again under, to check the round trip.
const COPY_ID: &str = "c0ffeec0ffeec0ffeec0ffeec0ffee01";

struct ChallengeTarget {
    db: PathBuf,
    file: PathBuf,
    seeds: Vec<Vec<u8>>,
}

/// Challenges as the module writes them.
pub fn challenge(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let db = dir.join("mfa.db");
    let mut seeds = Vec::new();
    for (i, (purpose, prefix, dest)) in [
        ("login", 'K', "ann@example.com"),
        ("enroll", 'Z', "+447700900123"),
        ("login", 'é', ""),
    ]
    .into_iter()
    .enumerate()
    {
        let c = Challenge {
            id: format!("a{i}{}", &FUZZ_ID[2..]),
            user: "ann".into(),
            service: "sshd".into(),
            address: "2001:db8::1".into(),
            purpose: purpose.into(),
            prefix,
            code_hash: vec![0xab; 32],
            destination: dest.into(),
            created: 1_700_000_000,
            expires: 1_700_000_600,
            attempts_left: 3,
            resends: 1,
        };
        state::put_challenge(&db, &c).map_err(|e| e.to_string())?;
        let path = state_dir(&db).join(&c.id);
        seeds.push(std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
        state::delete_challenge(&db, &c.id).map_err(|e| e.to_string())?;
    }
    let file = state_dir(&db).join(FUZZ_ID);
    Ok(Box::new(ChallengeTarget { db, file, seeds }))
}

fn state_dir(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push("-challenges");
    PathBuf::from(s)
}

impl Harness for ChallengeTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        json_tokens(&[
            "id",
            "user",
            "service",
            "address",
            "purpose",
            "prefix",
            "code_hash",
            "destination",
            "created",
            "expires",
            "attempts_left",
            "resends",
        ])
    }

    fn max_len(&self) -> usize {
        2048
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        std::fs::write(&self.file, input).map_err(|e| format!("setup: {e}"))?;
        let got = state::challenge(&self.db, FUZZ_ID);
        let listed = state::challenges(&self.db).map_err(|e| format!("challenges(): {e}"))?;
        let Ok(Some(c)) = got else {
            if !listed.is_empty() {
                return fail("challenges() lists a challenge challenge() refuses");
            }
            return Ok(false);
        };
        if listed.len() != 1 || listed[0] != c {
            return fail(format!("challenges() and challenge() disagree: {listed:?}"));
        }
        // Stored again (under another id), it must read back the same.
        let copy = Challenge {
            id: COPY_ID.into(),
            ..c.clone()
        };
        state::put_challenge(&self.db, &copy).map_err(|e| format!("put_challenge: {e}"))?;
        let back = state::challenge(&self.db, COPY_ID);
        state::delete_challenge(&self.db, COPY_ID).map_err(|e| format!("cleanup: {e}"))?;
        match back {
            Ok(Some(b)) if b == copy => Ok(true),
            other => fail(format!(
                "challenge {copy:?} stored and read back as {other:?}"
            )),
        }
    }
}

struct SpoolTarget {
    spool: PathBuf,
    message: PathBuf,
    seeds: Vec<Vec<u8>>,
}

/// Messages as the module queues them.
pub fn spool(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let spool = dir.join("spool");
    for sub in spool::SUBDIRS {
        std::fs::create_dir_all(spool.join(sub)).map_err(|e| format!("setup: {e}"))?;
    }
    let mut seeds = Vec::new();
    for (i, (channel, to, kind)) in [
        (Channel::Email, "ann@example.com", Kind::Passcode),
        (Channel::SmsGateway, "5552010199@vtext.com", Kind::Test),
        (Channel::Sms, "+447700900123", Kind::Passcode),
    ]
    .into_iter()
    .enumerate()
    {
        let msg = Message {
            id: format!("1700000000-seed{i}"),
            created: 1_700_000_000,
            expires: 1_700_000_600,
            channel,
            to: to.into(),
            subject: "web1 passcode".into(),
            body: "K-482913 is your passcode for ann on web1.\nIt expires in 10 minutes.".into(),
            user: "ann".into(),
            kind,
            masked_to: "a***@e***.com".into(),
        };
        let path = spool::enqueue(&spool, &msg).map_err(|e| e.to_string())?;
        seeds.push(std::fs::read(&path).map_err(|e| e.to_string())?);
        std::fs::remove_file(&path).map_err(|e| e.to_string())?;
    }
    let message = spool.join("failed").join("1700000000-fuzz.json");
    Ok(Box::new(SpoolTarget {
        spool,
        message,
        seeds,
    }))
}

impl Harness for SpoolTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut d = json_tokens(&[
            "id",
            "created",
            "expires",
            "channel",
            "to",
            "subject",
            "body",
            "user",
            "kind",
            "masked_to",
            "email",
            "sms-gateway",
            "sms",
            "passcode",
            "test",
        ]);
        d.extend(tokens(&[
            "\\r\\n",
            "\\u0000",
            "\\ud800",
            "1e999",
            "-9223372036854775809",
        ]));
        d
    }

    fn max_len(&self) -> usize {
        4096
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        std::fs::write(&self.message, input).map_err(|e| format!("setup: {e}"))?;
        // The same bytes as the reason file of a failed message (the sender's group
        // writes it; mfa-admin and doctor show it).
        let reason_file = self.message.with_extension("reason");
        std::fs::write(&reason_file, input).map_err(|e| format!("setup: {e}"))?;
        let reason = spool::failed(&self.spool, "1700000000-fuzz");
        match &reason {
            Some(r) if r.chars().any(char::is_control) => {
                return fail(format!("failure reason has control characters: {r:?}"));
            }
            None => return fail("failed() does not see a failed message"),
            Some(_) => {}
        }
        let _ = spool::newest_failure(&self.spool);
        let Ok(msg) = spool::read(&self.message) else {
            return Ok(false);
        };
        // A parsed message, queued again, must read back the same.
        let bytes = serde_json::to_vec(&msg).map_err(|e| format!("encode: {e}"))?;
        std::fs::write(&self.message, &bytes).map_err(|e| format!("setup: {e}"))?;
        match spool::read(&self.message) {
            Ok(back) if back == msg => {}
            other => return fail(format!("message {msg:?} re-read as {other:?}")),
        }
        if let Ok(path) = spool::enqueue(&self.spool, &msg) {
            let back = spool::read(&path);
            std::fs::remove_file(&path).map_err(|e| format!("cleanup: {e}"))?;
            match back {
                Ok(b) if b == msg => {}
                other => return fail(format!("enqueued {msg:?} read back as {other:?}")),
            }
        }
        Ok(true)
    }
}

/// JSON keys as `"key":` plus the JSON punctuation.
pub fn json_tokens(keys: &[&str]) -> Vec<Vec<u8>> {
    let mut d: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| format!("\"{k}\":").into_bytes())
        .collect();
    d.extend(tokens(&[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1e3",
        "9223372036854775807",
        "\"\\u00e9\"",
        "[]",
        "{}",
    ]));
    d
}
