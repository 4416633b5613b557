//! `init`: sets up (and, run again, repairs) an installation: the sender's system account,
//! the configuration file, the database and its directory, the spool and the runtime
//! directory, each with the owner and mode below. Idempotent: a second run changes nothing
//! on a sound installation and puts back any owner or mode that drifted.
//!
//! The ownership model (root runs `mfa-admin` and the PAM module runs as euid 0 inside sshd,
//! su, sudo, login; the sender runs as the unprivileged account `[sender] user`, `mfa`):
//!
//! | path | owner | mode | why |
//! |---|---|---|---|
//! | config (`/etc/mfa/mfa.toml`) | root:mfa | 0640 | the sender reads its transport settings; only root writes it |
//! | database directory (`/var/lib/mfa`) | root:root | 0700 | rules, contacts, TOTP keys, the passcode hash key: the sender never reads them |
//! | database (`mfa.db`) | root:root | 0600 | as above |
//! | spool (`/var/spool/mfa`) | root:root | 0755 | nobody else may swap `tmp/` or `new/` for a symlink |
//! | `tmp/ new/ cur/ failed/` | root:mfa | 2770 | the module writes, the sender claims, deletes and fails messages |
//! | message files | root:mfa | 0640 | set explicitly by the writer, whatever its umask (`mfa_core::spool`) |
//! | runtime (`/run/mfa`) | mfa:mfa | 0755 | the sender's heartbeat (everyone may read it) and status (0640: it may name a recipient) |
//!
//! Run as root, `init` creates the account when it is missing (`useradd --system`, no home,
//! no shell). Run by another user (a private test installation) it cannot change owners: the
//! files stay that user's, and the spool subdirectories are 0700.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use mfa_core::config::{Config, ConfigSource};
use mfa_core::snapshot::Finding;
use mfa_core::store::Store;
use mfa_core::{Error, Result};
use nix::unistd::{Gid, Group, Uid, User};
use serde::Serialize;

use crate::output::json;

/// One thing `init` looked after.
#[derive(Serialize)]
struct Done {
    path: String,
    what: &'static str,
    /// True when init created it now; false when it was already there.
    created: bool,
    /// What init changed on something that existed ("mode 0600 -> 0640"); empty if nothing.
    repaired: String,
}

impl Done {
    fn new(path: &Path, what: &'static str, (created, repaired): (bool, String)) -> Done {
        Done {
            path: path.display().to_string(),
            what,
            created,
            repaired,
        }
    }
}

/// Owner and mode a path must have.
#[derive(Clone, Copy)]
struct Want {
    mode: u32,
    /// None: leave the owner as it is (not root).
    owner: Option<(Uid, Gid)>,
}

