//! `fleet status` and the central `log show` (`--host`, `--local`) against a real
//! PostgreSQL started by the tests; both refused with the fix on a single machine.

use mfa_core::store::Store;
use mfa_core::store::logs::{self, AuthEvent};
use mfa_core::store_config::{Backend, StoreConfig};
use mfa_fleet::hosts::{self, HostReport};

use super::{Env, pg};

/// A fresh central database with the schema on the shared server; its URL.
fn central() -> String {
    let url = pg::Pg::shared().new_database();
    let mut c = client(&url);
    mfa_fleet::schema::migrate(&mut c).unwrap();
    url
}

fn store_config(url: &str) -> StoreConfig {
    StoreConfig {
        backend: Backend::Postgres,
        url: Some(url.to_string()),
        password_file: Some(pg::Pg::shared().password_file()),
        ..Default::default()
    }
}

fn client(url: &str) -> postgres::Client {
    // connect() refuses while 4 attempts of this process are in flight (tests run at once).
    for _ in 0..200 {
        match mfa_fleet::connect::connect(&store_config(url)) {
            Err(e) if e.to_string().contains("earlier attempts still wait") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r.unwrap(),
        }
    }
    panic!("cannot connect to {url}: too many attempts in flight");
}

/// An initialised installation that is fleet host `host` of the central database `url`
/// (its database joined: an incarnation of its own).
fn fleet_env(url: &str, host: &str) -> Env {
    let env = Env::sqlite();
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text += "\n";
    text += &pg::Pg::shared().store_toml_for(url, host, false);
    std::fs::write(&env.config, text).unwrap();
    rusqlite::Connection::open(env.db())
        .unwrap()
        .execute(
            "INSERT INTO meta (key, value) VALUES ('fleet_incarnation', ?1)",
            [format!("inc-{host}-{}", std::process::id())],
        )
        .unwrap();
    env
}

fn report(name: &str, generation: i64, queue: i32) -> HostReport {
    HostReport {
        name: name.into(),
        incarnation: format!("inc-{name}"),
        generation,
        queue,
        failed: 0,
        outbox: 0,
        last_error: String::new(),
        version: "0.1.0".into(),
    }
}

