//! `doctor` on one-password stacks (pam_mfa `oneword=before|after`) and unprivileged callers
//! (`[callers]`, the setuid helper mfa-check): the shipped etc/pam.d/{vsftpd,proftpd,
//! postgresql} pass clean, and each way of getting such a stack wrong is named with its file
//! and line (a mutated copy each, side by side in one pam.d directory).
//!
//! The pam.d directory sits at `<tmp>/root/etc/pam.d`, so doctor looks for the helper under
//! `<tmp>/root` (its own root), never on this machine. Needs root, like doctor_install.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::doctor_install::{Install, check, root};

/// The repository's shipped file `etc/pam.d/NAME`, naming the built module.
fn shipped(i: &Install, name: &str) -> String {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../etc/pam.d")
            .join(name),
    )
    .unwrap();
    let m = i.module.display().to_string();
    text.lines()
        .map(|l| {
            if l.starts_with('#') {
                l.to_string()
            } else {
                l.replace("pam_mfa.so", &m)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// An [`Install`] whose pam.d files are copied to `<tmp>/root/etc/pam.d`, with the Debian
/// include files the shipped stacks name.
struct Rooted {
    i: Install,
    root: PathBuf,
    pam: PathBuf,
}

impl Rooted {
    fn new() -> Rooted {
        let i = Install::new();
        let root = i.env.path("root");
        let pam = root.join("etc/pam.d");
        std::fs::create_dir_all(&pam).unwrap();
        for d in [root.as_path(), &root.join("etc"), &pam] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for e in std::fs::read_dir(&i.pam).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), pam.join(e.file_name())).unwrap();
        }
        for f in ["common-session", "common-session-noninteractive"] {
            std::fs::write(pam.join(f), "session required pam_permit.so\n").unwrap();
        }
        Rooted { i, root, pam }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.pam.join(name), text).unwrap();
    }

    /// Appends to mfa.toml.
    fn config(&self, text: &str) {
        let c = &self.i.env.config;
        let mut t = std::fs::read_to_string(c).unwrap();
        t.push_str(text);
        std::fs::write(c, t).unwrap();
    }

    /// A helper file at `<root>/usr/lib/mfa/mfa-check` (empty: never run), with its mode.
    fn helper(&self, mode: u32) -> PathBuf {
        let dir = self.root.join("usr/lib/mfa");
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("mfa-check");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn doctor(&self) -> (i32, Vec<Value>) {
        let out = self.i.env.run(&[
            "--json",
            "doctor",
            "--pam-dir",
            self.pam.to_str().unwrap(),
            "--sshd-config",
            self.i.sshd.to_str().unwrap(),
        ]);
        let checks: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor: not JSON ({e}): {out:?}"));
        (out.code, checks.as_array().unwrap().clone())
    }
}

/// The check's status and detail, asserting the status.
fn expect(checks: &[Value], name: &str, status: &str) -> String {
    let (st, d) = check(checks, name);
    assert_eq!(st, status, "{name}: {d}");
    d
}

/// Asserts that `detail` holds every one of `needles`.
fn holds(detail: &str, needles: &[&str]) {
    for n in needles {
        assert!(detail.contains(n), "{n:?} missing in: {detail}");
    }
}

#[test]
fn shipped_one_password_stacks_pass_clean() {
    if !root("shipped_one_password_stacks_pass_clean") {
        return;
    }
    let r = Rooted::new();
    for s in ["vsftpd", "proftpd", "postgresql"] {
        r.write(s, &shipped(&r.i, s));
    }
    r.config("\n[callers]\npostgres = [\"postgresql\"]\n");
    r.helper(0o4755);
    let (code, checks) = r.doctor();
    for s in ["vsftpd", "proftpd", "postgresql"] {
        let d = expect(&checks, &format!("pam.d/{s}"), "ok");
        holds(
            &d,
            &[
                &format!("one-password stack for {s}: oneword=before ({s}:"),
                "pam_unix.so `requisite`",
                "oneword=after `required`",
            ],
        );
        assert!(!d.contains("stacked"), "{d}");
    }
    expect(&checks, "helper mfa-check", "ok");
    expect(&checks, "caller postgres", "ok");
    holds(
        &expect(&checks, "caller postgres postgresql", "ok"),
        &["pam.d/postgresql"],
    );
    let bad: Vec<&Value> = checks.iter().filter(|c| c["status"] == "fail").collect();
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(code, 0, "{checks:#?}");
}

