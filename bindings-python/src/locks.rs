//! `LockClient` / `AsyncLockClient` and the locks they hand out (`Lock` / `AsyncLock`).
//!
//! Each sync/async pair extends one base class (`_LockClientBase`, `_LockBase`) that holds the
//! state and the read-only view; `blocking_and_awaitable!` writes each operation once for both.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{Handle, LockClient as CoreLockClient, LockConfig, LockStatus};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pyclass_init::PyClassInitializer;
use pyo3::PyClass;

use crate::connection::{Connection, ConnectionArgs};
use crate::convert::{from_value, lock_id_to_py, optional_seconds, seconds, to_value};
use crate::errors::{to_py_err, CoreResultExt};
use crate::runtime::{call_in_thread, runtime};

/// What both lock clients hold: a validated configuration and where to send requests.
#[derive(Debug)]
pub(crate) struct Locks {
    pub(crate) config: LockConfig,
    connection: Connection,
}

impl Locks {
    /// A core client on this process's transport (cheap: the transport is cached).
    pub(crate) async fn client(&self) -> PyResult<CoreLockClient> {
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
            "    poll_interval: seconds between reads of a held lock for the first 2 s of a wait,\n",
            "        and the shortest pause ever (default 0.05): a release by another process is\n",
            "        noticed within about this long while a wait is young.\n",
            "    max_retries: how often a failed call is repeated when that is safe (throttling,\n",
            "        failed connects, reads; default 7; 0 sends each request once; at most 100).\n",
            "    max_poll_interval: the longest pause, in seconds, between reads of a long wait\n",
            "        (default 1.5): after 2 s the pauses grow with the wait up to this, so a long wait\n",
            "        reads about once every 1.3 s. The waiters of one lock id in a process share their\n",
            "        reads (when their clients have the same endpoint options).\n",
            "\n",
            "Nothing is sent until the first acquire; AWS configuration errors surface there.\n",
            "Raises ConfigError for invalid options (e.g. negative durations, reserved key names)."
        )
    };
}

/// What both lock clients are: the configuration, the constructor and the getters.
#[pyclass(module = "dynalease._native", name = "_LockClientBase", subclass, frozen)]
pub struct LockClientBase {
    pub(crate) locks: Arc<Locks>,
}

#[pyclass(module = "dynalease._native", extends = LockClientBase, subclass, frozen)]
#[doc = client_doc!("Acquires lease locks (blocking calls; they release the GIL and honour Ctrl-C).")]
pub struct LockClient;

#[pyclass(module = "dynalease._native", extends = LockClientBase, subclass, frozen)]
#[doc = client_doc!("Acquires lease locks with asyncio: every call returns an awaitable.")]
pub struct AsyncLockClient;

/// The lock class a client hands out.
pub trait HandsOut {
    type Lock: PyClass<BaseType = LockBase> + Default;
}

impl HandsOut for LockClient {
    type Lock = Lock;
}

impl HandsOut for AsyncLockClient {
    type Lock = AsyncLock;
}

/// A core lock on its way to Python as the lock class of client `C`: made into a Python object
/// only once the GIL is held, which a runtime thread finishing an acquire does not.
pub struct Held<C> {
    inner: dynalease::lock::Lock,
    client: PhantomData<fn() -> C>,
}

impl<C> Held<C> {
    pub(crate) fn new(inner: dynalease::lock::Lock) -> Held<C> {
        Held { inner, client: PhantomData }
    }
}

impl<'py, C: HandsOut> IntoPyObject<'py> for Held<C> {
    type Target = C::Lock;
    type Output = Bound<'py, C::Lock>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, C::Lock>> {
        Bound::new(py, PyClassInitializer::from(LockBase { inner: self.inner }).add_subclass(C::Lock::default()))
    }
}

