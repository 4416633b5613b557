//! mfa-check driven over its channel as pam_mfa drives it: a private installation in a
//! temporary directory (MFA_CONFIG: the helper is not setuid here), the three flows, the
//! refusals of callers and services `[callers]` does not list (as nobody, via setpriv),
//! hostile frames, a caller that leaves mid-conversation; one real set-user-ID copy
//! (`setuid.rs`) that must ignore MFA_CONFIG; and what a caller hands down across exec
//! (timers, descriptors, a terminal, scheduling: `signals.rs`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::new_without_default
)]

mod flows;
mod hostile;
mod setuid;
mod signals;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use mfa_core::contact::Contact;
use mfa_core::helper::{self, Ask, Frame, Mode, Secret};
use mfa_core::settings::FailMode;
use mfa_core::store::{Store, people, rules};

pub const HELPER: &str = env!("CARGO_BIN_EXE_mfa-check");
pub const SERVICE: &str = "pg-test";

/// A private installation: store, spool, runtime directory, and mfa.toml with
/// `[callers] nobody = [SERVICE]`.
pub struct Install {
    pub dir: tempfile::TempDir,
}

impl Install {
    pub fn new() -> Install {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in [
            "db",
            "spool/tmp",
            "spool/new",
            "spool/cur",
            "spool/failed",
            "run",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(
            root.join("mfa.toml"),
            format!(
                "[paths]\ndatabase = \"{0}/db/mfa.db\"\nspool = \"{0}/spool\"\nruntime = \"{0}/run\"\n\n\
                 [callers]\nnobody = [\"{SERVICE}\"]\n",
                root.display()
            ),
        )
        .unwrap();
        Store::create(&root.join("db/mfa.db")).unwrap();
        let i = Install { dir };
        let f = std::fs::File::create(i.path("run/sender.heartbeat")).unwrap();
        f.set_modified(std::time::SystemTime::now()).unwrap();
        i.set("enabled", "on");
        i.set("repeat_window", "0");
        i.user("ann", &["ann@example.com"]);
        i
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn config(&self) -> PathBuf {
        self.path("mfa.toml")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path("db/mfa.db")).unwrap()
    }

    pub fn set(&self, key: &str, value: &str) {
        let v = mfa_core::settings::spec(key)
            .unwrap()
            .normalize(value)
            .unwrap();
        self.store()
            .change("test", "settings set", |tx| {
                Ok((rules::set_setting(tx, key, &v)?, String::new()))
            })
            .unwrap();
    }

    pub fn method(&self, method: &str) {
        self.store()
            .change("t", "t", |tx| {
                Ok((rules::set_service(tx, "*", method)?, String::new()))
            })
            .unwrap();
    }

    pub fn user(&self, name: &str, emails: &[&str]) {
        self.store()
            .change("test", "user add", |tx| {
                people::add_user(tx, name, "", 0)?;
                for e in emails {
                    people::add_contact(tx, name, &Contact::email(e).unwrap(), "", None, 0)?;
                }
                Ok(((), String::new()))
            })
            .unwrap();
    }

    /// The auth log's `outcome:reason`, oldest first.
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

    /// Spooled message bodies, oldest first.
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

    /// The passcode digits of the newest message.
    pub fn mailed_code(&self) -> String {
        let m = self.messages();
        let body = m.last().expect("a message")["body"]
            .as_str()
            .unwrap()
            .to_string();
        let at = body
            .char_indices()
            .find(|(k, c)| {
                c.is_ascii_uppercase()
                    && body[k + 1..].starts_with('-')
                    && body[k + 2..].starts_with(|d: char| d.is_ascii_digit())
            })
            .expect("a passcode in the body")
            .0;
        body[at + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect()
    }

    /// Every file under the installation, for "nothing left half-written".
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut v = Vec::new();
        walk(self.dir.path(), &mut v);
        v.sort();
        v
    }

    /// Runs the helper (as root, not setuid) with this installation's configuration.
    pub fn spawn(&self) -> Child {
        spawn(Command::new(HELPER).env("MFA_CONFIG", self.config()))
    }
}

/// Starts a helper command with piped stdin and stdout, stderr discarded.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A command that runs `program` as nobody:nogroup without supplementary groups.
pub fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        "--reuid",
        "nobody",
        "--regid",
        "nogroup",
        "--clear-groups",
        "--",
    ])
    .arg(program)
    .current_dir("/");
    c
}

