//! A small SMTP client: connect (plain, STARTTLS or TLS with rustls), EHLO, AUTH PLAIN or
//! LOGIN, one MAIL/RCPT/DATA transaction per message (MAIL, RCPT and DATA in one write when
//! the server offers PIPELINING, RFC 2920), and a pool of open connections reused from one
//! message to the next.
//!
//! The pool ([`Pool`]) keeps at most one idle connection per worker and closes (QUIT) a
//! connection idle for [`IDLE_LIMIT`]; a connection that failed (closed by the server, a 421,
//! a timeout, RSET refused) is never put back. When a pooled connection turns out dead before
//! the message was written (the server dropped it while it was idle), the message goes out
//! at once on a fresh connection; once the message was written, a failure is reported and
//! the message waits for its retry: it may have been accepted, and a resend could deliver it
//! twice.
//!
//! Why not lettre: lettre 0.11 never sets TCP_NODELAY and writes the end-of-data marker as
//! a separate small packet, which Nagle's algorithm holds until the server's delayed ACK:
//! about 40 ms per message, capping 8 workers at ~180 msg/s (bench/sender_bench.sh). Here the
//! socket has TCP_NODELAY and the whole DATA payload, marker included, is one write.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;

/// Longest reply line and most lines of one reply accepted from a server.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 128;

/// How long a connection may stay idle in the pool before it is closed with QUIT. Servers
/// drop idle clients, some quickly: Postfix's smtpd after 300 s, 10 s when it is under
/// stress; 5 s stays under both. A burst of messages (a login storm, a drained queue) goes
/// out on open connections; a lone passcode minutes after the last one opens a new one.
pub const IDLE_LIMIT: Duration = Duration::from_secs(5);

/// How long a QUIT waits for the server's 221 before the connection is closed anyway.
const QUIT_WAIT: Duration = Duration::from_secs(1);

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    StartTls,
    Tls,
}

/// Everything a connection needs.
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub credentials: Option<(String, String)>,
    pub timeout: Duration,
    pub hello: String,
}

/// A server's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.text)
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed (refused, reset, timeout, TLS): worth a retry.
    Connection(String),
    /// The server answered `reply` to `command`.
    Refused { command: &'static str, reply: Reply },
    /// The connection failed after the message was written: it may have been accepted.
    AfterData(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connection(e) => write!(f, "connection: {e}"),
            Failure::Refused { command, reply } => write!(f, "{command}: {reply}"),
            Failure::AfterData(e) => write!(f, "connection lost after the message was sent: {e}"),
        }
    }
}