#[test]
fn fleet_status_shows_hosts_and_flags_the_silent_one() {
    let url = central();
    let env = fleet_env(&url, "web1");
    let mut c = client(&url);
    // No host yet: nothing to worry about.
    let o = env.run(&["fleet", "status"]);
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("no host has reported yet"), "{o:?}");

    hosts::heartbeat(&mut c, &report("web1", 2, 3)).unwrap();
    hosts::heartbeat(&mut c, &report("web2", 2, 0)).unwrap();
    c.batch_execute(
        "INSERT INTO changes (origin, incarnation, origin_id, schema, body)
         SELECT 'web1', 'inc-web1', g, 8, '\\x7b7d' FROM generate_series(1, 2) g;",
    )
    .unwrap();
    let o = env.run(&["fleet", "status"]);
    assert_eq!(o.code, 0, "{o:?}");
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "central generation: 2");
    assert!(
        lines[1].starts_with("HOST") && lines[1].contains("GENERATION  LAST CONTACT  QUEUE"),
        "{o:?}"
    );
    let cells = |l: &str| {
        l.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let web1 = cells(lines[2]);
    assert_eq!(web1[0], "web1");
    assert_eq!(web1[1], "2");
    assert!(
        web1[2].ends_with("s ago") && !web1[2].contains("silent"),
        "{web1:?}"
    );
    assert_eq!(&web1[3..6], ["3", "0", "0"]);

    // web2 silent for ten minutes, and behind.
    c.batch_execute(
        "UPDATE hosts SET last_contact = now() - interval '10 minutes', generation = 1
         WHERE name = 'web2';",
    )
    .unwrap();
    let o = env.run(&["fleet", "status"]);
    assert_eq!(o.code, 1, "{o:?}");
    let web2 = cells(o.stdout.lines().nth(3).unwrap());
    assert_eq!(web2[0], "web2");
    assert_eq!(web2[1], "1 (behind 1)");
    assert_eq!(web2[2], "10m ago, silent");
    assert!(
        o.stderr
            .contains("1 of 2 host(s) need attention: web2: silent: last contact 10m ago"),
        "{o:?}"
    );
    // Its change was made just now: not behind for long yet.
    assert!(!o.stderr.contains("behind for"), "{o:?}");

    // The same in JSON, for scripts; same exit status.
    let o = env.run(&["--json", "fleet", "status"]);
    assert_eq!(o.code, 1, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["generation"], 2);
    assert_eq!(v["ok"], false);
    assert_eq!(v["silent_after"], 60);
    assert_eq!(v["hosts"][0]["name"], "web1");
    assert_eq!(v["hosts"][0]["queue"], 3);
    assert_eq!(v["hosts"][0]["silent"], false);
    assert_eq!(v["hosts"][1]["silent"], true);
    assert_eq!(v["hosts"][1]["behind"], 1);
    assert!(v["hosts"][1]["last_contact_secs"].as_i64().unwrap() >= 600);

    // Behind for over a minute, and an error with terminal escapes: both named, escaped.
    c.batch_execute(
        "UPDATE changes SET created = now() - interval '5 minutes';
         UPDATE hosts SET last_contact = now() WHERE name = 'web2';",
    )
    .unwrap();
    hosts::report_error(&mut c, "web2", "apply: \x1b[2Jno\r\nsuch table").unwrap();
    let o = env.run(&["fleet", "status"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("web2: 1 change(s) behind for 5m"),
        "{o:?}"
    );
    assert!(
        o.stderr
            .contains("web2: last error: apply: \\x1b[2Jno\\x0d\\x0asuch table"),
        "{o:?}"
    );
    assert!(
        o.stdout.contains("apply: \\x1b[2Jno\\x0d\\x0asuch table"),
        "{o:?}"
    );
    assert!(
        !o.stdout.contains('\x1b') && !o.stderr.contains('\x1b'),
        "{o:?}"
    );

    // Caught up and no error: healthy again.
    hosts::heartbeat(&mut c, &report("web2", 2, 0)).unwrap();
    env.ok(&["fleet", "status"]);
}

#[test]
fn fleet_status_needs_a_fleet_and_a_reachable_store() {
    let env = Env::sqlite();
    let o = env.bad(
        &["fleet", "status"],
        &["not in a fleet", "backend = \"postgres\""],
    );
    assert!(o.stdout.is_empty(), "{o:?}");
    // A fleet whose server is not there: exit 1, the central store named.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = fleet_env(&format!("postgresql://mfa@127.0.0.1:{port}/mfa"), "web1");
    let o = env.run(&["fleet", "status"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.starts_with("mfa-admin: central store: "), "{o:?}");
    assert!(o.stdout.is_empty(), "{o:?}");
    let o = env.run(&["log", "show"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("mfa-admin: central store: ")),
        "{o:?}"
    );
    // --local still reads this host's own log.
    assert_eq!(env.ok(&["log", "show", "--local"]).trim(), "no log entries");
}

/// The raw characters no output may contain (as in hostile_output).
fn raw_hidden(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| {
            (c.is_control() && *c != '\n')
                || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
        })
        .collect()
}

const HOSTILE: &str = "x\x1b[2J\x1b]0;pwned\x07\r\nfake row\u{9b}31m\u{202e}gnp\x7f";

fn add_rows(env: &Env, host: &str, n: usize) {
    let mut store = Store::open(&env.db()).unwrap();
    for i in 0..n {
        let ev = AuthEvent {
            time: 1_796_000_000 + i as i64 * 10,
            user: format!("{host}-u{i}"),
            service: "sshd".into(),
            address: format!("10.0.0.{}", i + 1),
            tty: "pts/0".into(),
            outcome: "success".into(),
            method: "totp".into(),
            reason: if i == 0 {
                HOSTILE.into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        logs::record_auth(store.conn(), &ev).unwrap();
    }
    let mut c = client_of(env);
    mfa_fleet::logs::ship_all(&mut c, &mut store, host).unwrap();
}

fn client_of(env: &Env) -> postgres::Client {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix("url = \""))
        .unwrap()
        .trim_end_matches('"');
    client(url)
}

#[test]
fn log_show_reads_the_central_log_with_hosts() {
    let url = central();
    let (a, b) = (fleet_env(&url, "web1"), fleet_env(&url, "web2"));
    add_rows(&a, "web1", 2);
    add_rows(&b, "web2", 3);

    let all = a.ok(&["log", "show"]);
    let lines: Vec<&str> = all.lines().collect();
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("  HOST  USER  "),
        "{all}"
    );
    assert_eq!(lines.len(), 6, "{all}");
    assert_eq!(all.matches("web1-u").count(), 2, "{all}");
    assert_eq!(all.matches("web2-u").count(), 3, "{all}");
    assert!(
        lines[1].contains("  web1  web1-u0  ") || lines[1].contains("  web2  web2-u0  "),
        "{all}"
    );
    assert!(raw_hidden(&all).is_empty(), "{all:?}");
    assert!(
        all.contains("x\\x1b[2J\\x1b]0;pwned\\x07\\x0d\\x0afake row\\x9b31m\\u{202e}gnp\\x7f"),
        "{all}"
    );

    // --host: one host's rows; with the other filters.
    let web2 = b.ok(&["log", "show", "--host", "web2"]);
    assert_eq!(web2.lines().count(), 4, "{web2}");
    assert!(!web2.contains("web1"), "{web2}");
    let one = a.ok(&["log", "show", "--host", "web2", "--address", "10.0.0.2"]);
    assert_eq!(one.lines().count(), 2, "{one}");
    assert!(one.contains("web2-u1"), "{one}");
    assert_eq!(
        a.ok(&["log", "show", "--host", "web3"]).trim(),
        "no log entries"
    );
    let newest = a.ok(&["log", "show", "--limit", "1"]);
    assert!(newest.contains("web2-u2"), "{newest}");

    // JSON: each row with its host; the hostile reason as it was.
    let v = a.json(&["log", "show", "--host", "web1"]);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["host"], "web1");
    assert_eq!(rows[0]["user"], "web1-u0");
    assert_eq!(rows[0]["reason"], HOSTILE);
    assert_eq!(rows[1]["address"], "10.0.0.2");

    // --local: this host's own database, as on a single machine (no HOST column).
    let local = a.ok(&["log", "show", "--local"]);
    assert!(
        local.starts_with("TIME") && !local.contains("HOST"),
        "{local}"
    );
    assert_eq!(local.lines().count(), 3, "{local}");
    assert!(!local.contains("web2"), "{local}");
    let o = a.run(&["log", "show", "--local", "--host", "web1"]);
    assert_eq!(o.code, 2, "{o:?}");

    // A host name that is no host name: refused before anything is read.
    let o = a.run(&["log", "show", "--host", "web1' OR '1'='1"]);
    assert_eq!(o.code, 2, "{o:?}");
    assert!(o.stderr.contains("is not a host name"), "{o:?}");
}

