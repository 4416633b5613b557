//! Duo's request signatures (see <https://duo.com/docs/authapi>, "Authentication"), as
//! `api` sends them and `tests/lib/mock_duo.py` verifies them:
//! - `sha512` (Duo's current scheme): the canonical request is the date, the upper-case
//!   method, the lower-case host, the path, the canonical query parameters, the SHA-512 hex
//!   of the body and the SHA-512 hex of the canonical `X-Duo-*` headers (names lower-cased,
//!   sorted, name and value joined by NUL), one per line; the date is sent as `X-Duo-Date`
//!   (and so is one of those headers). GET parameters go in the query string; POST
//!   parameters go in the body as JSON with sorted keys (the query line is then empty).
//! - `sha1` (the older scheme): date, method, host, path and the canonical parameters
//!   (query string for GET, the `application/x-www-form-urlencoded` body for POST), with the
//!   date in the `Date` header.
//!
//! Canonical parameters: each name and value percent-encoded (everything but `A-Z a-z 0-9
//! - _ . ~`, upper-case hex), sorted, joined as `name=value` with `&`. The HTTP Basic
//! credentials are `ikey:hex(HMAC(skey, canonical))`.

use hmac::{Hmac, KeyInit, Mac};
use mfa_core::config::DuoSignature;
use sha2::Digest;

/// Percent-encodes as Duo's canonical form does (RFC 3986 unreserved kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical parameter string: encoded, sorted by name then value, `&`-joined.
pub fn canon_params(params: &[(&str, String)]) -> String {
    let mut v: Vec<(String, String)> = params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    v.sort();
    v.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn sha512_hex(data: &[u8]) -> String {
    hex(&sha2::Sha512::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON body of a POST under the `sha512` scheme: an object with sorted keys, compact.
pub fn json_body(params: &[(&str, String)]) -> String {
    let map: std::collections::BTreeMap<&str, &str> =
        params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
}

/// A signed request: the `Authorization` value, the query string (GET), the body and its
/// content type (POST), and the date header's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub authorization: String,
    pub date_header: &'static str,
    pub date: String,
    pub query: String,
    pub body: Option<(String, &'static str)>,
}

/// Signs a request under `scheme` (see the module's documentation).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    scheme: DuoSignature,
    ikey: &str,
    skey: &str,
    method: &str,
    host: &str,
    path: &str,
    params: &[(&str, String)],
    date: &str,
) -> Signed {
    let post = method == "POST";
    let (canonical, query, body, date_header) = match scheme {
        DuoSignature::Sha512 => {
            let (query, body) = if post {
                (String::new(), json_body(params))
            } else {
                (canon_params(params), String::new())
            };
            let headers = format!("x-duo-date\0{date}");
            let canonical = [
                date,
                &method.to_uppercase(),
                &host.to_lowercase(),
                path,
                &query,
                &sha512_hex(body.as_bytes()),
                &sha512_hex(headers.as_bytes()),
            ]
            .join("\n");
            let body = post.then_some((body, "application/json"));
            (canonical, query, body, "X-Duo-Date")
        }
        DuoSignature::Sha1 => {
            let p = canon_params(params);
            let canonical =
                [date, &method.to_uppercase(), &host.to_lowercase(), path, &p].join("\n");
            let (query, body) = if post {
                (
                    String::new(),
                    Some((p, "application/x-www-form-urlencoded")),
                )
            } else {
                (p, None)
            };
            (canonical, query, body, "Date")
        }
    };
    let hexsig = match scheme {
        DuoSignature::Sha512 => {
            let mut m = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(skey.as_bytes())
                .unwrap_or_else(|_| <Hmac<sha2::Sha512> as KeyInit>::new(&Default::default()));
            m.update(canonical.as_bytes());
            hex(&m.finalize().into_bytes())
        }
        DuoSignature::Sha1 => {
            let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(skey.as_bytes())
                .unwrap_or_else(|_| <Hmac<sha1::Sha1> as KeyInit>::new(&Default::default()));
            m.update(canonical.as_bytes());
            hex(&m.finalize().into_bytes())
        }
    };
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{ikey}:{hexsig}"));
    Signed {
        authorization: format!("Basic {auth}"),
        date_header,
        date: date.to_string(),
        query,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_parameters_are_encoded_and_sorted() {
        let p = [
            ("username", "ann é".to_string()),
            ("factor", "push".to_string()),
            ("pushinfo", "a=b&c=d/e".to_string()),
            ("async", "1".to_string()),
        ];
        assert_eq!(
            canon_params(&p),
            "async=1&factor=push&pushinfo=a%3Db%26c%3Dd%2Fe&username=ann%20%C3%A9"
        );
        assert_eq!(encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(
            json_body(&p[..2]),
            r#"{"factor":"push","username":"ann é"}"#
        );
    }

    #[test]
    fn signatures_match_duo_known_answers() {
        // Known answers computed independently with Python's hmac/hashlib from the
        // canonical forms in the module's documentation (see tests/lib/mock_duo.py).
        let date = "Tue, 21 Aug 2012 17:29:18 -0000";
        let params = [
            ("realname", "First Last".to_string()),
            ("username", "root".to_string()),
        ];
        let s = sign(
            DuoSignature::Sha1,
            "DIWJ8X6AEYOR5OMC6TQ1",
            "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
            "POST",
            "api-XXXXXXXX.duosecurity.com",
            "/accounts/v1/account/list",
            &params,
            date,
        );
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s.authorization.trim_start_matches("Basic "))
            .unwrap();
        let raw = String::from_utf8(raw).unwrap();
        // The example of Duo's documentation of the HMAC-SHA1 signature.
        assert_eq!(
            raw,
            "DIWJ8X6AEYOR5OMC6TQ1:2d97d6166319781b5a3a07af39d366f491234edc"
        );
        assert_eq!(s.date_header, "Date");
        assert_eq!(
            s.body,
            Some((
                "realname=First%20Last&username=root".to_string(),
                "application/x-www-form-urlencoded"
            ))
        );
        let s5 = sign(
            DuoSignature::Sha512,
            "DIWJ8X6AEYOR5OMC6TQ1",
            "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
            "GET",
            "API-xxxxxxxx.duosecurity.com",
            "/auth/v2/auth_status",
            &[("txid", "45f7c92b-f45f-4862-8545-e0f58e78075a".to_string())],
            date,
        );
        assert_eq!(s5.date_header, "X-Duo-Date");
        assert_eq!(s5.query, "txid=45f7c92b-f45f-4862-8545-e0f58e78075a");
        assert_eq!(s5.body, None);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s5.authorization.trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            "DIWJ8X6AEYOR5OMC6TQ1:c87c11045aba47a48af5a119a999fd7e6068ef9dc4c1c80dc406074d03c52c7c\
             e4fe0662ae018fb233ced1d34d19b449ab2a246cae218fd9a724d83241d82031"
        );
    }
}
