//! `mfa.toml`: where the database, spool and runtime directory live.
//!
//! Loaded strictly, as pam-u2f loads its files: unknown keys and malformed TOML are errors
//! naming the file, line and key, and a file that anyone but root (or its owner, when that is
//! the user running us) could write is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store_config::StoreConfig;
use crate::{Error, Result};

/// The configuration file used when neither `--config` nor `MFA_CONFIG` names another.
pub const DEFAULT_CONFIG: &str = "/etc/mfa/mfa.toml";
/// The environment variable that names another configuration file.
pub const CONFIG_ENV: &str = "MFA_CONFIG";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where mfa keeps its files.
    #[serde(default)]
    pub paths: Paths,
    /// The SMTP transport of the sender (email and email-to-SMS gateways).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<Smtp>,
    /// The SMS API transport of the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<Sms>,
    /// How the sender runs.
    #[serde(default)]
    pub sender: Sender,
    /// `[duo]`: Duo's Auth API, which the sender talks to as the broker of method `duo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duo: Option<Duo>,
    /// `[callers]`: the accounts whose servers call PAM as themselves (PostgreSQL as
    /// `postgres`), each with the rules' service names the setuid helper `mfa-check` may
    /// decide for it. Any other unprivileged caller gets nothing. (Always written, empty by
    /// default, so that the table is there to fill in.)
    #[serde(default)]
    pub callers: BTreeMap<String, Vec<String>>,
    /// `[store]`: the embedded SQLite store (default) or a fleet's PostgreSQL.
    #[serde(default, skip_serializing_if = "StoreConfig::is_default")]
    pub store: StoreConfig,
}

/// How the sender talks to its SMTP server.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a local relay).
    None,
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

/// `[smtp]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of a private CA that signed the server's certificate (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the password, readable by the sender's user only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The From address of every message.
    pub from: String,
    /// Timeout of each SMTP operation, such as "10s".
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_smtp_port() -> u16 {
    25
}

fn default_timeout() -> String {
    "10s".into()
}

/// Which SMS API.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmsProvider {
    Twilio,
    Telesign,
}

/// `[sms]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    pub provider: SmsProvider,
    /// Twilio: the account SID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_sid: Option<String>,
    /// Twilio: file holding the auth token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_file: Option<PathBuf>,
    /// Twilio: the sending number (+E164), or use `messaging_service_sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Twilio: a messaging service instead of `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// TeleSign: the customer id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// TeleSign: file holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// The API's base URL (default: the provider's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Timeout of each request, such as "10s".
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

/// How requests to Duo's Auth API are signed.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DuoSignature {
    /// HMAC-SHA512 over date, method, host, path, parameters, the body's and the `X-Duo-*`
    /// headers' SHA-512, with the `X-Duo-Date` header (Duo's current scheme, "v5").
    #[default]
    Sha512,
    /// The older HMAC-SHA1 over date, method, host, path and parameters ("v2").
    Sha1,
}

/// `[duo]`: the Auth API v2 application the sender brokers for method `duo`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Duo {
    /// The API host, such as `api-XXXXXXXX.duosecurity.com` (a `host:port` for a test server).
    pub host: String,
    /// The integration key.
    pub ikey: String,
    /// The file holding the secret key, readable by the sender's user only.
    pub skey_file: PathBuf,
    /// How long a login waits for the answer to a push or a phone call, such as "60s"
    /// (at most 300 s); every HTTP request is bounded by it too.
    #[serde(default = "default_duo_timeout")]
    pub timeout: String,
    /// CA certificates (PEM) trusted for the API host instead of the built-in roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// How requests are signed (`sha512`, or `sha1` for an old integration).
    #[serde(default)]
    pub signature: DuoSignature,
    /// Push to the user's first capable device at once instead of showing a menu.
    #[serde(default)]
    pub autopush: bool,
}

/// The longest `[duo] timeout`.
pub const MAX_DUO_TIMEOUT: u32 = 300;

fn default_duo_timeout() -> String {
    "60s".into()
}

impl Duo {
    /// `timeout` in seconds, checked.
    pub fn timeout_secs(&self) -> std::result::Result<u32, String> {
        match crate::settings::parse_duration(&self.timeout) {
            Some(s) if (1..=MAX_DUO_TIMEOUT).contains(&s) => Ok(s),
            _ => Err(format!(
                "duo.timeout = {:?} is not a duration from 1s to {MAX_DUO_TIMEOUT}s; write one such as \"60s\"",
                self.timeout
            )),
        }
    }
}