/// Each mutation of the shipped vsftpd stack in a file of its own (`vsftpd-<what>`, of
/// vsftpd's family), all read in one doctor run.
#[test]
fn mutated_one_password_stacks_are_each_flagged() {
    if !root("mutated_one_password_stacks_are_each_flagged") {
        return;
    }
    let r = Rooted::new();
    let m = r.i.module.display().to_string();
    let before = format!("auth [success=done ignore=ignore default=die] {m} oneword=before");
    let unix = "auth requisite pam_unix.so use_first_pass";
    let after = format!("auth required {m} oneword=after");
    let stack = |lines: &[&str]| lines.join("\n") + "\n@include common-account\n";
    let cases: Vec<(&str, String)> = vec![
        ("vsftpd-clean", stack(&[&before, unix, &after])),
        ("vsftpd-noafter", stack(&[&before, unix])),
        ("vsftpd-nobefore", stack(&[unix, &after])),
        ("vsftpd-reversed", stack(&[&after, unix, &before])),
        (
            "vsftpd-control",
            stack(&[&format!("auth required {m} oneword=before"), unix, &after]),
        ),
        (
            "vsftpd-ignoreok",
            stack(&[
                &format!("auth [success=done ignore=ok default=die] {m} oneword=before"),
                unix,
                &after,
            ]),
        ),
        (
            "vsftpd-sufficient",
            stack(&[
                &before,
                "auth sufficient pam_unix.so use_first_pass",
                &after,
            ]),
        ),
        (
            "vsftpd-required",
            stack(&[&before, "auth required pam_unix.so use_first_pass", &after]),
        ),
        ("vsftpd-nopass", stack(&[&before, &after])),
        (
            "vsftpd-prompts",
            stack(&[&before, "auth requisite pam_unix.so", &after]),
        ),
        (
            "vsftpd-include",
            stack(&["@include common-auth", &before, unix, &after]),
        ),
        (
            "vsftpd-between",
            stack(&[&before, "@include common-auth", &after]),
        ),
        (
            "vsftpd-plainbeside",
            stack(&[&before, unix, &after, &format!("auth required {m}")]),
        ),
        (
            "vsftpd-aftersufficient",
            stack(&[&before, unix, &format!("auth sufficient {m} oneword=after")]),
        ),
        ("vsftpd-twoafters", stack(&[&before, unix, &after, &after])),
        (
            "vsftpd-badvalues",
            stack(&[
                &format!("{before} separator=ab"),
                unix,
                &format!("auth required {m} oneword=both"),
            ]),
        ),
        (
            "vsftpd-dashsep",
            stack(&[&format!("{before} separator=-"), unix, &after]),
        ),
        (
            "vsftpd-unknownarg",
            stack(&[&before, unix, &format!("{after} \u{1b}[2Jfoo=bar")]),
        ),
        // What a new user tries first: Debian's vsftpd file plus the README's plain line.
        (
            "vsftpd-plain",
            format!(
                "auth requisite pam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed\n@include common-auth\nauth required {m}\n"
            ),
        ),
    ];
    for (name, text) in &cases {
        r.write(name, text);
    }
    // The pair kept in a file of its own, included: the same stack, clean.
    r.write("common-oneword", &format!("{before}\n{unix}\n{after}\n"));
    r.write(
        "vsftpd-pairinclude",
        "@include common-oneword\n@include common-account\n",
    );
    let (code, checks) = r.doctor();
    assert_ne!(code, 0);
    let d = |name: &str, status: &str| expect(&checks, &format!("pam.d/{name}"), status);
    holds(&d("vsftpd-clean", "ok"), &["one-password stack"]);
    holds(
        &d("vsftpd-pairinclude", "ok"),
        &["oneword=before (common-oneword:1, included at vsftpd-pairinclude:1)"],
    );
    holds(
        &d("vsftpd-noafter", "fail"),
        &[
            "oneword=before (vsftpd-noafter:1) without oneword=after",
            "password alone logs in",
            "auth required pam_mfa.so oneword=after",
        ],
    );
    holds(
        &d("vsftpd-nobefore", "fail"),
        &[
            "oneword=after (vsftpd-nobefore:2) without oneword=before",
            "auth [success=done ignore=ignore default=die] pam_mfa.so oneword=before",
        ],
    );
    holds(
        &d("vsftpd-reversed", "fail"),
        &["oneword=after (vsftpd-reversed:1) comes before oneword=before (vsftpd-reversed:3)"],
    );
    let c = d("vsftpd-control", "fail");
    holds(
        &c,
        &[
            "oneword=before is `required` (vsftpd-control:1)",
            "success=done",
        ],
    );
    assert!(
        !c.contains("when it refuses, pam_mfa still runs"),
        "the pair's own finding only: {c}"
    );
    holds(&d("vsftpd-ignoreok", "fail"), &["`ignore=ignore`"]);
    holds(
        &d("vsftpd-sufficient", "fail"),
        &[
            "pam_unix.so is `sufficient` (vsftpd-sufficient:2)",
            "oneword=after never runs",
            "a login can succeed without the second factor",
        ],
    );
    let c = d("vsftpd-required", "fail");
    holds(
        &c,
        &[
            "pam_unix.so is `required` (vsftpd-required:2)",
            "a wrong password still reaches oneword=after",
            "make it `requisite`",
        ],
    );
    assert_eq!(c.matches("requisite").count(), 1, "said once: {c}");
    holds(
        &d("vsftpd-nopass", "fail"),
        &[
            "no password module between oneword=before (vsftpd-nopass:1) and oneword=after (vsftpd-nopass:2)",
        ],
    );
    holds(
        &d("vsftpd-prompts", "warn"),
        &[
            "pam_unix.so (vsftpd-prompts:2) has neither use_first_pass nor try_first_pass",
            "add use_first_pass",
        ],
    );
    holds(
        &d("vsftpd-include", "fail"),
        &[
            "the include at vsftpd-include:1 runs pam_unix.so",
            "prompts for the password itself",
            "auth requisite pam_unix.so use_first_pass",
        ],
    );
    holds(
        &d("vsftpd-between", "fail"),
        &[
            "the include at vsftpd-between:2",
            "no password module between",
        ],
    );
    holds(
        &d("vsftpd-plainbeside", "fail"),
        &["pam_mfa without oneword= (vsftpd-plainbeside:4) in a one-password stack"],
    );
    holds(
        &d("vsftpd-aftersufficient", "fail"),
        &["oneword=after is `sufficient` (vsftpd-aftersufficient:3)"],
    );
    holds(
        &d("vsftpd-twoafters", "fail"),
        &["oneword=after is stacked 2 times (vsftpd-twoafters:3, vsftpd-twoafters:4)"],
    );
    let c = d("vsftpd-badvalues", "fail");
    holds(
        &c,
        &[
            "\"separator=ab\" (vsftpd-badvalues:1)",
            "\"oneword=both\" (vsftpd-badvalues:3)",
            "every login of vsftpd-badvalues is refused",
        ],
    );
    assert!(!c.contains("without oneword"), "no pairing noise: {c}");
    holds(&d("vsftpd-dashsep", "fail"), &["\"separator=-\""]);
    // A hostile argument is shown escaped, never as a terminal control sequence.
    let c = d("vsftpd-unknownarg", "fail");
    holds(&c, &["\\u{1b}[2Jfoo=bar", "known: config=PATH"]);
    assert!(!c.contains('\u{1b}'), "{c:?}");
    holds(
        &d("vsftpd-plain", "warn"),
        &[
            "vsftpd's clients send one password",
            "pam_mfa here (vsftpd-plain:3) has no oneword=",
            "no @include common-auth",
        ],
    );
}

