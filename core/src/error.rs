//! The one error type of the crate. Transports map their failures into it once; the bindings map
//! it once into their languages' exceptions by [`Error::kind`].

use crate::lock::LockId;
use crate::value::Item;

/// The crate's result type: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, from a bad option to an answer DynamoDB never sent.
///
/// Branch on [`Error::kind`] where the family is enough: it is what the bindings expose, and
/// variants may be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An option or argument is invalid; nothing was sent.
    #[error("{0}")]
    Config(ConfigError),

    /// A condition expression was false. `item` is the current item when the request asked for
    /// it (`ReturnValuesOnConditionCheckFailure: ALL_OLD`).
    #[error("the conditional request failed")]
    ConditionalCheckFailed {
        /// The item as it was when the condition failed; `None` when not asked for, or absent.
        item: Option<Box<Item>>,
    },

    /// A TransactWriteItems was cancelled; one DynamoDB reason code per action (`None`,
    /// `ConditionalCheckFailed`, `TransactionConflict`, ...).
    #[error("the transaction was cancelled: {}", reasons.join(", "))]
    TransactionCanceled {
        /// DynamoDB's `CancellationReasons` codes, in the order of the transaction's actions.
        reasons: Vec<String>,
    },

    /// The lock was not taken: another holder kept it past the timeout, or a deadline left no
    /// time to try.
    #[error("lock {id} was not acquired: {reason}")]
    LockNotAcquired {
        /// The lock asked for.
        id: LockId,
        /// Why not, as the end of a sentence (who held it, for how long the client waited).
        reason: String,
    },

    /// A lock this process held is no longer its own: taken over after its lease ran out,
    /// released, handed off, or past its deadline. Work under it is no longer protected.
    #[error("lock {id} was lost: {reason}")]
    LockLost {
        /// The lock that was lost.
        id: LockId,
        /// What happened to it, as the end of a sentence.
        reason: String,
    },

    /// A create-only write (no `previous`) found a live item under the key.
    #[error("key {key:?} already exists; read it and pass it as `previous` to replace it")]
    KeyExists {
        /// The key as the caller gave it, without the store's partition.
        key: String,
    },

    /// A compare-and-swap found another version than the one it was given: someone else
    /// wrote the key since it was read.
    #[error("key {key:?} was modified since it was read; read it again and retry")]
    KeyModified {
        /// The key as the caller gave it, without the store's partition.
        key: String,
    },

    /// The key has no live item: never written, deleted, or past its TTL.
    #[error("key {key:?} does not exist")]
    KeyNotFound {
        /// The key as the caller gave it, without the store's partition.
        key: String,
    },

    /// DynamoDB's `ResourceNotFoundException`: no such table in this account, region and
    /// endpoint.
    #[error("{}", table_not_found(.table, &core_name))]
    TableNotFound {
        /// The table's name; for a request on several tables, all of them, comma-separated.
        table: String,
    },

    /// The table exists but cannot serve this configuration (key schema, status). `message`
    /// may name options as `{name}` (see [`ConfigError`]).
    #[error("table {table:?}: {}", spell_names(.message, &core_name))]
    TableSchema {
        /// The table's name.
        table: String,
        /// What does not fit, and what the client expected instead.
        message: String,
    },

    /// DynamoDB rejected the request as malformed (ValidationException).
    #[error("DynamoDB rejected {operation}: {message}")]
    Validation {
        /// The DynamoDB operation (`PutItem`, `TransactWriteItems`, ...).
        operation: &'static str,
        /// DynamoDB's message.
        message: String,
    },

    /// DynamoDB refused for capacity (`ProvisionedThroughputExceededException`,
    /// `ThrottlingException`, ...) on every attempt the client allows.
    #[error("DynamoDB throttled {operation} {attempts} times in a row: {message}; raise the table's capacity or retry later")]
    Throttled {
        /// The DynamoDB operation (`PutItem`, `TransactWriteItems`, ...).
        operation: &'static str,
        /// How many attempts were refused, the first one included.
        attempts: u32,
        /// DynamoDB's message for the last refusal.
        message: String,
    },

    /// The AWS SDK found no credentials, or DynamoDB refused the ones it found; the detail
    /// says which. Nothing was applied.
    #[error("no usable AWS credentials: {0}; configure them (environment, profile, SSO or instance role)")]
    Credentials(String),

    /// The request was not delivered (connection refused, DNS, TLS).
    #[error("could not reach DynamoDB for {operation}: {message}; check the endpoint, region and network")]
    Network {
        /// The DynamoDB operation (`PutItem`, `TransactWriteItems`, ...).
        operation: &'static str,
        /// The connection error, with its causes.
        message: String,
    },

    /// The request may or may not have been applied (timeout, connection reset after sending,
    /// server error). Engines resolve these before reporting; one that reaches the caller could
    /// not be resolved, and the write may still land.
    #[error("the outcome of {operation} is unknown: {message}; it may have been applied: read the current state before retrying")]
    Ambiguous {
        /// The DynamoDB operation (`PutItem`, `TransactWriteItems`, ...).
        operation: &'static str,
        /// What came instead of an answer, and why the write may have landed.
        message: String,
    },

    /// Any other error DynamoDB returned.
    #[error("DynamoDB {operation} failed with {code}: {message}")]
    Service {
        /// The DynamoDB operation (`PutItem`, `TransactWriteItems`, ...).
        operation: &'static str,
        /// DynamoDB's error code (`InternalServerError`, `ResourceInUseException`, ...).
        code: String,
        /// DynamoDB's message.
        message: String,
    },
}

