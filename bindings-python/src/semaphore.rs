//! `Semaphore` / `AsyncSemaphore` (at most N holders at once, each permit a lease lock) and
//! `PermitHolder` (who holds a permit).

use std::sync::{Arc, Mutex, PoisonError};

use dynalease::lock::{LockId, PermitHolder as CorePermitHolder, Semaphore as CoreSemaphore};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyInt, PyTuple};

use crate::convert::{from_value, lock_id_named, lock_id_to_py, optional_seconds};
use crate::errors::CoreResultExt;
use crate::locks::{client_locks, AsyncLock, HandsOut, Held, Lock, Locks};

/// A semaphore of one lock client's table.
#[derive(Debug)]
struct Site {
    locks: Arc<Locks>,
    id: LockId,
    permits: u32,
    /// The core semaphore of this process, kept so that it checks the table's permit count
    /// once (one read), not on every acquire. A forked child makes its own.
    made: Mutex<Option<(u32, CoreSemaphore)>>,
}

impl Site {
    async fn semaphore(&self) -> PyResult<CoreSemaphore> {
        let pid = std::process::id();
        if let Some((owner, made)) = &*self.made.lock().unwrap_or_else(PoisonError::into_inner) {
            if *owner == pid {
                return Ok(made.clone());
            }
        }
        let made = self.locks.client().await?.semaphore(self.id.clone(), self.permits).py()?;
        *self.made.lock().unwrap_or_else(PoisonError::into_inner) = Some((pid, made.clone()));
        Ok(made)
    }
}

/// What both semaphore classes are: name, permits and the read-only view.
#[pyclass(module = "dynalease._native", name = "_SemaphoreBase", subclass, frozen)]
pub struct SemaphoreBase {
    site: Arc<Site>,
}

/// A counting semaphore (from `LockClient.semaphore(name, permits=N)`): at most N holders at
/// once across all processes, for work that may run N-wide but no wider (exports that share a
/// rate limit, a pool of licences). Each permit is an ordinary held `Lock` with a fencing
/// token, heartbeats and a lost signal, so a crashed holder's permit frees itself after its
/// lease and none leak.
///
/// Every client of one semaphore must pass the same `permits`: the first to use it records
/// the number in the table, and a client passing another number gets ConfigError at its first
/// acquire.
#[pyclass(module = "dynalease._native", extends = SemaphoreBase, subclass, frozen)]
pub struct Semaphore;

/// Like `Semaphore`, for `AsyncLockClient`: `acquire`, `try_acquire` and `holders` are
/// awaitable.
#[pyclass(module = "dynalease._native", extends = SemaphoreBase, subclass, frozen)]
pub struct AsyncSemaphore;

impl HandsOut for Semaphore {
    type Lock = Lock;
}

impl HandsOut for AsyncSemaphore {
    type Lock = AsyncLock;
}

/// `permits` as the core takes it: an int (not a bool or a float), in the core's range.
fn permit_count(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        return Err(PyTypeError::new_err(format!("permits must be an int, not {name}")));
    }
    dynalease::lock::permit_count(value.str()?, value.extract::<i128>().ok()).py()
}

