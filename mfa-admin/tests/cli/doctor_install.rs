//! `doctor` on an installation laid out like a real one (owners and modes of the ownership
//! model, the sender's user `nobody`, a pam.d directory naming the module built from these
//! sources): OK when it is clean, FAIL for each way the issue saw it broken — the module
//! missing or not loading, `sudo-i` outside its family's rule, the sender unable to read its
//! config or a queued message.
//!
//! Needs root (files are chowned to nobody) and the built module and sender: each test
//! runs `cargo build -p pam_mfa -p mfa-sender` once (the module is a cdylib that `cargo
//! test` does not build, and another package's binary is not built for this one's tests).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::Env;

/// True when running as root; otherwise says why the test is skipped.
pub fn root(test: &str) -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("{test}: skipped: needs root (files are chowned to the sender's user nobody)");
    }
    ok
}

/// target/debug/libpam_mfa.so, built now (with mfa-sender, which doctor runs) from these
/// sources.
pub fn module() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let admin = PathBuf::from(env!("CARGO_BIN_EXE_mfa-admin"));
            let profile_dir = admin.parent().unwrap();
            let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev",
                other => other,
            };
            let out = Command::new(env!("CARGO"))
                .args(["build", "--offline", "-q", "-p", "pam_mfa", "--lib"])
                .args([
                    "-p",
                    "mfa-sender",
                    "--bin",
                    "mfa-sender",
                    "--profile",
                    profile,
                ])
                .arg("--target-dir")
                .arg(profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "cargo build -p pam_mfa -p mfa-sender: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let m = profile_dir.join("libpam_mfa.so");
            assert!(m.exists(), "{} not built", m.display());
            m
        })
        .clone()
}

/// Debian's common-auth: a wrong password stops at pam_deny.
const COMMON_AUTH: &str = "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n";

/// A clean installation: the tempdir 0755, init's owners and modes (config 0640
/// root:nogroup, spool subdirectories 2770 root:nogroup, runtime nobody's), 2FA on, a fresh
/// heartbeat, sshd_config using PAM, and Debian-like pam.d files with pam_mfa (an absolute
/// path to the built module) after common-auth for sshd, login, su, sudo, sudo-i; su-l
/// includes su.
pub struct Install {
    pub env: Env,
    pub pam: PathBuf,
    pub sshd: PathBuf,
    /// The module path the pam.d files name.
    pub module: PathBuf,
}

impl Install {
    pub fn new() -> Install {
        let env = Env::new();
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let lib = env.path("lib");
        std::fs::create_dir(&lib).unwrap();
        std::fs::set_permissions(&lib, std::fs::Permissions::from_mode(0o755)).unwrap();
        let module = lib.join("pam_mfa.so");
        std::os::unix::fs::symlink(self::module(), &module).unwrap();
        let pam = env.path("pam.d");
        std::fs::create_dir(&pam).unwrap();
        std::fs::write(pam.join("common-auth"), COMMON_AUTH).unwrap();
        std::fs::write(pam.join("common-account"), "account required pam_unix.so\n").unwrap();
        let mfa = format!("auth required {}", module.display());
        for s in ["sshd", "login", "sudo", "sudo-i"] {
            std::fs::write(
                pam.join(s),
                format!("# {s}\n@include common-auth\n{mfa}\n@include common-account\n"),
            )
            .unwrap();
        }
        std::fs::write(
            pam.join("su"),
            format!("auth sufficient pam_rootok.so\n@include common-auth\n{mfa}\n@include common-account\n"),
        )
        .unwrap();
        std::fs::write(pam.join("su-l"), "auth include su\naccount include su\n").unwrap();
        // Not a service: a package's leftover.
        std::fs::write(
            pam.join("sudo.dpkg-old"),
            "auth required pam_nonexistent.so\n",
        )
        .unwrap();
        let sshd = env.path("sshd_config");
        std::fs::write(&sshd, "UsePAM yes\nKbdInteractiveAuthentication yes\n").unwrap();
        env.ok(&["settings", "set", "enabled=on"]);
        std::fs::File::create(env.path("run/sender.heartbeat")).unwrap();
        Install {
            env,
            pam,
            sshd,
            module,
        }
    }

