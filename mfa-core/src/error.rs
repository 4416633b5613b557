//! The one error type of mfa-core, split into what the caller did wrong (bad input, exit
//! status 2 in the CLI) and what went wrong around it (I/O, database, insecure files).

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in mfa-core. Messages name the problem and, for bad input,
/// the accepted form.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value given by the administrator is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A named thing (user, carrier, rule, ...) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change contradicts what is already there (duplicate, fifth contact, ...).
    #[error("{0}")]
    Conflict(String),
    /// The configuration file is missing, malformed or has unknown keys.
    #[error("{0}")]
    Config(String),
    /// A file that guards authentication can be written by someone it should not be.
    #[error("{0}")]
    Insecure(String),
    /// The database file is missing (not initialised) or from a newer version.
    #[error("{0}")]
    Database(String),
    /// A diagnosis found problems (`mfa-admin doctor`).
    #[error("{0}")]
    Failed(String),
    /// The fleet's central PostgreSQL store cannot be reached, refused us, or holds what
    /// this host cannot use (`mfa-fleet`).
    #[error("central store: {0}")]
    Central(String),
    /// An operating-system call on a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path the operation was on.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Error {
    /// True when the error is the caller's input (the CLI exits with status 2 for these).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Invalid(_) | Error::NotFound(_) | Error::Conflict(_) | Error::Config(_)
        )
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for an [`Error::Invalid`] with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => { $crate::Error::Invalid(format!($($arg)*)) };
}
