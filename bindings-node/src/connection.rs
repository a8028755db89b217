//! Where a client sends its requests: `endpoint: "memory://name"` selects the core's in-process
//! table (shared by every client of that name in the process), anything else the AWS SDK
//! transport. The SDK transport is built on first use, because building it is async (it reads
//! the AWS configuration chain) and JS constructors are not.

use std::sync::Arc;
use std::time::Duration;

use dynalease::transport::native::{DEFAULT_CALL_TIMEOUT, DEFAULT_MAX_RETRIES, MAX_RETRIES_LIMIT};
use dynalease::transport::{Target, TargetOptions, Transport};
use dynalease::Error;
use tokio::sync::OnceCell;

use crate::errors::CoreResultExt;
use crate::locks::millis;

#[derive(Debug)]
pub struct Connection {
    target: Target,
    call_timeout: Duration,
    max_retries: u32,
    transport: OnceCell<Arc<dyn Transport>>,
}

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
        Ok(Arc::new(Connection {
            target: Target::new(options).js()?,
            call_timeout: call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
            max_retries: max_retries.unwrap_or(DEFAULT_MAX_RETRIES),
            transport: OnceCell::new(),
        }))
    }

    /// The deadline of one DynamoDB call, in milliseconds (the default when none was given).
    pub fn call_timeout_ms(&self) -> f64 {
        self.call_timeout.as_secs_f64() * 1000.0
    }

    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    pub async fn transport(&self) -> dynalease::Result<Arc<dyn Transport>> {
        self.transport.get_or_try_init(|| self.target.connect()).await.cloned()
    }
}

/// `maxRetries` as the core takes it: JS numbers are floats, so a count must be checked to be a
/// whole number here. Counts within u32 go to the core, whose limit message says why.
fn retries(value: f64) -> dynalease::Result<u32> {
    if !value.is_finite() || value < 0.0 || value.fract() != 0.0 {
        return Err(Error::config(format!("maxRetries must be a whole number >= 0 (got {value}); use 0 to send each request once")));
    }
    if value > f64::from(u32::MAX) {
        return Err(Error::config(format!("maxRetries is {value}; at most {MAX_RETRIES_LIMIT} is allowed; use 0 to send each request once")));
    }
    Ok(value as u32)
}
