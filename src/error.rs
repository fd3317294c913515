//! The error type that crosses module boundaries, and the one place where an error
//! becomes a process exit code.
//!
//! Exit codes are a documented contract (README "Exit codes"): scripts branch on them,
//! so every failure that a script may want to tell apart has its own [`Kind`] here and
//! its own number, and no other module picks numbers.

use std::process::ExitCode;

/// What kind of failure an error is: each kind a script may want to tell apart has its
/// own exit code ([`Kind::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Bad flag value or input; clap's own errors share this code.
    Usage,
    NotFound,
    /// A name already taken, or a KEY that matches more than one key.
    Conflict,
    StoreUnavailable,
    RemoteUnreachable,
    RemoteRefused,
    /// The key exists but is expired or revoked.
    Inactive,
    /// `keyctl check`: the secret is not well-formed.
    InvalidSecret,
    /// A destructive command needs `--yes` (or a terminal to ask on).
    ConfirmationRequired,
    /// `keyctl list --expiring`: at least one key expires within the window.
    Expiring,
    /// `keyctl run`: the command could not be started (as a shell says 127).
    CommandNotStarted,
    /// `keyctl scan`: a secret that may still work was found.
    SecretFound,
    /// `keyctl gc`: a rotated key was kept because its successor was never verified.
    NotVerified,
    /// `keyctl rotate --due`: some due keys could not be rotated (the others were).
    RotationIncomplete,
}

/// A failure a caller (a script) can tell apart by exit code.
///
/// The message never contains secret material: it holds only what the caller chose to
/// put in it, and callers never pass a secret.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct Error {
    kind: Kind,
    msg: String,
    /// The outcome is unknown (the service went away mid-request), so repeating the
    /// command is the way forward and nothing may be undone as if it had failed.
    outcome_unknown: bool,
    /// The HTTP status of the service's answer, when the failure is one.
    http_status: Option<u16>,
}

impl Error {
    pub(crate) fn new(kind: Kind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
            outcome_unknown: false,
            http_status: None,
        }
    }

    /// Records the HTTP status the service answered with.
    pub(crate) fn with_http_status(mut self, status: u16) -> Error {
        self.http_status = Some(status);
        self
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Marks the failure as one whose effect on the service is unknown.
    pub(crate) fn outcome_unknown(mut self) -> Error {
        self.outcome_unknown = true;
        self
    }

    pub(crate) fn not_found(msg: impl Into<String>) -> Error {
        Error::new(Kind::NotFound, msg)
    }
    pub(crate) fn conflict(msg: impl Into<String>) -> Error {
        Error::new(Kind::Conflict, msg)
    }
    pub(crate) fn store_unavailable(msg: impl Into<String>) -> Error {
        Error::new(Kind::StoreUnavailable, msg)
    }
    pub(crate) fn remote_unreachable(msg: impl Into<String>) -> Error {
        Error::new(Kind::RemoteUnreachable, msg)
    }
    pub(crate) fn remote_refused(msg: impl Into<String>) -> Error {
        Error::new(Kind::RemoteRefused, msg)
    }
    pub(crate) fn inactive(msg: impl Into<String>) -> Error {
        Error::new(Kind::Inactive, msg)
    }
    pub(crate) fn invalid_secret(msg: impl Into<String>) -> Error {
        Error::new(Kind::InvalidSecret, msg)
    }
    pub(crate) fn confirmation_required(msg: impl Into<String>) -> Error {
        Error::new(Kind::ConfirmationRequired, msg)
    }
    pub(crate) fn expiring(msg: impl Into<String>) -> Error {
        Error::new(Kind::Expiring, msg)
    }
    pub(crate) fn command_not_started(msg: impl Into<String>) -> Error {
        Error::new(Kind::CommandNotStarted, msg)
    }
    pub(crate) fn secret_found(msg: impl Into<String>) -> Error {
        Error::new(Kind::SecretFound, msg)
    }
    pub(crate) fn not_verified(msg: impl Into<String>) -> Error {
        Error::new(Kind::NotVerified, msg)
    }
    pub(crate) fn rotation_incomplete(msg: impl Into<String>) -> Error {
        Error::new(Kind::RotationIncomplete, msg)
    }
}

