//! The framed protocol between `pam_mfa` and its setuid helper `mfa-check`, used when PAM
//! runs in an unprivileged server (PostgreSQL calls PAM as `postgres`): the module sends one
//! [`Ask`], relays the conversation frames the helper sends, and reads the one final reply
//! (an [`Outcome`], a [`BeforeReply`] or a refusal). Never a secret comes back.
//!
//! A frame is a tag byte, a payload length (u32, big-endian) and the payload:
//!
//! ```text
//! module -> helper   R Ask          version u8, mode u8 (0 plain, 1 before, 2 after),
//!                                   fail_mode u8 (0 secure, 1 safe), separator u8,
//!                                   service, user, rhost, tty (str16 each),
//!                                   secret: u8 0 (none) | 1 then bytes16
//!                                   (before: the one field; after: the kept code, if any)
//!                    A Answer       the answer's bytes (to a prompt)
//!                    K Shown        empty (a message was shown)
//!                    X ConvFailed   empty (the conversation failed: Ctrl-C, hang-up)
//! helper -> module   P / p Prompt   text, echo off / on           -> A or X
//!                    I / S / E      info / show / error text       -> K or X
//!                    O Outcome      kind u8 (0 success, 1 ignore, 2 deny, 3 unavailable
//!                                   secure, 4 unavailable safe), reason, method,
//!                                   destination (str16 each)       final
//!                    B Before       0 ignore | 1 split u32 (the separator's byte index
//!                                   in the field) | 2 success + an outcome as in O   final
//!                    F Refused      reason (str16)                 final
//! ```
//!
//! `str16` / `bytes16`: a u16 big-endian length and that many bytes (text: UTF-8 without
//! NUL). Every size is bounded ([`MAX_FRAME`], [`MAX_TEXT`], [`MAX_NAME`], [`MAX_SECRET`]);
//! an oversized, truncated, unknown or malformed frame is an error naming what was wrong,
//! never a panic, and is read without allocating more than [`MAX_FRAME`] bytes.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::auth::{Before, Outcome};
use crate::settings::FailMode;

/// The protocol's version, the first byte of an [`Ask`]: a helper refuses any other.
pub const VERSION: u8 = 1;
/// The largest payload of one frame.
pub const MAX_FRAME: usize = 16 * 1024;
/// The longest text of a frame (a prompt, a message, a reason); longer texts are cut when
/// encoded.
pub const MAX_TEXT: usize = 8 * 1024;
/// The longest service, user, rhost or tty.
pub const MAX_NAME: usize = 1024;
/// The longest answer, field or code ([`crate::auth::oneword::MAX_FIELD`]).
pub const MAX_SECRET: usize = crate::auth::oneword::MAX_FIELD;
/// The most conversation frames the helper sends in one authentication.
pub const MAX_EXCHANGES: usize = 64;
/// How long one authentication through the helper may take in all (the user reads a
/// passcode in their mail): then the helper's reads fail, which ends the conversation.
pub const DEADLINE: Duration = Duration::from_secs(600);
/// How long the helper waits for the ask, which the module sends at once: a caller that
/// sends nothing holds a process for no longer than this (the helper reads the ask before
/// it becomes root, so until then it counts toward the caller's process limit).
pub const ASK_DEADLINE: Duration = Duration::from_secs(10);
/// Bytes before the payload: the tag and the length.
pub const HEADER: usize = 5;

const T_ASK: u8 = b'R';
const T_ANSWER: u8 = b'A';
const T_SHOWN: u8 = b'K';
const T_CONV_FAILED: u8 = b'X';
const T_PROMPT_OFF: u8 = b'P';
const T_PROMPT_ON: u8 = b'p';
const T_INFO: u8 = b'I';
const T_SHOW: u8 = b'S';
const T_ERROR: u8 = b'E';
const T_OUTCOME: u8 = b'O';
const T_BEFORE: u8 = b'B';
const T_REFUSED: u8 = b'F';

