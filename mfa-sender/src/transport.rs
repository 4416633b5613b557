//! The transports: SMTP (our own client, rustls, pooled: see `smtp`) for email and email-to-SMS gateways, and the
//! HTTP SMS APIs of Twilio and TeleSign (reqwest, rustls). Each send ends in a [`Delivery`]:
//! accepted, worth retrying (with the server's Retry-After when it gave one), or refused for
//! good with the server's reason.

use std::path::Path;
use std::time::Duration;

use std::sync::Arc;

use crate::smtp::{self, Failure, Pool, Security};
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
    pool: Pool,
    /// The From header as configured.
    from: String,
    /// The envelope sender.
    from_addr: String,
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

/// Reads a secret file after [`crate::preflight::secret`] found it private and readable
/// (0640 root:<sender group>, or 0600/0400 owned by the sender's user).
pub fn read_secret(path: &Path) -> Result<String, String> {
    crate::preflight::secret(path)?;
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
            smtp: config
                .smtp
                .as_ref()
                .map(|c| SmtpSender::new(c, usize::from(config.sender.workers.max(1))))
                .transpose()?,
            sms: config.sms.as_ref().map(SmsSender::new).transpose()?,
        })
    }

    /// Sends one message by the transport of its channel. Reasons never carry the full
    /// recipient (servers like to quote it): it is replaced by the masked form.
    pub fn send(&self, msg: &Message) -> Delivery {
        match self.send_raw(msg) {
            Delivery::Transient {
                reason,
                retry_after,
            } => Delivery::Transient {
                reason: redact(&reason, msg),
                retry_after,
            },
            Delivery::Permanent(reason) => Delivery::Permanent(redact(&reason, msg)),
            sent => sent,
        }
    }

    fn send_raw(&self, msg: &Message) -> Delivery {
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

    /// Closes (QUIT) the SMTP connections idle for [`smtp::IDLE_LIMIT`] or longer; an idle
    /// worker calls it, so a slow server never holds up the loop.
    pub fn expire_idle(&self) -> usize {
        self.smtp.as_ref().map_or(0, |s| s.pool.expire())
    }

    /// Closes every idle SMTP connection with QUIT (at shutdown).
    pub fn close(&self) {
        if let Some(s) = &self.smtp {
            s.pool.close();
        }
    }

    /// SMTP connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.smtp.as_ref().map_or(0, |s| s.pool.opened())
    }

    /// Connects to each transport and checks its credentials; one line per transport (none
    /// when none is configured).
    pub fn check(&self) -> Vec<(String, Result<String, String>)> {
        let mut out = Vec::new();
        if let Some(s) = &self.smtp {
            out.push(("smtp".to_string(), s.check()));
        }
        if let Some(s) = &self.sms {
            out.push((format!("sms ({:?})", s.provider).to_lowercase(), s.check()));
        }
        out
    }
}

impl SmtpSender {
    /// `workers`: how many connections the pool may keep (one per worker).
    fn new(c: &mfa_core::config::Smtp, workers: usize) -> Result<SmtpSender, String> {
        // The envelope sender: the address inside `Name <addr>`, or the whole value.
        let from_addr = match (c.from.rfind('<'), c.from.rfind('>')) {
            (Some(a), Some(b)) if a < b => c.from[a + 1..b].trim().to_string(),
            _ => c.from.trim().to_string(),
        };
        // A local relay may use a dotless domain (mfa@localhost): only refuse what could
        // break the SMTP command or the header.
        let bad = from_addr.is_empty()
            || !from_addr.contains('@')
            || from_addr
                .chars()
                .any(|ch| ch.is_whitespace() || ch.is_control() || "<>,;\"".contains(ch))
            || c.from.chars().any(char::is_control);
        if bad {
            return Err(format!(
                "[smtp] from = {:?}: expected an address such as mfa@example.com or \"mfa <mfa@example.com>\"",
                c.from
            ));
        }
        let security = match c.tls {
            SmtpTls::None => Security::None,
            SmtpTls::Starttls => Security::StartTls,
            SmtpTls::Tls => Security::Tls,
        };
        let tls = match security {
            Security::None => None,
            _ => Some(Arc::new(tls_config(c.ca_file.as_deref())?)),
        };
        let credentials = match (&c.username, &c.password_file) {
            (Some(u), Some(p)) => Some((u.clone(), read_secret(p)?)),
            (None, None) => None,
            _ => return Err("[smtp]: give both username and password_file, or neither".into()),
        };
        let settings = smtp::Settings {
            host: c.host.clone(),
            port: c.port,
            security,
            tls,
            credentials,
            timeout: duration("[smtp] timeout", &c.timeout)?,
            hello: mfa_core::settings::host_name(),
        };
        Ok(SmtpSender {
            pool: Pool::new(settings, workers),
            from: c.from.clone(),
            from_addr,
            host: c.host.clone(),
        })
    }

