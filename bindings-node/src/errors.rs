//! One conversion from core errors to JS errors. napi rejects with its own status as `code`,
//! so the stable dynalease code (`ErrorKind::code()`) travels as a `[CODE] ` prefix of the
//! message, which the JS layer (lib/errors.js) turns into `err.code` in one place.

use dynalease::{Error, ErrorKind};

pub fn to_napi(error: Error) -> napi::Error {
    let kind = error.kind();
    let mut message = error.to_string();
    // The core names options and functions as Rust and Python spell them; in a message that
    // tells a Node user what to change, use the names that user writes.
    if matches!(kind, ErrorKind::Config | ErrorKind::Table) {
        message = in_node_names(&message);
    }
    napi::Error::from_reason(format!("[{}] {message}", kind.code()))
}

/// The core's option and function names, as this binding's API spells them.
const NODE_NAMES: [(&str, &str); 19] = [
    ("lease_duration", "leaseDurationMs"),
    ("heartbeat_period", "heartbeatPeriodMs"),
    ("partition_key", "partitionKey"),
    ("sort_key", "sortKey"),
    ("partition_key_type", "partitionKeyType"),
    ("sort_key_type", "sortKeyType"),
    ("endpoint_url", "endpoint"),
    ("trust_local_time", "trustLocalTime"),
    ("fail_closed", "failClosed"),
    ("ttl", "ttlMs"),
    ("timeout", "timeoutMs"),
    ("call_timeout", "callTimeoutMs"),
    ("poll_interval", "pollIntervalMs"),
    ("max_retries", "maxRetries"),
    ("create_table", "createTable"),
    ("atomic_put", "atomicPut"),
    ("atomic_delete", "atomicDelete"),
    ("update_data", "updateData"),
    ("None", "null"),
];

/// Replaces whole identifiers only: `sort_key` in `sort_key_type` stays part of that name.
fn in_node_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let word = &rest[..end];
        out.push_str(NODE_NAMES.iter().find(|(core, _)| *core == word).map_or(word, |(_, node)| node));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
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
    fn options_are_named_as_node_spells_them() {
        assert_eq!(
            in_node_names("heartbeat_period (200ms) must be shorter than lease_duration (100ms)"),
            "heartbeatPeriodMs (200ms) must be shorter than leaseDurationMs (100ms)"
        );
        assert_eq!(in_node_names("sort_key_type \"X\"; sort_key None"), "sortKeyType \"X\"; sortKey null");
        assert_eq!(in_node_names("timeouts, timeout_x and ttl."), "timeouts, timeout_x and ttlMs.");
        assert_eq!(
            in_node_names("call_timeout must be longer than zero; poll_interval too; max_retries is 101"),
            "callTimeoutMs must be longer than zero; pollIntervalMs too; maxRetries is 101"
        );
    }
}
