//! How requests reach a table.
//!
//! The engines only ever call [`Transport::execute`]. Implementations: [`native`] (the AWS SDK)
//! and [`memory`] (an in-process table for tests and embedding). The Node drop-in sends its
//! requests through the user's DocumentClient without a transport: it drives the sans-IO
//! machine in [`crate::lock::dlc`]. [`LazyTransport`] picks and builds one for the bindings.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::request::{Request, Response};
use crate::stats::Stats;

mod counted;
mod lazy;
pub mod memory;
pub mod native;

pub use counted::Counted;
pub use lazy::LazyTransport;

/// The `endpoint_url` that selects [`memory::MemoryTransport::named`].
pub const MEMORY_SCHEME: &str = "memory://";

/// Where a client's requests go, from the endpoint and region options every binding offers:
/// `memory://NAME` is the in-process table of that name, anything else the AWS SDK.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// The in-process table store of this name ([`memory::MemoryTransport::named`]).
    Memory(String),
    /// DynamoDB through the AWS SDK, with this configuration.
    Native(native::NativeConfig),
}

/// The connection options every binding's clients take.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TargetOptions {
    /// Where to send requests: `None` for AWS's endpoint of the region, a URL for DynamoDB Local
    /// or a proxy, or `memory://NAME` for the in-process table store `NAME`.
    pub endpoint_url: Option<String>,
    /// The AWS region; `None` takes it from the standard chain (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// The deadline of one DynamoDB call (default [`native::DEFAULT_CALL_TIMEOUT`]).
    pub call_timeout: Option<Duration>,
    /// Repeats after failures that are safe to repeat (default [`native::DEFAULT_MAX_RETRIES`]).
    pub max_retries: Option<u32>,
}

impl TargetOptions {
    /// A `max_retries` as a binding received it: `shown` as the caller wrote it, `whole` its
    /// value when it is a whole number (`None` for 2.5 or NaN, which float-only languages can
    /// pass). Counts that fit go on to [`native::NativeConfig::validate`], which checks the limit.
    pub fn retry_count(shown: impl std::fmt::Display, whole: Option<i128>) -> Result<u32> {
        let once = "use 0 to send each request once";
        match whole {
            Some(count) if count >= 0 => u32::try_from(count).map_err(|_| {
                crate::Error::option("max_retries", format!("is {shown}; at most {} is allowed; {once}", native::MAX_RETRIES_LIMIT))
            }),
            _ => Err(crate::Error::option("max_retries", format!("must be a whole number >= 0 (got {shown}); {once}"))),
        }
    }
}

impl Target {
    /// Validates the options now; connecting waits for [`Target::connect`], which is async.
    /// The call timeout and retries are checked for `memory://` targets too (and then unused),
    /// so a configuration that works in unit tests also works against DynamoDB.
    pub fn new(options: TargetOptions) -> Result<Target> {
        let defaults = native::NativeConfig::default();
        let config = native::NativeConfig {
            call_timeout: options.call_timeout.unwrap_or(defaults.call_timeout),
            max_retries: options.max_retries.unwrap_or(defaults.max_retries),
            endpoint_url: options.endpoint_url,
            region: options.region,
            ..defaults
        };
        if let Some(name) = config.endpoint_url.as_deref().and_then(|url| url.strip_prefix(MEMORY_SCHEME)) {
            native::NativeConfig { endpoint_url: None, ..config.clone() }.validate()?;
            return Ok(Target::Memory(name.to_owned()));
        }
        config.validate()?;
        Ok(Target::Native(config))
    }

    /// Builds the transport: the named memory store, or an SDK client (which reads the AWS
    /// configuration chain, hence async).
    pub async fn connect(&self) -> Result<Arc<dyn Transport>> {
        Ok(match self {
            Target::Memory(name) => Arc::new(memory::MemoryTransport::named(name)),
            Target::Native(config) => Arc::new(native::NativeTransport::new(config.clone()).await?),
        })
    }
}

