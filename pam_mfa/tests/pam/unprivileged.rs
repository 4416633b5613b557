//! The module loaded by an unprivileged process (as PostgreSQL loads it as `postgres`): the
//! test re-runs itself as nobody (setpriv) and drives libpam there. The module then reads
//! nothing itself and asks the helper given by `helper=`: here the built mfa-check, not
//! setuid, which runs as nobody too and honours the `config=` the module passes it (a
//! setuid helper would not: mfa-check's own tests prove that). The installation belongs to
//! nobody so that this unprivileged helper can decide. Proven here: the delegation, the
//! relayed prompt, the one-password pair, a host with SIGCHLD ignored, and that a missing,
//! dying, echoing or lying helper is "unavailable" under the fail mode, never a success.
//! (The real setuid path with PostgreSQL is tests/installed's.)
#![allow(unsafe_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Install;
use super::harness::{self, PAM_AUTH_ERR, PAM_PERM_DENIED, PAM_SUCCESS};

/// The environment variable that tells the re-run test where the installation is.
const DIR_ENV: &str = "PAM_MFA_UNPRIVILEGED_DIR";
const PASSWORD: &str = "s3cret-Pass";

/// mfa-check, built now (another package's binary: not in this test's CARGO_BIN_EXE_*).
fn helper_path() -> PathBuf {
    let module = harness::module_path();
    let dir = module.parent().unwrap();
    let profile = match dir.file_name().unwrap().to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--offline",
            "-q",
            "-p",
            "mfa-check",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cargo build -p mfa-check failed");
    dir.join("mfa-check")
}

fn chown_tree(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).unwrap() {
            chown_tree(&e.unwrap().path(), uid, gid);
        }
    }
}

/// A fake helper: a shell script, executable by nobody.
fn script(i: &Install, name: &str, body: &str) -> PathBuf {
    let p = i.path(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// One service file `name` in the installation's pam.d: pam_mfa with `args`, then
/// pam_debug returning PAM_PERM_DENIED (so that a bypass shows).
fn service(i: &Install, name: &str, args: &str) {
    std::fs::write(
        i.path(&format!("pam.d/{name}")),
        format!(
            "auth [success=done ignore=ignore default=die] {} config={} {args}\n\
             auth requisite pam_debug.so auth=perm_denied\n",
            harness::module_path().display(),
            i.path("mfa.toml").display()
        ),
    )
    .unwrap();
}

#[test]
fn the_module_without_root_asks_the_helper() {
    if !nix_is_root() {
        eprintln!("SKIPPED: needs root (re-runs itself as nobody with setpriv)");
        return;
    }
    let helper = helper_path();
    let i = Install::with_args(&format!("helper={}", helper.display()));
    i.user("ann", &["ann@example.com"]);
    i.set("repeat_window", "0");
    let config = i.path("mfa.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[callers]\nnobody = [\"mfa-test\", \"mfa-missing\", \"ftp-test\"]\n"),
    )
    .unwrap();
    // Fake helpers: none, one that dies at once, one that echoes the ask back, one that
    // claims a success and exits 1.
    let dies = script(&i, "dies.sh", "exit 0");
    let echoes = script(&i, "echoes.sh", "exec cat");
    let lies = script(
        &i,
        "lies.sh",
        "cat >/dev/null &\nprintf 'O\\000\\000\\000\\013\\000\\000\\000\\000\\004totp\\000\\000'\nexit 1",
    );
    // One that asks for a code, then hangs up before the answer: the module's answer meets
    // a closed socket (EPIPE, and no SIGPIPE for the host). It reads the ask first (the
    // module writes it whole at once): hanging up before the module wrote it fails the
    // module's write instead, a race a loaded machine lost.
    let hangs_up = script(
        &i,
        "hangs-up.sh",
        "head -c 1 >/dev/null\nprintf 'P\\000\\000\\000\\010\\000\\006Code: '\nexec 0<&- 1>&-\nsleep 1",
    );
    service(
        &i,
        "mfa-hangs-up",
        &format!("helper={}", hangs_up.display()),
    );
    service(
        &i,
        "mfa-missing",
        &format!("helper={}", i.path("no-such-helper").display()),
    );
    service(
        &i,
        "mfa-missing-safe",
        &format!(
            "helper={} fail_mode=safe",
            i.path("no-such-helper").display()
        ),
    );
    service(&i, "mfa-dies", &format!("helper={}", dies.display()));
    service(&i, "mfa-echoes", &format!("helper={}", echoes.display()));
    service(&i, "mfa-lies", &format!("helper={}", lies.display()));
    // One that lists the descriptors it was given, then dies.
    let fds = script(
        &i,
        "fds.sh",
        &format!("ls /proc/$$/fd >{}\nexit 0", i.path("fds.txt").display()),
    );
    service(&i, "mfa-fds", &format!("helper={}", fds.display()));
    // The one-password pair, the password checked by pam_exec.
    let check = script(
        &i,
        "check-password.sh",
        &format!("p=$(tr -d '\\000')\n[ \"$p\" = \"{PASSWORD}\" ]"),
    );
    let m = harness::module_path();
    let h = format!("config={} helper={}", config.display(), helper.display());
    std::fs::write(
        i.path("pam.d/ftp-test"),
        format!(
            "auth [success=done ignore=ignore default=die] {m} {h} oneword=before\n\
             auth requisite pam_exec.so expose_authtok quiet {check}\n\
             auth required {m} {h} oneword=after\n",
            m = m.display(),
            check = check.display()
        ),
    )
    .unwrap();
    // nobody owns the installation (its helper, running as nobody, must read and write it).
    chown_tree(i.dir.path(), 65534, 65534);
    std::fs::set_permissions(i.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            "--",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "unprivileged::as_nobody",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(DIR_ENV, i.dir.path())
        .current_dir("/")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    chown_tree(i.dir.path(), 0, 0);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the run as nobody failed:\n{stdout}\n{stderr}"
    );
    // The helper wrote the auth log, as it would as root.
    let outcomes = i.outcomes();
    assert!(outcomes.iter().any(|o| o == "success:"), "{outcomes:?}");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The passcode digits of the newest message in the spool.
fn mailed_code(dir: &Path) -> Option<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("spool/new"))
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(files.last()?).ok()?).ok()?;
    let body = m["body"].as_str()?;
    let at = body.char_indices().find(|(k, c)| {
        c.is_ascii_uppercase()
            && body[k + 1..].starts_with('-')
            && body[k + 2..].starts_with(|d: char| d.is_ascii_digit())
    })?;
    Some(
        body[at.0 + 2..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect(),
    )
}