/// Every tag a frame may have.
const KNOWN_TAGS: [u8; 12] = [
    T_ASK,
    T_ANSWER,
    T_SHOWN,
    T_CONV_FAILED,
    T_PROMPT_OFF,
    T_PROMPT_ON,
    T_INFO,
    T_SHOW,
    T_ERROR,
    T_OUTCOME,
    T_BEFORE,
    T_REFUSED,
];

/// Which of the module's flows the helper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `auth::authenticate`, with the conversation relayed.
    Plain,
    /// `auth::oneword_before` on the one field.
    Before,
    /// `auth::oneword_after` with the kept code, if any.
    After,
}

/// Bytes that are a secret (an answer, a password field, a code): zeroed when dropped, and
/// `Debug` shows only their length.
pub use crate::secret::Secret;

/// The module's question: who, where, which flow, and the field or code of a one-password
/// service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    pub mode: Mode,
    pub fail_mode: FailMode,
    pub separator: u8,
    pub service: String,
    pub user: String,
    pub rhost: String,
    pub tty: String,
    /// `Before`: the one field (required); `After`: the kept code (optional); `Plain`: none.
    pub secret: Option<Secret>,
}

/// A message the helper asks the module to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Info,
    Show,
    Error,
}

/// The final reply to a `Before` ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeReply {
    /// The field goes to the password module as it is.
    Ignore,
    /// Split the field at this byte index (the separator's): password before, code after.
    Split(usize),
    /// A double logon's second login, accepted.
    Success(Outcome),
}

/// One frame, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Ask(Ask),
    Prompt { text: String, echo: bool },
    Message { kind: Message, text: String },
    Answer(Secret),
    Shown,
    ConvFailed,
    Outcome(Outcome),
    Before(BeforeReply),
    Refused(String),
}

/// What was wrong with a frame or the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The other side closed the channel before a frame began.
    Closed,
    /// The channel ended inside a frame.
    Truncated { tag: u8, want: usize, got: usize },
    /// A payload longer than [`MAX_FRAME`], or a field longer than its bound.
    Oversized {
        what: &'static str,
        len: usize,
        max: usize,
    },
    /// A tag no frame has.
    UnknownTag(u8),
    /// A frame whose payload does not read as its kind.
    Malformed(String),
    /// The deadline passed while waiting for the other side.
    TimedOut,
    /// Reading or writing failed.
    Io(String),
}

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtoError::Closed => write!(f, "the other side closed the channel"),
            ProtoError::Truncated { tag, want, got } => write!(
                f,
                "truncated frame {}: {got} of {want} bytes",
                tag_name(*tag)
            ),
            ProtoError::Oversized { what, len, max } => {
                write!(f, "oversized {what}: {len} bytes (at most {max})")
            }
            ProtoError::UnknownTag(t) => write!(f, "unknown frame tag 0x{t:02x}"),
            ProtoError::Malformed(m) => write!(f, "malformed frame: {m}"),
            ProtoError::TimedOut => write!(f, "nothing came before the deadline"),
            ProtoError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ProtoError {}

impl Frame {
    /// The frame's kind, never its content (an answer or an ask carries a secret).
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Ask(_) => "an ask",
            Frame::Prompt { .. } => "a prompt",
            Frame::Message { .. } => "a message",
            Frame::Answer(_) => "an answer",
            Frame::Shown => "a shown",
            Frame::ConvFailed => "a conversation failure",
            Frame::Outcome(_) => "an outcome",
            Frame::Before(_) => "a before reply",
            Frame::Refused(_) => "a refusal",
        }
    }
}

