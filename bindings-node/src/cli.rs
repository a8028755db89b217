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
    let run = || std::panic::catch_unwind(|| dynalease_cli::run(&argv)).unwrap_or(PANICKED);
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
