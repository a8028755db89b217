//! `cliMain`: the npm package's `bin` (bin/dynalease.js) runs the `dynalease` command line in its
//! own process, through the same code as the Rust binary and the Python console script
//! (`dynalease_cli::run`).

use std::io::Write;

use napi_derive::napi;

/// What a panic in the command line exits with: the Rust binary's code for one.
const PANICKED: i32 = 101;

/// Runs the command line `argv` (the program name first) to completion and returns its exit
/// code. Blocks the JS thread until the command ends, as a command line may: nothing else runs
/// in a process that is only the `bin`.
#[napi]
pub fn cli_main(argv: Vec<String>) -> i32 {
    let run = || with_default_interrupt(|| std::panic::catch_unwind(|| dynalease_cli::run(&argv)).unwrap_or(PANICKED));
    // `run` builds a runtime of its own and blocks on it, which tokio refuses from inside
    // another runtime's context. The JS thread is outside the addon's runtime (napi enters it
    // only for functions marked `async_runtime`); should a caller ever be inside one, the
    // command runs on a thread of its own instead.
    let code = if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|scope| scope.spawn(run).join().unwrap_or(PANICKED))
    } else {
        run()
    };
    // The process exits through Node next (`process.exit`), which knows nothing of Rust's
    // stdout buffer: a last line without a newline would be lost.
    let _ = std::io::stdout().flush();
    code
}

/// Runs `command` with SIGINT's default action, as a Rust binary starts with, and puts Node's
/// handler back after.
///
/// Node handles SIGINT by restoring the terminal and raising SIGINT again, relying on its
/// handler being reset by then. `locks watch` waits for Ctrl-C with tokio, whose handler
/// chains to the one it replaced: Node's would then raise SIGINT into tokio's handler, and
/// that into Node's, forever, and Ctrl-C would hang the process instead of ending the view.
/// With the default action underneath, Ctrl-C ends `watch` cleanly and every other command at
/// once, as with the Rust binary. (The `bin` never changed the terminal for Node to restore.)
#[cfg(unix)]
fn with_default_interrupt<T>(command: impl FnOnce() -> T) -> T {
    // SAFETY: sigaction with initialised structs; SIG_DFL needs no handler function.
    unsafe {
        let mut node: libc::sigaction = std::mem::zeroed();
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        let saved = libc::sigaction(libc::SIGINT, &default, &mut node) == 0;
        let result = command();
        if saved {
            libc::sigaction(libc::SIGINT, &node, std::ptr::null_mut());
        }
        result
    }
}

#[cfg(not(unix))]
fn with_default_interrupt<T>(command: impl FnOnce() -> T) -> T {
    command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        assert_eq!(cli_main(vec!["dynalease".into(), "--no-such-flag".into()]), 2);
        assert_eq!(cli_main(vec!["dynalease".into(), "--version".into()]), 0);
    }

    #[test]
    fn inside_a_runtime_the_command_still_runs() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let code = runtime.block_on(async { cli_main(vec!["dynalease".into(), "template".into(), "terraform".into(), "locks".into()]) });
        assert_eq!(code, 0);
    }
}