fn io_failure(e: io::Error) -> Failure {
    Failure::Connection(e.to_string())
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

/// One open, greeted and authenticated connection.
pub struct Connection {
    io: BufReader<Stream>,
    extensions: Vec<String>,
    /// The server offered PIPELINING (after TLS, when there is TLS).
    pipelining: bool,
    /// Must not carry another message: the server said 421 (closing), or client and server
    /// are out of step (DATA accepted without a recipient).
    broken: bool,
    /// The current message's content was written (a failure now may follow an acceptance).
    written: bool,
}

impl Connection {
    /// Connects, greets, upgrades to TLS when asked and authenticates.
    pub fn open(s: &Settings) -> Result<Connection, Failure> {
        let addrs: Vec<_> = (s.host.as_str(), s.port)
            .to_socket_addrs()
            .map_err(|e| Failure::Connection(format!("cannot resolve {}: {e}", s.host)))?
            .collect();
        let mut last = Failure::Connection(format!("{} has no address", s.host));
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, s.timeout) {
                Ok(t) => {
                    tcp = Some(t);
                    break;
                }
                Err(e) => last = Failure::Connection(format!("{a}: {e}")),
            }
        }
        let tcp = tcp.ok_or(last)?;
        tcp.set_nodelay(true).map_err(io_failure)?;
        tcp.set_read_timeout(Some(s.timeout)).map_err(io_failure)?;
        tcp.set_write_timeout(Some(s.timeout)).map_err(io_failure)?;
        let stream = match s.security {
            Security::Tls => tls_wrap(s, tcp)?,
            _ => Stream::Plain(tcp),
        };
        let mut c = Connection {
            io: BufReader::new(stream),
            extensions: Vec::new(),
            pipelining: false,
            broken: false,
            written: false,
        };
        c.expect("greeting", 220)?;
        c.ehlo(&s.hello)?;
        if s.security == Security::StartTls {
            if !c.has("STARTTLS") {
                return Err(Failure::Refused {
                    command: "STARTTLS",
                    reply: Reply {
                        code: 530,
                        text: "the server does not offer STARTTLS (set tls = \"none\" or \"tls\")"
                            .into(),
                    },
                });
            }
            c.command("STARTTLS", "STARTTLS\r\n", 220)?;
            // Anything the server sent after its 220 is discarded with the plain reader.
            let Stream::Plain(tcp) = c.io.into_inner() else {
                return Err(Failure::Connection("STARTTLS on a TLS connection".into()));
            };
            c = Connection {
                io: BufReader::new(tls_wrap(s, tcp)?),
                extensions: Vec::new(),
                pipelining: false,
                broken: false,
                written: false,
            };
            c.ehlo(&s.hello)?;
        }
        if let Some((user, pass)) = &s.credentials {
            c.auth(user, pass)?;
        }
        Ok(c)
    }

    fn has(&self, ext: &str) -> bool {
        self.extensions.iter().any(|e| {
            e.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(ext))
        })
    }

    fn ehlo(&mut self, hello: &str) -> Result<(), Failure> {
        let r = self.command("EHLO", &format!("EHLO {hello}\r\n"), 250)?;
        self.extensions = r.text.lines().skip(1).map(str::to_string).collect();
        self.pipelining = self.has("PIPELINING");
        Ok(())
    }

    fn auth(&mut self, user: &str, pass: &str) -> Result<(), Failure> {
        use base64::Engine;
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let mechanisms: Vec<String> = self
            .extensions
            .iter()
            .filter_map(|e| e.strip_prefix("AUTH ").or_else(|| e.strip_prefix("AUTH=")))
            .flat_map(|m| {
                m.split_whitespace()
                    .map(str::to_ascii_uppercase)
                    .collect::<Vec<_>>()
            })
            .collect();
        if mechanisms.iter().any(|m| m == "PLAIN") {
            let token = b64(format!("\0{user}\0{pass}").as_bytes());
            self.command("AUTH", &format!("AUTH PLAIN {token}\r\n"), 235)?;
        } else if mechanisms.iter().any(|m| m == "LOGIN") {
            self.command("AUTH", "AUTH LOGIN\r\n", 334)?;
            self.command("AUTH", &format!("{}\r\n", b64(user.as_bytes())), 334)?;
            self.command("AUTH", &format!("{}\r\n", b64(pass.as_bytes())), 235)?;
        } else {
            return Err(Failure::Refused {
                command: "AUTH",
                reply: Reply {
                    code: 530,
                    text: "the server offers neither AUTH PLAIN nor LOGIN (over this connection)"
                        .into(),
                },
            });
        }
        Ok(())
    }

    fn read_reply(&mut self) -> Result<Reply, Failure> {
        let mut text = Vec::new();
        for _ in 0..MAX_LINES {
            let mut line = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .map_err(io_failure)?;
            if n == 0 {
                return Err(Failure::Connection(
                    "the server closed the connection".into(),
                ));
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
            let (Some(code), sep) = (code, line.as_bytes().get(3).copied()) else {
                return Err(Failure::Connection(format!("not an SMTP reply: {line:?}")));
            };
            text.push(line.get(4..).unwrap_or("").to_string());
            if sep != Some(b'-') {
                return Ok(Reply {
                    code,
                    text: text.join("\n"),
                });
            }
        }
        Err(Failure::Connection("reply too long".into()))
    }

    /// Reads a reply and checks its code; a 421 (the server is closing the connection)
    /// marks the connection broken.
    fn expect(&mut self, command: &'static str, want: u16) -> Result<Reply, Failure> {
        let r = self.read_reply().inspect_err(|_| self.broken = true)?;
        if r.code == 421 {
            self.broken = true;
        }
        if r.code == want || (want == 250 && r.code == 251) {
            Ok(r)
        } else {
            Err(Failure::Refused { command, reply: r })
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let w = self.io.get_mut();
        w.write_all(bytes).and_then(|()| w.flush()).map_err(|e| {
            self.broken = true;
            io_failure(e)
        })
    }

    fn command(&mut self, name: &'static str, line: &str, want: u16) -> Result<Reply, Failure> {
        self.write(line.as_bytes())?;
        self.expect(name, want)
    }

    /// MAIL, RCPT and DATA in one write, then their three replies in order (RFC 2920). A
    /// refusal is reported for the first command refused; a 421 stops the reading (the
    /// server closes the connection); DATA accepted after a refused MAIL or RCPT leaves the
    /// connection unusable (it waits for a message that must not be sent).
    fn envelope_pipelined(&mut self, from: &str, to: &str) -> Result<(), Failure> {
        self.write(format!("MAIL FROM:<{from}>\r\nRCPT TO:<{to}>\r\nDATA\r\n").as_bytes())?;
        let mut first_refusal = None;
        for (command, want) in [("MAIL FROM", 250), ("RCPT TO", 250), ("DATA", 354)] {
            match self.expect(command, want) {
                Ok(_) if first_refusal.is_some() => self.broken = true,
                Ok(_) => {}
                Err(e @ Failure::Refused { .. }) if !self.broken => {
                    first_refusal.get_or_insert(e);
                }
                // A 421 or a dead connection: nothing more to read.
                Err(e) => return Err(first_refusal.unwrap_or(e)),
            }
        }
        first_refusal.map_or(Ok(()), Err)
    }

    /// Sends one message; `data` is the formatted message (CRLF lines, not dot-stuffed).
    pub fn send(&mut self, from: &str, to: &str, data: &[u8]) -> Result<Reply, Failure> {
        self.written = false;
        if self.pipelining {
            self.envelope_pipelined(from, to)?;
        } else {
            self.command("MAIL FROM", &format!("MAIL FROM:<{from}>\r\n"), 250)?;
            self.command("RCPT TO", &format!("RCPT TO:<{to}>\r\n"), 250)?;
            self.command("DATA", "DATA\r\n", 354)?;
        }
        let mut payload = Vec::with_capacity(data.len() + 16);
        for line in data.split_inclusive(|b| *b == b'\n') {
            if line.first() == Some(&b'.') {
                payload.push(b'.');
            }
            payload.extend_from_slice(line);
        }
        if !payload.ends_with(b"\r\n") {
            payload.extend_from_slice(b"\r\n");
        }
        payload.extend_from_slice(b".\r\n");
        self.written = true;
        let sent = self.write(&payload);
        // From here on the server may have the message: a lost connection is not a stale
        // one, and an immediate resend could deliver it twice.
        let after = |f: Failure| match f {
            Failure::Connection(e) => Failure::AfterData(e),
            other => other,
        };
        sent.map_err(after)?;
        self.expect("DATA", 250).map_err(after)
    }

    /// Ends a failed transaction so the connection can carry the next message; false when
    /// it cannot (then it must be dropped).
    pub fn reset(&mut self) -> bool {
        !self.broken && self.command("RSET", "RSET\r\n", 250).is_ok()
    }

    /// Says goodbye: QUIT, and up to a second for the server's 221.
    pub fn quit(self) {
        quit_all(vec![self], QUIT_WAIT);
    }
}

/// Closes connections politely: QUIT written to each, then their 221 awaited until `wait`
/// has passed (not at all when `wait` is zero), then the sockets closed.
fn quit_all(conns: Vec<Connection>, wait: Duration) {
    let short = Some(Duration::from_millis(200));
    let mut said = Vec::with_capacity(conns.len());
    for mut c in conns {
        let _ = c.io.get_ref().tcp().set_write_timeout(short);
        if c.write(b"QUIT\r\n").is_ok() {
            said.push(c);
        }
    }
    let deadline = Instant::now() + wait;
    for mut c in said {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        if c.io.get_ref().tcp().set_read_timeout(Some(left)).is_ok() {
            let _ = c.read_reply();
        }
    }
}

fn tls_wrap(s: &Settings, tcp: TcpStream) -> Result<Stream, Failure> {
    let cfg = s
        .tls
        .clone()
        .ok_or_else(|| Failure::Connection("TLS is not configured".into()))?;
    let name = ServerName::try_from(s.host.clone())
        .map_err(|e| Failure::Connection(format!("{}: {e}", s.host)))?;
    let conn = rustls::ClientConnection::new(cfg, name)
        .map_err(|e| Failure::Connection(format!("TLS: {e}")))?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    // Finish the handshake now, so that a certificate error is reported as such.
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| Failure::Connection(format!("TLS: {e}")))?;
    }
    Ok(Stream::Tls(Box::new(stream)))
}