pub fn ask(mode: Mode, user: &str, rhost: &str, secret: Option<&[u8]>) -> Frame {
    Frame::Ask(Ask {
        mode,
        fail_mode: FailMode::Secure,
        separator: b',',
        service: SERVICE.into(),
        user: user.into(),
        rhost: rhost.into(),
        tty: String::new(),
        secret: secret.map(|s| Secret(s.to_vec())),
    })
}

/// What one run showed and ended with.
#[derive(Debug)]
pub struct Run {
    /// The conversation frames, in order.
    pub shown: Vec<Frame>,
    /// The final frame (an outcome, a before reply, a refusal), or the error reading it.
    pub last: Result<Frame, helper::ProtoError>,
    pub exit: Option<i32>,
}

/// Sends `first` (raw bytes), then answers each prompt with `answer` (None: the
/// conversation fails) and each message with Shown, until a final frame.
pub fn drive(
    mut child: Child,
    first: &[u8],
    mut answer: impl FnMut(&str) -> Option<Vec<u8>>,
) -> Run {
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let _ = stdin.write_all(first);
    let mut shown = Vec::new();
    let last = loop {
        match helper::read_frame(&mut stdout) {
            Ok(Frame::Prompt { text, echo }) => {
                let reply = match answer(&text) {
                    Some(a) => Frame::Answer(Secret(a)),
                    None => Frame::ConvFailed,
                };
                shown.push(Frame::Prompt { text, echo });
                stdin.write_all(&reply.encode().unwrap()).unwrap();
            }
            Ok(m @ Frame::Message { .. }) => {
                shown.push(m);
                stdin.write_all(&Frame::Shown.encode().unwrap()).unwrap();
            }
            other => break other,
        }
    };
    drop(stdin);
    let mut rest = Vec::new();
    let _ = stdout.read_to_end(&mut rest);
    assert!(rest.is_empty(), "bytes after the final frame: {rest:?}");
    let exit = child.wait().unwrap().code();
    Run { shown, last, exit }
}

/// Sends a plain ask for ann from `rhost` and asserts that the helper's first frame is its
/// prompt (it then waits for the answer).
pub fn ask_until_prompt(stdin: &mut dyn Write, stdout: &mut dyn Read, rhost: &str) {
    stdin
        .write_all(&ask(Mode::Plain, "ann", rhost, None).encode().unwrap())
        .unwrap();
    let first = helper::read_frame(stdout);
    assert!(matches!(first, Ok(Frame::Prompt { .. })), "{first:?}");
}

/// Answers the prompt with the mailed passcode and asserts that the login succeeds.
pub fn answer_succeeds(i: &Install, stdin: &mut dyn Write, stdout: &mut dyn Read) {
    stdin
        .write_all(
            &Frame::Answer(Secret(i.mailed_code().into_bytes()))
                .encode()
                .unwrap(),
        )
        .unwrap();
    let last = helper::read_frame(stdout);
    assert!(
        matches!(
            last,
            Ok(Frame::Outcome(mfa_core::auth::Outcome::Success { .. }))
        ),
        "{last:?}"
    );
}

/// Runs one ask against the installation.
pub fn run(i: &Install, frame: &Frame, answer: impl FnMut(&str) -> Option<Vec<u8>>) -> Run {
    drive(i.spawn(), &frame.encode().unwrap(), answer)
}

/// A directory nobody can read, holding a configuration that nobody can read too.
pub fn world_readable(i: &Install) {
    for p in [i.dir.path().to_path_buf(), i.config()] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}
