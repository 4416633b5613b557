//! `init` as root: the ownership model (config root:sender 0640, spool subdirectories
//! root:sender 2770, runtime owned by the sender, database root's alone) and its repair of
//! whatever drifted, including messages written under a umask of 077. The sender's account
//! here is `nobody` (see `Env::bare`): the tests never create `mfa` on this machine; the
//! installed-system suite (tests/installed) sees `init` create it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::Env;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn owner(path: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

fn nobody() -> (u32, u32) {
    let u = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    (u.uid.as_raw(), u.gid.as_raw())
}

#[test]
fn init_gives_the_sender_what_it_needs_and_nothing_more() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let (uid, gid) = nobody();
    assert_eq!(owner(&env.config), (0, gid, 0o640), "config");
    assert_eq!(owner(&env.path("db")), (0, 0, 0o700), "database directory");
    assert_eq!(owner(&env.db()), (0, 0, 0o600), "database");
    assert_eq!(owner(&env.path("spool")), (0, 0, 0o755), "spool");
    for sub in ["tmp", "new", "cur", "failed"] {
        assert_eq!(
            owner(&env.path(&format!("spool/{sub}"))),
            (0, gid, 0o2770),
            "spool/{sub}"
        );
    }
    assert_eq!(owner(&env.path("run")), (uid, gid, 0o755), "runtime");
    let rows = env.json(&["init"]);
    let account = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["what"] == "sender account")
        .unwrap();
    assert_eq!(account["created"], false, "{rows}");
    assert!(account["path"].as_str().unwrap().starts_with("nobody "));
    assert!(
        rows.as_array().unwrap().iter().all(|r| r["repaired"] == ""),
        "a sound installation needs no repair: {rows}"
    );
}

#[test]
fn a_second_init_repairs_owners_modes_and_unreadable_messages() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let (uid, gid) = nobody();
    // What an administrator (or an old version) might leave behind.
    let chmod =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    nix::unistd::chown(&env.config, None, Some(nix::unistd::Gid::from_raw(0))).unwrap();
    chmod(&env.config, 0o600);
    chmod(&env.path("spool/new"), 0o700);
    nix::unistd::chown(
        &env.path("spool/cur"),
        None,
        Some(nix::unistd::Gid::from_raw(0)),
    )
    .unwrap();
    chmod(&env.path("db"), 0o755);
    nix::unistd::chown(&env.path("run"), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    // A message queued under umask 077 by an older writer: 0600 root:root.
    let stuck = env.path("spool/failed/1-x.json");
    std::fs::write(&stuck, "{}").unwrap();
    chmod(&stuck, 0o600);
    nix::unistd::chown(&stuck, None, Some(nix::unistd::Gid::from_raw(0))).unwrap();

    let out = env.ok(&["init"]);
    for what in ["configuration", "database directory", "runtime directory"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("repaired") && l.contains(what)),
            "{what} not reported repaired:\n{out}"
        );
    }
    assert!(out.contains("1 message file(s)"), "{out}");
    assert_eq!(owner(&env.config), (0, gid, 0o640));
    assert_eq!(owner(&env.path("spool/new")), (0, gid, 0o2770));
    assert_eq!(owner(&env.path("spool/cur")), (0, gid, 0o2770));
    assert_eq!(owner(&env.path("db")), (0, 0, 0o700));
    assert_eq!(owner(&env.path("run")), (uid, gid, 0o755));
    assert_eq!(owner(&stuck), (0, gid, 0o640));
    // And now nothing is left to repair.
    let again = env.ok(&["init"]);
    assert!(!again.contains("repaired"), "{again}");
}

#[test]
fn init_refuses_a_symlink_in_place_of_a_spool_directory() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::remove_dir(env.path("spool/tmp")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.path("spool/tmp")).unwrap();
    let out = env.run(&["init"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("spool/tmp"), "{}", out.stderr);
    // The target of the link was not chowned or chmodded to the sender's group.
    let (_, gid, _) = owner(&elsewhere);
    assert_ne!(gid, nobody().1);
}

