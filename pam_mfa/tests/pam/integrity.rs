//! What a login reads must not lie (issue 10, "Integrity of what a login reads"): a flipped
//! bit in the policy snapshot, a snapshot or database others can read, a spool whose `new/`
//! the sender's group swapped for a link.

use std::os::unix::fs::PermissionsExt;

use super::harness::{PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS};
use super::{Install, code_for};

fn reader(i: &Install) -> super::harness::Answer<'_> {
    Box::new(move |p: &str| code_for(i, p).map(String::into_bytes))
}

fn snapshot(i: &Install) -> std::path::PathBuf {
    mfa_core::snapshot::path_for(&i.path("db/mfa.db"))
}

/// The bypass: with `unassigned=allow`, a flipped bit in a user's record made the
/// user unknown, and the login went through without a second factor. Now the block's
/// checksum fails, the user is read from the database (a challenge, as without the flip),
/// and an error line says so; mfa-admin's check rewrites the file.
#[test]
fn a_flipped_bit_in_a_user_record_is_no_bypass() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("unassigned", "allow");
    i.set("repeat_window", "0");
    let p = snapshot(&i);
    let mut bytes = std::fs::read(&p).unwrap();
    // The name in ann's record (the fences in the head hold it too: take the last one).
    let at = bytes.windows(5).rposition(|w| w == b"\x03\x00ann").unwrap() + 4;
    bytes[at] ^= 0x04; // "ann" -> "aen"
    std::fs::write(&p, &bytes).unwrap();

    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert_eq!(r.prompts().len(), 1, "a passcode was asked for: {r:?}");
    assert_eq!(i.messages()[0]["to"], "ann@example.com");
    let log = i.outcomes();
    assert!(
        log.iter()
            .any(|l| l.starts_with("error:policy snapshot not used")
                && l.contains("does not match its checksum")),
        "{log:?}"
    );
    assert_eq!(log.last().map(String::as_str), Some("success:"), "{log:?}");
    // `i.outcomes()` opened the store as mfa-admin does; its check rewrites the snapshot.
    assert!(matches!(
        i.store().repair_snapshot().unwrap(),
        Some(mfa_core::store::Rebuilt::Damaged(_))
    ));
    assert!(mfa_core::snapshot::verify(&i.path("db/mfa.db")).is_ok());
}

/// A snapshot others can read is not used (the login reads the database and logs why); a
/// database others can read is refused: the fail mode applies (secure: denied).
#[test]
fn secrets_readable_by_others_are_not_used() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("unassigned", "allow");
    let p = snapshot(&i);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    let log = i.outcomes();
    assert!(
        log.iter()
            .any(|l| l.starts_with("error:policy snapshot not used") && l.contains("chmod 600")),
        "{log:?}"
    );

    let db = i.path("db/mfa.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(&p).unwrap();
    let before = i.messages().len();
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_AUTH_ERR, "secure: denied {r:?}");
    assert!(r.prompts().is_empty(), "{r:?}");
    assert_eq!(i.messages().len(), before);
    assert!(
        r.said("second factor unavailable — contact your administrator"),
        "{r:?}"
    );
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = mfa_core::store::Store::open(&db).map(|_| ());
    assert!(e.is_ok(), "private again: {e:?}");
}

/// The spool attack: the spool root made group-writable, a member of the sender's
/// group renames `new/` away and puts a link to another directory in its place, and the
/// module (root) writes there. Now nothing is written anywhere, the login is unavailable
/// (secure: denied) and the reason names the fix.
#[test]
fn a_linked_new_in_a_group_writable_spool_gets_nothing() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    let spool = i.path("spool");
    let elsewhere = i.path("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o775)).unwrap();
    std::fs::rename(spool.join("new"), spool.join("new.away")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, spool.join("new")).unwrap();
    let count = |d: &std::path::Path| std::fs::read_dir(d).unwrap().count();

    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert!(r.prompts().is_empty(), "no code promised: {r:?}");
    assert_eq!(count(&elsewhere), 0, "written through the link");
    assert_eq!(count(&spool.join("tmp")), 0);
    let log = i.outcomes();
    assert!(
        log.last()
            .is_some_and(|l| l.starts_with("unavailable-deny:") && l.contains("chmod go-w")),
        "{log:?}"
    );

    // The root closed again but new/ still a link: refused too.
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert_eq!(count(&elsewhere), 0, "written through the link");
    assert!(
        i.outcomes()
            .last()
            .is_some_and(|l| l.contains("not a directory (a symbolic link?)")),
        "{:?}",
        i.outcomes()
    );

    // In safe mode the fail mode's bypass applies (mfa cannot ask), still writing nothing.
    i.set("fail_mode", "safe");
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(
        r.code, PAM_PERM_DENIED,
        "ignored, the next module decides: {r:?}"
    );
    assert_eq!(count(&elsewhere), 0, "written through the link");
    i.set("fail_mode", "secure");

    // Repaired: logins work again.
    std::fs::remove_file(spool.join("new")).unwrap();
    std::fs::rename(spool.join("new.away"), spool.join("new")).unwrap();
    i.set("repeat_window", "0");
    let r = i.auth("ann", Some("192.0.2.10"), reader(&i));
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
}
