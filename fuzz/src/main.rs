//! mfa-fuzz: a fuzzer for every parser of untrusted or on-disk input, on the stable
//! toolchain (no cargo-fuzz, no libFuzzer, no coverage instrumentation).
//!
//! Per target it mutates real inputs the code itself produced (bit flips, byte inserts and
//! deletes, splices, interesting values, dictionary tokens), keeps the inputs the parser
//! accepted as material for further mutation, catches panics (`catch_unwind`), failed oracles
//! (round trips, a damaged snapshot answering differently from the database) and
//! non-termination (a per-input time limit), and writes each finding's input to
//! `fuzz/crashes/<target>/crash-<hash>` with a `.txt` saying what happened.
//!
//! ```text
//! cargo run -p mfa-fuzz --release -- --all --iterations 1000000
//! cargo run -p mfa-fuzz --release -- --target snapshot --seconds 60 --seed 7
//! cargo run -p mfa-fuzz --release -- --target state --replay fuzz/crashes/state/crash-…
//! cargo run -p mfa-fuzz -- --list
//! ```
//!
//! Every target runs in a child process of its own (the same binary), in a private temporary
//! directory (under /dev/shm when it exists): a target that aborts the process (a stack
//! overflow) or runs away does not stop the others, and the parent reruns an aborted one
//! with the same seed, saving every input first, to capture the input that killed it.
//! Exit status: 0 when nothing was found, 1 when something was, 2 on a usage error.

mod engine;
mod targets;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use engine::{Limits, Report};
use targets::{TARGETS, Target};

const USAGE: &str = "usage: mfa-fuzz (--all | --target NAME ...) [--seconds S] [--iterations N] \
[--seed N] [--timeout-ms MS] [--crashes DIR] [--known FILE] [--replay FILE ...] [--list]";

