//! Tests of backups and restores: the copy's mode and refusals, a restore that brings the
//! old store back with new generations, and every kind of bad file changing nothing.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn store(dir: &Path) -> Store {
    let (mut s, _) = Store::create(&dir.join("mfa.db")).unwrap();
    s.change("t", "user add", |tx| {
        tx.execute("INSERT INTO users (name, created) VALUES ('ann', 1)", [])?;
        Ok(((), "ann".into()))
    })
    .unwrap();
    s
}

fn users(s: &Store) -> Vec<String> {
    s.conn
        .prepare("SELECT name FROM users ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap()
}

fn add(s: &mut Store, name: &str) {
    s.change("t", "user add", |tx| {
        tx.execute("INSERT INTO users (name, created) VALUES (?1, 1)", [name])?;
        Ok(((), name.into()))
    })
    .unwrap();
}

#[test]
fn a_backup_is_private_exclusive_and_restores_what_it_held() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    let file = d.path().join("b.db");
    let w = s.backup_to(&file, false).unwrap();
    assert_eq!(w.users, 1);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // An existing name is refused, --force replaces it (a link too, not followed).
    let e = s.backup_to(&file, false).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    let target = d.path().join("victim");
    std::fs::write(&target, b"keep").unwrap();
    let link = d.path().join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(s.backup_to(&link, false).is_err());
    s.backup_to(&link, true).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(s.backup_to(Path::new("-"), false).is_err());

    // Changed after the backup, then restored: the backup's users, new generations.
    add(&mut s, "bob");
    let gen_before = crate::snapshot::current_generation(&s.conn).unwrap();
    let r = s.restore(&file, 1_000_000).unwrap();
    assert_eq!(users(&s), ["ann"]);
    assert!(r.generation > gen_before);
    assert_eq!(r.users, 1);
    assert!(
        r.kept
            .to_string_lossy()
            .ends_with("mfa.db.before-restore-1000000")
    );
    let kept_mode = std::fs::metadata(&r.kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(kept_mode, 0o600);
    let kept = Store::open(&r.kept).unwrap();
    assert_eq!(users(&kept), ["ann", "bob"]);
    drop(kept);
    // Restored again within the same second: the next free name, the first copy untouched.
    add(&mut s, "cy");
    let again = s.restore(&file, 1_000_000).unwrap();
    assert!(
        again
            .kept
            .to_string_lossy()
            .ends_with("mfa.db.before-restore-1000000-2"),
        "{again:?}"
    );
    assert_eq!(users(&Store::open(&again.kept).unwrap()), ["ann", "cy"]);
    assert_eq!(users(&Store::open(&r.kept).unwrap()), ["ann", "bob"]);
    assert_eq!(users(&s), ["ann"]);
    // The snapshot matches the restored store; a second restore is fine too.
    assert!(s.snapshot_matches().unwrap());
    assert!(s.integrity_check().unwrap().is_empty());
    // No private copy left behind.
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_files_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    add(&mut s, "bob");
    let good = d.path().join("good.db");
    s.backup_to(&good, false).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let gen_before = crate::snapshot::current_generation(&s.conn).unwrap();
    let mut cases: Vec<(&str, PathBuf, &str)> = Vec::new();
    let write = |name: &str, b: &[u8]| {
        let p = d.path().join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    cases.push(("empty", write("empty", b""), "no SQLite header"));
    cases.push((
        "text",
        write("text", b"hello, this is not a database at all"),
        "no SQLite header",
    ));
    cases.push((
        "truncated",
        write("trunc", &bytes[..bytes.len() / 2]),
        "damaged or truncated",
    ));
    let mut corrupt = bytes.clone();
    for b in corrupt.iter_mut().skip(4096).take(4096) {
        *b = 0xa5;
    }
    cases.push(("corrupt", write("corrupt", &corrupt), "damaged"));
    // Another SQLite database.
    let other = d.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;")
        .unwrap();
    cases.push(("not mfa", other, "not a backup of mfa"));
    // A newer schema.
    let newer = d.path().join("newer.db");
    std::fs::copy(&good, &newer).unwrap();
    Connection::open(&newer)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    cases.push(("newer", newer, "newer than this mfa"));
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    cases.push(("symlink", link, "symbolic link"));
    cases.push(("missing", d.path().join("nope"), "No such file"));
    cases.push(("a directory", d.path().to_path_buf(), "not a regular file"));
    for (what, path, says) in cases {
        let e = s.restore(&path, 5).unwrap_err();
        let t = e.to_string();
        assert!(matches!(e, Error::Invalid(_)), "{what}: {e:?}");
        assert!(
            t.contains(says) && t.contains("nothing was changed"),
            "{what}: {t}"
        );
        assert_eq!(users(&s), ["ann", "bob"], "{what}");
        assert_eq!(
            crate::snapshot::current_generation(&s.conn).unwrap(),
            gen_before
        );
    }
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restore-") || n.contains("before-restore"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_restore_raises_the_totp_steps_so_no_code_used_before_passes_again() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    s.change("t", "totp", |tx| {
        tx.execute(
            "INSERT INTO totp (user, secret, algorithm, digits, created) VALUES ('ann', x'00', 'sha1', 6, 1)",
            [],
        )?;
        Ok(((), String::new()))
    })
    .unwrap();
    let file = d.path().join("b.db");
    s.backup_to(&file, false).unwrap();
    // The state files are gone (a new machine): the step comes back at the restore's.
    let now = 1_700_000_000;
    s.restore(&file, now).unwrap();
    let step = now as u64 / crate::totp::STEP;
    assert!(!crate::state::accept_step(&s.path, "ann", step).unwrap());
    assert!(crate::state::accept_step(&s.path, "ann", step + 1).unwrap());
}

/// A backup of an earlier schema (version 6: before groups) is migrated on restore, and the
/// restored store is this build's.
#[test]
fn a_backup_of_an_older_schema_is_migrated() {
    let d = tempfile::tempdir().unwrap();
    let mut s = store(d.path());
    let old = d.path().join("v6.db");
    {
        let c = Connection::open(&old).unwrap();
        for m in &crate::store::schema::MIGRATIONS[..6] {
            c.execute_batch(m).unwrap();
        }
        c.execute_batch(
            "PRAGMA user_version = 6;
             INSERT INTO meta (key, value) VALUES ('passcode_key', x'0102030405060708');
             INSERT INTO users (name, created) VALUES ('old', 1);",
        )
        .unwrap();
    }
    let r = s.restore(&old, 2_000_000).unwrap();
    assert_eq!(r.schema, 6);
    assert_eq!(users(&s), ["old"]);
    let v: i64 = s
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    assert!(s.snapshot_matches().unwrap());
    // The file given is left as it was (its copy was migrated, not it).
    let c = Connection::open(&old).unwrap();
    let v: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 6);
}
