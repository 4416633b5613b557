//! Connecting to the fleet's central PostgreSQL store from `[store]` in `mfa.toml`.
//!
//! - The URL carries no password (refused): it comes from `store.password_file`, a regular
//!   file (not a symbolic link) owned by root or this user with no group or other
//!   permission bits, whose first line is the password (held in zeroed memory).
//! - With `store.ca_file` the connection is TLS or nothing (no plain-text fallback), the
//!   server's certificate must chain to a certificate in that file (its only trust roots)
//!   and name the host of the URL. Without it only a server on this machine (127.0.0.0/8,
//!   ::1, `localhost` or a unix-socket directory) may be reached, in plain text.
//! - Nothing waits forever: the whole connection (TCP, TLS, authentication) has a deadline
//!   (5 s by default), and each host of a URL naming several gets its share of it: a first
//!   host that hangs (accepts and never answers, drops packets) does not keep the others
//!   from being tried (see [`connect_with`]); the connection then has TCP keepalives and a
//!   user timeout (a dead peer is noticed within about a minute) and the server ends any
//!   statement after 30 s.
//! - Errors say which server (the URL, which holds no secret) and what it answered (the
//!   server's message and SQLSTATE, or the TLS or network problem), for each host of the
//!   URL; never the password.

use std::collections::BTreeMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_core::store_config::{StoreConfig, check_url};
use mfa_core::{Error, Result};
use postgres::config::{Host, LoadBalanceHosts, SslMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use zeroize::Zeroizing;

/// How long a connection may take (TCP, TLS and authentication together) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server ends any statement of ours that runs longer (`statement_timeout`), and any
/// transaction left idle that long (`idle_in_transaction_session_timeout`).
pub const STATEMENT_TIMEOUT: &str = "30s";

/// Per host of a URL (as [`Target::key`] names it): connection attempts abandoned while
/// still waiting for that server (one that accepts connections and never answers). A host
/// with [`MAX_HANGING`] of them is not tried again until one ends (new attempts would only
/// add threads), but the URL's other hosts still are.
static HANGING: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
const MAX_HANGING: usize = 4;

/// The longest password file read (its first line is the password).
const MAX_PASSWORD_FILE: usize = 4096;
/// The largest CA file read.
const MAX_CA_FILE: u64 = 1 << 20;

/// A connection to the central store (what [`connect`] returns).
pub use postgres::Client;

/// Connects to the central store of `cfg` (`[store]`), with [`DEFAULT_TIMEOUT`].
pub fn connect(cfg: &StoreConfig) -> Result<postgres::Client> {
    connect_with(cfg, DEFAULT_TIMEOUT)
}

/// Connects to the central store of `cfg`; the whole connection (every host of the URL,
/// TLS and authentication) must succeed within `timeout`.
///
/// The hosts of the URL are tried in order (in random order with
/// `load_balance_hosts=random`), each alone with its own settings (TLS server name,
/// `target_session_attrs`: a read-only standby is refused under `read-write`). Each host
/// gets a fair share of the time left (the time left divided by the hosts not yet tried):
/// when it fails the next one starts at once; when its share passes without an answer the
/// next one starts all the same while it keeps its chance until `timeout`. The first host
/// to accept wins. So a first host that accepts connections and never answers, or drops
/// packets, costs its share, not the whole deadline. The error names each host tried and
/// why it failed.
pub fn connect_with(cfg: &StoreConfig, timeout: Duration) -> Result<postgres::Client> {
    let (config, tls, shown) = prepare(cfg, timeout)?;
    let targets = targets(&config)?;
    let n = targets.len();
    let deadline = Instant::now() + timeout;
    let (send, recv) = std::sync::mpsc::channel();
    let mut outcome: Vec<Outcome> = vec![Outcome::NotTried; n];
    // The attempts started and still waited for: (target, its slot, when it started).
    let mut running: Vec<(usize, Arc<Mutex<Slot>>, Instant)> = Vec::new();
    let mut next = 0;
    // When the newest attempt's share of the time ends (the next host starts then).
    let mut share_end = deadline;
    loop {
        let now = Instant::now();
        if next < n && (running.is_empty() || now >= share_end) {
            let left = deadline.saturating_duration_since(now);
            let share = left / (n - next) as u32;
            let t = &targets[next];
            if share.is_zero() {
                next += 1;
                continue;
            }
            if hanging(&t.key) >= MAX_HANGING {
                outcome[next] = Outcome::Skipped;
                next += 1;
                continue;
            }
            let mut config = t.config.clone();
            config.connect_timeout(share);
            let slot = Arc::new(Mutex::new(Slot::Running));
            match spawn_attempt(next, config, tls.clone(), t.key.clone(), &slot, &send) {
                Ok(()) => {
                    running.push((next, slot, now));
                    share_end = now + share;
                }
                Err(e) => outcome[next] = Outcome::Failed(format!("cannot start a thread: {e}")),
            }
            next += 1;
            continue;
        }
        if running.is_empty() {
            break; // every host failed or was skipped
        }
        let until = if next < n { share_end } else { deadline };
        match recv.recv_timeout(until.saturating_duration_since(now)) {
            Ok((i, Ok(client))) => {
                running.retain(|r| r.0 != i);
                abandon(running, &targets, &recv);
                return Ok(client);
            }
            Ok((i, Err(e))) => {
                running.retain(|r| r.0 != i);
                outcome[i] = Outcome::Failed(describe(&e));
            }
            Err(_) if Instant::now() >= deadline => break,
            Err(_) => {}
        }
    }
    for (i, _, started) in &running {
        outcome[*i] = Outcome::NoAnswer(deadline.saturating_duration_since(*started));
    }
    // (An attempt that answered while the deadline passed still counts.)
    if let Some(client) = abandon(running, &targets, &recv) {
        return Ok(client);
    }
    Err(Error::Central(failure_message(&shown, &targets, &outcome)))
}

/// One host of the URL, to be tried alone.
struct Target {
    /// The settings of the whole URL, with this host (its `hostaddr`, its port) alone.
    config: postgres::Config,
    /// How messages name it: `host:port`, with ` (hostaddr)` when the URL gives one.
    name: String,
    /// What [`HANGING`] counts it under (the address connected to and the port).
    key: String,
}

/// What became of one host's attempt.
#[derive(Clone)]
enum Outcome {
    /// Not started: an earlier host answered, or no time was left.
    NotTried,
    /// Not started: [`MAX_HANGING`] earlier attempts to it still wait for its answer.
    Skipped,
    /// It failed: why (the server's message, or the TLS or network problem).
    Failed(String),
    /// Still waiting for it at the deadline, after this long.
    NoAnswer(Duration),
}

/// The state of one attempt, shared by its thread and [`connect_with`] (under its lock, so
/// that exactly one of them decides what becomes of the result).
#[derive(PartialEq)]
enum Slot {
    /// Connecting.
    Running,
    /// Its result is in the channel.
    Delivered,
    /// Given up on by [`connect_with`] (counted in [`HANGING`]); the thread drops its
    /// result and counts itself out.
    Abandoned,
}

/// What an attempt's thread sends: its target's index and the result.
type Answer = (
    usize,
    std::result::Result<postgres::Client, postgres::Error>,
);

/// Starts connecting to target `i` with `config` on a thread of its own.
fn spawn_attempt(
    i: usize,
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    key: String,
    slot: &Arc<Mutex<Slot>>,
    send: &std::sync::mpsc::Sender<Answer>,
) -> std::io::Result<()> {
    let slot = Arc::clone(slot);
    let send = send.clone();
    std::thread::Builder::new()
        .name("mfa-pg-connect".into())
        .spawn(move || {
            let result = match tls {
                Some(tls) => config.connect(tls),
                None => config.connect(postgres::NoTls),
            };
            let mut state = lock(&slot);
            if *state == Slot::Abandoned {
                drop(state);
                unhang(&key);
                // (Nobody listens any more: a connection made this late is dropped.)
                return;
            }
            *state = Slot::Delivered;
            let _ = send.send((i, result));
        })
        .map(|_| ())
}

/// Gives up on the attempts still `running` (each then counts in [`HANGING`] until its
/// thread ends). Returns a connection one of them delivered meanwhile, if any (the others
/// are dropped).
fn abandon(
    running: Vec<(usize, Arc<Mutex<Slot>>, Instant)>,
    targets: &[Target],
    recv: &std::sync::mpsc::Receiver<Answer>,
) -> Option<postgres::Client> {
    for (i, slot, _) in running {
        let mut state = lock(&slot);
        if *state == Slot::Running {
            *state = Slot::Abandoned;
            *lock(&HANGING).entry(targets[i].key.clone()).or_insert(0) += 1;
        }
    }
    let mut won = None;
    while let Ok((_, r)) = recv.try_recv() {
        if let (None, Ok(client)) = (&won, r) {
            won = Some(client);
        }
    }
    won
}

/// How many abandoned attempts to `key` still wait.
fn hanging(key: &str) -> usize {
    lock(&HANGING).get(key).copied().unwrap_or(0)
}

/// An abandoned attempt to `key` ended.
fn unhang(key: &str) {
    let mut h = lock(&HANGING);
    if let Some(n) = h.get_mut(key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            h.remove(key);
        }
    }
}

