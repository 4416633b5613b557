//! The Duo broker: the daemon's Unix socket (`mfa_core::duo::socket_path`, mode 0600,
//! replaced when stale, removed at exit) where root processes ask for Duo's answers.
//!
//! Each connection gets a thread with a small stack. It is served only when its peer
//! (`SO_PEERCRED`) is root; one request frame is read within [`READ_TIMEOUT`]; at most
//! [`MAX_PENDING`] connections are served at once (the others get `Busy`). While a request
//! waits on Duo a ticker sends an empty `Progress` at least every [`TICK`] (well inside
//! `KEEPALIVE`), and Duo's `status_msg` as a `Progress` when it changes. Push, phone and auto
//! are sent with `async=1` and `auth_status` is polled about every second until an answer or
//! the `[duo] timeout` (then a final `deny`/`timeout`). At SIGTERM the socket goes and every
//! open connection is shut down: each waiting caller sees EOF at once, which its fail mode
//! decides. One log line per request: op, user, factor, result, txid, time (never a
//! passcode or the secret key).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mfa_core::duo::{
    AuthResult, ErrorKind, KEEPALIVE, MAX_PENDING, Reply, Request, read_frame, socket_path,
    write_frame,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::api::{ApiError, Client, Started};
use crate::daemon::log;

/// How long a client gets to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the ticker looks for connections owed a keepalive.
const TICK: Duration = Duration::from_millis(500);
/// The pause between two `auth_status` polls.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// A connection thread's stack: the request, its JSON and the wait on the HTTP client's thread (which
/// does the TLS work). Measured: 64 KiB overflows in a debug build, 192 KiB passes every test
/// there; only the pages touched count in the RSS (bench/duo_bench.sh).
const STACK: usize = 192 * 1024;
/// How long a write to a client may block (a client that does not read is dropped).
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

struct Conn {
    stream: Mutex<UnixStream>,
    last: Mutex<Instant>,
    /// Waiting on Duo: the ticker keeps it alive.
    waiting: AtomicBool,
    dead: AtomicBool,
}

impl Conn {
    /// Sends one frame; false (and the connection marked dead) if the client is gone.
    fn send(&self, reply: &Reply) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        let ok = match self.stream.lock() {
            Ok(mut s) => write_frame(&mut *s, reply).and_then(|()| s.flush()).is_ok(),
            Err(_) => false,
        };
        if ok {
            if let Ok(mut l) = self.last.lock() {
                *l = Instant::now();
            }
        } else {
            self.dead.store(true, Ordering::Relaxed);
        }
        ok
    }
}

struct Inner {
    path: PathBuf,
    client: RwLock<Result<Arc<Client>, String>>,
    stopping: AtomicBool,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    active: AtomicUsize,
}

/// The running broker; [`Broker::stop`] (or drop) removes the socket.
pub struct Broker {
    inner: Arc<Inner>,
    threads: Vec<JoinHandle<()>>,
}

fn client_for(cfg: &mfa_core::config::Duo) -> Result<Arc<Client>, String> {
    Client::new(cfg).map(Arc::new)
}

/// Binds the socket, replacing a stale one; refuses anything else at that path.
fn bind(path: &Path) -> Result<UnixListener, String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a socket: the Duo broker will not replace it; remove it \
                 (rm {}) if nothing of yours is there, then start mfa-sender again",
                path.display(),
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let l = UnixListener::bind(path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod 600 {}: {e}", path.display()))?;
    l.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(l)
}

