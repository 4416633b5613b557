//! Targets for the files beside a real database (built in the private temporary directory):
//! the policy snapshot, a user's login-state file, the auth-log inbox, and the export
//! document (imported into a transaction that is rolled back).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use mfa_core::contact::Contact;
use mfa_core::export;
use mfa_core::net::IpRange;
use mfa_core::policy::{Facts, UserFacts};
use mfa_core::settings::Settings;
use mfa_core::snapshot::{self, Snapshot};
use mfa_core::state::sends;
use mfa_core::store::logs::AuthEvent;
use mfa_core::store::people::ContactRow;
use mfa_core::store::rules::{NewNetRule, add_network, set_service, set_setting, set_template};
use mfa_core::store::{Store, auth, factors, people};
use mfa_core::totp::Key;
use mfa_core::{authlog, grants, state};

use super::files::json_tokens;
use super::{Harness, fail, tokens};
use crate::engine::Rng;

/// A store with a bit of everything: settings, services, network rules of both families,
/// `users` plain users (several snapshot blocks when there are over 32), one with three
/// contacts, one with an authenticator key and backup codes, overrides, a lockout, a
/// custom template and a carrier. `key_user` is the name of the user with the key.
fn populated(db: &Path, users: usize, key_user: &str) -> Result<Store, String> {
    let (mut s, _) = Store::create(db).map_err(|e| e.to_string())?;
    s.change("fuzz", "setup", |tx| {
        set_setting(tx, "enabled", "on")?;
        set_setting(tx, "repeat_window", "5m")?;
        set_setting(tx, "lockout_after", "5")?;
        set_service(tx, "sshd", "passcode")?;
        set_service(tx, "sudo", "totp")?;
        set_service(tx, "ftp", "none")?;
        set_template(tx, "passcode-subject", "{host}: your code")?;
        for (svc, range, require) in [
            ("*", "10.0.0.0/8", false),
            ("sshd", "10.1.0.0/16", true),
            ("sshd", "10.1.2.0/24", false),
            ("su", "192.0.2.0-192.0.2.99", false),
            ("*", "2001:db8::/32", false),
        ] {
            let rule = NewNetRule {
                service: svc.into(),
                range: IpRange::parse_any(range)?,
                require,
                log: (svc == "su").then(|| "none".to_string()),
                note: "fuzz".into(),
            };
            add_network(tx, &rule, 0)?;
        }
        for n in 0..users {
            people::add_user(tx, &format!("user{n:03}"), "", 0)?;
        }
        people::add_user(tx, "ann", "Ann", 0)?;
        people::add_contact(
            tx,
            "ann",
            &Contact::email("ann@example.com")?,
            "work",
            None,
            0,
        )?;
        people::add_contact(
            tx,
            "ann",
            &Contact::phone("5552010199", "Verizon")?,
            "",
            None,
            0,
        )?;
        people::add_contact(tx, "ann", &Contact::sms("+447700900123")?, "", None, 0)?;
        // Self-enrollment adds PAM_USER as it is: any bytes a name service allows.
        people::add_user(tx, key_user, "", 0)?;
        factors::set_totp(tx, key_user, &Key::generate("sha256", 8)?, 0)?;
        factors::set_backup_codes(tx, key_user, &[vec![1], vec![2], vec![3]], 0)?;
        tx.execute(
            "INSERT INTO overrides (user, mandatory, exempt, self_enroll, log_level)
             VALUES ('user001', 1, 0, 1, 'rejects'), ('user002', 0, 1, 0, NULL)",
            [],
        )?;
        tx.execute(
            "INSERT INTO lockouts (user, failures, locked_until) VALUES ('user003', 5, 4000000000)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .map_err(|e| e.to_string())?;
    Ok(s)
}

/// What the database says about one user: the snapshot must say the same or nothing.
struct UserTruth {
    name: String,
    facts: Option<UserFacts>,
    contacts: Vec<ContactRow>,
    key: Option<Key>,
    /// Facts for every (service, address) probe.
    probes: Vec<Facts>,
}

struct SnapshotTarget {
    db: PathBuf,
    seed: Vec<u8>,
    /// Offset of the total-length field (found in the seed, so a format change keeps working).
    total_at: Option<usize>,
    users: Vec<UserTruth>,
    settings: Settings,
    key: Vec<u8>,
    templates: Vec<mfa_core::store::rules::Template>,
    carriers: Vec<(String, String)>,
    round: usize,
}

const SERVICES: &[&str] = &["sshd", "sudo", "ftp", "su", "login", "sshd-mfa"];
const ADDRS: &[Option<&str>] = &[
    None,
    Some("10.1.2.3"),
    Some("192.0.2.7"),
    Some("2001:db8::1"),
];

fn probes() -> impl Iterator<Item = (&'static str, Option<IpAddr>)> {
    SERVICES.iter().flat_map(|s| {
        ADDRS
            .iter()
            .map(move |a| (*s, a.and_then(|a| a.parse::<IpAddr>().ok())))
    })
}

pub fn snapshot(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let db = dir.join("mfa.db");
    let mut store = populated(&db, 70, "e.mile@corp")?;
    store.rebuild_snapshot().map_err(|e| e.to_string())?;
    let seed = std::fs::read(snapshot::path_for(&db)).map_err(|e| e.to_string())?;
    let conn = store.conn();
    let mut users = Vec::new();
    let mut names: Vec<String> = [
        "ann",
        "émile",
        "e.mile@corp",
        "user000",
        "user001",
        "user002",
        "user003",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(
        [
            "user031", "user032", "user064", "user069", "nobody", "", "zzz",
        ]
        .map(String::from),
    );
    let err = |e: mfa_core::Error| e.to_string();
    for name in names {
        let probes = probes()
            .map(|(s, ip)| auth::facts(conn, &name, s, ip))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        users.push(UserTruth {
            facts: probes.first().and_then(|f| f.user.clone()),
            contacts: people::contacts(conn, &name).map_err(err)?,
            key: factors::totp_of(conn, &name).map_err(err)?,
            probes,
            name,
        });
    }
    let len = u32::try_from(seed.len())
        .map_err(|e| e.to_string())?
        .to_le_bytes();
    let total_at = (8..seed.len().min(64).saturating_sub(3)).find(|&i| seed[i..i + 4] == len);
    Ok(Box::new(SnapshotTarget {
        settings: mfa_core::store::rules::settings(conn).map_err(err)?,
        key: auth::passcode_key(conn).map_err(err)?,
        templates: mfa_core::store::rules::templates(conn).map_err(err)?,
        carriers: people::carriers(conn)
            .map_err(err)?
            .into_iter()
            .map(|c| (c.name, c.suffix))
            .collect(),
        db,
        seed,
        total_at,
        users,
        round: 0,
    }))
}

impl Harness for SnapshotTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![self.seed.clone()]
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "MFAPOL06",
            "ann",
            "émile",
            "user000",
            "sshd",
            "passcode",
            "totp",
            "none",
            "*",
            "enabled",
            "on",
            "off",
            "sha256",
            "email",
            "sms",
            "\u{0}\u{0}\u{0}\u{0}",
            "\u{ff}\u{ff}",
            "\u{7f}\u{ff}\u{ff}\u{ff}",
        ])
    }

    fn max_len(&self) -> usize {
        self.seed.len() + 4096
    }

    fn fixup(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        // Half the time, make the total length right: the size check then lets the
        // mutation through to the decoder.
        if let Some(at) = self.total_at
            && rng.chance(2)
            && input.len() >= at + 4
            && let Ok(n) = u32::try_from(input.len())
        {
            input[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        snapshot::write(&self.db, input, false).map_err(|e| format!("setup: {e}"))?;
        // open/lookup, not load/user: those also report damage to syslog and the auth log.
        let snap = match Snapshot::open(&self.db) {
            Ok(Some(s)) => s,
            Ok(None) => return fail("a snapshot file that is there opens as no snapshot"),
            Err(_) => return Ok(false),
        };
        // Loaded: whatever it answers must be what the database says.
        let wrong = |what: &str, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
            Err(format!(
                "a damaged snapshot loaded and answers differently from the database: \
                 {what}: snapshot {got:?}, database {want:?}"
            ))
        };
        if *snap.settings() != self.settings {
            return wrong("settings", snap.settings(), &self.settings);
        }
        let key = snap.passcode_key().unwrap_or_default();
        if key != self.key {
            return wrong("passcode key", &key, &self.key);
        }
        let templates = snap.templates();
        if templates != self.templates {
            return wrong("templates", &templates, &self.templates);
        }
        let carriers: Vec<_> = snap
            .carriers()
            .into_iter()
            .map(|c| (c.name, c.suffix))
            .collect();
        if carriers != self.carriers {
            return wrong("carriers", &carriers, &self.carriers);
        }
        self.round += 1;
        let probes: Vec<_> = probes().collect();
        let mut damaged_blocks = false;
        for u in &self.users {
            // A block that fails its checksum is an error (the caller reads the database);
            // a record read must be the database's, and "unknown" must be true.
            let rec = match snap.lookup(&u.name) {
                Err(_) => {
                    damaged_blocks = true;
                    continue;
                }
                Ok(r) => r,
            };
            let facts = rec.as_ref().map(|r| r.facts.clone());
            if facts != u.facts {
                return wrong(&format!("user {:?}", u.name), &facts, &u.facts);
            }
            if let Some(r) = &rec {
                if r.contacts != u.contacts {
                    return wrong(
                        &format!("contacts of {:?}", u.name),
                        &r.contacts,
                        &u.contacts,
                    );
                }
                if r.key != u.key {
                    return wrong(&format!("key of {:?}", u.name), &r.key, &u.key);
                }
            }
            // One probe per user per input, in turn.
            let i = (self.round + u.name.len()) % probes.len();
            let (service, ip) = probes[i];
            // A damaged block of rules is refused (facts_for would log it and open the
            // database: slow and noisy here); what is answered must be the database's answer.
            if let Ok(got) = snap.facts_checked(rec.as_ref(), service, &u.name, ip)
                && got != u.probes[i]
            {
                return wrong(
                    &format!("facts({:?}, {service}, {ip:?})", u.name),
                    &got,
                    &u.probes[i],
                );
            }
        }
        if !damaged_blocks && input == self.seed.as_slice() && snapshot::verify(&self.db).is_err() {
            return fail("the snapshot the store wrote fails its own verification");
        }
        Ok(true)
    }
}

/// The two users whose state files are fuzzed (PAM_USER may hold any bytes).
const STATE_USERS: &[&str] = &["ann", "a b\nc\u{0}é"];

struct StateTarget {
    db: PathBuf,
    files: Vec<PathBuf>,
    seeds: Vec<Vec<u8>>,
    settings: Settings,
}

/// A user's login-state file: failures, TOTP step, grants.
pub fn user_state(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let db = dir.join("mfa.db");
    let mut settings = Settings::from_stored(&Default::default()).map_err(|e| e.to_string())?;
    settings.lockout_after = 0;
    let users_dir = {
        let mut s = db.as_os_str().to_os_string();
        s.push("-users");
        PathBuf::from(s)
    };
    let mut files = Vec::new();
    let mut seeds = Vec::new();
    for (i, user) in STATE_USERS.iter().enumerate() {
        let before: Vec<PathBuf> = list(&users_dir);
        state::record_failure(&db, user, 1_700_000_000, &settings).map_err(|e| e.to_string())?;
        state::accept_step(&db, user, 56_666_666).map_err(|e| e.to_string())?;
        grants::record(&db, user, "sshd", "192.0.2.7", 1_700_000_100).map_err(|e| e.to_string())?;
        grants::record(&db, user, "su", "", 1_700_000_200).map_err(|e| e.to_string())?;
        let file = list(&users_dir)
            .into_iter()
            .find(|p| !before.contains(p))
            .ok_or("record_failure made no state file")?;
        let mut seed = vec![u8::try_from(i).unwrap_or(0)];
        seed.extend(std::fs::read(&file).map_err(|e| e.to_string())?);
        seeds.push(seed);
        files.push(file);
    }
    Ok(Box::new(StateTarget {
        db,
        files,
        seeds,
        settings,
    }))
}

fn list(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

impl Harness for StateTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            " ",
            "\n",
            "0000000000",
            "99999999999999999999",
            "-1",
            "616e6e",
            "00",
            "ff",
            "zz",
            "18446744073709551615",
            "9223372036854775807",
            "-9223372036854775808",
            "\ns ",
            "\nc ",
            "\nc e0000000000000000000000000000001 ",
        ])
    }

    fn max_len(&self) -> usize {
        2048
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let which = usize::from(input.first().copied().unwrap_or(0)) % STATE_USERS.len();
        let (user, file) = (STATE_USERS[which], &self.files[which]);
        let body = input.get(1..).unwrap_or_default();
        std::fs::write(file, body).map_err(|e| format!("setup: {e}"))?;
        let db = &self.db;
        let before = state::failures(db, user);
        let accepted = before != Default::default();
        let now = mfa_core::now();
        let e = |e: mfa_core::Error| e.to_string();
        // The user's send limit counts the sends the file lists: never more than the limit.
        if user == super::sends::USER {
            let mut s = self.settings.clone();
            (s.send_window, s.send_limit_user) = (900, 2);
            (s.send_limit_destination, s.send_limit_host) = (0, 0);
            let mut sent = 0;
            for i in 0..3 {
                let c = super::sends::challenge(200 + i, now + i);
                sent += usize::from(sends::reserve(db, &c, "00", &s).map_err(e)?.is_none());
            }
            state::drop_challenges_of(db, None).map_err(e)?;
            if sent > 2 {
                return fail(format!("{sent} messages went where the user's limit is 2"));
            }
        }
        // Whatever the file held, counting must work from a clear: two failures count two.
        state::clear_failures(db, user).map_err(e)?;
        state::record_failure(db, user, now, &self.settings).map_err(e)?;
        state::record_failure(db, user, now + 1, &self.settings).map_err(e)?;
        let f = state::failures(db, user);
        if f.count != 2 || f.last != now + 1 {
            return fail(format!(
                "after a clear and two failures the state file says {f:?} (file began {:?})",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            ));
        }
        // A TOTP step is accepted once.
        let step = 90_000_000_000;
        let first = state::accept_step(db, user, step).map_err(e)?;
        let again = state::accept_step(db, user, step).map_err(e)?;
        if again {
            return fail(format!("TOTP step accepted twice (first: {first})"));
        }
        // A grant recorded is a grant found.
        grants::record(db, user, "sshd", "10.9.9.9", now).map_err(e)?;
        let last = grants::last(db, user, "sshd", "10.9.9.9");
        if last != Some(now) {
            return fail(format!("grant recorded at {now}, found {last:?}"));
        }
        Ok(accepted)
    }
}