fn messages(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("spool/new")).map_or(0, |d| d.count())
}

/// The half that runs as nobody (started by the test above; ignored otherwise).
#[test]
#[ignore = "run by the_module_without_root_asks_the_helper, as nobody"]
fn as_nobody() {
    let dir = PathBuf::from(std::env::var_os(DIR_ENV).expect("run by the outer test"));
    assert!(!nix_is_root(), "must run without root");
    let pamd = dir.join("pam.d");
    let auth = |service: &str, answer: harness::Answer<'_>| {
        harness::authenticate(&pamd, service, "ann", Some("192.0.2.10"), answer)
    };
    // The plain flow: the passcode prompt relayed from the helper, the answer relayed back.
    let d = dir.clone();
    let r = auth(
        "mfa-test",
        Box::new(move |p: &str| {
            assert!(p.starts_with("Passcode "), "{p}");
            mailed_code(&d).map(String::into_bytes)
        }),
    );
    assert_eq!(r.code, PAM_SUCCESS, "{r:?}");
    assert_eq!(r.prompts().len(), 1, "{r:?}");
    // A wrong code: denied.
    let r = auth("mfa-test", Box::new(|_: &str| Some(b"000000".to_vec())));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    // A host that ignores SIGCHLD (its children are reaped by the kernel): still works.
    // SAFETY: SIG_IGN installs no handler code; this process is single-threaded here.
    let old = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let d = dir.clone();
    let r = auth(
        "mfa-test",
        Box::new(move |_: &str| mailed_code(&d).map(String::into_bytes)),
    );
    assert_eq!(r.code, PAM_SUCCESS, "with SIGCHLD ignored: {r:?}");
    let r = auth("mfa-dies", Box::new(|p: &str| panic!("prompted: {p}")));
    assert_eq!(
        r.code, PAM_AUTH_ERR,
        "with SIGCHLD ignored, a dying helper: {r:?}"
    );
    // SAFETY: restores the disposition read above.
    unsafe { libc::signal(libc::SIGCHLD, old) };
    // No helper: the module reads the (readable) rules itself? No: unavailable, secure.
    let sent = messages(&dir);
    let r = auth("mfa-missing", Box::new(|p: &str| panic!("prompted: {p}")));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert!(r.said("second factor unavailable"), "{r:?}");
    // ... and with fail_mode=safe a bypass (PAM_IGNORE: pam_debug's denial shows).
    let r = auth(
        "mfa-missing-safe",
        Box::new(|p: &str| panic!("prompted: {p}")),
    );
    assert_eq!(r.code, PAM_PERM_DENIED, "{r:?}");
    // A helper that dies, echoes the ask back, or claims a success and fails: never in.
    for svc in ["mfa-dies", "mfa-echoes", "mfa-lies"] {
        let r = auth(svc, Box::new(|p: &str| panic!("prompted: {p}")));
        assert_eq!(r.code, PAM_AUTH_ERR, "{svc}: {r:?}");
        assert!(r.said("second factor unavailable"), "{svc}: {r:?}");
    }
    assert_eq!(messages(&dir), sent, "a failed helper sent something");
    // A descriptor of the host without close-on-exec (PostgreSQL's backend holds its
    // client's socket) never reaches the helper.
    // SAFETY: duplicates our standard input to a free number >= 77, without FD_CLOEXEC.
    let host_fd = unsafe { libc::fcntl(0, libc::F_DUPFD, 77) };
    assert!(host_fd >= 77, "{}", std::io::Error::last_os_error());
    let r = auth("mfa-fds", Box::new(|p: &str| panic!("prompted: {p}")));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    let listed = std::fs::read_to_string(dir.join("fds.txt")).unwrap();
    assert!(listed.lines().any(|l| l == "2"), "the listing: {listed:?}");
    assert!(
        !listed.lines().any(|l| l == host_fd.to_string()),
        "the host's fd {host_fd} reached the helper: {listed:?}"
    );
    // SAFETY: our own duplicate.
    unsafe { libc::close(host_fd) };
    // A host that does not ignore SIGPIPE (Rust test binaries do): a helper that hangs up
    // after its prompt costs a denial (a code was asked for), not the host process.
    // SAFETY: SIG_DFL installs no handler code.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let r = auth("mfa-hangs-up", Box::new(|_: &str| Some(b"123456".to_vec())));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert_eq!(r.prompts(), ["Code: "], "{r:?}");
    assert!(!r.said("second factor unavailable"), "{r:?}");
    // SAFETY: restores the disposition read above.
    unsafe { libc::signal(libc::SIGPIPE, old) };
    // The one-password pair through the helper: the double logon.
    let login = |field: &str| {
        let field = field.to_string();
        harness::authenticate(
            &pamd,
            "ftp-test",
            "ann",
            Some("127.0.0.1"),
            Box::new(move |_: &str| Some(field.clone().into_bytes())),
        )
    };
    let r = login("wrong-password");
    assert_ne!(r.code, PAM_SUCCESS, "{r:?}");
    assert_eq!(messages(&dir), sent, "a wrong password sent something");
    let r = login(PASSWORD);
    assert_eq!(
        r.code, PAM_AUTH_ERR,
        "the double logon's first login: {r:?}"
    );
    assert_eq!(messages(&dir), sent + 1);
    let code = mailed_code(&dir).unwrap();
    let r = login(&code);
    assert_eq!(
        r.code, PAM_SUCCESS,
        "the double logon's second login: {r:?}"
    );
    assert_eq!(r.prompts(), ["Password: "]);
    // PASSWORD,CODE with a wrong code: the split happened (the password module got the
    // password part: otherwise the password check fails first and nothing is counted).
    let failures = || mfa_core::state::failures(&dir.join("db/mfa.db"), "ann").count;
    let before = failures();
    let r = login(&format!("{PASSWORD},000000"));
    assert_eq!(r.code, PAM_AUTH_ERR, "{r:?}");
    assert_eq!(failures(), before + 1, "the wrong code counted once");
}
