//! Tests of the people queries: contacts and their numbers, carriers, menu names, and the
//! double-logon contact override.

use super::*;
use crate::store::Store;

#[test]
fn contacts_limit_and_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let c = s.conn();
    add_user(c, "ann", "Ann", 1).unwrap();
    assert!(matches!(add_user(c, "ann", "", 1), Err(Error::Conflict(_))));
    let e = Contact::email("ann@example.com").unwrap();
    assert_eq!(add_contact(c, "ann", &e, "", None, 1).unwrap(), 1);
    assert!(matches!(
        add_contact(c, "ann", &e, "", None, 1),
        Err(Error::Conflict(_))
    ));
    let p = Contact::phone("5551234567", "verizon").unwrap();
    assert_eq!(add_contact(c, "ann", &p, "cell", None, 1).unwrap(), 2);
    let rows = contacts(c, "ann").unwrap();
    assert_eq!(rows[1].to, "5551234567@vtext.com");
    assert_eq!(rows[1].carrier.as_deref(), Some("Verizon"));
    for n in ["+14155550101", "+14155550102"] {
        add_contact(c, "ann", &Contact::sms(n).unwrap(), "", None, 1).unwrap();
    }
    let fifth = add_contact(
        c,
        "ann",
        &Contact::sms("+14155550103").unwrap(),
        "",
        None,
        1,
    );
    assert!(matches!(fifth, Err(Error::Conflict(_))));
    delete_contact(c, "ann", 2).unwrap();
    assert_eq!(
        add_contact(
            c,
            "ann",
            &Contact::sms("+14155550103").unwrap(),
            "",
            None,
            1
        )
        .unwrap(),
        2
    );
    assert!(delete_carrier(c, "Verizon").is_ok());
    add_contact(
        c,
        "ann",
        &Contact::email("b@example.com").unwrap(),
        "",
        None,
        1,
    )
    .unwrap_err();
    delete_user(c, "ann").unwrap();
    assert!(contacts(c, "ann").unwrap().is_empty());
}

/// `contact del` of the double-logon contact clears the choice (and says so); deleting
/// another contact leaves it, and numbers never shift, so the choice still names the
/// same contact; a later contact that takes the freed number is not chosen.
#[test]
fn deleting_the_double_logon_contact_clears_the_choice() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let c = s.conn();
    add_user(c, "ann", "", 1).unwrap();
    for a in ["a@example.com", "b@example.com", "c@example.com"] {
        add_contact(c, "ann", &Contact::email(a).unwrap(), "", None, 1).unwrap();
    }
    let choose = |n: Option<i64>| OverrideChange {
        double_logon_contact: Some(n),
        ..Default::default()
    };
    set_override(c, "ann", &choose(Some(3))).unwrap();
    let d = delete_contact(c, "ann", 1).unwrap();
    assert!(!d.cleared_double_logon);
    let o = override_of(c, "ann").unwrap().unwrap();
    assert_eq!(o.double_logon_contact, Some(3));
    let three = contacts(c, "ann").unwrap();
    assert_eq!(
        three.iter().find(|r| r.seq == 3).unwrap().address,
        "c@example.com"
    );
    let d = delete_contact(c, "ann", 3).unwrap();
    assert!(d.cleared_double_logon);
    assert_eq!(d.row.address, "c@example.com");
    assert_eq!(
        override_of(c, "ann").unwrap().unwrap().double_logon_contact,
        None
    );
    add_contact(
        c,
        "ann",
        &Contact::email("d@example.com").unwrap(),
        "",
        Some(3),
        1,
    )
    .unwrap();
    assert_eq!(
        override_of(c, "ann").unwrap().unwrap().double_logon_contact,
        None
    );
    // Refused: a number the user does not have, another user's contact, an unknown user.
    add_user(c, "bob", "", 1).unwrap();
    let e = set_override(c, "bob", &choose(Some(2))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "bob has no contact 2: see `mfa-admin contact list bob`"
    );
    assert!(override_of(c, "bob").unwrap().is_none(), "nothing stored");
    assert!(set_override(c, "nobody", &choose(Some(1))).is_err());
    // `default` returns to the first contact and keeps the other overrides.
    set_override(
        c,
        "ann",
        &OverrideChange {
            mandatory: Some(Some(true)),
            double_logon_contact: Some(Some(2)),
            ..Default::default()
        },
    )
    .unwrap();
    let o = set_override(c, "ann", &choose(None)).unwrap();
    assert!(o.mandatory == Some(true) && o.double_logon_contact.is_none());
    // Deleting the user takes everything.
    set_override(c, "ann", &choose(Some(2))).unwrap();
    delete_user(c, "ann").unwrap();
    assert!(overrides(c).unwrap().is_empty());
}

