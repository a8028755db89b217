//! dynalease: distributed lease locks and a compare-and-swap key/value store on Amazon DynamoDB.
//!
//! - [`lock`]: lease locks and fail-closed locks ([`lock::LockClient`], [`lock::Lock`]).
//! - [`kv`]: the key/value store ([`kv::KvStore`]).
//! - [`table`]: creating and checking the tables.
//! - [`transport`]: where requests go (the AWS SDK, or an in-process table).

pub mod error;
pub mod kv;
pub mod lock;
pub mod protocol;
pub(crate) mod resend;
pub mod stats;
pub mod table;
pub mod transport;
pub mod value;

pub(crate) use protocol::{clock, expr, random, request};

pub use error::{Error, ErrorKind, Result};
pub use value::{AttributeValue, Item, KeyType, KeyValue, Number, Value};

/// The Rust examples in the project's docs, compiled (and run where they can) by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

#[cfg(doctest)]
#[doc = include_str!("../../docs/table-format.md")]
pub struct TableFormatExamples;