pub fn run(source: &ConfigSource, as_json: bool) -> Result<()> {
    let is_root = Uid::effective().is_root();
    let mut done = Vec::new();
    // The configuration first: it names the sender's account.
    let config_created = write_default_config(&source.path)?;
    let config = Config::load(&ConfigSource {
        path: source.path.clone(),
        explicit: true,
    })?;
    refuse_shared_dirs(&config)?;
    let account = if is_root {
        let (user, created) = sender_account(&config.sender.user)?;
        // The spool's messages (passcodes) and the configuration become readable by the
        // account's group: say so when others share it (doctor warns too). debian's postinst
        // refuses such an account `mfa` outright; a configured `[sender] user` is the
        // administrator's choice, warned about on every run.
        if let Ok(Some(s)) = super::doctor::files::Sender::lookup(&user.name)
            && let Some(why) = super::doctor::files::shared_with_others(&s)
        {
            eprintln!(
                "warning: {why}: they can read every queued passcode and mfa.toml; give the \
                 sender an account and group of its own ([sender] user = \"mfa\")"
            );
        }
        done.push(Done {
            path: format!("{} (uid {}, gid {})", user.name, user.uid, user.gid),
            what: "sender account",
            created,
            repaired: String::new(),
        });
        Some(user)
    } else {
        None
    };
    let root = |mode| Want {
        mode,
        owner: is_root.then_some((Uid::from_raw(0), Gid::from_raw(0))),
    };
    let root_group = |mode| Want {
        mode,
        owner: account.as_ref().map(|u| (Uid::from_raw(0), u.gid)),
    };
    let private = account.is_none();

    let cfg_want = if private {
        root(0o600)
    } else {
        root_group(0o640)
    };
    done.push(Done::new(
        &source.path,
        "configuration",
        (config_created, repair(&source.path, cfg_want)?),
    ));

    let p = &config.paths;
    let db_dir = p
        .database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    done.push(Done::new(
        db_dir,
        "database directory",
        ensure_dir(db_dir, root(0o700))?,
    ));
    // The spool root stays root's and closed to writes: were it group-writable, the sender's
    // group could swap tmp/ or new/ for a symlink and have the module (root) write elsewhere.
    done.push(Done::new(
        &p.spool,
        "spool",
        ensure_dir(&p.spool, root(0o755))?,
    ));
    let sub_want = if private {
        root(0o700)
    } else {
        root_group(0o2770)
    };
    for sub in mfa_core::spool::SUBDIRS {
        let d = p.spool.join(sub);
        let (created, mut repaired) = ensure_dir(&d, sub_want)?;
        // Messages written before a repair (under a umask of 077, say) become readable again.
        if !private {
            repaired.push_str(&repair_messages(
                &d,
                Want {
                    mode: 0o640,
                    ..sub_want
                },
            )?);
        }
        done.push(Done::new(&d, "spool", (created, repaired)));
    }
    let runtime_want = Want {
        mode: 0o755,
        owner: account.as_ref().map(|u| (u.uid, u.gid)),
    };
    done.push(Done::new(
        &p.runtime,
        "runtime directory",
        ensure_dir(&p.runtime, runtime_want)?,
    ));

    // Opening migrates an older schema (a package upgrade runs init) and rewrites a snapshot
    // that cannot be used: look at it first, to say so.
    let damaged = match p.database.exists() {
        true => mfa_core::snapshot::verify(&p.database).err(),
        false => None,
    };
    let (mut store, db_created) = Store::create(&p.database)?;
    if db_created {
        let detail = format!("database {}", p.database.display());
        store.change(&crate::actor::actor(), "init", |_| Ok(((), detail)))?;
    }
    let db_repaired = repair(&p.database, root(0o600))?;
    done.push(Done::new(
        &p.database,
        "database",
        (db_created, db_repaired),
    ));
    // On a sound installation nothing is written: no audit row, no new snapshot generation
    // (every reinstall and upgrade of the package runs init). A snapshot that is not what
    // the database holds is rewritten, and said so.
    let snapshot = mfa_core::snapshot::check_and_repair(&mut store)?;
    let repaired = match (&snapshot.finding, damaged) {
        (Finding::Sound | Finding::Missing, Some(d)) => {
            format!("could not be used ({d}); rewritten")
        }
        (Finding::Sound | Finding::Missing, None) => String::new(),
        (f, _) => format!("{f}; rewritten"),
    };
    done.push(Done::new(
        &mfa_core::snapshot::path_for(&p.database),
        "policy snapshot",
        (db_created || snapshot.finding == Finding::Missing, repaired),
    ));

    if as_json {
        return json(&done);
    }
    for d in &done {
        let state = match (d.created, d.repaired.is_empty()) {
            (true, _) => "created ",
            (false, true) => "ok      ",
            (false, false) => "repaired",
        };
        let extra = if d.repaired.is_empty() {
            String::new()
        } else {
            format!("  ({})", d.repaired.trim_start_matches("; "))
        };
        println!("{state}  {:<18}  {}{extra}", d.what, d.path);
    }
    if !is_root {
        println!(
            "\nnot run as root: owners were left as they are and the sender's account was not checked"
        );
    }
    let enabled = mfa_core::store::rules::settings(store.conn())
        .map(|s| s.enabled)
        .unwrap_or(false);
    if enabled {
        println!("\nmfa is initialised; 2FA is on (`mfa-admin settings show`).");
    } else {
        println!("\nmfa is initialised; 2FA stays off until `mfa-admin settings set enabled=on`.");
    }
    Ok(())
}

/// Directories the system shares with other programs: init would chown or chmod them.
const SHARED_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/run/user",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/local",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/var/spool",
    "/var/tmp",
];

