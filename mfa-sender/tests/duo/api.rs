//! The Auth API client's signatures, as the mock verifies them: both schemes accepted for
//! GET and POST; a wrong secret key, a wrong integration key and a clock off by more than
//! five minutes are Duo's 401s, which the broker reports as `Credentials`, never leaking
//! the secret key. `--check` says the same in its `duo:` line.

use std::time::Duration;

use mfa_core::duo::{BrokerError, ErrorKind, Reply};
use serde_json::json;

use super::{DuoConfig, Env, Mock, SKEY, call, preauth, root_or_skip};
use mfa_core::duo::Request;

#[test]
fn check_and_preauth_are_signed_in_both_schemes() {
    if !root_or_skip("check_and_preauth_are_signed_in_both_schemes") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    for (sig, logged) in [("sha512", "sha512"), ("sha1", "sha1")] {
        let env = Env::new(
            &mock,
            &DuoConfig {
                signature: sig,
                ..DuoConfig::default()
            },
        );
        // --check as the sender's user: the secret file line and Duo's check.
        let out = env.run(&["--check"], Duration::from_secs(20));
        assert_eq!(out.code, 0, "{out:?}");
        assert!(
            out.stdout.contains("OK    secret [duo] skey_file:")
                && out.stdout.contains("OK    duo: 127.0.0.1:")
                && out.stdout.contains("signature accepted"),
            "{}",
            out.stdout
        );
        assert!(
            !out.stdout.contains("WARN  transports"),
            "[duo] alone is a configured sender: {}",
            out.stdout
        );
        let checks = mock.to("/auth/v2/check");
        let last = checks.last().unwrap();
        assert_eq!(last["status"], 200, "{:?}", mock.summary());
        assert_eq!(last["sig"], logged, "{:?}", mock.summary());

        // A POST through the broker: the parameters are in the signed body.
        let d = env.daemon();
        let (r, _) = call(&env, &preauth("ann"), Duration::from_secs(10));
        match r {
            Ok(Reply::Preauth(p)) => {
                assert_eq!(p.result, "auth");
                assert_eq!(p.devices.len(), 1);
                assert_eq!(p.devices[0].device, "DPFZRS9FB0D46QFTM891");
                assert_eq!(p.devices[0].display_name, "iOS (XXX-XXX-1234)");
                assert!(p.devices[0].capabilities.contains(&"push".to_string()));
            }
            other => panic!("{other:?}"),
        }
        let pre = mock.to("/auth/v2/preauth");
        let last = pre.last().unwrap();
        assert_eq!(last["status"], 200, "{:?}", mock.summary());
        assert_eq!(last["sig"], logged);
        assert_eq!(last["params"]["username"], "ann");
        assert_eq!(last["params"]["ipaddr"], "192.0.2.7");
        assert_eq!(last["params"]["hostname"], "web1");
        let log = d.stop();
        assert!(
            log.contains("duo: op=preauth user=ann result=auth devices=1"),
            "{log}"
        );
        assert!(!log.contains(SKEY), "{log}");
    }
}

fn expect_credentials(r: Result<Reply, BrokerError>, code: &str) -> String {
    match r {
        Err(BrokerError::Duo(ErrorKind::Credentials, m)) => {
            assert!(m.contains(code), "{m}");
            assert!(!m.contains(SKEY) && !m.contains("wrong-secret"), "{m}");
            m
        }
        other => panic!("expected Credentials ({code}), got {other:?}"),
    }
}

#[test]
fn wrong_keys_and_a_skewed_clock_are_credentials_errors() {
    if !root_or_skip("wrong_keys_and_a_skewed_clock_are_credentials_errors") {
        return;
    }
    let mock = Mock::start(json!({"ann": {}}), &[]);
    // A wrong secret key, in each scheme: 40103.
    for sig in ["sha512", "sha1"] {
        let env = Env::new(
            &mock,
            &DuoConfig {
                skey: "wrong-secret".into(),
                signature: sig,
                ..DuoConfig::default()
            },
        );
        let out = env.run(&["--check"], Duration::from_secs(20));
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stdout
                .contains("FAIL  duo: GET /auth/v2/check: HTTP 401 40103")
                && out.stdout.contains("check [duo] ikey, skey_file"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains("wrong-secret"));
        let d = env.daemon();
        let (r, _) = call(&env, &Request::Check, Duration::from_secs(10));
        expect_credentials(r, "Invalid signature in request credentials");
        let (r, _) = call(&env, &super::push("ann"), Duration::from_secs(10));
        expect_credentials(r, "40103");
        let log = d.stop();
        assert!(!log.contains("wrong-secret"), "{log}");
    }
    // A wrong integration key: 40102.
    let env = Env::new(
        &mock,
        &DuoConfig {
            ikey: "DIXXXXXXXXXXXXXXXXXX".into(),
            ..DuoConfig::default()
        },
    );
    let d = env.daemon();
    let (r, _) = call(&env, &Request::Check, Duration::from_secs(10));
    expect_credentials(r, "40102");
    drop(d);
    // No push ever reached the mock's auth endpoint with bad credentials.
    assert!(
        mock.to("/auth/v2/auth").iter().all(|r| r["status"] == 401),
        "{:?}",
        mock.summary()
    );

    // A server whose clock is 10 minutes ahead: the date is out of range, 40105.
    let skewed = Mock::start(json!({"ann": {}}), &["--clock-offset", "600"]);
    let env = Env::new(&skewed, &DuoConfig::default());
    let d = env.daemon();
    let (r, _) = call(&env, &Request::Check, Duration::from_secs(10));
    expect_credentials(r, "40105");
    // Ping is unsigned: it still works, so the two cases can be told apart.
    let (r, _) = call(&env, &Request::Ping, Duration::from_secs(10));
    assert!(matches!(r, Ok(Reply::Time { time }) if time > 0), "{r:?}");
    d.stop();
    assert_eq!(
        skewed.to("/auth/v2/ping")[0]["sig"],
        serde_json::Value::Null
    );
}

