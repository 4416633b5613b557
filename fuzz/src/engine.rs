//! The fuzzing engine: a fast PRNG, the byte-level mutators, and the loop that runs one
//! target's harness on mutated inputs, catching panics and oracle failures and saving the
//! inputs that caused them. Non-termination is caught by a watchdog thread (see [`run`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::targets::Harness;

/// splitmix64: tiny, fast and good enough to drive mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// A seed from the OS (the address-space randomisation and the clock are enough to make two
/// runs differ; `--seed` makes one repeatable).
pub fn os_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stack = 0u8;
    let addr = std::ptr::addr_of!(stack) as usize as u64;
    let mut r = Rng::new((t as u64) ^ addr.rotate_left(32) ^ u64::from(std::process::id()));
    r.next()
}

/// Bytes that break parsers: delimiters, quotes, escapes, controls, high bytes.
const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, 0xfe, 0xc0, 0xe2, b'\n', b'\r', b'\t', b' ', b'"', b'\'', b'\\', b'{',
    b'}', b'[', b']', b'=', b',', b':', b'.', b'-', b'/', b'@', b'+', b'%', b'#', b'0', b'9',
];

/// Integers at the edges, written little-endian over 1, 2, 4 or 8 bytes.
const INTERESTING_INTS: &[u64] = &[
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Applies one to `max_stack` random mutations to `data`, drawing splices from `pool` and
/// tokens from `dict`; the result is at most `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    pool: &[Vec<u8>],
    dict: &[Vec<u8>],
    max_len: usize,
) {
    let depth = 1 + rng.below(8);
    let rounds = 1 + rng.below(depth);
    for _ in 0..rounds {
        mutate_once(rng, data, pool, dict);
    }
    data.truncate(max_len);
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[Vec<u8>]) {
    let len = data.len();
    match rng.below(16) {
        // Flip one bit.
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        // A random byte.
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = (rng.next() & 0xff) as u8;
        }
        // An interesting byte, over or inserted.
        2 => {
            let b = rng.pick(INTERESTING_BYTES).copied().unwrap_or(0);
            if len > 0 && rng.chance(2) {
                let i = rng.below(len);
                data[i] = b;
            } else {
                data.insert(rng.below(len + 1), b);
            }
        }
        // Insert a few random bytes.
        3 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| (rng.next() & 0xff) as u8).collect();
            data.splice(at..at, bytes);
        }
        // Delete a range.
        4 if len > 0 => {
            let at = rng.below(len);
            let cap = if rng.chance(4) { len } else { 16 };
            let n = 1 + rng.below((len - at).min(cap));
            data.drain(at..at + n);
        }
        // Duplicate a range somewhere else.
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let chunk = data[at..at + n].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, chunk);
        }
        // Splice: a piece of another input of the pool.
        6 if !pool.is_empty() => {
            let other = &pool[rng.below(pool.len())];
            if !other.is_empty() {
                let a = rng.below(other.len());
                let n = 1 + rng.below((other.len() - a).min(256));
                let at = rng.below(len + 1);
                if rng.chance(2) {
                    let end = (at + n).min(len);
                    data.splice(at..end, other[a..a + n].iter().copied());
                } else {
                    data.splice(at..at, other[a..a + n].iter().copied());
                }
            }
        }
        // Crossover: this input's head, another's tail.
        7 if !pool.is_empty() => {
            let other = &pool[rng.below(pool.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        // A dictionary token, inserted or written over.
        8 | 9 if !dict.is_empty() => {
            let tok = &dict[rng.below(dict.len())];
            let at = rng.below(len + 1);
            if rng.chance(2) {
                let end = (at + tok.len()).min(len);
                data.splice(at..end, tok.iter().copied());
            } else {
                data.splice(at..at, tok.iter().copied());
            }
        }
        // An interesting integer over 1, 2, 4 or 8 bytes.
        10 if len > 0 => {
            let width = [1usize, 2, 4, 8][rng.below(4)].min(len);
            let at = rng.below(len - width + 1);
            let mut v = rng.pick(INTERESTING_INTS).copied().unwrap_or(0);
            if rng.chance(4) {
                v = v.wrapping_add(len as u64);
            }
            data[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
        }
        // Add or subtract a little from a byte or a 32-bit word.
        11 if len > 0 => {
            let delta = 1 + rng.below(16) as u32;
            if len >= 4 && rng.chance(2) {
                let at = rng.below(len - 3);
                let mut w = [0u8; 4];
                w.copy_from_slice(&data[at..at + 4]);
                let v = u32::from_le_bytes(w);
                let v = if rng.chance(2) {
                    v.wrapping_add(delta)
                } else {
                    v.wrapping_sub(delta)
                };
                data[at..at + 4].copy_from_slice(&v.to_le_bytes());
            } else {
                let i = rng.below(len);
                data[i] = if rng.chance(2) {
                    data[i].wrapping_add(delta as u8)
                } else {
                    data[i].wrapping_sub(delta as u8)
                };
            }
        }
        // Cut the tail off (a disk that filled up mid-write).
        12 if len > 0 => data.truncate(rng.below(len)),
        // Repeat a short piece many times (deep nesting, long runs).
        13 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(4));
            let piece = data[at..at + n].to_vec();
            let times = 2 + rng.below(200);
            let rep: Vec<u8> = piece.iter().copied().cycle().take(n * times).collect();
            data.splice(at..at, rep);
        }
        // A number written in the text (a count, a time, a port) replaced by another.
        14 | 15 if len > 0 => {
            // One of the digit runs, each as likely as the others.
            let mut runs = Vec::new();
            let mut i = 0;
            while i < len {
                if data[i].is_ascii_digit() {
                    let start = i;
                    while i < len && data[i].is_ascii_digit() {
                        i += 1;
                    }
                    runs.push((start, i));
                } else {
                    i += 1;
                }
            }
            let Some(&(start, end)) = rng.pick(&runs) else {
                return;
            };
            let old: u64 = std::str::from_utf8(&data[start..end])
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let new = match rng.below(8) {
                0..=3 => rng.pick(TEXT_NUMBERS).copied().unwrap_or("0").to_string(),
                4 => old.wrapping_add(1).to_string(),
                5 => old.wrapping_sub(1).to_string(),
                6 => format!("-{old}"),
                _ => (rng.next() >> rng.below(64)).to_string(),
            };
            data.splice(start..end, new.into_bytes());
        }
        _ => {
            let b = (rng.next() & 0xff) as u8;
            data.insert(rng.below(len + 1), b);
        }
    }
}

