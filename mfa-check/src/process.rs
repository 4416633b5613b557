//! The process setup of a setuid program: who called, a clean environment, full root when
//! privilege was gained (so the caller can no longer signal it), resource limits the caller
//! cannot use to cut a write short, SIGPIPE ignored; and syslog lines at LOG_AUTHPRIV.
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
/// and the signals a terminal could send are ignored; every signal is unblocked otherwise
/// as the caller left it.
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
