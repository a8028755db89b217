//! `LockClient` and `Lock` of the Promise API: napi classes over the core lock engine. Every
//! behaviour is the core's; this file converts options and ids, and turns waits into Promises.
//! Elections and semaphores, which the client hands out, are in election.rs and semaphore.rs.

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{Handle, Lock as CoreLock, LockClient as CoreLockClient, LockConfig, LockId, LockStatus};
use dynalease::stats::{Stats, StatsSnapshot as CoreStatsSnapshot};
use dynalease::{Error, Value};
use napi::bindgen_prelude::PromiseRaw;
use napi::{Env, Result};
use napi_derive::napi;
use tokio::sync::{watch, OnceCell};

use crate::codec::{lock_id_from_text, lock_id_to_json, value_from_text, value_to_text};
use crate::connection::{connection_of, Connection};
use crate::election::Election;
use crate::errors::{aborted, CoreResultExt};
use crate::semaphore::{Semaphore, SharedSemaphore};
use crate::stats::StatsSnapshot;

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

/// One `LockClient`'s core client, made on first use (the transport is built asynchronously)
/// and kept: the core counts per client, so every lock, election and semaphore this client
/// hands out must act through the same one for `stats()` to see them all.
pub(crate) struct SharedClient {
    config: LockConfig,
    connection: Arc<Connection>,
    core: OnceCell<CoreLockClient>,
}

impl SharedClient {
    fn new(config: LockConfig, connection: Arc<Connection>) -> Arc<SharedClient> {
        Arc::new(SharedClient { config, connection, core: OnceCell::new() })
    }

    /// The core client (cheap to clone); a failure to build the transport is retried next time.
    pub(crate) async fn get(&self) -> Result<CoreLockClient> {
        let made = self.core.get_or_try_init(|| async {
            let transport = self.connection.transport().await.js()?;
            CoreLockClient::new(self.config.clone(), transport).js()
        });
        Ok(made.await?.clone())
    }

    /// What the client did so far: all zero before its first request.
    fn stats(&self) -> CoreStatsSnapshot {
        self.core.get().map_or_else(|| Stats::default().snapshot(), CoreLockClient::stats)
    }
}

#[napi]
pub struct LockClient {
    shared: Arc<SharedClient>,
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
        Ok(LockClient { shared: SharedClient::new(config, connection) })
    }

    /// What this client and everything it handed out did so far (a snapshot of the core's
    /// counters).
    #[napi]
    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot::from(self.shared.stats())
    }

    /// Prepares an acquisition (`id`: DynamoDB-JSON lock id) that can be cancelled.
    #[napi]
    pub fn acquisition(&self, id: String, timeout_ms: Option<f64>) -> Result<Acquisition> {
        let id = lock_id_from_text(&id).js()?;
        let timeout = timeout_ms.map(|t| millis("timeoutMs", t)).transpose()?;
        Ok(Acquisition::new(self.shared.clone(), Wanted::Lock(id), timeout))
    }

    /// Acquires a lock for work that must end `marginMs` before `remainingMs` runs out (a Lambda
    /// invocation): lost, then released, at that deadline. `timeoutMs` 0 makes one attempt.
    #[napi(ts_return_type = "Promise<Lock>")]
    pub fn acquire_within<'env>(
        &self,
        env: &'env Env,
        id: String,
        timeout_ms: f64,
        remaining_ms: f64,
        margin_ms: f64,
    ) -> Result<PromiseRaw<'env, Lock>> {
        let id = lock_id_from_text(&id).js()?;
        let timeout = millis("timeoutMs", timeout_ms)?;
        let remaining = millis("context.getRemainingTimeInMillis()", remaining_ms)?;
        let margin = millis("marginMs", margin_ms)?;
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let client = shared.get().await?;
            Ok(Lock { inner: client.acquire_within(id, Some(timeout), remaining, margin).await.js()? })
        })
    }

    /// Takes up a lock that `Lock.detach` handed off, if its item still carries the handle's
    /// guid (else ERR_DYNALEASE_LOCK_LOST).
    #[napi(ts_return_type = "Promise<Lock>")]
    pub fn resume<'env>(&self, env: &'env Env, handle: String) -> Result<PromiseRaw<'env, Lock>> {
        let handle = Handle::parse(&handle).js()?;
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let client = shared.get().await?;
            Ok(Lock { inner: client.resume(&handle).await.js()? })
        })
    }

    /// The election `name` (DynamoDB-JSON lock id): one lock whose fencing token is the term.
    #[napi]
    pub fn election(&self, name: String) -> Result<Election> {
        let id = lock_id_from_text(&name).js()?;
        let id = self.shared.config.election_id(id).js()?;
        Ok(Election::new(self.shared.clone(), id))
    }

    /// The counting semaphore `name` (DynamoDB-JSON lock id) with `permits` permits.
    #[napi]
    pub fn semaphore(&self, name: String, permits: f64) -> Result<Semaphore> {
        let id = lock_id_from_text(&name).js()?;
        let whole = permits.is_finite() && permits.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&permits);
        if !whole {
            let max = dynalease::lock::MAX_PERMITS;
            return Err(Error::invalid_value(format!("permits must be a whole number from 1 to {max} (got {permits})"))).js();
        }
        let (id, _) = self.shared.config.semaphore_ids(id, permits as u32).js()?;
        Ok(Semaphore::new(SharedSemaphore::new(self.shared.clone(), id, permits as u32)))
    }

    /// Takes the lock if it is free, with one request; resolves to null if it is held.
    #[napi(ts_return_type = "Promise<Lock | null>")]
    pub fn try_acquire<'env>(&self, env: &'env Env, id: String) -> Result<PromiseRaw<'env, Option<Lock>>> {
        let id = lock_id_from_text(&id).js()?;
        let shared = self.shared.clone();
        env.spawn_future(async move {
            let client = shared.get().await?;
            Ok(client.try_acquire(id).await.js()?.map(|inner| Lock { inner }))
        })
    }

    #[napi(getter)]
    pub fn table(&self) -> String {
        self.shared.config.table.clone()
    }

    #[napi(getter)]
    pub fn partition_key(&self) -> String {
        self.shared.config.partition_key.clone()
    }

    #[napi(getter)]
    pub fn sort_key(&self) -> Option<String> {
        self.shared.config.sort_key.clone()
    }

    #[napi(getter)]
    pub fn lease_duration_ms(&self) -> Option<f64> {
        self.shared.config.lease().map(|d| d.as_secs_f64() * 1000.0)
    }

    #[napi(getter)]
    pub fn heartbeat_period_ms(&self) -> Option<f64> {
        self.shared.config.heartbeat().map(|d| d.as_secs_f64() * 1000.0)
    }

    #[napi(getter)]
    pub fn fail_closed(&self) -> bool {
        self.shared.config.fail_closed
    }

    #[napi(getter)]
    pub fn owner(&self) -> String {
        self.shared.config.owner.clone()
    }

    #[napi(getter)]
    pub fn call_timeout_ms(&self) -> f64 {
        self.shared.connection.call_timeout_ms()
    }

    #[napi(getter)]
    pub fn poll_interval_ms(&self) -> f64 {
        self.shared.config.poll_interval.as_secs_f64() * 1000.0
    }

    #[napi(getter)]
    pub fn max_poll_interval_ms(&self) -> f64 {
        self.shared.config.max_poll_interval.as_secs_f64() * 1000.0
    }

    #[napi(getter)]
    pub fn max_retries(&self) -> u32 {
        self.shared.connection.max_retries()
    }
}

