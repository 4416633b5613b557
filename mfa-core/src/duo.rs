//! The local channel to the Duo broker: what `pam_mfa` and `mfa-admin` ask `mfa-sender` (which
//! alone holds Duo's secret key and talks to Duo's Auth API v2), and how.
//!
//! The broker listens on a Unix stream socket, [`socket_path`] (`<runtime>/duo.sock`), and
//! serves only root peers (checked with `SO_PEERCRED`): the module inside sshd, su or sudo,
//! and `mfa-admin`. One connection carries one [`Request`]; the broker answers with any
//! number of [`Reply::Progress`] frames (at least every [`KEEPALIVE`] while it waits on Duo)
//! and then one final reply. A frame is a length (u32, big-endian, at most [`MAX_FRAME`])
//! followed by that many bytes of JSON.
//!
//! Every wait of a caller is bounded: by the deadline it gives [`call`], and by [`IDLE`] between
//! two frames (a broker that died or restarted mid-push ends the wait at once, with
//! [`BrokerError::Unavailable`]: the fail mode decides, never a hang).

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The socket's file name in the runtime directory.
pub const SOCKET_NAME: &str = "duo.sock";
/// The largest frame either side sends or reads.
pub const MAX_FRAME: usize = 64 * 1024;
/// The broker sends a frame at least this often while a request is pending.
pub const KEEPALIVE: Duration = Duration::from_secs(2);
/// A caller gives up when no frame came for this long (the broker is gone or hung).
pub const IDLE: Duration = Duration::from_secs(10);
/// The most requests the broker serves at once; more are answered [`ErrorKind::Busy`].
pub const MAX_PENDING: usize = 256;

/// The broker's socket under the runtime directory.
pub fn socket_path(runtime: &Path) -> PathBuf {
    runtime.join(SOCKET_NAME)
}

/// What a root process asks the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// `GET /auth/v2/ping` (unsigned): is Duo reachable?
    Ping,
    /// `GET /auth/v2/check`: are the integration key, secret key and signature right?
    Check,
    /// `POST /auth/v2/preauth`: may `username` authenticate, and with which devices?
    Preauth {
        username: String,
        /// The login's remote address, when it is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ipaddr: Option<String>,
        /// The host the user logs in to.
        hostname: String,
    },
    /// `POST /auth/v2/auth` (push and phone asynchronously, then `auth_status` until an
    /// answer or the timeout; sms and passcode synchronously).
    Auth {
        username: String,
        factor: Factor,
        /// The device id (`auto` when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// The code typed, for factor `passcode`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passcode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ipaddr: Option<String>,
        hostname: String,
        /// Shown with a push: `(key, value)` pairs, sent URL-encoded as `pushinfo`.
        #[serde(default)]
        pushinfo: Vec<(String, String)>,
    },
    /// `POST /auth/v2/enroll`: a new Duo user with an activation link.
    Enroll {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    /// `POST /auth/v2/enroll_status`.
    EnrollStatus {
        user_id: String,
        activation_code: String,
    },
}

/// A Duo authentication factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Push,
    Phone,
    Sms,
    Passcode,
    Auto,
}

impl Factor {
    /// The factor's name in Duo's API and in the auth log (`duo-push`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Factor::Push => "push",
            Factor::Phone => "phone",
            Factor::Sms => "sms",
            Factor::Passcode => "passcode",
            Factor::Auto => "auto",
        }
    }
}

/// What the broker answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// Not final: what is happening (Duo's `status_msg`), or an empty keepalive.
    Progress {
        text: String,
    },
    /// `ping`'s or `check`'s answer: Duo's time.
    Time {
        time: i64,
    },
    Preauth(Preauth),
    Auth(AuthResult),
    Enrolled(Enrollment),
    /// `enroll_status`'s answer: `success`, `waiting` or `invalid`.
    EnrollStatus {
        status: String,
    },
    /// The request failed.
    Error {
        kind: ErrorKind,
        message: String,
    },
}

/// `preauth`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preauth {
    /// `auth`, `allow`, `deny` or `enroll`.
    pub result: String,
    pub status_msg: String,
    /// For `enroll`: where the user enrols.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enroll_portal_url: Option<String>,
    /// For `auth`: the user's devices.
    #[serde(default)]
    pub devices: Vec<Device>,
}

