//! Delegation to the setuid helper `mfa-check` when the module runs without root (PostgreSQL
//! calls PAM as `postgres`): the module then reads no configuration and no store itself. It
//! runs the helper (`helper=PATH`, else the first of [`HELPER_PATHS`] that exists) with a
//! cleared environment (only `MFA_CONFIG` = the `config=` argument, which a setuid helper
//! ignores), a socket pair as its stdin and stdout and stderr on /dev/null, and no other
//! descriptor of the host (a server's client socket must not reach a root process, and the
//! host's descriptors need not be close-on-exec), sends one ask
//! (`mfa_core::helper`), relays the conversation, and reads the reply before it waits for
//! the child (a host that set SIGCHLD to SIG_IGN reaps it itself: the reply decides).
//!
//! Every failure (no helper, a helper that dies, refuses, times out or answers garbage) is
//! an error the caller turns into "second factor unavailable" under the fail mode, never a
//! success; after a code was asked for (or given in the one field) it is a denial.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::auth::{Conversation, Outcome};
use mfa_core::helper::{
    self, Ask, BeforeReply, DEADLINE, Frame, HELPER_PATHS, MAX_EXCHANGES, Message, Timed,
};
use mfa_core::secret::Secret;

use crate::args::Args;

/// How much longer than the helper's own deadline the module waits for its reply.
const GRACE: Duration = Duration::from_secs(30);

/// Whether this process lacks the privilege to read the rules (effective uid not root).
pub fn needed() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() != 0 }
}

/// The final reply of a run.
pub enum Reply {
    Outcome(Outcome),
    Before(BeforeReply),
}

/// Why a run gave no usable reply, and whether a prompt had been relayed by then.
pub struct Failed {
    pub reason: String,
    pub prompted: bool,
}

fn path(args: &Args) -> Result<PathBuf, String> {
    if let Some(p) = &args.helper {
        return Ok(p.clone());
    }
    HELPER_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            format!(
                "not running as root and no mfa-check helper: none of {} exists (install \
                 libpam-mfa, or give the module helper=PATH)",
                HELPER_PATHS.join(", ")
            )
        })
}

/// Writes all of `bytes` without SIGPIPE (a helper that died is an error, not a signal to
/// the host process).
fn send_all(sock: &UnixStream, bytes: &[u8]) -> Result<(), String> {
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // SAFETY: a valid buffer of `rest.len()` bytes and our own open socket.
        let n = unsafe {
            libc::send(
                sock.as_raw_fd(),
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(format!("writing to mfa-check: {e}"));
        }
        at += usize::try_from(n).unwrap_or(0).max(1);
    }
    Ok(())
}

fn send(sock: &UnixStream, frame: &Frame) -> Result<(), String> {
    // The encoded ask holds the one field (a password) and answers hold codes: zeroed once sent.
    let bytes = Secret(
        frame
            .encode()
            .map_err(|e| format!("cannot encode for mfa-check: {e}"))?,
    );
    send_all(sock, &bytes.0)
}

/// Marks every descriptor above 2 close-on-exec, in the child between fork and exec: the host's
/// (PostgreSQL's backend holds its client's socket) then never reach the helper. Marked, not
/// closed: the standard library's own close-on-exec pipe that reports a failed exec stays
/// usable until the exec. Without close_range (Linux < 5.11) every number below the
/// descriptor limit is marked one by one.
fn cloexec_above_stderr() {
    // SAFETY: raw system calls on integers; in the child, after fork, single-threaded.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
        {
            return;
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let top = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20)
        } else {
            1024
        };
        for fd in 3..i32::try_from(top).unwrap_or(1024) {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
}

/// Runs the helper for `ask`, relaying its conversation to `conv`.
pub fn run(args: &Args, ask: Ask, conv: &mut dyn Conversation) -> Result<Reply, Failed> {
    let mut prompted = false;
    let fail = |reason: String, prompted: bool| Failed { reason, prompted };
    let program = path(args).map_err(|r| fail(r, false))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| fail(format!("socketpair: {e}"), false))?;
    let mut child = {
        let theirs_out = theirs
            .try_clone()
            .map_err(|e| fail(format!("socketpair: {e}"), false))?;
        let mut cmd = Command::new(&program);
        cmd.env_clear()
            .env(mfa_core::config::CONFIG_ENV, &args.config)
            .current_dir("/")
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::from(OwnedFd::from(theirs_out)))
            .stderr(Stdio::null());
        // SAFETY: runs in the forked child before exec and only makes raw system calls
        // (async-signal-safe, no allocation).
        unsafe {
            cmd.pre_exec(|| {
                cloexec_above_stderr();
                Ok(())
            })
        };
        // The command (holding the child's ends) is dropped at the end of this block: a
        // helper that dies is then the end of our input.
        cmd.spawn()
            .map_err(|e| fail(format!("cannot run {}: {e}", program.display()), false))?
    };
    let result = talk(&ours, ask, conv, &mut prompted);
    // Closing our end ends a helper still waiting for us; then collect it. With SIGCHLD
    // ignored (or a host that reaps its children) wait fails with ECHILD: the reply decides.
    drop(ours);
    let status = child.wait().ok();
    let reply = result.map_err(|r| fail(r, prompted))?;
    match status {
        Some(s) if !s.success() => Err(fail(
            format!("mfa-check replied, then exited with {s}"),
            prompted,
        )),
        _ => Ok(reply),
    }
}

/// Sends the ask and relays frames until the final reply.
fn talk(
    sock: &UnixStream,
    ask: Ask,
    conv: &mut dyn Conversation,
    prompted: &mut bool,
) -> Result<Reply, String> {
    send(sock, &Frame::Ask(ask))?;
    let mut input = Timed {
        fd: sock,
        deadline: Instant::now() + DEADLINE + GRACE,
    };
    for _ in 0..=MAX_EXCHANGES {
        let frame = helper::read_frame(&mut input).map_err(|e| match e {
            helper::ProtoError::Closed => "mfa-check ended without a reply".to_string(),
            e => format!("mfa-check: {e}"),
        })?;
        let answer = match frame {
            Frame::Prompt { text, echo } => {
                *prompted = true;
                match conv.prompt(&text, echo) {
                    Ok(a) if a.len() <= helper::MAX_SECRET => Frame::Answer(helper::Secret(a)),
                    // An answer longer than any PAM answer: the conversation failed.
                    _ => Frame::ConvFailed,
                }
            }
            Frame::Message { kind, text } => {
                let shown = match kind {
                    Message::Info => conv.info(&text),
                    Message::Show => conv.show(&text),
                    Message::Error => conv.error(&text),
                };
                if shown.is_ok() {
                    Frame::Shown
                } else {
                    Frame::ConvFailed
                }
            }
            Frame::Outcome(o) => return Ok(Reply::Outcome(o)),
            Frame::Before(b) => return Ok(Reply::Before(b)),
            Frame::Refused(why) => return Err(format!("mfa-check refused: {why}")),
            Frame::Ask(_) | Frame::Answer(_) | Frame::Shown | Frame::ConvFailed => {
                return Err("mfa-check sent a frame only the module sends".into());
            }
        };
        send(sock, &answer)?;
    }
    Err(format!(
        "mfa-check sent more than {MAX_EXCHANGES} conversation frames"
    ))
}
