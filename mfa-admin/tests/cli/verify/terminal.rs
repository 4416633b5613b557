//! `verify` on a real pseudo-terminal: a choice echoed, a code not (nor typed ahead of its
//! prompt), Backspace, Ctrl-C and SIGTERM a denial with the terminal's modes restored, and
//! self-enrollment only for the user who ran sudo.

use std::io::Write;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// verify with its standard input and error on a new pseudo-terminal (standard output a
/// pipe); returns the child and everything the terminal shows.
fn on_pty(
    env: &Env,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (Child, std::fs::File, Arc<Mutex<Vec<u8>>>) {
    let pty = nix::pty::openpty(None, None).unwrap();
    // A new terminal starts canonical, with echo and signals: what verify must leave.
    let modes = nix::sys::termios::tcgetattr(&pty.master)
        .unwrap()
        .local_flags;
    use nix::sys::termios::LocalFlags;
    assert!(modes.contains(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG));
    let mut cmd = command(env, args, envs);
    cmd.stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    let child = cmd.spawn().unwrap();
    // Only the child holds the terminal now: its end ends the reads of the master.
    drop(cmd);
    drop(pty.slave);
    let master = std::fs::File::from(pty.master);
    let shown = drain(master.try_clone().unwrap());
    (child, master, shown)
}

fn wait_shown(shown: &Arc<Mutex<Vec<u8>>>, needle: &str) -> String {
    let start = Instant::now();
    loop {
        let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
        if text.contains(needle) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the terminal never showed {needle:?}: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_terminal_echoes_choices_hides_codes_and_ctrl_c_denies() {
    let env = setup("any");
    let key = enrol_totp(&env);
    let (child, mut master, shown) = on_pty(&env, &["verify", "alice"], &[]);
    let flags = |m: &std::fs::File| nix::sys::termios::tcgetattr(m).unwrap().local_flags;
    let before = nix::sys::termios::LocalFlags::ECHO
        | nix::sys::termios::LocalFlags::ICANON
        | nix::sys::termios::LocalFlags::ISIG
        | nix::sys::termios::LocalFlags::IEXTEN;
    wait_shown(&shown, "Choice [1-");
    // A choice is echoed (by verify: the terminal's own echo is off while it reads).
    master.write_all(b"1\r").unwrap();
    let text = wait_shown(&shown, "Authenticator code");
    assert!(text.contains("Choice [1-2]: 1\r\n"), "{text:?}");
    let code = key.code_at(now()).unwrap();
    master.write_all(format!("{code}\r").as_bytes()).unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "proven: totp\n");
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(!text.contains(&code), "the code was echoed: {text:?}");
    // The log row names the terminal verify ran on.
    let tty = log_rows(&env).last().unwrap()["tty"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(tty.starts_with("pts/"), "{tty}");
    assert!(
        flags(&master).contains(before),
        "the terminal's modes are restored"
    );

    // Ctrl-C at the code prompt ends the conversation at once: a denial, modes restored.
    let (child, mut master, shown) = on_pty(&env, &["verify", "alice"], &[]);
    wait_shown(&shown, "Choice [1-");
    master.write_all(b"1\r").unwrap();
    wait_shown(&shown, "Authenticator code");
    master.write_all(b"12\x03").unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("conversation aborted"), "{o:?}");
    assert!(
        flags(&master).contains(before),
        "the terminal's modes are restored"
    );
    assert_eq!(failures(&env), 0, "an interrupted login is no wrong code");

    // Killed by a caller's timeout (SIGTERM) while it waits for a code: never 0, and the
    // terminal gets its echo back.
    let (child, master, shown) = on_pty(&env, &["verify", "alice"], &[]);
    wait_shown(&shown, "Choice [1-");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 128 + 15, "{o:?}");
    assert!(
        flags(&master).contains(before),
        "the terminal's modes are restored"
    );

    // A code typed ahead of its prompt (with the choice, in one go) is not echoed either:
    // the terminal stays without echo for the whole conversation.
    let (child, mut master, shown) = on_pty(&env, &["verify", "alice"], &[]);
    wait_shown(&shown, "Choice [1-");
    let code = key.code_at(now() + 30).unwrap();
    master.write_all(format!("1\r{code}\r").as_bytes()).unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o:?}");
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(!text.contains(&code), "the code was echoed: {text:?}");

    // Backspace edits a hidden answer: a typo erased still proves the factor.
    env.ok(&["service", "set", "mfa-verify", "totp"]);
    // Steps now and now+1 are used: the next one is two steps ahead.
    env.ok(&["settings", "set", "totp_skew=2"]);
    let (child, mut master, shown) = on_pty(&env, &["verify", "alice"], &[]);
    wait_shown(&shown, "Authenticator code");
    let code = key.code_at(now() + 60).unwrap();
    master
        .write_all(format!("9\x7f{code}\r").as_bytes())
        .unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn a_terminal_enrols_only_for_the_user_who_ran_sudo() {
    let env = setup("totp");
    env.ok(&["settings", "set", "unassigned=enroll"]);
    env.ok(&["settings", "set", "totp_self_enroll=yes"]);
    // Another account's terminal (an application running `sudo mfa-admin verify newbie`).
    let (child, _master, shown) = on_pty(&env, &["verify", "newbie"], &[("SUDO_USER", "www-data")]);
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("self-enrollment refused"), "{o:?}");
    let text = String::from_utf8_lossy(&shown.lock().unwrap()).into_owned();
    assert!(text.contains("enrol on a terminal"), "{text:?}");
    // newbie's own sudo: the key is shown and a code from it enrols it.
    let (child, mut master, shown) =
        on_pty(&env, &["verify", "newbie"], &[("SUDO_USER", "newbie")]);
    let text = wait_shown(&shown, "Code from the app");
    let b32 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Key: "))
        .unwrap()
        .trim()
        .to_string();
    let key = mfa_core::totp::Key {
        secret: base32(&b32),
        algorithm: "sha1".into(),
        digits: 6,
    };
    let code = key.code_at(now()).unwrap();
    master.write_all(format!("{code}\r").as_bytes()).unwrap();
    let o = wait(child, Duration::from_secs(30));
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.stdout, "proven: totp-enroll\n");
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let stored: Vec<u8> = conn
        .query_row("SELECT secret FROM totp WHERE user = 'newbie'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, key.secret);
}

/// RFC 4648 base 32 without padding, as authenticator apps read the key.
fn base32(text: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base 32: {text:?}"),
        };
        bits = (bits << 5) | u64::from(v);
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