blocking_and_awaitable! {
    class LockClientBase {
        #[pyo3(signature = (table, partition_key = "id".to_owned(), sort_key = None, lease_duration = 10.0, heartbeat_period = None, fail_closed = false, owner = None, trust_local_time = false, endpoint_url = None, region = None, call_timeout = None, poll_interval = None, max_retries = None, max_poll_interval = None))]
        #[pyo3(text_signature = "(table, partition_key='id', sort_key=None, lease_duration=10.0, heartbeat_period=None, fail_closed=False, owner=None, trust_local_time=False, endpoint_url=None, region=None, call_timeout=None, poll_interval=None, max_retries=None, max_poll_interval=None)")]
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
            max_poll_interval: Option<f64>,
        ) -> PyResult<Self> {
            // The one place options become a configuration.
            let defaults = LockConfig::new(table);
            let config = LockConfig {
                partition_key,
                sort_key,
                lease_duration: seconds("lease_duration", lease_duration)?,
                // None: a third of the lease; 0: no heartbeats (the core's rule).
                heartbeat_period: optional_seconds("heartbeat_period", heartbeat_period)?,
                fail_closed,
                trust_local_time,
                owner: owner.unwrap_or(defaults.owner),
                poll_interval: optional_seconds("poll_interval", poll_interval)?.unwrap_or(defaults.poll_interval),
                max_poll_interval: optional_seconds("max_poll_interval", max_poll_interval)?.unwrap_or(defaults.max_poll_interval),
                ..defaults
            };
            config.validate().py()?;
            let connection = Connection::new(ConnectionArgs { endpoint_url, region, call_timeout, max_retries })?;
            Ok(LockClientBase { locks: Arc::new(Locks { config, connection }) })
        }

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

        /// Seconds between reads for the first 2 s of a wait for a held lock, and the shortest
        /// pause ever.
        #[getter]
        fn poll_interval(&self) -> f64 {
            self.locks.config.poll_interval.as_secs_f64()
        }

        /// The longest pause, in seconds, between reads of a long wait.
        #[getter]
        fn max_poll_interval(&self) -> f64 {
            self.locks.config.max_poll_interval.as_secs_f64()
        }

        /// Repeats of a failed call that is safe to repeat.
        #[getter]
        fn max_retries(&self) -> u32 {
            self.locks.connection.max_retries()
        }

        fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
            let py = slf.py();
            let text = |s: Option<&str>| -> PyResult<String> {
                Ok(match s {
                    Some(s) => pyo3::types::PyString::new(py, s).repr()?.to_string(),
                    None => "None".to_owned(),
                })
            };
            let locks = &slf.get().locks;
            let config = &locks.config;
            Ok(format!(
                "{}(table={}, partition_key={}, sort_key={}, lease_duration={}, fail_closed={})",
                Self::class_name(slf),
                text(Some(&config.table))?,
                text(Some(&config.partition_key))?,
                text(config.sort_key.as_deref())?,
                locks.lease_duration().map(|d| format!("{d:?}")).unwrap_or_else(|| "None".into()),
                if locks.fail_closed() { "True" } else { "False" },
            ))
        }
    }

    LockClient, AsyncLockClient;

    /// Acquires the lock `lock_id` (str, int, bytes, or a (partition, sort) tuple), waiting up
    /// to `timeout` seconds (None: as long as it takes).
    ///
    /// A held lease is taken over only after its holder failed to renew it for a whole lease.
    /// Raises LockNotAcquiredError on timeout; Ctrl-C interrupts the blocking form.
    #[pyo3(signature = (lock_id, timeout = None))]
    fn acquire(client, lock_id: &Bound<'_, PyAny>, timeout: Option<f64>) -> Held<Self> {
        let id = crate::convert::lock_id(lock_id)?;
        let timeout = optional_seconds("timeout", timeout)?;
        let locks = client.locks.clone();
        async move { Ok(Held::new(locks.acquire(id, timeout).await?)) }
    }

    /// Takes the lock if it is free, with one request; returns None if it is held.
    fn try_acquire(client, lock_id: &Bound<'_, PyAny>) -> Option<Held<Self>> {
        let id = crate::convert::lock_id(lock_id)?;
        let locks = client.locks.clone();
        async move { Ok(locks.try_acquire(id).await?.map(Held::new)) }
    }

    /// Takes up a lock that another process (or this one) handed off with `detach()`, so work
    /// can move between processes (Step Functions states, queue consumers) without a gap in
    /// which another worker could take the lock. `handle` is the text `detach()` returned.
    ///
    /// One consistent read checks that the lock is still held under that handle; the lock
    /// returned heartbeats here from now on (the first heartbeat at once), with this client's
    /// lease. Raises LockLostError if it is not held under the handle any more (released,
    /// taken over, or renewed under a newer handle), and ConfigError for text that is not a
    /// handle, or a handle for another table or the other mode (fail-open/fail-closed).
    fn resume(client, handle: String) -> Held<Self> {
        let handle = Handle::parse(&handle).py()?;
        let locks = client.locks.clone();
        async move { Ok(Held::new(locks.client().await?.resume(&handle).await.py()?)) }
    }

    /// Acquires `lock_id` for work with a fixed time budget (an AWS Lambda invocation: see
    /// `lambda_lock()`): the lock ends `margin` seconds before `remaining` seconds from now are
    /// up. There it is marked lost (the lost signal fires, fenced writes are refused) and
    /// released, so work that overruns learns it is no longer protected, and the next worker
    /// finds the lock free instead of waiting out the lease of an invocation that timed out.
    ///
    /// Waits up to `timeout` seconds (0.0, the default: one attempt; None: until the lock's end
    /// would come). Raises LockNotAcquiredError if it stays held, or when `remaining` is not
    /// more than `margin` (there would be no time to work).
    #[pyo3(signature = (lock_id, remaining, timeout = Some(0.0), margin = 1.0))]
    #[pyo3(text_signature = "($self, lock_id, remaining, timeout=0.0, margin=1.0)")]
    fn acquire_within(client, lock_id: &Bound<'_, PyAny>, remaining: f64, timeout: Option<f64>, margin: f64) -> Held<Self> {
        let id = crate::convert::lock_id(lock_id)?;
        let remaining = seconds("remaining", remaining)?;
        let timeout = optional_seconds("timeout", timeout)?;
        let margin = seconds("margin", margin)?;
        let locks = client.locks.clone();
        async move { Ok(Held::new(locks.client().await?.acquire_within(id, timeout, remaining, margin).await.py()?)) }
    }
}

