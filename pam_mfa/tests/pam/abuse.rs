//! Message bombing and SMS pumping, as an attacker who knows a password does it: logins that
//! answer empty (a resend each) and hang up, in one process and in parallel processes; the
//! send limits (user, destination, host) must hold, the user is told to wait, and each
//! abandoned or refused login is in the auth log with its own outcome. Self-enrollment sends
//! only to the allowed countries and domains. Abandoned challenge files are bounded.

use std::path::PathBuf;

use super::Install;
use super::harness::{self, PAM_AUTH_ERR, PAM_SUCCESS};

const WAIT: &str = "Too many codes were sent; try again in";

/// A login that answers empty `empties` times (a resend each), then hangs up.
fn hang_up_after(empties: usize) -> harness::Answer<'static> {
    let mut n = 0;
    Box::new(move |_: &str| {
        n += 1;
        (n <= empties).then(Vec::new)
    })
}

fn to_count(i: &Install, to: &str) -> usize {
    i.messages().iter().filter(|m| m["to"] == to).count()
}

/// The flood: logins that answer empty twice and drop the connection. Before the
/// limits every login queued three messages (20 logins: 60); now at most send_limit_user (5)
/// go out, and the rest are told to wait.
#[test]
fn a_flood_of_logins_sends_at_most_the_users_limit() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    let mut told = 0;
    for _ in 0..20 {
        let r = i.auth("ann", Some("198.51.100.7"), hang_up_after(2));
        assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
        if r.said(WAIT) {
            told += 1;
        }
    }
    assert_eq!(i.messages().len(), 5, "send_limit_user (5 per 15m)");
    assert!(told >= 18, "the refused logins are told to wait: {told}");
    let log = i.outcomes();
    assert_eq!(
        log[0], "abandoned:3 messages sent, no code typed",
        "{log:?}"
    );
    assert!(
        log[1].starts_with("rate-limited:5 messages to this user in 15m (next in "),
        "the second login sent 2, then its resend was refused: {log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("rate-limited:"))
            .count(),
        19
    );
    let r = i.auth("ann", None, hang_up_after(0));
    assert!(
        r.said("Too many codes were sent; try again in 15 minutes."),
        "{r:?}"
    );
    assert!(
        r.prompts().is_empty(),
        "no prompt for a code never sent: {r:?}"
    );
    // Nothing was left behind by the hang-ups.
    assert_eq!(i.challenges(), 0);
}

/// The destination's limit holds across users sharing an address, and the host's across
/// everyone; with the limits off (0), nothing is refused.
#[test]
fn destination_and_host_limits() {
    let i = Install::new();
    i.user("ann", &["shared@example.com"]);
    i.user("bob", &["shared@example.com"]);
    i.user("cy", &["cy@example.com"]);
    i.set("send_limit_destination", "4");
    for _ in 0..3 {
        i.auth("ann", None, hang_up_after(0));
        i.auth("bob", None, hang_up_after(0));
    }
    assert_eq!(to_count(&i, "shared@example.com"), 4);
    assert!(
        i.outcomes()
            .last()
            .unwrap()
            .starts_with("rate-limited:4 messages to this destination in 15m"),
        "{:?}",
        i.outcomes()
    );
    i.set("send_limit_host", "6");
    for _ in 0..4 {
        i.auth("cy", None, hang_up_after(0));
    }
    assert_eq!(i.messages().len(), 6, "the host's hourly cap");
    assert!(
        i.outcomes()
            .last()
            .unwrap()
            .starts_with("rate-limited:6 messages from this host in 1h"),
        "{:?}",
        i.outcomes()
    );
    for k in [
        "send_limit_user",
        "send_limit_destination",
        "send_limit_host",
    ] {
        i.set(k, "0");
    }
    for _ in 0..10 {
        i.auth("cy", None, hang_up_after(2));
    }
    assert_eq!(
        i.messages().len(),
        36,
        "limits off: 10 logins, 3 messages each"
    );
}

/// Child of `parallel_processes_flood_within_the_limits`: floods as one user.
#[test]
fn child_floods() {
    let (Some(dir), Some(user)) = (
        std::env::var_os("MFA_ABUSE_CHILD"),
        std::env::var("MFA_ABUSE_USER").ok(),
    ) else {
        return;
    };
    let dir = PathBuf::from(dir);
    for _ in 0..6 {
        let r = harness::authenticate(
            &dir.join("pam.d"),
            "mfa-test",
            &user,
            Some("203.0.113.5"),
            hang_up_after(2),
        );
        assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    }
}

