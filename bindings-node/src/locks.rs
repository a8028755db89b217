//! `LockClient` and `Lock` of the Promise API: napi classes over the core lock engine. Every
//! behaviour is the core's; this file converts options and ids, and turns waits into Promises.

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{Lock as CoreLock, LockClient as CoreLockClient, LockConfig, LockStatus};
use dynalease::Error;
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::watch;

use crate::codec::{lock_id_from_text, lock_id_to_json, value_from_text, value_to_text};
use crate::connection::{connection_of, Connection};
use crate::errors::{aborted, CoreResultExt};

#[napi(object)]
pub struct LockClientOptions {
    pub table: String,
    /// The table's partition key attribute (default `"id"`).
    pub partition_key: Option<String>,
    /// The table's sort key attribute; lock ids are then `[partition, sort]`.
    pub sort_key: Option<String>,
    /// How long a lock stays held without a heartbeat (default 10000).
    pub lease_duration_ms: Option<f64>,
    /// Between lease renewals (default: a third of the lease; 0: no heartbeats).
    pub heartbeat_period_ms: Option<f64>,
    /// Locks without a lease: held until released, never taken over, no fencing token.
    pub fail_closed: Option<bool>,
    /// Written into lock items (default `dynalease@<version>_<user>@<host>`).
    pub owner: Option<String>,
    /// Shorten waits by the holder's wall-clock timestamp (only if all clocks agree).
    pub trust_local_time: Option<bool>,
    /// DynamoDB endpoint (e.g. DynamoDB Local), or `"memory://NAME"` for an in-process table.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// How long one DynamoDB call may take before it is abandoned (default 5000).
    pub call_timeout_ms: Option<f64>,
    /// The pause between reads for the first 2 s of a wait for a held lock, and the shortest
    /// pause ever (default 50).
    pub poll_interval_ms: Option<f64>,
    /// The longest pause between reads of a long wait (default 1500).
    pub max_poll_interval_ms: Option<f64>,
    /// Repeats of a failed call when that is safe (default 7; 0 sends each request once).
    pub max_retries: Option<f64>,
}

pub fn millis(option: &str, value: f64) -> Result<Duration> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::config(format!("{option} must be a finite number of milliseconds >= 0 (got {value})"))).js();
    }
    Ok(Duration::from_micros((value * 1000.0) as u64))
}

#[napi]
pub struct LockClient {
    config: LockConfig,
    connection: Arc<Connection>,
}

impl LockClient {
    async fn client(config: LockConfig, connection: Arc<Connection>) -> Result<CoreLockClient> {
        let transport = connection.transport().await.js()?;
        CoreLockClient::new(config, transport).js()
    }
}

#[napi]
impl LockClient {
    /// Validates the options; nothing is sent until the first acquire.
    #[napi(constructor)]
    pub fn new(options: LockClientOptions) -> Result<LockClient> {
        let defaults = LockConfig::new(options.table);
        let config = LockConfig {
            partition_key: options.partition_key.unwrap_or(defaults.partition_key),
            sort_key: options.sort_key,
            lease_duration: options.lease_duration_ms.map(|ms| millis("leaseDurationMs", ms)).transpose()?.unwrap_or(defaults.lease_duration),
            heartbeat_period: options.heartbeat_period_ms.map(|ms| millis("heartbeatPeriodMs", ms)).transpose()?,
            fail_closed: options.fail_closed.unwrap_or(false),
            trust_local_time: options.trust_local_time.unwrap_or(false),
            owner: options.owner.unwrap_or(defaults.owner),
            poll_interval: options.poll_interval_ms.map(|ms| millis("pollIntervalMs", ms)).transpose()?.unwrap_or(defaults.poll_interval),
            max_poll_interval: options
                .max_poll_interval_ms
                .map(|ms| millis("maxPollIntervalMs", ms))
                .transpose()?
                .unwrap_or(defaults.max_poll_interval),
            ..defaults
        };
        config.validate().js()?;
        let connection = connection_of!(options)?;
        Ok(LockClient { config, connection })
    }

    /// Prepares an acquisition (`id`: DynamoDB-JSON lock id) that can be cancelled.
    #[napi]
    pub fn acquisition(&self, id: String, timeout_ms: Option<f64>) -> Result<Acquisition> {
        let id = lock_id_from_text(&id).js()?;
        let timeout = timeout_ms.map(|t| millis("timeoutMs", t)).transpose()?;
        let (cancel, _) = watch::channel(false);
        Ok(Acquisition { config: self.config.clone(), connection: self.connection.clone(), id, timeout, cancel: Arc::new(cancel) })
    }

    /// Takes the lock if it is free, with one request; resolves to null if it is held.
    #[napi(ts_return_type = "Promise<Lock | null>")]
    pub fn try_acquire<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Option<Lock>>> {
        let id = lock_id_from_text(&id).js()?;
        let (config, connection) = (self.config.clone(), self.connection.clone());
        env.spawn_future(async move {
            let client = LockClient::client(config, connection).await?;
            Ok(client.try_acquire(id).await.js()?.map(|inner| Lock { inner }))
        })
    }

