//! The `dynalease` binary end to end against DynamoDB Local: what it prints, what it writes, and
//! its exit codes. (The Python and Node suites run the same commands through their entry points;
//! the live view and the confirmation prompt, which need a terminal, are tested there.)

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use dynalease::lock::{LockClient, LockConfig, LockStatus};
use dynalease::table::{create_table, TableSpec};
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::transport::Transport;

fn endpoint() -> String {
    std::env::var("DYNALEASE_TEST_ENDPOINT").expect("DYNALEASE_TEST_ENDPOINT: start DynamoDB Local with scripts/dynamodb-local start")
}

fn table_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{nanos:x}")
}

fn dynalease(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_dynalease")).args(args).args(["--endpoint-url", &endpoint()]).output().unwrap();
    output
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(output)))
}

async fn transport() -> Arc<dyn Transport> {
    Arc::new(NativeTransport::new(NativeConfig { endpoint_url: Some(endpoint()), ..Default::default() }).await.unwrap())
}

async fn locks_on(table: &str) -> (Arc<dyn Transport>, LockClient) {
    let transport = transport().await;
    create_table(transport.as_ref(), &TableSpec::new(table, "id")).await.unwrap();
    let config = LockConfig { owner: "worker-7".into(), heartbeat_period: Some(Duration::from_millis(100)), ..LockConfig::new(table) };
    (transport.clone(), LockClient::new(config, transport).unwrap())
}

