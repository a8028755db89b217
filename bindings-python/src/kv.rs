//! `KVStore` / `AsyncKVStore` and `KVPair`: the core's compare-and-swap store, translated.

use std::sync::Arc;

use dynalease::kv::{KvConfig, KvPair, KvStore as CoreKvStore, WriteOptions};
use dynalease::stats::StatsSnapshot;
use dynalease::Value;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

use crate::connection::{Connection, ConnectionArgs, PerProcess};
use crate::convert::{from_value, optional_seconds, to_value};
use crate::errors::{config_error, CoreResultExt};
use crate::locks::core_lock;

/// A key, its value and the version a compare-and-swap checks. Immutable; pass it as
/// `previous=` to atomic_put / atomic_delete.
#[pyclass(module = "dynalease", frozen)]
pub struct KVPair {
    pair: KvPair,
    /// The Python form of `pair.value`, made on first access and then kept, so that
    /// `pair.value is pair.value`.
    value: PyOnceLock<Py<PyAny>>,
}

impl KVPair {
    fn from_core(pair: KvPair) -> KVPair {
        KVPair { pair, value: PyOnceLock::new() }
    }
}

#[pymethods]
impl KVPair {
    /// Builds a pair by hand, e.g. from a version stored elsewhere, to use as `previous`.
    #[new]
    #[pyo3(signature = (key, value, version, expires = None))]
    fn new(py: Python<'_>, key: String, value: Bound<'_, PyAny>, version: i64, expires: Option<i64>) -> PyResult<Self> {
        let pair = KvPair { key, value: to_value(&value)?, version, expires };
        let cached = PyOnceLock::new();
        let _ = cached.set(py, value.unbind());
        Ok(KVPair { pair, value: cached })
    }

    /// The key.
    #[getter]
    fn key(&self) -> &str {
        &self.pair.key
    }

    /// The value (dict, list, str, int, float, bool, None or bytes; tuples come back as lists).
    #[getter]
    fn value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.value.get_or_try_init(py, || Ok::<_, PyErr>(from_value(py, &self.pair.value)?.unbind())).map(|v| v.clone_ref(py))
    }

    /// Changes on every write of the key (random, not a counter).
    #[getter]
    fn version(&self) -> i64 {
        self.pair.version
    }

    /// When the key expires (epoch seconds), or None.
    #[getter]
    fn expires(&self) -> Option<i64> {
        self.pair.expires
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "KVPair(key={}, value={}, version={})",
            pyo3::types::PyString::new(py, &self.pair.key).repr()?,
            self.value(py)?.bind(py).repr()?,
            self.pair.version
        ))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<KVPair>() {
            Ok(other) => {
                let other = other.get();
                self.pair == other.pair
            }
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        // Key and version identify a write; the value may be unhashable.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&self.pair.key, self.pair.version).hash(&mut hasher);
        hasher.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let args = (this.pair.key.clone(), this.value(py)?, this.pair.version, this.pair.expires).into_pyobject(py)?;
        Ok((slf.get_type().into_any(), args))
    }
}

#[derive(Debug)]
struct Store {
    config: KvConfig,
    connection: Connection,
    /// The core store of this process, made at the first call: every call of this store counts
    /// in its `stats()`.
    core: PerProcess<CoreKvStore>,
}

impl Store {
    fn new(table: String, partition: String, partition_key: String, sort_key: String, connection: ConnectionArgs<'_, '_>) -> PyResult<Store> {
        let config = KvConfig { partition_key, sort_key, ..KvConfig::new(table, partition) };
        config.validate().py()?;
        Ok(Store { config, connection: Connection::new(connection)?, core: PerProcess::default() })
    }

    async fn store(&self) -> PyResult<CoreKvStore> {
        if let Some(store) = self.core.get() {
            return Ok(store);
        }
        let transport = self.connection.transport().await.py()?;
        Ok(self.core.keep(CoreKvStore::new(self.config.clone(), transport).py()?))
    }

    /// What this store did in this process so far (all zero before its first call).
    fn stats(&self) -> StatsSnapshot {
        self.core.get().map(|store| store.stats()).unwrap_or_else(crate::stats::nothing)
    }
}

/// The arguments of a write, converted while the GIL is held.
struct Write {
    key: String,
    value: Value,
    options: WriteOptions,
}

fn options(ttl: Option<f64>, lock: Option<&Bound<'_, PyAny>>) -> PyResult<WriteOptions> {
    let ttl = optional_seconds("ttl", ttl)?;
    let fence = lock.filter(|l| !l.is_none()).map(core_lock).transpose()?;
    Ok(WriteOptions { ttl, fence })
}