#[test]
fn a_secret_key_others_can_read_stops_the_sender() {
    if !root_or_skip("a_secret_key_others_can_read_stops_the_sender") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let mock = Mock::start(json!({"ann": {}}), &[]);
    let env = Env::new(&mock, &DuoConfig::default());
    std::fs::set_permissions(&env.skey, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["--check"], Duration::from_secs(20));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("FAIL  secret [duo] skey_file:")
            && out.stdout.contains("lets others read or write it")
            && out.stdout.contains("chmod 600"),
        "{}",
        out.stdout
    );
    // Duo is not asked with a key that may have leaked.
    assert!(!out.stdout.contains("OK    duo:"), "{}", out.stdout);
    assert!(mock.requests().is_empty(), "{:?}", mock.summary());
    // The daemon refuses to start, naming the file.
    let out = env.run(&[], Duration::from_secs(15));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("cannot start: secret [duo] skey_file") && !out.stderr.contains(SKEY),
        "{}",
        out.stderr
    );
    assert!(!env.socket().exists());
}

/// Signs requests the way Duo documents it and sends them as given, then tampered with:
/// prints `CASE STATUS CODE` per line.
const RAW_CLIENT: &str = r#"
import base64, email.utils, hashlib, hmac, http.client, json, ssl, sys
port, ca, ikey, skey = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
host = f"127.0.0.1:{port}"
def send(case, params, sent=None, date=None, auth=True, scheme="sha512", date_header=None):
    date = date or email.utils.formatdate()
    h = lambda s: hashlib.sha512(s.encode()).hexdigest()
    body = json.dumps(params, sort_keys=True, separators=(",", ":"))
    if scheme == "sha512":
        canon = "\n".join([date, "POST", host, "/auth/v2/preauth", "", h(body),
                           h("x-duo-date\x00" + date)])
        sig = hmac.new(skey, canon.encode(), hashlib.sha512).hexdigest()
    headers = {"Content-Type": "application/json"}
    if date_header is not False:
        headers["X-Duo-Date"] = date
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{ikey}:{sig}".encode()).decode()
    out = json.dumps(sent if sent is not None else params, sort_keys=True, separators=(",", ":"))
    c = http.client.HTTPSConnection("127.0.0.1", int(port),
                                    context=ssl.create_default_context(cafile=ca))
    c.request("POST", "/auth/v2/preauth", out, headers)
    r = c.getresponse()
    data = json.loads(r.read())
    print(case, r.status, data.get("code"))
send("good", {"username": "ann"})
send("tampered", {"username": "ann"}, sent={"username": "eve"})
send("unsigned", {"username": "ann"}, auth=False)
send("nodate", {"username": "ann"}, date_header=False)
send("old", {"username": "ann"}, date="Tue, 21 Aug 2012 17:29:18 -0000")
"#;

#[test]
fn the_mock_refuses_tampered_unsigned_and_stale_requests() {
    let mock = Mock::start(json!({"ann": {}, "eve": {}}), &[]);
    let o = std::process::Command::new(super::PYTHON)
        .arg("-c")
        .arg(RAW_CLIENT)
        .arg(mock.port.to_string())
        .arg(&mock.cert)
        .args([super::IKEY, SKEY])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "good 200 None",
            "tampered 401 40103",
            "unsigned 401 40101",
            "nodate 401 40104",
            "old 401 40105"
        ],
        "{:?}",
        mock.summary()
    );
    // Only the good one got through to the endpoint (and its user is logged).
    let ok: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r["status"] == 200)
        .collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["sig"], "sha512");
}
