//! The `dynalease` command line, as a library: [`run`] takes the arguments and returns the exit
//! code, so the Rust binary, the Python wheel's console script and the npm package's `bin` all
//! run this one implementation.

// Every public item is documented: `make test` runs rustdoc with `-D warnings`.
#![warn(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

mod args;
mod kv;
mod locks;
mod policy;
mod render;
mod table;
mod templates;

use std::ffi::OsString;
use std::sync::Arc;

use clap::Parser;
use dynalease::transport::{Target, TargetOptions, Transport};
use dynalease::{Error, ErrorKind};

use args::{Cli, Command, Global, KvCommand, LocksCommand, TableCommand};
pub use render::Report;

/// What the process exits with. Scripts branch on these (`--help` lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked.
    Done = 0,
    /// A check found a problem, or a write was refused because what it was conditioned on
    /// changed; nothing was written.
    Problem = 1,
    /// Bad usage or input.
    Usage = 2,
    /// The table, lock or key does not exist.
    NotFound = 3,
    /// DynamoDB or the network failed (credentials, throttling after retries, unreachable).
    Service = 4,
    /// A write's outcome is unknown: it may have landed.
    Unknown = 5,
}

/// Why a command stopped: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The code the process exits with.
    pub exit: Exit,
    /// What went wrong and what to do about it, printed on stderr.
    pub message: String,
}

impl Failure {
    /// A failure that prints `message` and exits with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure { exit, message: message.into() }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let exit = match error.kind() {
            ErrorKind::Config => Exit::Usage,
            ErrorKind::KeyNotFound => Exit::NotFound,
            ErrorKind::Table if matches!(error, Error::TableNotFound { .. }) => Exit::NotFound,
            ErrorKind::Table | ErrorKind::LockNotAcquired | ErrorKind::LockLost | ErrorKind::KeyExists | ErrorKind::KeyModified => Exit::Problem,
            ErrorKind::Transport => Exit::Service,
            ErrorKind::OutcomeUnknown => Exit::Unknown,
        };
        let message = match &error {
            // The core's text names the libraries' create_table(); here it is a command.
            Error::TableNotFound { table } => format!(
                "table {table:?} does not exist in this account and region: create it with `dynalease table create {table}`, or check the table name, --region and --endpoint-url"
            ),
            other => other.message(&flag_name),
        };
        Failure { exit, message }
    }
}

/// Core option names as this tool's flags, for the messages that name them.
fn flag_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "endpoint_url" => "--endpoint-url",
        "sort_key" => "--sort-key",
        "interval" => "--interval",
        _ => return None,
    })
}

/// What a command ends with: a report to print, or a failure.
pub type CommandResult = Result<Report, Failure>;

/// Runs the command line `args` (the program name first) to completion and returns the exit
/// code. Blocks: call it from a thread that is not inside an async runtime.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version land here too, with exit code 0.
            let _ = error.print();
            return error.exit_code();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dynalease: cannot start: {error}");
            return Exit::Service as i32;
        }
    };
    let output = cli.global.output;
    match runtime.block_on(dispatch(cli)) {
        Ok(report) => {
            report.print(output);
            report.exit as i32
        }
        Err(failure) => {
            eprintln!("dynalease: {}", failure.message);
            failure.exit as i32
        }
    }
}

async fn dispatch(cli: Cli) -> CommandResult {
    let global = &cli.global;
    match cli.command {
        Command::IamPolicy(args) => Ok(policy::iam_policy(&args)),
        Command::Template(args) => templates::template(&args),
        Command::Table(TableCommand::Create(args)) => table::create(&connect(global).await?, &args).await,
        Command::Table(TableCommand::Check(args)) => table::check(&connect(global).await?, &args).await,
        Command::Locks(LocksCommand::List(args)) => locks::list(&connect(global).await?, &args).await,
        Command::Locks(LocksCommand::Show(args)) => locks::show(&connect(global).await?, &args).await,
        Command::Locks(LocksCommand::Watch(args)) => locks::watch(&connect(global).await?, &args, global.output).await,
        Command::Locks(LocksCommand::Release(args)) => locks::release(&connect(global).await?, &args).await,
        Command::Gc(args) => locks::gc(&connect(global).await?, &args).await,
        Command::Kv(command) => {
            let transport = connect(global).await?;
            match command {
                KvCommand::Get(args) => kv::get(transport, &args).await,
                KvCommand::Put(args) => kv::put(transport, &args).await,
                KvCommand::List(args) => kv::list(transport, &args).await,
                KvCommand::Delete(args) => kv::delete(transport, &args).await,
            }
        }
    }
}

async fn connect(global: &Global) -> Result<Arc<dyn Transport>, Failure> {
    let options = TargetOptions { endpoint_url: global.endpoint_url.clone(), region: global.region.clone(), ..TargetOptions::default() };
    let target = match Target::new(options)? {
        Target::Native(config) => Target::Native(dynalease::transport::native::NativeConfig { profile: global.profile.clone(), ..config }),
        memory => memory,
    };
    Ok(target.connect().await?)
}

/// Asks a yes/no question on the terminal; anything but yes is no. Without a terminal, says
/// how to answer from a script instead of waiting for an answer that cannot come.
fn confirm(question: &str) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Failure::new(Exit::Usage, format!("{question} Not asked (no terminal): pass --yes to go ahead; nothing was written")));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| Failure::new(Exit::Usage, e.to_string()))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Failure::new(Exit::Problem, "not confirmed; nothing was written"))
    }
}
