//! Bad input, command by command: every refusal exits with status 2, says what was wrong and
//! what is accepted, and leaves the database exactly as it was (`Env::bad` compares a
//! logical dump taken before and after). The configuration's own failures are here too: an
//! unknown key (bad input, 2), a writable file and a database never initialised (the system,
//! 1).

use std::os::unix::fs::PermissionsExt;

use mfa_core::store::logs::{AuthEvent, record_auth};
use serde_json::Value;

use super::Env;

/// An installation with something to lose: users with contacts and an override, network
/// rules of both families, a carrier in use, a changed setting, service and template, and a
/// few old authentication-log entries.
fn populated() -> Env {
    let env = Env::new();
    env.ok(&["settings", "set", "attempts=4", "code_ttl=5m"]);
    env.ok(&["service", "set", "sudo", "totp"]);
    env.ok(&["template", "set", "test-body", "Test for {user} on {host}."]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--cidr",
        "10.0.0.0/24",
        "--require",
        "no",
        "--note",
        "office",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "*",
        "--range",
        "10.2.2.0-10.2.2.254",
        "--require",
        "yes",
        "--log",
        "all",
    ]);
    env.ok(&[
        "net",
        "add",
        "--service",
        "sshd",
        "--cidr",
        "2001:db8::/32",
        "--require",
        "no",
    ]);
    env.ok(&["carrier", "add", "Example Mobile", "sms.example.net"]);
    env.ok(&["user", "add", "alice", "--full-name", "Alice Example"]);
    env.ok(&[
        "contact",
        "add",
        "alice",
        "--email",
        "alice@example.com",
        "--label",
        "work",
    ]);
    env.ok(&[
        "contact",
        "add",
        "alice",
        "--phone",
        "5552010199",
        "--carrier",
        "Example Mobile",
    ]);
    env.ok(&["contact", "add", "alice", "--sms", "+14155550123"]);
    env.ok(&["override", "set", "alice", "--mandatory", "yes"]);
    env.ok(&["user", "add", "bob"]);

    let conn = rusqlite::Connection::open(env.db()).unwrap();
    // 2026-01-01T00:00:00Z and the two days after.
    for (i, outcome) in ["success", "deny", "fail"].into_iter().enumerate() {
        let ev = AuthEvent {
            time: 1_767_225_600 + 86_400 * i64::try_from(i).unwrap(),
            user: "alice".into(),
            service: "sshd".into(),
            address: "10.2.2.7".into(),
            outcome: outcome.into(),
            method: "passcode".into(),
            destination: "a***@e***.com".into(),
            ..Default::default()
        };
        record_auth(&conn, &ev).unwrap();
    }
    env
}

