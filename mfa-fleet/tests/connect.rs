//! `mfa_fleet::connect` against a real throwaway PostgreSQL (tests/support/pg.rs): TLS with
//! the right and a wrong CA, the server's name, passwords right and wrong, password files
//! that are not root's alone, remote servers without TLS, a stopped server and a server
//! that never answers (the deadline), hostile CA files and URLs; URLs naming several hosts
//! whose first ones hang (each host gets its share of the deadline) or are read-only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/pg.rs"]
mod pg;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mfa_core::Error;
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_fleet::connect::{self, connect, connect_with};
use pg::Pg;

fn store(url: &str, password_file: Option<PathBuf>, ca: Option<PathBuf>) -> StoreConfig {
    StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file,
        ca_file: ca,
        host: Some("test-host".to_string()),
        ..StoreConfig::default()
    }
}

/// A root-only (0600) file holding `text`.
fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn err(r: mfa_core::Result<postgres::Client>) -> Error {
    match r {
        Ok(_) => panic!("connected, but the connection had to be refused"),
        Err(e) => e,
    }
}

/// A listener nobody answers on; `accepted()` says whether anyone connected.
struct Silent(TcpListener);

impl Silent {
    fn new() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Silent(l)
    }
    fn url(&self) -> String {
        format!(
            "postgresql://mfa@127.0.0.1:{}/mfa",
            self.0.local_addr().unwrap().port()
        )
    }
    fn accepted(&self) -> bool {
        self.0.accept().is_ok()
    }
}

