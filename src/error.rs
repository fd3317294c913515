//! The error type that crosses module boundaries, and the one place where an error
//! becomes a process exit code.
//!
//! Exit codes are a documented contract (README "Exit codes"): scripts branch on them,
//! so every failure that a script may want to tell apart has its own variant here and
//! its own number, and no other module picks numbers.

use std::process::ExitCode;

/// Failures a caller (a script) can tell apart by exit code.
///
/// Messages never contain secret material: variants carry only what the caller chose
/// to put in them, and callers never pass a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flag value or input; clap's own errors share this code.
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    /// A name already taken, or a KEY that matches more than one key.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    StoreUnavailable(String),
    #[error("{0}")]
    RemoteUnreachable(String),
    #[error("{0}")]
    RemoteRefused(String),
    /// The key exists but is expired or revoked.
    #[error("{0}")]
    Inactive(String),
    /// `keyctl check`: the secret is not well-formed.
    #[error("{0}")]
    InvalidSecret(String),
    /// A destructive command needs `--yes` (or a terminal to ask on).
    #[error("{0}")]
    ConfirmationRequired(String),
    /// `keyctl list --expiring`: at least one key expires within the window.
    #[error("{0}")]
    Expiring(String),
    /// `keyctl run`: the command could not be started (as a shell says 127).
    #[error("{0}")]
    CommandFailed(String),
}

/// Exit codes, in one table; README's table lists the same numbers and
/// `tests/contract.rs` checks each one.
pub mod code {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const STORE_UNAVAILABLE: u8 = 5;
    pub const REMOTE_UNREACHABLE: u8 = 6;
    pub const REMOTE_REFUSED: u8 = 7;
    pub const INACTIVE: u8 = 8;
    pub const INVALID_SECRET: u8 = 9;
    pub const CONFIRMATION_REQUIRED: u8 = 10;
    pub const EXPIRING: u8 = 11;
    pub const COMMAND_NOT_STARTED: u8 = 127;
}

impl Error {
    pub fn code(&self) -> u8 {
        match self {
            Error::Usage(_) => code::USAGE,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::Conflict(_) => code::CONFLICT,
            Error::StoreUnavailable(_) => code::STORE_UNAVAILABLE,
            Error::RemoteUnreachable(_) => code::REMOTE_UNREACHABLE,
            Error::RemoteRefused(_) => code::REMOTE_REFUSED,
            Error::Inactive(_) => code::INACTIVE,
            Error::InvalidSecret(_) => code::INVALID_SECRET,
            Error::ConfirmationRequired(_) => code::CONFIRMATION_REQUIRED,
            Error::Expiring(_) => code::EXPIRING,
            Error::CommandFailed(_) => code::COMMAND_NOT_STARTED,
        }
    }
}

/// The exit code for any error: the first [`Error`] in the context chain decides,
/// anything else is a plain failure.
pub fn exit_code(err: &anyhow::Error) -> ExitCode {
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map_or(code::FAILURE, Error::code);
    ExitCode::from(code)
}

/// True when the error is a closed stdout pipe (`keyctl list | head -1`): not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Error::Usage(msg.into()).into()
}