    #[napi(getter)]
    pub fn table(&self) -> String {
        self.config.table.clone()
    }

    #[napi(getter)]
    pub fn partition_key(&self) -> String {
        self.config.partition_key.clone()
    }

    #[napi(getter)]
    pub fn sort_key(&self) -> Option<String> {
        self.config.sort_key.clone()
    }

    #[napi(getter)]
    pub fn lease_duration_ms(&self) -> Option<f64> {
        self.config.lease().map(|d| d.as_secs_f64() * 1000.0)
    }

    #[napi(getter)]
    pub fn heartbeat_period_ms(&self) -> Option<f64> {
        self.config.heartbeat().map(|d| d.as_secs_f64() * 1000.0)
    }

    #[napi(getter)]
    pub fn fail_closed(&self) -> bool {
        self.config.fail_closed
    }

    #[napi(getter)]
    pub fn owner(&self) -> String {
        self.config.owner.clone()
    }

    #[napi(getter)]
    pub fn call_timeout_ms(&self) -> f64 {
        self.connection.call_timeout_ms()
    }

    #[napi(getter)]
    pub fn poll_interval_ms(&self) -> f64 {
        self.config.poll_interval.as_secs_f64() * 1000.0
    }

    #[napi(getter)]
    pub fn max_poll_interval_ms(&self) -> f64 {
        self.config.max_poll_interval.as_secs_f64() * 1000.0
    }

    #[napi(getter)]
    pub fn max_retries(&self) -> u32 {
        self.connection.max_retries()
    }
}

/// One pending `acquire`: `run()` waits for the lock; `cancel()` drops the wait (the JS layer
/// calls it when the caller's AbortSignal fires).
#[napi]
pub struct Acquisition {
    config: LockConfig,
    connection: Arc<Connection>,
    id: dynalease::lock::LockId,
    timeout: Option<Duration>,
    cancel: Arc<watch::Sender<bool>>,
}

#[napi]
impl Acquisition {
    #[napi(ts_return_type = "Promise<Lock>")]
    pub fn run<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Lock>> {
        let (config, connection, id, timeout) = (self.config.clone(), self.connection.clone(), self.id.clone(), self.timeout);
        let mut cancelled = self.cancel.subscribe();
        env.spawn_future(async move {
            let acquire = async {
                let client = LockClient::client(config, connection).await?;
                client.acquire(id, timeout).await.js()
            };
            // Biased, acquire first: when the lock was won by the time the signal's cancel is
            // seen, it is returned rather than dropped for the abort. A dropped lock stops
            // heartbeating without being released, so nobody could take it until its lease ran
            // out (and a fail-closed one never frees); returned, the caller holds it and
            // releases it like any other.
            tokio::select! {
                biased;
                lock = acquire => Ok(Lock { inner: lock? }),
                // Dropping the acquire future stops the wait (and any request in flight).
                _ = cancelled.wait_for(|c| *c) => Err(aborted()),
            }
        })
    }

    #[napi]
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }
}

/// A held lock.
#[napi]
pub struct Lock {
    pub(crate) inner: CoreLock,
}

#[napi]
impl Lock {
    /// The lock id as DynamoDB JSON (`{"partition": .., "sort": ..}`).
    #[napi(getter)]
    pub fn id(&self) -> String {
        lock_id_to_json(self.inner.id()).to_string()
    }

    /// Strictly increasing per lock id; null for fail-closed locks.
    #[napi(getter)]
    pub fn fencing_token(&self) -> Option<i64> {
        self.inner.fencing_token()
    }

    /// The lock data as DynamoDB JSON, or null when there is none.
    #[napi(getter)]
    pub fn data(&self) -> Option<String> {
        self.inner.data().map(|v| value_to_text(&v))
    }

    /// `"held"`, `"lost"`, `"released"` or `"detached"`.
    #[napi(getter)]
    pub fn status(&self) -> String {
        self.inner.status().name().to_owned()
    }

    #[napi(getter)]
    pub fn lost_reason(&self) -> Option<String> {
        match self.inner.status() {
            LockStatus::Lost(reason) => Some(reason),
            _ => None,
        }
    }

    /// Resolves with the reason when the lease is lost, or with null once released.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub fn wait_lost<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<String>>> {
        let lock = self.inner.clone();
        env.spawn_future(async move { Ok(lock.wait_lost().await) })
    }

    /// Replaces the lock data (DynamoDB JSON) while the lock is held.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn update_data<'env>(&self, env: &'env Env, data: String) -> Result<PromiseRaw<'env, ()>> {
        let data = value_from_text(&data).js()?;
        let lock = self.inner.clone();
        env.spawn_future(async move { lock.update_data(data).await.js() })
    }

    /// Releases the lock, optionally leaving data (DynamoDB JSON) in the item.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn release<'env>(&self, env: &'env Env, data: Option<String>) -> Result<PromiseRaw<'env, ()>> {
        let data = data.map(|d| value_from_text(&d)).transpose().js()?;
        let lock = self.inner.clone();
        env.spawn_future(async move { lock.release_with_data(data).await.js() })
    }
}