#[test]
fn init_refuses_a_sender_user_that_is_not_a_name() {
    let env = Env::bare();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("user = \"nobody\"", "user = \"-o root\"");
    std::fs::write(&env.config, text).unwrap();
    let out = env.run(&["init"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("sender.user"), "{}", out.stderr);
    assert!(!env.db().exists(), "nothing may be created on bad input");
}

#[test]
fn init_refuses_to_take_over_a_directory_of_the_system() {
    for (key, value) in [
        ("runtime", "/run"),
        ("spool", "/var/spool/"),
        ("database", "/var/lib/mfa.db"),
    ] {
        let env = Env::bare();
        let text = std::fs::read_to_string(&env.config).unwrap();
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = \"{value}\"\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&env.config, text).unwrap();
        let before = owner(Path::new("/run"));
        let out = env.run(&["init"]);
        assert_eq!(out.code, 2, "{key}: {out:?}");
        assert!(
            out.stderr.contains(&format!("paths.{key}")) && out.stderr.contains("of its own"),
            "{}",
            out.stderr
        );
        assert_eq!(owner(Path::new("/run")), before);
        assert!(!env.db().exists());
    }
}

/// The sender's group can write in the spool: a "message" that is a link to a file of
/// root's (or a hard link to one, or a pipe) must not be chowned or chmodded by init, nor
/// stop it from repairing the rest.
#[test]
fn init_repairs_messages_without_following_what_the_sender_planted() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let (_, gid) = nobody();
    let secret = env.path("secret");
    std::fs::write(&secret, "root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, env.path("spool/failed/1-link.json")).unwrap();
    std::fs::hard_link(&secret, env.path("spool/failed/2-hard.json")).unwrap();
    nix::unistd::mkfifo(
        &env.path("spool/new/3-fifo.json"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let real = env.path("spool/new/4-real.json");
    std::fs::write(&real, "{}").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();

    let out = env.ok(&["init"]);
    assert_eq!(
        owner(&secret),
        (0, 0, 0o600),
        "the link target was touched:\n{out}"
    );
    assert_eq!(
        owner(&real).1,
        gid,
        "the real message was not repaired:\n{out}"
    );
    assert_eq!(owner(&real).2, 0o640);
    assert!(out.contains("2 entries left alone"), "{out}");
    assert!(out.contains("1 entry left alone"), "{out}");
}

/// A socket the sender's group bound in the spool cannot be opened (ENXIO): init leaves it
/// alone like a link or a pipe and still repairs the rest, rather than fail the repair.
#[test]
fn a_socket_in_the_spool_does_not_stop_init() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let _sock = std::os::unix::net::UnixListener::bind(env.path("spool/cur/1-sock.json")).unwrap();
    let real = env.path("spool/cur/2-real.json");
    std::fs::write(&real, "{}").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = env.ok(&["init"]);
    assert_eq!(owner(&real).2, 0o640, "{out}");
    assert!(out.contains("1 entry left alone"), "{out}");
}

/// init repairs a spool the running sender keeps changing: a message that goes away between
/// init's listing and its repair (claimed, sent, failed) is not an error.
#[test]
fn init_races_a_busy_sender() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to the sender's account)");
        return;
    }
    let env = Env::new();
    let cur = env.path("spool/cur");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let p = cur.join(format!("{i}-busy.json"));
                std::fs::write(&p, "{}").unwrap();
                // Leave a few behind so init always has something to list.
                if !i.is_multiple_of(64) {
                    std::fs::remove_file(&p).unwrap();
                }
                i += 1;
            }
        })
    };
    let failed: Vec<String> = (0..30)
        .map(|_| env.run(&["init"]))
        .filter(|o| o.code != 0)
        .map(|o| o.stderr)
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        failed.is_empty(),
        "init failed while the sender worked: {failed:?}"
    );
}

/// A typo that points two of mfa's directories at one place (`runtime` = the database's
/// directory) would have init give the database directory to the sender's account. init
/// refuses before it touches anything, naming both keys.
#[test]
fn init_refuses_directories_that_overlap() {
    for (key, value) in [
        ("runtime", "db"),
        ("runtime", "spool/new"),
        ("spool", "db/spool"),
        ("runtime", "."),
    ] {
        let env = Env::bare();
        std::fs::create_dir(env.path("db")).unwrap();
        let value = env.path(value);
        let text: String = std::fs::read_to_string(&env.config)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = \"{}\"\n", value.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&env.config, text).unwrap();
        let before = owner(&env.path("db"));
        let out = env.run(&["init"]);
        assert_eq!(out.code, 2, "{key} = {value:?}: {out:?}");
        assert!(
            out.stderr.contains(&format!("paths.{key}")) && out.stderr.contains("overlap"),
            "{}",
            out.stderr
        );
        assert_eq!(owner(&env.path("db")), before, "{key} = {value:?}");
        assert!(!env.db().exists());
    }
}

