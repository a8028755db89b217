//! The one tokio runtime of the process, and the two ways Python code waits on it: blocking
//! (sync API, GIL released, Ctrl-C honoured) and awaiting (asyncio, via pyo3-async-runtimes).
//!
//! The runtime is created lazily and remembers the pid that created it. A forked child inherits
//! the parent's runtime object but none of its worker threads, so using it would hang: a child
//! builds a fresh runtime instead, and leaks the parent's (dropping it would wait for threads
//! that do not exist in the child).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3_async_runtimes::generic::{ContextExt, JoinError, Runtime as AsyncRuntime};
use pyo3_async_runtimes::TaskLocals;
use tokio::runtime::Runtime;

/// How often a blocked sync call takes the GIL to run Python's signal handlers, so that Ctrl-C
/// interrupts it within about this long.
const SIGNAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

struct ProcessRuntime {
    pid: u32,
    runtime: Runtime,
}

/// Lock-free on purpose: a mutex held by another thread at `fork()` stays locked forever in the
/// child, and the child is exactly who needs to get in here.
static CURRENT: AtomicPtr<ProcessRuntime> = AtomicPtr::new(std::ptr::null_mut());

/// The runtime of this process, built on first use (again in a forked child).
pub fn runtime() -> &'static Runtime {
    let pid = std::process::id();
    loop {
        let current = CURRENT.load(Ordering::Acquire);
        // SAFETY: pointers stored in CURRENT come from Box::leak and are never freed.
        if let Some(existing) = unsafe { current.as_ref() } {
            if existing.pid == pid {
                return &existing.runtime;
            }
        }
        let fresh = Box::into_raw(Box::new(ProcessRuntime { pid, runtime: build() }));
        match CURRENT.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
            // The previous runtime (the parent's, after a fork) is leaked, never dropped.
            Ok(_) => return unsafe { &(*fresh).runtime },
            Err(_) => {
                // Another thread installed one first: use theirs. Ours has no tasks yet, so
                // dropping it does not block.
                drop(unsafe { Box::from_raw(fresh) });
            }
        }
    }
}

/// Tasks spawned for asyncio awaitables that have not finished: they are the ones that take
/// the GIL from a runtime thread.
static AWAITABLE_TASKS: AtomicUsize = AtomicUsize::new(0);

/// Counts one awaitable task while it lives.
struct AwaitableTask;

impl AwaitableTask {
    fn start() -> AwaitableTask {
        AWAITABLE_TASKS.fetch_add(1, Ordering::AcqRel);
        AwaitableTask
    }
}

impl Drop for AwaitableTask {
    fn drop(&mut self) {
        AWAITABLE_TASKS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Registered with `atexit`: waits, with the GIL released and for at most a second, until no
/// awaitable task is alive. Such a task hands its result to asyncio and then takes the GIL once
/// more to tidy up; if the interpreter is finalizing by then, CPython ends that thread in the
/// middle of Rust code and the process aborts.
///
/// From then on no thread of ours takes the GIL for logging or callbacks ([`exiting`]).
#[pyfunction]
pub fn _quiesce(py: Python<'_>) {
    EXITING.store(true, Ordering::Release);
    py.detach(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while AWAITABLE_TASKS.load(Ordering::Acquire) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Set when the interpreter starts to exit (`atexit`).
static EXITING: AtomicBool = AtomicBool::new(false);

/// True once the interpreter has started to exit: threads of ours must not take the GIL.
pub fn exiting() -> bool {
    EXITING.load(Ordering::Acquire)
}

fn build() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dynalease")
        .build()
        .expect("dynalease could not start its tokio runtime (threads or epoll unavailable)")
}

/// Runs `future` to completion for a sync call: the GIL is released while it runs, and every
/// [`SIGNAL_CHECK_INTERVAL`] Python's signal handlers run; if one raises (Ctrl-C ->
/// KeyboardInterrupt), the future is dropped, which cancels it, and that exception is returned.
pub fn block_on<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    F: Future<Output = PyResult<T>> + Send,
    T: Send,
{
    let runtime = runtime();
    py.detach(|| {
        runtime.block_on(async {
            tokio::select! {
                biased;
                result = future => result,
                interrupt = signal_raised() => Err(interrupt),
            }
        })
    })
}

/// Resolves with the exception a Python signal handler raised. Off the main thread
/// `check_signals` never raises, so this then never resolves.
async fn signal_raised() -> PyErr {
    let mut tick = tokio::time::interval(SIGNAL_CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = Python::attach(|py| py.check_signals()) {
            return error;
        }
    }
}

/// Turns `future` into a Python awaitable that runs on this process's runtime. Cancelling the
/// asyncio future drops (cancels) the Rust one.
pub fn awaitable<'py, T, F>(py: Python<'py>, future: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    pyo3_async_runtimes::generic::future_into_py::<Tokio, F, T>(py, future)
}

/// Runs a plain (non-async) Python callback on a thread of its own, never on a runtime worker:
/// a callback that calls the sync API would otherwise block a worker inside the runtime, which
/// tokio forbids.
pub fn call_in_thread(callback: Py<PyAny>, argument: String) {
    if exiting() {
        // The interpreter is finalizing: a thread that took the GIL now would crash it.
        return;
    }
    std::thread::Builder::new()
        .name("dynalease-callback".into())
        .spawn(move || {
            Python::attach(|py| {
                if let Err(error) = callback.call1(py, (argument,)) {
                    error.write_unraisable(py, Some(callback.bind(py)));
                }
            })
        })
        .map(drop)
        .unwrap_or_else(|error| log::error!(target: "dynalease", "could not start a thread for a callback: {error}"));
}

/// pyo3-async-runtimes' view of our runtime. Its own `tokio` module keeps a runtime in a
/// set-once static, which a forked child would inherit dead; this one asks [`runtime`] each time.
struct Tokio;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<TaskLocals>;
}

struct TaskFailed(tokio::task::JoinError);

impl JoinError for TaskFailed {
    fn is_panic(&self) -> bool {
        self.0.is_panic()
    }
    fn into_panic(self) -> Box<dyn std::any::Any + Send + 'static> {
        self.0.into_panic()
    }
}

impl AsyncRuntime for Tokio {
    type JoinError = TaskFailed;
    type JoinHandle = Pin<Box<dyn Future<Output = Result<(), TaskFailed>> + Send>>;

    fn spawn<F>(future: F) -> Self::JoinHandle
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let task = AwaitableTask::start();
        let handle = runtime().spawn(async move {
            let _task = task;
            future.await
        });
        Box::pin(async move { handle.await.map_err(TaskFailed) })
    }

    fn spawn_blocking<F>(f: F) -> Self::JoinHandle
    where
        F: FnOnce() + Send + 'static,
    {
        // pyo3-async-runtimes hands results to asyncio from blocking tasks: count them too.
        let task = AwaitableTask::start();
        let handle = runtime().spawn_blocking(move || {
            let _task = task;
            f()
        });
        Box::pin(async move { handle.await.map_err(TaskFailed) })
    }
}

impl ContextExt for Tokio {
    fn scope<F, R>(locals: TaskLocals, future: F) -> Pin<Box<dyn Future<Output = R> + Send>>
    where
        F: Future<Output = R> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, future))
    }

    fn get_task_locals() -> Option<TaskLocals> {
        TASK_LOCALS.try_with(|cell| cell.get().cloned()).unwrap_or_default()
    }
}