/// `m` locked, even if a thread panicked holding it (the data stays consistent).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The error of a connection that failed: with one host, what it answered (as ever);
/// with several, each host and what became of it.
fn failure_message(shown: &str, targets: &[Target], outcome: &[Outcome]) -> String {
    if let ([_], [o]) = (targets, outcome) {
        let why = match o {
            Outcome::Failed(why) => why.clone(),
            Outcome::NoAnswer(waited) => format!(
                "no answer within {} (is the server up and reachable? store.url)",
                seconds(*waited)
            ),
            Outcome::Skipped => format!(
                "{MAX_HANGING} earlier attempts still wait for the server's answer (it \
                 accepts connections but does not answer)"
            ),
            Outcome::NotTried => "no time left to try it".to_string(),
        };
        return format!("cannot connect to {shown}: {why}");
    }
    let tried = outcome
        .iter()
        .filter(|o| !matches!(o, Outcome::NotTried))
        .count();
    let each: Vec<String> = targets
        .iter()
        .zip(outcome)
        .map(|(t, o)| {
            let why = match o {
                Outcome::Failed(why) if why.contains("database does not allow writes") => {
                    format!(
                        "{why} (a read-only standby; the URL asks for \
                         target_session_attrs=read-write)"
                    )
                }
                Outcome::Failed(why) => why.clone(),
                Outcome::NoAnswer(waited) => format!(
                    "no answer within {} (it accepts connections but does not answer, or \
                     is unreachable)",
                    seconds(*waited)
                ),
                Outcome::Skipped => format!(
                    "skipped: {MAX_HANGING} earlier attempts still wait for its answer (it \
                     accepts connections but does not answer)"
                ),
                Outcome::NotTried => "not tried: no time left".to_string(),
            };
            format!("{}: {why}", t.name)
        })
        .collect();
    format!(
        "cannot connect to {shown}: none of its {} hosts could be used ({tried} tried); {}",
        targets.len(),
        each.join("; ")
    )
}