impl Broker {
    /// Starts serving `[duo]` on the runtime directory's socket. A `[duo]` whose client
    /// cannot be built (an unreadable CA file, a bad timeout) still gets its socket: each
    /// request is answered `NotConfigured` with the reason, and the error is logged.
    pub fn start(cfg: &mfa_core::config::Duo, runtime: &Path) -> Result<Broker, String> {
        let path = socket_path(runtime);
        let listener = bind(&path)?;
        let client = client_for(cfg);
        if let Err(e) = &client {
            log(&format!("duo: not usable: {e}"));
        }
        let inner = Arc::new(Inner {
            path,
            client: RwLock::new(client),
            stopping: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        let i = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("duo-accept".into())
                .stack_size(STACK)
                .spawn(move || accept_loop(&i, &listener))
                .map_err(|e| e.to_string())?,
        );
        let i = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("duo-tick".into())
                .stack_size(STACK)
                .spawn(move || ticker(&i))
                .map_err(|e| e.to_string())?,
        );
        log(&format!(
            "duo: broker listening on {} for {}",
            inner.path.display(),
            cfg.host
        ));
        Ok(Broker { inner, threads })
    }

    /// Re-reads `[duo]` (SIGHUP); requests under way finish with the old client.
    pub fn reload(&self, cfg: Option<&mfa_core::config::Duo>) {
        let c = match cfg {
            Some(c) => client_for(c),
            None => Err("[duo] was removed from the configuration".to_string()),
        };
        if let Err(e) = &c {
            log(&format!("duo: not usable after the reload: {e}"));
        }
        if let Ok(mut slot) = self.inner.client.write() {
            *slot = c;
        }
    }

    /// Stops accepting, removes the socket, and ends every open connection (the callers see
    /// EOF). Idempotent.
    pub fn stop(&mut self) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = std::fs::remove_file(&self.inner.path);
        if let Ok(conns) = self.inner.conns.lock() {
            for c in conns.values() {
                c.dead.store(true, Ordering::Relaxed);
                if let Ok(s) = c.stream.try_lock() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                } else if let Ok(s) = c.stream.lock() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        log("duo: broker stopped, socket removed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(inner: &Arc<Inner>, listener: &UnixListener) {
    while !inner.stopping.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(200u16));
        loop {
            let stream = match listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    log(&format!("duo: accept: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            };
            if inner.stopping.load(Ordering::Relaxed) {
                return;
            }
            let i = Arc::clone(inner);
            let spawned = std::thread::Builder::new()
                .name("duo-conn".into())
                .stack_size(STACK)
                .spawn(move || serve(&i, stream));
            if let Err(e) = spawned {
                log(&format!("duo: cannot start a connection thread: {e}"));
            }
        }
    }
}

/// Sends an empty progress frame to each waiting connection silent for a while.
fn ticker(inner: &Arc<Inner>) {
    let quiet = (KEEPALIVE / 2).max(TICK);
    while !inner.stopping.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let due: Vec<Arc<Conn>> = match inner.conns.lock() {
            Ok(c) => c
                .values()
                .filter(|c| c.waiting.load(Ordering::Relaxed))
                .filter(|c| c.last.lock().map(|l| l.elapsed() >= quiet).unwrap_or(false))
                .cloned()
                .collect(),
            Err(_) => return,
        };
        for c in due {
            c.send(&Reply::Progress {
                text: String::new(),
            });
        }
    }
}

/// Decrements the served count and unregisters the connection when a thread ends.
struct Slot<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.inner.active.fetch_sub(1, Ordering::SeqCst);
        if let Ok(mut c) = self.inner.conns.lock() {
            c.remove(&self.id);
        }
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
    Reply::Error {
        kind,
        message: message.into(),
    }
}

