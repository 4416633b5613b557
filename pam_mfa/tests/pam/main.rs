//! pam_mfa.so through the system's libpam: every branch of the decision, every prompt,
//! passcodes (wrong, expired, resent), lockout, self-enrollment, fail modes, interrupted and
//! hostile conversations, and concurrent logins. Each test builds a private installation in
//! a temporary directory.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default
)]

mod abuse;
mod delivery;
mod duo;
mod failopen;
mod families;
mod flows;
mod harness;
mod hostile;
mod integrity;
mod oneword;
mod races;
mod totp;
mod unprivileged;
mod waits;

use std::path::PathBuf;

use harness::Answer;
use mfa_core::contact::Contact;
use mfa_core::store::{Store, people, rules};

/// A private installation with a PAM service file `mfa-test` that runs pam_mfa and, when
/// the module ignores, pam_debug returning PAM_PERM_DENIED (so a bypass is visible).
pub struct Install {
    pub dir: tempfile::TempDir,
    /// Messages whose code a conversation already read (a user reads each mail once).
    seen: std::cell::RefCell<std::collections::HashSet<String>>,
}

impl Install {
    pub fn new() -> Install {
        Install::with_args("")
    }

    pub fn with_args(extra: &str) -> Install {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "db",
            "spool/tmp",
            "spool/new",
            "spool/cur",
            "spool/failed",
            "run",
            "pam.d",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let config = root.join("mfa.toml");
        std::fs::write(
            &config,
            format!("[paths]\ndatabase = \"{0}/db/mfa.db\"\nspool = \"{0}/spool\"\nruntime = \"{0}/run\"\n", root.display()),
        )
        .unwrap();
        Store::create(&root.join("db/mfa.db")).unwrap();
        let module = harness::module_path();
        std::fs::write(
            root.join("pam.d/mfa-test"),
            format!(
                "auth [success=done ignore=ignore default=die] {} config={} {extra}\nauth requisite pam_debug.so auth=perm_denied\n",
                module.display(),
                config.display()
            ),
        )
        .unwrap();
        let i = Install {
            dir,
            seen: Default::default(),
        };
        i.heartbeat(0);
        i.set("enabled", "on");
        i
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path("db/mfa.db")).unwrap()
    }

    /// Touches the sender's heartbeat as if written `age` seconds ago.
    pub fn heartbeat(&self, age: u64) {
        let p = self.path("run/sender.heartbeat");
        let f = std::fs::File::create(&p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(age))
            .unwrap();
    }

    pub fn set(&self, key: &str, value: &str) {
        let mut s = self.store();
        let v = mfa_core::settings::spec(key)
            .unwrap()
            .normalize(value)
            .unwrap();
        s.change("test", "settings set", |tx| {
            Ok((rules::set_setting(tx, key, &v)?, String::new()))
        })
        .unwrap();
    }

    /// Adds a user with the given email contacts.
    pub fn user(&self, name: &str, emails: &[&str]) {
        let mut s = self.store();
        s.change("test", "user add", |tx| {
            people::add_user(tx, name, "", 0)?;
            for e in emails {
                people::add_contact(tx, name, &Contact::email(e).unwrap(), "", None, 0)?;
            }
            Ok(((), String::new()))
        })
        .unwrap();
    }

    /// Runs SQL on the database behind mfa's back, then rewrites the policy snapshot as
    /// `mfa-admin` would at its next start.
    pub fn sql(&self, sql: &str) {
        rusqlite::Connection::open(self.path("db/mfa.db"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        self.store().rebuild_snapshot().unwrap();
    }

    /// A number from the database, after the module's auth-log inbox was moved into it.
    pub fn count(&self, sql: &str) -> i64 {
        self.store().ingest_auth_log().unwrap();
        rusqlite::Connection::open(self.path("db/mfa.db"))
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    fn db(&self) -> PathBuf {
        self.path("db/mfa.db")
    }

    /// The user's running failure count (a file beside the database).
    pub fn failures(&self, user: &str) -> u32 {
        mfa_core::state::failures(&self.db(), user).count
    }

    /// Outstanding challenges.
    pub fn challenges(&self) -> usize {
        mfa_core::state::challenges(&self.db()).unwrap().len()
    }

    /// What `mfa-admin user unlock` does.
    pub fn unlock(&self, user: &str) {
        people::unlock_user(&mut self.store(), "test", user).unwrap();
    }

    /// The auth log's outcome column, oldest first.
    pub fn outcomes(&self) -> Vec<String> {
        self.store().ingest_auth_log().unwrap();
        let c = rusqlite::Connection::open(self.path("db/mfa.db")).unwrap();
        let mut st = c
            .prepare("SELECT outcome || ':' || reason FROM auth_log ORDER BY id")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    pub fn auth(&self, user: &str, rhost: Option<&str>, answer: Answer<'_>) -> harness::Result {
        harness::authenticate(&self.path("pam.d"), "mfa-test", user, rhost, answer)
    }

    /// Spooled messages, oldest first.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.path("spool/new"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }
}

/// The code for a prompt `Passcode V- (...)`: taken from the newest spooled message not
/// read before whose body carries `V-` and digits, as the user reads it in their mail.
/// (Message times are too coarse to order a resend after its original, and two codes may
/// share a prefix letter, so each message is read once.)
pub fn code_for(install: &Install, prompt: &str) -> Option<String> {
    let prefix = prompt.strip_prefix("Passcode ")?.chars().next()?;
    let needle = format!("{prefix}-");
    let mut seen = install.seen.borrow_mut();
    install.messages().iter().rev().find_map(|m| {
        let id = m["id"].as_str()?.to_string();
        if seen.contains(&id) {
            return None;
        }
        let body = m["body"].as_str()?;
        let i = body.find(&needle)?;
        let digits: String = body[i + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if digits.is_empty() {
            return None;
        }
        seen.insert(id);
        Some(digits)
    })
}
