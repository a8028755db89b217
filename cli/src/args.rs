//! The command line's grammar: every command, flag and help text.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  dynalease table create locks
  dynalease table check locks
  dynalease locks list locks --state held
  dynalease locks show locks job-1
  dynalease locks watch locks
  dynalease locks release locks job-1 --force --expect-token 7
  dynalease gc locks --released-before 30d --dry-run
  dynalease kv put kv-store agents agent/1 '{\"state\": \"idle\"}'
  dynalease iam-policy locks kv-store
  dynalease iam-policy locks --read-only --cli
  dynalease template terraform locks

Against DynamoDB Local: add --endpoint-url http://127.0.0.1:8000 to any command.

Exit codes: 0 done; 1 a problem was found or a write was refused (nothing written); 2 bad usage
or input; 3 the table, lock or key does not exist; 4 DynamoDB or the network failed; 5 a write's
outcome is unknown (it may have landed: look before retrying).";

/// Inspect and operate dynalease lock tables and KV stores on DynamoDB.
#[derive(Debug, Parser)]
#[command(name = "dynalease", version, after_long_help = EXAMPLES, after_help = "Run with --help for examples and exit codes.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Send requests here instead of DynamoDB in the region (DynamoDB Local, a proxy).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region (default: AWS_REGION or the profile's).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Shared-config profile for credentials and region (default: AWS_PROFILE or "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON document for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or check a lock table or KV table.
    #[command(subcommand)]
    Table(TableCommand),
    /// List, show, watch and release locks.
    #[command(subcommand)]
    Locks(LocksCommand),
    /// Delete released lock items that nobody has touched for a while.
    Gc(GcArgs),
    /// Read and write a KV store.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Print the least-privilege IAM policy for a table's clients (or for this tool).
    IamPolicy(IamArgs),
    /// Print the table as infrastructure as code.
    Template(TemplateArgs),
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create a table (on-demand billing; a KV table gets TTL on `expires`). Idempotent.
    Create(CreateArgs),
    /// Check a table's key schema, TTL, billing and items; exits 1 with what to change.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub table: String,
    /// Partition key attribute (default `id`, or `pk` with --kv).
    #[arg(long)]
    pub partition_key: Option<String>,
    /// Sort key attribute, for two-part lock ids (a KV table always has one: `sk`).
    #[arg(long)]
    pub sort_key: Option<String>,
    /// A KV table: keys `pk`/`sk`, TTL on `expires`.
    #[arg(long)]
    pub kv: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    pub table: String,
    /// Check it as a KV table (keys `pk`/`sk` of type S, TTL on `expires`).
    #[arg(long)]
    pub kv: bool,
    /// Items to sample for the kinds found (one Scan page; 0: none).
    #[arg(long, default_value_t = 100)]
    pub sample: u32,
}

#[derive(Debug, Subcommand)]
pub enum LocksCommand {
    /// List lock items (a Scan: it reads the table page by page, and says how much it read).
    List(ListArgs),
    /// Show one lock.
    Show(LockArgs),
    /// A live view of the locks (or one lock) that redraws in place; Ctrl-C ends it.
    Watch(WatchArgs),
    /// Free a lock whose holder is gone, only if it still has the holder shown.
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    pub table: String,
    /// Only ids (string partition keys) that start with this.
    #[arg(long)]
    pub prefix: Option<String>,
    #[arg(long, value_enum)]
    pub state: Option<StateFilter>,
    /// Stop after reading this many items (0: read the whole table).
    #[arg(long, default_value_t = 1000)]
    pub limit: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StateFilter {
    Held,
    Released,
    FailClosed,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    pub table: String,
    /// The lock id (its partition key value; `base64:...` for a binary key).
    pub id: String,
    /// The sort key value, for a table with a sort key.
    pub sort: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub table: String,
    /// Watch one lock instead of the whole table.
    pub id: Option<String>,
    pub sort: Option<String>,
    /// Pause between reads, e.g. 500ms, 2s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Stop after this many reads (default: until Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
    /// With no id: how many items each read may scan.
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    #[command(flatten)]
    pub lock: LockArgs,
    /// Required: releasing a lock you do not hold is forcing it.
    #[arg(long)]
    pub force: bool,
    /// Refuse unless the lock's fencing token is this one.
    #[arg(long, value_name = "N")]
    pub expect_token: Option<i64>,
    /// Do not ask before writing.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    pub table: String,
    /// Only items released longer ago than this (by the releaser's clock), e.g. 30d, 12h.
    #[arg(long, value_parser = parse_duration)]
    pub released_before: Duration,
    /// Only say what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask before deleting.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Print a key's value and version.
    Get(KvKeyArgs),
    /// Write a key's value (JSON).
    Put(KvPutArgs),
    /// List the keys under a prefix.
    List(KvListArgs),
    /// Delete a key.
    Delete(KvKeyArgs),
}

#[derive(Debug, Args)]
pub struct KvTarget {
    pub table: String,
    /// The store's partition (its namespace).
    pub partition: String,
    #[arg(long, default_value = "pk")]
    pub partition_key: String,
    #[arg(long, default_value = "sk")]
    pub sort_key: String,
}

#[derive(Debug, Args)]
pub struct KvKeyArgs {
    #[command(flatten)]
    pub target: KvTarget,
    pub key: String,
}

#[derive(Debug, Args)]
pub struct KvPutArgs {
    #[command(flatten)]
    pub target: KvTarget,
    pub key: String,
    /// The value, as JSON (a bare word is taken as a string).
    pub value: String,
    /// Expire it after this long, e.g. 10m.
    #[arg(long, value_parser = parse_duration)]
    pub ttl: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct KvListArgs {
    #[command(flatten)]
    pub target: KvTarget,
    /// Only keys that start with this.
    #[arg(default_value = "")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct IamArgs {
    /// The tables (a lock table and a KV table, for fenced writes across them).
    #[arg(required = true, num_args = 1..)]
    pub tables: Vec<String>,
    /// Only what reading needs (locks list/show/watch, kv get/list, table check).
    #[arg(long)]
    pub read_only: bool,
    /// For the command line's own operator commands (adds Scan and DescribeTimeToLive).
    #[arg(long)]
    pub cli: bool,
    /// For code that creates its tables (create_table, table create): adds CreateTable and TTL.
    #[arg(long)]
    pub create: bool,
    /// The table's region in the resource ARN (default `*`).
    #[arg(long = "arn-region")]
    pub arn_region: Option<String>,
    /// The table's account in the resource ARN (default `*`).
    #[arg(long)]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[arg(value_enum)]
    pub format: TemplateFormat,
    pub table: String,
    /// A KV table (keys `pk`/`sk`, TTL on `expires`).
    #[arg(long)]
    pub kv: bool,
    /// Sort key attribute of a lock table with two-part ids.
    #[arg(long)]
    pub sort_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TemplateFormat {
    Cloudformation,
    Terraform,
    Cdk,
}

/// `500ms`, `30s`, `10m`, `12h`, `30d`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration: use e.g. 500ms, 30s, 10m, 12h or 30d"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        _ => return Err(format!("{text:?} has unknown unit {unit:?}: use ms, s, m, h or d")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration one can wait"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 weeks").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").unwrap_err().contains("not a duration"));
    }
}