fn tag_name(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

fn malformed(m: impl Into<String>) -> ProtoError {
    ProtoError::Malformed(m.into())
}

/// A separator a module argument may name: one ASCII punctuation character, not `-` (a
/// passcode's prefix is `V-`). pam_mfa's `separator=`, this protocol and doctor all use it.
pub fn valid_separator(b: u8) -> bool {
    b.is_ascii_punctuation() && b != b'-'
}

/// Where pam_mfa looks for the helper when `helper=` is not given: the package's, then
/// `make install`'s. (doctor checks the same files.)
pub const HELPER_PATHS: [&str; 2] = ["/usr/lib/mfa/mfa-check", "/usr/local/lib/mfa/mfa-check"];

/// pam_mfa's module arguments, as its refusal of an unknown one and doctor name them.
pub const MODULE_ARGUMENTS: &str = "config=PATH service=NAME fail_mode=secure|safe \
     oneword=before|after separator=C helper=PATH debug";

// ---- encoding ----

fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn put_bytes(
    out: &mut Vec<u8>,
    what: &'static str,
    b: &[u8],
    max: usize,
) -> Result<(), ProtoError> {
    if b.len() > max {
        return Err(ProtoError::Oversized {
            what,
            len: b.len(),
            max,
        });
    }
    // max <= MAX_TEXT < 65536.
    out.extend_from_slice(&u16::try_from(b.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

/// A text, without NUL, cut to [`MAX_TEXT`] at a character boundary.
fn put_text(out: &mut Vec<u8>, text: &str) {
    let clean = text.replace('\0', "");
    let _ = put_bytes(out, "text", cut(&clean, MAX_TEXT).as_bytes(), MAX_TEXT);
}

fn put_name(out: &mut Vec<u8>, what: &'static str, name: &str) -> Result<(), ProtoError> {
    if name.contains('\0') {
        return Err(malformed(format!("{what} contains NUL")));
    }
    put_bytes(out, what, name.as_bytes(), MAX_NAME)
}

fn put_outcome(out: &mut Vec<u8>, o: &Outcome) {
    let (kind, reason, method, destination) = match o {
        Outcome::Success {
            method,
            destination,
        } => (0, "", method.as_str(), destination.as_str()),
        Outcome::Ignore { reason } => (1, reason.as_str(), "", ""),
        Outcome::Deny { reason } => (2, reason.as_str(), "", ""),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Secure,
        } => (3, reason.as_str(), "", ""),
        Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Safe,
        } => (4, reason.as_str(), "", ""),
    };
    out.push(kind);
    for t in [reason, method, destination] {
        put_text(out, t);
    }
}

impl Frame {
    /// The frame's bytes, header included. Texts are cut to [`MAX_TEXT`]; a name or a
    /// secret over its bound, or an `Ask` whose secret does not fit its mode, is an error.
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        let mut p = Vec::new();
        let tag = match self {
            Frame::Ask(a) => {
                p.push(VERSION);
                p.push(match a.mode {
                    Mode::Plain => 0,
                    Mode::Before => 1,
                    Mode::After => 2,
                });
                p.push(match a.fail_mode {
                    FailMode::Secure => 0,
                    FailMode::Safe => 1,
                });
                if !valid_separator(a.separator) {
                    return Err(malformed(
                        "separator is not ASCII punctuation other than '-'",
                    ));
                }
                p.push(a.separator);
                put_name(&mut p, "service", &a.service)?;
                put_name(&mut p, "user", &a.user)?;
                put_name(&mut p, "rhost", &a.rhost)?;
                put_name(&mut p, "tty", &a.tty)?;
                check_secret_fits(a.mode, a.secret.is_some())?;
                match &a.secret {
                    None => p.push(0),
                    Some(s) => {
                        p.push(1);
                        put_bytes(&mut p, "secret", &s.0, MAX_SECRET)?;
                    }
                }
                T_ASK
            }
            Frame::Prompt { text, echo } => {
                put_text(&mut p, text);
                if *echo { T_PROMPT_ON } else { T_PROMPT_OFF }
            }
            Frame::Message { kind, text } => {
                put_text(&mut p, text);
                match kind {
                    Message::Info => T_INFO,
                    Message::Show => T_SHOW,
                    Message::Error => T_ERROR,
                }
            }
            Frame::Answer(s) => {
                if s.0.len() > MAX_SECRET {
                    return Err(ProtoError::Oversized {
                        what: "answer",
                        len: s.0.len(),
                        max: MAX_SECRET,
                    });
                }
                p.extend_from_slice(&s.0);
                T_ANSWER
            }
            Frame::Shown => T_SHOWN,
            Frame::ConvFailed => T_CONV_FAILED,
            Frame::Outcome(o) => {
                put_outcome(&mut p, o);
                T_OUTCOME
            }
            Frame::Before(b) => {
                match b {
                    BeforeReply::Ignore => p.push(0),
                    BeforeReply::Split(i) => {
                        p.push(1);
                        let i = u32::try_from(*i)
                            .ok()
                            .filter(|i| (*i as usize) < MAX_SECRET)
                            .ok_or_else(|| malformed("split index beyond any field"))?;
                        p.extend_from_slice(&i.to_be_bytes());
                    }
                    BeforeReply::Success(o) => {
                        if !matches!(o, Outcome::Success { .. }) {
                            return Err(malformed("a before success that is not a success"));
                        }
                        p.push(2);
                        put_outcome(&mut p, o);
                    }
                }
                T_BEFORE
            }
            Frame::Refused(r) => {
                put_text(&mut p, r);
                T_REFUSED
            }
        };
        let mut out = Vec::with_capacity(HEADER + p.len());
        out.push(tag);
        out.extend_from_slice(&u32::try_from(p.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&p);
        p.fill(0);
        Ok(out)
    }
}

fn check_secret_fits(mode: Mode, present: bool) -> Result<(), ProtoError> {
    match (mode, present) {
        (Mode::Plain, true) => Err(malformed("a plain ask carries no field or code")),
        (Mode::Before, false) => Err(malformed("a before ask needs the field")),
        _ => Ok(()),
    }
}

// ---- decoding ----

/// A cursor over one payload.
struct Cur<'a> {
    b: &'a [u8],
}

impl<'a> Cur<'a> {
    fn u8(&mut self, what: &str) -> Result<u8, ProtoError> {
        let (&first, rest) = self
            .b
            .split_first()
            .ok_or_else(|| malformed(format!("{what} missing")))?;
        self.b = rest;
        Ok(first)
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProtoError> {
        if self.b.len() < n {
            return Err(malformed(format!(
                "{what}: {n} bytes announced, {} left",
                self.b.len()
            )));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn bytes16(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], ProtoError> {
        let len = self.take(2, what)?;
        let n = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if n > max {
            return Err(ProtoError::Oversized { what, len: n, max });
        }
        self.take(n, what)
    }
    fn str16(&mut self, what: &'static str, max: usize) -> Result<String, ProtoError> {
        let b = self.bytes16(what, max)?;
        let s = std::str::from_utf8(b).map_err(|_| malformed(format!("{what} is not UTF-8")))?;
        if s.contains('\0') {
            return Err(malformed(format!("{what} contains NUL")));
        }
        Ok(s.to_string())
    }
    fn end(&self, what: &str) -> Result<(), ProtoError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{} stray bytes after {what}",
                self.b.len()
            )))
        }
    }
}

