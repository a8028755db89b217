//! A client's view of a shared transport that counts the client's requests into its own stats.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::request::{Request, Response};
use crate::stats::Stats;
use crate::transport::Transport;

/// Sends through `inner` (shared by many clients) and counts into one client's [`Stats`].
/// Everything else is the inner transport's: its scope (so waiters still share pollers) and its
/// late-landing window.
#[derive(Debug)]
pub struct Counted {
    inner: Arc<dyn Transport>,
    stats: Arc<Stats>,
}

impl Counted {
    /// Sends through `inner`, counting into `stats`.
    pub fn new(inner: Arc<dyn Transport>, stats: Arc<Stats>) -> Counted {
        Counted { inner, stats }
    }

    /// The stats it counts into.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

#[async_trait]
impl Transport for Counted {
    async fn execute(&self, request: Request) -> Result<Response> {
        self.inner.execute_counted(request, &self.stats).await
    }

    async fn execute_counted(&self, request: Request, stats: &Stats) -> Result<Response> {
        self.inner.execute_counted(request, stats).await
    }

    fn late_landing_window(&self) -> Duration {
        self.inner.late_landing_window()
    }

    fn scope(&self) -> usize {
        self.inner.scope()
    }
}