/// pam-auth-update's profile puts plain pam_mfa in common-auth: a one-password service that
/// still includes it gets the warning (the file named as the include), and a one-password
/// stack beside it that includes it fails.
#[test]
fn plain_pam_mfa_from_common_auth_on_a_one_password_service() {
    if !root("plain_pam_mfa_from_common_auth_on_a_one_password_service") {
        return;
    }
    let r = Rooted::new();
    let m = r.i.module.display().to_string();
    let common = std::fs::read_to_string(r.pam.join("common-auth")).unwrap();
    r.write("common-auth", &format!("{common}auth required {m}\n"));
    r.write("proftpd", "@include common-auth\n@include common-account\n");
    r.write(
        "postgresql",
        &format!(
            "auth [success=done ignore=ignore default=die] {m} oneword=before\nauth requisite pam_unix.so use_first_pass\nauth required {m} oneword=after\n@include common-auth\n"
        ),
    );
    let (_, checks) = r.doctor();
    holds(
        &expect(&checks, "pam.d/proftpd", "warn"),
        &[
            "proftpd's clients send one password",
            "included at proftpd:1",
        ],
    );
    holds(
        &expect(&checks, "pam.d/postgresql", "fail"),
        &[
            "pam_mfa without oneword=",
            "included at postgresql:4",
            "pam-auth-update",
        ],
    );
    // sudo is no one-password service: the profile's line there is fine (no such warning).
    assert!(
        !check(&checks, "pam.d/sudo").1.contains("one password"),
        "{checks:#?}"
    );
}

