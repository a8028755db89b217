//! `dynalease._native`: the Python binding of the dynalease core. It only translates — types
//! (convert), errors (errors), sync/async waiting (runtime) — and every behaviour lives in the
//! core. The public package `dynalease` (python/dynalease/__init__.py) adds the context managers
//! and re-exports these names.

#[macro_use]
mod pairs;

mod cli;
mod connection;
mod convert;
mod election;
mod errors;
mod kv;
mod locks;
mod runtime;
mod semaphore;
mod stats;
mod table;

use pyo3::prelude::*;

/// Sends the core's log records (tracing events, via tracing's `log` feature) to Python
/// `logging`: a target like `dynalease::lock::held` becomes the logger `dynalease.lock.held`, a
/// child of `dynalease`. Other crates' records (the AWS SDK's) are dropped here, so they never
/// take the GIL.
fn install_logging(py: Python<'_>) {
    let logger = pyo3_log::Logger::new(py, pyo3_log::Caching::LoggersAndLevels).map(|logger| {
        logger.filter(log::LevelFilter::Off).filter_target("dynalease".to_owned(), log::LevelFilter::Trace)
    });
    // Another extension in the process may own the `log` facade already; then it stays theirs.
    if let Ok(logger) = logger {
        let handle = logger.reset_handle();
        if log::set_boxed_logger(Box::new(UntilExit(logger))).is_ok() {
            log::set_max_level(log::LevelFilter::Trace);
            let _ = LOG_RESET.set(handle);
        }
    }
}

/// Forwards records to Python until the interpreter starts to exit: a record logged after that
/// by one of the runtime's threads (a lock dropped at exit and released in the background)
/// would take the GIL of a finalizing interpreter, which crashes the process.
struct UntilExit(pyo3_log::Logger);

impl log::Log for UntilExit {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        !runtime::exiting() && self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !runtime::exiting() {
            self.0.log(record);
        }
    }

    fn flush(&self) {
        if !runtime::exiting() {
            self.0.flush();
        }
    }
}

static LOG_RESET: std::sync::OnceLock<pyo3_log::ResetHandle> = std::sync::OnceLock::new();

/// Forgets the cached Python logger levels, so that a `logging` configuration changed after
/// import takes effect for dynalease's records.
#[pyfunction]
fn reset_log_cache() {
    if let Some(handle) = LOG_RESET.get() {
        handle.reset();
    }
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    install_logging(module.py());
    errors::register(module)?;
    module.add_class::<locks::LockClientBase>()?;
    module.add_class::<locks::LockClient>()?;
    module.add_class::<locks::AsyncLockClient>()?;
    module.add_class::<locks::LockBase>()?;
    module.add_class::<locks::Lock>()?;
    module.add_class::<locks::AsyncLock>()?;
    module.add_class::<election::ElectionBase>()?;
    module.add_class::<election::Election>()?;
    module.add_class::<election::AsyncElection>()?;
    module.add_class::<election::Leader>()?;
    module.add_class::<election::LeaderWatchBase>()?;
    module.add_class::<election::LeaderWatch>()?;
    module.add_class::<election::AsyncLeaderWatch>()?;
    module.add_class::<semaphore::SemaphoreBase>()?;
    module.add_class::<semaphore::Semaphore>()?;
    module.add_class::<semaphore::AsyncSemaphore>()?;
    module.add_class::<semaphore::PermitHolder>()?;
    module.add_class::<kv::KVStoreBase>()?;
    module.add_class::<kv::KVStore>()?;
    module.add_class::<kv::AsyncKVStore>()?;
    module.add_class::<kv::KVPair>()?;
    module.add_function(wrap_pyfunction!(table::create_table, module)?)?;
    module.add_function(wrap_pyfunction!(table::create_table_async, module)?)?;
    stats::register(module)?;
    module.add_function(wrap_pyfunction!(cli::cli_main, module)?)?;
    module.add_function(wrap_pyfunction!(reset_log_cache, module)?)?;
    module.add_function(wrap_pyfunction!(runtime::_quiesce, module)?)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