/// The current value of a setting, from `settings show --json`.
fn setting(env: &Env, key: &str) -> Value {
    let all = env.json(&["settings", "show"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("no setting {key}: {all}"))["value"]
        .clone()
}

/// `net add --service SERVICE --cidr CIDR --require no`, refused with `needles`.
fn bad_cidr(env: &Env, service: &str, cidr: &str, needles: &[&str]) {
    env.bad(
        &[
            "net",
            "add",
            "--service",
            service,
            "--cidr",
            cidr,
            "--require",
            "no",
        ],
        needles,
    );
}

/// `net add --service SERVICE --range RANGE --require no`, refused with `needles`.
fn bad_range(env: &Env, service: &str, range: &str, needles: &[&str]) {
    env.bad(
        &[
            "net",
            "add",
            "--service",
            service,
            "--range",
            range,
            "--require",
            "no",
        ],
        needles,
    );
}

/// Writes `text` to a file of the installation and asserts its import is refused.
fn bad_import(env: &Env, name: &str, text: &str, needles: &[&str]) {
    let file = env.path(name);
    std::fs::write(&file, text).unwrap();
    let o = env.bad(&["import", file.to_str().unwrap()], needles);
    assert!(o.stdout.is_empty(), "import {name} printed: {}", o.stdout);
}

// ---------------------------------------------------------------------------------------
// net

#[test]
fn net_add_refuses_malformed_cidrs() {
    let env = populated();
    let form = "expected CIDR notation such as 10.0.0.0/24 or 2001:db8::/32";
    bad_cidr(
        &env,
        "sshd",
        "10.0.0.5/24",
        &[
            "invalid CIDR \"10.0.0.5/24\"",
            "host bits are set below the /24 prefix",
            "did you mean 10.0.0.0/24?",
        ],
    );
    bad_cidr(
        &env,
        "sshd",
        "2001:db8::1/32",
        &["host bits are set", "did you mean 2001:db8::/32?"],
    );
    for cidr in [
        "10.0.0.0/33",
        "300.1.1.1/8",
        "garbage",
        "10.0.0/24",
        "10.0.0.0/",
        "2001:db8::/129",
        "2001:zz::/32",
        "",
    ] {
        bad_cidr(
            &env,
            "sshd",
            cidr,
            &[&format!("invalid CIDR {cidr:?}"), form],
        );
    }
}

#[test]
fn net_add_refuses_malformed_inverted_and_mixed_ranges() {
    let env = populated();
    let form = "expected FIRST-LAST such as 10.2.2.0-10.2.2.254";
    bad_range(
        &env,
        "sshd",
        "10.0.0.1",
        &["invalid range \"10.0.0.1\"", form],
    );
    bad_range(
        &env,
        "sshd",
        "10.0.0.1-banana",
        &["invalid range", "\"banana\" is not an IP address", form],
    );
    bad_range(
        &env,
        "sshd",
        "apple-10.0.0.1",
        &["\"apple\" is not an IP address", form],
    );
    bad_range(
        &env,
        "sshd",
        "10.0.0.1-10.0.0.300",
        &["\"10.0.0.300\" is not an IP address", form],
    );
    bad_range(
        &env,
        "sshd",
        "10.0.0.9-10.0.0.1",
        &[
            "the first address is above the last",
            "write it as 10.0.0.1-10.0.0.9",
        ],
    );
    bad_range(
        &env,
        "sshd",
        "2001:db8::9-2001:db8::1",
        &[
            "the first address is above the last",
            "write it as 2001:db8::1-2001:db8::9",
        ],
    );
    bad_range(
        &env,
        "sshd",
        "10.0.0.1-2001:db8::1",
        &[
            "invalid range 10.0.0.1-2001:db8::1",
            "both ends must be IPv4 or both IPv6",
        ],
    );
    bad_range(
        &env,
        "sshd",
        "2001:db8::1-10.0.0.1",
        &["both ends must be IPv4 or both IPv6"],
    );
}

#[test]
fn net_add_refuses_a_rule_already_there() {
    let env = populated();
    let fix = "delete it first with `mfa-admin net del 1`";
    bad_cidr(
        &env,
        "sshd",
        "10.0.0.0/24",
        &["rule 1 already covers 10.0.0.0/24 for service sshd", fix],
    );
    // The same block written another way is the same rule.
    bad_range(
        &env,
        "sshd",
        "10.0.0.0-10.0.0.255",
        &["rule 1 already covers 10.0.0.0/24", fix],
    );
    bad_cidr(
        &env,
        "sshd",
        "::ffff:10.0.0.0/120",
        &["rule 1 already covers 10.0.0.0/24", fix],
    );
    env.bad(
        &[
            "net",
            "add",
            "--service",
            "*",
            "--range",
            "10.2.2.0-10.2.2.254",
            "--require",
            "yes",
        ],
        &[
            "rule 2 already covers 10.2.2.0-10.2.2.254 for service *",
            "`mfa-admin net del 2`",
        ],
    );
    bad_cidr(
        &env,
        "sshd",
        "2001:db8::/32",
        &[
            "rule 3 already covers 2001:db8::/32",
            "`mfa-admin net del 3`",
        ],
    );
}

#[test]
fn net_add_refuses_bad_log_service_require_and_note() {
    let env = populated();
    let add = |extra: &[&str], needles: &[&str]| {
        let mut a = vec!["net", "add", "--cidr", "192.0.2.0/24"];
        a.extend_from_slice(extra);
        env.bad(&a, needles);
    };
    add(
        &["--service", "sshd", "--require", "no", "--log", "sometimes"],
        &[
            "invalid log level \"sometimes\"",
            "expected all|rejects|none",
        ],
    );
    let service_form = "expected a PAM service name such as sshd";
    add(
        &["--service", "all", "--require", "no"],
        &[
            "unknown service keyword \"all\"",
            service_form,
            "or * for every service",
        ],
    );
    add(
        &["--service", "a/b", "--require", "no"],
        &["invalid service name \"a/b\"", service_form],
    );
    add(
        &["--service", "", "--require", "no"],
        &["invalid service name \"\"", service_form],
    );
    // --require is checked by clap: still status 2, with the accepted values.
    add(
        &["--service", "sshd", "--require", "maybe"],
        &["invalid value 'maybe'", "--require", "expected yes or no"],
    );
    add(&["--service", "sshd"], &["required", "--require <yes|no>"]);
    add(
        &["--service", "sshd", "--require", "no", "--note", "a\nb"],
        &[
            "invalid note \"a\\nb\"",
            "at most 200 characters without control characters",
        ],
    );
    let long = "x".repeat(201);
    add(
        &["--service", "sshd", "--require", "no", "--note", &long],
        &["invalid note", "at most 200 characters"],
    );
    // Neither or both of --cidr and --range.
    env.bad(
        &["net", "add", "--service", "sshd", "--require", "no"],
        &["required", "--cidr", "--range"],
    );
    env.bad(
        &[
            "net",
            "add",
            "--service",
            "sshd",
            "--require",
            "no",
            "--cidr",
            "192.0.2.0/24",
            "--range",
            "192.0.2.1-192.0.2.2",
        ],
        &["cannot be used with"],
    );
}

#[test]
fn net_del_and_check_refuse_bad_input() {
    let env = populated();
    env.bad(
        &["net", "del", "99"],
        &["no network rule 99", "`mfa-admin net list` shows the rules"],
    );
    for id in ["x", "0", "1.5", "99999999999999999999"] {
        env.bad(
            &["net", "del", id],
            &[
                &format!("invalid rule ID {id:?}"),
                "expected a whole number from 1",
            ],
        );
    }
    let address_form = "expected an IPv4 address such as 192.0.2.7 or an IPv6 address";
    for address in ["10.0.0.300", "bogus", "10.0.0.0/24"] {
        env.bad(
            &["net", "check", "--service", "sshd", address],
            &[&format!("invalid IP address {address:?}"), address_form],
        );
    }
    env.bad(
        &["net", "check", "--service", "a/b", "10.0.0.1"],
        &[
            "invalid service name \"a/b\"",
            "expected a PAM service name",
        ],
    );
    env.bad(
        &["net", "check", "--service", "all", "10.0.0.1"],
        &["unknown service keyword \"all\"", "or * for every service"],
    );
    env.bad(
        &["net", "list", "--service", "a/b"],
        &[
            "invalid service name \"a/b\"",
            "expected a PAM service name",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// service

#[test]
fn service_set_and_del_refuse_bad_input() {
    let env = populated();
    let methods = "expected one of none|passcode|totp|duo|any";
    env.bad(
        &["service", "set", "sshd", "sometimes"],
        &["unknown method \"sometimes\"", methods],
    );
    env.bad(
        &["service", "set", "sshd", ""],
        &["unknown method \"\"", methods],
    );
    env.bad(
        &["service", "set", "all", "totp"],
        &[
            "unknown service keyword \"all\"",
            "expected a PAM service name such as sshd",
            "or * for every service",
        ],
    );
    for name in ["a b", "a/b", "-x"] {
        env.bad(
            &["service", "set", "--", name, "totp"],
            &[
                &format!("invalid service name {name:?}"),
                "letters, digits, '.', '_', '-'",
            ],
        );
    }
    env.bad(
        &["service", "del", "nosuch"],
        &[
            "no rule for service \"nosuch\"",
            "`mfa-admin service list` shows the rules",
        ],
    );
    env.bad(
        &["service", "del", "*"],
        &["the * rule cannot be removed", "service set '*' METHOD"],
    );
    env.bad(
        &["service", "del", "a/b"],
        &["invalid service name \"a/b\""],
    );
}

/// Method `duo` is accepted (any case, surrounding blanks trimmed, as for the other
/// methods) by `service set` and import; a near miss is refused naming the methods.
#[test]
fn service_set_and_import_take_duo_and_refuse_near_misses() {
    let env = populated();
    for method in ["duo", "DUO", " duo "] {
        env.ok(&["service", "set", "sshd", method]);
        let v = env.json(&["service", "list"]);
        let sshd = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "sshd")
            .unwrap_or_else(|| panic!("{v}"));
        assert_eq!(sshd["method"], "duo", "{v}");
    }
    let why = "expected one of none|passcode|totp|duo|any";
    for method in ["duo-push", "d uo", "duo\u{1b}[2J"] {
        let o = env.bad(
            &["service", "set", "sshd", method],
            &["unknown method", why],
        );
        assert!(!o.stderr.contains('\u{1b}'), "{:?}", o.stderr);
        env.bad(&["service", "set", "*", method], &[why]);
    }
    let doc = env.ok(&["export"]);
    let with_duo = doc.replace("sudo = \"totp\"", "sudo = \"duo\"");
    assert_ne!(with_duo, doc);
    let bad = with_duo.replace("sudo = \"duo\"", "sudo = \"duo-push\"");
    bad_import(&env, "duo.toml", &bad, &["services.sudo", why]);
    std::fs::write(env.path("duo.toml"), &with_duo).unwrap();
    env.ok(&["import", env.path("duo.toml").to_str().unwrap()]);
    assert!(env.ok(&["export"]).contains("sudo = \"duo\""));
}

// ---------------------------------------------------------------------------------------
// settings

#[test]
fn settings_set_refuses_unknown_keys_and_out_of_range_values() {
    let env = populated();
    env.bad(
        &["settings", "set", "nosuch=1"],
        &[
            "unknown setting 'nosuch'",
            "known settings: enabled, code_length, code_ttl",
            "nothing changed",
        ],
    );
    env.bad(
        &["settings", "set", "=5"],
        &["unknown setting ''", "known settings:"],
    );
    let cases: &[(&str, &str)] = &[
        ("code_length=3", "expected an integer from 4 to 8"),
        ("code_length=9", "expected an integer from 4 to 8"),
        ("code_length=4.5", "expected an integer from 4 to 8"),
        ("code_length=-1", "expected an integer from 4 to 8"),
        ("code_ttl=30s", "expected a duration from 1m to 999m"),
        ("code_ttl=1000m", "expected a duration from 1m to 999m"),
        ("code_ttl=", "expected a duration from 1m to 999m"),
        ("code_ttl=-5m", "expected a duration from 1m to 999m"),
        // Too big for any integer type: refused, not a panic.
        (
            "code_ttl=99999999999999999999m",
            "expected a duration from 1m to 999m",
        ),
        (
            "lockout_for=9223372036854775807d",
            "expected a duration from 1m to 7d",
        ),
        ("attempts=0", "expected an integer from 1 to 9"),
        ("attempts=10", "expected an integer from 1 to 9"),
        ("repeat_window=25h", "expected a duration from 0 to 1d"),
        ("ftp_window=0", "expected a duration from 1m to 999m"),
        ("lockout_after=1000", "expected an integer from 0 to 999"),
        ("lockout_for=0", "expected a duration from 1m to 7d"),
        ("lockout_for=7d1s", "expected a duration from 1m to 7d"),
        ("enabled=maybe", "expected on|off"),
        ("unassigned=x", "expected allow|deny|enroll"),
        ("fail_mode=x", "expected secure|safe"),
        ("log_level=x", "expected all|rejects|none"),
        ("self_enroll=maybe", "expected yes|no"),
        ("log_keep_days=-1", "expected an integer from 0 to 3650"),
        ("log_keep_days=3651", "expected an integer from 0 to 3650"),
        ("totp_skew=11", "expected an integer from 0 to 10"),
        (
            "totp_issuer=Example:Corp",
            "expected text of 1 to 64 characters without ':' or control characters",
        ),
        ("totp_issuer=", "expected text of 1 to 64 characters"),
    ];
    for (pair, accepted) in cases {
        let (key, value) = pair.split_once('=').unwrap();
        env.bad(
            &["settings", "set", pair],
            &[
                &format!("invalid value {value:?} for {key}"),
                accepted,
                "nothing changed",
            ],
        );
    }
    let long = format!("totp_issuer={}", "x".repeat(65));
    env.bad(
        &["settings", "set", &long],
        &["for totp_issuer", "expected text of 1 to 64 characters"],
    );
}

#[test]
fn settings_set_refuses_malformed_pairs() {
    let env = populated();
    env.bad(
        &["settings", "set", "code_length"],
        &[
            "invalid argument \"code_length\"",
            "expected KEY=VALUE such as enabled=on",
            "nothing changed",
        ],
    );
    env.bad(
        &["settings", "set", "code_length=7", "code_length=8"],
        &["setting code_length is given twice", "nothing changed"],
    );
    env.bad(
        &[
            "settings",
            "set",
            "code_length=7",
            "attempts=5",
            "code_length=7",
        ],
        &["setting code_length is given twice"],
    );
    env.bad(&["settings", "set"], &["required", "KEY=VALUE"]);
}

#[test]
fn settings_set_is_all_or_nothing() {
    let env = populated();
    assert_eq!(setting(&env, "code_length"), "6");
    assert_eq!(setting(&env, "attempts"), "4");
    // A good pair first, a bad one after it, and the other way round.
    env.bad(
        &["settings", "set", "code_length=8", "attempts=0"],
        &["invalid value \"0\" for attempts", "nothing changed"],
    );
    env.bad(
        &["settings", "set", "attempts=0", "code_length=8"],
        &["invalid value \"0\" for attempts"],
    );
    env.bad(
        &["settings", "set", "code_length=8", "nosuch=1"],
        &["unknown setting 'nosuch'"],
    );
    env.bad(
        &["settings", "set", "code_length=8", "enabled"],
        &["expected KEY=VALUE"],
    );
    assert_eq!(
        setting(&env, "code_length"),
        "6",
        "the good pair was applied"
    );
    assert_eq!(setting(&env, "attempts"), "4");
}

#[test]
fn settings_reset_refuses_unknown_keys() {
    let env = populated();
    env.bad(
        &["settings", "reset", "nosuch"],
        &["unknown setting 'nosuch'", "known settings: enabled"],
    );
    // attempts=4 must survive the refused reset that names it.
    env.bad(
        &["settings", "reset", "attempts", "nosuch"],
        &["unknown setting 'nosuch'"],
    );
    assert_eq!(setting(&env, "attempts"), "4");
}

// ---------------------------------------------------------------------------------------
// users

#[test]
fn user_commands_refuse_bad_names_and_unknown_users() {
    let env = populated();
    let form =
        "expected 1 to 256 characters of letters, digits and . _ - @ $ \\, not starting with '-'";
    let long = "x".repeat(257);
    for name in ["-x", "a b", "", "josé", "a/b", "a:b", long.as_str()] {
        env.bad(
            &["user", "add", "--", name],
            &[&format!("invalid user name {name:?}"), form],
        );
    }
    // Without `--`, clap takes -x for an option: still status 2.
    env.bad(&["user", "add", "-x"], &["unexpected argument '-x'"]);
    env.bad(
        &["user", "add", "alice"],
        &[
            "user \"alice\" already exists",
            "`mfa-admin user show alice`",
        ],
    );
    env.bad(
        &["user", "add", "zed", "--full-name", "a\nb"],
        &[
            "invalid full name \"a\\nb\"",
            "at most 100 characters without control characters",
        ],
    );
    env.bad(
        &["user", "show", "nosuch"],
        &[
            "unknown user \"nosuch\"",
            "`mfa-admin user list` shows the users",
        ],
    );
    for cmd in ["del", "enable", "disable", "unlock"] {
        env.bad(
            &["user", cmd, "nosuch"],
            &[
                "unknown user \"nosuch\"",
                "add it first with `mfa-admin user add nosuch`",
            ],
        );
    }
}

#[test]
fn commands_on_a_user_refuse_an_invalid_name() {
    let env = populated();
    let form =
        "expected 1 to 256 characters of letters, digits and . _ - @ $ \\, not starting with '-'";
    for args in [
        &["user", "show", "a b"][..],
        &["user", "del", "a b"],
        &["user", "enable", "a b"],
        &["user", "disable", "a b"],
        &["user", "unlock", "a b"],
        &["contact", "add", "a b", "--email", "a@example.com"],
        &["contact", "list", "a b"],
        &["contact", "del", "a b", "1"],
        &["override", "set", "a b", "--exempt", "yes"],
        &["override", "del", "a b"],
        &["test", "a b"],
    ] {
        let o = env.bad(args, &["invalid user name \"a b\"", form]);
        assert!(!o.stderr.contains("user add a b"), "{args:?}: {}", o.stderr);
    }
}

// ---------------------------------------------------------------------------------------
// contacts

#[test]
fn contact_add_refuses_unknown_users_and_bad_emails() {
    let env = populated();
    env.bad(
        &["contact", "add", "nosuch", "--email", "n@example.com"],
        &["unknown user \"nosuch\"", "`mfa-admin user add nosuch`"],
    );
    let form = "expected a form such as ann@example.com";
    for email in [
        "a@b",
        "a@b.com\r\nBcc: x@y.com",
        "a@b.com\nBcc: x@y.com",
        "nobody",
        "@example.com",
        "bob@",
        "a b@example.com",
        "a@@example.com",
        "a@example..com",
        "a.@example.com",
        "ü@example.com",
        "a@-example.com",
    ] {
        let o = env.bad(
            &["contact", "add", "bob", "--email", email],
            &[&format!("invalid email address {email:?}"), form],
        );
        // The message quotes the input escaped: no raw line break to inject into a terminal.
        assert!(!o.stderr.contains("\nBcc"), "{}", o.stderr);
    }
}

#[test]
fn contact_add_refuses_bad_phones_and_carriers() {
    let env = populated();
    let form = "expected a 10-digit North American number such as 555-123-4567";
    for phone in [
        "555201019",
        "55520101990",
        "555201019x",
        "555-CALL-NOW",
        "+447700900123",
        "447700900123",
        "0552010199",
    ] {
        env.bad(
            &[
                "contact",
                "add",
                "bob",
                "--phone",
                phone,
                "--carrier",
                "Verizon",
            ],
            &[
                &format!("invalid phone number {phone:?}"),
                form,
                "use --sms +E164 for other countries",
            ],
        );
    }
    env.bad(
        &[
            "contact",
            "add",
            "bob",
            "--phone",
            "5552010199",
            "--carrier",
            "Nope Mobile",
        ],
        &[
            "unknown carrier \"Nope Mobile\"",
            "`mfa-admin carrier list` shows the carriers",
        ],
    );
}

#[test]
fn contact_add_refuses_bad_sms_numbers() {
    let env = populated();
    let form = "expected E.164 form, '+' then country code and number, such as +14155550123";
    for sms in [
        "14155550123",
        "+1415",
        "+1234567",
        "+1234567890123456",
        "+0123456789",
        "+1415555012x",
        "",
    ] {
        env.bad(
            &["contact", "add", "bob", "--sms", sms],
            &[&format!("invalid SMS number {sms:?}"), form],
        );
    }
}

#[test]
fn contact_add_refuses_wrong_option_combinations() {
    let env = populated();
    env.bad(
        &["contact", "add", "bob", "--phone", "5552010199"],
        &[
            "required arguments were not provided",
            "--carrier <CARRIER>",
        ],
    );
    env.bad(
        &["contact", "add", "bob", "--carrier", "Verizon"],
        &["required arguments were not provided", "--phone"],
    );
    env.bad(
        &["contact", "add", "bob"],
        &["required arguments were not provided", "--email", "--sms"],
    );
    env.bad(
        &[
            "contact",
            "add",
            "bob",
            "--email",
            "b@example.com",
            "--sms",
            "+14155550123",
        ],
        &["'--email <EMAIL>' cannot be used with '--sms <SMS>'"],
    );
    env.bad(
        &[
            "contact",
            "add",
            "bob",
            "--email",
            "b@example.com",
            "--phone",
            "5552010199",
            "--carrier",
            "Verizon",
        ],
        &["cannot be used with"],
    );
}

#[test]
fn contact_add_refuses_duplicates_a_fifth_contact_and_bad_labels() {
    let env = populated();
    // The same destinations as alice's three, written differently.
    env.bad(
        &["contact", "add", "alice", "--email", "alice@EXAMPLE.com"],
        &["user \"alice\" already has this contact as number 1"],
    );
    env.bad(
        &[
            "contact",
            "add",
            "alice",
            "--phone",
            "(555) 201-0199",
            "--carrier",
            "example mobile",
        ],
        &["already has this contact as number 2"],
    );
    env.bad(
        &["contact", "add", "alice", "--sms", "+1 415-555-0123"],
        &["already has this contact as number 3"],
    );
    env.bad(
        &[
            "contact",
            "add",
            "alice",
            "--email",
            "a4@example.com",
            "--label",
            &"x".repeat(33),
        ],
        &[
            "invalid label",
            "expected at most 32 characters without control characters",
        ],
    );
    env.bad(
        &[
            "contact",
            "add",
            "alice",
            "--email",
            "a4@example.com",
            "--label",
            "a\tb",
        ],
        &["invalid label \"a\\tb\"", "without control characters"],
    );
    env.ok(&["contact", "add", "alice", "--email", "a4@example.com"]);
    env.bad(
        &["contact", "add", "alice", "--email", "a5@example.com"],
        &[
            "user \"alice\" already has 4 contacts, the most allowed",
            "delete one first with `mfa-admin contact del alice SEQ`",
        ],
    );
}

#[test]
fn contact_del_refuses_bad_input() {
    let env = populated();
    env.bad(
        &["contact", "del", "nosuch", "1"],
        &["unknown user \"nosuch\"", "`mfa-admin user add nosuch`"],
    );
    env.bad(
        &["contact", "del", "alice", "4"],
        &[
            "user \"alice\" has no contact number 4",
            "`mfa-admin contact list alice` shows the numbers",
        ],
    );
    env.bad(
        &["contact", "del", "bob", "1"],
        &["user \"bob\" has no contact number 1"],
    );
    for seq in ["0", "5", "x", ""] {
        env.bad(
            &["contact", "del", "alice", seq],
            &[
                &format!("invalid contact number {seq:?}"),
                "expected a whole number from 1 to 4",
            ],
        );
    }
    env.bad(&["contact", "list", "nosuch"], &["unknown user \"nosuch\""]);
}

// ---------------------------------------------------------------------------------------
// overrides

#[test]
fn override_set_and_del_refuse_bad_input() {
    let env = populated();
    env.bad(
        &["override", "set", "nosuch", "--mandatory", "yes"],
        &["unknown user \"nosuch\"", "`mfa-admin user add nosuch`"],
    );
    env.bad(
        &["override", "set", "bob"],
        &[
            "required arguments were not provided",
            "--mandatory",
            "--exempt",
            "--self-enroll",
            "--log",
            "--double-logon-contact",
        ],
    );
    let both = "set the other to no in the same command";
    env.bad(
        &[
            "override",
            "set",
            "bob",
            "--mandatory",
            "yes",
            "--exempt",
            "yes",
        ],
        &["user \"bob\" cannot be both mandatory and exempt", both],
    );
    // alice is mandatory already.
    env.bad(
        &["override", "set", "alice", "--exempt", "yes"],
        &["user \"alice\" cannot be both mandatory and exempt", both],
    );
    env.bad(
        &["override", "set", "bob", "--self-enroll", "maybe"],
        &["invalid --self-enroll \"maybe\"", "expected yes|no|default"],
    );
    env.bad(
        &["override", "set", "bob", "--log", "sometimes"],
        &[
            "invalid log level \"sometimes\"",
            "expected all|rejects|none|default",
        ],
    );
    env.bad(
        &["override", "set", "bob", "--mandatory", "maybe"],
        &["invalid value 'maybe'", "expected yes or no"],
    );
    env.bad(
        &["override", "del", "bob"],
        &["user \"bob\" has no overrides"],
    );
    env.bad(
        &["override", "del", "nosuch"],
        &["unknown user \"nosuch\"", "`mfa-admin user add nosuch`"],
    );
}

// ---------------------------------------------------------------------------------------
// carriers

#[test]
fn carrier_commands_refuse_bad_input() {
    let env = populated();
    env.bad(
        &["carrier", "add", "verizon", "vtext.com"],
        &[
            "carrier \"Verizon\" already exists",
            "delete it first with `mfa-admin carrier del 'Verizon'`",
        ],
    );
    env.bad(
        &["carrier", "add", "EXAMPLE MOBILE", "x.example.com"],
        &["carrier \"Example Mobile\" already exists"],
    );
    for suffix in [
        "vtext",
        "-a.com",
        "a-.com",
        ".com",
        "a b.com",
        "x@vtext.com",
        "",
    ] {
        env.bad(
            &["carrier", "add", "--", "New", suffix],
            &[
                &format!("invalid carrier gateway {suffix:?}"),
                "expected a domain name such as vtext.com",
            ],
        );
    }
    for name in ["", "  "] {
        env.bad(
            &["carrier", "add", name, "x.example.com"],
            &["a carrier needs a name, such as Verizon"],
        );
    }
    env.bad(
        &["carrier", "del", "nosuch"],
        &[
            "unknown carrier \"nosuch\"",
            "`mfa-admin carrier list` shows the carriers",
        ],
    );
    env.bad(
        &["carrier", "del", "example mobile"],
        &[
            "carrier \"Example Mobile\" is used by contacts of alice",
            "delete or change those contacts first",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// templates

#[test]
fn template_commands_refuse_bad_input() {
    let env = populated();
    let names = "expected one of passcode-subject, passcode-body, test-body";
    env.bad(
        &["template", "set", "nosuch", "hello"],
        &["unknown template \"nosuch\"", names],
    );
    env.bad(
        &["template", "show", "nosuch"],
        &["unknown template \"nosuch\"", names],
    );
    env.bad(
        &["template", "reset", "nosuch"],
        &["unknown template \"nosuch\"", names],
    );
    env.bad(
        &[
            "template",
            "set",
            "passcode-body",
            "Code {code} for {nosuch}",
        ],
        &[
            "unknown placeholder {nosuch}",
            "expected {prefix} {code} {user} {host} {minutes}",
        ],
    );
    env.bad(
        &["template", "set", "test-body", "unbalanced {code"],
        &["unclosed '{' in template", "write {{ for a literal brace"],
    );
    env.bad(
        &["template", "set", "passcode-body", "hello {user}"],
        &["template passcode-body must contain {code}"],
    );
    env.bad(
        &["template", "set", "passcode-subject", "Your\ncode"],
        &["template passcode-subject must be one line without control characters"],
    );
    env.bad(
        &["template", "set", "passcode-subject", &"x".repeat(79)],
        &[
            "template passcode-subject is 79 characters long",
            "at most 78 are allowed",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// logs

#[test]
fn log_show_refuses_bad_filters() {
    let env = populated();
    let times = "expected a date (2026-01-31), a local date and time";
    env.bad(
        &["log", "show", "--since", "yesterday"],
        &["invalid time \"yesterday\" for --since", times, "RFC 3339"],
    );
    for until in ["2026-13-01", "9999999999999999d", "@99999999999999999999"] {
        env.bad(
            &["log", "show", "--until", until],
            &[&format!("invalid time {until:?} for --until"), times],
        );
    }
    for limit in ["0", "x", "1000000001"] {
        env.bad(
            &["log", "show", "--limit", limit],
            &[
                &format!("invalid --limit {limit:?}"),
                "expected a whole number from 1 to 1000000000",
            ],
        );
    }
    env.bad(
        &["log", "show", "--address", "bogus"],
        &["invalid CIDR \"bogus\"", "such as 10.0.0.0/24"],
    );
    env.bad(
        &["log", "show", "--address", "10.0.0.5/24"],
        &["did you mean 10.0.0.0/24?"],
    );
    env.bad(
        &["log", "show", "--address", "10.0.0.9-10.0.0.1"],
        &["write it as 10.0.0.1-10.0.0.9"],
    );
    env.bad(
        &[
            "log",
            "show",
            "--since",
            "2026-01-03",
            "--until",
            "2026-01-01",
        ],
        &["--since must be before --until"],
    );
    env.bad(
        &["log", "show", "--service", "a/b"],
        &["invalid service name \"a/b\""],
    );
    env.bad(
        &["log", "show", "--user", "a b"],
        &["invalid user name \"a b\""],
    );
}

#[test]
fn log_purge_refuses_bad_input() {
    let env = populated();
    assert_eq!(setting(&env, "log_keep_days"), "0");
    env.bad(
        &["log", "purge", "--before", "nope"],
        &["invalid time \"nope\" for --before", "RFC 3339"],
    );
    for days in ["x", "0", "36501"] {
        env.bad(
            &["log", "purge", "--keep-days", days],
            &[
                &format!("invalid --keep-days {days:?}"),
                "expected a whole number from 1 to 36500",
            ],
        );
    }
    env.bad(
        &["log", "purge"],
        &[
            "say what to purge: --before DATE or --keep-days N",
            "log_keep_days setting is 0",
        ],
    );
    env.bad(
        &["log", "purge", "--before", "2026-02-01", "--keep-days", "3"],
        &["cannot be used with"],
    );
    assert_eq!(env.json(&["log", "show"]).as_array().unwrap().len(), 3);
}

#[test]
fn other_commands_refuse_bad_input() {
    let env = populated();
    env.bad(
        &["test", "nosuch"],
        &["unknown user \"nosuch\"", "`mfa-admin user add nosuch`"],
    );
    env.bad(
        &["test", "alice", "--contact", "9"],
        &[
            "invalid contact number \"9\"",
            "expected a whole number from 1 to 4",
        ],
    );
    env.bad(
        &["audit", "show", "--since", "nope"],
        &["invalid time \"nope\" for --since", "RFC 3339"],
    );
    env.bad(
        &["audit", "show", "--limit", "0"],
        &["invalid --limit \"0\"", "expected a whole number from 1"],
    );
    env.bad(
        &["queue", "retry", "99"],
        &["no failed message \"99\"", "`mfa-admin queue list`"],
    );
}

// ---------------------------------------------------------------------------------------
// import

#[test]
fn import_refuses_unreadable_and_malformed_documents() {
    let env = populated();
    let missing = env.path("missing.toml");
    let missing = missing.to_str().unwrap();
    env.bad(&["import", missing], &[&format!("{missing}: no such file")]);
    bad_import(
        &env,
        "syntax.toml",
        "format = 1\n\n[settings\nattempts = 3\n",
        &["syntax.toml, line 3", "unclosed table, expected `]`"],
    );
    bad_import(
        &env,
        "top.toml",
        "format = 1\nfoo = 3\n",
        &[
            "top.toml, line 2",
            "unknown field `foo`",
            "expected one of `format`, `settings`",
        ],
    );
    bad_import(
        &env,
        "deep-key.toml",
        "format = 1\n\n[[users]]\nname = \"x\"\ncolour = \"red\"\n",
        &[
            "deep-key.toml, line 5",
            "unknown field `colour`",
            "expected one of `name`, `full_name`",
        ],
    );
    bad_import(
        &env,
        "setting-key.toml",
        "format = 1\n[settings]\nbogus = 3\n",
        &[
            "settings.bogus",
            "unknown setting 'bogus'",
            "known settings: enabled",
        ],
    );
    bad_import(
        &env,
        "format3.toml",
        "format = 3\n",
        &[
            "format = 3 is not supported",
            "this mfa reads format = 1 and 2",
        ],
    );
    bad_import(
        &env,
        "noformat.toml",
        "[settings]\nattempts = 3\n",
        &["missing field `format`"],
    );
    bad_import(&env, "empty.toml", "", &["missing field `format`"]);
    let file = env.path("latin1.toml");
    std::fs::write(&file, b"format = 1\n# caf\xe9\n").unwrap();
    env.bad(
        &["import", file.to_str().unwrap()],
        &["latin1.toml: not UTF-8 text"],
    );
}

#[test]
fn import_refuses_an_invalid_value_deep_inside() {
    let env = populated();
    let doc = env.ok(&["export"]);
    assert!(doc.contains("email = \"alice@example.com\""), "{doc}");

    // Each document is the current rules with one thing broken.
    let broken = doc.replace(
        "email = \"alice@example.com\"",
        "email = \"alice@@example.com\"",
    );
    bad_import(
        &env,
        "email.toml",
        &broken,
        &[
            "users[0].contacts[0]",
            "invalid email address \"alice@@example.com\"",
            "ann@example.com",
        ],
    );
    let broken = doc.replace("attempts = 4", "attempts = 30");
    bad_import(
        &env,
        "attempts.toml",
        &broken,
        &[
            "settings.attempts",
            "invalid value \"30\" for attempts",
            "expected an integer from 1 to 9",
        ],
    );
    let broken = doc.replace("range = \"10.0.0.0/24\"", "range = \"10.0.0.5/24\"");
    assert_ne!(broken, doc);
    bad_import(
        &env,
        "range.toml",
        &broken,
        &["networks[", "].range", "did you mean 10.0.0.0/24?"],
    );
    let broken = doc.replace("sudo = \"totp\"", "sudo = \"sometimes\"");
    assert_ne!(broken, doc);
    bad_import(
        &env,
        "method.toml",
        &broken,
        &[
            "services.sudo",
            "expected one of none|passcode|totp|duo|any",
        ],
    );
    let broken = doc.replace("mandatory = true\n", "mandatory = true\nexempt = true\n");
    assert_ne!(broken, doc);
    bad_import(
        &env,
        "both.toml",
        &broken,
        &["users[0].override", "cannot be both mandatory and exempt"],
    );
    let broken = format!("{doc}\n[[users]]\nname = \"alice\"\n");
    bad_import(
        &env,
        "twice.toml",
        &broken,
        &["users[2]", "user \"alice\" is listed twice"],
    );
}

#[test]
fn import_refuses_too_many_contacts_and_unlisted_carriers() {
    let env = populated();
    let mut five = String::from("format = 1\n\n[[users]]\nname = \"carol\"\n");
    for seq in 1..=5 {
        five.push_str(&format!(
            "\n[[users.contacts]]\nseq = {seq}\nemail = \"c{seq}@example.com\"\n"
        ));
    }
    bad_import(
        &env,
        "five.toml",
        &five,
        &[
            "users[0].contacts",
            "user \"carol\" has 5 contacts",
            "at most 4 are allowed",
        ],
    );
    // Verizon is in the database, but a document must list every carrier it uses.
    bad_import(
        &env,
        "carrier.toml",
        "format = 1\n\n[[users]]\nname = \"carol\"\n\n[[users.contacts]]\nseq = 1\nphone = \"5552010199\"\ncarrier = \"Verizon\"\n",
        &[
            "users[0].contacts[0].carrier",
            "unknown carrier \"Verizon\"",
            "it must be listed under [[carriers]]",
        ],
    );
    bad_import(
        &env,
        "seq.toml",
        "format = 1\n\n[[users]]\nname = \"carol\"\n\n[[users.contacts]]\nseq = 5\nemail = \"c@example.com\"\n",
        &[
            "users[0].contacts[0].seq",
            "expected a number from 1 to 4, unique for the user",
        ],
    );
    bad_import(
        &env,
        "kinds.toml",
        "format = 1\n\n[[users]]\nname = \"carol\"\n\n[[users.contacts]]\nseq = 1\nemail = \"c@example.com\"\nsms = \"+14155550123\"\n",
        &[
            "users[0].contacts[0]",
            "expected exactly one of email = \"...\", phone = \"...\" with carrier = \"...\", or sms = \"+E164\"",
        ],
    );
}

#[test]
fn import_refuses_a_duplicate_contact() {
    let env = populated();
    // The same address as seq 1 and 2 (the domain's case does not matter, as in `contact add`).
    bad_import(
        &env,
        "dup.toml",
        "format = 1\n\n[[users]]\nname = \"carol\"\n\n[[users.contacts]]\nseq = 1\nemail = \"c@example.com\"\n\n[[users.contacts]]\nseq = 2\nemail = \"c@EXAMPLE.com\"\n",
        &["users[0].contacts[1]", "c@example.com"],
    );
    bad_import(
        &env,
        "dup-sms.toml",
        "format = 1\n\n[[users]]\nname = \"carol\"\n\n[[users.contacts]]\nseq = 1\nsms = \"+14155550123\"\n\n[[users.contacts]]\nseq = 2\nsms = \"+1 415 555 0123\"\n",
        &["users[0].contacts[1]"],
    );
}

// ---------------------------------------------------------------------------------------
// configuration

#[test]
fn config_with_an_unknown_key_is_refused() {
    let env = populated();
    let good = std::fs::read_to_string(&env.config).unwrap();
    let name = env.config.display().to_string();
    let cases = [
        (
            format!("bogus = 1\n{good}"),
            "line 1",
            "unknown field `bogus`",
            "expected one of `paths`, `smtp`, `sms`, `sender`",
        ),
        (
            good.replace("[paths]\n", "[paths]\nfoo = 1\n"),
            "line 2",
            "unknown field `foo`",
            "expected one of `database`, `spool`, `runtime`",
        ),
        (
            good.replace("[sender]\n", "[sender]\ncolour = \"red\"\n"),
            "line 7",
            "unknown field `colour`",
            "expected one of `workers`, `user`, `destination_limit`, `destination_window`, `hourly_limit`",
        ),
    ];
    for (text, line, key, accepted) in &cases {
        std::fs::write(&env.config, text).unwrap();
        env.bad(
            &["settings", "set", "attempts=5"],
            &[&format!("{name}, {line}"), key, accepted],
        );
    }
    std::fs::write(&env.config, "[paths\n").unwrap();
    env.bad(&["user", "list"], &[&format!("{name}, line 1")]);
    std::fs::write(&env.config, good).unwrap();
    assert_eq!(setting(&env, "attempts"), "4");
}

#[test]
fn config_writable_by_others_is_refused() {
    let env = populated();
    let before = env.dump();
    let name = env.config.display().to_string();
    for (mode, who) in [(0o666, "everyone"), (0o620, "its group")] {
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = env.run(&["settings", "set", "attempts=5"]);
        // Insecure: the system's fault, not the input's.
        assert_eq!(o.code, 1, "{o:?}");
        for needle in [
            name.as_str(),
            "refusing to use it",
            &format!("mode {mode:04o} lets {who} write it"),
            &format!("fix with: chmod go-w {name}"),
        ] {
            assert!(
                o.stderr.contains(needle),
                "stderr lacks {needle:?}: {}",
                o.stderr
            );
        }
        assert!(o.stdout.is_empty(), "{o:?}");
        assert_eq!(
            env.dump(),
            before,
            "a refused configuration changed the database"
        );
    }
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(setting(&env, "attempts"), "4");
}

#[test]
fn a_database_never_initialised_is_reported() {
    let env = Env::bare();
    let db = env.db().display().to_string();
    for args in [
        &["user", "list"][..],
        &["user", "add", "bob"],
        &["settings", "set", "attempts=5"],
    ] {
        let o = env.run(args);
        assert_eq!(o.code, 1, "{args:?}: {o:?}");
        for needle in [
            db.as_str(),
            "database does not exist",
            "create it with `mfa-admin init`",
        ] {
            assert!(
                o.stderr.contains(needle),
                "{args:?}: stderr lacks {needle:?}: {}",
                o.stderr
            );
        }
        assert!(!env.db().exists(), "{args:?} created the database");
    }
}
