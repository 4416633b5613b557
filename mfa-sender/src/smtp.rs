//! A small SMTP client: connect (plain, STARTTLS or TLS with rustls), EHLO, AUTH PLAIN or
//! LOGIN, one MAIL/RCPT/DATA transaction per message, and a pool of open connections.
//!
//! Why not lettre: lettre 0.11 never sets TCP_NODELAY and writes the end-of-data marker as
//! a separate small packet, which Nagle's algorithm holds until the server's delayed ACK:
//! about 40 ms per message, capping 8 workers at ~180 msg/s (bench/sender_bench.sh). Here the
//! socket has TCP_NODELAY and the whole DATA payload, marker included, is one write.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;

/// Longest reply line and most lines of one reply accepted from a server.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 128;

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

/// One open, greeted and authenticated connection.
pub struct Connection {
    io: BufReader<Stream>,
    extensions: Vec<String>,
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

    fn expect(&mut self, command: &'static str, want: u16) -> Result<Reply, Failure> {
        let r = self.read_reply()?;
        if r.code == want || (want == 250 && r.code == 251) {
            Ok(r)
        } else {
            Err(Failure::Refused { command, reply: r })
        }
    }

    fn command(&mut self, name: &'static str, line: &str, want: u16) -> Result<Reply, Failure> {
        let w = self.io.get_mut();
        w.write_all(line.as_bytes())
            .and_then(|()| w.flush())
            .map_err(io_failure)?;
        self.expect(name, want)
    }

    /// Sends one message; `data` is the formatted message (CRLF lines, not dot-stuffed).
    pub fn send(&mut self, from: &str, to: &str, data: &[u8]) -> Result<Reply, Failure> {
        self.command("MAIL FROM", &format!("MAIL FROM:<{from}>\r\n"), 250)?;
        self.command("RCPT TO", &format!("RCPT TO:<{to}>\r\n"), 250)?;
        self.command("DATA", "DATA\r\n", 354)?;
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
        let w = self.io.get_mut();
        let sent = w.write_all(&payload).and_then(|()| w.flush());
        // From here on the server may have the message: a lost connection is not a stale
        // one, and an immediate resend could deliver it twice.
        let after = |f: Failure| match f {
            Failure::Connection(e) => Failure::AfterData(e),
            other => other,
        };
        sent.map_err(io_failure).map_err(after)?;
        self.expect("DATA", 250).map_err(after)
    }

    /// Ends a failed transaction so the connection can carry the next message.
    pub fn reset(&mut self) -> bool {
        self.command("RSET", "RSET\r\n", 250).is_ok()
    }

    /// Says goodbye.
    pub fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT\r\n", 221);
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

/// Open connections kept between messages, at most one per worker.
pub struct Pool {
    settings: Settings,
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    pub fn new(settings: Settings) -> Pool {
        Pool {
            settings,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sends one message on a pooled connection (a stale one is replaced once).
    pub fn send(&self, from: &str, to: &str, data: &[u8]) -> Result<Reply, Failure> {
        for _ in 0..2 {
            let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
            let (mut conn, was_pooled) = match pooled {
                Some(c) => (c, true),
                None => (Connection::open(&self.settings)?, false),
            };
            match conn.send(from, to, data) {
                Ok(r) => {
                    self.put_back(conn);
                    return Ok(r);
                }
                Err(Failure::Connection(_)) if was_pooled => continue,
                Err(e @ Failure::Refused { .. }) => {
                    if conn.reset() {
                        self.put_back(conn);
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Failure::Connection("the connection failed twice".into()))
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(conn);
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