/// Numbers at the edges of the integer types, as text.
const TEXT_NUMBERS: &[&str] = &[
    "0",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
];

/// A 64-bit FNV-1a hash: names crash files after their content.
pub fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How one run is bounded and where findings go.
#[derive(Debug, Clone)]
pub struct Limits {
    pub seconds: Option<f64>,
    pub iterations: Option<u64>,
    /// Longest time one input may take before it counts as non-termination.
    pub timeout: Duration,
    pub crashes: PathBuf,
    pub seed: u64,
    /// Most distinct findings kept per run (the loop goes on after each).
    pub max_findings: usize,
    /// Write every input to `crashes/<target>/last-input` before running it (slow: used
    /// to capture the input of a crash that killed the process).
    pub trace: bool,
}

/// What a run of one target did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub executions: u64,
    pub accepted: u64,
    pub elapsed: f64,
    pub findings: Vec<String>,
}

/// The message of the latest panic, captured by the hook [`quiet_panics`] installs.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Replaces the panic hook by one that records the message and location instead of
/// printing them (a fuzzer panics on purpose millions of times).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "(non-text panic payload)".to_string()
        };
        let mut at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // A panic inside the standard library (an overflow in `sum`, an index): name the
        // mfa function that called it.
        if !at.contains("mfa-core/") {
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            if let Some(f) = bt.lines().map(str::trim).find(|l| l.contains("mfa_core::")) {
                let f = f.split_once(": ").map_or(f, |(_, name)| name);
                at.push_str(&format!(" in {f}"));
            }
        }
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = format!("panic{at}: {msg}");
        }
    }));
}