fn serve(inner: &Arc<Inner>, stream: UnixStream) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let uid = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .map(|c| c.uid());
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let conn = Arc::new(Conn {
        stream: Mutex::new(clone),
        last: Mutex::new(Instant::now()),
        waiting: AtomicBool::new(false),
        dead: AtomicBool::new(false),
    });
    match uid {
        Ok(0) => {}
        Ok(uid) => {
            log(&format!(
                "duo: refused a connection from uid {uid}: only root may ask the broker"
            ));
            // Its request is read (bounded, and never acted on) before the answer: closing
            // first would leave the caller with a broken pipe instead of the reason.
            let mut r = &stream;
            let _ = r.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = read_frame::<serde_json::Value>(&mut r);
            conn.send(&error(
                ErrorKind::Forbidden,
                format!("only root may use the Duo broker (this process is uid {uid})"),
            ));
            return;
        }
        Err(e) => {
            log(&format!("duo: SO_PEERCRED: {e}"));
            return;
        }
    }
    let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
    let n = inner.active.fetch_add(1, Ordering::SeqCst) + 1;
    if let Ok(mut c) = inner.conns.lock() {
        c.insert(id, Arc::clone(&conn));
    }
    let _slot = Slot { inner, id };
    if inner.stopping.load(Ordering::Relaxed) {
        return;
    }
    let mut reader = stream;
    let _ = reader.set_read_timeout(Some(READ_TIMEOUT));
    let req: Request = match read_frame(&mut reader) {
        Ok(r) => r,
        Err(e) => {
            let why = if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                format!("no request within {} s", READ_TIMEOUT.as_secs())
            } else {
                format!("malformed request: {e}")
            };
            log(&format!("duo: {why}"));
            conn.send(&error(ErrorKind::Forbidden, why));
            return;
        }
    };
    if n > MAX_PENDING {
        log(&format!(
            "duo: busy: {MAX_PENDING} requests under way, one more refused"
        ));
        conn.send(&error(
            ErrorKind::Busy,
            format!("the Duo broker already serves {MAX_PENDING} requests"),
        ));
        return;
    }
    let client = match inner.client.read() {
        Ok(c) => c.clone(),
        Err(_) => Err("internal error".to_string()),
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            conn.send(&error(ErrorKind::NotConfigured, e));
            return;
        }
    };
    let start = Instant::now();
    conn.waiting.store(true, Ordering::Relaxed);
    let (reply, what) = handle(inner, &client, &conn, &req);
    conn.waiting.store(false, Ordering::Relaxed);
    let outcome = match &reply {
        Some(Reply::Error { kind, message }) => format!("error={kind:?} ({message})"),
        Some(Reply::Auth(r)) => format!(
            "result={} status={} txid={}",
            r.result,
            r.status,
            if r.txid.is_empty() { "-" } else { &r.txid }
        ),
        Some(Reply::Preauth(p)) => format!("result={} devices={}", p.result, p.devices.len()),
        Some(Reply::EnrollStatus { status }) => format!("result={status}"),
        Some(Reply::Enrolled(e)) => format!("result=enrolled user_id={}", e.user_id),
        Some(_) => "result=ok".to_string(),
        None => "result=abandoned (the caller left or the sender stops)".to_string(),
    };
    log(&format!(
        "duo: {what} {outcome} took={:.3}s",
        start.elapsed().as_secs_f64()
    ));
    if let Some(r) = reply {
        conn.send(&r);
    }
}

fn api_error(e: ApiError) -> Reply {
    error(e.kind, e.message)
}

/// Bounded text from a request: no control characters (it goes to Duo and into the log).
/// The remote address is not checked here: anything but an IP address is left out of the
/// request to Duo (`api::ip_only`).
fn valid(name: &str, v: &str, max: usize) -> Result<(), String> {
    if v.len() > max || v.chars().any(char::is_control) {
        return Err(format!(
            "{name}: over {max} bytes or with control characters"
        ));
    }
    Ok(())
}

/// `pushinfo` is only shown on the phone, and its values come partly from the PAM
/// application (a remote host name may be anything): control characters become spaces and
/// each key and value is cut to a bound, rather than the push refused. At most 16 pairs.
fn display_only(pushinfo: &[(String, String)]) -> Vec<(String, String)> {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(max)
            .collect()
    };
    pushinfo
        .iter()
        .take(16)
        .map(|(k, v)| (clean(k, 64), clean(v, 256)))
        .collect()
}

