//! Where a client sends its requests: `endpoint: "memory://name"` selects the core's in-process
//! table (shared by every client of that name in the process), anything else the AWS SDK
//! transport, built on first use (`dynalease::transport::LazyTransport`).

use std::sync::Arc;

use dynalease::transport::{LazyTransport, TargetOptions, Transport};

use crate::errors::CoreResultExt;
use crate::locks::millis;

#[derive(Debug)]
pub struct Connection {
    transport: LazyTransport,
}

/// The connection of a napi options object: every client's and `createTable`'s options carry
/// the same four fields (napi objects cannot share a flattened struct).
macro_rules! connection_of {
    ($options:expr) => {
        $crate::connection::Connection::new($crate::connection::ConnectionArgs {
            endpoint: $options.endpoint,
            region: $options.region,
            call_timeout_ms: $options.call_timeout_ms,
            max_retries: $options.max_retries,
        })
    };
}
pub(crate) use connection_of;

/// The connection options every client and `createTable` take, as JS passed them.
pub struct ConnectionArgs {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub call_timeout_ms: Option<f64>,
    pub max_retries: Option<f64>,
}

impl Connection {
    /// Fails on a malformed endpoint, region, call timeout or retry count (see `Target::new`).
    pub fn new(args: ConnectionArgs) -> napi::Result<Arc<Connection>> {
        let call_timeout = args.call_timeout_ms.map(|ms| millis("callTimeoutMs", ms)).transpose()?;
        let max_retries = args.max_retries.map(retries).transpose().js()?;
        let options = TargetOptions { endpoint_url: args.endpoint, region: args.region, call_timeout, max_retries };
        Ok(Arc::new(Connection { transport: LazyTransport::new(options).js()? }))
    }

    /// The deadline of one DynamoDB call, in milliseconds (the default when none was given).
    pub fn call_timeout_ms(&self) -> f64 {
        self.transport.call_timeout().as_secs_f64() * 1000.0
    }

    pub fn max_retries(&self) -> u32 {
        self.transport.max_retries()
    }

    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        self.transport.get().await
    }
}

/// `maxRetries` as the core takes it: JS numbers are floats, so only a whole one is a count.
fn retries(value: f64) -> dynalease::Result<u32> {
    let whole = (value.is_finite() && value.fract() == 0.0).then_some(value as i128);
    TargetOptions::retry_count(value, whole)
}