blocking_and_awaitable! {
    class SemaphoreBase {
        #[pyo3(signature = (client, name, permits))]
        #[pyo3(text_signature = "(client, name, permits)")]
        fn new(client: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>, permits: &Bound<'_, PyAny>) -> PyResult<Self> {
            let locks = client_locks(client)?;
            let id = lock_id_named(name, "semaphore name")?;
            let permits = permit_count(permits)?;
            // The core's checks (permits in range, a string name that fits its permits' ids,
            // a fail-closed client) raise here, not at the first acquire.
            let (id, _) = locks.config.semaphore_ids(id, permits).py()?;
            Ok(SemaphoreBase { site: Arc::new(Site { locks, id, permits, made: Mutex::new(None) }) })
        }

        /// The semaphore's name, as passed to `semaphore()`.
        #[getter]
        fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            lock_id_to_py(py, &self.site.id)
        }

        /// How many holders it admits at once.
        #[getter]
        fn permits(&self) -> u32 {
            self.site.permits
        }

        fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
            let site = &slf.get().site;
            let name = lock_id_to_py(slf.py(), &site.id)?;
            Ok(format!("{}(name={}, permits={})", Self::class_name(slf), name.repr()?, site.permits))
        }
    }

    Semaphore, AsyncSemaphore;

    /// Takes a permit, waiting up to `timeout` seconds (None: as long as it takes), and returns
    /// it: a held lock (fencing token, heartbeats, lost signal) that `release()` gives back.
    /// A waiter reads all permits in one request per poll, and a permit released in this
    /// process wakes it at once; a permit whose holder stopped renewing is taken over after a
    /// whole lease. Raises LockNotAcquiredError if every permit stays held until the timeout.
    #[pyo3(signature = (timeout = None))]
    fn acquire(semaphore, timeout: Option<f64>) -> Held<Self> {
        let timeout = optional_seconds("timeout", timeout)?;
        let site = semaphore.site.clone();
        async move { Ok(Held::new(site.semaphore().await?.acquire(timeout).await.py()?)) }
    }

    /// Takes a free permit (one read, one write), or returns None when all are held.
    fn try_acquire(semaphore) -> Option<Held<Self>> {
        let site = semaphore.site.clone();
        async move { Ok(site.semaphore().await?.try_acquire().await.py()?.map(Held::new)) }
    }

    /// Who holds permits now, with one read: a list of `PermitHolder`, by permit number. A
    /// holder whose process died is listed until its permit is taken over or released.
    fn holders(semaphore) -> Vec<PermitHolder> {
        let site = semaphore.site.clone();
        async move { Ok(site.semaphore().await?.holders().await.py()?.into_iter().map(PermitHolder::from_core).collect()) }
    }
}

/// Who holds one permit of a semaphore, as its item shows it. Immutable; equal when every field
/// is.
#[pyclass(module = "dynalease._native", frozen)]
pub struct PermitHolder {
    holder: CorePermitHolder,
    /// The Python form of `holder.data`, made on first access and then kept.
    data: PyOnceLock<Py<PyAny>>,
}

impl PermitHolder {
    fn from_core(holder: CorePermitHolder) -> PermitHolder {
        PermitHolder { holder, data: PyOnceLock::new() }
    }
}

#[pymethods]
impl PermitHolder {
    /// The permit's number, 0 to permits - 1 (its lock id is the semaphore's name + "#number").
    #[getter]
    fn permit(&self) -> u32 {
        self.holder.permit
    }

    /// The holder's client `owner`.
    #[getter]
    fn owner(&self) -> &str {
        &self.holder.owner
    }

    /// The permit lock's fencing token (rises on every acquisition of that permit).
    #[getter]
    fn fencing_token(&self) -> Option<i64> {
        self.holder.fencing_token
    }

    /// The permit lock's data (written with the permit's `update_data` or `release(data=...)`),
    /// or None.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.data
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(match &self.holder.data {
                    Some(value) => from_value(py, value)?.unbind(),
                    None => py.None(),
                })
            })
            .map(|data| data.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let token = self.holder.fencing_token.map(|t| t.to_string()).unwrap_or_else(|| "None".into());
        Ok(format!(
            "PermitHolder(permit={}, owner={}, fencing_token={token}, data={})",
            self.holder.permit,
            pyo3::types::PyString::new(py, &self.holder.owner).repr()?,
            self.data(py)?.bind(py).repr()?
        ))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<PermitHolder>().is_ok_and(|other| other.get().holder == self.holder)
    }

    fn __hash__(&self) -> u64 {
        // The data may be unhashable.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.holder.permit, &self.holder.owner, self.holder.fencing_token).hash(&mut hasher);
        hasher.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let args = (this.holder.permit, this.holder.owner.clone(), this.holder.fencing_token, this.data(py)?).into_pyobject(py)?;
        Ok((slf.get_type().into_any(), args))
    }

    /// Builds one by hand (tests, or a holder passed between processes).
    #[new]
    #[pyo3(signature = (permit, owner, fencing_token = None, data = None))]
    fn new(py: Python<'_>, permit: u32, owner: String, fencing_token: Option<i64>, data: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let stored = crate::locks::optional_value(data.as_ref())?;
        let holder = PermitHolder::from_core(CorePermitHolder { permit, owner, fencing_token, data: stored });
        if let Some(data) = data {
            let _ = holder.data.set(py, data.unbind());
        }
        Ok(holder)
    }
}
