//! Where a client sends its requests: `endpoint: "memory://name"` selects the core's in-process
//! table (shared by every client of that name in the process), anything else the AWS SDK
//! transport. The SDK transport is built on first use, because building it is async (it reads
//! the AWS configuration chain) and JS constructors are not.

use std::sync::Arc;

use dynalease::transport::{Target, TargetOptions, Transport};
use tokio::sync::OnceCell;

#[derive(Debug)]
pub struct Connection {
    target: Target,
    transport: OnceCell<Arc<dyn Transport>>,
}

impl Connection {
    /// Fails on a malformed endpoint or region (see `Target::new`).
    pub fn new(endpoint: Option<String>, region: Option<String>) -> dynalease::Result<Arc<Connection>> {
        Ok(Arc::new(Connection { target: Target::new(TargetOptions { endpoint_url: endpoint, region, ..TargetOptions::default() })?, transport: OnceCell::new() }))
    }

    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        self.transport.get_or_try_init(|| self.target.connect()).await.cloned()
    }
}
