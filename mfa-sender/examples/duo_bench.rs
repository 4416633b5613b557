//! Benchmark driver for `bench/duo_bench.sh`: asks the Duo broker of a running `mfa-sender`
//! for pushes with `mfa_core::duo::call`, as the PAM module does.
//!
//! ```text
//! duo_bench pushes  RUNTIME COUNT PREFIX   one push at a time to users PREFIX0..PREFIX<COUNT-1>
//! duo_bench pending RUNTIME COUNT PREFIX   COUNT pushes at once; waits for every answer
//! ```
//!
//! `pushes` prints one line per push: `USER T RESULT`, T being CLOCK_MONOTONIC in seconds
//! (the clock of Python's `time.monotonic()`, which the mock logs) read just before the
//! call, so the script can join it with the mock's receipt of that user's `auth` call.
//! `pending` prints `sent COUNT` once every connection is made, then `done OK FAILED` when
//! all answers are in. Exit status 1 on a usage error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mfa_core::duo::{Factor, Reply, Request};

fn monotonic() -> f64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9,
        Err(_) => 0.0,
    }
}

fn push(user: &str) -> Request {
    Request::Auth {
        username: user.to_string(),
        factor: Factor::Push,
        device: None,
        passcode: None,
        ipaddr: Some("192.0.2.7".into()),
        hostname: "bench".into(),
        pushinfo: vec![("service".into(), "sshd".into())],
    }
}

fn ask(runtime: &std::path::Path, user: &str) -> String {
    // The bench's mfa.toml names `[sender] user = "nobody"`.
    match mfa_core::duo::call(
        runtime,
        "nobody",
        &push(user),
        Instant::now() + Duration::from_secs(120),
        &mut |_| true,
    ) {
        Ok(Reply::Auth(a)) => a.result,
        Ok(other) => format!("unexpected:{other:?}").replace(' ', "_"),
        Err(e) => format!("error:{e}").replace(' ', "_"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(runtime), Some(count), Some(prefix)) =
        (args.first(), args.get(1), args.get(2), args.get(3))
    else {
        eprintln!("usage: duo_bench pushes|pending RUNTIME COUNT PREFIX");
        std::process::exit(1);
    };
    let runtime = PathBuf::from(runtime);
    let Ok(count) = count.parse::<usize>() else {
        eprintln!("duo_bench: COUNT {count:?} is not a number");
        std::process::exit(1);
    };
    match mode.as_str() {
        "pushes" => {
            for i in 0..count {
                let user = format!("{prefix}{i}");
                let t = monotonic();
                let r = ask(&runtime, &user);
                println!("{user} {t:.6} {r}");
            }
        }
        "pending" => {
            let handles: Vec<_> = (0..count)
                .map(|i| {
                    let runtime = runtime.clone();
                    let user = format!("{prefix}{i}");
                    std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || ask(&runtime, &user))
                })
                .collect();
            println!("sent {count}");
            let (mut ok, mut failed) = (0, 0);
            for h in handles {
                match h.map(|h| h.join()) {
                    Ok(Ok(r)) if r == "allow" || r == "deny" => ok += 1,
                    _ => failed += 1,
                }
            }
            println!("done {ok} {failed}");
        }
        other => {
            eprintln!("duo_bench: unknown mode {other:?}");
            std::process::exit(1);
        }
    }
}