/// `d` in seconds as people write it: `1s`, `2.5s`.
fn seconds(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths.is_multiple_of(10) {
        format!("{}s", tenths / 10)
    } else {
        format!("{}.{}s", tenths / 10, tenths % 10)
    }
}

/// The hosts of `config` (one per host, or per `hostaddr` when the URL names none), in the
/// order to try them, each with the settings to reach it alone. Refuses a URL whose hosts,
/// addresses and ports do not pair up (as libpq does).
fn targets(config: &postgres::Config) -> Result<Vec<Target>> {
    let (hosts, addrs, ports) = (
        config.get_hosts(),
        config.get_hostaddrs(),
        config.get_ports(),
    );
    let n = hosts.len().max(addrs.len());
    if n == 0 {
        return Err(Error::Config(
            "store.url names no host; write it as \"postgresql://USER@HOST:PORT/DATABASE\""
                .to_string(),
        ));
    }
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(Error::Config(format!(
            "store.url names {} hosts and {} hostaddrs: give one hostaddr per host, or none",
            hosts.len(),
            addrs.len()
        )));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(Error::Config(format!(
            "store.url names {n} hosts and {} ports: give one port per host, or one for all",
            ports.len()
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    if config.get_load_balance_hosts() == LoadBalanceHosts::Random {
        let random = std::collections::hash_map::RandomState::new();
        for i in (1..n).rev() {
            let j = (random.hash_one(i) % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    Ok(order
        .into_iter()
        .map(|i| {
            let mut c = without_hosts(config);
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            c.port(port);
            let host = match hosts.get(i) {
                Some(Host::Tcp(h)) => {
                    c.host(h);
                    Some(h.clone())
                }
                Some(Host::Unix(p)) => {
                    c.host_path(p);
                    Some(p.display().to_string())
                }
                None => None,
            };
            let addr = addrs.get(i).map(|a| {
                c.hostaddr(*a);
                a.to_string()
            });
            // host:port, [v6]:port.
            let at = |h: &str| {
                if h.contains(':') && !h.starts_with('[') {
                    format!("[{h}]:{port}")
                } else {
                    format!("{h}:{port}")
                }
            };
            let (name, key) = match (host, addr) {
                (Some(h), Some(a)) => (format!("{} ({a})", at(&h)), at(&a)),
                (Some(h), None) => (at(&h), at(&h)),
                (None, Some(a)) => (at(&a), at(&a)),
                (None, None) => (at(""), at("")), // (n counts hosts or addresses)
            };
            Target {
                config: c,
                name,
                key,
            }
        })
        .collect())
}

/// A copy of `config` without its hosts, host addresses and ports: every other setting
/// (user, password, database, options, TLS mode and negotiation, timeouts, keepalives,
/// `target_session_attrs`, channel binding, load balancing).
fn without_hosts(config: &postgres::Config) -> postgres::Config {
    let mut c = postgres::Config::new();
    if let Some(u) = config.get_user() {
        c.user(u);
    }
    if let Some(p) = config.get_password() {
        c.password(p);
    }
    if let Some(d) = config.get_dbname() {
        c.dbname(d);
    }
    if let Some(o) = config.get_options() {
        c.options(o);
    }
    if let Some(a) = config.get_application_name() {
        c.application_name(a);
    }
    c.ssl_mode(config.get_ssl_mode());
    c.ssl_negotiation(config.get_ssl_negotiation());
    if let Some(t) = config.get_connect_timeout() {
        c.connect_timeout(*t);
    }
    if let Some(t) = config.get_tcp_user_timeout() {
        c.tcp_user_timeout(*t);
    }
    c.keepalives(config.get_keepalives());
    c.keepalives_idle(config.get_keepalives_idle());
    if let Some(i) = config.get_keepalives_interval() {
        c.keepalives_interval(i);
    }
    if let Some(r) = config.get_keepalives_retries() {
        c.keepalives_retries(r);
    }
    c.target_session_attrs(config.get_target_session_attrs());
    c.channel_binding(config.get_channel_binding());
    c.load_balance_hosts(config.get_load_balance_hosts());
    c
}

/// The connection settings and TLS connector of `cfg`, and the URL to show in messages;
/// every check that needs no network (URL, password file, CA file, local-only rule).
fn prepare(
    cfg: &StoreConfig,
    timeout: Duration,
) -> Result<(
    postgres::Config,
    Option<tokio_postgres_rustls::MakeRustlsConnect>,
    String,
)> {
    let Some(url) = cfg.url.as_deref() else {
        return Err(Error::Config(
            "store.url is not set; write it as \"postgresql://USER@HOST:PORT/DATABASE\""
                .to_string(),
        ));
    };
    check_url(url).map_err(Error::Config)?;
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| {
        Error::Config(format!(
            "store.url = {url:?} is not a valid PostgreSQL URL ({}); write it as \
             \"postgresql://USER@HOST:PORT/DATABASE\"",
            describe(&e)
        ))
    })?;
    if config.get_password().is_some() {
        return Err(Error::Config(
            "store.url holds a password; remove it and put it in store.password_file (a file \
             readable by root alone)"
                .to_string(),
        ));
    }
    let shown = url.to_string();
    let tls = match &cfg.ca_file {
        Some(ca) => {
            config.ssl_mode(SslMode::Require);
            Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                ca,
            )?))
        }
        None => {
            if let Some(remote) = remote_host(&config) {
                return Err(Error::Config(format!(
                    "store.url names {remote}: a server off this machine needs store.ca_file \
                     (TLS)"
                )));
            }
            config.ssl_mode(SslMode::Disable);
            None
        }
    };
    if let Some(file) = &cfg.password_file {
        let password = read_password_file(file)?;
        config.password(password.as_slice());
    }
    config.application_name(&format!("mfa-{}", cfg.host_name()));
    let mut options = config.get_options().unwrap_or("").to_string();
    if !options.is_empty() {
        options.push(' ');
    }
    options.push_str(&format!(
        "-c statement_timeout={STATEMENT_TIMEOUT} \
         -c idle_in_transaction_session_timeout={STATEMENT_TIMEOUT}"
    ));
    config.options(&options);
    config.connect_timeout(timeout);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.keepalives_interval(Duration::from_secs(10));
    config.keepalives_retries(3);
    config.tcp_user_timeout(Duration::from_secs(30));
    Ok((config, tls, shown))
}

/// The first host (or host address) of `config` that is not on this machine.
fn remote_host(config: &postgres::Config) -> Option<String> {
    let local_ip = |ip: &IpAddr| ip.to_canonical().is_loopback();
    for h in config.get_hosts() {
        match h {
            Host::Unix(_) => {}
            Host::Tcp(name) => {
                let name = name.trim_start_matches('[').trim_end_matches(']');
                let local = match name.parse::<IpAddr>() {
                    Ok(ip) => local_ip(&ip),
                    Err(_) => name.eq_ignore_ascii_case("localhost"),
                };
                if !local {
                    return Some(name.to_string());
                }
            }
        }
    }
    config
        .get_hostaddrs()
        .iter()
        .find(|ip| !local_ip(ip))
        .map(|ip| ip.to_string())
}

/// The password: the first line of `file`, which must be a regular file (not a symbolic
/// link) owned by root or this user, with no group or other permission bits.
pub fn read_password_file(file: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let shown = file.display();
    let fix = format!("chmod 0600 {shown}; chown root {shown}");
    let flags = nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK;
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(Error::Insecure(format!(
                "store.password_file {shown} is a symbolic link: name the file itself, a \
                 regular file readable by root alone ({fix})"
            )));
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "store.password_file {shown} cannot be read: {e}"
            )));
        }
    };
    let meta = f.metadata().map_err(|e| Error::io(file, e))?;
    if !meta.file_type().is_file() {
        return Err(Error::Insecure(format!(
            "store.password_file {shown} is not a regular file: write the password into a \
             file readable by root alone ({fix})"
        )));
    }
    let me = nix::unistd::geteuid().as_raw();
    if (meta.uid() != 0 && meta.uid() != me) || meta.mode() & 0o077 != 0 {
        return Err(Error::Insecure(format!(
            "store.password_file {shown} has mode {:04o} and owner uid {}: it must be \
             readable by root alone; fix: {fix}",
            meta.mode() & 0o7777,
            meta.uid()
        )));
    }
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSWORD_FILE + 1]);
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(file, e)),
        }
    }
    let line_end = buf[..n].iter().position(|&b| b == b'\n');
    let Some(end) = line_end.or((n <= MAX_PASSWORD_FILE).then_some(n)) else {
        return Err(Error::Config(format!(
            "store.password_file {shown}: the first line is longer than \
             {MAX_PASSWORD_FILE} bytes; it must hold the password alone"
        )));
    };
    let end = if end > 0 && buf[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    if end == 0 {
        return Err(Error::Config(format!(
            "store.password_file {shown}: the first line is empty; write the role's password \
             on it"
        )));
    }
    Ok(Zeroizing::new(buf[..end].to_vec()))
}

