//! A client of Duo's Auth API v2 (<https://duo.com/docs/authapi>): `ping`, `check`,
//! `preauth`, `auth` (synchronous, or `async=1` with `auth_status`), `enroll` and
//! `enroll_status`, each request signed as Duo documents it (see `sign`).
//!
//! Every request is bounded by the smaller of the caller's deadline and the `[duo] timeout`.
//! Failures map to [`ErrorKind`]: no connection, 5xx, too slow, or a 429 whose Retry-After
//! does not fit the deadline → `Unavailable`; 401 → `Credentials`; any other refusal (400,
//! 403, 404) → `Refused` with Duo's message. The secret key never leaves this file: it is in
//! no error and no log line.

use std::path::Path;
use std::time::{Duration, Instant};

use mfa_core::config::{Duo, DuoSignature};
use mfa_core::duo::{AuthResult, Device, Enrollment, ErrorKind, Factor, Preauth};
use serde_json::Value;

use super::sign::{encode, sign};

/// A failed call: what kind, and a message naming the endpoint (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// What `POST /auth/v2/auth` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// An asynchronous factor: poll `auth_status` with this txid.
    Pending(String),
    /// A synchronous factor's final answer.
    Done(AuthResult),
}

/// One `auth_status` answer: `None` while Duo still waits (with its `status_msg`).
pub type Status = (Option<AuthResult>, String);

/// The Auth API v2 client of one `[duo]` section.
pub struct Client {
    http: reqwest::blocking::Client,
    host: String,
    ikey: String,
    skey: zeroize::Zeroizing<String>,
    signature: DuoSignature,
    timeout: Duration,
}