/// Refuses a configuration whose directories are the system's own (`runtime = "/run"`) or
/// overlap (`runtime` = the database's directory): init repairs the owner and mode of its
/// directories, which must be mfa's alone and apart.
fn refuse_shared_dirs(config: &Config) -> Result<()> {
    let p = &config.paths;
    let db_dir = p.database.parent().unwrap_or(Path::new("/"));
    let mut dirs: Vec<(&str, std::path::PathBuf)> = Vec::new();
    for (key, dir, example) in [
        ("paths.database", db_dir, "/var/lib/mfa/mfa.db"),
        ("paths.spool", p.spool.as_path(), "/var/spool/mfa"),
        ("paths.runtime", p.runtime.as_path(), "/run/mfa"),
    ] {
        let clean: std::path::PathBuf = dir.components().collect();
        if SHARED_DIRS.iter().any(|s| Path::new(s) == clean) {
            return Err(mfa_core::invalid!(
                "{key} puts mfa's files in {}, a directory the system shares with other \
                 programs; give mfa a directory of its own, such as {example}",
                clean.display()
            ));
        }
        dirs.push((key, clean));
    }
    // Each directory gets its own owner and mode: one inside another (runtime = the
    // database's directory) would hand the database to the sender's account.
    for (i, (ka, a)) in dirs.iter().enumerate() {
        for (kb, b) in &dirs[i + 1..] {
            if a.starts_with(b) || b.starts_with(a) {
                return Err(mfa_core::invalid!(
                    "{ka} ({}) and {kb} ({}) overlap: init gives each its own owner and mode \
                     (the database's directory is root's alone, the runtime directory the \
                     sender's); give each a directory of its own, apart from the others",
                    a.display(),
                    b.display()
                ));
            }
        }
    }
    Ok(())
}

/// Finds the sender's account, creating it as a system account (no home, no login shell)
/// when it is missing. Returns it and whether it was created.
fn sender_account(name: &str) -> Result<(User, bool)> {
    let lookup = || {
        User::from_name(name).map_err(|e| {
            Error::io(
                Path::new("/etc/passwd"),
                std::io::Error::other(format!("cannot look up user {name:?}: {e}")),
            )
        })
    };
    if let Some(u) = lookup()? {
        return Ok((u, false));
    }
    let mut cmd = std::process::Command::new("useradd");
    cmd.args(["--system", "--home-dir", "/nonexistent", "--no-create-home"])
        .args(["--shell", "/usr/sbin/nologin", "--comment", "mfa sender"]);
    // useradd --user-group refuses when a group of that name already exists.
    if Group::from_name(name).ok().flatten().is_some() {
        cmd.args(["--gid", name]);
    } else {
        cmd.arg("--user-group");
    }
    let out = cmd.arg(name).output().map_err(|e| {
        Error::Failed(format!(
            "cannot run useradd to create the sender's account {name:?}: {e}; create it with \
             `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin {name}` \
             and run init again"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "useradd could not create the sender's account {name:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    match lookup()? {
        Some(u) => Ok((u, true)),
        None => Err(Error::Failed(format!(
            "useradd created {name:?} but it cannot be looked up (check /etc/nsswitch.conf)"
        ))),
    }
}

/// Writes the default configuration if the file does not exist; returns whether it did.
fn write_default_config(path: &Path) -> Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        ensure_dir(
            dir,
            Want {
                mode: 0o755,
                owner: None,
            },
        )?;
    }
    let text = Config::default().to_toml();
    // Private until `repair` gives the sender's group read access.
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(Error::io(path, e)),
    };
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(|e| Error::io(path, e))?;
    Ok(true)
}

/// Creates a directory (missing parents 0755) or repairs an existing one. Returns whether
/// it was created and what was repaired.
fn ensure_dir(dir: &Path, want: Want) -> Result<(bool, String)> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => return Ok((false, repair(dir, want)?)),
        Ok(_) => {
            return Err(Error::Failed(format!(
                "{}: exists but is not a directory; move it away and run init again",
                dir.display()
            )));
        }
        Err(_) => {}
    }
    // Missing parents are made 0755 one by one, whatever the umask (mfa-admin runs under
    // 077): a 0700 /srv/mfa would keep the sender out of /srv/mfa/spool.
    let missing: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    for parent in missing.into_iter().rev() {
        DirBuilder::new()
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io(parent, e))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(parent, e))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    repair(dir, want)?;
    Ok((true, String::new()))
}

