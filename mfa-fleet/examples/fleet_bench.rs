//! The measuring half of `bench/fleet_bench.sh` (which builds, starts PostgreSQL, makes the
//! hosts and runs the login part): with N fleet hosts already joined under `--root`
//! (`h000`, `h001`, ... each with its `mfa.toml` and `db/mfa.db`) and one single-machine host
//! (`--single`, SQLite only), it
//!
//! 1. starts one `mfa-fleetd` per host (pids appended to `--pids`, for the script's trap),
//!    then makes `--changes` changes (`mfa-admin user add`) on host 0 and times, for each,
//!    when every host's policy snapshot holds the new user (each snapshot file is watched
//!    by inode; a changed one is opened and the user looked up: what a login would see);
//!    the baseline, interleaved: the same change on the single host, to its own snapshot;
//! 2. stops the daemons, gives each host `--rows` auth-log rows, starts host 0's daemon
//!    alone (baseline), then every daemon at once, and times the central `auth_log` count
//!    reaching the total; checks each host's rows arrived exactly once.
//!
//! Prints `key value` lines and tables on stdout; exits 1 with a message on failure.

use std::collections::HashMap;
use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mfa_core::config::{Config, ConfigSource};
use mfa_core::snapshot::Snapshot;

type R<T> = Result<T, String>;

fn ctx<T, E: Display>(r: Result<T, E>, what: impl Display) -> R<T> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// How long one change may take to reach every host before the bench gives up on it.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// The pause after each change (its rewrites are still counted meanwhile).
const SETTLE: Duration = Duration::from_millis(300);

struct Args {
    admin: PathBuf,
    fleetd: PathBuf,
    root: PathBuf,
    single: PathBuf,
    hosts: usize,
    changes: usize,
    rows: usize,
    pids: PathBuf,
}

fn parse_args() -> R<Args> {
    let mut m: HashMap<String, String> = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let Some(k) = k.strip_prefix("--") else {
            return Err(format!("unexpected argument {k:?}"));
        };
        let v = it.next().ok_or_else(|| format!("--{k} needs a value"))?;
        m.insert(k.to_string(), v);
    }
    let get = |k: &str| m.get(k).cloned().ok_or_else(|| format!("--{k} is missing"));
    let num = |k: &str| -> R<usize> { ctx(get(k)?.parse::<usize>(), format!("--{k}")) };
    Ok(Args {
        admin: get("admin")?.into(),
        fleetd: get("fleetd")?.into(),
        root: get("root")?.into(),
        single: get("single")?.into(),
        hosts: num("hosts")?,
        changes: num("changes")?,
        rows: num("rows")?,
        pids: get("pids")?.into(),
    })
}

/// One host's files.
struct Host {
    name: String,
    dir: PathBuf,
}

impl Host {
    fn config(&self) -> PathBuf {
        self.dir.join("mfa.toml")
    }
    fn db(&self) -> PathBuf {
        self.dir.join("db/mfa.db")
    }
    fn snapshot(&self) -> PathBuf {
        mfa_core::snapshot::path_for(&self.db())
    }
}

/// The running daemons, stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemons {
    children: Vec<(usize, Child)>,
}

impl Daemons {
    fn start(a: &Args, hosts: &[Host], which: &[usize]) -> R<Daemons> {
        let mut pids = ctx(
            OpenOptions::new().create(true).append(true).open(&a.pids),
            a.pids.display(),
        )?;
        let mut children = Vec::new();
        for &i in which {
            let h = &hosts[i];
            let log = ctx(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(h.dir.join("fleetd.log")),
                "fleetd.log",
            )?;
            let child = ctx(
                Command::new(&a.fleetd)
                    .arg("--config")
                    .arg(h.config())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn(),
                format!("starting {}", a.fleetd.display()),
            )?;
            ctx(writeln!(pids, "{}", child.id()), a.pids.display())?;
            children.push((i, child));
        }
        Ok(Daemons { children })
    }