/// `[sender]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Sender {
    /// Messages sent at once.
    pub workers: u16,
    /// The system account the sender runs as (`mfa`). `mfa-admin init` creates it when it is
    /// missing and gives its group read access to this file, the spool and the runtime
    /// directory; it never gets the rules database.
    pub user: String,
    /// Most passcodes the sender delivers to one destination (an address or a number) per
    /// `destination_window`; 0: no limit. Messages over it go to failed/ as `rate-limited`.
    pub destination_limit: u32,
    /// The window of `destination_limit`, such as "15m".
    pub destination_window: String,
    /// Most passcodes the sender delivers per hour in all (a host-wide cap on what a flood
    /// can cost); 0: no limit.
    pub hourly_limit: u32,
}

/// The account the sender runs as unless `[sender] user` names another.
pub const DEFAULT_SENDER_USER: &str = "mfa";

impl Default for Sender {
    fn default() -> Self {
        Sender {
            workers: 8,
            user: DEFAULT_SENDER_USER.to_string(),
            destination_limit: 5,
            destination_window: "15m".to_string(),
            hourly_limit: 300,
        }
    }
}

/// The longest `destination_window`: limits are kept in the sender's memory.
pub const MAX_DESTINATION_WINDOW: u32 = 86_400;

impl Sender {
    /// `destination_window` in seconds; an error names the key, the value and the fix.
    pub fn window_secs(&self) -> std::result::Result<u32, String> {
        match crate::settings::parse_duration(&self.destination_window) {
            Some(s) if s > 0 && s <= MAX_DESTINATION_WINDOW => Ok(s),
            _ => Err(format!(
                "sender.destination_window = {:?} is not a duration from 1s to 24h; \
                 write it like \"15m\" (s, m, h)",
                self.destination_window
            )),
        }
    }
}

/// The `[paths]` table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    /// The SQLite rule store.
    pub database: PathBuf,
    /// The message spool the PAM module writes and the sender drains.
    pub spool: PathBuf,
    /// Runtime state, such as the sender's heartbeat.
    pub runtime: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            database: PathBuf::from("/var/lib/mfa/mfa.db"),
            spool: PathBuf::from("/var/spool/mfa"),
            runtime: PathBuf::from("/run/mfa"),
        }
    }
}

/// Which file to read, and whether the administrator named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file.
    pub path: PathBuf,
    /// True when `--config` or `MFA_CONFIG` named it (a missing file is then an error).
    pub explicit: bool,
}

impl ConfigSource {
    /// Picks the file: the explicit argument, else `MFA_CONFIG`, else [`DEFAULT_CONFIG`].
    pub fn resolve(arg: Option<&Path>) -> Self {
        if let Some(p) = arg {
            return ConfigSource {
                path: p.to_path_buf(),
                explicit: true,
            };
        }
        Self::named_or_default(std::env::var_os(CONFIG_ENV))
    }

    /// The file a value of `MFA_CONFIG` names (explicit), else [`DEFAULT_CONFIG`] when the
    /// value is absent or empty.
    pub fn named_or_default(value: Option<std::ffi::OsString>) -> Self {
        match value {
            Some(p) if !p.is_empty() => ConfigSource {
                path: PathBuf::from(p),
                explicit: true,
            },
            _ => Self::default_file(),
        }
    }

    /// [`DEFAULT_CONFIG`], not named by the administrator (a missing file means the built-in
    /// defaults).
    pub fn default_file() -> Self {
        ConfigSource {
            path: PathBuf::from(DEFAULT_CONFIG),
            explicit: false,
        }
    }
}

impl Config {
    /// Reads and checks the configuration. A missing default file means the built-in defaults;
    /// a missing file the administrator named is an error.
    pub fn load(source: &ConfigSource) -> Result<Config> {
        let path = &source.path;
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !source.explicit => {
                return Ok(Config::default());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Config(format!(
                    "{}: configuration file not found; create it (mfa-admin init writes one) \
                     or point --config / {CONFIG_ENV} at an existing file",
                    path.display()
                )));
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        check_not_writable_by_others(path)?;
        Config::parse(path, &text)
    }

