//! Benchmark driver for `bench/sender_bench.sh`: enqueues messages into the spool of a running
//! `mfa-sender` (with `mfa_core::spool::enqueue`, as the PAM module does) and watches `cur/`
//! with inotify to see each message claimed (renamed into `cur/`) and accepted (deleted).
//!
//! ```text
//! enqueue_bench latency    SPOOL COUNT [WARMUP] [GAP_MS]
//! enqueue_bench throughput SPOOL COUNT
//! enqueue_bench fill       SPOOL COUNT
//! ```
//!
//! `latency` sends one message at a time to an idle sender (waiting `GAP_MS` between them,
//! default 2) and prints enqueue→claimed and enqueue→accepted percentiles in µs. `throughput`
//! enqueues COUNT messages as fast as it can and prints how long until the last one was
//! accepted. `fill` only enqueues COUNT messages (into the spool of a sender that is not
//! running: the bench then starts `mfa-sender --once` and times the drain). Each prints one `key=value` line on stdout; a message the sender gave up on
//! (moved to `failed/`) is counted in `failed=`. Exit status 1 on a timeout or an I/O error.

use std::collections::HashSet;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchMask};
use mfa_core::contact::Channel;
use mfa_core::spool::{self, Kind, Message};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

type Res<T> = Result<T, String>;

/// How long one message may take before the benchmark gives up.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the throughput run may take in all.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

fn message(id: String) -> Message {
    let now = mfa_core::now();
    Message {
        id,
        created: now,
        expires: now + 600,
        channel: Channel::Email,
        to: "bench.user@example.com".into(),
        subject: "Your mfa passcode".into(),
        body: "Passcode V-123456\n\nIt is valid for 10 minutes. If you did not try to log in, \
               tell your administrator.\n"
            .into(),
        user: "bench".into(),
        // A test message, as `mfa-admin test` queues: the sender's send limits (5 passcodes
        // per destination per 15 minutes by default) apply to passcodes only, and the bench
        // measures delivery, not the limits.
        kind: Kind::Test,
        masked_to: "b***@e***.com".into(),
    }
}

fn ids(prefix: &str) -> impl FnMut() -> String {
    let base = format!("{}-{prefix}-{}", mfa_core::now(), std::process::id());
    let mut n = 0u64;
    move || {
        n += 1;
        format!("{base}-{n:07}")
    }
}

/// A watch on `cur/`: claims (MOVED_TO), acceptances (DELETE), give-ups (MOVED_FROM).
fn watch_cur(spool: &Path) -> Res<Inotify> {
    let ino = Inotify::init().map_err(|e| format!("inotify: {e}"))?;
    ino.watches()
        .add(
            spool.join("cur"),
            WatchMask::MOVED_TO | WatchMask::DELETE | WatchMask::MOVED_FROM,
        )
        .map_err(|e| format!("watch {}/cur: {e}", spool.display()))?;
    Ok(ino)
}

/// Waits up to `timeout` for inotify events; false on timeout.
fn wait_readable(ino: &Inotify, timeout: Duration) -> bool {
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn latency(spool: &Path, count: usize, warmup: usize, gap: Duration) -> Res<()> {
    let mut ino = watch_cur(spool)?;
    let mut next_id = ids("lat");
    let mut buf = vec![0u8; 64 * 1024];
    let (mut enq, mut claim, mut done) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0usize;
    for i in 0..warmup + count {
        std::thread::sleep(gap);
        let id = next_id();
        let name = format!("{id}.json");
        let msg = message(id);
        let t0 = Instant::now();
        spool::enqueue(spool, &msg).map_err(|e| format!("enqueue: {e}"))?;
        let t_enq = t0.elapsed();
        let mut t_claim = None;
        let t_done = loop {
            let left = MESSAGE_TIMEOUT.saturating_sub(t0.elapsed());
            if left.is_zero() || !wait_readable(&ino, left) {
                return Err(format!(
                    "message {name} not accepted within {MESSAGE_TIMEOUT:?} (is mfa-sender running?)"
                ));
            }
            let now = t0.elapsed();
            let events = ino
                .read_events(&mut buf)
                .map_err(|e| format!("inotify read: {e}"))?;
            let mut end = None;
            for ev in events {
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    return Err("inotify queue overflow".into());
                }
                if ev.name.and_then(|n| n.to_str()) != Some(name.as_str()) {
                    continue;
                }
                if ev.mask.contains(EventMask::MOVED_TO) {
                    t_claim = Some(now);
                } else if ev.mask.contains(EventMask::DELETE) {
                    end = Some(Ok(now));
                } else if ev.mask.contains(EventMask::MOVED_FROM) {
                    end = Some(Err(()));
                }
            }
            if let Some(e) = end {
                break e;
            }
        };
        if i < warmup {
            continue;
        }
        match t_done {
            Ok(d) => {
                enq.push(micros(t_enq));
                claim.push(micros(t_claim.unwrap_or(d)));
                done.push(micros(d));
            }
            Err(()) => failed += 1,
        }
    }
    for v in [&mut enq, &mut claim, &mut done] {
        v.sort_unstable();
    }
    let mean = if done.is_empty() {
        0
    } else {
        done.iter().sum::<u64>() / done.len() as u64
    };
    println!(
        "latency n={} failed={failed} enqueue_p50_us={} claim_p50_us={} claim_p99_us={} \
         p50_us={} p90_us={} p99_us={} max_us={} mean_us={mean}",
        done.len(),
        pct(&enq, 50.0),
        pct(&claim, 50.0),
        pct(&claim, 99.0),
        pct(&done, 50.0),
        pct(&done, 90.0),
        pct(&done, 99.0),
        done.last().copied().unwrap_or(0),
    );
    Ok(())
}