/// Executes DynamoDB requests.
///
/// Contract for implementations:
/// - map failures into [`crate::Error`]: a failed condition is `ConditionalCheckFailed` (with
///   the old item when the request asked for it), a missing table `TableNotFound`;
/// - when a write may have been applied but its response was lost (timeout, reset after
///   sending, 5xx), return `Ambiguous` rather than retrying it: the engines resolve it by reading;
/// - the response variant matches the request variant.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `request` and returns DynamoDB's answer, or the error it maps to (see the
    /// trait's contract).
    async fn execute(&self, request: Request) -> Result<Response>;

    /// [`execute`](Transport::execute), counting into `stats` what the request cost: its sends,
    /// throttles, and the capacity units DynamoDB reported. The default counts one send and no
    /// capacity (an in-process table consumes none).
    async fn execute_counted(&self, request: Request, stats: &Stats) -> Result<Response> {
        let result = self.execute(request).await;
        stats.request(1, 0, 0.0, 0.0);
        result
    }

    /// How long after a call gave up its request may still be applied: engines that undo a
    /// write nobody waits for any more send the undo again after this long, to catch a late
    /// landing. Zero for transports that apply a request before answering.
    fn late_landing_window(&self) -> Duration {
        Duration::ZERO
    }

    /// Which tables this transport reaches, as far as waiting is concerned: the waiters of one
    /// lock id whose transports return the same scope share one poller (see
    /// [`LockClient::acquire`](crate::lock::LockClient::acquire)). By default the transport
    /// object itself, so clients that share a transport share their pollers; a transport that
    /// wraps another should return the wrapped one's scope.
    fn scope(&self) -> usize {
        std::ptr::from_ref(self).cast::<()>() as usize
    }
}

/// Typed calls over [`Transport::execute`], so engines never match on [`Response`].
#[async_trait]
pub trait TransportExt: Transport {
    /// GetItem: the item, or `None` when there is none.
    async fn get_item(&self, request: crate::request::GetItem) -> Result<Option<crate::value::Item>> {
        match self.execute(Request::GetItem(request)).await? {
            Response::GetItem(item) => Ok(item),
            other => Err(unexpected("GetItem", &other)),
        }
    }

    /// BatchGetItem: the items found, and the keys left for another request.
    async fn batch_get(&self, request: crate::request::BatchGet) -> Result<crate::request::BatchGetPage> {
        match self.execute(Request::BatchGet(request)).await? {
            Response::BatchGet(page) => Ok(page),
            other => Err(unexpected("BatchGetItem", &other)),
        }
    }

    /// PutItem: the old item if `return_values` asked for it.
    async fn put_item(&self, request: crate::request::PutItem) -> Result<Option<crate::value::Item>> {
        self.write(Request::PutItem(request)).await
    }

    /// UpdateItem: the item before or after, if `return_values` asked for it.
    async fn update_item(&self, request: crate::request::UpdateItem) -> Result<Option<crate::value::Item>> {
        self.write(Request::UpdateItem(request)).await
    }

    /// DeleteItem: the deleted item if `return_values` asked for it.
    async fn delete_item(&self, request: crate::request::DeleteItem) -> Result<Option<crate::value::Item>> {
        self.write(Request::DeleteItem(request)).await
    }

    /// Query: one page of a partition.
    async fn query(&self, request: crate::request::Query) -> Result<crate::request::QueryPage> {
        match self.execute(Request::Query(request)).await? {
            Response::Query(page) => Ok(page),
            other => Err(unexpected("Query", &other)),
        }
    }

    /// Scan: one page of the table.
    async fn scan(&self, request: crate::request::Scan) -> Result<crate::request::QueryPage> {
        match self.execute(Request::Scan(request)).await? {
            Response::Query(page) => Ok(page),
            other => Err(unexpected("Scan", &other)),
        }
    }

    /// TransactWriteItems: `Ok` when every action was applied.
    async fn transact_write(&self, request: crate::request::TransactWrite) -> Result<()> {
        match self.execute(Request::TransactWrite(request)).await? {
            Response::TransactWrite => Ok(()),
            other => Err(unexpected("TransactWriteItems", &other)),
        }
    }

    #[doc(hidden)]
    async fn write(&self, request: Request) -> Result<Option<crate::value::Item>> {
        let operation = request.operation();
        match self.execute(request).await? {
            Response::Written(item) => Ok(item),
            other => Err(unexpected(operation, &other)),
        }
    }
}

impl<T: Transport + ?Sized> TransportExt for T {}

fn unexpected(operation: &'static str, response: &Response) -> crate::Error {
    crate::Error::Service {
        operation,
        code: "UnexpectedResponse".into(),
        message: format!("the transport answered {operation} with {response:?}"),
    }
}