#[test]
fn callers_and_the_helper_are_checked() {
    if !root("callers_and_the_helper_are_checked") {
        return;
    }
    let r = Rooted::new();
    r.write("postgresql", &shipped(&r.i, "postgresql"));
    // pam_mfa for postgresql, but nobody may ask: PostgreSQL's logins would be refused.
    let (_, checks) = r.doctor();
    holds(
        &expect(&checks, "callers postgresql", "warn"),
        &["calls PAM as `postgres`", "postgres = [\"postgresql\"]"],
    );
    assert!(
        !checks.iter().any(|c| c["check"] == "helper mfa-check"),
        "no [callers]: no helper needed"
    );

    r.config("\n[callers]\npostgres = [\"postgresql\", \"pgtypo\"]\nnoacct-mfa-t = [\"x\"]\n");
    // No helper under this root.
    let (code, checks) = r.doctor();
    assert_ne!(code, 0);
    holds(
        &expect(&checks, "helper mfa-check", "fail"),
        &[
            &r.root.join("usr/lib/mfa/mfa-check").display().to_string(),
            "usr/local/lib/mfa/mfa-check",
            "second factor unavailable",
        ],
    );
    assert!(!checks.iter().any(|c| c["check"] == "callers postgresql"));
    expect(&checks, "caller postgres postgresql", "ok");
    holds(
        &expect(&checks, "caller postgres pgtypo", "warn"),
        &["no file in", "runs pam_mfa for it", "pamservice="],
    );
    holds(
        &expect(&checks, "caller noacct-mfa-t", "warn"),
        &["there is no such account"],
    );

    // The helper, wrong in each way, then right.
    let p = r.helper(0o755);
    holds(
        &expect(&r.doctor().1, "helper mfa-check", "fail"),
        &["not setuid root", "chmod 4755"],
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4775)).unwrap();
    holds(
        &expect(&r.doctor().1, "helper mfa-check", "fail"),
        &["writable by group or others"],
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    holds(
        &expect(&r.doctor().1, "helper mfa-check", "fail"),
        &["owned by uid 65534, not root", "chown root:root"],
    );
    std::os::unix::fs::chown(&p, Some(0), None).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o4755)).unwrap();
    holds(
        &expect(&r.doctor().1, "helper mfa-check", "ok"),
        &["mode 4755, root"],
    );

    // helper= on the module line: that file is checked (under the same root), not the
    // default ones.
    let m = r.i.module.display().to_string();
    r.write(
        "postgresql",
        &shipped(&r.i, "postgresql").replace(
            &format!("{m} oneword="),
            &format!("{m} helper=/opt/mfa-check oneword="),
        ),
    );
    let (_, checks) = r.doctor();
    holds(
        &expect(&checks, "helper /opt/mfa-check", "fail"),
        &[&r.root.join("opt/mfa-check").display().to_string()],
    );
    assert!(!checks.iter().any(|c| c["check"] == "helper mfa-check"));
    // ... and the module knows helper= (no "refuses to run").
    assert!(
        !expect(&checks, "pam.d/postgresql", "ok").contains("refuses"),
        "{checks:#?}"
    );
}