    /// Parses configuration text; `path` only names the file in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            Error::Config(format!(
                "{}, line {line}, column {col}: {}",
                path.display(),
                e.message().trim_end()
            ))
        })?;
        for (key, p) in [
            ("paths.database", &config.paths.database),
            ("paths.spool", &config.paths.spool),
            ("paths.runtime", &config.paths.runtime),
        ] {
            if !p.is_absolute() {
                let line = text
                    .lines()
                    .position(|l| {
                        l.trim_start()
                            .starts_with(key.rsplit('.').next().unwrap_or(key))
                    })
                    .map_or(0, |i| i + 1);
                return Err(Error::Config(format!(
                    "{}, line {line}: {key} = {:?} must be an absolute path such as {:?}",
                    path.display(),
                    p.display().to_string(),
                    Paths::default().path_for(key).display().to_string()
                )));
            }
        }
        let user = &config.sender.user;
        if !valid_account(user) {
            return Err(Error::Config(format!(
                "{}: sender.user = {user:?} is not a user name; use a system account such as \"{DEFAULT_SENDER_USER}\"",
                path.display()
            )));
        }
        config
            .sender
            .window_secs()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        check_callers(path, text, &config.callers)?;
        config
            .store
            .check()
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        if let Some(duo) = &config.duo {
            duo.timeout_secs()
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            if duo.host.is_empty() || duo.host.contains(['/', ' ', '@']) || duo.ikey.is_empty() {
                return Err(Error::Config(format!(
                    "{}: [duo] needs host (such as \"api-XXXXXXXX.duosecurity.com\", no scheme or \
                     path) and ikey (the integration key) from the Duo Admin Panel",
                    path.display()
                )));
            }
            if !duo.skey_file.is_absolute() {
                return Err(Error::Config(format!(
                    "{}: duo.skey_file = {:?} must be an absolute path",
                    path.display(),
                    duo.skey_file.display().to_string()
                )));
            }
        }
        Ok(config)
    }

    /// Whether the unprivileged account `caller` may ask `mfa-check` for decisions of
    /// `service` (listed under `[callers]`).
    pub fn caller_may_ask(&self, caller: &str, service: &str) -> bool {
        self.callers
            .get(caller)
            .is_some_and(|services| services.iter().any(|s| s == service))
    }

    /// The configuration as TOML text, as `mfa-admin init` writes it.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).unwrap_or_default();
        format!(
            "# mfa configuration (root:mfa 0640). Rules live in the database and change through\n\
             # mfa-admin; this file says where mfa keeps its files and how the sender delivers:\n\
             # add an [smtp] or [sms] table (README, \"The sender\").\n\n{body}"
        )
    }
}