struct AuthlogTarget {
    store: Store,
    db: PathBuf,
    seeds: Vec<Vec<u8>>,
    runs: u64,
}

/// The auth-log inbox.
pub fn authlog(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let db = dir.join("mfa.db");
    let (mut store, _) = Store::create(&db).map_err(|e| e.to_string())?;
    let mut seeds = Vec::new();
    for (user, outcome) in [("ann", "success"), ("a\"b\n", "deny"), ("émile", "ignore")] {
        let ev = AuthEvent {
            user: user.into(),
            service: "sshd".into(),
            address: "192.0.2.1".into(),
            tty: "ssh".into(),
            outcome: outcome.into(),
            method: "passcode".into(),
            destination: "a***@e***.com".into(),
            reason: "trusted network (rule 1)".into(),
            ..Default::default()
        };
        authlog::append(&db, &ev).map_err(|e| e.to_string())?;
    }
    seeds.push(std::fs::read(authlog::path_for(&db)).map_err(|e| e.to_string())?);
    store.ingest_auth_log().map_err(|e| e.to_string())?;
    Ok(Box::new(AuthlogTarget {
        store,
        db,
        seeds,
        runs: 0,
    }))
}

impl Harness for AuthlogTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        json_tokens(&[
            "event",
            "id",
            "time",
            "user",
            "service",
            "address",
            "tty",
            "outcome",
            "method",
            "destination",
            "reason",
        ])
    }

    fn max_len(&self) -> usize {
        4096
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        std::fs::write(authlog::path_for(&self.db), input).map_err(|e| format!("setup: {e}"))?;
        let lines = input
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        self.runs += 1;
        if self.runs.is_multiple_of(50_000) {
            // Keep the table small: the fuzzer stores up to one row per input.
            let _ = self.store.conn().execute("DELETE FROM auth_log", []);
        }
        match self.store.ingest_auth_log() {
            Ok((moved, bad)) => {
                if moved + bad != lines {
                    return fail(format!("{lines} lines, {moved} moved and {bad} skipped"));
                }
                if authlog::pending(&self.db) != 0 {
                    return fail("the inbox was not emptied");
                }
                Ok(moved > 0)
            }
            // The inbox stays as it is: every later ingest fails the same way.
            Err(e) => fail(format!("ingest failed, the inbox is stuck: {e}")),
        }
    }
}