/// Serves one request: the final reply (None when the caller left or the sender stops),
/// and what the log line says of the request.
fn handle(inner: &Inner, client: &Client, conn: &Conn, req: &Request) -> (Option<Reply>, String) {
    let deadline = Instant::now() + client.timeout();
    match req {
        Request::Ping => (
            Some(
                client
                    .ping(deadline)
                    .map_or_else(api_error, |time| Reply::Time { time }),
            ),
            "op=ping".into(),
        ),
        Request::Check => (
            Some(
                client
                    .check(deadline)
                    .map_or_else(api_error, |time| Reply::Time { time }),
            ),
            "op=check".into(),
        ),
        Request::Preauth {
            username,
            ipaddr,
            hostname,
        } => {
            let what = format!("op=preauth user={username}");
            if let Err(r) = valid("username", username, 256).and(valid("hostname", hostname, 256)) {
                return (Some(error(ErrorKind::Forbidden, r)), what);
            }
            let r = client
                .preauth(username, ipaddr.as_deref(), hostname, deadline)
                .map_or_else(api_error, Reply::Preauth);
            (Some(r), what)
        }
        Request::Auth {
            username,
            factor,
            device,
            passcode,
            ipaddr,
            hostname,
            pushinfo,
        } => {
            let what = format!("op=auth user={username} factor={}", factor.name());
            if let Err(r) = valid("username", username, 256)
                .and(valid("hostname", hostname, 256))
                .and(valid("device", device.as_deref().unwrap_or(""), 128))
                .and(valid("passcode", passcode.as_deref().unwrap_or(""), 64))
            {
                return (Some(error(ErrorKind::Forbidden, r)), what);
            }
            let started = client.auth(
                username,
                *factor,
                device.as_deref(),
                passcode.as_deref(),
                ipaddr.as_deref(),
                hostname,
                &display_only(pushinfo),
                deadline,
            );
            let reply = match started {
                Err(e) => Some(api_error(e)),
                Ok(Started::Done(r)) => Some(Reply::Auth(r)),
                Ok(Started::Pending(txid)) => wait(inner, client, conn, &txid, deadline),
            };
            (reply, what)
        }
        Request::Enroll { username } => {
            let what = format!("op=enroll user={}", username.as_deref().unwrap_or("-"));
            if let Err(r) = valid("username", username.as_deref().unwrap_or(""), 256) {
                return (Some(error(ErrorKind::Forbidden, r)), what);
            }
            let r = client
                .enroll(username.as_deref(), deadline)
                .map_or_else(api_error, Reply::Enrolled);
            (Some(r), what)
        }
        Request::EnrollStatus {
            user_id,
            activation_code,
        } => {
            let what = format!("op=enroll_status user_id={user_id}");
            if let Err(r) =
                valid("user_id", user_id, 128).and(valid("activation_code", activation_code, 256))
            {
                return (Some(error(ErrorKind::Forbidden, r)), what);
            }
            let r = client
                .enroll_status(user_id, activation_code, deadline)
                .map_or_else(api_error, |status| Reply::EnrollStatus { status });
            (Some(r), what)
        }
    }
}

/// Polls `auth_status` until Duo's answer or the deadline; relays each new `status_msg`.
fn wait(
    inner: &Inner,
    client: &Client,
    conn: &Conn,
    txid: &str,
    deadline: Instant,
) -> Option<Reply> {
    let timed_out = || {
        Reply::Auth(AuthResult {
            result: "deny".into(),
            status: "timeout".into(),
            status_msg: format!("no answer within {} s", client.timeout().as_secs()),
            txid: txid.to_string(),
        })
    };
    let gone = || conn.dead.load(Ordering::Relaxed) || inner.stopping.load(Ordering::Relaxed);
    let mut last_msg = String::new();
    loop {
        if gone() {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(timed_out());
        }
        match client.auth_status(txid, deadline) {
            Ok((Some(r), _)) => return Some(Reply::Auth(r)),
            Ok((None, msg)) => {
                if !msg.is_empty() && msg != last_msg {
                    conn.send(&Reply::Progress { text: msg.clone() });
                    last_msg = msg;
                }
            }
            Err(_) if Instant::now() + Duration::from_millis(100) >= deadline => {
                return Some(timed_out());
            }
            Err(e) => return Some(api_error(e)),
        }
        let pause_end = (Instant::now() + POLL_EVERY).min(deadline);
        while Instant::now() < pause_end {
            if gone() {
                return None;
            }
            std::thread::sleep(
                pause_end
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
    }
}