#[derive(Clone)]
struct Options {
    targets: Vec<&'static Target>,
    limits: Limits,
    replay: Vec<PathBuf>,
    child: bool,
    /// Findings already reported (fuzz/known.txt): shown, but the run does not fail.
    known: Vec<(String, String)>,
    /// The child's private directory, made (and removed) by the parent.
    workdir: Option<PathBuf>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return,
        Err(e) => {
            eprintln!("mfa-fuzz: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let code = if opts.child {
        child(&opts)
    } else if !opts.replay.is_empty() {
        replay(&opts)
    } else {
        parent(&opts)
    };
    std::process::exit(code);
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut targets = Vec::new();
    let mut limits = Limits {
        seconds: None,
        iterations: None,
        timeout: Duration::from_millis(2000),
        crashes: Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes"),
        seed: engine::os_seed(),
        max_findings: 20,
        trace: false,
    };
    let mut replay = Vec::new();
    let mut child = false;
    let mut workdir = None;
    let mut known_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("known.txt");
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> Result<f64, String> {
        v.and_then(|v| v.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("{what} needs a non-negative number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--list" => {
                for t in TARGETS {
                    println!("{:<10} {}", t.name, t.about);
                }
                return Ok(None);
            }
            "--all" => targets.extend(TARGETS.iter()),
            "--target" => {
                let name = it.next().ok_or("--target needs a name")?;
                let t = targets::find(name).ok_or_else(|| {
                    let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
                    format!("unknown target {name:?}; targets: {}", names.join(", "))
                })?;
                targets.push(t);
            }
            "--seconds" => limits.seconds = Some(num(it.next(), "--seconds")?),
            "--iterations" => limits.iterations = Some(num(it.next(), "--iterations")? as u64),
            "--seed" => limits.seed = num(it.next(), "--seed")? as u64,
            "--timeout-ms" => {
                limits.timeout = Duration::from_millis(num(it.next(), "--timeout-ms")? as u64);
            }
            "--crashes" => {
                limits.crashes = PathBuf::from(it.next().ok_or("--crashes needs a dir")?)
            }
            "--replay" => {
                replay.extend(it.by_ref().map(PathBuf::from));
            }
            "--trace" => limits.trace = true,
            "--known" => known_file = PathBuf::from(it.next().ok_or("--known needs a file")?),
            "--child" => child = true,
            "--workdir" => workdir = Some(PathBuf::from(it.next().ok_or("--workdir needs a dir")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if targets.is_empty() {
        return Err("name the targets: --all or --target NAME (--list shows them)".into());
    }
    if limits.seconds.is_none() && limits.iterations.is_none() && replay.is_empty() {
        limits.seconds = Some(10.0);
    }
    targets.dedup_by_key(|t| t.name);
    let known = match std::fs::read_to_string(&known_file) {
        Ok(text) => parse_known(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", known_file.display())),
    };
    Ok(Some(Options {
        targets,
        limits,
        replay,
        child,
        known,
        workdir,
    }))
}

/// `target text` lines (a finding of that target containing the text is known); `#` starts
/// a comment line.
fn parse_known(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(t, p)| (t.to_string(), p.trim().to_string()))
        .collect()
}

fn is_known(opts: &Options, target: &str, finding: &str) -> bool {
    opts.known
        .iter()
        .any(|(t, p)| t == target && finding.contains(p.as_str()))
}

/// A private directory for one target's files (tmpfs when there is one: it is fast).
fn workdir() -> Result<tempfile::TempDir, String> {
    let shm = Path::new("/dev/shm");
    let b = tempfile::Builder::new().prefix("mfa-fuzz-").tempdir_in(shm);
    b.or_else(|_| tempfile::Builder::new().prefix("mfa-fuzz-").tempdir())
        .map_err(|e| format!("cannot create a temporary directory: {e}"))
}

/// Runs one target in this process and prints its findings and a RESULT line.
fn child(opts: &Options) -> i32 {
    engine::quiet_panics();
    let Some(t) = opts.targets.first() else {
        return 2;
    };
    // The parent's directory (it removes it even when this process dies), else our own.
    let own = match &opts.workdir {
        Some(_) => None,
        None => match workdir() {
            Ok(d) => Some(d),
            Err(e) => {
                println!("RESULT {} setup-failed {e}", t.name);
                return 2;
            }
        },
    };
    let dir = match (&opts.workdir, &own) {
        (Some(d), _) => d.as_path(),
        (None, Some(d)) => d.path(),
        (None, None) => return 2,
    };
    let mut h = match (t.make)(dir) {
        Ok(h) => h,
        Err(e) => {
            println!("RESULT {} setup-failed {e}", t.name);
            return 2;
        }
    };
    let r: Report = engine::run(t.name, h.as_mut(), &opts.limits);
    for f in &r.findings {
        println!("FINDING {}: {f}", t.name);
    }
    println!(
        "RESULT {} executions={} accepted={} seconds={:.2} findings={}",
        t.name,
        r.executions,
        r.accepted,
        r.elapsed,
        r.findings.len()
    );
    i32::from(!r.findings.is_empty())
}

/// Runs saved inputs through their target once each and says what each does.
fn replay(opts: &Options) -> i32 {
    engine::quiet_panics();
    let Some(t) = opts.targets.first() else {
        return 2;
    };
    let dir = match workdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let mut h = match (t.make)(dir.path()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{}: setup failed: {e}", t.name);
            return 2;
        }
    };
    let mut bad = 0;
    for p in &opts.replay {
        let input = match std::fs::read(p) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", p.display());
                bad += 1;
                continue;
            }
        };
        match engine::run_one(h.as_mut(), &input) {
            Ok(acc) => println!(
                "{}: ok ({})",
                p.display(),
                if acc { "accepted" } else { "refused" }
            ),
            Err(what) => {
                println!("{}: FINDING {what}", p.display());
                bad += 1;
            }
        }
    }
    i32::from(bad > 0)
}

/// One child's outcome, as the parent saw it.
#[derive(Debug, Default)]
struct Summary {
    name: &'static str,
    executions: u64,
    accepted: u64,
    seconds: f64,
    findings: Vec<String>,
    status: String,
}

/// Runs every target in a child process and prints a table.
fn parent(opts: &Options) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("mfa-fuzz: cannot find its own executable: {e}");
            return 2;
        }
    };
    println!(
        "mfa-fuzz: seed {} (repeat a run with --seed)",
        opts.limits.seed
    );
    let mut all = Vec::new();
    for t in &opts.targets {
        // Per target, whatever else runs: `--target X --seed S` repeats X's part of a run.
        let seed = opts.limits.seed ^ engine::fnv(t.name.as_bytes());
        let mut s = spawn_child(&exe, t, opts, seed, false);
        if s.status.starts_with("died") {
            // The process died on an input (an abort, a stack overflow): run again with the
            // same seed, saving each input first, to capture it.
            let again = spawn_child(&exe, t, opts, seed, true);
            let last = opts.limits.crashes.join(t.name).join("last-input");
            // The input being run when the rerun died (if it died too: else the last one
            // run, which says nothing).
            let saved = std::fs::read(&last)
                .ok()
                .filter(|_| again.status.starts_with("died"))
                .and_then(|b| engine::save_finding(last.parent()?, &b, &s.status).ok());
            s.findings.push(format!(
                "process {} [input: {}]",
                s.status,
                saved.map_or_else(
                    || format!(
                        "not captured: the rerun did not die ({}); try: mfa-fuzz --child \
                         --target {} --seed {seed} --trace",
                        again.status, t.name
                    ),
                    |p| p.display().to_string()
                )
            ));
            let _ = std::fs::remove_file(&last);
        }
        all.push(s);
    }
    println!();
    println!(
        "{:<10} {:>12} {:>10} {:>9} {:>13}  status",
        "target", "executions", "exec/s", "accepted", "findings"
    );
    let mut found = 0;
    let mut known = 0;
    for s in &all {
        let k = s
            .findings
            .iter()
            .filter(|f| is_known(opts, s.name, f))
            .count();
        let rate = if s.seconds > 0.0 {
            s.executions as f64 / s.seconds
        } else {
            0.0
        };
        let acc = if s.executions > 0 {
            100.0 * s.accepted as f64 / s.executions as f64
        } else {
            0.0
        };
        let shown = if k > 0 {
            format!("{} ({k} known)", s.findings.len())
        } else {
            s.findings.len().to_string()
        };
        println!(
            "{:<10} {:>12} {:>10.0} {:>8.1}% {:>13}  {}",
            s.name, s.executions, rate, acc, shown, s.status
        );
        found += s.findings.len() - k;
        known += k;
    }
    for s in &all {
        for f in &s.findings {
            let tag = if is_known(opts, s.name, f) {
                "known finding"
            } else {
                "finding"
            };
            println!("{tag} {}: {f}", s.name);
        }
    }
    if known > 0 {
        println!("{known} known finding(s): listed in fuzz/known.txt, waiting for their fix");
    }
    i32::from(found > 0 || all.iter().any(|s| s.status != "ok"))
}