struct ExportTarget {
    store: Store,
    seeds: Vec<Vec<u8>>,
    /// Documents `mfa-admin export` wrote: each must import.
    exports: Vec<String>,
}

/// The export document, imported into a transaction that is rolled back.
pub fn export(dir: &Path) -> Result<Box<dyn Harness>, String> {
    let store = populated(&dir.join("mfa.db"), 4, "emile")?;
    let text = |s: &Store| -> Result<String, String> {
        let doc = export::export(s.conn()).map_err(|e| e.to_string())?;
        export::to_toml(&doc).map_err(|e| e.to_string())
    };
    // (A store holding a user mfa-admin would not accept, "émile", was a seed here until
    // people::add_user refused such names on every way in.)
    let exports = vec![text(&store)?];
    let mut seeds: Vec<Vec<u8>> = exports.iter().map(|t| t.as_bytes().to_vec()).collect();
    seeds.push(b"format = 1\n".to_vec());
    seeds.push(
        b"format = 1\n[settings]\ncode_length = 8\nenabled = \"on\"\n[services]\n\"*\" = \"any\"\n\
          [[carriers]]\nname = \"Acme\"\nsuffix = \"sms.acme.example\"\n\
          [[users]]\nname = \"bob\"\nenabled = false\n[users.override]\nexempt = true\n\
          [[users.contacts]]\nseq = 2\nphone = \"555-201-0199\"\ncarrier = \"acme\"\n"
            .to_vec(),
    );
    Ok(Box::new(ExportTarget {
        store,
        seeds,
        exports,
    }))
}