    fn send(&self, msg: &Message) -> Delivery {
        let Ok(to) = mfa_core::contact::email(&msg.to) else {
            return Delivery::Permanent(format!("invalid recipient {}", msg.masked_to));
        };
        let date = chrono::Utc::now().to_rfc2822();
        let data = smtp::format_message(
            &self.from,
            &to,
            &msg.subject,
            &msg.body,
            &format!("<{}@mfa>", msg.id),
            &date,
        );
        match self.pool.send(&self.from_addr, &to, &data) {
            Ok(r) => Delivery::Sent(r.code.to_string()),
            Err(e) => classify(e),
        }
    }

    fn check(&self) -> Result<String, String> {
        let c = smtp::Connection::open(self.pool.settings())
            .map_err(|e| format!("{}: {e}", self.host))?;
        c.quit();
        // Only what was done: no TLS claimed without TLS, no AUTH without a login.
        let st = self.pool.settings();
        let mut steps = vec!["EHLO"];
        match st.security {
            Security::None => {}
            Security::StartTls => steps.push("STARTTLS"),
            Security::Tls => steps.push("TLS"),
        }
        if st.credentials.is_some() {
            steps.push("AUTH");
        }
        let mut text = format!("connected to {}, {} accepted", self.host, steps.join("/"));
        if st.security == Security::None {
            text.push_str("; no TLS");
        }
        if st.credentials.is_none() {
            text.push_str("; no login");
        }
        Ok(text)
    }
}

/// Replaces the recipient (as given, without its `+`, and any `<address>`) by its masked
/// form in a server's reason.
fn redact(reason: &str, msg: &Message) -> String {
    let mut out = reason.replace(&msg.to, &msg.masked_to);
    let digits = msg.to.trim_start_matches('+');
    if digits.len() >= 6 {
        out = out.replace(digits, &msg.masked_to);
    }
    // Any other <...@...> the server quoted.
    let mut clean = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find('<') {
        match rest[i..].find('>') {
            Some(j) if rest[i..i + j].contains('@') => {
                clean.push_str(&rest[..i]);
                clean.push_str("<***>");
                rest = &rest[i + j + 1..];
            }
            _ => {
                clean.push_str(&rest[..=i]);
                rest = &rest[i + 1..];
            }
        }
    }
    clean.push_str(rest);
    clean
}

/// What a failed SMTP attempt means for the message.
fn classify(e: Failure) -> Delivery {
    match &e {
        Failure::Connection(_) | Failure::AfterData(_) => Delivery::Transient {
            reason: e.to_string(),
            retry_after: None,
        },
        // 530/534/535/538: the server refused our credentials (or wants TLS first). That is
        // the configuration's fault, not the message's: keep it queued, as Postfix's
        // smtp_sasl_auth_soft_bounce does, until the administrator fixes it.
        Failure::Refused { reply, .. } if matches!(reply.code, 530 | 534 | 535 | 538) => {
            Delivery::Transient {
                reason: format!("{e} (check [smtp] username, password_file and tls)"),
                retry_after: None,
            }
        }
        Failure::Refused { reply, .. } if (500..600).contains(&reply.code) => {
            Delivery::Permanent(e.to_string())
        }
        Failure::Refused { .. } => Delivery::Transient {
            reason: e.to_string(),
            retry_after: None,
        },
    }
}

/// The TLS client configuration: Mozilla's roots (webpki-roots), plus a private CA.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .map_err(|e| format!("[smtp] ca_file {}: {e}", ca.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("[smtp] ca_file {}: {e}", ca.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "[smtp] ca_file {}: no PEM certificate in it",
                ca.display()
            ));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("[smtp] ca_file {}: {e}", ca.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
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