/// proftpd lets the password in when PAM refuses unless PAM is authoritative: doctor reads
/// `<root>/etc/proftpd/proftpd.conf` and what it includes when a proftpd stack runs pam_mfa.
#[test]
fn proftpd_conf_needs_authoritative_pam() {
    if !root("proftpd_conf_needs_authoritative_pam") {
        return;
    }
    let r = Rooted::new();
    r.write("proftpd", &shipped(&r.i, "proftpd"));
    let has = |checks: &[Value], name: &str| checks.iter().any(|c| c["check"] == name);
    // proftpd not installed: nothing to say.
    let (code, checks) = r.doctor();
    assert!(!has(&checks, "proftpd.conf"), "{checks:#?}");
    assert_eq!(code, 0, "{checks:#?}");

    // Debian's layout: the line commented out, conf.d included.
    let etc = r.root.join("etc/proftpd");
    std::fs::create_dir_all(etc.join("conf.d")).unwrap();
    let conf = etc.join("proftpd.conf");
    std::fs::write(
        &conf,
        "Include /etc/proftpd/modules.conf\nUseIPv6 on\n\
         # This is required to use both PAM-based authentication and local passwords\n\
         # AuthOrder mod_auth_pam.c* mod_auth_unix.c\nInclude /etc/proftpd/conf.d/\n",
    )
    .unwrap();
    std::fs::write(etc.join("modules.conf"), "LoadModule mod_ctrls_admin.c\n").unwrap();
    let (code, checks) = r.doctor();
    assert_ne!(code, 0);
    holds(
        &expect(&checks, "proftpd.conf", "fail"),
        &[
            &format!("{} has no AuthOrder", conf.display()),
            "the password alone logs in",
            "AuthOrder mod_auth_pam.c* mod_auth_unix.c",
        ],
    );
    holds(
        &expect(&checks, "proftpd.conf reverse DNS", "warn"),
        &["on (the default)", "UseReverseDNS off"],
    );

    // The wrong order, in an included file: named with its line.
    let mfa = etc.join("conf.d/mfa.conf");
    std::fs::write(
        &mfa,
        "UseReverseDNS off\nAuthOrder mod_auth_unix.c mod_auth_pam.c*\n",
    )
    .unwrap();
    let (_, checks) = r.doctor();
    holds(
        &expect(&checks, "proftpd.conf", "fail"),
        &[&format!("{}:2", mfa.display()), "PAM is not authoritative"],
    );
    assert!(!has(&checks, "proftpd.conf reverse DNS"));

    // What etc/pam.d/proftpd's header asks for.
    std::fs::write(
        &mfa,
        "UseReverseDNS off\nAuthOrder mod_auth_pam.c* mod_auth_unix.c\n",
    )
    .unwrap();
    let (code, checks) = r.doctor();
    holds(
        &expect(&checks, "proftpd.conf", "ok"),
        &["PAM decides alone"],
    );
    assert_eq!(code, 0, "{checks:#?}");
}