/// A rustls client configuration (ring) whose only trust roots are the PEM certificates
/// in `ca`.
pub fn tls_config(ca: &Path) -> Result<rustls::ClientConfig> {
    let shown = ca.display();
    let f = File::open(ca)
        .map_err(|e| Error::Config(format!("store.ca_file {shown} cannot be read: {e}")))?;
    let mut pem = Vec::new();
    f.take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| Error::io(ca, e))?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(Error::Config(format!(
            "store.ca_file {shown} is larger than 1 MiB; it must hold the CA certificate(s) \
             (PEM) that the server's certificate chains to"
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| {
            Error::Config(format!(
                "store.ca_file {shown}: certificate {} is not valid PEM ({}); the file must \
                 hold the CA certificate(s) in PEM",
                i + 1,
                pem_problem(&e)
            ))
        })?;
        roots.add(cert).map_err(|e| {
            Error::Config(format!(
                "store.ca_file {shown}: certificate {} is not a usable certificate: {e}",
                i + 1
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "store.ca_file {shown} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"); \
             it must hold the CA certificate(s) the server's certificate chains to"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// A PEM parse error without the file's bytes in it.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a section has no END line".to_string(),
        E::IllegalSectionStart { .. } => "a BEGIN line is malformed".to_string(),
        E::Base64Decode(_) => "bad base64".to_string(),
        E::SectionTooLarge => "a section is too large".to_string(),
        other => other.to_string(),
    }
}

/// A PostgreSQL client error as one line: the server's message and SQLSTATE when the
/// server sent one, else what failed and why (TLS, network), every cause included.
pub fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(d) = db.detail() {
            s += &format!(" ({d})");
        }
        if let Some(h) = db.hint() {
            s += &format!("; hint: {h}");
        }
        s += &format!(" [SQLSTATE {}]", db.code().code());
        return s.replace('\n', " ");
    }
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s += &format!(": {text}");
        }
        cause = c.source();
    }
    s.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> StoreConfig {
        StoreConfig {
            backend: mfa_core::store_config::Backend::Postgres,
            url: Some(url.to_string()),
            ..StoreConfig::default()
        }
    }

    fn remote(url: &str) -> Option<String> {
        remote_host(&url.parse().expect("url"))
    }

    #[test]
    fn local_hosts() {
        assert_eq!(remote("postgresql://mfa@127.0.0.1:5432/mfa"), None);
        assert_eq!(remote("postgresql://mfa@127.9.8.7/mfa"), None);
        assert_eq!(remote("postgresql://mfa@localhost/mfa"), None);
        assert_eq!(remote("postgresql://mfa@[::1]:5432/mfa"), None);
        assert_eq!(remote("postgresql://mfa@%2Frun%2Fpostgresql/mfa"), None);
        assert_eq!(
            remote("postgresql://mfa@db.example.com/mfa").as_deref(),
            Some("db.example.com")
        );
        assert_eq!(
            remote("postgresql://mfa@127.0.0.1,10.0.0.5/mfa").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            remote("postgresql://mfa@localhost/mfa?hostaddr=192.0.2.1").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            remote("postgresql://mfa@localhost.evil.example/mfa").as_deref(),
            Some("localhost.evil.example")
        );
    }

    #[test]
    fn refused_before_any_network() {
        let e = prepare(&cfg("postgresql://mfa@db.example.com/mfa"), DEFAULT_TIMEOUT)
            .err()
            .expect("remote without CA");
        assert!(
            e.to_string()
                .contains("store.url names db.example.com: a server off this machine needs store.ca_file (TLS)"),
            "{e}"
        );
        let e = prepare(
            &cfg("postgresql://mfa:hunter2@127.0.0.1/mfa"),
            DEFAULT_TIMEOUT,
        )
        .err()
        .expect("password in URL");
        assert!(e.to_string().contains("password_file"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = prepare(
            &cfg("postgresql://127.0.0.1/mfa?user=mfa&password=hunter2"),
            DEFAULT_TIMEOUT,
        )
        .err()
        .expect("password parameter");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = prepare(
            &cfg("postgresql://mfa@127.0.0.1:notaport/mfa"),
            DEFAULT_TIMEOUT,
        )
        .err()
        .expect("bad port");
        assert!(e.to_string().contains("not a valid PostgreSQL URL"), "{e}");
    }

    #[test]
    fn options_and_name() {
        let mut c = cfg("postgresql://mfa@127.0.0.1/mfa?options=-c%20search_path%3Dmfa");
        c.host = Some("web-1".into());
        let (config, tls, _) = prepare(&c, DEFAULT_TIMEOUT).expect("prepare");
        assert!(tls.is_none());
        assert_eq!(config.get_application_name(), Some("mfa-web-1"));
        let o = config.get_options().expect("options");
        assert!(o.starts_with("-c search_path=mfa "), "{o}");
        assert!(o.contains("statement_timeout=30s"), "{o}");
        assert_eq!(config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(config.get_connect_timeout(), Some(&DEFAULT_TIMEOUT));
    }

    #[test]
    fn one_host_alone_keeps_every_other_setting() {
        let url = "postgresql://mfa@127.0.0.1:5433/mfa?target_session_attrs=read-write\
                   &sslnegotiation=direct&channel_binding=require&connect_timeout=7\
                   &keepalives_idle=9&keepalives=0&options=-c%20a%3Db&application_name=x\
                   &tcp_user_timeout=11";
        let mut whole: postgres::Config = url.parse().expect("url");
        whole
            .password("pw")
            .keepalives_retries(5)
            .keepalives_interval(DEFAULT_TIMEOUT);
        let t = targets(&whole).expect("targets");
        assert_eq!(t.len(), 1);
        // (Debug shows every setting but the TLS negotiation, compared apart.)
        assert_eq!(format!("{:?}", t[0].config), format!("{whole:?}"));
        assert_eq!(t[0].config.get_password(), Some(&b"pw"[..]));
        assert_eq!(
            t[0].config.get_ssl_negotiation(),
            whole.get_ssl_negotiation()
        );
        assert_ne!(
            whole.get_ssl_negotiation(),
            postgres::Config::new().get_ssl_negotiation(),
            "the URL's sslnegotiation was not taken"
        );
        assert_eq!(
            (t[0].name.as_str(), t[0].key.as_str()),
            ("127.0.0.1:5433", "127.0.0.1:5433")
        );
    }

    #[test]
    fn several_hosts_each_alone() {
        let c = "postgresql://mfa@db1:5432,db2:5433/mfa?hostaddr=127.0.0.1,127.0.0.2\
                 &target_session_attrs=read-write"
            .parse()
            .expect("url");
        let t = targets(&c).expect("targets");
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["db1:5432 (127.0.0.1)", "db2:5433 (127.0.0.2)"]);
        assert_eq!(t[1].key, "127.0.0.2:5433");
        for (t, (host, addr, port)) in t
            .iter()
            .zip([("db1", "127.0.0.1", 5432), ("db2", "127.0.0.2", 5433)])
        {
            assert_eq!(t.config.get_hosts(), [Host::Tcp(host.to_string())]);
            assert_eq!(t.config.get_hostaddrs(), [addr.parse::<IpAddr>().unwrap()]);
            assert_eq!(t.config.get_ports(), [port]);
            assert_eq!(
                t.config.get_target_session_attrs(),
                postgres::config::TargetSessionAttrs::ReadWrite
            );
        }
        // One port for all; IPv6 shown in brackets; a unix-socket directory.
        let c = "host=::1,/run/pg port=6000 user=mfa"
            .parse()
            .expect("key=value");
        let names: Vec<String> = targets(&c).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["[::1]:6000", "/run/pg:6000"]);
        // Random order: every host once.
        let c = "postgresql://mfa@a,b,c,d/mfa?load_balance_hosts=random"
            .parse()
            .expect("url");
        let mut names: Vec<String> = targets(&c).unwrap().into_iter().map(|t| t.name).collect();
        names.sort();
        assert_eq!(names, ["a:5432", "b:5432", "c:5432", "d:5432"]);
    }

    #[test]
    fn hosts_addresses_and_ports_must_pair_up() {
        for (url, want) in [
            (
                "postgresql://mfa@a,b/mfa?hostaddr=127.0.0.1",
                "names 2 hosts and 1 hostaddrs",
            ),
            (
                "postgresql://mfa@a:1,b:2,c:3/mfa?port=4",
                "names 3 hosts and 4 ports",
            ),
        ] {
            let c: postgres::Config = url.parse().expect(url);
            match targets(&c) {
                Err(Error::Config(m)) => assert!(m.contains(want), "{url}: {m}"),
                Err(e) => panic!("{url}: {e:?}"),
                Ok(t) => panic!("{url}: {} targets", t.len()),
            }
        }
    }

    #[test]
    fn seconds_as_written() {
        assert_eq!(seconds(Duration::from_secs(1)), "1s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5s");
        assert_eq!(seconds(Duration::from_millis(2499)), "2.5s");
        assert_eq!(seconds(Duration::from_millis(960)), "1s");
        assert_eq!(seconds(Duration::from_millis(40)), "0s");
    }
}