/// The families every binding maps errors to (one exception class or error code each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An invalid option or argument ([`Error::Config`]).
    Config,
    /// [`Error::LockNotAcquired`].
    LockNotAcquired,
    /// [`Error::LockLost`].
    LockLost,
    /// [`Error::KeyExists`].
    KeyExists,
    /// [`Error::KeyModified`].
    KeyModified,
    /// [`Error::KeyNotFound`].
    KeyNotFound,
    /// A missing table, or one that cannot serve this client ([`Error::TableNotFound`],
    /// [`Error::TableSchema`]).
    Table,
    /// Any other failure of a DynamoDB call: network, throttling, credentials, a malformed
    /// request, or a refusal the engines did not turn into one of the families above.
    Transport,
    /// A write that may or may not have been applied (a subfamily of `Transport` in the
    /// bindings): never reported for a write that certainly did not happen.
    OutcomeUnknown,
}

impl ErrorKind {
    /// Every kind, for bindings that export the table of codes.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Config,
        ErrorKind::LockNotAcquired,
        ErrorKind::LockLost,
        ErrorKind::KeyExists,
        ErrorKind::KeyModified,
        ErrorKind::KeyNotFound,
        ErrorKind::Table,
        ErrorKind::Transport,
        ErrorKind::OutcomeUnknown,
    ];

    /// The code without its prefix (`LOCK_LOST`): the key of the code in the bindings' tables.
    pub fn name(self) -> &'static str {
        &self.code()["ERR_DYNALEASE_".len()..]
    }

    /// The stable code the bindings expose (`err.code` in Node, `.code` in Python).
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

/// An invalid option or argument: which one, and what is wrong with it.
///
/// Options are named as the core names them (`lease_duration`); each binding spells them its
/// own way (`leaseDurationMs`) through [`ConfigError::message`]. In `problem`, other options
/// are written `{name}`, so that they are spelled the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    option: Option<&'static str>,
    problem: String,
}

impl ConfigError {
    /// The option or argument at fault, when the error is about one.
    pub fn option(&self) -> Option<&'static str> {
        self.option
    }

    /// The message, with option names spelled by `spell` (given a core name, the binding's).
    pub fn message(&self, spell: &dyn Fn(&str) -> Option<&'static str>) -> String {
        let problem = spell_names(&self.problem, spell);
        match self.option {
            Some(option) => format!("{} {problem}", spell(option).unwrap_or(option)),
            None => problem,
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message(&core_name))
    }
}

/// Every option, function and value name that core messages name, as the core spells them. A binding
/// that spells names its own way must know each one (its tests check this list).
pub const OPTION_NAMES: [&str; 22] = [
    "lease_duration",
    "heartbeat_period",
    "partition_key",
    "sort_key",
    "partition_key_type",
    "sort_key_type",
    "endpoint_url",
    "trust_local_time",
    "fail_closed",
    "ttl",
    "timeout",
    "call_timeout",
    "poll_interval",
    "max_poll_interval",
    "max_retries",
    "permits",
    "interval",
    "create_table",
    "atomic_put",
    "atomic_delete",
    "update_data",
    "None",
];