fn previous_pair(previous: Option<&Bound<'_, PyAny>>) -> PyResult<Option<KvPair>> {
    match previous.filter(|p| !p.is_none()) {
        None => Ok(None),
        Some(previous) => match previous.cast::<KVPair>() {
            Ok(pair) => Ok(Some(pair.get().pair.clone())),
            Err(_) => Err(PyTypeError::new_err(format!(
                "previous must be a KVPair (from get/put/atomic_put) or None, not {}",
                previous.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))),
        },
    }
}

/// Every operation once, as the future both store classes wait on in their own way.
impl Store {
    async fn put(self: Arc<Self>, write: Write) -> PyResult<KVPair> {
        let store = self.store().await?;
        store.put(&write.key, &write.value, &write.options).await.py().map(KVPair::from_core)
    }

    async fn atomic_put(self: Arc<Self>, write: Write, previous: Option<KvPair>) -> PyResult<KVPair> {
        let store = self.store().await?;
        store.atomic_put(&write.key, &write.value, previous.as_ref(), &write.options).await.py().map(KVPair::from_core)
    }

    async fn get(self: Arc<Self>, key: String, consistent: bool) -> PyResult<Option<KVPair>> {
        let store = self.store().await?;
        Ok(store.get_with(&key, consistent).await.py()?.map(KVPair::from_core))
    }

    async fn list(self: Arc<Self>, prefix: String, consistent: bool) -> PyResult<Vec<KVPair>> {
        let store = self.store().await?;
        Ok(store.list_with(&prefix, consistent).await.py()?.into_iter().map(KVPair::from_core).collect())
    }

    async fn exists(self: Arc<Self>, key: String) -> PyResult<bool> {
        self.store().await?.exists(&key).await.py()
    }

    async fn delete(self: Arc<Self>, key: String, options: WriteOptions) -> PyResult<bool> {
        self.store().await?.delete(&key, &options).await.py()
    }

    async fn atomic_delete(self: Arc<Self>, key: String, previous: KvPair, options: WriteOptions) -> PyResult<()> {
        self.store().await?.atomic_delete(&key, &previous, &options).await.py()
    }
}

macro_rules! store_doc {
    ($summary:literal) => {
        concat!(
            $summary,
            "\n\n",
            "One store is one partition (`partition`, its namespace) of a table whose keys are\n",
            "`partition_key` (default \"pk\") and `sort_key` (default \"sk\"); create it with\n",
            "create_table(table, partition_key=\"pk\", sort_key=\"sk\"). Values: dict (str keys),\n",
            "list, tuple, str, int, float, bool, None, bytes; anything else raises ConfigError.\n",
            "Numbers keep their exact value; DynamoDB normalizes them, so a float with an integral\n",
            "value (2.0) may read back as an int (2), which compares equal.\n",
            "endpoint_url: as for LockClient (\"memory://NAME\" for an in-process table).\n",
            "call_timeout (seconds per DynamoDB call, default 5.0) and max_retries (repeats of a\n",
            "failed call when that is safe, default 7): as for LockClient. A write that got no\n",
            "answer and could not be resolved raises OutcomeUnknownError: it may have applied.\n",
            "Reads are strongly consistent unless consistent=False. Writes take `lock=`: they then\n",
            "apply only while that lock is held (checked in the same transaction), else\n",
            "LockLostError."
        )
    };
}

/// What both stores are: the configuration, the constructor and the getters.
#[pyclass(module = "dynalease._native", name = "_KVStoreBase", subclass, frozen)]
pub struct KVStoreBase {
    store: Arc<Store>,
}

#[pyclass(module = "dynalease._native", extends = KVStoreBase, frozen)]
#[doc = store_doc!("A key/value store with compare-and-swap (blocking calls; they release the GIL).")]
pub struct KVStore;

#[pyclass(module = "dynalease._native", extends = KVStoreBase, frozen)]
#[doc = store_doc!("A key/value store with compare-and-swap for asyncio: every call returns an awaitable.")]
pub struct AsyncKVStore;

fn required_previous(previous: &Bound<'_, PyAny>) -> PyResult<KvPair> {
    previous_pair(Some(previous))?.ok_or_else(|| config_error("atomic_delete needs previous: the KVPair you read"))
}