/// What both lock classes are: the core lock and the read-only view of it.
#[pyclass(module = "dynalease._native", name = "_LockBase", subclass, frozen)]
pub struct LockBase {
    inner: dynalease::lock::Lock,
}

/// A held lock. Release it with `release()` (or use `LockClient.lock()` as a context manager).
///
/// While held, a background task renews its lease every heartbeat period. If the lease is lost
/// (a heartbeat failed for a whole lease, or another client took the lock over), `lost` turns
/// True, `wait_lost()` returns and `on_lost` callbacks run. Dropping it without releasing stops
/// the heartbeats and releases it in the background. After `os.fork()` the child's copy is not
/// the lock: it reports `lost`, and `release()` there raises LockLostError (the parent still
/// holds and renews it); acquire locks in the child afresh.
#[pyclass(module = "dynalease._native", extends = LockBase, frozen)]
#[derive(Default)]
pub struct Lock;

/// Like `Lock`, for `AsyncLockClient`: `release`, `update_data` and `wait_lost` are awaitable.
#[pyclass(module = "dynalease._native", extends = LockBase, frozen)]
#[derive(Default)]
pub struct AsyncLock;

/// True if the lock was lost within `timeout`, false if it was released or the time ran out.
async fn lost_within(lock: dynalease::lock::Lock, timeout: Option<Duration>) -> PyResult<bool> {
    let lost = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, lock.wait_lost()).await.ok().flatten(),
        None => lock.wait_lost().await,
    };
    Ok(lost.is_some())
}

pub(crate) fn optional_value(data: Option<&Bound<'_, PyAny>>) -> PyResult<Option<dynalease::Value>> {
    data.filter(|d| !d.is_none()).map(to_value).transpose()
}

