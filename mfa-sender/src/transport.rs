//! The transports: SMTP (lettre, rustls, pooled) for email and email-to-SMS gateways, and the
//! HTTP SMS APIs of Twilio and TeleSign (reqwest, rustls). Each send ends in a [`Delivery`]:
//! accepted, worth retrying (with the server's Retry-After when it gave one), or refused for
//! good with the server's reason.

use std::path::Path;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use mfa_core::config::{Config, SmsProvider, SmtpTls};
use mfa_core::contact::Channel;
use mfa_core::spool::Message;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The server or API accepted the message.
    Sent(String),
    /// Try again later (connection refused, timeout, SMTP 4xx, HTTP 429/5xx).
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Give up (SMTP 5xx, invalid number, ...).
    Permanent(String),
}

/// Every configured transport.
pub struct Transports {
    smtp: Option<SmtpSender>,
    sms: Option<SmsSender>,
}

struct SmtpSender {
    transport: SmtpTransport,
    from: Mailbox,
    host: String,
}

struct SmsSender {
    client: reqwest::blocking::Client,
    provider: SmsProvider,
    base: String,
    user: String,
    secret: String,
    from: Option<String>,
    messaging_service: Option<String>,
}

/// Reads a secret file, which must be readable by its owner only.
pub fn read_secret(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{}: secret file has mode {:04o}; make it readable by the sender only: chmod 600 {}",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn duration(what: &str, text: &str) -> Result<Duration, String> {
    mfa_core::settings::parse_duration(text)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(u64::from(s)))
        .ok_or_else(|| format!("{what}: invalid timeout {text:?}; expected a duration such as 10s"))
}

impl Transports {
    /// Builds the transports of a configuration; errors name the key and the fix.
    pub fn new(config: &Config) -> Result<Transports, String> {
        Ok(Transports {
            smtp: config.smtp.as_ref().map(SmtpSender::new).transpose()?,
            sms: config.sms.as_ref().map(SmsSender::new).transpose()?,
        })
    }

    /// Sends one message by the transport of its channel.
    pub fn send(&self, msg: &Message) -> Delivery {
        match msg.channel {
            Channel::Email | Channel::SmsGateway => match &self.smtp {
                Some(s) => s.send(msg),
                None => Delivery::Permanent("no [smtp] transport is configured".into()),
            },
            Channel::Sms => match &self.sms {
                Some(s) => s.send(msg),
                None => Delivery::Permanent("no [sms] transport is configured".into()),
            },
        }
    }

    /// Connects to each transport and checks its credentials; one line per transport.
    pub fn check(&self) -> Vec<(String, Result<String, String>)> {
        let mut out = Vec::new();
        if let Some(s) = &self.smtp {
            let r = match s.transport.test_connection() {
                Ok(true) => Ok(format!("connected to {}, EHLO/TLS/AUTH accepted", s.host)),
                Ok(false) => Err(format!("{} did not accept the connection", s.host)),
                Err(e) => Err(format!("{}: {e}", s.host)),
            };
            out.push(("smtp".to_string(), r));
        }
        if let Some(s) = &self.sms {
            out.push((format!("sms ({:?})", s.provider).to_lowercase(), s.check()));
        }
        if out.is_empty() {
            out.push((
                "transports".into(),
                Err("no [smtp] or [sms] section in the configuration".into()),
            ));
        }
        out
    }
}

