//! `LockClient` / `AsyncLockClient` and the locks they hand out (`Lock` / `AsyncLock`).
//!
//! The sync and async classes share one configuration type and differ only in how they wait:
//! `runtime::block_on` (GIL released, Ctrl-C honoured) or `runtime::awaitable` (asyncio).

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{LockClient as CoreLockClient, LockConfig, LockStatus};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::connection::{Connection, ConnectionArgs};
use crate::convert::{from_value, lock_id_to_py, optional_seconds, seconds, to_value};
use crate::errors::{to_py_err, CoreResultExt};
use crate::runtime::{awaitable, block_on, call_in_thread, runtime};

/// What both lock clients hold: a validated configuration and where to send requests.
#[derive(Debug)]
struct Locks {
    config: LockConfig,
    connection: Connection,
}

/// The constructor arguments both lock clients take, converted from Python.
struct LockArgs<'a, 'py> {
    table: String,
    partition_key: String,
    sort_key: Option<String>,
    lease_duration: f64,
    heartbeat_period: Option<f64>,
    fail_closed: bool,
    owner: Option<String>,
    trust_local_time: bool,
    poll_interval: Option<f64>,
    connection: ConnectionArgs<'a, 'py>,
}

impl Locks {
    fn new(args: LockArgs<'_, '_>) -> PyResult<Locks> {
        let LockArgs { table, partition_key, sort_key, lease_duration, heartbeat_period, fail_closed, owner, trust_local_time, poll_interval, connection } =
            args;
        let defaults = LockConfig::new(table);
        let config = LockConfig {
            partition_key,
            sort_key,
            lease_duration: seconds("lease_duration", lease_duration)?,
            heartbeat_period: optional_seconds("heartbeat_period", heartbeat_period)?,
            fail_closed,
            trust_local_time,
            owner: owner.unwrap_or(defaults.owner),
            poll_interval: optional_seconds("poll_interval", poll_interval)?.unwrap_or(defaults.poll_interval),
            ..defaults
        };
        config.validate().py()?;
        Ok(Locks { config, connection: Connection::new(connection)? })
    }

    /// A core client on this process's transport (cheap: the transport is cached).
    async fn client(&self) -> PyResult<CoreLockClient> {
        let transport = self.connection.transport().await.py()?;
        CoreLockClient::new(self.config.clone(), transport).py()
    }

    async fn acquire(self: Arc<Self>, id: dynalease::lock::LockId, timeout: Option<Duration>) -> PyResult<dynalease::lock::Lock> {
        self.client().await?.acquire(id, timeout).await.py()
    }

    async fn try_acquire(self: Arc<Self>, id: dynalease::lock::LockId) -> PyResult<Option<dynalease::lock::Lock>> {
        self.client().await?.try_acquire(id).await.py()
    }

    fn lease_duration(&self) -> Option<f64> {
        self.config.lease().map(|d| d.as_secs_f64())
    }

    fn heartbeat_period(&self) -> Option<f64> {
        self.config.heartbeat().map(|d| d.as_secs_f64())
    }

    fn fail_closed(&self) -> bool {
        self.config.fail_closed
    }
}

/// The constructor documentation both clients share (kept in one place, used via concat!).
macro_rules! client_doc {
    ($summary:literal) => {
        concat!(
            $summary,
            "\n\n",
            "Args:\n",
            "    table: name of the lock table (see create_table).\n",
            "    partition_key: the table's partition key attribute (default \"id\").\n",
            "    sort_key: the table's sort key attribute, if it has one; lock ids are then\n",
            "        (partition, sort) tuples.\n",
            "    lease_duration: seconds a lock stays held without a heartbeat (default 10.0: long\n",
            "        enough to ride out a slow call, short enough that a crashed Lambda's lock frees\n",
            "        up quickly).\n",
            "    heartbeat_period: seconds between lease renewals. None (default) renews every third\n",
            "        of lease_duration; 0 disables heartbeats, so a lock is lost lease_duration after\n",
            "        it was acquired.\n",
            "    fail_closed: locks without a lease: held until released, never taken over (no\n",
            "        fencing token; the item is deleted on release).\n",
            "    owner: written into lock items (default \"dynalease@<version>_<user>@<host>\").\n",
            "    trust_local_time: shorten waits by the holder's wall-clock timestamp (only if all\n",
            "        hosts' clocks agree).\n",
            "    endpoint_url: DynamoDB endpoint (e.g. DynamoDB Local), or \"memory://NAME\" for an\n",
            "        in-process table shared by every client of that name. Default: AWS.\n",
            "    region: AWS region (default: AWS_REGION / the profile).\n",
            "    call_timeout: seconds one DynamoDB call may take before it is abandoned (default\n",
            "        5.0); a write abandoned this way that cannot be resolved raises\n",
            "        OutcomeUnknownError.\n",
            "    poll_interval: the longest pause, in seconds, between reads of a held lock while\n",
            "        waiting for it (default 0.05): a release by another process is noticed within\n",
            "        about this long; larger values read less often.\n",
            "    max_retries: how often a failed call is repeated when that is safe (throttling,\n",
            "        failed connects, reads; default 7; 0 sends each request once; at most 100).\n",
            "\n",
            "Nothing is sent until the first acquire; AWS configuration errors surface there.\n",
            "Raises ConfigError for invalid options (e.g. negative durations, reserved key names)."
        )
    };
}

