//! Where a client sends its requests: `endpoint: "memory://name"` selects the core's in-process
//! table (shared by every client of that name in the process), anything else the AWS SDK
//! transport. The SDK transport is built on first use, because building it is async (it reads
//! the AWS configuration chain) and JS constructors are not.

use std::sync::Arc;

use dynalease::transport::memory::MemoryTransport;
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::transport::Transport;
use tokio::sync::OnceCell;

const MEMORY_SCHEME: &str = "memory://";

#[derive(Debug)]
pub struct Connection {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    transport: OnceCell<Arc<dyn Transport>>,
}

impl Connection {
    pub fn new(endpoint: Option<String>, region: Option<String>) -> Arc<Connection> {
        Arc::new(Connection { endpoint, region, transport: OnceCell::new() })
    }

    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        self.transport
            .get_or_try_init(|| async {
                let transport: Arc<dyn Transport> = match self.endpoint.as_deref().and_then(|e| e.strip_prefix(MEMORY_SCHEME)) {
                    Some(name) => Arc::new(MemoryTransport::named(name)),
                    None => Arc::new(
                        NativeTransport::new(NativeConfig {
                            endpoint_url: self.endpoint.clone(),
                            region: self.region.clone(),
                            ..NativeConfig::default()
                        })
                        .await?,
                    ),
                };
                Ok(transport)
            })
            .await
            .cloned()
    }
}