blocking_and_awaitable! {
    class LockBase {
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

        /// "held", "lost", "released" or "detached" (handed off with `detach()`: this object no
        /// longer acts for the lock, and dropping it releases nothing).
        #[getter]
        fn status(&self) -> &'static str {
            self.inner.status().name()
        }

        /// The text another process passes to `resume()` to take this lock up. It changes with
        /// every heartbeat (each writes a new guid, and a handle names one guid), so pass on the
        /// one `detach()` returns: detaching stops the heartbeats and fixes it.
        #[getter]
        fn handle(&self) -> String {
            self.inner.handle().to_string()
        }

        /// Raises LockLostError if the lock is no longer held (lost or released); does nothing
        /// while it is held. Call it before work that must only happen under the lock.
        fn check(&self) -> PyResult<()> {
            self.inner.check().map_err(to_py_err)
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

        fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
            let lock = &slf.get().inner;
            let status = lock.status().name();
            let token = lock.fencing_token().map(|t| t.to_string()).unwrap_or_else(|| "None".into());
            let id = lock_id_to_py(slf.py(), lock.id())?;
            Ok(format!("{}(id={}, fencing_token={token}, status={status})", Self::class_name(slf), id.repr()?))
        }
    }

    Lock, AsyncLock;

    /// Releases the lock; `data`, if given (not None), is written into the lock item in the same
    /// request. Releasing twice is a no-op. Raises LockLostError if another client had taken
    /// the lock (whatever you did under it may have overlapped with them).
    #[pyo3(signature = (data = None))]
    fn release(held, data: Option<&Bound<'_, PyAny>>) -> () {
        let data = optional_value(data)?;
        let lock = held.inner.clone();
        async move { lock.release_with_data(data).await.py() }
    }

    /// Replaces the lock data while the lock is held (raises LockLostError otherwise).
    fn update_data(held, data: &Bound<'_, PyAny>) -> () {
        let data = to_value(data)?;
        let lock = held.inner.clone();
        async move { lock.update_data(data).await.py() }
    }

    /// Waits until the lock is lost (True), released or `timeout` seconds passed (False). The
    /// blocking form releases the GIL, and Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait_lost(held, timeout: Option<f64>) -> bool {
        let timeout = optional_seconds("timeout", timeout)?;
        lost_within(held.inner.clone(), timeout)
    }

    /// Hands the lock on, still held, and returns its handle (a short URL-safe str) for
    /// `resume()` in another process, which must do so (and heartbeat) before the lease runs
    /// out. This process stops heartbeating it; this object no longer acts for it (`status` is
    /// "detached": release, update_data and fenced writes raise LockLostError), and dropping it
    /// releases nothing. Fail-closed locks hand off too; they have no lease to run out.
    ///
    /// A write of the lock whose answer was lost could still land and change what the handle
    /// names, so detach settles it first (a fail-open lock renews once). Raises LockLostError
    /// if the lock is no longer held.
    fn detach(held) -> String {
        let lock = held.inner.clone();
        async move { Ok(lock.detach().await.py()?.to_string()) }
    }

    /// Renews the lease now (one heartbeat): for a lock resumed by a client without background
    /// heartbeats (heartbeat_period=0), or before a long step when clocks may disagree. The
    /// heartbeat writes a new guid, so `handle` changes. Raises LockLostError if the lock is no
    /// longer held, ConfigError for a fail-closed lock (it has no lease).
    fn renew(held) -> () {
        let lock = held.inner.clone();
        async move { lock.renew().await.py() }
    }
}

/// The lock client behind a `LockClient` or `AsyncLockClient`, for what is built on one
/// (elections, semaphores).
pub fn client_locks(client: &Bound<'_, PyAny>) -> PyResult<Arc<Locks>> {
    if let Ok(client) = client.cast::<LockClientBase>() {
        return Ok(client.get().locks.clone());
    }
    Err(PyTypeError::new_err(format!(
        "client must be a dynalease LockClient or AsyncLockClient, not {}",
        client.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// The core lock behind a `Lock` or `AsyncLock`, for fenced KV writes (`lock=`).
pub fn core_lock(lock: &Bound<'_, PyAny>) -> PyResult<dynalease::lock::Lock> {
    if let Ok(lock) = lock.cast::<LockBase>() {
        return Ok(lock.get().inner.clone());
    }
    Err(PyTypeError::new_err(format!(
        "lock must be a dynalease Lock or AsyncLock, not {}",
        lock.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}
