//! The one error type of switchboard, with a stable [`Code`] that every boundary
//! (C, Python, Node) maps one to one.

use std::fmt;

/// The stable error codes. The numbers are part of the C ABI (`sb_status`) and are
/// never reused; `0` is success in C and has no variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    /// Bad config, details or input.
    InvalidArgument = 1,
    /// Unknown id or name.
    NotFound = 2,
    /// A limit was reached, e.g. the wait queue is full.
    ResourceExhausted = 3,
    /// The object's state does not allow the call.
    FailedPrecondition = 4,
    /// Breaker open, endpoint down, or the manager is closed.
    Unavailable = 5,
    /// A deadline passed.
    Timeout = 6,
    /// The caller cancelled.
    Cancelled = 7,
    /// C only: a NULL, freed or wrong-type handle.
    InvalidHandle = 8,
    /// An operating-system error, with its errno text.
    Io = 9,
    /// A bug in switchboard, e.g. a caught panic.
    Internal = 10,
    /// No or bad credentials: the registry's authenticate hook refused a token
    /// (gRPC's UNAUTHENTICATED, 16).
    Unauthenticated = 11,
    /// Credentials are valid but the action is refused, e.g. a subscribe the
    /// authorize hook turned down (gRPC's PERMISSION_DENIED, 7).
    PermissionDenied = 12,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 12] = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Unavailable,
        Code::Timeout,
        Code::Cancelled,
        Code::InvalidHandle,
        Code::Io,
        Code::Internal,
        Code::Unauthenticated,
        Code::PermissionDenied,
    ];

    /// The name shared by all languages: `SB_INVALID_ARGUMENT`, ... (C enum name,
    /// Node `err.code`).
    pub const fn sb_name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "SB_INVALID_ARGUMENT",
            Code::NotFound => "SB_NOT_FOUND",
            Code::ResourceExhausted => "SB_RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "SB_FAILED_PRECONDITION",
            Code::Unavailable => "SB_UNAVAILABLE",
            Code::Timeout => "SB_TIMEOUT",
            Code::Cancelled => "SB_CANCELLED",
            Code::InvalidHandle => "SB_INVALID_HANDLE",
            Code::Io => "SB_IO",
            Code::Internal => "SB_INTERNAL",
            Code::Unauthenticated => "SB_UNAUTHENTICATED",
            Code::PermissionDenied => "SB_PERMISSION_DENIED",
        }
    }

    /// The CamelCase name used in DESIGN.md and Python class names.
    pub const fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "InvalidArgument",
            Code::NotFound => "NotFound",
            Code::ResourceExhausted => "ResourceExhausted",
            Code::FailedPrecondition => "FailedPrecondition",
            Code::Unavailable => "Unavailable",
            Code::Timeout => "Timeout",
            Code::Cancelled => "Cancelled",
            Code::InvalidHandle => "InvalidHandle",
            Code::Io => "Io",
            Code::Internal => "Internal",
            Code::Unauthenticated => "Unauthenticated",
            Code::PermissionDenied => "PermissionDenied",
        }
    }

    /// A short static description, used by `sb_status_str`.
    pub const fn description(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid argument",
            Code::NotFound => "not found",
            Code::ResourceExhausted => "resource exhausted",
            Code::FailedPrecondition => "failed precondition",
            Code::Unavailable => "unavailable",
            Code::Timeout => "timed out",
            Code::Cancelled => "cancelled",
            Code::InvalidHandle => "invalid handle",
            Code::Io => "I/O error",
            Code::Internal => "internal error",
            Code::Unauthenticated => "unauthenticated",
            Code::PermissionDenied => "permission denied",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A switchboard error: a stable [`Code`] and a message that says what was wrong and
/// what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: Code,
    message: String,
    /// The OS errno behind an [`Code::Io`] error, when there is one.
    errno: Option<i32>,
}

/// `Result<T, switchboard_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            errno: None,
        }
    }

    /// The stable code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The OS errno, for [`Code::Io`] errors that came from the OS.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// Shorthand for [`Code::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// Shorthand for [`Code::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    /// Shorthand for [`Code::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// Shorthand for [`Code::Timeout`].
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Code::Timeout, message)
    }

    /// Shorthand for [`Code::FailedPrecondition`].
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    /// Shorthand for [`Code::ResourceExhausted`].
    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Self::new(Code::ResourceExhausted, message)
    }

    /// Shorthand for [`Code::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// An [`Code::Io`] error from an OS error, prefixed with what was being done.
    /// Connection refused / reset / unreachable become [`Code::Unavailable`], since
    /// they say the endpoint is down rather than that the local machine failed.
    pub fn from_io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let code = match err.kind() {
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::UnexpectedEof => Code::Unavailable,
            K::TimedOut | K::WouldBlock => Code::Timeout,
            // The OS refused the address itself (a unix socket path longer than it
            // allows): the configuration is wrong, not the network.
            K::InvalidInput => Code::InvalidArgument,
            _ => Code::Io,
        };
        Error {
            code,
            message: format!("{context}: {err}"),
            errno: err.raw_os_error(),
        }
    }

    /// Converts a caught panic payload into an [`Code::Internal`] error.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Self::internal(format!("internal error (a bug in switchboard): {what}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_distinct() {
        let nums: Vec<i32> = Code::ALL.iter().map(|c| *c as i32).collect();
        assert_eq!(nums, (1..=12).collect::<Vec<_>>());
        assert_eq!(Code::InvalidHandle.sb_name(), "SB_INVALID_HANDLE");
    }

    #[test]
    fn refused_is_unavailable_with_errno() {
        let io = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let e = Error::from_io("connect to tcp://127.0.0.1:1", &io);
        assert_eq!(e.code(), Code::Unavailable);
        assert_eq!(e.errno(), Some(libc::ECONNREFUSED));
        assert!(e.message().starts_with("connect to tcp://127.0.0.1:1: "));
    }
}
