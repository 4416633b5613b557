//! Plain SMTP, end to end: contacts made with mfa-admin, test messages queued with
//! `mfa-admin test`, delivered by `mfa-sender --once` to a local aiosmtpd.

use std::time::Duration;

use mfa_core::spool;

use super::{Env, FROM, ServerOpts, SmtpServer, admin, mfa_admin, smtp_plain};

#[test]
fn email_and_carrier_gateway_contacts_arrive() {
    let server = SmtpServer::start(&ServerOpts::default());
    let env = Env::new(&smtp_plain(server.port));
    let bin = mfa_admin();
    admin(&env, &bin, &["init"]);
    admin(&env, &bin, &["user", "add", "alice"]);
    admin(
        &env,
        &bin,
        &["contact", "add", "alice", "--email", "alice@example.com"],
    );
    admin(
        &env,
        &bin,
        &[
            "contact",
            "add",
            "alice",
            "--phone",
            "5552010123",
            "--carrier",
            "Verizon",
        ],
    );
    admin(&env, &bin, &["test", "alice", "--contact", "1"]);
    admin(&env, &bin, &["test", "alice", "--contact", "2"]);

    // What mfa-admin queued: one email, one gateway message, fully resolved.
    let queued: Vec<spool::Message> = env
        .files("new")
        .iter()
        .map(|n| spool::read(&env.spool().join("new").join(n)).unwrap())
        .collect();
    assert_eq!(queued.len(), 2, "{queued:?}");
    let email = queued
        .iter()
        .find(|m| m.to == "alice@example.com")
        .unwrap_or_else(|| panic!("no email queued: {queued:?}"));
    let gateway = queued
        .iter()
        .find(|m| m.to == "5552010123@vtext.com")
        .unwrap_or_else(|| panic!("no gateway message queued: {queued:?}"));
    assert_eq!(gateway.channel.as_str(), "sms-gateway");

    let out = env.once();
    assert!(env.drained(), "spool not empty: {:?}", out);
    assert!(env.files("failed").is_empty(), "{:?}", env.files("failed"));

    let mails = server.wait_ids(
        &[email.id.clone(), gateway.id.clone()],
        Duration::from_secs(10),
    );
    assert_eq!(mails.len(), 2, "{mails:?}");
    let by_id = |id: &str| mails.iter().find(|m| m.id() == id).unwrap();

    let e = by_id(&email.id);
    assert_eq!(e.rcpt, ["alice@example.com"]);
    assert_eq!(e.from, FROM);
    assert_eq!(e.header("To").as_deref(), Some("alice@example.com"));
    assert_eq!(e.header("Subject").as_deref(), Some(email.subject.as_str()));
    assert!(
        e.body().contains("No action is needed"),
        "test-body missing: {}",
        e.data
    );
    assert!(!e.tls && e.auth.is_none());

    let g = by_id(&gateway.id);
    assert_eq!(g.rcpt, ["5552010123@vtext.com"]);
    assert_eq!(g.header("From").as_deref(), Some(FROM));
    // Carriers put the subject into the text message and truncate: it must be short, on one
    // header line (not folded, not MIME-encoded), with a plain-text body a phone shows as is.
    let subject = g.header("Subject").unwrap();
    assert_eq!(subject, gateway.subject);
    assert!(
        subject.chars().count() <= 78,
        "gateway subject too long ({} chars): {subject:?}",
        subject.chars().count()
    );
    assert!(
        g.data.contains(&format!("\r\nSubject: {subject}\r\n")),
        "gateway subject folded or encoded: {}",
        g.data
    );
    assert!(!subject.contains("=?"), "encoded subject {subject:?}");
    assert!(
        g.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{}",
        g.data
    );
    assert_eq!(
        g.header("Content-Transfer-Encoding").as_deref(),
        Some("7bit"),
        "{}",
        g.data
    );
    assert_eq!(g.body().trim_end(), gateway.body);
}
