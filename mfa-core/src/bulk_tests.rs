//! The line checks and writing of the bulk user import.

use super::*;
use crate::store::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    store
        .write(|tx| {
            tx.execute(
                "INSERT INTO groups (name, created) VALUES ('staff', 1), ('admins', 1)",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    (dir, store)
}

fn fields(line: &str) -> Vec<Vec<u8>> {
    line.split(',').map(|f| f.as_bytes().to_vec()).collect()
}

/// Checks `lines` (after the header) and returns the error text or the checked import.
fn run(store: &mut Store, header: &str, lines: &[&str], update: bool) -> Result<Checked> {
    store.read(|tx| {
        let mut imp = Import::new(tx, &fields(header), update)?;
        for (i, l) in lines.iter().enumerate() {
            imp.record(i as u64 + 2, &fields(l));
        }
        imp.finish()
    })
}

const HEADER: &str = "user,full_name,group,email,sms,phone,carrier";

#[test]
fn headers_are_checked() {
    let (_d, mut s) = store();
    for (h, needle) in [
        ("full_name,email", "no column user"),
        ("user,mail", "unknown column \"mail\""),
        ("user,email,EMAIL", "column email is named twice"),
        ("user,phone", "phone and carrier go together"),
    ] {
        let err = run(&mut s, h, &[], false).err().unwrap().to_string();
        assert!(err.contains("line 1") && err.contains(needle), "{h}: {err}");
    }
    // Any order, any case, only some columns.
    let c = run(&mut s, " Email , USER", &["a@example.com,ann"], false).unwrap();
    assert_eq!((c.counts().added, c.counts().contacts), (1, 1));
}

/// New users with a group and contacts of every kind are written with numbered contacts
/// and the carrier's stored name.
#[test]
fn good_lines_are_written() {
    let (_d, mut s) = store();
    let lines = [
        "ann,Ann A,staff,ann@example.com;ann2@example.com,+14155550123,555-201-0199,verizon",
        "bob,,,,,,",
        "=cmd|' /C calc'!A0,,,,,,",
    ];
    // The formula-like cell is a user name: refused as one (never evaluated).
    let err = run(&mut s, HEADER, &lines, false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("line 4: invalid user name"), "{err}");
    let lines = [lines[0], lines[1], "cy,=cmd|' /C calc'!A0,,,,,"];
    let c = run(&mut s, HEADER, &lines, false).unwrap();
    assert_eq!(
        c.counts(),
        Counts {
            added: 3,
            updated: 0,
            unchanged: 0,
            contacts: 4,
            lines: 3
        }
    );
    s.write(|tx| c.apply(tx, 7).map(|_| ())).unwrap();
    let rows: Vec<(String, i64, String, String, Option<String>)> = s
        .conn()
        .prepare("SELECT user, seq, channel, address, carrier FROM contacts ORDER BY user, seq")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].1, 1);
    assert_eq!(rows[3].1, 4);
    assert_eq!(rows[3].4.as_deref(), Some("Verizon"), "{rows:?}");
    let (name, group): (String, Option<String>) = s
        .conn()
        .query_row(
            "SELECT full_name, group_name FROM users WHERE name = 'ann'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((name.as_str(), group.as_deref()), ("Ann A", Some("staff")));
    let formula: String = s
        .conn()
        .query_row("SELECT full_name FROM users WHERE name = 'cy'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(formula, "=cmd|' /C calc'!A0", "kept as plain text");
}

/// Every kind of bad line is named with its number and reason; nothing is kept.
#[test]
fn bad_lines_are_named() {
    let (_d, mut s) = store();
    s.write(|tx| crate::store::people::add_user(tx, "old", "", 1))
        .unwrap();
    let long = "x".repeat(1 << 20);
    let lines: Vec<String> = vec![
        "ann,,,,,,".into(),                                               // 2 ok
        "ann,,,,,,".into(),                                               // 3 duplicate
        "b b,,,,,,".into(),                                               // 4 bad name
        "c,,nogroup,,,,".into(),                                          // 5 unknown group
        "d,,,not-an-email,,,".into(),                                     // 6 bad email
        "e,,,,12345,,".into(),                                            // 7 bad sms
        "f,,,,,5552010199,NoSuchCarrier".into(),                          // 8 unknown carrier
        "g,,,a@x.com;b@x.com;c@x.com,+14155550123;+14155550124,,".into(), // 9 five contacts
        "h,,,".into(),                                                    // 10 column count
        format!("i,{long},,,,,"),                                         // 11 1 MB field
        "old,,,,,,".into(),                                               // 12 exists
        ",,,,,,".into(),                                                  // 13 empty user
        "j,,,,,5552010199,".into(),      // 14 phone without carrier
        "k,a\nb,,,,,".into(),            // 15 newline in a name
        "l,,,a@x.com;a@x.com,,,".into(), // 16 twice
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let err = run(&mut s, HEADER, &refs, false).err().unwrap().to_string();
    for needle in [
        "14 bad line(s); nothing was imported",
        "line 3: user \"ann\" is also on line 2",
        "line 4: invalid user name",
        "line 5: unknown group \"nogroup\"",
        "line 6: invalid email address",
        "line 7: ",
        "line 8: unknown carrier \"NoSuchCarrier\"",
        "line 9: too many contacts: user \"g\" would have 5",
        "line 10: 4 fields, the header names 7 columns",
        "line 11: column full_name is 1048576 bytes long",
        "line 12: user \"old\" already has a record; add --update",
        "line 13: the user column is empty",
        "line 14: a phone number without its carrier",
        "line 15: invalid full name",
        "line 16: contact ",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(err.len() < 10_000, "a 1 MB field is not echoed");
    assert!(!err.contains("line 2:"), "{err}");
}

/// Non-UTF-8 bytes are refused with the line and column; NUL is refused.
#[test]
fn hostile_bytes_are_refused() {
    let (_d, mut s) = store();
    let err = s
        .read(|tx| {
            let mut imp = Import::new(tx, &fields("user,full_name"), false)?;
            imp.record(2, &[b"ann".to_vec(), b"caf\xe9".to_vec()]);
            imp.record(3, &[b"bo\0b".to_vec(), b"".to_vec()]);
            imp.record(4, &[b"cy".to_vec(), b"a\0b".to_vec()]);
            imp.finish().map(|_| ())
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 2: column full_name is not UTF-8 text (byte 0xe9 at position 4)"),
        "{err}"
    );
    assert!(err.contains("line 3: invalid user name"), "{err}");
    assert!(err.contains("line 4: invalid full name"), "{err}");
    assert!(!err.contains('\0'), "{err:?}");
}

/// More than 20 bad lines: 20 listed, the rest counted.
#[test]
fn at_most_twenty_bad_lines_are_listed() {
    let (_d, mut s) = store();
    let lines: Vec<String> = (0..50).map(|i| format!("u{i},,nogroup,,,,")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let err = run(&mut s, HEADER, &refs, false).err().unwrap().to_string();
    assert_eq!(err.matches("unknown group").count(), MAX_REPORTED);
    assert!(
        err.contains("50 bad line(s)") && err.contains("and 30 more bad line(s)"),
        "{err}"
    );
}

/// --update: a non-empty full name or group replaces the stored one, `none` clears the
/// group, contacts already there are not added twice, new ones take free numbers; a line
/// with nothing new counts as unchanged.
#[test]
fn update_changes_only_what_is_new() {
    let (_d, mut s) = store();
    let c = run(
        &mut s,
        HEADER,
        &["ann,Ann,staff,ann@example.com,,,", "bob,Bob,admins,,,,"],
        false,
    )
    .unwrap();
    s.write(|tx| c.apply(tx, 1).map(|_| ())).unwrap();
    s.write(|tx| {
        tx.execute("DELETE FROM contacts WHERE user = 'ann'", [])?;
        tx.execute(
            "INSERT INTO contacts (user, seq, channel, address, created)
             VALUES ('ann', 2, 'email', 'ann@example.com', 1)",
            [],
        )?;
        Ok(())
    })
    .unwrap();
    let lines = [
        "ann,,none,ann@example.com;new@example.com,,,",
        "bob,Bob,,,,,",
        "cy,,,,,,",
    ];
    let err = run(&mut s, HEADER, &lines, false)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("2 bad line(s)"), "{err}");
    let c = run(&mut s, HEADER, &lines, true).unwrap();
    assert_eq!(
        c.counts(),
        Counts {
            added: 1,
            updated: 1,
            unchanged: 1,
            contacts: 1,
            lines: 3
        }
    );
    s.write(|tx| c.apply(tx, 2).map(|_| ())).unwrap();
    let seqs: Vec<(i64, String)> = s
        .conn()
        .prepare("SELECT seq, address FROM contacts WHERE user = 'ann' ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        seqs,
        [
            (1, "new@example.com".to_string()),
            (2, "ann@example.com".to_string())
        ]
    );
    let g: Option<String> = s
        .conn()
        .query_row("SELECT group_name FROM users WHERE name = 'ann'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(g, None, "none clears the group");
}