#[pyclass(module = "dynalease._native", subclass, frozen)]
#[doc = client_doc!("Acquires lease locks (blocking calls; they release the GIL and honour Ctrl-C).")]
pub struct LockClient {
    locks: Arc<Locks>,
}

#[pyclass(module = "dynalease._native", subclass, frozen)]
#[doc = client_doc!("Acquires lease locks with asyncio: every call returns an awaitable.")]
pub struct AsyncLockClient {
    locks: Arc<Locks>,
}

/// The getters both clients share.
macro_rules! client_properties {
    ($ty:ident { $($items:tt)* }) => {
        #[pymethods]
        impl $ty {
        $($items)*
        /// Name of the lock table.
        #[getter]
        fn table(&self) -> &str {
            &self.locks.config.table
        }

        /// The table's partition key attribute.
        #[getter]
        fn partition_key(&self) -> &str {
            &self.locks.config.partition_key
        }

        /// The table's sort key attribute, or None.
        #[getter]
        fn sort_key(&self) -> Option<&str> {
            self.locks.config.sort_key.as_deref()
        }

        /// The lease in seconds (None for fail-closed locks).
        #[getter]
        fn lease_duration(&self) -> Option<f64> {
            self.locks.lease_duration()
        }

        /// Seconds between heartbeats (None: no heartbeats).
        #[getter]
        fn heartbeat_period(&self) -> Option<f64> {
            self.locks.heartbeat_period()
        }

        /// True for fail-closed locks.
        #[getter]
        fn fail_closed(&self) -> bool {
            self.locks.fail_closed()
        }

        /// The owner written into lock items.
        #[getter]
        fn owner(&self) -> &str {
            &self.locks.config.owner
        }

        /// The configured endpoint, or None for AWS.
        #[getter]
        fn endpoint_url(&self) -> Option<&str> {
            self.locks.connection.endpoint_url()
        }

        /// The configured region, or None for the default chain.
        #[getter]
        fn region(&self) -> Option<&str> {
            self.locks.connection.region()
        }

        /// Seconds one DynamoDB call may take.
        #[getter]
        fn call_timeout(&self) -> f64 {
            self.locks.connection.call_timeout().as_secs_f64()
        }

        /// The longest pause, in seconds, between reads while waiting for a held lock.
        #[getter]
        fn poll_interval(&self) -> f64 {
            self.locks.config.poll_interval.as_secs_f64()
        }

        /// Repeats of a failed call that is safe to repeat.
        #[getter]
        fn max_retries(&self) -> u32 {
            self.locks.connection.max_retries()
        }

        fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
            let text = |s: Option<&str>| -> PyResult<String> {
                Ok(match s {
                    Some(s) => pyo3::types::PyString::new(py, s).repr()?.to_string(),
                    None => "None".to_owned(),
                })
            };
            let config = &self.locks.config;
            Ok(format!(
                "{}(table={}, partition_key={}, sort_key={}, lease_duration={}, fail_closed={})",
                Self::NAME,
                text(Some(&config.table))?,
                text(Some(&config.partition_key))?,
                text(config.sort_key.as_deref())?,
                self.locks.lease_duration().map(|d| format!("{d:?}")).unwrap_or_else(|| "None".into()),
                if self.locks.fail_closed() { "True" } else { "False" },
            ))
        }
        }
    };
}

