//! `cli_main`: the `dynalease` command line (crate `dynalease-cli`) inside the Python process, for
//! the wheel's console script and `python -m dynalease` (python/dynalease/_cli.py).

use std::ffi::OsString;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;

/// What the Rust binary exits with when it panics.
const PANIC_EXIT: i32 = 101;

/// Runs the `dynalease` command line with `argv` (the program name first, as in `sys.argv`) and
/// returns its exit code: 0 done, 1 a problem was found or a write was refused, 2 bad usage,
/// 3 not found, 4 DynamoDB or the network failed, 5 a write's outcome is unknown. It prints to
/// the process's stdout and stderr itself and may ask on the terminal (`locks release`).
///
/// Blocks with the GIL released until the command ends (`locks watch` runs until its --count or
/// SIGINT). Made for the console script, which also gives SIGINT its default action first, as a
/// Rust program has it; called from elsewhere, Ctrl-C reaches only `locks watch`.
#[pyfunction]
pub fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    // The command line builds and drives its own runtime on this thread (not one of ours).
    let code = py.detach(|| catch_unwind(AssertUnwindSafe(|| dynalease_cli::run(argv))).unwrap_or(PANIC_EXIT));
    // A Rust program's stdout is flushed at exit; this process goes on into Python first.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}