/// What an [`Acquisition`] waits for.
#[derive(Clone)]
pub(crate) enum Wanted {
    Lock(LockId),
    /// An election's term: its lock, written with the candidate's data.
    Campaign { id: LockId, data: Option<Value> },
    /// Any permit of a semaphore.
    Permit(Arc<SharedSemaphore>),
}

/// One pending wait for a lock (`acquire`), a term (`campaign`) or a permit (a semaphore's
/// `acquire`): `run()` waits; `cancel()` drops the wait (the JS layer calls it when the
/// caller's AbortSignal fires).
#[napi]
pub struct Acquisition {
    client: Arc<SharedClient>,
    wanted: Wanted,
    timeout: Option<Duration>,
    cancel: Arc<watch::Sender<bool>>,
}

impl Acquisition {
    pub(crate) fn new(client: Arc<SharedClient>, wanted: Wanted, timeout: Option<Duration>) -> Acquisition {
        let (cancel, _) = watch::channel(false);
        Acquisition { client, wanted, timeout, cancel: Arc::new(cancel) }
    }
}

#[napi]
impl Acquisition {
    #[napi(ts_return_type = "Promise<Lock>")]
    pub fn run<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Lock>> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let wanted = self.wanted.clone();
        let mut cancelled = self.cancel.subscribe();
        env.spawn_future(async move {
            let acquire = async {
                match wanted {
                    Wanted::Lock(id) => client.get().await?.acquire(id, timeout).await.js(),
                    Wanted::Campaign { id, data } => {
                        let election = client.get().await?.election(id).js()?;
                        election.campaign(data, timeout).await.js()
                    }
                    Wanted::Permit(semaphore) => semaphore.get().await?.acquire(timeout).await.js(),
                }
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

    /// The text another process passes to `LockClient.resume` to take this lock up; it
    /// changes with every heartbeat, and `detach` fixes it.
    #[napi(getter)]
    pub fn handle(&self) -> String {
        self.inner.handle().to_string()
    }

    /// Stops this process's heartbeats and resolves to the handle; the lock stays held, and
    /// this object no longer acts for it (status `"detached"`).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn detach<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, String>> {
        let lock = self.inner.clone();
        env.spawn_future(async move { Ok(lock.detach().await.js()?.to_string()) })
    }

    /// One heartbeat now: a new guid (so a new handle) and a fresh lease.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn renew<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let lock = self.inner.clone();
        env.spawn_future(async move { lock.renew().await.js() })
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