/// One of a user's Duo devices, as `preauth` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Duo's device id (`auth`'s `device`).
    pub device: String,
    /// Duo's display name, such as `iOS (XXX-XXX-1234)` (already masked by Duo).
    pub display_name: String,
    /// `phone` or `token`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it can do: `auto`, `push`, `sms`, `phone`, `mobile_otp`.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `auth`'s final answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthResult {
    /// `allow` or `deny`.
    pub result: String,
    /// Duo's `status`: `allow`, `deny`, `fraud`, `timeout`, `sent` (sms), ...
    pub status: String,
    pub status_msg: String,
    /// The transaction id, when Duo gave one (async factors).
    #[serde(default)]
    pub txid: String,
}

/// `enroll`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub activation_barcode: String,
    pub activation_code: String,
    pub activation_url: String,
    pub expiration: i64,
    pub user_id: String,
    pub username: String,
}

/// Why a request failed, as far as a caller must tell the cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Duo cannot be reached, answered 5xx or too slowly, or kept rate-limiting.
    Unavailable,
    /// Duo refused the credentials or the signature (401): the configuration is wrong.
    Credentials,
    /// Duo refused the request itself (400: an unknown user, a bad parameter).
    Refused,
    /// `[duo]` is not configured, or its secret key cannot be read.
    NotConfigured,
    /// The peer is not root, or the request is malformed.
    Forbidden,
    /// Too many requests are pending.
    Busy,
}

/// Why a call to the broker failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerError {
    /// The broker cannot be reached, or went away, or the deadline passed.
    Unavailable(String),
    /// The broker answered with an error.
    Duo(ErrorKind, String),
    /// The progress callback asked to stop (the conversation failed).
    Stopped,
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BrokerError::Unavailable(m) => write!(f, "Duo broker unavailable: {m}"),
            BrokerError::Duo(k, m) => write!(f, "Duo: {m} ({k:?})"),
            BrokerError::Stopped => write!(f, "stopped"),
        }
    }
}

/// Writes one frame.
pub fn write_frame<T: Serialize>(w: &mut dyn Write, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {} bytes is over {MAX_FRAME}",
            body.len()
        )));
    }
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf)
}

/// Reads one frame, never allocating more than [`MAX_FRAME`] bytes; a short, oversized or
/// malformed frame is an error naming what was wrong.
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut dyn Read) -> std::io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed frame: {e}"),
        )
    })
}

/// Checks that the socket is one only the sender's user or root could have put there: the
/// runtime directory belongs to root or to `sender_user` (`[sender] user`) and no one else
/// may write to it, and the socket (no link followed) belongs to root or to that owner. A
/// local user cannot stand in for the broker, even with a runtime directory of their own
/// (one made under /tmp before the sender first started).
pub fn check_socket(runtime: &Path, sender_user: &str) -> Result<(), String> {
    let dir = std::fs::metadata(runtime)
        .map_err(|e| format!("runtime directory {}: {e}", runtime.display()))?;
    if dir.mode() & 0o022 != 0 {
        return Err(format!(
            "runtime directory {} is writable by group or others",
            runtime.display()
        ));
    }
    if dir.uid() != 0 {
        // A lookup of a local system account: the first NSS source (files) answers it.
        let sender = nix::unistd::User::from_name(sender_user).ok().flatten();
        if sender.is_none_or(|u| u.uid.as_raw() != dir.uid()) {
            return Err(format!(
                "runtime directory {} belongs to uid {}, neither root nor the sender's user \
                 {sender_user:?}: not trusted with the Duo broker (chown {sender_user} {})",
                runtime.display(),
                dir.uid(),
                runtime.display()
            ));
        }
    }
    let path = socket_path(runtime);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_socket() {
        return Err(format!("{} is not a socket", path.display()));
    }
    if meta.uid() != 0 && meta.uid() != dir.uid() {
        return Err(format!(
            "{} belongs to uid {}, neither root nor the runtime directory's owner",
            path.display(),
            meta.uid()
        ));
    }
    Ok(())
}