    /// `doctor --json`: (exit code, checks by name).
    pub fn doctor(&self) -> (i32, Vec<Value>) {
        let out = self.env.run(&[
            "--json",
            "doctor",
            "--pam-dir",
            self.pam.to_str().unwrap(),
            "--sshd-config",
            self.sshd.to_str().unwrap(),
        ]);
        let checks: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor: not JSON ({e}): {out:?}"));
        (out.code, checks.as_array().unwrap().clone())
    }
}

/// The check of that name: (status, detail).
pub fn check(checks: &[Value], name: &str) -> (String, String) {
    let c = checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {checks:#?}"));
    (
        c["status"].as_str().unwrap().to_string(),
        c["detail"].as_str().unwrap().to_string(),
    )
}

fn failures(checks: &[Value]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| format!("{}: {}", c["check"], c["detail"]))
        .collect()
}

#[test]
fn clean_install_is_ok() {
    if !root("clean_install_is_ok") {
        return;
    }
    let i = Install::new();
    let (code, checks) = i.doctor();
    assert_eq!(failures(&checks), Vec::<String>::new());
    assert_eq!(code, 0);
    for s in ["sshd", "login", "su", "su-l", "sudo", "sudo-i"] {
        let (st, d) = check(&checks, &format!("pam.d/{s}"));
        assert_eq!(st, "ok", "{s}: {d}");
        assert!(d.starts_with("follows * (any)"), "{s}: {d}");
        assert!(
            d.contains("pam_mfa (required) follows pam_unix.so"),
            "{s}: {d}"
        );
    }
    assert!(check(&checks, "pam.d/su-l").1.contains("pam_mfa from su:3"));
    let (st, d) = check(&checks, &format!("pam module {}", i.module.display()));
    assert_eq!((st.as_str(), d.ends_with("loads")), ("ok", true), "{d}");
    assert_eq!(check(&checks, "config as sender").0, "ok");
    assert!(
        check(&checks, "config as sender")
            .1
            .contains("0640 root:nogroup")
    );
    assert_eq!(check(&checks, "spool as sender").0, "ok");
    assert_eq!(check(&checks, "runtime directory").0, "ok");
    // The sender's own check ran, as nobody.
    let (st, d) = check(&checks, "sender config");
    assert_eq!(st, "ok", "{d}");
    assert!(d.contains("as nobody"), "{d}");
    assert!(
        !checks.iter().any(|c| c["check"] == "pam.d/sudo.dpkg-old"),
        "backup files are not services"
    );
}

#[test]
fn missing_module_fails_every_service_that_stacks_it() {
    if !root("missing_module_fails_every_service_that_stacks_it") {
        return;
    }
    let i = Install::new();
    std::fs::remove_file(&i.module).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    for s in ["sshd", "su-l", "sudo-i"] {
        let (st, d) = check(&checks, &format!("pam.d/{s}"));
        assert_eq!(st, "fail", "{s}: {d}");
        assert!(d.contains("does not exist"), "{s}: {d}");
        assert!(
            d.contains(&format!("every login of {s} is refused")),
            "{s}: {d}"
        );
    }
    let (st, d) = check(&checks, &format!("pam module {}", i.module.display()));
    assert_eq!(st, "fail", "{d}");

    // With `-auth` PAM skips a missing pam_mfa silently: no second factor.
    std::fs::write(
        i.pam.join("sudo"),
        format!(
            "@include common-auth\n-auth required {}\n",
            i.module.display()
        ),
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/sudo");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("skips it silently"), "{d}");
}

#[test]
fn module_that_does_not_load_fails_with_the_loader_error() {
    if !root("module_that_does_not_load_fails_with_the_loader_error") {
        return;
    }
    let i = Install::new();
    std::fs::remove_file(&i.module).unwrap();
    std::fs::write(
        &i.module,
        b"\x7fELF\x02\x01\x01 this is not a shared object \xff\xfe",
    )
    .unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (st, d) = check(&checks, "pam.d/sudo");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("does not load"), "{d}");
    assert!(d.contains("every login of sudo is refused"), "{d}");
    let (_, d) = check(&checks, &format!("pam module {}", i.module.display()));
    assert!(
        d.contains("invalid ELF header") || d.contains("file too short") || d.contains("ELF"),
        "dlerror's text: {d}"
    );

    // A module others may write is not loaded at all: whoever writes it is root.
    std::fs::remove_file(&i.module).unwrap();
    std::fs::copy(module(), &i.module).unwrap();
    std::fs::set_permissions(&i.module, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, &format!("pam module {}", i.module.display()));
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("chmod go-w"), "{d}");
}

