//! The process setup of a setuid program: who called, no inherited descriptor above 2, a
//! clean environment, full root when privilege was gained (so the caller can no longer
//! signal it), every blockable signal blocked and the caller's interval timers gone, a
//! session of its own (no terminal to stop or kill it from), the scheduling a caller could
//! have slowed it with reset, an overall deadline of its own ([`arm_deadline`]), resource
//! limits the caller cannot use to cut a write short, SIGPIPE ignored; and syslog lines at
//! LOG_AUTHPRIV.
#![allow(unsafe_code)]

use std::ffi::{CString, OsString};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Uid, getegid, geteuid, getgid, getuid, setgroups, setresgid, setresuid};

/// Who ran us, recorded before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

/// How this run is privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Set-user-ID root, run by another user: the fixed configuration only.
    Gained,
    /// Not setuid, or run by root: as the caller, `MFA_CONFIG` honoured (tests).
    Same,
    /// Setuid to an account other than root: a broken installation.
    Misinstalled,
}

impl Caller {
    pub fn now() -> Caller {
        Caller {
            uid: getuid().as_raw(),
            gid: getgid().as_raw(),
            euid: geteuid().as_raw(),
            egid: getegid().as_raw(),
        }
    }

    pub fn privilege(&self) -> Privilege {
        match (self.uid == self.euid, self.euid) {
            (true, _) => Privilege::Same,
            (false, 0) => Privilege::Gained,
            (false, _) => Privilege::Misinstalled,
        }
    }
}

/// Takes the whole environment away (returns `MFA_CONFIG`'s value first): nothing the caller
/// set (TMPDIR for SQLite's temporary files, TZ, locale paths) reaches a root process.
pub fn clear_environment() -> Option<OsString> {
    let config = std::env::var_os(mfa_core::config::CONFIG_ENV);
    // SAFETY: called first thing in main, before any thread exists and before anything
    // holds a pointer into the environment.
    unsafe { libc::clearenv() };
    config
}

/// Becomes root in every uid and gid (real, effective, saved) with no supplementary groups:
/// the caller can no longer signal or ptrace us, and files we create are root's.
/// When a caller other than root runs an installed set-user-ID-root mfa-check but gained no
/// privilege, why (the kernel ignored the bit): a sentence naming the cause and the fix. None
/// when the file is not set-user-ID root (a test's copy) or privilege was gained.
pub fn setuid_ignored(caller: &Caller) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if caller.uid == 0 || caller.uid != caller.euid {
        return None;
    }
    let m = std::fs::metadata("/proc/self/exe").ok()?;
    if m.uid() != 0 || m.mode() & 0o4000 == 0 {
        return None;
    }
    // SAFETY: prctl with PR_GET_NO_NEW_PRIVS reads a flag of this process.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) } == 1;
    let cause = if nnp {
        "the calling server runs with no_new_privs (NoNewPrivileges=yes, or a sandboxing \
         option that implies it, in its systemd unit): allow privileges for that unit"
    } else {
        "its file system is mounted nosuid: install it on one that is not"
    };
    Some(format!(
        "mfa-check is set-user-ID root but runs as uid {}: the kernel ignored the bit because {cause}",
        caller.uid
    ))
}

pub fn become_root() -> Result<(), String> {
    let root = Gid::from_raw(0);
    setresgid(root, root, root).map_err(|e| format!("setresgid(0, 0, 0): {e}"))?;
    setgroups(&[]).map_err(|e| format!("setgroups([]): {e}"))?;
    let root = Uid::from_raw(0);
    setresuid(root, root, root).map_err(|e| format!("setresuid(0, 0, 0): {e}"))?;
    if getuid().as_raw() != 0 || geteuid().as_raw() != 0 || getgid().as_raw() != 0 {
        return Err("still not root after setresuid".into());
    }
    Ok(())
}

/// The limits a caller could lower to make a write stop half-way (file size, CPU time,
/// memory, descriptors) back to what we need; no core file (it could hold a secret). Root
/// raises the hard limits too; where it cannot (no CAP_SYS_RESOURCE, or not root), the
/// soft limit goes up to the hard one, and a limit still too low is an error naming it: the
/// helper then does nothing rather than work under the caller's limits.
pub fn reset_limits() -> Result<(), String> {
    const INF: libc::rlim_t = libc::RLIM_INFINITY;
    // (limit, wanted, least acceptable)
    let wanted = [
        (Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE", INF, INF),
        (Resource::RLIMIT_CPU, "RLIMIT_CPU", INF, INF),
        (Resource::RLIMIT_AS, "RLIMIT_AS", INF, INF),
        (Resource::RLIMIT_DATA, "RLIMIT_DATA", INF, INF),
        (
            Resource::RLIMIT_STACK,
            "RLIMIT_STACK",
            8 * 1024 * 1024,
            1024 * 1024,
        ),
        (Resource::RLIMIT_NOFILE, "RLIMIT_NOFILE", 1024, 64),
    ];
    let mut low = Vec::new();
    for (res, name, want, least) in wanted {
        if setrlimit(res, want, want).is_err()
            && let Ok((_, hard)) = getrlimit(res)
        {
            let _ = setrlimit(res, want.min(hard), hard);
        }
        match getrlimit(res) {
            Ok((soft, _)) if soft >= least => {}
            Ok((soft, _)) => low.push(format!("{name} is {soft}")),
            Err(e) => low.push(format!("{name}: {e}")),
        }
    }
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // Files we create get the modes mfa-core asks for, whatever umask the caller had
    // (a root process's files are never group- or world-writable).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if low.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "resource limits too low and not raisable: {}",
            low.join(", ")
        ))
    }
}