/// Sends `req` to the broker under `runtime`, run as `sender_user` (see [`check_socket`]),
/// and waits for the final reply, until `deadline` at most; `progress` sees each non-empty
/// progress text and may stop the wait by returning `false`. A [`Reply::Error`] comes back
/// as [`BrokerError::Duo`].
pub fn call(
    runtime: &Path,
    sender_user: &str,
    req: &Request,
    deadline: Instant,
    progress: &mut dyn FnMut(&str) -> bool,
) -> Result<Reply, BrokerError> {
    check_socket(runtime, sender_user).map_err(BrokerError::Unavailable)?;
    let path = socket_path(runtime);
    let mut s = UnixStream::connect(&path)
        .map_err(|e| BrokerError::Unavailable(format!("{}: {e}", path.display())))?;
    let unavailable = |e: std::io::Error| BrokerError::Unavailable(e.to_string());
    s.set_write_timeout(Some(IDLE)).map_err(unavailable)?;
    write_frame(&mut s, req).map_err(unavailable)?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BrokerError::Unavailable(
                "no answer before the deadline".into(),
            ));
        }
        s.set_read_timeout(Some(left.min(IDLE)))
            .map_err(unavailable)?;
        let reply: Reply = match read_frame(&mut s) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(BrokerError::Unavailable(if left <= IDLE {
                    "no answer before the deadline".into()
                } else {
                    format!("no word from the broker for {} s", IDLE.as_secs())
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(BrokerError::Unavailable(
                    "the broker closed the connection (restarted or stopped?)".into(),
                ));
            }
            Err(e) => return Err(unavailable(e)),
        };
        match reply {
            Reply::Progress { text } => {
                if !text.is_empty() && !progress(&text) {
                    return Err(BrokerError::Stopped);
                }
            }
            Reply::Error { kind, message } => return Err(BrokerError::Duo(kind, message)),
            other => return Ok(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bounds_hold() {
        let req = Request::Auth {
            username: "ann".into(),
            factor: Factor::Push,
            device: Some("DPFZRS9FB0D46QFTM891".into()),
            passcode: None,
            ipaddr: Some("192.0.2.1".into()),
            hostname: "web1".into(),
            pushinfo: vec![("service".into(), "sshd".into())],
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &req).unwrap();
        let back: Request = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
        // Oversized: refused before reading the body.
        let mut big = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        let e = read_frame::<Request>(&mut big.as_slice()).unwrap_err();
        assert!(e.to_string().contains("over"), "{e}");
        // Truncated and malformed.
        assert!(read_frame::<Request>(&mut &buf[..buf.len() - 1]).is_err());
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"{\"op\"");
        assert!(read_frame::<Request>(&mut junk.as_slice()).is_err());
        // Unknown fields are refused.
        let mut extra = Vec::new();
        write_frame(
            &mut extra,
            &serde_json::json!({"op": "preauth", "username": "a", "hostname": "h", "x": 1}),
        )
        .unwrap();
        assert!(read_frame::<Request>(&mut extra.as_slice()).is_err());
    }

    #[test]
    fn a_socket_anyone_could_plant_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let err = check_socket(dir.path(), "root").unwrap_err();
        assert!(err.contains(SOCKET_NAME), "{err}");
        std::fs::write(socket_path(dir.path()), b"").unwrap();
        assert!(
            check_socket(dir.path(), "root")
                .unwrap_err()
                .contains("not a socket")
        );
        std::fs::remove_file(socket_path(dir.path())).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        check_socket(dir.path(), "root").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(
            check_socket(dir.path(), "root")
                .unwrap_err()
                .contains("writable")
        );
    }

    #[test]
    fn a_broker_that_goes_away_ends_the_wait_at_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let l = std::os::unix::net::UnixListener::bind(socket_path(dir.path())).unwrap();
        let t = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let _: Request = read_frame(&mut c).unwrap();
            write_frame(
                &mut c,
                &Reply::Progress {
                    text: "Pushed".into(),
                },
            )
            .unwrap();
            // and dies
        });
        let start = Instant::now();
        let mut seen = Vec::new();
        let r = call(
            dir.path(),
            "root",
            &Request::Ping,
            Instant::now() + Duration::from_secs(30),
            &mut |t| {
                seen.push(t.to_string());
                true
            },
        );
        t.join().unwrap();
        assert!(matches!(r, Err(BrokerError::Unavailable(_))), "{r:?}");
        assert_eq!(seen, ["Pushed"]);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
