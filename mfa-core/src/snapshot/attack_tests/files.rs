//! Attacks through the files beside the database: the old snapshot cut or grown under a
//! patch's copy, a symlink, a directory or a FIFO at the snapshot's or the lock's path, and a
//! file whose blocks check but whose index misplaces a user.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;

/// The old file changes under a patch (a hard link someone writes through): cut short, the
/// copy fails and nothing replaces the file (no temporary left); grown, only the ranges the
/// patch names are copied and the result is sound.
#[test]
fn the_old_file_cut_or_grown_under_a_copy() {
    let (dir, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let changes = Changes {
        users: BTreeSet::from(["user010".to_string()]),
        ..Changes::default()
    };
    s.change("t", "t", |tx| {
        Ok((people::set_enabled(tx, "user010", false)?, String::new()))
    })
    .unwrap();
    // The new file as the old one: patch it again with the same change (same content).
    let old = open(&db);
    let (head, body) = s.read(|tx| patch(tx, &old, &changes)).unwrap().unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let e = write_pieces(&db, Some(&old), &head, body, false).unwrap_err();
    assert!(e.to_string().contains("-policy"), "{e}");
    assert_eq!(
        std::fs::metadata(&p).unwrap().len(),
        len / 2,
        "not replaced"
    );
    let temps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .count();
    assert_eq!(temps, 0, "a temporary file was left");
    s.rebuild_snapshot().unwrap();
    let old = open(&db);
    let (head, body) = s.read(|tx| patch(tx, &old, &changes)).unwrap().unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, &[0xAA; 4096]).unwrap();
    drop(f);
    write_pieces(&db, Some(&old), &head, body, false).unwrap();
    agrees(&mut s);
}

