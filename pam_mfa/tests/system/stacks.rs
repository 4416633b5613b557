//! Debian's `su` and `login` auth stacks (common-auth inlined, pam_mfa after it) in real
//! `/etc/pam.d` files, driven by `pamtester` on a pseudo-terminal: the Python client reads
//! each prompt as a person would and types the password, then the passcode from the spool.

use super::{Install, PamService, SystemUser, client, module_path, need, root_or_skip, unique};

/// Debian's common-auth and common-account (pam_unix; a wrong password stops at pam_deny).
const COMMON_AUTH: &str = "\
auth     [success=1 default=ignore]  pam_unix.so nullok
auth     requisite                   pam_deny.so
auth     required                    pam_permit.so
";
const COMMON_ACCOUNT: &str = "\
account  [success=1 new_authtok_reqd=done default=ignore]  pam_unix.so
account  requisite                   pam_deny.so
account  required                    pam_permit.so
session  required                    pam_unix.so
";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// /etc/pam.d/su without `auth sufficient pam_rootok.so`: pamtester runs as root, and
    /// pam_rootok would let it through before any password or passcode.
    Su,
    /// /etc/pam.d/login (pam_faildelay, common-auth, pam_mfa). pam_nologin is left out so a
    /// machine that is still booting (/run/nologin) does not fail the test.
    Login,
}

/// One stack in /etc/pam.d for one real user with one email contact.
struct Stack {
    kind: Kind,
    install: Install,
    user: SystemUser,
    pam: PamService,
}

impl Stack {
    fn new(kind: Kind) -> Stack {
        need("/usr/bin/pamtester", "pamtester");
        let install = Install::new();
        let user = SystemUser::new();
        install.user(&user.name, &user.email());
        let mfa = format!(
            "auth     required                    {} config={}\n",
            module_path().display(),
            install.config().display()
        );
        let (name, text) = match kind {
            Kind::Su => (
                unique("mfa-test-su-"),
                format!("# pam_mfa system test: Debian's su\n{COMMON_AUTH}{mfa}{COMMON_ACCOUNT}"),
            ),
            Kind::Login => (
                unique("mfa-test-login-"),
                format!(
                    "# pam_mfa system test: Debian's login\n\
                     auth     optional                    pam_faildelay.so delay=3000000\n\
                     {COMMON_AUTH}{mfa}{COMMON_ACCOUNT}"
                ),
            ),
        };
        let pam = PamService::new(&name, &text);
        Stack {
            kind,
            install,
            user,
            pam,
        }
    }

