//! One conversion from core errors to JS errors. napi rejects with its own status as `code`,
//! so the stable dynalease code (`ErrorKind::code()`) travels as a `[CODE] ` prefix of the
//! message, which the JS layer (lib/errors.js) turns into `err.code` in one place.

use std::collections::HashMap;

use dynalease::{Error, ErrorKind};
use napi_derive::napi;

pub fn to_napi(error: Error) -> napi::Error {
    napi::Error::from_reason(format!("[{}] {}", error.kind().code(), error.message(&node_name)))
}

/// The error codes by name (`{ LOCK_LOST: "ERR_DYNALEASE_LOCK_LOST", ... }`), for `codes`.
#[napi]
pub fn error_codes() -> HashMap<String, String> {
    ErrorKind::ALL.iter().map(|kind| (kind.name().to_owned(), kind.code().to_owned())).collect()
}

/// DynamoDB's nesting limit (`Value::validate` checks it); the JS codec stops cycles with it.
#[napi]
pub const MAX_NESTING_DEPTH: u32 = dynalease::value::MAX_NESTING_DEPTH as u32;

/// The core's option, function and value names (`dynalease::error::OPTION_NAMES`) as this
/// binding's API spells them.
fn node_name(core: &str) -> Option<&'static str> {
    Some(match core {
        "lease_duration" => "leaseDurationMs",
        "heartbeat_period" => "heartbeatPeriodMs",
        "partition_key" => "partitionKey",
        "sort_key" => "sortKey",
        "partition_key_type" => "partitionKeyType",
        "sort_key_type" => "sortKeyType",
        "endpoint_url" => "endpoint",
        "trust_local_time" => "trustLocalTime",
        "fail_closed" => "failClosed",
        "ttl" => "ttlMs",
        "timeout" => "timeoutMs",
        "call_timeout" => "callTimeoutMs",
        "poll_interval" => "pollIntervalMs",
        "max_poll_interval" => "maxPollIntervalMs",
        "max_retries" => "maxRetries",
        "permits" => "permits",
        "interval" => "intervalMs",
        "create_table" => "createTable",
        "atomic_put" => "atomicPut",
        "atomic_delete" => "atomicDelete",
        "update_data" => "updateData",
        "None" => "null",
        _ => return None,
    })
}

pub trait CoreResultExt<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> CoreResultExt<T> for dynalease::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_napi)
    }
}

/// An operation cancelled through an AbortSignal: the JS layer rethrows the signal's reason.
pub fn aborted() -> napi::Error {
    napi::Error::from_reason("[ABORT_ERR] the operation was aborted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_core_uses_has_a_node_spelling() {
        for name in dynalease::error::OPTION_NAMES {
            assert!(node_name(name).is_some(), "{name} has no Node spelling");
        }
    }

    #[test]
    fn options_are_named_as_node_spells_them() {
        let error = Error::option("heartbeat_period", "(200ms) must be shorter than {lease_duration} (100ms)");
        assert_eq!(error.message(&node_name), "heartbeatPeriodMs (200ms) must be shorter than leaseDurationMs (100ms)");
        assert_eq!(error.to_string(), "heartbeat_period (200ms) must be shorter than lease_duration (100ms)");
        let error = Error::TableNotFound { table: "locks".into() };
        assert!(error.message(&node_name).contains("createTable()"), "{}", error.message(&node_name));
    }

    #[test]
    fn every_code_is_exported_by_name() {
        let codes = error_codes();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        assert_eq!(codes["OUTCOME_UNKNOWN"], "ERR_DYNALEASE_OUTCOME_UNKNOWN");
    }
}