#[test]
fn sudo_i_outside_the_rule_of_sudo_fails() {
    if !root("sudo_i_outside_the_rule_of_sudo_fails") {
        return;
    }
    let i = Install::new();
    // Debian's own sudo-i: common-auth directly, no pam_mfa.
    std::fs::write(
        i.pam.join("sudo-i"),
        "session required pam_limits.so\n@include common-auth\n@include common-account\n",
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/sudo-i");
    assert_eq!(st, "warn", "only * governs it yet: {d}");
    assert!(d.contains("follows * (any)"), "{d}");

    i.env.ok(&["service", "set", "sudo", "totp"]);
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (st, d) = check(&checks, "pam.d/sudo-i");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("follows the rule of sudo (totp)"), "{d}");
    assert!(d.contains("lacks pam_mfa"), "{d}");
    let (st, d) = check(&checks, "pam.d/sudo");
    assert_eq!(
        (st.as_str(), d.starts_with("rule sudo (totp)")),
        ("ok", true),
        "{d}"
    );
    assert_eq!(
        checks
            .iter()
            .filter(|c| c["check"] == "pam.d/sudo-i")
            .count(),
        1,
        "each file once"
    );

    // Its own rule decides: none needs no pam_mfa.
    i.env.ok(&["service", "set", "sudo-i", "none"]);
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/sudo-i");
    assert_eq!(st, "ok", "{d}");
    assert!(d.starts_with("rule sudo-i (none)"), "{d}");
}

#[test]
fn a_stack_that_skips_pam_mfa_fails() {
    if !root("a_stack_that_skips_pam_mfa_fails") {
        return;
    }
    let i = Install::new();
    let m = i.module.display();
    // The password alone ends the stack, or jumps over the second factor.
    for text in [
        format!("auth sufficient pam_unix.so\nauth required {m}\n"),
        format!(
            "auth [success=1 default=die] pam_unix.so\nauth required {m}\nauth required pam_permit.so\n"
        ),
        format!("@include common-auth\nauth optional {m}\n"),
    ] {
        std::fs::write(i.pam.join("login"), &text).unwrap();
        let (code, checks) = i.doctor();
        let (st, d) = check(&checks, "pam.d/login");
        assert_eq!((code, st.as_str()), (1, "fail"), "{text}: {d}");
        assert!(d.contains("without the second factor"), "{text}: {d}");
    }
    // A `required` password lets a wrong one reach pam_mfa: a warning.
    std::fs::write(
        i.pam.join("login"),
        format!("auth required pam_unix.so\nauth required {m}\n"),
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/login");
    assert_eq!(st, "warn", "{d}");
    assert!(d.contains("make it `requisite`"), "{d}");
    // Any other `required` module before pam_mfa: a refused login still gets a passcode.
    std::fs::write(
        i.pam.join("login"),
        format!("auth required pam_shells.so\n@include common-auth\nauth required {m}\n"),
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/login");
    assert_eq!(st, "warn", "{d}");
    assert!(
        d.contains("pam_shells.so is `required`") && d.contains("when it refuses"),
        "{d}"
    );
    // An include cycle and hostile bytes are reported, not followed forever.
    std::fs::write(
        i.pam.join("login"),
        format!("auth include login\nauth required {m}\n"),
    )
    .unwrap();
    std::fs::write(
        i.pam.join("vsftpd"),
        b"\xff\xfe\0auth [success=\n@include \n\\",
    )
    .unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d/login");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("cycle"), "{d}");
}

#[test]
fn sender_unable_to_read_its_config_fails() {
    if !root("sender_unable_to_read_its_config_fails") {
        return;
    }
    let i = Install::new();
    std::fs::set_permissions(&i.env.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    nix::unistd::chown(&i.env.config, Some(0.into()), Some(0.into())).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (st, d) = check(&checks, "config as sender");
    assert_eq!(st, "fail", "{d}");
    assert!(
        d.contains("user nobody") && d.contains("cannot read"),
        "{d}"
    );
    // What the sender itself said, run as nobody.
    let said: Vec<_> = checks
        .iter()
        .filter(|c| {
            c["check"].as_str().unwrap().starts_with("sender ")
                && c["status"] == "fail"
                && c["detail"].as_str().unwrap().contains("Permission denied")
        })
        .collect();
    assert!(!said.is_empty(), "{checks:#?}");

    // Readable by everyone: works, but not the model (0640 root:GROUP).
    std::fs::set_permissions(&i.env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "config as sender");
    assert_eq!(st, "warn", "{d}");
    assert!(d.contains("expected 0640 root:nogroup"), "{d}");

    // A directory above it the sender cannot enter is named.
    std::fs::set_permissions(&i.env.config, std::fs::Permissions::from_mode(0o640)).unwrap();
    nix::unistd::chown(&i.env.config, None, Some(65534.into())).unwrap();
    std::fs::set_permissions(i.env.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "config as sender");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("cannot enter"), "{d}");
}

#[test]
fn spool_message_the_sender_cannot_read_fails() {
    if !root("spool_message_the_sender_cannot_read_fails") {
        return;
    }
    let i = Install::new();
    let name = "1700000000-doctor-test.json";
    let f = i.env.path("spool/new").join(name);
    std::fs::write(&f, "{}").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    nix::unistd::chown(&f, Some(0.into()), Some(0.into())).unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (st, d) = check(&checks, "spool messages");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains(&format!("new/{name} (0600 root:root)")), "{d}");
    // Readable by the spool's group: fine.
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    nix::unistd::chown(&f, None, Some(65534.into())).unwrap();
    let (_, checks) = i.doctor();
    assert_eq!(check(&checks, "spool messages").0, "ok");
    // A spool subdirectory the sender's group cannot write.
    let cur = i.env.path("spool/cur");
    std::fs::set_permissions(&cur, std::fs::Permissions::from_mode(0o750)).unwrap();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "spool as sender");
    assert_eq!(st, "fail", "{d}");
    assert!(d.contains("cannot use") && d.contains("2770"), "{d}");
}

