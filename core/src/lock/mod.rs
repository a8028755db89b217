//! Lease locks and fail-closed locks on a DynamoDB table, in the item format that
//! dynamodb-lock-client 0.7.3 uses (see `docs/table-format.md`), so that every client of the
//! table can contend for the same lock ids.
//!
//! - [`LockClient`] acquires locks ([`LockClient::acquire`], [`LockClient::try_acquire`]).
//! - [`Lock`] is one held lock: its fencing token, heartbeats, lost-lease watch, data and release.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dynalease::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use dynalease::lock::{LockClient, LockConfig};
//! use dynalease::table::{create_table, TableSpec};
//! use dynalease::transport::memory::MemoryTransport;
//!
//! // The memory transport stands in for DynamoDB here; use NativeTransport in production.
//! let transport = Arc::new(MemoryTransport::new());
//! create_table(transport.as_ref(), &TableSpec::new("locks", "id")).await?;
//! let config = LockConfig { lease_duration: Duration::from_secs(10), ..LockConfig::new("locks") };
//! let locks = LockClient::new(config, transport)?;
//!
//! let lock = locks.acquire("job-1", Some(Duration::from_secs(30))).await?;
//! assert_eq!(lock.fencing_token(), Some(1));
//! assert!(locks.try_acquire("job-1").await?.is_none(), "held");
//! lock.release().await?;
//! assert_eq!(locks.try_acquire("job-1").await?.unwrap().fencing_token(), Some(2));
//! # Ok(()) }
//! ```
//!
//! Beyond one mutex: hand a lock to another process, elect a leader, share N permits, and end a
//! lock at a deadline (a Lambda invocation's):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> dynalease::Result<()> {
//! # use std::{sync::Arc, time::Duration};
//! # use dynalease::lock::{LockClient, LockConfig};
//! # use dynalease::table::{create_table, TableSpec};
//! # use dynalease::transport::memory::MemoryTransport;
//! # let transport = Arc::new(MemoryTransport::new());
//! # create_table(transport.as_ref(), &TableSpec::new("locks", "id")).await?;
//! use dynalease::lock::Handle;
//! use dynalease::Value;
//! let locks = LockClient::new(LockConfig::new("locks"), transport)?;
//!
//! // Hand-off: the text travels (a queue message, a Step Functions state); the lock stays held.
//! let text = locks.acquire("order/7", None).await?.detach().await?.to_string();
//! let lock = locks.resume(&Handle::parse(&text)?).await?;
//! lock.release().await?;
//!
//! // Election: the term is the fencing token; releasing resigns.
//! let election = locks.election("scheduler")?;
//! let term = election.campaign(Some(Value::from("10.0.0.7")), None).await?;
//! assert_eq!(election.leader().await?.map(|l| l.term), term.fencing_token());
//!
//! // Semaphore: at most 2 holders across every process.
//! let exports = locks.semaphore("exports", 2)?;
//! let (_a, _b) = (exports.acquire(None).await?, exports.acquire(None).await?);
//! assert!(exports.try_acquire().await?.is_none());
//!
//! // Deadline: 30 s left in the invocation, ended (lost, then released) 1 s before that.
//! let bounded = locks.acquire_within("job-9", Some(Duration::ZERO), Duration::from_secs(30), Duration::from_secs(1)).await?;
//! assert!(bounded.check().is_ok());
//! # Ok(()) }
//! ```

pub mod admin;
mod client;
mod config;
pub mod dlc;
mod election;
pub(crate) mod fence;
mod handle;
pub(crate) mod held;
pub(crate) mod item;
mod poll;
mod semaphore;
mod undo;

pub use client::LockClient;
pub use config::{
    LockConfig, Mode, DEFAULT_LEASE_DURATION, DEFAULT_MAX_POLL_INTERVAL, DEFAULT_PARTITION_KEY, DEFAULT_POLL_INTERVAL, FAST_POLL_WINDOW,
};
pub use election::{Election, Leader, LeaderWatch};
pub use handle::Handle;
pub use held::{Lock, LockStatus};
pub use semaphore::{permit_count, PermitHolder, Semaphore, MAX_PERMITS};
pub use item::{LockId, LockTable, RESERVED_ATTRIBUTES};
