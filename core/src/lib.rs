//! dynalease: distributed lease locks and a compare-and-swap key/value store on Amazon DynamoDB.
//!
//! - [`lock`]: lease locks and fail-closed locks ([`lock::LockClient`], [`lock::Lock`]).
//! - [`kv`]: the key/value store ([`kv::KvStore`]).
//! - [`table`]: creating and checking the tables.
//! - [`transport`]: where requests go (the AWS SDK, or an in-process table).

// Every public item is documented: `make test` runs rustdoc with `-D warnings`.
#![warn(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

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

/// The crate's README (the one crates.io shows), its example compiled by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeExamples;

/// The Rust examples in the project's docs, compiled (and run where they can) by `cargo test --doc`.
/// Only in the repository: a packaged crate does not hold these files (see `build.rs`).
#[cfg(all(doctest, dynalease_repo_docs))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

/// The Rust examples of the lock table's format, compiled like the README's.
#[cfg(all(doctest, dynalease_repo_docs))]
#[doc = include_str!("../../docs/table-format.md")]
pub struct TableFormatExamples;