/// A "server" that accepts connections and never answers (a hung primary): a thread
/// accepts and holds every socket until this is dropped.
struct Hung {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hung {
    fn new() -> Hung {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let held: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((sock, _)) => {
                        held.lock().unwrap().push(sock);
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hung {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
    /// `host:port` as the URL names it (and as errors name it).
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn tls_with_the_ca_connects_and_sets_the_session_up() {
    let pg = Pg::shared();
    let mut c = connect(&store(
        &pg.url(),
        Some(pg.password_file()),
        Some(pg.ca_file()),
    ))
    .expect("TLS connection with the CA");
    let row = c
        .query_one(
            "SELECT s.ssl, current_setting('application_name'), \
                    current_setting('statement_timeout'), current_user \
             FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0), "the session is not TLS");
    assert_eq!(row.get::<_, String>(1), "mfa-test-host");
    assert_eq!(row.get::<_, String>(2), "30s");
    assert_eq!(row.get::<_, String>(3), "mfa");
}

#[test]
fn local_server_without_ca_is_plain_text() {
    let pg = Pg::shared();
    let mut c = connect(&store(&pg.url(), Some(pg.password_file()), None)).expect("connect");
    let ssl: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!ssl);
    // localhost is this machine too.
    let url = format!("postgresql://mfa@localhost:{}/mfa", pg.port());
    connect(&store(&url, Some(pg.password_file()), None)).expect("localhost");
}

#[test]
fn tls_with_a_wrong_ca_is_refused() {
    let pg = Pg::shared();
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = pg::make_ca(dir.path(), "other-ca");
    let e = err(connect(&store(
        &pg.url(),
        Some(pg.password_file()),
        Some(other_ca),
    )));
    let m = e.to_string();
    assert!(matches!(e, Error::Central(_)), "{e:?}");
    assert!(
        m.starts_with("central store: cannot connect to postgresql://mfa@127.0.0.1:"),
        "{m}"
    );
    assert!(m.contains("TLS handshake: invalid peer certificate"), "{m}");
    assert!(m.contains("UnknownIssuer"), "{m}");
    assert!(!m.contains(pg.password()), "{m}");
}

#[test]
fn tls_checks_the_servers_name() {
    let pg = Pg::shared();
    // The certificate names 127.0.0.1 and localhost, not db.example.com (reached at
    // 127.0.0.1 through hostaddr).
    let url = format!(
        "postgresql://mfa@db.example.com:{}/mfa?hostaddr=127.0.0.1",
        pg.port()
    );
    let m = err(connect(&store(
        &url,
        Some(pg.password_file()),
        Some(pg.ca_file()),
    )))
    .to_string();
    assert!(
        m.contains("certificate not valid for name \"db.example.com\""),
        "{m}"
    );
    // By its other name it is fine.
    let url = format!("postgresql://mfa@localhost:{}/mfa", pg.port());
    connect(&store(&url, Some(pg.password_file()), Some(pg.ca_file()))).expect("localhost");
}

#[test]
fn wrong_password_is_refused_without_showing_it() {
    let pg = Pg::shared();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "Wr0ng-pa55word-xyz";
    let file = secret_file(dir.path(), "pw", &format!("{wrong}\n"));
    for ca in [None, Some(pg.ca_file())] {
        let e = err(connect(&store(&pg.url(), Some(file.clone()), ca)));
        let m = e.to_string();
        assert!(matches!(e, Error::Central(_)), "{e:?}");
        assert!(
            m.contains("password authentication failed for user \"mfa\""),
            "{m}"
        );
        assert!(m.contains("28P01"), "{m}");
        assert!(!m.contains(wrong) && !m.contains(pg.password()), "{m}");
    }
    // No password file at all: the server asks for one.
    let m = err(connect(&store(&pg.url(), None, None))).to_string();
    assert!(m.contains("password"), "{m}");
}

#[test]
fn password_file_crlf_and_trailing_lines() {
    let pg = Pg::shared();
    let dir = tempfile::tempdir().unwrap();
    let file = secret_file(
        dir.path(),
        "pw",
        &format!("{}\r\nsecond line\n", pg.password()),
    );
    connect(&store(&pg.url(), Some(file), None)).expect("first line, CR trimmed");
    let file = secret_file(dir.path(), "pw2", pg.password());
    connect(&store(&pg.url(), Some(file), None)).expect("no newline at all");
}

#[test]
fn insecure_password_files_are_refused_before_any_network() {
    let silent = Silent::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = secret_file(d, "good", "secret\n");

    let open = secret_file(d, "open", "secret\n");
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let e = err(connect(&store(&silent.url(), Some(open.clone()), None)));
    let m = e.to_string();
    assert!(matches!(e, Error::Insecure(_)), "{e:?}");
    assert!(
        m.contains(&open.display().to_string()) && m.contains("mode 0644"),
        "{m}"
    );
    assert!(
        m.contains(&format!("chmod 0600 {0}; chown root {0}", open.display())),
        "{m}"
    );

    let group = secret_file(d, "group", "secret\n");
    fs::set_permissions(&group, fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        err(connect(&store(&silent.url(), Some(group), None))),
        Error::Insecure(_)
    ));

    let link = d.join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let e = err(connect(&store(&silent.url(), Some(link.clone()), None)));
    assert!(matches!(e, Error::Insecure(_)), "{e:?}");
    assert!(e.to_string().contains("symbolic link"), "{e}");

    let theirs = secret_file(d, "theirs", "secret\n");
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let e = err(connect(&store(&silent.url(), Some(theirs), None)));
    assert!(matches!(e, Error::Insecure(_)), "{e:?}");
    assert!(e.to_string().contains("owner uid 65534"), "{e}");

    // A FIFO (reading it would wait for a writer) and a directory: not regular files.
    let fifo = d.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let t = Instant::now();
    let e = err(connect(&store(&silent.url(), Some(fifo), None)));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let sub = d.join("sub");
    fs::create_dir(&sub).unwrap();
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        err(connect(&store(&silent.url(), Some(sub), None)))
            .to_string()
            .contains("not a regular file")
    );

    let empty = secret_file(d, "empty", "\nsecret\n");
    let m = err(connect(&store(&silent.url(), Some(empty), None))).to_string();
    assert!(m.contains("first line is empty"), "{m}");
    let long = secret_file(d, "long", &"x".repeat(5000));
    let m = err(connect(&store(&silent.url(), Some(long), None))).to_string();
    assert!(m.contains("longer than 4096 bytes"), "{m}");
    assert!(!m.contains("xxxx"), "{m}");
    let missing = err(connect(&store(&silent.url(), Some(d.join("nope")), None))).to_string();
    assert!(
        missing.contains("nope") && missing.contains("cannot be read"),
        "{missing}"
    );

    assert!(
        !silent.accepted(),
        "a connection was attempted despite the refusal"
    );
}

#[test]
fn remote_server_without_ca_is_refused_before_any_network() {
    let t = Instant::now();
    for (url, host) in [
        ("postgresql://mfa@192.0.2.1:5432/mfa", "192.0.2.1"),
        ("postgresql://mfa@db.example.com/mfa", "db.example.com"),
        (
            "postgresql://mfa@localhost.example.com/mfa",
            "localhost.example.com",
        ),
        ("postgresql://mfa@127.0.0.1,10.1.2.3/mfa", "10.1.2.3"),
    ] {
        let e = err(connect(&store(url, None, None)));
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            format!("store.url names {host}: a server off this machine needs store.ca_file (TLS)")
        );
    }
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn stopped_or_killed_server_fails_within_the_timeout() {
    let mut pg = Pg::start();
    let cfg = store(&pg.url(), Some(pg.password_file()), Some(pg.ca_file()));
    connect(&cfg).expect("up");
    let timeout = Duration::from_secs(2);
    pg.stop();
    let t = Instant::now();
    let m = err(connect_with(&cfg, timeout)).to_string();
    let took = t.elapsed();
    eprintln!("stopped server: refused after {took:?}: {m}");
    assert!(took < timeout + Duration::from_secs(2), "{took:?}");
    assert!(
        m.starts_with(&format!("central store: cannot connect to {}", pg.url())),
        "{m}"
    );
    assert!(m.contains("Connection refused"), "{m}");
    pg.start_again();
    let mut c = connect(&cfg).expect("up again");
    pg.kill();
    // The open connection sees the crash; a new one is refused in time.
    assert!(c.simple_query("SELECT 1").is_err());
    let t = Instant::now();
    assert!(connect_with(&cfg, timeout).is_err());
    assert!(t.elapsed() < timeout + Duration::from_secs(2));
    pg.start_again();
    connect(&cfg).expect("up after the crash");
}

#[test]
fn server_that_never_answers_fails_at_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(dir.path(), "pw", "secret\n");
    let silent = Silent::new();
    let timeout = Duration::from_secs(1);
    for ca in [None, Some(Pg::shared().ca_file())] {
        let t = Instant::now();
        let m = err(connect_with(
            &store(&silent.url(), Some(pw.clone()), ca),
            timeout,
        ))
        .to_string();
        let took = t.elapsed();
        eprintln!("silent server: gave up after {took:?}: {m}");
        assert!(took >= timeout, "{took:?}");
        assert!(took < timeout + Duration::from_secs(2), "{took:?}");
        assert!(m.contains("no answer within 1s"), "{m}");
    }
}

#[test]
fn hostile_ca_files_are_refused_naming_the_file() {
    let pg = Pg::shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut random = vec![0u8; 4096];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("random.pem", random, "holds no PEM certificate"),
        ("empty.pem", Vec::new(), "holds no PEM certificate"),
        (
            "key-only.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            "holds no PEM certificate",
        ),
        (
            "bad-base64.pem",
            b"-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n".to_vec(),
            "not valid PEM",
        ),
        (
            "unterminated.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n".to_vec(),
            "not valid PEM",
        ),
        (
            "not-der.pem",
            b"-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n".to_vec(),
            "not a usable certificate",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = d.join(name);
        fs::write(&p, bytes).unwrap();
        let e = err(connect(&store(
            &pg.url(),
            Some(pg.password_file()),
            Some(p.clone()),
        )));
        let m = e.to_string();
        assert!(matches!(e, Error::Config(_)), "{name}: {e:?}");
        assert!(
            m.contains(&p.display().to_string()) && m.contains(want),
            "{name}: {m}"
        );
    }
    let m = err(connect(&store(&pg.url(), None, Some(d.join("absent.pem"))))).to_string();
    assert!(
        m.contains("absent.pem") && m.contains("cannot be read"),
        "{m}"
    );
}

#[test]
fn urls_with_passwords_are_refused() {
    let pg = Pg::shared();
    for url in [
        format!(
            "postgresql://mfa:{}@127.0.0.1:{}/mfa",
            pg.password(),
            pg.port()
        ),
        format!(
            "postgresql://mfa@127.0.0.1:{}/mfa?password={}",
            pg.port(),
            pg.password()
        ),
        format!("postgres://mfa:x@127.0.0.1:{}/mfa", pg.port()),
    ] {
        let e = err(connect(&store(&url, None, None)));
        let m = e.to_string();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(m.contains("store.password_file"), "{m}");
        assert!(!m.contains(pg.password()), "{m}");
    }
    for url in [
        "mysql://mfa@127.0.0.1/mfa",
        "host=127.0.0.1 user=mfa",
        "postgresql://mfa@127.0.0.1:99999/mfa",
    ] {
        let m = err(connect(&store(url, None, None))).to_string();
        assert!(m.contains("store.url"), "{url}: {m}");
    }
}

#[test]
fn a_first_host_that_hangs_does_not_keep_the_next_from_being_used() {
    let pg = Pg::shared();
    for tls in [false, true] {
        let hung = Hung::new();
        let url = format!(
            "postgresql://mfa@{},127.0.0.1:{}/mfa?target_session_attrs=read-write",
            hung.host(),
            pg.port()
        );
        let ca = tls.then(|| pg.ca_file());
        let t = Instant::now();
        let mut c = connect(&store(&url, Some(pg.password_file()), ca))
            .unwrap_or_else(|e| panic!("tls {tls}: not failed over past the hung host: {e}"));
        let took = t.elapsed();
        eprintln!("tls {tls}: past a hung first host to the live second in {took:?}");
        assert!(took < connect::DEFAULT_TIMEOUT, "tls {tls}: {took:?}");
        assert_eq!(
            hung.accepted(),
            1,
            "tls {tls}: the hung host was not tried first"
        );
        let row = c
            .query_one(
                "SELECT inet_server_port(), coalesce(s.ssl, false) FROM pg_stat_ssl s \
                 WHERE s.pid = pg_backend_pid()",
                &[],
            )
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i32::from(pg.port()));
        assert_eq!(row.get::<_, bool>(1), tls, "TLS as store.ca_file says");
    }
}

#[test]
fn hosts_that_all_hang_fail_at_the_deadline_naming_each() {
    let (one, two) = (Hung::new(), Hung::new());
    let dir = tempfile::tempdir().unwrap();
    let pw = secret_file(dir.path(), "pw", "secret\n");
    let url = format!("postgresql://mfa@{},{}/mfa", one.host(), two.host());
    let timeout = Duration::from_secs(2);
    let t = Instant::now();
    let m = err(connect_with(&store(&url, Some(pw), None), timeout)).to_string();
    let took = t.elapsed();
    eprintln!("two hung hosts: gave up after {took:?}: {m}");
    assert!(took >= timeout, "{took:?}");
    assert!(took < timeout + Duration::from_secs(1), "{took:?}");
    assert!(
        m.starts_with(&format!("central store: cannot connect to {url}: ")),
        "{m}"
    );
    // The first waited the whole deadline, the second from the end of the first's share.
    for (h, waited) in [(&one, "2s"), (&two, "1s")] {
        assert!(
            m.contains(&format!("{}: no answer within {waited}", h.host())),
            "{}: {m}",
            h.host()
        );
        assert_eq!(h.accepted(), 1, "{} was not tried", h.host());
    }
}

#[test]
fn a_read_only_server_is_passed_over_under_read_write() {
    let pg = Pg::shared();
    let db = pg::db_name(&pg.new_database());
    pg.psql_in(
        "postgres",
        &format!("ALTER DATABASE {db} SET default_transaction_read_only = on"),
    );
    let hung = Hung::new();
    let url = format!(
        "postgresql://mfa@{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
        hung.host(),
        pg.port()
    );
    let cfg = store(&url, Some(pg.password_file()), Some(pg.ca_file()));
    let timeout = Duration::from_secs(2);
    let t = Instant::now();
    let m = err(connect_with(&cfg, timeout)).to_string();
    let took = t.elapsed();
    eprintln!("hung, then read-only: refused after {took:?}: {m}");
    assert!(took < timeout + Duration::from_secs(1), "{took:?}");
    assert!(
        m.contains(&format!("{}: no answer within", hung.host())),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "127.0.0.1:{}: error connecting to server: database does not allow writes (a \
             read-only standby",
            pg.port()
        )),
        "{m}"
    );
    assert!(!m.contains(pg.password()), "{m}");
    // Without the attribute the read-only server will do.
    let url = url.replace("?target_session_attrs=read-write", "");
    let cfg = store(&url, Some(pg.password_file()), Some(pg.ca_file()));
    connect_with(&cfg, timeout).expect("read-only is fine without read-write");
}

#[test]
fn a_host_that_keeps_hanging_is_skipped_not_waited_for_again() {
    let pg = Pg::shared();
    let hung = Hung::new();
    let url = format!(
        "postgresql://mfa@{},127.0.0.1:{}/mfa",
        hung.host(),
        pg.port()
    );
    let cfg = store(&url, Some(pg.password_file()), None);
    let timeout = Duration::from_secs(2);
    // Each connection waits for the hung host's share and leaves an attempt hanging there.
    for i in 1..=4 {
        let t = Instant::now();
        connect_with(&cfg, timeout).unwrap_or_else(|e| panic!("attempt {i}: {e}"));
        assert!(t.elapsed() >= timeout / 2, "attempt {i}: {:?}", t.elapsed());
        assert_eq!(hung.accepted(), i, "attempt {i} did not try the hung host");
    }
    // With 4 attempts hanging there, the hung host is skipped: no wait for its share.
    let t = Instant::now();
    connect_with(&cfg, timeout).expect("past the skipped host");
    let took = t.elapsed();
    eprintln!("a host with 4 hanging attempts skipped: connected in {took:?}");
    assert_eq!(hung.accepted(), 4, "the hung host was tried a fifth time");
    assert!(took < timeout / 2, "{took:?}");
}
