//! `Election` / `AsyncElection` (leader election on one lock id), `Leader` (who leads), and the
//! watches that follow an election (`LeaderWatch`, `AsyncLeaderWatch`).
//!
//! The core election needs a connected client, which only exists once the transport is built
//! (asynchronously), so these objects keep the client's configuration and the election's id, and
//! each call builds the core election on this process's transport (cheap: both are cached).

use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{Election as CoreElection, Leader as CoreLeader, LeaderWatch as CoreLeaderWatch, LockId};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use crate::convert::{from_value, lock_id_named, lock_id_to_py, optional_seconds};
use crate::errors::CoreResultExt;
use crate::locks::{client_locks, optional_value, AsyncLock, HandsOut, Held, Lock, Locks};
use crate::runtime::{awaitable, block_on};

/// An election of one lock client's table.
#[derive(Debug)]
struct Site {
    locks: Arc<Locks>,
    id: LockId,
}

impl Site {
    async fn election(&self) -> PyResult<CoreElection> {
        self.locks.client().await?.election(self.id.clone()).py()
    }
}

/// What both election classes are: the election's name and the read-only view.
#[pyclass(module = "dynalease._native", name = "_ElectionBase", subclass, frozen)]
pub struct ElectionBase {
    site: Arc<Site>,
}

/// Leader election on one lock id (from `LockClient.election(name)`): at most one process
/// leads at a time, a leader that dies is replaced after its lease, and each term has a number
/// (the term lock's fencing token) that rises from term to term, so that the systems a leader
/// drives can refuse a deposed leader's writes.
#[pyclass(module = "dynalease._native", extends = ElectionBase, subclass, frozen)]
pub struct Election;

/// Like `Election`, for `AsyncLockClient`: `campaign` and `leader` are awaitable, and `watch()`
/// is an async iterator.
#[pyclass(module = "dynalease._native", extends = ElectionBase, subclass, frozen)]
pub struct AsyncElection;

impl HandsOut for Election {
    type Lock = Lock;
}

impl HandsOut for AsyncElection {
    type Lock = AsyncLock;
}

blocking_and_awaitable! {
    class ElectionBase {
        #[pyo3(signature = (client, name))]
        #[pyo3(text_signature = "(client, name)")]
        fn new(client: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> PyResult<Self> {
            let locks = client_locks(client)?;
            let id = lock_id_named(name, "election name")?;
            // The core's checks (a fail-closed client, the id's shape) raise here, not at the
            // first campaign.
            let id = locks.config.election_id(id).py()?;
            Ok(ElectionBase { site: Arc::new(Site { locks, id }) })
        }

        /// The election's name: its lock id, as passed to `election()`.
        #[getter]
        fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
            lock_id_to_py(py, &self.site.id)
        }

        fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
            let name = lock_id_to_py(slf.py(), &slf.get().site.id)?;
            Ok(format!("{}(name={})", Self::class_name(slf), name.repr()?))
        }
    }

    Election, AsyncElection;

    /// Waits up to `timeout` seconds (None: as long as it takes) until this process leads, and
    /// returns the term's lock: its `fencing_token` is the term, its lost signal says the term
    /// ended under you (a lease that ran out: stop acting as leader), and releasing it resigns.
    /// `data` (e.g. the address followers should talk to) is written in the same request, for
    /// `leader()` and watchers to read; without it the term has no data.
    ///
    /// Raises LockNotAcquiredError if another process still leads at the timeout.
    #[pyo3(signature = (data = None, timeout = None))]
    fn campaign(election, data: Option<&Bound<'_, PyAny>>, timeout: Option<f64>) -> Held<Self> {
        let data = optional_value(data)?;
        let timeout = optional_seconds("timeout", timeout)?;
        let site = election.site.clone();
        async move { Ok(Held::new(site.election().await?.campaign(data, timeout).await.py()?)) }
    }

    /// Who leads now, with one consistent read and no write: a `Leader`, or None when nobody
    /// does. A leader whose process died is shown until a candidate takes over after its lease;
    /// a term ended by resigning is never shown.
    fn leader(election) -> Option<Leader> {
        let site = election.site.clone();
        async move { Ok(site.election().await?.leader().await.py()?.map(Leader::from_core)) }
    }
}

/// Who leads an election, as its lock item shows it. Immutable; equal when owner, term and data
/// are.
#[pyclass(module = "dynalease._native", frozen)]
pub struct Leader {
    leader: CoreLeader,
    /// The Python form of `leader.data`, made on first access and then kept.
    data: PyOnceLock<Py<PyAny>>,
}

impl Leader {
    fn from_core(leader: CoreLeader) -> Leader {
        Leader { leader, data: PyOnceLock::new() }
    }
}

#[pymethods]
impl Leader {
    /// Builds one by hand (tests, or a leader passed between processes).
    #[new]
    #[pyo3(signature = (owner, term, data = None))]
    fn new(py: Python<'_>, owner: String, term: i64, data: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let stored = optional_value(data.as_ref())?;
        let leader = Leader::from_core(CoreLeader { owner, term, data: stored });
        if let Some(data) = data {
            let _ = leader.data.set(py, data.unbind());
        }
        Ok(leader)
    }