/// SIGPIPE (a caller that closed the channel: a failed write instead of death), SIGXFSZ,
/// and the signals a terminal could send are ignored (and then blocked with every other:
/// [`arm_deadline`]).
pub fn ignore_signals() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for s in [
        Signal::SIGPIPE,
        Signal::SIGXFSZ,
        Signal::SIGHUP,
        Signal::SIGINT,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(s, SigHandler::SigIgn) };
    }
}

/// How long past `helper::DEADLINE` the helper may live at most: its reads end at the
/// deadline; this bounds everything else (a write to a channel nobody reads, a slow store).
/// Below the module's own grace, so the module outlives it.
pub const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// Closes every descriptor above 2 the caller left open (a pipe's read end kept open behind
/// our stdout would let a write block for ever; a server's client socket must not reach
/// root). Called first thing in main, before anything of ours is open.
pub fn close_inherited_fds() {
    // SAFETY: close_range takes plain integers; nothing of ours is open above 2 yet.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // An older kernel: what /proc lists (collected first: the listing has a descriptor too).
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    for fd in fds.into_iter().filter(|&fd| fd > 2) {
        // SAFETY: closing a descriptor number nothing of ours uses (EBADF for the listing's).
        unsafe { libc::close(fd) };
    }
}

/// Takes the caller's hold on our timing away, first thing (costs nothing and is harmless
/// unprivileged): blocks every blockable signal but SIGALRM (SIGKILL and SIGSTOP cannot be
/// blocked, and after `become_root` the caller can no longer send them; SIGPIPE stays
/// ignored), clears the three interval timers the caller may have set before exec (an
/// inherited ITIMER_REAL would kill us with SIGALRM at a moment of its choosing), and arms
/// our own deadline: `alarm` with SIGALRM's default action, so nothing (a write nobody
/// reads, a stopped process, a slow lock) holds the helper longer than `deadline`.
pub fn arm_deadline(deadline: std::time::Duration) {
    // SAFETY: plain libc calls on stack values; single-threaded at this point.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, libc::SIGALRM);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // Not ignored, even if the caller ignored it before exec.
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
        let zero: libc::itimerval = std::mem::zeroed();
        for which in [libc::ITIMER_REAL, libc::ITIMER_VIRTUAL, libc::ITIMER_PROF] {
            libc::setitimer(which, &zero, std::ptr::null_mut());
        }
        libc::alarm(u32::try_from(deadline.as_secs()).unwrap_or(u32::MAX).max(1));
    }
}

/// A session of our own (no controlling terminal: ^Z or ^\\ typed into a terminal the caller
/// holds, and SIGCONT from the caller's session, no longer reach us), and the scheduling the
/// caller could have lowered before exec back to normal: SCHED_OTHER priority 0, nice 0,
/// every CPU, the default I/O priority. Every failure is named; the privileged path refuses
/// on any (setsid fails only for a process group leader, which a caller would have made it).
pub fn detach() -> Result<(), String> {
    let mut failed = Vec::new();
    let err = || std::io::Error::last_os_error();
    // SAFETY: plain libc calls on stack values.
    unsafe {
        if libc::setsid() < 0 {
            failed.push(format!("setsid: {} (run as a process group leader)", err()));
        }
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) < 0 {
            failed.push(format!("sched_setscheduler(SCHED_OTHER): {}", err()));
        }
        if libc::setpriority(libc::PRIO_PROCESS, 0, 0) < 0 {
            failed.push(format!("setpriority(0): {}", err()));
        }
        let mut all: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut all);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &all) < 0 {
            failed.push(format!("sched_setaffinity(all): {}", err()));
        }
        // IOPRIO_WHO_PROCESS = 1; class NONE, level 0: the priority follows the nice value.
        if libc::syscall(libc::SYS_ioprio_set, 1, 0, 0) < 0 {
            failed.push(format!("ioprio_set(none): {}", err()));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cannot detach from the caller: {}",
            failed.join(", ")
        ))
    }
}

/// The name of a uid (from the name service), if it has one.
pub fn account_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// One syslog line at LOG_AUTHPRIV, tagged `mfa-check[PID]`.
pub fn syslog(priority: libc::c_int, text: &str) {
    static OPEN: std::sync::Once = std::sync::Once::new();
    OPEN.call_once(|| {
        // SAFETY: a static NUL-terminated identity that lives as long as the process.
        unsafe { libc::openlog(c"mfa-check".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV) };
    });
    let Ok(c) = CString::new(text.replace('\0', "")) else {
        return;
    };
    // SAFETY: valid NUL-terminated strings; the format consumes exactly one string.
    unsafe { libc::syslog(libc::LOG_AUTHPRIV | priority, c"%s".as_ptr(), c.as_ptr()) };
}