fn outcome(c: &mut Cur<'_>) -> Result<Outcome, ProtoError> {
    let kind = c.u8("outcome kind")?;
    let reason = c.str16("reason", MAX_TEXT)?;
    let method = c.str16("method", MAX_TEXT)?;
    let destination = c.str16("destination", MAX_TEXT)?;
    if kind != 0 && !(method.is_empty() && destination.is_empty()) {
        return Err(malformed(
            "method or destination on an outcome that is not a success",
        ));
    }
    if kind == 0 && !reason.is_empty() {
        return Err(malformed("a reason on a success"));
    }
    Ok(match kind {
        0 => Outcome::Success {
            method,
            destination,
        },
        1 => Outcome::Ignore { reason },
        2 => Outcome::Deny { reason },
        3 => Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Secure,
        },
        4 => Outcome::Unavailable {
            reason,
            fail_mode: FailMode::Safe,
        },
        k => return Err(malformed(format!("unknown outcome kind {k}"))),
    })
}

/// Parses one payload of kind `tag`.
pub fn parse(tag: u8, payload: &[u8]) -> Result<Frame, ProtoError> {
    if payload.len() > MAX_FRAME {
        return Err(ProtoError::Oversized {
            what: "frame",
            len: payload.len(),
            max: MAX_FRAME,
        });
    }
    let mut c = Cur { b: payload };
    let frame = match tag {
        T_ASK => {
            let version = c.u8("version")?;
            if version != VERSION {
                return Err(malformed(format!(
                    "protocol version {version}, this side speaks {VERSION}: install the \
                     module and mfa-check of the same release"
                )));
            }
            let mode = match c.u8("mode")? {
                0 => Mode::Plain,
                1 => Mode::Before,
                2 => Mode::After,
                m => return Err(malformed(format!("unknown mode {m}"))),
            };
            let fail_mode = match c.u8("fail_mode")? {
                0 => FailMode::Secure,
                1 => FailMode::Safe,
                m => return Err(malformed(format!("unknown fail mode {m}"))),
            };
            let separator = c.u8("separator")?;
            if !valid_separator(separator) {
                return Err(malformed(format!(
                    "separator 0x{separator:02x} is not ASCII punctuation other than '-'"
                )));
            }
            let service = c.str16("service", MAX_NAME)?;
            let user = c.str16("user", MAX_NAME)?;
            let rhost = c.str16("rhost", MAX_NAME)?;
            let tty = c.str16("tty", MAX_NAME)?;
            let secret = match c.u8("secret flag")? {
                0 => None,
                1 => Some(Secret(c.bytes16("secret", MAX_SECRET)?.to_vec())),
                f => return Err(malformed(format!("unknown secret flag {f}"))),
            };
            check_secret_fits(mode, secret.is_some())?;
            Frame::Ask(Ask {
                mode,
                fail_mode,
                separator,
                service,
                user,
                rhost,
                tty,
                secret,
            })
        }
        T_ANSWER => {
            if payload.len() > MAX_SECRET {
                return Err(ProtoError::Oversized {
                    what: "answer",
                    len: payload.len(),
                    max: MAX_SECRET,
                });
            }
            c.b = &[];
            Frame::Answer(Secret(payload.to_vec()))
        }
        T_SHOWN => Frame::Shown,
        T_CONV_FAILED => Frame::ConvFailed,
        T_PROMPT_OFF | T_PROMPT_ON => Frame::Prompt {
            text: c.str16("prompt", MAX_TEXT)?,
            echo: tag == T_PROMPT_ON,
        },
        T_INFO | T_SHOW | T_ERROR => Frame::Message {
            kind: match tag {
                T_INFO => Message::Info,
                T_SHOW => Message::Show,
                _ => Message::Error,
            },
            text: c.str16("message", MAX_TEXT)?,
        },
        T_OUTCOME => Frame::Outcome(outcome(&mut c)?),
        T_BEFORE => Frame::Before(match c.u8("before kind")? {
            0 => BeforeReply::Ignore,
            1 => {
                let i = c.take(4, "split index")?;
                let i = u32::from_be_bytes([i[0], i[1], i[2], i[3]]) as usize;
                if i >= MAX_SECRET {
                    return Err(malformed(format!("split index {i} beyond any field")));
                }
                BeforeReply::Split(i)
            }
            2 => match outcome(&mut c)? {
                o @ Outcome::Success { .. } => BeforeReply::Success(o),
                _ => return Err(malformed("a before success that is not a success")),
            },
            k => return Err(malformed(format!("unknown before kind {k}"))),
        }),
        T_REFUSED => Frame::Refused(c.str16("reason", MAX_TEXT)?),
        t => return Err(ProtoError::UnknownTag(t)),
    };
    c.end(&format!("frame {}", tag_name(tag)))?;
    Ok(frame)
}

