//! The one error type of the crate. Transports map their failures into it once; the bindings map
//! it once into their languages' exceptions by [`Error::kind`].

use crate::value::Item;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or argument is invalid; nothing was sent.
    #[error("{0}")]
    Config(String),

    /// A condition expression was false. `item` is the current item when the request asked for
    /// it (`ReturnValuesOnConditionCheckFailure: ALL_OLD`).
    #[error("the conditional request failed")]
    ConditionalCheckFailed { item: Option<Box<Item>> },

    /// A TransactWriteItems was cancelled; one DynamoDB reason code per action (`None`,
    /// `ConditionalCheckFailed`, `TransactionConflict`, ...).
    #[error("the transaction was cancelled: {}", reasons.join(", "))]
    TransactionCanceled { reasons: Vec<String> },

    #[error("lock {id} was not acquired: {reason}")]
    LockNotAcquired { id: String, reason: String },

    #[error("lock {id} was lost: {reason}")]
    LockLost { id: String, reason: String },

    #[error("key {key:?} already exists; read it and pass it as `previous` to replace it")]
    KeyExists { key: String },

    #[error("key {key:?} was modified since it was read; read it again and retry")]
    KeyModified { key: String },

    #[error("key {key:?} does not exist")]
    KeyNotFound { key: String },

    #[error("table {table:?} does not exist in this account and region; create it with create_table() or check the table name, region and endpoint")]
    TableNotFound { table: String },

    /// The table exists but cannot serve this configuration (key schema, status).
    #[error("table {table:?}: {message}")]
    TableSchema { table: String, message: String },

    /// DynamoDB rejected the request as malformed (ValidationException).
    #[error("DynamoDB rejected {operation}: {message}")]
    Validation { operation: &'static str, message: String },

    #[error("DynamoDB throttled {operation} {attempts} times in a row: {message}; raise the table's capacity or retry later")]
    Throttled { operation: &'static str, attempts: u32, message: String },

    #[error("no usable AWS credentials: {0}; configure them (environment, profile, SSO or instance role)")]
    Credentials(String),

    /// The request was not delivered (connection refused, DNS, TLS).
    #[error("could not reach DynamoDB for {operation}: {message}; check the endpoint, region and network")]
    Network { operation: &'static str, message: String },

    /// The request may or may not have been applied (timeout, connection reset after sending,
    /// server error). Engines resolve these before reporting; one that reaches the caller could
    /// not be resolved, and the write may still land.
    #[error("the outcome of {operation} is unknown: {message}; it may have been applied: read the current state before retrying")]
    Ambiguous { operation: &'static str, message: String },

    /// Any other error DynamoDB returned.
    #[error("DynamoDB {operation} failed with {code}: {message}")]
    Service { operation: &'static str, code: String, message: String },
}

/// The families every binding maps errors to (one exception class or error code each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Config,
    LockNotAcquired,
    LockLost,
    KeyExists,
    KeyModified,
    KeyNotFound,
    Table,
    Transport,
    /// A write that may or may not have been applied (a subfamily of `Transport` in the
    /// bindings): never reported for a write that certainly did not happen.
    OutcomeUnknown,
}

impl ErrorKind {
    /// The stable code the bindings expose (`err.code` in Node).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Config => "ERR_DYNALEASE_CONFIG",
            ErrorKind::LockNotAcquired => "ERR_DYNALEASE_LOCK_NOT_ACQUIRED",
            ErrorKind::LockLost => "ERR_DYNALEASE_LOCK_LOST",
            ErrorKind::KeyExists => "ERR_DYNALEASE_KEY_EXISTS",
            ErrorKind::KeyModified => "ERR_DYNALEASE_KEY_MODIFIED",
            ErrorKind::KeyNotFound => "ERR_DYNALEASE_KEY_NOT_FOUND",
            ErrorKind::Table => "ERR_DYNALEASE_TABLE",
            ErrorKind::Transport => "ERR_DYNALEASE_TRANSPORT",
            ErrorKind::OutcomeUnknown => "ERR_DYNALEASE_OUTCOME_UNKNOWN",
        }
    }
}

impl Error {
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }

    /// A value the caller passed that DynamoDB cannot store.
    pub fn invalid_value(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) => ErrorKind::Config,
            Error::LockNotAcquired { .. } => ErrorKind::LockNotAcquired,
            Error::LockLost { .. } => ErrorKind::LockLost,
            Error::KeyExists { .. } => ErrorKind::KeyExists,
            Error::KeyModified { .. } => ErrorKind::KeyModified,
            Error::KeyNotFound { .. } => ErrorKind::KeyNotFound,
            Error::TableNotFound { .. } | Error::TableSchema { .. } => ErrorKind::Table,
            Error::ConditionalCheckFailed { .. }
            | Error::TransactionCanceled { .. }
            | Error::Validation { .. }
            | Error::Throttled { .. }
            | Error::Credentials(_)
            | Error::Network { .. }
            | Error::Service { .. } => ErrorKind::Transport,
            Error::Ambiguous { .. } => ErrorKind::OutcomeUnknown,
        }
    }

    /// Turns DynamoDB's ways of saying "this key does not fit the table" into
    /// [`Error::TableSchema`], naming what the client expected. Other errors pass through.
    pub(crate) fn explain_key_schema(self, table: &str, expected: impl FnOnce() -> String) -> Error {
        const KEY_MISMATCH: [&str; 6] = [
            "key element does not match the schema",
            "Type mismatch for key",
            "required keys was not given a value",
            "number of conditions on the keys is invalid",
            "missed key schema element",
            "Missing the key",
        ];
        match self {
            Error::Validation { message, .. } if KEY_MISMATCH.iter().any(|phrase| message.contains(phrase)) => {
                Error::TableSchema {
                    table: table.to_owned(),
                    message: format!(
                        "its key schema does not match this client ({}): {message}; compare with `aws dynamodb describe-table`",
                        expected()
                    ),
                }
            }
            other => other,
        }
    }

    /// True when the request may have been applied and the caller must resolve it by reading.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Error::Ambiguous { .. })
    }
}