/// Open connections kept between messages: at most `limit` (the number of workers, each of
/// which holds one connection at a time), each closed after [`IDLE_LIMIT`] unused.
pub struct Pool {
    settings: Settings,
    limit: usize,
    /// Idle connections and when each was last used, the most recently used last.
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// Connections opened so far (for the log and tests).
    opened: std::sync::atomic::AtomicU64,
}

impl Pool {
    pub fn new(settings: Settings, limit: usize) -> Pool {
        Pool {
            settings,
            limit: limit.max(1),
            idle: Mutex::new(Vec::new()),
            opened: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How many connections this pool has opened.
    pub fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most recently used idle connection that has not outlived [`IDLE_LIMIT`] (older
    /// ones are closed on the way).
    fn take(&self) -> Option<Connection> {
        let now = Instant::now();
        let mut stale = Vec::new();
        let found = {
            let mut idle = self.idle.lock().ok()?;
            match idle.pop() {
                Some((c, since)) if now.duration_since(since) < IDLE_LIMIT => Some(c),
                Some((c, _)) => {
                    // Everything below an expired one is older still.
                    stale.push(c);
                    stale.extend(idle.drain(..).map(|(c, _)| c));
                    None
                }
                None => None,
            }
        };
        quit_all(stale, Duration::ZERO);
        found
    }

    fn open(&self) -> Result<Connection, Failure> {
        let c = Connection::open(&self.settings)?;
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(c)
    }

    /// Sends one message, on a pooled connection when there is one. A pooled connection
    /// found dead before the message was written (closed, reset, timed out, or a 421 from a
    /// server that dropped it while idle) is replaced by a fresh one, once; a failure on a
    /// fresh connection, or after the message was written, is returned.
    pub fn send(&self, from: &str, to: &str, data: &[u8]) -> Result<Reply, Failure> {
        let (mut conn, mut pooled) = match self.take() {
            Some(c) => (c, true),
            None => (self.open()?, false),
        };
        loop {
            let result = conn.send(from, to, data);
            let stale = pooled
                && !conn.written
                && match &result {
                    Err(Failure::Connection(_)) => true,
                    Err(Failure::Refused { reply, .. }) => reply.code == 421,
                    _ => false,
                };
            if stale {
                drop(conn);
                conn = self.open()?;
                pooled = false;
                continue;
            }
            match result {
                Ok(r) => {
                    self.put_back(conn);
                    return Ok(r);
                }
                Err(e @ Failure::Refused { .. }) => {
                    if conn.reset() {
                        self.put_back(conn);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn put_back(&self, conn: Connection) {
        if conn.broken {
            return;
        }
        let extra = match self.idle.lock() {
            Ok(mut v) if v.len() < self.limit => {
                v.push((conn, Instant::now()));
                None
            }
            _ => Some(conn),
        };
        if let Some(c) = extra {
            c.quit();
        }
    }

    /// Closes (QUIT) the connections idle for [`IDLE_LIMIT`] or longer; returns how many.
    pub fn expire(&self) -> usize {
        let now = Instant::now();
        let stale: Vec<Connection> = match self.idle.lock() {
            Ok(mut idle) => {
                let cut = idle
                    .iter()
                    .position(|(_, since)| now.duration_since(*since) < IDLE_LIMIT)
                    .unwrap_or(idle.len());
                idle.drain(..cut).map(|(c, _)| c).collect()
            }
            Err(_) => Vec::new(),
        };
        let n = stale.len();
        quit_all(stale, QUIT_WAIT);
        n
    }

    /// Closes every idle connection with QUIT (at shutdown), waiting up to a second in all
    /// for the servers' replies.
    pub fn close(&self) {
        let all: Vec<Connection> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).map(|(c, _)| c).collect(),
            Err(_) => Vec::new(),
        };
        quit_all(all, QUIT_WAIT);
    }
}

impl Drop for Pool {
    /// A pool replaced by a reload: QUIT to its idle connections, without waiting.
    fn drop(&mut self) {
        if let Ok(idle) = self.idle.get_mut() {
            quit_all(idle.drain(..).map(|(c, _)| c).collect(), Duration::ZERO);
        }
    }
}

/// Formats a plain-text message: headers (the subject encoded per RFC 2047 when it is not
/// plain ASCII) and a body with CRLF line ends, 7bit when it can be, else base64.
pub fn format_message(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    message_id: &str,
    date: &str,
) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let subject = clean(subject);
    let subject = if subject.is_ascii() && subject.len() <= 900 {
        subject
    } else {
        // Encoded words of at most 45 bytes of UTF-8 each, split at character boundaries.
        let mut words = Vec::new();
        let mut chunk = String::new();
        for ch in subject.chars() {
            if chunk.len() + ch.len_utf8() > 45 {
                words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
                chunk.clear();
            }
            chunk.push(ch);
        }
        if !chunk.is_empty() {
            words.push(format!("=?UTF-8?B?{}?=", b64.encode(&chunk)));
        }
        words.join("\r\n ")
    };
    let lines: Vec<&str> = body.lines().collect();
    let seven_bit = body.is_ascii() && lines.iter().all(|l| l.len() <= 998);
    let mut out = format!(
        "From: {}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n",
        clean(from),
        clean(to),
        clean(message_id)
    );
    if seven_bit {
        out.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.push_str(&lines.join("\r\n"));
    } else {
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = b64.encode(lines.join("\r\n"));
        let chunks: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        out.push_str(&chunks.join("\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let m = String::from_utf8(format_message(
            "a@x.com",
            "b@y.com",
            "vm passcode",
            "V-123456 is\nyour code",
            "<1@mfa>",
            "Mon, 1 Jan 2026 00:00:00 +0000",
        ))
        .unwrap();
        assert!(m.contains("\r\nSubject: vm passcode\r\n"), "{m}");
        assert!(m.ends_with("\r\n\r\nV-123456 is\r\nyour code\r\n"), "{m}");
        assert!(m.contains("Content-Transfer-Encoding: 7bit"));
        let m = String::from_utf8(format_message(
            "a@x.com",
            "b@y.com",
            "Zugangscode für bob\r\nBcc: x",
            "Grüße",
            "<1@mfa>",
            "d",
        ))
        .unwrap();
        assert!(m.contains("Subject: =?UTF-8?B?"), "{m}");
        assert!(!m.contains("\r\nBcc:"), "no header injection: {m}");
        assert!(
            m.contains("Content-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZQ==\r\n"),
            "{m}"
        );
    }
}