    /// Total user + system CPU of the daemons so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        self.children.iter().map(|(_, c)| proc_ticks(c.id())).sum()
    }

    fn stop(&mut self) {
        for (_, c) in &self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, c) in &mut self.children {
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.children.clear();
    }

    /// A daemon that exited on its own (its host's name), if any.
    fn dead(&mut self, hosts: &[Host]) -> Option<String> {
        for (i, c) in &mut self.children {
            if c.try_wait().ok().flatten().is_some() {
                return Some(hosts[*i].name.clone());
            }
        }
        None
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop();
    }
}

/// utime + stime of a process (clock ticks), 0 when gone.
fn proc_ticks(pid: u32) -> u64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    t(11) + t(12)
}

fn ticks_per_sec() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on every Linux this runs on.
    100.0
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The identity of a snapshot file: a rewrite renames a new file into place.
fn file_id(p: &Path) -> Option<(u64, u64, i64, i64, u64)> {
    std::fs::metadata(p)
        .ok()
        .map(|m| (m.ino(), m.size(), m.mtime_nsec(), m.ctime_nsec(), m.dev()))
}

fn snapshot_has(db: &Path, user: &str) -> bool {
    matches!(Snapshot::open(db), Ok(Some(s)) if matches!(s.lookup(user), Ok(Some(_))))
}