/// The TLS configuration: Mozilla's roots (webpki-roots), plus the PEM roots of `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = ca_file {
        let bad = |e: &dyn std::fmt::Display| format!("[duo] ca_file {}: {e}", ca.display());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| bad(&e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&e))?;
        if certs.is_empty() {
            return Err(bad(&"no PEM certificate in it"));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(&e))?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The remote address as Duo takes it: an IP address, or nothing (PAM's rhost may be a host
/// name, which Duo would refuse with a 400 and so fail the login).
fn ip_only(ipaddr: Option<&str>) -> Option<String> {
    ipaddr
        .and_then(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| a.to_string())
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

impl Client {
    /// Builds the client of a `[duo]` section: reads the secret key (which must be private,
    /// see `preflight::secret`) and the CA file; errors name the key and the fix.
    pub fn new(c: &Duo) -> Result<Client, String> {
        let timeout = Duration::from_secs(u64::from(c.timeout_secs()?));
        if c.host.is_empty() || c.host.contains(['/', ' ', '?', '#', '@']) {
            return Err(format!(
                "[duo] host = {:?}: expected the API host name, such as api-XXXXXXXX.duosecurity.com",
                c.host
            ));
        }
        let skey = crate::transport::read_secret(&c.skey_file)
            .map_err(|e| format!("[duo] skey_file: {e}"))?;
        if skey.is_empty() {
            return Err(format!(
                "[duo] skey_file {}: empty; write the secret key from the Duo Admin Panel in it",
                c.skey_file.display()
            ));
        }
        let http = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls_config(c.ca_file.as_deref())?)
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(32)
            // Duo never redirects: a 3xx is an error, never a request sent elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mfa-sender/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("[duo]: {e}"))?;
        Ok(Client {
            http,
            host: c.host.clone(),
            ikey: c.ikey.clone(),
            skey: zeroize::Zeroizing::new(skey),
            signature: c.signature,
            timeout,
        })
    }

    /// The `[duo] timeout`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// One signed (or, for ping, unsigned) call; retries a 429 after its Retry-After when
    /// that fits the deadline. Returns Duo's `response`.
    fn call(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, String)],
        signed: bool,
        deadline: Instant,
    ) -> ApiResult<Value> {
        let what = format!("{method} {path}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ApiError::new(
                    ErrorKind::Unavailable,
                    format!("{what}: no time left before the deadline"),
                ));
            }
            let date = chrono::Utc::now().to_rfc2822();
            let s = sign(
                self.signature,
                &self.ikey,
                &self.skey,
                method,
                &self.host,
                path,
                params,
                &date,
            );
            let mut url = format!("https://{}{path}", self.host);
            if !s.query.is_empty() {
                url.push('?');
                url.push_str(&s.query);
            }
            let mut req = if method == "POST" {
                self.http.post(&url)
            } else {
                self.http.get(&url)
            };
            req = req.timeout(left.min(self.timeout));
            if signed {
                req = req
                    .header(reqwest::header::AUTHORIZATION, &s.authorization)
                    .header(s.date_header, &s.date);
            }
            if let Some((body, ctype)) = s.body {
                req = req.header(reqwest::header::CONTENT_TYPE, ctype).body(body);
            }
            let resp = req.send().map_err(|e| {
                let why = if e.is_timeout() {
                    format!(
                        "no answer within {} s",
                        left.min(self.timeout).as_secs_f32()
                    )
                } else {
                    // The chain of causes (connection refused, certificate unknown, ...).
                    let mut m = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        m.push_str(": ");
                        m.push_str(&s.to_string());
                        src = s.source();
                    }
                    m
                };
                ApiError::new(ErrorKind::Unavailable, format!("{what}: {why}"))
            })?;
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = resp.text().map_err(|e| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    format!("{what}: reading the answer: {e}"),
                )
            })?;
            let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let duo_error = || {
                let mut m = format!("{what}: HTTP {status}");
                if let Some(code) = json["code"].as_i64() {
                    m.push_str(&format!(" {code}"));
                }
                let msg = text(&json, "message");
                if !msg.is_empty() {
                    m.push_str(&format!(": {msg}"));
                }
                let detail = text(&json, "message_detail");
                if !detail.is_empty() {
                    m.push_str(&format!(" ({detail})"));
                }
                m
            };
            match status {
                200 => {
                    if json["stat"] == "OK" {
                        return Ok(json["response"].clone());
                    }
                    return Err(ApiError::new(
                        ErrorKind::Unavailable,
                        format!("{what}: HTTP 200 without stat OK: {}", duo_error()),
                    ));
                }
                429 => {
                    let wait = retry_after.unwrap_or(Duration::from_secs(1));
                    if Instant::now() + wait < deadline {
                        std::thread::sleep(wait);
                        continue;
                    }
                    return Err(ApiError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "{}; rate-limited beyond the deadline (Retry-After {} s)",
                            duo_error(),
                            wait.as_secs()
                        ),
                    ));
                }
                401 => {
                    return Err(ApiError::new(
                        ErrorKind::Credentials,
                        format!(
                            "{}; check [duo] ikey, skey_file, host and signature, and the clock",
                            duo_error()
                        ),
                    ));
                }
                500..=599 => return Err(ApiError::new(ErrorKind::Unavailable, duo_error())),
                _ => return Err(ApiError::new(ErrorKind::Refused, duo_error())),
            }
        }
    }

    /// `GET /auth/v2/ping` (unsigned): Duo's time.
    pub fn ping(&self, deadline: Instant) -> ApiResult<i64> {
        let r = self.call("GET", "/auth/v2/ping", &[], false, deadline)?;
        Ok(r["time"].as_i64().unwrap_or_default())
    }

    /// `GET /auth/v2/check`: the keys and the signature are right; Duo's time.
    pub fn check(&self, deadline: Instant) -> ApiResult<i64> {
        let r = self.call("GET", "/auth/v2/check", &[], true, deadline)?;
        Ok(r["time"].as_i64().unwrap_or_default())
    }

    /// `POST /auth/v2/preauth`.
    pub fn preauth(
        &self,
        username: &str,
        ipaddr: Option<&str>,
        hostname: &str,
        deadline: Instant,
    ) -> ApiResult<Preauth> {
        let mut p = vec![("username", username.to_string())];
        if let Some(ip) = ip_only(ipaddr) {
            p.push(("ipaddr", ip));
        }
        if !hostname.is_empty() {
            p.push(("hostname", hostname.to_string()));
        }
        let r = self.call("POST", "/auth/v2/preauth", &p, true, deadline)?;
        let devices = r["devices"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| Device {
                        device: text(d, "device"),
                        display_name: text(d, "display_name"),
                        kind: text(d, "type"),
                        capabilities: d["capabilities"]
                            .as_array()
                            .map(|c| {
                                c.iter()
                                    .filter_map(|x| x.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let result = text(&r, "result");
        if !matches!(result.as_str(), "auth" | "allow" | "deny" | "enroll") {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                format!("POST /auth/v2/preauth: unknown result {result:?}"),
            ));
        }
        Ok(Preauth {
            result,
            status_msg: text(&r, "status_msg"),
            enroll_portal_url: r["enroll_portal_url"].as_str().map(str::to_string),
            devices,
        })
    }

    /// `POST /auth/v2/auth`: push, phone and auto asynchronously (a txid to poll), sms and
    /// passcode synchronously.
    #[allow(clippy::too_many_arguments)]
    pub fn auth(
        &self,
        username: &str,
        factor: Factor,
        device: Option<&str>,
        passcode: Option<&str>,
        ipaddr: Option<&str>,
        hostname: &str,
        pushinfo: &[(String, String)],
        deadline: Instant,
    ) -> ApiResult<Started> {
        let asynchronous = matches!(factor, Factor::Push | Factor::Phone | Factor::Auto);
        let mut p = vec![
            ("username", username.to_string()),
            ("factor", factor.name().to_string()),
        ];
        if let Some(ip) = ip_only(ipaddr) {
            p.push(("ipaddr", ip));
        }
        if !hostname.is_empty() {
            p.push(("hostname", hostname.to_string()));
        }
        match factor {
            Factor::Passcode => {
                let code = passcode.unwrap_or_default();
                if code.is_empty() {
                    return Err(ApiError::new(
                        ErrorKind::Forbidden,
                        "factor passcode without a passcode",
                    ));
                }
                p.push(("passcode", code.to_string()));
            }
            _ => p.push(("device", device.unwrap_or("auto").to_string())),
        }
        if matches!(factor, Factor::Push | Factor::Auto) && !pushinfo.is_empty() {
            let info = pushinfo
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            p.push(("pushinfo", info));
        }
        if asynchronous {
            p.push(("async", "1".into()));
        }
        let r = self.call("POST", "/auth/v2/auth", &p, true, deadline)?;
        if asynchronous {
            let txid = text(&r, "txid");
            if txid.is_empty() {
                return Err(ApiError::new(
                    ErrorKind::Unavailable,
                    "POST /auth/v2/auth: async=1 answered without a txid",
                ));
            }
            return Ok(Started::Pending(txid));
        }
        Ok(Started::Done(AuthResult {
            result: text(&r, "result"),
            status: text(&r, "status"),
            status_msg: text(&r, "status_msg"),
            txid: String::new(),
        }))
    }

    /// `GET /auth/v2/auth_status?txid=`: the final answer, or `None` while Duo waits.
    pub fn auth_status(&self, txid: &str, deadline: Instant) -> ApiResult<Status> {
        let r = self.call(
            "GET",
            "/auth/v2/auth_status",
            &[("txid", txid.to_string())],
            true,
            deadline,
        )?;
        let msg = text(&r, "status_msg");
        match r["result"].as_str() {
            Some("waiting") => Ok((None, msg)),
            Some(result @ ("allow" | "deny")) => Ok((
                Some(AuthResult {
                    result: result.to_string(),
                    status: text(&r, "status"),
                    status_msg: msg.clone(),
                    txid: txid.to_string(),
                }),
                msg,
            )),
            other => Err(ApiError::new(
                ErrorKind::Unavailable,
                format!("GET /auth/v2/auth_status: unknown result {other:?}"),
            )),
        }
    }

    /// `POST /auth/v2/enroll`.
    pub fn enroll(&self, username: Option<&str>, deadline: Instant) -> ApiResult<Enrollment> {
        let p: Vec<(&str, String)> = username
            .map(|u| vec![("username", u.to_string())])
            .unwrap_or_default();
        let r = self.call("POST", "/auth/v2/enroll", &p, true, deadline)?;
        Ok(Enrollment {
            activation_barcode: text(&r, "activation_barcode"),
            activation_code: text(&r, "activation_code"),
            activation_url: text(&r, "activation_url"),
            expiration: r["expiration"].as_i64().unwrap_or_default(),
            user_id: text(&r, "user_id"),
            username: text(&r, "username"),
        })
    }

    /// `POST /auth/v2/enroll_status`: `success`, `waiting` or `invalid`.
    pub fn enroll_status(
        &self,
        user_id: &str,
        activation_code: &str,
        deadline: Instant,
    ) -> ApiResult<String> {
        let p = [
            ("user_id", user_id.to_string()),
            ("activation_code", activation_code.to_string()),
        ];
        let r = self.call("POST", "/auth/v2/enroll_status", &p, true, deadline)?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }
}