/// Runs one input through the harness: `Ok(accepted)`, or the finding's description.
pub fn run_one(h: &mut dyn Harness, input: &[u8]) -> Result<bool, String> {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.run(input)));
    match res {
        Ok(Ok(accepted)) => Ok(accepted),
        Ok(Err(oracle)) => Err(format!("oracle: {oracle}")),
        Err(_) => Err(LAST_PANIC
            .lock()
            .map(|m| m.clone())
            .unwrap_or_else(|_| "panic".into())),
    }
}

/// Saves a finding's input and description under `dir`; returns the input's path.
pub fn save_finding(dir: &Path, input: &[u8], what: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("crash-{:016x}", fnv(input)));
    std::fs::write(&path, input)?;
    let mut txt = std::fs::File::create(path.with_extension("txt"))?;
    writeln!(txt, "{what}")?;
    Ok(path)
}

/// The input being run and when it started (0: none), for the watchdog.
struct Current {
    input: Mutex<Vec<u8>>,
    started_ms: AtomicU64,
}

fn millis_since(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Fuzzes one target until the limits say stop. Panics and oracle failures are findings:
/// saved to `crashes/<target>/` and listed in the report, the loop goes on. An input that
/// runs longer than `timeout` is saved by the watchdog thread, which then ends the process
/// with status 3 (a thread cannot be stopped).
pub fn run(name: &str, h: &mut dyn Harness, limits: &Limits) -> Report {
    let dir = limits.crashes.join(name);
    let mut rng = Rng::new(limits.seed);
    let seeds = h.seeds();
    let dict = h.dictionary();
    let max_len = h.max_len();
    let mut pool: Vec<Vec<u8>> = seeds.clone();
    let t0 = Instant::now();
    let current = Arc::new(Current {
        input: Mutex::new(Vec::new()),
        started_ms: AtomicU64::new(0),
    });
    spawn_watchdog(name, &current, t0, limits, &dir);

    let mut report = Report::default();
    let mut seen = BTreeSet::new();
    let mut input = Vec::new();
    let mut seed_i = 0;
    loop {
        if limits.iterations.is_some_and(|n| report.executions >= n)
            || limits
                .seconds
                .is_some_and(|s| report.executions % 64 == 0 && t0.elapsed().as_secs_f64() >= s)
        {
            break;
        }
        // The seeds themselves first, then mutations of the pool.
        input.clear();
        if seed_i < seeds.len() {
            input.extend_from_slice(&seeds[seed_i]);
            seed_i += 1;
        } else {
            // A quarter of the time an original seed: when most inputs are accepted the
            // pool fills with far-mutated ones.
            let base = if rng.chance(4) && !seeds.is_empty() {
                &seeds[rng.below(seeds.len())]
            } else {
                &pool[rng.below(pool.len())]
            };
            input.extend_from_slice(base);
            mutate(&mut rng, &mut input, &pool, &dict, max_len);
            h.fixup(&mut rng, &mut input);
        }
        if limits.trace {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("last-input"), &input);
        }
        if let Ok(mut c) = current.input.lock() {
            c.clear();
            c.extend_from_slice(&input);
        }
        current
            .started_ms
            .store(millis_since(t0).max(1), Ordering::Release);
        let res = run_one(h, &input);
        current.started_ms.store(0, Ordering::Release);
        report.executions += 1;
        match res {
            Ok(true) => {
                report.accepted += 1;
                // Keep some accepted inputs: mutating valid ones reaches deeper.
                if pool.len() < 512 {
                    pool.push(input.clone());
                } else if rng.chance(16) {
                    let i = rng.below(pool.len());
                    if i >= seeds.len() {
                        pool[i] = input.clone();
                    }
                }
            }
            Ok(false) => {}
            Err(what) => {
                // One report per kind of finding: the place of a panic, the oracle's
                // words before the values it shows.
                let key = finding_kind(&what);
                if seen.insert(key) && report.findings.len() < limits.max_findings {
                    let saved = save_finding(&dir, &input, &what)
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|e| format!("(not saved: {e})"));
                    report.findings.push(format!("{what} [input: {saved}]"));
                }
            }
        }
    }
    report.elapsed = t0.elapsed().as_secs_f64();
    report
}