#[test]
fn carrier_in_use_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = Store::create(&dir.path().join("mfa.db")).unwrap();
    let c = s.conn();
    add_user(c, "bob", "", 1).unwrap();
    add_contact(
        c,
        "bob",
        &Contact::phone("5551234567", "AT&T").unwrap(),
        "",
        None,
        1,
    )
    .unwrap();
    let e = delete_carrier(c, "at&t").unwrap_err().to_string();
    assert!(e.contains("bob"), "{e}");
    assert_eq!(carriers(c).unwrap().len(), 10);
}

fn row(seq: i64, contact: &Contact, label: &str) -> ContactRow {
    ContactRow {
        seq,
        channel: contact.channel.as_str().into(),
        address: contact.address.clone(),
        carrier: contact.carrier.clone(),
        to: contact.address.clone(),
        masked: contact.masked(),
        label: label.into(),
    }
}

#[test]
fn menu_names_tell_alike_contacts_apart_without_showing_them() {
    let e = |a: &str| Contact::email(a).unwrap();
    // Distinct masks stay as they are; a label is shown.
    let rows = [
        row(1, &e("john@example.com"), "work"),
        row(2, &e("ann@other.org"), ""),
    ];
    assert_eq!(menu_names(&rows), ["j***@e***.com (work)", "a***@o***.org"]);
    // Labels alone tell them apart.
    let rows = [
        row(1, &e("john@example.com"), "work"),
        row(3, &e("jim@elsewhere.com"), "home"),
    ];
    assert_eq!(
        menu_names(&rows),
        ["j***@e***.com (work)", "j***@e***.com (home)"]
    );
    // More of the address, never more than half of each part.
    let rows = [
        row(1, &e("john@example.com"), ""),
        row(2, &e("jim@example.com"), ""),
        row(4, &e("ann@example.com"), ""),
    ];
    assert_eq!(
        menu_names(&rows),
        ["jo***@ex***.com", "j***@ex***.com", "a***@e***.com"]
    );
    let rows = [row(1, &e("jo@mail.com"), ""), row(2, &e("jo@mint.com"), "")];
    let names = menu_names(&rows);
    assert_eq!(names, ["j***@ma***.com", "j***@mi***.com"]);
    // Still alike within those limits: the contact number.
    let rows = [
        row(1, &e("john@example.com"), "x"),
        row(2, &e("joan@example.com"), "x"),
        row(3, &Contact::sms("+14155550123").unwrap(), ""),
        row(4, &Contact::sms("+14165550123").unwrap(), ""),
    ];
    let names = menu_names(&rows);
    assert_eq!(
        names,
        [
            "j***@e***.com (x, contact 1)",
            "j***@e***.com (x, contact 2)",
            "+*******0123 (contact 3)",
            "+*******0123 (contact 4)",
        ]
    );
    for (n, r) in names.iter().zip(&rows) {
        assert!(!n.contains(&r.address), "{n}");
    }
    assert!(menu_names(&[]).is_empty());
    // Control characters in a label (written behind mfa's back) never reach the terminal.
    let rows = [row(1, &e("ann@example.com"), "\u{1b}[2Jwork\nx")];
    assert_eq!(menu_names(&rows), ["a***@e***.com (?[2Jwork?x)"]);
}