#[test]
fn table_create_is_idempotent_and_check_says_what_to_change() {
    let table = table_name("cli-tables");
    for _ in 0..2 {
        let created = dynalease(&["table", "create", &table, "--kv"]);
        assert!(created.status.success(), "{}", text(&created));
    }
    let checked = dynalease(&["table", "check", &table, "--kv", "--output", "json"]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked));
    assert_eq!(json(&checked)["billing"], "PAY_PER_REQUEST");

    let locks = table_name("cli-plain");
    assert!(dynalease(&["table", "create", &locks]).status.success());
    // A lock table checked as a KV table: wrong keys and no TTL, exit 1 with the fixes.
    let wrong = dynalease(&["table", "check", &locks, "--kv"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("FIX: a KV table needs") && text(&wrong).contains("FIX: turn TTL on"), "{}", text(&wrong));
    let missing = dynalease(&["table", "check", "no-such-table-here"]);
    assert_eq!(missing.status.code(), Some(3), "{}", text(&missing));
    // Any command on a missing table says which command creates it.
    let listed = dynalease(&["locks", "list", "no-such-table-here"]);
    assert_eq!(listed.status.code(), Some(3), "{}", text(&listed));
    assert!(text(&listed).contains("create it with `dynalease table create no-such-table-here`"), "{}", text(&listed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_list_and_show_tell_held_released_and_fail_closed_apart() {
    let table = table_name("cli-list");
    let (transport, locks) = locks_on(&table).await;
    let held = locks.acquire("job-held", None).await.unwrap();
    locks.acquire("job-released", None).await.unwrap().release().await.unwrap();
    let closed = LockClient::new(LockConfig { fail_closed: true, owner: "cron".into(), ..LockConfig::new(&table) }, transport).unwrap();
    let _closed = closed.acquire("other-closed", None).await.unwrap();

    let listed = tokio::task::spawn_blocking({
        let table = table.clone();
        move || dynalease(&["locks", "list", &table, "--output", "json"])
    })
    .await
    .unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    let mut states: Vec<(String, String)> = json(&listed)["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_str().unwrap().to_owned(), l["state"].as_str().unwrap().to_owned()))
        .collect();
    states.sort();
    assert_eq!(states, [("job-held".into(), "held".into()), ("job-released".into(), "released".into()), ("other-closed".into(), "fail-closed".into())]);
    assert!(String::from_utf8_lossy(&listed.stderr).contains("read 3 items"), "the Scan says what it read");

    let only = tokio::task::spawn_blocking({
        let table = table.clone();
        move || dynalease(&["locks", "list", &table, "--prefix", "job-", "--state", "held"])
    })
    .await
    .unwrap();
    let shown = text(&only);
    assert!(shown.contains("job-held") && shown.contains("worker-7") && !shown.contains("job-released") && !shown.contains("other-closed"), "{shown}");

    let one = tokio::task::spawn_blocking({
        let table = table.clone();
        move || dynalease(&["locks", "show", &table, "job-held"])
    })
    .await
    .unwrap();
    assert!(text(&one).contains(&format!("fencing token   {}", held.fencing_token().unwrap())), "{}", text(&one));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_release_frees_a_dead_holders_lock_and_refuses_what_changed() {
    let table = table_name("cli-release");
    let (_, locks) = locks_on(&table).await;
    let holder = locks.acquire("job", None).await.unwrap();
    let token = holder.fencing_token().unwrap().to_string();
    let run = |args: Vec<String>| tokio::task::spawn_blocking(move || dynalease(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let args = |extra: &[&str]| ["locks", "release", &table, "job"].iter().chain(extra).map(|s| s.to_string()).collect::<Vec<_>>();

    let unforced = run(args(&["--yes"])).await.unwrap();
    assert_eq!(unforced.status.code(), Some(2), "{}", text(&unforced));
    let no_terminal = run(args(&["--force"])).await.unwrap();
    assert_eq!(no_terminal.status.code(), Some(2), "asks, and without a terminal refuses: {}", text(&no_terminal));
    assert!(text(&no_terminal).contains("pass --yes"));
    let wrong_token = run(args(&["--force", "--yes", "--expect-token", "999"])).await.unwrap();
    assert_eq!(wrong_token.status.code(), Some(1), "{}", text(&wrong_token));
    assert_eq!(holder.status(), LockStatus::Held, "nothing was written");

    // The holder renews every 100 ms: a renewal between the command's look and its write makes
    // it refuse (exit 1, what it must do); it is then run again, as an operator would.
    let mut freed = run(args(&["--force", "--yes", "--expect-token", &token])).await.unwrap();
    for _ in 0..5 {
        if freed.status.code() != Some(1) || holder.status() != LockStatus::Held {
            break;
        }
        assert!(text(&freed).contains("changed since it was shown"), "{}", text(&freed));
        freed = run(args(&["--force", "--yes", "--expect-token", &token])).await.unwrap();
    }
    assert!(freed.status.success(), "{}", text(&freed));
    // The holder learns at its next heartbeat; the next holder's token is higher.
    let reason = tokio::time::timeout(Duration::from_secs(10), holder.wait_lost()).await.unwrap();
    assert!(reason.is_some());
    let next = locks.acquire("job", Some(Duration::from_secs(5))).await.unwrap();
    assert!(next.fencing_token() > holder.fencing_token());
    let again = run(args(&["--force", "--yes", "--expect-token", &token])).await.unwrap();
    assert_eq!(again.status.code(), Some(1), "the lock changed hands: {}", text(&again));
    assert_eq!(next.status(), LockStatus::Held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_deletes_only_released_items_older_than_asked() {
    let table = table_name("cli-gc");
    let (_, locks) = locks_on(&table).await;
    locks.acquire("old", None).await.unwrap().release().await.unwrap();
    let _held = locks.acquire("busy", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    locks.acquire("recent", None).await.unwrap().release().await.unwrap();
    let run = |args: Vec<&'static str>, table: String| {
        tokio::task::spawn_blocking(move || {
            let mut all: Vec<&str> = vec!["gc", &table];
            all.extend(args);
            dynalease(&all)
        })
    };
    let dry = run(vec!["--released-before", "1s", "--dry-run", "--output", "json"], table.clone()).await.unwrap();
    assert_eq!(json(&dry)["candidates"], serde_json::json!(["old"]), "{}", text(&dry));
    let done = run(vec!["--released-before", "1s", "--yes", "--output", "json"], table.clone()).await.unwrap();
    assert_eq!(json(&done)["deleted"], 1, "{}", text(&done));
    let left = tokio::task::spawn_blocking(move || dynalease(&["locks", "list", &table, "--output", "json"])).await.unwrap();
    let mut ids: Vec<String> = json(&left)["locks"].as_array().unwrap().iter().map(|l| l["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    assert_eq!(ids, ["busy", "recent"]);
}

#[test]
fn kv_commands_round_trip_json_values() {
    let table = table_name("cli-kv");
    assert!(dynalease(&["table", "create", &table, "--kv"]).status.success());
    let put = dynalease(&["kv", "put", &table, "agents", "agent/1", r#"{"state": "idle", "load": 0.5}"#]);
    assert!(put.status.success(), "{}", text(&put));
    assert!(dynalease(&["kv", "put", &table, "agents", "agent/2", "busy"]).status.success());
    let got = dynalease(&["kv", "get", &table, "agents", "agent/1", "--output", "json"]);
    assert_eq!(json(&got)["value"], serde_json::json!({"state": "idle", "load": 0.5}));
    let listed = dynalease(&["kv", "list", &table, "agents", "agent/", "--output", "json"]);
    assert_eq!(json(&listed)["pairs"][1]["value"], "busy");
    assert!(dynalease(&["kv", "delete", &table, "agents", "agent/2"]).status.success());
    assert_eq!(dynalease(&["kv", "delete", &table, "agents", "agent/2"]).status.code(), Some(3));
    assert_eq!(dynalease(&["kv", "get", &table, "agents", "agent/2"]).status.code(), Some(3));
}

#[test]
fn bad_input_fails_with_a_message_and_writes_nothing() {
    for (args, code, says) in [
        (vec!["locks", "list"], 2, "TABLE"),
        (vec!["table", "create", "x"], 2, "3 to 255"),
        (vec!["gc", "locks", "--released-before", "soon"], 2, "not a duration"),
        (vec!["template", "pulumi", "locks"], 2, "pulumi"),
        (vec!["kv", "put", "kv-store", "", "k", "1"], 2, "partition is empty"),
        (vec!["locks", "show", "locks", "a", "--output", "yaml"], 2, "yaml"),
    ] {
        let output = dynalease(&args);
        assert_eq!(output.status.code(), Some(code), "{args:?}: {}", text(&output));
        assert!(text(&output).contains(says), "{args:?}: {}", text(&output));
    }
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let help = Command::new(env!("CARGO_BIN_EXE_dynalease")).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Examples:") && help.contains("Exit codes:") && help.contains("locks release"), "{help}");
}

#[test]
fn templates_and_policies_print_without_aws() {
    let cfn = Command::new(env!("CARGO_BIN_EXE_dynalease")).args(["template", "cloudformation", "my-kv", "--kv"]).output().unwrap();
    let cfn = String::from_utf8_lossy(&cfn.stdout);
    assert!(cfn.contains("AWS::DynamoDB::Table") && cfn.contains("AttributeName: expires") && cfn.contains("KeyType: RANGE"), "{cfn}");
    let policy = Command::new(env!("CARGO_BIN_EXE_dynalease")).args(["iam-policy", "locks", "--read-only", "--output", "json"]).output().unwrap();
    let policy: serde_json::Value = serde_json::from_slice(&policy.stdout).unwrap();
    assert_eq!(policy["Version"], "2012-10-17");
}