    /// Runs `pamtester SERVICE USER authenticate acct_mgmt` on a terminal; `wrong_code`
    /// types a wrong passcode, `password` overrides the right password.
    fn pamtester(&self, wrong_code: bool, password: Option<&str>) -> Run {
        self.install.heartbeat();
        let tty = match self.kind {
            Kind::Su => "pts/9",
            Kind::Login => "tty3",
        };
        let mut args: Vec<String> = vec![
            "pty".into(),
            "--user".into(),
            self.user.name.clone(),
            "--password".into(),
            password.unwrap_or(&self.user.password).into(),
            "--spool".into(),
            self.install.spool().display().to_string(),
        ];
        if wrong_code {
            args.push("--wrong".into());
        }
        args.extend(["--".into(), "/usr/bin/pamtester".into()]);
        if self.kind == Kind::Su {
            args.extend(["-I".into(), "ruser=root".into()]);
        }
        args.extend([
            "-I".into(),
            format!("tty={tty}"),
            self.pam.name.clone(),
            self.user.name.clone(),
            "authenticate".into(),
            "acct_mgmt".into(),
        ]);
        let r = client(&args);
        assert_eq!(r["timed_out"], false, "pamtester hung: {r}");
        Run {
            exit: r["exit"].as_i64().unwrap(),
            transcript: r["transcript"].as_str().unwrap().to_string(),
            prompts: r["prompts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["text"].as_str().unwrap().to_string(),
                        p["answered"].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Debug)]
struct Run {
    exit: i64,
    transcript: String,
    /// (prompt line, what was answered)
    prompts: Vec<(String, String)>,
}

impl Run {
    fn answered(&self) -> Vec<&str> {
        self.prompts.iter().map(|p| p.1.as_str()).collect()
    }
}

fn right_code(kind: Kind, test: &str) {
    if !root_or_skip(test) {
        return;
    }
    let s = Stack::new(kind);
    let r = s.pamtester(false, None);
    assert_eq!(r.exit, 0, "{r:?}");
    assert!(
        r.transcript
            .contains("pamtester: successfully authenticated"),
        "{r:?}"
    );
    assert!(
        r.transcript.contains("pamtester: account management done"),
        "{r:?}"
    );
    assert_eq!(r.answered(), ["password", "passcode"], "{r:?}");
    assert!(r.prompts[0].0.ends_with("Password: "), "{r:?}");
    let p = &r.prompts[1].0;
    assert!(
        p.starts_with("Passcode ") && p.ends_with("- (sent to m***@e***.com): "),
        "{r:?}"
    );
    let msgs = s.install.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["to"], s.user.email().as_str());
    // Both answers were typed with echo off: neither shows on the terminal.
    let letter = p.chars().nth(9).unwrap();
    let body = msgs[0]["body"].as_str().unwrap();
    let code: String = body[body.find(&format!("{letter}-")).unwrap() + 2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 6, "{body}");
    assert!(
        !r.transcript.contains(&code) && !r.transcript.contains(&s.user.password),
        "an answer was echoed: {r:?}"
    );
    let tty = if kind == Kind::Su { "pts/9" } else { "tty3" };
    assert_eq!(
        s.install.log(),
        [format!("success||{}||{tty}|m***@e***.com", s.pam.name)]
    );
}

fn wrong_code(kind: Kind, test: &str) {
    if !root_or_skip(test) {
        return;
    }
    let s = Stack::new(kind);
    let r = s.pamtester(true, None);
    assert_ne!(r.exit, 0, "{r:?}");
    assert!(!r.transcript.contains("successfully"), "{r:?}");
    assert!(r.transcript.contains("Authentication failure"), "{r:?}");
    assert_eq!(
        r.answered(),
        [
            "password",
            "passcode-wrong",
            "passcode-wrong",
            "passcode-wrong"
        ],
        "{r:?}"
    );
    for needle in [
        "Wrong passcode. 2 attempts left.",
        "Wrong passcode. 1 attempt left.",
        "Wrong passcode. No attempts left.",
    ] {
        assert!(r.transcript.contains(needle), "{needle:?} not shown: {r:?}");
    }
    assert_eq!(s.install.messages().len(), 1);
    assert_eq!(
        s.install.log(),
        [format!(
            "deny|wrong passcode; attempts used up|{}||{}|",
            s.pam.name,
            if kind == Kind::Su { "pts/9" } else { "tty3" }
        )]
    );
}

#[test]
fn su_stack_with_the_right_passcode() {
    right_code(Kind::Su, "su_stack_with_the_right_passcode");
}

#[test]
fn su_stack_with_a_wrong_passcode() {
    wrong_code(Kind::Su, "su_stack_with_a_wrong_passcode");
}

#[test]
fn login_stack_with_the_right_passcode() {
    right_code(Kind::Login, "login_stack_with_the_right_passcode");
}

#[test]
fn login_stack_with_a_wrong_passcode() {
    wrong_code(Kind::Login, "login_stack_with_a_wrong_passcode");
}

/// common-auth ends a wrong password at `requisite pam_deny.so`: pam_mfa never runs, so no
/// passcode is sent to someone who does not know the password.
#[test]
fn login_stack_with_a_wrong_password_sends_no_passcode() {
    if !root_or_skip("login_stack_with_a_wrong_password_sends_no_passcode") {
        return;
    }
    let s = Stack::new(Kind::Login);
    let r = s.pamtester(false, Some("not-the-password"));
    assert_ne!(r.exit, 0, "{r:?}");
    assert!(r.transcript.contains("Authentication failure"), "{r:?}");
    assert_eq!(r.answered(), ["password"], "{r:?}");
    assert!(!r.transcript.contains("Passcode"), "{r:?}");
    assert!(s.install.messages().is_empty());
    assert!(s.install.log().is_empty(), "{:?}", s.install.log());
}
