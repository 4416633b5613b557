//! The sender's preflight (`--check`, and the checks the daemon and `--once` run before
//! they start): one `OK`/`FAIL` line per thing the sender needs from the file system, each
//! failure naming the path, what it needs and the fix; `--check` without any transport
//! checks only the files. The unprivileged cases run the sender as `nobody` (root only).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::unprivileged::{GID, USER, installed_layout, root_or_skip, run_as_sender};
use super::{Install, free_port};

const T: Duration = Duration::from_secs(30);
const REPAIR: &str = "run mfa-admin init as root, which repairs owners and modes";

fn mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// The `OK`/`FAIL` line of one check.
fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    let prefix = format!("  {name}: ");
    stdout
        .lines()
        .find(|l| l.starts_with(['O', 'F']) && l.contains(&prefix))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{stdout}"))
}

#[test]
fn check_without_transports_checks_the_files_only() {
    let i = Install::create(tempfile::tempdir().unwrap(), "");
    let out = i.run(&["--check"], T);
    assert_eq!(out.code, 0, "{out:?}");
    // Only the files, and one warning (not a failure) that nothing can be delivered.
    let (warn, lines) = out
        .stdout
        .lines()
        .partition::<Vec<&str>, _>(|l| l.starts_with("WARN"));
    assert_eq!(
        warn,
        ["WARN  transports: no [smtp] or [sms] section: the sender cannot deliver anything"]
    );
    let names: Vec<&str> = lines
        .iter()
        .map(|l| {
            assert!(l.starts_with("OK    "), "{l}");
            l[6..].split(": ").next().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "config",
            "spool new/",
            "spool cur/",
            "spool failed/",
            "spool messages",
            "runtime"
        ],
        "{out:?}"
    );
    // The probes left nothing behind.
    for sub in ["tmp", "new", "cur", "failed"] {
        assert!(i.files(sub).is_empty(), "{sub}: {:?}", i.files(sub));
    }
    assert!(std::fs::read_dir(i.path("run")).unwrap().next().is_none());
}

#[test]
fn a_missing_spool_directory_stops_the_sender_with_the_fix() {
    let i = Install::create(tempfile::tempdir().unwrap(), "");
    std::fs::remove_dir(i.spool().join("failed")).unwrap();
    let out = i.run(&["--check"], T);
    assert_eq!(out.code, 1, "{out:?}");
    let l = line(&out.stdout, "spool failed/");
    assert!(
        l.starts_with("FAIL") && l.contains("/spool/failed: cannot list it") && l.contains(REPAIR),
        "{l}"
    );
    for args in [&["--once"][..], &[]] {
        let o = i.run(args, T);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        assert!(
            o.stderr
                .contains("mfa-sender: cannot start: spool failed/: ")
                && o.stderr.contains(REPAIR),
            "{args:?}: {o:?}"
        );
    }
}

/// As `nobody`, each thing an installed system can get wrong, one at a time: the line that
/// fails names the path and the fix, the daemon refuses to start with the same words, and
/// once repaired every line is OK.
#[test]
fn as_an_unprivileged_user_each_problem_is_named() {
    if !root_or_skip("as_an_unprivileged_user_each_problem_is_named") {
        return;
    }
    let secret_dir = tempfile::tempdir().unwrap();
    let password = secret_dir.path().join("smtp.password");
    std::fs::write(&password, "pw\n").unwrap();
    // Nothing listens on the SMTP port: the transport line fails, the files are the point.
    let i = Install::create(
        tempfile::tempdir().unwrap(),
        &format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"mfa@example.com\"\n\
             username = \"mfa\"\npassword_file = \"{}\"\ntimeout = \"2s\"\n",
            free_port(),
            password.display()
        ),
    );
    installed_layout(&i);
    mode(secret_dir.path(), 0o755);
    std::os::unix::fs::chown(&password, Some(0), Some(GID)).unwrap();
    mode(&password, 0o640);

    let fails = |name: &str, what: &[&str]| {
        let out = run_as_sender(&i, &["--check"], T);
        assert_eq!(out.code, 1, "{name}: {out:?}");
        let l = line(&out.stdout, name);
        assert!(l.starts_with("FAIL  "), "{name}: {out:?}");
        for w in what {
            assert!(l.contains(w), "{name}: no {w:?} in {l}");
        }
        assert!(
            l.contains(&format!("user {USER} (uid 65534)")),
            "{name}: the line says who the sender is: {l}"
        );
        let start = run_as_sender(&i, &["--once"], T);
        assert_eq!(start.code, 1, "{name}: {start:?}");
        assert!(start.stderr.contains(what[0]), "{name}: {start:?}");
    };

    // The configuration as a careless `init` wrote it: 0600 root.
    mode(&i.config, 0o600);
    fails("config", &["mfa.toml: Permission denied", REPAIR]);
    mode(&i.config, 0o640);

    // A spool directory only root may enter.
    mode(&i.spool().join("new"), 0o700);
    fails("spool new/", &["/spool/new: cannot list it", REPAIR]);
    std::os::unix::fs::chown(i.spool().join("new"), Some(0), Some(GID)).unwrap();
    mode(&i.spool().join("new"), 0o2770);

    // failed/ the group can read but not write: claiming works, failing a message does not.
    mode(&i.spool().join("failed"), 0o2750);
    fails(
        "spool failed/",
        &[
            "/spool/failed: cannot move a failed message into it",
            REPAIR,
        ],
    );
    mode(&i.spool().join("failed"), 0o2770);

    // A runtime directory of root's.
    std::os::unix::fs::chown(i.path("run"), Some(0), Some(0)).unwrap();
    fails(
        "runtime",
        &["/run: cannot write there", "heartbeat", REPAIR],
    );
    std::os::unix::fs::chown(i.path("run"), Some(65534), Some(GID)).unwrap();

    // A secret only root can read.
    std::os::unix::fs::chown(&password, Some(0), Some(0)).unwrap();
    mode(&password, 0o600);
    fails(
        "secret [smtp] password_file",
        &[
            "smtp.password: cannot read it: Permission denied",
            "chmod 640",
        ],
    );
    std::os::unix::fs::chown(&password, Some(0), Some(GID)).unwrap();
    mode(&password, 0o640);

    // Repaired: every file line is OK; only the SMTP server, which is not there, fails.
    let out = run_as_sender(&i, &["--check"], T);
    let bad: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .collect();
    assert_eq!(bad.len(), 1, "{out:?}");
    assert!(bad[0].starts_with("FAIL  smtp: "), "{out:?}");
    assert!(
        line(&out.stdout, "secret [smtp] password_file").contains("mode 0640, root:nogroup"),
        "{out:?}"
    );
    for sub in ["tmp", "new", "cur", "failed"] {
        assert!(i.files(sub).is_empty(), "{sub}: {:?}", i.files(sub));
    }
}