#[test]
fn missing_sender_user_fails_with_the_fix() {
    if !root("missing_sender_user_fails_with_the_fix") {
        return;
    }
    let i = Install::new();
    let text = std::fs::read_to_string(&i.env.config).unwrap();
    let user = format!("mfadoc{}", std::process::id() % 100000);
    assert!(nix::unistd::User::from_name(&user).unwrap().is_none());
    std::fs::write(
        &i.env.config,
        text.replace("user = \"nobody\"", &format!("user = \"{user}\"")),
    )
    .unwrap();
    let (code, checks) = i.doctor();
    assert_eq!(code, 1);
    let (st, d) = check(&checks, "sender user");
    assert_eq!(st, "fail", "{d}");
    assert!(
        d.contains("run mfa-admin init as root (creates the system user mfa)"),
        "{d}"
    );
    // The sender's own check would run as root and see every file: not run.
    let (st, d) = check(&checks, "sender check");
    assert_eq!(st, "warn", "{d}");
    assert!(
        !checks.iter().any(|c| c["check"] == "sender config"),
        "{checks:#?}"
    );
}

/// The doctor of a non-root checkout: module paths resolved the same way, no chown needed.
#[test]
fn module_dirs_resolve_bare_names() {
    let env = Env::new();
    let pam = env.path("pam.d");
    std::fs::create_dir(&pam).unwrap();
    std::fs::write(pam.join("common-auth"), COMMON_AUTH).unwrap();
    std::fs::write(
        pam.join("sudo"),
        "@include common-auth\nauth required pam_mfa.so\n",
    )
    .unwrap();
    let out = env.run(&[
        "--json",
        "doctor",
        "--pam-dir",
        pam.to_str().unwrap(),
        "--sshd-config",
        "/nonexistent",
    ]);
    let checks: Vec<Value> = serde_json::from_str::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    let (st, d) = check(&checks, "pam module pam_mfa.so");
    let installed = Path::new("/lib/x86_64-linux-gnu/security/pam_mfa.so").exists()
        || Path::new("/usr/lib/x86_64-linux-gnu/security/pam_mfa.so").exists();
    if installed {
        // An installed module (after `make install`) is found where libpam looks and loads.
        assert_eq!(st, "ok", "{d}");
    } else {
        assert_eq!(st, "fail", "{d}");
        assert!(d.contains("is not in") && d.contains("/security"), "{d}");
    }
}

