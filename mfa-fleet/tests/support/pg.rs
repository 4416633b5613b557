//! A throwaway PostgreSQL server for tests (the newest one installed under
//! /usr/lib/postgresql/N/bin), as tests/installed/pgcluster.py starts one: `initdb` as user
//! `postgres` into a fresh 0700 directory, a server on 127.0.0.1 at a free port with its unix
//! socket in a directory of its own, TLS on (a CA and a server certificate made here with the
//! `openssl` command), and a role and database `mfa` whose password is in a root-only file.
//!
//! The server dies with the test process, even when that is killed: a watchdog (`sh`, root)
//! reads a pipe only this process holds; at its end (this process gone, or dropped the
//! `Pg`) it kills the server and removes the directory. The server runs under
//! `unshare --ipc`, so its System V segment goes with it too.
//!
//! A streaming-replication standby of a server ([`Pg::standby`]: `pg_basebackup -R -X
//! stream`, asynchronous) is another such server with its own directory and watchdog;
//! [`Pg::promote`] makes it a primary, and [`Pg::detach_standby`] / [`Pg::reattach_standby`]
//! make it miss the primary's next commits (a failover that loses them).
//!
//! Use it from another test crate with `#[path = "../../mfa-fleet/tests/support/pg.rs"] mod
//! pg;` (std, nix and tempfile only).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The user the server runs as (initdb refuses root).
const OWNER: &str = "postgres";

/// The watchdog: remembers the server's pid (one line each time it changes, "none" when
/// stopped); at end of input kills that server and removes the directory `$1`.
const WATCHDOG: &str = r#"trap '' INT TERM HUP PIPE
pid=none
while read -r line; do pid=$line; done
if [ "$pid" != none ]; then
    kill -KILL "$pid" 2>/dev/null
    i=0
    while [ -d "/proc/$pid" ] && [ $i -lt 100 ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
        sleep 0.1; i=$((i+1))
    done
fi
rm -rf -- "$1"
"#;

/// A running (or stopped) throwaway server; dropping it stops it and removes its files.
pub struct Pg {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    server: Option<Child>,
    watchdog: Option<(Child, ChildStdin)>,
    starts: u32,
    password: String,
}

/// The newest installed server's bin directory.
pub fn bindir() -> PathBuf {
    let mut best: Option<(u32, PathBuf)> = None;
    for e in fs::read_dir("/usr/lib/postgresql").expect(
        "PostgreSQL is not installed: apt-get install postgresql (the fleet tests start \
         their own throwaway server)",
    ) {
        let e = e.expect("read /usr/lib/postgresql");
        let bin = e.path().join("bin");
        let n: u32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if bin.join("postgres").exists() && best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, bin));
        }
    }
    best.expect("no /usr/lib/postgresql/N/bin/postgres: apt-get install postgresql")
        .1
}

fn owner_ids() -> (u32, u32) {
    let u = nix::unistd::User::from_name(OWNER)
        .expect("getpwnam")
        .expect("user postgres (apt-get install postgresql)");
    (u.uid.as_raw(), u.gid.as_raw())
}