/// What makes two findings the same: a panic's message and place, an oracle's text up to
/// the first value it quotes.
pub fn finding_kind(what: &str) -> String {
    let end = what.find(['(', '[', '{', '"']).unwrap_or(what.len());
    what[..end].chars().take(100).collect()
}

fn spawn_watchdog(name: &str, current: &Arc<Current>, t0: Instant, limits: &Limits, dir: &Path) {
    let current = Arc::clone(current);
    let limit = u64::try_from(limits.timeout.as_millis()).unwrap_or(u64::MAX);
    let dir = dir.to_path_buf();
    let name = name.to_string();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let started = current.started_ms.load(Ordering::Acquire);
            if started != 0 && millis_since(t0).saturating_sub(started) > limit {
                let input = current.input.lock().map(|c| c.clone()).unwrap_or_default();
                let what = format!("timeout: one input ran over {limit} ms");
                let saved = save_finding(&dir, &input, &what)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| format!("(not saved: {e})"));
                println!("FINDING {name}: {what} [input: {saved}]");
                println!("RESULT {name} timeout");
                let _ = std::io::stdout().flush();
                std::process::exit(3);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_bounds_and_change_the_input() {
        let mut rng = Rng::new(7);
        let pool = vec![b"hello = \"world\"\n".to_vec(), vec![0u8; 40]];
        let dict = vec![b"[users]".to_vec()];
        let mut changed = 0;
        for i in 0..20_000 {
            let mut d = pool[i % 2].clone();
            if i % 97 == 0 {
                d.clear();
            }
            let before = d.clone();
            mutate(&mut rng, &mut d, &pool, &dict, 64);
            assert!(d.len() <= 64);
            if d != before {
                changed += 1;
            }
        }
        assert!(
            changed > 18_000,
            "only {changed} of 20000 mutations changed anything"
        );
    }

    #[test]
    fn numbers_in_text_reach_the_edges_of_the_integer_types() {
        let seed = b"29933767 1\n29933771 1\n".to_vec();
        let mut rng = Rng::new(5);
        let (mut max, mut on_a_line) = (0, 0);
        for _ in 0..20_000 {
            let mut d = seed.clone();
            mutate(&mut rng, &mut d, &[], &[], 1024);
            let t = String::from_utf8_lossy(&d);
            max += usize::from(t.contains("18446744073709551615"));
            on_a_line += usize::from(t.starts_with("29933767 18446744073709551615\n29933771 1\n"));
        }
        assert!(
            max > 50 && max < 5000,
            "u64::MAX written {max} times in 20000 ({on_a_line} in place)"
        );
        assert!(
            on_a_line > 2,
            "in place of a count {on_a_line} times ({max} in all)"
        );
    }

    #[test]
    fn the_prng_is_repeatable_and_spreads() {
        let a: Vec<u64> = {
            let mut r = Rng::new(42);
            (0..8).map(|_| r.next()).collect()
        };
        let mut r = Rng::new(42);
        let b: Vec<u64> = (0..8).map(|_| r.next()).collect();
        assert_eq!(a, b);
        let mut hist = [0u32; 10];
        for _ in 0..10_000 {
            hist[r.below(10)] += 1;
        }
        assert!(hist.iter().all(|&n| (800..1200).contains(&n)), "{hist:?}");
    }
}
