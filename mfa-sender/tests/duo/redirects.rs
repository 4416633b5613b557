//! The broker's HTTP client and redirects: Duo's API never redirects, and a client that
//! follows sends the request (a Duo passcode in a 307's body) to another host and takes its
//! answer for Duo's. `redirect_server.py` plays both the redirecting host and the other one
//! (which logs what reached it).

use std::time::Duration;

use mfa_core::duo::{Factor, Reply, Request};

use super::support::*;
use super::*;

const SERVER: PyServerSpec = PyServerSpec {
    name: "the redirecting server",
    script: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/duo/redirect_server.py"),
    prefix: "mfa-duo-redirect",
    hint: " (needs /usr/bin/python3)",
    ready_timeout: Duration::from_secs(10),
    grace: Duration::from_secs(3),
};

/// Duo's host redirects (302 for GET, 307 for POST) to another host with a valid
/// certificate: the broker must not follow. reqwest's default policy follows up to 10
/// redirects, and then `ping` returns the other host's time, and a Duo passcode's `auth` is posted
/// again, body and all, to the other host, whose `allow` comes back as Duo's answer.
/// (Found by the attacker's review of issue 14; `Client::new` now follows no redirect.)
#[test]
fn the_broker_follows_no_redirect_to_another_host() {
    if !root_or_skip("the_broker_follows_no_redirect_to_another_host") {
        return;
    }
    let certs = tempfile::Builder::new()
        .prefix("mfa-duo-x-cert")
        .tempdir()
        .unwrap();
    let (cert, key) = make_cert_for(certs.path(), "IP:127.0.0.1,DNS:localhost");
    let sink = PyServer::start(&SERVER, |cmd, dir| {
        cmd.arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("--log")
            .arg(dir.join("requests.jsonl"));
    });
    let to = format!("https://localhost:{}", sink.port);
    let redirector = PyServer::start(&SERVER, |cmd, _| {
        cmd.arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--to", &to]);
    });
    let env = Env::for_host(redirector.port, &cert, &DuoConfig::default());
    let _daemon = env.daemon();
    let call = |req: &Request| call(&env, req, Duration::from_secs(20)).0;
    let ping = call(&Request::Ping);
    let passcode = call(&Request::Auth {
        username: "ann".into(),
        factor: Factor::Passcode,
        device: None,
        passcode: Some("271828".into()),
        ipaddr: None,
        hostname: "web1".into(),
        pushinfo: Vec::new(),
    });
    let reached = sink.json_lines("requests.jsonl");
    let followed = matches!(ping, Ok(Reply::Time { time: 42 }))
        || matches!(&passcode, Ok(Reply::Auth(r)) if r.result == "allow")
        || !reached.is_empty();
    assert!(
        !followed,
        "the broker followed Duo's host to another one:\n ping: {ping:?}\n passcode: \
         {passcode:?}\n requests that reached the other host: {reached:?}"
    );
}