/// argv run as user postgres with its groups.
fn as_owner(program: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", OWNER, "--regid", OWNER, "--init-groups", "--"])
        .arg(program);
    c
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn openssl(dir: &Path, args: &[&str]) {
    run(
        Command::new("openssl").args(args).current_dir(dir),
        &format!("openssl {}", args.join(" ")),
    );
}

/// A new CA in `dir`: (`dir/NAME.crt`, `dir/NAME.key`).
pub fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (format!("{name}.crt"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "3",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// A server certificate for 127.0.0.1 and localhost signed by the CA `ca` (from
/// [`make_ca`]): (`dir/NAME.crt`, `dir/NAME.key`).
pub fn make_server_cert(dir: &Path, ca: &(PathBuf, PathBuf), name: &str) -> (PathBuf, PathBuf) {
    let (crt, key, csr, ext) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            "/CN=localhost",
        ],
    );
    let (ca_crt, ca_key) = (ca.0.to_str().expect("utf-8"), ca.1.to_str().expect("utf-8"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca_crt,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "3",
            "-extfile",
            &ext,
        ],
    );
    (dir.join(crt), dir.join(key))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let mut f = fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut b).expect("read /dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl Pg {
    /// A new server with role and database `mfa` (password in [`Pg::password_file`]).
    pub fn start() -> Pg {
        let (uid, gid) = owner_ids();
        let mut pg = Pg::unstarted(random_hex(16));
        let dir = pg.dir.clone();
        // TLS: the CA (0644, root) and the server's certificate and key (postgres, 0600).
        let ca = make_ca(&dir, "ca");
        fs::set_permissions(&ca.0, fs::Permissions::from_mode(0o644)).expect("chmod ca");
        let tls = dir.join("tls");
        let server = make_server_cert(&tls, &ca, "server");
        fs::remove_file(&ca.1).expect("rm ca key");
        fs::set_permissions(&server.1, fs::Permissions::from_mode(0o600)).expect("chmod key");
        for sub in ["data", "sock", "tls", "tls/server.crt", "tls/server.key"] {
            chown(dir.join(sub), Some(uid), Some(gid)).expect("chown");
        }
        let pw = dir.join("password");
        fs::write(&pw, format!("{}\n", pg.password)).expect("write password file");
        fs::set_permissions(&pw, fs::Permissions::from_mode(0o600)).expect("chmod password");
        fs::write(
            tls.join("pg_hba.conf"),
            "local all postgres trust\n\
             local replication postgres trust\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
        chown(tls.join("pg_hba.conf"), Some(uid), Some(gid)).expect("chown hba");
        run(
            as_owner(&pg.bin.join("initdb"))
                .arg("-D")
                .arg(dir.join("data"))
                .args([
                    "-U",
                    OWNER,
                    "--auth=trust",
                    "--no-sync",
                    "--no-instructions",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ])
                .current_dir(&dir)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("LANG", "C.UTF-8")
                .env("HOME", &dir),
            "initdb as postgres",
        );
        pg.launch_on_a_free_port();
        pg.psql_in(
            "postgres",
            &format!(
                "CREATE ROLE mfa LOGIN PASSWORD '{}'; CREATE DATABASE mfa OWNER mfa;",
                pg.password
            ),
        );
        pg
    }

    /// A new server directory (0755, root) with empty `data`, `sock` and `tls` (0700,
    /// root: chown them) and its watchdog; no server yet.
    fn unstarted(password: String) -> Pg {
        let dir = tempfile::Builder::new()
            .prefix("mfa-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        // The watchdog first: from here on the directory goes when this process does.
        let mut wd = Command::new("sh")
            .args(["-c", WATCHDOG, "mfa-pg-watchdog"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .spawn()
            .expect("spawn the watchdog (sh)");
        let stdin = wd.stdin.take().expect("watchdog stdin");
        for sub in ["data", "sock", "tls"] {
            let p = dir.join(sub);
            fs::create_dir(&p).expect("mkdir");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        Pg {
            dir,
            bin: bindir(),
            port: 0,
            server: None,
            watchdog: Some((wd, stdin)),
            starts: 0,
            password,
        }
    }

    /// Starts the server on a free port (another tried when a process took the port first).
    fn launch_on_a_free_port(&mut self) {
        let mut last = String::new();
        for _ in 0..5 {
            self.port = free_port();
            match self.launch() {
                Ok(()) => return,
                Err(log) => last = log, // (another process took the port: try another)
            }
        }
        panic!("the PostgreSQL server did not start:\n{last}");
    }

    /// A hot standby of this (running) server: a new server directory with its own
    /// watchdog, its data a `pg_basebackup -R -X stream` of this server as user postgres
    /// over the unix socket (`standby.signal` and `primary_conninfo` written), the same TLS
    /// files, `pg_hba.conf` and password file, started on a free port. It streams this
    /// server's WAL asynchronously (the primary never waits for it), serves read-only
    /// queries ([`Pg::psql`]) and refuses writes until [`Pg::promote`].
    pub fn standby(&self) -> Pg {
        let (uid, gid) = owner_ids();
        let mut sb = Pg::unstarted(self.password.clone());
        let dir = sb.dir.clone();
        for (from, to, mode, postgres) in [
            ("ca.crt", "ca.crt", 0o644, false),
            ("password", "password", 0o600, false),
            ("tls/server.crt", "tls/server.crt", 0o644, true),
            ("tls/server.key", "tls/server.key", 0o600, true),
            ("tls/pg_hba.conf", "tls/pg_hba.conf", 0o644, true),
        ] {
            let to = dir.join(to);
            fs::copy(self.dir.join(from), &to).expect("copy a server file");
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).expect("chmod");
            if postgres {
                chown(&to, Some(uid), Some(gid)).expect("chown");
            }
        }
        for sub in ["data", "sock", "tls"] {
            chown(dir.join(sub), Some(uid), Some(gid)).expect("chown");
        }
        run(
            as_owner(&self.bin.join("pg_basebackup"))
                .arg("-D")
                .arg(dir.join("data"))
                .arg("-h")
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string(), "-U", OWNER])
                .args(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync", "-w"])
                .current_dir(&dir)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("LANG", "C.UTF-8")
                .env("HOME", &dir),
            "pg_basebackup as postgres",
        );
        assert!(
            dir.join("data/standby.signal").exists(),
            "pg_basebackup -R wrote no standby.signal"
        );
        sb.launch_on_a_free_port();
        sb
    }

    /// Waits until this standby has replayed everything `primary` has written so far (its
    /// WAL position now); panics after 30 s.
    pub fn catch_up(&self, primary: &Pg) {
        // (The insert position: with synchronous_commit=off a commit's record may still be
        // in the WAL buffers; the WAL writer sends it on within wal_writer_delay.)
        let lsn = primary.psql_in("postgres", "SELECT pg_current_wal_insert_lsn()");
        let sql = format!("SELECT coalesce(pg_last_wal_replay_lsn() >= '{lsn}', false)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.psql_in("postgres", &sql) != "t" {
            assert!(
                Instant::now() < deadline,
                "the standby did not replay the primary's WAL up to {lsn} within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts this standby off its primary: `primary_conninfo` emptied (`ALTER SYSTEM`,
    /// reloaded), so its WAL receiver ends and none starts again; returns once the receiver
    /// is gone and all it received is replayed. The primary's commits from then on never
    /// reach this server (what a failover to a standby that lagged loses), whatever they
    /// are. Returns the old `primary_conninfo` for [`Pg::reattach_standby`].
    ///
    /// (Stopping the receiver with SIGSTOP is not enough: the primary's WAL sender keeps
    /// writing into the socket until its buffer is full, and the receiver reads all of that
    /// when continued, even after the primary died.)
    pub fn detach_standby(&self) -> String {
        let conninfo = self.psql_in("postgres", "SHOW primary_conninfo");
        assert!(
            !conninfo.is_empty(),
            "detach_standby: not a standby (no primary_conninfo)"
        );
        self.psql_in(
            "postgres",
            "ALTER SYSTEM SET primary_conninfo = ''; SELECT pg_reload_conf();",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let gone = "SELECT count(*) = 0 FROM pg_stat_wal_receiver WHERE pid IS NOT NULL";
        let replayed =
            "SELECT coalesce(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn(), true)";
        while self.psql_in("postgres", gone) != "t" || self.psql_in("postgres", replayed) != "t" {
            assert!(
                Instant::now() < deadline,
                "the standby's WAL receiver did not stop within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        conninfo
    }

    /// Points this standby at its primary again (`conninfo` from [`Pg::detach_standby`]);
    /// a WAL receiver starts when the primary is up.
    pub fn reattach_standby(&self, conninfo: &str) {
        self.psql_in(
            "postgres",
            &format!(
                "ALTER SYSTEM SET primary_conninfo = '{}'; SELECT pg_reload_conf();",
                conninfo.replace('\'', "''")
            ),
        );
    }

    /// Promotes this standby (`pg_promote`, waiting up to 30 s): it leaves recovery and
    /// accepts writes on a new timeline.
    pub fn promote(&self) {
        let done = self.psql_in("postgres", "SELECT pg_promote(true, 30)");
        assert_eq!(done, "t", "pg_promote did not finish:\n{}", self.log());
        let state = self.psql_in("postgres", "SELECT pg_is_in_recovery()");
        assert_eq!(
            state,
            "f",
            "still in recovery after pg_promote:\n{}",
            self.log()
        );
    }

    /// One server for the whole test binary, started at first use; it dies with the process
    /// (the watchdog), as statics are never dropped. Use [`Pg::new_database`] to isolate.
    pub fn shared() -> &'static Pg {
        static SHARED: OnceLock<Pg> = OnceLock::new();
        SHARED.get_or_init(Pg::start)
    }

    /// Starts the server on `self.port`; Err(log) when it does not come up.
    fn launch(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log_path = self.dir.join(format!("postgres-{}.log", self.starts));
        let log = fs::File::create(&log_path).expect("create log");
        let (d, t) = (&self.dir, self.dir.join("tls"));
        let mut child = Command::new("unshare")
            .arg("--ipc")
            .args([
                "setpriv",
                "--reuid",
                OWNER,
                "--regid",
                OWNER,
                "--init-groups",
                "--",
            ])
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(d.join("data"))
            .args(["-c", &format!("port={}", self.port)])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", d.join("sock").display()),
            ])
            .args([
                "-c",
                &format!("hba_file={}", t.join("pg_hba.conf").display()),
            ])
            .args(["-c", "ssl=on"])
            .args([
                "-c",
                &format!("ssl_cert_file={}", t.join("server.crt").display()),
            ])
            .args([
                "-c",
                &format!("ssl_key_file={}", t.join("server.key").display()),
            ])
            .args(["-c", "dynamic_shared_memory_type=mmap", "-c", "fsync=off"])
            .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .args(["-c", "logging_collector=off", "-c", "max_connections=60"])
            .args(["-c", "shared_buffers=16MB", "-c", "log_connections=on"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .current_dir(d)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LANG", "C.UTF-8")
            .spawn()
            .expect("spawn postgres");
        self.tell_watchdog(&child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&log_path).unwrap_or_default();
            // (A hot standby says "ready to accept read-only connections" once consistent.)
            if text.contains("ready to accept connections")
                || text.contains("ready to accept read-only connections")
            {
                self.server = Some(child);
                return Ok(());
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.tell_watchdog("none");
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn tell_watchdog(&mut self, line: &str) {
        if let Some((_, stdin)) = &mut self.watchdog {
            let _ = writeln!(stdin, "{line}");
        }
    }

    /// The server's TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `mfa` as role `mfa` (no password).
    pub fn url(&self) -> String {
        format!("postgresql://mfa@127.0.0.1:{}/mfa", self.port)
    }

    /// The password of role `mfa` (tests of wrong passwords compare against it).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The file holding role `mfa`'s password (root, 0600).
    pub fn password_file(&self) -> PathBuf {
        self.dir.join("password")
    }

    /// The CA certificate the server's certificate chains to (PEM, 0644).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The unix socket directory (the superuser's way in).
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// A complete `[store]` table for `mfa.toml` pointing at database `mfa`.
    pub fn store_toml(&self, host: &str, tls: bool) -> String {
        self.store_toml_for(&self.url(), host, tls)
    }

    /// A complete `[store]` table pointing at `url` (from [`Pg::new_database`]).
    pub fn store_toml_for(&self, url: &str, host: &str, tls: bool) -> String {
        let mut s = format!(
            "[store]\nbackend = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\n",
            self.password_file().display()
        );
        if tls {
            s += &format!("ca_file = \"{}\"\n", self.ca_file().display());
        }
        s += &format!("host = \"{host}\"\npoll = \"1s\"\n");
        s
    }

    /// Stops the server (fast shutdown: sessions end), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            self.tell_watchdog("none");
        }
    }

    /// Starts the stopped (or killed) server again: same port, same data.
    pub fn start_again(&mut self) {
        assert!(self.server.is_none(), "start_again: the server is running");
        // (After a kill its backends notice and exit; give them a moment, then retry.)
        let mut last = String::new();
        for _ in 0..3 {
            match self.launch() {
                Ok(()) => return,
                Err(log) => last = log,
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("the PostgreSQL server did not start again:\n{last}");
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.tell_watchdog("none");
        }
    }

    /// `sql` as the superuser in database `mfa` over the unix socket; psql's `-At` output.
    /// Panics with psql's stderr when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("mfa", sql)
    }

    /// `sql` as the superuser in database `db` (a name, or a URL from
    /// [`Pg::new_database`]).
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let db = db_name(db);
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-w", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(self.socket_dir())
            .args(["-p", &self.port.to_string(), "-U", OWNER, "-d", &db])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PGPASSFILE", "/dev/null")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn psql");
        {
            let mut stdin = child.stdin.take().expect("psql stdin");
            stdin.write_all(sql.as_bytes()).expect("write to psql");
        }
        let out = child.wait_with_output().expect("psql");
        assert!(
            out.status.success(),
            "psql {sql:?} in {db} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// A new empty database owned by `mfa` with a name unique in this server; its URL.
    pub fn new_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "mfa_t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.psql_in("postgres", &format!("CREATE DATABASE {name} OWNER mfa;"));
        format!("postgresql://mfa@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's log (this start's), for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join(format!("postgres-{}.log", self.starts)))
            .unwrap_or_default()
    }
}

/// The database name in `db`: itself, or the last path segment of a URL.
pub fn db_name(db: &str) -> String {
    if db.contains("://") {
        let path = db.rsplit('/').next().unwrap_or(db);
        path.split('?').next().unwrap_or(path).to_string()
    } else {
        db.to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
        if let Some((mut wd, stdin)) = self.watchdog.take() {
            drop(stdin); // end of input: the watchdog removes the directory
            let _ = wd.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