/// Sets owner and mode (owner first: chown clears set-group-ID) of a file or directory.
/// Returns what changed, as "; mode 0600 -> 0640; group 0 -> 998", or "" when nothing did.
///
/// Works on an open descriptor, never on the name again: the sender's group may write in
/// the spool, and a message it swapped for a link to /etc/shadow between a check and a
/// chown must not hand that file to the group. A link, anything but a regular file or a
/// directory, and a file with other hard links are refused ([`Error::Insecure`]).
fn repair(path: &Path, want: Want) -> Result<String> {
    use nix::fcntl::OFlag;
    let insecure = |why: &str| {
        Error::Insecure(format!(
            "{}: {why}; mfa's files must be its own real files and directories — move it \
             away and run init again",
            path.display()
        ))
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits())
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(n) if n == nix::errno::Errno::ELOOP as i32 => insecure("is a symbolic link"),
            _ => Error::io(path, e),
        })?;
    let meta = f.metadata().map_err(|e| Error::io(path, e))?;
    if !(meta.is_file() || meta.is_dir()) {
        return Err(insecure("is neither a regular file nor a directory"));
    }
    if meta.is_file() && meta.nlink() > 1 {
        return Err(insecure("has other hard links"));
    }
    // A directory that must be root's (the store, the spool and its subdirectories) but is
    // another user's is not one mfa made or drifted into: someone prepared it (and may keep
    // a handle or a subdirectory in it), and adopting it would hand them the rules or the
    // passcodes. The runtime directory is the sender's: it changes hands with `[sender]
    // user`, and holds no secret.
    if let Some((uid, _)) = want.owner
        && uid.is_root()
        && meta.is_dir()
        && meta.uid() != 0
    {
        let who = User::from_uid(Uid::from_raw(meta.uid()))
            .ok()
            .flatten()
            .map_or_else(
                || format!("uid {}", meta.uid()),
                |u| format!("{} (uid {})", u.name, u.uid),
            );
        return Err(Error::Insecure(format!(
            "{}: owned by {who}, which mfa never makes it: someone else prepared this directory; \
             look at what is in it, move it away and run init again",
            path.display()
        )));
    }
    let mut changed = String::new();
    if let Some((uid, gid)) = want.owner
        && (meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw())
    {
        nix::unistd::fchown(&f, Some(uid), Some(gid)).map_err(|e| Error::io(path, e.into()))?;
        if meta.uid() != uid.as_raw() {
            changed.push_str(&format!("; owner {} -> {}", meta.uid(), uid));
        }
        if meta.gid() != gid.as_raw() {
            changed.push_str(&format!("; group {} -> {}", meta.gid(), gid));
        }
    }
    let now = f.metadata().map_err(|e| Error::io(path, e))?.mode() & 0o7777;
    if now != want.mode {
        f.set_permissions(std::fs::Permissions::from_mode(want.mode))
            .map_err(|e| Error::io(path, e))?;
        // Report the mode as it was before init touched it (a chown may have cleared bits).
        let before = meta.mode() & 0o7777;
        if before != want.mode {
            changed.push_str(&format!("; mode {before:04o} -> {:04o}", want.mode));
        }
    }
    Ok(changed)
}

/// Repairs every regular file in a spool subdirectory; returns "; N message file(s)
/// repaired" or "".
fn repair_messages(dir: &Path, want: Want) -> Result<String> {
    let (mut n, mut skipped) = (0, 0);
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        // Links, pipes, sockets and hard-linked files are left alone (and said so): the
        // sender's group can put anything here, and it must not make init fail or chown
        // elsewhere. A socket cannot even be opened (ENXIO): judge by the entry's type first.
        let plain = entry.file_type().is_ok_and(|t| t.is_file() || t.is_dir());
        if !plain {
            skipped += 1;
            continue;
        }
        match repair(&entry.path(), want) {
            Ok(c) if !c.is_empty() => n += 1,
            Ok(_) => {}
            Err(Error::Insecure(_)) => skipped += 1,
            // The running sender claimed, sent or failed it meanwhile: nothing to repair.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let mut text = String::new();
    if n > 0 {
        text.push_str(&format!(
            "; {n} message file(s) made readable by the sender"
        ));
    }
    if skipped > 0 {
        text.push_str(&format!(
            "; {skipped} {} left alone: not a regular file of mfa's (a link, a pipe, a hard \
             link) — look and remove",
            if skipped == 1 { "entry" } else { "entries" }
        ));
    }
    Ok(text)
}