impl LockClient {
    const NAME: &'static str = "LockClient";
}

impl AsyncLockClient {
    const NAME: &'static str = "AsyncLockClient";
}

client_properties!(LockClient {
    #[new]
    #[pyo3(signature = (table, partition_key = "id".to_owned(), sort_key = None, lease_duration = 10.0, heartbeat_period = None, fail_closed = false, owner = None, trust_local_time = false, endpoint_url = None, region = None, call_timeout = None, poll_interval = None, max_retries = None))]
    #[pyo3(text_signature = "(table, partition_key='id', sort_key=None, lease_duration=10.0, heartbeat_period=None, fail_closed=False, owner=None, trust_local_time=False, endpoint_url=None, region=None, call_timeout=None, poll_interval=None, max_retries=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        table: String,
        partition_key: String,
        sort_key: Option<String>,
        lease_duration: f64,
        heartbeat_period: Option<f64>,
        fail_closed: bool,
        owner: Option<String>,
        trust_local_time: bool,
        endpoint_url: Option<String>,
        region: Option<String>,
        call_timeout: Option<f64>,
        poll_interval: Option<f64>,
        max_retries: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let locks = Locks::new(LockArgs {
            table,
            partition_key,
            sort_key,
            lease_duration,
            heartbeat_period,
            fail_closed,
            owner,
            trust_local_time,
            poll_interval,
            connection: ConnectionArgs { endpoint_url, region, call_timeout, max_retries },
        })?;
        Ok(LockClient { locks: Arc::new(locks) })
    }

    /// Acquires the lock `lock_id` (str, int, bytes, or a (partition, sort) tuple), waiting up
    /// to `timeout` seconds (None: as long as it takes).
    ///
    /// A held lease is taken over only after its holder failed to renew it for a whole lease.
    /// Raises LockNotAcquiredError on timeout; KeyboardInterrupt (Ctrl-C) cancels the wait.
    #[pyo3(signature = (lock_id, timeout = None))]
    fn acquire(&self, py: Python<'_>, lock_id: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<Lock> {
        let id = crate::convert::lock_id(lock_id)?;
        let timeout = optional_seconds("timeout", timeout)?;
        let inner = block_on(py, self.locks.clone().acquire(id, timeout))?;
        Ok(Lock { inner })
    }

    /// Takes the lock if it is free, with one request; returns None if it is held.
    fn try_acquire(&self, py: Python<'_>, lock_id: &Bound<'_, PyAny>) -> PyResult<Option<Lock>> {
        let id = crate::convert::lock_id(lock_id)?;
        Ok(block_on(py, self.locks.clone().try_acquire(id))?.map(|inner| Lock { inner }))
    }

});

client_properties!(AsyncLockClient {
    #[new]
    #[pyo3(signature = (table, partition_key = "id".to_owned(), sort_key = None, lease_duration = 10.0, heartbeat_period = None, fail_closed = false, owner = None, trust_local_time = false, endpoint_url = None, region = None, call_timeout = None, poll_interval = None, max_retries = None))]
    #[pyo3(text_signature = "(table, partition_key='id', sort_key=None, lease_duration=10.0, heartbeat_period=None, fail_closed=False, owner=None, trust_local_time=False, endpoint_url=None, region=None, call_timeout=None, poll_interval=None, max_retries=None)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        table: String,
        partition_key: String,
        sort_key: Option<String>,
        lease_duration: f64,
        heartbeat_period: Option<f64>,
        fail_closed: bool,
        owner: Option<String>,
        trust_local_time: bool,
        endpoint_url: Option<String>,
        region: Option<String>,
        call_timeout: Option<f64>,
        poll_interval: Option<f64>,
        max_retries: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let locks = Locks::new(LockArgs {
            table,
            partition_key,
            sort_key,
            lease_duration,
            heartbeat_period,
            fail_closed,
            owner,
            trust_local_time,
            poll_interval,
            connection: ConnectionArgs { endpoint_url, region, call_timeout, max_retries },
        })?;
        Ok(AsyncLockClient { locks: Arc::new(locks) })
    }

    /// Awaitable: acquires the lock, waiting up to `timeout` seconds (None: as long as it
    /// takes). Raises LockNotAcquiredError on timeout; cancelling the task cancels the wait.
    #[pyo3(signature = (lock_id, timeout = None))]
    fn acquire<'py>(&self, py: Python<'py>, lock_id: &Bound<'py, PyAny>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let id = crate::convert::lock_id(lock_id)?;
        let timeout = optional_seconds("timeout", timeout)?;
        let locks = self.locks.clone();
        awaitable(py, async move { Ok(AsyncLock { inner: locks.acquire(id, timeout).await? }) })
    }

    /// Awaitable: takes the lock if it is free, with one request; None if it is held.
    fn try_acquire<'py>(&self, py: Python<'py>, lock_id: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let id = crate::convert::lock_id(lock_id)?;
        let locks = self.locks.clone();
        awaitable(py, async move { Ok(locks.try_acquire(id).await?.map(|inner| AsyncLock { inner })) })
    }

});