/// Checks `[callers]`: each key an account name, each value a list of service names (not
/// `*`: a caller asks for named services only); root is not a caller (it needs no helper).
fn check_callers(path: &Path, text: &str, callers: &BTreeMap<String, Vec<String>>) -> Result<()> {
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map_or(0, |i| i + 1)
    };
    for (account, services) in callers {
        let at = line_of(account);
        if !valid_account(account) {
            return Err(Error::Config(format!(
                "{}, line {at}: callers: {account:?} is not an account name; write the user \
                 the server runs as, such as postgres = [\"postgresql\"]",
                path.display()
            )));
        }
        if account == "root" {
            return Err(Error::Config(format!(
                "{}, line {at}: callers: root needs no helper (the module reads the rules \
                 itself when it runs as root); remove the root entry",
                path.display()
            )));
        }
        for s in services {
            if s == crate::validate::ANY_SERVICE || crate::validate::service(s).is_err() {
                return Err(Error::Config(format!(
                    "{}, line {at}: callers.{account}: {s:?} is not a service name; list the \
                     rules' service names this account's server asks about (its PAM service \
                     or the module's service=), such as \"postgresql\"; * is not allowed",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// A system account's name: letters, digits, `_`, `-`, `.`, at most 32, not starting with `-`.
fn valid_account(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 32
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

impl Paths {
    fn path_for(&self, key: &str) -> &Path {
        match key {
            "paths.spool" => &self.spool,
            "paths.runtime" => &self.runtime,
            _ => &self.database,
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Refuses a file (or directory) that a user other than root or the file's owner (when that
/// owner is the user running us) could write: such a file could rewrite who must prove a
/// second factor.
pub fn check_not_writable_by_others(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let euid = nix::unistd::geteuid().as_raw();
    let owner = meta.uid();
    if owner != 0 && owner != euid {
        return Err(Error::Insecure(format!(
            "{}: refusing to use it: owned by uid {owner}, not by root or uid {euid}; \
             fix with: chown root: {}",
            path.display(),
            path.display()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let who = if mode & 0o002 != 0 {
            "everyone"
        } else {
            "its group"
        };
        return Err(Error::Insecure(format!(
            "{}: refusing to use it: mode {mode:04o} lets {who} write it; fix with: chmod go-w {}",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_default_reads_back() {
        let text = Config::default().to_toml();
        assert!(
            text.contains("database = \"/var/lib/mfa/mfa.db\""),
            "{text}"
        );
        assert_eq!(
            Config::parse(Path::new("x"), &text).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn transports() {
        let text = "[smtp]\nhost = \"mail.example.com\"\nport = 587\ntls = \"starttls\"\nfrom = \"mfa@example.com\"\n\n[sms]\nprovider = \"twilio\"\naccount_sid = \"AC1\"\n";
        let c = Config::parse(Path::new("c"), text).unwrap();
        assert_eq!(c.smtp.unwrap().port, 587);
        assert_eq!(c.sms.unwrap().provider, SmsProvider::Twilio);
        let e = Config::parse(
            Path::new("c"),
            "[smtp]\nhost = \"h\"\nfrom = \"f@x.com\"\ntls = \"ssl\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 4") && e.contains("ssl"), "{e}");
    }

    #[test]
    fn defaults_when_empty() {
        let c = Config::parse(Path::new("x.toml"), "").unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[paths]\ndatabase = \"/tmp/a.db\"\nspoool = \"/tmp/s\"\n";
        let e = Config::parse(Path::new("/etc/x.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/x.toml, line 3"), "{e}");
        assert!(e.contains("spoool"), "{e}");
    }

    #[test]
    fn relative_path_refused() {
        let e = Config::parse(Path::new("c"), "[paths]\nspool = \"spool\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("paths.spool") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn sender_limits_default_and_validate() {
        let c = Config::parse(Path::new("c"), "").unwrap();
        assert_eq!(
            (c.sender.destination_limit, c.sender.hourly_limit),
            (5, 300)
        );
        assert_eq!(c.sender.window_secs(), Ok(900));
        let c = Config::parse(
            Path::new("c"),
            "[sender]\ndestination_limit = 0\ndestination_window = \"1h\"\nhourly_limit = 0\n",
        )
        .unwrap();
        assert_eq!(c.sender.window_secs(), Ok(3600));
        for bad in ["\"0\"", "\"15\"", "\"2d\"", "\"-1m\"", "\"fifteen\""] {
            let e = Config::parse(
                Path::new("/etc/mfa/mfa.toml"),
                &format!("[sender]\ndestination_window = {bad}\n"),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("/etc/mfa/mfa.toml") && e.contains("sender.destination_window"),
                "{e}"
            );
        }
        let e = Config::parse(Path::new("c"), "[sender]\nhourly_limit = -1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn callers_parse_and_answer() {
        let c = Config::parse(
            Path::new("c"),
            "[callers]\npostgres = [\"postgresql\", \"pg-other\"]\nproftpd = []\n",
        )
        .unwrap();
        assert!(c.caller_may_ask("postgres", "postgresql"));
        assert!(c.caller_may_ask("postgres", "pg-other"));
        assert!(!c.caller_may_ask("postgres", "sshd"));
        assert!(!c.caller_may_ask("proftpd", "proftpd"));
        assert!(!c.caller_may_ask("nobody", "postgresql"));
        // None by default, and the default file says so with an empty table.
        let d = Config::default();
        assert!(d.callers.is_empty() && !d.caller_may_ask("postgres", "postgresql"));
        assert!(d.to_toml().contains("[callers]"), "{}", d.to_toml());
    }

    #[test]
    fn callers_refuse_what_makes_no_sense() {
        for (text, want) in [
            (
                "[callers]\npostgres = [\"*\"]\n",
                "line 2: callers.postgres: \"*\"",
            ),
            (
                "[callers]\npostgres = [\"pg sql\"]\n",
                "is not a service name",
            ),
            ("[callers]\npostgres = [\"\"]\n", "is not a service name"),
            (
                "[callers]\nroot = [\"sshd\"]\n",
                "line 2: callers: root needs no helper",
            ),
            ("[callers]\n\"-x\" = [\"sshd\"]\n", "is not an account name"),
            (
                "[callers]\n\"a b\" = [\"sshd\"]\n",
                "is not an account name",
            ),
            ("[callers]\npostgres = \"postgresql\"\n", "line 2"),
            ("[callers]\npostgres = [1]\n", "line 2"),
            ("[callers.postgres]\nservice = \"x\"\n", "line 1"),
        ] {
            let e = Config::parse(Path::new("/etc/mfa/mfa.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("/etc/mfa/mfa.toml") && e.contains(want),
                "{text:?}: {e}"
            );
        }
    }

    #[test]
    fn malformed_names_line() {
        let e = Config::parse(Path::new("c"), "[paths]\ndatabase = \n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c, line 2"), "{e}");
    }
}