/// Whether the user is in a host's database (after a missed change: applied but not in
/// the snapshot, or not applied).
fn in_database(db: &Path, user: &str) -> String {
    rusqlite::Connection::open(db)
        .and_then(|c| {
            c.query_row("SELECT count(*) FROM users WHERE name = ?1", [user], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map_or_else(|e| e.to_string(), |n| (n > 0).to_string())
}

/// What one change did: when each host's snapshot had the user (ms after mfa-admin
/// started; None: not within the timeout), when mfa-admin exited, and how many times
/// each snapshot was rewritten from the start until the settle pause ended.
struct Round {
    /// When mfa-admin was started (Unix time, seconds).
    wall0: f64,
    at: Vec<Option<f64>>,
    admin_ms: f64,
    rewrites: Vec<u32>,
}

fn change(admin: &Path, hosts: &[&Host], user: &str) -> R<Round> {
    let mut ids: Vec<_> = hosts.iter().map(|h| file_id(&h.snapshot())).collect();
    let mut at = vec![None; hosts.len()];
    let mut rewrites = vec![0u32; hosts.len()];
    let mut touched = vec![false; hosts.len()];
    let wall0 = unix_now();
    let t0 = Instant::now();
    let mut child = ctx(
        Command::new(admin)
            .arg("--config")
            .arg(hosts[0].config())
            .args(["user", "add", user])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn(),
        "mfa-admin",
    )?;
    let mut admin_ms = None;
    let (mut sweeps, mut late_found) = (0u64, 0u32);
    let mut done_at = None::<Instant>;
    loop {
        let now = t0.elapsed();
        if admin_ms.is_none() && ctx(child.try_wait(), "mfa-admin")?.is_some() {
            admin_ms = Some(now.as_secs_f64() * 1e3);
            let out = ctx(child.wait_with_output_ref(), "mfa-admin")?;
            if !out.0.success() {
                return Err(format!("mfa-admin user add {user} failed: {}", out.1));
            }
        }
        sweeps += 1;
        for (k, h) in hosts.iter().enumerate() {
            let id = file_id(&h.snapshot());
            if id != ids[k] {
                ids[k] = id;
                touched[k] = true;
                if id.is_some() {
                    rewrites[k] += 1;
                }
            }
            // A snapshot that changed since the change began is looked at every sweep until
            // it has the user (a rewrite may take steps within one tick of the file clock);
            // every snapshot every 10th sweep too, in case none of that showed.
            if at[k].is_none() && (touched[k] || sweeps % 10 == 0) && snapshot_has(&h.db(), user) {
                at[k] = Some(t0.elapsed().as_secs_f64() * 1e3);
                if !touched[k] {
                    late_found += 1;
                }
            }
        }
        let all = at.iter().all(Option::is_some) && admin_ms.is_some();
        if all && done_at.is_none() {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|d| d.elapsed() >= SETTLE) || now > CHANGE_TIMEOUT {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if late_found > 0 {
        eprintln!(
            "fleet_bench: {user}: {late_found} snapshot(s) had the user with no change of the file seen"
        );
    }
    Ok(Round {
        wall0,
        at,
        admin_ms: admin_ms.unwrap_or(f64::NAN),
        rewrites,
    })
}

/// `wait_with_output` without consuming the child (it has exited): status and stderr.
trait WaitRef {
    fn wait_with_output_ref(&mut self) -> std::io::Result<(std::process::ExitStatus, String)>;
}

impl WaitRef for Child {
    fn wait_with_output_ref(&mut self) -> std::io::Result<(std::process::ExitStatus, String)> {
        let status = self.wait()?;
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        Ok((status, err))
    }
}

/// The value at `q` (0..1) of sorted `v`, indexed as pambench does.
fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[((s.len() as f64 * q) as usize).min(s.len() - 1)]
}

/// rows/s from the first row seen to the last ("-" when they came in one look).
fn since_first(rows: usize, first_ms: f64, last_ms: f64) -> String {
    if last_ms - first_ms < 1.0 {
        "-".to_string()
    } else {
        format!("{:.0}", rows as f64 / ((last_ms - first_ms) / 1e3))
    }
}

fn central_count(client: &mut postgres::Client) -> R<i64> {
    let row = ctx(
        client.query_one("SELECT count(*) FROM auth_log", &[]),
        "counting the central auth_log",
    )?;
    Ok(row.get(0))
}

/// `n` rows in a host's local auth_log, each with its own event id.
fn give_rows(h: &Host, n: usize, tag: &str) -> R<()> {
    let mut conn = ctx(rusqlite::Connection::open(h.db()), h.db().display())?;
    ctx(conn.busy_timeout(Duration::from_secs(10)), "busy_timeout")?;
    let tx = ctx(conn.transaction(), "local auth_log")?;
    {
        let mut st = ctx(
            tx.prepare(
                "INSERT INTO auth_log (ts, user, service, address, tty, outcome, method,
                                       destination, reason, event)
                 VALUES (?1, ?2, 'sshd', ?3, 'pts/1', 'success', 'passcode',
                         'u***@e***.com', '', ?4)",
            ),
            "local auth_log",
        )?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for i in 0..n {
            ctx(
                st.execute(rusqlite::params![
                    now - (n - i) as i64,
                    format!("u{:05}", 1 + i % 1000),
                    format!("10.{}.{}.{}", 1 + i % 200, (i / 200) % 256, 1 + i % 250),
                    format!("fb-{tag}-{}-{i}", h.name),
                ]),
                "writing local auth_log rows",
            )?;
        }
    }
    ctx(tx.commit(), "local auth_log")
}

/// Starts the daemons of `which` and times the central count from `base` to `base + want`.
/// Returns (ms to the first row, ms to the last, daemons' CPU seconds).
fn ship(
    a: &Args,
    hosts: &[Host],
    which: &[usize],
    client: &mut postgres::Client,
    base: i64,
    want: i64,
) -> R<(f64, f64, f64)> {
    let t0 = Instant::now();
    let mut d = Daemons::start(a, hosts, which)?;
    let mut first = None;
    loop {
        let n = central_count(client)? - base;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if n > 0 && first.is_none() {
            first = Some(ms);
        }
        if n >= want {
            let cpu = d.cpu_ticks() as f64 / ticks_per_sec();
            d.stop();
            return Ok((first.unwrap_or(ms), ms, cpu));
        }
        if t0.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "the central log holds {n} of {want} rows after 300 s"
            ));
        }
        if let Some(h) = d.dead(hosts) {
            return Err(format!(
                "mfa-fleetd of {h} exited (its fleetd.log says why)"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run() -> R<()> {
    let a = parse_args()?;
    let hosts: Vec<Host> = (0..a.hosts)
        .map(|i| Host {
            name: format!("h{i:03}"),
            dir: a.root.join(format!("h{i:03}")),
        })
        .collect();
    let single = Host {
        name: "single".into(),
        dir: a.single.clone(),
    };
    let all: Vec<usize> = (0..a.hosts).collect();

    // ---- 1. a change on host 0 to every host's snapshot
    let cfg = ctx(
        Config::load(&ConfigSource::resolve(Some(&hosts[0].config()))),
        "h000's mfa.toml",
    )?;
    let mut client = ctx(mfa_fleet::connect::connect(&cfg.store), "connecting")?;
    let t_start = Instant::now();
    let mut d = Daemons::start(&a, &hosts, &all)?;
    // Every daemon connected: its status file says so.
    let spawned = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    loop {
        let up = hosts
            .iter()
            .filter(|h| {
                mfa_core::fleet_status::read(&h.db())
                    .is_some_and(|s| s.connected && s.updated >= spawned)
            })
            .count();
        if up == hosts.len() {
            break;
        }
        if let Some(h) = d.dead(&hosts) {
            return Err(format!(
                "mfa-fleetd of {h} exited (its fleetd.log says why)"
            ));
        }
        if t_start.elapsed() > Duration::from_secs(60) {
            let late = hosts
                .iter()
                .find(|h| !mfa_core::fleet_status::read(&h.db()).is_some_and(|s| s.connected));
            let why = late.map_or(String::new(), |h| {
                let log = std::fs::read_to_string(h.dir.join("fleetd.log")).unwrap_or_default();
                format!(
                    "; {}'s fleetd.log ends: {}",
                    h.name,
                    log.lines().last().unwrap_or("")
                )
            });
            return Err(format!(
                "only {up} of {} daemons connected within 60 s{why}",
                hosts.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("daemons_connected_s {:.2}", t_start.elapsed().as_secs_f64());
    // Idle cost: 100 daemons doing nothing but their ticks, polls and heartbeats.
    let (c0, t0) = (d.cpu_ticks(), Instant::now());
    std::thread::sleep(Duration::from_secs(5));
    let idle = (d.cpu_ticks() - c0) as f64 / ticks_per_sec() / t0.elapsed().as_secs_f64();
    println!("idle_cpu_pct_all_daemons {:.1}", idle * 100.0);

    let fleet: Vec<&Host> = hosts.iter().collect();
    let alone = [&single];
    // Two unreported changes each (first-use costs), then the measured ones, alternating.
    for w in 0..2 {
        change(&a.admin, &fleet, &format!("fbw{w}"))?;
        change(&a.admin, &alone, &format!("fbw{w}"))?;
    }
    let mut last = Vec::new();
    let mut per_host: Vec<Vec<f64>> = vec![Vec::new(); hosts.len()];
    let mut every = Vec::new();
    let mut admin = Vec::new();
    let mut central = Vec::new();
    let mut from_central = Vec::new();
    let mut single_ms = Vec::new();
    let mut single_admin = Vec::new();
    let mut rewrites: Vec<u32> = Vec::new();
    let mut missed = Vec::new();
    let cpu0 = d.cpu_ticks();
    let mut fleet_wall = 0.0;
    for i in 0..a.changes {
        let user = format!("fb{i:03}");
        let mut one_fleet = |last: &mut Vec<f64>| -> R<()> {
            let t = Instant::now();
            let r = change(&a.admin, &fleet, &user)?;
            fleet_wall += t.elapsed().as_secs_f64();
            for (k, v) in r.at.iter().enumerate() {
                match v {
                    Some(ms) => {
                        per_host[k].push(*ms);
                        every.push(*ms);
                    }
                    None => missed.push(format!(
                        "{user}@{} (in its database: {}; its generation {})",
                        hosts[k].name,
                        in_database(&hosts[k].db(), &user),
                        mfa_core::fleet_status::read(&hosts[k].db()).map_or(-1, |s| s.generation)
                    )),
                }
            }
            if r.at.iter().all(Option::is_some) {
                last.push(r.at.iter().flatten().copied().fold(0.0, f64::max));
            }
            admin.push(r.admin_ms);
            rewrites.extend(&r.rewrites);
            // When the central row was written (its transaction's start, PostgreSQL's
            // clock: this machine's), after mfa-admin started.
            let created: f64 = ctx(
                client.query_one(
                    "SELECT extract(epoch FROM created)::float8 FROM changes ORDER BY gen DESC LIMIT 1",
                    &[],
                ),
                "reading the newest change",
            )?
            .get(0);
            let c = (created - r.wall0) * 1e3;
            central.push(c);
            if r.at.iter().all(Option::is_some) {
                from_central.push(r.at.iter().flatten().copied().fold(0.0, f64::max) - c);
            }
            Ok(())
        };
        let one_single = |single_ms: &mut Vec<f64>, single_admin: &mut Vec<f64>| -> R<()> {
            let r = change(&a.admin, &alone, &user)?;
            match r.at[0] {
                Some(ms) => single_ms.push(ms),
                None => return Err(format!("{user} never reached the single host's snapshot")),
            }
            single_admin.push(r.admin_ms);
            Ok(())
        };
        if i % 2 == 0 {
            one_fleet(&mut last)?;
            one_single(&mut single_ms, &mut single_admin)?;
        } else {
            one_single(&mut single_ms, &mut single_admin)?;
            one_fleet(&mut last)?;
        }
    }
    let cpu = (d.cpu_ticks() - cpu0) as f64 / ticks_per_sec();
    d.stop();
    drop(d);

    let p = |v: &[f64]| format!("{:>9.1} {:>9.1}", pct(v, 0.5), pct(v, 0.99));
    println!();
    println!(
        "1. a change (mfa-admin user add on h000) to the new policy snapshot, ms after mfa-admin started; {} changes, {} hosts",
        a.changes, a.hosts
    );
    println!("{:<44} {:>9} {:>9}", "", "p50 ms", "p99 ms");
    println!(
        "{:<44} {}",
        "fleet: the LAST host's snapshot (per change)",
        p(&last)
    );
    println!(
        "{:<44} {}",
        "fleet: any host's snapshot (all host×change)",
        p(&every)
    );
    println!(
        "{:<44} {}",
        "fleet: the change's central row written",
        p(&central)
    );
    println!(
        "{:<44} {}",
        "fleet: h000's mfa-admin exits (change sent)",
        p(&admin)
    );
    println!(
        "{:<44} {}",
        "baseline: single host (sqlite), own snapshot",
        p(&single_ms)
    );
    println!(
        "{:<44} {}",
        "baseline: its mfa-admin exits",
        p(&single_admin)
    );
    let prop: Vec<f64> = last
        .iter()
        .zip(&admin)
        .map(|(l, a)| l - a)
        .collect::<Vec<_>>();
    println!(
        "{:<44} {}",
        "fleet: last host minus mfa-admin's exit",
        p(&prop)
    );
    println!(
        "{:<44} {}",
        "fleet: last host minus the central row",
        p(&from_central)
    );
    let p50s: Vec<f64> = per_host.iter().map(|v| pct(v, 0.5)).collect();
    let p99s: Vec<f64> = per_host.iter().map(|v| pct(v, 0.99)).collect();
    let (lo, hi) = (
        p50s.iter().copied().fold(f64::INFINITY, f64::min),
        p50s.iter().copied().fold(0.0, f64::max),
    );
    println!(
        "per host: p50 from {lo:.1} to {hi:.1} ms (median of hosts' p50s {:.1}); p99 up to {:.1} ms",
        pct(&p50s, 0.5),
        p99s.iter().copied().fold(0.0, f64::max)
    );
    let mut table = String::from("per host p50/p99 ms:");
    for (k, h) in hosts.iter().enumerate() {
        if k % 5 == 0 {
            table.push_str("\n ");
        }
        table.push_str(&format!(
            " {}={:.0}/{:.0}",
            h.name,
            pct(&per_host[k], 0.5),
            pct(&per_host[k], 0.99)
        ));
    }
    println!("{table}");
    let rw_mean =
        rewrites.iter().map(|&r| f64::from(r)).sum::<f64>() / rewrites.len().max(1) as f64;
    println!(
        "snapshot rewrites per host per change: mean {rw_mean:.2}, max {}",
        rewrites.iter().max().copied().unwrap_or(0)
    );
    println!(
        "daemons' CPU while following: {cpu:.2} s over {fleet_wall:.1} s of fleet changes = {:.1} ms per host per change",
        cpu * 1e3 / (a.changes * a.hosts).max(1) as f64
    );
    if !missed.is_empty() {
        return Err(format!(
            "{} host×change pairs never reached within {} s: {}",
            missed.len(),
            CHANGE_TIMEOUT.as_secs(),
            missed.join(" ")
        ));
    }

    // ---- 2. central log ingestion
    give_rows(&hosts[0], a.rows, "alone")?;
    let base = central_count(&mut client)?;
    let (f1, l1, cpu1) = ship(&a, &hosts, &[0], &mut client, base, a.rows as i64)?;
    for h in &hosts {
        give_rows(h, a.rows, "all")?;
    }
    let base2 = central_count(&mut client)?;
    let total = (a.rows * a.hosts) as i64;
    let (f2, l2, cpu2) = ship(&a, &hosts, &all, &mut client, base2, total)?;
    // Exactly once: every host's rows, no more (after a moment for stragglers).
    std::thread::sleep(Duration::from_millis(500));
    let rows = ctx(
        client.query(
            "SELECT host, count(*) FROM auth_log WHERE event LIKE 'fb-%' GROUP BY host",
            &[],
        ),
        "counting per host",
    )?;
    let mut wrong = Vec::new();
    for h in &hosts {
        let want = if h.name == "h000" { 2 } else { 1 } * a.rows as i64;
        let got = rows
            .iter()
            .find(|r| r.get::<_, String>(0) == h.name)
            .map_or(0, |r| r.get::<_, i64>(1));
        if got != want {
            wrong.push(format!("{}: {got} of {want}", h.name));
        }
    }
    let rate = |n: f64, ms: f64| n / (ms / 1e3);
    println!();
    println!(
        "2. central log ingestion: {} auth-log rows per host, shipped by mfa-fleetd from its start",
        a.rows
    );
    println!(
        "{:<34} {:>9} {:>11} {:>11} {:>11} {:>10} {:>9}",
        "", "rows", "first ms", "all ms", "rows/s", "rows/s*", "CPU s"
    );
    println!(
        "{:<34} {:>9} {:>11.0} {:>11.0} {:>11.0} {:>10} {:>9.2}",
        "baseline: h000 shipping alone",
        a.rows,
        f1,
        l1,
        rate(a.rows as f64, l1),
        since_first(a.rows, f1, l1),
        cpu1
    );
    println!(
        "{:<34} {:>9} {:>11.0} {:>11.0} {:>11.0} {:>10} {:>9.2}",
        format!("fleet: {} hosts at once", a.hosts),
        total,
        f2,
        l2,
        rate(total as f64, l2),
        since_first(a.hosts * a.rows, f2, l2),
        cpu2
    );
    println!(
        "rows/s: from the daemons' start (process start, connection, TLS, first round included); \
         rows/s*: from the first row seen centrally; CPU: the daemons' user+system"
    );
    if !wrong.is_empty() {
        return Err(format!(
            "the central log does not hold each host's rows exactly once: {}",
            wrong.join(", ")
        ));
    }
    println!("exactly once: every host's rows are in the central log once");
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fleet_bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