impl SmtpSender {
    fn new(c: &mfa_core::config::Smtp) -> Result<SmtpSender, String> {
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| format!("[smtp] from = {:?}: {e}", c.from))?;
        let tls_params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(c.host.clone());
            if let Some(ca) = &c.ca_file {
                let pem = std::fs::read(ca)
                    .map_err(|e| format!("[smtp] ca_file {}: {e}", ca.display()))?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| format!("[smtp] ca_file {}: {e}", ca.display()))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| format!("[smtp] TLS: {e}"))
        };
        let tls = match c.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_params()?),
            SmtpTls::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut b = SmtpTransport::builder_dangerous(c.host.clone())
            .port(c.port)
            .tls(tls)
            .timeout(Some(duration("[smtp] timeout", &c.timeout)?))
            .pool_config(
                PoolConfig::new()
                    .max_size(16)
                    .idle_timeout(Duration::from_secs(30)),
            );
        match (&c.username, &c.password_file) {
            (Some(u), Some(p)) => b = b.credentials(Credentials::new(u.clone(), read_secret(p)?)),
            (None, None) => {}
            _ => return Err("[smtp]: give both username and password_file, or neither".into()),
        }
        Ok(SmtpSender {
            transport: b.build(),
            from,
            host: c.host.clone(),
        })
    }

    fn send(&self, msg: &Message) -> Delivery {
        let to: Mailbox = match msg.to.parse() {
            Ok(m) => m,
            Err(e) => return Delivery::Permanent(format!("invalid recipient: {e}")),
        };
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .message_id(Some(format!("<{}@mfa>", msg.id)))
            .header(ContentType::TEXT_PLAIN)
            .body(msg.body.clone());
        let email = match email {
            Ok(e) => e,
            Err(e) => return Delivery::Permanent(format!("cannot build the message: {e}")),
        };
        let mut first_error = None;
        // A pooled connection may have been closed by the server while idle: one immediate
        // retry on a fresh connection before calling it transient.
        for _ in 0..2 {
            match self.transport.send(&email) {
                Ok(r) => return Delivery::Sent(r.code().to_string()),
                // 530/534/535/538: the server refused our credentials (or wants TLS first).
                // That is the configuration's fault, not the message's: keep it queued, as
                // Postfix's smtp_sasl_auth_soft_bounce does, until the administrator fixes it.
                Err(e)
                    if e.status()
                        .is_some_and(|c| matches!(u16::from(c), 530 | 534 | 535 | 538)) =>
                {
                    return Delivery::Transient {
                        reason: format!("{e} (check [smtp] username, password_file and tls)"),
                        retry_after: None,
                    };
                }
                Err(e) if e.is_permanent() => return Delivery::Permanent(e.to_string()),
                Err(e) if e.is_transient() => {
                    return Delivery::Transient {
                        reason: e.to_string(),
                        retry_after: None,
                    };
                }
                Err(e) => first_error = Some(e.to_string()),
            }
        }
        Delivery::Transient {
            reason: first_error.unwrap_or_default(),
            retry_after: None,
        }
    }
}