/// Decodes the first frame of `bytes`; returns it and the bytes it took. An incomplete
/// frame is `Truncated` (or `Closed` when `bytes` is empty).
pub fn decode(bytes: &[u8]) -> Result<(Frame, usize), ProtoError> {
    if bytes.is_empty() {
        return Err(ProtoError::Closed);
    }
    let (tag, len) = header(bytes)?;
    let end = HEADER + len;
    if bytes.len() < end {
        return Err(ProtoError::Truncated {
            tag,
            want: end,
            got: bytes.len(),
        });
    }
    Ok((parse(tag, &bytes[HEADER..end])?, end))
}

/// Tag and payload length from a header's bytes (at least [`HEADER`] of them).
fn header(bytes: &[u8]) -> Result<(u8, usize), ProtoError> {
    let [tag, a, b, c, d, ..] = *bytes else {
        return Err(ProtoError::Truncated {
            tag: bytes.first().copied().unwrap_or(0),
            want: HEADER,
            got: bytes.len(),
        });
    };
    if !KNOWN_TAGS.contains(&tag) {
        return Err(ProtoError::UnknownTag(tag));
    }
    let len = u32::from_be_bytes([a, b, c, d]) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::Oversized {
            what: "frame",
            len,
            max: MAX_FRAME,
        });
    }
    Ok((tag, len))
}

