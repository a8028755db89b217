//! Wall-clock time, injectable for tests.
//!
//! Lease waits use the monotonic clock (`tokio::time::Instant`, which tests can pause and
//! advance). Wall-clock time is only written into items (`lockAcquiredTimeUnixMs`, `expires`) and
//! compared with them when the user opts in, so it sits behind this trait.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the engines read wall-clock time: [`SystemClock`] in production, [`TokioClock`] in
/// tests with paused time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A wall clock that advances with tokio's clock, so that `tokio::time::pause()` and
/// `advance()` move both clocks together in deterministic tests.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start_unix_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start_unix_ms` now and advances with `tokio::time::Instant`.
    pub fn starting_at(start_unix_ms: u64) -> Self {
        TokioClock { start_unix_ms, start: tokio::time::Instant::now() }
    }
}

impl Clock for TokioClock {
    fn now_unix_ms(&self) -> u64 {
        self.start_unix_ms + self.start.elapsed().as_millis() as u64
    }
}

/// A clock as clients, stores and the memory transport hold it (`with_clock` sets one).
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}