/// Six processes flood three users at once (two share an address): every limit holds under
/// concurrency (user 4, destination 6, host 9), and the host's cap is reached exactly.
#[test]
fn parallel_processes_flood_within_the_limits() {
    let i = Install::new();
    i.user("ann", &["shared@example.com"]);
    i.user("bob", &["shared@example.com"]);
    i.user("cy", &["cy@example.com"]);
    i.set("send_limit_user", "4");
    i.set("send_limit_destination", "6");
    i.set("send_limit_host", "9");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["ann", "bob", "cy", "ann", "bob", "cy"]
        .iter()
        .map(|u| {
            std::process::Command::new(&exe)
                .args(["--exact", "abuse::child_floods", "--test-threads", "1"])
                .env("MFA_ABUSE_CHILD", i.dir.path())
                .env("MFA_ABUSE_USER", u)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let msgs = i.messages();
    let of = |u: &str| msgs.iter().filter(|m| m["user"] == u).count();
    assert!(
        of("ann") <= 4 && of("bob") <= 4 && of("cy") <= 4,
        "{msgs:?}"
    );
    assert!(to_count(&i, "shared@example.com") <= 6);
    assert_eq!(msgs.len(), 9, "the host's cap, reached exactly");
    let log = i.outcomes();
    assert_eq!(log.len(), 36);
    assert!(
        log.iter()
            .all(|l| l.starts_with("rate-limited:") || l.starts_with("abandoned:")),
        "{log:?}"
    );
}

/// A code sent and never answered is its own outcome, with the messages it caused; a login
/// that typed something, or hung up before any message, is an ordinary denial.
#[test]
fn abandoned_logins_are_logged_with_their_messages() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.user("bob", &["b1@example.com", "b2@example.com"]);
    i.auth("ann", None, hang_up_after(1));
    i.auth("ann", None, hang_up_after(0));
    let mut first = true;
    i.auth(
        "ann",
        None,
        Box::new(move |_: &str| std::mem::take(&mut first).then(|| b"000000".to_vec())),
    );
    // Hung up at the contact menu: nothing was sent.
    i.auth("bob", None, hang_up_after(0));
    assert_eq!(
        i.outcomes(),
        [
            "abandoned:2 messages sent, no code typed",
            "abandoned:1 message sent, no code typed",
            "deny:conversation aborted",
            "deny:conversation aborted",
        ]
    );
    assert_eq!(
        i.count("SELECT count(*) FROM auth_log WHERE outcome = 'abandoned'"),
        2
    );
    assert_eq!(i.challenges(), 0, "a hang-up takes its challenge along");
}

/// Child of `abandoned_challenge_files_are_capped_per_user`: dies at the prompt, as a login
/// killed with its connection does (no chance to clean up).
#[test]
fn child_dies_at_the_prompt() {
    let Some(dir) = std::env::var_os("MFA_ABUSE_DIE") else {
        return;
    };
    let dir = PathBuf::from(dir);
    harness::authenticate(
        &dir.join("pam.d"),
        "mfa-test",
        "ann",
        None,
        Box::new(|_: &str| std::process::exit(0)),
    );
}

/// Logins killed at the prompt leave their challenge files; a user cannot pile up more than
/// 8 of them (the ninth login is refused, logged as rate-limited), and expired ones are swept
/// at the user's next login. Before: one file per login, swept only an hour after expiry by
/// one login in 16 reading the whole directory.
#[test]
fn abandoned_challenge_files_are_capped_per_user() {
    let i = Install::new();
    i.user("ann", &["ann@example.com"]);
    i.set("send_limit_user", "0");
    i.set("send_limit_destination", "0");
    let exe = std::env::current_exe().unwrap();
    for _ in 0..12 {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "abuse::child_dies_at_the_prompt",
                "--test-threads",
                "1",
            ])
            .env("MFA_ABUSE_DIE", i.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    assert_eq!(i.challenges(), 8, "capped per user");
    assert_eq!(i.messages().len(), 8);
    let r = i.auth("ann", None, hang_up_after(0));
    assert!(r.said(WAIT), "{r:?}");
    assert!(
        i.outcomes()
            .last()
            .unwrap()
            .starts_with("rate-limited:8 outstanding challenges for this user"),
        "{:?}",
        i.outcomes()
    );
    // Once they expired, the next login sweeps them (and hangs up: its own goes too).
    mfa_core::state::expire_all_challenges(&i.path("db/mfa.db")).unwrap();
    i.auth("ann", None, hang_up_after(0));
    assert_eq!(i.challenges(), 0);
}

/// SMS pumping: with self-enrollment open, numbers outside the allowed countries (default:
/// the gateways' +1) and addresses outside the allowed domains get no message.
#[test]
fn self_enrollment_sends_only_to_allowed_destinations() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    let enroll = |user: &str, addresses: &'static [&'static str]| {
        let mut k = 0;
        i.auth(
            user,
            None,
            Box::new(move |p: &str| {
                if p.starts_with("Email address") {
                    k += 1;
                    addresses.get(k - 1).map(|a| a.as_bytes().to_vec())
                } else if p.starts_with("Carrier") {
                    Some(b"1".to_vec())
                } else {
                    None
                }
            }),
        )
    };
    let r = enroll("mal", &["+88212345678", "+2348012345678", "+447700900123"]);
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert!(
        r.said("That number cannot be registered here; allowed: +1."),
        "{:?}",
        r.shown
    );
    assert!(i.messages().is_empty(), "{:?}", i.messages());
    assert_eq!(
        i.outcomes().last().unwrap(),
        "deny:enrollment: no valid contact given"
    );
    // +1 passes (and a gateway phone, a North American number).
    enroll("nan", &["+12025550123"]);
    assert_eq!(i.messages().last().unwrap()["to"], "+12025550123");
    enroll("pia", &["2025550124"]);
    let to = i.messages().last().unwrap()["to"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(to.starts_with("2025550124@"), "{to}");
    // Explicit lists: countries and domains.
    i.set("enroll_sms_countries", "44");
    i.set("enroll_email_domains", "example.com");
    let before = i.messages().len();
    let r = enroll("quy", &["+12025550125", "2025550126", "q@evil.example.org"]);
    assert!(r.said("allowed: +44."), "{:?}", r.shown);
    assert!(
        r.said(
            "Addresses at evil.example.org cannot be registered here; allowed domains: example.com."
        ),
        "{:?}",
        r.shown
    );
    assert_eq!(i.messages().len(), before);
    enroll("ray", &["+447700900123"]);
    enroll("sal", &["sal@mail.example.com"]);
    assert_eq!(i.messages().len(), before + 2);
    i.set("enroll_sms_countries", "none");
    let r = enroll("tia", &["+447700900124"]);
    assert!(r.said("allowed: no numbers."), "{:?}", r.shown);
    assert_eq!(i.messages().len(), before + 2);
}

