//! The conversation of `mfa-admin verify`: every prompt and message on standard error, the
//! answers from standard input, in one of two modes.
//!
//! - [`Terminal`] (standard input is a terminal): a prompt stays on its line and the answer
//!   is typed after it; codes are read without echo. From the first prompt to the end of
//!   the conversation the terminal is in non-canonical mode without echo and signals
//!   (restored at the end, also on every error), so that nothing typed ahead of a code
//!   prompt is echoed and Ctrl-C, Ctrl-\ and Ctrl-Z end the conversation as a PAM conversation
//!   ends (an abandoned login, logged) and can never leave the terminal without echo;
//!   Backspace and the kill character edit the line; Ctrl-D on an empty line ends it too.
//! - [`Lines`] (anything else: a pipe, a file, /dev/null): the protocol for scripts. Each
//!   message is written to standard error followed by a newline (a menu spans several
//!   lines); a prompt is one line and ends in `": "`; each prompt takes the next line of
//!   standard input as its answer (up to a newline, which is not part of it; a `\r` before
//!   it is dropped; a last line without a newline counts). End of input before an answer
//!   fails the conversation: a denial.
//!
//! In both modes an answer is raw bytes, given to the flow as they are (a NUL or bytes that
//! are not UTF-8 make a wrong answer, never a shorter right one), cut at [`MAX_ANSWER`] + 1
//! bytes (longer than any code, so still wrong; the rest of the line is read and dropped),
//! and must come within the timeout of its prompt. Text shown has its control and invisible
//! characters escaped (`crate::output::visible`).

use std::io::Write;
use std::time::{Duration, Instant};

use mfa_core::auth::{ConvError, Conversation};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices as Cc, Termios};
use std::os::fd::AsFd;

use crate::output::visible;

/// The longest answer kept (Linux-PAM's PAM_MAX_RESP_SIZE); one byte more marks a longer
/// one.
pub const MAX_ANSWER: usize = 512;

/// Whether standard input is a terminal.
pub fn stdin_is_terminal() -> bool {
    nix::unistd::isatty(std::io::stdin()).unwrap_or(false)
}

/// The name of the terminal on standard input as login gives PAM_TTY (`pts/3`, `tty1`).
pub fn stdin_tty_name() -> Option<String> {
    let path = nix::unistd::ttyname(std::io::stdin()).ok()?;
    let text = path.to_str()?;
    Some(text.strip_prefix("/dev/").unwrap_or(text).to_string())
}

/// Writes text to standard error, each line escaped; `newline`: ends it with one.
fn write_err(text: &str, newline: bool) -> Result<(), ConvError> {
    let shown: Vec<String> = text.split('\n').map(visible).collect();
    let mut e = std::io::stderr().lock();
    let mut out = shown.join("\n");
    if newline {
        out.push('\n');
    }
    e.write_all(out.as_bytes())
        .and_then(|()| e.flush())
        .map_err(|_| ConvError)
}

/// Waits until standard input has something to read (or is at its end) before `deadline`.
fn wait_readable(deadline: Instant) -> Result<(), ConvError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConvError);
        }
        let stdin = std::io::stdin();
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) => return Err(ConvError),
            // Readable, hung up or in error: the read says which.
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(ConvError),
        }
    }
}

/// One read(2) of standard input; 0 at its end. Interrupted reads are retried.
fn read_stdin(buf: &mut [u8]) -> Result<usize, ConvError> {
    loop {
        match nix::unistd::read(std::io::stdin(), buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(_) => return Err(ConvError),
        }
    }
}

/// Answers typed on a terminal. From the first prompt until it is dropped, the terminal
/// reads without echo and without signals (verify echoes what should be seen itself), so
/// that nothing typed ahead of a prompt for a code is echoed either.
pub struct Terminal {
    timeout: Duration,
    restore: Option<Restore>,
}

impl Terminal {
    pub fn new(timeout: Duration) -> Self {
        Terminal {
            timeout,
            restore: None,
        }
    }

    /// Puts the terminal in the mode answers are read in (once); returns its saved settings.
    fn raw(&mut self) -> Result<&Termios, ConvError> {
        if self.restore.is_none() {
            let saved = termios::tcgetattr(std::io::stdin()).map_err(|_| ConvError)?;
            let mut raw = saved.clone();
            raw.local_flags.remove(
                LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN,
            );
            raw.control_chars[Cc::VMIN as usize] = 1;
            raw.control_chars[Cc::VTIME as usize] = 0;
            if let Ok(mut s) = SAVED.lock() {
                *s = Some(saved.clone());
            }
            let restore = Restore(saved);
            on_signal_restore();
            termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw).map_err(|_| ConvError)?;
            self.restore = Some(restore);
        }
        self.restore.as_ref().map(|r| &r.0).ok_or(ConvError)
    }
}

/// Puts the terminal's saved settings back when dropped.
struct Restore(Termios);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Ok(mut s) = SAVED.lock() {
            *s = None;
        }
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.0);
    }
}

/// The terminal's settings while verify holds it in its own mode, for [`on_signal_restore`].
static SAVED: std::sync::Mutex<Option<Termios>> = std::sync::Mutex::new(None);

