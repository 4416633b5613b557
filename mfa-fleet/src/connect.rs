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
//!   (5 s by default); the connection then has TCP keepalives and a user timeout (a dead
//!   peer is noticed within about a minute) and the server ends any statement after 30 s.
//! - Errors say which server (the URL, which holds no secret) and what it answered (the
//!   server's message and SQLSTATE, or the TLS or network problem); never the password.

use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mfa_core::store_config::{StoreConfig, check_url};
use mfa_core::{Error, Result};
use postgres::config::{Host, SslMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use zeroize::Zeroizing;

/// How long a connection may take (TCP, TLS and authentication together) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The server ends any statement of ours that runs longer (`statement_timeout`), and any
/// transaction left idle that long (`idle_in_transaction_session_timeout`).
pub const STATEMENT_TIMEOUT: &str = "30s";

/// Connection attempts whose deadline passed but which still wait for the server (a server
/// that accepts connections and never answers); beyond [`MAX_HANGING`] new attempts fail
/// at once instead of adding threads.
static HANGING: AtomicUsize = AtomicUsize::new(0);
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
pub fn connect_with(cfg: &StoreConfig, timeout: Duration) -> Result<postgres::Client> {
    let (config, tls, shown) = prepare(cfg, timeout)?;
    if HANGING.load(Ordering::SeqCst) >= MAX_HANGING {
        return Err(Error::Central(format!(
            "cannot connect to {shown}: {MAX_HANGING} earlier attempts still wait for the \
             server's answer (it accepts connections but does not answer)"
        )));
    }
    let (send, recv) = std::sync::mpsc::sync_channel(1);
    // Set (under its lock) when the deadline passes; the worker then counts itself out.
    let abandoned = Arc::new(std::sync::Mutex::new(false));
    let flag = Arc::clone(&abandoned);
    let worker = std::thread::Builder::new()
        .name("mfa-pg-connect".into())
        .spawn(move || {
            let result = match tls {
                Some(tls) => config.connect(tls),
                None => config.connect(postgres::NoTls),
            };
            if *flag.lock().unwrap_or_else(|p| p.into_inner()) {
                HANGING.fetch_sub(1, Ordering::SeqCst);
            }
            // (After the deadline nobody listens: the connection is dropped here.)
            let _ = send.send(result);
        });
    if let Err(e) = worker {
        return Err(Error::Central(format!(
            "cannot connect to {shown}: cannot start a thread: {e}"
        )));
    }
    match recv.recv_timeout(timeout) {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::Central(format!(
            "cannot connect to {shown}: {}",
            describe(&e)
        ))),
        Err(_) => {
            let mut gone = abandoned.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(r) = recv.try_recv() {
                drop(gone);
                return r.map_err(|e| {
                    Error::Central(format!("cannot connect to {shown}: {}", describe(&e)))
                });
            }
            *gone = true;
            HANGING.fetch_add(1, Ordering::SeqCst);
            Err(Error::Central(format!(
                "cannot connect to {shown}: no answer within {}s (is the server up and \
             reachable? store.url)",
                timeout.as_secs_f64()
            )))
        }
    }
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
}