blocking_and_awaitable! {
    class KVStoreBase {
        #[pyo3(signature = (table, partition, partition_key = "pk".to_owned(), sort_key = "sk".to_owned(), endpoint_url = None, region = None, call_timeout = None, max_retries = None))]
        #[pyo3(text_signature = "(table, partition, partition_key='pk', sort_key='sk', endpoint_url=None, region=None, call_timeout=None, max_retries=None)")]
        fn new(
            table: String,
            partition: String,
            partition_key: String,
            sort_key: String,
            endpoint_url: Option<String>,
            region: Option<String>,
            call_timeout: Option<f64>,
            max_retries: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<Self> {
            let connection = ConnectionArgs { endpoint_url, region, call_timeout, max_retries };
            Ok(KVStoreBase { store: Arc::new(Store::new(table, partition, partition_key, sort_key, connection)?) })
        }

        /// Name of the table.
        #[getter]
        fn table(&self) -> &str {
            &self.store.config.table
        }

        /// The partition key value all keys of this store live under.
        #[getter]
        fn partition(&self) -> &str {
            &self.store.config.partition
        }

        /// Seconds one DynamoDB call may take.
        #[getter]
        fn call_timeout(&self) -> f64 {
            self.store.connection.call_timeout().as_secs_f64()
        }

        /// Repeats of a failed call that is safe to repeat.
        #[getter]
        fn max_retries(&self) -> u32 {
            self.store.connection.max_retries()
        }

        /// What this store did so far in this process: a dict (JSON-serialisable) of counts
        /// that only grow, by the core's names (`kv_reads`, `kv_writes`, `kv_deletes`,
        /// `kv_lists`, `cas_conflicts`, `requests`, `retries`, `throttles`,
        /// `unknown_outcomes`, ...; the lock counts stay 0 here), plus `read_units` and
        /// `write_units` (floats: capacity units DynamoDB reported; none on memory://) and
        /// `acquire_wait` (as LockClient.stats()). Reads counters in memory, sends nothing. A
        /// forked child counts from zero.
        fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            crate::stats::to_dict(py, &self.store.stats())
        }

        fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
            let text = |s: &str| pyo3::types::PyString::new(slf.py(), s).repr().map(|r| r.to_string());
            let config = &slf.get().store.config;
            Ok(format!("{}(table={}, partition={})", Self::class_name(slf), text(&config.table)?, text(&config.partition)?))
        }
    }

    KVStore, AsyncKVStore;

    /// Writes `value` at `key` unconditionally and returns the new pair. `ttl`: seconds until
    /// the key expires (reads hide it from then on). `lock`: write only while it is held.
    #[pyo3(signature = (key, value, ttl = None, lock = None))]
    fn put(kv, key: String, value: &Bound<'_, PyAny>, ttl: Option<f64>, lock: Option<&Bound<'_, PyAny>>) -> KVPair {
        let write = Write { key, value: to_value(value)?, options: options(ttl, lock)? };
        kv.store.clone().put(write)
    }

    /// The pair at `key`, or None (also when it has expired).
    #[pyo3(signature = (key, consistent = true))]
    fn get(kv, key: String, consistent: bool) -> Option<KVPair> {
        kv.store.clone().get(key, consistent)
    }

    /// Every live pair whose key starts with `prefix` ("" lists the whole store), in key order.
    #[pyo3(signature = (prefix = String::new(), consistent = true))]
    #[pyo3(text_signature = "($self, prefix='', consistent=True)")]
    fn list(kv, prefix: String, consistent: bool) -> Vec<KVPair> {
        kv.store.clone().list(prefix, consistent)
    }

    /// True if `key` exists and has not expired.
    fn exists(kv, key: String) -> bool {
        kv.store.clone().exists(key)
    }

    /// Deletes `key`; returns whether it existed. `lock`: delete only while it is held.
    #[pyo3(signature = (key, lock = None))]
    fn delete(kv, key: String, lock: Option<&Bound<'_, PyAny>>) -> bool {
        let options = options(None, lock)?;
        kv.store.clone().delete(key, options)
    }

    /// Compare-and-swap. previous=None creates the key (KeyExistsError if it is present);
    /// previous=<KVPair> replaces it only if it is still at that version (KeyModifiedError if
    /// it changed, KeyNotFoundError if it is gone). Returns the new pair.
    #[pyo3(signature = (key, value, previous = None, ttl = None, lock = None))]
    fn atomic_put(
        kv,
        key: String,
        value: &Bound<'_, PyAny>,
        previous: Option<&Bound<'_, PyAny>>,
        ttl: Option<f64>,
        lock: Option<&Bound<'_, PyAny>>,
    ) -> KVPair {
        let write = Write { key, value: to_value(value)?, options: options(ttl, lock)? };
        let previous = previous_pair(previous)?;
        kv.store.clone().atomic_put(write, previous)
    }

    /// Deletes `key` only if it is still at `previous`'s version (KeyModifiedError /
    /// KeyNotFoundError otherwise).
    #[pyo3(signature = (key, previous, lock = None))]
    fn atomic_delete(kv, key: String, previous: &Bound<'_, PyAny>, lock: Option<&Bound<'_, PyAny>>) -> () {
        let previous = required_previous(previous)?;
        let options = options(None, lock)?;
        kv.store.clone().atomic_delete(key, previous, options)
    }
}

impl KVStoreBase {
    /// The store's counters now, for `dynalease.emf`.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        self.store.stats()
    }
}