/// A held lock. Release it with `release()` (or use `LockClient.lock()` as a context manager).
///
/// While held, a background task renews its lease every heartbeat period. If the lease is lost
/// (a heartbeat failed for a whole lease, or another client took the lock over), `lost` turns
/// True, `wait_lost()` returns and `on_lost` callbacks run. Dropping it without releasing stops
/// the heartbeats and releases it in the background. After `os.fork()` the child's copy is not
/// the lock: it reports `lost`, and `release()` there raises LockLostError (the parent still
/// holds and renews it); acquire locks in the child afresh.
#[pyclass(module = "dynalease._native", frozen)]
pub struct Lock {
    inner: dynalease::lock::Lock,
}

/// Like `Lock`, for `AsyncLockClient`: `release`, `update_data` and `wait_lost` are awaitable.
#[pyclass(module = "dynalease._native", frozen)]
pub struct AsyncLock {
    inner: dynalease::lock::Lock,
}

/// The read-only view both lock classes share.
macro_rules! lock_properties {
    ($ty:ident { $($items:tt)* }) => {
        #[pymethods]
        impl $ty {
        $($items)*
        /// The lock id as passed to acquire (a tuple when the table has a sort key).
        #[getter]
        fn id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            lock_id_to_py(py, self.inner.id())
        }

        /// int, strictly increasing per lock id across all clients; None for fail-closed locks.
        /// Pass it to downstream systems so they can reject writes from a stale holder.
        #[getter]
        fn fencing_token(&self) -> Option<i64> {
            self.inner.fencing_token()
        }

        /// The lock data: as read when the lock was acquired, then as last written by this
        /// holder (update_data, release(data=...)). None if there is none.
        #[getter]
        fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            match self.inner.data() {
                Some(value) => from_value(py, &value),
                None => Ok(py.None().into_bound(py)),
            }
        }

        /// True once the lease was lost (ran out, or another client took the lock).
        #[getter]
        fn lost(&self) -> bool {
            self.inner.is_lost()
        }

        /// Why the lock was lost, or None while it is held or after a normal release.
        #[getter]
        fn lost_reason(&self) -> Option<String> {
            match self.inner.status() {
                LockStatus::Lost(reason) => Some(reason),
                _ => None,
            }
        }

        /// True after a successful release (also of a lock that had been lost).
        #[getter]
        fn released(&self) -> bool {
            self.inner.is_released()
        }

        /// Raises LockLostError if the lock is no longer held (lost or released); does nothing
        /// while it is held. Call it before work that must only happen under the lock.
        fn check(&self) -> PyResult<()> {
            let reason = match self.inner.status() {
                LockStatus::Held => return Ok(()),
                LockStatus::Lost(reason) => reason,
                LockStatus::Released => "it was released".to_owned(),
            };
            Err(to_py_err(dynalease::Error::LockLost { id: self.inner.id().to_string(), reason }))
        }

        /// Calls `callback(reason)` once if the lock is lost (at once if it already is); never
        /// after a normal release. The callback runs on a background thread: from asyncio code,
        /// hand over with `loop.call_soon_threadsafe`. Exceptions it raises are reported through
        /// sys.unraisablehook.
        fn on_lost(&self, callback: Py<PyAny>) {
            // A watch, not a clone of the lock: a pending callback must not keep the lock (and
            // its heartbeats) alive after the caller dropped it.
            let mut status = self.inner.watch();
            runtime().spawn(async move {
                let reason = match status.wait_for(|s| *s != LockStatus::Held).await {
                    Ok(current) => match &*current {
                        LockStatus::Lost(reason) => Some(reason.clone()),
                        _ => None,
                    },
                    Err(_) => None, // the lock was dropped
                };
                if let Some(reason) = reason {
                    call_in_thread(callback, reason);
                }
            });
        }

        fn __repr__<'py>(&self, py: Python<'py>) -> PyResult<String> {
            let status = match self.inner.status() {
                LockStatus::Held => "held",
                LockStatus::Lost(_) => "lost",
                LockStatus::Released => "released",
            };
            let token = self.inner.fencing_token().map(|t| t.to_string()).unwrap_or_else(|| "None".into());
            Ok(format!("{}(id={}, fencing_token={token}, status={status})", Self::NAME, self.id(py)?.repr()?))
        }
        }
    };
}