/// Exit codes, in one table; README's table lists the same numbers and
/// `tests/it/contract.rs` checks each one.
pub(crate) mod code {
    pub(crate) const OK: u8 = 0;
    pub(crate) const FAILURE: u8 = 1;
    pub(crate) const USAGE: u8 = 2;
    pub(crate) const NOT_FOUND: u8 = 3;
    pub(crate) const CONFLICT: u8 = 4;
    pub(crate) const STORE_UNAVAILABLE: u8 = 5;
    pub(crate) const REMOTE_UNREACHABLE: u8 = 6;
    pub(crate) const REMOTE_REFUSED: u8 = 7;
    pub(crate) const INACTIVE: u8 = 8;
    pub(crate) const INVALID_SECRET: u8 = 9;
    pub(crate) const CONFIRMATION_REQUIRED: u8 = 10;
    pub(crate) const EXPIRING: u8 = 11;
    pub(crate) const SECRET_FOUND: u8 = 12;
    pub(crate) const NOT_VERIFIED: u8 = 13;
    pub(crate) const ROTATION_INCOMPLETE: u8 = 14;
    pub(crate) const COMMAND_NOT_STARTED: u8 = 127;
}

impl Kind {
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Usage => code::USAGE,
            Kind::NotFound => code::NOT_FOUND,
            Kind::Conflict => code::CONFLICT,
            Kind::StoreUnavailable => code::STORE_UNAVAILABLE,
            Kind::RemoteUnreachable => code::REMOTE_UNREACHABLE,
            Kind::RemoteRefused => code::REMOTE_REFUSED,
            Kind::Inactive => code::INACTIVE,
            Kind::InvalidSecret => code::INVALID_SECRET,
            Kind::ConfirmationRequired => code::CONFIRMATION_REQUIRED,
            Kind::Expiring => code::EXPIRING,
            Kind::CommandNotStarted => code::COMMAND_NOT_STARTED,
            Kind::SecretFound => code::SECRET_FOUND,
            Kind::NotVerified => code::NOT_VERIFIED,
            Kind::RotationIncomplete => code::ROTATION_INCOMPLETE,
        }
    }
}

/// The first [`Error`] in an error's context chain: what decides its kind and flags.
fn find(err: &anyhow::Error) -> Option<&Error> {
    err.chain().find_map(|e| e.downcast_ref::<Error>())
}

/// The kind of any error: that of the first [`Error`] in its context chain.
pub(crate) fn kind_of(err: &anyhow::Error) -> Option<Kind> {
    find(err).map(Error::kind)
}

/// True when the service may or may not have done what was asked (see
/// [`Error::outcome_unknown`]).
pub(crate) fn is_outcome_unknown(err: &anyhow::Error) -> bool {
    find(err).is_some_and(|e| e.outcome_unknown)
}

/// The HTTP status of the service answer the error reports, if it is one.
pub(crate) fn http_status(err: &anyhow::Error) -> Option<u16> {
    find(err).and_then(|e| e.http_status)
}

/// The exit code for any error: its kind's, or a plain failure.
pub(crate) fn exit_code(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(kind_of(err).map_or(code::FAILURE, Kind::code))
}

/// True when the error is a closed stdout pipe (`keyctl list | head -1`): not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

pub(crate) fn usage(msg: impl Into<String>) -> anyhow::Error {
    Error::new(Kind::Usage, msg).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn the_first_typed_error_in_the_chain_decides() {
        let e: anyhow::Error = Error::not_found("no key x").into();
        let e = e.context("while showing x");
        assert_eq!(kind_of(&e), Some(Kind::NotFound));
        assert_eq!(Kind::NotFound.code(), code::NOT_FOUND);
        assert_eq!(format!("{e:#}"), "while showing x: no key x");
        let plain = anyhow::anyhow!("disk full");
        assert_eq!(kind_of(&plain), None);
        assert_eq!(exit_code(&plain), ExitCode::from(code::FAILURE));
    }

    #[test]
    fn flags_travel_with_the_error() {
        let e: anyhow::Error = Error::store_unavailable("gone").outcome_unknown().into();
        let e = Err::<(), _>(e).context("create").unwrap_err();
        assert!(is_outcome_unknown(&e));
        assert_eq!(http_status(&e), None);
        let e: anyhow::Error = Error::remote_refused("no").with_http_status(403).into();
        assert_eq!(http_status(&e), Some(403));
        assert!(!is_outcome_unknown(&e));
    }
}