#[test]
fn log_show_host_on_a_single_machine_names_the_fix() {
    let env = Env::sqlite();
    let o = env.bad(
        &["log", "show", "--host", "web1"],
        &[
            "--host",
            "not in a fleet",
            "leave out --host",
            "backend = \"postgres\"",
        ],
    );
    assert!(o.stdout.is_empty(), "{o:?}");
    // Without it, the local log as always (--local is harmless there).
    assert_eq!(env.ok(&["log", "show"]).trim(), "no log entries");
    assert_eq!(env.ok(&["log", "show", "--local"]).trim(), "no log entries");
}

/// A fleet host refuses `restore` (its rules are the fleet's) and says what to restore
/// instead; its database is left as it was.
#[test]
fn restore_is_refused_on_a_fleet_host() {
    let env = Env::fleet();
    env.ok(&["user", "add", "ann"]);
    let copy = env.path("copy.db");
    env.ok(&["backup", copy.to_str().unwrap()]);
    env.bad(
        &["restore", copy.to_str().unwrap()],
        &["in a fleet", "central PostgreSQL database", "fleet join"],
    );
}

/// On a fleet host `log show` first ships this host's newest rows (no wait for
/// mfa-fleetd), a change is silent on standard error like on a single machine, and
/// `log purge` purges the central log too.
#[test]
fn a_fleet_hosts_log_is_shown_at_once_and_purged_everywhere() {
    let env = Env::fleet();
    {
        let store = Store::open(&env.db()).unwrap();
        for (i, user) in ["old1", "old2", "new1"].iter().enumerate() {
            let ev = AuthEvent {
                time: if i < 2 {
                    1_700_000_000 + i as i64
                } else {
                    1_900_000_000
                },
                user: user.to_string(),
                service: "sshd".into(),
                outcome: "success".into(),
                ..Default::default()
            };
            logs::record_auth(store.conn(), &ev).unwrap();
        }
    }
    let v = env.json(&["log", "show"]);
    let users: Vec<(&str, &str)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["user"].as_str().unwrap()))
        .collect();
    assert_eq!(
        users,
        [
            ("test-host", "old1"),
            ("test-host", "old2"),
            ("test-host", "new1")
        ]
    );
    let o = env.run(&["settings", "set", "code_ttl=5m"]);
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{o:?}");

    let v = env.json(&["log", "purge", "--before", "2030-01-01"]);
    assert_eq!(
        (v["deleted"].as_i64(), v["central_deleted"].as_i64()),
        (Some(2), Some(2))
    );
    let v = env.json(&["log", "show"]);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["user"], "new1");
    // Nothing purged comes back with the next shipment.
    let local = env.json(&["log", "show", "--local"]);
    assert_eq!(local.as_array().unwrap().len(), 1, "{local}");
    assert_eq!(env.json(&["log", "show"]).as_array().unwrap().len(), 1);
}

