//! Many mfa-admin processes on one database at once: writers queue on BEGIN IMMEDIATE with a
//! busy timeout, readers wait out a commit the same way; nobody sees "database is locked",
//! nothing is lost.

use std::process::Command;
use std::thread;

use super::{Env, out};

const WRITERS: usize = 20;
const READERS: usize = 6;
const WRITES_EACH: usize = 4;

#[test]
fn twenty_writers_and_readers_lose_nothing() {
    let env = Env::new();
    let config = env.config.clone();
    let bin = env!("CARGO_BIN_EXE_mfa-admin");
    let run = move |args: Vec<String>| {
        out(Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(&args)
            .output()
            .unwrap())
    };

    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let run = run.clone();
        handles.push(thread::spawn(move || {
            let user = format!("user{w:02}");
            let mut outs = vec![run(vec!["user".into(), "add".into(), user.clone()])];
            outs.push(run(vec![
                "contact".into(),
                "add".into(),
                user.clone(),
                "--email".into(),
                format!("{user}@example.com"),
            ]));
            for i in 0..WRITES_EACH - 2 {
                outs.push(run(vec![
                    "net".into(),
                    "add".into(),
                    "--service".into(),
                    "sshd".into(),
                    "--cidr".into(),
                    format!("10.{w}.{i}.0/24"),
                    "--require".into(),
                    "no".into(),
                ]));
            }
            outs
        }));
    }
    for r in 0..READERS {
        let run = run.clone();
        handles.push(thread::spawn(move || {
            let mut outs = Vec::new();
            for i in 0..8 {
                let cmd: &[&str] = match (r + i) % 4 {
                    0 => &["--json", "user", "list"],
                    1 => &["--json", "net", "list"],
                    2 => &["--json", "net", "check", "--service", "sshd", "10.3.1.9"],
                    _ => &["export"],
                };
                outs.push(run(cmd.iter().map(|s| s.to_string()).collect()));
            }
            outs
        }));
    }
    for h in handles {
        for o in h.join().unwrap() {
            assert_eq!(o.code, 0, "{o:?}");
            assert!(!o.stderr.contains("locked"), "{o:?}");
        }
    }
    let users = env.json(&["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), WRITERS);
    assert!(users.as_array().unwrap().iter().all(|u| u["contacts"] == 1));
    assert_eq!(
        env.json(&["net", "list"]).as_array().unwrap().len(),
        WRITERS * (WRITES_EACH - 2)
    );
    // init + every write, each with its own audit record (and, in a fleet, the migrate
    // that made this host its first member).
    let setup = if super::backend::postgres() { 2 } else { 1 };
    assert_eq!(
        env.json(&["audit", "show"]).as_array().unwrap().len(),
        setup + WRITERS * WRITES_EACH
    );
}