impl Harness for ExportTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        tokens(&[
            "format = 1",
            "[settings]",
            "[services]",
            "[templates]",
            "[[carriers]]",
            "[[networks]]",
            "[[users]]",
            "[[users.contacts]]",
            "[users.override]",
            "name",
            "suffix",
            "service",
            "range",
            "require",
            "log",
            "note",
            "full_name",
            "enabled",
            "mandatory",
            "exempt",
            "self_enroll",
            "seq",
            "email",
            "phone",
            "carrier",
            "sms",
            "label",
            " = ",
            "true",
            "false",
            "\"*\"",
            "\"passcode\"",
            "\"totp\"",
            "\"any\"",
            "\"10.0.0.0/8\"",
            "\"::/0\"",
            "-1",
            "9223372036854775807",
            "1.5",
            "nan",
            "{code}",
            "\"\"",
            "[",
            "]",
            "{",
            "}",
            "\n",
        ])
    }

    fn max_len(&self) -> usize {
        8192
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let text = String::from_utf8_lossy(input);
        let Ok(doc) = export::parse("import.toml", &text) else {
            return Ok(false);
        };
        round_trip("parsed document", &doc)?;
        let conn = self.store.conn();
        let tx = conn
            .unchecked_transaction()
            .map_err(|e| format!("setup: {e}"))?;
        let res = (|| -> Result<bool, String> {
            if let Err(e) = export::import(&tx, &doc, 0) {
                if self.exports.iter().any(|t| *t == text) {
                    return fail(format!(
                        "a document mfa-admin export wrote does not import: {e}"
                    ));
                }
                return Ok(false);
            }
            let e = |e: mfa_core::Error| format!("after an import that succeeded: {e}");
            let out = export::export(&tx).map_err(e)?;
            round_trip("exported document", &out)?;
            // Importing what was exported changes nothing.
            export::import(&tx, &out, 0)
                .map_err(|err| format!("re-import of an export fails: {err}"))?;
            let again = export::export(&tx).map_err(e)?;
            if again != out {
                return fail(format!(
                    "export/import is not a fixed point: {out:?} -> {again:?}"
                ));
            }
            Ok(true)
        })();
        drop(tx);
        res
    }
}

/// print(doc) must parse back to doc.
fn round_trip(what: &str, doc: &export::Document) -> Result<(), String> {
    let text = export::to_toml(doc).map_err(|e| format!("{what} cannot be written: {e}"))?;
    let back = export::parse("round-trip.toml", &text)
        .map_err(|e| format!("{what} written as TOML does not parse: {e}\n{text}"))?;
    // NaN is not equal to itself: compare the texts instead.
    let same = back == *doc || export::to_toml(&back).ok().as_deref() == Some(text.as_str());
    if same {
        Ok(())
    } else {
        Err(format!("{what} round trip changed it: {doc:?} -> {back:?}"))
    }
}
