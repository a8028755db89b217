//! Lease locks and fail-closed locks on a DynamoDB table, in the item format that
//! dynamodb-lock-client 0.7.3 uses (see `docs/table-format.md`), so that every client of the
//! table can contend for the same lock ids.
//!
//! - [`LockClient`] acquires locks ([`LockClient::acquire`], [`LockClient::try_acquire`]).
//! - [`Lock`] is one held lock: its fencing token, heartbeats, lost-lease watch, data and release.
//!
//! ```no_run
//! # async fn demo() -> dynalease::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use dynalease::lock::{LockClient, LockConfig};
//! use dynalease::transport::memory::MemoryTransport;
//!
//! let transport = Arc::new(MemoryTransport::new());
//! dynalease::table::create_table(transport.as_ref(), &dynalease::table::TableSpec::new("locks", "id")).await?;
//! let locks = LockClient::new(LockConfig::new("locks", "id").lease_duration(Duration::from_secs(10)), transport)?;
//! let lock = locks.acquire("job-1", Some(Duration::from_secs(30))).await?;
//! println!("holding with fencing token {:?}", lock.fencing_token());
//! lock.release().await?;
//! # Ok(()) }
//! ```

mod client;
mod config;
pub(crate) mod held;
pub(crate) mod item;
mod wake;

pub use client::LockClient;
pub use config::{LockConfig, Mode, DEFAULT_LEASE_DURATION, DEFAULT_POLL_INTERVAL};
pub use held::{Lock, LockStatus};
pub use item::{LockId, RESERVED_ATTRIBUTES};
