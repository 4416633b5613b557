//! What a caller can no longer do to a running helper with what it hands down across exec:
//! an interval timer (SIGALRM at an instant of its choosing), a descriptor of its own (the
//! read end of the helper's stdout, kept open and never read: a write blocked for ever), a
//! terminal it holds the master of (^\ or ^Z typed into it reach the terminal's foreground
//! process group without any permission), and a slowed scheduling (nice, SCHED_BATCH, one
//! CPU). The helper blocks the signals, clears the timers, closes the descriptors, starts a
//! session of its own and resets its scheduling.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use mfa_core::auth::Outcome;
use mfa_core::helper::{Frame, Mode};

use super::setuid::{in_namespace, namespace_script, setuid_copy};
use super::*;

/// The fields of /proc/PID/stat after the command name (index 0 is the state, field 3).
fn stat(pid: u32) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    s.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// An ITIMER_REAL set before exec survives exec: unhandled, its SIGALRM would end the
/// helper (as root, when setuid: a login cut at an instant the caller chose). The helper
/// clears it: it is still there, and answers, well after the timer would have fired.
#[test]
fn an_inherited_interval_timer_does_not_end_the_helper() {
    let i = Install::new();
    let mut cmd = Command::new(HELPER);
    cmd.env("MFA_CONFIG", i.config());
    // SAFETY: setitimer is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let mut t: libc::itimerval = std::mem::zeroed();
            t.it_value.tv_usec = 300_000;
            libc::setitimer(libc::ITIMER_REAL, &t, std::ptr::null_mut());
            Ok(())
        });
    }
    let r = drive(
        spawn(&mut cmd),
        &ask(Mode::Plain, "ann", "192.0.2.7", None).encode().unwrap(),
        |_| {
            std::thread::sleep(Duration::from_millis(1200));
            Some(i.mailed_code().into_bytes())
        },
    );
    assert!(
        matches!(r.last, Ok(Frame::Outcome(Outcome::Success { .. }))),
        "{r:?}"
    );
    assert_eq!(r.exit, Some(0), "{r:?}");
}

/// Every descriptor the caller leaves open above 2 is closed first: here the read end of
/// the helper's own stdout pipe as fd 5 (a caller that never reads it would block the
/// helper's write for ever, the pipe never losing its last reader). While the helper waits
/// at its prompt, no descriptor of it but stdout refers to that pipe.
#[test]
fn inherited_descriptors_are_closed() {
    let i = Install::new();
    let mut fds = [0; 2];
    // SAFETY: a valid array of two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both just opened, owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let leak = r.as_raw_fd();
    let mut cmd = Command::new(HELPER);
    cmd.env("MFA_CONFIG", i.config())
        .stdin(Stdio::piped())
        .stdout(Stdio::from(w))
        .stderr(Stdio::null());
    // SAFETY: dup2 is async-signal-safe (and clears close-on-exec on fd 5).
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(leak, 5);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = std::fs::File::from(r);
    ask_until_prompt(&mut stdin, &mut stdout, "192.0.2.6");
    let pipe = std::fs::read_link(format!("/proc/{pid}/fd/1")).unwrap();
    let mut same: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            (std::fs::read_link(e.path()).ok()? == pipe)
                .then(|| e.file_name().into_string().ok())?
        })
        .collect();
    same.sort();
    assert_eq!(
        same,
        ["1"],
        "descriptors of the helper on its stdout pipe ({pipe:?})"
    );
    answer_succeeds(&i, &mut stdin, &mut stdout);
    drop(stdin);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A pseudo-terminal: (master, slave), both close-on-exec (the child below makes the slave
/// its controlling terminal before exec; nothing else of the test inherits them).
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut m, mut s) = (0, 0);
    // SAFETY: valid out-pointers; no name, termios or window size asked for.
    let rc = unsafe {
        libc::openpty(
            &mut m,
            &mut s,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    for fd in [m, s] {
        // SAFETY: our own descriptors.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: just opened, owned here alone.
    unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
}

/// The setuid path, run from a terminal the caller holds: in a private mount namespace
/// (an overlay /etc whose mfa.toml lists nobody; the machine's /etc/mfa is never touched), a
/// session led by a shell whose controlling terminal is a pty the test holds the master of,
/// with nice 10, SCHED_BATCH and one CPU; the shell runs the setuid copy as nobody in its
/// (foreground) process group. While the helper, root by then, waits at its prompt, the test
/// types ^\ (SIGQUIT) and ^Z (SIGTSTP) into the master: without a session of its own the
/// helper dies of the first. It must keep running and answer, lead a session of its own with
/// no terminal, and run with normal scheduling on every CPU.
#[test]
fn a_terminal_the_caller_holds_cannot_stop_or_end_the_setuid_helper() {
    let Some((dir, copy)) = setuid_copy() else {
        return;
    };
    let i = Install::new();
    // Not `exec`: the helper must be the shell's child, in its foreground process group.
    let script = namespace_script(dir.path(), &i, &copy, false);
    let (master, slave) = pty();
    let slave_fd = slave.as_raw_fd();
    let mut cmd = in_namespace(&script);
    // SAFETY: only raw, async-signal-safe system calls on integers and stack values.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(slave_fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            let p = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_BATCH, &p);
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one);
            Ok(())
        });
    }
    let mut shell = spawn(&mut cmd);
    drop(cmd);
    drop(slave);
    let mut stdin = shell.stdin.take().unwrap();
    let mut stdout = shell.stdout.take().unwrap();
    ask_until_prompt(&mut stdin, &mut stdout, "192.0.2.5");
    let sh = shell.id();
    let children = std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap();
    let pid: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    // The terminal's signals, no permission needed: quit, then suspend.
    for key in [0x1c_u8, 0x1a] {
        // SAFETY: one byte from a valid buffer to our own open descriptor.
        let n = unsafe { libc::write(master.as_raw_fd(), (&raw const key).cast(), 1) };
        assert_eq!(n, 1);
        std::thread::sleep(Duration::from_millis(300));
        let st = stat(pid);
        assert!(
            matches!(st.first().map(String::as_str), Some("S" | "R")),
            "after {key:#x}: the helper is {st:?}"
        );
    }
    let st = stat(pid);
    assert_eq!(st[3], pid.to_string(), "its session id: {st:?}");
    assert_eq!(st[4], "0", "a controlling terminal: {st:?}");
    assert_eq!(st[16], "0", "its nice value: {st:?}");
    assert_eq!(
        st[38], "0",
        "its scheduling policy (0: SCHED_OTHER): {st:?}"
    );
    let cpus = |p: &str| {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(cpus(&pid.to_string()), cpus("self"), "its CPUs");
    answer_succeeds(&i, &mut stdin, &mut stdout);
    drop(stdin);
    let _ = shell.wait();
    assert_eq!(i.outcomes(), ["success:"]);
}
