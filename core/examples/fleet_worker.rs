//! A fleet worker in Rust: competes for lease locks and increments a fenced counter under each.
//!
//! It speaks the worker protocol of `docs/fleet.md`, like the Python workers in
//! `tests/fleet/worker.py`, so that `make demo` and `tests/fleet` can mix languages on one lock
//! table and check them together:
//!
//! ```sh
//! cargo build -p dynalease --example fleet_worker
//! fleet_worker --client rust --endpoint http://127.0.0.1:PORT --lock-table T --kv-table K \
//!     --kv-partition P --locks a,b,c,d --duration 10 --log worker.jsonl
//! ```
//!
//! Log times are CLOCK_MONOTONIC nanoseconds, read with `clock_gettime` itself: the checker
//! compares them with the Python workers' `time.monotonic_ns()`, and `std::time::Instant` keeps
//! its raw value private.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dynalease::kv::{KvConfig, KvPair, KvStore, WriteOptions};
use dynalease::lock::{Lock, LockClient, LockConfig};
use dynalease::transport::native::{NativeConfig, NativeTransport};
use dynalease::{ErrorKind, Value};
use rand::Rng;
use serde_json::{json, Value as Json};

const USAGE: &str = "usage: fleet_worker --endpoint URL --lock-table T --kv-table K --kv-partition P --locks a,b \
--log PATH [--client rust] [--duration S | --deadline-ns NS] [--lease S] [--heartbeat S] [--hold-ms MS] [--tasks N] \
[--announce] [--seed N]";

fn monotonic_ns() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as i64 * 1_000_000_000 + ts.tv_nsec as i64
}

struct Args {
    client: String,
    endpoint: String,
    lock_table: String,
    kv_table: String,
    kv_partition: String,
    locks: Vec<String>,
    deadline_ns: i64,
    lease: Duration,
    heartbeat: Option<Duration>,
    hold_ms: f64,
    log: String,
    tasks: usize,
    announce: bool,
    seed: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut raw = std::env::args().skip(1);
    let (mut client, mut endpoint, mut lock_table, mut kv_table, mut kv_partition, mut locks, mut log) =
        ("rust".to_string(), None, None, None, None, None, None);
    let (mut duration, mut deadline_ns, mut lease, mut heartbeat, mut hold_ms, mut tasks, mut announce, mut seed) =
        (10.0_f64, None, 3.0_f64, None, 20.0_f64, 1_usize, false, None);
    let seconds = |v: String, name: &str| v.parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0).ok_or(format!("{name}: not a positive number of seconds: {v}"));
    while let Some(flag) = raw.next() {
        if flag == "--announce" {
            announce = true;
            continue;
        }
        let value = raw.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--client" => client = value,
            "--endpoint" => endpoint = Some(value),
            "--lock-table" => lock_table = Some(value),
            "--kv-table" => kv_table = Some(value),
            "--kv-partition" => kv_partition = Some(value),
            "--locks" => locks = Some(value.split(',').filter(|s| !s.is_empty()).map(String::from).collect::<Vec<_>>()),
            "--log" => log = Some(value),
            "--duration" => duration = seconds(value, "--duration")?,
            "--deadline-ns" => deadline_ns = Some(value.parse::<i64>().map_err(|e| format!("--deadline-ns: {e}"))?),
            "--lease" => lease = seconds(value, "--lease")?,
            "--heartbeat" => heartbeat = Some(seconds(value, "--heartbeat")?),
            "--hold-ms" => hold_ms = value.parse::<f64>().ok().filter(|v| *v >= 0.0).ok_or("--hold-ms: not a number >= 0")?,
            "--tasks" => tasks = value.parse::<usize>().ok().filter(|t| *t >= 1).ok_or("--tasks: not a number >= 1")?,
            "--seed" => seed = Some(value.parse::<u64>().map_err(|e| format!("--seed: {e}"))?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or(format!("{name} is required"));
    let locks = locks.ok_or("--locks is required")?;
    if locks.is_empty() {
        return Err("--locks names no lock id".into());
    }
    Ok(Args {
        client,
        endpoint: need(endpoint, "--endpoint")?,
        lock_table: need(lock_table, "--lock-table")?,
        kv_table: need(kv_table, "--kv-table")?,
        kv_partition: need(kv_partition, "--kv-partition")?,
        locks,
        deadline_ns: deadline_ns.unwrap_or_else(|| monotonic_ns() + (duration * 1e9) as i64),
        lease: Duration::from_secs_f64(lease),
        heartbeat: heartbeat.map(Duration::from_secs_f64),
        hold_ms,
        log: need(log, "--log")?,
        tasks,
        announce,
        seed,
    })
}

/// One JSON line per write, flushed at once (the file is unbuffered): the runner tails the logs,
/// and a worker killed with SIGKILL loses at most the line it was writing.
struct Log {
    file: Mutex<File>,
    client: String,
    pid: u32,
}

impl Log {
    fn write(&self, mut record: Json) {
        record["client"] = json!(self.client);
        record["pid"] = json!(self.pid);
        let mut line = record.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes()).expect("cannot write the worker log");
    }

    fn event(&self, event: &str, mut fields: Json) {
        fields["event"] = json!(event);
        fields["at"] = json!(monotonic_ns());
        self.write(fields);
    }

    fn error(&self, op: &str, lock: &str, error: &dynalease::Error) {
        let name = format!("{:?}", error.kind());
        let message: String = error.to_string().chars().take(300).collect();
        self.event("error", json!({"op": op, "lock": lock, "error": name, "message": message}));
    }
}