/// A signal that ends the process (SIGTERM from a caller's timeout, SIGHUP, a SIGINT or
/// SIGQUIT sent by kill: the keyboard sends none in that mode) would leave the terminal
/// without echo: a thread waits for them, puts the settings back and exits with 128 + the
/// signal's number, as a shell reports a process killed by it (never 0).
fn on_signal_restore() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT, SIGQUIT])
    else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            if let Ok(s) = SAVED.lock()
                && let Some(t) = s.as_ref()
            {
                let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
                let _ = std::io::stderr().write_all(b"\n");
            }
            std::process::exit(128 + sig);
        }
    });
}

/// Reads one answer from the terminal on standard input (already in the mode
/// [`Terminal::raw`] sets; `saved`: its own settings, for the user's control characters),
/// echoing it only when `echo`.
fn read_terminal(saved: &Termios, echo: bool, timeout: Duration) -> Result<Vec<u8>, ConvError> {
    // The user's own control characters (0 disables one).
    let cc = |i: Cc| saved.control_chars[i as usize];
    let is = |b: u8, c: u8| c != 0 && b == c;
    let (intr, quit, susp, eof, erase, kill) = (
        cc(Cc::VINTR),
        cc(Cc::VQUIT),
        cc(Cc::VSUSP),
        cc(Cc::VEOF),
        cc(Cc::VERASE),
        cc(Cc::VKILL),
    );
    let deadline = Instant::now() + timeout;
    let mut line = Vec::new();
    let shown = |s: &str| write_err(s, false);
    loop {
        if wait_readable(deadline).is_err() {
            let _ = shown("\n");
            return Err(ConvError);
        }
        let mut b = [0u8; 1];
        if read_stdin(&mut b)? == 0 {
            let _ = shown("\n");
            return Err(ConvError);
        }
        let b = b[0];
        if b == b'\r' || b == b'\n' {
            shown("\n")?;
            return Ok(line);
        } else if is(b, intr) || is(b, quit) || is(b, susp) {
            let _ = shown("^C\n");
            return Err(ConvError);
        } else if is(b, eof) {
            if line.is_empty() {
                let _ = shown("\n");
                return Err(ConvError);
            }
        } else if is(b, erase) || b == 0x7f || b == 0x08 {
            // One character: its UTF-8 continuation bytes and its first byte.
            while line.last().is_some_and(|c| c & 0xc0 == 0x80) {
                line.pop();
            }
            if line.pop().is_some() && echo {
                shown("\u{8} \u{8}")?;
            }
        } else if is(b, kill) {
            if echo {
                let chars = String::from_utf8_lossy(&line).chars().count();
                shown(&"\u{8} \u{8}".repeat(chars))?;
            }
            line.clear();
        } else if b < 0x20 {
            // Other control characters do nothing.
        } else if line.len() <= MAX_ANSWER {
            line.push(b);
            if echo {
                let mut e = std::io::stderr().lock();
                e.write_all(&[b])
                    .and_then(|()| e.flush())
                    .map_err(|_| ConvError)?;
            }
        }
    }
}

impl Conversation for Terminal {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        let timeout = self.timeout;
        let saved = self.raw()?.clone();
        write_err(text, false)?;
        read_terminal(&saved, echo, timeout)
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        write_err(text, true)
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        write_err(text, true)
    }
}

/// Answers read line by line from standard input (the scripts' protocol).
pub struct Lines {
    timeout: Duration,
    buf: Vec<u8>,
    pos: usize,
    ended: bool,
}

impl Lines {
    pub fn new(timeout: Duration) -> Self {
        Lines {
            timeout,
            buf: vec![0; 4096],
            pos: 4096,
            ended: false,
        }
    }

    /// The next line of standard input, without its newline (and a `\r` before it).
    fn read_line(&mut self) -> Result<Vec<u8>, ConvError> {
        let deadline = Instant::now() + self.timeout;
        let mut line = Vec::new();
        let mut any = false;
        loop {
            if self.pos < self.buf.len() {
                let rest = &self.buf[self.pos..];
                let (part, newline) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], true),
                    None => (rest, false),
                };
                any = true;
                let room = (MAX_ANSWER + 1).saturating_sub(line.len());
                line.extend_from_slice(&part[..part.len().min(room)]);
                self.pos += part.len() + usize::from(newline);
                if newline {
                    return Ok(finish(line));
                }
                continue;
            }
            if self.ended {
                return if any {
                    Ok(finish(line))
                } else {
                    Err(ConvError)
                };
            }
            wait_readable(deadline)?;
            let mut chunk = std::mem::take(&mut self.buf);
            chunk.resize(4096, 0);
            let n = read_stdin(&mut chunk)?;
            chunk.truncate(n);
            self.buf = chunk;
            self.pos = 0;
            if n == 0 {
                self.ended = true;
            }
        }
    }
}

/// An answer without the `\r` a CRLF line ends with.
fn finish(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') && line.len() <= MAX_ANSWER {
        line.pop();
    }
    line
}

impl Conversation for Lines {
    fn prompt(&mut self, text: &str, _echo: bool) -> Result<Vec<u8>, ConvError> {
        write_err(text, true)?;
        self.read_line()
    }
    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        write_err(text, true)
    }
    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        write_err(text, true)
    }
}