/// mfa-admin runs under umask 077: directories init has to create above the spool must
/// still let the sender through (0755), not be 0700.
#[test]
fn missing_parents_are_made_0755_whatever_the_umask() {
    let env = Env::bare();
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        &format!("spool = \"{}/spool\"", env.dir.path().display()),
        &format!("spool = \"{}/srv/mfa/spool\"", env.dir.path().display()),
    );
    assert!(text.contains("/srv/mfa/spool"));
    std::fs::write(&env.config, text).unwrap();
    env.ok(&["init"]);
    for d in ["srv", "srv/mfa"] {
        assert_eq!(owner(&env.path(d)).2, 0o755, "{d}");
    }
}

/// Every package install, reinstall and upgrade runs `init` (debian/mfa.postinst): on a
/// sound installation it must change nothing at all — no audit row, no new policy
/// generation, the snapshot's bytes as they were — and a snapshot that cannot be used is
/// rewritten and said so.
#[test]
fn init_on_a_sound_installation_changes_nothing() {
    let env = Env::new();
    env.ok(&["user", "add", "alice"]);
    let snap = env.path("db/mfa.db-policy");
    let (db_before, snap_before) = (env.dump(), std::fs::read(&snap).unwrap());
    let again = env.json(&["init"]);
    assert_eq!(env.dump(), db_before, "a second init changed the database");
    assert_eq!(
        std::fs::read(&snap).unwrap(),
        snap_before,
        "a second init rewrote the snapshot"
    );
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["repaired"] == ""),
        "{again}"
    );
    std::fs::write(&snap, b"garbage").unwrap();
    let out = env.ok(&["init"]);
    assert!(
        out.lines().any(|l| l.starts_with("repaired")
            && l.contains("policy snapshot")
            && l.contains("could not be used")),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&snap).unwrap(),
        snap_before,
        "the snapshot was not rebuilt"
    );
    assert_eq!(
        env.dump(),
        db_before,
        "repairing the snapshot changed the database"
    );
}

/// A database file SQLite cannot read (corrupt, or not a database at all): every command,
/// init included, names the file and the way out, exits 1 and leaves its bytes alone.
#[test]
fn a_corrupt_database_is_named_and_left_alone() {
    let env = Env::new();
    // (It corrupts its database: not compared with the fleet at the end.)
    env.single_machine();
    let mut junk = b"SQLite format 3\0".to_vec();
    junk.extend((0..=255u8).cycle().take(4096));
    for bytes in [junk, b"not a database at all".repeat(64)] {
        std::fs::write(env.db(), &bytes).unwrap();
        for args in [&["init"][..], &["user", "list"][..], &["doctor"][..]] {
            let o = env.run(args);
            assert_eq!(o.code, 1, "mfa-admin {args:?}: {o:?}");
            let db = env.db().display().to_string();
            assert!(
                o.stderr.contains(&db) || o.stdout.contains(&db),
                "mfa-admin {args:?} does not name {db}: {o:?}"
            );
            assert_eq!(
                std::fs::read(env.db()).unwrap(),
                bytes,
                "mfa-admin {args:?} wrote to it"
            );
        }
        let o = env.run(&["init"]);
        assert!(o.stderr.contains("restore it from a backup"), "{o:?}");
    }
}

/// A directory that must be root's (the store, the spool) but another user owns was
/// prepared by someone: init refuses to adopt it (chown it to root and keep what that user
/// left inside) and names the owner; root's own directories with a drifted owner are still
/// repaired (above), and the runtime directory follows a change of `[sender] user`.
#[test]
fn init_refuses_a_directory_another_user_prepared() {
    if !is_root() {
        eprintln!("skipped: needs root (chown to another user)");
        return;
    }
    let (uid, gid) = nobody();
    for dir in ["db", "spool", "spool/new", "run"] {
        let env = Env::new();
        // (It gives its database directory to another user: not compared with the fleet at the end.)
        env.single_machine();
        let path = env.path(dir);
        // The runtime directory of a previous sender account (daemon, uid 1): it follows
        // the configured one (nobody here).
        let stranger = if dir == "run" { 1 } else { uid };
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(stranger)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )
        .unwrap();
        let before = owner(&path);
        let o = env.run(&["init"]);
        if dir == "run" {
            assert_eq!(o.code, 0, "{o:?}");
            assert_eq!(owner(&path), (uid, gid, 0o755), "{o:?}");
            continue;
        }
        assert_eq!(o.code, 1, "{dir}: {o:?}");
        assert!(
            o.stderr.contains("owned by nobody") && o.stderr.contains("move it away"),
            "{dir}: {o:?}"
        );
        assert_eq!(owner(&path), before, "{dir}: init changed its owner");
    }
}