/// One enrollment destination per login: resends go to the same address, within the user's
/// limit; a second address needs another login.
#[test]
fn an_enrollment_sends_to_one_destination_within_the_limit() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    i.set("send_limit_user", "2");
    let mut asked = 0;
    let r = i.auth(
        "zoe",
        None,
        Box::new(|p: &str| {
            if p.starts_with("Email address") {
                asked += 1;
                Some(b"zoe@example.com".to_vec())
            } else {
                Some(Vec::new())
            }
        }),
    );
    assert_eq!(r.code, PAM_AUTH_ERR);
    assert_eq!(asked, 1);
    let msgs = i.messages();
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs.iter().all(|m| m["to"] == "zoe@example.com"));
    assert!(r.said(WAIT), "{:?}", r.shown);
    // The limit is the user's, whatever address the next enrollment names.
    let r = i.auth(
        "zoe",
        None,
        Box::new(|p: &str| {
            p.starts_with("Email address")
                .then(|| b"z2@example.com".to_vec())
        }),
    );
    assert!(r.said(WAIT), "{:?}", r.shown);
    assert_eq!(i.messages().len(), 2);
    assert_ne!(r.code, PAM_SUCCESS);
}

/// A PAM_USER that mfa-admin could not store (found by mfa-fuzz: `export` then wrote a
/// document `import` refused) is not enrolled at login: no prompt, no message, a denial.
#[test]
fn self_enrollment_refuses_a_name_the_rules_cannot_hold() {
    let i = Install::new();
    i.set("unassigned", "enroll");
    for user in ["émile", "two words", "-dash"] {
        let r = i.auth(
            user,
            None,
            Box::new(|_: &str| Some(b"someone@example.com".to_vec())),
        );
        assert_eq!(r.code, PAM_AUTH_ERR, "{user}: {r:?}");
        assert!(r.prompts().is_empty(), "{user}: asked {:?}", r.prompts());
    }
    assert!(i.messages().is_empty(), "{:?}", i.messages());
    assert!(
        i.outcomes()
            .iter()
            .all(|o| o.starts_with("deny:self-enrollment refused")),
        "{:?}",
        i.outcomes()
    );
}