/// The core's own spelling: the name as written.
fn core_name(_: &str) -> Option<&'static str> {
    None
}

/// Replaces each `{name}` of an [`OPTION_NAMES`] entry in `text` by its spelling.
fn spell_names(text: &str, spell: &dyn Fn(&str) -> Option<&'static str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| &after[..close]).filter(|name| OPTION_NAMES.contains(name)) {
            Some(name) => {
                out.push_str(spell(name).unwrap_or(name));
                rest = &after[name.len() + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A duration as messages show it: `250ms`, `1.5s`, `10s`, `0s` (not Debug's `0ns` or
/// `333.333333ms`).
pub(crate) fn duration_text(duration: std::time::Duration) -> String {
    let trim = |text: String| text.trim_end_matches('0').trim_end_matches('.').to_owned();
    if duration.is_zero() {
        "0s".to_owned()
    } else if duration < std::time::Duration::from_millis(1) {
        format!("{}µs", duration.as_micros().max(1))
    } else if duration < std::time::Duration::from_secs(1) {
        format!("{}ms", trim(format!("{:.1}", duration.as_secs_f64() * 1e3)))
    } else {
        format!("{}s", trim(format!("{:.3}", duration.as_secs_f64())))
    }
}

fn table_not_found(table: &str, spell: &dyn Fn(&str) -> Option<&'static str>) -> String {
    format!(
        "table {table:?} does not exist in this account and region; create it with {}() or check the table name, region and endpoint",
        spell("create_table").unwrap_or("create_table")
    )
}

impl Error {
    /// An error about `option`: `problem` completes the sentence that starts with its name.
    pub fn option(option: &'static str, problem: impl Into<String>) -> Error {
        Error::Config(ConfigError { option: Some(option), problem: problem.into() })
    }

    /// An invalid option or argument, described by `problem` alone.
    pub fn config(problem: impl Into<String>) -> Error {
        Error::Config(ConfigError { option: None, problem: problem.into() })
    }

    /// A value the caller passed that DynamoDB cannot store.
    pub fn invalid_value(problem: impl Into<String>) -> Error {
        Error::config(problem)
    }

    /// The message, with option and function names spelled by `spell` (see [`ConfigError`]);
    /// `to_string()` spells them as the core does.
    pub fn message(&self, spell: &dyn Fn(&str) -> Option<&'static str>) -> String {
        match self {
            Error::Config(error) => error.message(spell),
            Error::TableNotFound { table } => table_not_found(table, spell),
            Error::TableSchema { table, message } => format!("table {table:?}: {}", spell_names(message, spell)),
            other => other.to_string(),
        }
    }

    /// The family of this error: which exception class or code the bindings report it as.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        use std::time::Duration;
        assert_eq!(duration_text(Duration::ZERO), "0s");
        assert_eq!(duration_text(Duration::from_micros(300)), "300µs");
        assert_eq!(duration_text(Duration::from_millis(200)), "200ms");
        assert_eq!(duration_text(Duration::from_secs(10) / 3 / 10), "333.3ms");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration_text(Duration::from_secs(10) / 3), "3.333s");
        assert_eq!(duration_text(Duration::from_secs(30)), "30s");
    }

    fn shout(name: &str) -> Option<&'static str> {
        (name == "lease_duration").then_some("LEASE")
    }

    #[test]
    fn only_marked_known_names_are_spelled() {
        let error = Error::option("heartbeat_period", "must be below {lease_duration}; {value} and { stay");
        assert_eq!(error.message(&shout), "heartbeat_period must be below LEASE; {value} and { stay");
        assert_eq!(error.to_string(), "heartbeat_period must be below lease_duration; {value} and { stay");
        let Error::Config(config) = &error else { unreachable!() };
        assert_eq!(config.option(), Some("heartbeat_period"));
    }

    #[test]
    fn codes_have_names() {
        assert_eq!(ErrorKind::LockLost.name(), "LOCK_LOST");
        assert!(ErrorKind::ALL.iter().all(|kind| kind.code().ends_with(kind.name())));
    }
}