impl SmsSender {
    fn new(c: &mfa_core::config::Sms) -> Result<SmsSender, String> {
        let client = reqwest::blocking::Client::builder()
            .timeout(duration("[sms] timeout", &c.timeout)?)
            .user_agent(concat!("mfa-sender/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("[sms]: {e}"))?;
        let need = |v: &Option<String>, key: &str| {
            v.clone()
                .ok_or_else(|| format!("[sms] provider {:?} needs {key}", c.provider))
        };
        let (base, user, secret) = match c.provider {
            SmsProvider::Twilio => {
                if c.from.is_none() && c.messaging_service_sid.is_none() {
                    return Err("[sms] twilio needs from or messaging_service_sid".into());
                }
                let token = c
                    .auth_token_file
                    .as_ref()
                    .ok_or("[sms] twilio needs auth_token_file")?;
                (
                    c.base_url
                        .clone()
                        .unwrap_or_else(|| "https://api.twilio.com".into()),
                    need(&c.account_sid, "account_sid")?,
                    read_secret(token)?,
                )
            }
            SmsProvider::Telesign => {
                let key = c
                    .api_key_file
                    .as_ref()
                    .ok_or("[sms] telesign needs api_key_file")?;
                (
                    c.base_url
                        .clone()
                        .unwrap_or_else(|| "https://rest-api.telesign.com".into()),
                    need(&c.customer_id, "customer_id")?,
                    read_secret(key)?,
                )
            }
        };
        Ok(SmsSender {
            client,
            provider: c.provider,
            base: base.trim_end_matches('/').to_string(),
            user,
            secret,
            from: c.from.clone(),
            messaging_service: c.messaging_service_sid.clone(),
        })
    }

    fn send(&self, msg: &Message) -> Delivery {
        let req = match self.provider {
            SmsProvider::Twilio => {
                let mut form = vec![("To", msg.to.clone()), ("Body", msg.body.clone())];
                match (&self.messaging_service, &self.from) {
                    (Some(s), _) => form.push(("MessagingServiceSid", s.clone())),
                    (None, Some(f)) => form.push(("From", f.clone())),
                    (None, None) => return Delivery::Permanent("no From".into()),
                }
                self.client
                    .post(format!(
                        "{}/2010-04-01/Accounts/{}/Messages.json",
                        self.base, self.user
                    ))
                    .basic_auth(&self.user, Some(&self.secret))
                    .form(&form)
            }
            SmsProvider::Telesign => {
                let number = msg.to.trim_start_matches('+').to_string();
                self.client
                    .post(format!("{}/v1/messaging", self.base))
                    .basic_auth(&self.user, Some(&self.secret))
                    .form(&[
                        ("phone_number", number),
                        ("message", msg.body.clone()),
                        ("message_type", "OTP".into()),
                    ])
            }
        };
        let resp = match req.send() {
            Ok(r) => r,
            Err(e) => {
                return Delivery::Transient {
                    reason: format!("request failed: {e}"),
                    retry_after: None,
                };
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        match (self.provider, status) {
            (SmsProvider::Twilio, 200 | 201) => {
                Delivery::Sent(json["sid"].as_str().unwrap_or("accepted").to_string())
            }
            (SmsProvider::Telesign, 200..=299) => {
                let code = json["status"]["code"].as_i64().unwrap_or(0);
                if (200..300).contains(&code) {
                    Delivery::Sent(
                        json["reference_id"]
                            .as_str()
                            .unwrap_or("accepted")
                            .to_string(),
                    )
                } else {
                    Delivery::Permanent(format!(
                        "telesign status {code}: {}",
                        json["status"]["description"].as_str().unwrap_or("")
                    ))
                }
            }
            (_, 429) | (_, 500..=599) => Delivery::Transient {
                reason: format!("HTTP {status}: {}", api_reason(self.provider, &json)),
                retry_after,
            },
            // Refused credentials are a configuration error the administrator can fix (and
            // SIGHUP): keep the messages queued, as for an SMTP authentication failure.
            (_, 401 | 403) => Delivery::Transient {
                reason: format!(
                    "HTTP {status}: {}; credentials refused: check [sms] account_sid/auth_token_file or customer_id/api_key_file",
                    api_reason(self.provider, &json)
                ),
                retry_after,
            },
            (_, s) => {
                Delivery::Permanent(format!("HTTP {s}: {}", api_reason(self.provider, &json)))
            }
        }
    }

    fn check(&self) -> Result<String, String> {
        let url = match self.provider {
            SmsProvider::Twilio => format!("{}/2010-04-01/Accounts/{}.json", self.base, self.user),
            // TeleSign has no account endpoint: a status query for an unknown reference
            // answers 404 to good credentials and 401 to bad ones.
            SmsProvider::Telesign => format!(
                "{}/v1/messaging/00000000000000000000000000000000",
                self.base
            ),
        };
        let resp = self
            .client
            .get(&url)
            .basic_auth(&self.user, Some(&self.secret))
            .send()
            .map_err(|e| format!("{url}: {e}"))?;
        match resp.status().as_u16() {
            401 | 403 => Err(format!(
                "{url}: credentials refused (HTTP {})",
                resp.status().as_u16()
            )),
            200..=299 => Ok(format!("{} answered, credentials accepted", self.base)),
            // Only TeleSign's probe expects 404; from Twilio it means the account resource
            // was not there (a wrong base_url or account_sid), so nothing was verified.
            404 if self.provider == SmsProvider::Telesign => {
                Ok(format!("{} answered, credentials accepted", self.base))
            }
            s => Err(format!("{url}: HTTP {s}")),
        }
    }
}

fn api_reason(provider: SmsProvider, json: &serde_json::Value) -> String {
    match provider {
        SmsProvider::Twilio => format!(
            "twilio {} {}",
            json["code"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            json["message"].as_str().unwrap_or("")
        )
        .trim()
        .to_string(),
        SmsProvider::Telesign => format!(
            "telesign {} {}",
            json["status"]["code"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            json["status"]["description"].as_str().unwrap_or("")
        )
        .trim()
        .to_string(),
    }
}
