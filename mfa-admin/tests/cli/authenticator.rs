//! `totp enroll|reset|remove` and `backup-codes`.

use super::Env;

#[test]
fn enroll_reset_remove() {
    let env = Env::new();
    env.ok(&["user", "add", "val"]);
    env.ok(&["settings", "set", "totp_issuer=Example Corp"]);
    let png = env.path("val.png");
    let e = env.json(&[
        "totp",
        "enroll",
        "val",
        "--digits",
        "8",
        "--algorithm",
        "sha256",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert_eq!(
        (
            e["issuer"].as_str(),
            e["account"].as_str(),
            e["digits"].as_u64(),
            e["algorithm"].as_str()
        ),
        (Some("Example Corp"), Some("val"), Some(8), Some("sha256"))
    );
    let key = e["key"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 32, "160 bits in base 32");
    assert_eq!(
        e["uri"],
        format!(
            "otpauth://totp/Example%20Corp:val?secret={key}&issuer=Example%20Corp&algorithm=SHA256&digits=8&period=30"
        )
    );
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&png).unwrap().permissions())
            & 0o777,
        0o600
    );
    let show = env.json(&["user", "show", "val"]);
    assert_eq!(
        (
            show["totp"]["algorithm"].as_str(),
            show["totp"]["digits"].as_u64()
        ),
        (Some("sha256"), Some(8))
    );
    // The human output draws the QR code and names the key.
    env.bad(
        &["totp", "enroll", "val"],
        &["already has an authenticator key", "totp reset val"],
    );
    let text = env.ok(&["totp", "reset", "val"]);
    assert!(
        text.contains('█') && text.contains("The old key no longer works"),
        "{text}"
    );
    let new_key = text
        .lines()
        .find(|l| l.starts_with("key:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_ne!(new_key, key);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let (alg, digits): (String, i64) = conn
        .query_row(
            "SELECT algorithm, digits FROM totp WHERE user = 'val'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (alg.as_str(), digits),
        ("sha256", 8),
        "reset keeps the parameters"
    );
    env.ok(&["totp", "remove", "val"]);
    assert!(env.json(&["user", "show", "val"])["totp"].is_null());
    env.bad(&["totp", "remove", "val"], &["no authenticator key"]);
    env.bad(&["totp", "reset", "val"], &["totp enroll val"]);
    env.bad(&["totp", "enroll", "nobody"], &["unknown user"]);
    env.bad(
        &["totp", "enroll", "val", "--digits", "7"],
        &["expected 6 or 8"],
    );
    env.bad(
        &["totp", "enroll", "val", "--algorithm", "md5"],
        &["sha1, sha256 or sha512"],
    );
    // The audit log says what was done and never holds a secret.
    let audit = env.ok(&["--json", "audit", "show"]);
    assert!(
        audit.contains("totp enroll")
            && audit.contains("totp reset")
            && audit.contains("totp remove")
    );
    assert!(
        !audit.contains(&key) && !audit.contains(&new_key),
        "{audit}"
    );
}

#[test]
fn backup_codes() {
    let env = Env::new();
    env.ok(&["user", "add", "wes"]);
    let first = env.json(&["backup-codes", "wes"]);
    let codes: Vec<String> = first["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
    );
    assert_eq!(env.json(&["user", "show", "wes"])["backup_codes"], 10);
    let text = env.ok(&["backup-codes", "wes", "--count", "4"]);
    assert_eq!(
        env.json(&["user", "show", "wes"])["backup_codes"],
        4,
        "new codes revoke the old"
    );
    assert!(
        env.ok(&["user", "show", "wes"])
            .contains("backup codes: 4 remaining")
    );
    assert_eq!(text.matches('-').count(), 4, "{text}");
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let stored: Vec<Vec<u8>> = conn
        .prepare("SELECT hash FROM backup_codes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        stored.iter().all(|h| h.len() == 32),
        "only keyed hashes are stored"
    );
    let audit = env.ok(&["--json", "audit", "show"]);
    assert!(codes.iter().all(|c| !audit.contains(c.as_str())));
    env.bad(&["backup-codes", "wes", "--count", "0"], &["--count"]);
    env.bad(&["backup-codes", "nobody"], &["unknown user"]);
}