/// Run by a user other than root (here the sender's own, nobody): the database is out of
/// reach, which fails, but every other check still runs and says who it ran as.
#[test]
fn doctor_as_a_non_root_user_still_checks_the_rest() {
    if !root("doctor_as_a_non_root_user_still_checks_the_rest") {
        return;
    }
    let i = Install::new();
    let out = i.env.run_as_nobody(&[
        OsStr::new("--json"),
        OsStr::new("doctor"),
        OsStr::new("--pam-dir"),
        i.pam.as_os_str(),
        OsStr::new("--sshd-config"),
        i.sshd.as_os_str(),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let checks: Vec<Value> = serde_json::from_str::<Value>(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {out:?}"))
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(check(&checks, "database").0, "fail");
    let (st, d) = check(&checks, "pam.d/sudo");
    assert_eq!(st, "ok", "{d}");
    assert!(d.starts_with("rules unknown"), "{d}");
    let (st, d) = check(&checks, "sender config");
    assert_eq!(st, "ok", "{d}");
    assert!(d.ends_with("(as nobody)"), "{d}");
    assert_eq!(
        check(&checks, &format!("pam module {}", i.module.display())).0,
        "ok"
    );
}

/// The sender's account must be its own: as `nobody` (which other programs run as) or with
/// a group other accounts share, they can read every queued passcode. A warning naming
/// them; the dedicated account `mfa` would not get one.
#[test]
fn a_sender_account_shared_with_others_is_a_warning() {
    if !root("a_sender_account_shared_with_others_is_a_warning") {
        return;
    }
    let i = Install::new();
    let (_, checks) = i.doctor();
    let (st, d) = check(&checks, "sender group");
    assert_eq!(st, "warn", "{d}");
    assert!(d.contains("nobody is shared by other programs"), "{d}");
    // Debian's sync has nogroup as its primary group, as nobody does.
    let sync = nix::unistd::User::from_name("sync").unwrap();
    if sync.as_ref().is_some_and(|u| u.gid.as_raw() == 65534) {
        let text = std::fs::read_to_string(&i.env.config)
            .unwrap()
            .replace("user = \"nobody\"", "user = \"sync\"");
        std::fs::write(&i.env.config, text).unwrap();
        let (_, checks) = i.doctor();
        let (st, d) = check(&checks, "sender group");
        assert_eq!(st, "warn", "{d}");
        assert!(
            d.contains("group nogroup is also") && d.contains("nobody"),
            "{d}"
        );
    }
}

/// A pam.d file (or the directory) someone other than root can write lets them take the
/// second factor out of any stack: a failure naming it.
#[test]
fn a_pam_file_others_can_write_fails() {
    if !root("a_pam_file_others_can_write_fails") {
        return;
    }
    let i = Install::new();
    let (_, checks) = i.doctor();
    assert_eq!(check(&checks, "pam.d files").0, "ok");
    std::fs::set_permissions(
        i.pam.join("common-auth"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let (code, checks) = i.doctor();
    let (st, d) = check(&checks, "pam.d files");
    assert_eq!((st.as_str(), code), ("fail", 1), "{d}");
    assert!(d.contains("common-auth") && d.contains("chmod go-w"), "{d}");
}

/// The configuration names the database the module trusts: a directory someone other than
/// root can write lets them swap the file (the module then refuses it, or, with the module
/// argument fail_mode=safe, lets every login through). A failure naming the directory.
#[test]
fn a_config_directory_others_can_write_fails() {
    if !root("a_config_directory_others_can_write_fails") {
        return;
    }
    let i = Install::new();
    let (_, checks) = i.doctor();
    assert_eq!(check(&checks, "config").0, "ok");
    let dir = i.env.config.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    let (_, checks) = i.doctor();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (st, d) = check(&checks, "config");
    assert_eq!(st, "fail", "{d}");
    assert!(
        d.contains(&dir.display().to_string()) && d.contains("chmod go-w"),
        "{d}"
    );
}