/// The central store gone: `log purge` still purges this host's log and says, exit 1, that
/// the central one was not; the maintenance run warns and goes on; `log show` names the
/// store. Nothing claims a purge it did not do.
#[test]
fn purging_without_the_central_store_says_what_was_not_done() {
    let env = Env::fleet();
    {
        let store = Store::open(&env.db()).unwrap();
        let ev = AuthEvent {
            time: 1_700_000_000,
            user: "old".into(),
            service: "sshd".into(),
            outcome: "success".into(),
            ..Default::default()
        };
        logs::record_auth(store.conn(), &ev).unwrap();
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let text = std::fs::read_to_string(&env.config).unwrap();
    let good = text
        .lines()
        .find(|l| l.starts_with("url = "))
        .unwrap()
        .to_string();
    let dead = format!("url = \"postgresql://mfa@127.0.0.1:{port}/mfa\"");
    std::fs::write(&env.config, text.replace(&good, &dead)).unwrap();
    let o = env.run(&["log", "purge", "--before", "2030-01-01"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("deleted 1 entries")
            && o.stderr.contains("but not from the fleet's central log")
            && o.stderr.contains("run the same command again"),
        "{o:?}"
    );
    assert!(!o.stderr.contains("  "), "no run of spaces: {o:?}");
    let local = env.json(&["log", "show", "--local"]);
    assert_eq!(local.as_array().unwrap().len(), 0, "{local}");
    let o = env.run(&["log", "show"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("central store"), "{o:?}");
    // Back: the purge again reaches the central log (the row was never shipped: 0 there).
    std::fs::write(&env.config, text).unwrap();
    let v = env.json(&["log", "purge", "--before", "2030-01-01"]);
    assert_eq!(v["central_deleted"].as_i64(), Some(0), "{v}");
}