impl Lock {
    const NAME: &'static str = "Lock";
}

impl AsyncLock {
    const NAME: &'static str = "AsyncLock";
}

/// `Some(reason)` if the lock was lost within `timeout`, `None` if released or timed out.
async fn lost_within(lock: dynalease::lock::Lock, timeout: Option<Duration>) -> PyResult<bool> {
    let lost = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, lock.wait_lost()).await.ok().flatten(),
        None => lock.wait_lost().await,
    };
    Ok(lost.is_some())
}

fn optional_value(data: Option<&Bound<'_, PyAny>>) -> PyResult<Option<dynalease::Value>> {
    data.filter(|d| !d.is_none()).map(to_value).transpose()
}

lock_properties!(Lock {
    /// Releases the lock; `data`, if given (not None), is written into the lock item in the same
    /// request. Releasing twice is a no-op. Raises LockLostError if another client had taken
    /// the lock (whatever you did under it may have overlapped with them).
    #[pyo3(signature = (data = None))]
    fn release(&self, py: Python<'_>, data: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let data = optional_value(data)?;
        let lock = self.inner.clone();
        block_on(py, async move { lock.release_with_data(data).await.py() })
    }

    /// Replaces the lock data while the lock is held (raises LockLostError otherwise).
    fn update_data(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = to_value(data)?;
        let lock = self.inner.clone();
        block_on(py, async move { lock.update_data(data).await.py() })
    }

    /// Blocks until the lock is lost (returns True), released or `timeout` seconds passed
    /// (returns False). Releases the GIL; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait_lost(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let timeout = optional_seconds("timeout", timeout)?;
        block_on(py, lost_within(self.inner.clone(), timeout))
    }

});

lock_properties!(AsyncLock {
    /// Awaitable: releases the lock, writing `data` (if not None) into it. Raises LockLostError
    /// if another client had taken the lock.
    #[pyo3(signature = (data = None))]
    fn release<'py>(&self, py: Python<'py>, data: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
        let data = optional_value(data)?;
        let lock = self.inner.clone();
        awaitable(py, async move { lock.release_with_data(data).await.py() })
    }

    /// Awaitable: replaces the lock data while the lock is held.
    fn update_data<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let data = to_value(data)?;
        let lock = self.inner.clone();
        awaitable(py, async move { lock.update_data(data).await.py() })
    }

    /// Awaitable: True once the lock is lost; False if it is released or `timeout` seconds pass.
    #[pyo3(signature = (timeout = None))]
    fn wait_lost<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        let timeout = optional_seconds("timeout", timeout)?;
        awaitable(py, lost_within(self.inner.clone(), timeout))
    }

});

/// The core lock behind a `Lock` or `AsyncLock`, for fenced KV writes (`lock=`).
pub fn core_lock(lock: &Bound<'_, PyAny>) -> PyResult<dynalease::lock::Lock> {
    if let Ok(lock) = lock.cast::<Lock>() {
        return Ok(lock.get().inner.clone());
    }
    if let Ok(lock) = lock.cast::<AsyncLock>() {
        return Ok(lock.get().inner.clone());
    }
    Err(PyTypeError::new_err(format!(
        "lock must be a dynalease Lock or AsyncLock, not {}",
        lock.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}