/// Reads one frame from `r`: the header, then (when the length is within bounds) exactly
/// the payload. Never allocates more than [`MAX_FRAME`] bytes.
pub fn read_frame(r: &mut dyn Read) -> Result<Frame, ProtoError> {
    let mut head = [0u8; HEADER];
    let got = fill(r, &mut head)?;
    if got == 0 {
        return Err(ProtoError::Closed);
    }
    if got < HEADER {
        return Err(ProtoError::Truncated {
            tag: head[0],
            want: HEADER,
            got,
        });
    }
    let (tag, len) = header(&head)?;
    let mut payload = vec![0u8; len];
    let got = fill(r, &mut payload)?;
    if got < len {
        payload.fill(0);
        return Err(ProtoError::Truncated {
            tag,
            want: HEADER + len,
            got: HEADER + got,
        });
    }
    let frame = parse(tag, &payload);
    payload.fill(0);
    frame
}

/// Reads until `buf` is full or the end; returns the bytes read.
fn fill(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize, ProtoError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(ProtoError::TimedOut),
            Err(e) => return Err(ProtoError::Io(format!("read: {e}"))),
        }
    }
    Ok(got)
}

/// Reads from a descriptor until a deadline: each read first waits (poll) for what is left
/// of the time, then fails with `TimedOut`.
pub struct Timed<F: AsFd> {
    pub fd: F,
    pub deadline: Instant,
}

impl<F: AsFd> Read for Timed<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) => continue,
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        loop {
            match nix::unistd::read(self.fd.as_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(Into::into),
            }
        }
    }
}

impl BeforeReply {
    /// The reply that tells the module what `auth::oneword_before` found in `field`, without
    /// the password or the code: a split is the separator's index. `None` when a split does
    /// not match the field (it always does: `split` cuts at a separator).
    pub fn of(field: &[u8], sep: u8, found: Before) -> Option<BeforeReply> {
        match found {
            Before::Ignore => Some(BeforeReply::Ignore),
            Before::Success(o) => Some(BeforeReply::Success(o)),
            Before::Split { password, code } => {
                let i = password.len();
                (field.get(i) == Some(&sep)
                    && field.get(..i) == Some(password.as_slice())
                    && field.get(i + 1..) == Some(code.as_slice()))
                .then_some(BeforeReply::Split(i))
            }
        }
    }

    /// What the reply means for `field` (the module's side). `None` when a split index is
    /// not a separator inside the field, or leaves a part empty: a reply not to be trusted.
    pub fn apply(&self, field: &[u8], sep: u8) -> Option<Before> {
        match self {
            BeforeReply::Ignore => Some(Before::Ignore),
            BeforeReply::Success(o) => Some(Before::Success(o.clone())),
            BeforeReply::Split(i) => {
                let i = *i;
                if i == 0 || i + 1 >= field.len() || field.get(i) != Some(&sep) {
                    return None;
                }
                Some(Before::Split {
                    password: field.get(..i)?.to_vec(),
                    code: field.get(i + 1..)?.to_vec(),
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "helper_tests.rs"]
mod tests;
