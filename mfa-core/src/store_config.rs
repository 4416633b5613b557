//! `[store]` in `mfa.toml`: which store holds the rules. `sqlite` (the default) is the
//! embedded database of one machine; `postgres` makes this host a member of a fleet whose
//! rules and logs live in one PostgreSQL database (the `mfa-fleet` crate). Either way logins
//! read only local files: in a fleet the local database is a replica that `mfa-fleetd`
//! keeps up to date (`crate::store::fleet`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which store holds the rules.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded SQLite database of this machine alone.
    #[default]
    Sqlite,
    /// A fleet: the rules and logs of many hosts in one PostgreSQL database.
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` or `postgres`.
    pub backend: Backend,
    /// `postgres`: the server, as `postgresql://USER@HOST:PORT/DATABASE` (no password: that
    /// goes in `password_file`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `postgres`: a file holding the role's password, readable by root alone (0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// `postgres`: the CA certificate(s) (PEM) the server's certificate must chain to. The
    /// connection then uses TLS and checks the server's name; without it only a server on
    /// this machine (127.0.0.1, ::1, localhost) may be reached, in plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// `postgres`: this host's name in the fleet (its log rows, `fleet status`); by default
    /// the machine's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `postgres`: how often `mfa-fleetd` checks the central store even without a
    /// notification, such as "5s".
    pub poll: String,
}

/// `[store] poll` unless set.
pub const DEFAULT_POLL: &str = "5s";

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Sqlite,
            url: None,
            password_file: None,
            ca_file: None,
            host: None,
            poll: DEFAULT_POLL.to_string(),
        }
    }
}

impl StoreConfig {
    /// Whether this is the built-in default (not written by `mfa-admin init`).
    pub fn is_default(&self) -> bool {
        *self == StoreConfig::default()
    }

    /// Whether this host follows a central PostgreSQL store.
    pub fn is_fleet(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// `poll` in seconds.
    pub fn poll_secs(&self) -> std::result::Result<u32, String> {
        match crate::settings::parse_duration(&self.poll) {
            Some(s) if (1..=3600).contains(&s) => Ok(s),
            _ => Err(format!(
                "store.poll = {:?} is not a duration from 1s to 1h; write one such as \"5s\"",
                self.poll
            )),
        }
    }

    /// This host's name in the fleet: `host`, else the machine's host name.
    pub fn host_name(&self) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| valid_host(h))
            .unwrap_or_else(|| "localhost".to_string())
    }

    /// Checks the table; the error names the key and the fix.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.poll_secs()?;
        if let Some(h) = &self.host
            && !valid_host(h)
        {
            return Err(format!(
                "store.host = {h:?} is not a host name: 1 to 64 letters, digits, '.', '-' or '_'"
            ));
        }
        for (key, p) in [
            ("store.password_file", &self.password_file),
            ("store.ca_file", &self.ca_file),
        ] {
            if let Some(p) = p
                && !p.is_absolute()
            {
                return Err(format!(
                    "{key} = {:?} must be an absolute path",
                    p.display().to_string()
                ));
            }
        }
        match self.backend {
            Backend::Sqlite => {
                if self.url.is_some() || self.password_file.is_some() || self.ca_file.is_some() {
                    return Err("store.url, store.password_file and store.ca_file are for \
                                backend = \"postgres\"; remove them or set the backend"
                        .to_string());
                }
                Ok(())
            }
            Backend::Postgres => {
                let Some(url) = &self.url else {
                    return Err("store.backend = \"postgres\" needs store.url, such as \
                                \"postgresql://mfa@db.example.com:5432/mfa\""
                        .to_string());
                };
                check_url(url)
            }
        }
    }
}

/// A fleet host name: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 64
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A `postgresql://` URL without a password in it.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return Err(format!(
            "store.url = {url:?} is not a PostgreSQL URL; write it as \
             \"postgresql://USER@HOST:PORT/DATABASE\""
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && userinfo.contains(':')
    {
        return Err(
            "store.url holds a password; remove it from the URL and put it in \
                    store.password_file (a file readable by root alone)"
                .to_string(),
        );
    }
    if rest.contains("password=") {
        return Err("store.url holds a password parameter; put the password in \
                    store.password_file (a file readable by root alone)"
            .to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(url: &str) -> StoreConfig {
        StoreConfig {
            backend: Backend::Postgres,
            url: Some(url.to_string()),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn urls() {
        assert!(fleet("postgresql://mfa@db:5432/mfa").check().is_ok());
        assert!(fleet("postgres://mfa@127.0.0.1/mfa").check().is_ok());
        let e = fleet("postgresql://mfa:secret@db/mfa").check().unwrap_err();
        assert!(e.contains("password_file"), "{e}");
        let e = fleet("postgresql://db/mfa?password=x").check().unwrap_err();
        assert!(e.contains("password_file"), "{e}");
        let e = fleet("mysql://db/mfa").check().unwrap_err();
        assert!(e.contains("not a PostgreSQL URL"), "{e}");
        let mut no_url = fleet("x");
        no_url.url = None;
        assert!(no_url.check().unwrap_err().contains("needs store.url"));
    }

    #[test]
    fn hosts_and_poll() {
        let mut c = fleet("postgresql://mfa@db/mfa");
        c.host = Some("web 1".into());
        assert!(c.check().unwrap_err().contains("store.host"));
        c.host = Some("web-1.example".into());
        assert!(c.check().is_ok());
        assert_eq!(c.host_name(), "web-1.example");
        c.poll = "0s".into();
        assert!(c.check().unwrap_err().contains("store.poll"));
        let sqlite = StoreConfig {
            url: Some("postgresql://db/mfa".into()),
            ..StoreConfig::default()
        };
        assert!(sqlite.check().unwrap_err().contains("backend"));
    }
}