fn counter_key(lock: &str) -> String {
    format!("counter/{lock}")
}

/// Reads the counter and writes it + 1 with a compare-and-swap fenced by `lock`.
async fn increment(kv: &KvStore, lock: &Lock, lock_id: &str) -> dynalease::Result<()> {
    let key = counter_key(lock_id);
    let previous: Option<KvPair> = kv.get(&key).await?;
    let next = match &previous {
        Some(pair) => pair.value.to_json()?.as_i64().unwrap_or(0) + 1,
        None => 1,
    };
    kv.atomic_put(&key, &Value::from(next), previous.as_ref(), &WriteOptions::default().fence(lock)).await?;
    Ok(())
}

async fn holder(args: Arc<Args>, log: Arc<Log>, locks: Arc<LockClient>, kv: Arc<KvStore>, seed: u64) {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    loop {
        let remaining = args.deadline_ns - monotonic_ns();
        if remaining <= 0 {
            return;
        }
        let lock_id = args.locks[rng.random_range(0..args.locks.len())].clone();
        let timeout = Duration::from_nanos(remaining as u64).min(args.lease * 3);
        let lock = match locks.acquire(lock_id.as_str(), Some(timeout)).await {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::LockNotAcquired => continue,
            Err(e) => {
                log.error("acquire", &lock_id, &e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acquired = monotonic_ns();
        if args.announce {
            log.event("acquired", json!({"lock": lock_id, "token": lock.fencing_token(), "acquired": acquired}));
        }
        // true: applied; false: certainly not applied; null: outcome unknown. Only the
        // unknown-outcome family may have landed: the checker holds every other error to "no".
        let applied = match increment(&kv, &lock, &lock_id).await {
            Ok(()) => Json::Bool(true),
            Err(e) => {
                log.error("increment", &lock_id, &e);
                match e.kind() {
                    ErrorKind::OutcomeUnknown => Json::Null,
                    _ => Json::Bool(false),
                }
            }
        };
        let hold = Duration::from_secs_f64(rng.random_range(0.0..=args.hold_ms) / 1000.0);
        tokio::time::sleep(hold).await;
        let released = monotonic_ns();
        // Read after `released`: not lost now means it was held then.
        let lost = lock.is_lost();
        log.write(json!({
            "lock": lock_id,
            "token": lock.fencing_token(),
            "acquired": acquired,
            "released": released,
            "ok": !lost,
            "increment": applied,
        }));
        if let Err(e) = lock.release().await {
            log.error("release", &lock_id, &e);
        }
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => Arc::new(args),
        Err(message) => {
            eprintln!("fleet_worker: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let file = OpenOptions::new().create(true).append(true).open(&args.log).expect("cannot open the worker log");
    let log = Arc::new(Log { file: Mutex::new(file), client: args.client.clone(), pid: std::process::id() });

    let transport = match NativeTransport::new(NativeConfig { endpoint_url: Some(args.endpoint.clone()), ..Default::default() }).await {
        Ok(t) => Arc::new(t),
        Err(e) => {
            eprintln!("fleet_worker: {e}");
            std::process::exit(1);
        }
    };
    let config = LockConfig { lease_duration: args.lease, heartbeat_period: args.heartbeat, ..LockConfig::new(args.lock_table.as_str()) };
    let locks = Arc::new(LockClient::new(config, transport.clone()).expect("invalid lock configuration"));
    let kv = Arc::new(KvStore::new(KvConfig::new(args.kv_table.as_str(), args.kv_partition.as_str()), transport).expect("invalid KV configuration"));

    log.event("start", json!({"locks": args.locks}));
    let base_seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let tasks: Vec<_> = (0..args.tasks)
        .map(|i| tokio::spawn(holder(args.clone(), log.clone(), locks.clone(), kv.clone(), base_seed.wrapping_add(i as u64 * 7919))))
        .collect();
    for task in tasks {
        task.await.expect("a holder task panicked");
    }
    log.event("stop", json!({}));
}