fn count_entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Counts acceptances and give-ups of the given names until all are settled; falls back to
/// polling the directories if the inotify queue overflows.
fn drain_watcher(
    spool: PathBuf,
    mut ino: Inotify,
    names: HashSet<String>,
    enqueued: Arc<AtomicBool>,
    start: Instant,
) -> Res<(Duration, usize, bool)> {
    let mut pending = names;
    let mut failed = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut overflowed = false;
    while !pending.is_empty() {
        if start.elapsed() > DRAIN_TIMEOUT {
            return Err(format!(
                "{} message(s) not accepted within {DRAIN_TIMEOUT:?}",
                pending.len()
            ));
        }
        if overflowed {
            let busy = count_entries(&spool.join("new"))
                + count_entries(&spool.join("cur"))
                + count_entries(&spool.join("tmp"));
            if busy == 0 && enqueued.load(Ordering::Acquire) {
                failed = count_entries(&spool.join("failed"));
                pending.clear();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        if !wait_readable(&ino, Duration::from_millis(200)) {
            continue;
        }
        let events = ino
            .read_events(&mut buf)
            .map_err(|e| format!("inotify read: {e}"))?;
        for ev in events {
            if ev.mask.contains(EventMask::Q_OVERFLOW) {
                overflowed = true;
                continue;
            }
            if !(ev.mask.contains(EventMask::DELETE) || ev.mask.contains(EventMask::MOVED_FROM)) {
                continue;
            }
            if let Some(n) = ev.name.and_then(|n| n.to_str())
                && pending.remove(n)
                && ev.mask.contains(EventMask::MOVED_FROM)
            {
                failed += 1;
            }
        }
    }
    Ok((start.elapsed(), failed, overflowed))
}

fn throughput(spool: &Path, count: usize) -> Res<()> {
    let mut next_id = ids("tput");
    let msgs: Vec<Message> = (0..count).map(|_| message(next_id())).collect();
    let names: HashSet<String> = msgs.iter().map(|m| format!("{}.json", m.id)).collect();
    let ino = watch_cur(spool)?;
    let enqueued = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let watcher = {
        let (spool, enqueued) = (spool.to_path_buf(), Arc::clone(&enqueued));
        std::thread::spawn(move || drain_watcher(spool, ino, names, enqueued, start))
    };
    for m in &msgs {
        spool::enqueue(spool, m).map_err(|e| format!("enqueue: {e}"))?;
    }
    let t_enq = start.elapsed();
    enqueued.store(true, Ordering::Release);
    let (t_drain, failed, overflowed) = watcher
        .join()
        .map_err(|_| "watcher thread died".to_string())??;
    let left = count_entries(&spool.join("new")) + count_entries(&spool.join("cur"));
    println!(
        "throughput n={count} failed={failed} left={left} inotify_overflow={} enqueue_s={:.3} \
         enqueue_per_s={:.0} drain_s={:.3} msg_per_s={:.0}",
        u8::from(overflowed),
        t_enq.as_secs_f64(),
        count as f64 / t_enq.as_secs_f64(),
        t_drain.as_secs_f64(),
        count as f64 / t_drain.as_secs_f64(),
    );
    Ok(())
}

/// Enqueues COUNT messages into the spool of a sender that is not running yet (the drain
/// case of the bench starts it afterwards and times it).
fn fill(spool: &Path, count: usize) -> Res<()> {
    let mut next_id = ids("drain");
    let start = Instant::now();
    for _ in 0..count {
        spool::enqueue(spool, &message(next_id())).map_err(|e| format!("enqueue: {e}"))?;
    }
    let t = start.elapsed();
    println!(
        "fill n={count} enqueue_s={:.3} enqueue_per_s={:.0}",
        t.as_secs_f64(),
        count as f64 / t.as_secs_f64()
    );
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> Res<T> {
    match args.get(i) {
        Some(s) => s.parse().map_err(|_| format!("bad argument {s:?}")),
        None => default.ok_or_else(|| "missing argument".to_string()),
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: enqueue_bench latency SPOOL COUNT [WARMUP] [GAP_MS] | throughput SPOOL COUNT | \
         fill SPOOL COUNT";
    let spool = PathBuf::from(args.get(1).ok_or(usage)?);
    match args.first().map(String::as_str) {
        Some("latency") => latency(
            &spool,
            arg(&args, 2, Some(500))?,
            arg(&args, 3, Some(20))?,
            Duration::from_millis(arg(&args, 4, Some(2))?),
        ),
        Some("throughput") => throughput(&spool, arg(&args, 2, Some(10_000))?),
        Some("fill") => fill(&spool, arg(&args, 2, Some(10_000))?),
        _ => Err(usage.into()),
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("enqueue_bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