fn spawn_child(exe: &Path, t: &Target, opts: &Options, seed: u64, trace: bool) -> Summary {
    let mut s = Summary {
        name: t.name,
        status: "ok".into(),
        ..Default::default()
    };
    let dir = match workdir() {
        Ok(d) => d,
        Err(e) => {
            s.status = format!("not started: {e}");
            return s;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.args(["--child", "--target", t.name, "--seed", &seed.to_string()]);
    cmd.arg("--workdir").arg(dir.path());
    cmd.args(["--timeout-ms", &opts.limits.timeout.as_millis().to_string()]);
    cmd.arg("--crashes").arg(&opts.limits.crashes);
    if let Some(sec) = opts.limits.seconds {
        cmd.args(["--seconds", &sec.to_string()]);
    }
    if let Some(n) = opts.limits.iterations {
        cmd.args(["--iterations", &n.to_string()]);
    }
    if trace {
        cmd.arg("--trace");
        if opts.limits.iterations.is_none() {
            // Deterministic: the same seed dies at the same input, if given the time.
            let sec = opts.limits.seconds.unwrap_or(10.0) * 20.0 + 10.0;
            cmd.args(["--seconds", &sec.to_string()]);
        }
    }
    let mut child = match cmd.stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            s.status = format!("not started: {e}");
            return s;
        }
    };
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(f) = line.strip_prefix(&format!("FINDING {}: ", t.name)) {
                if !trace {
                    println!("{line}");
                    s.findings.push(f.to_string());
                }
            } else if let Some(r) = line.strip_prefix(&format!("RESULT {} ", t.name)) {
                read_result(r, &mut s);
            } else {
                println!("{line}");
            }
        }
    }
    match child.wait() {
        Ok(st) if st.success() || st.code() == Some(1) => {}
        Ok(st) if st.code() == Some(3) => s.status = "timeout".into(),
        Ok(st) if st.code().is_some() && s.status != "ok" => {}
        Ok(st) => {
            use std::os::unix::process::ExitStatusExt;
            s.status = match st.signal() {
                Some(sig) => format!("died (signal {sig})"),
                None => format!("died ({st})"),
            };
        }
        Err(e) => s.status = format!("lost: {e}"),
    }
    if !trace {
        println!(
            "{:<10} {} executions in {:.1} s, {} finding(s)",
            t.name,
            s.executions,
            s.seconds,
            s.findings.len()
        );
    }
    s
}

fn read_result(r: &str, s: &mut Summary) {
    if let Some(e) = r.strip_prefix("setup-failed ") {
        s.status = format!("setup failed: {e}");
        return;
    }
    if r == "timeout" {
        s.status = "timeout".into();
        return;
    }
    for kv in r.split(' ') {
        match kv.split_once('=') {
            Some(("executions", v)) => s.executions = v.parse().unwrap_or(0),
            Some(("accepted", v)) => s.accepted = v.parse().unwrap_or(0),
            Some(("seconds", v)) => s.seconds = v.parse().unwrap_or(0.0),
            _ => {}
        }
    }
}
