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
pub use semaphore::{PermitHolder, Semaphore, MAX_PERMITS};
pub use item::{LockId, RESERVED_ATTRIBUTES};