    /// The leader's client `owner` (which host or process leads).
    #[getter]
    fn owner(&self) -> &str {
        &self.leader.owner
    }

    /// The term: the term lock's fencing token, strictly increasing from term to term. Send it
    /// with the leader's writes so that their targets can refuse an older term's.
    #[getter]
    fn term(&self) -> i64 {
        self.leader.term
    }

    /// What the leader passed to `campaign(data=...)`, or None.
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.data
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(match &self.leader.data {
                    Some(value) => from_value(py, value)?.unbind(),
                    None => py.None(),
                })
            })
            .map(|data| data.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "Leader(owner={}, term={}, data={})",
            pyo3::types::PyString::new(py, &self.leader.owner).repr()?,
            self.leader.term,
            self.data(py)?.bind(py).repr()?
        ))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Leader>().is_ok_and(|other| other.get().leader == self.leader)
    }

    fn __hash__(&self) -> u64 {
        // Owner and term identify a term; the data may be unhashable.
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (&self.leader.owner, self.leader.term).hash(&mut hasher);
        hasher.finish()
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let this = slf.get();
        let args = (this.leader.owner.clone(), this.leader.term, this.data(py)?).into_pyobject(py)?;
        Ok((slf.get_type().into_any(), args))
    }
}

/// What both watch classes are: the election followed, and the core watch once made.
#[pyclass(module = "dynalease._native", name = "_LeaderWatchBase", subclass, frozen)]
pub struct LeaderWatchBase {
    site: Arc<Site>,
    interval: Option<Duration>,
    /// The core watch and the process that made it (a forked child makes its own). Async: a
    /// call waits for the previous one to finish instead of racing it.
    watch: Arc<tokio::sync::Mutex<Option<(u32, CoreLeaderWatch)>>>,
}

impl LeaderWatchBase {
    fn new(election: &Bound<'_, PyAny>, interval: Option<f64>) -> PyResult<LeaderWatchBase> {
        let Ok(election) = election.cast::<ElectionBase>() else {
            return Err(PyTypeError::new_err(format!(
                "election must be a dynalease Election or AsyncElection, not {}",
                election.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            )));
        };
        let interval = optional_seconds("interval", interval)?;
        Ok(LeaderWatchBase { site: election.get().site.clone(), interval, watch: Default::default() })
    }

    /// The next leader to report (see `CoreLeaderWatch::next`).
    fn next(&self) -> impl std::future::Future<Output = PyResult<Option<Leader>>> + Send + 'static {
        let (site, interval, watch) = (self.site.clone(), self.interval, self.watch.clone());
        async move {
            let mut watch = watch.lock().await;
            let pid = std::process::id();
            let watch = match &mut *watch {
                Some((owner, current)) if *owner == pid => current,
                slot => &mut slot.insert((pid, site.election().await?.watch(interval).py()?)).1,
            };
            Ok(watch.next().await.py()?.map(Leader::from_core))
        }
    }
}

#[pymethods]
impl LeaderWatchBase {
    /// Seconds between reads of the election (None: the client's max_poll_interval).
    #[getter]
    fn interval(&self) -> Option<f64> {
        self.interval.map(|i| i.as_secs_f64())
    }
}

/// Follows an election (from `Election.watch()`): iterating yields the current leader (a
/// `Leader`, or None when nobody leads), then each change. It reads once per interval, and the
/// watches of one election in a process share their reads, so watching is cheap. A term that
/// starts and ends within one interval may be missed; none is reported out of order. Each
/// step blocks (releasing the GIL; Ctrl-C interrupts it); a read that fails raises, and the
/// next step reads again.
#[pyclass(module = "dynalease._native", extends = LeaderWatchBase, frozen)]
pub struct LeaderWatch;

/// Like `LeaderWatch`, as an async iterator (`async for leader in election.watch():`).
#[pyclass(module = "dynalease._native", extends = LeaderWatchBase, frozen)]
pub struct AsyncLeaderWatch;

#[pymethods]
impl LeaderWatch {
    #[new]
    #[pyo3(signature = (election, interval = None))]
    fn new(election: &Bound<'_, PyAny>, interval: Option<f64>) -> PyResult<PyClassInitializer<Self>> {
        Ok(PyClassInitializer::from(LeaderWatchBase::new(election, interval)?).add_subclass(LeaderWatch))
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        // Not Option<Leader>: pyo3 would end the iteration on None, which here means "nobody
        // leads".
        let leader = block_on(py, slf.as_super().get().next())?;
        Ok(leader.into_pyobject(py)?.into_any().unbind())
    }
}

#[pymethods]
impl AsyncLeaderWatch {
    #[new]
    #[pyo3(signature = (election, interval = None))]
    fn new(election: &Bound<'_, PyAny>, interval: Option<f64>) -> PyResult<PyClassInitializer<Self>> {
        Ok(PyClassInitializer::from(LeaderWatchBase::new(election, interval)?).add_subclass(AsyncLeaderWatch))
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(slf.py(), slf.as_super().get().next())
    }
}