/// The snapshot's path holds a symlink to a sound copy or a directory before a change: a
/// symlink is not followed (not patched from: built whole) and is replaced by a regular
/// file (its target untouched);
/// a directory makes the change fail, naming the path, with nothing committed, and every
/// `mfa-admin` command's repair fails until it is removed.
#[test]
fn a_symlink_or_a_directory_at_the_snapshots_path() {
    let (dir, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    let copy = dir.path().join("copy");
    std::fs::rename(&p, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &p).unwrap();
    let kept = std::fs::read(&copy).unwrap();
    assert!(!change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        kept,
        "the target is untouched"
    );
    agrees(&mut s);

    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    let g = current_generation(s.conn()).unwrap();
    let e = s
        .change("t", "t", |tx| {
            Ok((people::add_user(tx, "bbb", "", 0)?, String::new()))
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains(&p.display().to_string()), "{e}");
    assert!(
        people::user(s.conn(), "bbb").unwrap().is_none(),
        "rolled back"
    );
    assert_eq!(current_generation(s.conn()).unwrap(), g);
    assert!(
        s.repair_snapshot().is_err(),
        "a directory cannot be replaced"
    );
    std::fs::remove_dir(&p).unwrap();
    assert!(s.repair_snapshot().unwrap().is_some());
    assert!(change(&mut s, |tx| people::add_user(tx, "bbb", "", 0)));
    agrees(&mut s);
}

/// A FIFO at the snapshot's path (an administrator's `mkfifo`, a restore tool): opening it
/// for reading blocks until a writer comes, so a login's `Snapshot::load` (and a change,
/// holding both locks) must not hang on it.
#[test]
fn a_fifo_at_the_snapshots_path_does_not_hang_a_login() {
    let (_d, s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    std::fs::remove_file(&p).unwrap();
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let opener = {
        let db = db.clone();
        std::thread::spawn(move || {
            let r = Snapshot::open(&db).map(|s| s.is_some());
            let _ = tx.send(r);
        })
    };
    let got = rx.recv_timeout(Duration::from_secs(2));
    if got.is_err() {
        // Release the blocked open (a writer that closes at once: it reads end of file).
        use std::os::unix::fs::OpenOptionsExt;
        let _w = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&p);
    }
    opener.join().unwrap();
    let got = got.expect("Snapshot::open still blocked on a FIFO after 2 s");
    assert!(got.is_err(), "a FIFO is no snapshot: {got:?}");
}

/// A FIFO at the lock file's path: every writer of the snapshot opens it for writing,
/// which blocks until a reader comes, so a login's lockout (bounded to a few seconds by its
/// lock wait) must not hang on it.
#[test]
fn a_fifo_at_the_lock_path_does_not_hang_a_lockout() {
    let (_d, s) = populated();
    let db = s.path().to_path_buf();
    let p = lock_path(&db);
    let _ = std::fs::remove_file(&p);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let locker = {
        let db = db.clone();
        std::thread::spawn(move || {
            let r = lock(&db, true).map(|_| ()).map_err(|e| e.to_string());
            let _ = tx.send(r);
        })
    };
    let got = rx.recv_timeout(Duration::from_secs(5));
    if got.is_err() {
        use std::os::unix::fs::OpenOptionsExt;
        let _r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&p);
        std::thread::sleep(Duration::from_millis(50));
    }
    locker.join().unwrap();
    let got = got.expect("snapshot::lock still blocked on a FIFO after 5 s");
    assert!(got.is_err(), "a FIFO is no lock file");
}

/// A file whose blocks all check and whose content (the records in order) is a build's,
/// but whose index names the wrong first user for a block (what a patch that misplaced a
/// user would write): a login cannot find that user ("unknown user", which
/// `unassigned=allow` lets in), so `maintain`'s check must not call the file sound. Its
/// comparison concatenates the blocks and never checks a block's names against its index
/// entry; see the report.
#[test]
fn a_file_whose_index_misplaces_a_user_is_not_sound() {
    use super::encode::{Piece, assemble, fixed_sections, rule_leaves, user_leaves};
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let (bytes, hidden) = s
        .read(|tx| {
            let (services, rules) = rule_leaves(tx)?;
            let fixed = fixed_sections(tx, &services)?;
            let mut users = user_leaves(tx)?;
            let Piece::Bytes(b) = &users[1].piece else {
                unreachable!()
            };
            let names = Snapshot::split_users(b).unwrap();
            let hidden = names[0].0.clone();
            users[1].first = names[1].0.clone();
            let (mut out, body) = assemble(current_generation(tx)?, &fixed, rules, users)?;
            for p in body {
                let Piece::Bytes(b) = p else { unreachable!() };
                out.extend_from_slice(&b);
            }
            Ok((out, hidden))
        })
        .unwrap();
    write(&db, &bytes, false).unwrap();
    assert!(
        people::user(s.conn(), &hidden).unwrap().is_some(),
        "{hidden} is in the database"
    );
    assert!(
        open(&db).lookup(&hidden).unwrap().is_none(),
        "a login finds no {hidden}"
    );
    // maintain's and doctor's check reads each block's names against the index.
    let c = check_and_repair(&mut s).unwrap();
    assert!(
        matches!(c.finding, Finding::Damaged(_)),
        "{hidden} is unknown to logins: {c:?}"
    );
    assert!(open(&db).lookup(&hidden).unwrap().is_some());
}

/// An administrator's slip before a change: the snapshot made readable by others, or given
/// to another user. It is not trusted, so not patched from: built whole, private and
/// root's (the caller's) again.
#[test]
fn a_snapshot_others_could_read_or_own_is_built_whole_and_private_again() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (_d, mut s) = populated();
    let db = s.path().to_path_buf();
    let p = path_for(&db);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(!change(&mut s, |tx| people::add_user(tx, "aaa", "", 0)));
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.mode() & 0o077, 0, "{:o}", meta.mode());
    agrees(&mut s);
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    nix::unistd::chown(&p, Some(nobody), None).unwrap();
    // A lockout writes its own file only; the next command's check rewrites the snapshot.
    assert!(!lockout(&mut s, "user001", 4_000_000_000));
    assert!(matches!(Snapshot::open(&db), Err(Damage::Insecure(_))));
    assert!(s.repair_snapshot().unwrap().is_some());
    assert_eq!(
        std::fs::metadata(&p).unwrap().uid(),
        nix::unistd::geteuid().as_raw()
    );
    agrees(&mut s);
}
